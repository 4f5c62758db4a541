//! `simulate`: the main job, on the command line (behind the default `simulate` feature, so that
//! an image can build the operator without the simulator and its chart rendering).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::policy::{ElasticTuning, PolicyKind};
use crate::sim::config::SuppressPolicy;
use crate::sim::{self, SimConfig, Trace};

/// Koordinator's batch CPU limit style, on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SuppressArg {
    /// Whole CPUs, at least 2 (Koordinator's default).
    Cpuset,
    /// A CFS quota, fractional cores.
    CfsQuota,
}

/// Options of `simulate`. Defaults reproduce the embedded main job.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Trace CSV with `cpu_util_percent` and `mem_util_percent` columns; `embedded` for the
    /// built-in Alibaba 2018 day.
    #[arg(long, default_value = "embedded")]
    pub trace: String,
    /// Seconds between two rows of the trace.
    #[arg(long, default_value_t = 10)]
    pub trace_step_seconds: u32,
    /// Nodes in the pool.
    #[arg(long, default_value_t = 50)]
    pub nodes: usize,
    /// CPU cores per node.
    #[arg(long, default_value_t = 64)]
    pub node_cores: u32,
    /// Memory per node, GiB.
    #[arg(long, default_value_t = 256)]
    pub node_memory_gib: u32,
    /// Simulated time, e.g. 24h, 90m, 3600s, 2d.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub duration: u32,
    /// Seed of every random choice (same seed, same report).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Policies to compare, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "static,follow,threshold,elastic,oracle"
    )]
    pub policies: Vec<PolicyKind>,
    /// Seconds between two decisions of the operator.
    #[arg(long, default_value_t = 15)]
    pub sync_seconds: u32,
    /// Seconds a signalled container gets before SIGKILL.
    #[arg(long, default_value_t = 60)]
    pub grace_seconds: u32,
    /// Spark runs without decommissioning (executors get SIGTERM instead of SIGPWR).
    #[arg(long)]
    pub no_spark_decommission: bool,
    /// How Koordinator limits batch CPU.
    #[arg(long, value_enum, default_value = "cpuset")]
    pub suppress_policy: SuppressArg,
    /// Probability that a node's metrics exporter has one outage during the run.
    #[arg(long, default_value_t = 0.1)]
    pub metrics_outage_probability: f64,
    /// Tuning of the elastic policy as JSON, e.g. '{"vcoreOvercommit":1.1,"sigma":1.5}'
    /// (fields not given keep their defaults; see docs/policy.md).
    #[arg(long, value_parser = parse_elastic_tuning)]
    pub elastic_tuning: Option<ElasticTuning>,
    /// Folder for report.json, report.md, timeseries.csv, chart.svg and chart.png.
    #[arg(long, default_value = "simulate-out")]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Reads `24h`, `90m`, `3600s`, `2d` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(split) => text.split_at(split),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 24h, 90m or 3600s"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    value
        .checked_mul(factor)
        .and_then(|seconds| u32::try_from(seconds).ok())
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Reads elastic tuning from JSON; unknown fields are refused so that typos do not pass.
pub fn parse_elastic_tuning(text: &str) -> Result<ElasticTuning, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("not JSON: {err}"))?;
    let defaults = serde_json::to_value(ElasticTuning::default()).map_err(|e| e.to_string())?;
    if let (Some(given), Some(known)) = (value.as_object(), defaults.as_object()) {
        if let Some(unknown) = given.keys().find(|key| !known.contains_key(*key)) {
            let names: Vec<&String> = known.keys().collect();
            return Err(format!(
                "unknown field {unknown:?}; known fields: {names:?}"
            ));
        }
    } else {
        return Err("expected a JSON object such as {\"sigma\":1.5}".to_owned());
    }
    serde_json::from_value(value).map_err(|err| err.to_string())
}

