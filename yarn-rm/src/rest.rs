//! The REST backend: RMWebServices over HTTP, with HA, authentication, retries and metrics.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, SET_COOKIE, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use yarn_types::ContainerId;

use super::auth::{
    AUTH_COOKIE, CookieJar, DELEGATION_TOKEN_HEADER, RmAuth, SpnegoExchange, http_service,
};
use super::error::RmError;
use super::metrics::{AuthLabels, RmMetrics};
use super::model::{
    ClusterInfo, ClusterInfoAnswer, HaState, NodeAnswer, NodeId, NodeLabel, NodeLabelsBody,
    NodeReport, NodeState, NodeToLabels, NodeToLabelsBody, NodesAnswer, OverCommitTimeout,
    ResourceInfo, ResourceOptionBody, Resources, SignalCommand,
};
use super::retry::RetryPolicy;
use super::{LabelOutcome, ResizeOutcome, ResourceManager, check_label_name, lock};

/// Path of the cluster web services under an RM address.
const CLUSTER_PATH: &str = "ws/v1/cluster/";

/// How the client reaches and treats the RMs.
#[derive(Clone, Debug)]
pub struct RestSettings {
    /// RM web addresses (`http://host:8088`); with HA, every RM.
    pub addresses: Vec<String>,
    /// How to authenticate.
    pub auth: RmAuth,
    /// Limit of one HTTP exchange.
    pub request_timeout: Duration,
    /// Limit of establishing a connection.
    pub connect_timeout: Duration,
    /// Retries of idempotent calls after transient failures.
    pub retry: RetryPolicy,
    /// Calls in flight at once; more wait their turn.
    pub max_in_flight: usize,
    /// Reads of a resized node before the resize counts as not confirmed.
    pub confirm_reads: u32,
    /// Pause between two confirming reads.
    pub confirm_interval: Duration,
    /// PEM bundle of the CAs that sign the RMs' certificates (`https://` addresses); `None`
    /// trusts the platform's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Addresses the client may not connect to, checked at every DNS resolution (`None`: any).
    pub egress: Option<std::sync::Arc<controlkit::egress::EgressPolicy>>,
}

impl RestSettings {
    /// Defaults for the given RMs and authentication.
    pub fn new(addresses: Vec<String>, auth: RmAuth) -> RestSettings {
        RestSettings {
            addresses,
            auth,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            retry: RetryPolicy::default(),
            max_in_flight: 32,
            confirm_reads: 5,
            confirm_interval: Duration::from_millis(200),
            ca_file: None,
            egress: None,
        }
    }
}

/// One call to RMWebServices.
struct Call {
    name: &'static str,
    method: Method,
    /// Relative to `/ws/v1/cluster/`.
    path: String,
    query: Vec<(&'static str, String)>,
    body: Option<bytes::Bytes>,
    /// Safe to send twice (reads, and writes of absolute values).
    idempotent: bool,
}

impl Call {
    fn get(name: &'static str, path: impl Into<String>) -> Call {
        Call {
            name,
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent: true,
        }
    }

    fn post(
        name: &'static str,
        path: impl Into<String>,
        body: &impl serde::Serialize,
    ) -> Result<Call, RmError> {
        let body = serde_json::to_vec(body).map_err(|err| RmError::InvalidInput {
            message: format!("cannot encode the {name} request: {err}"),
        })?;
        Ok(Call {
            name,
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            body: Some(body.into()),
            idempotent: true,
        })
    }
}

/// How one attempt at one RM ended, when it did not succeed.
enum Attempt {
    /// The RM is not (or no longer) the active one: try another.
    Failover { detail: String, hint: Option<usize> },
    /// The call failed; `sent` tells whether the RM may have acted on it.
    Failed { error: RmError, sent: bool },
}

/// A successful answer.
struct Answer {
    body: bytes::Bytes,
}

/// The REST client.
#[derive(Debug)]
pub struct RestResourceManager {
    http: reqwest::Client,
    /// `<address>/ws/v1/cluster/` for each RM.
    bases: Vec<Url>,
    settings: RestSettings,
    /// Index of the RM believed active.
    active: Mutex<Option<usize>>,
    /// The last RM found active, kept while `active` is forgotten, so that finding another
    /// one counts as a failover (whether the old one redirected, failed or died).
    last_active: Mutex<Option<usize>>,
    /// Where to look first when rediscovering (a standby's redirect).
    hint: Mutex<Option<usize>>,
    /// One discovery at a time; the others wait for its result.
    discovery: tokio::sync::Mutex<()>,
    cookies: CookieJar,
    limiter: Semaphore,
    metrics: RmMetrics,
}

impl RestResourceManager {
    /// A client for the given RMs. Fails on an address that is not `http(s)://host[:port]`.
    pub fn new(settings: RestSettings) -> Result<RestResourceManager, RmError> {
        RestResourceManager::with_metrics(settings, RmMetrics::default())
    }

