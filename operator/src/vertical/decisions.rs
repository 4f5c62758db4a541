//! What a pool's vertical loop decides, for every NM at every tick, as one pure state machine:
//! the capacity to write to the RM and the target each guarder must hold.
//!
//! The operator's loop ([`super::VerticalLoop`]) feeds it what it read (the RM, the exporters or
//! Prometheus, the guarders, the Node objects) and carries out its commands; `simulate` feeds it
//! the simulated cluster and carries them out there. Both run this code, so what `simulate`
//! measures is what the operator does.
//!
//! Guarding is level-triggered: the core remembers what each guarder should hold and, every
//! tick, compares it with what the guarder reports; a target that was lost (a failed request, a
//! restarted guarder) is sent again with what is left of its deadline, and a target no longer
//! wanted is lifted. When the RM cannot be read, the core still decides from the capacity and
//! allocation it saw last, writes nothing to the RM, and protects running work through the
//! guarders.

use std::collections::HashMap;

use yarn_types::TargetRequest;

use super::LoopSettings;
use super::availability::NodeReading;
use super::rate::WriteBudget;
use crate::policy::{
    BatchAllocatable, Decision, DecisionInput, Direction, Foresight, KeepReason, MeasuredUse,
    Resize, ResizePolicy, ResizeReason, Resources, decide,
};

/// What the RM says of one NM this tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RmView {
    /// Registered, with this capacity and allocation.
    Registered {
        /// Capacity on the RM.
        capacity: Resources,
        /// What its containers were allocated.
        allocated: Resources,
    },
    /// Not (yet) registered.
    NotRegistered,
    /// The RM could not be read this tick.
    Unreadable,
}

/// What an NM's guarder says this tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuarderView {
    /// Its status: the target it enforces and what the containers use.
    Status {
        /// The target in force, if any.
        target: Option<Resources>,
        /// What the containers use.
        used: MeasuredUse,
    },
    /// It did not answer.
    Unreachable,
    /// The NM has no guarder address (yet).
    Absent,
}

/// Everything the loop read about one NM this tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// Kubernetes node.
    pub node: String,
    /// The RM's view.
    pub rm: RmView,
    /// This tick's availability, or why there is none (a stable category).
    pub reading: Result<NodeReading, &'static str>,
    /// The guarder's view.
    pub guarder: GuarderView,
    /// Koordinator's batch allocatable from the Node object, when known; else the exporter's
    /// copy in the reading is used.
    pub node_allocatable: Option<BatchAllocatable>,
    /// Future availability (only a simulator knows it).
    pub foresight: Option<Foresight>,
}

/// What the core decided for one NM.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Planned {
    /// Nothing to change.
    Kept(KeepReason),
    /// Not registered with the RM (yet).
    NotRegistered,
    /// The RM could not be read and was never read for this NM: nothing is known.
    Unknown,
    /// A new capacity for the RM.
    Resize {
        /// Before.
        from: Resources,
        /// After.
        to: Resources,
        /// Grow or shrink.
        direction: Direction,
        /// Why.
        reason: ResizeReason,
    },
    /// Same capacity, but running containers hold more than the node sustains: only the
    /// guarder acts.
    GuarderOnly {
        /// Why.
        reason: ResizeReason,
    },
    /// The RM could not be read: its capacity stays, the guarder protects what runs.
    ProtectWithoutRm {
        /// Why.
        reason: ResizeReason,
    },
    /// The RM write budget is spent; decided again next tick.
    RateLimited,
}

/// The core's commands for one NM, to be carried out in this order.
#[derive(Clone, Debug, PartialEq)]
pub struct NmCommands {
    /// Kubernetes node.
    pub node: String,
    /// What was decided.
    pub planned: Planned,
    /// New capacity for the RM, first.
    pub rm_capacity: Option<Resources>,
    /// Target for the guarder, after the RM took its capacity (when there was one to write).
    pub guarder_target: Option<TargetRequest>,
    /// Capacity the decision started from (the last known one when the RM was unreadable).
    pub capacity: Resources,
    /// Allocation the decision saw.
    pub allocated: Resources,
    /// Age of the availability used, seconds (`None`: never read).
    pub metrics_age_seconds: Option<u64>,
    /// Why this tick's reading failed, if it did.
    pub metrics_error: Option<&'static str>,
}

/// Reason a guarder gets with a target that lifts an older one.
pub const LIFT_REASON: &str = "lift";

/// What a guarder should hold.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum GuarderIntent {
    /// No limit: the NM's containers may use what the RM gives them.
    #[default]
    Free,
    /// Running containers keep at most `keep`, reached by `deadline_at`.
    Hold {
        keep: Resources,
        deadline_at: u64,
        reason: ResizeReason,
    },
}

#[derive(Clone, Debug)]
struct NmState {
    first_seen: u64,
    last_grow: Option<u64>,
    last_shrink: Option<u64>,
    reading: Option<(NodeReading, u64)>,
    rm: Option<(Resources, Resources)>,
    intent: GuarderIntent,
    /// The intent a resize brings, once the write budget lets it through.
    pending: Option<GuarderIntent>,
}

