//! The resize policy engine: how large each NodeManager should be, now.
//!
//! Pure and allocation-free: a decision is a function of a [`DecisionInput`] (windowed
//! availability of the node, the NM's capacity and allocation, times of its last changes) and the
//! pool's [`PolicySettings`]. Every policy implements [`ResizePolicy`] and only *proposes* a
//! capacity; [`decide`] applies the rules every policy shares:
//!
//! * metrics older than `stale_after` never lead to growth; after `shrink_to_floor_after` the NM
//!   goes to its floor;
//! * capacity stays within `[floor, ceiling]`, memory follows vcores at the pool's ratio;
//! * a shrink tells the guarder what running containers may keep only when they hold more.

mod elastic;
mod follow;
mod oracle;
mod static_capacity;
mod threshold;

use std::fmt;
use std::str::FromStr;

use koordlet_metrics::{WindowSet, WindowSpan, WindowStats};
use serde::{Deserialize, Serialize};

pub use elastic::{ElasticPolicy, ElasticTuning};
pub use follow::FollowPolicy;
pub use oracle::OraclePolicy;
pub use static_capacity::StaticPolicy;
pub use threshold::ThresholdPolicy;

pub use yarn_types::Resources;

/// Smallest and largest capacity of an NM, and memory per vcore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityBounds {
    /// Never below this.
    pub floor: Resources,
    /// Never above this.
    pub ceiling: Resources,
    /// Memory (MiB) that goes with each vcore.
    pub memory_per_vcore_mb: u64,
}

impl CapacityBounds {
    /// The capacity of an NM offering `vcores`: vcores within the bounds, memory at the pool's
    /// ratio, both within the bounds.
    pub fn capacity_for_vcores(&self, vcores: u32) -> Resources {
        let vcores = vcores.clamp(
            self.floor.vcores,
            self.ceiling.vcores.max(self.floor.vcores),
        );
        let memory = u64::from(vcores)
            .saturating_mul(self.memory_per_vcore_mb)
            .clamp(
                self.floor.memory_mb,
                self.ceiling.memory_mb.max(self.floor.memory_mb),
            );
        Resources::new(vcores, memory)
    }

    /// `r` moved inside the bounds, dimension by dimension.
    pub fn clamp(&self, r: Resources) -> Resources {
        Resources::new(
            r.vcores.clamp(
                self.floor.vcores,
                self.ceiling.vcores.max(self.floor.vcores),
            ),
            r.memory_mb.clamp(
                self.floor.memory_mb,
                self.ceiling.memory_mb.max(self.floor.memory_mb),
            ),
        )
    }

    /// Vcores that `cpu_cores` of CPU and `memory_mb` of memory can carry together (either can be
    /// the limit), never negative.
    pub fn supportable_vcores(&self, cpu_cores: f64, memory_mb: f64) -> f64 {
        // `f64::min` drops a NaN and would let the other value through: an unreadable input
        // supports nothing.
        if cpu_cores.is_nan() || memory_mb.is_nan() {
            return 0.0;
        }
        let by_memory = memory_mb / self.memory_per_vcore_mb.max(1) as f64;
        cpu_cores.min(by_memory).max(0.0)
    }
}

/// A window statistic a policy can read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    /// Mean.
    #[default]
    Mean,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
}

impl Statistic {
    /// The value of this statistic in `stats`.
    pub const fn of(self, stats: &WindowStats) -> f64 {
        match self {
            Statistic::Mean => stats.mean,
            Statistic::Min => stats.min,
            Statistic::Max => stats.max,
        }
    }
}

/// Settings of a pool that every policy reads.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySettings {
    /// Floor, ceiling and memory per vcore.
    pub bounds: CapacityBounds,
    /// `threshold`: grow only when availability exceeds capacity by more than this.
    pub scale_up_threshold_vcores: u32,
    /// Ignore shrinks smaller than this share of the current capacity (0.10 = 10%).
    pub shrink_tolerance: f64,
    /// Window read by `threshold`.
    pub window: WindowSpan,
    /// Statistic read by `threshold`.
    pub statistic: Statistic,
    /// Minimum seconds between a shrink and the next grow.
    pub grow_cooldown_seconds: u64,
    /// Metrics older than this never lead to growth.
    pub stale_after_seconds: u64,
    /// Metrics stale this long send the NM to its floor.
    pub shrink_to_floor_after_seconds: u64,
    /// Capacity of the `static` policy.
    pub static_capacity: Resources,
    /// Seconds a signalled container gets before SIGKILL (the pool's guarder grace period);
    /// the deadline of an urgent guarder target.
    pub grace_period_seconds: u32,
    /// Tuning of the `elastic` policy.
    pub elastic: ElasticTuning,
}

