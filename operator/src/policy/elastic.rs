//! `elastic`: elastic-yarn's policy (design and figures in `docs/policy.md`).
//!
//! It separates two questions the published rule answers with one number:
//!
//! * **What may new containers get?** A level the node has really held: the lowest of the
//!   5-minute mean minus `sigma` standard deviations, the 1-minute minimum and the newest
//!   sample, for CPU; the 1-minute minimum of memory less a margin. The RM capacity follows this
//!   level: up by as little as one vcore (not three), down only past the shrink tolerance.
//! * **What may running containers keep?** Koordinator throttles batch CPU above its limit and
//!   evicts the NM only when CPU satisfaction (limit / allocation) stays at or below 60%; a
//!   throttled container still finishes, a killed one loses its work. So running containers keep
//!   up to `cpu_overcommit` × the CPU available (satisfaction ≥ 80%), and all the memory
//!   available (memory is never overcommitted). Only beyond that does the guarder free anything.
//!
//! Lowering the RM capacity alone costs nothing but an RM call: no new containers start, and the
//! ones that finish are not replaced. The guarder is the last resort, not the first.

use serde::{Deserialize, Serialize};

use super::{
    DecisionInput, KeepReason, PolicyInputs, PolicyKind, PolicySettings, Proposal, ResizePolicy,
    ResizeReason, whole_vcores,
};

/// Tuning of the `elastic` policy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ElasticTuning {
    /// Standard deviations of the 5-minute window kept as a safety margin on CPU.
    pub sigma: f64,
    /// Smallest growth worth an RM call, in vcores.
    pub grow_step_vcores: u32,
    /// Running containers may hold up to this multiple of the CPU available (Koordinator
    /// throttles them; it evicts only at a satisfaction of 60%, i.e. a multiple of 1.67).
    pub cpu_overcommit: f64,
    /// Share of the available memory kept free for the node's own movements.
    pub memory_margin: f64,
}

impl Default for ElasticTuning {
    fn default() -> Self {
        ElasticTuning {
            sigma: 1.0,
            grow_step_vcores: 1,
            cpu_overcommit: 1.25,
            memory_margin: 0.05,
        }
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
        let memory =
            memory_1m.min.min(availability.latest_memory_mb) * (1.0 - tuning.memory_margin);

        let cpu_level = (cpu_5m.mean - tuning.sigma * cpu_5m.std_dev())
            .min(cpu_1m.min)
            .min(latest_cpu);
        let level = whole_vcores(bounds.supportable_vcores(cpu_level, memory));

        let cpu_sustain = cpu_1m.mean.min(latest_cpu) * tuning.cpu_overcommit;
        let sustain = whole_vcores(bounds.supportable_vcores(cpu_sustain, memory));

        let current = input.current.vcores;
        if !input
            .allocated
            .fits_in(&bounds.capacity_for_vcores(sustain))
        {
            return Proposal::Vcores {
                vcores: level.min(current),
                sustain_vcores: Some(sustain),
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
                sustain_vcores: None,
                reason: ResizeReason::ElasticGrow,
            };
        }
        if f64::from(level) < f64::from(current) * (1.0 - settings.shrink_tolerance) {
            return Proposal::Vcores {
                vcores: level,
                sustain_vcores: Some(sustain),
                reason: ResizeReason::ElasticShrink,
            };
        }
        if level < current {
            Proposal::Keep(KeepReason::WithinTolerance)
        } else {
            Proposal::Keep(KeepReason::Unchanged)
        }
    }
}
