//! An RM on loopback that answers as Hadoop 3.x's RMWebServices does, records every request,
//! and can be made standby, slow, failing or Kerberos-secured.
//!
//! What it copies from Hadoop: the JSON of `ClusterInfo`, `NodeInfo`, `NodeLabelsInfo` and the
//! resize answer (the capacity before the change); both Jersey notations; `RemoteException`
//! bodies with the statuses of `GenericExceptionHandler` (401 `AuthorizationException`, 404
//! `NotFoundException`, 400 `BadRequestException`, 503 for anything else such as a resize of an
//! inactive node); `RMWebAppFilter`'s standby redirect (307 with `Location`, or with `Refresh`
//! when no RM is active), which spares only `/ws/v1/cluster/info`; and `AuthenticationFilter`
//! with SPNEGO: 401 `WWW-Authenticate: Negotiate` without credentials, 403 for a bad token,
//! the `hadoop.auth` cookie after success.

mod cluster;
mod spnego;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub use cluster::{DoubleCluster, DoubleNode, JerseyStyle};
use cluster::{Refusal, mapped, natural};
pub use spnego::SpnegoAcceptor;

use yarn_rm::auth::{AUTH_COOKIE, DELEGATION_TOKEN_HEADER};
use yarn_rm::lock;
use yarn_rm::model::{
    NodeId, NodeLabelsBody, NodeState, NodeToLabelsBody, ResourceOptionBody, Resources,
    SignalCommand,
};

/// The double's HA role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Serves every call.
    Active,
    /// Redirects everything but `/ws/v1/cluster/info` to the active RM's address, or answers
    /// "Can not find any active RM" when it knows none.
    Standby {
        /// The active RM's web address (`http://host:port`).
        active: Option<String>,
    },
}

/// How the double authenticates callers.
#[derive(Debug)]
pub enum DoubleAuth {
    /// `user.name`, required on every request (401 `PseudoAuth` without it), as Hadoop's
    /// AuthenticationFilter answers with `hadoop.http.authentication.simple.anonymous.allowed`
    /// false; with anonymous callers allowed a real RM acts for them as `dr.who`.
    Simple,
    /// SPNEGO verified with the service keytab, then the `hadoop.auth` cookie.
    Kerberos(SpnegoAcceptor),
    /// An RM delegation token in `Hadoop-YARN-RM-Delegation-Token` (or SPNEGO-less 401).
    DelegationToken(String),
}

/// One request as the double received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string, empty when none.
    pub query: String,
    /// Body as text.
    pub body: String,
    /// How the caller authenticated.
    pub credential: Credential,
    /// The status answered; 0 while unanswered or when the caller gave up first.
    pub outcome: u16,
}

/// The credential a request carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Credential {
    /// Nothing, or only `user.name`.
    None,
    /// `Authorization: Negotiate`.
    Negotiate,
    /// The `hadoop.auth` cookie.
    Cookie,
    /// A delegation token header.
    DelegationToken,
}

#[derive(Debug, Default)]
struct Faults {
    delay: Duration,
    fail_next: Vec<u16>,
}

#[derive(Debug)]
struct DoubleState {
    cluster: DoubleCluster,
    role: Mutex<Role>,
    auth: DoubleAuth,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<RecordedRequest>>,
    record: bool,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// `yarn.admin.acl` with `yarn.acl.enable`; `None`: ACLs off, everyone is an admin.
    admins: Option<Vec<String>>,
}

/// An RM double; clones control the same server.
#[derive(Clone, Debug)]
pub struct RmDouble {
    state: Arc<DoubleState>,
}

impl RmDouble {
    /// A double serving `cluster` in `role`.
    pub fn new(cluster: DoubleCluster, role: Role, auth: DoubleAuth) -> RmDouble {
        RmDouble {
            state: Arc::new(DoubleState {
                cluster,
                role: Mutex::new(role),
                auth,
                faults: Mutex::new(Faults::default()),
                requests: Mutex::new(Vec::new()),
                record: true,
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
                admins: None,
            }),
        }
    }

    /// The same double without request recording (benchmarks: memory stays flat).
    pub fn without_recording(self) -> RmDouble {
        self.configured(|state| state.record = false)
    }

    /// The same double with YARN ACLs on and these users as administrators. As on a real RM
    /// (3.4, 3.5), only label writes check them: a node resize through REST runs as the RM's
    /// own user, so any authenticated caller may resize.
    pub fn with_admins(self, admins: &[&str]) -> RmDouble {
        let admins = admins.iter().map(|&a| a.to_owned()).collect();
        self.configured(|state| state.admins = Some(admins))
    }

