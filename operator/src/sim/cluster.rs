//! One policy on the simulated co-located cluster, second by second.
//!
//! Per second: due events (AM start-ups, graceful exits, SIGKILLs after the grace period, NM
//! restarts); at each sync the policy engine decides every NM's size (RM first, then the
//! guarder); the guarder signals what its target says must go, chosen by the real
//! [`guarder::plan_shrink`]; every node makes progress under Koordinator's limit (containers run
//! slower when YARN uses more CPU than the limit) and Koordinator evicts the NM pod when memory
//! passes its threshold or CPU satisfaction stays too low; the YARN scheduler fills free capacity
//! from a backlog that never runs dry.
//!
//! Work is counted in vcore-seconds at full speed. A container that finishes delivers all of
//! its work; a Spark executor that leaves gracefully delivers what it did; a Spark executor that
//! is killed loses its running task; a MapReduce task that is stopped loses everything it did; an
//! application whose AM dies is restarted (Spark from scratch, MapReduce keeping finished tasks).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use guarder::ranking::Excess;
use guarder::{Candidate, RankingWeights, Release, plan_shrink};
use serde::{Deserialize, Serialize};

use super::config::SimConfig;
use super::node::{NodeTimeline, seeded};
use super::workload::{AppSpec, ContainerKind, ContainerRequest, WorkloadGenerator};
use crate::policy::{CapacityBounds, MeasuredUse, PolicyKind, PolicySettings, Resources};
use crate::vertical::LoopSettings;
use crate::vertical::availability::NodeReading;
use crate::vertical::decisions::{
    GuarderView, LIFT_REASON, LoopCore, Observation, Planned, RmView,
};

/// How many requests at the head of the queue the scheduler looks at for one that fits.
const SCHEDULER_LOOKAHEAD: usize = 16;
/// Seconds between two points of the recorded time series.
pub const SERIES_STEP_SECONDS: u32 = 60;

/// Totals of one policy's run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Work kept, vcore-seconds.
    pub delivered_vcore_seconds: f64,
    /// Work thrown away (killed tasks, restarted applications), vcore-seconds.
    pub lost_vcore_seconds: f64,
    /// CPU batch containers really used, core-seconds.
    pub batch_cpu_core_seconds: f64,
    /// CPU online services used, core-seconds.
    pub online_cpu_core_seconds: f64,
    /// Vcores allocated to containers, vcore-seconds.
    pub allocated_vcore_seconds: f64,
    /// NM capacity offered on the RM, vcore-seconds.
    pub capacity_vcore_seconds: f64,
    /// What Koordinator let batch work use, in vcores (CPU, and memory at the pool's ratio,
    /// capped at the NM ceiling), vcore-seconds.
    pub available_vcore_seconds: f64,
    /// Node-seconds with batch CPU throttled below demand.
    pub throttled_node_seconds: u64,
    /// NM pods evicted for low CPU satisfaction.
    pub nm_evictions_cpu: u64,
    /// NM pods evicted for memory.
    pub nm_evictions_memory: u64,
    /// Containers that died with an evicted NM.
    pub containers_lost_to_evictions: u64,
    /// Graceful signals (SIGPWR, SIGTERM) sent by guarders.
    pub graceful_signals: u64,
    /// SIGKILLs after the grace period.
    pub forced_kills: u64,
    /// Containers that ended normally (workers done, AMs of finished applications).
    pub containers_completed: u64,
    /// Applications that finished.
    pub applications_completed: u64,
    /// Application attempts that failed because their AM died.
    pub am_failures: u64,
    /// Capacity changes sent to the RM.
    pub rm_updates: u64,
    /// Targets sent to guarders.
    pub guarder_targets: u64,
}

/// One point of the recorded time series (sums over the pool).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesPoint {
    /// Second of the run.
    pub second: u32,
    /// What Koordinator lets batch work use, vcores (CPU and memory, capped at the NM ceiling).
    pub available_vcores: f64,
    /// NM capacity on the RM, vcores.
    pub capacity_vcores: u64,
    /// Vcores allocated to containers.
    pub allocated_vcores: u64,
    /// NM evictions so far.
    pub nm_evictions: u64,
    /// Graceful signals so far.
    pub graceful_signals: u64,
    /// Forced kills so far.
    pub forced_kills: u64,
}

/// What one policy's run produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRun {
    /// The policy.
    pub policy: PolicyKind,
    /// Totals.
    pub counters: Counters,
    /// Time series, one point per minute.
    pub series: Vec<SeriesPoint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Did all its work.
    Completed,
    /// Left gracefully after SIGPWR.
    Decommissioned,
    /// Exited after SIGTERM.
    Terminated,
    /// SIGKILL after the grace period.
    Killed,
    /// Died with its NM.
    Evicted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    AmReady { app: u32, attempt: u32 },
    Exit { container: u32, generation: u32 },
    Kill { container: u32, generation: u32 },
    NmRestart { node: u32 },
}

