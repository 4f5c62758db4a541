//! The vertical elasticity loop of one pool: every sync interval, read each NM's windowed
//! availability, its capacity and allocation on the RM and its guarder's measured use; run the
//! policy engine; apply in the safe order.
//!
//! * shrink: the RM first (no new containers beyond the new size), then the guarder's target;
//! * grow: the RM first, then the guarder's target is lifted if it enforces a lower one;
//! * stale or missing metrics never grow an NM: it holds, and after `shrinkToFloorAfterSeconds`
//!   goes to the floor (the engine's shared rules);
//! * RM writes go through a token bucket; shrinks take it before grows.
//!
//! The loop talks to explicit endpoints (an RM, exporter URLs, guarder URLs), so it runs the same
//! under the controller, under `elastic-yarn-operator vertical` without Kubernetes, and in tests.

pub mod availability;
pub mod decisions;
pub mod drain;
pub mod guarder_client;
pub mod rate;
pub mod shares;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use url::Url;
use yarn_types::TargetRequest;

use crate::policy::{
    BatchAllocatable, Direction, KeepReason, MeasuredUse, PolicyKind, PolicySettings, Resources,
};
use availability::{ExporterSource, NodeReading, PrometheusSource, SourceError};
use decisions::{GuarderView, LoopCore, NmCommands, Observation, Planned, RmView};
use guarder_client::{GuarderClient, GuarderError, GuarderStatus};
use yarn_rm::{NodeId, OverCommitTimeout, ResourceManager, RmError};

/// Where one NM's parts answer, and what its Node object says.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeManagerEndpoints {
    /// Kubernetes node.
    pub node: String,
    /// YARN node id.
    pub yarn_node_id: NodeId,
    /// The node's exporter (`None` with Prometheus).
    pub exporter: Option<Url>,
    /// The NM's guarder.
    pub guarder: Option<Url>,
    /// Koordinator's batch allocatable from the Node object and when it was read (`None`:
    /// unknown, e.g. `vertical` without Kubernetes; the exporter's copy is used then).
    pub batch_allocatable: Option<(BatchAllocatable, Instant)>,
}

/// Where availability comes from.
#[derive(Clone, Debug)]
pub enum MetricsReader {
    /// Each node's exporter.
    Exporters(ExporterSource),
    /// Prometheus.
    Prometheus(PrometheusSource),
}

impl MetricsReader {
    async fn read(
        &self,
        nms: &[NodeManagerEndpoints],
    ) -> BTreeMap<String, Result<NodeReading, SourceError>> {
        match self {
            MetricsReader::Exporters(source) => {
                let nodes: Vec<(String, Option<Url>)> = nms
                    .iter()
                    .map(|nm| (nm.node.clone(), nm.exporter.clone()))
                    .collect();
                source.read_all(&nodes).await
            }
            MetricsReader::Prometheus(source) => {
                let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
                match source.read_all(now).await {
                    Ok(readings) => readings,
                    // Prometheus down: every node is without a reading this tick.
                    Err(error) => nms
                        .iter()
                        .map(|nm| (nm.node.clone(), Err(error.clone())))
                        .collect(),
                }
            }
        }
    }
}

/// How long one read of the RM's node list may take, retries included, in a tick of the loop
/// and in a reconcile. An RM that accepts connections and answers nothing would otherwise hold
/// each of them through every retry (some 45 s), and with them the guarders' protection, the
/// removals and the status.
pub const RM_READ_BUDGET: Duration = Duration::from_secs(10);

/// The HTTP client towards exporters, Prometheus and guarders: one timeout for connecting and
/// for the whole answer.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    controlkit::process::http_client()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
}

/// The reader for a pool's metrics source.
pub fn reader(
    source: &crate::validate::MetricsSource,
    timeout: Duration,
    concurrency: usize,
    egress: Option<&std::sync::Arc<controlkit::egress::EgressPolicy>>,
) -> Result<MetricsReader, reqwest::Error> {
    Ok(match source {
        crate::validate::MetricsSource::Exporter { .. } => {
            MetricsReader::Exporters(ExporterSource::new(timeout, concurrency)?)
        }
        crate::validate::MetricsSource::Prometheus { url } => {
            MetricsReader::Prometheus(PrometheusSource::with_egress(url.clone(), timeout, egress)?)
        }
    })
}

