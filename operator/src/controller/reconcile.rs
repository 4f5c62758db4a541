//! One reconcile of a pool: fetch → validate → plan and build → apply → status.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, Resource, ResourceExt};
use rand::distr::{Alphanumeric, SampleString};
use tracing::instrument;

use super::addresses;
use super::datasets;
use super::runtime::{LoopHooks, PoolRuntime};
use super::status::{RmReachability, StatusInputs, invalid_status, pool_status};
use super::{Context, ReconcileError};
use crate::build::names::{
    self, DRAIN_DEADLINE_ANNOTATION, FIELD_MANAGER, NODE_ANNOTATION, POOL_FINALIZER,
    YARN_NODE_ID_ANNOTATION,
};
use crate::build::{self, GUARDER_TOKEN_KEY, NodeManagerSlot, PoolRef};
use crate::crd::{
    AccountingMode, ElasticNodePool, ElasticNodePoolStatus, LifecycleMode, NmResources,
    NodeManagerProblem, NodeManagerState, NodeManagerStatus,
};
use crate::lifecycle::{self, ExistingNodeManager, LifecyclePlan};
use crate::placement;
use crate::validate::{RmAuth as SpecAuth, SpecError, SpecErrors, ValidatedPool, validate};
use crate::vertical::guarder_client::GuarderClient;
use crate::vertical::{LoopSettings, NodeManagerEndpoints, RM_READ_BUDGET, drain};
use yarn_rm::{
    NodeId, NodeReport, ResourceManager, RestResourceManager, RestSettings, Secret as Hidden,
};

/// Reconciles one pool: the root span of everything the operator does for it.
#[instrument(skip_all, fields(pool = %pool.name_any(), namespace = pool.namespace().unwrap_or_default()))]
pub async fn reconcile(
    pool: Arc<ElasticNodePool>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    // A replica whose leadership went stale (it was frozen, or cannot renew) changes nothing;
    // it is about to stop.
    if !ctx.may_act() {
        return Ok(Action::await_change());
    }
    ctx.metrics.reconciles.inc();
    let timer = std::time::Instant::now();
    let namespace = pool.namespace().unwrap_or_default();
    let pools: Api<ElasticNodePool> = Api::namespaced(ctx.client.clone(), &namespace);
    let subject = pool.clone();
    let result = finalizer(&pools, POOL_FINALIZER, pool, |event| async {
        match event {
            FinalizerEvent::Apply(pool) => apply(pool, &ctx).await,
            FinalizerEvent::Cleanup(pool) => cleanup(pool, &ctx).await,
        }
    })
    .await;
    ctx.metrics
        .reconcile_duration
        .observe(timer.elapsed().as_secs_f64());
    let result = result.map_err(|error| match error {
        kube::runtime::finalizer::Error::ApplyFailed(error)
        | kube::runtime::finalizer::Error::CleanupFailed(error) => error,
        kube::runtime::finalizer::Error::AddFinalizer(error)
        | kube::runtime::finalizer::Error::RemoveFinalizer(error) => {
            ReconcileError::Kubernetes(error)
        }
        other => ReconcileError::Finalizer(other.to_string()),
    });
    if let Err(error) = &result {
        // The Recorder folds repeats of the same failure into one Event series.
        publish(
            &ctx,
            &subject,
            EventType::Warning,
            "ReconcileFailed",
            format!("[{}] {error}", error.category()),
        )
        .await;
    }
    result
}

async fn publish(
    ctx: &Context,
    pool: &ElasticNodePool,
    type_: EventType,
    reason: &str,
    note: String,
) {
    controlkit::events::publish(
        ctx.recorder.as_ref(),
        &pool.object_ref(&()),
        type_,
        reason,
        note,
    )
    .await;
}

async fn patch_status(
    pools: &Api<ElasticNodePool>,
    pool: &ElasticNodePool,
    status: ElasticNodePoolStatus,
) -> Result<(), ReconcileError> {
    if pool.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let patch = serde_json::json!({ "status": status });
    pools
        .patch_status(
            &pool.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// The bearer token of the pool's guarders: read from its Secret, or made once.
async fn guarder_token(secrets: &Api<Secret>, pool: &PoolRef) -> Result<String, ReconcileError> {
    let name = names::guarder_token_secret_name(&pool.name);
    if let Some(secret) = secrets.get_opt(&name).await?
        && let Some(token) = secret
            .data
            .as_ref()
            .and_then(|d| d.get(GUARDER_TOKEN_KEY))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|t| !t.is_empty())
    {
        return Ok(token);
    }
    let token = Alphanumeric.sample_string(&mut rand::rng(), 48);
    secrets
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&build::guarder_token_secret(pool, &token)),
        )
        .await?;
    Ok(token)
}

async fn keytab_bytes(
    secrets: &Api<Secret>,
    name: &str,
    key: &str,
) -> Result<Vec<u8>, ReconcileError> {
    let secret = secrets.get(name).await?;
    secret
        .data
        .and_then(|mut d| d.remove(key))
        .map(|ByteString(bytes)| bytes)
        .ok_or_else(|| ReconcileError::Client(format!("Secret {name} has no key {key:?}")))
}