#[derive(Clone, Copy, Debug)]
struct Container {
    generation: u32,
    alive: bool,
    request: ContainerRequest,
    node: u32,
    start_tau: f64,
    started_at: u32,
    signalled: bool,
    signalled_at: u32,
    kill_at: u32,
    decommissioning: bool,
}

#[derive(Clone, Debug)]
struct App {
    spec: AppSpec,
    attempt: u32,
    am: Option<(u32, u32)>,
    am_ready: bool,
    waiting: Vec<ContainerRequest>,
    queued: u32,
    queued_vcores: u64,
    running: u32,
    delivered_attempt: f64,
    finished_tasks: Vec<bool>,
    done: bool,
}

#[derive(Clone, Debug, Default)]
struct EvictionWindow {
    samples: VecDeque<(f64, f64, f64)>,
    limit: f64,
    request: f64,
    usage: f64,
}

impl EvictionWindow {
    fn push(&mut self, width: usize, limit: f64, request: f64, usage: f64) {
        self.samples.push_back((limit, request, usage));
        self.limit += limit;
        self.request += request;
        self.usage += usage;
        while self.samples.len() > width {
            if let Some((l, r, u)) = self.samples.pop_front() {
                self.limit -= l;
                self.request -= r;
                self.usage -= u;
            }
        }
    }

    fn clear(&mut self) {
        *self = EvictionWindow::default();
    }
}

#[derive(Clone, Debug)]
struct NodeSim {
    up: bool,
    capacity: Resources,
    allocated: Resources,
    signalled: Resources,
    cpu_demand: f64,
    memory_used: f64,
    tau: f64,
    rate: f64,
    finish: BinaryHeap<Reverse<(u64, u32, u32)>>,
    live: Vec<u32>,
    target: Option<GuarderTarget>,
    eviction: EvictionWindow,
}

/// A guarder target: what running containers may keep and by when.
#[derive(Clone, Copy, Debug, PartialEq)]
struct GuarderTarget {
    keep: Resources,
    deadline_at: u32,
    /// The deadline is shorter than the grace period: SIGTERM every victim.
    fast: bool,
}

fn add(a: Resources, b: Resources) -> Resources {
    Resources::new(a.vcores + b.vcores, a.memory_mb + b.memory_mb)
}

fn sub(a: Resources, b: Resources) -> Resources {
    Resources::new(
        a.vcores.saturating_sub(b.vcores),
        a.memory_mb.saturating_sub(b.memory_mb),
    )
}

fn resources_of(request: &ContainerRequest) -> Resources {
    Resources::new(request.vcores, u64::from(request.memory_mb))
}

/// The name the loop core knows a simulated node by.
fn node_name(index: usize) -> String {
    format!("node-{index}")
}

fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix("node-")?.parse().ok()
}

/// Pool settings of the simulated NMs.
pub fn pool_settings(config: &SimConfig) -> PolicySettings {
    let ratio = u64::from(config.memory_per_vcore_mb);
    let ceiling = config.ceiling();
    let mut settings = PolicySettings::with_bounds(CapacityBounds {
        floor: Resources::new(config.floor_vcores, u64::from(config.floor_vcores) * ratio),
        ceiling: Resources::new(ceiling, u64::from(ceiling) * ratio),
        memory_per_vcore_mb: ratio,
    });
    settings.scale_up_threshold_vcores = config.scale_up_threshold_vcores;
    settings.shrink_tolerance = config.shrink_tolerance;
    settings.elastic = config.elastic;
    settings.grace_period_seconds = config.grace_period_seconds;
    settings
}

struct Simulation<'a> {
    config: &'a SimConfig,
    timelines: &'a [NodeTimeline],
    core: LoopCore,
    settings: PolicySettings,
    weights: RankingWeights,
    generator: WorkloadGenerator,
    nodes: Vec<NodeSim>,
    containers: Vec<Container>,
    free_slots: Vec<u32>,
    apps: Vec<App>,
    queue: VecDeque<ContainerRequest>,
    pending_vcores: u64,
    backlog_target: u64,
    events: BinaryHeap<Reverse<(u32, u64, Event)>>,
    event_seq: u64,
    counters: Counters,
    series: Vec<SeriesPoint>,
}