/// RM writes per second a pool's loop may make, unless the installation says otherwise.
pub const DEFAULT_RM_WRITES_PER_SECOND: f64 = 20.0;
/// RM writes a pool's loop may make at once, unless the installation says otherwise.
pub const DEFAULT_RM_WRITE_BURST: u32 = 50;

/// Settings of one pool's loop.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopSettings {
    /// Resize policy.
    pub policy: PolicyKind,
    /// Its settings (bounds, thresholds, staleness, grace period).
    pub settings: PolicySettings,
    /// Average RM writes per second.
    pub rm_writes_per_second: f64,
    /// RM writes allowed at once.
    pub rm_write_burst: u32,
    /// Guarder and exporter requests in flight at once.
    pub concurrency: usize,
}

/// What happened to one NM in a tick.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    /// Nothing to do.
    Kept(KeepReason),
    /// Not registered with the RM (yet).
    NotRegistered,
    /// The RM could not be read and never was for this NM: nothing is known of it.
    Unknown,
    /// The RM took the new capacity; the guarder got its target when it had to.
    Resized {
        /// Before.
        from: Resources,
        /// After.
        to: Resources,
        /// Grow or shrink.
        direction: Direction,
        /// Target sent to the guarder, if one was.
        guarder_target: Option<Resources>,
    },
    /// Only the guarder acted (containers hold more than the node sustains).
    GuarderOnly {
        /// What containers may keep.
        target: Resources,
    },
    /// The RM could not be read; the guarder was told what containers may keep.
    Protected {
        /// What containers may keep.
        target: Resources,
    },
    /// The guarder lacked the target it should hold (restarted, a request lost) or held one no
    /// longer wanted: it was sent again.
    GuarderRestored {
        /// The target it holds now.
        target: Resources,
    },
    /// The write budget was spent; retried next tick.
    RateLimited,
    /// A call failed.
    Failed {
        /// Stable category.
        category: &'static str,
        /// Detail.
        message: String,
    },
}

/// One NM after a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeManagerOutcome {
    /// Kubernetes node.
    pub node: String,
    /// YARN node id.
    pub yarn_node_id: NodeId,
    /// Capacity on the RM after the tick.
    pub capacity: Resources,
    /// Resources YARN allocated.
    pub allocated: Resources,
    /// What was done.
    pub applied: Applied,
    /// The policy's reason, when it resized.
    pub reason: Option<&'static str>,
    /// Age of the availability used, seconds (`None`: never read).
    pub metrics_age_seconds: Option<u64>,
    /// Why this tick's read failed, if it did.
    pub metrics_error: Option<&'static str>,
    /// The guarder's status, if read.
    pub guarder: Option<GuarderStatus>,
}

/// Everything a tick did.
#[derive(Debug, Default)]
pub struct TickReport {
    /// Set when the RM could not be read: nothing was written to it, and the decisions used the
    /// last capacity seen.
    pub rm_error: Option<RmError>,
    /// One row per NM.
    pub outcomes: Vec<NodeManagerOutcome>,
}

impl TickReport {
    /// NMs whose metrics were fresh.
    pub fn fresh_metrics(&self, stale_after_seconds: u64) -> usize {
        self.outcomes
            .iter()
            .filter(|o| {
                o.metrics_age_seconds
                    .is_some_and(|a| a <= stale_after_seconds)
            })
            .count()
    }
}

/// One pool's loop: reads, asks [`LoopCore`], carries out its commands.
#[derive(Debug)]
pub struct VerticalLoop<R> {
    core: LoopCore,
    rm: R,
    metrics: MetricsReader,
    guarder: Option<GuarderClient>,
    epoch: Instant,
}

fn to_capacity(r: Resources) -> Resources {
    Resources {
        memory_mb: r.memory_mb,
        vcores: r.vcores,
    }
}

fn to_resources(c: Resources) -> Resources {
    Resources::new(c.vcores, c.memory_mb)
}

fn target_resources(target: &TargetRequest) -> Resources {
    Resources::new(target.vcores, target.memory_mb)
}