impl PolicySettings {
    /// The published defaults (`threshold` in docs/policy.md) within `bounds`.
    pub fn with_bounds(bounds: CapacityBounds) -> Self {
        PolicySettings {
            bounds,
            scale_up_threshold_vcores: 3,
            shrink_tolerance: 0.10,
            window: WindowSpan::TenMinutes,
            statistic: Statistic::Mean,
            grow_cooldown_seconds: 60,
            stale_after_seconds: 60,
            shrink_to_floor_after_seconds: 600,
            static_capacity: Resources::new(10, 30 * 1024),
            grace_period_seconds: 60,
            elastic: ElasticTuning::default(),
        }
    }
}

/// What the node's exporter says batch work may use, in 1/5/10-minute windows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    /// CPU cores batch work may use.
    pub cpu_cores: WindowSet,
    /// Memory (MiB) batch work may use before koordlet evicts.
    pub memory_mb: WindowSet,
    /// Newest CPU sample.
    pub latest_cpu_cores: f64,
    /// Newest memory sample (MiB).
    pub latest_memory_mb: f64,
    /// Seconds since the newest sample.
    pub age_seconds: u64,
}

/// Koordinator's batch allocatable of the node (`kubernetes.io/batch-cpu`/`batch-memory`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAllocatable {
    /// Batch CPU in cores.
    pub cpu_cores: f64,
    /// Batch memory in MiB.
    pub memory_mb: f64,
    /// Seconds since koord-manager last updated it.
    pub age_seconds: u64,
}

/// The least the node will offer in the near future; only a simulator can know it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Foresight {
    /// Smallest CPU availability (cores) until the next decision has taken effect.
    pub cpu_cores_min_soon: f64,
    /// Smallest CPU availability (cores) over a horizon long enough to drain gracefully.
    pub cpu_cores_min: f64,
    /// Smallest memory availability (MiB) over that horizon.
    pub memory_mb_min: f64,
    /// Length of that horizon, seconds.
    pub horizon_seconds: u32,
}

/// What an NM's containers really use (the guarder measures it from /proc and cgroups).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeasuredUse {
    /// CPU cores.
    pub cpu_cores: f64,
    /// Resident memory, MiB.
    pub memory_mb: f64,
}

/// Everything a decision for one NM at one tick depends on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecisionInput {
    /// Now, in seconds (any epoch; only differences matter).
    pub now_seconds: u64,
    /// Capacity currently set on the RM.
    pub current: Resources,
    /// Resources YARN allocated to the NM's running containers.
    pub allocated: Resources,
    /// What those containers really use, from the guarder's status; `None` when unknown.
    pub used: Option<MeasuredUse>,
    /// Windowed availability from the node's exporter; `None` when there never was any.
    pub availability: Option<Availability>,
    /// Koordinator's batch allocatable; `None` when unknown.
    pub batch_allocatable: Option<BatchAllocatable>,
    /// Future availability (the oracle only).
    pub foresight: Option<Foresight>,
    /// When the NM last grew.
    pub last_grow_seconds: Option<u64>,
    /// When the NM last shrank.
    pub last_shrink_seconds: Option<u64>,
}

impl DecisionInput {
    /// Seconds since the last shrink, or `None` when there was none.
    pub fn since_last_shrink(&self) -> Option<u64> {
        self.last_shrink_seconds
            .map(|at| self.now_seconds.saturating_sub(at))
    }
}

/// Which input a policy needs fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyInputs {
    /// Nothing (fixed capacity).
    Nothing,
    /// The exporter's windows.
    Windows,
    /// Koordinator's batch allocatable.
    BatchAllocatable,
    /// Future availability.
    Foresight,
}

