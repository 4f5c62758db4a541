//! The guarder's decisions, without processes: given a target and what each container uses,
//! which containers to signal, how, and when to kill what is still there.
//!
//! Semantics of a target (see `docs/decisions.md`, "Guarder targets"):
//! * Use is measured (CPU cores over the last scan, resident memory), and compared with the
//!   target in vcores (`cores_per_vcore` cores each) and MiB. A target at or above current use
//!   is a no-op that is recorded.
//! * Victims come from [`plan_shrink`] over the containers not already leaving, for the excess
//!   that the leaving ones will not free. Spark executors get SIGPWR when the pool turns Spark
//!   decommissioning on and the deadline leaves at least a grace period; every other container,
//!   and every container when the deadline is shorter than the grace period, gets SIGTERM.
//! * A victim still there at `max(signal + grace, deadline)` gets SIGKILL, unless use came
//!   within the target first: containers that end by themselves count, and the guarder stops as
//!   soon as the target is met.
//! * A zero target with a deadline beyond the grace period is a drain of the whole NM (its RM
//!   capacity is already zero: nothing new arrives). Its victims are not all signalled at once:
//!   ordered by rank with ApplicationMasters last, the i-th of n is signalled at
//!   `now + (deadline - grace - now) * i / n`, so work has the drain window to finish by itself,
//!   every victim still gets a whole grace period before the deadline, and an AM outlives its
//!   tasks. A victim whose turn has not come is never signalled once the target is met.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::TargetRequest;
use crate::container::{ContainerId, Framework};
use crate::ranking::{Candidate, Excess, RankingWeights, Release, plan_shrink, rank};

/// How the guarder drains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrainSettings {
    /// Time a signalled container gets before SIGKILL, milliseconds.
    pub grace_ms: u64,
    /// The pool runs Spark with `spark.decommission.enabled`: executors handle SIGPWR.
    pub spark_decommission: bool,
    /// Physical cores per YARN vcore.
    pub cores_per_vcore: f64,
    /// Never choose an ApplicationMaster, even when nothing else can free enough.
    pub spare_application_masters: bool,
    /// Ranking weights.
    pub weights: RankingWeights,
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings {
            grace_ms: 120_000,
            spark_decommission: false,
            cores_per_vcore: 1.0,
            spare_application_masters: false,
            weights: RankingWeights::default(),
        }
    }
}

/// What one container uses now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContainerUse {
    /// The container.
    pub id: ContainerId,
    /// What it runs.
    pub framework: Framework,
    /// An ApplicationMaster.
    pub application_master: bool,
    /// Seconds since it started.
    pub running_seconds: u64,
    /// CPU cores used over the last scan.
    pub cpu_cores: f64,
    /// Memory used, MiB.
    pub memory_mb: f64,
}

/// A signal to send to a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SignalKind {
    /// SIGPWR to the Spark executor's JVM.
    Decommission,
    /// SIGTERM to every process of the container.
    Terminate,
    /// SIGKILL to every process of the container.
    Kill,
}

impl SignalKind {
    /// Stable label for metrics.
    pub const fn label(self) -> &'static str {
        match self {
            SignalKind::Decommission => "SIGPWR",
            SignalKind::Terminate => "SIGTERM",
            SignalKind::Kill => "SIGKILL",
        }
    }
}

/// One signal the drainer decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// The container.
    pub container: ContainerId,
    /// The signal.
    pub kind: SignalKind,
    /// What the container runs.
    pub framework: Framework,
}

/// The target in force.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTarget {
    /// Vcores the containers may keep.
    pub vcores: u32,
    /// MiB the containers may keep.
    pub memory_mb: u64,
    /// Why the operator asked.
    pub reason: String,
    /// When it arrived (guarder's monotonic milliseconds).
    pub received_at_ms: u64,
    /// When it must be met (guarder's monotonic milliseconds).
    pub deadline_at_ms: u64,
}

