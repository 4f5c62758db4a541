//! The RM's REST objects, as Hadoop 3.x writes them, and the values the client sends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::jersey;

pub use yarn_types::{NodeId, Resources};

/// `{"memory":M,"vCores":N}`: resources as the RM's REST bodies write them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireResources {
    /// Memory, MB as YARN counts it (2^20 bytes).
    #[serde(rename = "memory")]
    pub memory_mb: u64,
    /// Virtual cores.
    #[serde(rename = "vCores")]
    pub vcores: u32,
}

impl From<Resources> for WireResources {
    fn from(r: Resources) -> Self {
        WireResources {
            memory_mb: r.memory_mb,
            vcores: r.vcores,
        }
    }
}

impl From<WireResources> for Resources {
    fn from(r: WireResources) -> Self {
        Resources::new(r.vcores, r.memory_mb)
    }
}

/// `ResourceInfo` as the RM writes it (`totalResource`, `usedResource`, the resize answer).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceInfo {
    /// Memory, MB.
    #[serde(default, deserialize_with = "jersey::integer")]
    pub memory: i64,
    /// Virtual cores.
    #[serde(default, rename = "vCores", deserialize_with = "jersey::integer")]
    pub vcores: i64,
}

impl ResourceInfo {
    /// As a capacity; negative values (never sent by a sane RM) read as zero.
    pub fn capacity(&self) -> Resources {
        Resources {
            memory_mb: u64::try_from(self.memory).unwrap_or(0),
            vcores: u32::try_from(self.vcores).unwrap_or(0),
        }
    }
}

/// What a resize does to containers already over the new capacity: the RM waits this long for
/// them to finish before it preempts them; `-1` never preempts (the guarder drains them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverCommitTimeout {
    /// `-1`: keep running containers (the default; the guarder drains them).
    #[default]
    Never,
    /// Preempt what is still over after this many seconds.
    Seconds(u32),
}

impl OverCommitTimeout {
    /// The value sent in `overCommitTimeout`.
    pub fn wire(self) -> i64 {
        match self {
            OverCommitTimeout::Never => -1,
            OverCommitTimeout::Seconds(seconds) => i64::from(seconds),
        }
    }
}

/// YARN's node states (`org.apache.hadoop.yarn.api.records.NodeState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeState {
    /// Registered, not yet heartbeating.
    New,
    /// Heartbeating and schedulable.
    Running,
    /// Reported unhealthy by its health checker.
    Unhealthy,
    /// Leaving gracefully.
    Decommissioning,
    /// Gone by admin action.
    Decommissioned,
    /// Missed heartbeats for too long.
    Lost,
    /// Re-registered after a restart.
    Rebooted,
    /// Shut down cleanly.
    Shutdown,
    /// A state this client does not know (a newer Hadoop).
    #[serde(other)]
    Unknown,
}

impl NodeState {
    /// Every state the RM can be asked to filter by.
    pub const ALL: [NodeState; 8] = [
        NodeState::New,
        NodeState::Running,
        NodeState::Unhealthy,
        NodeState::Decommissioning,
        NodeState::Decommissioned,
        NodeState::Lost,
        NodeState::Rebooted,
        NodeState::Shutdown,
    ];

    /// The name YARN uses.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::New => "NEW",
            NodeState::Running => "RUNNING",
            NodeState::Unhealthy => "UNHEALTHY",
            NodeState::Decommissioning => "DECOMMISSIONING",
            NodeState::Decommissioned => "DECOMMISSIONED",
            NodeState::Lost => "LOST",
            NodeState::Rebooted => "REBOOTED",
            NodeState::Shutdown => "SHUTDOWN",
            NodeState::Unknown => "UNKNOWN",
        }
    }

    /// Inactive nodes (YARN keeps them in its inactive list; they take no containers).
    pub fn is_inactive(self) -> bool {
        matches!(
            self,
            NodeState::Decommissioned | NodeState::Lost | NodeState::Rebooted | NodeState::Shutdown
        )
    }
}

impl FromStr for NodeState {
    type Err = String;