/// The core's view of a guarder's answer.
fn guarder_view(status: Option<&Result<GuarderStatus, GuarderError>>) -> GuarderView {
    match status {
        None => GuarderView::Absent,
        Some(Err(_)) => GuarderView::Unreachable,
        Some(Ok(status)) => GuarderView::Status {
            target: status
                .target
                .as_ref()
                .map(|t| Resources::new(t.vcores, t.memory_mb)),
            used: MeasuredUse {
                cpu_cores: status.used_vcores,
                memory_mb: status.used_memory_mb,
            },
        },
    }
}

impl<R: ResourceManager> VerticalLoop<R> {
    /// A loop for one pool.
    pub fn new(
        settings: LoopSettings,
        rm: R,
        metrics: MetricsReader,
        guarder: Option<GuarderClient>,
    ) -> VerticalLoop<R> {
        VerticalLoop {
            core: LoopCore::new(settings),
            rm,
            metrics,
            guarder,
            epoch: Instant::now(),
        }
    }

    /// The RM client.
    pub fn resource_manager(&self) -> &R {
        &self.rm
    }

    /// The guarder client.
    pub fn guarder_client(&self) -> Option<&GuarderClient> {
        self.guarder.as_ref()
    }

    /// The decisions' state machine.
    pub fn core_mut(&mut self) -> &mut LoopCore {
        &mut self.core
    }

    /// Replaces the policy settings (the pool's spec changed).
    pub fn update_settings(&mut self, settings: LoopSettings) {
        self.core.update_settings(settings);
    }

    async fn guarder_statuses(
        &self,
        nms: &[NodeManagerEndpoints],
    ) -> HashMap<String, Result<GuarderStatus, GuarderError>> {
        let Some(client) = &self.guarder else {
            return HashMap::new();
        };
        // Futures built in a loop, not in a closure: the stream stays `Send` for any caller.
        let mut reads = Vec::new();
        for nm in nms {
            if let Some(url) = nm.guarder.clone() {
                let node = nm.node.clone();
                reads.push(async move { (node, client.status(&url).await) });
            }
        }
        futures::stream::iter(reads)
            .buffer_unordered(self.core.settings().concurrency.max(1))
            .collect()
            .await
    }

    /// One decision round over `nms`: read everything, decide, write the RM then the guarders.
    pub async fn tick(&mut self, nms: &[NodeManagerEndpoints]) -> TickReport {
        self.tick_sharing(nms, &HashMap::new()).await
    }

    /// [`VerticalLoop::tick`] for NMs on nodes where other pools' NMs hold `held_by_others`
    /// (by node): each node's availability is what remains (see [`shares`]).
    pub async fn tick_sharing(
        &mut self,
        nms: &[NodeManagerEndpoints],
        held_by_others: &HashMap<String, Resources>,
    ) -> TickReport {
        let now = Instant::now();
        let now_seconds = now.duration_since(self.epoch).as_secs();
        let rm_read = async {
            tokio::time::timeout(RM_READ_BUDGET, self.rm.nodes(&[]))
                .await
                .unwrap_or_else(|_| {
                    Err(RmError::Timeout {
                        address: "the active ResourceManager".to_owned(),
                        seconds: RM_READ_BUDGET.as_secs_f64(),
                    })
                })
        };
        let (reports, (mut readings, mut statuses)) = futures::join!(rm_read, async {
            futures::join!(self.metrics.read(nms), self.guarder_statuses(nms))
        });
        let (reports, rm_error) = match reports {
            Ok(reports) => (
                Some(
                    reports
                        .into_iter()
                        .map(|r| (r.id.clone(), r))
                        .collect::<HashMap<NodeId, _>>(),
                ),
                None,
            ),
            Err(error) => (None, Some(error)),
        };
        let held = |node: &str| held_by_others.get(node).copied().unwrap_or_default();
        let observations: Vec<Observation> = nms
            .iter()
            .map(|nm| Observation {
                node: nm.node.clone(),
                rm: match &reports {
                    None => RmView::Unreadable,
                    Some(reports) => match reports.get(&nm.yarn_node_id) {
                        Some(report) => RmView::Registered {
                            capacity: to_resources(report.capacity()),
                            allocated: to_resources(report.used()),
                        },
                        None => RmView::NotRegistered,
                    },
                },
                reading: match readings.remove(&nm.node) {
                    Some(Ok(reading)) => Ok(shares::less(reading, held(&nm.node))),
                    Some(Err(error)) => Err(error.category()),
                    None => Err("no_sample"),
                },
                guarder: guarder_view(statuses.get(&nm.node)),
                node_allocatable: nm.batch_allocatable.map(|(allocatable, read_at)| {
                    let mut allocatable = allocatable;
                    allocatable.age_seconds = allocatable
                        .age_seconds
                        .saturating_add(now.saturating_duration_since(read_at).as_secs());
                    shares::allocatable_less(allocatable, held(&nm.node))
                }),
                foresight: None,
            })
            .collect();
        let commands = self.core.plan(now_seconds, &observations);

        let rm = &self.rm;
        let guarder = self.guarder.as_ref();
        let mut applying = Vec::with_capacity(commands.len());
        for (nm, commands) in nms.iter().zip(&commands) {
            applying.push(async move { (carry_out(rm, guarder, nm, commands).await, commands) });
        }
        let applied: Vec<(Applied, &NmCommands)> = futures::stream::iter(applying)
            .buffered(self.core.settings().concurrency.max(1))
            .collect()
            .await;
        let mut outcomes = Vec::with_capacity(applied.len());
        for ((applied, commands), nm) in applied.into_iter().zip(nms) {
            let mut capacity = commands.capacity;
            if let Applied::Resized { to, direction, .. } = &applied {
                capacity = *to;
                self.core.rm_written(&nm.node, *direction, now_seconds);
            }
            outcomes.push(NodeManagerOutcome {
                node: nm.node.clone(),
                yarn_node_id: nm.yarn_node_id.clone(),
                capacity,
                allocated: commands.allocated,
                reason: planned_reason(&commands.planned),
                applied,
                metrics_age_seconds: commands.metrics_age_seconds,
                metrics_error: commands.metrics_error,
                guarder: statuses.remove(&nm.node).and_then(Result::ok),
            });
        }
        TickReport { rm_error, outcomes }
    }
}

