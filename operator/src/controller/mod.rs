//! The Kubernetes controller of `ElasticNodePool`: a reconcile pipeline
//! (fetch → validate → plan and build → apply → status) over the pure parts
//! ([`crate::validate`], [`crate::lifecycle`], [`crate::build`], [`status`]), a vertical loop per
//! pool ([`runtime`]), leader election ([`leader`]), metrics and Events.

pub mod addresses;
pub mod datasets;
pub mod error;
pub mod keytabs;
pub use controlkit::leader;
pub mod metrics;
pub mod nodes;
mod reconcile;
pub mod runtime;
pub mod status;
pub mod third_party;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client};
use tokio::sync::Mutex;

use crate::build::BuildSettings;
use crate::crd::ElasticNodePool;
use keytabs::KeytabStore;
use leader::LeaseSettings;
use metrics::OperatorMetrics;
use runtime::PoolRuntime;

pub use error::ReconcileError;
pub use reconcile::reconcile;

/// Settings of the installation.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// Shapes the children.
    pub build: BuildSettings,
    /// RM writes per second per pool.
    pub rm_writes_per_second: f64,
    /// RM writes at once per pool.
    pub rm_write_burst: u32,
    /// Exporter and guarder requests in flight per pool.
    pub concurrency: usize,
    /// Longest wait between two reconciles of a pool.
    pub resync: Duration,
    /// Request timeout towards exporters and guarders.
    pub endpoint_timeout: Duration,
    /// PEM bundle of the CAs of `https://` RMs (`None`: the platform's roots).
    pub rm_ca_file: Option<std::path::PathBuf>,
    /// What pool-named URLs (RM, Prometheus) may reach.
    pub egress: std::sync::Arc<controlkit::egress::EgressPolicy>,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            build: BuildSettings::default(),
            rm_writes_per_second: crate::vertical::DEFAULT_RM_WRITES_PER_SECOND,
            rm_write_burst: crate::vertical::DEFAULT_RM_WRITE_BURST,
            concurrency: 64,
            resync: Duration::from_secs(60),
            endpoint_timeout: Duration::from_secs(3),
            rm_ca_file: None,
            egress: std::sync::Arc::new(controlkit::egress::EgressPolicy::unrestricted()),
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Installation settings.
    pub settings: ControllerSettings,
    /// Metrics.
    pub metrics: OperatorMetrics,
    /// Events on pools (`None` in tests that do not follow Events).
    pub recorder: Option<Recorder>,
    /// Per-pool runtimes, by pool UID.
    pub runtimes: Mutex<HashMap<String, PoolRuntime>>,
    /// The merged client keytab.
    pub keytabs: Mutex<KeytabStore>,
    /// The leader Lease this replica acts under (`None`: no election, as in tests).
    pub leadership: Option<leader::Leadership>,
    /// What each pool's NMs hold per node, so that pools sharing a node divide it.
    pub shares: crate::vertical::shares::NodeShares,
    /// Per pool UID, the URLs that last passed the egress check, and when.
    pub egress_passed: reconcile::EgressPassed,
    /// The Nodes as the controller's reflector holds them (`None`: each reconcile lists them,
    /// as in request scenarios).
    pub nodes: Option<Store<Node>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        controlkit::report::debug_context(f, "Context", &self.settings)
    }
}

impl Context {
    /// A context over `client`.
    pub fn new(
        client: Client,
        settings: ControllerSettings,
        metrics: OperatorMetrics,
        recorder: Option<Recorder>,
        keytabs: KeytabStore,
    ) -> Context {
        Context {
            client,
            settings,
            metrics,
            recorder,
            runtimes: Mutex::new(HashMap::new()),
            keytabs: Mutex::new(keytabs),
            leadership: None,
            shares: crate::vertical::shares::NodeShares::default(),
            egress_passed: std::sync::Mutex::new(HashMap::new()),
            nodes: None,
        }
    }

    /// The same context, reading Nodes from `store` instead of listing them.
    pub fn with_nodes(mut self, store: Store<Node>) -> Context {
        self.nodes = Some(store);
        self
    }

    /// The same context, acting only while `leadership` is current.
    pub fn leading(mut self, leadership: leader::Leadership) -> Context {
        self.leadership = Some(leadership);
        self
    }

    /// Whether this replica may act (always, without an election).
    pub fn may_act(&self) -> bool {
        self.leadership
            .as_ref()
            .is_none_or(leader::Leadership::is_current)
    }
}

/// Retries a failed reconcile with a delay that grows with the kind of failure; never hot.
pub fn error_policy(
    _pool: Arc<ElasticNodePool>,
    error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    // (Counted, logged and reported on the pool by `reconcile`, through controlkit's report path.)
    Action::requeue(if error.is_transient() {
        Duration::from_secs(15)
    } else {
        Duration::from_secs(120)
    })
}

