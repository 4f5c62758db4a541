//! One pass over a `StaticIPPool`: plan its addresses, retire those no longer planned, create
//! the missing `StaticIP`s, make DNS records and keytabs for those not ready, clean up retired
//! addresses nobody holds, release claims whose pod never came, and write the status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::Event as FinalizerEvent;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::instrument;

use super::provision::{dns_problem, dns_updater, ip_of, kadmin, kerberos_problem};
use super::status::{Problem, Problems, census, pool_status};
use super::{Context, ReconcileError};
use crate::addresses::{overlap, plan};
use crate::build::{FIELD_MANAGER, keytab_secret, keytab_secret_name, static_ip};
use crate::claim;
use crate::crd::{
    ADDRESS_FINALIZER, AddressPhase, KEYTAB_KEY, POOL_FINALIZER, POOL_LABEL, StaticIP, StaticIPPool,
};
use crate::dns::DnsUpdater;
use crate::kerberos::Kadmin;

/// Reconciles one pool.
#[instrument(skip_all, fields(pool = %pool.name_any()))]
pub async fn reconcile(
    pool: Arc<StaticIPPool>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    // A replica whose leadership went stale (it was frozen, or cannot renew) changes nothing;
    // it is about to stop.
    if ctx.leadership.as_ref().is_some_and(|l| !l.is_current()) {
        return Ok(Action::await_change());
    }
    ctx.metrics.reconciles.inc();
    let pools: Api<StaticIPPool> = Api::all(ctx.client.clone());
    controlkit::report::reconcile_reported(
        &pools,
        POOL_FINALIZER,
        pool,
        ctx.recorder.as_ref(),
        &ctx.metrics.failures,
        |event| async {
            match event {
                FinalizerEvent::Apply(pool) => apply(&pool, &ctx).await,
                FinalizerEvent::Cleanup(pool) => cleanup(&pool, &ctx).await,
            }
        },
    )
    .await
}

async fn publish(ctx: &Context, pool: &StaticIPPool, type_: EventType, reason: &str, note: String) {
    controlkit::events::publish(
        ctx.recorder.as_ref(),
        &pool.object_ref(&()),
        type_,
        reason,
        note,
    )
    .await;
}

async fn list_addresses(ips: &Api<StaticIP>, pool: &str) -> Result<Vec<StaticIP>, kube::Error> {
    let params = ListParams::default().labels(&format!("{POOL_LABEL}={pool}"));
    Ok(ips.list(&params).await?.items)
}

/// The outside clients of one pass: `None` when the pool does not configure that part,
/// `Some(None)` when it does but the client cannot be built (the problem is recorded).
struct Clients {
    dns: Option<Option<DnsUpdater>>,
    kadmin: Option<Option<Kadmin>>,
    secret_namespace: String,
}

async fn clients(pool: &StaticIPPool, ctx: &Context, problems: &mut Problems) -> Clients {
    let settings = &ctx.settings;
    let dns = dns_updater(&ctx.client, &pool.spec, settings.dns_timeout)
        .await
        .map(|built| built.map_err(|p| problems.dns = Some(p)).ok());
    let kadmin = kadmin(
        &ctx.client,
        &pool.spec,
        &settings.kadmin_program,
        settings.kadmin_timeout,
    )
    .await
    .map(|built| built.map_err(|p| problems.kerberos = Some(p)).ok());
    Clients {
        dns,
        kadmin,
        secret_namespace: pool.spec.secret_namespace.clone(),
    }
}

/// What provisioning one address found.
#[derive(Default)]
struct Outcome {
    updated: Option<StaticIP>,
    dns: Option<Problem>,
    kerberos: Option<Problem>,
    kubernetes: Option<kube::Error>,
}