/// What a new target means right now.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum TargetOutcome {
    /// Current use is within the target: nothing to free (recorded).
    NoOp {
        /// Vcores in use.
        used_vcores: f64,
        /// MiB in use.
        used_memory_mb: f64,
    },
    /// Containers will be freed.
    Shrinking {
        /// Vcores above the target.
        excess_vcores: f64,
        /// MiB above the target.
        excess_memory_mb: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Victim {
    framework: Framework,
    signal: SignalKind,
    /// When it is (or was) due for its graceful signal.
    signal_at_ms: u64,
    /// Whether that signal went out.
    signaled: bool,
    kill_at_ms: Option<u64>,
    killed: bool,
}

/// A container being freed, for the status page.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeavingContainer {
    /// The container.
    pub container: String,
    /// What it runs.
    pub framework: Framework,
    /// The graceful signal it gets.
    pub signal: SignalKind,
    /// When it got it, or is due to (guarder's monotonic milliseconds).
    pub signaled_at_ms: u64,
    /// Whether it got it already (a drain spreads signals over its window).
    pub signaled: bool,
    /// When it is killed if still there and the target still unmet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill_at_ms: Option<u64>,
    /// Already killed.
    pub killed: bool,
}

/// The drainer's state.
#[derive(Clone, Debug)]
pub struct Drainer {
    settings: DrainSettings,
    target: Option<ActiveTarget>,
    victims: BTreeMap<ContainerId, Victim>,
    left_after_signal: u64,
    no_op_targets: u64,
}

/// Total use in vcores and MiB.
pub fn total_use(containers: &[ContainerUse], cores_per_vcore: f64) -> (f64, f64) {
    containers.iter().fold((0.0, 0.0), |(v, m), c| {
        (v + c.cpu_cores / cores_per_vcore, m + c.memory_mb)
    })
}

impl Drainer {
    /// A drainer with no target.
    pub fn new(settings: DrainSettings) -> Drainer {
        Drainer {
            settings,
            target: None,
            victims: BTreeMap::new(),
            left_after_signal: 0,
            no_op_targets: 0,
        }
    }

    /// The settings.
    pub const fn settings(&self) -> &DrainSettings {
        &self.settings
    }

    /// The target in force.
    pub const fn target(&self) -> Option<&ActiveTarget> {
        self.target.as_ref()
    }

    /// Containers signalled that left by themselves or were killed, and targets that were
    /// no-ops.
    pub const fn counts(&self) -> (u64, u64) {
        (self.left_after_signal, self.no_op_targets)
    }

    /// True when the container was asked to leave and is still there.
    pub fn is_leaving(&self, id: &ContainerId) -> bool {
        self.victims.contains_key(id)
    }

    /// Containers being freed.
    pub fn leaving(&self) -> Vec<LeavingContainer> {
        self.victims
            .iter()
            .map(|(id, v)| LeavingContainer {
                container: id.to_string(),
                framework: v.framework,
                signal: v.signal,
                signaled_at_ms: v.signal_at_ms,
                signaled: v.signaled,
                kill_at_ms: v.kill_at_ms,
                killed: v.killed,
            })
            .collect()
    }

    /// Takes a new target; it replaces the previous one. Signals follow at the next
    /// [`Drainer::tick`].
    pub fn set_target(
        &mut self,
        now_ms: u64,
        request: &TargetRequest,
        containers: &[ContainerUse],
    ) -> TargetOutcome {
        let deadline_at_ms = now_ms + u64::from(request.deadline_seconds) * 1000;
        self.target = Some(ActiveTarget {
            vcores: request.vcores,
            memory_mb: request.memory_mb,
            reason: request.reason.clone(),
            received_at_ms: now_ms,
            deadline_at_ms,
        });
        let (used_vcores, used_memory_mb) = total_use(containers, self.settings.cores_per_vcore);
        let excess_vcores = used_vcores - f64::from(request.vcores);
        let excess_memory_mb = used_memory_mb - request.memory_mb as f64;
        if excess_vcores <= 0.0 && excess_memory_mb <= 0.0 {
            self.no_op_targets += 1;
            TargetOutcome::NoOp {
                used_vcores,
                used_memory_mb,
            }
        } else {
            TargetOutcome::Shrinking {
                excess_vcores: excess_vcores.max(0.0),
                excess_memory_mb: excess_memory_mb.max(0.0),
            }
        }
    }

