//! Leader election with a `coordination.k8s.io/v1` Lease, so that two replicas never act at
//! once. Taking or renewing the Lease is an update guarded by its `resourceVersion`: of two
//! replicas racing, the API server lets exactly one win. A replica that loses the Lease after
//! holding it stops acting at once (the process exits and restarts as a follower).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

/// Where the Lease is and who we are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSettings {
    /// Lease name.
    pub name: String,
    /// This replica (the pod name).
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub duration: Duration,
    /// How often the holder renews.
    pub renew_every: Duration,
}

/// What to do with the Lease as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseStep {
    /// No Lease yet: create it, held by us.
    Create,
    /// Ours: renew it.
    Renew,
    /// Expired or released by another: take it over.
    TakeOver,
    /// Held by another until this time.
    Wait {
        /// The holder.
        holder: String,
    },
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

/// The step for `lease` at `now` (pure).
pub fn step(lease: Option<&Lease>, identity: &str, now: Timestamp) -> LeaseStep {
    let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
        return if lease.is_some() {
            LeaseStep::TakeOver
        } else {
            LeaseStep::Create
        };
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == identity {
        return LeaseStep::Renew;
    }
    let expires = spec.renew_time.as_ref().map(|t| t.0).and_then(|renewed| {
        let span =
            jiff::SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
        renewed.checked_add(span).ok()
    });
    if holder.is_empty() || expires.is_none_or(|e| e <= now) {
        LeaseStep::TakeOver
    } else {
        LeaseStep::Wait {
            holder: holder.to_owned(),
        }
    }
}

fn held_spec(
    settings: &LeaseSettings,
    old: Option<&LeaseSpec>,
    now: Timestamp,
    take: bool,
) -> LeaseSpec {
    let transitions = old.and_then(|s| s.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(settings.identity.clone()),
        lease_duration_seconds: Some(seconds(settings.duration)),
        acquire_time: if take {
            Some(MicroTime(now))
        } else {
            old.and_then(|s| s.acquire_time.clone())
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if take && old.is_some() {
            transitions + 1
        } else {
            transitions
        }),
        ..LeaseSpec::default()
    }
}

