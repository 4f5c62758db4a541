//! The `ElasticNodePool` custom resource (`elasticyarn.io/v1alpha1`, short name `enp`).
//!
//! What the schema can check (types, ranges, required fields, floor ≤ ceiling, the sub-struct a
//! mode needs) it checks with OpenAPI and CEL rules, so `kubectl apply` refuses a bad object
//! outright. What it cannot check (cron syntax, time zones, windows that overlap) is left to
//! [`crate::validate`], which reports it as a `Ready=False` condition.

mod status;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Toleration};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use status::{
    ElasticNodePoolStatus, NodeManagerProblem, NodeManagerState, NodeManagerStatus, PoolPhase,
    PoolTotals,
};

/// API group of every elastic-yarn resource.
pub const API_GROUP: &str = "elasticyarn.io";
/// API version of `ElasticNodePool`.
pub const API_VERSION: &str = "v1alpha1";

/// A pool of YARN NodeManagers run in pods on Kubernetes nodes shared with online services,
/// each sized moment by moment to what its node can give to batch work.
#[allow(
    clippy::duplicated_attributes,
    reason = "every printcolumn(...) of kube's derive names its own type_"
)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "elasticyarn.io",
    version = "v1alpha1",
    kind = "ElasticNodePool",
    plural = "elasticnodepools",
    singular = "elasticnodepool",
    shortname = "enp",
    category = "elasticyarn",
    namespaced,
    cel,
    status = "ElasticNodePoolStatus",
    doc = "A pool of YARN NodeManagers on shared Kubernetes nodes, sized to what each node can give to batch work.",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.lifecycle.mode"),
    printcolumn(
        name = "Policy",
        type_ = "string",
        json_path = ".spec.elasticity.policy"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "NMs",
        type_ = "integer",
        json_path = ".status.totals.nodeManagers"
    ),
    printcolumn(
        name = "VCores",
        type_ = "integer",
        description = "YARN vcores offered by the pool's NodeManagers",
        json_path = ".status.totals.capacity.vcores"
    ),
    printcolumn(
        name = "Used",
        type_ = "integer",
        description = "YARN vcores allocated to containers",
        json_path = ".status.totals.used.vcores"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Next",
        type_ = "date",
        priority = "1",
        description = "Next scheduled online, drain or offline time",
        json_path = ".status.nextTransition"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ElasticNodePoolSpec {
    /// The YARN ResourceManager(s) the NodeManagers join.
    pub resource_manager: ResourceManagerSpec,
    /// How the NodeManager pods are made.
    pub node_manager: NodeManagerSpec,
    /// Which Kubernetes nodes are eligible.
    #[serde(default)]
    pub placement: PlacementSpec,
    /// Fixed addresses from a `StaticIPPool` (YARN host whitelists and Kerberos need stable
    /// host names).
    #[serde(rename = "staticIP", default, skip_serializing_if = "Option::is_none")]
    pub static_ip: Option<StaticIpRef>,
    /// Smallest and largest YARN capacity of each NodeManager.
    pub capacity: CapacitySpec,
    /// When the pool's NodeManagers are online.
    #[serde(default)]
    pub lifecycle: LifecycleSpec,
    /// How each NodeManager follows its node's batch capacity.
    #[serde(default)]
    pub elasticity: ElasticitySpec,
    /// How containers are freed when a NodeManager shrinks.
    #[serde(default)]
    pub guarder: GuarderSpec,
    /// How Koordinator learns what YARN uses on the node.
    #[serde(default)]
    pub koordinator: KoordinatorSpec,
    /// Fluid Datasets to mount into every NodeManager (a PVC of the same name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub datasets: Vec<DatasetMount>,
    /// Remote shuffle, so that a NodeManager can leave without losing shuffle data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle: Option<ShuffleSpec>,
}

/// Where the ResourceManager is and how to authenticate to it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceManagerSpec {
    /// Web addresses of the RMs (`http(s)://host:port`); with HA, list every RM: the active one
    /// is found and followed.
    #[schemars(length(min = 1, max = 8))]
    pub addresses: Vec<String>,
    /// Authentication to the RM's REST API.
    #[serde(default)]
    pub auth: RmAuthSpec,
    /// `yarn.resourcemanager.cluster-id`, for the admin's reference only: the RM's REST API does
    /// not report it, so the operator neither shows nor checks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

/// Authentication to the RM: `Simple` (a `user.name`) or `Kerberos` (SPNEGO from a keytab).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.mode != 'Simple' || (has(self.user) && size(self.user) > 0)")
        .message("auth.user is required when auth.mode is Simple"),
    validation = Rule::new("self.mode != 'Kerberos' || has(self.kerberos)")
        .message("auth.kerberos is required when auth.mode is Kerberos")
)]
pub struct RmAuthSpec {
    /// `Simple` or `Kerberos`.
    #[serde(default)]
    pub mode: RmAuthMode,
    /// User name sent as `user.name` (Simple); it must be allowed to change node resources.
    #[serde(default = "default_rm_user", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Principal and keytab for SPNEGO (Kerberos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kerberos: Option<KerberosAuthSpec>,
}

