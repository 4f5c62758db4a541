//! Nodes, as the controller follows them: one reflector store every reconcile reads instead of
//! listing all Nodes, and a trigger that wakes only the pools a Node concerns, only when
//! something a pool acts on changed — labels, taints, `unschedulable`, the Ready condition,
//! Koordinator's batch allocatable — never on a heartbeat.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::crd::ElasticNodePool;
use crate::placement::{self, BATCH_CPU, BATCH_MEMORY};

/// Follows the Nodes in a task of its own, so that its store fills whatever the controller is
/// doing: returns the store, the stream of [`relevant_changes`] for the controller's trigger,
/// and the task (abort it to stop).
pub fn follow(
    api: Api<Node>,
) -> (
    Store<Node>,
    impl Stream<Item = Result<Node, watcher::Error>>,
    tokio::task::JoinHandle<()>,
) {
    let (store, writer) = reflector::store();
    let (changes_tx, changes_rx) = futures::channel::mpsc::unbounded();
    let task = tokio::spawn(async move {
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer);
        let mut changes = std::pin::pin!(relevant_changes(events));
        while let Some(change) = changes.next().await {
            if changes_tx.unbounded_send(change).is_err() {
                return;
            }
        }
    });
    (store, changes_rx, task)
}

/// A hash of what a pool acts on in a Node.
pub fn fingerprint(node: &Node) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    node.metadata.labels.hash(&mut hasher);
    if let Some(spec) = &node.spec {
        spec.unschedulable.hash(&mut hasher);
        for taint in spec.taints.iter().flatten() {
            (&taint.key, &taint.value, &taint.effect).hash(&mut hasher);
        }
    }
    if let Some(status) = &node.status {
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.as_str());
        ready.hash(&mut hasher);
        for resource in [BATCH_CPU, BATCH_MEMORY] {
            let value = status.allocatable.as_ref().and_then(|a| a.get(resource));
            value.map(|q| q.0.as_str()).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The Nodes that changed in a way a pool acts on: every deleted Node, and a Node seen for the
/// first time or whose [`fingerprint`] moved.
pub fn relevant_changes(
    events: impl Stream<Item = Result<watcher::Event<Node>, watcher::Error>>,
) -> impl Stream<Item = Result<Node, watcher::Error>> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    events
        .map(move |event| {
            let event = match event {
                Ok(event) => event,
                Err(error) => return vec![Err(error)],
            };
            match event {
                watcher::Event::Delete(node) => {
                    seen.remove(&node.metadata.name.clone().unwrap_or_default());
                    vec![Ok(node)]
                }
                watcher::Event::Apply(node) | watcher::Event::InitApply(node) => {
                    let name = node.metadata.name.clone().unwrap_or_default();
                    let print = fingerprint(&node);
                    if seen.insert(name, print) == Some(print) {
                        vec![]
                    } else {
                        vec![Ok(node)]
                    }
                }
                watcher::Event::Init | watcher::Event::InitDone => vec![],
            }
        })
        .flat_map(futures::stream::iter)
}

/// The pools a Node concerns: those whose placement selects it, and those with an NM on it
/// (a Node that leaves a pool's placement, or goes, must reach the pool that runs there).
pub fn pools_of(node: &Node, pools: &Store<ElasticNodePool>) -> Vec<ObjectRef<ElasticNodePool>> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    pools
        .state()
        .into_iter()
        .filter(|pool| {
            placement::check(node, &pool.spec.placement).is_ok()
                || pool
                    .status
                    .as_ref()
                    .is_some_and(|s| s.node_managers.iter().any(|nm| nm.node == name))
        })
        .map(|pool| ObjectRef::from_obj(&*pool))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus, Taint};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn node(name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some([("role".to_owned(), "online".to_owned())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".to_owned(),
                    status: "True".to_owned(),
                    ..NodeCondition::default()
                }]),
                allocatable: Some([(BATCH_CPU.to_owned(), Quantity("4000".to_owned()))].into()),
                ..NodeStatus::default()
            }),
        }
    }

    fn heartbeat(mut node: Node, at: i64) -> Node {
        let conditions = node
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .expect("conditions");
        conditions[0].last_heartbeat_time =
            Some(Time(jiff::Timestamp::from_second(at).expect("a time")));
        node.metadata.resource_version = Some(at.to_string());
        node
    }

    #[test]
    fn what_pools_act_on_moves_the_fingerprint_and_a_heartbeat_does_not() {
        let base = node("n1");
        assert_eq!(
            fingerprint(&base),
            fingerprint(&heartbeat(base.clone(), 60))
        );
        let mut cordoned = base.clone();
        cordoned.spec = Some(NodeSpec {
            unschedulable: Some(true),
            ..NodeSpec::default()
        });
        let mut tainted = base.clone();
        tainted.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: "maintenance".to_owned(),
                effect: "NoSchedule".to_owned(),
                ..Taint::default()
            }]),
            ..NodeSpec::default()
        });
        let mut relabelled = base.clone();
        relabelled.metadata.labels = Some([("role".to_owned(), "batch".to_owned())].into());
        let mut not_ready = base.clone();
        if let Some(conditions) = not_ready
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
        {
            conditions[0].status = "False".to_owned();
        }
        let mut less_batch = base.clone();
        if let Some(allocatable) = less_batch
            .status
            .as_mut()
            .and_then(|s| s.allocatable.as_mut())
        {
            allocatable.insert(BATCH_CPU.to_owned(), Quantity("1500".to_owned()));
        }
        for changed in [cordoned, tainted, relabelled, not_ready, less_batch] {
            assert_ne!(fingerprint(&base), fingerprint(&changed), "{changed:?}");
        }
    }

    #[tokio::test]
    async fn only_relevant_changes_and_deletions_pass() {
        let first = node("n1");
        let mut moved = first.clone();
        if let Some(allocatable) = moved.status.as_mut().and_then(|s| s.allocatable.as_mut()) {
            allocatable.insert(BATCH_CPU.to_owned(), Quantity("1000".to_owned()));
        }
        let events = vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(first.clone())),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(heartbeat(first.clone(), 10))),
            Ok(watcher::Event::Apply(heartbeat(first.clone(), 20))),
            Ok(watcher::Event::Apply(moved.clone())),
            Ok(watcher::Event::Apply(heartbeat(moved.clone(), 30))),
            Ok(watcher::Event::Delete(moved.clone())),
            Ok(watcher::Event::Apply(node("n2"))),
        ];
        let passed: Vec<(String, String)> = relevant_changes(futures::stream::iter(events))
            .map(|node| {
                let node = node.expect("no error");
                let cpu = node
                    .status
                    .and_then(|s| s.allocatable)
                    .and_then(|a| a.get(BATCH_CPU).map(|q| q.0.clone()));
                (
                    node.metadata.name.unwrap_or_default(),
                    cpu.unwrap_or_default(),
                )
            })
            .collect()
            .await;
        assert_eq!(
            passed,
            [
                ("n1".to_owned(), "4000".to_owned()),
                ("n1".to_owned(), "1000".to_owned()),
                ("n1".to_owned(), "1000".to_owned()),
                ("n2".to_owned(), "4000".to_owned()),
            ]
        );
    }
}