/// The pool's runtime, (re)built when its RM settings or token changed.
async fn ensure_runtime(
    ctx: &Context,
    pool: &ElasticNodePool,
    pool_ref: &PoolRef,
    validated: &ValidatedPool,
    token: String,
    secrets: &Api<Secret>,
) -> Result<(), ReconcileError> {
    if let SpecAuth::Kerberos {
        principal,
        keytab_secret,
        keytab_key,
    } = &validated.auth
    {
        let bytes = keytab_bytes(secrets, keytab_secret, keytab_key).await?;
        ctx.keytabs.lock().await.set(
            &format!("{}/{}", pool_ref.namespace, pool_ref.name),
            bytes,
            principal,
        )?;
    }
    let auth = validated.rm_auth();
    let addresses = validated.rm_addresses();
    // A rotated token Secret rebuilds the clients; only a hash of it is kept, never the token.
    let token_hash = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        token.hash(&mut hasher);
        hasher.finish()
    };
    let fingerprint = format!("{addresses:?}|{auth:?}|{token_hash:016x}");
    let loop_settings = LoopSettings {
        policy: validated.policy,
        settings: validated.settings,
        rm_writes_per_second: ctx.settings.rm_writes_per_second,
        rm_write_burst: ctx.settings.rm_write_burst,
        concurrency: ctx.settings.concurrency,
    };
    let mut runtimes = ctx.runtimes.lock().await;
    if let Some(runtime) = runtimes.get(&pool_ref.uid)
        && runtime.fingerprint == fingerprint
    {
        // Only a real change reaches the loop: every reconcile gets here.
        let wanted = (loop_settings, validated.sync_interval);
        runtime.settings.send_if_modified(|current| {
            let changed = *current != wanted;
            if changed {
                *current = wanted;
            }
            changed
        });
        return Ok(());
    }
    let rm = RestResourceManager::with_metrics(
        rm_settings(ctx, addresses, auth),
        ctx.metrics.rm.clone(),
    )?;
    let guarder = GuarderClient::new(Hidden::new(token), ctx.settings.endpoint_timeout)
        .map_err(|e| ReconcileError::Client(e.to_string()))?;
    let metrics = crate::vertical::reader(
        &validated.metrics,
        ctx.settings.endpoint_timeout,
        ctx.settings.concurrency,
        Some(&ctx.settings.egress),
    )
    .map_err(|e| ReconcileError::Client(e.to_string()))?;
    let hooks = LoopHooks {
        pool: format!("{}/{}", pool_ref.namespace, pool_ref.name),
        recorder: ctx
            .recorder
            .clone()
            .map(|recorder| (recorder, pool.object_ref(&()))),
        third_party: (pool.spec.koordinator.accounting == AccountingMode::ThirdParty).then(|| {
            (
                Api::<Node>::all(ctx.client.clone()),
                super::third_party::allocation_name(&pool_ref.namespace, &pool_ref.name),
            )
        }),
        metrics: ctx.metrics.clone(),
        leadership: ctx.leadership.clone(),
        shares: ctx.shares.clone(),
    };
    runtimes.insert(
        pool_ref.uid.clone(),
        PoolRuntime::start(
            Arc::new(rm),
            guarder,
            metrics,
            loop_settings,
            validated.sync_interval,
            fingerprint,
            hooks,
        ),
    );
    Ok(())
}

/// An NM pod as the plan sees it.
struct PodView {
    node: String,
    name: String,
    uid: Option<String>,
    ip: Option<String>,
    host_ip: Option<String>,
    node_id: Option<NodeId>,
    drain_deadline: Option<Timestamp>,
    evicted: bool,
}

impl PodView {
    /// Where the loop and the drain reach this NM; `None` until it has a YARN node id. The
    /// guarder is reachable once the pod has an IP.
    fn endpoints(
        &self,
        guarder_port: u16,
        exporter_port: Option<u16>,
    ) -> Option<NodeManagerEndpoints> {
        Some(NodeManagerEndpoints {
            node: self.node.clone(),
            yarn_node_id: self.node_id.clone()?,
            exporter: exporter_port.and_then(|port| {
                let host = self.host_ip.as_ref()?;
                url::Url::parse(&format!("http://{host}:{port}/")).ok()
            }),
            guarder: self
                .ip
                .as_ref()
                .and_then(|ip| url::Url::parse(&format!("http://{ip}:{guarder_port}/")).ok()),
            batch_allocatable: None,
        })
    }
}

fn view(pod: &Pod, rpc_port: u16) -> Option<PodView> {
    let annotations = pod.metadata.annotations.as_ref()?;
    let node = annotations.get(NODE_ANNOTATION)?.clone();
    let status = pod.status.as_ref();
    let ip = status.and_then(|s| s.pod_ip.clone());
    let node_id = annotations
        .get(YARN_NODE_ID_ANNOTATION)
        .cloned()
        .or_else(|| ip.as_ref().map(|ip| format!("{ip}:{rpc_port}")))
        .and_then(|text| text.parse().ok());
    Some(PodView {
        node,
        name: pod.name_any(),
        uid: pod.metadata.uid.clone(),
        ip,
        host_ip: status.and_then(|s| s.host_ip.clone()),
        node_id,
        drain_deadline: annotations
            .get(DRAIN_DEADLINE_ANNOTATION)
            .and_then(|t| t.parse().ok()),
        // Koordinator's eviction (memory pressure) leaves a Failed pod with reason Evicted.
        // A pod of restart policy Always fails only when evicted (Koordinator under memory
        // pressure) or lost with its node; it never comes back by itself.
        evicted: status.and_then(|s| s.phase.as_deref()) == Some("Failed"),
    })
}

fn seconds_until(deadline: Timestamp, now: Timestamp) -> u32 {
    u32::try_from(deadline.duration_since(now).as_secs().max(0)).unwrap_or(u32::MAX)
}

/// Reports a spec the operator cannot act on: `Ready=False` with the reasons, an Event when
/// they are new, and nothing else done.
async fn refuse(
    ctx: &Context,
    pool: &ElasticNodePool,
    pools: &Api<ElasticNodePool>,
    errors: &SpecErrors,
    now: &Time,
    then: Action,
) -> Result<Action, ReconcileError> {
    let status = invalid_status(pool.status.as_ref(), pool.metadata.generation, errors, now);
    if pool.status.as_ref() != Some(&status) {
        publish(
            ctx,
            pool,
            EventType::Warning,
            "InvalidSpec",
            errors.to_string(),
        )
        .await;
    }
    patch_status(pools, pool, status).await?;
    Ok(then)
}