impl Default for RmAuthSpec {
    fn default() -> Self {
        RmAuthSpec {
            mode: RmAuthMode::Simple,
            user: default_rm_user(),
            kerberos: None,
        }
    }
}

// An Option because serde fills the optional `user` field with it.
fn default_rm_user() -> Option<String> {
    Some("yarn".to_owned())
}

/// How the operator authenticates to the RM.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RmAuthMode {
    /// `?user.name=` on every call.
    #[default]
    Simple,
    /// SPNEGO with a keytab; the `hadoop.auth` cookie is reused afterwards.
    Kerberos,
}

/// A Kerberos principal and the Secret holding its keytab.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KerberosAuthSpec {
    /// Client principal, e.g. `elastic-yarn@EXAMPLE.COM`.
    #[schemars(length(min = 1))]
    pub principal: String,
    /// Secret (in the pool's namespace) holding the keytab.
    pub keytab_secret: SecretKeyRef,
}

/// A key of a Secret in the pool's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret.
    #[serde(default = "default_keytab_key")]
    pub key: String,
}

fn default_keytab_key() -> String {
    "keytab".to_owned()
}

/// How NodeManager pods are made.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeManagerSpec {
    /// Container image with Hadoop's NodeManager.
    #[schemars(length(min = 1))]
    pub image: String,
    /// ConfigMap with `yarn-site.xml`, `core-site.xml` and the rest of the Hadoop configuration.
    #[schemars(length(min = 1, max = 253))]
    pub config_map: String,
    /// YARN node label put on the pool's NodeManagers (created non-exclusive).
    #[serde(default = "default_node_label")]
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[0-9a-zA-Z][0-9a-zA-Z_-]*$")
    )]
    pub node_label: String,
    /// Fixed NodeManager ports, so that the YARN node id (`host:port`) is stable.
    #[serde(default)]
    pub ports: NodeManagerPorts,
    /// YARN's cgroup hierarchy on the node, for an NM image whose LinuxContainerExecutor puts
    /// YARN's containers in cgroups (e.g. `/kubepods.slice/kubepods-besteffort.slice/hadoop-yarn`):
    /// written into the NM's `yarn.nodemanager.linux-container-executor.cgroups.hierarchy`, and
    /// the guarder reads each container's use there, from the node's cgroup filesystem mounted
    /// read-only. Unset: YARN's containers are the NM's child processes (the default executor)
    /// and the guarder measures them from `/proc`. The exporter's `--yarn-cgroup` (chart
    /// `koordletMetrics.yarnCgroups`) must name the same hierarchy, without the leading `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 1024),
        regex(pattern = r"^(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)+$")
    )]
    pub yarn_cgroup: Option<String>,
}

fn default_node_label() -> String {
    "elastic".to_owned()
}

/// NodeManager ports; fixed so that node ids survive pod restarts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.rpc != self.web && self.rpc != self.localizer && self.web != self.localizer")
        .message("NodeManager ports must differ from each other")
)]
pub struct NodeManagerPorts {
    /// `yarn.nodemanager.address` port: part of the YARN node id.
    #[serde(default = "default_rpc_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub rpc: u16,
    /// `yarn.nodemanager.webapp.address` port.
    #[serde(default = "default_web_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub web: u16,
    /// `yarn.nodemanager.localizer.address` port.
    #[serde(default = "default_localizer_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub localizer: u16,
}

const fn default_rpc_port() -> u16 {
    45454
}
const fn default_web_port() -> u16 {
    8042
}
const fn default_localizer_port() -> u16 {
    8040
}

impl Default for NodeManagerPorts {
    fn default() -> Self {
        NodeManagerPorts {
            rpc: default_rpc_port(),
            web: default_web_port(),
            localizer: default_localizer_port(),
        }
    }
}

/// Which Kubernetes nodes may run the pool's NodeManagers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSpec {
    /// Node labels an eligible node must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the NodeManager pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity of the NodeManager pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

/// Reference to a cluster-scoped `StaticIPPool`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticIpRef {
    /// Name of the `StaticIPPool`.
    #[schemars(length(min = 1, max = 253))]
    pub pool: String,
}

