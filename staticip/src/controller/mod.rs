//! The `staticip-controller`: reconciles every `StaticIPPool` (see `reconcile`), one replica at
//! a time under a Lease.

pub mod provision;
pub mod reconcile;
pub mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use controlkit::leader::{self, LeaseSettings};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Client};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::crd::{StaticIP, StaticIPPool};

pub use reconcile::reconcile;

/// Tunables of a pass.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// The MIT `kadmin` client.
    pub kadmin_program: PathBuf,
    /// Timeout of one DNS update.
    pub dns_timeout: Duration,
    /// Timeout of one kadmin call.
    pub kadmin_timeout: Duration,
    /// Addresses provisioned or cleaned up per pass.
    pub batch: usize,
    /// `StaticIP`s created per pass.
    pub create_batch: usize,
    /// Addresses provisioned at once.
    pub concurrency: usize,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            kadmin_program: PathBuf::from("kadmin"),
            dns_timeout: Duration::from_secs(5),
            kadmin_timeout: Duration::from_secs(30),
            batch: 64,
            create_batch: 500,
            concurrency: 8,
        }
    }
}

/// The controller's Prometheus metrics.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Passes started.
    pub reconciles: Counter,
    /// Passes failed, by category.
    pub failures: controlkit::report::Failures,
    /// Addresses whose DNS records and keytab were made.
    pub addresses_made_ready: Counter,
}

impl Metrics {
    /// A registry with every metric.
    pub fn registry(&self) -> Registry {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("elastic_yarn_staticip");
        registry.register(
            "reconciles",
            "Pool reconciles started",
            self.reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Pool reconciles that failed, by category",
            self.failures.clone(),
        );
        registry.register(
            "addresses_made_ready",
            "Addresses whose DNS records and keytab were made",
            self.addresses_made_ready.clone(),
        );
        root
    }
}

/// What every pass shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Tunables.
    pub settings: ControllerSettings,
    /// Metrics.
    pub metrics: Metrics,
    /// Events; `None` in tests that do not look at them.
    pub recorder: Option<Recorder>,
    /// The leader Lease this replica acts under (`None`: no election, as in tests).
    pub leadership: Option<leader::Leadership>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        controlkit::report::debug_context(f, "Context", &self.settings)
    }
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// An API call failed.
    #[error("Kubernetes API: {0}")]
    Kubernetes(#[from] kube::Error),
    /// The finalizer helper failed.
    #[error(transparent)]
    Finalizer(#[from] controlkit::report::FinalizerError),
    /// The pool is being deleted and addresses remain.
    #[error("the pool stays until its addresses go: {held} held, {left} not yet cleaned up")]
    DeletionPending {
        /// Held addresses.
        held: usize,
        /// Unheld addresses whose cleanup failed or waits.
        left: usize,
    },
}

impl controlkit::report::Categorised for ReconcileError {
    fn category(&self) -> &'static str {
        match self {
            ReconcileError::Kubernetes(_) => "kubernetes",
            ReconcileError::DeletionPending { .. } => "deletion_pending",
            ReconcileError::Finalizer(error) => error.category(),
        }
    }
}

/// Retries a failed pass after a pause; never hot.
pub fn error_policy(
    _pool: Arc<StaticIPPool>,
    error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    // (Counted and reported by `reconcile`, through controlkit's report path.)
    Action::requeue(match error {
        ReconcileError::DeletionPending { .. } => Duration::from_secs(30),
        _ => Duration::from_secs(15),
    })
}

/// Options of `run`.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Pass tunables.
    pub controller: ControllerSettings,
    /// `/metrics` and `/healthz`.
    pub listen: SocketAddr,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Lease settings.
    pub lease: LeaseSettings,
}

/// Runs until SIGTERM/SIGINT or until leadership is lost.
pub async fn run(settings: RunSettings) -> anyhow::Result<()> {
    // Every write of this replica goes through the fence: none leaves while it does not hold
    // the Lease, however it got there (frozen, partitioned, hung).
    let leadership = leader::Leadership::new(&settings.lease);
    let client = leader::fenced_client(&leadership).await?;
    let pools: Api<StaticIPPool> = Api::all(client.clone());
    if let Err(kube::Error::Api(status)) =
        pools.list(&kube::api::ListParams::default().limit(1)).await
        && status.code == 404
    {
        anyhow::bail!(
            "the StaticIPPool CRD is not installed: apply charts/elastic-yarn/crds/ (or `staticip-controller crdgen`) first"
        );
    }
    let metrics = Metrics::default();
    let healthy = Arc::new(AtomicBool::new(true));
    let server = tokio::spawn(controlkit::http::serve(
        settings.listen,
        controlkit::http::router(metrics.registry(), healthy.clone()),
    ));
    let leases: Api<Lease> = Api::namespaced(client.clone(), &settings.lease_namespace);
    let mut shutdown = Box::pin(controlkit::process::shutdown_signal());
    if !leader::wait_to_lead(&leases, &settings.lease, &mut shutdown).await {
        return Ok(());
    }
    tracing::info!("leading: reconciling StaticIPPools");
    let ctx = Arc::new(Context {
        leadership: Some(leadership.clone()),
        client: client.clone(),
        settings: settings.controller.clone(),
        metrics,
        recorder: Some(Recorder::new(
            client.clone(),
            Reporter {
                controller: "staticip-controller".to_owned(),
                instance: Some(settings.lease.identity.clone()),
            },
        )),
    });
    let (renewer, lost_rx) =
        leader::renew_in_background(leases, settings.lease.clone(), leadership.clone());
    // A claim changes a StaticIP, which wakes its pool: debounce so a burst of claims costs
    // one pass.
    let reconciling = Controller::new(pools, watcher::Config::default())
        .owns(
            Api::<StaticIP>::all(client.clone()),
            watcher::Config::default(),
        )
        .with_config(ControllerConfig::default().debounce(Duration::from_secs(2)))
        .graceful_shutdown_on(async move {
            shutdown.await;
            tracing::info!("shutting down on signal");
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()));
    // On a signal, reconciles in flight finish first; on a lost Lease, they are dropped.
    leader::run_until_lost(reconciling, lost_rx).await;
    healthy.store(false, Ordering::Relaxed);
    renewer.abort();
    server.abort();
    Ok(())
}
