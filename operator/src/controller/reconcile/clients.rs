//! The pool's clients and vertical loop, (re)built when its RM settings, keytab or guarder
//! token changed; every reconcile gets here and only a real change reaches the loop.

use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use rand::distr::{Alphanumeric, SampleString};

use super::super::error::RuntimeError;
use super::super::runtime::{self, LoopHooks, PoolRuntime};
use super::Context;
use crate::build::names::{self, FIELD_MANAGER};
use crate::build::{self, GUARDER_TOKEN_KEY, PoolRef};
use crate::crd::{AccountingMode, ElasticNodePool};
use crate::validate::ValidatedPool;
use crate::vertical::LoopSettings;
use crate::vertical::guarder_client::GuarderClient;
use yarn_rm::{RestResourceManager, RestSettings, Secret as Hidden};

/// What a reconcile uses of the pool's runtime.
#[derive(Debug)]
pub(crate) struct Handles {
    /// The RM client the loop shares.
    pub rm: Arc<RestResourceManager>,
    /// The guarder client.
    pub guarder: GuarderClient,
    /// What the loop saw last.
    pub vertical: runtime::Observed,
    /// Whether the pool's YARN label was made on the RM already.
    pub label_ensured: bool,
}

/// Makes sure the pool's runtime matches its spec and token, and hands out its clients.
pub(crate) async fn ensure(
    ctx: &Context,
    pool: &ElasticNodePool,
    pool_ref: &PoolRef,
    validated: &ValidatedPool,
) -> Result<Handles, RuntimeError> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &pool_ref.namespace);
    let token = guarder_token(&secrets, pool_ref).await?;
    if let (yarn_rm::RmAuth::Kerberos { principal, .. }, Some(keytab)) =
        (&validated.auth, &validated.keytab)
    {
        let bytes = keytab_bytes(&secrets, &keytab.secret, &keytab.key).await?;
        ctx.keytabs.lock().await.set(
            &format!("{}/{}", pool_ref.namespace, pool_ref.name),
            bytes,
            principal,
        )?;
    }
    let fingerprint = fingerprint(validated, &token);
    let loop_settings = LoopSettings {
        policy: validated.policy,
        settings: validated.settings,
        rm_writes_per_second: ctx.settings.rm_writes_per_second,
        rm_write_burst: ctx.settings.rm_write_burst,
        concurrency: ctx.settings.concurrency,
    };
    let mut runtimes = ctx.runtimes.lock().await;
    let runtime = match runtimes.entry(pool_ref.uid.clone()) {
        Entry::Occupied(kept) if kept.get().fingerprint == fingerprint => {
            let wanted = (loop_settings, validated.sync_interval);
            kept.get().settings.send_if_modified(|current| {
                let changed = *current != wanted;
                if changed {
                    *current = wanted;
                }
                changed
            });
            kept.into_mut()
        }
        entry => {
            let runtime = start(
                ctx,
                pool,
                pool_ref,
                validated,
                token,
                loop_settings,
                fingerprint,
            )?;
            match entry {
                Entry::Occupied(mut stale) => {
                    stale.insert(runtime);
                    stale.into_mut()
                }
                Entry::Vacant(vacant) => vacant.insert(runtime),
            }
        }
    };
    Ok(Handles {
        rm: runtime.rm.clone(),
        guarder: runtime.guarder.clone(),
        vertical: yarn_rm::lock(&runtime.observed).clone(),
        label_ensured: runtime.label_ensured,
    })
}

/// Records that the pool's YARN label exists on the RM (made once per runtime).
pub(crate) async fn label_ensured(ctx: &Context, pool_ref: &PoolRef) {
    if let Some(runtime) = ctx.runtimes.lock().await.get_mut(&pool_ref.uid) {
        runtime.label_ensured = true;
    }
}

