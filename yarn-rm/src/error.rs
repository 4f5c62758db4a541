//! Errors of the RM client, each with a short stable category for Events and metric labels.

use serde::Deserialize;

use super::model::{NodeId, Resources};

/// The exception RMWebServices writes on failure: `{"RemoteException":{...}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteException {
    /// Simple class name, e.g. `NotFoundException`.
    #[serde(default)]
    pub exception: String,
    /// The message (the cause's message when there is one).
    #[serde(default)]
    pub message: String,
    /// Full class name.
    #[serde(default)]
    pub java_class_name: String,
}

#[derive(Deserialize)]
struct RemoteExceptionEnvelope {
    #[serde(rename = "RemoteException")]
    remote_exception: RemoteException,
}

impl RemoteException {
    /// Reads a `RemoteException` body, if that is what the body is.
    pub fn parse(body: &[u8]) -> Option<RemoteException> {
        serde_json::from_slice::<RemoteExceptionEnvelope>(body)
            .ok()
            .map(|envelope| envelope.remote_exception)
    }
}

/// Why a call to the RM failed.
#[derive(Debug, thiserror::Error)]
pub enum RmError {
    /// No connection could be made (refused, DNS, reset).
    #[error("cannot reach the ResourceManager at {address}: {detail}")]
    Unreachable {
        /// The RM address tried.
        address: String,
        /// What the HTTP client said.
        detail: String,
    },
    /// The RM did not answer in time.
    #[error("the ResourceManager at {address} did not answer within {seconds:.1} s")]
    Timeout {
        /// The RM address tried.
        address: String,
        /// The timeout.
        seconds: f64,
    },
    /// Every RM is standby, starting, or unreachable.
    #[error("no active ResourceManager: {detail}")]
    NoActive {
        /// What each RM answered.
        detail: String,
    },
    /// 401: not authenticated (no user, a rejected cookie, or Kerberos refused).
    #[error("the ResourceManager refused the credentials (401): {message}")]
    Unauthorized {
        /// The RM's message.
        message: String,
    },
    /// 403, or a 401 AuthorizationException naming the user: authenticated but not allowed
    /// (not a YARN admin, or a bad SPNEGO token).
    #[error("the ResourceManager forbids this (403): {message}")]
    Forbidden {
        /// The RM's message.
        message: String,
    },
    /// 404: the node (or path) does not exist.
    #[error("not found on the ResourceManager (404): {message}")]
    NotFound {
        /// The RM's message.
        message: String,
    },
    /// 400: the RM refused the request's content.
    #[error("the ResourceManager refused the request (400): {message}")]
    BadRequest {
        /// The RM's message.
        message: String,
    },
    /// 503: the RM could not do it (for instance a resize of an inactive node).
    #[error("the ResourceManager could not do it (503): {message}")]
    Unavailable {
        /// The RM's message.
        message: String,
    },
    /// Any other status.
    #[error("the ResourceManager answered {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The RM's message.
        message: String,
    },
    /// The answer was not what RMWebServices sends.
    #[error("unexpected answer to {call}: {detail}")]
    Decode {
        /// The call.
        call: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Kerberos could not produce or complete a SPNEGO exchange.
    #[error("Kerberos: {message}")]
    Kerberos {
        /// GSSAPI's message (never key material).
        message: String,
    },
    /// A resize was accepted but the node never showed the new capacity.
    #[error(
        "resize of {node} to {requested} not confirmed: the RM still shows {seen} after {reads} reads"
    )]
    NotConfirmed {
        /// The node.
        node: NodeId,
        /// What was asked for.
        requested: Resources,
        /// What the RM showed last.
        seen: Resources,
        /// How many times the node was read back.
        reads: u32,
    },
    /// The label exists as an exclusive label; YARN cannot change exclusivity.
    #[error(
        "node label {label:?} exists on the RM as an exclusive label; elastic pools need a \
         non-exclusive one (remove it with `yarn rmadmin -removeFromClusterNodeLabels {label}` \
         or pick another name)"
    )]
    LabelConflict {
        /// The label.
        label: String,
    },
    /// The caller's input cannot be sent (bad node id, label name...).
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
    },
}