    /// A client recording into the given metrics.
    pub fn with_metrics(
        settings: RestSettings,
        metrics: RmMetrics,
    ) -> Result<RestResourceManager, RmError> {
        if settings.addresses.is_empty() {
            return Err(RmError::InvalidInput {
                message: "no ResourceManager address given".to_owned(),
            });
        }
        let bases = settings
            .addresses
            .iter()
            .map(|address| cluster_base(address))
            .collect::<Result<Vec<_>, _>>()?;
        if let RmAuth::Simple { user } = &settings.auth
            && user.trim().is_empty()
        {
            return Err(RmError::InvalidInput {
                message: "simple authentication needs a user name".to_owned(),
            });
        }
        let tls = super::tls::client_config(settings.ca_file.as_deref())?;
        let mut http = controlkit::process::http_client();
        if let Some(egress) = &settings.egress {
            http = http.dns_resolver(egress.resolver());
        }
        let http = http
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_max_idle_per_host(settings.max_in_flight.max(1))
            .build()
            .map_err(|err| RmError::InvalidInput {
                message: format!("cannot build the HTTP client: {err}"),
            })?;
        Ok(RestResourceManager {
            http,
            bases,
            limiter: Semaphore::new(settings.max_in_flight.max(1)),
            settings,
            active: Mutex::new(None),
            last_active: Mutex::new(None),
            hint: Mutex::new(None),
            discovery: tokio::sync::Mutex::new(()),
            cookies: CookieJar::default(),
            metrics,
        })
    }

    /// The client's metrics.
    pub fn metrics(&self) -> &RmMetrics {
        &self.metrics
    }

    /// The address of the RM currently believed active, if one was found.
    pub fn active_address(&self) -> Option<&str> {
        let index = (*lock(&self.active))?;
        self.settings.addresses.get(index).map(String::as_str)
    }

    /// What every RM says about itself (HA state included), for diagnosis.
    pub async fn every_rm(&self) -> Vec<(String, Result<ClusterInfo, RmError>)> {
        let mut answers = Vec::with_capacity(self.bases.len());
        for (index, address) in self.settings.addresses.iter().enumerate() {
            let answer = match self
                .send_once(index, &Call::get("cluster_info", "info"))
                .await
            {
                Ok(answer) => decode::<ClusterInfoAnswer>("cluster_info", &answer.body)
                    .map(|answer| answer.cluster_info),
                Err(Attempt::Failed { error, .. }) => Err(error),
                Err(Attempt::Failover { detail, .. }) => Err(RmError::NoActive { detail }),
            };
            answers.push((address.clone(), answer));
        }
        answers
    }

    /// Runs a call: on the active RM, with failover, retries, the concurrency limit and metrics.
    async fn execute(&self, call: &Call) -> Result<Answer, RmError> {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.limiter.acquire().await;
        let started = Instant::now();
        let result = self.execute_with_recovery(call).await;
        self.metrics.observe(
            call.name,
            result.as_ref().map(|_| ()).map_err(RmError::category),
            started.elapsed().as_secs_f64(),
        );
        result
    }

