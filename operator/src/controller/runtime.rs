//! What the operator keeps per pool between reconciles: the RM client, the guarder client and
//! the vertical loop running as a task, fed with the pool's NMs by each reconcile.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::metrics::{DecisionLabels, FailureLabels, NodeManagerLabels, OperatorMetrics};
use super::third_party;
use crate::build::names::FIELD_MANAGER;
use crate::policy::{Direction, Resources};
use crate::vertical::guarder_client::GuarderClient;
use crate::vertical::{
    Applied, LoopSettings, NodeManagerEndpoints, NodeManagerOutcome, VerticalLoop,
};
use crate::vertical::{MetricsReader, TickReport};
use yarn_rm::{RestResourceManager, RmError};

/// What the loop saw last, for the pool's status.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Last outcome per Kubernetes node.
    pub outcomes: BTreeMap<String, NodeManagerOutcome>,
    /// The RM error of the last tick, if any.
    pub rm_error: Option<(&'static str, String)>,
    /// Ticks run.
    pub ticks: u64,
}

/// Where the loop reports: Events on the pool, metrics, node annotations.
#[derive(Clone)]
pub struct LoopHooks {
    /// Publishes Events on the pool (`None` without a cluster).
    pub recorder: Option<(Recorder, ObjectReference)>,
    /// Nodes, for the `ThirdParty` accounting annotation (`None`: `PodRequests` mode).
    pub third_party: Option<(Api<Node>, String)>,
    /// Metrics.
    pub metrics: OperatorMetrics,
    /// `<namespace>/<pool>`, the `pool` label of per-NM series.
    pub pool: String,
    /// The leader Lease the loop acts under (`None`: no election).
    pub leadership: Option<controlkit::leader::Leadership>,
    /// What every pool's NMs hold per node, shared by all pools' loops.
    pub shares: crate::vertical::shares::NodeShares,
}

impl std::fmt::Debug for LoopHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopHooks")
            .field(
                "third_party",
                &self.third_party.as_ref().map(|(_, name)| name),
            )
            .finish_non_exhaustive()
    }
}

/// One pool's running parts.
#[derive(Debug)]
pub struct PoolRuntime {
    /// The RM client, shared with the loop.
    pub rm: Arc<RestResourceManager>,
    /// The guarder client.
    pub guarder: GuarderClient,
    /// What the runtime was built from; a change rebuilds it.
    pub fingerprint: String,
    /// The NMs the loop sizes.
    pub endpoints: watch::Sender<Vec<NodeManagerEndpoints>>,
    /// Loop settings (the spec may change them).
    pub settings: watch::Sender<(LoopSettings, Duration)>,
    /// What the loop saw.
    pub observed: Arc<Mutex<Observed>>,
    /// The pool's YARN label exists on the RM.
    pub label_ensured: bool,
    task: JoinHandle<()>,
}

impl Drop for PoolRuntime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PoolRuntime {
    /// Starts a pool's loop.
    pub fn start(
        rm: Arc<RestResourceManager>,
        guarder: GuarderClient,
        metrics: MetricsReader,
        settings: LoopSettings,
        interval: Duration,
        fingerprint: String,
        hooks: LoopHooks,
    ) -> PoolRuntime {
        let (endpoints, endpoints_rx) = watch::channel(Vec::new());
        let (settings_tx, settings_rx) = watch::channel((settings.clone(), interval));
        let observed = Arc::new(Mutex::new(Observed::default()));
        let looper = VerticalLoop::new(settings, rm.clone(), metrics, Some(guarder.clone()));
        let task = tokio::spawn(run_loop(
            looper,
            endpoints_rx,
            settings_rx,
            observed.clone(),
            hooks,
        ));
        PoolRuntime {
            rm,
            guarder,
            fingerprint,
            endpoints,
            settings: settings_tx,
            observed,
            label_ensured: false,
            task,
        }
    }
}

fn decision_labels(applied: &Applied, reason: Option<&'static str>) -> DecisionLabels {
    let outcome = match applied {
        Applied::Kept(keep) => {
            return DecisionLabels {
                outcome: "keep",
                reason: keep.category(),
            };
        }
        Applied::NotRegistered => "not_registered",
        Applied::Unknown => "unknown",
        Applied::Resized {
            direction: Direction::Grow,
            ..
        } => "grow",
        Applied::Resized { .. } => "shrink",
        Applied::GuarderOnly { .. } => "guarder_only",
        Applied::Protected { .. } => "protected_without_rm",
        Applied::GuarderRestored { .. } => "guarder_restored",
        Applied::RateLimited => "rate_limited",
        Applied::Failed { .. } => "failed",
    };
    DecisionLabels {
        outcome,
        reason: reason.unwrap_or("none"),
    }
}

