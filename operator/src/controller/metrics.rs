//! The operator's Prometheus metrics and its `/metrics` and `/healthz` endpoints.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use yarn_rm::RmMetrics;

pub use controlkit::report::FailureLabels;

/// Labels of a resize decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `grow`, `shrink`, `guarder_only`, `keep`, `rate_limited`, `failed`.
    pub outcome: &'static str,
    /// The policy's reason category.
    pub reason: &'static str,
}

/// Labels of a lifecycle action.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LifecycleLabels {
    /// `drain` or `remove`.
    pub action: &'static str,
    /// Why.
    pub cause: &'static str,
}

/// Labels of one NodeManager's YARN resources.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeManagerLabels {
    /// `<namespace>/<pool>`.
    pub pool: String,
    /// Kubernetes node.
    pub node: String,
    /// `capacity` (what the RM may give) or `allocated` (what YARN containers hold).
    pub kind: &'static str,
}

/// Labels of a pool's series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `<namespace>/<pool>`.
    pub pool: String,
}

/// Every series of the operator; cheap to clone.
#[derive(Clone, Debug)]
pub struct OperatorMetrics {
    /// Reconciles run.
    pub reconciles: Counter,
    /// Reconciles and loop steps that failed, by category.
    pub failures: Family<FailureLabels, Counter>,
    /// Seconds per reconcile.
    pub reconcile_duration: Histogram,
    /// Resize decisions of the vertical loops.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Ticks of each pool's vertical loop (one per sync interval while it has NMs).
    pub loop_ticks: Family<PoolLabels, Counter>,
    /// Drains started and pods removed.
    pub lifecycle: Family<LifecycleLabels, Counter>,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge,
    /// Vcores of each NodeManager on the RM, after the last tick.
    pub node_manager_vcores: Family<NodeManagerLabels, Gauge>,
    /// Memory of each NodeManager on the RM, bytes, after the last tick.
    pub node_manager_memory: Family<NodeManagerLabels, Gauge>,
    /// The RM clients' metrics (latency, errors, failovers).
    pub rm: RmMetrics,
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        OperatorMetrics {
            reconciles: Counter::default(),
            failures: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            decisions: Family::default(),
            loop_ticks: Family::default(),
            lifecycle: Family::default(),
            leader: Gauge::default(),
            node_manager_vcores: Family::default(),
            node_manager_memory: Family::default(),
            rm: RmMetrics::default(),
        }
    }
}

impl OperatorMetrics {
    /// A registry with every series under `elastic_yarn_operator_` (RM calls under
    /// `elastic_yarn_rm_`).
    pub fn registry(&self) -> Registry {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("elastic_yarn_operator");
        registry.register("reconciles", "Reconciles run", self.reconciles.clone());
        registry.register(
            "failures",
            "Reconciles and loop steps that failed, by category",
            self.failures.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of a reconcile",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
        registry.register(
            "resize_decisions",
            "Resize decisions of the vertical loops, by outcome and reason",
            self.decisions.clone(),
        );
        registry.register(
            "loop_ticks",
            "Ticks of each pool's vertical loop (one per sync interval while it has NodeManagers)",
            self.loop_ticks.clone(),
        );
        registry.register(
            "lifecycle_actions",
            "Drains started and NodeManager pods removed, by cause",
            self.lifecycle.clone(),
        );
        registry.register(
            "node_manager_vcores",
            "YARN vcores of each NodeManager: its capacity on the RM, and what containers hold",
            self.node_manager_vcores.clone(),
        );
        registry.register_with_unit(
            "node_manager_memory",
            "YARN memory of each NodeManager: its capacity on the RM, and what containers hold",
            Unit::Bytes,
            self.node_manager_memory.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            self.leader.clone(),
        );
        self.rm
            .register(root.sub_registry_with_prefix("elastic_yarn_rm"));
        root
    }
}

pub use controlkit::http::{router, serve};
