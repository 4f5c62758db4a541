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
pub mod drain;
pub mod guarder_client;
pub mod rate;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use guarder::api::TargetRequest;
use tokio::time::Instant;
use url::Url;

use crate::policy::{
    Decision, DecisionInput, Direction, KeepReason, MeasuredUse, PolicyKind, PolicySettings,
    Resize, ResizePolicy, Resources, decide,
};
use crate::yarn::{Capacity, NodeId, OverCommitTimeout, ResourceManager, RmError};
use availability::{ExporterSource, NodeReading, PrometheusSource, SourceError};
use guarder_client::{GuarderClient, GuarderError, GuarderStatus};
use rate::WriteBudget;

/// Where one NM's parts answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeManagerEndpoints {
    /// Kubernetes node.
    pub node: String,
    /// YARN node id.
    pub yarn_node_id: NodeId,
    /// The node's exporter (`None` with Prometheus).
    pub exporter: Option<Url>,
    /// The NM's guarder.
    pub guarder: Option<Url>,
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

/// The HTTP client towards exporters, Prometheus and guarders: one timeout for connecting and
/// for the whole answer.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
}

/// The reader for a pool's metrics source.
pub fn reader(
    source: &crate::validate::MetricsSource,
    timeout: Duration,
    concurrency: usize,
) -> Result<MetricsReader, reqwest::Error> {
    Ok(match source {
        crate::validate::MetricsSource::Exporter { .. } => {
            MetricsReader::Exporters(ExporterSource::new(timeout, concurrency)?)
        }
        crate::validate::MetricsSource::Prometheus { url } => {
            MetricsReader::Prometheus(PrometheusSource::new(url.clone(), timeout)?)
        }
    })
}

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
    /// Set when the RM could not be read: nothing was decided.
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

#[derive(Clone, Debug)]
struct NodeManagerMemory {
    first_seen: Instant,
    last_grow: Option<u64>,
    last_shrink: Option<u64>,
    reading: Option<(NodeReading, Instant)>,
}

/// One pool's loop.
#[derive(Debug)]
pub struct VerticalLoop<R> {
    settings: LoopSettings,
    policy: Box<dyn ResizePolicy>,
    rm: R,
    metrics: MetricsReader,
    guarder: Option<GuarderClient>,
    memory: HashMap<String, NodeManagerMemory>,
    budget: WriteBudget,
    epoch: Instant,
}

fn to_capacity(r: Resources) -> Capacity {
    Capacity {
        memory_mb: r.memory_mb,
        vcores: r.vcores,
    }
}

fn to_resources(c: Capacity) -> Resources {
    Resources::new(c.vcores, c.memory_mb)
}

enum Step {
    Done(Applied),
    Act {
        resize: Resize,
        rm_write: bool,
        enforced: Option<Resources>,
    },
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
            policy: settings.policy.build(),
            budget: WriteBudget::new(settings.rm_writes_per_second, settings.rm_write_burst),
            settings,
            rm,
            metrics,
            guarder,
            memory: HashMap::new(),
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

    /// Replaces the policy settings (the pool's spec changed).
    pub fn update_settings(&mut self, settings: LoopSettings) {
        if settings.policy != self.settings.policy {
            self.policy = settings.policy.build();
        }
        // A fresh budget only for a new rate: refilling it on every change would let frequent
        // spec edits exceed the rate the admin set.
        if (settings.rm_writes_per_second, settings.rm_write_burst)
            != (
                self.settings.rm_writes_per_second,
                self.settings.rm_write_burst,
            )
        {
            self.budget = WriteBudget::new(settings.rm_writes_per_second, settings.rm_write_burst);
        }
        self.settings = settings;
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
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await
    }

