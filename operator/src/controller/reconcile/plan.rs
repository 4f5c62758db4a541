//! Plan: what this reconcile should do, in pure code from the validated spec and what was
//! observed — the lifecycle (which NMs run, drain, go), the Datasets gate and the Fluid
//! caches' sizes. The writes that can refuse a node (an address, a pod) come back through
//! [`settle`], which gives the plan the rest of the reconcile follows.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::super::datasets;
use super::observe::Observed;
use crate::crd::{DatasetCacheSpec, ElasticNodePoolSpec, LifecycleMode};
use crate::lifecycle::{self, Drain, DrainCause, ExistingNodeManager, LifecyclePlan};
use crate::placement;
use crate::validate::ValidatedPool;

/// What one reconcile sets out to do.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The lifecycle: NMs to run, drain and remove.
    pub lifecycle: LifecyclePlan,
    /// Whether the pool's windows are scheduled (its caches follow them).
    periodic: bool,
    /// When the plan was made.
    now: Timestamp,
}

impl Plan {
    /// Cache workers a Fluid cache of the pool should have now (`None`: leave it).
    pub fn cache_replicas(&self, cache: &DatasetCacheSpec) -> Option<i32> {
        datasets::cache_replicas(
            self.periodic,
            self.lifecycle.phase,
            self.lifecycle.next_transition,
            self.now,
            cache,
        )
    }
}

/// The plan of a pool.
pub(crate) fn plan(
    spec: &ElasticNodePoolSpec,
    validated: &ValidatedPool,
    observed: &Observed,
    now: Timestamp,
) -> Plan {
    let present: BTreeSet<&str> = observed
        .nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    let eligible: BTreeSet<String> = observed
        .nodes
        .iter()
        .filter(|n| placement::check(n, &spec.placement).is_ok())
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    let existing: Vec<ExistingNodeManager> = observed
        .pods
        .iter()
        .map(|pod| ExistingNodeManager {
            node: pod.node.clone(),
            drain_deadline: pod.drain_deadline,
            empty: observed
                .rm
                .report_of(pod)
                .is_some_and(|r| r.num_containers == 0),
            node_present: present.contains(pod.node.as_str()),
            failed: pod.evicted,
        })
        .collect();
    let mut lifecycle = lifecycle::plan(
        &validated.lifecycle,
        now,
        &eligible,
        &existing,
        validated.guarder.grace_period,
    );
    // Unbound datasets: NMs already running stay, none is added (its jobs would read an empty
    // mount).
    if !observed.datasets.allows_new_node_managers() {
        lifecycle.run.retain(|node| observed.pod_on(node).is_some());
    }
    Plan {
        lifecycle,
        periodic: spec.lifecycle.mode == LifecycleMode::Periodic,
        now,
    }
}

/// What the pod and address writes refused, node by node.
#[derive(Clone, Debug, Default)]
pub(crate) struct Refusals {
    /// Nodes without a static address (no NM on a pod IP where the admin asked for static ones).
    pub unaddressed: BTreeSet<String>,
    /// Nodes whose running pod refused a changed spec: drained, then created anew.
    pub respec: BTreeSet<String>,
    /// Nodes whose pod the API server refused (admission, quota).
    pub refused: BTreeSet<String>,
}

/// The lifecycle the rest of the reconcile follows once the writes answered: nodes without an
/// address run no NM, and NMs whose spec changed drain.
pub(crate) fn settle(
    plan: &LifecyclePlan,
    refusals: &Refusals,
    now: Timestamp,
    grace_period: std::time::Duration,
) -> LifecyclePlan {
    let mut settled = plan.clone();
    settled
        .run
        .retain(|node| !refusals.unaddressed.contains(node) && !refusals.respec.contains(node));
    for node in &refusals.respec {
        settled.drain.insert(
            node.clone(),
            Drain {
                deadline: lifecycle::after(now, grace_period),
                cause: DrainCause::SpecChanged,
            },
        );
    }
    settled
}
