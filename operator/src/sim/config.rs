//! Parameters of a simulation run. Every field is written into `report.json`, so a report says
//! exactly what produced it.

use serde::{Deserialize, Serialize};

use crate::policy::{ElasticTuning, PolicyKind};

/// How Koordinator's koordlet limits batch CPU on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SuppressPolicy {
    /// Whole CPUs in the BE cpuset, at least 2 (Koordinator's default).
    Cpuset,
    /// A CFS quota on the BE cgroup, fractional cores.
    CfsQuota,
}

/// Koordinator's node-side behaviour (docs/architecture.md, contract 1, and koordlet's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KoordinatorModel {
    /// `cpuSuppressThresholdPercent`: batch CPU = this share of the node minus online use.
    pub cpu_suppress_threshold: f64,
    /// How the limit is applied.
    pub suppress_policy: SuppressPolicy,
    /// koordlet raises the limit by at most this share of the node per second.
    pub max_increase_per_second: f64,
    /// `memoryEvictThresholdPercent`: the NM is evicted when node memory use passes this share.
    pub memory_evict_threshold: f64,
    /// `cpuEvictBESatisfactionLowerPercent`: evict when limit / allocation stays at or below.
    pub cpu_evict_satisfaction_lower: f64,
    /// `cpuEvictBEUsageThresholdPercent`: ... while batch use is at least this share of the limit.
    pub cpu_evict_usage_threshold: f64,
    /// `cpuEvictTimeWindowSeconds`: the window both averages are taken over.
    pub cpu_evict_window_seconds: u32,
    /// `cpuReclaimThresholdPercent` and `memoryReclaimThresholdPercent` of koord-manager: batch
    /// allocatable = this share of the node minus online use.
    pub reclaim_threshold: f64,
    /// koord-manager refreshes the node's batch allocatable this often.
    pub allocatable_update_seconds: u32,
    /// Seconds before an evicted NodeManager pod is back.
    pub nm_restart_seconds: u32,
}

impl Default for KoordinatorModel {
    fn default() -> Self {
        KoordinatorModel {
            cpu_suppress_threshold: 0.65,
            suppress_policy: SuppressPolicy::Cpuset,
            max_increase_per_second: 0.10,
            memory_evict_threshold: 0.70,
            cpu_evict_satisfaction_lower: 0.60,
            cpu_evict_usage_threshold: 0.90,
            cpu_evict_window_seconds: 60,
            reclaim_threshold: 0.65,
            allocatable_update_seconds: 60,
            nm_restart_seconds: 120,
        }
    }
}

/// A log-normal duration: median and the standard deviation of its logarithm, capped.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationModel {
    /// Median, seconds.
    pub median_seconds: f64,
    /// Standard deviation of ln(duration).
    pub sigma: f64,
    /// Longest allowed, seconds.
    pub max_seconds: f64,
}

/// The synthetic Spark and MapReduce workload the YARN scheduler places.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadModel {
    /// Share of applications that are Spark (the rest are MapReduce).
    pub spark_share: f64,
    /// Share of applications whose AM runs on the pool (the rest run it on the main cluster,
    /// as `am.default-node-label-expression` would).
    pub am_on_pool_share: f64,
    /// Smallest and largest number of executors of a Spark application.
    pub spark_executors: (u32, u32),
    /// Executor sizes in vcores, chosen uniformly.
    pub executor_vcores: [u32; 2],
    /// How long an executor works at full speed.
    pub executor_runtime: DurationModel,
    /// Length of a Spark task: what a forced kill loses and how long decommissioning takes.
    pub spark_task: DurationModel,
    /// Smallest and largest number of tasks of a MapReduce job.
    pub mapreduce_tasks: (u32, u32),
    /// How long a MapReduce task works at full speed (its work is lost when it is stopped).
    pub mapreduce_task_runtime: DurationModel,
    /// Seconds between an AM's start and its first requests.
    pub am_startup_seconds: u32,
    /// Share of containers that ignore SIGTERM and decommissioning (stuck JVMs).
    pub stubborn_share: f64,
    /// Seconds a container takes to exit after SIGTERM.
    pub terminate_exit_seconds: u32,
    /// Seconds of overhead of a Spark decommission after its last task.
    pub decommission_overhead_seconds: u32,
    /// Pending demand kept, as a share of the pool's total ceiling (there is always a backlog).
    pub backlog_share: f64,
}