    /// One decision round over `nms`.
    pub async fn tick(&mut self, nms: &[NodeManagerEndpoints]) -> TickReport {
        let now = Instant::now();
        let now_seconds = now.duration_since(self.epoch).as_secs();
        // Forget NMs that left, so that a returning node starts afresh.
        self.memory
            .retain(|node, _| nms.iter().any(|nm| &nm.node == node));
        let reports = match self.rm.nodes(&[]).await {
            Ok(reports) => reports,
            Err(error) => {
                return TickReport {
                    rm_error: Some(error),
                    outcomes: Vec::new(),
                };
            }
        };
        let reports: HashMap<NodeId, _> = reports.into_iter().map(|r| (r.id.clone(), r)).collect();
        let (mut readings, mut statuses) =
            futures::join!(self.metrics.read(nms), self.guarder_statuses(nms));

        let settings = self.settings.settings;
        let mut outcomes = Vec::with_capacity(nms.len());
        let mut steps = Vec::with_capacity(nms.len());
        for nm in nms {
            let memory = self
                .memory
                .entry(nm.node.clone())
                .or_insert_with(|| NodeManagerMemory {
                    first_seen: now,
                    last_grow: None,
                    last_shrink: None,
                    reading: None,
                });
            let read = readings.remove(&nm.node);
            let metrics_error = match read {
                Some(Ok(reading)) => {
                    memory.reading = Some((reading, now));
                    None
                }
                Some(Err(error)) => Some(error.category()),
                None => Some("no_sample"),
            };
            let guarder = statuses.remove(&nm.node).and_then(Result::ok);
            let Some(report) = reports.get(&nm.yarn_node_id) else {
                outcomes.push(NodeManagerOutcome {
                    node: nm.node.clone(),
                    yarn_node_id: nm.yarn_node_id.clone(),
                    capacity: Resources::default(),
                    allocated: Resources::default(),
                    applied: Applied::NotRegistered,
                    reason: None,
                    metrics_age_seconds: None,
                    metrics_error,
                    guarder,
                });
                steps.push(Step::Done(Applied::NotRegistered));
                continue;
            };
            let current = to_resources(report.capacity());
            let allocated = to_resources(report.used());
            // The last reading, aged by the time since it was read.
            let aged = memory.reading.map(|(reading, at)| {
                let mut reading = reading;
                let extra = now.duration_since(at).as_secs();
                reading.availability.age_seconds =
                    reading.availability.age_seconds.saturating_add(extra);
                if let Some(b) = reading.batch_allocatable.as_mut() {
                    b.age_seconds = b.age_seconds.saturating_add(extra);
                }
                reading
            });
            let never_read_for = now.duration_since(memory.first_seen);
            let step = if aged.is_none()
                && never_read_for < Duration::from_secs(settings.shrink_to_floor_after_seconds)
            {
                // Never read yet (a new NM, or the operator just started): hold, as for stale
                // metrics, until the floor rule's time has passed.
                Step::Done(Applied::Kept(KeepReason::StaleMetrics))
            } else {
                let input = DecisionInput {
                    now_seconds,
                    current,
                    allocated,
                    used: guarder.as_ref().map(|g| MeasuredUse {
                        cpu_cores: g.used_vcores,
                        memory_mb: g.used_memory_mb,
                    }),
                    availability: aged.map(|r| r.availability),
                    batch_allocatable: aged.and_then(|r| r.batch_allocatable),
                    foresight: None,
                    last_grow_seconds: memory.last_grow,
                    last_shrink_seconds: memory.last_shrink,
                };
                match decide(self.policy.as_ref(), &settings, &input) {
                    Decision::Keep(reason) => Step::Done(Applied::Kept(reason)),
                    Decision::Resize(resize) => Step::Act {
                        resize,
                        rm_write: resize.capacity != current,
                        enforced: guarder
                            .as_ref()
                            .and_then(|g| g.target)
                            .map(|t| Resources::new(t.vcores, t.memory_mb)),
                    },
                }
            };
            outcomes.push(NodeManagerOutcome {
                node: nm.node.clone(),
                yarn_node_id: nm.yarn_node_id.clone(),
                capacity: current,
                allocated,
                applied: Applied::Kept(KeepReason::Unchanged),
                reason: None,
                metrics_age_seconds: aged.map(|r| r.availability.age_seconds),
                metrics_error,
                guarder,
            });
            steps.push(step);
        }

        // Shrinks take the write budget first: they protect running work.
        let mut order: Vec<usize> = (0..steps.len()).collect();
        order.sort_by_key(|&i| match &steps[i] {
            Step::Act { resize, .. } if resize.direction == Direction::Shrink => 0,
            Step::Act { .. } => 1,
            Step::Done(_) => 2,
        });
        let mut actions = Vec::new();
        for index in order {
            match &steps[index] {
                Step::Done(applied) => outcomes[index].applied = applied.clone(),
                Step::Act {
                    resize,
                    rm_write,
                    enforced,
                } => {
                    if *rm_write && !self.budget.try_take() {
                        outcomes[index].applied = Applied::RateLimited;
                        continue;
                    }
                    actions.push((index, *resize, *rm_write, *enforced));
                }
            }
        }
        let rm = &self.rm;
        let guarder = self.guarder.as_ref();
        let mut applying = Vec::with_capacity(actions.len());
        for (index, resize, rm_write, enforced) in actions {
            let nm = &nms[index];
            let current = outcomes[index].capacity;
            applying.push(async move {
                let applied =
                    apply_resize(rm, guarder, nm, current, resize, rm_write, enforced).await;
                (index, resize, applied)
            });
        }
        let results: Vec<(usize, Resize, Applied)> = futures::stream::iter(applying)
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (index, resize, applied) in results {
            let outcome = &mut outcomes[index];
            if let Applied::Resized { to, direction, .. } = &applied {
                outcome.capacity = *to;
                if let Some(memory) = self.memory.get_mut(&outcome.node) {
                    match direction {
                        Direction::Grow => memory.last_grow = Some(now_seconds),
                        Direction::Shrink => memory.last_shrink = Some(now_seconds),
                    }
                }
            }
            outcome.reason = Some(resize.reason.category());
            outcome.applied = applied;
        }
        TickReport {
            rm_error: None,
            outcomes,
        }
    }
}