/// The policy's reason behind a plan, for events and metrics.
fn planned_reason(planned: &Planned) -> Option<&'static str> {
    match planned {
        Planned::Resize { reason, .. }
        | Planned::GuarderOnly { reason }
        | Planned::ProtectWithoutRm { reason } => Some(reason.category()),
        _ => None,
    }
}

/// Carries out one NM's commands: the RM first, then the guarder, never the guarder after a
/// failed RM write (the next tick decides again).
async fn carry_out<R: ResourceManager>(
    rm: &R,
    guarder: Option<&GuarderClient>,
    nm: &NodeManagerEndpoints,
    commands: &NmCommands,
) -> Applied {
    if let Some(capacity) = commands.rm_capacity
        && let Err(error) = rm
            .resize(
                &nm.yarn_node_id,
                to_capacity(capacity),
                OverCommitTimeout::Never,
            )
            .await
    {
        return Applied::Failed {
            category: error.category(),
            message: error.to_string(),
        };
    }
    let mut sent = None;
    if let (Some(client), Some(url), Some(target)) =
        (guarder, &nm.guarder, &commands.guarder_target)
    {
        if let Err(error) = client.put_target(url, target).await {
            return Applied::Failed {
                category: error.category(),
                message: error.to_string(),
            };
        }
        sent = Some(target_resources(target));
    }
    match (commands.planned, sent) {
        (
            Planned::Resize {
                from,
                to,
                direction,
                ..
            },
            _,
        ) => Applied::Resized {
            from,
            to,
            direction,
            guarder_target: sent,
        },
        (Planned::GuarderOnly { .. }, Some(target)) => Applied::GuarderOnly { target },
        (Planned::ProtectWithoutRm { .. }, Some(target)) => Applied::Protected { target },
        (_, Some(target)) => Applied::GuarderRestored { target },
        (Planned::Kept(reason), None) => Applied::Kept(reason),
        (Planned::NotRegistered, None) => Applied::NotRegistered,
        (Planned::RateLimited, None) => Applied::RateLimited,
        (Planned::Unknown, None) => Applied::Unknown,
        // The guarder already held the target the plan wanted.
        (Planned::GuarderOnly { .. } | Planned::ProtectWithoutRm { .. }, None) => {
            Applied::Kept(KeepReason::Unchanged)
        }
    }
}

#[cfg(test)]
mod tests;