pub use yarn_types::Resources;

/// Smallest and largest capacity of each NodeManager.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.floor.vcores <= self.ceiling.vcores")
        .message("capacity.floor.vcores must not exceed capacity.ceiling.vcores"),
    validation = Rule::new("self.floor.memoryMb <= self.ceiling.memoryMb")
        .message("capacity.floor.memoryMb must not exceed capacity.ceiling.memoryMb"),
    validation = Rule::new("self.ceiling.vcores > 0 && self.ceiling.memoryMb > 0")
        .message("capacity.ceiling must be positive in vcores and memoryMb")
)]
pub struct CapacitySpec {
    /// Capacity never gone below while the NodeManager is online (0 lets it drain fully).
    #[serde(default)]
    pub floor: Resources,
    /// Capacity never exceeded.
    pub ceiling: Resources,
    /// Memory given per vcore (MiB); YARN containers here use about 1 vcore : 4 GiB.
    #[serde(default = "default_memory_per_vcore_mb")]
    #[schemars(range(min = 128, max = 1_048_576))]
    pub memory_per_vcore_mb: u32,
}

const fn default_memory_per_vcore_mb() -> u32 {
    4096
}

/// When the pool's NodeManagers are online.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.mode != 'Periodic' || has(self.periodic)")
        .message("lifecycle.periodic is required when lifecycle.mode is Periodic"),
    validation = Rule::new("self.mode != 'OnDemand' || has(self.onDemand)")
        .message("lifecycle.onDemand is required when lifecycle.mode is OnDemand")
)]
pub struct LifecycleSpec {
    /// `Resident` (always on), `Periodic` (cron windows) or `OnDemand` (a requested count).
    #[serde(default)]
    pub mode: LifecycleMode,
    /// Windows of a `Periodic` pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic: Option<PeriodicSpec>,
    /// Requested size of an `OnDemand` pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand: Option<OnDemandSpec>,
}

/// Lifecycle modes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum LifecycleMode {
    /// Always online; only vertical elasticity.
    #[default]
    Resident,
    /// Online in cron windows (online, drain start, offline) in a time zone.
    Periodic,
    /// A requested number of NodeManagers, online until the request changes.
    OnDemand,
}

/// Cron windows of a `Periodic` pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeriodicSpec {
    /// IANA time zone the cron expressions are read in, e.g. `Asia/Shanghai`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Windows; they must not overlap.
    #[schemars(length(min = 1, max = 16))]
    pub windows: Vec<ScheduleWindow>,
    /// Dates (`YYYY-MM-DD`, in the time zone) on which no window opens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 366))]
    pub excluded_dates: Vec<String>,
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

/// One online window: three standard five-field cron expressions.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleWindow {
    /// When NodeManagers come online, e.g. `0 22 * * *`.
    #[schemars(length(min = 1))]
    pub online: String,
    /// When draining starts (no new containers; running ones are freed gracefully).
    #[schemars(length(min = 1))]
    pub drain_start: String,
    /// When NodeManagers are removed, e.g. `0 7 * * *`.
    #[schemars(length(min = 1))]
    pub offline: String,
}

/// Requested size of an `OnDemand` pool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnDemandSpec {
    /// Number of NodeManagers wanted.
    #[schemars(range(max = 100_000))]
    pub node_managers: u32,
}

/// Resize policies an admin can choose.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyName {
    /// Fixed capacity (`elasticity.staticCapacity`).
    Static,
    /// Capacity = latest Koordinator batch allocatable, no smoothing.
    Follow,
    /// The published rule: 10-minute mean, grow past +3 vcores, ignore shrink within 10%.
    Threshold,
    /// elastic-yarn's policy (see docs/policy.md).
    #[default]
    Elastic,
}

/// Where the windowed availability metrics come from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MetricsSourceKind {
    /// Straight from each node's koordlet-metrics exporter (`GET /v1/windows`).
    #[default]
    Exporter,
    /// From Prometheus' HTTP API.
    Prometheus,
}

/// Where the windowed availability metrics come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.source != 'Prometheus' || has(self.prometheusUrl)")
        .message("metrics.prometheusUrl is required when metrics.source is Prometheus")
)]
pub struct MetricsSourceSpec {
    /// `Exporter` or `Prometheus`.
    #[serde(default)]
    pub source: MetricsSourceKind,
    /// Prometheus base URL, e.g. `http://prometheus.monitoring:9090`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_url: Option<String>,
    /// Port of the koordlet-metrics exporter on each node.
    #[serde(default = "default_exporter_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub exporter_port: u16,
}

const fn default_exporter_port() -> u16 {
    9320
}