async fn provision(address: &StaticIP, clients: &Clients, ctx: &Context) -> Outcome {
    let mut outcome = Outcome::default();
    let state = address.state();
    let ip = match ip_of(&address.spec.address) {
        Ok(ip) => ip,
        Err(problem) => {
            outcome.dns = Some(problem);
            return outcome;
        }
    };
    let dns_ready = match &clients.dns {
        None => false,
        Some(_) if state.dns_ready => true,
        Some(None) => false,
        Some(Some(dns)) => match dns.upsert(&address.spec.fqdn, ip).await {
            Ok(()) => true,
            Err(error) => {
                outcome.dns = Some(dns_problem(&error));
                false
            }
        },
    };
    let mut keytab_secret_written = state.keytab_secret.clone();
    let keytab_ready = match (&clients.kadmin, &address.spec.principal) {
        (None, _) | (_, None) => false,
        (Some(_), Some(_)) if state.keytab_ready => true,
        (Some(None), _) => false,
        (Some(Some(kadmin)), Some(principal)) => {
            match ensure_keytab(address, principal, kadmin, clients, ctx).await {
                Ok(name) => {
                    keytab_secret_written = Some(name);
                    true
                }
                Err(KeytabFailure::Kerberos(problem)) => {
                    outcome.kerberos = Some(problem);
                    false
                }
                Err(KeytabFailure::Kubernetes(error)) => {
                    outcome.kubernetes = Some(error);
                    false
                }
            }
        }
    };
    let ready = (clients.dns.is_none() || dns_ready) && (clients.kadmin.is_none() || keytab_ready);
    let message = outcome
        .dns
        .iter()
        .chain(&outcome.kerberos)
        .map(|p| p.message.clone())
        .next();
    let unchanged = state.dns_ready == dns_ready
        && state.keytab_ready == keytab_ready
        && state.ready == ready
        && state.keytab_secret == keytab_secret_written
        && state.message == message;
    if unchanged {
        return outcome;
    }
    // A merge patch of these fields only: a claim racing with it keeps its holder, and a claim
    // read before it fails on the new resourceVersion and reads again.
    let patch = json!({"status": {
        "dnsReady": dns_ready,
        "keytabReady": keytab_ready,
        "ready": ready,
        "keytabSecret": keytab_secret_written,
        "message": message,
    }});
    let ips: Api<StaticIP> = Api::all(ctx.client.clone());
    match ips
        .patch_status(
            &address.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(updated) => outcome.updated = Some(updated),
        Err(error) => outcome.kubernetes = Some(error),
    }
    if ready {
        ctx.metrics.addresses_made_ready.inc();
    }
    outcome
}

enum KeytabFailure {
    Kerberos(Problem),
    Kubernetes(kube::Error),
}

/// The keytab Secret of `address`, made if missing. A Secret that already holds a keytab (from
/// a pass whose status write failed) is kept: exporting again would change the keys.
async fn ensure_keytab(
    address: &StaticIP,
    principal: &str,
    kadmin: &Kadmin,
    clients: &Clients,
    ctx: &Context,
) -> Result<String, KeytabFailure> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &clients.secret_namespace);
    let name = keytab_secret_name(address);
    let existing = secrets
        .get_opt(&name)
        .await
        .map_err(KeytabFailure::Kubernetes)?;
    if existing
        .and_then(|s| s.data)
        .is_some_and(|data| data.get(KEYTAB_KEY).is_some_and(|k| !k.0.is_empty()))
    {
        return Ok(name);
    }
    let kerberos = |e| KeytabFailure::Kerberos(kerberos_problem(&e));
    kadmin.ensure_principal(principal).await.map_err(kerberos)?;
    let keytab = kadmin.export_keytab(principal).await.map_err(kerberos)?;
    let secret = keytab_secret(address, &clients.secret_namespace, keytab);
    secrets
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(KeytabFailure::Kubernetes)?;
    Ok(name)
}

/// Removes a retired, unheld address's records, principal and Secret, then its finalizer.
/// Records or a principal that were never confirmed made (a pool whose DNS key or admin keytab
/// never worked) are removed if possible, but a failure there does not keep the address: else
/// a pool with wrong credentials could never be deleted. What was skipped is returned.
async fn retire(
    address: &StaticIP,
    clients: &Clients,
    ctx: &Context,
) -> Result<Vec<String>, RetireFailure> {
    let ip = ip_of(&address.spec.address).map_err(RetireFailure::Dns)?;
    let state = address.state();
    let mut skipped = Vec::new();
    match &clients.dns {
        None => {}
        Some(None) if !state.dns_ready => {
            skipped.push(format!("DNS records of {}", address.spec.fqdn));
        }
        Some(None) => return Err(RetireFailure::Blocked),
        Some(Some(dns)) => match dns.remove(&address.spec.fqdn, ip).await {
            Ok(()) => {}
            Err(error) if !state.dns_ready => skipped.push(format!(
                "DNS records of {} (never confirmed made): {error}",
                address.spec.fqdn
            )),
            Err(error) => return Err(RetireFailure::Dns(dns_problem(&error))),
        },
    }
    if let Some(principal) = &address.spec.principal {
        match &clients.kadmin {
            None => {}
            Some(None) if !state.keytab_ready => {
                skipped.push(format!("principal {principal}"));
            }
            Some(None) => return Err(RetireFailure::Blocked),
            Some(Some(kadmin)) => match kadmin.delete_principal(principal).await {
                Ok(()) => {}
                Err(error) if !state.keytab_ready => skipped.push(format!(
                    "principal {principal} (never confirmed made): {error}"
                )),
                Err(error) => return Err(RetireFailure::Kerberos(kerberos_problem(&error))),
            },
        }
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &clients.secret_namespace);
        match secrets
            .delete(&keytab_secret_name(address), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(RetireFailure::Kubernetes(error)),
        }
    }
    let remaining: Vec<&String> = address
        .finalizers()
        .iter()
        .filter(|f| *f != ADDRESS_FINALIZER)
        .collect();
    let patch = json!({"metadata": {
        "finalizers": remaining,
        "resourceVersion": address.resource_version(),
    }});
    let ips: Api<StaticIP> = Api::all(ctx.client.clone());
    ips.patch(
        &address.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(RetireFailure::Kubernetes)?;
    Ok(skipped)
}

