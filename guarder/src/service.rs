//! The guarder's state: scan the containers, measure them, let the drainer decide, deliver its
//! orders, count everything. The HTTP server and the scan loop share one [`Guarder`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;

use koordlet_metrics::cgroup::CgroupLayout;

use crate::api::TargetRequest;
use crate::container::{ContainerId, Framework};
use crate::discovery::{self, ContainerProcesses, Scope};
use crate::drain::{
    ActiveTarget, ContainerUse, DrainSettings, Drainer, LeavingContainer, SignalKind,
    TargetOutcome, total_use,
};
use crate::signals;
use crate::usage::UsageTracker;

/// Where the guarder looks.
#[derive(Clone, Debug)]
pub struct GuarderConfig {
    /// The proc filesystem (`/proc`).
    pub proc_root: PathBuf,
    /// The cgroup layout and YARN's hierarchy under it (`hadoop-yarn`), when the NM uses
    /// cgroups.
    pub cgroups: Option<(CgroupLayout, PathBuf)>,
    /// Which processes to consider.
    pub scope: Scope,
    /// How to drain.
    pub drain: DrainSettings,
}

/// Signals sent, by signal and framework.
pub type SignalCounts = BTreeMap<(SignalKind, Framework), u64>;

/// The guarder.
#[derive(Debug)]
pub struct Guarder {
    config: GuarderConfig,
    own_pid: i32,
    drainer: Drainer,
    tracker: UsageTracker,
    containers: Vec<ContainerProcesses>,
    uses: Vec<ContainerUse>,
    signals: SignalCounts,
    refused_signals: u64,
    scans: u64,
    last_scan_error: Option<String>,
}

/// One container on the status page, in the order it would be freed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RankedContainer {
    /// Container id.
    pub container: String,
    /// What it runs.
    pub framework: Framework,
    /// An ApplicationMaster.
    pub application_master: bool,
    /// Processes found.
    pub processes: usize,
    /// CPU cores over the last scan.
    pub cpu_cores: f64,
    /// Memory, MiB.
    pub memory_mb: f64,
    /// Seconds since it started.
    pub running_seconds: u64,
    /// Already asked to leave.
    pub leaving: bool,
}

/// Signals sent of one kind to one framework.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalCount {
    /// `SIGPWR`, `SIGTERM` or `SIGKILL`.
    pub signal: &'static str,
    /// Framework label.
    pub framework: &'static str,
    /// Containers signalled.
    pub count: u64,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The target in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<ActiveTarget>,
    /// Vcores in use (cores / cores per vcore).
    pub used_vcores: f64,
    /// MiB in use.
    pub used_memory_mb: f64,
    /// Containers, first to be freed first.
    pub containers: Vec<RankedContainer>,
    /// Containers asked to leave.
    pub leaving: Vec<LeavingContainer>,
    /// Signals sent.
    pub signals: Vec<SignalCount>,
    /// Force kills (SIGKILL) in total.
    pub force_kills: u64,
    /// Signalled containers that are gone.
    pub left_after_signal: u64,
    /// Targets that asked for nothing to be freed.
    pub no_op_targets: u64,
    /// Signals the kernel refused.
    pub refused_signals: u64,
    /// Scans done.
    pub scans: u64,
    /// The last scan's error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scan_error: Option<String>,
}

impl Guarder {
    /// A guarder with no target.
    pub fn new(config: GuarderConfig) -> Guarder {
        let layout = config.cgroups.as_ref().map(|(layout, _)| layout.clone());
        Guarder {
            drainer: Drainer::new(config.drain),
            config,
            own_pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            tracker: UsageTracker::new(layout),
            containers: Vec::new(),
            uses: Vec::new(),
            signals: SignalCounts::new(),
            refused_signals: 0,
            scans: 0,
            last_scan_error: None,
        }
    }

    /// Reads the containers and their use. On failure the previous view is kept.
    pub fn scan(&mut self, now_ms: u64) {
        self.scans += 1;
        let processes = match discovery::scan_processes(&self.config.proc_root) {
            Ok(processes) => processes,
            Err(error) => {
                self.last_scan_error = Some(error.to_string());
                return;
            }
        };
        let members = self
            .config
            .cgroups
            .as_ref()
            .map(|(layout, hierarchy)| discovery::cgroup_members(layout, hierarchy))
            .unwrap_or_default();
        self.containers =
            discovery::containers(&processes, &members, self.config.scope, self.own_pid);
        self.uses = self
            .tracker
            .measure(now_ms, discovery::uptime_seconds(), &self.containers);
        self.last_scan_error = None;
    }

    /// Lets the drainer act on the last scan and delivers its orders.
    pub fn step(&mut self, now_ms: u64) {
        for order in self.drainer.tick(now_ms, &self.uses) {
            let Some(container) = self.containers.iter().find(|c| c.id == order.container) else {
                continue;
            };
            let delivery =
                signals::deliver(&order, container, &self.config.proc_root, self.own_pid);
            self.refused_signals += delivery.refused as u64;
            if delivery.signalled > 0 {
                *self
                    .signals
                    .entry((order.kind, order.framework))
                    .or_default() += 1;
            }
            tracing::info!(
                container = %order.container,
                signal = order.kind.label(),
                framework = order.framework.label(),
                signalled = delivery.signalled,
                gone = delivery.gone,
                refused = delivery.refused,
                "signal"
            );
        }
    }

    /// Takes a target from the operator and acts on it at once.
    pub fn set_target(&mut self, now_ms: u64, request: &TargetRequest) -> TargetOutcome {
        let outcome = self.drainer.set_target(now_ms, request, &self.uses);
        tracing::info!(
            vcores = request.vcores,
            memory_mb = request.memory_mb,
            deadline_seconds = request.deadline_seconds,
            reason = %request.reason,
            ?outcome,
            "target"
        );
        self.step(now_ms);
        outcome
    }

    /// Signals sent so far.
    pub const fn signal_counts(&self) -> &SignalCounts {
        &self.signals
    }

    /// The status page.
    pub fn status(&self) -> StatusReport {
        let (used_vcores, used_memory_mb) =
            total_use(&self.uses, self.drainer.settings().cores_per_vcore);
        let processes: HashMap<ContainerId, usize> = self
            .containers
            .iter()
            .map(|c| (c.id, c.processes.len()))
            .collect();
        let containers = self
            .drainer
            .ranked(&self.uses)
            .into_iter()
            .map(|u| RankedContainer {
                container: u.id.to_string(),
                framework: u.framework,
                application_master: u.application_master,
                processes: processes.get(&u.id).copied().unwrap_or(0),
                cpu_cores: u.cpu_cores,
                memory_mb: u.memory_mb,
                running_seconds: u.running_seconds,
                leaving: self.drainer.is_leaving(&u.id),
            })
            .collect();
        let (left_after_signal, no_op_targets) = self.drainer.counts();
        StatusReport {
            target: self.drainer.target().cloned(),
            used_vcores,
            used_memory_mb,
            containers,
            leaving: self.drainer.leaving(),
            signals: self
                .signals
                .iter()
                .map(|((kind, framework), count)| SignalCount {
                    signal: kind.label(),
                    framework: framework.label(),
                    count: *count,
                })
                .collect(),
            force_kills: self
                .signals
                .iter()
                .filter(|((kind, _), _)| *kind == SignalKind::Kill)
                .map(|(_, count)| count)
                .sum(),
            left_after_signal,
            no_op_targets,
            refused_signals: self.refused_signals,
            scans: self.scans,
            last_scan_error: self.last_scan_error.clone(),
        }
    }
}