/// Tries to hold the Lease once; `Ok(true)` when we hold it afterwards. A lost race (409) is
/// `Ok(false)`.
pub async fn try_hold(api: &Api<Lease>, settings: &LeaseSettings) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&settings.name).await?;
    let result = match step(current.as_ref(), &settings.identity, now) {
        LeaseStep::Wait { .. } => return Ok(false),
        LeaseStep::Create => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(settings.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(held_spec(settings, None, now, true)),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        step @ (LeaseStep::Renew | LeaseStep::TakeOver) => {
            let mut lease = current.unwrap_or_default();
            lease.spec = Some(held_spec(
                settings,
                lease.spec.as_ref(),
                now,
                step == LeaseStep::TakeOver,
            ));
            // `metadata.resourceVersion` stays: the update fails if anyone changed the Lease.
            api.replace(&settings.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

/// Tries to take the Lease every `renew_every` until this replica holds it: `true` once it leads,
/// `false` when `stop` completes first.
pub async fn wait_to_lead(
    api: &Api<Lease>,
    settings: &LeaseSettings,
    stop: impl Future<Output = ()>,
) -> bool {
    tracing::info!(identity = %settings.identity, lease = %settings.name, "waiting for the leader Lease");
    let mut stop = std::pin::pin!(stop);
    loop {
        match try_hold(api, settings).await {
            Ok(true) => return true,
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "cannot read the Lease"),
        }
        tokio::select! {
            () = tokio::time::sleep(settings.renew_every) => {}
            () = &mut stop => return false,
        }
    }
}

impl LeaseSettings {
    /// How long after its last renewal the holder still acts: two thirds of the Lease's
    /// duration, so that it has stopped well before another replica may take the Lease over.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }
}

/// What every action of a leading replica checks first: whether its last renewal is recent
/// enough that no other replica may hold the Lease. A process that was frozen (SIGSTOP, a VM
/// pause) finds its leadership stale the moment it wakes, before any timer of
/// [`keep_leading`] has run, and does nothing.
#[derive(Clone, Debug)]
pub struct Leadership {
    state: std::sync::Arc<LeadershipState>,
}

#[derive(Debug)]
struct LeadershipState {
    epoch: tokio::time::Instant,
    renewed_ms: std::sync::atomic::AtomicU64,
    deadline: Duration,
}

/// `renewed_ms` before the first renewal.
const NEVER: u64 = u64::MAX;

impl Leadership {
    /// Leadership not held yet, valid for `settings.renew_deadline()` after each renewal.
    pub fn new(settings: &LeaseSettings) -> Leadership {
        Leadership {
            state: std::sync::Arc::new(LeadershipState {
                epoch: tokio::time::Instant::now(),
                renewed_ms: std::sync::atomic::AtomicU64::new(NEVER),
                deadline: settings.renew_deadline(),
            }),
        }
    }

    fn renewed(&self, at: tokio::time::Instant) {
        let ms = u64::try_from(at.duration_since(self.state.epoch).as_millis())
            .unwrap_or(NEVER - 1)
            .min(NEVER - 1);
        let _ = self.state.renewed_ms.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |old| Some(if old == NEVER { ms } else { old.max(ms) }),
        );
    }

    /// Whether this replica may still act.
    pub fn is_current(&self) -> bool {
        let renewed_ms = self
            .state
            .renewed_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if renewed_ms == NEVER {
            return false;
        }
        let renewed = self.state.epoch + Duration::from_millis(renewed_ms);
        tokio::time::Instant::now() < renewed + self.state.deadline
    }
}

/// Why a request was not sent: this replica does not (or no longer) hold the Lease.
#[derive(Debug, thiserror::Error)]
#[error("not leading: writes are refused until this replica holds the Lease again")]
pub struct NotLeading;

/// A layer for the replica's Kubernetes client that refuses every write (anything but GET and
/// HEAD, the Lease's own requests excepted) while its [`Leadership`] is not current. Checked on
/// each request, so a request made after the process was frozen past its Lease never leaves,
/// wherever in a reconcile it was.
#[derive(Clone, Debug)]
pub struct FenceLayer {
    leadership: Leadership,
}

impl FenceLayer {
    /// A fence over `leadership`.
    pub fn new(leadership: Leadership) -> FenceLayer {
        FenceLayer { leadership }
    }
}

impl<S> tower::Layer<S> for FenceLayer {
    type Service = Fence<S>;

    fn layer(&self, inner: S) -> Fence<S> {
        Fence {
            inner,
            leadership: self.leadership.clone(),
        }
    }
}

/// The service [`FenceLayer`] makes.
#[derive(Clone, Debug)]
pub struct Fence<S> {
    inner: S,
    leadership: Leadership,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a request changes something outside the Lease.
pub fn fenced(method: &http::Method, path: &str) -> bool {
    let reads = matches!(*method, http::Method::GET | http::Method::HEAD);
    !reads && !path.starts_with("/apis/coordination.k8s.io/")
}

impl<S, B> tower::Service<http::Request<B>> for Fence<S>
where
    S: tower::Service<http::Request<B>>,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if fenced(request.method(), request.uri().path()) && !self.leadership.is_current() {
            return Box::pin(std::future::ready(Err(Box::new(NotLeading) as BoxError)));
        }
        let answer = self.inner.call(request);
        Box::pin(async move { answer.await.map_err(Into::into) })
    }
}

/// A Kubernetes client from the environment whose writes are fenced by `leadership`.
pub async fn fenced_client(leadership: &Leadership) -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&FenceLayer::new(leadership.clone()))
        .build())
}