impl Default for MetricsSourceSpec {
    fn default() -> Self {
        MetricsSourceSpec {
            source: MetricsSourceKind::Exporter,
            prometheus_url: None,
            exporter_port: default_exporter_port(),
        }
    }
}

/// Window span a policy reads.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum WindowName {
    /// One minute.
    #[serde(rename = "1m")]
    OneMinute,
    /// Five minutes.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// Ten minutes.
    #[default]
    #[serde(rename = "10m")]
    TenMinutes,
}

/// Statistic a policy reads from its window.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatisticName {
    /// Mean.
    #[default]
    Mean,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
}

/// How each NodeManager follows its node's batch capacity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElasticitySpec {
    /// Resize policy.
    #[serde(default)]
    pub policy: PolicyName,
    /// Where availability metrics come from.
    #[serde(default)]
    pub metrics: MetricsSourceSpec,
    /// Window the `threshold` policy reads.
    #[serde(default)]
    pub window: WindowName,
    /// Statistic the `threshold` policy reads.
    #[serde(default)]
    pub statistic: StatisticName,
    /// Grow only when availability exceeds capacity by more than this (`threshold`).
    #[serde(default = "default_scale_up_threshold")]
    #[schemars(range(max = 1024))]
    pub scale_up_threshold_vcores: u32,
    /// Ignore shrinks smaller than this share of the current capacity.
    #[serde(default = "default_shrink_tolerance")]
    #[schemars(range(max = 100))]
    pub shrink_tolerance_percent: u32,
    /// Seconds between two decisions for a NodeManager.
    #[serde(default = "default_sync_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub sync_interval_seconds: u32,
    /// Minimum seconds between a shrink and the next grow.
    #[serde(default = "default_grow_cooldown")]
    #[schemars(range(max = 86_400))]
    pub grow_cooldown_seconds: u32,
    /// Metrics older than this are stale: never grow on them.
    #[serde(default = "default_stale_after")]
    #[schemars(range(min = 1, max = 86_400))]
    pub stale_after_seconds: u32,
    /// After metrics have been stale this long, shrink to the floor.
    #[serde(default = "default_shrink_to_floor_after")]
    #[schemars(range(min = 1, max = 86_400))]
    pub shrink_to_floor_after_seconds: u32,
    /// Capacity of the `static` policy.
    #[serde(default = "default_static_capacity")]
    pub static_capacity: Resources,
}

const fn default_scale_up_threshold() -> u32 {
    3
}
const fn default_shrink_tolerance() -> u32 {
    10
}
const fn default_sync_interval() -> u32 {
    15
}
const fn default_grow_cooldown() -> u32 {
    60
}
const fn default_stale_after() -> u32 {
    60
}
const fn default_shrink_to_floor_after() -> u32 {
    600
}
/// The published phase-two setup: 10 vcores and 30 GiB per NodeManager.
const fn default_static_capacity() -> Resources {
    Resources {
        vcores: 10,
        memory_mb: 30 * 1024,
    }
}

impl Default for ElasticitySpec {
    fn default() -> Self {
        ElasticitySpec {
            policy: PolicyName::default(),
            metrics: MetricsSourceSpec::default(),
            window: WindowName::default(),
            statistic: StatisticName::default(),
            scale_up_threshold_vcores: default_scale_up_threshold(),
            shrink_tolerance_percent: default_shrink_tolerance(),
            sync_interval_seconds: default_sync_interval(),
            grow_cooldown_seconds: default_grow_cooldown(),
            stale_after_seconds: default_stale_after(),
            shrink_to_floor_after_seconds: default_shrink_to_floor_after(),
            static_capacity: default_static_capacity(),
        }
    }
}

/// What happens to ApplicationMasters when an NM must shrink.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ApplicationMasterPolicy {
    /// Chosen only when every other container together cannot free enough.
    #[default]
    LastResort,
    /// Never signalled; the NM may stay above its target.
    Never,
}

/// How the guarder sidecar frees containers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuarderSpec {
    /// Guarder image; the chart's default when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Seconds a signalled container gets before SIGKILL.
    #[serde(default = "default_grace_period")]
    #[schemars(range(min = 1, max = 86_400))]
    pub grace_period_seconds: u32,
    /// Spark runs with `spark.decommission.enabled=true`, so executors get SIGPWR and leave
    /// gracefully; every other container gets SIGTERM.
    #[serde(default = "default_true")]
    pub spark_decommission: bool,
    /// What happens to ApplicationMasters.
    #[serde(default)]
    pub application_masters: ApplicationMasterPolicy,
    /// Port of the guarder's HTTP API.
    #[serde(default = "default_guarder_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// The user and group the NodeManager and its YARN containers run as, for NMs whose
    /// containers run as the NM's own user (DefaultContainerExecutor). Both containers of the
    /// pod then run as them, and the guarder needs no capability at all: it reads the
    /// containers' environment and signals them as their owner (the pod passes Pod Security
    /// `baseline`). Unset: the guarder keeps `KILL` and `SYS_PTRACE` to find and signal
    /// containers that run as other users (LinuxContainerExecutor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<RunAs>,
}