    async fn execute_with_recovery(&self, call: &Call) -> Result<Answer, RmError> {
        let mut retries = 0;
        let mut failovers = 0;
        // Two rounds through every RM cover a failover that happens while we look.
        let failover_budget = 2 * self.bases.len();
        loop {
            let attempt = match self.active_index().await {
                Ok(index) => self.send_once(index, call).await,
                Err(error) => Err(Attempt::Failed { error, sent: false }),
            };
            match attempt {
                Ok(answer) => return Ok(answer),
                Err(Attempt::Failover { detail, hint }) => {
                    self.forget_active(hint);
                    failovers += 1;
                    tracing::info!(call = call.name, %detail, "moving to another ResourceManager");
                    if failovers > failover_budget {
                        return Err(RmError::NoActive { detail });
                    }
                    if failovers % self.bases.len() == 0 {
                        tokio::time::sleep(
                            self.settings
                                .retry
                                .jittered_delay(u32::try_from(failovers / 2).unwrap_or(u32::MAX)),
                        )
                        .await;
                    }
                }
                Err(Attempt::Failed { error, sent }) => {
                    let may_retry = error.is_transient()
                        && (call.idempotent || !sent)
                        && retries < self.settings.retry.retries;
                    if !may_retry {
                        return Err(error);
                    }
                    if matches!(
                        error,
                        RmError::Unreachable { .. }
                            | RmError::Timeout { .. }
                            | RmError::NoActive { .. }
                    ) {
                        self.forget_active(None);
                    }
                    self.metrics.retries.inc();
                    tracing::debug!(call = call.name, error = %error, retries, "retrying");
                    tokio::time::sleep(self.settings.retry.jittered_delay(retries)).await;
                    retries += 1;
                }
            }
        }
    }

    /// The active RM's index, finding it when unknown.
    async fn active_index(&self) -> Result<usize, RmError> {
        if let Some(index) = *lock(&self.active) {
            return Ok(index);
        }
        // A single RM is not in an HA pair: nothing to find.
        if self.bases.len() == 1 {
            *lock(&self.active) = Some(0);
            return Ok(0);
        }
        let _one_at_a_time = self.discovery.lock().await;
        if let Some(index) = *lock(&self.active) {
            return Ok(index);
        }
        let first = lock(&self.hint).take().unwrap_or(0);
        let mut notes = Vec::new();
        for offset in 0..self.bases.len() {
            let index = (first + offset) % self.bases.len();
            let address = &self.settings.addresses[index];
            match self
                .send_once(index, &Call::get("cluster_info", "info"))
                .await
            {
                Ok(answer) => match decode::<ClusterInfoAnswer>("cluster_info", &answer.body) {
                    Ok(info) if info.cluster_info.ha_state == HaState::Active => {
                        *lock(&self.active) = Some(index);
                        let previous = lock(&self.last_active).replace(index);
                        if previous.is_some_and(|previous| previous != index) {
                            self.metrics.failovers.inc();
                        }
                        tracing::info!(%address, "active ResourceManager found");
                        return Ok(index);
                    }
                    Ok(info) => {
                        notes.push(format!("{address} is {:?}", info.cluster_info.ha_state))
                    }
                    Err(error) => notes.push(format!("{address}: {error}")),
                },
                Err(Attempt::Failed { error, .. }) => {
                    // Credentials that fail fail everywhere: say so rather than "no active RM".
                    if matches!(
                        error,
                        RmError::Kerberos { .. }
                            | RmError::Unauthorized { .. }
                            | RmError::Forbidden { .. }
                    ) {
                        return Err(error);
                    }
                    notes.push(format!("{address}: {error}"));
                }
                Err(Attempt::Failover { detail, .. }) => notes.push(format!("{address}: {detail}")),
            }
        }
        Err(RmError::NoActive {
            detail: notes.join("; "),
        })
    }

    fn forget_active(&self, hint: Option<usize>) {
        *lock(&self.active) = None;
        if hint.is_some() {
            *lock(&self.hint) = hint;
        }
    }

    /// One exchange with RM `index` (two when a rejected cookie is replaced by SPNEGO).
    async fn send_once(&self, index: usize, call: &Call) -> Result<Answer, Attempt> {
        let mut cookie_rejected = false;
        loop {
            let (request, exchange, used_cookie) =
                self.request(index, call, cookie_rejected).await?;
            let address = &self.settings.addresses[index];
            let mut response = request
                .send()
                .await
                .map_err(|err| self.transport_error(address, &err))?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            self.cookies.absorb(
                index,
                headers
                    .get_all(SET_COOKIE)
                    .iter()
                    .filter_map(|value| value.to_str().ok()),
            );
            let body = response
                .bytes()
                .await
                .map_err(|err| self.transport_error(address, &err))?;

            if status == StatusCode::UNAUTHORIZED && used_cookie && !cookie_rejected {
                // The cookie expired or the RM restarted with a new secret: authenticate again.
                self.cookies.forget(index);
                self.count_auth("cookie_rejected", Ok(()));
                cookie_rejected = true;
                continue;
            }
            if status.is_redirection() {
                return Err(Attempt::Failover {
                    detail: standby_detail(address, &headers, &body),
                    hint: self.redirect_target(&headers),
                });
            }
            if status.is_success() && body.starts_with(b"There is no active RM") {
                return Err(Attempt::Failover {
                    detail: format!("{address} is standby and knows no active RM"),
                    hint: None,
                });
            }
            if let Some(exchange) = exchange {
                let finished = finish_spnego(exchange, &headers, status);
                self.count_auth(
                    "spnego",
                    finished.as_ref().map(|_| ()).map_err(RmError::category),
                );
                finished.map_err(|error| Attempt::Failed { error, sent: true })?;
            }
            if status.is_success() {
                return Ok(Answer { body });
            }
            return Err(Attempt::Failed {
                error: RmError::from_answer(status.as_u16(), &body),
                sent: true,
            });
        }
    }