impl Default for WorkloadModel {
    fn default() -> Self {
        WorkloadModel {
            spark_share: 0.7,
            am_on_pool_share: 0.25,
            spark_executors: (2, 16),
            executor_vcores: [2, 4],
            executor_runtime: DurationModel {
                median_seconds: 720.0,
                sigma: 0.8,
                max_seconds: 7200.0,
            },
            spark_task: DurationModel {
                median_seconds: 30.0,
                sigma: 0.7,
                max_seconds: 600.0,
            },
            mapreduce_tasks: (4, 48),
            mapreduce_task_runtime: DurationModel {
                median_seconds: 90.0,
                sigma: 0.9,
                max_seconds: 1800.0,
            },
            am_startup_seconds: 10,
            stubborn_share: 0.01,
            terminate_exit_seconds: 2,
            decommission_overhead_seconds: 2,
            backlog_share: 0.3,
        }
    }
}

/// How each node's online load is derived from the trace.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeVariety {
    /// Each node's trace is shifted by up to this many seconds either way.
    pub max_offset_seconds: u32,
    /// Range of the factor on the trace's CPU percentage.
    pub cpu_scale: (f64, f64),
    /// Range of the factor on the trace's memory percentage.
    pub memory_scale: (f64, f64),
    /// The trace's memory percentage (a whole data center, batch included) times this is the
    /// online services' share of node memory.
    pub online_memory_factor: f64,
    /// Standard deviation of the per-second CPU noise, percentage points of the node.
    pub cpu_noise_points: f64,
    /// Standard deviation of the per-second memory noise, percentage points of the node.
    pub memory_noise_points: f64,
    /// Autocorrelation of the noise from one second to the next.
    pub noise_correlation: f64,
    /// Probability that a node's exporter has one outage during the run.
    pub metrics_outage_probability: f64,
    /// Shortest and longest outage, seconds.
    pub metrics_outage_seconds: (u32, u32),
}

impl Default for NodeVariety {
    fn default() -> Self {
        NodeVariety {
            max_offset_seconds: 1800,
            cpu_scale: (0.8, 1.15),
            memory_scale: (0.9, 1.1),
            online_memory_factor: 0.4,
            cpu_noise_points: 3.0,
            memory_noise_points: 0.5,
            noise_correlation: 0.98,
            metrics_outage_probability: 0.1,
            metrics_outage_seconds: (300, 1200),
        }
    }
}

/// Everything a run depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimConfig {
    /// Nodes in the pool (one NodeManager each).
    pub nodes: usize,
    /// CPU cores per node.
    pub node_cores: u32,
    /// Memory per node, GiB.
    pub node_memory_gib: u32,
    /// Simulated time, seconds.
    pub duration_seconds: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Policies run side by side.
    pub policies: Vec<PolicyKind>,
    /// Seconds between two decisions of the operator.
    pub sync_seconds: u32,
    /// Seconds a signalled container gets before SIGKILL.
    pub grace_period_seconds: u32,
    /// Spark runs with decommissioning on (executors get SIGPWR).
    pub spark_decommission: bool,
    /// Memory per vcore, MiB.
    pub memory_per_vcore_mb: u32,
    /// Floor of each NM, vcores.
    pub floor_vcores: u32,
    /// Ceiling of each NM, vcores (0: the node's suppress threshold).
    pub ceiling_vcores: u32,
    /// `threshold`: scale-up threshold, vcores.
    pub scale_up_threshold_vcores: u32,
    /// `threshold` and `elastic`: shrink tolerance, share.
    pub shrink_tolerance: f64,
    /// Tuning of the `elastic` policy.
    pub elastic: ElasticTuning,
    /// Koordinator's behaviour.
    pub koordinator: KoordinatorModel,
    /// The workload.
    pub workload: WorkloadModel,
    /// How nodes differ.
    pub variety: NodeVariety,
    /// RM writes per second of the operator's loop (its `--rm-writes-per-second`).
    #[serde(default = "default_rm_writes_per_second")]
    pub rm_writes_per_second: f64,
    /// RM writes at once of the operator's loop.
    #[serde(default = "default_rm_write_burst")]
    pub rm_write_burst: u32,
}

