//! An in-process `AddressStore` with the API server's optimistic concurrency: every write bumps
//! `metadata.resourceVersion`, and a status replace that carries an older one is a conflict.
//! The simulated pools of the property tests and the benchmark run on it. It can yield to the
//! async scheduler before and after every read and write, following a pattern, so that
//! concurrent claimants interleave in many different orders.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::crd::{POOL_LABEL, StaticIP};

use super::store::{AddressStore, StoreError};

/// The store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, StaticIP>>,
    version: AtomicU64,
    yields: Vec<u8>,
    step: AtomicUsize,
    writes: AtomicU64,
    conflicts: AtomicU64,
}

impl MemoryStore {
    /// A store holding `addresses` (each gets a fresh `resourceVersion`).
    pub fn new(addresses: impl IntoIterator<Item = StaticIP>) -> Self {
        let store = MemoryStore::default();
        for address in addresses {
            store.insert(address);
        }
        store
    }

    /// The same, yielding `yields[i % len]` times at the i-th yield point.
    pub fn with_yields(addresses: impl IntoIterator<Item = StaticIP>, yields: Vec<u8>) -> Self {
        MemoryStore {
            yields,
            ..MemoryStore::new(addresses)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StaticIP>> {
        // A panic while holding the lock leaves consistent data (each write is one insert).
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_version(&self) -> String {
        (self.version.fetch_add(1, Ordering::Relaxed) + 1).to_string()
    }

    /// Adds or replaces an object as a create or update would.
    pub fn insert(&self, mut address: StaticIP) {
        address.metadata.resource_version = Some(self.next_version());
        let name = address.metadata.name.clone().unwrap_or_default();
        self.lock().insert(name, address);
    }

    /// Every object.
    pub fn snapshot(&self) -> Vec<StaticIP> {
        self.lock().values().cloned().collect()
    }

    /// Accepted writes and refused (conflicting) ones so far.
    pub fn write_counts(&self) -> (u64, u64) {
        (
            self.writes.load(Ordering::Relaxed),
            self.conflicts.load(Ordering::Relaxed),
        )
    }

    async fn maybe_yield(&self) {
        if self.yields.is_empty() {
            return;
        }
        let step = self.step.fetch_add(1, Ordering::Relaxed);
        for _ in 0..self.yields[step % self.yields.len()] {
            tokio::task::yield_now().await;
        }
    }
}

impl AddressStore for MemoryStore {
    async fn list(&self, pool: &str) -> Result<Vec<StaticIP>, StoreError> {
        self.maybe_yield().await;
        let items = self
            .lock()
            .values()
            .filter(|a| {
                a.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(POOL_LABEL))
                    .map(String::as_str)
                    == Some(pool)
            })
            .cloned()
            .collect();
        // Yielding after the read lets others write before this caller acts on it.
        self.maybe_yield().await;
        Ok(items)
    }

    async fn replace_status(&self, address: &StaticIP) -> Result<StaticIP, StoreError> {
        self.maybe_yield().await;
        let name = address.metadata.name.clone().unwrap_or_default();
        let version = self.next_version();
        let mut objects = self.lock();
        let current = objects.get_mut(&name).ok_or(StoreError::NotFound)?;
        if current.metadata.resource_version != address.metadata.resource_version {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Conflict);
        }
        // The status subresource changes the status only.
        current.status = address.status.clone();
        current.metadata.resource_version = Some(version);
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(current.clone())
    }
}
