//! The pool's status, computed in pure code from the plan and what the loop observed; merged
//! with the previous conditions so that nothing changes when nothing happened.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::datasets::DatasetsReadiness;
use crate::conditions::{
    ConditionUpdate, DATASETS_READY, METRICS_FRESH, READY, RESOURCE_MANAGER_REACHABLE, merge,
};
use crate::crd::{ElasticNodePoolStatus, NodeManagerStatus, PoolPhase, PoolTotals, Resources};
use crate::lifecycle::LifecyclePlan;
use crate::validate::SpecErrors;

/// What the RM said at this reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RmReachability {
    /// The active RM answered.
    Reachable,
    /// It did not: category and message.
    Unreachable(&'static str, String),
}

/// Everything the status is made of.
#[derive(Clone, Debug)]
pub struct StatusInputs<'a> {
    /// The pool's generation.
    pub generation: Option<i64>,
    /// The lifecycle plan applied.
    pub plan: &'a LifecyclePlan,
    /// One row per NM.
    pub node_managers: Vec<NodeManagerStatus>,
    /// The RM.
    pub rm: RmReachability,
    /// NMs with fresh metrics, of those the loop read.
    pub fresh_metrics: Option<(usize, usize)>,
    /// Whether the Fluid Datasets the pool mounts are bound.
    pub datasets: DatasetsReadiness,
    /// Graceful signals and force kills the guarders report.
    pub signals: (u64, u64),
    /// Nodes the plan wanted an NM on that got no static address (the StaticIPPool has none
    /// free).
    pub unaddressed: usize,
}

fn sum(rows: &[NodeManagerStatus], pick: impl Fn(&NodeManagerStatus) -> Resources) -> Resources {
    rows.iter()
        .map(pick)
        .fold(Resources::default(), |acc, r| Resources {
            vcores: acc.vcores.saturating_add(r.vcores),
            memory_mb: acc.memory_mb.saturating_add(r.memory_mb),
        })
}

/// The status of a valid pool.
pub fn pool_status(
    old: Option<&ElasticNodePoolStatus>,
    inputs: StatusInputs<'_>,
    now: &Time,
) -> ElasticNodePoolStatus {
    let plan = inputs.plan;
    let rows = inputs.node_managers;
    let rm_update = match &inputs.rm {
        RmReachability::Reachable => {
            ConditionUpdate::holds(RESOURCE_MANAGER_REACHABLE, "ActiveResourceManagerFound", "")
        }
        RmReachability::Unreachable(category, message) => ConditionUpdate::fails(
            RESOURCE_MANAGER_REACHABLE,
            &camel(category),
            message.clone(),
        ),
    };
    let metrics_update = match inputs.fresh_metrics {
        None => ConditionUpdate::fails(METRICS_FRESH, "NotReadYet", "no NodeManager was sized yet"),
        Some((fresh, total)) if fresh == total => {
            ConditionUpdate::holds(METRICS_FRESH, "Fresh", format!("{fresh} of {total} fresh"))
        }
        Some((fresh, total)) => ConditionUpdate::fails(
            METRICS_FRESH,
            "Stale",
            format!(
                "{} of {total} NodeManagers have stale or missing availability metrics: they \
                 hold their size and go to the floor if it lasts",
                total - fresh
            ),
        ),
    };
    let datasets_update = match &inputs.datasets {
        DatasetsReadiness::NoDatasets => ConditionUpdate::holds(DATASETS_READY, "NoDatasets", ""),
        DatasetsReadiness::Bound(count) => {
            ConditionUpdate::holds(DATASETS_READY, "Bound", format!("{count} of {count} bound"))
        }
        DatasetsReadiness::NotReady { reason, message } => {
            ConditionUpdate::fails(DATASETS_READY, reason, message.clone())
        }
    };
    let ready_update = match (&inputs.rm, plan.phase) {
        (RmReachability::Unreachable(..), _) => ConditionUpdate::fails(
            READY,
            "ResourceManagerUnreachable",
            "NodeManagers are not resized or drained until the RM answers",
        ),
        (_, phase)
            if phase != PoolPhase::Offline && !inputs.datasets.allows_new_node_managers() =>
        {
            ConditionUpdate::fails(
                READY,
                "DatasetsNotReady",
                "no new NodeManager starts until every Fluid Dataset is bound",
            )
        }
        (_, PoolPhase::Pending) => ConditionUpdate::fails(
            READY,
            "NoEligibleNodes",
            "no Ready node matches the pool's placement",
        ),
        (_, PoolPhase::Online) if rows.is_empty() && inputs.unaddressed > 0 => {
            ConditionUpdate::fails(
                READY,
                "StaticIpExhausted",
                format!(
                    "{} eligible node(s) and no NodeManager: the StaticIPPool has no free                      address (see the StaticIpUnavailable Event)",
                    inputs.unaddressed
                ),
            )
        }
        (_, phase) => ConditionUpdate::holds(
            READY,
            &format!("{phase:?}"),
            if inputs.unaddressed > 0 {
                format!(
                    "{} NodeManager(s); {} node(s) without a free static address",
                    rows.len(),
                    inputs.unaddressed
                )
            } else {
                format!("{} NodeManager(s)", rows.len())
            },
        ),
    };
    let conditions = merge(
        old.map_or(&[][..], |o| &o.conditions),
        &[rm_update, metrics_update, datasets_update, ready_update],
        inputs.generation,
        now,
    );
    let totals = PoolTotals {
        node_managers: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        capacity: sum(&rows, |r| r.capacity),
        used: sum(&rows, |r| r.used),
    };
    ElasticNodePoolStatus {
        observed_generation: inputs.generation,
        phase: Some(plan.phase),
        conditions,
        next_transition: plan.next_transition.map(|t| t.to_string()),
        node_managers: rows,
        totals: Some(totals),
        graceful_signals: inputs.signals.0,
        forced_kills: inputs.signals.1,
    }
}