async fn apply(pool: Arc<ElasticNodePool>, ctx: &Context) -> Result<Action, ReconcileError> {
    let pool_ref = PoolRef::of(&pool)?;
    // Each reconcile finds its NMs' step problems afresh.
    if let Ok(mut problems) = ctx.problems.lock() {
        problems.remove(&pool_ref.uid);
    }
    let client = ctx.client.clone();
    let pools: Api<ElasticNodePool> = Api::namespaced(client.clone(), &pool_ref.namespace);
    let now = Timestamp::now();
    let now_time = Time(now);

    // Validate: a bad spec waits for a change, with the reasons in status and an Event.
    let validated = match validate(&pool.spec, now) {
        Ok(validated) => validated,
        Err(errors) => {
            return refuse(
                ctx,
                &pool,
                &pools,
                &errors,
                &now_time,
                Action::await_change(),
            )
            .await;
        }
    };
    // URLs the installation does not let pools call: refused like a bad spec, and looked at
    // again later (a name may resolve elsewhere, the policy may change with a restart).
    let denials = egress_denials(ctx, &pool_ref.uid, &validated).await;
    if !denials.0.is_empty() {
        let again = Action::requeue(Duration::from_secs(300));
        return refuse(ctx, &pool, &pools, &denials, &now_time, again).await;
    }
    // The StaticIPPool, when the pool names one: a missing one may appear, so look again soon.
    let static_pool = match &pool.spec.static_ip {
        None => None,
        Some(reference) => match addresses::fetch(&client, &pool_ref, &reference.pool).await? {
            Ok(static_pool) => Some(static_pool),
            Err(errors) => {
                let again = Action::requeue(Duration::from_secs(60));
                return refuse(ctx, &pool, &pools, &errors, &now_time, again).await;
            }
        },
    };

    // Fetch.
    let nodes: Vec<Node> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let read_at = tokio::time::Instant::now();
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &pool_ref.namespace);
    let pods = pods_api
        .list(&ListParams::default().labels(&names::node_manager_selector(&pool_ref.name)))
        .await?
        .items;
    let datasets = datasets::readiness(
        &datasets::read(&client, &pool_ref.namespace, &pool.spec.datasets).await?,
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &pool_ref.namespace);
    let token = guarder_token(&secrets, &pool_ref).await?;
    ensure_runtime(ctx, &pool, &pool_ref, &validated, token, &secrets).await?;
    let (rm, guarder, observed_now) = {
        let runtimes = ctx.runtimes.lock().await;
        let runtime = runtimes
            .get(&pool_ref.uid)
            .ok_or_else(|| ReconcileError::Client("the pool's runtime vanished".to_owned()))?;
        (
            runtime.rm.clone(),
            runtime.guarder.clone(),
            yarn_rm::lock(&runtime.observed).clone(),
        )
    };

    // The RM's view of the NMs.
    let rpc_port = pool.spec.node_manager.ports.rpc;
    let views: Vec<PodView> = pods.iter().filter_map(|p| view(p, rpc_port)).collect();
    // Bounded as a whole (see `RM_READ_BUDGET`).
    let (reachability, reports) = match tokio::time::timeout(RM_READ_BUDGET, rm.nodes(&[])).await {
        Ok(Ok(reports)) => (
            RmReachability::Reachable,
            reports
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect::<HashMap<NodeId, NodeReport>>(),
        ),
        Ok(Err(error)) => (
            RmReachability::Unreachable(error.category(), error.to_string()),
            HashMap::new(),
        ),
        Err(_) => (
            RmReachability::Unreachable(
                "timeout",
                format!(
                    "the ResourceManager did not list its nodes within {} s",
                    RM_READ_BUDGET.as_secs()
                ),
            ),
            HashMap::new(),
        ),
    };
    let rm_reachable = reachability == RmReachability::Reachable;
    // The cluster label is made once per runtime; no lock is held while the RM answers.
    let mut label_exists = ctx
        .runtimes
        .lock()
        .await
        .get(&pool_ref.uid)
        .is_some_and(|r| r.label_ensured);
    if rm_reachable && !label_exists {
        match rm.ensure_node_label(&validated.node_label).await {
            Ok(_) => {
                label_exists = true;
                if let Some(runtime) = ctx.runtimes.lock().await.get_mut(&pool_ref.uid) {
                    runtime.label_ensured = true;
                }
            }
            Err(error) => {
                let label = &validated.node_label;
                node_manager_failed(ctx, &pool, label, "LabelFailed", error.category(), &error)
                    .await;
            }
        }
    }

    // Plan.
    let present: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    let eligible: BTreeSet<String> = nodes
        .iter()
        .filter(|n| placement::check(n, &pool.spec.placement).is_ok())
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    let existing: Vec<ExistingNodeManager> = views
        .iter()
        .map(|v| ExistingNodeManager {
            node: v.node.clone(),
            drain_deadline: v.drain_deadline,
            empty: v
                .node_id
                .as_ref()
                .and_then(|id| reports.get(id))
                .is_some_and(|r| r.num_containers == 0),
            node_present: present.contains(v.node.as_str()),
            failed: v.evicted,
        })
        .collect();
    let plan = lifecycle::plan(
        &validated.lifecycle,
        now,
        &eligible,
        &existing,
        validated.guarder.grace_period,
    );

    // The Fluid caches of a Periodic pool follow its windows.
    let periodic = pool.spec.lifecycle.mode == LifecycleMode::Periodic;
    let desired = |cache: &crate::crd::DatasetCacheSpec| {
        datasets::cache_replicas(periodic, plan.phase, plan.next_transition, now, cache)
    };
    for change in
        datasets::scale_caches(&client, &pool_ref, &pool.spec.datasets, desired, now).await?
    {
        let load = change
            .data_load
            .map(|name| format!("; DataLoad {name} started"))
            .unwrap_or_default();
        publish(
            ctx,
            &pool,
            EventType::Normal,
            "DatasetCacheScaled",
            format!(
                "{}: {} to {} cache workers{load}",
                change.dataset, change.from, change.to
            ),
        )
        .await;
    }

    // Apply: pods for running NMs (server-side apply corrects any drift of what we own).
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut plan = plan;
    // Unbound datasets: NMs already running stay, none is added (its jobs would read an empty
    // mount).
    if !datasets.allows_new_node_managers() {
        plan.run
            .retain(|node| views.iter().any(|v| &v.node == node));
    }
    let mut claimed = BTreeMap::new();
    let mut unaddressed = false;
    if let Some(static_pool) = &static_pool {
        let (got, failed) =
            addresses::claim_for(&client, static_pool, &pool_ref, &plan.run, now).await?;
        for (node, error) in failed {
            // No NM on a pod IP where the admin asked for static addresses.
            plan.run.remove(&node);
            unaddressed = true;
            publish(
                ctx,
                &pool,
                EventType::Warning,
                "StaticIpUnavailable",
                format!("no NodeManager on {node} yet: {error}"),
            )
            .await;
        }
        claimed = got;
    }
    let mut respec = Vec::new();
    let mut refused = Vec::new();
    for node in &plan.run {
        let slot = NodeManagerSlot {
            node: node.clone(),
            static_address: static_pool
                .as_ref()
                .zip(claimed.get(node))
                .and_then(|(static_pool, address)| addresses::static_address(static_pool, address)),
            drain_deadline: None,
        };
        let pod = build::node_manager_pod(&pool_ref, &pool.spec, &ctx.settings.build, &slot);
        let name = names::node_manager_pod_name(&pool_ref.name, node);
        match pods_api.patch(&name, &params, &Patch::Apply(&pod)).await {
            Ok(_) if !views.iter().any(|v| &v.node == node) => {
                publish(
                    ctx,
                    &pool,
                    EventType::Normal,
                    "NodeManagerCreated",
                    format!("{node}: NodeManager pod {name}"),
                )
                .await;
            }
            Ok(_) => {}
            // A running pod refuses changes to its spec: drain it, and the next reconcile
            // after its removal creates it anew.
            Err(kube::Error::Api(status)) if status.code == 422 => {
                tracing::info!(pod = %name, message = %status.message, "pod spec changed");
                respec.push(node.clone());
            }
            // Refused for this node alone (an admission policy, a quota): said on its row and
            // in an Event; the other NMs go on.
            Err(error) => {
                let category = pod_write_category(&error);
                // The API server's own words, not the client's dump of its Status.
                let message = match &error {
                    kube::Error::Api(status) => status.message.clone(),
                    other => other.to_string(),
                };
                node_manager_failed(ctx, &pool, node, "CreateFailed", category, &message).await;
                refused.push(node.clone());
            }
        }
    }
    for node in respec {
        plan.run.remove(&node);
        plan.drain.insert(
            node,
            lifecycle::Drain {
                deadline: lifecycle::after(now, validated.guarder.grace_period),
                cause: lifecycle::DrainCause::SpecChanged,
            },
        );
    }
    // An address is bound once its NM's pod runs on it.
    if let Some(static_pool) = &static_pool {
        for (node, address) in &claimed {
            let running = views.iter().find(|v| {
                &v.node == node && v.ip.as_deref() == Some(address.spec.address.as_str())
            });
            if let Some(uid) = running.and_then(|v| v.uid.as_deref()) {
                addresses::bind(
                    &client,
                    &static_pool.name_any(),
                    &pool_ref,
                    node,
                    address,
                    uid,
                )
                .await?;
            }
        }
    }
    apply_drains(
        ctx,
        &pool,
        &plan,
        &views,
        &rm,
        &guarder,
        &pods_api,
        rm_reachable,
        now,
    )
    .await;
    apply_removals(
        ctx,
        &pool,
        &plan,
        &views,
        &rm,
        &pods_api,
        rm_reachable,
        static_pool.as_ref().map(ResourceExt::name_any).as_deref(),
    )
    .await?;

    // Label running NMs the RM knows without the pool's label.
    if rm_reachable && label_exists {
        let label = vec![validated.node_label.clone()];
        for v in views.iter().filter(|v| plan.run.contains(&v.node)) {
            if let Some(report) = v.node_id.as_ref().and_then(|id| reports.get(id))
                && !report.node_labels.contains(&validated.node_label)
            {
                if let Err(error) = rm.set_node_labels(&report.id, &label).await {
                    node_manager_failed(
                        ctx,
                        &pool,
                        &v.node,
                        "LabelFailed",
                        error.category(),
                        &error,
                    )
                    .await;
                    continue;
                }
                publish(
                    ctx,
                    &pool,
                    EventType::Normal,
                    "NodeManagerLabelled",
                    format!(
                        "{} ({}): YARN node label {}",
                        v.node, report.id, validated.node_label
                    ),
                )
                .await;
            }
        }
    }

    // Feed the loop the NMs it sizes: running, registered, not draining.
    let exporter_port = match &validated.metrics {
        crate::validate::MetricsSource::Exporter { port } => Some(*port),
        crate::validate::MetricsSource::Prometheus { .. } => None,
    };
    let endpoints: Vec<NodeManagerEndpoints> = views
        .iter()
        .filter(|v| plan.run.contains(&v.node) && v.drain_deadline.is_none() && v.ip.is_some())
        .filter_map(|v| v.endpoints(validated.guarder.port, exporter_port))
        .map(|mut endpoints| {
            // What koord-manager allows batch work on the node, as the Node says it now: the
            // loop's fallback when the exporter goes stale.
            endpoints.batch_allocatable = nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(endpoints.node.as_str()))
                .and_then(placement::batch_allocatable)
                .map(|allocatable| (allocatable, read_at));
            endpoints
        })
        .collect();
    {
        let runtimes = ctx.runtimes.lock().await;
        if let Some(runtime) = runtimes.get(&pool_ref.uid) {
            runtime.endpoints.send_replace(endpoints);
        }
    }

    // Status.
    let step_problems = ctx
        .problems
        .lock()
        .ok()
        .and_then(|problems| problems.get(&pool_ref.uid).cloned())
        .unwrap_or_default();
    let mut rows = status_rows(&views, &plan, &reports, &step_problems, &observed_now);
    rows.extend(refused_rows(
        &pool_ref.name,
        &refused,
        &views,
        &step_problems,
    ));
    rows.sort_by(|a, b| a.node.cmp(&b.node));
    let starting = rm_reachable
        && rows
            .iter()
            .any(|r| r.state == NodeManagerState::Starting && r.ip.is_some());
    let signals = observed_now
        .outcomes
        .values()
        .filter_map(|o| o.guarder.as_ref())
        .fold((0, 0), |(graceful, kills), g| {
            (graceful + g.graceful_signals(), kills + g.force_kills)
        });
    let fresh = (observed_now.ticks > 0).then(|| {
        let stale_after = validated.settings.stale_after_seconds;
        let fresh = observed_now
            .outcomes
            .values()
            .filter(|o| o.metrics_age_seconds.is_some_and(|a| a <= stale_after))
            .count();
        (fresh, observed_now.outcomes.len())
    });
    let status = pool_status(
        pool.status.as_ref(),
        StatusInputs {
            generation: pool.metadata.generation,
            plan: &plan,
            node_managers: rows,
            rm: reachability,
            fresh_metrics: fresh,
            datasets: datasets.clone(),
            signals,
        },
        &now_time,
    );
    patch_status(&pools, &pool, status).await?;

    // The Spark settings jobs on this pool need (remote shuffle pools only).
    if let Some(config) = build::spark::spark_defaults(&pool_ref, &pool.spec, &validated.node_label)
    {
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &pool_ref.namespace);
        let name = build::spark::spark_defaults_name(&pool_ref.name);
        maps.patch(&name, &params, &Patch::Apply(&config)).await?;
    }

    let mut wait = plan
        .requeue_after
        .map_or(ctx.settings.resync, |d| d.min(ctx.settings.resync))
        .max(Duration::from_secs(1));
    // Nothing watches StaticIPs or Datasets for the operator: look again soon.
    if unaddressed || !datasets.allows_new_node_managers() {
        wait = wait.min(Duration::from_secs(30));
    }
    // An NM registers with the RM some seconds after its pod starts, and no Kubernetes event
    // tells: look again soon to label it and give it to the loop.
    if starting {
        wait = wait.min(STARTING_RECHECK);
    }
    // An unreachable RM is asked again soon, so that the condition clears soon after it is back.
    if !rm_reachable {
        wait = wait.min(RM_RECHECK);
    }
    // A refused pod is tried again soon (the policy or quota that refused it may change).
    if !refused.is_empty() {
        wait = wait.min(REFUSED_POD_RECHECK);
    }
    // A draining NM's guarder may restart and forget its target: look again soon.
    if views.iter().any(|v| v.drain_deadline.is_some()) {
        wait = wait.min(DRAIN_RECHECK);
    }
    Ok(Action::requeue(wait))
}

