//! The YARN ResourceManager client the operator and the `yarn` admin commands share.
//!
//! * [`ResourceManager`] — what the operator asks of YARN, behind a trait so that another
//!   backend (YARN's admin RPC on port 8033) can be added without touching callers.
//! * [`RestResourceManager`] — the REST backend (`/ws/v1/cluster`): HA with failover, simple,
//!   Kerberos (SPNEGO) and delegation-token authentication, timeouts, retries with jitter,
//!   bounded concurrency, metrics.
//! * [`model`] — RMWebServices' objects, read with every Jersey quirk ([`jersey`]).
//! * [`double`] — an RM on loopback that answers as RMWebServices does, for tests, benchmarks
//!   and trying the admin commands.

pub mod auth;
pub mod error;
pub mod jersey;
pub mod metrics;
pub mod model;
pub mod rest;
pub mod retry;
pub mod tls;

use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

use yarn_types::ContainerId;

pub use auth::{KerberosEnvironment, RmAuth, Secret};
pub use error::{RemoteException, RmError};
pub use metrics::RmMetrics;
pub use model::{
    ClusterInfo, HaState, NodeId, NodeLabel, NodeReport, NodeState, OverCommitTimeout, Resources,
    SignalCommand,
};
pub use rest::{RestResourceManager, RestSettings};
pub use retry::RetryPolicy;

/// A resize the RM accepted and showed back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResizeOutcome {
    /// The node.
    pub node: NodeId,
    /// The capacity the RM's answer to the resize shows. The RM hands the change to its event
    /// dispatcher and answers the node's total at that moment, so this is the new capacity or,
    /// when the answer wins the race, the one before; only `confirmed` is authoritative.
    pub accepted: Resources,
    /// Resources read back from the RM, equal to the one asked for.
    pub confirmed: Resources,
    /// Reads of the node it took to see the new capacity.
    pub reads: u32,
}

/// What [`ResourceManager::ensure_node_label`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelOutcome {
    /// The label was added to the cluster, non-exclusive.
    Created,
    /// The label already existed, non-exclusive.
    AlreadyPresent,
}

/// What the operator needs from the ResourceManager.
///
/// Every call either succeeds completely or returns a typed [`RmError`]; writes never go to a
/// standby RM.
pub trait ResourceManager: Send + Sync {
    /// Information about the active RM.
    fn cluster_info(&self) -> impl Future<Output = Result<ClusterInfo, RmError>> + Send;

    /// Nodes in the given states (all states when empty).
    fn nodes(
        &self,
        states: &[NodeState],
    ) -> impl Future<Output = Result<Vec<NodeReport>, RmError>> + Send;

    /// One node.
    fn node(&self, id: &NodeId) -> impl Future<Output = Result<NodeReport, RmError>> + Send;

    /// Sets a node's YARN capacity and confirms it by reading the node back.
    fn resize(
        &self,
        id: &NodeId,
        capacity: Resources,
        over_commit: OverCommitTimeout,
    ) -> impl Future<Output = Result<ResizeOutcome, RmError>> + Send;

    /// The cluster's node labels.
    fn node_labels(&self) -> impl Future<Output = Result<Vec<NodeLabel>, RmError>> + Send;

    /// Makes sure a non-exclusive cluster node label exists.
    fn ensure_node_label(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<LabelOutcome, RmError>> + Send;

    /// Replaces a node's labels (an empty list removes them all).
    fn set_node_labels(
        &self,
        id: &NodeId,
        labels: &[String],
    ) -> impl Future<Output = Result<(), RmError>> + Send;

    /// Asks the RM to signal a container through its NodeManager.
    fn signal_container(
        &self,
        container: &ContainerId,
        command: SignalCommand,
    ) -> impl Future<Output = Result<(), RmError>> + Send;
}

/// Locks a mutex of the client or the double. Every value they guard is replaced whole or
/// changed in one step, so a panic elsewhere cannot leave it half-written: a poisoned lock is
/// still safe to use.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks a node label name as YARN does (`[0-9A-Za-z][0-9A-Za-z_-]*`, at most 255).
pub fn check_label_name(label: &str) -> Result<(), RmError> {
    let mut chars = label.chars();
    let valid = label.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(RmError::InvalidInput {
            message: format!(
                "{label:?} is not a YARN node label (letters, digits, '-' and '_', starting with \
                 a letter or digit, at most 255)"
            ),
        })
    }
}

/// A shared client is a client: the controller and a pool's loop use one RM client together.
impl<T: ResourceManager> ResourceManager for std::sync::Arc<T> {
    fn cluster_info(&self) -> impl Future<Output = Result<ClusterInfo, RmError>> + Send {
        self.as_ref().cluster_info()
    }

    fn nodes(
        &self,
        states: &[NodeState],
    ) -> impl Future<Output = Result<Vec<NodeReport>, RmError>> + Send {
        self.as_ref().nodes(states)
    }

    fn node(&self, id: &NodeId) -> impl Future<Output = Result<NodeReport, RmError>> + Send {
        self.as_ref().node(id)
    }

    fn resize(
        &self,
        id: &NodeId,
        capacity: Resources,
        over_commit: OverCommitTimeout,
    ) -> impl Future<Output = Result<ResizeOutcome, RmError>> + Send {
        self.as_ref().resize(id, capacity, over_commit)
    }

    fn node_labels(&self) -> impl Future<Output = Result<Vec<NodeLabel>, RmError>> + Send {
        self.as_ref().node_labels()
    }

    fn ensure_node_label(
        &self,
        label: &str,
    ) -> impl Future<Output = Result<LabelOutcome, RmError>> + Send {
        self.as_ref().ensure_node_label(label)
    }

    fn set_node_labels(
        &self,
        id: &NodeId,
        labels: &[String],
    ) -> impl Future<Output = Result<(), RmError>> + Send {
        self.as_ref().set_node_labels(id, labels)
    }

    fn signal_container(
        &self,
        container: &ContainerId,
        command: SignalCommand,
    ) -> impl Future<Output = Result<(), RmError>> + Send {
        self.as_ref().signal_container(container, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_follow_yarn_rules() {
        for good in ["elastic", "Elastic-2", "a_b", "9"] {
            assert!(check_label_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "_x", "a b", "a,b", "a=b", &"x".repeat(256)] {
            assert_eq!(
                check_label_name(bad).map_err(|err| err.category()),
                Err("invalid_input"),
                "{bad}"
            );
        }
    }
}