/// One pool's decisions.
#[derive(Debug)]
pub struct LoopCore {
    settings: LoopSettings,
    policy: Box<dyn ResizePolicy>,
    budget: WriteBudget,
    states: HashMap<String, NmState>,
}

impl LoopCore {
    /// The core of a pool with these settings.
    pub fn new(settings: LoopSettings) -> LoopCore {
        LoopCore {
            policy: settings.policy.build(),
            budget: WriteBudget::new(settings.rm_writes_per_second, settings.rm_write_burst),
            settings,
            states: HashMap::new(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &LoopSettings {
        &self.settings
    }

    /// New settings (the pool's spec changed). The write budget starts afresh only when its
    /// rate changed: refilling it on every change would let frequent edits exceed that rate.
    pub fn update_settings(&mut self, settings: LoopSettings) {
        if settings.policy != self.settings.policy {
            self.policy = settings.policy.build();
        }
        if (settings.rm_writes_per_second, settings.rm_write_burst)
            != (
                self.settings.rm_writes_per_second,
                self.settings.rm_write_burst,
            )
        {
            self.budget = WriteBudget::new(settings.rm_writes_per_second, settings.rm_write_burst);
        }
        self.settings = settings;
    }

    /// Replaces the RM write budget (tests).
    pub fn set_budget(&mut self, budget: WriteBudget) {
        self.budget = budget;
    }

    /// Decides every NM at `now_seconds` (any epoch; only differences matter). NMs not in
    /// `observations` are forgotten, so that a returning one starts afresh.
    pub fn plan(&mut self, now_seconds: u64, observations: &[Observation]) -> Vec<NmCommands> {
        self.states
            .retain(|node, _| observations.iter().any(|o| &o.node == node));
        let mut plans: Vec<(NmCommands, Option<Direction>)> = observations
            .iter()
            .map(|o| self.decide_one(now_seconds, o))
            .collect();
        // Shrinks take the write budget first: they protect running work.
        let mut order: Vec<usize> = (0..plans.len()).collect();
        order.sort_by_key(|&i| match plans[i].1 {
            Some(Direction::Shrink) => 0,
            Some(Direction::Grow) => 1,
            None => 2,
        });
        for index in order {
            let (commands, _) = &mut plans[index];
            if commands.rm_capacity.is_some() && !self.budget.try_take(now_seconds as f64) {
                commands.rm_capacity = None;
                commands.planned = Planned::RateLimited;
                continue;
            }
            self.commit(commands);
        }
        // The guarders last, level-triggered: whatever was decided, each should hold its intent.
        for ((commands, _), observation) in plans.iter_mut().zip(observations) {
            commands.guarder_target = self.guarder_command(now_seconds, observation);
        }
        plans.into_iter().map(|(commands, _)| commands).collect()
    }

    /// The RM took `node`'s new capacity: its grow or shrink time is now.
    pub fn rm_written(&mut self, node: &str, direction: Direction, now_seconds: u64) {
        if let Some(state) = self.states.get_mut(node) {
            match direction {
                Direction::Grow => state.last_grow = Some(now_seconds),
                Direction::Shrink => state.last_shrink = Some(now_seconds),
            }
        }
    }

    fn decide_one(
        &mut self,
        now: u64,
        observation: &Observation,
    ) -> (NmCommands, Option<Direction>) {
        let settings = self.settings.settings;
        let state = self
            .states
            .entry(observation.node.clone())
            .or_insert_with(|| NmState {
                first_seen: now,
                last_grow: None,
                last_shrink: None,
                reading: None,
                rm: None,
                intent: GuarderIntent::Free,
                pending: None,
            });
        let metrics_error = match &observation.reading {
            Ok(reading) => {
                state.reading = Some((*reading, now));
                None
            }
            Err(category) => Some(*category),
        };
        let aged = state
            .reading
            .map(|(reading, at)| aged(reading, now.saturating_sub(at)));
        let mut commands = NmCommands {
            node: observation.node.clone(),
            planned: Planned::Unknown,
            rm_capacity: None,
            guarder_target: None,
            capacity: Resources::default(),
            allocated: Resources::default(),
            metrics_age_seconds: aged.map(|r| r.availability.age_seconds),
            metrics_error,
        };
        let rm_readable = match observation.rm {
            RmView::Registered {
                capacity,
                allocated,
            } => {
                state.rm = Some((capacity, allocated));
                true
            }
            RmView::NotRegistered => {
                // A new registration starts with the guarder free.
                state.rm = None;
                state.intent = GuarderIntent::Free;
                commands.planned = Planned::NotRegistered;
                return (commands, None);
            }
            RmView::Unreadable => false,
        };
        let Some((current, allocated)) = state.rm else {
            return (commands, None);
        };
        commands.capacity = current;
        commands.allocated = allocated;
        let never_read_for = now.saturating_sub(state.first_seen);
        let decision = if aged.is_none() && never_read_for < settings.shrink_to_floor_after_seconds
        {
            // Never read yet (a new NM, or the operator just started): hold, as for stale
            // metrics, until the floor rule's time has passed.
            Decision::Keep(KeepReason::StaleMetrics)
        } else {
            let input = decision_input(state, observation, aged, now);
            decide(self.policy.as_ref(), &settings, &input)
        };
        let resize = match decision {
            Decision::Keep(reason) => {
                commands.planned = Planned::Kept(reason);
                return (commands, None);
            }
            Decision::Resize(resize) => resize,
        };
        let direction = plan_resize(state, &mut commands, &resize, rm_readable, now);
        (commands, direction)
    }

    /// A decision the budget let through: what the guarder should hold follows it.
    fn commit(&mut self, commands: &NmCommands) {
        if let Some(state) = self.states.get_mut(&commands.node)
            && let Some(intent) = state.pending.take()
        {
            state.intent = intent;
        }
    }

    /// The target to send so that the guarder holds what it should, if it does not.
    fn guarder_command(&mut self, now: u64, observation: &Observation) -> Option<TargetRequest> {
        let state = self.states.get_mut(&observation.node)?;
        state.pending = None;
        let reported = match observation.guarder {
            GuarderView::Absent => return None,
            GuarderView::Unreachable => None,
            GuarderView::Status { target, .. } => Some(target),
        };
        let settings = &self.settings.settings;
        match state.intent {
            GuarderIntent::Hold {
                keep,
                deadline_at,
                reason,
            } => (reported != Some(Some(keep))).then(|| TargetRequest {
                vcores: keep.vcores,
                memory_mb: keep.memory_mb,
                deadline_seconds: u32::try_from(deadline_at.saturating_sub(now))
                    .unwrap_or(u32::MAX),
                reason: reason.category().to_owned(),
            }),
            GuarderIntent::Free => {
                let ceiling = settings.bounds.ceiling;
                let lower = reported.flatten().filter(|t| !ceiling.fits_in(t));
                lower.map(|_| TargetRequest {
                    vcores: ceiling.vcores,
                    memory_mb: ceiling.memory_mb,
                    deadline_seconds: settings.grace_period_seconds,
                    reason: LIFT_REASON.to_owned(),
                })
            }
        }
    }
}

/// `reading` as it stands `extra` seconds after it was read.
fn aged(reading: NodeReading, extra: u64) -> NodeReading {
    let mut reading = reading;
    reading.availability.age_seconds = reading.availability.age_seconds.saturating_add(extra);
    if let Some(b) = reading.batch_allocatable.as_mut() {
        b.age_seconds = b.age_seconds.saturating_add(extra);
    }
    reading
}

/// What a policy decides on: the NM's state as the RM, the guarder and its metrics show it.
fn decision_input(
    state: &NmState,
    observation: &Observation,
    aged: Option<NodeReading>,
    now: u64,
) -> DecisionInput {
    let (current, allocated) = state.rm.unwrap_or_default();
    DecisionInput {
        now_seconds: now,
        current,
        allocated,
        used: match observation.guarder {
            GuarderView::Status { used, .. } => Some(used),
            GuarderView::Unreachable | GuarderView::Absent => None,
        },
        availability: aged.map(|r| r.availability),
        batch_allocatable: observation
            .node_allocatable
            .or_else(|| aged.and_then(|r| r.batch_allocatable)),
        foresight: observation.foresight,
        last_grow_seconds: state.last_grow,
        last_shrink_seconds: state.last_shrink,
    }
}

/// Turns a resize into commands and the guarder intent it implies; returns the direction when
/// the RM is to be written.
fn plan_resize(
    state: &mut NmState,
    commands: &mut NmCommands,
    resize: &Resize,
    rm_readable: bool,
    now: u64,
) -> Option<Direction> {
    let current = commands.capacity;
    let hold = resize.guarder_target.map(|keep| GuarderIntent::Hold {
        keep,
        deadline_at: now + u64::from(resize.guarder_deadline_seconds),
        reason: resize.reason,
    });
    if !rm_readable {
        // Nothing can be written to the RM; running work is still protected.
        match (resize.direction, hold) {
            (Direction::Shrink, Some(hold)) => {
                state.intent = hold;
                commands.planned = Planned::ProtectWithoutRm {
                    reason: resize.reason,
                };
            }
            _ => commands.planned = Planned::Kept(KeepReason::Unchanged),
        }
        return None;
    }
    if resize.capacity == current {
        if let Some(hold) = hold {
            state.intent = hold;
        }
        commands.planned = Planned::GuarderOnly {
            reason: resize.reason,
        };
        return None;
    }
    commands.planned = Planned::Resize {
        from: current,
        to: resize.capacity,
        direction: resize.direction,
        reason: resize.reason,
    };
    commands.rm_capacity = Some(resize.capacity);
    // The intent changes with the write (see `commit`), once the budget allowed it.
    state.pending = Some(match resize.direction {
        Direction::Grow => GuarderIntent::Free,
        Direction::Shrink => hold.unwrap_or(GuarderIntent::Free),
    });
    Some(resize.direction)
}

#[cfg(test)]
mod tests;
