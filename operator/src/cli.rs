//! Command line of `elastic-yarn-operator`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::crdgen;

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
    /// Write the CustomResourceDefinitions as YAML (into the Helm chart by default).
    Crdgen {
        /// Folder to write into.
        #[arg(long, default_value = crdgen::CHART_CRD_DIR)]
        out: PathBuf,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
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
