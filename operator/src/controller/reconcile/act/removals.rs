//! Removals: the NM's label off the RM, its pod deleted, its `ThirdParty` allocation entry and
//! its static address given back. One NM's failure is reported and the others go on.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::DeleteParams;

use super::super::Context;
use super::super::events::PoolEvents;
use super::Scope;
use crate::build::PoolRef;
use crate::crd::{AccountingMode, ElasticNodePool};
use crate::lifecycle::LifecyclePlan;
use crate::vertical::drain;
use kube::ResourceExt;

/// Removes the NMs `settled` lets go.
pub(super) async fn apply(scope: Scope<'_>, settled: &LifecyclePlan, events: &mut PoolEvents<'_>) {
    let pods: Api<Pod> = Api::namespaced(scope.ctx.client.clone(), &scope.pool_ref.namespace);
    let static_pool = scope.static_pool.map(ResourceExt::name_any);
    for (node, cause) in &settled.remove {
        let Some(pod) = scope.observed.pod_on(node) else {
            continue;
        };
        // A label the RM keeps on a departed NM is harmless; a pod kept for it would not be.
        if let (true, Some(node_id)) = (scope.observed.rm.reachable(), &pod.node_id)
            && let Err(error) = drain::remove_label(scope.handles.rm.as_ref(), node_id).await
        {
            events
                .node_manager_failed(node, "LabelRemovalFailed", error.category(), &error)
                .await;
        }
        match pods.delete(&pod.name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => {
                events
                    .node_manager_failed(node, "RemovalFailed", "kubernetes", &error)
                    .await;
                continue;
            }
        }
        if let Err(error) = release_allocation(scope.ctx, scope.pool, node).await {
            events
                .node_manager_failed(node, "RemovalFailed", "kubernetes", &error)
                .await;
        }
        // The pod is gone: its address is free again (and comes back to this NM first).
        if let Some(static_pool) = &static_pool
            && let Err(error) = release_address(scope.ctx, static_pool, scope.pool_ref, node).await
        {
            events
                .node_manager_failed(node, "RemovalFailed", "staticip", &error)
                .await;
        }
        scope
            .ctx
            .metrics
            .lifecycle
            .get_or_create(&super::super::super::metrics::LifecycleLabels {
                action: "remove",
                cause: cause.category(),
            })
            .inc();
        let note = format!("{node} ({}): {}", pod.name, cause.category());
        events.normal("NodeManagerRemoved", note).await;
    }
}

async fn release_address(
    ctx: &Context,
    static_pool: &str,
    pool_ref: &PoolRef,
    node: &str,
) -> Result<(), staticip::claim::ClaimError> {
    super::super::super::addresses::release(&ctx.client, static_pool, pool_ref, node).await
}

/// With `ThirdParty` accounting, the node's entry goes with the NM, so that Koordinator gives
/// the resources back to other batch pods.
pub(crate) async fn release_allocation(
    ctx: &Context,
    pool: &ElasticNodePool,
    node: &str,
) -> Result<(), kube::Error> {
    if pool.spec.koordinator.accounting != AccountingMode::ThirdParty {
        return Ok(());
    }
    let name = super::super::super::third_party::allocation_name(
        &pool.namespace().unwrap_or_default(),
        &pool.name_any(),
    );
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    match super::super::super::runtime::write_allocation(&nodes, &name, node, None).await {
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other,
    }
}