impl SimulateArgs {
    /// The simulation settings these options describe.
    pub fn config(&self) -> SimConfig {
        let mut policies = Vec::new();
        for policy in &self.policies {
            if !policies.contains(policy) {
                policies.push(*policy);
            }
        }
        let mut config = SimConfig {
            nodes: self.nodes,
            node_cores: self.node_cores,
            node_memory_gib: self.node_memory_gib,
            duration_seconds: self.duration,
            seed: self.seed,
            policies,
            sync_seconds: self.sync_seconds,
            grace_period_seconds: self.grace_seconds,
            spark_decommission: !self.no_spark_decommission,
            ..SimConfig::default()
        };
        config.koordinator.suppress_policy = match self.suppress_policy {
            SuppressArg::Cpuset => SuppressPolicy::Cpuset,
            SuppressArg::CfsQuota => SuppressPolicy::CfsQuota,
        };
        config.variety.metrics_outage_probability = self.metrics_outage_probability;
        if let Some(tuning) = self.elastic_tuning {
            config.elastic = tuning;
        }
        config
    }

    fn trace(&self) -> anyhow::Result<Trace> {
        if self.trace == "embedded" {
            Ok(Trace::embedded()?)
        } else {
            Ok(Trace::from_file(
                PathBuf::from(&self.trace).as_path(),
                self.trace_step_seconds,
            )?)
        }
    }
}

pub fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let config = args.config();
    config.check()?;
    let trace = args.trace()?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(sim::total_work(&config))
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} simulating {msg} [{bar:40}] {percent:>3}% {elapsed_precise} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!(
        "{} policies x {} nodes x {:.1} h",
        config.policies.len(),
        config.nodes,
        f64::from(config.duration_seconds) / 3600.0
    ));
    let progress = |seconds: u64| bar.inc(seconds);
    let outcome = sim::run(&config, &trace, &progress)?;
    bar.finish_and_clear();
    let written = sim::write_outputs(&outcome, &args.out)
        .with_context(|| format!("writing results into {}", args.out.display()))?;
    println!("{}", outcome.report.to_markdown());
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn durations_read_with_units() {
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("90m"), Ok(5_400));
        assert_eq!(parse_duration("3600"), Ok(3_600));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert!(parse_duration("1w").unwrap_err().contains("unit"));
        assert!(parse_duration("h").unwrap_err().contains("not a duration"));
        assert!(
            parse_duration("99999999d")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn the_defaults_are_the_embedded_main_job() {
        let cli = Cli::parse_from(["elastic-yarn-operator", "simulate"]);
        let Command::Simulate(args) = cli.command else {
            panic!("simulate expected");
        };
        assert_eq!(args.config(), SimConfig::default());
        assert_eq!(args.trace, "embedded");
    }

    #[test]
    fn elastic_tuning_reads_partial_json_and_refuses_typos() {
        let tuning = parse_elastic_tuning(r#"{"sigma": 2.0}"#).unwrap();
        assert_eq!(tuning.sigma, 2.0);
        assert_eq!(
            tuning.grow_step_vcores,
            ElasticTuning::default().grow_step_vcores
        );
        assert!(
            parse_elastic_tuning(r#"{"sigmaa": 2.0}"#)
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(
            parse_elastic_tuning("[1]")
                .unwrap_err()
                .contains("JSON object")
        );
        assert!(parse_elastic_tuning("{").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn policies_parse_from_a_list_without_duplicates() {
        let cli = Cli::parse_from([
            "elastic-yarn-operator",
            "simulate",
            "--policies",
            "elastic,threshold,elastic",
        ]);
        let Command::Simulate(args) = cli.command else {
            panic!("simulate expected");
        };
        assert_eq!(
            args.config().policies,
            vec![PolicyKind::Elastic, PolicyKind::Threshold]
        );
        assert!(
            Cli::try_parse_from(["elastic-yarn-operator", "simulate", "--policies", "best"])
                .is_err()
        );
    }
}
