//! One reconcile of a pool, in steps:
//!
//! 1. [`gates`] — validate the spec, the egress policy, the StaticIPPool: refuse or admit.
//! 2. [`observe`] — every read (Nodes, NM pods, Datasets; then the RM's nodes, with the pool's
//!    clients from [`clients`], kept or rebuilt) into one value.
//! 3. [`plan`] — pure: the lifecycle, the Datasets gate, the caches' sizes.
//! 4. [`act`] — the writes; one NM's failure is on its row and never stops the others.
//! 5. status — pure rows and conditions ([`rows`], `controller::status`), one patch.
//!
//! Deletion is [`cleanup`].

mod act;
mod cleanup;
mod clients;
mod events;
mod gates;
mod observe;
mod plan;
mod rows;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::{Api, ResourceExt};
use tracing::instrument;

use super::Context;
use super::error::{ApplyError, ReconcileError};
use super::status::{StatusInputs, pool_status};
use crate::build::names::{FIELD_MANAGER, POOL_FINALIZER};
use crate::build::{self, PoolRef};
use crate::crd::{ElasticNodePool, ElasticNodePoolStatus, NodeManagerState};
use act::{Acted, Scope};
use events::PoolEvents;
use observe::Observed;

pub(crate) use gates::EgressPassed;

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
    let result = controlkit::report::reconcile_reported(
        &pools,
        POOL_FINALIZER,
        pool,
        ctx.recorder.as_ref(),
        &ctx.metrics.failures,
        |event| async {
            match event {
                FinalizerEvent::Apply(pool) => apply(pool, &ctx).await,
                FinalizerEvent::Cleanup(pool) => cleanup::cleanup(pool, &ctx).await,
            }
        },
    )
    .await;
    ctx.metrics
        .reconcile_duration
        .observe(timer.elapsed().as_secs_f64());
    result
}

async fn apply(pool: Arc<ElasticNodePool>, ctx: &Context) -> Result<Action, ReconcileError> {
    let pool_ref = PoolRef::of(&pool)?;
    let now = Timestamp::now();
    let admitted = match gates::admit(ctx, &pool, &pool_ref, now).await? {
        Ok(admitted) => admitted,
        Err(then) => return Ok(then),
    };
    let validated = &admitted.validated;
    let cluster = observe::read_cluster(ctx, &pool, &pool_ref).await?;
    let handles = clients::ensure(ctx, &pool, &pool_ref, validated).await?;
    let observed = observe::with_rm(cluster, &handles.rm, handles.vertical.clone()).await;
    let plan = plan::plan(&pool.spec, validated, &observed, now);
    let mut events = PoolEvents::new(ctx, &pool);
    let scope = Scope {
        ctx,
        pool: &pool,
        pool_ref: &pool_ref,
        validated,
        observed: &observed,
        handles: &handles,
        static_pool: admitted.static_pool.as_ref(),
        now,
    };
    let acted = act::act(scope, &plan, &mut events).await?;
    let status = status(&pool, &pool_ref, validated, &observed, &acted, &events, now);
    let starting = observed.rm.reachable()
        && status
            .node_managers
            .iter()
            .any(|r| r.state == NodeManagerState::Starting && r.ip.is_some());
    patch_status(ctx, &pool, status).await?;
    apply_spark_defaults(ctx, &pool, &pool_ref, validated).await?;
    Ok(Action::requeue(next_wait(
        ctx.settings.resync,
        &acted,
        &observed,
        starting,
    )))
}

