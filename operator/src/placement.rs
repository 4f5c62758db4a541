//! Which Kubernetes nodes may run a pool's NodeManagers: the pool's node selector, tolerations
//! and required node affinity, checked the way the scheduler would, plus the node being Ready and
//! schedulable; and what Koordinator lets batch work use on a node. Pure, so that the
//! controller and `render` agree.

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration,
};
use kube_quantity::ParsedQuantity;

use crate::crd::PlacementSpec;
use crate::policy::BatchAllocatable;

/// Koordinator's batch CPU in a node's allocatable, milli-cores.
pub const BATCH_CPU: &str = "kubernetes.io/batch-cpu";
/// Koordinator's batch memory in a node's allocatable, bytes.
pub const BATCH_MEMORY: &str = "kubernetes.io/batch-memory";

/// Koordinator's batch allocatable on the Node object (`kubernetes.io/batch-cpu` in
/// milli-cores, `kubernetes.io/batch-memory` in bytes), as of when the Node was read; `None`
/// when either is missing, unreadable, negative or not finite.
pub fn batch_allocatable(node: &Node) -> Option<BatchAllocatable> {
    let allocatable = node.status.as_ref()?.allocatable.as_ref()?;
    let value = |name: &str| {
        let quantity = ParsedQuantity::try_from(allocatable.get(name)?).ok()?;
        quantity
            .to_bytes_f64()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    Some(BatchAllocatable {
        cpu_cores: value(BATCH_CPU)? / 1000.0,
        memory_mb: value(BATCH_MEMORY)? / f64::from(1u32 << 20),
        age_seconds: 0,
    })
}

/// Why a node may not run the pool's NMs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ineligible {
    /// A label of the node selector is missing or differs.
    NodeSelector(String),
    /// A NoSchedule/NoExecute taint is not tolerated.
    Taint(String),
    /// No term of the required node affinity matches.
    Affinity,
    /// The node is cordoned.
    Unschedulable,
    /// The node is not Ready.
    NotReady,
    /// The node is being deleted.
    Deleting,
}

fn label<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// True when `toleration` tolerates `taint` (Kubernetes' `ToleratesTaint`).
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key_matches = match toleration.key.as_deref() {
        None | Some("") => toleration.operator.as_deref() == Some("Exists"),
        Some(key) => key == taint.key,
    };
    if !key_matches {
        return false;
    }
    match toleration.operator.as_deref() {
        Some("Exists") => true,
        // `Equal` is the default operator.
        _ => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    }
}

fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(actual), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|v| v.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if requirement.operator == "Gt" {
                actual > bound
            } else {
                actual < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    // An empty term matches nothing (as in the scheduler).
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|r| requirement_matches(r, label(node, &r.key)))
        && fields.iter().all(|r| {
            let value = if r.key == "metadata.name" {
                node.metadata.name.as_deref()
            } else {
                None
            };
            requirement_matches(r, value)
        })
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// Whether `node` may run the pool's NodeManagers.
pub fn check(node: &Node, placement: &PlacementSpec) -> Result<(), Ineligible> {
    if node.metadata.deletion_timestamp.is_some() {
        return Err(Ineligible::Deleting);
    }
    for (key, value) in &placement.node_selector {
        if label(node, key) != Some(value.as_str()) {
            return Err(Ineligible::NodeSelector(key.clone()));
        }
    }
    let spec = node.spec.as_ref();
    if spec.and_then(|s| s.unschedulable) == Some(true) {
        return Err(Ineligible::Unschedulable);
    }
    for taint in spec.and_then(|s| s.taints.as_deref()).unwrap_or(&[]) {
        if matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !placement.tolerations.iter().any(|t| tolerates(t, taint))
        {
            return Err(Ineligible::Taint(taint.key.clone()));
        }
    }
    if let Some(required) = placement
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        && !required
            .node_selector_terms
            .iter()
            .any(|term| term_matches(term, node))
    {
        return Err(Ineligible::Affinity);
    }
    if !is_ready(node) {
        return Err(Ineligible::NotReady);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity, NodeCondition, NodeSelector, NodeSpec, NodeStatus,
    };
    use rstest::rstest;

    use super::*;

    fn node(labels: &[(&str, &str)], taints: &[(&str, &str, &str)], ready: bool) -> Node {
        let mut node = Node::default();
        node.metadata.name = Some("worker-1".to_owned());
        node.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        node.spec = Some(NodeSpec {
            taints: Some(
                taints
                    .iter()
                    .map(|(key, value, effect)| Taint {
                        key: (*key).to_owned(),
                        value: Some((*value).to_owned()),
                        effect: (*effect).to_owned(),
                        time_added: None,
                    })
                    .collect(),
            ),
            ..NodeSpec::default()
        });
        node.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".to_owned(),
                status: if ready { "True" } else { "False" }.to_owned(),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        });
        node
    }

    fn toleration(
        key: Option<&str>,
        operator: &str,
        value: Option<&str>,
        effect: Option<&str>,
    ) -> Toleration {
        Toleration {
            key: key.map(str::to_owned),
            operator: Some(operator.to_owned()),
            value: value.map(str::to_owned),
            effect: effect.map(str::to_owned),
            toleration_seconds: None,
        }
    }

    fn selector(pairs: &[(&str, &str)]) -> PlacementSpec {
        PlacementSpec {
            node_selector: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            ..PlacementSpec::default()
        }
    }

    #[rstest]
    #[case::matching(&[("role", "online")], &[("role", "online")], Ok(()))]
    #[case::missing(&[("role", "online")], &[], Err(Ineligible::NodeSelector("role".to_owned())))]
    #[case::different(&[("role", "online")], &[("role", "db")], Err(Ineligible::NodeSelector("role".to_owned())))]
    #[case::empty_selector(&[], &[("anything", "x")], Ok(()))]
    fn node_selector(
        #[case] wanted: &[(&str, &str)],
        #[case] labels: &[(&str, &str)],
        #[case] expected: Result<(), Ineligible>,
    ) {
        assert_eq!(check(&node(labels, &[], true), &selector(wanted)), expected);
    }

    #[rstest]
    #[case::untolerated(None, Err(Ineligible::Taint("dedicated".to_owned())))]
    #[case::equal(Some(toleration(Some("dedicated"), "Equal", Some("online"), Some("NoSchedule"))), Ok(()))]
    #[case::wrong_value(Some(toleration(Some("dedicated"), "Equal", Some("db"), None)), Err(Ineligible::Taint("dedicated".to_owned())))]
    #[case::exists_key(Some(toleration(Some("dedicated"), "Exists", None, None)), Ok(()))]
    #[case::exists_everything(Some(toleration(None, "Exists", None, None)), Ok(()))]
    #[case::other_effect(Some(toleration(Some("dedicated"), "Exists", None, Some("NoExecute"))), Err(Ineligible::Taint("dedicated".to_owned())))]
    fn taints(#[case] toleration: Option<Toleration>, #[case] expected: Result<(), Ineligible>) {
        let node = node(&[], &[("dedicated", "online", "NoSchedule")], true);
        let mut placement = PlacementSpec::default();
        placement.tolerations.extend(toleration);
        assert_eq!(check(&node, &placement), expected);
    }

    #[test]
    fn prefer_no_schedule_taints_do_not_exclude() {
        let node = node(&[], &[("spot", "true", "PreferNoSchedule")], true);
        assert_eq!(check(&node, &PlacementSpec::default()), Ok(()));
    }

    #[rstest]
    #[case::in_(vec![("zone", "In", vec!["a", "b"])], Ok(()))]
    #[case::not_in(vec![("zone", "NotIn", vec!["a"])], Err(Ineligible::Affinity))]
    #[case::exists(vec![("zone", "Exists", vec![])], Ok(()))]
    #[case::does_not_exist(vec![("gpu", "DoesNotExist", vec![])], Ok(()))]
    #[case::gt(vec![("cores", "Gt", vec!["32"])], Ok(()))]
    #[case::lt(vec![("cores", "Lt", vec!["32"])], Err(Ineligible::Affinity))]
    #[case::all_of(vec![("zone", "In", vec!["a"]), ("cores", "Gt", vec!["100"])], Err(Ineligible::Affinity))]
    fn required_affinity(
        #[case] expressions: Vec<(&str, &str, Vec<&str>)>,
        #[case] expected: Result<(), Ineligible>,
    ) {
        let term = NodeSelectorTerm {
            match_expressions: Some(
                expressions
                    .into_iter()
                    .map(|(key, operator, values)| NodeSelectorRequirement {
                        key: key.to_owned(),
                        operator: operator.to_owned(),
                        values: Some(values.into_iter().map(str::to_owned).collect()),
                    })
                    .collect(),
            ),
            match_fields: None,
        };
        let placement = PlacementSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![term],
                    }),
                    preferred_during_scheduling_ignored_during_execution: None,
                }),
                ..Affinity::default()
            }),
            ..PlacementSpec::default()
        };
        let node = node(&[("zone", "a"), ("cores", "64")], &[], true);
        assert_eq!(check(&node, &placement), expected);
    }

    #[test]
    fn cordoned_not_ready_and_deleting_nodes_are_ineligible() {
        let placement = PlacementSpec::default();
        assert_eq!(
            check(&node(&[], &[], false), &placement),
            Err(Ineligible::NotReady)
        );
        let mut cordoned = node(&[], &[], true);
        cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
        assert_eq!(check(&cordoned, &placement), Err(Ineligible::Unschedulable));
        let mut deleting = node(&[], &[], true);
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-11-24T00:00:00Z".parse().unwrap(),
            ));
        assert_eq!(check(&deleting, &placement), Err(Ineligible::Deleting));
    }
}