#[allow(
    clippy::too_many_arguments,
    reason = "one step of the pipeline, named parts"
)]
async fn apply_drains(
    ctx: &Context,
    pool: &ElasticNodePool,
    plan: &LifecyclePlan,
    views: &[PodView],
    rm: &Arc<RestResourceManager>,
    guarder: &GuarderClient,
    pods_api: &Api<Pod>,
    rm_reachable: bool,
    now: Timestamp,
) {
    hold_drain_targets(ctx, pool, views, guarder, now).await;
    for (node, drain) in &plan.drain {
        let Some(v) = views.iter().find(|v| &v.node == node) else {
            continue;
        };
        if v.drain_deadline.is_some() {
            continue;
        }
        // Without the RM the NM would keep taking containers: try again next time.
        if !rm_reachable {
            continue;
        }
        // No new containers first (RM), then the guarder; only then is the pod marked. One
        // NM's failure is reported and the others go on.
        if let Some(endpoints) = v.endpoints(pool.spec.guarder.port, None) {
            match drain::start_drain(
                rm.as_ref(),
                Some(guarder),
                &endpoints,
                seconds_until(drain.deadline, now),
                drain.cause.category(),
            )
            .await
            {
                Ok(drain::DrainStarted::GuarderUnreachable(error)) => {
                    publish(
                        ctx,
                        pool,
                        EventType::Warning,
                        "DrainGuarderUnreachable",
                        format!(
                            "{node} ({}): no new containers, but the guarder could not be told \
                             [{}]: {error}; its containers stop with the pod at {}",
                            v.name,
                            error.category(),
                            drain.deadline
                        ),
                    )
                    .await;
                }
                Ok(_) => {}
                Err(error) => {
                    node_manager_failed(ctx, pool, node, "DrainFailed", error.category(), &error)
                        .await;
                    continue;
                }
            }
        }
        let patch = serde_json::json!({
            "metadata": {"annotations": {DRAIN_DEADLINE_ANNOTATION: drain.deadline.to_string()}}
        });
        if let Err(error) = pods_api
            .patch(&v.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            node_manager_failed(ctx, pool, node, "DrainFailed", "kubernetes", &error).await;
            continue;
        }
        ctx.metrics
            .lifecycle
            .get_or_create(&super::metrics::LifecycleLabels {
                action: "drain",
                cause: drain.cause.category(),
            })
            .inc();
        publish(
            ctx,
            pool,
            EventType::Normal,
            "DrainStarted",
            format!(
                "{node} ({}): capacity 0 on the RM, guarder to free everything by {} ({})",
                v.name,
                drain.deadline,
                drain.cause.category()
            ),
        )
        .await;
    }
}

