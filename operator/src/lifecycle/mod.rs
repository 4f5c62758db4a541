//! Which NodeManagers a pool should run, drain or remove at an instant: the lifecycle mode, the
//! eligible nodes and the NMs that exist in, a [`LifecyclePlan`] out. Pure; the controller applies
//! the plan and requeues at [`LifecyclePlan::requeue_after`] rather than polling.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::crd::PoolPhase;
use crate::schedule::SchedulePhase;
use crate::validate::Lifecycle;

/// An NM pod of the pool as it exists now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingNodeManager {
    /// Kubernetes node it runs on.
    pub node: String,
    /// Set while it drains: removed at this time at the latest.
    pub drain_deadline: Option<Timestamp>,
    /// True when the RM reports no container on it (known empty).
    pub empty: bool,
    /// False once the Kubernetes node is gone.
    pub node_present: bool,
    /// The pod failed for good (evicted by Koordinator under memory pressure): it never restarts
    /// by itself.
    pub failed: bool,
}

/// Why an NM drains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainCause {
    /// The `Periodic` window's drain started.
    Schedule,
    /// The node no longer matches the placement.
    NodeIneligible,
    /// An `OnDemand` pool asks for fewer NMs.
    ScaleDown,
    /// Already draining.
    Continuing,
    /// The pod's spec changed in a way a running pod cannot take (image, ports): the NM drains
    /// and its pod is recreated.
    SpecChanged,
}

impl DrainCause {
    /// Short stable category for Events and metrics.
    pub const fn category(self) -> &'static str {
        match self {
            DrainCause::Schedule => "schedule",
            DrainCause::NodeIneligible => "node_ineligible",
            DrainCause::ScaleDown => "scale_down",
            DrainCause::Continuing => "continuing",
            DrainCause::SpecChanged => "spec_changed",
        }
    }
}

/// An NM to drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    /// Removed at this time at the latest.
    pub deadline: Timestamp,
    /// Why.
    pub cause: DrainCause,
}

/// Why an NM pod is deleted now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoveCause {
    /// Its drain deadline passed.
    DeadlineReached,
    /// It drained and holds no container.
    Empty,
    /// Its Kubernetes node is gone.
    NodeGone,
    /// The pool is outside its windows (or asks for none).
    Offline,
    /// The pod failed (evicted); a new one replaces it when the node is still wanted.
    Failed,
}

impl RemoveCause {
    /// Short stable category for Events and metrics.
    pub const fn category(self) -> &'static str {
        match self {
            RemoveCause::DeadlineReached => "deadline_reached",
            RemoveCause::Empty => "empty",
            RemoveCause::NodeGone => "node_gone",
            RemoveCause::Offline => "offline",
            RemoveCause::Failed => "failed",
        }
    }
}

/// What to do with the pool now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecyclePlan {
    /// Phase to report.
    pub phase: PoolPhase,
    /// Nodes that run an online NM (created when missing).
    pub run: BTreeSet<String>,
    /// Nodes whose NM drains.
    pub drain: BTreeMap<String, Drain>,
    /// Nodes whose NM pod is deleted now.
    pub remove: BTreeMap<String, RemoveCause>,
    /// Next scheduled online, drain or offline time.
    pub next_transition: Option<Timestamp>,
    /// When the plan changes by itself (next boundary or drain deadline).
    pub requeue_after: Option<Duration>,
}

/// The mode's answer before looking at nodes.
fn mode_phase(lifecycle: &Lifecycle, now: Timestamp) -> (SchedulePhase, Option<Timestamp>) {
    match lifecycle {
        Lifecycle::Resident => (SchedulePhase::Online, None),
        Lifecycle::OnDemand { node_managers } => (
            if *node_managers > 0 {
                SchedulePhase::Online
            } else {
                SchedulePhase::Offline
            },
            None,
        ),
        Lifecycle::Periodic(schedule) => {
            let at = schedule.phase_at(now);
            (at.phase, at.next_transition)
        }
    }
}

