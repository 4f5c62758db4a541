//! `simulate`: real utilization traces replayed on a simulated co-located cluster, every policy
//! side by side, in virtual time.
//!
//! * [`trace`] reads the trace (the Alibaba 2018 day embedded by default);
//! * [`node`] turns it into each node's online load, Koordinator's batch limits and what the
//!   operator would read, once for all policies;
//! * [`workload`] draws the Spark and MapReduce applications;
//! * [`cluster`] runs one policy second by second: decisions, RM, guarder, Koordinator, YARN;
//! * [`report`] and [`chart`] write what happened.
//!
//! The model and its sources are described in `docs/simulate.md`.

pub mod chart;
pub mod cluster;
pub mod config;
pub mod node;
pub mod report;
pub mod trace;
pub mod workload;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use cluster::{PolicyRun, SeriesPoint};
pub use config::{ConfigError, SimConfig};
pub use report::{PolicyReport, Report};
pub use trace::{Trace, TraceError};

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct SimOutcome {
    /// Totals per policy, parameters, provenance.
    pub report: Report,
    /// Per-policy counters and time series.
    pub runs: Vec<PolicyRun>,
}

/// Simulated seconds a run covers (for a progress bar).
pub fn total_work(config: &SimConfig) -> u64 {
    u64::from(config.duration_seconds) * config.policies.len() as u64
}

/// Runs every policy of `config` over `trace`. `progress` receives simulated seconds as they
/// are done (from several threads).
pub fn run(
    config: &SimConfig,
    trace: &Trace,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SimOutcome, ConfigError> {
    config.check()?;
    let timelines: Vec<node::NodeTimeline> = (0..config.nodes)
        .into_par_iter()
        .map(|index| node::timeline(config, trace, index))
        .collect();
    let runs: Vec<PolicyRun> = config
        .policies
        .par_iter()
        .map(|&kind| cluster::run_policy(config, &timelines, kind, progress))
        .collect();
    let profiles = timelines.iter().map(|t| t.profile).collect();
    let report = Report::new(config, &trace.provenance, profiles, &runs);
    Ok(SimOutcome { report, runs })
}

/// Why the output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// The report did not serialize (a bug).
    #[error("cannot encode the report: {0}")]
    Encode(#[from] serde_json::Error),
    /// The chart could not be rendered.
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
}

/// Writes `report.json`, `report.md`, `timeseries.csv`, `chart.svg` and `chart.png` into `dir`.
pub fn write_outputs(outcome: &SimOutcome, dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| OutputError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let svg = chart::svg(&outcome.report, &outcome.runs);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("report.json", serde_json::to_vec_pretty(&outcome.report)?),
        ("report.md", outcome.report.to_markdown().into_bytes()),
        (
            "timeseries.csv",
            report::series_csv(&outcome.runs).into_bytes(),
        ),
        ("chart.png", chart::png(&svg)?),
        ("chart.svg", svg.into_bytes()),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(io_error(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyKind;

    fn small(seed: u64) -> SimConfig {
        SimConfig {
            nodes: 6,
            duration_seconds: 2 * 3600,
            seed,
            ..SimConfig::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_report() {
        let trace = Trace::embedded().unwrap();
        let first = run(&small(9), &trace, &|_| {}).unwrap();
        let second = run(&small(9), &trace, &|_| {}).unwrap();
        assert_eq!(first.report, second.report);
        assert_eq!(
            serde_json::to_string(&first.report).unwrap(),
            serde_json::to_string(&second.report).unwrap()
        );
        assert_eq!(first.runs, second.runs);
        let other = run(&small(10), &trace, &|_| {}).unwrap();
        assert_ne!(first.report.policies, other.report.policies);
    }

    #[test]
    fn the_report_covers_every_policy_against_the_oracle() {
        let trace = Trace::embedded().unwrap();
        let outcome = run(&small(1), &trace, &|_| {}).unwrap();
        let names: Vec<&str> = outcome
            .report
            .policies
            .iter()
            .map(|p| p.policy.as_str())
            .collect();
        assert_eq!(
            names,
            ["static", "follow", "threshold", "elastic", "oracle"]
        );
        let oracle = &outcome.report.policies[4];
        assert_eq!(oracle.oracle_ratio, Some(1.0));
        for policy in &outcome.report.policies {
            assert!(policy.delivered_vcore_hours > 0.0, "{}", policy.policy);
            assert!(
                policy.delivered_vcore_hours <= outcome.report.available_vcore_hours * 1.5,
                "{} delivers within reach of what was available",
                policy.policy
            );
            assert!((0.0..=100.0).contains(&policy.avg_cluster_cpu_util));
        }
        assert_eq!(outcome.report.trace.nodes.len(), 6);
        assert_eq!(outcome.report.trace.provenance.license, "CC BY 4.0");
        let without_oracle = SimConfig {
            policies: vec![PolicyKind::Threshold],
            ..small(1)
        };
        let outcome = run(&without_oracle, &trace, &|_| {}).unwrap();
        assert_eq!(outcome.report.policies[0].oracle_ratio, None);
    }

    #[test]
    fn outputs_are_written() {
        let trace = Trace::embedded().unwrap();
        let config = SimConfig {
            policies: vec![PolicyKind::Elastic, PolicyKind::Oracle],
            ..small(3)
        };
        let outcome = run(&config, &trace, &|_| {}).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let written = write_outputs(&outcome, dir.path()).unwrap();
        assert_eq!(written.len(), 5);
        let report: Report =
            serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report, outcome.report);
        let markdown = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(markdown.contains("| elastic |"));
        assert!(markdown.contains("| oracle |"));
        let csv = std::fs::read_to_string(dir.path().join("timeseries.csv")).unwrap();
        // Header plus one row per simulated minute and policy.
        assert_eq!(csv.lines().count(), 1 + 2 * 120);
        let png = std::fs::read(dir.path().join("chart.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(dir.path().join("chart.svg")).unwrap();
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 4);
    }

    #[test]
    fn settings_that_cannot_run_are_refused_clearly() {
        let trace = Trace::embedded().unwrap();
        for (config, message) in [
            (
                SimConfig {
                    nodes: 0,
                    ..small(1)
                },
                "--nodes",
            ),
            (
                SimConfig {
                    policies: vec![],
                    ..small(1)
                },
                "--policies",
            ),
            (
                SimConfig {
                    sync_seconds: 0,
                    ..small(1)
                },
                "--sync-seconds",
            ),
            (
                SimConfig {
                    duration_seconds: 10,
                    ..small(1)
                },
                "--duration",
            ),
            (
                SimConfig {
                    floor_vcores: 500,
                    ..small(1)
                },
                "floor",
            ),
        ] {
            let err = run(&config, &trace, &|_| {}).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn an_unwritable_folder_is_a_clear_error() {
        let trace = Trace::embedded().unwrap();
        let config = SimConfig {
            policies: vec![PolicyKind::Static],
            ..small(1)
        };
        let outcome = run(&config, &trace, &|_| {}).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_outputs(&outcome, &blocker.join("out"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot write"), "{err}");
    }
}