impl<'a> Simulation<'a> {
    fn new(config: &'a SimConfig, timelines: &'a [NodeTimeline], kind: PolicyKind) -> Self {
        let settings = pool_settings(config);
        let start = settings
            .bounds
            .capacity_for_vcores(settings.bounds.floor.vcores);
        let node = NodeSim {
            up: true,
            capacity: start,
            allocated: Resources::default(),
            signalled: Resources::default(),
            cpu_demand: 0.0,
            memory_used: 0.0,
            tau: 0.0,
            rate: 1.0,
            finish: BinaryHeap::new(),
            live: Vec::new(),
            target: None,
            eviction: EvictionWindow::default(),
        };
        let backlog = config.workload.backlog_share
            * f64::from(settings.bounds.ceiling.vcores)
            * timelines.len() as f64;
        Simulation {
            config,
            timelines,
            core: LoopCore::new(LoopSettings {
                policy: kind,
                settings,
                rm_writes_per_second: config.rm_writes_per_second,
                rm_write_burst: config.rm_write_burst,
                concurrency: 1,
            }),
            settings,
            weights: RankingWeights::default(),
            // One workload stream for every policy: the same applications in the same order.
            generator: WorkloadGenerator::new(
                seeded(config.seed, 3),
                config.workload,
                config.memory_per_vcore_mb,
            ),
            nodes: vec![node; timelines.len()],
            containers: Vec::new(),
            free_slots: Vec::new(),
            apps: Vec::new(),
            queue: VecDeque::new(),
            pending_vcores: 0,
            // Truncation is fine: the backlog target is a rough level.
            backlog_target: backlog.max(8.0) as u64,
            events: BinaryHeap::new(),
            event_seq: 0,
            counters: Counters::default(),
            series: Vec::new(),
        }
    }

    fn schedule_event(&mut self, at: u32, event: Event) {
        self.event_seq += 1;
        self.events.push(Reverse((at, self.event_seq, event)));
    }

    fn step(&mut self, t: u32) {
        while let Some(Reverse((at, _, event))) = self.events.peek().copied() {
            if at > t {
                break;
            }
            self.events.pop();
            self.handle(event, t);
        }
        if t.is_multiple_of(self.config.sync_seconds) {
            self.decide_all(t);
        }
        self.guard_all(t);
        self.advance_nodes(t);
        self.ensure_backlog();
        self.schedule(t);
        if t.is_multiple_of(SERIES_STEP_SECONDS) {
            self.record(t);
        }
    }

    fn handle(&mut self, event: Event, t: u32) {
        match event {
            Event::AmReady { app, attempt } => {
                let state = &mut self.apps[app as usize];
                if state.attempt != attempt || state.done || state.am.is_none() {
                    return;
                }
                state.am_ready = true;
                let waiting = std::mem::take(&mut state.waiting);
                let vcores: u64 = waiting.iter().map(|w| u64::from(w.vcores)).sum();
                state.queued += u32::try_from(waiting.len()).unwrap_or(u32::MAX);
                state.queued_vcores += vcores;
                self.queue.extend(waiting);
                self.check_app_done(app, t);
            }
            Event::Exit {
                container,
                generation,
            } => {
                if let Some(c) = self.live(container, generation) {
                    let how = if c.decommissioning {
                        End::Decommissioned
                    } else {
                        End::Terminated
                    };
                    self.end_container(container, how, t);
                }
            }
            Event::Kill {
                container,
                generation,
            } => {
                // A kill moved earlier leaves its first event behind: only the current one acts.
                if self
                    .live(container, generation)
                    .is_some_and(|c| c.kill_at == t)
                {
                    self.counters.forced_kills += 1;
                    self.end_container(container, End::Killed, t);
                }
            }
            Event::NmRestart { node } => {
                let n = &mut self.nodes[node as usize];
                n.up = true;
                n.eviction.clear();
            }
        }
    }

    fn live(&self, container: u32, generation: u32) -> Option<Container> {
        self.containers
            .get(container as usize)
            .filter(|c| c.alive && c.generation == generation)
            .copied()
    }

    /// One tick of the operator's loop core over the NMs that run: the same decisions, in the
    /// same order (RM first, then the guarder), as the operator makes.
    fn decide_all(&mut self, t: u32) {
        let tick = (t / self.config.sync_seconds) as usize;
        let mut observations = Vec::with_capacity(self.nodes.len());
        for (index, node) in self.nodes.iter().enumerate() {
            if !node.up {
                continue;
            }
            let Some(view) = self.timelines[index].ticks.get(tick) else {
                continue;
            };
            observations.push(Observation {
                node: node_name(index),
                rm: RmView::Registered {
                    capacity: node.capacity,
                    allocated: node.allocated,
                },
                reading: view
                    .availability
                    .map(|availability| NodeReading {
                        availability,
                        batch_allocatable: None,
                    })
                    .ok_or("no_sample"),
                guarder: GuarderView::Status {
                    target: node.target.map(|t| t.keep),
                    used: MeasuredUse {
                        cpu_cores: node
                            .cpu_demand
                            .min(f64::from(self.timelines[index].batch_cpu_cores[t as usize])),
                        memory_mb: node.memory_used,
                    },
                },
                node_allocatable: Some(view.batch_allocatable),
                foresight: Some(view.foresight),
            });
        }
        for commands in self.core.plan(u64::from(t), &observations) {
            let Some(index) = node_index(&commands.node) else {
                continue;
            };
            if let (Some(capacity), Planned::Resize { direction, .. }) =
                (commands.rm_capacity, commands.planned)
            {
                // RM first: no new containers beyond the new capacity from now on.
                self.counters.rm_updates += 1;
                self.nodes[index].capacity = capacity;
                self.core
                    .rm_written(&commands.node, direction, u64::from(t));
            }
            // Then the guarder.
            let Some(request) = commands.guarder_target else {
                continue;
            };
            let target = GuarderTarget {
                keep: Resources::new(request.vcores, request.memory_mb),
                deadline_at: t + request.deadline_seconds,
                fast: request.deadline_seconds < self.config.grace_period_seconds,
            };
            self.nodes[index].target = Some(target);
            self.counters.guarder_targets += 1;
            // A lifted target frees nothing: containers already leaving keep their time.
            if request.reason == LIFT_REASON {
                continue;
            }
            self.hasten_kills(index, target.deadline_at);
            if target.fast {
                self.hurry_decommissions(index, t);
            }
        }
    }