    /// Builds the HTTP request with the authentication it needs.
    async fn request(
        &self,
        index: usize,
        call: &Call,
        skip_cookie: bool,
    ) -> Result<(reqwest::RequestBuilder, Option<SpnegoExchange>, bool), Attempt> {
        let mut url = self.bases[index].clone();
        url.path_segments_mut()
            .map_err(|()| {
                failed(RmError::InvalidInput {
                    message: "RM address cannot take a path".to_owned(),
                })
            })?
            .pop_if_empty()
            .extend(call.path.split('/'));
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &call.query {
                pairs.append_pair(name, value);
            }
            if let RmAuth::Simple { user } = &self.settings.auth {
                pairs.append_pair("user.name", user);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .header(ACCEPT, "application/json");
        if let Some(body) = &call.body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let mut exchange = None;
        let mut used_cookie = false;
        match &self.settings.auth {
            RmAuth::Simple { .. } => {}
            RmAuth::DelegationToken { token } => {
                request = request.header(DELEGATION_TOKEN_HEADER, token.expose());
            }
            RmAuth::Kerberos { principal, service } => {
                match self.cookies.get(index).filter(|_| !skip_cookie) {
                    Some(cookie) => {
                        used_cookie = true;
                        request =
                            request.header(COOKIE, format!("{AUTH_COOKIE}={}", cookie.expose()));
                    }
                    None => {
                        let service = service.clone().unwrap_or_else(|| {
                            http_service(self.bases[index].host_str().unwrap_or(""))
                        });
                        let principal = principal.clone();
                        // GSSAPI may talk to the KDC: keep it off the async workers.
                        let started = tokio::task::spawn_blocking(move || {
                            SpnegoExchange::start(&principal, &service)
                        })
                        .await
                        .map_err(|err| {
                            failed(RmError::Kerberos {
                                message: format!("the SPNEGO task failed: {err}"),
                            })
                        })?;
                        let started = started.inspect_err(|error| {
                            self.count_auth("spnego", Err(error.category()));
                        });
                        let started =
                            started.map_err(|error| Attempt::Failed { error, sent: false })?;
                        request = request.header(
                            AUTHORIZATION,
                            format!("Negotiate {}", started.token.expose()),
                        );
                        exchange = Some(started);
                    }
                }
            }
        }
        Ok((request, exchange, used_cookie))
    }

    fn count_auth(&self, kind: &'static str, outcome: Result<(), &'static str>) {
        let outcome = outcome.err().unwrap_or("ok");
        self.metrics
            .authentications
            .get_or_create(&AuthLabels { kind, outcome })
            .inc();
    }

    fn transport_error(&self, address: &str, err: &reqwest::Error) -> Attempt {
        if err.is_timeout() {
            return failed_sent(RmError::Timeout {
                address: address.to_owned(),
                seconds: self.settings.request_timeout.as_secs_f64(),
            });
        }
        let detail = error_chain(err);
        if err.is_connect() {
            // Nothing was sent: with HA another RM may be the active one now.
            if self.bases.len() > 1 {
                return Attempt::Failover {
                    detail: format!("{address} is unreachable: {detail}"),
                    hint: None,
                };
            }
            return failed(RmError::Unreachable {
                address: address.to_owned(),
                detail,
            });
        }
        failed_sent(RmError::Unreachable {
            address: address.to_owned(),
            detail,
        })
    }

    /// The RM a standby's `Location` points to, when it is one of ours.
    fn redirect_target(&self, headers: &HeaderMap) -> Option<usize> {
        let location = Url::parse(headers.get(LOCATION)?.to_str().ok()?).ok()?;
        self.bases.iter().position(|base| {
            base.host_str() == location.host_str()
                && base.port_or_known_default() == location.port_or_known_default()
        })
    }

    async fn get_json<T: DeserializeOwned>(&self, call: Call) -> Result<T, RmError> {
        let name = call.name;
        let answer = self.execute(&call).await?;
        decode(name, &answer.body)
    }
}

impl ResourceManager for RestResourceManager {
    async fn cluster_info(&self) -> Result<ClusterInfo, RmError> {
        let answer: ClusterInfoAnswer = self.get_json(Call::get("cluster_info", "info")).await?;
        Ok(answer.cluster_info)
    }