    fn from_str(text: &str) -> Result<NodeState, String> {
        let upper = text.trim().to_ascii_uppercase();
        NodeState::ALL
            .into_iter()
            .find(|state| state.as_str() == upper)
            .ok_or_else(|| {
                format!(
                    "unknown node state {text:?} (one of {})",
                    NodeState::ALL.map(NodeState::as_str).join(", ")
                )
            })
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node, as `GET /ws/v1/cluster/nodes[/{id}]` describes it (`NodeInfo`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    /// `host:port`.
    pub id: NodeId,
    /// YARN's state of the node.
    pub state: NodeState,
    /// Rack, e.g. `/default-rack`.
    #[serde(default)]
    pub rack: String,
    /// Host name.
    #[serde(default)]
    pub node_host_name: String,
    /// The NM's web address (`host:8042`); empty for an inactive node.
    #[serde(default, rename = "nodeHTTPAddress")]
    pub node_http_address: String,
    /// Last heartbeat with a health report, milliseconds since the epoch.
    #[serde(default, deserialize_with = "jersey::integer")]
    pub last_health_update: i64,
    /// The NM's health checker output.
    #[serde(default)]
    pub health_report: String,
    /// Hadoop version of the NM.
    #[serde(default)]
    pub version: String,
    /// Containers running on the node.
    #[serde(default, deserialize_with = "jersey::integer")]
    pub num_containers: i64,
    /// Memory allocated to containers, MB.
    #[serde(default, rename = "usedMemoryMB", deserialize_with = "jersey::integer")]
    pub used_memory_mb: i64,
    /// Memory not allocated, MB (negative after a shrink below what is allocated).
    #[serde(
        default,
        rename = "availMemoryMB",
        deserialize_with = "jersey::integer"
    )]
    pub avail_memory_mb: i64,
    /// Vcores allocated to containers.
    #[serde(default, deserialize_with = "jersey::integer")]
    pub used_virtual_cores: i64,
    /// Vcores not allocated.
    #[serde(default, deserialize_with = "jersey::integer")]
    pub available_virtual_cores: i64,
    /// YARN node labels of the node.
    #[serde(default, deserialize_with = "jersey::one_or_many")]
    pub node_labels: Vec<String>,
    /// The node's capacity (Hadoop 3.4+ writes it; older RMs leave it out).
    #[serde(default)]
    pub total_resource: Option<ResourceInfo>,
}

impl NodeReport {
    /// The node's YARN capacity: `totalResource` when written, otherwise used + available.
    pub fn capacity(&self) -> Resources {
        match &self.total_resource {
            Some(total) => total.capacity(),
            None => ResourceInfo {
                memory: self.used_memory_mb + self.avail_memory_mb,
                vcores: self.used_virtual_cores + self.available_virtual_cores,
            }
            .capacity(),
        }
    }

    /// What containers hold now.
    pub fn used(&self) -> Resources {
        ResourceInfo {
            memory: self.used_memory_mb,
            vcores: self.used_virtual_cores,
        }
        .capacity()
    }
}

/// `{"nodes":{"node":[...]}}`, with every Jersey form of the list.
#[derive(Debug, Default, Deserialize)]
pub struct NodesAnswer {
    #[serde(default)]
    pub nodes: Option<NodesList>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NodesList {
    #[serde(default, deserialize_with = "jersey::one_or_many")]
    pub node: Vec<NodeReport>,
}

/// `{"node":{...}}`.
#[derive(Debug, Deserialize)]
pub struct NodeAnswer {
    pub node: NodeReport,
}

/// The RM's high-availability state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HaState {
    /// Serving: the only RM that takes writes.
    Active,
    /// Hot spare: redirects everything but `/ws/v1/cluster/info`.
    Standby,
    /// Starting.
    Initializing,
    /// Stopping.
    Stopping,
    /// Anything else.
    #[serde(other)]
    Unknown,
}

/// `GET /ws/v1/cluster/info` (`ClusterInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// The cluster timestamp YARN uses as id.
    #[serde(default, deserialize_with = "jersey::integer")]
    pub id: i64,
    /// Start time, milliseconds since the epoch.
    #[serde(default, deserialize_with = "jersey::integer")]
    pub started_on: i64,
    /// Service state (`STARTED`, ...).
    #[serde(default)]
    pub state: String,
    /// HA state of this RM.
    pub ha_state: HaState,
    /// ZooKeeper connection state of the elector.
    #[serde(default)]
    pub ha_zoo_keeper_connection_state: Option<String>,
    /// RM version.
    #[serde(default)]
    pub resource_manager_version: String,
    /// Hadoop version.
    #[serde(default)]
    pub hadoop_version: String,
    /// The RM state store class.
    #[serde(default)]
    pub rm_state_store_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfoAnswer {
    pub cluster_info: ClusterInfo,
}

/// A cluster node label (`NodeLabelInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLabel {
    /// Label name.
    pub name: String,
    /// Exclusive labels take only containers that ask for them; elastic pools use
    /// non-exclusive labels so idle capacity can be shared.
    #[serde(deserialize_with = "jersey::boolean", default = "exclusive_by_default")]
    pub exclusivity: bool,
}

// YARN's default for a label added without exclusivity.
fn exclusive_by_default() -> bool {
    true
}

/// `{"nodeLabelInfo":[...]}` (`GET /get-node-labels`, `POST /add-node-labels`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeLabelsBody {
    #[serde(default, deserialize_with = "jersey::one_or_many")]
    pub node_label_info: Vec<NodeLabel>,
}

/// `{"nodeToLabels":[{"nodeId":"h:p","labels":[...]}]}` (`POST /replace-node-to-labels`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeToLabelsBody {
    #[serde(default, deserialize_with = "jersey::one_or_many")]
    pub node_to_labels: Vec<NodeToLabels>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeToLabels {
    pub node_id: String,
    #[serde(default, deserialize_with = "jersey::one_or_many")]
    pub labels: Vec<String>,
}