/// Renews the Lease every `renew_every` and returns when it is lost: taken by another replica,
/// or not renewed within [`LeaseSettings::renew_deadline`] of the last renewal (an API outage,
/// a request that hangs). Every attempt is bounded by that deadline, so a replica never acts
/// past it, long before another may take the Lease (no split brain). Each renewal refreshes
/// `leadership`.
pub async fn keep_leading(api: Api<Lease>, settings: LeaseSettings, leadership: Leadership) {
    let mut renewed_at = tokio::time::Instant::now();
    leadership.renewed(renewed_at);
    loop {
        tokio::time::sleep(settings.renew_every).await;
        let attempt = tokio::time::Instant::now();
        let deadline = renewed_at + settings.renew_deadline();
        let Some(left) = deadline
            .checked_duration_since(attempt)
            .filter(|d| !d.is_zero())
        else {
            tracing::warn!(lease = %settings.name, "the Lease was not renewed in time: stepping down");
            return;
        };
        match tokio::time::timeout(left, try_hold(&api, &settings)).await {
            // Counted from before the request: the API server may have taken a while.
            Ok(Ok(true)) => {
                renewed_at = attempt;
                leadership.renewed(attempt);
            }
            Ok(Ok(false)) => return,
            Ok(Err(error)) => tracing::warn!(%error, "cannot renew the Lease"),
            Err(_) => {
                tracing::warn!(lease = %settings.name, "renewing the Lease hung past its deadline: stepping down");
                return;
            }
        }
    }
}

/// [`keep_leading`] as a task; the receiver resolves when the Lease is lost (give it to
/// [`run_until_lost`]). Abort the task to stop renewing.
pub fn renew_in_background(
    api: Api<Lease>,
    settings: LeaseSettings,
    leadership: Leadership,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let renewer = tokio::spawn(async move {
        keep_leading(api, settings, leadership).await;
        let _ = lost_tx.send(());
    });
    (renewer, lost_rx)
}

