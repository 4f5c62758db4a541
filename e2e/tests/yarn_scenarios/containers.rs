//! Real YARN containers drained by the real guarder.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_apps::{
    distributed_shell, guarder, guarder_status, put_target, wait_for_containers,
};
use elastic_yarn_e2e::yarn_world::YarnWorld;
use testkit::hadoop::{Hadoop, NodeManagerOptions, YarnCluster, YarnOptions};

/// A distributed-shell application (its AM and three `sleep` containers) on a NodeManager of its
/// own; the guarder, told to empty the NM, sends SIGTERM to the three shell containers and
/// never to the AM (ranked last, it leaves by itself once they are gone); YARN sees every
/// container end and the NodeManager runs on.
pub async fn the_guarder_drains_real_shell_containers_am_last(world: Arc<YarnWorld>) {
    let hadoop = Hadoop::primary().expect("the primary Hadoop line");
    let (cluster, node) = tokio::task::spawn_blocking(move || {
        let mut cluster = YarnCluster::start(&hadoop, &YarnOptions::default());
        let index = cluster.add_node_manager(&NodeManagerOptions::default());
        let node = cluster.node_managers[index].node_id.clone();
        (cluster, node)
    })
    .await
    .expect("a cluster of one NodeManager");
    let _client = distributed_shell(&cluster, "sleepers", 3, "sleep 600");
    wait_for_containers(&cluster.rm_url, &node, 4, Duration::from_secs(120)).await;

    let nm = &cluster.node_managers[0];
    let (_guarder, url) = guarder(&world.dir, nm.process.pid(), 5, false);
    let found = wait_for(
        "the guarder sees the four containers",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move {
                let status = guarder_status(&url).await;
                (status["containers"].as_array().map(Vec::len) == Some(4)).then_some(status)
            }
        },
    )
    .await;
    let containers = found["containers"].as_array().expect("a list");
    let masters: Vec<&serde_json::Value> = containers
        .iter()
        .filter(|c| c["applicationMaster"] == true)
        .collect();
    assert_eq!(masters.len(), 1, "one AM: {found}");
    assert!(
        masters[0]["container"]
            .as_str()
            .is_some_and(|id| id.ends_with("_000001")),
        "{found}"
    );
    assert_eq!(
        containers.last().map(|c| c["applicationMaster"] == true),
        Some(true),
        "the AM ranks last: {found}"
    );

    put_target(&url, 0, 0, 20).await;
    let drained = wait_for("every container has left", Duration::from_secs(60), || {
        let url = url.clone();
        async move {
            let status = guarder_status(&url).await;
            (status["containers"].as_array().is_some_and(Vec::is_empty)).then_some(status)
        }
    })
    .await;
    assert_eq!(
        drained["forceKills"], 0,
        "sleep leaves on SIGTERM: {drained}"
    );
    // Exactly the three shell containers were signalled; the AM, ranked last, ended by itself
    // once its containers had gone (the distributed shell finishes when they complete).
    let signals = drained["signals"].as_array().expect("signals");
    assert_eq!(signals.len(), 1, "{drained}");
    assert_eq!(signals[0]["signal"], "SIGTERM", "{drained}");
    assert_eq!(signals[0]["count"], 3, "{drained}");
    assert_eq!(drained["leftAfterSignal"], 3, "{drained}");
    wait_for_containers(&cluster.rm_url, &node, 0, Duration::from_secs(60)).await;
    // The NodeManager itself was never signalled.
    let mut cluster = cluster;
    assert!(cluster.node_managers[0].process.running(), "the NM runs on");
}