    /// Candidates in the order they would be freed.
    pub fn ranked<'a>(&self, containers: &'a [ContainerUse]) -> Vec<&'a ContainerUse> {
        let candidates: Vec<Candidate> = containers.iter().map(|c| self.candidate(c)).collect();
        rank(&candidates, &self.settings.weights)
            .into_iter()
            .map(|index| &containers[index])
            .collect()
    }

    fn candidate(&self, c: &ContainerUse) -> Candidate {
        Candidate {
            vcores: (c.cpu_cores / self.settings.cores_per_vcore)
                .ceil()
                .clamp(0.0, f64::from(u32::MAX)) as u32,
            memory_mb: c.memory_mb.ceil().max(0.0) as u64,
            framework: c.framework,
            application_master: c.application_master,
            release: Release::for_framework(c.framework, self.settings.spark_decommission),
            running_seconds: c.running_seconds,
        }
    }

    /// One step: forget containers that left, kill overdue victims, and signal new victims
    /// for what is still above the target.
    pub fn tick(&mut self, now_ms: u64, containers: &[ContainerUse]) -> Vec<Order> {
        let mut left_after_signal = 0;
        self.victims.retain(|id, victim| {
            let present = containers.iter().any(|c| c.id == *id);
            if !present && victim.signaled {
                left_after_signal += 1;
            }
            present
        });
        self.left_after_signal += left_after_signal;
        let Some(target) = self.target.clone() else {
            return Vec::new();
        };
        let (used_vcores, used_memory_mb) = total_use(containers, self.settings.cores_per_vcore);
        if used_vcores <= f64::from(target.vcores) && used_memory_mb <= target.memory_mb as f64 {
            // Met: those still leaving were asked gracefully and may finish in peace; those
            // whose turn has not come are not asked at all.
            self.victims.retain(|_, victim| victim.signaled);
            for victim in self.victims.values_mut() {
                victim.kill_at_ms = None;
            }
            return Vec::new();
        }
        let mut orders = Vec::new();
        for (id, victim) in &mut self.victims {
            if !victim.signaled && now_ms >= victim.signal_at_ms {
                victim.signaled = true;
                victim.signal_at_ms = now_ms;
                victim.kill_at_ms =
                    Some((now_ms + self.settings.grace_ms).max(target.deadline_at_ms));
                orders.push(Order {
                    container: *id,
                    kind: victim.signal,
                    framework: victim.framework,
                });
                continue;
            }
            if victim.killed || victim.kill_at_ms.is_none_or(|at| now_ms < at) {
                continue;
            }
            victim.killed = true;
            orders.push(Order {
                container: *id,
                kind: SignalKind::Kill,
                framework: victim.framework,
            });
        }
        let leaving: Vec<&ContainerUse> = containers
            .iter()
            .filter(|c| self.victims.contains_key(&c.id))
            .collect();
        let staying: Vec<ContainerUse> = containers
            .iter()
            .filter(|c| !self.victims.contains_key(&c.id))
            .filter(|c| !(self.settings.spare_application_masters && c.application_master))
            .copied()
            .collect();
        let leaving_vcores: f64 = leaving
            .iter()
            .map(|c| c.cpu_cores / self.settings.cores_per_vcore)
            .sum();
        let leaving_memory_mb: f64 = leaving.iter().map(|c| c.memory_mb).sum();
        let need_vcores = used_vcores - leaving_vcores - f64::from(target.vcores);
        let need_memory_mb = used_memory_mb - leaving_memory_mb - target.memory_mb as f64;
        if need_vcores <= 0.0 && need_memory_mb <= 0.0 {
            return orders;
        }
        let excess = Excess {
            vcores: need_vcores.max(0.0).ceil() as u64,
            memory_mb: need_memory_mb.max(0.0).ceil() as u64,
        };
        let candidates: Vec<Candidate> = staying.iter().map(|c| self.candidate(c)).collect();
        let plan = plan_shrink(&candidates, excess, &self.settings.weights);
        // The urgency the target was sent with, not what is left of it: a deadline of exactly the
        // grace period (what the operator sends for a normal shrink) would otherwise count as
        // short a millisecond after it arrived, and Spark executors would get SIGTERM instead of
        // SIGPWR depending on when the scan ran.
        let short_deadline =
            target.deadline_at_ms.saturating_sub(target.received_at_ms) < self.settings.grace_ms;
        let kill_at_ms = (now_ms + self.settings.grace_ms).max(target.deadline_at_ms);
        // ApplicationMasters after their tasks; the plan keeps rank order otherwise.
        let mut chosen: Vec<usize> = plan.victims;
        chosen.sort_by_key(|index| staying[*index].application_master);
        let schedule = self.signal_times(now_ms, &target, chosen.len());
        for (index, signal_at_ms) in chosen.into_iter().zip(schedule) {
            let container = &staying[index];
            let signal = match candidates[index].release {
                Release::Decommission if !short_deadline => SignalKind::Decommission,
                _ => SignalKind::Terminate,
            };
            let due = signal_at_ms <= now_ms;
            self.victims.insert(
                container.id,
                Victim {
                    framework: container.framework,
                    signal,
                    signal_at_ms,
                    signaled: due,
                    kill_at_ms: due.then_some(kill_at_ms),
                    killed: false,
                },
            );
            if due {
                orders.push(Order {
                    container: container.id,
                    kind: signal,
                    framework: container.framework,
                });
            }
        }
        orders
    }

    /// When each of `victims` (in order) gets its graceful signal: all now, except in a drain
    /// of the whole NM (a zero target) whose deadline leaves room, where they are spread from
    /// now to a grace period before the deadline.
    fn signal_times(&self, now_ms: u64, target: &ActiveTarget, victims: usize) -> Vec<u64> {
        let drain = target.vcores == 0 && target.memory_mb == 0;
        let window_end = target.deadline_at_ms.saturating_sub(self.settings.grace_ms);
        if !drain || window_end <= now_ms || victims == 0 {
            return vec![now_ms; victims];
        }
        let window = window_end - now_ms;
        (0..victims as u64)
            .map(|i| now_ms + window * i / victims as u64)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(number: u64, framework: Framework, cpu: f64, memory: f64) -> ContainerUse {
        let id: ContainerId = format!("container_e01_1700000000000_0001_01_{number:06}")
            .parse()
            .unwrap();
        ContainerUse {
            id,
            framework,
            application_master: number == 1,
            running_seconds: 600,
            cpu_cores: cpu,
            memory_mb: memory,
        }
    }

    fn request(vcores: u32, memory_mb: u64, deadline_seconds: u32) -> TargetRequest {
        TargetRequest {
            vcores,
            memory_mb,
            deadline_seconds,
            reason: "test".to_owned(),
        }
    }

    fn settings(spark_decommission: bool) -> DrainSettings {
        DrainSettings {
            grace_ms: 60_000,
            spark_decommission,
            ..DrainSettings::default()
        }
    }

    fn node() -> Vec<ContainerUse> {
        vec![
            container(1, Framework::SparkApplicationMaster, 1.0, 2048.0),
            container(2, Framework::SparkExecutor, 4.0, 8192.0),
            container(3, Framework::SparkExecutor, 4.0, 8192.0),
            container(4, Framework::MapReduceTask, 2.0, 4096.0),
        ]
    }

    #[test]
    fn a_target_above_use_is_a_recorded_no_op() {
        let mut drainer = Drainer::new(settings(true));
        let outcome = drainer.set_target(0, &request(16, 32_768, 600), &node());
        assert_eq!(
            outcome,
            TargetOutcome::NoOp {
                used_vcores: 11.0,
                used_memory_mb: 22_528.0
            }
        );
        assert!(drainer.tick(1_000, &node()).is_empty());
        assert_eq!(drainer.counts().1, 1);
    }

    #[test]
    fn spark_executors_get_sigpwr_and_are_killed_only_if_still_needed() {
        let mut drainer = Drainer::new(settings(true));
        drainer.set_target(0, &request(7, 32_768, 600), &node());
        let orders = drainer.tick(0, &node());
        // 11 vcores used, 7 allowed: one executor (4 vcores) covers it, and leaves gracefully.
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].kind, SignalKind::Decommission);
        assert_eq!(orders[0].framework, Framework::SparkExecutor);
        let victim = orders[0].container;
        // Still there before the deadline: nothing more.
        assert!(drainer.tick(300_000, &node()).is_empty());
        // At max(signal + grace, deadline) = 600 s it is killed.
        let kills = drainer.tick(600_000, &node());
        assert_eq!(
            kills,
            [Order {
                container: victim,
                kind: SignalKind::Kill,
                framework: Framework::SparkExecutor
            }]
        );
        assert!(drainer.tick(700_000, &node()).is_empty(), "killed once");
    }

    #[test]
    fn a_container_that_leaves_by_itself_is_not_killed_and_counts() {
        let mut drainer = Drainer::new(settings(true));
        drainer.set_target(0, &request(7, 32_768, 600), &node());
        let victim = drainer.tick(0, &node())[0].container;
        let remaining: Vec<ContainerUse> = node().into_iter().filter(|c| c.id != victim).collect();
        assert!(drainer.tick(10_000, &remaining).is_empty());
        assert!(drainer.tick(600_000, &remaining).is_empty());
        assert_eq!(drainer.counts().0, 1);
    }

    #[test]
    fn meeting_the_target_cancels_pending_kills() {
        let mut drainer = Drainer::new(settings(true));
        drainer.set_target(0, &request(7, 32_768, 600), &node());
        drainer.tick(0, &node());
        // Online load fell: the other containers went idle and use is within target.
        let mut quiet = node();
        for c in &mut quiet {
            c.cpu_cores = 0.5;
        }
        assert!(drainer.tick(1_000, &quiet).is_empty());
        assert!(
            drainer
                .tick(900_000, &node())
                .iter()
                .all(|o| o.kind != SignalKind::Kill)
        );
    }

    #[test]
    fn a_deadline_shorter_than_the_grace_period_terminates_everyone() {
        let mut drainer = Drainer::new(settings(true));
        drainer.set_target(0, &request(0, 0, 10), &node());
        let orders = drainer.tick(0, &node());
        assert_eq!(
            orders.len(),
            4,
            "a zero target frees everything, the AM last"
        );
        assert!(orders.iter().all(|o| o.kind == SignalKind::Terminate));
        // Killed a grace period after the signal, as the deadline is earlier.
        assert!(drainer.tick(59_999, &node()).is_empty());
        assert_eq!(drainer.tick(60_000, &node()).len(), 4);
    }

    #[test]
    fn a_deadline_of_exactly_the_grace_period_decommissions_whenever_the_scan_runs() {
        for scan_after_ms in [0, 1, 250, 5_000] {
            let mut drainer = Drainer::new(settings(true));
            drainer.set_target(1_000, &request(7, 32_768, 60), &node());
            let orders = drainer.tick(1_000 + scan_after_ms, &node());
            assert_eq!(orders.len(), 1, "{scan_after_ms} ms");
            assert_eq!(
                orders[0].kind,
                SignalKind::Decommission,
                "scanned {scan_after_ms} ms after the target"
            );
        }
    }

    #[test]
    fn without_spark_decommissioning_executors_get_sigterm() {
        let mut drainer = Drainer::new(settings(false));
        drainer.set_target(0, &request(7, 32_768, 600), &node());
        let orders = drainer.tick(0, &node());
        assert!(orders.iter().all(|o| o.kind == SignalKind::Terminate));
    }

    #[test]
    fn the_am_survives_while_others_can_free_enough_and_always_when_spared() {
        let mut drainer = Drainer::new(settings(true));
        drainer.set_target(0, &request(1, 2048, 600), &node());
        let chosen: Vec<ContainerId> = drainer
            .tick(0, &node())
            .iter()
            .map(|o| o.container)
            .collect();
        assert_eq!(chosen.len(), 3);
        assert!(!chosen.contains(&node()[0].id));
        let mut spared = Drainer::new(DrainSettings {
            spare_application_masters: true,
            ..settings(true)
        });
        spared.set_target(0, &request(0, 0, 600), &node());
        // A drain: signals spread over the window; none ever reaches the spared AM.
        let chosen: Vec<ContainerId> = (0..=600)
            .flat_map(|second| spared.tick(second * 1_000, &node()))
            .map(|o| o.container)
            .collect();
        assert!(!chosen.is_empty());
        assert!(!chosen.contains(&node()[0].id));
    }

    #[test]
    fn a_drain_spreads_its_signals_over_the_window_with_the_am_last() {
        let mut drainer = Drainer::new(settings(true));
        // Drain everything by 600 s; the grace period is 60 s: signals from 0 to 540 s.
        drainer.set_target(0, &request(0, 0, 600), &node());
        let mut signalled: Vec<(u64, Order)> = Vec::new();
        for now in (0..=600_000).step_by(1_000) {
            for order in drainer.tick(now, &node()) {
                signalled.push((now, order));
            }
        }
        let graceful: Vec<&(u64, Order)> = signalled
            .iter()
            .filter(|(_, o)| o.kind != SignalKind::Kill)
            .collect();
        let times: Vec<u64> = graceful.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [0, 135_000, 270_000, 405_000], "{signalled:?}");
        assert_eq!(
            graceful.last().map(|(_, o)| o.framework),
            Some(Framework::SparkApplicationMaster),
            "the AM last"
        );
        // Each was killed no sooner than a grace period after its signal and the deadline.
        for (at, order) in signalled.iter().filter(|(_, o)| o.kind == SignalKind::Kill) {
            let signal = graceful
                .iter()
                .find(|(_, o)| o.container == order.container)
                .map(|(t, _)| *t)
                .expect("a graceful signal first");
            assert!(*at >= (signal + 60_000).max(600_000));
        }
    }

    #[test]
    fn work_that_finishes_during_a_drain_is_never_signalled() {
        let mut drainer = Drainer::new(settings(true));
        drainer.set_target(0, &request(0, 0, 600), &node());
        let first = drainer.tick(0, &node());
        assert_eq!(first.len(), 1, "only the first in rank at once");
        // Everything else ends by itself before its turn.
        let rest: Vec<ContainerUse> = node()
            .into_iter()
            .filter(|c| c.id == first[0].container)
            .collect();
        assert!(drainer.tick(10_000, &rest).is_empty());
        assert!(drainer.tick(500_000, &[]).is_empty());
        assert_eq!(drainer.leaving().len(), 0);
    }

    #[test]
    fn growing_use_after_a_shrink_picks_more_victims() {
        let mut drainer = Drainer::new(settings(true));
        drainer.set_target(0, &request(7, 32_768, 600), &node());
        assert_eq!(drainer.tick(0, &node()).len(), 1);
        let mut busier = node();
        busier[3].cpu_cores = 6.0;
        let more = drainer.tick(1_000, &busier);
        assert_eq!(more.len(), 1, "{more:?}");
        assert_ne!(more[0].kind, SignalKind::Kill);
    }

    proptest::proptest! {
        /// Over random use changing at random times: a container gets at most one graceful
        /// signal, SIGKILL only after one and only once, never before `max(signal + grace,
        /// deadline)`, and nothing at all is sent while use is within the target.
        #[test]
        fn signals_follow_the_rules_whatever_the_use(
            steps in proptest::collection::vec(
                (0u64..20_000, proptest::collection::vec((0f64..8.0, 0f64..8192.0, 0usize..2), 6)),
                1..30,
            ),
            target_vcores in 0u32..30,
            target_memory in 0u64..40_000,
            deadline_seconds in 0u32..120,
        ) {
            let mut drainer = Drainer::new(settings(true));
            let frameworks = [Framework::SparkExecutor, Framework::MapReduceTask];
            let shape = |uses: &[(f64, f64, usize)]| -> Vec<ContainerUse> {
                uses.iter()
                    .enumerate()
                    .map(|(i, (cpu, memory, framework))| {
                        container(i as u64 + 1, frameworks[*framework], *cpu, *memory)
                    })
                    .collect()
            };
            let first = shape(&steps[0].1);
            drainer.set_target(0, &request(target_vcores, target_memory, deadline_seconds), &first);
            let deadline_ms = u64::from(deadline_seconds) * 1000;
            let mut graceful: BTreeMap<ContainerId, u64> = BTreeMap::new();
            let mut killed: Vec<ContainerId> = Vec::new();
            let mut now = 0u64;
            for (gap, uses) in &steps {
                now += gap;
                let containers = shape(uses);
                let (v, m) = total_use(&containers, 1.0);
                let orders = drainer.tick(now, &containers);
                if v <= f64::from(target_vcores) && m <= target_memory as f64 {
                    proptest::prop_assert!(orders.is_empty(), "{orders:?}");
                }
                for order in orders {
                    match order.kind {
                        SignalKind::Kill => {
                            let signalled_at = graceful.get(&order.container).copied();
                            proptest::prop_assert!(signalled_at.is_some(), "killed without a graceful signal");
                            let earliest = (signalled_at.unwrap_or(0) + 60_000).max(deadline_ms);
                            proptest::prop_assert!(now >= earliest);
                            proptest::prop_assert!(!killed.contains(&order.container), "killed twice");
                            killed.push(order.container);
                        }
                        _ => {
                            proptest::prop_assert!(
                                !graceful.contains_key(&order.container),
                                "signalled twice"
                            );
                            graceful.insert(order.container, now);
                        }
                    }
                }
            }
        }
    }
}
