//! `staticip-controller`: `run` reconciles `StaticIPPool`s; `crdgen` writes the CRDs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use controlkit::leader::LeaseSettings;
use staticip::controller::{ControllerSettings, RunSettings, run};
use staticip::crdgen::{CHART_CRD_DIR, write_crds};

#[derive(Parser)]
#[command(
    name = "staticip-controller",
    version,
    about = "Static IPs, DNS records and keytabs for YARN NodeManagers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reconcile every StaticIPPool (one replica at a time, under a Lease).
    Run {
        /// Address of /metrics and /healthz.
        #[arg(long, env = "STATICIP_LISTEN", default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        /// Namespace of the leader Lease (the controller's own).
        #[arg(long, env = "POD_NAMESPACE", default_value = "elastic-yarn")]
        lease_namespace: String,
        /// This replica's identity in the Lease.
        #[arg(long, env = "POD_NAME", default_value = "staticip-controller")]
        identity: String,
        /// The MIT kadmin client.
        #[arg(long, env = "STATICIP_KADMIN", default_value = "kadmin")]
        kadmin: PathBuf,
        /// Addresses provisioned per pass.
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Write the StaticIPPool and StaticIP CRDs as YAML.
    Crdgen {
        /// Folder to write into.
        #[arg(long, default_value = CHART_CRD_DIR)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    controlkit::process::init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Crdgen { out } => match write_crds(&out) {
            Ok(paths) => {
                for path in paths {
                    println!("{}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!(
                    "error: cannot write the CRDs into {}: {error}",
                    out.display()
                );
                ExitCode::FAILURE
            }
        },
        Command::Run {
            listen,
            lease_namespace,
            identity,
            kadmin,
            batch,
        } => {
            let settings = RunSettings {
                controller: ControllerSettings {
                    kadmin_program: kadmin,
                    batch: batch.max(1),
                    ..ControllerSettings::default()
                },
                listen,
                lease_namespace,
                lease: LeaseSettings {
                    name: "staticip-controller".to_owned(),
                    identity,
                    duration: Duration::from_secs(15),
                    renew_every: Duration::from_secs(5),
                },
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("error: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(run(settings));
            // A replica that stopped leading must exit now, whatever may still run.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