fn resize_event(outcome: &NodeManagerOutcome) -> Option<Event> {
    let note = |text: String| Some(text.chars().take(1000).collect::<String>());
    match &outcome.applied {
        Applied::Resized {
            from,
            to,
            direction,
            guarder_target,
        } => Some(Event {
            type_: EventType::Normal,
            reason: match direction {
                Direction::Grow => "NodeManagerGrown",
                Direction::Shrink => "NodeManagerShrunk",
            }
            .to_owned(),
            note: note(format!(
                "{} ({}): {from} -> {to} ({}){}",
                outcome.node,
                outcome.yarn_node_id,
                outcome.reason.unwrap_or("none"),
                guarder_target
                    .map(|t| format!("; guarder target {t}"))
                    .unwrap_or_default()
            )),
            action: "Resize".to_owned(),
            secondary: None,
        }),
        Applied::GuarderOnly { target } => Some(Event {
            type_: EventType::Normal,
            reason: "ContainersFreed".to_owned(),
            note: note(format!(
                "{}: running containers held more than the node sustains; guarder target {target}",
                outcome.node
            )),
            action: "Resize".to_owned(),
            secondary: None,
        }),
        Applied::Protected { target } => Some(Event {
            type_: EventType::Warning,
            reason: "ProtectedWithoutRm".to_owned(),
            note: note(format!(
                "{}: the RM cannot be read; running containers held more than the node \
                 sustains; guarder target {target}",
                outcome.node
            )),
            action: "Resize".to_owned(),
            secondary: None,
        }),
        Applied::GuarderRestored { target } => Some(Event {
            type_: EventType::Normal,
            reason: "GuarderTargetRestored".to_owned(),
            note: note(format!(
                "{}: the guarder did not hold the target it should (restarted, or a request \
                 was lost); sent {target}",
                outcome.node
            )),
            action: "Resize".to_owned(),
            secondary: None,
        }),
        Applied::Failed { category, message } => Some(Event {
            type_: EventType::Warning,
            reason: "ResizeFailed".to_owned(),
            note: note(format!("{} [{category}]: {message}", outcome.node)),
            action: "Resize".to_owned(),
            secondary: None,
        }),
        _ => None,
    }
}

async fn record(report: &TickReport, hooks: &LoopHooks, written: &mut BTreeMap<String, Resources>) {
    if let Some(error) = &report.rm_error {
        hooks
            .metrics
            .failures
            .get_or_create(&FailureLabels {
                category: error.category(),
            })
            .inc();
    }
    if report.outcomes.is_empty() {
        tracing::debug!(pool = %hooks.pool, "tick: no NodeManager to size");
    }
    for outcome in &report.outcomes {
        tracing::debug!(
            pool = %hooks.pool,
            node = %outcome.node,
            capacity = %outcome.capacity,
            applied = ?outcome.applied,
            reason = outcome.reason.unwrap_or("none"),
            "tick"
        );
        for (kind, resources) in [
            ("capacity", outcome.capacity),
            ("allocated", outcome.allocated),
        ] {
            let labels = NodeManagerLabels {
                pool: hooks.pool.clone(),
                node: outcome.node.clone(),
                kind,
            };
            hooks
                .metrics
                .node_manager_vcores
                .get_or_create(&labels)
                .set(i64::from(resources.vcores));
            let bytes = resources.memory_mb.saturating_mul(1 << 20);
            hooks
                .metrics
                .node_manager_memory
                .get_or_create(&labels)
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        hooks
            .metrics
            .decisions
            .get_or_create(&decision_labels(&outcome.applied, outcome.reason))
            .inc();
        if let (Some((recorder, reference)), Some(event)) = (&hooks.recorder, resize_event(outcome))
            && let Err(error) = recorder.publish(&event, reference).await
        {
            tracing::warn!(%error, "cannot publish a resize Event");
        }
        if let Some((nodes, name)) = &hooks.third_party
            && outcome.applied != Applied::NotRegistered
            && written.get(&outcome.node) != Some(&outcome.allocated)
        {
            match write_allocation(nodes, name, &outcome.node, Some(outcome.allocated)).await {
                Ok(()) => {
                    written.insert(outcome.node.clone(), outcome.allocated);
                }
                Err(error) => {
                    tracing::warn!(%error, node = %outcome.node, "cannot write thirdPartyAllocations");
                    hooks
                        .metrics
                        .failures
                        .get_or_create(&FailureLabels {
                            category: "third_party_annotation",
                        })
                        .inc();
                }
            }
        }
    }
}

/// Sets (or with `None` removes) the pool's entry in a node's `thirdPartyAllocations`. The
/// patch carries the `resourceVersion` read, so a concurrent writer makes it fail, not vanish.
pub async fn write_allocation(
    nodes: &Api<Node>,
    name: &str,
    node: &str,
    allocated: Option<Resources>,
) -> Result<(), kube::Error> {
    let current = nodes.get_metadata(node).await?;
    let existing = current
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(third_party::ANNOTATION))
        .map(String::as_str);
    let value = third_party::updated(existing, name, allocated);
    if existing == Some(value.as_str()) {
        return Ok(());
    }
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": current.metadata.resource_version,
            "annotations": { third_party::ANNOTATION: value }
        }
    });
    nodes
        .patch_metadata(
            node,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(&patch),
        )
        .await
        .map(|_| ())
}