    async fn nodes(&self, states: &[NodeState]) -> Result<Vec<NodeReport>, RmError> {
        let mut call = Call::get("nodes", "nodes");
        if !states.is_empty() {
            let names: Vec<&str> = states.iter().map(|state| state.as_str()).collect();
            call.query.push(("states", names.join(",")));
        }
        let answer = self.execute(&call).await?;
        decode_nodes(&answer.body)
    }

    async fn node(&self, id: &NodeId) -> Result<NodeReport, RmError> {
        let answer = self
            .execute(&Call::get("node", format!("nodes/{id}")))
            .await?;
        decode_node(&answer.body)
    }

    async fn resize(
        &self,
        id: &NodeId,
        capacity: Resources,
        over_commit: OverCommitTimeout,
    ) -> Result<ResizeOutcome, RmError> {
        let body = ResourceOptionBody {
            resource: capacity.into(),
            over_commit_timeout: over_commit.wire(),
        };
        // Absolute values: sending the same resize twice is harmless, so it may be retried.
        let call = Call::post("resize", format!("nodes/{id}/resource"), &body)?;
        let answer = self.execute(&call).await?;
        let accepted = decode::<ResourceInfoAnswer>("resize", &answer.body)?
            .into_info()
            .capacity();
        // The RM applies the change through its event dispatcher and answers the node's total at
        // that moment (new or old, whichever wins), so the node is read back until it shows the
        // new capacity.
        let mut seen = accepted;
        for read in 1..=self.settings.confirm_reads.max(1) {
            if read > 1 {
                tokio::time::sleep(self.settings.confirm_interval).await;
            }
            seen = self.node(id).await?.capacity();
            if seen == capacity {
                return Ok(ResizeOutcome {
                    node: id.clone(),
                    accepted,
                    confirmed: seen,
                    reads: read,
                });
            }
        }
        Err(RmError::NotConfirmed {
            node: id.clone(),
            requested: capacity,
            seen,
            reads: self.settings.confirm_reads.max(1),
        })
    }

    async fn node_labels(&self) -> Result<Vec<NodeLabel>, RmError> {
        let answer: NodeLabelsBody = self
            .get_json(Call::get("get_labels", "get-node-labels"))
            .await?;
        Ok(answer.node_label_info)
    }

    async fn ensure_node_label(&self, label: &str) -> Result<LabelOutcome, RmError> {
        check_label_name(label)?;
        let existing = self.node_labels().await?;
        if let Some(found) = existing.iter().find(|known| known.name == label) {
            return if found.exclusivity {
                Err(RmError::LabelConflict {
                    label: label.to_owned(),
                })
            } else {
                Ok(LabelOutcome::AlreadyPresent)
            };
        }
        let body = NodeLabelsBody {
            node_label_info: vec![NodeLabel {
                name: label.to_owned(),
                exclusivity: false,
            }],
        };
        self.execute(&Call::post("add_labels", "add-node-labels", &body)?)
            .await?;
        Ok(LabelOutcome::Created)
    }

    async fn set_node_labels(&self, id: &NodeId, labels: &[String]) -> Result<(), RmError> {
        for label in labels {
            check_label_name(label)?;
        }
        let body = NodeToLabelsBody {
            node_to_labels: vec![NodeToLabels {
                node_id: id.to_string(),
                labels: labels.to_vec(),
            }],
        };
        self.execute(&Call::post(
            "replace_labels",
            "replace-node-to-labels",
            &body,
        )?)
        .await?;
        Ok(())
    }