enum RetireFailure {
    Dns(Problem),
    Kerberos(Problem),
    /// The client it needs cannot be built; that problem is already recorded.
    Blocked,
    Kubernetes(kube::Error),
}

/// Cleans up every retired address nobody holds (at most `batch`); returns the number left.
async fn retire_unheld(
    pool: &StaticIPPool,
    addresses: &[StaticIP],
    clients: &Clients,
    problems: &mut Problems,
    ctx: &Context,
) -> Result<usize, ReconcileError> {
    let retired: Vec<&StaticIP> = addresses
        .iter()
        .filter(|a| {
            a.is_retiring() && a.is_free() && a.finalizers().iter().any(|f| f == ADDRESS_FINALIZER)
        })
        .collect();
    let mut left = retired.len();
    for address in retired.into_iter().take(ctx.settings.batch) {
        match retire(address, clients, ctx).await {
            Ok(skipped) => {
                left -= 1;
                if !skipped.is_empty() {
                    publish(
                        ctx,
                        pool,
                        EventType::Warning,
                        "CleanupSkipped",
                        format!(
                            "{} retired without removing: {}",
                            address.spec.address,
                            skipped.join("; ")
                        ),
                    )
                    .await;
                }
            }
            Err(RetireFailure::Dns(p)) => problems.dns = Some(p),
            Err(RetireFailure::Kerberos(p)) => problems.kerberos = Some(p),
            Err(RetireFailure::Blocked) => {}
            Err(RetireFailure::Kubernetes(kube::Error::Api(s))) if s.code == 409 => {}
            Err(RetireFailure::Kubernetes(error)) => return Err(error.into()),
        }
    }
    Ok(left)
}

/// Longest wait between two looks at a pool's claims.
const STALE_CHECK: Duration = Duration::from_secs(60);

/// Releases claims older than the pool's timeout whose pod does not exist.
async fn release_stale_claims(
    pool: &StaticIPPool,
    addresses: &mut [StaticIP],
    ctx: &Context,
) -> Result<usize, ReconcileError> {
    let timeout = jiff::SignedDuration::from_secs(i64::from(pool.spec.claim_timeout_seconds));
    let now = Timestamp::now();
    let ips: Api<StaticIP> = Api::all(ctx.client.clone());
    let mut released = 0;
    for address in addresses.iter_mut() {
        let state = address.state();
        let Some(holder) = &state.holder else {
            continue;
        };
        let claimed_at = state
            .claimed_at
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok());
        let stale = state.phase == AddressPhase::Claimed
            && claimed_at.is_none_or(|t| t.checked_add(timeout).is_ok_and(|end| end <= now));
        if !stale {
            continue;
        }
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &holder.namespace);
        if pods.get_opt(&holder.pod).await?.is_some() {
            continue;
        }
        let mut freed = address.clone();
        freed.status = Some(claim::released(state.clone(), &holder.identity));
        match ips
            .replace_status(&address.name_any(), &PostParams::default(), &freed)
            .await
        {
            Ok(written) => {
                tracing::info!(address = %address.spec.address, pod = %holder.pod, "released a stale claim");
                publish(
                    ctx,
                    pool,
                    EventType::Normal,
                    "StaleClaimReleased",
                    format!(
                        "{} was claimed for pod {}/{} at {}, which does not exist: released",
                        address.spec.address,
                        holder.namespace,
                        holder.pod,
                        state.claimed_at.clone().unwrap_or_default()
                    ),
                )
                .await;
                *address = written;
                released += 1;
            }
            // Claimed, bound or released meanwhile: its new state is for the next pass.
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(released)
}