/// Options of `run`.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// Controller settings.
    pub controller: ControllerSettings,
    /// `/metrics` and `/healthz`.
    pub listen: SocketAddr,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Lease settings.
    pub lease: LeaseSettings,
    /// Client keytab file for Kerberos pools.
    pub client_keytab: Option<std::path::PathBuf>,
    /// Ranges pool URLs may not reach besides the built-in ones and the API server.
    pub egress_deny: Vec<ipnet::IpNet>,
    /// Ranges pool URLs may reach even when denied.
    pub egress_allow: Vec<ipnet::IpNet>,
}

/// Runs the operator until SIGTERM/SIGINT or until leadership is lost.
pub async fn run(settings: RunSettings) -> anyhow::Result<()> {
    // Every write of this replica goes through the fence: none leaves while it does not hold
    // the Lease, however it got there (frozen, partitioned, hung).
    let leadership = leader::Leadership::new(&settings.lease);
    let client = leader::fenced_client(&leadership).await?;
    let pools: Api<ElasticNodePool> = Api::all(client.clone());
    if let Err(kube::Error::Api(status)) = pools.list(&ListParams::default().limit(1)).await
        && status.code == 404
    {
        anyhow::bail!(
            "the ElasticNodePool CRD is not installed: apply charts/elastic-yarn/crds/ (or \
             `elastic-yarn-operator crdgen`) first"
        );
    }
    let metrics = OperatorMetrics::default();
    let healthy = Arc::new(AtomicBool::new(true));
    let server = tokio::spawn(metrics::serve(
        settings.listen,
        metrics::router(metrics.registry(), healthy.clone()),
    ));

    // Follow until we hold the Lease.
    let leases: Api<Lease> = Api::namespaced(client.clone(), &settings.lease_namespace);
    let mut shutdown = Box::pin(controlkit::process::shutdown_signal());
    if !leader::wait_to_lead(&leases, &settings.lease, &mut shutdown).await {
        return Ok(());
    }
    metrics.leader.set(1);
    tracing::info!("leading: reconciling ElasticNodePools");

    // Pools may not make the operator call its own API server (nor loopback, link-local...).
    let api_server = kube::Config::infer()
        .await
        .ok()
        .and_then(|config| url::Url::parse(&config.cluster_url.to_string()).ok());
    let controller_settings = ControllerSettings {
        egress: Arc::new(controlkit::egress::EgressPolicy::new(
            api_server.as_ref(),
            settings.egress_deny.clone(),
            settings.egress_allow.clone(),
        )),
        ..settings.controller.clone()
    };
    // One Node reflector: reconciles read its store, and only relevant changes wake the pools
    // the Node concerns. Pools are reconciled once it has listed the Nodes.
    let (node_store, node_changes, node_task) = nodes::follow(Api::<Node>::all(client.clone()));
    if node_store.wait_until_ready().await.is_err() {
        anyhow::bail!("the Node reflector stopped before listing the Nodes");
    }
    tracing::info!(nodes = node_store.state().len(), "Nodes listed");
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            controller_settings,
            metrics.clone(),
            Some(Recorder::new(
                client.clone(),
                Reporter {
                    controller: "elastic-yarn-operator".to_owned(),
                    instance: Some(settings.lease.identity.clone()),
                },
            )),
            KeytabStore::new(settings.client_keytab.clone()),
        )
        .leading(leadership.clone())
        .with_nodes(node_store.clone()),
    );
    let (renewer, lost_rx) =
        leader::renew_in_background(leases, settings.lease.clone(), leadership.clone());

    let controller = Controller::new(pools, watcher::Config::default());
    let store = controller.store();
    let reconciling = controller
        .owns(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default().labels(
                "app.kubernetes.io/component=nodemanager,app.kubernetes.io/managed-by=elastic-yarn-operator",
            ),
        )
        .watches_stream(node_changes, move |node| nodes::pools_of(&node, &store))
        .graceful_shutdown_on(async move {
            shutdown.await;
            tracing::info!("shutting down on signal");
        })
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    // On a signal, reconciles in flight finish first; on a lost Lease, they are dropped.
    leader::run_until_lost(reconciling, lost_rx).await;
    tracing::info!("reconciles stopped");
    healthy.store(false, Ordering::Relaxed);
    metrics.leader.set(0);
    renewer.abort();
    node_task.abort();
    tracing::info!("stopping the pools' loops");
    // (Bounded: the process ends anyway, and the runtime's shutdown stops what is left.)
    match tokio::time::timeout(Duration::from_secs(5), ctx.runtimes.lock()).await {
        Ok(mut runtimes) => runtimes.clear(),
        Err(_) => tracing::warn!("the pools' loops were busy; they stop with the process"),
    }
    server.abort();
    tracing::info!("stopped");
    Ok(())
}
