//! Wiring of the exporter binary: the scrape loop and the HTTP server on one runtime; and the
//! process plumbing (logging, shutdown) the workspace's binaries share.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::availability::{FormulaSettings, NodeCapacity};
use crate::cgroup::{CgroupLayout, YarnCgroups};
use crate::exporter::{Clock, Exporter, ExporterConfig};
use crate::exposition;
use crate::scrape::{KoordletClient, ScrapeLoop};
use crate::server;

/// Where YARN's use comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum YarnSource {
    /// Sum of the cgroup hierarchies matching these globs under `root`.
    Cgroups {
        /// The cgroup mount root (`/sys/fs/cgroup`).
        root: PathBuf,
        /// Globs relative to the controller mounts.
        patterns: Vec<String>,
    },
    /// YARN is taken to use nothing (no NodeManager on this node, or a test).
    Nothing,
}

/// Everything the binary was told.
#[derive(Clone, Debug)]
pub struct Settings {
    /// koordlet's metrics URL.
    pub koordlet_url: String,
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Node name.
    pub node: String,
    /// Time between scrapes.
    pub interval: Duration,
    /// Scrape timeout.
    pub timeout: Duration,
    /// The node's size.
    pub capacity: NodeCapacity,
    /// Formula settings.
    pub formula: FormulaSettings,
    /// YARN's use.
    pub yarn: YarnSource,
}

/// Runs the exporter until `shutdown` completes.
pub async fn run(
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if settings.timeout >= settings.interval {
        tracing::warn!(
            timeout_ms = settings.timeout.as_millis() as u64,
            interval_ms = settings.interval.as_millis() as u64,
            "scrape timeout is not shorter than the interval; slow scrapes will skip ticks"
        );
    }
    let client = KoordletClient::new(&settings.koordlet_url, settings.timeout)?;
    let yarn = match &settings.yarn {
        YarnSource::Nothing => None,
        YarnSource::Cgroups { root, patterns } => {
            let layout = CgroupLayout::detect(root)?;
            tracing::info!(?layout, ?patterns, "reading YARN's use from cgroups");
            Some(YarnCgroups::new(layout, patterns)?)
        }
    };
    let clock = Clock::start();
    let exporter = Arc::new(Mutex::new(Exporter::new(ExporterConfig {
        node: settings.node.clone(),
        capacity: settings.capacity,
        settings: settings.formula,
    })));
    let (registry, duration) = exposition::registry(exporter.clone(), clock);
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        koordlet = %client.url(),
        node = %settings.node,
        "koordlet-metrics serving"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scrapes = ScrapeLoop {
        exporter: exporter.clone(),
        client,
        yarn,
        clock,
        interval: settings.interval,
        duration,
    };
    let mut scrape_stop = stop_rx.clone();
    let scrape_task = tokio::spawn(scrapes.run(async move {
        let _ = scrape_stop.wait_for(|stop| *stop).await;
    }));
    let app = server::router(exporter, Arc::new(registry), clock);
    let mut server_stop = stop_rx;
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    });
    let server_task = tokio::spawn(server.into_future());
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = scrape_task.await;
    server_task.await??;
    Ok(())
}