/// `now` plus `duration`, saturating.
pub fn after(now: Timestamp, duration: Duration) -> Timestamp {
    SignedDuration::try_from(duration)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Plans the pool at `now`. `grace` is the guarder's grace period: an NM that must leave outside
/// a scheduled drain gets that long.
pub fn plan(
    lifecycle: &Lifecycle,
    now: Timestamp,
    eligible: &BTreeSet<String>,
    existing: &[ExistingNodeManager],
    grace: Duration,
) -> LifecyclePlan {
    let (schedule_phase, next_transition) = mode_phase(lifecycle, now);
    let mut drain = BTreeMap::new();
    let mut remove = BTreeMap::new();

    // First the NMs that exist: gone nodes, finished drains, the schedule's drain and offline.
    let mut online_candidates = Vec::new();
    let window = Window {
        lifecycle,
        phase: schedule_phase,
        next_transition,
        now,
        grace,
    };
    for nm in existing {
        match window.fate(nm, eligible) {
            Fate::Remove(cause) => {
                remove.insert(nm.node.clone(), cause);
            }
            Fate::Drain(how) => {
                drain.insert(nm.node.clone(), how);
            }
            Fate::Stay => online_candidates.push(nm.node.clone()),
        }
    }

    let mut run = BTreeSet::new();
    if schedule_phase == SchedulePhase::Online {
        // A node whose NM still drains or is being removed gets a new one only once the old
        // pod is gone.
        let busy: BTreeSet<String> = drain.keys().chain(remove.keys()).cloned().collect();
        let (online, scaled_down) = window.assign(eligible, &online_candidates, &busy);
        run = online;
        drain.extend(scaled_down);
    }

    let phase = match schedule_phase {
        SchedulePhase::Online if run.is_empty() => PoolPhase::Pending,
        SchedulePhase::Online => PoolPhase::Online,
        SchedulePhase::Draining => PoolPhase::Draining,
        SchedulePhase::Offline if drain.is_empty() => PoolPhase::Offline,
        SchedulePhase::Offline => PoolPhase::Draining,
    };
    let requeue_after = next_wake(&drain, next_transition, now);
    LifecyclePlan {
        phase,
        run,
        drain,
        remove,
        next_transition,
        requeue_after,
    }
}

/// What becomes of an NM that exists.
enum Fate {
    /// Its pod goes now.
    Remove(RemoveCause),
    /// It drains (or goes on draining).
    Drain(Drain),
    /// It may stay online.
    Stay,
}

/// The pool's schedule at the moment of planning.
struct Window<'a> {
    lifecycle: &'a Lifecycle,
    phase: SchedulePhase,
    next_transition: Option<Timestamp>,
    now: Timestamp,
    grace: Duration,
}

impl Window<'_> {
    /// A drain that ends one grace period from now.
    fn drain_now(&self, cause: DrainCause) -> Drain {
        Drain {
            deadline: after(self.now, self.grace),
            cause,
        }
    }

    /// The fate of an existing NM.
    fn fate(&self, nm: &ExistingNodeManager, eligible: &BTreeSet<String>) -> Fate {
        if !nm.node_present {
            return Fate::Remove(RemoveCause::NodeGone);
        }
        if nm.failed {
            return Fate::Remove(RemoveCause::Failed);
        }
        if let Some(deadline) = nm.drain_deadline {
            return if self.now >= deadline {
                Fate::Remove(RemoveCause::DeadlineReached)
            } else if nm.empty {
                Fate::Remove(RemoveCause::Empty)
            } else {
                Fate::Drain(Drain {
                    deadline,
                    cause: DrainCause::Continuing,
                })
            };
        }
        match self.phase {
            // `nodeManagers: 0` is a scale-down like any other: running work gets the grace
            // period to leave (and the guarder's drain) before the pods go.
            SchedulePhase::Offline if matches!(self.lifecycle, Lifecycle::OnDemand { .. }) => {
                Fate::Drain(self.drain_now(DrainCause::ScaleDown))
            }
            SchedulePhase::Offline => Fate::Remove(RemoveCause::Offline),
            SchedulePhase::Draining => Fate::Drain(Drain {
                deadline: self
                    .next_transition
                    .unwrap_or_else(|| after(self.now, self.grace)),
                cause: DrainCause::Schedule,
            }),
            SchedulePhase::Online if eligible.contains(&nm.node) => Fate::Stay,
            SchedulePhase::Online => Fate::Drain(self.drain_now(DrainCause::NodeIneligible)),
        }
    }

    /// The nodes that run an NM while online: NMs that exist keep their nodes; new ones go to
    /// eligible nodes that are not `busy`, in name order; beyond an OnDemand count, existing
    /// NMs drain (returned apart).
    fn assign(
        &self,
        eligible: &BTreeSet<String>,
        candidates: &[String],
        busy: &BTreeSet<String>,
    ) -> (BTreeSet<String>, BTreeMap<String, Drain>) {
        let fresh = eligible
            .iter()
            .filter(|node| !busy.contains(*node) && !candidates.contains(node))
            .cloned();
        let wanted: Vec<String> = candidates.iter().cloned().chain(fresh).collect();
        let limit = match self.lifecycle {
            Lifecycle::OnDemand { node_managers } => {
                usize::try_from(*node_managers).unwrap_or(usize::MAX)
            }
            Lifecycle::Resident | Lifecycle::Periodic(_) => usize::MAX,
        };
        let mut run = BTreeSet::new();
        let mut drain = BTreeMap::new();
        for (index, node) in wanted.into_iter().enumerate() {
            if index < limit {
                run.insert(node);
            } else if candidates.contains(&node) {
                drain.insert(node, self.drain_now(DrainCause::ScaleDown));
            }
        }
        (run, drain)
    }
}

/// How long until the plan changes by itself: the next drain deadline or schedule transition.
fn next_wake(
    drain: &BTreeMap<String, Drain>,
    next_transition: Option<Timestamp>,
    now: Timestamp,
) -> Option<Duration> {
    drain
        .values()
        .map(|d| d.deadline)
        .chain(next_transition)
        .filter(|t| *t > now)
        .min()
        .map(|t| Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests;
