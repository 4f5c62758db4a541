//! The condition types of a pool's status; merging is `controlkit::conditions`.

pub use controlkit::conditions::{ConditionUpdate, merge};

/// `Ready`: the pool runs what its lifecycle asks for.
pub const READY: &str = "Ready";
/// `ResourceManagerReachable`: the active RM answered the last call.
pub const RESOURCE_MANAGER_REACHABLE: &str = "ResourceManagerReachable";
/// `MetricsFresh`: every NM's availability metrics are younger than `staleAfterSeconds`.
pub const METRICS_FRESH: &str = "MetricsFresh";
/// `DatasetsReady`: every Fluid Dataset the pool mounts is bound.
pub const DATASETS_READY: &str = "DatasetsReady";
