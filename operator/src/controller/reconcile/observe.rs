//! Observe: every read of a reconcile, into one [`Observed`] value the pure steps work on —
//! the Kubernetes side first ([`read_cluster`]), then, with the pool's clients, the RM's side
//! ([`with_rm`]).

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, PodStatus};
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::super::datasets::{self, DatasetsReadiness};
use super::super::error::ObserveError;
use super::super::runtime;
use super::super::status::RmReachability;
use super::Context;
use crate::build::PoolRef;
use crate::build::names::{
    self, DRAIN_DEADLINE_ANNOTATION, NODE_ANNOTATION, YARN_NODE_ID_ANNOTATION,
};
use crate::crd::ElasticNodePool;
use crate::vertical::{NodeManagerEndpoints, RM_READ_BUDGET};
use yarn_rm::{NodeId, NodeReport, ResourceManager, RestResourceManager};

/// An NM pod as the plan sees it.
#[derive(Clone, Debug)]
pub(crate) struct PodView {
    pub node: String,
    pub name: String,
    pub uid: Option<String>,
    pub ip: Option<String>,
    pub host_ip: Option<String>,
    pub node_id: Option<NodeId>,
    pub drain_deadline: Option<Timestamp>,
    pub evicted: bool,
    /// Why the pod does not get its NM running, as its status says: the scheduler cannot place
    /// it, its `hadoop-conf` init container fails, an image cannot be pulled, a container
    /// keeps crashing.
    pub not_starting: Option<NotStarting>,
}

/// Why an NM pod does not get its NodeManager running (`PodView::not_starting`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NotStarting {
    /// `Schedule` (the scheduler) or `Start` (the kubelet).
    pub step: &'static str,
    /// `unschedulable`, `init_failed`, or the kubelet's reason in snake case
    /// (`image_pull_back_off`, `crash_loop_back_off`, ...).
    pub category: String,
    /// The scheduler's or the kubelet's message, with the container's name.
    pub message: String,
}

/// Waiting reasons of a container that will not start by waiting longer.
const STUCK_WAITING_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

fn snake_case(reason: &str) -> String {
    let mut text = String::new();
    for (index, character) in reason.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            text.push('_');
        }
        text.push(character.to_ascii_lowercase());
    }
    text
}

fn unschedulable(status: &PodStatus) -> Option<NotStarting> {
    let condition = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    })?;
    Some(NotStarting {
        step: "Schedule",
        category: "unschedulable".to_owned(),
        message: condition
            .message
            .clone()
            .unwrap_or_else(|| "Unschedulable".to_owned()),
    })
}

/// A container waiting for good (a pull that fails, a crash loop, a bad config), or an init
/// container that failed: the kubelet's reason and message.
fn container_stuck(status: &PodStatus) -> Option<NotStarting> {
    let init = status.init_container_statuses.iter().flatten();
    for container in init.clone() {
        if let Some(terminated) = container
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .or_else(|| container.last_state.as_ref()?.terminated.as_ref())
            .filter(|t| t.exit_code != 0)
        {
            return Some(NotStarting {
                step: "Start",
                category: "init_failed".to_owned(),
                message: format!(
                    "init container {} exited with {}: {}",
                    container.name,
                    terminated.exit_code,
                    terminated.message.as_deref().unwrap_or("see its log")
                ),
            });
        }
    }
    let containers = init.chain(status.container_statuses.iter().flatten());
    for container in containers {
        let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let Some(reason) = waiting
            .reason
            .as_deref()
            .filter(|r| STUCK_WAITING_REASONS.contains(r))
        else {
            continue;
        };
        return Some(NotStarting {
            step: "Start",
            category: snake_case(reason),
            message: format!(
                "{}: {reason}: {}",
                container.name,
                waiting.message.as_deref().unwrap_or_default()
            ),
        });
    }
    None
}

impl PodView {
    /// The view of an NM pod of this operator; `None` for a pod without the node annotation.
    pub fn of(pod: &Pod, rpc_port: u16) -> Option<PodView> {
        let annotations = pod.metadata.annotations.as_ref()?;
        let node = annotations.get(NODE_ANNOTATION)?.clone();
        let status = pod.status.as_ref();
        let ip = status.and_then(|s| s.pod_ip.clone());
        let node_id = annotations
            .get(YARN_NODE_ID_ANNOTATION)
            .cloned()
            .or_else(|| ip.as_ref().map(|ip| format!("{ip}:{rpc_port}")))
            .and_then(|text| text.parse().ok());
        Some(PodView {
            node,
            name: pod.name_any(),
            uid: pod.metadata.uid.clone(),
            ip,
            host_ip: status.and_then(|s| s.host_ip.clone()),
            node_id,
            drain_deadline: annotations
                .get(DRAIN_DEADLINE_ANNOTATION)
                .and_then(|t| t.parse().ok()),
            // A pod of restart policy Always fails only when evicted (Koordinator under memory
            // pressure) or lost with its node; it never comes back by itself.
            evicted: status.and_then(|s| s.phase.as_deref()) == Some("Failed"),
            not_starting: status.and_then(|s| unschedulable(s).or_else(|| container_stuck(s))),
        })
    }