/// Applies one resize: the RM first, then the guarder.
async fn apply_resize<R: ResourceManager>(
    rm: &R,
    guarder: Option<&GuarderClient>,
    nm: &NodeManagerEndpoints,
    current: Resources,
    resize: Resize,
    rm_write: bool,
    enforced: Option<Resources>,
) -> Applied {
    if rm_write
        && let Err(error) = rm
            .resize(
                &nm.yarn_node_id,
                to_capacity(resize.capacity),
                OverCommitTimeout::Never,
            )
            .await
    {
        return Applied::Failed {
            category: error.category(),
            message: error.to_string(),
        };
    }
    let target = match resize.direction {
        Direction::Shrink => Some((
            resize.guarder_target.unwrap_or(resize.capacity),
            resize.guarder_deadline_seconds,
        )),
        // Lift a lower target the guarder still enforces, or it would free what the RM now
        // places.
        Direction::Grow => enforced
            .filter(|t| !resize.capacity.fits_in(t))
            .map(|_| (resize.capacity, resize.guarder_deadline_seconds)),
    };
    let mut sent = None;
    if let (Some(client), Some(url), Some((target, deadline))) = (guarder, &nm.guarder, target) {
        let request = TargetRequest {
            vcores: target.vcores,
            memory_mb: target.memory_mb,
            deadline_seconds: deadline,
            reason: resize.reason.category().to_owned(),
        };
        if let Err(error) = client.put_target(url, &request).await {
            return Applied::Failed {
                category: error.category(),
                message: error.to_string(),
            };
        }
        sent = Some(target);
    }
    if rm_write {
        Applied::Resized {
            from: current,
            to: resize.capacity,
            direction: resize.direction,
            guarder_target: sent,
        }
    } else {
        Applied::GuarderOnly {
            target: sent.unwrap_or(resize.capacity),
        }
    }
}

#[cfg(test)]
mod tests;