/// The loop of one pool: a tick every sync interval on its own clock. Reconciles may change the
/// settings or the NMs at any rate (every Node event reconciles every pool); neither restarts
/// the wait for the next tick, or frequent node updates would keep the loop from ever ticking.
async fn run_loop(
    mut looper: VerticalLoop<Arc<RestResourceManager>>,
    endpoints: watch::Receiver<Vec<NodeManagerEndpoints>>,
    mut settings: watch::Receiver<(LoopSettings, Duration)>,
    shared: Arc<Mutex<Observed>>,
    hooks: LoopHooks,
) {
    let mut written = BTreeMap::new();
    let mut period = settings.borrow().1;
    let mut clock = tick_clock(period);
    loop {
        tokio::select! {
            _ = clock.tick() => {}
            changed = settings.changed() => {
                if changed.is_err() {
                    return;
                }
                let (new_settings, new_period) = settings.borrow_and_update().clone();
                looper.update_settings(new_settings);
                if new_period != period {
                    period = new_period;
                    clock = tick_clock(period);
                }
                continue;
            }
        }
        let nms = endpoints.borrow().clone();
        // No NMs, or a leadership gone stale (the process was frozen): nothing is done.
        let stale = hooks.leadership.as_ref().is_some_and(|l| !l.is_current());
        if nms.is_empty() || stale {
            continue;
        }
        // Nodes shared with other pools offer this pool only what the others do not hold.
        let held_by_others: HashMap<String, Resources> = nms
            .iter()
            .map(|nm| {
                let held = hooks.shares.held_by_others(&hooks.pool, &nm.node);
                (nm.node.clone(), held)
            })
            .filter(|(_, held)| *held != Resources::default())
            .collect();
        let report = looper.tick_sharing(&nms, &held_by_others).await;
        for outcome in &report.outcomes {
            let holds = match outcome.applied {
                Applied::NotRegistered => Resources::default(),
                _ => outcome.capacity,
            };
            hooks.shares.record(&hooks.pool, &outcome.node, holds);
        }
        // NMs gone from this pool hold nothing any more.
        for node in hooks.shares.nodes_of(&hooks.pool) {
            if !nms.iter().any(|nm| nm.node == node) {
                hooks
                    .shares
                    .record(&hooks.pool, &node, Resources::default());
            }
        }
        hooks
            .metrics
            .loop_ticks
            .get_or_create(&super::metrics::PoolLabels {
                pool: hooks.pool.clone(),
            })
            .inc();
        record(&report, &hooks, &mut written).await;
        let mut observed = yarn_rm::lock(&shared);
        observed.ticks += 1;
        observed.rm_error = report
            .rm_error
            .as_ref()
            .map(|e: &RmError| (e.category(), e.to_string()));
        // Without the RM the outcomes still say what the guarders and metrics did.
        observed.outcomes = report
            .outcomes
            .into_iter()
            .map(|o| (o.node.clone(), o))
            .collect();
    }
}

/// A clock ticking every `period`, first one period from now; a tick that ran late delays the
/// next rather than bunching them up.
fn tick_clock(period: Duration) -> tokio::time::Interval {
    let mut clock = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    clock
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;
    use crate::vertical::{Applied, NodeManagerOutcome};

    #[tokio::test]
    async fn each_tick_publishes_every_nodemanagers_capacity_and_allocation() {
        let metrics = OperatorMetrics::default();
        let hooks = LoopHooks {
            recorder: None,
            third_party: None,
            metrics: metrics.clone(),
            pool: "yarn/nightly".to_owned(),
            leadership: None,
            shares: crate::vertical::shares::NodeShares::default(),
        };
        let report = TickReport {
            rm_error: None,
            outcomes: vec![NodeManagerOutcome {
                node: "worker-7".to_owned(),
                yarn_node_id: "10.0.0.7:45454".parse().unwrap(),
                capacity: Resources::new(12, 49_152),
                allocated: Resources::new(5, 20_480),
                applied: Applied::NotRegistered,
                reason: None,
                metrics_age_seconds: Some(3),
                metrics_error: None,
                guarder: None,
            }],
        };
        record(&report, &hooks, &mut BTreeMap::new()).await;
        let mut text = String::new();
        encode(&mut text, &metrics.registry()).unwrap();
        for line in [
            "elastic_yarn_operator_node_manager_vcores{pool=\"yarn/nightly\",node=\"worker-7\",kind=\"capacity\"} 12",
            "elastic_yarn_operator_node_manager_vcores{pool=\"yarn/nightly\",node=\"worker-7\",kind=\"allocated\"} 5",
            "elastic_yarn_operator_node_manager_memory_bytes{pool=\"yarn/nightly\",node=\"worker-7\",kind=\"capacity\"} 51539607552",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }
}
