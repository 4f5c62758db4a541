//! ElasticNodePools in the e2e scenarios: manifests, and reading back what the API server holds
//! for them (NM pods, status, Events).

use std::time::Duration;

use elastic_yarn_operator::build::names;
use elastic_yarn_operator::crd::{ElasticNodePool, ElasticNodePoolStatus};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use yarn_rm::NodeId;
use yarn_rm::Resources;
use yarn_rm_double::DoubleNode;

use crate::world::World;

/// The NM RPC port the pools use (the default).
pub const RPC_PORT: u16 = 45454;

/// A pool's manifest: Resident unless `lifecycle` says otherwise, NMs on nodes labelled
/// `e2e/pool=<selector>`, the world's RM, the loop every `sync` seconds.
pub fn manifest(
    world: &World,
    namespace: &str,
    name: &str,
    selector: &str,
    lifecycle: Value,
) -> Value {
    json!({
        "apiVersion": "elasticyarn.io/v1alpha1",
        "kind": "ElasticNodePool",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "resourceManager": {
                "addresses": [world.rm_url],
                "auth": {"mode": "Simple", "user": "yarn"},
            },
            "nodeManager": {
                "image": "apache/hadoop:3.4.1",
                "configMap": "hadoop-conf",
                "nodeLabel": "elastic",
            },
            "placement": {"nodeSelector": {"e2e/pool": selector}},
            "capacity": {"ceiling": {"vcores": 8, "memoryMb": 32768}},
            "lifecycle": lifecycle,
            "elasticity": {"syncIntervalSeconds": 2},
            "guarder": {"gracePeriodSeconds": 5},
        }
    })
}

/// `{"mode": "Resident"}`.
pub fn resident() -> Value {
    json!({"mode": "Resident"})
}

/// A Periodic lifecycle whose window opened two minutes ago and drains in an hour (UTC).
pub fn periodic_online_now() -> Value {
    periodic_window(-2, 60, 70)
}

/// A Periodic lifecycle (UTC) with one daily window whose online, drainStart and offline times
/// are these many minutes from now.
pub fn periodic_window(online: i64, drain_start: i64, offline: i64) -> Value {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let at = |minutes: i64| {
        let t = now
            .checked_add(jiff::SignedDuration::from_mins(minutes))
            .expect("a time");
        format!("{} {} * * *", t.minute(), t.hour())
    };
    json!({
        "mode": "Periodic",
        "periodic": {
            "timeZone": "UTC",
            "windows": [{"online": at(online), "drainStart": at(drain_start), "offline": at(offline)}],
        }
    })
}

/// Creates the `hadoop-conf` ConfigMap the pools' NM pods mount.
pub async fn hadoop_conf(client: &Client, namespace: &str) {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let map: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "hadoop-conf"},
        "data": {"yarn-site.xml": "<configuration></configuration>"},
    }))
    .expect("a ConfigMap");
    maps.create(&PostParams::default(), &map)
        .await
        .expect("hadoop-conf created");
}

/// Creates a pool from its manifest.
pub async fn create(client: &Client, manifest: &Value) -> ElasticNodePool {
    let pool: ElasticNodePool = serde_json::from_value(manifest.clone()).expect("a pool");
    let namespace = pool.namespace().expect("a namespace");
    Api::<ElasticNodePool>::namespaced(client.clone(), &namespace)
        .create(&PostParams::default(), &pool)
        .await
        .unwrap_or_else(|e| panic!("cannot create pool {}: {e}", pool.name_any()))
}

/// Merge-patches a pool's spec.
/// Deletes a pool and waits until the operator's cleanup finalizer has let it go.
pub async fn delete(client: &Client, namespace: &str, name: &str) {
    let api = Api::<ElasticNodePool>::namespaced(client.clone(), namespace);
    api.delete(name, &kube::api::DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("deleting pool {namespace}/{name}: {e}"));
    crate::runner::wait_for(
        &format!("pool {namespace}/{name} gone"),
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
        },
    )
    .await;
}

pub async fn patch_spec(client: &Client, namespace: &str, name: &str, spec: Value) {
    Api::<ElasticNodePool>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": spec })),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot patch pool {name}: {e}"));
}

/// The pool's NM pods now.
pub async fn node_manager_pods(client: &Client, namespace: &str, pool: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&names::node_manager_selector(pool)))
        .await
        .expect("pods listed")
        .items
}

/// Whether kwok has the pod running with an IP (and it is not being deleted).
pub fn running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .is_some_and(|s| s.phase.as_deref() == Some("Running") && s.pod_ip.is_some())
}

/// The Kubernetes node an NM pod is for.
pub fn node_of(pod: &Pod) -> String {
    pod.annotations()
        .get(names::NODE_ANNOTATION)
        .cloned()
        .unwrap_or_default()
}

