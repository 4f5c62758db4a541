//! Apply: the reconcile's writes, in order — the pool's YARN label, the Fluid caches, static
//! addresses, the NM pods, drains, removals, NM labels, and the loop's list of NMs. One NM's
//! failure is reported on its row and never stops the others; only pool-wide writes abort.

mod drains;
mod pods;
mod removals;

pub(crate) use removals::release_allocation;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use staticip::crd::{StaticIP, StaticIPPool};

use super::super::addresses;
use super::super::datasets;
use super::super::error::ApplyError;
use super::Context;
use super::clients::{self, Handles};
use super::events::PoolEvents;
use super::observe::Observed;
use super::plan::{self, Plan, Refusals};
use crate::build::PoolRef;
use crate::crd::ElasticNodePool;
use crate::lifecycle::LifecyclePlan;
use crate::placement;
use crate::validate::{MetricsSource, ValidatedPool};
use crate::vertical::NodeManagerEndpoints;
use kube::ResourceExt;
use yarn_rm::ResourceManager;

/// What a reconcile works on, read-only.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope<'a> {
    pub ctx: &'a Context,
    pub pool: &'a ElasticNodePool,
    pub pool_ref: &'a PoolRef,
    pub validated: &'a ValidatedPool,
    pub observed: &'a Observed,
    pub handles: &'a Handles,
    pub static_pool: Option<&'a StaticIPPool>,
    pub now: Timestamp,
}

/// What the writes left to report.
#[derive(Debug)]
pub(crate) struct Acted {
    /// The lifecycle after the writes answered (see [`plan::settle`]).
    pub settled: LifecyclePlan,
    /// What the writes refused.
    pub refusals: Refusals,
}

/// Applies `plan`.
pub(crate) async fn act(
    scope: Scope<'_>,
    plan: &Plan,
    events: &mut PoolEvents<'_>,
) -> Result<Acted, ApplyError> {
    let label_exists = label_cluster(scope, events).await;
    scale_caches(scope, plan, events).await?;
    let (claimed, unaddressed) = claim_addresses(scope, plan, events).await?;
    // No NM on a pod IP where the admin asked for static addresses.
    let addressed: BTreeSet<String> = plan
        .lifecycle
        .run
        .difference(&unaddressed)
        .cloned()
        .collect();
    let (respec, refused) = pods::apply(scope, &addressed, &claimed, events).await;
    let refusals = Refusals {
        unaddressed,
        respec,
        refused,
    };
    let settled = plan::settle(
        &plan.lifecycle,
        &refusals,
        scope.now,
        scope.validated.guarder.grace_period,
    );
    bind_addresses(scope, &claimed).await?;
    drains::start(scope, &settled, events).await;
    removals::apply(scope, &settled, events).await;
    if label_exists {
        label_node_managers(scope, &settled, events).await;
    }
    feed_loop(scope, &settled).await;
    Ok(Acted { settled, refusals })
}

/// Makes the pool's YARN label on the RM, once per runtime; true when it exists.
async fn label_cluster(scope: Scope<'_>, events: &mut PoolEvents<'_>) -> bool {
    if scope.handles.label_ensured {
        return true;
    }
    if !scope.observed.rm.reachable() {
        return false;
    }
    let label = &scope.validated.node_label;
    match scope.handles.rm.ensure_node_label(label).await {
        Ok(_) => {
            clients::label_ensured(scope.ctx, scope.pool_ref).await;
            true
        }
        Err(error) => {
            events
                .node_manager_failed(label, "LabelFailed", error.category(), &error)
                .await;
            false
        }
    }
}

/// The Fluid caches of a Periodic pool follow its windows.
async fn scale_caches(
    scope: Scope<'_>,
    plan: &Plan,
    events: &mut PoolEvents<'_>,
) -> Result<(), ApplyError> {
    let changes = datasets::scale_caches(
        &scope.ctx.client,
        scope.pool_ref,
        &scope.pool.spec.datasets,
        |cache| plan.cache_replicas(cache),
        scope.now,
    )
    .await
    .map_err(ApplyError::ScaleCaches)?;
    for change in changes {
        let load = change
            .data_load
            .map(|name| format!("; DataLoad {name} started"))
            .unwrap_or_default();
        let note = format!(
            "{}: {} to {} cache workers{load}",
            change.dataset, change.from, change.to
        );
        events.normal("DatasetCacheScaled", note).await;
    }
    Ok(())
}