    /// An immediate target cannot wait for executors finishing their tasks: the guarder sends
    /// SIGTERM to those still decommissioning.
    fn hurry_decommissions(&mut self, index: usize, t: u32) {
        let exit_after = self.config.workload.terminate_exit_seconds.max(1);
        let mut hurried = Vec::new();
        let mut sent = 0;
        for &id in &self.nodes[index].live {
            let c = &mut self.containers[id as usize];
            if c.signalled && c.decommissioning {
                // The SIGTERM is a new signal: whether it is obeyed is judged from now on.
                c.decommissioning = false;
                c.signalled_at = t;
                sent += 1;
                if !c.request.stubborn && t + exit_after < c.kill_at {
                    hurried.push((id, c.generation));
                }
            }
        }
        self.counters.graceful_signals += sent;
        for (container, generation) in hurried {
            self.schedule_event(
                t + exit_after,
                Event::Exit {
                    container,
                    generation,
                },
            );
        }
    }

    /// A new, more urgent target brings the SIGKILL of already signalled containers forward
    /// (never sooner than the grace period after their signal).
    fn hasten_kills(&mut self, index: usize, deadline_at: u32) {
        let grace = self.config.grace_period_seconds;
        let mut earlier = Vec::new();
        for &id in &self.nodes[index].live {
            let c = &mut self.containers[id as usize];
            let kill_at = deadline_at.max(c.signalled_at + grace);
            if c.signalled && kill_at < c.kill_at {
                c.kill_at = kill_at;
                earlier.push((id, c.generation, kill_at));
            }
        }
        for (container, generation, at) in earlier {
            self.schedule_event(
                at,
                Event::Kill {
                    container,
                    generation,
                },
            );
        }
    }

    fn guard_all(&mut self, t: u32) {
        for index in 0..self.nodes.len() {
            let node = &self.nodes[index];
            let Some(target) = node.target else {
                continue;
            };
            // Signalled containers count as leaving; but when time is short, one that should
            // have left by now (it ignores SIGTERM) counts as staying, so others are chosen.
            let overdue = if target.fast {
                self.overdue(index, t)
            } else {
                Resources::default()
            };
            let node = &self.nodes[index];
            let unsignalled = add(sub(node.allocated, node.signalled), overdue);
            if !node.up || unsignalled.fits_in(&target.keep) {
                continue;
            }
            let excess = Excess {
                vcores: u64::from(unsignalled.vcores.saturating_sub(target.keep.vcores)),
                memory_mb: unsignalled.memory_mb.saturating_sub(target.keep.memory_mb),
            };
            let (ids, candidates): (Vec<u32>, Vec<Candidate>) = node
                .live
                .iter()
                .filter_map(|&id| {
                    let c = &self.containers[id as usize];
                    (!c.signalled).then(|| (id, self.candidate(c, t, target.fast)))
                })
                .unzip();
            let plan = plan_shrink(&candidates, excess, &self.weights);
            if target.fast && !plan.covers {
                // What ignores SIGTERM while the NM is about to be evicted would die with it:
                // kill it now and keep the NM.
                self.kill_overdue(index, t);
            }
            for victim in plan.victims {
                self.signal(ids[victim], t, target);
            }
        }
    }

    /// A signalled container still running past its expected exit (it ignores SIGTERM).
    fn is_overdue(&self, c: &Container, t: u32) -> bool {
        let patience = self.config.workload.terminate_exit_seconds + 3;
        c.signalled && !c.decommissioning && t >= c.signalled_at + patience
    }

    fn kill_overdue(&mut self, index: usize, t: u32) {
        let overdue: Vec<u32> = self.nodes[index]
            .live
            .iter()
            .copied()
            .filter(|&id| self.is_overdue(&self.containers[id as usize], t))
            .collect();
        for id in overdue {
            self.counters.forced_kills += 1;
            self.end_container(id, End::Killed, t);
        }
    }

