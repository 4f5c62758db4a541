//! `oracle`: knows the future. It offers the least the node will give over the coming horizon
//! (long enough to drain before any drop arrives) and lets running containers keep what the
//! same horizon sustains, with the same CPU overcommit as `elastic`. Only the simulator can feed
//! it, and it is the reference the other policies are measured against.

use super::{
    DecisionInput, KeepReason, PolicyInputs, PolicyKind, PolicySettings, Proposal, ResizePolicy,
    ResizeReason, whole_vcores,
};

/// Clairvoyant reference policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct OraclePolicy;

impl ResizePolicy for OraclePolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Oracle
    }

    fn inputs(&self) -> PolicyInputs {
        PolicyInputs::Foresight
    }

    fn propose(&self, settings: &PolicySettings, input: &DecisionInput) -> Proposal {
        let Some(future) = input.foresight else {
            return Proposal::Keep(KeepReason::StaleMetrics);
        };
        let bounds = &settings.bounds;
        let capacity = bounds.supportable_vcores(future.cpu_cores_min, future.memory_mb_min);
        let sustain = bounds.supportable_vcores(
            future.cpu_cores_min * settings.elastic.cpu_overcommit,
            future.memory_mb_min,
        );
        Proposal::Vcores {
            vcores: whole_vcores(capacity),
            sustain_vcores: Some(whole_vcores(sustain)),
            reason: ResizeReason::OracleForesight,
        }
    }
}
