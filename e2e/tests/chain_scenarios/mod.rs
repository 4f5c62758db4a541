//! The chain suite's scenarios, in the order they run on one pool.

mod doctor;
mod drain;
mod kerberos;
mod outage;
mod reaction;
mod shared_node;
mod sizing;
mod spark;
mod third_party;

pub use doctor::*;
pub use drain::*;
pub use kerberos::*;
pub use outage::*;
pub use reaction::*;
pub use shared_node::*;
pub use sizing::*;
pub use spark::*;
pub use third_party::*;

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::chain_world::{ChainWorld, SELECTOR};
use elastic_yarn_e2e::launcher::{LaunchContext, Launcher};
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_world::{LABEL, rm_client};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use tokio::sync::OnceCell;
use yarn_rm::{NodeId, ResourceManager, Resources};

/// The pool every scenario works on.
pub const POOL: &str = "chain";
/// Its namespace.
pub const NAMESPACE: &str = "chain";

/// The pool and the launcher running its pods, made by the first scenario that needs them.
pub struct Pool {
    pub launcher: Launcher,
}

static POOL_STATE: OnceCell<Pool> = OnceCell::const_new();

/// The pool's manifest: Resident on the chain's nodes, the real RM, `elastic` every second with
/// no cool-down after a shrink (so that the reaction scenario can drop again at once), Spark
/// executors decommissioned on SIGPWR.
fn manifest(world: &ChainWorld) -> serde_json::Value {
    manifest_for(world, POOL, SELECTOR, LABEL)
}

/// [`manifest`] for another pool of the chain's namespace, on the nodes labelled
/// `e2e/pool=<selector>`, its NMs labelled `label` on the RM.
pub fn manifest_for(
    world: &ChainWorld,
    name: &str,
    selector: &str,
    label: &str,
) -> serde_json::Value {
    json!({
        "apiVersion": "elasticyarn.io/v1alpha1",
        "kind": "ElasticNodePool",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "resourceManager": {
                "addresses": [world.rm_url],
                "auth": {"mode": "Simple", "user": "yarn"},
            },
            "nodeManager": {
                "image": "apache/hadoop:3.4.2",
                "configMap": "hadoop-conf",
                "nodeLabel": label,
            },
            "placement": {"nodeSelector": {"e2e/pool": selector}},
            "capacity": {
                "floor": {"vcores": 0, "memoryMb": 0},
                "ceiling": {"vcores": 8, "memoryMb": 32768},
            },
            "lifecycle": {"mode": "Resident"},
            "elasticity": {
                "policy": "elastic",
                "syncIntervalSeconds": 1,
                "growCooldownSeconds": 0,
            },
            "guarder": {"gracePeriodSeconds": 60, "sparkDecommission": true},
        }
    })
}

/// Makes the pool (its namespace, the `hadoop-conf` ConfigMap an admin would give NM pods: the
/// cluster's yarn-site.xml) and starts the launcher, once.
pub async fn pool(world: &Arc<ChainWorld>) -> &'static Pool {
    POOL_STATE
        .get_or_init(|| async {
            let k8s = &world.k8s;
            k8s.namespace(NAMESPACE).await;
            let site = {
                let cluster = world
                    .yarn
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                std::fs::read_to_string(cluster.conf.join("yarn-site.xml")).expect("yarn-site.xml")
            };
            let map: ConfigMap = serde_json::from_value(json!({
                "metadata": {"name": "hadoop-conf"},
                "data": {"yarn-site.xml": site},
            }))
            .expect("a ConfigMap");
            Api::<ConfigMap>::namespaced(k8s.client.clone(), NAMESPACE)
                .create(&PostParams::default(), &map)
                .await
                .expect("hadoop-conf created");
            elastic_yarn_e2e::pools::create(&k8s.client, &manifest(world)).await;
            let dir = k8s.dir.join("launcher");
            std::fs::create_dir_all(&dir).expect("launcher folder");
            let launcher = Launcher::start(LaunchContext {
                client: k8s.client.clone(),
                namespace: NAMESPACE.to_owned(),
                pool: POOL.to_owned(),
                yarn: world.yarn.clone(),
                dir,
            });
            Pool { launcher }
        })
        .await
}

/// Another pool of the chain's namespace, on the nodes labelled `e2e/pool=<selector>`, its NMs
/// labelled `label` on the RM and run by a launcher of its own; `spec` is merged into the
/// pool's spec.
pub async fn extra_pool(
    world: &Arc<ChainWorld>,
    name: &str,
    label: &str,
    selector: &str,
    spec: serde_json::Value,
) -> Launcher {
    // The namespace and its hadoop-conf ConfigMap.
    pool(world).await;
    let mut manifest = manifest_for(world, name, selector, label);
    if let (Some(base), Some(extra)) = (manifest["spec"].as_object_mut(), spec.as_object()) {
        base.extend(extra.clone());
    }
    let k8s = &world.k8s;
    elastic_yarn_e2e::pools::create(&k8s.client, &manifest).await;
    let dir = k8s.dir.join(format!("launcher-{name}"));
    std::fs::create_dir_all(&dir).expect("launcher folder");
    Launcher::start(LaunchContext {
        client: k8s.client.clone(),
        namespace: NAMESPACE.to_owned(),
        pool: name.to_owned(),
        yarn: world.yarn.clone(),
        dir,
    })
}