    /// Resources of signalled containers still running past their expected exit.
    fn overdue(&self, index: usize, t: u32) -> Resources {
        self.nodes[index]
            .live
            .iter()
            .map(|&id| &self.containers[id as usize])
            .filter(|c| self.is_overdue(c, t))
            .fold(Resources::default(), |sum, c| {
                add(sum, resources_of(&c.request))
            })
    }

    fn candidate(&self, c: &Container, t: u32, fast: bool) -> Candidate {
        let spark = self.apps[c.request.app as usize].spec.spark;
        let framework = c.request.kind.framework(spark);
        Candidate {
            vcores: c.request.vcores,
            memory_mb: u64::from(c.request.memory_mb),
            framework,
            application_master: c.request.kind == ContainerKind::ApplicationMaster,
            release: if fast {
                Release::Terminate
            } else {
                Release::for_framework(framework, self.config.spark_decommission)
            },
            running_seconds: u64::from(t.saturating_sub(c.started_at)),
        }
    }

    fn signal(&mut self, id: u32, t: u32, target: GuarderTarget) {
        let c = self.containers[id as usize];
        let node = &mut self.nodes[c.node as usize];
        let kill_at = target.deadline_at.max(t + self.config.grace_period_seconds);
        let slot = &mut self.containers[id as usize];
        slot.signalled = true;
        slot.signalled_at = t;
        slot.kill_at = kill_at;
        node.signalled = add(node.signalled, resources_of(&c.request));
        self.counters.graceful_signals += 1;
        let workload = &self.config.workload;
        let decommission = c.request.kind == ContainerKind::SparkExecutor
            && self.config.spark_decommission
            && !target.fast;
        self.containers[id as usize].decommissioning = decommission;
        let exit_after = if c.request.stubborn {
            None
        } else if decommission {
            // Decommissioning waits for the running task, at the node's current pace.
            let progress = (node.tau - c.start_tau).clamp(0.0, c.request.work_seconds);
            let in_task = progress % c.request.task_seconds.max(1.0);
            let left = (c.request.task_seconds - in_task).min(c.request.work_seconds - progress);
            let wall = (left / node.rate.max(0.05)).ceil();
            Some(wall.min(f64::from(u32::MAX / 2)) as u32 + workload.decommission_overhead_seconds)
        } else {
            Some(workload.terminate_exit_seconds)
        };
        let generation = c.generation;
        if let Some(after) = exit_after.filter(|after| t + (*after).max(1) < kill_at) {
            self.schedule_event(
                t + after.max(1),
                Event::Exit {
                    container: id,
                    generation,
                },
            );
        }
        self.schedule_event(
            kill_at,
            Event::Kill {
                container: id,
                generation,
            },
        );
    }

    fn advance_nodes(&mut self, t: u32) {
        let second = t as usize;
        let width = self.config.koordinator.cpu_evict_window_seconds.max(1) as usize;
        for index in 0..self.nodes.len() {
            let timeline = &self.timelines[index];
            let limit = f64::from(timeline.batch_cpu_cores[second]);
            let memory_limit = f64::from(timeline.batch_memory_mb[second]);
            self.counters.online_cpu_core_seconds += f64::from(timeline.online_cpu_cores[second]);
            self.counters.available_vcore_seconds += self.available_vcores(limit, memory_limit);
            let node = &mut self.nodes[index];
            if !node.up {
                continue;
            }
            let demand = node.cpu_demand;
            let rate = if demand > limit && demand > 0.0 {
                (limit / demand).max(0.0)
            } else {
                1.0
            };
            if rate < 1.0 {
                self.counters.throttled_node_seconds += 1;
            }
            node.rate = rate;
            node.tau += rate;
            let used = demand.min(limit);
            self.counters.batch_cpu_core_seconds += used;
            self.counters.allocated_vcore_seconds += f64::from(node.allocated.vcores);
            self.counters.capacity_vcore_seconds += f64::from(node.capacity.vcores);

            let mut finished = Vec::new();
            while let Some(Reverse((tau_bits, id, generation))) = node.finish.peek().copied() {
                if f64::from_bits(tau_bits) > node.tau {
                    break;
                }
                node.finish.pop();
                finished.push((id, generation));
            }
            for (id, generation) in finished {
                if self.live(id, generation).is_some() {
                    self.end_container(id, End::Completed, t);
                }
            }

            let node = &mut self.nodes[index];
            if node.memory_used > memory_limit {
                self.counters.nm_evictions_memory += 1;
                self.evict(index, t);
                continue;
            }
            let request = f64::from(node.allocated.vcores);
            node.eviction.push(width, limit, request, demand.min(limit));
            if self.cpu_satisfaction_too_low(index, limit, request, demand.min(limit)) {
                self.counters.nm_evictions_cpu += 1;
                self.evict(index, t);
            }
        }
    }

