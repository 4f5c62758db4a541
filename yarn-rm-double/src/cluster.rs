//! The cluster the RM double serves: nodes, labels, signals, shared by an HA pair of doubles as
//! real RMs share their state store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};

use yarn_rm::model::{NodeId, NodeState, Resources, SignalCommand};

/// One NodeManager as the double knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct DoubleNode {
    /// `host:port`.
    pub id: NodeId,
    /// YARN state.
    pub state: NodeState,
    /// YARN capacity.
    pub capacity: Resources,
    /// What containers hold.
    pub used: Resources,
    /// Containers running.
    pub containers: u32,
    /// Node labels.
    pub labels: Vec<String>,
}

impl DoubleNode {
    /// A running, empty node with this capacity.
    pub fn running(id: NodeId, capacity: Resources) -> DoubleNode {
        DoubleNode {
            id,
            state: NodeState::Running,
            capacity,
            used: Resources::default(),
            containers: 0,
            labels: Vec::new(),
        }
    }
}

/// How the double writes JSON: the two Jersey notations Hadoop uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JerseyStyle {
    /// Arrays stay arrays; an empty list is `null`; numbers are numbers.
    #[default]
    Natural,
    /// A one-element list is the element itself; an empty list is left out; numbers and
    /// booleans are strings.
    Mapped,
}

#[derive(Debug, Default)]
struct ClusterState {
    nodes: BTreeMap<NodeId, DoubleNode>,
    /// Cluster labels and their exclusivity.
    labels: BTreeMap<String, bool>,
    /// Reads left during which a resized node still shows its old capacity.
    lagging: HashMap<NodeId, (u32, Resources)>,
    lag_reads: u32,
    signals: Vec<(String, SignalCommand)>,
    style: JerseyStyle,
}

/// The shared cluster state; clones share it.
#[derive(Clone, Debug, Default)]
pub struct DoubleCluster {
    state: Arc<Mutex<ClusterState>>,
}

/// Why the double refuses an operation, as RMWebServices would.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    IllegalArgument(String),
    NotFound(String),
    BadRequest(String),
    Unavailable(String),
}

impl DoubleCluster {
    /// An empty cluster.
    pub fn new() -> DoubleCluster {
        DoubleCluster::default()
    }

    /// `count` running nodes `nm-<i>.yarn.test:45454` of the given capacity.
    pub fn with_nodes(count: usize, capacity: Resources) -> DoubleCluster {
        let cluster = DoubleCluster::new();
        for index in 0..count {
            if let Ok(id) = NodeId::new(format!("nm-{index}.yarn.test"), 45454) {
                cluster.add_node(DoubleNode::running(id, capacity));
            }
        }
        cluster
    }

