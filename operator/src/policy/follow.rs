//! `follow`: capacity = Koordinator's latest batch allocatable at every sync, with no smoothing
//! and no hysteresis. This is what Koordinator's yarn-copilot does.

use super::{
    DecisionInput, KeepReason, PolicyInputs, PolicyKind, PolicySettings, Proposal, ResizePolicy,
    ResizeReason, RunningContainers, whole_vcores,
};

/// Follows `kubernetes.io/batch-cpu` and `kubernetes.io/batch-memory`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FollowPolicy;

impl ResizePolicy for FollowPolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Follow
    }

    fn inputs(&self) -> PolicyInputs {
        PolicyInputs::BatchAllocatable
    }

    fn propose(&self, settings: &PolicySettings, input: &DecisionInput) -> Proposal {
        let Some(batch) = input.batch_allocatable else {
            return Proposal::Keep(KeepReason::StaleMetrics);
        };
        let vcores = settings
            .bounds
            .supportable_vcores(batch.cpu_cores, batch.memory_mb);
        Proposal::Vcores {
            vcores: whole_vcores(vcores),
            running: RunningContainers::FitCapacity,
            reason: ResizeReason::FollowAllocatable,
        }
    }
}
