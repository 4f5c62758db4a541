//! Two pools on one node: koordlet's batch availability is the node's, so each pool sizing its
//! NM to all of it would offer YARN the node twice. The operator divides it: the two real NMs'
//! capacities on the RM add up to no more than what one NM alone would get from the node.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::chain_world::ChainWorld;
use elastic_yarn_e2e::node_metrics::batch_cores;
use elastic_yarn_e2e::runner::wait_for;
use serde_json::json;

use super::{extra_pool, loop_vcores, rm_capacity};

const SELECTOR: &str = "chain-shared";
/// Batch cores the shared node offers: one NM alone would get `floor(10 × 1.15)` = 11 vcores
/// from it (`elastic`'s overcommit), capped at the pool's ceiling of 8.
const SHARED_CORES: f64 = 10.0;
const ONE_NM_ALONE: u32 = 11;
const CEILING: u32 = 8;

pub async fn two_pools_on_one_node_divide_it(world: Arc<ChainWorld>) {
    let node = world.extra_node("chain-5", SELECTOR).await;
    node.koordlet.set(batch_cores(SHARED_CORES));
    let mut launchers = Vec::new();
    for name in ["shared-a", "shared-b"] {
        launchers.push(extra_pool(&world, name, name, SELECTOR, json!({})).await);
    }
    let launched = wait_for(
        "an NM of each pool running on the node",
        Duration::from_secs(240),
        || async {
            let launched: Vec<_> = launchers.iter().flat_map(|l| l.running()).collect();
            (launched.len() == 2).then_some(launched)
        },
    )
    .await;
    assert!(
        launched.iter().all(|nm| nm.node == node.name),
        "{launched:?}"
    );
    // Both sized by the loop (which one first, and so which one holds more, depends on the
    // order of their first ticks: the first may take its ceiling, the second then gets what is
    // left, as little as nothing), and then steady.
    let seen = std::sync::Mutex::new(Vec::<Vec<u32>>::new());
    let capacities = wait_for("both NMs sized", Duration::from_secs(180), || async {
        let mut capacities = Vec::new();
        for (pool, nm) in ["shared-a", "shared-b"].iter().zip(&launched) {
            loop_vcores(&world, pool, &nm.node, "capacity").await?;
            capacities.push(rm_capacity(&world, &nm.node_id).await?.vcores);
        }
        {
            let mut seen = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.last() != Some(&capacities) {
                eprintln!("  shared node: capacities {capacities:?}");
                seen.push(capacities.clone());
            }
        }
        // The node is used: one of them at least grew past its registration size (the other
        // may get nothing: the memory the first holds bounds it).
        capacities.iter().any(|v| *v > 1).then_some(capacities)
    })
    .await;
    // A few more loop periods: nothing grows past the node.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut settled = Vec::new();
    for nm in &launched {
        settled.push(
            rm_capacity(&world, &nm.node_id)
                .await
                .expect("the RM's capacity")
                .vcores,
        );
    }
    let total: u32 = settled.iter().sum();
    eprintln!(
        "  two pools on one node offering {SHARED_CORES} cores: their NMs hold {settled:?} vcores ({total} in all; one NM alone would get {ONE_NM_ALONE})"
    );
    assert!(
        settled.iter().all(|v| *v <= CEILING),
        "within the pools' ceiling: {settled:?}"
    );
    assert!(
        total <= ONE_NM_ALONE,
        "the node is offered once, not twice: {settled:?} (first seen {capacities:?})"
    );
}
