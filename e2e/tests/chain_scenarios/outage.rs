//! The RM hangs for minutes (SIGSTOP: it accepts connections and answers nothing) while koordlet
//! takes most of a node's batch CPU from an NM full of containers. The operator cannot lower the
//! NM on the RM, so it protects the running work through the guarder; the pool says the RM is
//! unreachable; once the RM answers again the NM is lowered there, and nothing was lost on the
//! way: the NM is registered and Running, no container was killed by force, the other NMs of
//! the RM kept their capacity.

use std::sync::Arc;
use std::time::{Duration, Instant};

use elastic_yarn_e2e::chain_world::{ChainWorld, OUTAGE_LABEL};
use elastic_yarn_e2e::node_metrics::batch_cores;
use elastic_yarn_e2e::pools::status;
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_apps::{
    distributed_shell_with, guarder_tallies, kill_application, read_guarder_status,
    wait_for_containers,
};
use elastic_yarn_operator::crd::NodeManagerState;
use serde_json::json;

use super::{NAMESPACE, application_on, extra_pool, loop_vcores, rm_capacity, wait_for_rm};

const OUTAGE_POOL: &str = "outage";
const SELECTOR: &str = "chain-outage";
/// How long the RM stays frozen.
const OUTAGE: Duration = Duration::from_secs(120);
/// Batch cores koordlet leaves the node during the outage (the NM holds an AM and three
/// containers, each counted as one vcore).
const SQUEEZED_CORES: f64 = 1.5;

pub async fn the_rm_hung_for_minutes_loses_nothing(world: Arc<ChainWorld>) {
    let node = world.extra_node("chain-6", SELECTOR).await;
    let launcher = extra_pool(&world, OUTAGE_POOL, OUTAGE_LABEL, SELECTOR, json!({})).await;
    let k8s = &world.k8s;
    let nm = wait_for(
        "the outage pool's NM running at the ceiling",
        Duration::from_secs(240),
        || async {
            let nm = launcher.running().pop()?;
            (rm_capacity(&world, &nm.node_id).await?.vcores == 8).then_some(nm)
        },
    )
    .await;
    assert_eq!(nm.node, node.name);
    let client = {
        let cluster = world
            .yarn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        distributed_shell_with(&cluster, "outage", 3, "sleep 900", 1, Some(OUTAGE_LABEL))
    };
    wait_for_containers(&world.rm_url, &nm.node_id, 4, Duration::from_secs(180)).await;
    // The loop protects on what it last read from the RM: freeze it only once the loop has seen
    // the containers (otherwise the test, not the operator, decides what the loop knows).
    wait_for(
        "the loop to see the containers on the RM",
        Duration::from_secs(60),
        || async {
            let allocated = loop_vcores(&world, OUTAGE_POOL, &nm.node, "allocated").await?;
            (allocated >= 4.0).then_some(())
        },
    )
    .await;
    let application = application_on(&nm.guarder).await;
    // Every other NM's capacity now: the outage must not change them.
    let others = other_capacities(&world, &nm.node_id).await;

    freeze_rm(&world, "STOP");
    let frozen = Instant::now();
    node.koordlet.set(batch_cores(SQUEEZED_CORES));
    let protected = wait_for(
        "the guarder told to protect the NM while the RM is frozen",
        Duration::from_secs(90),
        || async {
            let status = read_guarder_status(&nm.guarder).await.ok()?;
            status["target"]["vcores"].as_u64()
        },
    )
    .await;
    let protected_after = frozen.elapsed();
    wait_for(
        "the pool to say the RM is unreachable",
        Duration::from_secs(100),
        || async {
            let status = status(&k8s.client, NAMESPACE, OUTAGE_POOL).await?;
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "ResourceManagerReachable" && c.status == "False")
                .then_some(())
        },
    )
    .await;
    let unreachable_after = frozen.elapsed();
    if let Some(rest) = OUTAGE.checked_sub(frozen.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    freeze_rm(&world, "CONT");
    let woke = Instant::now();
    let lowered = wait_for_rm(
        &world,
        "the NM lowered once the RM answers",
        &nm.node_id,
        |c| c.vcores < 8,
    )
    .await;
    let lowered_after = woke.elapsed();
    eprintln!(
        "  RM frozen {OUTAGE:?}: guarder target {protected} vcores after {protected_after:.1?}, pool unreachable after {unreachable_after:.1?}; lowered to {lowered} {lowered_after:.1?} after the RM woke"
    );

    // Nothing lost: the NM is Running on its row with no problem, registered, never killed.
    wait_for(
        "the NM's row Running with no problem",
        Duration::from_secs(60),
        || async {
            let status = status(&k8s.client, NAMESPACE, OUTAGE_POOL).await?;
            let row = status.node_managers.first()?;
            (row.state == NodeManagerState::Running && row.problem.is_none()).then_some(())
        },
    )
    .await;
    assert!(launcher.failures().is_empty(), "{:?}", launcher.failures());
    assert_eq!(
        guarder_tallies(&nm.guarder).await.force_kills,
        0,
        "no container was killed by force"
    );
    assert_eq!(
        other_capacities(&world, &nm.node_id).await,
        others,
        "the other NMs kept their capacity"
    );
    kill_application(&world.rm_url, &application).await;
    drop(client);
}

/// Sends the RM's JVM `signal` (through its watchdog).
fn freeze_rm(world: &ChainWorld, signal: &str) {
    world
        .yarn
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .rm
        .signal(signal);
}

/// The RM's capacity of every registered NM but `except`, by node id.
async fn other_capacities(world: &ChainWorld, except: &str) -> Vec<(String, u32)> {
    use yarn_rm::ResourceManager;
    let mut capacities: Vec<(String, u32)> = elastic_yarn_e2e::yarn_world::rm_client(&world.rm_url)
        .nodes(&[])
        .await
        .expect("the RM's nodes")
        .into_iter()
        .filter(|n| n.id.to_string() != except)
        .map(|n| (n.id.to_string(), n.capacity().vcores))
        .collect();
    capacities.sort();
    capacities
}
