//! Command line of `elastic-yarn-operator`.

pub mod manifest;
pub mod operate;
pub mod render;
#[cfg(feature = "simulate")]
pub mod simulate;
pub mod yarn;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jiff::Timestamp;

use crate::crd::{ElasticNodePool, ElasticNodePoolSpec};
use crate::crdgen;
use crate::validate::validate;

/// The Elastic YARN Operator: YARN NodeManagers on Kubernetes nodes shared with online
/// services, sized to what each node can really give to batch work.
#[derive(Debug, Parser)]
#[command(name = "elastic-yarn-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a real utilization trace on a simulated co-located cluster and compare the
    /// resize policies side by side (runs without any cluster).
    #[cfg(feature = "simulate")]
    Simulate(simulate::SimulateArgs),
    /// Check an ElasticNodePool manifest offline, as the operator would.
    Validate {
        /// YAML file with one ElasticNodePool (or its spec).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Talk to the YARN ResourceManager as the operator does: list nodes, resize, label,
    /// signal (simple, Kerberos or delegation-token authentication; HA pairs followed).
    Yarn(yarn::YarnArgs),
    /// Run the operator in a cluster: reconcile ElasticNodePools, size their NodeManagers,
    /// drain them on schedule (leader-elected; stops on SIGTERM).
    Run(operate::RunArgs),
    /// Run one pool's vertical loop against explicit endpoints (an RM, exporters, guarders),
    /// without Kubernetes; prints a JSON line per NodeManager per tick.
    Vertical(operate::VerticalArgs),
    /// Print the NodeManager pods and other children the operator would create for a pool on
    /// the given nodes, without a cluster.
    Render(render::RenderArgs),
    /// Check a cluster and its ResourceManagers the way the operator will use them (CRDs,
    /// RBAC, Koordinator, each pool's nodes, exporters, RM, Kerberos, static IPs, datasets) and
    /// print a checklist with fixes; exits 1 when something blocks the operator.
    Doctor(crate::doctor::DoctorArgs),
    /// Write the CustomResourceDefinitions as YAML (into the Helm chart by default).
    Crdgen {
        /// Folder to write into.
        #[arg(long, default_value = crdgen::CHART_CRD_DIR)]
        out: PathBuf,
    },
}

fn validate_file(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let text = manifest::read(file)?;
    let verdict =
        validate_text(&text, Timestamp::now()).with_context(|| format!("{}", file.display()))?;
    match &verdict {
        Verdict::Valid(summary) => println!("{}: {summary}", file.display()),
        Verdict::Refused(problems) => {
            for problem in problems {
                println!("{}: {problem}", file.display());
            }
        }
    }
    Ok(match verdict {
        Verdict::Valid(_) => ExitCode::SUCCESS,
        Verdict::Refused(_) => ExitCode::FAILURE,
    })
}

/// What `validate` says of a manifest that parses.
#[derive(Debug)]
pub enum Verdict {
    /// Accepted; a one-line summary.
    Valid(String),
    /// Refused, with what the CEL rules and the operator's checks found.
    Refused(Vec<String>),
}

/// Validates a pool manifest's text (a whole ElasticNodePool or its spec) as the operator
/// would: the CRD's CEL rules, then every check of [`validate`]. `Err` when the text is nested
/// too deep, is not YAML or is not a pool spec.
pub fn validate_text(text: &str, now: Timestamp) -> anyhow::Result<Verdict> {
    manifest::check_nesting(text)?;
    let value: serde_yaml::Value = serde_yaml::from_str(text).context("not YAML")?;
    let spec_value = match value.get("spec") {
        Some(spec) if value.get("kind").is_some() => spec.clone(),
        _ => value,
    };
    let spec: ElasticNodePoolSpec =
        serde_yaml::from_value(spec_value).context("not an ElasticNodePool spec")?;
    let pool = ElasticNodePool::new("validate", spec.clone());
    let mut problems = Vec::new();
    if let Err(errors) = pool.validate_cel() {
        problems.push(format!("refused by the CRD's CEL rules:\n{errors:?}"));
    }
    match validate(&spec, now) {
        Ok(validated) if problems.is_empty() => Ok(Verdict::Valid(format!(
            "valid ({:?} lifecycle, {} policy, {} ResourceManager address(es))",
            spec.lifecycle.mode,
            validated.policy,
            validated.resource_managers.len()
        ))),
        Ok(_) => Ok(Verdict::Refused(problems)),
        Err(errors) => {
            problems.push(errors.to_string());
            Ok(Verdict::Refused(problems))
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        #[cfg(feature = "simulate")]
        Command::Simulate(args) => simulate::run(&args),
        Command::Validate { file } => validate_file(&file),
        Command::Yarn(args) => yarn::run(args),
        Command::Render(args) => render::run(&args),
        Command::Run(args) => operate::run(args),
        Command::Vertical(args) => operate::vertical(args),
        Command::Doctor(args) => crate::doctor::run(&args),
        Command::Crdgen { out } => {
            let written = crdgen::write_crds(&out)
                .with_context(|| format!("writing CRDs into {}", out.display()))?;
            for path in written {
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
