//! The operator's NM pods become real NodeManagers (run by the launcher from the pods' own
//! settings), register with the RM by the pods' IPs, and are labelled and sized by the operator
//! from the real exporters.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::chain_world::ChainWorld;
use elastic_yarn_e2e::pools::status;
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_world::{LABEL, rm_client};
use elastic_yarn_operator::crd::NodeManagerState;
use yarn_rm::{NodeId, ResourceManager};

use super::{NAMESPACE, POOL, pool};

pub async fn the_pods_become_nodemanagers_labelled_and_sized_on_the_rm(world: Arc<ChainWorld>) {
    let pool = pool(&world).await;
    let k8s = &world.k8s;
    // Pods, NodeManagers registered by the pods' IPs, labelled and grown from the exporters.
    let grown = wait_for(
        "two NMs running, labelled and grown",
        Duration::from_secs(240),
        || async {
            let status = status(&k8s.client, NAMESPACE, POOL).await?;
            let ready = status.node_managers.len() == 2
                && status
                    .node_managers
                    .iter()
                    .all(|row| row.state == NodeManagerState::Running && row.capacity.vcores == 8);
            ready.then_some(status)
        },
    )
    .await;
    assert!(
        pool.launcher.failures().is_empty(),
        "{:?}",
        pool.launcher.failures()
    );
    let launched = pool.launcher.running();
    assert_eq!(launched.len(), 2, "{launched:?}");
    let rm = rm_client(&world.rm_url);
    for nm in &launched {
        let row = grown
            .node_managers
            .iter()
            .find(|row| row.node == nm.node)
            .expect("a row per NM");
        assert_eq!(
            row.ip.as_deref(),
            Some(nm.ip.as_str()),
            "the row names the pod's IP"
        );
        assert_eq!(
            row.yarn_node_id.as_deref(),
            Some(nm.node_id.as_str()),
            "{row:?}"
        );
        let id: NodeId = nm.node_id.parse().expect("a node id");
        let report = rm.node(&id).await.expect("the RM knows the NM");
        assert_eq!(report.node_labels, vec![LABEL.to_owned()], "{report:?}");
        assert_eq!(
            report.capacity().vcores,
            row.capacity.vcores,
            "the row is the RM's"
        );
    }
}