/// Draining NMs whose guarder lost its zero target (a restarted sidecar) get it back with what
/// is left of the deadline; all asked at once, so that a dead node's guarder costs one timeout,
/// not one per NM. A guarder that cannot be reached is left to the pod's deadline.
async fn hold_drain_targets(
    ctx: &Context,
    pool: &ElasticNodePool,
    views: &[PodView],
    guarder: &GuarderClient,
    now: Timestamp,
) {
    let draining = views.iter().filter_map(|v| {
        let deadline = v.drain_deadline?;
        let url = v.endpoints(pool.spec.guarder.port, None)?.guarder?;
        let left = seconds_until(deadline, now);
        (left > 0).then_some((v, url, left))
    });
    let held = futures::future::join_all(draining.map(|(v, url, left)| async move {
        (v, left, drain::hold_drain_target(guarder, &url, left).await)
    }))
    .await;
    for (v, left, result) in held {
        match result {
            Ok(true) => {
                publish(
                    ctx,
                    pool,
                    EventType::Normal,
                    "DrainTargetRestored",
                    format!(
                        "{} ({}): the guarder held no drain target (restarted?); sent again, \
                         {left} s left",
                        v.node, v.name
                    ),
                )
                .await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::debug!(%error, node = %v.node, "cannot check a draining NM's guarder");
            }
        }
    }
}