    fn lock(&self) -> MutexGuard<'_, ClusterState> {
        yarn_rm::lock(&self.state)
    }

    /// Adds or replaces a node.
    pub fn add_node(&self, node: DoubleNode) {
        self.lock().nodes.insert(node.id.clone(), node);
    }

    /// A node as the cluster holds it (not as a lagging read would show it).
    pub fn node(&self, id: &NodeId) -> Option<DoubleNode> {
        self.lock().nodes.get(id).cloned()
    }

    /// Changes a node's state (an NM lost or decommissioned).
    pub fn set_state(&self, id: &NodeId, state: NodeState) {
        if let Some(node) = self.lock().nodes.get_mut(id) {
            node.state = state;
        }
    }

    /// Sets what containers use on a node.
    pub fn set_used(&self, id: &NodeId, used: Resources, containers: u32) {
        if let Some(node) = self.lock().nodes.get_mut(id) {
            node.used = used;
            node.containers = containers;
        }
    }

    /// Adds a cluster label directly (as an admin with `yarn rmadmin` would).
    pub fn add_label(&self, name: &str, exclusive: bool) {
        self.lock().labels.insert(name.to_owned(), exclusive);
    }

    /// Cluster labels and their exclusivity.
    pub fn labels(&self) -> BTreeMap<String, bool> {
        self.lock().labels.clone()
    }

    /// Signals the RM was asked to send.
    pub fn signals(&self) -> Vec<(String, SignalCommand)> {
        self.lock().signals.clone()
    }

    /// After each resize, the node shows its old capacity for this many more reads (an RM whose
    /// scheduler applies the change late).
    pub fn lag_resizes(&self, reads: u32) {
        self.lock().lag_reads = reads;
    }

    /// Which Jersey notation answers use.
    pub fn set_style(&self, style: JerseyStyle) {
        self.lock().style = style;
    }

    pub(crate) fn style(&self) -> JerseyStyle {
        self.lock().style
    }

    pub(crate) fn nodes_json(&self, states: &[NodeState]) -> Value {
        let mut state = self.lock();
        let ids: Vec<NodeId> = state
            .nodes
            .values()
            .filter(|node| states.is_empty() || states.contains(&node.state))
            .map(|node| node.id.clone())
            .collect();
        let nodes: Vec<Value> = ids
            .iter()
            .filter_map(|id| node_json(&mut state, id))
            .collect();
        json!({ "nodes": { "node": nodes } })
    }

    pub(crate) fn node_json(&self, id: &NodeId) -> Result<Value, Refusal> {
        let mut state = self.lock();
        node_json(&mut state, id)
            .map(|node| json!({ "node": node }))
            .ok_or_else(|| not_found(id))
    }

    /// Applies a resize and answers the capacity the node shows at that moment, as
    /// `RMWebServices.updateNodeResource` answers `rmNode.getTotalCapability()` right after
    /// handing the change to the RM's event dispatcher: the new capacity once the dispatcher has
    /// applied it, the one before while reads lag ([`Self::lag_resizes`]).
    pub(crate) fn resize(&self, id: &NodeId, capacity: Resources) -> Result<Resources, Refusal> {
        let mut state = self.lock();
        let lag = state.lag_reads;
        let node = state.nodes.get_mut(id).ok_or_else(|| not_found(id))?;
        if node.state.is_inactive() {
            return Err(Refusal::Unavailable(format!(
                "Resource update get failed on an unrecognized node: {id}"
            )));
        }
        let previous = node.capacity;
        node.capacity = capacity;
        if lag > 0 {
            state.lagging.insert(id.clone(), (lag, previous));
            Ok(previous)
        } else {
            Ok(capacity)
        }
    }

    pub(crate) fn labels_json(&self) -> Value {
        let labels: Vec<Value> = self
            .lock()
            .labels
            .iter()
            .map(|(name, exclusive)| json!({ "name": name, "exclusivity": exclusive }))
            .collect();
        json!({ "nodeLabelInfo": labels })
    }

    pub(crate) fn add_labels(&self, wanted: &[(String, bool)]) -> Result<(), Refusal> {
        let mut state = self.lock();
        for (name, exclusive) in wanted {
            if let Some(existing) = state.labels.get(name)
                && existing != exclusive
            {
                return Err(Refusal::BadRequest(format!(
                    "Exclusivity cannot be modified for an existing label with : <{name}:exclusivity={exclusive}>"
                )));
            }
        }
        for (name, exclusive) in wanted {
            state.labels.insert(name.clone(), *exclusive);
        }
        Ok(())
    }

    pub(crate) fn replace_labels(&self, mapping: &[(NodeId, Vec<String>)]) -> Result<(), Refusal> {
        let mut state = self.lock();
        for (_, labels) in mapping {
            if let Some(unknown) = labels
                .iter()
                .find(|label| !state.labels.contains_key(*label))
            {
                return Err(Refusal::BadRequest(format!(
                    "Label [{unknown}] is not in the cluster node label collection"
                )));
            }
        }
        for (id, labels) in mapping {
            // YARN keeps labels of hosts that are not registered yet; the double only shows
            // them on known nodes.
            if let Some(node) = state.nodes.get_mut(id) {
                node.labels = labels.clone();
            }
        }
        Ok(())
    }

    pub(crate) fn record_signal(&self, container: &str, command: SignalCommand) {
        self.lock().signals.push((container.to_owned(), command));
    }
}

fn not_found(id: &NodeId) -> Refusal {
    Refusal::NotFound(format!("java.lang.Exception: nodeId, {id}, is not found"))
}