/// What a policy proposes before the shared rules apply.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Proposal {
    /// Leave the NM as it is.
    Keep(KeepReason),
    /// Offer this many vcores (memory follows at the pool's ratio).
    Vcores {
        /// Capacity in vcores.
        vcores: u32,
        /// What running containers may keep.
        running: RunningContainers,
        /// Why.
        reason: ResizeReason,
    },
    /// Offer exactly these resources (the `static` policy).
    Exact {
        /// Capacity.
        capacity: Resources,
        /// Why.
        reason: ResizeReason,
    },
}

/// What running containers may keep when an NM changes size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunningContainers {
    /// The new capacity; the guarder frees the rest within the grace period (the published
    /// behaviour).
    FitCapacity,
    /// This many vcores (never less than the new capacity); the guarder frees the rest.
    Keep {
        /// Vcores they may keep.
        vcores: u32,
        /// How soon.
        urgency: Urgency,
    },
    /// All of them: the node sustains what runs, nothing is freed.
    Sustainable,
}

/// How soon running containers must be freed. It reaches the guarder as the target's deadline
/// (docs/architecture.md, contract 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Urgency {
    /// Koordinator is about to evict the NM: deadline 0, so the guarder frees as fast as it
    /// can (SIGTERM to every victim, Spark executors included; SIGKILL still only after the
    /// grace period).
    Immediate,
    /// The published behaviour: deadline = the grace period; Spark executors decommission
    /// (SIGPWR), stragglers are killed when the grace period ends.
    #[default]
    Grace,
    /// The node only throttles batch work: signalled containers may take up to this many
    /// seconds to leave gracefully before they are killed.
    Relaxed(u32),
}

/// Why an NM stays as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KeepReason {
    /// The proposal equals the current capacity.
    Unchanged,
    /// The drop is within the shrink tolerance.
    WithinTolerance,
    /// The rise is below the scale-up threshold.
    BelowGrowThreshold,
    /// Too soon after a shrink to grow again.
    Cooldown,
    /// Metrics are stale: hold.
    StaleMetrics,
}

impl KeepReason {
    /// Short stable category for metrics and events.
    pub const fn category(self) -> &'static str {
        match self {
            KeepReason::Unchanged => "unchanged",
            KeepReason::WithinTolerance => "within_tolerance",
            KeepReason::BelowGrowThreshold => "below_grow_threshold",
            KeepReason::Cooldown => "cooldown",
            KeepReason::StaleMetrics => "stale_metrics",
        }
    }
}

/// Why an NM is resized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResizeReason {
    /// The fixed capacity of the `static` policy.
    StaticCapacity,
    /// Koordinator's batch allocatable changed.
    FollowAllocatable,
    /// Availability rose past the scale-up threshold.
    ThresholdGrow,
    /// Availability fell past the shrink tolerance.
    ThresholdShrink,
    /// The safe level rose.
    ElasticGrow,
    /// The safe level fell past the tolerance.
    ElasticShrink,
    /// Running containers exceed what the node sustains: free some now.
    ElasticProtect,
    /// The future availability changed.
    OracleForesight,
    /// Metrics stale too long: back to the floor.
    StaleMetricsFloor,
    /// The exporter is stale: shrinking on Koordinator's batch allocatable instead.
    StaleFallback,
    /// The current capacity lies outside the pool's bounds.
    OutOfBounds,
}

impl ResizeReason {
    /// Short stable category for metrics and events.
    pub const fn category(self) -> &'static str {
        match self {
            ResizeReason::StaticCapacity => "static_capacity",
            ResizeReason::FollowAllocatable => "follow_allocatable",
            ResizeReason::ThresholdGrow => "threshold_grow",
            ResizeReason::ThresholdShrink => "threshold_shrink",
            ResizeReason::ElasticGrow => "elastic_grow",
            ResizeReason::ElasticShrink => "elastic_shrink",
            ResizeReason::ElasticProtect => "elastic_protect",
            ResizeReason::OracleForesight => "oracle_foresight",
            ResizeReason::StaleMetricsFloor => "stale_metrics_floor",
            ResizeReason::StaleFallback => "stale_fallback",
            ResizeReason::OutOfBounds => "out_of_bounds",
        }
    }
}

/// Grow or shrink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Some dimension rises and none falls: update the RM.
    Grow,
    /// Some dimension falls: update the RM first, then the guarder.
    Shrink,
}