/// The pool's status (pure).
fn status(
    pool: &ElasticNodePool,
    pool_ref: &PoolRef,
    validated: &crate::validate::ValidatedPool,
    observed: &Observed,
    acted: &Acted,
    events: &PoolEvents<'_>,
    now: Timestamp,
) -> ElasticNodePoolStatus {
    let vertical = &observed.vertical;
    let rows = rows::node_manager_rows(
        &pool_ref.name,
        observed,
        &acted.settled,
        &acted.refusals.refused,
        events.problems(),
    );
    let signals = vertical
        .outcomes
        .values()
        .filter_map(|o| o.guarder.as_ref())
        .fold((0, 0), |(graceful, kills), g| {
            (graceful + g.graceful_signals(), kills + g.force_kills)
        });
    let fresh = (vertical.ticks > 0).then(|| {
        let stale_after = validated.settings.stale_after_seconds;
        let fresh = vertical
            .outcomes
            .values()
            .filter(|o| o.metrics_age_seconds.is_some_and(|a| a <= stale_after))
            .count();
        (fresh, vertical.outcomes.len())
    });
    pool_status(
        pool.status.as_ref(),
        StatusInputs {
            generation: pool.metadata.generation,
            plan: &acted.settled,
            node_managers: rows,
            rm: observed.rm.reachability.clone(),
            fresh_metrics: fresh,
            datasets: observed.datasets.clone(),
            signals,
            unaddressed: acted.refusals.unaddressed.len(),
        },
        &Time(now),
    )
}

/// Writes the pool's status, unless it is unchanged.
async fn patch_status(
    ctx: &Context,
    pool: &ElasticNodePool,
    status: ElasticNodePoolStatus,
) -> Result<(), ApplyError> {
    if pool.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let pools: Api<ElasticNodePool> =
        Api::namespaced(ctx.client.clone(), &pool.namespace().unwrap_or_default());
    let patch = serde_json::json!({ "status": status });
    pools
        .patch_status(
            &pool.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|source| ApplyError::Status {
            pool: pool.name_any(),
            source,
        })?;
    Ok(())
}

/// The Spark settings jobs on this pool need (remote shuffle pools only).
async fn apply_spark_defaults(
    ctx: &Context,
    pool: &ElasticNodePool,
    pool_ref: &PoolRef,
    validated: &crate::validate::ValidatedPool,
) -> Result<(), ApplyError> {
    let Some(config) = build::spark::spark_defaults(pool_ref, &pool.spec, &validated.node_label)
    else {
        return Ok(());
    };
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &pool_ref.namespace);
    let name = build::spark::spark_defaults_name(&pool_ref.name);
    maps.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&config),
    )
    .await
    .map_err(|source| ApplyError::SparkDefaults { name, source })?;
    Ok(())
}

/// How soon a pool whose running NMs have not registered yet is looked at again.
const STARTING_RECHECK: Duration = Duration::from_secs(5);
/// How soon an unreachable RM is asked again.
const RM_RECHECK: Duration = Duration::from_secs(15);
/// How soon an NM pod the API server refused is tried again.
const REFUSED_POD_RECHECK: Duration = Duration::from_secs(15);
/// How often draining NMs' guarders are checked for their target.
const DRAIN_RECHECK: Duration = Duration::from_secs(10);
/// How soon what nothing watches for the operator (StaticIPs, Datasets) is looked at again.
const UNWATCHED_RECHECK: Duration = Duration::from_secs(30);

/// When to reconcile the pool again (pure): at its next transition or the resync, sooner when
/// something is expected to change without an event the operator watches.
fn next_wait(resync: Duration, acted: &Acted, observed: &Observed, starting: bool) -> Duration {
    let mut wait = acted
        .settled
        .requeue_after
        .map_or(resync, |d| d.min(resync))
        .max(Duration::from_secs(1));
    let rechecks = [
        (
            !acted.refusals.unaddressed.is_empty() || !observed.datasets.allows_new_node_managers(),
            UNWATCHED_RECHECK,
        ),
        // An NM registers with the RM some seconds after its pod starts, and no Kubernetes
        // event tells: look again soon to label it and give it to the loop.
        (starting, STARTING_RECHECK),
        // So that the condition clears soon after the RM is back.
        (!observed.rm.reachable(), RM_RECHECK),
        // The policy or quota that refused a pod may change.
        (!acted.refusals.refused.is_empty(), REFUSED_POD_RECHECK),
        // A draining NM's guarder may restart and forget its target.
        (
            observed.pods.iter().any(|p| p.drain_deadline.is_some()),
            DRAIN_RECHECK,
        ),
    ];
    for (applies, recheck) in rechecks {
        if applies {
            wait = wait.min(recheck);
        }
    }
    wait
}
