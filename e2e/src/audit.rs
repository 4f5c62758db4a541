//! The API server's audit log of service accounts' requests: which verbs a controller really
//! used, which it was refused, and when each of its credentials wrote.

use std::collections::BTreeSet;
use std::path::Path;

use jiff::Timestamp;
use serde::Deserialize;

/// One audit event (the fields the tests read).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...
    pub verb: String,
    /// Who.
    pub user: AuditUser,
    /// What (absent for non-resource URLs).
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    /// The answer.
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
    /// When the request arrived.
    pub request_received_timestamp: Timestamp,
    /// `ResponseStarted` (long watches) or `ResponseComplete`.
    pub stage: String,
    /// The request's path and query.
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    /// What the API server noted: `authorization.k8s.io/decision` (`allow`, `forbid`), Pod
    /// Security's policy, ...
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The authenticated user.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditUser {
    /// `system:serviceaccount:<namespace>:<name>`.
    pub username: String,
    /// Extra attributes: `authentication.kubernetes.io/credential-id` names the token.
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

/// The object of a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Resource (plural).
    #[serde(default)]
    pub resource: String,
    /// Subresource (`status`, `finalizers`, ...).
    #[serde(default)]
    pub subresource: Option<String>,
    /// API group (`""` for core).
    #[serde(default)]
    pub api_group: Option<String>,
    /// Namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The answer's status.
#[derive(Debug, Clone, Deserialize)]
pub struct ResponseStatus {
    /// HTTP code.
    #[serde(default)]
    pub code: u16,
}

/// A permission as RBAC names it: group, `resource[/subresource]`, verb.
pub type Permission = (String, String, String);

impl AuditEvent {
    /// The permission this request needed (`None` for non-resource URLs).
    pub fn permission(&self) -> Option<Permission> {
        let object = self.object_ref.as_ref()?;
        let resource = match &object.subresource {
            Some(sub) if !sub.is_empty() => format!("{}/{sub}", object.resource),
            _ => object.resource.clone(),
        };
        Some((
            object.api_group.clone().unwrap_or_default(),
            resource,
            self.verb.clone(),
        ))
    }

    /// Whether the API server refused it for lack of permission: the authorizer's decision,
    /// not an admission plugin's 403 (Pod Security refusing a pod is not an RBAC gap).
    pub fn forbidden(&self) -> bool {
        match self.annotations.get("authorization.k8s.io/decision") {
            Some(decision) => decision == "forbid",
            None => self.response_status.as_ref().is_some_and(|s| s.code == 403),
        }
    }

    /// Whether it changes something.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }

    /// The token it was made with (`JTI=...`), when the API server records it.
    pub fn credential(&self) -> Option<&str> {
        self.user
            .extra
            .get("authentication.kubernetes.io/credential-id")
            .and_then(|ids| ids.first())
            .map(String::as_str)
    }
}

/// Every event of `user` in the log so far.
pub fn events_of(log: &Path, user: &str) -> Vec<AuditEvent> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|line| line.contains(user))
        .filter_map(|line| serde_json::from_str::<AuditEvent>(line).ok())
        .filter(|e| e.user.username == user)
        .collect()
}

/// The permissions the events used (answered, not refused).
pub fn used(events: &[AuditEvent]) -> BTreeSet<Permission> {
    events
        .iter()
        .filter(|e| !e.forbidden())
        .filter_map(AuditEvent::permission)
        .collect()
}

/// The service account's user name.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}
