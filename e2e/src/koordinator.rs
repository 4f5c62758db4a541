//! Koordinator's side of a node as far as the e2e setup can have it: its real NodeSLO CRD (from
//! Koordinator's Go module, `testkit/go/koordinator-crds`) and NodeSLO objects written as
//! koord-manager writes them. koord-manager and koordlet themselves do not run here (the fake
//! koordlet of `node_metrics` serves koordlet's page).

use std::path::PathBuf;

use kube::Client;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::world::World;

/// Where `testkit/go/koordinator-crds` put the CRDs (`ELASTIC_YARN_KOORDINATOR_CRDS`).
fn crd_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ELASTIC_YARN_KOORDINATOR_CRDS").map(PathBuf::from);
    if dir.is_none() && testkit::required() {
        panic!(
            "ELASTIC_YARN_KOORDINATOR_CRDS is not set: run testkit/go/koordinator-crds (scripts/e2e does)"
        );
    }
    dir
}

/// Installs Koordinator's NodeSLO CRD; `false` when it is not available (and not required).
pub async fn install_crds(world: &World) -> bool {
    let Some(dir) = crd_dir() else {
        return false;
    };
    world
        .apply_crds(
            &dir.join("slo.koordinator.sh_nodeslos.yaml"),
            &["nodeslos.slo.koordinator.sh"],
        )
        .await;
    true
}

/// Writes `node`'s NodeSLO with batch memory eviction at `threshold_percent`, as koord-manager
/// does from its slo-controller-config.
pub async fn set_node_slo(client: &Client, node: &str, threshold_percent: u32) {
    let object = json!({
        "apiVersion": "slo.koordinator.sh/v1alpha1",
        "kind": "NodeSLO",
        "metadata": {"name": node},
        "spec": {
            "resourceUsedThresholdWithBE": {
                "enable": true,
                "cpuSuppressThresholdPercent": 65,
                "cpuSuppressPolicy": "cpuset",
                "memoryEvictThresholdPercent": threshold_percent,
            }
        }
    });
    elastic_yarn_operator::doctor::node_slo_api(client)
        .patch(
            node,
            &PatchParams::apply("e2e-koord-manager").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("NodeSLO {node}: {e}"));
}
