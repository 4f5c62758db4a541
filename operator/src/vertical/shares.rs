//! Pools sharing a node. koordlet's batch availability (and Koordinator's batch allocatable) is
//! the node's, not a pool's: two pools with an NM on the same node would each size their NM to
//! all of it, and YARN would be offered the node twice. Each pool's loop records the capacity
//! its NMs hold; another pool's loop sees the node's availability less what the others hold.
//! The first NM to take capacity keeps it; the others get the rest, never more than the node.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::policy::{Availability, BatchAllocatable, Resources};
use crate::vertical::availability::NodeReading;

/// What each pool's NM holds on each node: node → pool → capacity on the RM.
#[derive(Clone, Debug, Default)]
pub struct NodeShares(Arc<Mutex<BTreeMap<String, BTreeMap<String, Resources>>>>);

impl NodeShares {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, BTreeMap<String, Resources>>) -> T,
    ) -> T {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// `pool`'s NM on `node` holds `capacity` (zero: it holds nothing, or is gone).
    pub fn record(&self, pool: &str, node: &str, capacity: Resources) {
        self.with(|shares| {
            let on_node = shares.entry(node.to_owned()).or_default();
            if capacity == Resources::default() {
                on_node.remove(pool);
            } else {
                on_node.insert(pool.to_owned(), capacity);
            }
            if on_node.is_empty() {
                shares.remove(node);
            }
        });
    }

    /// `pool` holds nothing anywhere (deleted, or its runtime rebuilt).
    pub fn forget_pool(&self, pool: &str) {
        self.with(|shares| {
            shares.retain(|_, on_node| {
                on_node.remove(pool);
                !on_node.is_empty()
            });
        });
    }

    /// The nodes where `pool` holds something.
    pub fn nodes_of(&self, pool: &str) -> Vec<String> {
        self.with(|shares| {
            shares
                .iter()
                .filter(|(_, on_node)| on_node.contains_key(pool))
                .map(|(node, _)| node.clone())
                .collect()
        })
    }

    /// What the other pools' NMs hold on `node`.
    pub fn held_by_others(&self, pool: &str, node: &str) -> Resources {
        self.with(|shares| {
            shares.get(node).map_or_else(Resources::default, |on_node| {
                on_node.iter().filter(|(other, _)| *other != pool).fold(
                    Resources::default(),
                    |sum, (_, held)| {
                        Resources::new(
                            sum.vcores.saturating_add(held.vcores),
                            sum.memory_mb.saturating_add(held.memory_mb),
                        )
                    },
                )
            })
        })
    }
}

/// `reading` with `held` (cores = vcores, MiB) taken out of every figure, never below zero.
pub fn less(reading: NodeReading, held: Resources) -> NodeReading {
    if held == Resources::default() {
        return reading;
    }
    let cores = f64::from(held.vcores);
    let memory = held.memory_mb as f64;
    NodeReading {
        availability: availability_less(reading.availability, cores, memory),
        batch_allocatable: reading.batch_allocatable.map(|b| allocatable_less(b, held)),
    }
}

/// Koordinator's batch allocatable less what other pools hold.
pub fn allocatable_less(batch: BatchAllocatable, held: Resources) -> BatchAllocatable {
    BatchAllocatable {
        cpu_cores: (batch.cpu_cores - f64::from(held.vcores)).max(0.0),
        memory_mb: (batch.memory_mb - held.memory_mb as f64).max(0.0),
        age_seconds: batch.age_seconds,
    }
}

fn availability_less(mut availability: Availability, cores: f64, memory: f64) -> Availability {
    for (set, amount) in [
        (&mut availability.cpu_cores, cores),
        (&mut availability.memory_mb, memory),
    ] {
        for window in [
            &mut set.one_minute,
            &mut set.five_minutes,
            &mut set.ten_minutes,
        ] {
            // Every sample moves by the same amount: the spread stays.
            window.mean = (window.mean - amount).max(0.0);
            window.min = (window.min - amount).max(0.0);
            window.max = (window.max - amount).max(0.0);
        }
    }
    availability.latest_cpu_cores = (availability.latest_cpu_cores - cores).max(0.0);
    availability.latest_memory_mb = (availability.latest_memory_mb - memory).max(0.0);
    availability
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pool_sees_what_the_others_hold_on_its_nodes_only() {
        let shares = NodeShares::default();
        shares.record("yarn/a", "n1", Resources::new(10, 40_960));
        shares.record("yarn/b", "n1", Resources::new(4, 16_384));
        shares.record("yarn/b", "n2", Resources::new(8, 32_768));
        assert_eq!(
            shares.held_by_others("yarn/a", "n1"),
            Resources::new(4, 16_384)
        );
        assert_eq!(
            shares.held_by_others("yarn/b", "n1"),
            Resources::new(10, 40_960)
        );
        assert_eq!(
            shares.held_by_others("yarn/a", "n2"),
            Resources::new(8, 32_768)
        );
        assert_eq!(shares.held_by_others("yarn/b", "n2"), Resources::default());
        shares.forget_pool("yarn/b");
        assert_eq!(shares.held_by_others("yarn/a", "n1"), Resources::default());
        shares.record("yarn/a", "n1", Resources::default());
        assert!(shares.0.lock().unwrap().is_empty(), "nothing left behind");
    }

    #[test]
    fn a_reading_loses_what_others_hold_and_never_goes_negative() {
        let mut availability = Availability {
            cpu_cores: Default::default(),
            memory_mb: Default::default(),
            latest_cpu_cores: 0.0,
            latest_memory_mb: 0.0,
            age_seconds: 2,
        };
        availability.cpu_cores.one_minute.mean = 20.0;
        availability.cpu_cores.one_minute.min = 3.0;
        availability.memory_mb.ten_minutes.max = 100_000.0;
        availability.latest_cpu_cores = 12.0;
        let reading = NodeReading {
            availability,
            batch_allocatable: Some(BatchAllocatable {
                cpu_cores: 30.0,
                memory_mb: 120_000.0,
                age_seconds: 5,
            }),
        };
        let shared = less(reading, Resources::new(8, 32_768));
        assert_eq!(shared.availability.cpu_cores.one_minute.mean, 12.0);
        assert_eq!(shared.availability.cpu_cores.one_minute.min, 0.0);
        assert_eq!(shared.availability.memory_mb.ten_minutes.max, 67_232.0);
        assert_eq!(shared.availability.latest_cpu_cores, 4.0);
        let batch = shared.batch_allocatable.unwrap();
        assert_eq!((batch.cpu_cores, batch.memory_mb), (22.0, 87_232.0));
        assert_eq!(less(reading, Resources::default()), reading);
    }
}