    async fn signal_container(
        &self,
        container: &ContainerId,
        command: SignalCommand,
    ) -> Result<(), RmError> {
        let call = Call {
            name: "signal",
            method: Method::POST,
            path: format!("containers/{container}/signal/{}", command.as_str()),
            query: Vec::new(),
            body: None,
            // A signal sent twice is delivered twice: never retried once it may have arrived.
            idempotent: false,
        };
        self.execute(&call).await?;
        Ok(())
    }
}

/// `{"resourceInfo":{...}}` or the bare object, as RM versions differ.
#[derive(Deserialize)]
#[serde(untagged)]
enum ResourceInfoAnswer {
    Wrapped {
        #[serde(rename = "resourceInfo")]
        resource_info: ResourceInfo,
    },
    Bare(ResourceInfo),
}

impl ResourceInfoAnswer {
    fn into_info(self) -> ResourceInfo {
        match self {
            ResourceInfoAnswer::Wrapped { resource_info } => resource_info,
            ResourceInfoAnswer::Bare(info) => info,
        }
    }
}

/// `<address>/ws/v1/cluster/`, from `http://host[:port][/]`.
fn cluster_base(address: &str) -> Result<Url, RmError> {
    let invalid = |why: &str| RmError::InvalidInput {
        message: format!("ResourceManager address {address:?}: {why}"),
    };
    let url = Url::parse(address.trim()).map_err(|err| invalid(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(&format!(
            "scheme {:?} is neither http nor https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(invalid("give only scheme, host and port"));
    }
    url.join(CLUSTER_PATH)
        .map_err(|err| invalid(&err.to_string()))
}

/// The nodes of a `GET /nodes` answer, in any of the RM's JSON notations.
pub fn decode_nodes(body: &[u8]) -> Result<Vec<NodeReport>, RmError> {
    let answer: NodesAnswer = decode("nodes", body)?;
    Ok(answer.nodes.map(|list| list.node).unwrap_or_default())
}

/// The node of a `GET /nodes/{id}` answer.
pub fn decode_node(body: &[u8]) -> Result<NodeReport, RmError> {
    let answer: NodeAnswer = decode("node", body)?;
    Ok(answer.node)
}

fn decode<T: DeserializeOwned>(call: &'static str, body: &[u8]) -> Result<T, RmError> {
    serde_json::from_slice(body).map_err(|err| RmError::Decode {
        call,
        // The answer itself is not repeated: the message reaches status and Events.
        detail: format!("{err} in an answer of {} bytes", body.len()),
    })
}

/// Completes mutual authentication when the RM sent its SPNEGO answer.
fn finish_spnego(
    exchange: SpnegoExchange,
    headers: &HeaderMap,
    status: StatusCode,
) -> Result<(), RmError> {
    let answer = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix("Negotiate "));
    match answer {
        Some(token) if status.is_success() => exchange.finish(token),
        // Hadoop's filter may leave out the answer token; the cookie is still valid.
        _ => Ok(()),
    }
}

fn standby_detail(address: &str, headers: &HeaderMap, body: &[u8]) -> String {
    match headers.get(LOCATION).and_then(|value| value.to_str().ok()) {
        Some(location) => format!("{address} is standby; it redirects to {location}"),
        None => format!(
            "{address} is standby and knows no active RM (an answer of {} bytes)",
            body.len()
        ),
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn failed(error: RmError) -> Attempt {
    Attempt::Failed { error, sent: false }
}

fn failed_sent(error: RmError) -> Attempt {
    Attempt::Failed { error, sent: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_cluster_bases() {
        let base = cluster_base("http://rm1.example.com:8088").expect("valid");
        assert_eq!(base.as_str(), "http://rm1.example.com:8088/ws/v1/cluster/");
        let base = cluster_base("http://rm1:8088/").expect("valid");
        assert_eq!(base.as_str(), "http://rm1:8088/ws/v1/cluster/");
        let base = cluster_base("https://rm1:8090").expect("valid");
        assert_eq!(base.as_str(), "https://rm1:8090/ws/v1/cluster/");
        for bad in [
            "rm1:8088",
            "ftp://rm1:8088",
            "http://rm1:8088/cluster",
            "http://:8088",
        ] {
            let error = cluster_base(bad).expect_err(bad);
            assert_eq!(error.category(), "invalid_input", "{bad}");
        }
    }

    #[test]
    fn resize_answers_read_wrapped_or_bare() {
        let wrapped: ResourceInfoAnswer =
            serde_json::from_str(r#"{"resourceInfo":{"memory":4096,"vCores":2}}"#).expect("parse");
        let bare: ResourceInfoAnswer =
            serde_json::from_str(r#"{"memory":"4096","vCores":"2"}"#).expect("parse");
        assert_eq!(wrapped.into_info(), bare.into_info());
    }
}