/// NodeInfo as Hadoop 3.3 writes it; a lagging read shows the previous capacity.
fn node_json(state: &mut ClusterState, id: &NodeId) -> Option<Value> {
    let shown_capacity = match state.lagging.get_mut(id) {
        Some((left, previous)) if *left > 0 => {
            *left -= 1;
            Some(*previous)
        }
        _ => None,
    };
    let node = state.nodes.get(id)?;
    let capacity = shown_capacity.unwrap_or(node.capacity);
    let inactive = node.state.is_inactive();
    let memory_total = i64::try_from(capacity.memory_mb).unwrap_or(i64::MAX);
    let memory_used = i64::try_from(node.used.memory_mb).unwrap_or(i64::MAX);
    let mut object = Map::new();
    let mut put = |key: &str, value: Value| {
        object.insert(key.to_owned(), value);
    };
    put("rack", json!("/default-rack"));
    put("state", json!(node.state.as_str()));
    put("id", json!(node.id.to_string()));
    put("nodeHostName", json!(node.id.host()));
    put(
        "nodeHTTPAddress",
        json!(if inactive {
            String::new()
        } else {
            format!("{}:8042", node.id.host())
        }),
    );
    put("lastHealthUpdate", json!(1_700_000_000_000_i64));
    put("version", json!("3.3.6"));
    put("healthReport", json!(""));
    put("numContainers", json!(node.containers));
    put("usedMemoryMB", json!(memory_used));
    put("availMemoryMB", json!(memory_total - memory_used));
    put("usedVirtualCores", json!(node.used.vcores));
    put(
        "availableVirtualCores",
        json!(i64::from(capacity.vcores) - i64::from(node.used.vcores)),
    );
    put("numRunningOpportContainers", json!(0));
    put("usedMemoryOpportGB", json!(0));
    put("usedVirtualCoresOpport", json!(0));
    put("numQueuedContainers", json!(0));
    put("nodeLabels", json!(node.labels));
    put(
        "usedResource",
        json!({"memory": memory_used, "vCores": node.used.vcores}),
    );
    put(
        "availableResource",
        json!({"memory": memory_total - memory_used,
               "vCores": i64::from(capacity.vcores) - i64::from(node.used.vcores)}),
    );
    Some(Value::Object(object))
}

/// Rewrites natural-notation JSON in mapped notation.
pub(crate) fn mapped(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .filter_map(|(key, value)| match value {
                    Value::Array(items) if items.is_empty() => None,
                    Value::Null => None,
                    Value::Array(mut items) if items.len() == 1 => {
                        items.pop().map(|only| (key, mapped(only)))
                    }
                    other => Some((key, mapped(other))),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(mapped).collect()),
        Value::Number(number) => Value::String(number.to_string()),
        Value::Bool(flag) => Value::String(flag.to_string()),
        other => other,
    }
}

/// Natural notation as Hadoop writes it: an empty list is `null`.
pub(crate) fn natural(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .map(|(key, value)| match value {
                    Value::Array(items) if items.is_empty() => (key, Value::Null),
                    other => (key, natural(other)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(natural).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_notation_flattens_single_lists_and_stringifies_scalars() {
        let natural_json =
            json!({"nodes":{"node":[{"id":"a:1","numContainers":3,"nodeLabels":[]}]}});
        assert_eq!(
            mapped(natural_json),
            json!({"nodes":{"node":{"id":"a:1","numContainers":"3"}}})
        );
        assert_eq!(
            natural(json!({"nodes":{"node":[]}})),
            json!({"nodes":{"node":null}})
        );
    }

    #[test]
    fn a_lagging_resize_answers_the_old_capacity_until_reads_catch_up() {
        let cluster = DoubleCluster::with_nodes(
            1,
            Resources {
                memory_mb: 8192,
                vcores: 8,
            },
        );
        let id: NodeId = "nm-0.yarn.test:45454".parse().expect("id");
        cluster.lag_resizes(1);
        let new = Resources {
            memory_mb: 4096,
            vcores: 4,
        };
        let answered = cluster.resize(&id, new).expect("resize");
        assert_eq!(
            answered.vcores, 8,
            "the answer races the dispatcher and loses"
        );
        let read = |cluster: &DoubleCluster| {
            cluster.node_json(&id).expect("node")["node"]["availableVirtualCores"].clone()
        };
        assert_eq!(read(&cluster), json!(8), "first read lags");
        assert_eq!(read(&cluster), json!(4), "second read shows the change");
    }

    #[test]
    fn inactive_nodes_cannot_be_resized() {
        let cluster = DoubleCluster::with_nodes(1, Resources::default());
        let id: NodeId = "nm-0.yarn.test:45454".parse().expect("id");
        cluster.set_state(&id, NodeState::Lost);
        assert!(matches!(
            cluster.resize(&id, Resources::default()),
            Err(Refusal::Unavailable(_))
        ));
    }
}
