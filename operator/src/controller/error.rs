//! Why a reconcile failed: one enum per step, each variant naming the call and the object it
//! was about, so that an Event says which call failed; and one stable category per error for
//! Event notes and the `failures` metric.

use controlkit::report::{Categorised, FinalizerError};
use staticip::claim::ClaimError;
use yarn_rm::RmError;

use super::keytabs::KeytabError;
use crate::vertical::drain::DrainError;

/// Reading what the pool is made of failed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The StaticIPPool the pool names could not be read.
    #[error("reading StaticIPPool {name}: {source}")]
    StaticIpPool {
        /// The StaticIPPool.
        name: String,
        /// The API server's error.
        source: kube::Error,
    },
    /// Nodes could not be listed.
    #[error("listing Nodes: {0}")]
    Nodes(#[source] kube::Error),
    /// The Node reflector stopped before it listed the Nodes (the operator is stopping).
    #[error("the Node reflector stopped before listing the Nodes")]
    NodeStoreGone,
    /// The pool's NM pods could not be listed.
    #[error("listing the NodeManager pods ({selector}): {source}")]
    Pods {
        /// The label selector.
        selector: String,
        /// The API server's error.
        source: kube::Error,
    },
    /// The Fluid Datasets the pool mounts could not be read.
    #[error("reading the pool's Fluid Datasets: {0}")]
    Datasets(#[source] kube::Error),
}

/// Building the pool's clients and loop failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The guarder token Secret could not be read or made.
    #[error("guarder token Secret {name}: {source}")]
    GuarderToken {
        /// The Secret.
        name: String,
        /// The API server's error.
        source: kube::Error,
    },
    /// The keytab Secret could not be read.
    #[error("reading keytab Secret {name}: {source}")]
    KeytabSecret {
        /// The Secret.
        name: String,
        /// The API server's error.
        source: kube::Error,
    },
    /// The keytab Secret lacks the key the spec names.
    #[error("Secret {name} has no key {key:?}")]
    KeytabKey {
        /// The Secret.
        name: String,
        /// The key.
        key: String,
    },
    /// The keytab could not be merged into the client keytab.
    #[error("keytab: {0}")]
    Keytab(#[from] KeytabError),
    /// The RM client could not be built.
    #[error("building the ResourceManager client: {0}")]
    RmClient(#[source] RmError),
    /// The guarder client could not be built.
    #[error("building the guarder client: {0}")]
    GuarderClient(String),
    /// The metrics reader could not be built.
    #[error("building the metrics reader: {0}")]
    MetricsReader(String),
}

/// A write of the reconcile that concerns the whole pool failed (one NM's failures are
/// reported on its row instead and do not abort).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Scaling the Fluid cache workers failed.
    #[error("scaling the Fluid caches: {0}")]
    ScaleCaches(#[source] kube::Error),
    /// Claiming static addresses failed as a whole.
    #[error("claiming addresses in StaticIPPool {pool}: {source}")]
    Claim {
        /// The StaticIPPool.
        pool: String,
        /// Why.
        source: ClaimError,
    },
    /// Marking an address bound to its NM's pod failed.
    #[error("binding the address of {node} in StaticIPPool {pool}: {source}")]
    Bind {
        /// The StaticIPPool.
        pool: String,
        /// The node of the NM.
        node: String,
        /// Why.
        source: ClaimError,
    },
    /// The pool's status could not be written.
    #[error("patching the status of ElasticNodePool {pool}: {source}")]
    Status {
        /// The pool.
        pool: String,
        /// The API server's error.
        source: kube::Error,
    },
    /// The Spark defaults ConfigMap could not be applied.
    #[error("applying ConfigMap {name}: {source}")]
    SparkDefaults {
        /// The ConfigMap.
        name: String,
        /// The API server's error.
        source: kube::Error,
    },
}

/// Taking a deleted pool's marks off the RM and its addresses back failed.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The pool's NM pods could not be listed.
    #[error("listing the NodeManager pods ({selector}): {source}")]
    Pods {
        /// The label selector.
        selector: String,
        /// The API server's error.
        source: kube::Error,
    },
    /// The RM client could not be built.
    #[error("building the ResourceManager client: {0}")]
    RmClient(#[source] RmError),
    /// A node's `ThirdParty` allocation entry could not be removed.
    #[error("removing the batch allocation of {node}: {source}")]
    Allocation {
        /// The node.
        node: String,
        /// The API server's error.
        source: kube::Error,
    },
    /// The RM did not take the pool's label off an NM (and the patience is not over).
    #[error("removing the YARN label of {node_id}: {source}")]
    Label {
        /// The NM.
        node_id: String,
        /// Why.
        source: DrainError,
    },
    /// The pool's static addresses could not be released.
    #[error("releasing the addresses of StaticIPPool {pool}: {source}")]
    Addresses {
        /// The StaticIPPool.
        pool: String,
        /// Why.
        source: ClaimError,
    },
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The finalizer helper failed.
    #[error(transparent)]
    Finalizer(#[from] FinalizerError),
    /// The pool lacks metadata the API server always sets.
    #[error("{0}")]
    Build(#[from] crate::build::BuildError),
    /// Reading the pool's world failed.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// The pool's clients or loop could not be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A pool-wide write failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Cleaning up a deleted pool failed.
    #[error(transparent)]
    Cleanup(#[from] CleanupError),
}

impl ReconcileError {
    /// Short stable category for metrics and Event notes.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::Finalizer(error) => error.category(),
            ReconcileError::Build(_) => "build",
            ReconcileError::Observe(_) => "kubernetes",
            ReconcileError::Runtime(error) => match error {
                RuntimeError::GuarderToken { .. } | RuntimeError::KeytabSecret { .. } => {
                    "kubernetes"
                }
                RuntimeError::KeytabKey { .. } | RuntimeError::Keytab(_) => "keytab",
                RuntimeError::RmClient(error) => error.category(),
                RuntimeError::GuarderClient(_) | RuntimeError::MetricsReader(_) => "client",
            },
            ReconcileError::Apply(error) => match error {
                ApplyError::Claim { .. } | ApplyError::Bind { .. } => "staticip",
                _ => "kubernetes",
            },
            ReconcileError::Cleanup(error) => match error {
                CleanupError::RmClient(error) => error.category(),
                CleanupError::Label { source, .. } => source.category(),
                CleanupError::Addresses { .. } => "staticip",
                CleanupError::Pods { .. } | CleanupError::Allocation { .. } => "kubernetes",
            },
        }
    }

    /// Whether retrying soon may help (a keytab or a client that cannot be built will not be
    /// fixed by waiting 15 s).
    pub fn is_transient(&self) -> bool {
        match self {
            ReconcileError::Build(_) => false,
            ReconcileError::Runtime(error) => match error {
                RuntimeError::KeytabKey { .. } | RuntimeError::Keytab(_) => false,
                RuntimeError::RmClient(error) => error.is_transient(),
                _ => true,
            },
            ReconcileError::Cleanup(CleanupError::RmClient(error)) => error.is_transient(),
            _ => true,
        }
    }
}

impl Categorised for ReconcileError {
    fn category(&self) -> &'static str {
        ReconcileError::category(self)
    }
}
