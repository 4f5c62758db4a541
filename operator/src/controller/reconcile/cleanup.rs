//! Pool deletion: the pool's NMs lose its YARN label on the RM, its `ThirdParty` entries and
//! static addresses go back; its pods go with their owner.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use yarn_rm::RestResourceManager;

use super::super::addresses;
use super::super::error::{CleanupError, ReconcileError};
use super::Context;
use super::act::release_allocation;
use super::clients::rm_settings;
use super::events::PoolEvents;
use super::observe::PodView;
use crate::build::{PoolRef, names};
use crate::crd::ElasticNodePool;
use crate::validate::{ValidatedPool, validate};
use crate::vertical::drain;

/// How long a deleted pool waits for the RM to take its label off the NMs.
const RM_CLEANUP_PATIENCE: Duration = Duration::from_secs(300);

/// Cleans up after a deleted pool.
pub(crate) async fn cleanup(
    pool: Arc<ElasticNodePool>,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let pool_ref = PoolRef::of(&pool)?;
    let runtime = ctx.runtimes.lock().await.remove(&pool_ref.uid);
    // Its NMs no longer take anything from nodes other pools share.
    ctx.shares
        .forget_pool(&format!("{}/{}", pool_ref.namespace, pool_ref.name));
    if let Ok(validated) = validate(&pool.spec, Timestamp::now()) {
        let rm = match runtime {
            Some(runtime) => runtime.rm.clone(),
            None => Arc::new(
                RestResourceManager::with_metrics(
                    rm_settings(ctx, validated.rm_addresses(), validated.rm_auth()),
                    ctx.metrics.rm.clone(),
                )
                .map_err(CleanupError::RmClient)?,
            ),
        };
        unlabel(ctx, &pool, &pool_ref, &validated, &rm).await?;
    }
    if let Some(reference) = &pool.spec.static_ip {
        addresses::release_all(&ctx.client, &reference.pool, &pool_ref)
            .await
            .map_err(|source| CleanupError::Addresses {
                pool: reference.pool.clone(),
                source,
            })?;
    }
    PoolEvents::new(ctx, &pool)
        .normal(
            "PoolDeleted",
            "YARN labels removed; NodeManager pods go with the pool".to_owned(),
        )
        .await;
    Ok(Action::await_change())
}

/// Takes the pool's label off each of its NMs (and their `ThirdParty` entries away).
async fn unlabel(
    ctx: &Context,
    pool: &ElasticNodePool,
    pool_ref: &PoolRef,
    validated: &ValidatedPool,
    rm: &RestResourceManager,
) -> Result<(), CleanupError> {
    let selector = names::node_manager_selector(&pool_ref.name);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &pool_ref.namespace);
    let pods = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| CleanupError::Pods { selector, source })?
        .items;
    let rpc_port = pool.spec.node_manager.ports.rpc;
    for pod in pods.iter().filter_map(|p| PodView::of(p, rpc_port)) {
        release_allocation(ctx, pool, &pod.node)
            .await
            .map_err(|source| CleanupError::Allocation {
                node: pod.node.clone(),
                source,
            })?;
        let Some(node_id) = &pod.node_id else {
            continue;
        };
        let Err(error) = drain::remove_label(rm, node_id).await else {
            continue;
        };
        // An RM down for long must not keep the pool (and its pods) forever: after a while the
        // labels are left to the admin, with a Warning saying so.
        let deleted_for = pool
            .metadata
            .deletion_timestamp
            .as_ref()
            .map_or(Duration::ZERO, |t| {
                Duration::try_from(Timestamp::now().duration_since(t.0)).unwrap_or_default()
            });
        if deleted_for < RM_CLEANUP_PATIENCE {
            return Err(CleanupError::Label {
                node_id: node_id.to_string(),
                source: error,
            });
        }
        let note = format!(
            "{} ({node_id}): the RM refused or could not be reached for {} s [{}]: {error}; \
             remove the label {} by hand",
            pod.node,
            deleted_for.as_secs(),
            error.category(),
            validated.node_label
        );
        PoolEvents::new(ctx, pool)
            .warning("LabelRemovalSkipped", note)
            .await;
    }
    Ok(())
}