/// One NM's step failed: a Warning Event naming it, a failure counted, and the problem on its
/// status row; the pool goes on.
async fn node_manager_failed(
    ctx: &Context,
    pool: &ElasticNodePool,
    node: &str,
    reason: &str,
    category: &'static str,
    error: &(dyn std::fmt::Display + Sync),
) {
    ctx.metrics
        .failures
        .get_or_create(&super::metrics::FailureLabels { category })
        .inc();
    if let Some(uid) = pool.metadata.uid.clone() {
        let problem = NodeManagerProblem {
            step: reason.trim_end_matches("Failed").to_owned(),
            category: category.to_owned(),
            message: error.to_string(),
        };
        if let Ok(mut problems) = ctx.problems.lock() {
            problems
                .entry(uid)
                .or_default()
                .insert(node.to_owned(), problem);
        }
    }
    tracing::warn!(%node, %error, category, reason, "NodeManager step failed");
    publish(
        ctx,
        pool,
        EventType::Warning,
        reason,
        format!("{node} [{category}]: {error}"),
    )
    .await;
}

#[allow(
    clippy::too_many_arguments,
    reason = "one step of the pipeline, named parts"
)]
async fn apply_removals(
    ctx: &Context,
    pool: &ElasticNodePool,
    plan: &LifecyclePlan,
    views: &[PodView],
    rm: &Arc<RestResourceManager>,
    pods_api: &Api<Pod>,
    rm_reachable: bool,
    static_pool: Option<&str>,
) -> Result<(), ReconcileError> {
    let pool_ref = PoolRef::of(pool)?;
    for (node, cause) in &plan.remove {
        let Some(v) = views.iter().find(|v| &v.node == node) else {
            continue;
        };
        // A label the RM keeps on a departed NM is harmless; a pod kept for it would not be.
        if let (true, Some(node_id)) = (rm_reachable, &v.node_id)
            && let Err(error) = drain::remove_label(rm.as_ref(), node_id).await
        {
            node_manager_failed(
                ctx,
                pool,
                node,
                "LabelRemovalFailed",
                error.category(),
                &error,
            )
            .await;
        }
        match pods_api.delete(&v.name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => {
                node_manager_failed(ctx, pool, node, "RemovalFailed", "kubernetes", &error).await;
                continue;
            }
        }
        if let Err(error) = release_allocation(ctx, pool, node).await {
            node_manager_failed(ctx, pool, node, "RemovalFailed", error.category(), &error).await;
        }
        // The pod is gone: its address is free again (and comes back to this NM first).
        if let Some(static_pool) = static_pool
            && let Err(error) = addresses::release(&ctx.client, static_pool, &pool_ref, node).await
        {
            let error = ReconcileError::from(error);
            node_manager_failed(ctx, pool, node, "RemovalFailed", error.category(), &error).await;
        }
        ctx.metrics
            .lifecycle
            .get_or_create(&super::metrics::LifecycleLabels {
                action: "remove",
                cause: cause.category(),
            })
            .inc();
        publish(
            ctx,
            pool,
            EventType::Normal,
            "NodeManagerRemoved",
            format!("{node} ({}): {}", v.name, cause.category()),
        )
        .await;
    }
    Ok(())
}