/// What the runtime is built from: a change rebuilds the clients. Only a hash of the token is
/// kept, never the token.
fn fingerprint(validated: &ValidatedPool, token: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut hasher);
    let token_hash = hasher.finish();
    format!(
        "{:?}|{:?}|{token_hash:016x}",
        validated.rm_addresses(),
        validated.rm_auth()
    )
}

fn start(
    ctx: &Context,
    pool: &ElasticNodePool,
    pool_ref: &PoolRef,
    validated: &ValidatedPool,
    token: String,
    loop_settings: LoopSettings,
    fingerprint: String,
) -> Result<PoolRuntime, RuntimeError> {
    let rm = RestResourceManager::with_metrics(
        rm_settings(ctx, validated.rm_addresses(), validated.rm_auth()),
        ctx.metrics.rm.clone(),
    )
    .map_err(RuntimeError::RmClient)?;
    let guarder = GuarderClient::new(Hidden::new(token), ctx.settings.endpoint_timeout)
        .map_err(|e| RuntimeError::GuarderClient(e.to_string()))?;
    let metrics = crate::vertical::reader(
        &validated.metrics,
        ctx.settings.endpoint_timeout,
        ctx.settings.concurrency,
        Some(&ctx.settings.egress),
    )
    .map_err(|e| RuntimeError::MetricsReader(e.to_string()))?;
    let hooks = LoopHooks {
        pool: format!("{}/{}", pool_ref.namespace, pool_ref.name),
        recorder: ctx
            .recorder
            .clone()
            .map(|recorder| (recorder, pool.object_ref(&()))),
        third_party: (pool.spec.koordinator.accounting == AccountingMode::ThirdParty).then(|| {
            (
                Api::<Node>::all(ctx.client.clone()),
                super::super::third_party::allocation_name(&pool_ref.namespace, &pool_ref.name),
            )
        }),
        metrics: ctx.metrics.clone(),
        leadership: ctx.leadership.clone(),
        shares: ctx.shares.clone(),
    };
    Ok(PoolRuntime::start(
        Arc::new(rm),
        guarder,
        metrics,
        loop_settings,
        validated.sync_interval,
        fingerprint,
        hooks,
    ))
}

/// The bearer token of the pool's guarders: read from its Secret, or made once.
async fn guarder_token(secrets: &Api<Secret>, pool: &PoolRef) -> Result<String, RuntimeError> {
    let name = names::guarder_token_secret_name(&pool.name);
    let failed = |source| RuntimeError::GuarderToken {
        name: name.clone(),
        source,
    };
    if let Some(secret) = secrets.get_opt(&name).await.map_err(failed)?
        && let Some(token) = secret
            .data
            .as_ref()
            .and_then(|d| d.get(GUARDER_TOKEN_KEY))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|t| !t.is_empty())
    {
        return Ok(token);
    }
    let token = Alphanumeric.sample_string(&mut rand::rng(), 48);
    secrets
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&build::guarder_token_secret(pool, &token)),
        )
        .await
        .map_err(failed)?;
    Ok(token)
}

async fn keytab_bytes(
    secrets: &Api<Secret>,
    name: &str,
    key: &str,
) -> Result<Vec<u8>, RuntimeError> {
    let secret = secrets
        .get(name)
        .await
        .map_err(|source| RuntimeError::KeytabSecret {
            name: name.to_owned(),
            source,
        })?;
    secret
        .data
        .and_then(|mut d| d.remove(key))
        .map(|ByteString(bytes)| bytes)
        .ok_or_else(|| RuntimeError::KeytabKey {
            name: name.to_owned(),
            key: key.to_owned(),
        })
}

/// The RM client's settings for a pool, with the installation's CA bundle and egress policy.
pub(crate) fn rm_settings(
    ctx: &Context,
    addresses: Vec<String>,
    auth: yarn_rm::RmAuth,
) -> RestSettings {
    let mut settings = RestSettings::new(addresses, auth);
    settings.ca_file = ctx.settings.rm_ca_file.clone();
    settings.egress = Some(ctx.settings.egress.clone());
    settings
}
