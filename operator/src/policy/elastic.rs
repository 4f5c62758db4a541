//! `elastic`: elastic-yarn's policy (design and figures in `docs/policy.md`).
//!
//! It separates two questions the published rule answers with one number:
//!
//! * **What may new containers get?** A CPU level the node has really held (the lowest of the
//!   5-minute mean minus `sigma` standard deviations, the 1-minute minimum and the newest sample)
//!   times a modest vcore overcommit, because YARN containers use less CPU than their vcores and
//!   an idle batch cgroup delivers nothing; and the memory the node has held (1-minute minimum,
//!   less a margin), never overcommitted. The RM capacity follows this level: up by as little as
//!   one vcore, down only past the shrink tolerance.
//! * **What may running containers keep?** Koordinator throttles batch CPU above its limit and
//!   evicts the NM only when CPU satisfaction (limit / allocated vcores) stays at or below 60%
//!   over its window. A throttled container still finishes; a killed one loses its work. So the
//!   guarder acts only when satisfaction falls below `protect_satisfaction` (or memory runs
//!   short), frees down to `target_satisfaction`, and lets signalled containers take their time
//!   (`relaxed_deadline_seconds`) unless satisfaction is below `urgent_satisfaction`, close to
//!   Koordinator's line, when stragglers are killed after the grace period.
//!
//! Lowering the RM capacity alone costs nothing but an RM call: no new containers start, and the
//! ones that finish are not replaced. The guarder is the last resort, not the first.

use serde::{Deserialize, Serialize};

use super::{
    CapacityBounds, DecisionInput, KeepReason, PolicyInputs, PolicyKind, PolicySettings, Proposal,
    ResizePolicy, ResizeReason, Resources, RunningContainers, Urgency, whole_vcores,
};

/// Tuning of the `elastic` policy (the oracle uses the same numbers).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ElasticTuning {
    /// Standard deviations of the 5-minute window kept as a safety margin on CPU.
    pub sigma: f64,
    /// Smallest growth worth an RM call, in vcores.
    pub grow_step_vcores: u32,
    /// New containers get up to this many vcores per core of the CPU level.
    pub vcore_overcommit: f64,
    /// The guarder acts when CPU available / allocated vcores falls below this...
    pub protect_satisfaction: f64,
    /// ... and frees down to allocated vcores = CPU available / this.
    pub target_satisfaction: f64,
    /// Below this current satisfaction (Koordinator evicts at 0.60) the guarder frees at once
    /// (SIGTERM); above it signalled containers get `relaxed_deadline_seconds` to leave.
    pub urgent_satisfaction: f64,
    /// How long a signalled container may take to leave while the node only throttles.
    pub relaxed_deadline_seconds: u32,
    /// Share of the available memory kept free for the node's own movements.
    pub memory_margin: f64,
}

impl Default for ElasticTuning {
    fn default() -> Self {
        ElasticTuning {
            sigma: 1.0,
            grow_step_vcores: 2,
            vcore_overcommit: 1.15,
            protect_satisfaction: 0.75,
            target_satisfaction: 0.8,
            urgent_satisfaction: 0.67,
            relaxed_deadline_seconds: 600,
            memory_margin: 0.05,
        }
    }
}

/// What running containers may keep, when they hold more than the node sustains: the vcores
/// to free down to and how urgently. `None` when nothing needs freeing.
///
/// Koordinator evicts only when satisfaction is low both over its window and right now, so the
/// guarder is asked to act, gracefully, when the window average (`cpu_average`) falls below
/// `protect_satisfaction`, and immediately when the current value (`cpu_current`) falls below
/// `urgent_satisfaction` or memory runs short: an evicted NM loses every container, a
/// SIGTERMed executor only its running task.
pub(super) fn running_limit(
    tuning: &ElasticTuning,
    bounds: &CapacityBounds,
    cpu_average: f64,
    cpu_current: f64,
    memory_mb: f64,
    allocated: Resources,
    used_memory_mb: Option<f64>,
) -> Option<(u32, Urgency)> {
    let memory = memory_mb * (1.0 - tuning.memory_margin);
    let satisfaction = |cpu: f64| {
        if allocated.vcores == 0 {
            f64::INFINITY
        } else {
            cpu / f64::from(allocated.vcores)
        }
    };
    let target = tuning.target_satisfaction.max(0.01);
    let keep = |cpu: f64| whole_vcores(bounds.supportable_vcores(cpu / target, memory));
    let cpu_current = cpu_current.min(cpu_average);
    // koordlet evicts on memory really used; without a measurement, the allocation stands in.
    let memory_short = used_memory_mb.unwrap_or(allocated.memory_mb as f64) > memory;
    if satisfaction(cpu_current) < tuning.urgent_satisfaction || memory_short {
        Some((keep(cpu_current), Urgency::Immediate))
    } else if satisfaction(cpu_average) < tuning.protect_satisfaction {
        Some((
            keep(cpu_average),
            Urgency::Relaxed(tuning.relaxed_deadline_seconds),
        ))
    } else {
        None
    }
}

