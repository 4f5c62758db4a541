//! The run's results: `report.json`, `report.md` and `timeseries.csv`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::cluster::PolicyRun;
use super::config::SimConfig;
use super::node::NodeProfile;
use super::trace::TraceProvenance;
use crate::policy::PolicyKind;

/// Results of one policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct PolicyReport {
    /// Policy name.
    pub policy: String,
    /// Batch work kept, vcore-hours.
    pub delivered_vcore_hours: f64,
    /// Delivered / the oracle's delivered (`null` when the oracle did not run).
    pub oracle_ratio: Option<f64>,
    /// Online plus batch CPU use over all node cores, time-averaged, percent.
    pub avg_cluster_cpu_util: f64,
    /// NM pods Koordinator evicted.
    pub nm_evictions: u64,
    /// ... of which for low CPU satisfaction.
    pub nm_evictions_cpu: u64,
    /// ... of which for memory.
    pub nm_evictions_memory: u64,
    /// Graceful signals (SIGPWR, SIGTERM) sent by guarders.
    pub graceful_signals: u64,
    /// SIGKILLs after the grace period.
    pub forced_kills: u64,
    /// Containers that ended normally.
    pub containers_completed: u64,
    /// Capacity changes sent to the RM.
    pub rm_updates: u64,
    /// Work thrown away (killed tasks, restarted applications), vcore-hours.
    pub lost_vcore_hours: f64,
    /// Containers that died with an evicted NM.
    pub containers_lost_to_evictions: u64,
    /// Application attempts that failed because their AM died.
    pub am_failures: u64,
    /// Applications that finished.
    pub applications_completed: u64,
    /// Mean NM capacity over the pool, vcores.
    pub avg_capacity_vcores: f64,
    /// Mean vcores allocated over the pool.
    pub avg_allocated_vcores: f64,
    /// Share of node-seconds with batch CPU throttled below demand, percent.
    pub throttled_percent: f64,
    /// Targets sent to guarders.
    pub guarder_targets: u64,
}

/// How the trace was turned into nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceReport {
    /// Where the trace came from.
    #[serde(flatten)]
    pub provenance: TraceProvenance,
    /// The transformation, in words.
    pub transformation: String,
    /// Each node's offset, scales and exporter outage.
    pub nodes: Vec<NodeProfile>,
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Every setting of the run.
    pub parameters: SimConfig,
    /// The trace and what was done to it.
    pub trace: TraceReport,
    /// What Koordinator let batch work use (CPU, and memory at the pool's vcore ratio), capped
    /// at the NM ceiling, vcore-hours.
    pub available_vcore_hours: f64,
    /// One entry per policy, in the order run.
    pub policies: Vec<PolicyReport>,
}

impl Report {
    /// Assembles the report of a run.
    pub fn new(
        config: &SimConfig,
        provenance: &TraceProvenance,
        profiles: Vec<NodeProfile>,
        runs: &[PolicyRun],
    ) -> Report {
        let oracle = runs
            .iter()
            .find(|r| r.policy == PolicyKind::Oracle)
            .map(|r| r.counters.delivered_vcore_seconds);
        let node_seconds = config.nodes as f64 * f64::from(config.duration_seconds);
        let all_cores = node_seconds * f64::from(config.node_cores);
        let policies = runs
            .iter()
            .map(|run| {
                let c = &run.counters;
                PolicyReport {
                    policy: run.policy.name().to_owned(),
                    delivered_vcore_hours: c.delivered_vcore_seconds / 3600.0,
                    oracle_ratio: oracle
                        .filter(|o| *o > 0.0)
                        .map(|o| c.delivered_vcore_seconds / o),
                    avg_cluster_cpu_util: 100.0
                        * (c.online_cpu_core_seconds + c.batch_cpu_core_seconds)
                        / all_cores,
                    nm_evictions: c.nm_evictions_cpu + c.nm_evictions_memory,
                    nm_evictions_cpu: c.nm_evictions_cpu,
                    nm_evictions_memory: c.nm_evictions_memory,
                    graceful_signals: c.graceful_signals,
                    forced_kills: c.forced_kills,
                    containers_completed: c.containers_completed,
                    rm_updates: c.rm_updates,
                    lost_vcore_hours: c.lost_vcore_seconds / 3600.0,
                    containers_lost_to_evictions: c.containers_lost_to_evictions,
                    am_failures: c.am_failures,
                    applications_completed: c.applications_completed,
                    avg_capacity_vcores: c.capacity_vcore_seconds
                        / f64::from(config.duration_seconds),
                    avg_allocated_vcores: c.allocated_vcore_seconds
                        / f64::from(config.duration_seconds),
                    throttled_percent: 100.0 * c.throttled_node_seconds as f64 / node_seconds,
                    guarder_targets: c.guarder_targets,
                }
            })
            .collect();
        let available = runs
            .first()
            .map_or(0.0, |r| r.counters.available_vcore_seconds / 3600.0);
        let v = &config.variety;
        let transformation = format!(
            "cpu_util_percent is each node's online CPU share (x U[{:.2},{:.2}) per node, AR(1) \
             noise sd {} points, rho {}), mem_util_percent x {} its online memory share \
             (x U[{:.2},{:.2}) per node, noise sd {} points); each node shifted by up to \
             +/-{} s; rows interpolated to 1 s; the trace repeats past its end",
            v.cpu_scale.0,
            v.cpu_scale.1,
            v.cpu_noise_points,
            v.noise_correlation,
            v.online_memory_factor,
            v.memory_scale.0,
            v.memory_scale.1,
            v.memory_noise_points,
            v.max_offset_seconds
        );
        Report {
            parameters: config.clone(),
            trace: TraceReport {
                provenance: provenance.clone(),
                transformation,
                nodes: profiles,
            },
            available_vcore_hours: available,
            policies,
        }
    }