impl RmError {
    /// Short stable name for Event reasons and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            RmError::Unreachable { .. } => "unreachable",
            RmError::Timeout { .. } => "timeout",
            RmError::NoActive { .. } => "no_active_rm",
            RmError::Unauthorized { .. } => "unauthorized",
            RmError::Forbidden { .. } => "forbidden",
            RmError::NotFound { .. } => "not_found",
            RmError::BadRequest { .. } => "bad_request",
            RmError::Unavailable { .. } => "unavailable",
            RmError::Server { .. } => "server_error",
            RmError::Decode { .. } => "decode",
            RmError::Kerberos { .. } => "kerberos",
            RmError::NotConfirmed { .. } => "not_confirmed",
            RmError::LabelConflict { .. } => "label_conflict",
            RmError::InvalidInput { .. } => "invalid_input",
        }
    }

    /// Every category, for documentation and for pre-creating metric series.
    pub const CATEGORIES: [&'static str; 14] = [
        "unreachable",
        "timeout",
        "no_active_rm",
        "unauthorized",
        "forbidden",
        "not_found",
        "bad_request",
        "unavailable",
        "server_error",
        "decode",
        "kerberos",
        "not_confirmed",
        "label_conflict",
        "invalid_input",
    ];

    /// An outage that may pass: worth retrying later (with backoff). Everything else waits for
    /// a change of input or configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            RmError::Unreachable { .. } | RmError::Timeout { .. } | RmError::NoActive { .. } => {
                true
            }
            RmError::Server { status, .. } => *status >= 500,
            RmError::NotConfirmed { .. } => true,
            _ => false,
        }
    }

    /// The error for a non-2xx answer, from the `RemoteException` when the RM wrote one.
    pub fn from_answer(status: u16, body: &[u8]) -> RmError {
        let remote = RemoteException::parse(body);
        // RMWebServices answers 401 with an AuthorizationException when it knows the caller but
        // the admin ACL does not list them (label writes, Hadoop 3.4 and 3.5): a refusal of
        // the user, not of the credentials.
        let not_an_admin = remote.as_ref().is_some_and(|remote| {
            remote.exception == "AuthorizationException"
                && remote.message.contains("not authorized")
        });
        let message = match remote {
            Some(remote) if !remote.exception.is_empty() => {
                format!("{}: {}", remote.exception, remote.message)
            }
            Some(remote) => remote.message,
            None => plain_message(body),
        };
        match status {
            400 => RmError::BadRequest { message },
            401 if not_an_admin => RmError::Forbidden { message },
            401 => RmError::Unauthorized { message },
            403 => RmError::Forbidden { message },
            404 => RmError::NotFound { message },
            503 => RmError::Unavailable { message },
            _ => RmError::Server { status, message },
        }
    }
}

/// A readable line from a non-JSON body: the reason of a Jetty error page (what Hadoop's web
/// server writes). Any other body is not repeated: these messages reach status and Events,
/// and echoing what an arbitrary URL answered would let a pool spec read it.
fn plain_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let jetty_page = text.contains("HTTP ERROR");
    // Jetty error pages carry the reason in <title> or after "<pre>".
    let reason = extract_between(&text, "<pre>", "</pre>")
        .or_else(|| extract_between(&text, "<title>", "</title>"))
        .filter(|_| jetty_page)
        .map(|inner| inner.split_whitespace().collect::<Vec<_>>().join(" "))
        .map(|line| line.chars().take(300).collect::<String>())
        .filter(|line| !line.is_empty());
    match reason {
        Some(line) => line,
        None if body.is_empty() => "(empty answer)".to_owned(),
        None => format!(
            "(an answer of {} bytes that is not a YARN error)",
            body.len()
        ),
    }
}

fn extract_between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_exceptions_become_typed_errors_with_their_message() {
        let body = br#"{"RemoteException":{"exception":"NotFoundException","message":"java.lang.Exception: nodeId, nm-9:45454, is not found","javaClassName":"org.apache.hadoop.yarn.webapp.NotFoundException"}}"#;
        let error = RmError::from_answer(404, body);
        assert_eq!(error.category(), "not_found");
        assert!(error.to_string().contains("nm-9:45454, is not found"));
        assert!(!error.is_transient());
    }

    #[test]
    fn every_status_has_its_category() {
        let cases = [
            (400, "bad_request"),
            (401, "unauthorized"),
            (403, "forbidden"),
            (404, "not_found"),
            (503, "unavailable"),
            (500, "server_error"),
            (502, "server_error"),
        ];
        for (status, category) in cases {
            assert_eq!(RmError::from_answer(status, b"").category(), category);
        }
        assert!(RmError::from_answer(502, b"").is_transient());
        // What a real RM (3.4.2, 3.5.0) answers a label write by a user not in yarn.admin.acl.
        let not_admin = br#"{"RemoteException":{"exception":"AuthorizationException","message":"User nobody not authorized for post to .../add-node-labels ","javaClassName":"org.apache.hadoop.security.authorize.AuthorizationException"}}"#;
        assert_eq!(RmError::from_answer(401, not_admin).category(), "forbidden");
        assert!(!RmError::from_answer(503, b"").is_transient());
    }

    #[test]
    fn jetty_html_pages_give_their_reason() {
        let page = b"<html><head><title>Error 403 GSSException: Failure unspecified</title></head><body><h2>HTTP ERROR 403</h2><pre>GSSException: Failure unspecified at GSS-API level</pre></body></html>";
        let error = RmError::from_answer(403, page);
        assert_eq!(
            error.to_string(),
            "the ResourceManager forbids this (403): GSSException: Failure unspecified at GSS-API level"
        );
    }

    #[test]
    fn other_bodies_are_not_repeated() {
        let secret = b"{\"kind\":\"Secret\",\"data\":{\"token\":\"c2VjcmV0\"}}";
        let error = RmError::from_answer(500, secret);
        assert!(!error.to_string().contains("c2VjcmV0"), "{error}");
        assert!(error.to_string().contains("not a YARN error"), "{error}");
        let page = b"<html><title>Admin console</title><pre>internal data</pre></html>";
        let error = RmError::from_answer(404, page);
        assert!(!error.to_string().contains("internal data"), "{error}");
    }

    #[test]
    fn categories_are_listed_once_each() {
        let mut sorted = RmError::CATEGORIES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), RmError::CATEGORIES.len());
    }
}
