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

/// Renews the Lease every `renew_every` and returns when it is lost: taken by another replica,
/// or not renewable for a whole Lease duration (an API outage), after which another replica may
/// hold it.
pub async fn keep_leading(api: Api<Lease>, settings: LeaseSettings) {
    let mut failures_since = None;
    loop {
        tokio::time::sleep(settings.renew_every).await;
        match try_hold(&api, &settings).await {
            Ok(true) => failures_since = None,
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot renew the Lease");
                let since = *failures_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= settings.duration {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
