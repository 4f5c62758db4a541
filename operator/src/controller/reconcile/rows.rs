//! Status: one row per NM (pure), from its pod, the RM's report, this reconcile's step problems
//! and the vertical loop's last tick.

use std::collections::{BTreeMap, BTreeSet};

use super::observe::{Observed, PodView};
use crate::build::names;
use crate::crd::{NodeManagerProblem, NodeManagerState, NodeManagerStatus, Resources};
use crate::lifecycle::LifecyclePlan;

/// The rows of the pool's NMs, sorted by node: those with a pod (minus the ones removed now)
/// and those whose pod the API server refused.
pub(crate) fn node_manager_rows(
    pool: &str,
    observed: &Observed,
    settled: &LifecyclePlan,
    refused: &BTreeSet<String>,
    step_problems: &BTreeMap<String, NodeManagerProblem>,
) -> Vec<NodeManagerStatus> {
    let mut rows: Vec<NodeManagerStatus> = observed
        .pods
        .iter()
        .filter(|pod| !settled.remove.contains_key(&pod.node))
        .map(|pod| pod_row(pod, observed, settled, step_problems))
        .collect();
    rows.extend(
        refused
            .iter()
            .filter(|node| observed.pod_on(node).is_none())
            .map(|node| NodeManagerStatus {
                node: node.clone(),
                pod: names::node_manager_pod_name(pool, node),
                ip: None,
                yarn_node_id: None,
                capacity: Resources::default(),
                used: Resources::default(),
                state: NodeManagerState::Starting,
                problem: step_problems.get(node).cloned(),
            }),
    );
    rows.sort_by(|a, b| a.node.cmp(&b.node));
    rows
}

fn pod_row(
    pod: &PodView,
    observed: &Observed,
    settled: &LifecyclePlan,
    step_problems: &BTreeMap<String, NodeManagerProblem>,
) -> NodeManagerStatus {
    let report = observed.rm.report_of(pod);
    let state = if pod.evicted {
        NodeManagerState::Evicted
    } else if pod.drain_deadline.is_some() || settled.drain.contains_key(&pod.node) {
        NodeManagerState::Draining
    } else if report.is_some() {
        NodeManagerState::Running
    } else {
        NodeManagerState::Starting
    };
    NodeManagerStatus {
        node: pod.node.clone(),
        pod: pod.name.clone(),
        ip: pod.ip.clone(),
        yarn_node_id: pod.node_id.as_ref().map(ToString::to_string),
        capacity: report.map_or_else(Resources::default, |r| r.capacity()),
        used: report.map_or_else(Resources::default, |r| r.used()),
        state,
        problem: problem_of(&pod.node, step_problems, &observed.vertical)
            .or_else(|| not_starting(pod)),
    }
}

/// A pod the scheduler cannot place, or whose containers cannot start: the row says why, so
/// that an NM stuck `Starting` shows it without `kubectl describe pod`.
fn not_starting(pod: &PodView) -> Option<NodeManagerProblem> {
    pod.not_starting.as_ref().map(|why| NodeManagerProblem {
        step: why.step.to_owned(),
        category: why.category.clone(),
        message: why.message.clone(),
    })
}

/// What keeps failing for the NM on `node`: a reconcile step of this reconcile first, else the
/// vertical loop's last tick (a failed resize, unreadable metrics).
pub(crate) fn problem_of(
    node: &str,
    step_problems: &BTreeMap<String, NodeManagerProblem>,
    vertical: &super::super::runtime::Observed,
) -> Option<NodeManagerProblem> {
    if let Some(problem) = step_problems.get(node) {
        return Some(problem.clone());
    }
    let outcome = vertical.outcomes.get(node)?;
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
        let mut vertical = super::super::super::runtime::Observed::default();
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
            vertical
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
            |node: &str| problem_of(node, &steps, &vertical).map(|p| (p.step, p.category));
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

    #[test]
    fn a_pod_the_scheduler_cannot_place_says_why_on_its_row() {
        let pod = |condition: serde_json::Value| -> k8s_openapi::api::core::v1::Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": "pool-nm-node-a",
                    "annotations": {(names::NODE_ANNOTATION): "node-a"},
                },
                "status": {"phase": "Pending", "conditions": [condition]},
            }))
            .expect("a pod")
        };
        let pending = pod(serde_json::json!({
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 1 Insufficient kubernetes.io/batch-cpu.",
        }));
        let view = PodView::of(&pending, 45454).expect("a view");
        let problem = not_starting(&view).expect("a problem");
        assert_eq!(
            (problem.step.as_str(), problem.category.as_str()),
            ("Schedule", "unschedulable")
        );
        assert!(
            problem
                .message
                .contains("Insufficient kubernetes.io/batch-cpu")
        );
        let scheduled = pod(serde_json::json!({"type": "PodScheduled", "status": "True"}));
        let view = PodView::of(&scheduled, 45454).expect("a view");
        assert_eq!(not_starting(&view), None);
    }

    #[test]
    fn a_pod_whose_containers_cannot_start_says_why_on_its_row() {
        let pod = |status: serde_json::Value| -> k8s_openapi::api::core::v1::Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": "pool-nm-node-a",
                    "annotations": {(names::NODE_ANNOTATION): "node-a"},
                },
                "status": status,
            }))
            .expect("a pod")
        };
        let problem_of_status = |status: serde_json::Value| {
            not_starting(&PodView::of(&pod(status), 45454).expect("a view"))
                .map(|p| (p.step, p.category, p.message))
        };
        // The hadoop-conf init container failed (a ConfigMap that is not a configuration).
        let (step, category, message) = problem_of_status(serde_json::json!({
            "phase": "Pending",
            "initContainerStatuses": [{
                "name": "hadoop-conf", "image": "g", "imageID": "", "ready": false,
                "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "message": "yarn-site.xml: not a Hadoop configuration file"}},
            }],
        }))
        .expect("a problem");
        assert_eq!((step.as_str(), category.as_str()), ("Start", "init_failed"));
        assert!(
            message.contains("hadoop-conf exited with 1: yarn-site.xml"),
            "{message}"
        );
        // The NM image cannot be pulled.
        let (step, category, message) = problem_of_status(serde_json::json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "nodemanager", "image": "n", "imageID": "", "ready": false,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"n\""}},
            }],
        }))
        .expect("a problem");
        assert_eq!(
            (step.as_str(), category.as_str()),
            ("Start", "image_pull_back_off")
        );
        assert!(message.starts_with("nodemanager: ImagePullBackOff: Back-off pulling"));
        // Starting normally is no problem.
        assert_eq!(
            problem_of_status(serde_json::json!({
                "phase": "Pending",
                "containerStatuses": [{
                    "name": "nodemanager", "image": "n", "imageID": "", "ready": false,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }],
            })),
            None
        );
    }
}
