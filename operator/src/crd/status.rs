//! Status of an `ElasticNodePool`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Resources;

/// What the operator observed and did for a pool.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElasticNodePoolStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the pool is in its lifecycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PoolPhase>,
    /// `Ready`, `ResourceManagerReachable`, `MetricsFresh`, `DatasetsReady`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Next scheduled online, drain or offline time (RFC 3339), for `Periodic` pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_transition: Option<String>,
    /// One row per NodeManager.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_managers: Vec<NodeManagerStatus>,
    /// Sums over the pool's NodeManagers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<PoolTotals>,
    /// Graceful signals (SIGPWR, SIGTERM) the guarders sent.
    #[serde(default)]
    pub graceful_signals: u64,
    /// Containers the guarders had to SIGKILL after the grace period.
    #[serde(default)]
    pub forced_kills: u64,
}

/// Lifecycle phase of a pool.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PoolPhase {
    /// Waiting for something (datasets, metrics, the RM) before going online.
    Pending,
    /// NodeManagers are online and follow their nodes.
    Online,
    /// No new containers; running ones are being freed.
    Draining,
    /// No NodeManagers run (outside a `Periodic` window, or `OnDemand` with zero).
    Offline,
    /// The spec is invalid or something keeps failing; see the conditions.
    Degraded,
}

/// One NodeManager of the pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeManagerStatus {
    /// Kubernetes node.
    pub node: String,
    /// NodeManager pod.
    pub pod: String,
    /// Pod IP (the static IP when the pool has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// YARN node id (`host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yarn_node_id: Option<String>,
    /// YARN capacity set on the RM.
    pub capacity: Resources,
    /// YARN resources allocated to containers.
    pub used: Resources,
    /// State of this NodeManager.
    pub state: NodeManagerState,
    /// What keeps failing for this NodeManager alone (the pool's other NMs go on); cleared once
    /// the step works again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<NodeManagerProblem>,
}

/// A failing step of one NodeManager.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeManagerProblem {
    /// The step: `Create`, `Label`, `Drain`, `Removal` (reconcile), `Resize`, `Metrics`
    /// (vertical loop), `Schedule` (the scheduler cannot place the pod; category
    /// `unschedulable`, the scheduler's message), `Start` (the kubelet cannot start it:
    /// `init_failed` when the `hadoop-conf` init container failed, else the waiting reason such
    /// as `image_pull_back_off` or `crash_loop_back_off`).
    pub step: String,
    /// Stable error category, as in the `elastic_yarn_operator_failures_total` metric.
    pub category: String,
    /// What failed.
    pub message: String,
}

/// State of one NodeManager.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum NodeManagerState {
    /// Pod created, NodeManager not yet registered with the RM.
    Starting,
    /// Registered and following its node.
    Running,
    /// Capacity zero; containers are being freed.
    Draining,
    /// The pod was evicted (Koordinator) or failed.
    Evicted,
}

/// Sums over the pool's NodeManagers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolTotals {
    /// NodeManagers running.
    pub node_managers: u32,
    /// YARN capacity offered.
    pub capacity: Resources,
    /// YARN resources allocated.
    pub used: Resources,
}
