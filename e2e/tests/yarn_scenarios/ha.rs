//! An HA pair of real RMs electing the active one in a real ZooKeeper: the client finds the
//! active RM whichever it asks first, and follows it when the active one dies.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_world::{LABEL, YarnWorld, production_acls};
use testkit::hadoop::{NodeManagerOptions, YarnCluster, YarnOptions};
use yarn_rm::{
    HaState, NodeId, NodeState, OverCommitTimeout, ResourceManager, Resources, RestResourceManager,
    RestSettings, RmAuth,
};

const REGISTERED: Resources = Resources {
    memory_mb: 4096,
    vcores: 4,
};

pub async fn the_client_follows_the_active_rm_through_a_failover(world: Arc<YarnWorld>) {
    let hadoop = world.primary().processes().hadoop.clone();
    let mut cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = YarnCluster::start(
            &hadoop,
            &YarnOptions {
                queue_labels: vec![LABEL.to_owned()],
                rm_properties: production_acls(),
                ha_pair: true,
                ..YarnOptions::default()
            },
        );
        cluster.add_node_manager(&NodeManagerOptions::default());
        cluster
    })
    .await
    .expect("the HA pair starts");
    let first_active = cluster.rm_url.clone();
    let standby = cluster
        .partner
        .as_ref()
        .expect("an HA pair has a partner")
        .url
        .clone();
    let node: NodeId = cluster.node_managers[0].node_id.parse().expect("a node id");
    // The standby comes first in the client's list, as it may in a pool's.
    let rm = RestResourceManager::new(RestSettings::new(
        vec![standby.clone(), first_active.clone()],
        RmAuth::Simple {
            user: "yarn".to_owned(),
        },
    ))
    .expect("a client");

    assert_eq!(
        ha_states(&rm).await,
        vec![
            (standby.clone(), Some(HaState::Standby)),
            (first_active.clone(), Some(HaState::Active)),
        ]
    );

    // Reads and writes reach the active RM.
    assert_eq!(
        rm.node(&node).await.expect("the node").state,
        NodeState::Running
    );
    let smaller = Resources {
        memory_mb: 2048,
        vcores: 2,
    };
    rm.resize(&node, smaller, OverCommitTimeout::Never)
        .await
        .expect("a resize through the pair");
    rm.ensure_node_label(LABEL).await.expect("the label");
    rm.set_node_labels(&node, &[LABEL.to_owned()])
        .await
        .expect("the node labelled");
    assert_eq!(rm.active_address(), Some(first_active.as_str()));
    // The RM passes a resize to the NM in its next heartbeat answer; the NM then offers that
    // capacity, and registers with it at any RM it meets later.
    let nm_web = rm.node(&node).await.expect("the node").node_http_address;
    wait_for(
        "the NM to adopt the resize",
        Duration::from_secs(30),
        || async { (nm_vcores(&nm_web).await == Some(2)).then_some(()) },
    )
    .await;

    // The active RM dies; ZooKeeper's session ends and the other one takes over.
    cluster.rm.signal("KILL");
    let after = wait_for(
        "the NM running on the new active RM",
        Duration::from_secs(120),
        || async {
            rm.node(&node)
                .await
                .ok()
                .filter(|report| report.state == NodeState::Running)
        },
    )
    .await;
    assert_eq!(rm.active_address(), Some(standby.as_str()));
    // What the new active RM knows: the labels (kept in the shared node-label store) and the
    // resize, from the NM's registration (a resize made less than a heartbeat before the
    // failover is lost: the loop re-applies its decision on its next tick).
    assert_eq!(after.node_labels, vec![LABEL.to_owned()], "{after:?}");
    assert_eq!(after.capacity(), smaller, "{after:?}");
    rm.resize(&node, REGISTERED, OverCommitTimeout::Never)
        .await
        .expect("a resize on the new active RM");
    assert_eq!(
        rm.node(&node).await.expect("the node").capacity(),
        REGISTERED
    );

    assert_eq!(
        ha_states(&rm).await,
        vec![(standby, Some(HaState::Active)), (first_active, None)]
    );
    // Finding the first active RM is not a failover; moving to the other one is.
    assert_eq!(rm.metrics().failovers.get(), 1);
}

/// The vcores a NodeManager offers to containers, from its own `/ws/v1/node/info`.
async fn nm_vcores(web_address: &str) -> Option<u64> {
    let answer = controlkit::process::http_get(format!("http://{web_address}/ws/v1/node/info"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let info: serde_json::Value = serde_json::from_str(&answer).ok()?;
    info["nodeInfo"]["totalVCoresAllocatedContainers"].as_u64()
}

/// Each RM's own answer about its HA state (`None`: no answer).
async fn ha_states(rm: &RestResourceManager) -> Vec<(String, Option<HaState>)> {
    rm.every_rm()
        .await
        .into_iter()
        .map(|(address, answer)| (address, answer.ok().map(|info| info.ha_state)))
        .collect()
}