fn default_rm_writes_per_second() -> f64 {
    crate::vertical::DEFAULT_RM_WRITES_PER_SECOND
}

fn default_rm_write_burst() -> u32 {
    crate::vertical::DEFAULT_RM_WRITE_BURST
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 50,
            node_cores: 64,
            node_memory_gib: 256,
            duration_seconds: 24 * 3600,
            seed: 42,
            policies: PolicyKind::ALL.to_vec(),
            sync_seconds: 15,
            grace_period_seconds: 60,
            spark_decommission: true,
            memory_per_vcore_mb: 4096,
            floor_vcores: 0,
            ceiling_vcores: 0,
            scale_up_threshold_vcores: 3,
            shrink_tolerance: 0.10,
            elastic: ElasticTuning::default(),
            koordinator: KoordinatorModel::default(),
            workload: WorkloadModel::default(),
            variety: NodeVariety::default(),
            rm_writes_per_second: default_rm_writes_per_second(),
            rm_write_burst: default_rm_write_burst(),
        }
    }
}

/// A configuration that cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid simulation settings: {0}")]
pub struct ConfigError(pub String);

impl SimConfig {
    /// The NM ceiling in vcores: the configured one, or what the suppress threshold allows.
    pub fn ceiling(&self) -> u32 {
        if self.ceiling_vcores > 0 {
            self.ceiling_vcores
        } else {
            // Truncation wanted: whole vcores under the threshold.
            (f64::from(self.node_cores) * self.koordinator.cpu_suppress_threshold).floor() as u32
        }
    }

    /// Checks the settings that would make a run meaningless or impossible.
    pub fn check(&self) -> Result<(), ConfigError> {
        let fail = |message: &str| Err(ConfigError(message.to_owned()));
        if self.nodes == 0 || self.nodes > 100_000 {
            return fail("--nodes must be between 1 and 100000");
        }
        if self.node_cores == 0 || self.node_memory_gib == 0 {
            return fail("nodes need at least one core and 1 GiB of memory");
        }
        if self.duration_seconds < 60 {
            return fail("--duration must be at least one minute");
        }
        if self.policies.is_empty() {
            return fail("--policies names no policy");
        }
        if self.sync_seconds == 0 || self.sync_seconds > 3600 {
            return fail("--sync-seconds must be between 1 and 3600");
        }
        if self.grace_period_seconds == 0 {
            return fail("--grace-seconds must be at least 1");
        }
        if self.memory_per_vcore_mb == 0 {
            return fail("memory per vcore must be positive");
        }
        if self.floor_vcores > self.ceiling() {
            return fail("the floor exceeds the ceiling");
        }
        if !(0.0..=1.0).contains(&self.shrink_tolerance) {
            return fail("the shrink tolerance is a share between 0 and 1");
        }
        let k = &self.koordinator;
        if !(0.0..=1.0).contains(&k.cpu_suppress_threshold)
            || !(0.0..=1.0).contains(&k.memory_evict_threshold)
        {
            return fail("Koordinator thresholds are shares between 0 and 1");
        }
        let w = &self.workload;
        if w.spark_executors.0 == 0
            || w.spark_executors.0 > w.spark_executors.1
            || w.mapreduce_tasks.0 == 0
            || w.mapreduce_tasks.0 > w.mapreduce_tasks.1
        {
            return fail("application sizes need 1 <= min <= max");
        }
        if w.executor_vcores.contains(&0) {
            return fail("executors need at least one vcore");
        }
        Ok(())
    }
}