/// An address for every NM that runs, when the pool asks for static addresses; the nodes that
/// got none are returned (no NM on a pod IP where the admin asked for a static one).
async fn claim_addresses(
    scope: Scope<'_>,
    plan: &Plan,
    events: &mut PoolEvents<'_>,
) -> Result<
    (
        BTreeMap<String, StaticIP>,
        std::collections::BTreeSet<String>,
    ),
    ApplyError,
> {
    let Some(static_pool) = scope.static_pool else {
        return Ok(Default::default());
    };
    let (claimed, failed) = addresses::claim_for(
        &scope.ctx.client,
        static_pool,
        scope.pool_ref,
        &plan.lifecycle.run,
        scope.now,
    )
    .await
    .map_err(|source| ApplyError::Claim {
        pool: static_pool.name_any(),
        source,
    })?;
    let mut unaddressed = BTreeSet::new();
    for (node, error) in failed {
        events
            .warning(
                "StaticIpUnavailable",
                format!("no NodeManager on {node} yet: {error}"),
            )
            .await;
        unaddressed.insert(node);
    }
    Ok((claimed, unaddressed))
}

/// An address is bound once its NM's pod runs on it.
async fn bind_addresses(
    scope: Scope<'_>,
    claimed: &BTreeMap<String, StaticIP>,
) -> Result<(), ApplyError> {
    let Some(static_pool) = scope.static_pool else {
        return Ok(());
    };
    for (node, address) in claimed {
        let running = scope.observed.pods.iter().find(|pod| {
            &pod.node == node && pod.ip.as_deref() == Some(address.spec.address.as_str())
        });
        if let Some(uid) = running.and_then(|pod| pod.uid.as_deref()) {
            addresses::bind(
                &scope.ctx.client,
                &static_pool.name_any(),
                scope.pool_ref,
                node,
                address,
                uid,
            )
            .await
            .map_err(|source| ApplyError::Bind {
                pool: static_pool.name_any(),
                node: node.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Labels the running NMs the RM knows without the pool's label.
async fn label_node_managers(
    scope: Scope<'_>,
    settled: &LifecyclePlan,
    events: &mut PoolEvents<'_>,
) {
    if !scope.observed.rm.reachable() {
        return;
    }
    let wanted = &scope.validated.node_label;
    let label = vec![wanted.clone()];
    for pod in scope
        .observed
        .pods
        .iter()
        .filter(|pod| settled.run.contains(&pod.node))
    {
        let Some(report) = scope.observed.rm.report_of(pod) else {
            continue;
        };
        if report.node_labels.contains(wanted) {
            continue;
        }
        match scope.handles.rm.set_node_labels(&report.id, &label).await {
            Ok(()) => {
                let note = format!("{} ({}): YARN node label {wanted}", pod.node, report.id);
                events.normal("NodeManagerLabelled", note).await;
            }
            Err(error) => {
                events
                    .node_manager_failed(&pod.node, "LabelFailed", error.category(), &error)
                    .await;
            }
        }
    }
}

/// Feeds the loop the NMs it sizes: running, registered, not draining.
async fn feed_loop(scope: Scope<'_>, settled: &LifecyclePlan) {
    let exporter_port = match &scope.validated.metrics {
        MetricsSource::Exporter { port } => Some(*port),
        MetricsSource::Prometheus { .. } => None,
    };
    let observed = scope.observed;
    let endpoints: Vec<NodeManagerEndpoints> = observed
        .pods
        .iter()
        .filter(|pod| {
            settled.run.contains(&pod.node) && pod.drain_deadline.is_none() && pod.ip.is_some()
        })
        .filter_map(|pod| pod.endpoints(scope.validated.guarder.port, exporter_port))
        .map(|mut endpoints| {
            // What koord-manager allows batch work on the node, as the Node says it now: the
            // loop's fallback when the exporter goes stale.
            endpoints.batch_allocatable = observed
                .node(&endpoints.node)
                .and_then(placement::batch_allocatable)
                .map(|allocatable| (allocatable, observed.read_at));
            endpoints
        })
        .collect();
    if let Some(runtime) = scope.ctx.runtimes.lock().await.get(&scope.pool_ref.uid) {
        runtime.endpoints.send_replace(endpoints);
    }
}
