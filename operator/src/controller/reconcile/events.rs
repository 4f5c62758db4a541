//! What a reconcile tells about its pool: Events, and the NMs whose step failed (for their
//! status rows). One NM's failure is reported here and the pool goes on.

use std::collections::BTreeMap;

use kube::Resource;
use kube::runtime::events::EventType;

use super::Context;
use crate::crd::{ElasticNodePool, NodeManagerProblem};

/// The Events and step problems of one reconcile of one pool.
#[derive(Debug)]
pub(crate) struct PoolEvents<'a> {
    ctx: &'a Context,
    pool: &'a ElasticNodePool,
    /// Per node, the NM step that failed in this reconcile.
    problems: BTreeMap<String, NodeManagerProblem>,
}

impl<'a> PoolEvents<'a> {
    /// Events on `pool`; no problem yet.
    pub fn new(ctx: &'a Context, pool: &'a ElasticNodePool) -> Self {
        PoolEvents {
            ctx,
            pool,
            problems: BTreeMap::new(),
        }
    }

    /// A Normal Event.
    pub async fn normal(&self, reason: &str, note: String) {
        self.publish(EventType::Normal, reason, note).await;
    }

    /// A Warning Event.
    pub async fn warning(&self, reason: &str, note: String) {
        self.publish(EventType::Warning, reason, note).await;
    }

    async fn publish(&self, type_: EventType, reason: &str, note: String) {
        controlkit::events::publish(
            self.ctx.recorder.as_ref(),
            &self.pool.object_ref(&()),
            type_,
            reason,
            note,
        )
        .await;
    }

    /// One NM's step failed: a Warning Event naming it, a failure counted, and the problem on
    /// its status row.
    pub async fn node_manager_failed(
        &mut self,
        node: &str,
        reason: &str,
        category: &'static str,
        error: &(dyn std::fmt::Display + Sync),
    ) {
        self.ctx
            .metrics
            .failures
            .get_or_create(&controlkit::report::FailureLabels { category })
            .inc();
        self.problems.insert(
            node.to_owned(),
            NodeManagerProblem {
                step: reason.trim_end_matches("Failed").to_owned(),
                category: category.to_owned(),
                message: error.to_string(),
            },
        );
        tracing::warn!(%node, %error, category, reason, "NodeManager step failed");
        self.warning(reason, format!("{node} [{category}]: {error}"))
            .await;
    }

    /// The NM step problems of this reconcile, by node.
    pub fn problems(&self) -> &BTreeMap<String, NodeManagerProblem> {
        &self.problems
    }
}
