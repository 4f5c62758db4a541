//! `run` (the operator in a cluster) and `vertical` (one pool's vertical loop against explicit
//! endpoints, without Kubernetes).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use controlkit::process::{init_logging, shutdown_signal};
use jiff::Timestamp;
use serde::Serialize;
use url::Url;

use crate::build::BuildSettings;
use crate::controller::leader::LeaseSettings;
use crate::controller::{ControllerSettings, RunSettings};
use crate::crd::ElasticNodePool;
use crate::validate::validate;
use crate::vertical::guarder_client::GuarderClient;
use crate::vertical::{Applied, LoopSettings, NodeManagerEndpoints, VerticalLoop};
use yarn_rm::{NodeId, RestResourceManager, RestSettings, RmAuth, Secret};

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Address of `/metrics` and `/healthz`.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Name of the leader Lease.
    #[arg(long, default_value = "elastic-yarn-operator")]
    lease_name: String,
    /// Namespace of the leader Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "elastic-yarn")]
    lease_namespace: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Guarder image for pools that name none.
    #[arg(long, env = "GUARDER_IMAGE")]
    guarder_image: Option<String>,
    /// RM writes per second per pool.
    #[arg(long, default_value_t = crate::vertical::DEFAULT_RM_WRITES_PER_SECOND)]
    rm_writes_per_second: f64,
    /// PEM bundle of the CAs that sign the RMs' certificates, for `https://` RM addresses
    /// (default: the platform's trust store).
    #[arg(long, env = "RM_CA_FILE")]
    rm_ca_file: Option<PathBuf>,
    /// A range pools' RM and Prometheus URLs may reach although denied by default (loopback,
    /// link-local, the API server); repeat or separate with commas.
    #[arg(long, env = "ALLOW_EGRESS_CIDRS", value_delimiter = ',')]
    allow_egress_cidr: Vec<ipnet::IpNet>,
    /// A range pools' RM and Prometheus URLs may not reach, besides the default ones; repeat or
    /// separate with commas.
    #[arg(long, env = "DENY_EGRESS_CIDRS", value_delimiter = ',')]
    deny_egress_cidr: Vec<ipnet::IpNet>,
    /// Client keytab file merged from Kerberos pools' Secrets (GSSAPI reads it).
    #[arg(long, env = "KRB5_CLIENT_KTNAME")]
    client_keytab: Option<String>,
}