    /// koordlet's BE CPU-satisfaction eviction: over the window and right now, batch use is at
    /// least 90% of the limit and the limit is at most 60% of what YARN allocated.
    fn cpu_satisfaction_too_low(&self, index: usize, limit: f64, request: f64, usage: f64) -> bool {
        let koord = &self.config.koordinator;
        let window = &self.nodes[index].eviction;
        let width = koord.cpu_evict_window_seconds.max(1) as usize;
        if request <= 0.0 || window.samples.len() * 3 < width {
            return false;
        }
        let count = window.samples.len() as f64;
        let (avg_limit, avg_request, avg_usage) = (
            window.limit / count,
            window.request / count,
            window.usage / count,
        );
        let usage_high = |usage: f64, limit: f64| {
            limit < 1.0 || usage >= koord.cpu_evict_usage_threshold * limit
        };
        let unsatisfied = |limit: f64, request: f64| {
            request > 0.0 && limit / request <= koord.cpu_evict_satisfaction_lower
        };
        usage_high(avg_usage, avg_limit)
            && unsatisfied(avg_limit, avg_request)
            && usage_high(usage, limit)
            && unsatisfied(limit, request)
    }

    fn evict(&mut self, index: usize, t: u32) {
        // Ending a container edits the node's list, so walk a copy.
        let victims = self.nodes[index].live.clone();
        for id in victims {
            let generation = self.containers[id as usize].generation;
            if self.live(id, generation).is_some() {
                self.counters.containers_lost_to_evictions += 1;
                self.end_container(id, End::Evicted, t);
            }
        }
        let node = &mut self.nodes[index];
        node.up = false;
        node.target = None;
        node.eviction.clear();
        node.finish.clear();
        let restart = t + self.config.koordinator.nm_restart_seconds.max(1);
        self.schedule_event(restart, Event::NmRestart { node: index as u32 });
    }

    fn remove_from_node(&mut self, id: u32) -> f64 {
        let c = self.containers[id as usize];
        let node = &mut self.nodes[c.node as usize];
        let resources = resources_of(&c.request);
        node.allocated = sub(node.allocated, resources);
        if c.signalled {
            node.signalled = sub(node.signalled, resources);
        }
        node.cpu_demand = (node.cpu_demand
            - f64::from(c.request.vcores) * f64::from(c.request.cpu_factor))
        .max(0.0);
        node.memory_used = (node.memory_used
            - f64::from(c.request.memory_mb) * f64::from(c.request.memory_factor))
        .max(0.0);
        if node.live.is_empty() {
            node.cpu_demand = 0.0;
            node.memory_used = 0.0;
        }
        if let Some(position) = node.live.iter().position(|&l| l == id) {
            node.live.swap_remove(position);
        }
        let progress = (node.tau - c.start_tau).clamp(0.0, c.request.work_seconds);
        let slot = &mut self.containers[id as usize];
        slot.alive = false;
        slot.generation = slot.generation.wrapping_add(1);
        self.free_slots.push(id);
        progress
    }

    fn end_container(&mut self, id: u32, how: End, t: u32) {
        let c = self.containers[id as usize];
        let progress = self.remove_from_node(id);
        let app_id = c.request.app;
        let vcores = f64::from(c.request.vcores);
        if c.request.kind == ContainerKind::ApplicationMaster {
            self.apps[app_id as usize].am = None;
            if how == End::Completed {
                self.counters.containers_completed += 1;
            } else {
                self.fail_attempt(app_id, t);
            }
            return;
        }
        let app = &mut self.apps[app_id as usize];
        if c.request.attempt != app.attempt {
            return;
        }
        app.running = app.running.saturating_sub(1);
        let (kept, requeue) = match how {
            End::Completed => {
                self.counters.containers_completed += 1;
                if let Some(done) = app.finished_tasks.get_mut(c.request.task_index as usize) {
                    *done = true;
                }
                (c.request.work_seconds, None)
            }
            End::Decommissioned => (progress, Some(c.request.work_seconds - progress)),
            End::Terminated | End::Killed | End::Evicted => match c.request.kind {
                ContainerKind::SparkExecutor => {
                    let task = c.request.task_seconds.max(1.0);
                    let kept = (progress / task).floor() * task;
                    (kept, Some(c.request.work_seconds - kept))
                }
                _ => (0.0, Some(c.request.work_seconds)),
            },
        };
        self.counters.delivered_vcore_seconds += kept * vcores;
        self.counters.lost_vcore_seconds += (progress - kept).max(0.0) * vcores;
        let app = &mut self.apps[app_id as usize];
        app.delivered_attempt += kept * vcores;
        if let Some(remaining) = requeue {
            if remaining >= 1.0 {
                let mut again = c.request;
                again.work_seconds = remaining;
                again.task_seconds = again.task_seconds.min(remaining);
                app.queued += 1;
                app.queued_vcores += u64::from(again.vcores);
                self.pending_vcores += u64::from(again.vcores);
                // The application is already running: its requests go before newer ones.
                self.queue.push_front(again);
            } else if let Some(done) = app.finished_tasks.get_mut(c.request.task_index as usize) {
                *done = true;
            }
        }
        self.check_app_done(app_id, t);
    }

