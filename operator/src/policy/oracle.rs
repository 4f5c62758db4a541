//! `oracle`: knows the future. It is `elastic` with perfect foresight: new containers get the
//! least the node will offer until the next decision has taken effect, with the same vcore
//! overcommit, and running containers are drained gracefully ahead of any drop within a horizon
//! long enough for them to leave (sync + grace + a minute). Only the simulator can feed it; it
//! is the reference the other policies are measured against, not a proven optimum.

use super::elastic::running_limit;
use super::{
    DecisionInput, KeepReason, PolicyInputs, PolicyKind, PolicySettings, Proposal, ResizePolicy,
    ResizeReason, RunningContainers, Urgency, whole_vcores,
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
        let tuning = &settings.elastic;
        let bounds = &settings.bounds;
        let (cpu, memory) = (future.cpu_cores_min, future.memory_mb_min);
        let capacity = whole_vcores(bounds.supportable_vcores(
            future.cpu_cores_min_soon * tuning.vcore_overcommit,
            memory * (1.0 - tuning.memory_margin),
        ));
        // A drop within the horizon is met by decommissioning before it arrives; only one
        // already due before the next decision needs SIGTERM.
        let running = match running_limit(
            tuning,
            bounds,
            cpu,
            future.cpu_cores_min_soon,
            memory,
            input.allocated,
            input.used.map(|u| u.memory_mb),
        ) {
            Some((vcores, Urgency::Relaxed(_))) => RunningContainers::Keep {
                vcores,
                urgency: Urgency::Relaxed(future.horizon_seconds),
            },
            Some((vcores, urgency)) => RunningContainers::Keep { vcores, urgency },
            None => RunningContainers::Sustainable,
        };
        Proposal::Vcores {
            vcores: capacity,
            running,
            reason: ResizeReason::OracleForesight,
        }
    }
}
