//! A `ThirdParty` pool: the NM container carries no resources, so the YARN containers the NM
//! starts (its children, in its cgroup) can use what YARN allocated them. The launcher runs the
//! NM in a cgroup whose CFS quota is the pod's CPU limit, as koordlet does for a best-effort
//! pod's `batch-cpu` limit; a YARN container of 2 vcores spinning on two processes gets more
//! than the NM daemon's one core (a daemon-sized limit, as the pod had before, would hold the
//! NM and every container under one core), and the node annotation carries YARN's allocation
//! plus the daemon's share.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::chain_world::{ChainWorld, THIRD_PARTY_LABEL};
use elastic_yarn_e2e::launcher::Launched;
use elastic_yarn_e2e::pod_cgroup::member_pids;
use elastic_yarn_e2e::pools::status;
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_apps::{distributed_shell_with, kill_application, wait_for_containers};
use elastic_yarn_e2e::yarn_world::rm_client;
use elastic_yarn_operator::controller::third_party;
use elastic_yarn_operator::crd::NodeManagerState;
use guarder::discovery::scan_processes;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use serde_json::json;
use yarn_rm::{NodeId, ResourceManager};

use super::{NAMESPACE, application_on, extra_pool};

const THIRD_PARTY_POOL: &str = "third-party";
const SELECTOR: &str = "chain-third-party";
/// Two processes spinning: a container that can use two cores (for five minutes at most, in
/// case nothing else stops them).
const SPIN: &str = "timeout 300 yes > /dev/null & timeout 300 yes > /dev/null & wait";

pub async fn a_third_party_nodemanager_lets_its_containers_use_their_allocation(
    world: Arc<ChainWorld>,
) {
    let node = world.extra_node("chain-2", SELECTOR).await;
    let launcher = extra_pool(
        &world,
        THIRD_PARTY_POOL,
        THIRD_PARTY_LABEL,
        SELECTOR,
        json!({"koordinator": {"accounting": "ThirdParty"}}),
    )
    .await;
    let k8s = &world.k8s;
    wait_for(
        "the ThirdParty NM running and grown",
        Duration::from_secs(240),
        || async {
            let status = status(&k8s.client, NAMESPACE, THIRD_PARTY_POOL).await?;
            let row = status.node_managers.first()?;
            (row.state == NodeManagerState::Running && row.capacity.vcores >= 4).then_some(())
        },
    )
    .await;
    assert!(launcher.failures().is_empty(), "{:?}", launcher.failures());
    let nm: Launched = launcher.running().pop().expect("the NM runs");
    assert_eq!(nm.node, node.name);
    assert_eq!(
        nm.cpu_quota_micros, -1,
        "the pod puts no CPU limit on the NM container"
    );
    // Idle YARN: the entry holds the daemon's share alone.
    wait_for_allocation(k8s, &node.name, "1000").await;

    let client = {
        let cluster = world
            .yarn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        distributed_shell_with(&cluster, "spinners", 1, SPIN, 2, Some(THIRD_PARTY_LABEL))
    };
    wait_for_containers(&world.rm_url, &nm.node_id, 2, Duration::from_secs(180)).await;
    // What YARN allocated there (its scheduler here counts vcores per container as one) and the
    // daemon's core.
    let id: NodeId = nm.node_id.parse().expect("a node id");
    let allocated = rm_client(&world.rm_url)
        .node(&id)
        .await
        .expect("the RM's report")
        .used()
        .vcores;
    wait_for_allocation(k8s, &node.name, &((allocated + 1) * 1000).to_string()).await;

    // A 1-core cap would hold the container (and the NM) to at most one core in every window
    // (CFS enforces the quota every 100 ms); the other work of a 2-core test machine may take
    // some of the second core.
    let cores = wait_for(
        "the 2-vcore container to use more than one core",
        Duration::from_secs(120),
        || async {
            let cgroup = nm.cgroup.clone();
            let cores = tokio::task::spawn_blocking(move || worker_cores(&cgroup))
                .await
                .ok()?;
            (cores > 1.1).then_some(cores)
        },
    )
    .await;
    eprintln!("  a 2-vcore YARN container on the ThirdParty NM used {cores:.2} cores");
    let application = application_on(&nm.guarder).await;
    kill_application(&world.rm_url, &application).await;
    drop(client);
}

/// Waits until the node's `thirdPartyAllocations` entry of the pool holds `milli_cores`.
async fn wait_for_allocation(k8s: &elastic_yarn_e2e::world::World, node: &str, milli_cores: &str) {
    let nodes: Api<Node> = Api::all(k8s.client.clone());
    let name = third_party::allocation_name(NAMESPACE, THIRD_PARTY_POOL);
    wait_for(
        &format!("{name} at {milli_cores}m on {node}"),
        Duration::from_secs(60),
        || async {
            let node = nodes.get_metadata(node).await.ok()?;
            let text = node
                .metadata
                .annotations?
                .get(third_party::ANNOTATION)?
                .clone();
            let value: serde_json::Value = serde_json::from_str(&text).ok()?;
            let entry = value["allocations"]
                .as_array()?
                .iter()
                .find(|entry| entry["name"] == name.as_str())?
                .clone();
            (entry["resources"]["kubernetes.io/batch-cpu"] == milli_cores).then_some(())
        },
    )
    .await;
}

/// Cores used over 3 seconds by the processes of the NM's cgroup that belong to a YARN
/// container other than an ApplicationMaster.
fn worker_cores(cgroup: &Path) -> f64 {
    const WINDOW: Duration = Duration::from_secs(3);
    let ticks = || -> u64 {
        let members: HashSet<i32> = member_pids(cgroup).into_iter().collect();
        scan_processes(Path::new("/proc"))
            .unwrap_or_default()
            .iter()
            .filter(|p| members.contains(&p.pid))
            .filter(|p| p.container.as_ref().is_some_and(|c| c.container != 1))
            .map(|p| p.cpu_ticks)
            .sum()
    };
    let before = ticks();
    std::thread::sleep(WINDOW);
    let used = ticks().saturating_sub(before);
    used as f64 / procfs::ticks_per_second() as f64 / WINDOW.as_secs_f64()
}
