//! Before anything is read or written: a spec the operator cannot act on is refused with its
//! reasons (`Ready=False`, an Event), as are URLs the installation does not let pools call and
//! a StaticIPPool that does not exist (yet).

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use staticip::crd::StaticIPPool;

use super::super::addresses;
use super::super::error::{ObserveError, ReconcileError};
use super::super::status::invalid_status;
use super::Context;
use super::events::PoolEvents;
use crate::build::PoolRef;
use crate::crd::ElasticNodePool;
use crate::validate::{MetricsSource, SpecError, SpecErrors, ValidatedPool, validate};

/// A pool that passed the gates.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// Its validated spec.
    pub validated: ValidatedPool,
    /// The StaticIPPool it names, if any.
    pub static_pool: Option<StaticIPPool>,
}

/// The pool, admitted; or the action after its refusal was reported.
pub(crate) async fn admit(
    ctx: &Context,
    pool: &ElasticNodePool,
    pool_ref: &PoolRef,
    now: Timestamp,
) -> Result<Result<Admitted, Action>, ReconcileError> {
    // A bad spec waits for a change.
    let validated = match validate(&pool.spec, now) {
        Ok(validated) => validated,
        Err(errors) => return refuse(ctx, pool, &errors, now, Action::await_change()).await,
    };
    // URLs the installation does not let pools call: looked at again later (a name may resolve
    // elsewhere, the policy may change with a restart).
    let denials = egress_denials(ctx, &pool_ref.uid, &validated).await;
    if !denials.0.is_empty() {
        let again = Action::requeue(Duration::from_secs(300));
        return refuse(ctx, pool, &denials, now, again).await;
    }
    // A missing StaticIPPool may appear: look again soon.
    let static_pool = match &pool.spec.static_ip {
        None => None,
        Some(reference) => match addresses::fetch(&ctx.client, pool_ref, &reference.pool)
            .await
            .map_err(|source| ObserveError::StaticIpPool {
                name: reference.pool.clone(),
                source,
            })? {
            Ok(static_pool) => Some(static_pool),
            Err(errors) => {
                let again = Action::requeue(Duration::from_secs(60));
                return refuse(ctx, pool, &errors, now, again).await;
            }
        },
    };
    Ok(Ok(Admitted {
        validated,
        static_pool,
    }))
}

/// Reports a spec the operator cannot act on: `Ready=False` with the reasons, an Event when
/// they are new, and nothing else done.
async fn refuse(
    ctx: &Context,
    pool: &ElasticNodePool,
    errors: &SpecErrors,
    now: Timestamp,
    then: Action,
) -> Result<Result<Admitted, Action>, ReconcileError> {
    let status = invalid_status(
        pool.status.as_ref(),
        pool.metadata.generation,
        errors,
        &Time(now),
    );
    if pool.status.as_ref() != Some(&status) {
        PoolEvents::new(ctx, pool)
            .warning("InvalidSpec", errors.to_string())
            .await;
    }
    super::patch_status(ctx, pool, status).await?;
    Ok(Err(then))
}

/// How long URLs that passed the egress check are not resolved again by reconciles (every Node
/// event reconciles the pools it concerns); the clients' resolver checks every connection
/// meanwhile.
const EGRESS_RECHECK: Duration = Duration::from_secs(300);

/// Per pool UID, the URLs that last passed the egress check, and when.
pub(crate) type EgressPassed = std::sync::Mutex<HashMap<String, (String, std::time::Instant)>>;

/// The pool's URLs the installation's egress policy refuses, as spec problems.
async fn egress_denials(ctx: &Context, uid: &str, validated: &ValidatedPool) -> SpecErrors {
    let urls = format!("{:?}|{:?}", validated.resource_managers, validated.metrics);
    let passed_recently = ctx.egress_passed.lock().ok().is_some_and(|passed| {
        passed
            .get(uid)
            .is_some_and(|(checked, at)| *checked == urls && at.elapsed() < EGRESS_RECHECK)
    });
    if passed_recently {
        return SpecErrors(Vec::new());
    }
    let mut problems = Vec::new();
    for (index, url) in validated.resource_managers.iter().enumerate() {
        if let Err(denied) = ctx.settings.egress.check(url).await {
            problems.push(SpecError {
                field: format!("spec.resourceManager.addresses[{index}]"),
                reason: "EgressDenied",
                message: denied.to_string(),
            });
        }
    }
    if let MetricsSource::Prometheus { url } = &validated.metrics
        && let Err(denied) = ctx.settings.egress.check(url).await
    {
        problems.push(SpecError {
            field: "spec.elasticity.metrics.prometheusUrl".to_owned(),
            reason: "EgressDenied",
            message: denied.to_string(),
        });
    }
    if let Ok(mut passed) = ctx.egress_passed.lock() {
        if problems.is_empty() {
            passed.insert(uid.to_owned(), (urls, std::time::Instant::now()));
        } else {
            passed.remove(uid);
        }
    }
    SpecErrors(problems)
}
