//! How fast the chain reacts: from a koordlet page showing less batch CPU to the RM capacity
//! lowered (and, where containers ran, to the guarder's first signal), measured and reported
//! with the drop of the Spark scenario, not asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use elastic_yarn_e2e::chain_world::ChainWorld;
use elastic_yarn_e2e::node_metrics::batch_cores;

use super::{pool, record_reaction, report, rm_capacity, wait_for_rm};

/// Steps down from the full level (8 vcores) to 2 vcores, each more than 10% under the capacity
/// before it (the Spark scenario that follows wants 2 vcores per NM).
const LEVELS: [f64; 6] = [6.2, 5.4, 4.5, 3.6, 2.7, 2.0];

pub async fn the_loop_reacts_to_koordlet_drops_within_seconds(world: Arc<ChainWorld>) {
    let pool = pool(&world).await;
    let launched = pool.launcher.running();
    assert_eq!(launched.len(), 2, "{launched:?}");
    let mut measured = 0;
    // (Each NM is measured from its full level: once lowered, `elastic` grows back only when
    // the 5-minute window has forgotten the drop.)
    for nm in &launched {
        wait_for_rm(&world, "the NM at its full level", &nm.node_id, |c| {
            c.vcores == 8
        })
        .await;
        let node = world
            .nodes
            .iter()
            .find(|n| n.name == nm.node)
            .expect("the NM's node");
        for cores in LEVELS {
            let before = rm_capacity(&world, &nm.node_id).await.expect("a capacity");
            let dropped = Instant::now();
            node.koordlet.set(batch_cores(cores));
            loop {
                let now = rm_capacity(&world, &nm.node_id).await;
                if now.is_some_and(|c| c.vcores < before.vcores) {
                    break;
                }
                assert!(
                    dropped.elapsed() < Duration::from_secs(60),
                    "{}: no shrink from {before} after the page fell to {cores} cores",
                    nm.node
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            record_reaction(dropped.elapsed(), None);
            measured += 1;
        }
    }
    assert_eq!(measured, 2 * LEVELS.len());
    report();
}