/// Runs the operator.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let identity = args
        .identity
        .or_else(|| std::env::var("HOSTNAME").ok())
        .context("set POD_NAME (or --identity) so that the leader Lease names this replica")?;
    let settings = RunSettings {
        controller: ControllerSettings {
            build: args
                .guarder_image
                .map_or_else(BuildSettings::default, |guarder_image| BuildSettings {
                    guarder_image,
                }),
            rm_writes_per_second: args.rm_writes_per_second,
            rm_ca_file: args.rm_ca_file,
            ..ControllerSettings::default()
        },
        listen: args.listen,
        lease_namespace: args.lease_namespace,
        lease: LeaseSettings {
            name: args.lease_name,
            identity,
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        },
        egress_deny: args.deny_egress_cidr,
        egress_allow: args.allow_egress_cidr,
        client_keytab: args
            .client_keytab
            .map(|path| PathBuf::from(path.trim_start_matches("FILE:"))),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(crate::controller::run(settings));
    // A replica that stopped leading must exit now, whatever may still run in the background.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// One NM given on the command line: `node=N,id=HOST:PORT,exporter=URL,guarder=URL`.
#[derive(Clone, Debug)]
pub struct NodeManagerArg(NodeManagerEndpoints);

fn parse_node_manager(text: &str) -> Result<NodeManagerArg, String> {
    let (mut node, mut id, mut exporter, mut guarder) = (None, None, None, None);
    for part in text.split(',') {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not key=value"))?;
        let url = || Url::parse(value).map_err(|e| format!("{key}: {value:?} is not a URL: {e}"));
        match key.trim() {
            "node" => node = Some(value.to_owned()),
            "id" => id = Some(value.parse::<NodeId>().map_err(|e| format!("id: {e}"))?),
            "exporter" => exporter = Some(url()?),
            "guarder" => guarder = Some(url()?),
            other => {
                return Err(format!(
                    "unknown key {other:?} (node, id, exporter, guarder)"
                ));
            }
        }
    }
    let id = id.ok_or("id=HOST:PORT (the YARN node id) is required")?;
    Ok(NodeManagerArg(NodeManagerEndpoints {
        node: node.unwrap_or_else(|| id.host().to_owned()),
        yarn_node_id: id,
        exporter,
        guarder,
        batch_allocatable: None,
    }))
}

/// Options of `vertical`.
#[derive(Debug, Args)]
pub struct VerticalArgs {
    /// The ElasticNodePool whose policy, bounds and RMs to use.
    #[arg(long)]
    pool: PathBuf,
    /// RM web address(es), overriding the pool's.
    #[arg(long = "rm", value_delimiter = ',')]
    rms: Vec<String>,
    /// User for simple authentication, overriding the pool's.
    #[arg(long)]
    user: Option<String>,
    /// An NM: `node=NAME,id=HOST:PORT,exporter=URL,guarder=URL` (repeat).
    #[arg(long = "nm", value_parser = parse_node_manager, required = true)]
    nms: Vec<NodeManagerArg>,
    /// PEM bundle of the CAs that sign the RMs' certificates, for `https://` RM addresses
    /// (default: the platform's trust store).
    #[arg(long, env = "RM_CA_FILE")]
    rm_ca_file: Option<PathBuf>,
    /// File with the guarders' bearer token.
    #[arg(long)]
    guarder_token_file: Option<PathBuf>,
    /// Stop after this many ticks (default: until SIGTERM).
    #[arg(long)]
    ticks: Option<u64>,
    /// Seconds between ticks (default: the pool's syncIntervalSeconds).
    #[arg(long)]
    interval_seconds: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TickLine<'a> {
    tick: u64,
    node: &'a str,
    yarn_node_id: String,
    capacity: String,
    allocated: String,
    applied: String,
    reason: Option<&'a str>,
    metrics_age_seconds: Option<u64>,
    metrics_error: Option<&'a str>,
}

fn applied_text(applied: &Applied) -> String {
    match applied {
        Applied::Kept(reason) => format!("keep ({})", reason.category()),
        Applied::NotRegistered => "not registered".to_owned(),
        Applied::Resized {
            from,
            to,
            guarder_target,
            ..
        } => format!(
            "resized {from} -> {to}{}",
            guarder_target
                .map(|t| format!(", guarder target {t}"))
                .unwrap_or_default()
        ),
        Applied::GuarderOnly { target } => format!("guarder target {target}"),
        Applied::Protected { target } => {
            format!("RM unreadable; guarder target {target}")
        }
        Applied::GuarderRestored { target } => format!("guarder target restored: {target}"),
        Applied::Unknown => "unknown (RM unreadable)".to_owned(),
        Applied::RateLimited => "rate limited".to_owned(),
        Applied::Failed { category, message } => format!("failed [{category}]: {message}"),
    }
}

/// Runs one pool's loop against explicit endpoints, printing a JSON line per NM per tick.
pub fn vertical(args: VerticalArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let text = super::manifest::read(&args.pool)?;
    let pool: ElasticNodePool = serde_yaml::from_str(&text)
        .with_context(|| format!("{} is not an ElasticNodePool", args.pool.display()))?;
    let validated = match validate(&pool.spec, Timestamp::now()) {
        Ok(validated) => validated,
        Err(errors) => {
            eprintln!("{}: {errors}", args.pool.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let addresses = if args.rms.is_empty() {
        validated.rm_addresses()
    } else {
        args.rms.clone()
    };
    let auth = match &args.user {
        Some(user) => RmAuth::Simple { user: user.clone() },
        None => validated.rm_auth(),
    };
    let mut rm_settings = RestSettings::new(addresses, auth);
    rm_settings.ca_file = args.rm_ca_file.clone();
    let rm = RestResourceManager::new(rm_settings)?;
    let guarder = match &args.guarder_token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(GuarderClient::new(
                Secret::new(token.trim()),
                Duration::from_secs(3),
            )?)
        }
        None => None,
    };
    let loop_settings = LoopSettings {
        policy: validated.policy,
        settings: validated.settings,
        rm_writes_per_second: crate::vertical::DEFAULT_RM_WRITES_PER_SECOND,
        rm_write_burst: crate::vertical::DEFAULT_RM_WRITE_BURST,
        concurrency: 64,
    };
    let interval = match args.interval_seconds {
        None => validated.sync_interval,
        Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0 => {
            Duration::from_secs_f64(seconds)
        }
        Some(seconds) => {
            eprintln!("--interval-seconds {seconds} must be above 0 and at most 3600");
            return Ok(ExitCode::FAILURE);
        }
    };
    let nms: Vec<NodeManagerEndpoints> = args.nms.into_iter().map(|a| a.0).collect();
    let metrics = crate::vertical::reader(&validated.metrics, Duration::from_secs(3), 64, None)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut looper = VerticalLoop::new(loop_settings, rm, metrics, guarder);
        let mut shutdown = Box::pin(shutdown_signal());
        let mut tick = 0;
        loop {
            tick += 1;
            let report = looper.tick(&nms).await;
            if let Some(error) = &report.rm_error {
                eprintln!(
                    "tick {tick}: ResourceManager [{}]: {error}",
                    error.category()
                );
            }
            for outcome in &report.outcomes {
                let line = TickLine {
                    tick,
                    node: &outcome.node,
                    yarn_node_id: outcome.yarn_node_id.to_string(),
                    capacity: outcome.capacity.to_string(),
                    allocated: outcome.allocated.to_string(),
                    applied: applied_text(&outcome.applied),
                    reason: outcome.reason,
                    metrics_age_seconds: outcome.metrics_age_seconds,
                    metrics_error: outcome.metrics_error,
                };
                println!("{}", serde_json::to_string(&line)?);
            }
            if args.ticks.is_some_and(|limit| tick >= limit) {
                return Ok::<_, anyhow::Error>(());
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = &mut shutdown => return Ok(()),
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