/// A resize of one NM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resize {
    /// New capacity for the RM. It equals the current capacity when only the guarder must act
    /// (running containers hold more than the node sustains); then there is nothing to send to
    /// the RM.
    pub capacity: Resources,
    /// Grow or shrink.
    pub direction: Direction,
    /// What running containers may keep, when they hold more: the guarder must free the rest.
    pub guarder_target: Option<Resources>,
    /// Seconds the guarder has to reach its target: shorter than the grace period means "as
    /// fast as possible" (SIGTERM to every victim); containers still running at the deadline are
    /// killed, never sooner than the grace period after their signal.
    pub guarder_deadline_seconds: u32,
    /// Why.
    pub reason: ResizeReason,
}

/// The engine's answer for one NM at one tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No change.
    Keep(KeepReason),
    /// Change the NM's capacity.
    Resize(Resize),
}

impl Decision {
    /// The capacity after this decision.
    pub fn capacity_after(&self, current: Resources) -> Resources {
        match self {
            Decision::Keep(_) => current,
            Decision::Resize(resize) => resize.capacity,
        }
    }
}

/// A resize policy: proposes a capacity for one NM from its input.
pub trait ResizePolicy: fmt::Debug + Send + Sync {
    /// Which policy this is.
    fn kind(&self) -> PolicyKind;

    /// The input this policy needs fresh.
    fn inputs(&self) -> PolicyInputs;

    /// The capacity this policy wants; the shared rules of [`decide`] apply afterwards.
    fn propose(&self, settings: &PolicySettings, input: &DecisionInput) -> Proposal;

    /// What to do while the input of [`ResizePolicy::inputs`] is stale, before the floor rule
    /// applies; `None` holds the NM as it is. Whatever it proposes, the NM never grows.
    fn propose_stale(
        &self,
        _settings: &PolicySettings,
        _input: &DecisionInput,
    ) -> Option<Proposal> {
        None
    }
}

/// The policies elastic-yarn knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Fixed capacity (10 vcores / 30 GiB).
    Static,
    /// Koordinator's batch allocatable every sync, no smoothing (what yarn-copilot does).
    Follow,
    /// The published iQIYI rule.
    Threshold,
    /// elastic-yarn's policy.
    Elastic,
    /// Knows the future; the reference the others are measured against (simulation only).
    Oracle,
}