/// A non-root user and its group, by number.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub struct RunAs {
    /// User id (not root).
    #[schemars(range(min = 1, max = 2_147_483_647))]
    pub user: i64,
    /// Group id.
    #[schemars(range(min = 0, max = 2_147_483_647))]
    pub group: i64,
}

const fn default_grace_period() -> u32 {
    60
}
const fn default_true() -> bool {
    true
}
const fn default_guarder_port() -> u16 {
    9321
}

impl Default for GuarderSpec {
    fn default() -> Self {
        GuarderSpec {
            image: None,
            grace_period_seconds: default_grace_period(),
            spark_decommission: true,
            application_masters: ApplicationMasterPolicy::default(),
            port: default_guarder_port(),
            run_as: None,
        }
    }
}

/// How Koordinator accounts for what YARN uses (docs/architecture.md, contract 6).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AccountingMode {
    /// NM pods request batch-cpu/batch-memory at the pool ceiling (simple; reserves the ceiling).
    #[default]
    PodRequests,
    /// NM containers carry no resources (no cap YARN's containers would share); the node
    /// annotation `node.koordinator.sh/thirdPartyAllocations` carries YARN's current
    /// allocation plus the NM daemon's 1 core and 2 GiB.
    ThirdParty,
}

/// Koordinator integration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KoordinatorSpec {
    /// `PodRequests` or `ThirdParty`.
    #[serde(default)]
    pub accounting: AccountingMode,
}

/// A Fluid Dataset mounted into every NodeManager.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.mountPath.startsWith('/')")
        .message("datasets[].mountPath must be an absolute path")
)]
pub struct DatasetMount {
    /// Dataset name (and PVC name) in the pool's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Where the dataset appears inside the NodeManager and its containers.
    #[schemars(length(min = 1, max = 4096))]
    pub mount_path: String,
    /// For `Periodic` pools: the Fluid cache runtime (named like the Dataset) scaled up before
    /// each online window and to zero after the offline time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<DatasetCacheSpec>,
}

/// How a dataset's cache follows a `Periodic` pool's windows.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetCacheSpec {
    /// Kind of the Fluid runtime, e.g. `AlluxioRuntime`, `JindoRuntime`, `JuiceFSRuntime`.
    pub runtime: FluidRuntimeKind,
    /// Cache workers while the pool is online.
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: i32,
    /// Scale up this long before the online window opens.
    #[serde(default = "default_warm_up_seconds")]
    #[schemars(range(max = 86_400))]
    pub warm_up_seconds: u32,
    /// Also start a Fluid `DataLoad` of the whole dataset when scaling up.
    #[serde(default)]
    pub data_load: bool,
}

const fn default_warm_up_seconds() -> u32 {
    600
}

/// Fluid cache runtimes (each has a `scale` subresource).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum FluidRuntimeKind {
    /// `alluxioruntimes.data.fluid.io`
    AlluxioRuntime,
    /// `jindoruntimes.data.fluid.io`
    JindoRuntime,
    /// `juicefsruntimes.data.fluid.io`
    JuiceFSRuntime,
    /// `goosefsruntimes.data.fluid.io`
    GooseFSRuntime,
    /// `efcruntimes.data.fluid.io`
    EFCRuntime,
}

impl FluidRuntimeKind {
    /// The resource's plural name.
    pub fn plural(self) -> &'static str {
        match self {
            FluidRuntimeKind::AlluxioRuntime => "alluxioruntimes",
            FluidRuntimeKind::JindoRuntime => "jindoruntimes",
            FluidRuntimeKind::JuiceFSRuntime => "juicefsruntimes",
            FluidRuntimeKind::GooseFSRuntime => "goosefsruntimes",
            FluidRuntimeKind::EFCRuntime => "efcruntimes",
        }
    }
}

/// Remote shuffle settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShuffleSpec {
    /// Apache Uniffle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniffle: Option<UniffleSpec>,
}

/// Apache Uniffle coordinators.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UniffleSpec {
    /// Coordinator quorum, `host:port` each.
    #[schemars(length(min = 1, max = 16))]
    pub coordinators: Vec<String>,
}
