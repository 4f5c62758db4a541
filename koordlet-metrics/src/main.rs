//! `koordlet-metrics`: scrapes koordlet every second and publishes what batch (YARN) work may
//! use on this node, over 1, 5 and 10 minutes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use controlkit::process::{init_logging, shutdown_signal};
use koordlet_metrics::app::{self, Settings, YarnSource};
use koordlet_metrics::availability::{FormulaSettings, NodeCapacity, PolicyChoice};
use koordlet_metrics::koordlet::SuppressPolicy;
use procfs::Current as _;

/// Per-node exporter of the CPU and memory Koordinator leaves to YARN.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// koordlet's metrics endpoint.
    #[arg(
        long,
        env = "KOORDLET_URL",
        default_value = "http://127.0.0.1:9316/metrics"
    )]
    koordlet_url: String,
    /// Address to serve /metrics, /v1/windows and /healthz on.
    #[arg(long, env = "LISTEN", default_value = "0.0.0.0:9320")]
    listen: SocketAddr,
    /// Kubernetes node name (koordlet's `node` label must match).
    #[arg(long, env = "NODE_NAME")]
    node: String,
    /// Milliseconds between scrapes.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    scrape_interval_ms: u64,
    /// Milliseconds before a scrape is abandoned (keep it under the interval).
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    scrape_timeout_ms: u64,
    /// koordlet's memory eviction threshold, percent of node memory (NodeSLO
    /// memoryEvictThresholdPercent).
    #[arg(long, default_value_t = 70.0, value_parser = percent)]
    memory_evict_threshold_percent: f64,
    /// Which suppress series to trust: the one koordlet uses (auto) or one policy.
    #[arg(long, value_enum, default_value_t = PolicyArg::Auto)]
    suppress_policy: PolicyArg,
    /// Seconds a cfsQuota limit stays valid after koordlet stopped repeating it.
    #[arg(long, default_value_t = 600)]
    cfs_quota_hold_seconds: u64,
    /// CPUs of the node (default: from /proc/cpuinfo).
    #[arg(long)]
    node_cpu_cores: Option<f64>,
    /// Memory of the node in bytes (default: MemTotal of /proc/meminfo).
    #[arg(long)]
    node_memory_bytes: Option<f64>,
    /// The cgroup mount root.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    cgroup_root: PathBuf,
    /// Glob of YARN's cgroup hierarchy relative to the controller mounts (repeatable).
    #[arg(long = "yarn-cgroup", default_value = "hadoop-yarn")]
    yarn_cgroups: Vec<String>,
    /// Do not read YARN's use (only where no NodeManager runs on the node).
    #[arg(long, conflicts_with = "yarn_cgroups")]
    no_yarn_usage: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PolicyArg {
    Auto,
    Cpuset,
    #[value(name = "cfsQuota")]
    CfsQuota,
}

fn percent(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if value > 0.0 && value <= 100.0 {
        Ok(value)
    } else {
        Err("must be more than 0 and at most 100".to_owned())
    }
}

fn capacity(cli: &Cli) -> anyhow::Result<NodeCapacity> {
    let cpu_cores = match cli.node_cpu_cores {
        Some(cores) if cores.is_finite() && cores > 0.0 => cores,
        Some(cores) => anyhow::bail!("--node-cpu-cores must be positive, got {cores}"),
        None => procfs::CpuInfo::current()
            .context("cannot read /proc/cpuinfo; give --node-cpu-cores")?
            .num_cores() as f64,
    };
    let memory_bytes = match cli.node_memory_bytes {
        Some(bytes) if bytes.is_finite() && bytes > 0.0 => bytes,
        Some(bytes) => anyhow::bail!("--node-memory-bytes must be positive, got {bytes}"),
        None => {
            procfs::Meminfo::current()
                .context("cannot read /proc/meminfo; give --node-memory-bytes")?
                .mem_total as f64
        }
    };
    Ok(NodeCapacity {
        cpu_cores,
        memory_bytes,
    })
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    if cli.node.trim().is_empty() {
        anyhow::bail!("the node name is empty; give --node or set NODE_NAME");
    }
    Ok(Settings {
        koordlet_url: cli.koordlet_url.clone(),
        listen: cli.listen,
        node: cli.node.clone(),
        interval: Duration::from_millis(cli.scrape_interval_ms),
        timeout: Duration::from_millis(cli.scrape_timeout_ms),
        capacity: capacity(cli)?,
        formula: FormulaSettings {
            memory_evict_threshold_percent: cli.memory_evict_threshold_percent,
            policy: match cli.suppress_policy {
                PolicyArg::Auto => PolicyChoice::Auto,
                PolicyArg::Cpuset => PolicyChoice::Only(SuppressPolicy::Cpuset),
                PolicyArg::CfsQuota => PolicyChoice::Only(SuppressPolicy::CfsQuota),
            },
            cfs_quota_hold_ms: cli.cfs_quota_hold_seconds.saturating_mul(1000),
        },
        yarn: if cli.no_yarn_usage {
            YarnSource::Nothing
        } else {
            YarnSource::Cgroups {
                root: cli.cgroup_root.clone(),
                patterns: cli.yarn_cgroups.clone(),
            }
        },
    })
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = settings(&cli).and_then(|settings| {
        // One thread: a 1 Hz scrape and a few HTTP requests need no more, and it keeps the
        // exporter small on every node.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(app::run(settings, shutdown_signal()))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("koordlet-metrics: {error:#}");
            ExitCode::FAILURE
        }
    }
}