    // Only before the double is shared (cloned or serving).
    fn configured(self, change: impl FnOnce(&mut DoubleState)) -> RmDouble {
        match Arc::try_unwrap(self.state) {
            Ok(mut state) => {
                change(&mut state);
                RmDouble {
                    state: Arc::new(state),
                }
            }
            Err(state) => RmDouble { state },
        }
    }

    /// The cluster it serves.
    pub fn cluster(&self) -> &DoubleCluster {
        &self.state.cluster
    }

    /// Changes the HA role (a failover).
    pub fn set_role(&self, role: Role) {
        *lock(&self.state.role) = role;
    }

    /// Answers every request after this delay.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state.faults).delay = delay;
    }

    /// Answers the next requests with these statuses, in order, before serving normally.
    pub fn fail_next(&self, statuses: &[u16]) {
        lock(&self.state.faults).fail_next = statuses.iter().rev().copied().collect();
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// Requests that could change the cluster.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.method != "GET")
            .collect()
    }

    /// The most requests it has been handling at once.
    pub fn most_in_flight(&self) -> usize {
        self.state.most_in_flight.load(Ordering::Relaxed)
    }

    /// Refuses every `hadoop.auth` cookie issued so far.
    pub fn expire_sessions(&self) {
        if let DoubleAuth::Kerberos(acceptor) = &self.state.auth {
            acceptor.expire_sessions();
        }
    }

    /// Serves on `listener` until the future is dropped; dropping it also closes every open
    /// connection, like an RM process that dies.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let router = Router::new().fallback(handle).with_state(self.state);
        let mut connections = JoinSet::new();
        loop {
            let (stream, _) = listener.accept().await?;
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            connections.spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                if let Err(err) = connection.await {
                    tracing::debug!(%err, "RM double connection ended");
                }
            });
            // Reap finished connections so the set does not grow with every client.
            while connections.try_join_next().is_some() {}
        }
    }

    /// Binds `127.0.0.1:0`, serves in a task, and returns the address and the task (abort it to
    /// "kill" the RM).
    pub async fn spawn(self) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(err) = self.serve(listener).await {
                tracing::warn!(%err, "RM double stopped");
            }
        });
        Ok((address, task))
    }
}

const CLUSTER: &str = "/ws/v1/cluster";
/// Not an RM path: the recorded requests as JSON, for tests that run the double as a process.
pub const REQUESTS_PATH: &str = "/_double/requests";

async fn handle(
    State(state): State<Arc<DoubleState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path() == REQUESTS_PATH {
        return axum::Json(lock(&state.requests).clone()).into_response();
    }
    let now = state.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    state.most_in_flight.fetch_max(now, Ordering::Relaxed);
    let response = handle_counted(&state, method, uri, headers, body).await;
    state.in_flight.fetch_sub(1, Ordering::Relaxed);
    response
}

async fn handle_counted(
    state: &Arc<DoubleState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Recorded on arrival, so a request whose caller gave up (a timeout) still shows.
    let recorded = state.record.then(|| {
        let mut requests = lock(&state.requests);
        requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or("").to_owned(),
            body: String::from_utf8_lossy(&body).into_owned(),
            credential: credential_of(&headers),
            outcome: 0,
        });
        requests.len() - 1
    });
    let (delay, injected) = {
        let mut faults = lock(&state.faults);
        (faults.delay, faults.fail_next.pop())
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (credential, response) = match injected {
        Some(status) => (Credential::None, injected_failure(status)),
        None => answer(state, &method, &uri, &headers, &body).await,
    };
    if let Some(index) = recorded
        && let Some(request) = lock(&state.requests).get_mut(index)
    {
        request.credential = credential;
        request.outcome = response.status().as_u16();
    }
    response
}

async fn answer(
    state: &Arc<DoubleState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (Credential, Response) {
    let path = uri.path().trim_end_matches('/');
    // RMWebAppFilter runs before authentication-dependent resources.
    let role = lock(&state.role).clone();
    if let Role::Standby { active } = role
        && path != format!("{CLUSTER}/info")
    {
        return (Credential::None, standby_answer(active.as_deref(), uri));
    }
    let (credential, caller, mut extra_headers) = match authenticate(state, uri, headers).await {
        Ok(found) => found,
        Err(refusal) => return (credential_of(headers), refusal),
    };
    let mut response = route(state, method, path, uri, caller.as_deref(), body);
    response.headers_mut().extend(extra_headers.drain());
    (credential, response)
}

fn credential_of(headers: &HeaderMap) -> Credential {
    if headers.contains_key(header::AUTHORIZATION) {
        Credential::Negotiate
    } else if cookie(headers).is_some() {
        Credential::Cookie
    } else if headers.contains_key(DELEGATION_TOKEN_HEADER) {
        Credential::DelegationToken
    } else {
        Credential::None
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == AUTH_COOKIE).then(|| value.to_owned())
        })
}