    /// The report as Markdown: parameters, provenance and one table row per policy.
    pub fn to_markdown(&self) -> String {
        let p = &self.parameters;
        let mut md = String::new();
        let _ = writeln!(md, "# elastic-yarn simulation\n");
        let _ = writeln!(
            md,
            "{} nodes x {} cores / {} GiB, {:.1} h at 1 s, seed {}, sync every {} s, grace {} s. \
             Trace `{}` ({}; {}). Koordinator: suppress at {:.0}% of node CPU, memory eviction at \
             {:.0}%, CPU-satisfaction eviction at {:.0}% over {} s.\n",
            p.nodes,
            p.node_cores,
            p.node_memory_gib,
            f64::from(p.duration_seconds) / 3600.0,
            p.seed,
            p.sync_seconds,
            p.grace_period_seconds,
            self.trace.provenance.name,
            self.trace.provenance.source,
            self.trace.provenance.license,
            p.koordinator.cpu_suppress_threshold * 100.0,
            p.koordinator.memory_evict_threshold * 100.0,
            p.koordinator.cpu_evict_satisfaction_lower * 100.0,
            p.koordinator.cpu_evict_window_seconds,
        );
        let _ = writeln!(
            md,
            "Available to batch work (CPU and memory in vcores, capped at the NM ceiling): {:.0} vcore-hours.\n",
            self.available_vcore_hours
        );
        let _ = writeln!(
            md,
            "| policy | delivered vcore-h | oracle ratio | avg cluster CPU % | NM evictions | graceful signals | forced kills | containers completed | RM updates | lost vcore-h | AM failures |"
        );
        let _ = writeln!(
            md,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.policies {
            let ratio = r
                .oracle_ratio
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}"));
            let _ = writeln!(
                md,
                "| {} | {:.0} | {} | {:.1} | {} | {} | {} | {} | {} | {:.0} | {} |",
                r.policy,
                r.delivered_vcore_hours,
                ratio,
                r.avg_cluster_cpu_util,
                r.nm_evictions,
                r.graceful_signals,
                r.forced_kills,
                r.containers_completed,
                r.rm_updates,
                r.lost_vcore_hours,
                r.am_failures,
            );
        }
        md
    }
}

/// The recorded time series of every policy as CSV.
pub fn series_csv(runs: &[PolicyRun]) -> String {
    let mut csv = String::from(
        "second,policy,available_vcores,capacity_vcores,allocated_vcores,nm_evictions,graceful_signals,forced_kills\n",
    );
    for run in runs {
        for point in &run.series {
            let _ = writeln!(
                csv,
                "{},{},{:.2},{},{},{},{},{}",
                point.second,
                run.policy.name(),
                point.available_vcores,
                point.capacity_vcores,
                point.allocated_vcores,
                point.nm_evictions,
                point.graceful_signals,
                point.forced_kills
            );
        }
    }
    csv
}
