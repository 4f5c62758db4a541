//! `guarder`: the NodeManager pod's sidecar. Scans the NM's YARN containers every second and,
//! when the operator lowers the target, frees the best ones gracefully, killing stragglers
//! after the grace period.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use controlkit::process::Clock;
use controlkit::process::{init_logging, shutdown_signal};
use guarder::RankingWeights;
use guarder::discovery::Scope;
use guarder::drain::DrainSettings;
use guarder::server::{self, lock};
use guarder::service::{Guarder, GuarderConfig};
use koordlet_metrics::cgroup::CgroupLayout;
use tokio::net::TcpListener;

/// NodeManager sidecar that frees YARN containers when the NM must shrink.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address of the HTTP API.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:9321")]
    listen: SocketAddr,
    /// File holding the bearer token the operator sends (a mounted Secret).
    #[arg(long, env = "GUARDER_TOKEN_FILE")]
    token_file: PathBuf,
    /// Seconds a signalled container gets before SIGKILL.
    #[arg(long, default_value_t = 120)]
    grace_period_seconds: u64,
    /// The pool runs Spark with spark.decommission.enabled: executors get SIGPWR.
    #[arg(long)]
    spark_decommission: bool,
    /// Physical cores per YARN vcore.
    #[arg(long, default_value_t = 1.0)]
    cores_per_vcore: f64,
    /// Never free an ApplicationMaster, even when nothing else can free enough.
    #[arg(long)]
    spare_application_masters: bool,
    /// Ranking weights as JSON (fields of RankingWeights; missing ones keep their default).
    #[arg(long)]
    ranking_weights: Option<String>,
    /// Milliseconds between scans.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    scan_interval_ms: u64,
    /// The proc filesystem of the NM pod's PID namespace.
    #[arg(long, default_value = "/proc")]
    proc_root: PathBuf,
    /// The cgroup mount root.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    cgroup_root: PathBuf,
    /// YARN's cgroup hierarchy relative to the controller mounts.
    #[arg(long, default_value = "hadoop-yarn")]
    yarn_cgroup: PathBuf,
    /// Only consider descendants of this process (debugging; default: the whole namespace).
    #[arg(long)]
    scope_pid: Option<i32>,
}

fn config(cli: &Cli) -> anyhow::Result<GuarderConfig> {
    if !(cli.cores_per_vcore.is_finite() && cli.cores_per_vcore > 0.0) {
        anyhow::bail!(
            "--cores-per-vcore must be positive, got {}",
            cli.cores_per_vcore
        );
    }
    let weights = match &cli.ranking_weights {
        Some(json) => serde_json::from_str::<RankingWeights>(json)
            .context("--ranking-weights is not a valid RankingWeights JSON object")?,
        None => RankingWeights::default(),
    };
    std::fs::read_to_string(&cli.token_file)
        .with_context(|| format!("cannot read the token file {}", cli.token_file.display()))?;
    let cgroups = match CgroupLayout::detect(&cli.cgroup_root) {
        Ok(layout) => Some((layout, cli.yarn_cgroup.clone())),
        Err(error) => {
            tracing::warn!(%error, "no cgroup accounting: containers are found by environment and process tree");
            None
        }
    };
    Ok(GuarderConfig {
        proc_root: cli.proc_root.clone(),
        cgroups,
        scope: cli.scope_pid.map_or(Scope::Namespace, Scope::DescendantsOf),
        drain: DrainSettings {
            grace_ms: cli.grace_period_seconds.saturating_mul(1000),
            spark_decommission: cli.spark_decommission,
            cores_per_vcore: cli.cores_per_vcore,
            spare_application_masters: cli.spare_application_masters,
            weights,
        },
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = config(&cli)?;
    let clock = Clock::start();
    let guarder = Arc::new(Mutex::new(Guarder::new(config)));
    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "guarder serving");
    let scanner = {
        let guarder = guarder.clone();
        let interval = Duration::from_millis(cli.scan_interval_ms);
        async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticker.tick().await;
                let now = clock.now().monotonic_ms;
                let mut guarder = lock(&guarder);
                guarder.scan(now);
                guarder.step(now);
            }
        }
    };
    let app = server::router(guarder, cli.token_file.clone(), clock);
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal());
    tokio::select! {
        result = server => result.context("the HTTP server failed")?,
        () = scanner => {}
    }
    tracing::info!("shutting down");
    Ok(())
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("guarder: {error:#}");
            ExitCode::FAILURE
        }
    }
}