impl PolicyKind {
    /// Every policy, in report order.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Static,
        PolicyKind::Follow,
        PolicyKind::Threshold,
        PolicyKind::Elastic,
        PolicyKind::Oracle,
    ];

    /// The policy's name.
    pub const fn name(self) -> &'static str {
        match self {
            PolicyKind::Static => "static",
            PolicyKind::Follow => "follow",
            PolicyKind::Threshold => "threshold",
            PolicyKind::Elastic => "elastic",
            PolicyKind::Oracle => "oracle",
        }
    }

    /// An instance of the policy.
    pub fn build(self) -> Box<dyn ResizePolicy> {
        match self {
            PolicyKind::Static => Box::new(StaticPolicy),
            PolicyKind::Follow => Box::new(FollowPolicy),
            PolicyKind::Threshold => Box::new(ThresholdPolicy),
            PolicyKind::Elastic => Box::new(ElasticPolicy),
            PolicyKind::Oracle => Box::new(OraclePolicy),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is not known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}: expected one of static, follow, threshold, elastic, oracle")]
pub struct UnknownPolicy(String);

impl FromStr for PolicyKind {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}

impl From<crate::crd::PolicyName> for PolicyKind {
    fn from(name: crate::crd::PolicyName) -> Self {
        match name {
            crate::crd::PolicyName::Static => PolicyKind::Static,
            crate::crd::PolicyName::Follow => PolicyKind::Follow,
            crate::crd::PolicyName::Threshold => PolicyKind::Threshold,
            crate::crd::PolicyName::Elastic => PolicyKind::Elastic,
        }
    }
}

/// Age of the input `inputs` names, in seconds; `None` when it is missing.
fn input_age(inputs: PolicyInputs, input: &DecisionInput) -> Option<u64> {
    match inputs {
        PolicyInputs::Nothing => Some(0),
        PolicyInputs::Windows => input.availability.map(|a| a.age_seconds),
        PolicyInputs::BatchAllocatable => input.batch_allocatable.map(|b| b.age_seconds),
        PolicyInputs::Foresight => input.foresight.map(|_| 0),
    }
}

/// Decides the size of one NM: the policy's proposal under the rules every policy shares.
pub fn decide(
    policy: &dyn ResizePolicy,
    settings: &PolicySettings,
    input: &DecisionInput,
) -> Decision {
    let bounds = &settings.bounds;
    let age = input_age(policy.inputs(), input);
    let fresh = age.is_some_and(|age| age <= settings.stale_after_seconds);
    let proposal = if fresh {
        policy.propose(settings, input)
    } else if let Some(fallback) = policy.propose_stale(settings, input) {
        fallback
    } else if age.is_none_or(|age| age >= settings.shrink_to_floor_after_seconds) {
        // Nothing trustworthy for too long: the floor is the only safe size. A missing input
        // counts as stale since ever; callers report the real age once they have seen one.
        Proposal::Exact {
            capacity: bounds.floor,
            reason: ResizeReason::StaleMetricsFloor,
        }
    } else {
        Proposal::Keep(KeepReason::StaleMetrics)
    };

    let (capacity, running, reason) = match proposal {
        Proposal::Keep(keep) => {
            let clamped = bounds.clamp(input.current);
            if clamped == input.current {
                return Decision::Keep(keep);
            }
            (
                clamped,
                RunningContainers::FitCapacity,
                ResizeReason::OutOfBounds,
            )
        }
        Proposal::Vcores {
            vcores,
            running,
            reason,
        } => (bounds.capacity_for_vcores(vcores), running, reason),
        Proposal::Exact { capacity, reason } => (
            bounds.clamp(capacity),
            RunningContainers::FitCapacity,
            reason,
        ),
    };
    let grace = settings.grace_period_seconds;
    // Running containers may keep at least the new capacity, at most what the policy says the
    // node sustains; the guarder acts only when they hold more than that.
    let (keep, urgency, explicit) = match running {
        RunningContainers::FitCapacity => (Some(capacity), Urgency::Grace, false),
        RunningContainers::Keep { vcores, urgency } => {
            let sustained = bounds.capacity_for_vcores(vcores);
            let keep = Resources::new(
                sustained.vcores.max(capacity.vcores),
                sustained.memory_mb.max(capacity.memory_mb),
            );
            (Some(keep), urgency, true)
        }
        RunningContainers::Sustainable => (None, Urgency::Grace, false),
    };
    let guarder_deadline_seconds = match urgency {
        Urgency::Immediate => 0,
        Urgency::Grace => grace,
        Urgency::Relaxed(seconds) => seconds.max(grace),
    };
    let must_free = keep.is_some_and(|keep| !input.allocated.fits_in(&keep));
    if capacity == input.current {
        if explicit && must_free {
            // Same capacity, but the node no longer sustains what runs: only the guarder acts.
            return Decision::Resize(Resize {
                capacity,
                direction: Direction::Shrink,
                guarder_target: keep,
                guarder_deadline_seconds,
                reason,
            });
        }
        return Decision::Keep(KeepReason::Unchanged);
    }
    let grows =
        capacity.vcores > input.current.vcores || capacity.memory_mb > input.current.memory_mb;
    let shrinks =
        capacity.vcores < input.current.vcores || capacity.memory_mb < input.current.memory_mb;
    let only_to_floor = capacity == bounds.clamp(input.current);
    if grows && !fresh && !only_to_floor {
        // Never grow on stale or missing metrics, whatever the proposal; only a floor the admin
        // raised may lift an NM while metrics are stale.
        return Decision::Keep(KeepReason::StaleMetrics);
    }
    let direction = if shrinks {
        Direction::Shrink
    } else {
        Direction::Grow
    };
    let guarder_target = keep.filter(|_| direction == Direction::Shrink && must_free);
    Decision::Resize(Resize {
        capacity,
        direction,
        guarder_target,
        guarder_deadline_seconds,
        reason,
    })
}

/// Whole vcores in `value`, never negative, saturating at `u32::MAX`.
pub(crate) fn whole_vcores(value: f64) -> u32 {
    if value.is_nan() || value <= 0.0 {
        0
    } else if value >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        // Truncation is the point: a fraction of a vcore cannot be offered.
        value.floor() as u32
    }
}

#[cfg(test)]
mod tests;