/// Reaction times measured by the scenarios: page drop → RM capacity lowered, and → first
/// signal (when containers were there to signal).
static REACTIONS: std::sync::Mutex<Vec<(Duration, Option<Duration>)>> =
    std::sync::Mutex::new(Vec::new());

/// Records one reaction.
pub fn record_reaction(rm_lowered: Duration, first_signal: Option<Duration>) {
    REACTIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((rm_lowered, first_signal));
}

/// Every reaction recorded so far.
pub fn reactions() -> Vec<(Duration, Option<Duration>)> {
    REACTIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Prints the reactions measured so far: page drop → RM lowered, and → first signal.
pub fn report() {
    let all = reactions();
    let mut lowered: Vec<Duration> = all.iter().map(|(rm, _)| *rm).collect();
    let mut signalled: Vec<Duration> = all.iter().filter_map(|(_, signal)| *signal).collect();
    eprintln!(
        "  koordlet page -> RM capacity lowered: {}",
        summary(&mut lowered)
    );
    eprintln!(
        "  koordlet page -> first graceful signal: {}",
        summary(&mut signalled)
    );
}

/// `n drops: p50 …, p99 …, max …` (nearest-rank percentiles).
fn summary(samples: &mut [Duration]) -> String {
    if samples.is_empty() {
        return "no samples".to_owned();
    }
    samples.sort();
    let percentile = |p: f64| {
        let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1]
    };
    format!(
        "{} drops: p50 {:?}, p99 {:?}, max {:?}",
        samples.len(),
        percentile(0.5),
        percentile(0.99),
        samples[samples.len() - 1]
    )
}

/// Submits a SleepyJob on the pool's label (AM and executors) and waits until `started` tasks
/// have finished.
pub async fn spark_job(
    world: &ChainWorld,
    executors: u32,
    args: &[&str],
    started: u32,
) -> testkit::supervised::Supervised {
    let jar = testkit::hadoop::sleepy_job_jar(&world.spark, &world.k8s.dir);
    let driver = {
        let cluster = world
            .yarn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        elastic_yarn_e2e::yarn_apps::spark_submit_with(
            &cluster,
            &world.spark,
            &jar,
            executors,
            args,
            &[
                format!("spark.yarn.am.nodeLabelExpression={LABEL}"),
                format!("spark.yarn.executor.nodeLabelExpression={LABEL}"),
            ],
        )
    };
    let needle = format!("Finished task {}.0", started.saturating_sub(1));
    tokio::task::spawn_blocking(move || {
        testkit::hadoop::wait_for_log_line(&driver, &needle, 240);
        driver
    })
    .await
    .expect("tasks run")
}

/// The frameworks of the containers a guarder sees now (`sparkExecutor`, ...).
pub async fn frameworks(guarder: &str) -> Vec<String> {
    let status = elastic_yarn_e2e::yarn_apps::guarder_status(guarder).await;
    status["containers"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["framework"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The application of the first container a guarder sees.
pub async fn application_on(guarder: &str) -> String {
    elastic_yarn_e2e::yarn_apps::guarder_status(guarder).await["containers"][0]["container"]
        .as_str()
        .and_then(|id| id.parse::<guarder::container::ContainerId>().ok())
        .map(|id| id.application_id())
        .expect("a container of an application")
}

/// The RM's capacity of a node now.
pub async fn rm_capacity(world: &ChainWorld, node_id: &str) -> Option<Resources> {
    let id: NodeId = node_id.parse().ok()?;
    Some(rm_client(&world.rm_url).node(&id).await.ok()?.capacity())
}

/// Waits until the RM's capacity of `node_id` satisfies `check`.
pub async fn wait_for_rm(
    world: &ChainWorld,
    what: &str,
    node_id: &str,
    check: impl Fn(Resources) -> bool,
) -> Resources {
    wait_for(what, Duration::from_secs(120), || async {
        rm_capacity(world, node_id).await.filter(|c| check(*c))
    })
    .await
}

/// The operator's gauge of `node`'s NM in `pool` (of the chain's namespace) after the loop's last
/// tick: `kind` is `capacity` or `allocated`; `None` until the loop has sized that NM.
pub async fn loop_vcores(world: &ChainWorld, pool: &str, node: &str, kind: &str) -> Option<f64> {
    let pool = format!("pool=\"{NAMESPACE}/{pool}\"");
    let node = format!("node=\"{node}\"");
    let kind = format!("kind=\"{kind}\"");
    let operators = world.k8s.operators.lock().await;
    for operator in operators.iter() {
        let value = operator
            .metric(
                "elastic_yarn_operator_node_manager_vcores",
                &[&pool, &node, &kind],
            )
            .await;
        if value.is_some() {
            return value;
        }
    }
    None
}