async fn write_status(
    pool: &StaticIPPool,
    addresses: &[StaticIP],
    problems: &Problems,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let census = census(
        addresses,
        pool.spec.dns.is_some(),
        pool.spec.kerberos.is_some(),
    );
    let old = pool.status.clone().unwrap_or_default();
    let now = Time(Timestamp::now());
    let status = pool_status(
        &old,
        &census,
        problems,
        pool.spec.dns.is_some(),
        pool.spec.kerberos.is_some(),
        pool.metadata.generation,
        &now,
    );
    if status == old {
        return Ok(());
    }
    let pools: Api<StaticIPPool> = Api::all(ctx.client.clone());
    pools
        .patch_status(
            &pool.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await?;
    Ok(())
}

async fn report(pool: &StaticIPPool, problems: &Problems, ctx: &Context) {
    let labelled = [
        ("InvalidSpec", &problems.spec),
        ("DnsUpdateFailed", &problems.dns),
        ("KeytabFailed", &problems.kerberos),
        ("DeletionBlocked", &problems.deletion),
    ];
    for (reason, problem) in labelled {
        if let Some(problem) = problem {
            let reason = if problem.reason == "Overlapping" {
                "Overlapping"
            } else {
                reason
            };
            publish(
                ctx,
                pool,
                EventType::Warning,
                reason,
                problem.message.clone(),
            )
            .await;
        }
    }
}

/// Whether an address lacks something its pool configures (or was never marked ready). An
/// address made ready before the pool gained DNS or Kerberos settings needs them too.
pub fn needs_provisioning(address: &StaticIP, dns: bool, kerberos: bool) -> bool {
    let state = address.state();
    !address.is_retiring()
        && (!state.ready
            || (dns && !state.dns_ready)
            || (kerberos && address.spec.principal.is_some() && !state.keytab_ready))
}

async fn apply(pool: &StaticIPPool, ctx: &Context) -> Result<Action, ReconcileError> {
    let name = pool.name_any();
    let ips: Api<StaticIP> = Api::all(ctx.client.clone());
    let pools: Api<StaticIPPool> = Api::all(ctx.client.clone());
    let mut problems = Problems::default();
    let mut addresses = list_addresses(&ips, &name).await?;

    let planned = match plan(&name, &pool.spec) {
        Ok(planned) => {
            let others = pools.list(&ListParams::default()).await?.items;
            match overlap(pool, &others) {
                Some((older, ip)) => {
                    problems.spec = Some(Problem::new(
                        "Overlapping",
                        format!(
                            "address {ip} is also in the older pool {older}: this pool makes no addresses until they no longer overlap"
                        ),
                    ));
                    None
                }
                None => Some(planned),
            }
        }
        Err(error) => {
            problems.spec = Some(Problem::new("InvalidSpec", error.to_string()));
            None
        }
    };

    let mut pending = false;
    if let Some(planned) = planned {
        let desired: BTreeMap<String, StaticIP> = planned
            .iter()
            .map(|p| (p.object_name.clone(), static_ip(pool, p)))
            .collect();
        // Retire what the spec no longer has (or names differently); the finalizer keeps a
        // held address until its NM lets it go.
        let mut retired = 0;
        for address in addresses.iter_mut().filter(|a| !a.is_retiring()) {
            let wanted = desired.get(&address.name_any());
            if wanted.is_none_or(|w| w.spec != address.spec) {
                if let either::Either::Left(deleting) = ips
                    .delete(&address.name_any(), &DeleteParams::default())
                    .await?
                {
                    *address = deleting;
                }
                retired += 1;
            }
        }
        if retired > 0 {
            publish(
                ctx,
                pool,
                EventType::Normal,
                "AddressesRetired",
                format!("{retired} addresses left the pool; each goes once nobody holds it"),
            )
            .await;
        }
        let present: std::collections::BTreeSet<String> =
            addresses.iter().map(ResourceExt::name_any).collect();
        let missing: Vec<&StaticIP> = desired
            .values()
            .filter(|d| !present.contains(&d.name_any()))
            .collect();
        pending |= missing.len() > ctx.settings.create_batch;
        let mut created = 0;
        for address in missing.into_iter().take(ctx.settings.create_batch) {
            let made = ips
                .patch(
                    &address.name_any(),
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(address),
                )
                .await?;
            addresses.push(made);
            created += 1;
        }
        if created > 0 {
            publish(
                ctx,
                pool,
                EventType::Normal,
                "AddressesCreated",
                format!("{created} StaticIPs created"),
            )
            .await;
        }
    }

    let clients = clients(pool, ctx, &mut problems).await;
    pending |= retire_unheld(pool, &addresses, &clients, &mut problems, ctx).await? > 0;

    // Make DNS records and keytabs for addresses not ready, a batch at a time.
    let (dns, kerberos) = (pool.spec.dns.is_some(), pool.spec.kerberos.is_some());
    let waiting: Vec<usize> = addresses
        .iter()
        .enumerate()
        .filter(|(_, a)| needs_provisioning(a, dns, kerberos))
        .map(|(i, _)| i)
        .collect();
    pending |= waiting.len() > ctx.settings.batch;
    let mut work = Vec::new();
    for &index in waiting.iter().take(ctx.settings.batch) {
        let address = &addresses[index];
        let clients = &clients;
        work.push(async move { (index, provision(address, clients, ctx).await) });
    }
    let outcomes: Vec<(usize, Outcome)> = futures::stream::iter(work)
        .buffer_unordered(ctx.settings.concurrency.max(1))
        .collect()
        .await;
    for (index, outcome) in outcomes {
        problems.dns = problems.dns.take().or(outcome.dns);
        problems.kerberos = problems.kerberos.take().or(outcome.kerberos);
        if let Some(error) = outcome.kubernetes {
            tracing::warn!(%error, "cannot record an address's readiness");
            pending = true;
        }
        if let Some(updated) = outcome.updated {
            addresses[index] = updated;
        }
    }

    release_stale_claims(pool, &mut addresses, ctx).await?;
    write_status(pool, &addresses, &problems, ctx).await?;
    report(pool, &problems, ctx).await;

    let all_ready = !addresses
        .iter()
        .any(|a| needs_provisioning(a, dns, kerberos));
    let retiring = addresses.iter().any(StaticIP::is_retiring);
    Ok(if problems != Problems::default() {
        Action::requeue(Duration::from_secs(30))
    } else if pending || !all_ready {
        Action::requeue(Duration::from_secs(1))
    } else if retiring {
        Action::requeue(Duration::from_secs(30))
    } else {
        // Claims older than the timeout are checked at least this often, and a claim still
        // waiting for its pod as soon as it turns stale.
        let timeout = jiff::SignedDuration::from_secs(i64::from(pool.spec.claim_timeout_seconds));
        let stale_in = claim::next_stale_in(&addresses, timeout, Timestamp::now())
            .map_or(STALE_CHECK, |d| {
                (d + Duration::from_secs(1)).min(STALE_CHECK)
            });
        Action::requeue(stale_in)
    })
}

async fn cleanup(pool: &StaticIPPool, ctx: &Context) -> Result<Action, ReconcileError> {
    let ips: Api<StaticIP> = Api::all(ctx.client.clone());
    let mut addresses = list_addresses(&ips, &pool.name_any()).await?;
    for address in addresses.iter_mut().filter(|a| !a.is_retiring()) {
        if let either::Either::Left(deleting) = ips
            .delete(&address.name_any(), &DeleteParams::default())
            .await?
        {
            *address = deleting;
        }
    }
    let mut problems = Problems::default();
    let clients = clients(pool, ctx, &mut problems).await;
    let unheld_left = retire_unheld(pool, &addresses, &clients, &mut problems, ctx).await?;
    let held: Vec<String> = addresses
        .iter()
        .filter(|a| !a.is_free())
        .map(|a| {
            let holder = a
                .state()
                .holder
                .map(|h| format!("{}/{}", h.namespace, h.pod));
            format!("{} ({})", a.spec.address, holder.unwrap_or_default())
        })
        .collect();
    if held.is_empty() && unheld_left == 0 && problems == Problems::default() {
        return Ok(Action::await_change());
    }
    if !held.is_empty() {
        problems.deletion = Some(Problem::new(
            "DeletionBlocked",
            format!(
                "{} addresses are still held and go when released: {}",
                held.len(),
                held.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    write_status(pool, &addresses, &problems, ctx).await?;
    report(pool, &problems, ctx).await;
    Err(ReconcileError::DeletionPending {
        held: held.len(),
        left: unheld_left,
    })
}
