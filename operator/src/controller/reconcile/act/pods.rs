//! The NM pods of the nodes that run one, by server-side apply (which also corrects any drift
//! of what the operator owns).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams};
use staticip::crd::StaticIP;

use super::super::super::addresses;
use super::super::events::PoolEvents;
use super::Scope;
use crate::build::names::{self, FIELD_MANAGER};
use crate::build::{self, NodeManagerSlot};

/// Applies the pod of every node in `run`; returns the nodes whose running pod refused a
/// changed spec (to drain and create anew) and those whose pod the API server refused.
pub(super) async fn apply(
    scope: Scope<'_>,
    run: &BTreeSet<String>,
    claimed: &BTreeMap<String, StaticIP>,
    events: &mut PoolEvents<'_>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let pods: Api<Pod> = Api::namespaced(scope.ctx.client.clone(), &scope.pool_ref.namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut respec = BTreeSet::new();
    let mut refused = BTreeSet::new();
    for node in run {
        let slot = NodeManagerSlot {
            node: node.clone(),
            static_address: scope
                .static_pool
                .zip(claimed.get(node))
                .and_then(|(static_pool, address)| addresses::static_address(static_pool, address)),
            drain_deadline: None,
        };
        let pod = build::node_manager_pod(
            scope.pool_ref,
            &scope.pool.spec,
            &scope.ctx.settings.build,
            &slot,
        );
        let name = names::node_manager_pod_name(&scope.pool_ref.name, node);
        match pods.patch(&name, &params, &Patch::Apply(&pod)).await {
            Ok(_) if scope.observed.pod_on(node).is_none() => {
                let note = format!("{node}: NodeManager pod {name}");
                events.normal("NodeManagerCreated", note).await;
            }
            Ok(_) => {}
            // A running pod refuses changes to its spec: drain it, and the next reconcile
            // after its removal creates it anew.
            Err(kube::Error::Api(status)) if status.code == 422 => {
                tracing::info!(pod = %name, message = %status.message, "pod spec changed");
                respec.insert(node.clone());
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
                events
                    .node_manager_failed(node, "CreateFailed", category, &message)
                    .await;
                refused.insert(node.clone());
            }
        }
    }
    (respec, refused)
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
