//! A Periodic window's drain: the pool goes Periodic with its drain already started; the
//! operator takes every NM's capacity to zero on the RM, the NMs are empty, the pods go, and the
//! launcher stops their NodeManagers and guarders as the kubelet would.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::chain_world::ChainWorld;
use elastic_yarn_e2e::pools::{event_reasons, node_manager_pods, patch_spec, periodic_window};
use elastic_yarn_e2e::runner::wait_for;
use serde_json::json;

use super::{NAMESPACE, POOL, pool, rm_capacity};

pub async fn a_periodic_drain_window_takes_the_nodemanagers_away(world: Arc<ChainWorld>) {
    let pool = pool(&world).await;
    let k8s = &world.k8s;
    let before = pool.launcher.running();
    assert_eq!(before.len(), 2, "{before:?}");
    patch_spec(
        &k8s.client,
        NAMESPACE,
        POOL,
        // A window that opened ten minutes ago, began draining a minute ago, closes in an hour.
        json!({"lifecycle": periodic_window(-10, -1, 60)}),
    )
    .await;
    wait_for("the NM pods gone", Duration::from_secs(180), || async {
        node_manager_pods(&k8s.client, NAMESPACE, POOL)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let stopped = wait_for(
        "the launcher to stop both NMs",
        Duration::from_secs(60),
        || async {
            let stopped = pool.launcher.stopped();
            (stopped.len() == 2).then_some(stopped)
        },
    )
    .await;
    assert!(pool.launcher.running().is_empty());
    for nm in &stopped {
        // The RM had the capacity at zero before the pod went.
        let capacity = rm_capacity(&world, &nm.node_id).await;
        assert!(
            capacity.is_none_or(|c| c.vcores == 0),
            "{}: {capacity:?}",
            nm.node
        );
    }
    let reasons = event_reasons(&k8s.client, NAMESPACE, POOL).await;
    for reason in ["DrainStarted", "NodeManagerRemoved"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
}
