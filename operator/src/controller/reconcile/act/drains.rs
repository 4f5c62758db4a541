//! Drains: no new containers on the RM first, then the guarder's zero target, then the pod
//! marked with its deadline. One NM's failure is reported and the others go on.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::super::events::PoolEvents;
use super::super::observe::PodView;
use super::Scope;
use crate::build::names::DRAIN_DEADLINE_ANNOTATION;
use crate::lifecycle::{Drain, LifecyclePlan};
use crate::vertical::drain;
use crate::vertical::guarder_client::GuarderClient;

/// Starts the drains `settled` asks for, and keeps the running ones' targets held.
pub(super) async fn start(scope: Scope<'_>, settled: &LifecyclePlan, events: &mut PoolEvents<'_>) {
    hold_targets(scope, &scope.handles.guarder, events).await;
    // Without the RM the NM would keep taking containers: try again next time.
    if !scope.observed.rm.reachable() {
        return;
    }
    for (node, drain) in &settled.drain {
        let Some(pod) = scope.observed.pod_on(node) else {
            continue;
        };
        if pod.drain_deadline.is_none() {
            start_one(scope, pod, drain, events).await;
        }
    }
}

async fn start_one(scope: Scope<'_>, pod: &PodView, drain: &Drain, events: &mut PoolEvents<'_>) {
    let node = &pod.node;
    if let Some(endpoints) = pod.endpoints(scope.pool.spec.guarder.port, None) {
        match drain::start_drain(
            scope.handles.rm.as_ref(),
            Some(&scope.handles.guarder),
            &endpoints,
            seconds_until(drain.deadline, scope.now),
            drain.cause.category(),
        )
        .await
        {
            Ok(drain::DrainStarted::GuarderUnreachable(error)) => {
                let note = format!(
                    "{node} ({}): no new containers, but the guarder could not be told [{}]: \
                     {error}; its containers stop with the pod at {}",
                    pod.name,
                    error.category(),
                    drain.deadline
                );
                events.warning("DrainGuarderUnreachable", note).await;
            }
            Ok(_) => {}
            Err(error) => {
                events
                    .node_manager_failed(node, "DrainFailed", error.category(), &error)
                    .await;
                return;
            }
        }
    }
    let patch = serde_json::json!({
        "metadata": {"annotations": {DRAIN_DEADLINE_ANNOTATION: drain.deadline.to_string()}}
    });
    let pods: Api<Pod> = Api::namespaced(scope.ctx.client.clone(), &scope.pool_ref.namespace);
    if let Err(error) = pods
        .patch(&pod.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        events
            .node_manager_failed(node, "DrainFailed", "kubernetes", &error)
            .await;
        return;
    }
    scope
        .ctx
        .metrics
        .lifecycle
        .get_or_create(&super::super::super::metrics::LifecycleLabels {
            action: "drain",
            cause: drain.cause.category(),
        })
        .inc();
    let note = format!(
        "{node} ({}): capacity 0 on the RM, guarder to free everything by {} ({})",
        pod.name,
        drain.deadline,
        drain.cause.category()
    );
    events.normal("DrainStarted", note).await;
}

/// Draining NMs whose guarder lost its zero target (a restarted sidecar) get it back with what
/// is left of the deadline; all asked at once, so that a dead node's guarder costs one timeout,
/// not one per NM. A guarder that cannot be reached is left to the pod's deadline.
async fn hold_targets(scope: Scope<'_>, guarder: &GuarderClient, events: &mut PoolEvents<'_>) {
    let port = scope.pool.spec.guarder.port;
    let draining = scope.observed.pods.iter().filter_map(|pod| {
        let deadline = pod.drain_deadline?;
        let url = pod.endpoints(port, None)?.guarder?;
        let left = seconds_until(deadline, scope.now);
        (left > 0).then_some((pod, url, left))
    });
    let held = futures::future::join_all(draining.map(|(pod, url, left)| async move {
        (
            pod,
            left,
            drain::hold_drain_target(guarder, &url, left).await,
        )
    }))
    .await;
    for (pod, left, result) in held {
        match result {
            Ok(true) => {
                let note = format!(
                    "{} ({}): the guarder held no drain target (restarted?); sent again, \
                     {left} s left",
                    pod.node, pod.name
                );
                events.normal("DrainTargetRestored", note).await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::debug!(%error, node = %pod.node, "cannot check a draining NM's guarder");
            }
        }
    }
}

fn seconds_until(deadline: Timestamp, now: Timestamp) -> u32 {
    u32::try_from(deadline.duration_since(now).as_secs().max(0)).unwrap_or(u32::MAX)
}
