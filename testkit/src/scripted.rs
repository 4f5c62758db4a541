//! A scripted Kubernetes API for request scenarios (tower-test `mock::pair`): each expected
//! request's method, path and query is asserted in order and answered with a status and a JSON
//! body as the API server would; what was sent is returned for assertions on bodies.

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

/// The test's end of the mock service.
pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One request the test expects, answered with a status and a JSON body.
#[derive(Debug)]
pub struct Expect {
    /// HTTP method.
    pub method: &'static str,
    /// Path.
    pub path: String,
    /// Exact query string, when it matters.
    pub query: Option<&'static str>,
    /// Answer status.
    pub status: u16,
    /// Answer body.
    pub answer: Value,
}

/// What was sent, for assertions on bodies and headers; find one with [`sent`] or
/// [`sent_nth`] by its method and path, not by its position in the script.
#[derive(Debug, Clone)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Content type.
    pub content_type: String,
    /// Body (JSON, or a string when not JSON).
    pub body: Value,
}

/// Answers the requests of `script` in order, panicking on one out of script.
pub async fn serve(mut handle: Handle, script: Vec<Expect>) -> Vec<Seen> {
    let mut seen = Vec::new();
    for expect in script {
        let (request, send) = handle.next_request().await.expect("a request was expected");
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or("").to_owned();
        let content_type = request
            .headers()
            .get("content-type")
            .map(|v| v.to_str().expect("scenario step").to_owned())
            .unwrap_or_default();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .expect("scenario step");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        assert_eq!(
            (method.as_str(), path.as_str()),
            (expect.method, expect.path.as_str()),
            "request {} out of script (query {query})",
            seen.len()
        );
        if let Some(wanted) = expect.query {
            assert_eq!(query, wanted, "query of {method} {path}");
        }
        let answer = Response::builder()
            .status(expect.status)
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::to_vec(&expect.answer).expect("scenario step"),
            ))
            .expect("scenario step");
        send.send_response(answer);
        seen.push(Seen {
            method,
            path,
            content_type,
            body,
        });
    }
    seen
}

/// The one request sent with `method` to `path`; panics, listing what was sent, when there is
/// none or more than one.
pub fn sent<'a>(seen: &'a [Seen], method: &str, path: &str) -> &'a Seen {
    let matching: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.method == method && s.path == path)
        .collect();
    assert!(
        matching.len() == 1,
        "expected one {method} {path}, found {}; sent: {:?}",
        matching.len(),
        listing(seen)
    );
    matching[0]
}

/// The `nth` (from 0) request sent with `method` to `path`, when the same call is made more than
/// once; panics, listing what was sent, when there is no such request.
pub fn sent_nth<'a>(seen: &'a [Seen], method: &str, path: &str, nth: usize) -> &'a Seen {
    seen.iter()
        .filter(|s| s.method == method && s.path == path)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {method} {path} #{nth}; sent: {:?}", listing(seen)))
}

fn listing(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

/// The API server's 404 Status.
pub fn not_found(kind: &str, name: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{kind} \"{name}\" not found"), "reason": "NotFound",
        "details": {"name": name, "kind": kind}, "code": 404
    })
}

/// A list answer.
pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "100"}, "items": items})
}