/// Waits until the pool has exactly one running NM pod on each of `nodes`.
pub async fn wait_for_running(
    world: &World,
    namespace: &str,
    pool: &str,
    nodes: &[&str],
) -> Vec<Pod> {
    let mut wanted: Vec<String> = nodes.iter().map(|n| (*n).to_owned()).collect();
    wanted.sort();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let pods = node_manager_pods(&world.client, namespace, pool).await;
        let mut on: Vec<String> = pods.iter().filter(|p| running(p)).map(node_of).collect();
        on.sort();
        if on == wanted && pods.len() == wanted.len() {
            return pods;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "pool {namespace}/{pool}: wanted running NMs on {wanted:?}, have {on:?} of {} pods\n{}",
                pods.len(),
                describe(world, namespace, pool).await
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What the API server holds about a pool, for failure messages: status, Events, pods.
pub async fn describe(world: &World, namespace: &str, pool: &str) -> String {
    let status = status(&world.client, namespace, pool).await;
    let events = Api::<Event>::namespaced(world.client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .map(|e| {
                    format!(
                        "  {} {}: {}",
                        e.type_.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        e.note.unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let pods = node_manager_pods(&world.client, namespace, pool)
        .await
        .iter()
        .map(|p| {
            format!(
                "  {} on {} phase {:?} ip {:?} deleting {}",
                p.name_any(),
                node_of(p),
                p.status.as_ref().and_then(|s| s.phase.clone()),
                p.status.as_ref().and_then(|s| s.pod_ip.clone()),
                p.metadata.deletion_timestamp.is_some()
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "status: {}\nevents:\n{events}\npods:\n{pods}\n{}",
        serde_json::to_string_pretty(&status).unwrap_or_default(),
        world.operator_logs().await
    )
}

/// Registers each pod's NodeManager with the RM double, as a NodeManager in the pod would
/// (`<pod IP>:<rpc port>`, the node id the operator derives).
pub fn register(world: &World, pods: &[Pod], capacity: Resources) -> Vec<NodeId> {
    pods.iter()
        .map(|pod| {
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .expect("a pod IP");
            let id = NodeId::new(ip, RPC_PORT).expect("a node id");
            world
                .rm
                .cluster()
                .add_node(DoubleNode::running(id.clone(), capacity));
            id
        })
        .collect()
}

/// The pool's status as the API server holds it.
pub async fn status(client: &Client, namespace: &str, name: &str) -> Option<ElasticNodePoolStatus> {
    Api::<ElasticNodePool>::namespaced(client.clone(), namespace)
        .get_status(name)
        .await
        .ok()?
        .status
}

/// Waits until the pool's status satisfies `check`.
pub async fn wait_for_status(
    world: &World,
    namespace: &str,
    name: &str,
    what: &str,
    check: impl Fn(&ElasticNodePoolStatus) -> bool,
) -> ElasticNodePoolStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = status(&world.client, namespace, name)
            .await
            .filter(|s| check(s))
        {
            return status;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "pool {namespace}/{name}: timed out waiting for {what}\n{}",
                describe(world, namespace, name).await
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The status (`True`, `False`, `Unknown`) of a pool condition.
pub fn condition(status: &ElasticNodePoolStatus, type_: &str) -> Option<String> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// `(reason, note)` of the Events about the pool.
pub async fn event_notes(client: &Client, namespace: &str, pool: &str) -> Vec<(String, String)> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("events listed")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pool))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// Reasons of the Events about the pool.
pub async fn event_reasons(client: &Client, namespace: &str, pool: &str) -> Vec<String> {
    event_notes(client, namespace, pool)
        .await
        .into_iter()
        .map(|(reason, _)| reason)
        .filter(|reason| !reason.is_empty())
        .collect()
}

/// Takes the `e2e/pool` label off `node`: the NM of the pool selecting it must drain.
pub async fn make_ineligible(client: &Client, node: &str) {
    Api::<Node>::all(client.clone())
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"e2e/pool": null}}})),
        )
        .await
        .expect("label removed");
}

/// Makes `node` ineligible and waits until the operator marked the NM pod `pod` with its drain
/// deadline (the RM took its capacity to zero before that).
pub async fn drain_by_ineligibility(client: &Client, namespace: &str, node: &str, pod: &str) {
    make_ineligible(client, node).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    crate::runner::wait_for("the drain to start", Duration::from_secs(60), || async {
        let pod = pods.get_opt(pod).await.ok()??;
        pod.annotations()
            .contains_key(names::DRAIN_DEADLINE_ANNOTATION)
            .then_some(())
    })
    .await;
}
