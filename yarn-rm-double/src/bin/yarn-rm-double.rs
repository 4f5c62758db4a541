//! `yarn-rm-double`: an RM on loopback that answers as Hadoop 3.x's RMWebServices does, for
//! trying `elastic-yarn-operator yarn ...` and for tests that need the RM in its own process
//! (Kerberos: the service keytab comes from `KRB5_KTNAME`).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use yarn_rm::Resources;
use yarn_rm_double::{DoubleAuth, DoubleCluster, JerseyStyle, RmDouble, Role, SpnegoAcceptor};

/// An RM double serving `/ws/v1/cluster` on loopback.
#[derive(Debug, Parser)]
#[command(name = "yarn-rm-double", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8088")]
    listen: SocketAddr,
    /// Running NodeManagers `nm-<i>.yarn.test:45454`.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Vcores of each node.
    #[arg(long, default_value_t = 32)]
    node_vcores: u32,
    /// Memory of each node, MB.
    #[arg(long, default_value_t = 131_072)]
    node_memory_mb: u64,
    /// Require SPNEGO (Kerberos) with the keytab in KRB5_KTNAME, then the hadoop.auth cookie.
    #[arg(long)]
    kerberos: bool,
    /// Lifetime of a hadoop.auth cookie, seconds.
    #[arg(long, default_value_t = 36_000)]
    session_seconds: u64,
    /// Start as a standby that redirects to this active RM address.
    #[arg(long)]
    standby_of: Option<String>,
    /// Write JSON in Jersey's mapped notation (one-element lists as objects, numbers as strings).
    #[arg(long)]
    mapped: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let auth = if args.kerberos {
        match SpnegoAcceptor::from_environment(Duration::from_secs(args.session_seconds)) {
            Ok(acceptor) => DoubleAuth::Kerberos(acceptor),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        DoubleAuth::Simple
    };
    let cluster = DoubleCluster::with_nodes(
        args.nodes,
        Resources {
            memory_mb: args.node_memory_mb,
            vcores: args.node_vcores,
        },
    );
    if args.mapped {
        cluster.set_style(JerseyStyle::Mapped);
    }
    let role = match args.standby_of {
        Some(active) => Role::Standby {
            active: Some(active),
        },
        None => Role::Active,
    };
    let double = RmDouble::new(cluster, role, auth);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("error: cannot listen on {}: {err}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        let address = listener
            .local_addr()
            .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
        println!("yarn-rm-double listening on http://{address}");
        let _ = std::io::stdout().flush();
        tokio::select! {
            served = double.serve(listener) => match served {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::FAILURE
                }
            },
            () = controlkit::process::shutdown_signal() => ExitCode::SUCCESS,
        }
    })
}