#[cfg(test)]
mod batch_allocatable_tests {
    use rstest::rstest;

    use super::*;

    fn node_with(cpu: Option<&str>, memory: Option<&str>) -> Node {
        let mut allocatable = serde_json::Map::new();
        if let Some(cpu) = cpu {
            allocatable.insert(BATCH_CPU.to_owned(), cpu.into());
        }
        if let Some(memory) = memory {
            allocatable.insert(BATCH_MEMORY.to_owned(), memory.into());
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "worker-7"},
            "status": {"allocatable": allocatable},
        }))
        .unwrap()
    }

    #[rstest]
    #[case::plain_integers("40000", "137438953472", 40.0, 131_072.0)]
    #[case::suffixes("40k", "128Gi", 40.0, 131_072.0)]
    #[case::fractions_of_a_core("1500", "512Mi", 1.5, 512.0)]
    fn koordinator_units_become_cores_and_mib(
        #[case] cpu: &str,
        #[case] memory: &str,
        #[case] cores: f64,
        #[case] mib: f64,
    ) {
        let got = batch_allocatable(&node_with(Some(cpu), Some(memory))).unwrap();
        assert!((got.cpu_cores - cores).abs() < 1e-9, "{got:?}");
        assert!((got.memory_mb - mib).abs() < 1e-6, "{got:?}");
    }

    #[rstest]
    #[case::no_cpu(None, Some("1Gi"))]
    #[case::no_memory(Some("1000"), None)]
    #[case::garbage(Some("lots"), Some("1Gi"))]
    #[case::negative(Some("-1000"), Some("1Gi"))]
    fn missing_or_bad_values_give_nothing(#[case] cpu: Option<&str>, #[case] memory: Option<&str>) {
        assert_eq!(batch_allocatable(&node_with(cpu, memory)), None);
    }
}
