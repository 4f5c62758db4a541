//! `threshold`: the rule of the published iQIYI system. Read the 10-minute mean of what batch
//! work may use (CPU, and memory at the pool's vcore ratio); grow to it when it exceeds the
//! capacity by more than 3 vcores; shrink to it when it falls more than 10% below; otherwise
//! keep. On shrink the guarder frees containers down to the new capacity.

use super::{
    DecisionInput, KeepReason, PolicyInputs, PolicyKind, PolicySettings, Proposal, ResizePolicy,
    ResizeReason, RunningContainers, whole_vcores,
};

/// The published threshold rule.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThresholdPolicy;

impl ResizePolicy for ThresholdPolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Threshold
    }

    fn inputs(&self) -> PolicyInputs {
        PolicyInputs::Windows
    }

    fn propose(&self, settings: &PolicySettings, input: &DecisionInput) -> Proposal {
        let Some(availability) = input.availability else {
            return Proposal::Keep(KeepReason::StaleMetrics);
        };
        let cpu = availability.cpu_cores.get(settings.window);
        let memory = availability.memory_mb.get(settings.window);
        if cpu.is_empty() || memory.is_empty() {
            return Proposal::Keep(KeepReason::StaleMetrics);
        }
        let available = settings
            .bounds
            .supportable_vcores(settings.statistic.of(cpu), settings.statistic.of(memory));
        let current = f64::from(input.current.vcores);
        if available - current > f64::from(settings.scale_up_threshold_vcores) {
            Proposal::Vcores {
                vcores: whole_vcores(available),
                running: RunningContainers::FitCapacity,
                reason: ResizeReason::ThresholdGrow,
            }
        } else if available < current * (1.0 - settings.shrink_tolerance) {
            Proposal::Vcores {
                vcores: whole_vcores(available),
                running: RunningContainers::FitCapacity,
                reason: ResizeReason::ThresholdShrink,
            }
        } else if available < current {
            Proposal::Keep(KeepReason::WithinTolerance)
        } else {
            Proposal::Keep(KeepReason::BelowGrowThreshold)
        }
    }
}