/// The status of a pool whose spec is invalid: `Ready=False` with every problem.
pub fn invalid_status(
    old: Option<&ElasticNodePoolStatus>,
    generation: Option<i64>,
    errors: &SpecErrors,
    now: &Time,
) -> ElasticNodePoolStatus {
    let reason = errors.0.first().map_or("InvalidSpec", |e| e.reason);
    let conditions = merge(
        old.map_or(&[][..], |o| &o.conditions),
        &[ConditionUpdate::fails(READY, reason, errors.to_string())],
        generation,
        now,
    );
    ElasticNodePoolStatus {
        observed_generation: generation,
        phase: Some(PoolPhase::Degraded),
        conditions,
        ..old.cloned().unwrap_or_default()
    }
}

/// `no_active_rm` → `NoActiveRm`, for condition reasons.
fn camel(category: &str) -> String {
    category
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::crd::NodeManagerState;
    use crate::validate::SpecError;

    fn time(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    fn plan(phase: PoolPhase) -> LifecyclePlan {
        LifecyclePlan {
            phase,
            run: BTreeSet::new(),
            drain: BTreeMap::new(),
            remove: BTreeMap::new(),
            next_transition: Some("2026-11-25T05:00:00Z".parse().unwrap()),
            requeue_after: None,
        }
    }

    fn row(node: &str, vcores: u32, used: u32) -> NodeManagerStatus {
        NodeManagerStatus {
            node: node.to_owned(),
            pod: format!("pool-nm-{node}"),
            ip: Some("10.0.0.1".to_owned()),
            yarn_node_id: Some("10.0.0.1:45454".to_owned()),
            capacity: Resources {
                vcores,
                memory_mb: u64::from(vcores) * 4096,
            },
            used: Resources {
                vcores: used,
                memory_mb: u64::from(used) * 4096,
            },
            state: NodeManagerState::Running,
            problem: None,
        }
    }

    #[test]
    fn online_pool_sums_its_nms_and_is_ready() {
        let plan = plan(PoolPhase::Online);
        let status = pool_status(
            None,
            StatusInputs {
                generation: Some(4),
                plan: &plan,
                node_managers: vec![row("a", 10, 4), row("b", 6, 6)],
                rm: RmReachability::Reachable,
                fresh_metrics: Some((2, 2)),
                datasets: DatasetsReadiness::NoDatasets,
                signals: (7, 1),
                unaddressed: 0,
            },
            &time("2026-11-24T22:00:00Z"),
        );
        let totals = status.totals.unwrap();
        assert_eq!(totals.node_managers, 2);
        assert_eq!(totals.capacity.vcores, 16);
        assert_eq!(totals.used.memory_mb, 10 * 4096);
        assert_eq!(
            status.next_transition.as_deref(),
            Some("2026-11-25T05:00:00Z")
        );
        assert_eq!((status.graceful_signals, status.forced_kills), (7, 1));
        let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Online")
        );
        assert_eq!(status.observed_generation, Some(4));
    }

    #[test]
    fn an_exhausted_static_ip_pool_is_not_ready_when_no_nodemanager_runs() {
        let plan = plan(PoolPhase::Online);
        let status_with = |rows: Vec<NodeManagerStatus>| {
            pool_status(
                None,
                StatusInputs {
                    generation: Some(1),
                    plan: &plan,
                    node_managers: rows,
                    rm: RmReachability::Reachable,
                    fresh_metrics: None,
                    datasets: DatasetsReadiness::NoDatasets,
                    signals: (0, 0),
                    unaddressed: 2,
                },
                &time("2026-11-24T22:00:00Z"),
            )
        };
        let ready = |status: &ElasticNodePoolStatus| {
            let c = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
            (c.status.clone(), c.reason.clone(), c.message.clone())
        };
        let (state, reason, message) = ready(&status_with(Vec::new()));
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("False", "StaticIpExhausted")
        );
        assert!(message.contains("2 eligible node(s)"), "{message}");
        let (state, reason, message) = ready(&status_with(vec![row("a", 4, 0)]));
        assert_eq!((state.as_str(), reason.as_str()), ("True", "Online"));
        assert!(
            message.contains("1 NodeManager(s); 2 node(s) without a free static address"),
            "{message}"
        );
    }

    #[test]
    fn unreachable_rm_and_stale_metrics_are_explained() {
        let plan = plan(PoolPhase::Online);
        let status = pool_status(
            None,
            StatusInputs {
                generation: Some(1),
                plan: &plan,
                node_managers: vec![row("a", 10, 4)],
                rm: RmReachability::Unreachable("no_active_rm", "rm1, rm2: standby".to_owned()),
                fresh_metrics: Some((0, 1)),
                datasets: DatasetsReadiness::NotReady {
                    reason: "DatasetNotBound",
                    message: "tpcds-1t (NotBound)".to_owned(),
                },
                signals: (0, 0),
                unaddressed: 0,
            },
            &time("2026-11-24T22:00:00Z"),
        );
        let by_type = |t: &str| {
            status
                .conditions
                .iter()
                .find(|c| c.type_ == t)
                .unwrap()
                .clone()
        };
        assert_eq!(by_type(READY).reason, "ResourceManagerUnreachable");
        assert_eq!(by_type(RESOURCE_MANAGER_REACHABLE).reason, "NoActiveRm");
        assert_eq!(by_type(METRICS_FRESH).reason, "Stale");
        assert_eq!(by_type(DATASETS_READY).status, "False");
    }

    #[test]
    fn invalid_spec_keeps_rows_and_says_why() {
        let old = ElasticNodePoolStatus {
            node_managers: vec![row("a", 10, 4)],
            ..ElasticNodePoolStatus::default()
        };
        let errors = SpecErrors(vec![SpecError {
            field: "spec.lifecycle.periodic.timeZone".to_owned(),
            reason: "UnknownTimeZone",
            message: "\"Mars/Olympus\" is not an IANA time zone".to_owned(),
        }]);
        let status = invalid_status(Some(&old), Some(2), &errors, &time("2026-11-24T22:00:00Z"));
        assert_eq!(status.phase, Some(PoolPhase::Degraded));
        assert_eq!(status.node_managers.len(), 1);
        let ready = &status.conditions[0];
        assert_eq!(ready.reason, "UnknownTimeZone");
        assert!(ready.message.contains("Mars/Olympus"));
    }
}