/// elastic-yarn's default policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct ElasticPolicy;

impl ResizePolicy for ElasticPolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Elastic
    }

    fn inputs(&self) -> PolicyInputs {
        PolicyInputs::Windows
    }

    fn propose(&self, settings: &PolicySettings, input: &DecisionInput) -> Proposal {
        let Some(availability) = input.availability else {
            return Proposal::Keep(KeepReason::StaleMetrics);
        };
        let tuning = &settings.elastic;
        let bounds = &settings.bounds;
        let cpu_1m = &availability.cpu_cores.one_minute;
        let cpu_5m = &availability.cpu_cores.five_minutes;
        let memory_1m = &availability.memory_mb.one_minute;
        if cpu_1m.is_empty() || cpu_5m.is_empty() || memory_1m.is_empty() {
            return Proposal::Keep(KeepReason::StaleMetrics);
        }
        let latest_cpu = availability.latest_cpu_cores;
        // koordlet evicts the moment memory use passes its threshold, so memory gets no second
        // chance: a fall seen over the last minute is assumed to go on for as long again.
        let latest_memory = availability.latest_memory_mb;
        let falling = (memory_1m.mean - latest_memory).max(0.0);
        let memory_now = memory_1m.min.min(latest_memory) - falling;

        let cpu_level = (cpu_5m.mean - tuning.sigma * cpu_5m.std_dev())
            .min(cpu_1m.min)
            .min(latest_cpu);
        let level = whole_vcores(bounds.supportable_vcores(
            cpu_level * tuning.vcore_overcommit,
            memory_now * (1.0 - tuning.memory_margin),
        ));

        let current = input.current.vcores;
        // "Now" is the worse of the newest sample and the last minute's low: right after a drop,
        // small whole-CPU limits bounce, and Koordinator's window still holds the drop.
        if let Some((keep, urgency)) = running_limit(
            tuning,
            bounds,
            cpu_1m.mean,
            latest_cpu.min(cpu_1m.min),
            memory_now,
            input.allocated,
            input.used.map(|u| u.memory_mb),
        ) {
            return Proposal::Vcores {
                vcores: level.min(current),
                running: RunningContainers::Keep {
                    vcores: keep,
                    urgency,
                },
                reason: ResizeReason::ElasticProtect,
            };
        }
        if level >= current.saturating_add(tuning.grow_step_vcores.max(1)) {
            let cooling = input
                .since_last_shrink()
                .is_some_and(|since| since < settings.grow_cooldown_seconds);
            if cooling {
                return Proposal::Keep(KeepReason::Cooldown);
            }
            return Proposal::Vcores {
                vcores: level,
                running: RunningContainers::Sustainable,
                reason: ResizeReason::ElasticGrow,
            };
        }
        if f64::from(level) < f64::from(current) * (1.0 - settings.shrink_tolerance) {
            // Running containers are sustainable (checked above): the RM alone shrinks.
            return Proposal::Vcores {
                vcores: level,
                running: RunningContainers::Sustainable,
                reason: ResizeReason::ElasticShrink,
            };
        }
        if level < current {
            Proposal::Keep(KeepReason::WithinTolerance)
        } else {
            Proposal::Keep(KeepReason::Unchanged)
        }
    }

    /// While the exporter is stale, Koordinator's batch allocatable (on the Node object, kept by
    /// koord-manager) still says roughly what the node gives: shrink and protect on it, never
    /// grow.
    fn propose_stale(&self, settings: &PolicySettings, input: &DecisionInput) -> Option<Proposal> {
        let batch = input
            .batch_allocatable
            .filter(|b| b.age_seconds <= settings.stale_after_seconds.saturating_mul(2))?;
        let tuning = &settings.elastic;
        let bounds = &settings.bounds;
        let level = whole_vcores(bounds.supportable_vcores(
            batch.cpu_cores * tuning.vcore_overcommit,
            batch.memory_mb * (1.0 - tuning.memory_margin),
        ));
        let current = input.current.vcores;
        if let Some((keep, urgency)) = running_limit(
            tuning,
            bounds,
            batch.cpu_cores,
            batch.cpu_cores,
            batch.memory_mb,
            input.allocated,
            input.used.map(|u| u.memory_mb),
        ) {
            return Some(Proposal::Vcores {
                vcores: level.min(current),
                running: RunningContainers::Keep {
                    vcores: keep,
                    urgency,
                },
                reason: ResizeReason::StaleFallback,
            });
        }
        (level < current).then_some(Proposal::Vcores {
            vcores: level,
            running: RunningContainers::Sustainable,
            reason: ResizeReason::StaleFallback,
        })
    }
}