    /// Where the loop and the drain reach this NM; `None` until it has a YARN node id. The
    /// guarder is reachable once the pod has an IP.
    pub fn endpoints(
        &self,
        guarder_port: u16,
        exporter_port: Option<u16>,
    ) -> Option<NodeManagerEndpoints> {
        Some(NodeManagerEndpoints {
            node: self.node.clone(),
            yarn_node_id: self.node_id.clone()?,
            exporter: exporter_port.and_then(|port| {
                let host = self.host_ip.as_ref()?;
                url::Url::parse(&format!("http://{host}:{port}/")).ok()
            }),
            guarder: self
                .ip
                .as_ref()
                .and_then(|ip| url::Url::parse(&format!("http://{ip}:{guarder_port}/")).ok()),
            batch_allocatable: None,
        })
    }
}

/// What the RM said at this reconcile.
#[derive(Debug)]
pub(crate) struct RmView {
    /// Whether the active RM answered.
    pub reachability: RmReachability,
    /// Its nodes, by id (empty when it did not answer).
    pub reports: HashMap<NodeId, NodeReport>,
}

impl RmView {
    /// Whether the RM answered.
    pub fn reachable(&self) -> bool {
        self.reachability == RmReachability::Reachable
    }

    /// The RM's report of the NM in `pod`.
    pub fn report_of(&self, pod: &PodView) -> Option<&NodeReport> {
        pod.node_id.as_ref().and_then(|id| self.reports.get(id))
    }
}

/// Everything a reconcile reads.
#[derive(Debug)]
pub(crate) struct Observed {
    /// The cluster's Nodes.
    pub nodes: Vec<Arc<Node>>,
    /// When they were read (the loop's fallback ages from here).
    pub read_at: tokio::time::Instant,
    /// The pool's NM pods.
    pub pods: Vec<PodView>,
    /// Whether the Fluid Datasets the pool mounts are bound.
    pub datasets: DatasetsReadiness,
    /// The RM's view of its nodes.
    pub rm: RmView,
    /// What the pool's vertical loop saw last.
    pub vertical: runtime::Observed,
}

impl Observed {
    /// The NM pod on `node`, if any.
    pub fn pod_on(&self, node: &str) -> Option<&PodView> {
        self.pods.iter().find(|p| p.node == node)
    }

    /// The Node named `name`, if it exists.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(name))
            .map(AsRef::as_ref)
    }
}

/// What the Kubernetes API says of the pool, read before its clients are (re)built.
#[derive(Debug)]
pub(crate) struct Cluster {
    nodes: Vec<Arc<Node>>,
    read_at: tokio::time::Instant,
    pods: Vec<PodView>,
    datasets: DatasetsReadiness,
}

/// Reads the Nodes, the pool's NM pods and the Fluid Datasets it mounts.
pub(crate) async fn read_cluster(
    ctx: &Context,
    pool: &ElasticNodePool,
    pool_ref: &PoolRef,
) -> Result<Cluster, ObserveError> {
    let nodes = read_nodes(ctx).await?;
    let read_at = tokio::time::Instant::now();
    let selector = names::node_manager_selector(&pool_ref.name);
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &pool_ref.namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| ObserveError::Pods { selector, source })?
        .items;
    let rpc_port = pool.spec.node_manager.ports.rpc;
    let datasets = datasets::readiness(
        &datasets::read(&ctx.client, &pool_ref.namespace, &pool.spec.datasets)
            .await
            .map_err(ObserveError::Datasets)?,
    );
    Ok(Cluster {
        nodes,
        read_at,
        pods: pods
            .iter()
            .filter_map(|p| PodView::of(p, rpc_port))
            .collect(),
        datasets,
    })
}

/// The Nodes: from the controller's reflector once it has listed them (a reconcile never plans
/// on a store still empty), else listed.
async fn read_nodes(ctx: &Context) -> Result<Vec<Arc<Node>>, ObserveError> {
    if let Some(store) = &ctx.nodes {
        store
            .wait_until_ready()
            .await
            .map_err(|_| ObserveError::NodeStoreGone)?;
        return Ok(store.state());
    }
    Ok(Api::<Node>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(ObserveError::Nodes)?
        .items
        .into_iter()
        .map(Arc::new)
        .collect())
}

/// Adds the RM's view of its nodes (read with the pool's client) and the vertical loop's.
pub(crate) async fn with_rm(
    cluster: Cluster,
    rm: &RestResourceManager,
    vertical: runtime::Observed,
) -> Observed {
    Observed {
        nodes: cluster.nodes,
        read_at: cluster.read_at,
        pods: cluster.pods,
        datasets: cluster.datasets,
        rm: read_rm(rm).await,
        vertical,
    }
}

/// The RM's nodes, bounded as a whole (see `RM_READ_BUDGET`): an RM that does not answer makes
/// the pool's condition say so, never a stuck reconcile.
async fn read_rm(rm: &RestResourceManager) -> RmView {
    let (reachability, reports) = match tokio::time::timeout(RM_READ_BUDGET, rm.nodes(&[])).await {
        Ok(Ok(reports)) => (
            RmReachability::Reachable,
            reports.into_iter().map(|r| (r.id.clone(), r)).collect(),
        ),
        Ok(Err(error)) => (
            RmReachability::Unreachable(error.category(), error.to_string()),
            HashMap::new(),
        ),
        Err(_) => (
            RmReachability::Unreachable(
                "timeout",
                format!(
                    "the ResourceManager did not list its nodes within {} s",
                    RM_READ_BUDGET.as_secs()
                ),
            ),
            HashMap::new(),
        ),
    };
    RmView {
        reachability,
        reports,
    }
}