/// `{"resource":{"memory":M,"vCores":N},"overCommitTimeout":T}` (`ResourceOptionInfo`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceOptionBody {
    pub resource: WireResources,
    pub over_commit_timeout: i64,
}

/// Commands of `POST /containers/{id}/signal/{command}` (`SignalContainerCommand`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignalCommand {
    /// Ask the container's JVM for a thread dump.
    OutputThreadDump,
    /// SIGTERM, then SIGKILL after the NM's grace.
    GracefulShutdown,
    /// SIGKILL.
    ForcefulShutdown,
}

impl SignalCommand {
    /// The name in the URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalCommand::OutputThreadDump => "OUTPUT_THREAD_DUMP",
            SignalCommand::GracefulShutdown => "GRACEFUL_SHUTDOWN",
            SignalCommand::ForcefulShutdown => "FORCEFUL_SHUTDOWN",
        }
    }
}

impl FromStr for SignalCommand {
    type Err = String;

    fn from_str(text: &str) -> Result<SignalCommand, String> {
        let all = [
            SignalCommand::OutputThreadDump,
            SignalCommand::GracefulShutdown,
            SignalCommand::ForcefulShutdown,
        ];
        let upper = text.trim().to_ascii_uppercase().replace('-', "_");
        all.into_iter()
            .find(|command| command.as_str() == upper)
            .ok_or_else(|| {
                format!(
                    "unknown signal command {text:?} (one of {})",
                    all.map(SignalCommand::as_str).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_round_trip_and_reject_garbage() {
        let id: NodeId = "nm-7.example.com:45454".parse().expect("valid");
        assert_eq!(id.host(), "nm-7.example.com");
        assert_eq!(id.port(), 45454);
        assert_eq!(id.to_string(), "nm-7.example.com:45454");
        for bad in [
            "",
            "host",
            "host:",
            ":45454",
            "host:port",
            "host:70000",
            "a b:1",
            "a/b:1",
        ] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_hadoop_3_3_node_reads_with_capacity_from_used_plus_available() {
        // Shape of Hadoop 3.3.6's NodeInfo (no totalResource; labels as one string).
        let json = r#"{"node":{"rack":"/default-rack","state":"RUNNING","id":"nm-1:45454",
            "nodeHostName":"nm-1","nodeHTTPAddress":"nm-1:8042","lastHealthUpdate":1700000000000,
            "version":"3.3.6","healthReport":"","numContainers":3,"usedMemoryMB":6144,
            "availMemoryMB":10240,"usedVirtualCores":3,"availableVirtualCores":5,
            "numRunningOpportContainers":0,"usedMemoryOpportGB":0,"usedVirtualCoresOpport":0,
            "numQueuedContainers":0,"nodeLabels":"elastic","allocationTags":{},
            "resourceUtilization":{"nodePhysicalMemoryMB":1000,"nodeCPUUsage":0.25},
            "usedResource":{"memory":6144,"vCores":3}}}"#;
        let answer: NodeAnswer = serde_json::from_str(json).expect("parse");
        let node = answer.node;
        assert_eq!(node.state, NodeState::Running);
        assert_eq!(node.node_labels, vec!["elastic".to_owned()]);
        assert_eq!(
            node.capacity(),
            Resources {
                memory_mb: 16384,
                vcores: 8
            }
        );
        assert_eq!(
            node.used(),
            Resources {
                memory_mb: 6144,
                vcores: 3
            }
        );
    }

    #[test]
    fn total_resource_wins_when_written() {
        let json = r#"{"id":"nm-1:45454","state":"RUNNING","usedMemoryMB":"6144",
            "availMemoryMB":"-2048","usedVirtualCores":"3","availableVirtualCores":"-1",
            "totalResource":{"memory":"4096","vCores":"2"}}"#;
        let node: NodeReport = serde_json::from_str(json).expect("parse");
        assert_eq!(
            node.capacity(),
            Resources {
                memory_mb: 4096,
                vcores: 2
            }
        );
    }

    #[test]
    fn unknown_states_do_not_break_parsing() {
        let node: NodeReport =
            serde_json::from_str(r#"{"id":"a:1","state":"HIBERNATING"}"#).expect("parse");
        assert_eq!(node.state, NodeState::Unknown);
        assert_eq!("decommissioning".parse(), Ok(NodeState::Decommissioning));
        assert!("sleepy".parse::<NodeState>().is_err());
    }

    #[test]
    fn the_resize_body_is_what_rmwebservices_reads() {
        let body = ResourceOptionBody {
            resource: WireResources {
                memory_mb: 8192,
                vcores: 4,
            },
            over_commit_timeout: OverCommitTimeout::Never.wire(),
        };
        assert_eq!(
            serde_json::to_string(&body).expect("serialize"),
            r#"{"resource":{"memory":8192,"vCores":4},"overCommitTimeout":-1}"#
        );
    }
}