/// With `ThirdParty` accounting, the node's entry goes with the NM, so that Koordinator gives
/// the resources back to other batch pods.
async fn release_allocation(
    ctx: &Context,
    pool: &ElasticNodePool,
    node: &str,
) -> Result<(), ReconcileError> {
    if pool.spec.koordinator.accounting != AccountingMode::ThirdParty {
        return Ok(());
    }
    let name = super::third_party::allocation_name(
        &pool.namespace().unwrap_or_default(),
        &pool.name_any(),
    );
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    match super::runtime::write_allocation(&nodes, &name, node, None).await {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// What keeps failing for the NM on `node`: a reconcile step of this reconcile first, else the
/// vertical loop's last tick (a failed resize, unreadable metrics).
fn problem_of(
    node: &str,
    step_problems: &BTreeMap<String, NodeManagerProblem>,
    observed: &super::runtime::Observed,
) -> Option<NodeManagerProblem> {
    if let Some(problem) = step_problems.get(node) {
        return Some(problem.clone());
    }
    let outcome = observed.outcomes.get(node)?;
    match (&outcome.applied, outcome.metrics_error) {
        (crate::vertical::Applied::Failed { category, message }, _) => Some(NodeManagerProblem {
            step: "Resize".to_owned(),
            category: (*category).to_owned(),
            message: message.clone(),
        }),
        (_, Some(category)) => Some(NodeManagerProblem {
            step: "Metrics".to_owned(),
            category: category.to_owned(),
            message: "this node's batch availability could not be read; the NM keeps its \
                      capacity until the stale-metrics rule applies"
                .to_owned(),
        }),
        _ => None,
    }
}

fn status_rows(
    views: &[PodView],
    plan: &LifecyclePlan,
    reports: &HashMap<NodeId, NodeReport>,
    step_problems: &BTreeMap<String, NodeManagerProblem>,
    observed: &super::runtime::Observed,
) -> Vec<NodeManagerStatus> {
    let mut rows: Vec<NodeManagerStatus> = views
        .iter()
        .filter(|v| !plan.remove.contains_key(&v.node))
        .map(|v| {
            let report = v.node_id.as_ref().and_then(|id| reports.get(id));
            let capacity = report.map(|r| r.capacity());
            let used = report.map(|r| r.used());
            let state = if v.evicted {
                NodeManagerState::Evicted
            } else if v.drain_deadline.is_some() || plan.drain.contains_key(&v.node) {
                NodeManagerState::Draining
            } else if report.is_some() {
                NodeManagerState::Running
            } else {
                NodeManagerState::Starting
            };
            NodeManagerStatus {
                node: v.node.clone(),
                pod: v.name.clone(),
                ip: v.ip.clone(),
                yarn_node_id: v.node_id.as_ref().map(ToString::to_string),
                capacity: capacity.map_or_else(NmResources::default, |c| NmResources {
                    vcores: c.vcores,
                    memory_mb: c.memory_mb,
                }),
                used: used.map_or_else(NmResources::default, |c| NmResources {
                    vcores: c.vcores,
                    memory_mb: c.memory_mb,
                }),
                state,
                problem: problem_of(&v.node, step_problems, observed),
            }
        })
        .collect();
    rows.sort_by(|a, b| a.node.cmp(&b.node));
    rows
}

/// Rows for NMs whose pod the API server refused: no pod, no address, the refusal as problem.
fn refused_rows(
    pool: &str,
    refused: &[String],
    views: &[PodView],
    step_problems: &BTreeMap<String, NodeManagerProblem>,
) -> Vec<NodeManagerStatus> {
    refused
        .iter()
        .filter(|node| !views.iter().any(|v| &v.node == *node))
        .map(|node| NodeManagerStatus {
            node: node.clone(),
            pod: names::node_manager_pod_name(pool, node),
            ip: None,
            yarn_node_id: None,
            capacity: NmResources::default(),
            used: NmResources::default(),
            state: NodeManagerState::Starting,
            problem: step_problems.get(node).cloned(),
        })
        .collect()
}

/// The stable category of a refused pod write.
fn pod_write_category(error: &kube::Error) -> &'static str {
    match error {
        kube::Error::Api(status) if status.code == 403 => "forbidden",
        // (A 422, a running pod refusing a changed spec, is a respec, not a failure.)
        kube::Error::Api(status) if status.code == 400 => "invalid",
        _ => "kubernetes",
    }
}

/// The RM client's settings for a pool, with the installation's CA bundle.
fn rm_settings(ctx: &Context, addresses: Vec<String>, auth: yarn_rm::RmAuth) -> RestSettings {
    let mut settings = RestSettings::new(addresses, auth);
    settings.ca_file = ctx.settings.rm_ca_file.clone();
    settings.egress = Some(ctx.settings.egress.clone());
    settings
}

/// How long URLs that passed the egress check are not resolved again by reconciles (every Node
/// event reconciles every pool); the clients' resolver checks every connection meanwhile.
const EGRESS_RECHECK: Duration = Duration::from_secs(300);

/// The pool's URLs the installation's egress policy refuses, as spec problems.
async fn egress_denials(ctx: &Context, uid: &str, validated: &ValidatedPool) -> SpecErrors {
    let urls = format!("{:?}|{:?}", validated.resource_managers, validated.metrics);
    let passed_recently = ctx.egress_passed.lock().ok().is_some_and(|passed| {
        passed
            .get(uid)
            .is_some_and(|(checked, at)| *checked == urls && at.elapsed() < EGRESS_RECHECK)
    });
    if passed_recently {
        return SpecErrors(Vec::new());
    }
    let mut problems = Vec::new();
    for (index, url) in validated.resource_managers.iter().enumerate() {
        if let Err(denied) = ctx.settings.egress.check(url).await {
            problems.push(SpecError {
                field: format!("spec.resourceManager.addresses[{index}]"),
                reason: "EgressDenied",
                message: denied.to_string(),
            });
        }
    }
    if let crate::validate::MetricsSource::Prometheus { url } = &validated.metrics
        && let Err(denied) = ctx.settings.egress.check(url).await
    {
        problems.push(SpecError {
            field: "spec.elasticity.metrics.prometheusUrl".to_owned(),
            reason: "EgressDenied",
            message: denied.to_string(),
        });
    }
    if let Ok(mut passed) = ctx.egress_passed.lock() {
        if problems.is_empty() {
            passed.insert(uid.to_owned(), (urls, std::time::Instant::now()));
        } else {
            passed.remove(uid);
        }
    }
    SpecErrors(problems)
}

/// How soon a pool whose running NMs have not registered yet is looked at again.
const STARTING_RECHECK: Duration = Duration::from_secs(5);
/// How soon an unreachable RM is asked again.
const RM_RECHECK: Duration = Duration::from_secs(15);
/// How soon an NM pod the API server refused is tried again.
const REFUSED_POD_RECHECK: Duration = Duration::from_secs(15);
/// How often draining NMs' guarders are checked for their target.
const DRAIN_RECHECK: Duration = Duration::from_secs(10);

/// How long a deleted pool waits for the RM to take its label off the NMs.
const RM_CLEANUP_PATIENCE: Duration = Duration::from_secs(300);

/// Pool deletion: the pool's NMs lose its YARN label on the RM; pods go with their owner.
async fn cleanup(pool: Arc<ElasticNodePool>, ctx: &Context) -> Result<Action, ReconcileError> {
    let pool_ref = PoolRef::of(&pool)?;
    let runtime = ctx.runtimes.lock().await.remove(&pool_ref.uid);
    // Its NMs no longer take anything from nodes other pools share.
    ctx.shares
        .forget_pool(&format!("{}/{}", pool_ref.namespace, pool_ref.name));
    if let Ok(validated) = validate(&pool.spec, Timestamp::now()) {
        let rm = match runtime {
            Some(runtime) => runtime.rm.clone(),
            None => Arc::new(RestResourceManager::with_metrics(
                rm_settings(ctx, validated.rm_addresses(), validated.rm_auth()),
                ctx.metrics.rm.clone(),
            )?),
        };
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &pool_ref.namespace);
        let rpc_port = pool.spec.node_manager.ports.rpc;
        for pod in pods
            .list(&ListParams::default().labels(&names::node_manager_selector(&pool_ref.name)))
            .await?
            .items
        {
            let Some(v) = view(&pod, rpc_port) else {
                continue;
            };
            release_allocation(ctx, &pool, &v.node).await?;
            if let Some(node_id) = &v.node_id
                && let Err(error) = drain::remove_label(rm.as_ref(), node_id).await
            {
                // An RM down for long must not keep the pool (and its pods) forever: after a
                // while the labels are left to the admin, with a Warning saying so.
                let deleted_for =
                    pool.metadata
                        .deletion_timestamp
                        .as_ref()
                        .map_or(Duration::ZERO, |t| {
                            Duration::try_from(Timestamp::now().duration_since(t.0))
                                .unwrap_or_default()
                        });
                if deleted_for < RM_CLEANUP_PATIENCE {
                    return Err(error.into());
                }
                publish(
                    ctx,
                    &pool,
                    EventType::Warning,
                    "LabelRemovalSkipped",
                    format!(
                        "{} ({node_id}): the RM refused or could not be reached for {} s \
                         [{}]: {error}; remove the label {} by hand",
                        v.node,
                        deleted_for.as_secs(),
                        error.category(),
                        validated.node_label
                    ),
                )
                .await;
            }
        }
    }
    if let Some(reference) = &pool.spec.static_ip {
        addresses::release_all(&ctx.client, &reference.pool, &pool_ref).await?;
    }
    publish(
        ctx,
        &pool,
        EventType::Normal,
        "PoolDeleted",
        "YARN labels removed; NodeManager pods go with the pool".to_owned(),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vertical::{Applied, NodeManagerOutcome};

    fn outcome(
        node: &str,
        applied: Applied,
        metrics_error: Option<&'static str>,
    ) -> NodeManagerOutcome {
        NodeManagerOutcome {
            node: node.to_owned(),
            yarn_node_id: "nm-0.yarn.test:45454".parse().expect("a node id"),
            capacity: crate::policy::Resources::new(8, 32_768),
            allocated: crate::policy::Resources::default(),
            applied,
            reason: None,
            metrics_age_seconds: None,
            metrics_error,
            guarder: None,
        }
    }

    #[test]
    fn each_nm_row_names_its_own_failing_step() {
        let mut observed = super::super::runtime::Observed::default();
        for (node, applied, metrics_error) in [
            (
                "resize-fails",
                Applied::Failed {
                    category: "unavailable",
                    message: "503 from the RM".to_owned(),
                },
                None,
            ),
            (
                "stale",
                Applied::Kept(crate::policy::KeepReason::StaleMetrics),
                Some("frozen_page"),
            ),
            (
                "fine",
                Applied::Kept(crate::policy::KeepReason::Unchanged),
                None,
            ),
            (
                "drain-fails",
                Applied::Kept(crate::policy::KeepReason::Unchanged),
                None,
            ),
        ] {
            observed
                .outcomes
                .insert(node.to_owned(), outcome(node, applied, metrics_error));
        }
        let steps = BTreeMap::from([(
            "drain-fails".to_owned(),
            NodeManagerProblem {
                step: "Drain".to_owned(),
                category: "unreachable".to_owned(),
                message: "guarder did not answer".to_owned(),
            },
        )]);
        let step_of =
            |node: &str| problem_of(node, &steps, &observed).map(|p| (p.step, p.category));
        assert_eq!(
            step_of("resize-fails"),
            Some(("Resize".to_owned(), "unavailable".to_owned()))
        );
        assert_eq!(
            step_of("stale"),
            Some(("Metrics".to_owned(), "frozen_page".to_owned()))
        );
        assert_eq!(
            step_of("drain-fails"),
            Some(("Drain".to_owned(), "unreachable".to_owned()))
        );
        assert_eq!(step_of("fine"), None);
        assert_eq!(step_of("unknown-node"), None);
    }
}