    /// The AM died: YARN kills the attempt's containers and starts a new attempt.
    fn fail_attempt(&mut self, app_id: u32, t: u32) {
        self.counters.am_failures += 1;
        let app = &mut self.apps[app_id as usize];
        let old_attempt = app.attempt;
        app.attempt += 1;
        app.am_ready = false;
        self.pending_vcores = self.pending_vcores.saturating_sub(app.queued_vcores);
        self.pending_vcores = self
            .pending_vcores
            .saturating_sub(app.waiting.iter().map(|w| u64::from(w.vcores)).sum());
        app.queued = 0;
        app.queued_vcores = 0;
        app.running = 0;
        if app.spec.spark {
            // A new Spark attempt recomputes everything the old one did.
            self.counters.delivered_vcore_seconds -= app.delivered_attempt;
            self.counters.lost_vcore_seconds += app.delivered_attempt;
            app.finished_tasks.iter_mut().for_each(|d| *d = false);
        }
        app.delivered_attempt = 0.0;
        let orphans: Vec<u32> = self
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.alive && c.request.app == app_id && c.request.attempt == old_attempt)
            .map(|(id, _)| id as u32)
            .collect();
        for id in orphans {
            let c = self.containers[id as usize];
            if c.request.kind == ContainerKind::ApplicationMaster {
                continue;
            }
            let progress = self.remove_from_node(id);
            self.counters.lost_vcore_seconds += progress * f64::from(c.request.vcores);
        }
        let app = &mut self.apps[app_id as usize];
        let attempt = app.attempt;
        let remaining: Vec<ContainerRequest> = app
            .spec
            .workers
            .iter()
            .filter(|w| {
                !app.finished_tasks
                    .get(w.task_index as usize)
                    .copied()
                    .unwrap_or(false)
            })
            .map(|w| ContainerRequest { attempt, ..*w })
            .collect();
        self.pending_vcores += remaining.iter().map(|w| u64::from(w.vcores)).sum::<u64>();
        app.waiting = remaining;
        let mut am = app.spec.am;
        am.attempt = attempt;
        app.queued += 1;
        app.queued_vcores += u64::from(am.vcores);
        self.pending_vcores += u64::from(am.vcores);
        self.queue.push_front(am);
        self.check_app_done(app_id, t);
    }

    fn check_app_done(&mut self, app_id: u32, t: u32) {
        let app = &self.apps[app_id as usize];
        if app.done || !app.am_ready || app.queued > 0 || app.running > 0 || !app.waiting.is_empty()
        {
            return;
        }
        let am = app.am;
        self.apps[app_id as usize].done = true;
        self.counters.applications_completed += 1;
        if let Some((id, generation)) = am
            && self.live(id, generation).is_some()
        {
            self.end_container(id, End::Completed, t);
        }
    }

    fn ensure_backlog(&mut self) {
        while self.pending_vcores < self.backlog_target {
            let id = u32::try_from(self.apps.len()).unwrap_or(u32::MAX);
            let spec = self.generator.next_app(id);
            let workers = spec.workers.clone();
            let worker_vcores = spec.worker_vcores();
            let mut app = App {
                finished_tasks: vec![false; workers.len()],
                spec,
                attempt: 0,
                am: None,
                am_ready: false,
                waiting: Vec::new(),
                queued: 0,
                queued_vcores: 0,
                running: 0,
                delivered_attempt: 0.0,
                done: false,
            };
            if app.spec.am_on_pool {
                app.waiting = workers;
                app.queued = 1;
                app.queued_vcores = u64::from(app.spec.am.vcores);
                self.pending_vcores += u64::from(app.spec.am.vcores) + worker_vcores;
                self.queue.push_back(app.spec.am);
            } else {
                // The AM runs on the main cluster and asks for its workers right away.
                app.am_ready = true;
                app.queued = u32::try_from(workers.len()).unwrap_or(u32::MAX);
                app.queued_vcores = worker_vcores;
                self.pending_vcores += worker_vcores;
                self.queue.extend(workers);
            }
            self.apps.push(app);
        }
    }

    fn schedule(&mut self, t: u32) {
        let count = self.nodes.len();
        let first = t as usize % count.max(1);
        for offset in 0..count {
            let index = (first + offset) % count;
            loop {
                let node = &self.nodes[index];
                if !node.up {
                    break;
                }
                let free = sub(node.capacity, node.allocated);
                if free.vcores == 0 {
                    break;
                }
                let Some(position) = self.fitting_request(free) else {
                    break;
                };
                let Some(request) = self.queue.remove(position) else {
                    break;
                };
                self.start(request, index, t);
            }
        }
    }

    fn fitting_request(&mut self, free: Resources) -> Option<usize> {
        let mut position = 0;
        let mut seen = 0;
        while position < self.queue.len() && seen < SCHEDULER_LOOKAHEAD {
            let request = self.queue[position];
            let app = &self.apps[request.app as usize];
            if request.attempt != app.attempt || app.done {
                // A request of an attempt that failed: YARN forgets it.
                self.queue.remove(position);
                continue;
            }
            if resources_of(&request).fits_in(&free) {
                return Some(position);
            }
            position += 1;
            seen += 1;
        }
        None
    }

    fn start(&mut self, request: ContainerRequest, index: usize, t: u32) {
        self.pending_vcores = self
            .pending_vcores
            .saturating_sub(u64::from(request.vcores));
        let node = &mut self.nodes[index];
        let container = Container {
            generation: 0,
            alive: true,
            request,
            node: index as u32,
            start_tau: node.tau,
            started_at: t,
            signalled: false,
            signalled_at: 0,
            kill_at: 0,
            decommissioning: false,
        };
        let id = match self.free_slots.pop() {
            Some(id) => {
                let generation = self.containers[id as usize].generation;
                self.containers[id as usize] = Container {
                    generation,
                    ..container
                };
                id
            }
            None => {
                self.containers.push(container);
                u32::try_from(self.containers.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let generation = self.containers[id as usize].generation;
        node.allocated = add(node.allocated, resources_of(&request));
        node.cpu_demand += f64::from(request.vcores) * f64::from(request.cpu_factor);
        node.memory_used += f64::from(request.memory_mb) * f64::from(request.memory_factor);
        node.live.push(id);
        if request.work_seconds.is_finite() {
            let end = node.tau + request.work_seconds;
            node.finish.push(Reverse((end.to_bits(), id, generation)));
        }
        let app = &mut self.apps[request.app as usize];
        app.queued = app.queued.saturating_sub(1);
        app.queued_vcores = app.queued_vcores.saturating_sub(u64::from(request.vcores));
        if request.kind == ContainerKind::ApplicationMaster {
            app.am = Some((id, generation));
            let attempt = app.attempt;
            let ready = t + self.config.workload.am_startup_seconds.max(1);
            self.schedule_event(
                ready,
                Event::AmReady {
                    app: request.app,
                    attempt,
                },
            );
        } else {
            app.running += 1;
        }
    }

    /// Vcores a node's batch CPU and memory can carry, within the NM ceiling.
    fn available_vcores(&self, cpu_cores: f64, memory_mb: f64) -> f64 {
        let bounds = &self.settings.bounds;
        bounds
            .supportable_vcores(cpu_cores, memory_mb)
            .min(f64::from(bounds.ceiling.vcores))
    }

    fn record(&mut self, t: u32) {
        let second = t as usize;
        let available_vcores = self
            .timelines
            .iter()
            .map(|n| {
                self.available_vcores(
                    f64::from(n.batch_cpu_cores[second]),
                    f64::from(n.batch_memory_mb[second]),
                )
            })
            .sum();
        let (capacity, allocated) =
            self.nodes
                .iter()
                .filter(|n| n.up)
                .fold((0u64, 0u64), |(c, a), n| {
                    (
                        c + u64::from(n.capacity.vcores),
                        a + u64::from(n.allocated.vcores),
                    )
                });
        self.series.push(SeriesPoint {
            second: t,
            available_vcores,
            capacity_vcores: capacity,
            allocated_vcores: allocated,
            nm_evictions: self.counters.nm_evictions_cpu + self.counters.nm_evictions_memory,
            graceful_signals: self.counters.graceful_signals,
            forced_kills: self.counters.forced_kills,
        });
    }
}

/// Runs one policy over the shared node timelines. `progress` is called every simulated minute
/// with the number of seconds simulated since its last call.
pub fn run_policy(
    config: &SimConfig,
    timelines: &[NodeTimeline],
    kind: PolicyKind,
    progress: &(dyn Fn(u64) + Sync),
) -> PolicyRun {
    let mut simulation = Simulation::new(config, timelines, kind);
    let mut reported = 0u32;
    for t in 0..config.duration_seconds {
        simulation.step(t);
        if t + 1 - reported >= SERIES_STEP_SECONDS {
            progress(u64::from(t + 1 - reported));
            reported = t + 1;
        }
    }
    progress(u64::from(config.duration_seconds - reported));
    PolicyRun {
        policy: kind,
        counters: simulation.counters,
        series: simulation.series,
    }
}

#[cfg(test)]
mod tests;
