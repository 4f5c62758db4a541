//! One path from a failed reconcile to what an admin sees: the finalizer helper's errors
//! flattened into the controller's own, a Warning Event `ReconcileFailed` saying
//! `[category] message` on the object, and the failure counted by the same category.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::finalizer::{Error as FinalizerFailure, Event as FinalizerEvent, finalizer};
use kube::{Api, Resource};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a controller's context shows in logs and panics: its settings, never its clients,
/// tokens or per-object state (kube's client and Event recorder have no `Debug` anyway).
pub fn debug_context(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    settings: &dyn Debug,
) -> std::fmt::Result {
    f.debug_struct(name)
        .field("settings", settings)
        .finish_non_exhaustive()
}

/// An error with a short stable category, for Event notes and metric labels.
pub trait Categorised: std::fmt::Display {
    /// The category: lower-case, stable across releases.
    fn category(&self) -> &'static str;
}

/// Labels of a failure counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// Stable category.
    pub category: &'static str,
}

/// Failures by category.
pub type Failures = Family<FailureLabels, Counter>;

/// Why the finalizer helper itself failed (not the controller's own step).
#[derive(Debug, thiserror::Error)]
pub enum FinalizerError {
    /// Adding the controller's finalizer to the object failed.
    #[error("adding the finalizer: {0}")]
    Add(#[source] kube::Error),
    /// Removing the controller's finalizer after cleanup failed.
    #[error("removing the finalizer: {0}")]
    Remove(#[source] kube::Error),
    /// The object could not be handled at all (no name, no namespace...).
    #[error("finalizer: {0}")]
    Other(String),
}

impl Categorised for FinalizerError {
    fn category(&self) -> &'static str {
        match self {
            FinalizerError::Add(_) | FinalizerError::Remove(_) => "kubernetes",
            FinalizerError::Other(_) => "finalizer",
        }
    }
}

/// Runs `reconcile` under kube's finalizer helper (apply, or cleanup once the object is being
/// deleted) and returns the controller's own error type whatever failed.
pub async fn finalized<K, E, F, Fut>(
    api: &Api<K>,
    finalizer_name: &str,
    object: Arc<K>,
    reconcile: F,
) -> Result<Action, E>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
    <K as Resource>::DynamicType: Default,
    E: std::error::Error + Send + 'static + From<FinalizerError>,
    F: FnOnce(FinalizerEvent<K>) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
{
    finalizer(api, finalizer_name, object, reconcile)
        .await
        .map_err(|failure| match failure {
            FinalizerFailure::ApplyFailed(error) | FinalizerFailure::CleanupFailed(error) => error,
            FinalizerFailure::AddFinalizer(error) => FinalizerError::Add(error).into(),
            FinalizerFailure::RemoveFinalizer(error) => FinalizerError::Remove(error).into(),
            other => FinalizerError::Other(other.to_string()).into(),
        })
}

/// [`finalized`], then a failure reported with [`reconcile_failed`]: the whole reconcile of one
/// object as both controllers run it.
pub async fn reconcile_reported<K, E, F, Fut>(
    api: &Api<K>,
    finalizer_name: &str,
    object: Arc<K>,
    recorder: Option<&Recorder>,
    failures: &Failures,
    reconcile: F,
) -> Result<Action, E>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
    <K as Resource>::DynamicType: Default,
    E: std::error::Error + Categorised + Send + 'static + From<FinalizerError>,
    F: FnOnce(FinalizerEvent<K>) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
{
    let reference = object.object_ref(&Default::default());
    let result = finalized(api, finalizer_name, object, reconcile).await;
    if let Err(error) = &result {
        reconcile_failed(recorder, &reference, failures, error).await;
    }
    result
}

/// Reports a failed reconcile on its object: a Warning Event (the Recorder folds repeats into
/// one series), a log line, and one more failure of its category.
pub async fn reconcile_failed(
    recorder: Option<&Recorder>,
    reference: &ObjectReference,
    failures: &Failures,
    error: &impl Categorised,
) {
    let category = error.category();
    failures.get_or_create(&FailureLabels { category }).inc();
    tracing::warn!(%error, category, "reconcile failed");
    crate::events::publish(
        recorder,
        reference,
        EventType::Warning,
        "ReconcileFailed",
        format!("[{category}] {error}"),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the RM said no")]
    struct Refused;

    impl Categorised for Refused {
        fn category(&self) -> &'static str {
            "forbidden"
        }
    }

    #[tokio::test]
    async fn a_failure_is_counted_under_its_category() {
        let failures = Failures::default();
        let reference = ObjectReference::default();
        reconcile_failed(None, &reference, &failures, &Refused).await;
        reconcile_failed(None, &reference, &failures, &Refused).await;
        let finalizer = FinalizerError::Other("no name".to_owned());
        reconcile_failed(None, &reference, &failures, &finalizer).await;
        let count = |category| failures.get_or_create(&FailureLabels { category }).get();
        assert_eq!(count("forbidden"), 2);
        assert_eq!(count("finalizer"), 1);
        assert_eq!(count("kubernetes"), 0);
    }
}
