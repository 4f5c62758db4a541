//! `static`: a fixed capacity, whatever the node does (the published phase-two setup:
//! 10 vcores / 30 GiB per NodeManager).

use super::{
    DecisionInput, PolicyInputs, PolicyKind, PolicySettings, Proposal, ResizePolicy, ResizeReason,
};

/// Fixed capacity from `PolicySettings::static_capacity`.
#[derive(Clone, Copy, Debug, Default)]
pub struct StaticPolicy;

impl ResizePolicy for StaticPolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Static
    }

    fn inputs(&self) -> PolicyInputs {
        PolicyInputs::Nothing
    }

    fn propose(&self, settings: &PolicySettings, _input: &DecisionInput) -> Proposal {
        Proposal::Exact {
            capacity: settings.static_capacity,
            reason: ResizeReason::StaticCapacity,
        }
    }
}
