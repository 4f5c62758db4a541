//! Kubernetes Events on a controller's objects. A failure to publish is logged, never fatal: an
//! Event is a report, and the work it reports has already happened.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

/// The longest note the API server keeps.
const MAX_NOTE: usize = 1000;

/// Publishes one Event about `reference` from the `Reconcile` action, when there is a recorder.
pub async fn publish(
    recorder: Option<&Recorder>,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let Some(recorder) = recorder else {
        return;
    };
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(MAX_NOTE).collect()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, reference).await {
        tracing::warn!(%error, "cannot publish an Event");
    }
}