/// Drives a controller (`reconciling`, which stops gracefully on a signal) until it ends, or
/// until `lost` says the Lease was lost: then it returns at once, dropping the reconciles in
/// flight. They may hang on the very API server the Lease could not be renewed with, and a
/// replica that no longer leads must exit now; their writes could not pass the fence anyway.
/// Returns whether leadership was lost.
pub async fn run_until_lost(
    reconciling: impl std::future::Future<Output = ()>,
    lost: tokio::sync::oneshot::Receiver<()>,
) -> bool {
    tokio::select! {
        () = reconciling => false,
        _ = lost => {
            tracing::error!("leadership lost: stopping without waiting for reconciles in flight");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lost_lease_stops_the_controller_without_waiting_for_hung_reconciles() {
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
        lost_tx.send(()).unwrap();
        // A reconcile stuck forever on a hung API server.
        assert!(run_until_lost(std::future::pending(), lost_rx).await);

        let (_keep, lost_rx) = tokio::sync::oneshot::channel::<()>();
        assert!(!run_until_lost(std::future::ready(()), lost_rx).await);
    }

    fn lease(holder: &str, renewed: &str, seconds: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                lease_duration_seconds: Some(seconds),
                renew_time: Some(MicroTime(renewed.parse().unwrap())),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn steps_follow_holder_and_expiry() {
        let now: Timestamp = "2026-11-24T12:00:10Z".parse().unwrap();
        assert_eq!(step(None, "a", now), LeaseStep::Create);
        assert_eq!(
            step(Some(&lease("a", "2026-11-24T12:00:00Z", 15)), "a", now),
            LeaseStep::Renew
        );
        assert_eq!(
            step(Some(&lease("b", "2026-11-24T12:00:00Z", 15)), "a", now),
            LeaseStep::Wait {
                holder: "b".to_owned()
            }
        );
        // b stopped renewing 15 s ago: expired.
        assert_eq!(
            step(Some(&lease("b", "2026-11-24T11:59:55Z", 15)), "a", now),
            LeaseStep::TakeOver
        );
        assert_eq!(
            step(Some(&lease("", "2026-11-24T12:00:09Z", 15)), "a", now),
            LeaseStep::TakeOver
        );
    }

    #[test]
    fn taking_over_counts_a_transition() {
        let settings = LeaseSettings {
            name: "elastic-yarn-operator".to_owned(),
            identity: "a".to_owned(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        };
        let now: Timestamp = "2026-11-24T12:00:10Z".parse().unwrap();
        let old = lease("b", "2026-11-24T11:00:00Z", 15).spec.unwrap();
        let taken = held_spec(&settings, Some(&old), now, true);
        assert_eq!(taken.lease_transitions, Some(1));
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        let renewed = held_spec(&settings, Some(&taken), now, false);
        assert_eq!(renewed.lease_transitions, Some(1));
        assert_eq!(renewed.acquire_time, taken.acquire_time);
    }
}

#[cfg(test)]
mod renewal_tests {
    use std::time::Duration;

    use http::{Request, Response};
    use kube::client::Body;

    use super::*;

    fn settings() -> LeaseSettings {
        LeaseSettings {
            name: "elastic-yarn-operator".to_owned(),
            identity: "operator-a".to_owned(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_that_hangs_steps_down_before_another_may_take_over() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api: Api<Lease> = Api::namespaced(kube::Client::new(service, "default"), "yarn");
        let started = tokio::time::Instant::now();
        let leadership = Leadership::new(&settings());
        let leading = tokio::spawn(keep_leading(api, settings(), leadership.clone()));
        // The API server takes the request and never answers.
        let (_request, _never) = handle.next_request().await.expect("a renewal");
        leading.await.expect("keep_leading returned");
        let acted_for = started.elapsed();
        assert!(
            acted_for <= settings().renew_deadline(),
            "stepped down after {acted_for:?}, past the renew deadline"
        );
        assert!(
            acted_for < settings().duration,
            "before the Lease could expire"
        );
        assert!(
            !leadership.is_current(),
            "nothing acts on a stale leadership"
        );
    }

    #[test]
    fn only_writes_outside_the_lease_are_fenced() {
        assert!(fenced(
            &http::Method::PATCH,
            "/api/v1/namespaces/yarn/pods/nm-1"
        ));
        assert!(fenced(
            &http::Method::POST,
            "/apis/events.k8s.io/v1/namespaces/yarn/events"
        ));
        assert!(!fenced(&http::Method::GET, "/api/v1/pods"));
        assert!(!fenced(
            &http::Method::PUT,
            "/apis/coordination.k8s.io/v1/namespaces/elastic-yarn/leases/elastic-yarn-operator"
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fenced_client_sends_no_write_once_leadership_is_stale() {
        use tower::Layer;
        let (service, mut handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        let leadership = Leadership::new(&settings());
        let client = kube::Client::new(FenceLayer::new(leadership.clone()).layer(service), "yarn");
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, "yarn");
        let refused = pods
            .delete("nm-1", &kube::api::DeleteParams::default())
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("not leading"), "{refused}");
        leadership.renewed(tokio::time::Instant::now());
        let sent = tokio::spawn(async move {
            pods.delete("nm-1", &kube::api::DeleteParams::default())
                .await
        });
        let (request, _answer) = handle.next_request().await.expect("the delete goes out");
        assert_eq!(request.method(), http::Method::DELETE);
        drop(sent);
    }

    #[tokio::test(start_paused = true)]
    async fn leadership_goes_stale_without_renewals_whatever_the_timers_do() {
        let leadership = Leadership::new(&settings());
        assert!(!leadership.is_current(), "not before the first renewal");
        leadership.renewed(tokio::time::Instant::now());
        assert!(leadership.is_current());
        // A frozen process: time passes, no task runs.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!leadership.is_current());
        leadership.renewed(tokio::time::Instant::now());
        assert!(leadership.is_current());
    }
}