type Authenticated = (Credential, Option<String>, HeaderMap);

/// `AuthenticationFilter`: who the caller is, or the refusal to send.
async fn authenticate(
    state: &Arc<DoubleState>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Authenticated, Response> {
    match &state.auth {
        DoubleAuth::Simple => {
            let user = uri.query().and_then(|query| {
                url::form_urlencoded::parse(query.as_bytes())
                    .find(|(name, _)| name == "user.name")
                    .map(|(_, value)| value.into_owned())
            });
            match user {
                Some(user) => Ok((Credential::None, Some(user), HeaderMap::new())),
                None => Err(pseudo_auth_challenge()),
            }
        }
        DoubleAuth::DelegationToken(expected) => {
            match headers
                .get(DELEGATION_TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
            {
                Some(token) if token == expected => Ok((
                    Credential::DelegationToken,
                    Some("token-owner".to_owned()),
                    HeaderMap::new(),
                )),
                Some(_) => Err(jetty_error(
                    StatusCode::FORBIDDEN,
                    "org.apache.hadoop.security.token.SecretManager$InvalidToken: token is not valid",
                )),
                None => Err(negotiate_challenge()),
            }
        }
        DoubleAuth::Kerberos(acceptor) => {
            if let Some(value) = cookie(headers)
                && let Some(principal) = acceptor.session(&value)
            {
                return Ok((Credential::Cookie, Some(principal), HeaderMap::new()));
            }
            let token = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Negotiate "))
                .map(str::to_owned);
            let Some(token) = token else {
                return Err(negotiate_challenge());
            };
            // GSSAPI is blocking: keep it off the async workers.
            let shared = Arc::clone(state);
            let accepted = tokio::task::spawn_blocking(move || match &shared.auth {
                DoubleAuth::Kerberos(acceptor) => acceptor.accept(&token),
                _ => Err("Kerberos is not configured".to_owned()),
            })
            .await
            .unwrap_or_else(|err| Err(format!("GSSException: acceptor task failed: {err}")));
            match accepted {
                Ok(accepted) => {
                    let mut extra = HeaderMap::new();
                    if let Ok(value) = HeaderValue::from_str(&accepted.cookie) {
                        extra.insert(header::SET_COOKIE, value);
                    }
                    if let Some(answer) = accepted.answer
                        && let Ok(value) = HeaderValue::from_str(&format!("Negotiate {answer}"))
                    {
                        extra.insert(header::WWW_AUTHENTICATE, value);
                    }
                    Ok((Credential::Negotiate, Some(accepted.principal), extra))
                }
                Err(message) => Err(jetty_error(StatusCode::FORBIDDEN, &message)),
            }
        }
    }
}

fn route(
    state: &DoubleState,
    method: &Method,
    path: &str,
    uri: &Uri,
    caller: Option<&str>,
    body: &[u8],
) -> Response {
    let cluster = &state.cluster;
    let Some(rest) = path.strip_prefix(CLUSTER) else {
        return jetty_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let segments: Vec<&str> = rest.split('/').filter(|part| !part.is_empty()).collect();
    let is_write = *method == Method::POST || *method == Method::PUT;
    if is_write && caller.is_none() {
        return remote_exception(
            StatusCode::UNAUTHORIZED,
            "AuthorizationException",
            "Unable to obtain user name, user not authenticated",
            "org.apache.hadoop.security.authorize.AuthorizationException",
        );
    }
    let label_write = matches!(
        (method.as_str(), segments.as_slice()),
        (
            "POST",
            ["add-node-labels" | "replace-node-to-labels" | "remove-node-labels"]
        )
    );
    if label_write
        && let (Some(admins), Some(caller)) = (&state.admins, caller)
        && !admins.iter().any(|admin| admin == short_name(caller))
    {
        return remote_exception(
            StatusCode::UNAUTHORIZED,
            "AuthorizationException",
            &format!(
                "User {caller} not authorized for post to .../{}",
                segments.join("/")
            ),
            "org.apache.hadoop.security.authorize.AuthorizationException",
        );
    }
    match (method.as_str(), segments.as_slice()) {
        ("GET", [] | ["info"]) => json_answer(cluster, cluster_info(state)),
        ("GET", ["nodes"]) => match node_states(uri) {
            Ok(states) => json_answer(cluster, cluster.nodes_json(&states)),
            Err(refusal) => refused(refusal),
        },
        ("GET", ["nodes", id]) => match parse_node_id(id) {
            Ok(id) => match cluster.node_json(&id) {
                Ok(node) => json_answer(cluster, node),
                Err(refusal) => refused(refusal),
            },
            Err(refusal) => refused(refusal),
        },
        ("POST", ["nodes", id, "resource"]) => {
            let id = match parse_node_id(id) {
                Ok(id) => id,
                Err(refusal) => return refused(refusal),
            };
            let option: ResourceOptionBody = match serde_json::from_slice(body) {
                Ok(option) => option,
                Err(err) => return unmarshal_error(&err),
            };
            // As the real RM, the answer shows what the node shows at that moment.
            match cluster.resize(&id, option.resource.into()) {
                Ok(shown) => json_answer(cluster, resource_info(shown)),
                Err(refusal) => refused(refusal),
            }
        }
        ("GET", ["get-node-labels"]) => json_answer(cluster, cluster.labels_json()),
        ("POST", ["add-node-labels"]) => {
            let wanted: NodeLabelsBody = match serde_json::from_slice(body) {
                Ok(wanted) => wanted,
                Err(err) => return unmarshal_error(&err),
            };
            let pairs: Vec<(String, bool)> = wanted
                .node_label_info
                .into_iter()
                .map(|label| (label.name, label.exclusivity))
                .collect();
            match cluster.add_labels(&pairs) {
                Ok(()) => StatusCode::OK.into_response(),
                Err(refusal) => refused(refusal),
            }
        }
        ("POST", ["replace-node-to-labels"]) => {
            let wanted: NodeToLabelsBody = match serde_json::from_slice(body) {
                Ok(wanted) => wanted,
                Err(err) => return unmarshal_error(&err),
            };
            let mut mapping = Vec::new();
            for entry in wanted.node_to_labels {
                match parse_node_id(&entry.node_id) {
                    Ok(id) => mapping.push((id, entry.labels)),
                    Err(refusal) => return refused(refusal),
                }
            }
            match cluster.replace_labels(&mapping) {
                Ok(()) => StatusCode::OK.into_response(),
                Err(refusal) => refused(refusal),
            }
        }
        ("POST", ["containers", container, "signal", command]) => {
            let Ok(command) =
                serde_json::from_value::<SignalCommand>(json!(command.to_uppercase()))
            else {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("Invalid command: {}", command.to_uppercase()),
                )
                    .into_response();
            };
            if container.parse::<yarn_types::ContainerId>().is_err() {
                return remote_exception(
                    StatusCode::BAD_REQUEST,
                    "IllegalArgumentException",
                    &format!("Invalid ContainerId: {container}"),
                    "java.lang.IllegalArgumentException",
                );
            }
            cluster.record_signal(container, command);
            StatusCode::OK.into_response()
        }
        _ => jetty_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn cluster_info(state: &DoubleState) -> Value {
    let ha_state = match *lock(&state.role) {
        Role::Active => "ACTIVE",
        Role::Standby { .. } => "STANDBY",
    };
    json!({"clusterInfo": {
        "id": 1_700_000_000_000_i64,
        "startedOn": 1_700_000_000_000_i64,
        "state": "STARTED",
        "haState": ha_state,
        "rmStateStoreName": "org.apache.hadoop.yarn.server.resourcemanager.recovery.ZKRMStateStore",
        "resourceManagerVersion": "3.3.6",
        "resourceManagerBuildVersion": "3.3.6 from double",
        "resourceManagerVersionBuiltOn": "2023-06-18T08:22Z",
        "hadoopVersion": "3.3.6",
        "hadoopBuildVersion": "3.3.6 from double",
        "hadoopVersionBuiltOn": "2023-06-18T08:22Z",
        "haZooKeeperConnectionState": "CONNECTED"
    }})
}

fn resource_info(capacity: Resources) -> Value {
    json!({"resourceInfo": {"memory": capacity.memory_mb, "vCores": capacity.vcores}})
}

fn node_states(uri: &Uri) -> Result<Vec<NodeState>, Refusal> {
    let Some(query) = uri.query() else {
        return Ok(Vec::new());
    };
    let Some((_, states)) =
        url::form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == "states")
    else {
        return Ok(Vec::new());
    };
    states
        .split(',')
        .map(|name| {
            name.parse::<NodeState>().map_err(|_| {
                Refusal::IllegalArgument(format!(
                    "No enum constant org.apache.hadoop.yarn.api.records.NodeState.{}",
                    name.to_uppercase()
                ))
            })
        })
        .collect()
}

fn parse_node_id(text: &str) -> Result<NodeId, Refusal> {
    text.parse().map_err(|_| {
        Refusal::IllegalArgument(format!("Invalid NodeId [{text}]. Expected host:port"))
    })
}

fn json_answer(cluster: &DoubleCluster, value: Value) -> Response {
    let value = match cluster.style() {
        JerseyStyle::Natural => natural(value),
        JerseyStyle::Mapped => mapped(value),
    };
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::IllegalArgument(message) => remote_exception(
            StatusCode::BAD_REQUEST,
            "IllegalArgumentException",
            &message,
            "java.lang.IllegalArgumentException",
        ),
        Refusal::NotFound(message) => remote_exception(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            &message,
            "org.apache.hadoop.yarn.webapp.NotFoundException",
        ),
        Refusal::BadRequest(message) => remote_exception(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            &message,
            "org.apache.hadoop.yarn.webapp.BadRequestException",
        ),
        Refusal::Unavailable(message) => remote_exception(
            StatusCode::SERVICE_UNAVAILABLE,
            "YarnRuntimeException",
            &message,
            "org.apache.hadoop.yarn.exceptions.YarnRuntimeException",
        ),
    }
}

fn unmarshal_error(err: &serde_json::Error) -> Response {
    remote_exception(
        StatusCode::BAD_REQUEST,
        "WebApplicationException",
        &format!("javax.xml.bind.UnmarshalException: {err}"),
        "javax.ws.rs.WebApplicationException",
    )
}

/// `{"RemoteException":{...}}` with the status `GenericExceptionHandler` maps it to.
fn remote_exception(status: StatusCode, exception: &str, message: &str, class: &str) -> Response {
    let body = json!({"RemoteException": {
        "exception": exception,
        "message": message,
        "javaClassName": class,
    }});
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// Jetty's HTML error page (what filters answer, before Jersey).
fn jetty_error(status: StatusCode, message: &str) -> Response {
    let code = status.as_u16();
    let page = format!(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=utf-8\"/>\n\
         <title>Error {code} {message}</title>\n</head>\n<body><h2>HTTP ERROR {code}</h2>\n\
         <p>Problem accessing /ws/v1/cluster. Reason:\n<pre>    {message}</pre></p>\n</body>\n</html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html;charset=iso-8859-1")],
        page,
    )
        .into_response()
}

/// A Kerberos principal's short name (`yarn/host@REALM` -> `yarn`), as the ACLs compare it.
fn short_name(principal: &str) -> &str {
    principal.split(['/', '@']).next().unwrap_or(principal)
}

/// The AuthenticationFilter's answer to a simple-auth request without `user.name`.
fn pseudo_auth_challenge() -> Response {
    challenge("PseudoAuth")
}

fn negotiate_challenge() -> Response {
    challenge("Negotiate")
}

/// Jetty's 401 page with the filter's `WWW-Authenticate` scheme.
fn challenge(scheme: &'static str) -> Response {
    let mut response = jetty_error(StatusCode::UNAUTHORIZED, "Authentication required");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
    response
}

fn standby_answer(active: Option<&str>, uri: &Uri) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    match active {
        Some(active) => {
            let location = format!("{}{path_and_query}", active.trim_end_matches('/'));
            let mut response = (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::CONTENT_TYPE, "text/plain;charset=utf-8")],
                format!("This is standby RM. The redirect url is: {location}\n"),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        None => {
            let mut response = (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::CONTENT_TYPE, "text/plain;charset=utf-8")],
                "Can not find any active RM. Will retry in next 5 seconds.\n\
                 HA Zookeeper Connection State: CONNECTED\n",
            )
                .into_response();
            if let Ok(value) =
                HeaderValue::from_str(&format!("5;url={path_and_query}?next.refresh.interval=1"))
            {
                response.headers_mut().insert("Refresh", value);
            }
            response
        }
    }
}

fn injected_failure(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        remote_exception(
            status,
            "YarnRuntimeException",
            "injected failure",
            "org.apache.hadoop.yarn.exceptions.YarnRuntimeException",
        )
    } else {
        jetty_error(status, "injected failure")
    }
}
