//! Static addresses of a pool's NodeManagers, claimed from its `StaticIPPool` with the
//! `staticip` claim API: one claim per NM identity (`<namespace>/<pool>/<node>`, so an NM that
//! comes back on the same node gets the same address, host name and keytab), bound once the pod
//! runs on the address, released once the pod is gone.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use kube::{Api, Client, ResourceExt};
use staticip::claim::{self, ClaimError, Claimant, KubeStore};
use staticip::crd::{AddressPhase, StaticIP, StaticIPPool};

use crate::build::names;
use crate::build::{PoolRef, StaticAddress};
use crate::validate::{SpecError, SpecErrors};

/// The claim identity of the NM of `pool` on `node`.
pub fn identity(pool: &PoolRef, node: &str) -> String {
    format!("{}/{}/{node}", pool.namespace, pool.name)
}

/// The `StaticIPPool` a pool names, checked for use from the pool's namespace.
pub async fn fetch(
    client: &Client,
    pool: &PoolRef,
    name: &str,
) -> Result<Result<StaticIPPool, SpecErrors>, kube::Error> {
    let pools: Api<StaticIPPool> = Api::all(client.clone());
    let refuse = |reason: &'static str, message: String| {
        Err(SpecErrors(vec![SpecError {
            field: "spec.staticIP.pool".to_owned(),
            reason,
            message,
        }]))
    };
    let Some(static_pool) = pools.get_opt(name).await? else {
        return Ok(refuse(
            "StaticIpPoolMissing",
            format!("StaticIPPool {name:?} does not exist; NodeManagers start once it does"),
        ));
    };
    if static_pool.spec.kerberos.is_some() && static_pool.spec.secret_namespace != pool.namespace {
        return Ok(refuse(
            "StaticIpPoolNamespace",
            format!(
                "StaticIPPool {name:?} puts its keytab Secrets in namespace {:?}, but this pool's \
                 pods run in {:?} and can mount only Secrets there",
                static_pool.spec.secret_namespace, pool.namespace
            ),
        ));
    }
    Ok(Ok(static_pool))
}

/// What an NM pod needs of its claimed address.
pub fn static_address(static_pool: &StaticIPPool, address: &StaticIP) -> Option<StaticAddress> {
    let ip = address.spec.address.parse().ok()?;
    Some(StaticAddress {
        ip,
        fqdn: address.spec.fqdn.clone(),
        cni_annotations: staticip::cni::annotations(&static_pool.spec.cni, ip)?,
        keytab_secret: address.state().keytab_secret,
        principal: address.spec.principal.clone(),
    })
}

/// Claims (or finds) an address for the NM of every node in `nodes`; a node without one is
/// returned with the reason.
pub async fn claim_for(
    client: &Client,
    static_pool: &StaticIPPool,
    pool: &PoolRef,
    nodes: &BTreeSet<String>,
    now: Timestamp,
) -> Result<(BTreeMap<String, StaticIP>, Vec<(String, ClaimError)>), ClaimError> {
    let claimants: Vec<Claimant> = nodes
        .iter()
        .map(|node| Claimant {
            identity: identity(pool, node),
            namespace: pool.namespace.clone(),
            pod: names::node_manager_pod_name(&pool.name, node),
        })
        .collect();
    let store = KubeStore::new(client.clone());
    let results = claim::claim_all(&store, &static_pool.name_any(), &claimants, now).await?;
    let mut claimed = BTreeMap::new();
    let mut failed = Vec::new();
    for (node, result) in nodes.iter().zip(results) {
        match result {
            Ok(address) => {
                claimed.insert(node.clone(), address);
            }
            Err(error) => failed.push((node.clone(), error)),
        }
    }
    Ok((claimed, failed))
}

/// Marks an address bound to the pod `uid` running on it, unless it already is.
pub async fn bind(
    client: &Client,
    static_pool: &str,
    pool: &PoolRef,
    node: &str,
    address: &StaticIP,
    uid: &str,
) -> Result<(), ClaimError> {
    let state = address.state();
    let bound = state.phase == AddressPhase::Bound
        && state.holder.and_then(|h| h.uid).as_deref() == Some(uid);
    if !bound {
        let store = KubeStore::new(client.clone());
        claim::bind(&store, static_pool, &identity(pool, node), uid).await?;
    }
    Ok(())
}

/// Releases the address of the NM of `pool` on `node`, if it holds one.
pub async fn release(
    client: &Client,
    static_pool: &str,
    pool: &PoolRef,
    node: &str,
) -> Result<(), ClaimError> {
    let store = KubeStore::new(client.clone());
    claim::release(&store, static_pool, &identity(pool, node)).await?;
    Ok(())
}

/// Releases every address an NM of `pool` holds (the pool is being deleted), with one read of
/// the StaticIPPool's addresses.
pub async fn release_all(
    client: &Client,
    static_pool: &str,
    pool: &PoolRef,
) -> Result<usize, ClaimError> {
    let store = KubeStore::new(client.clone());
    let prefix = identity(pool, "");
    claim::release_matching(&store, static_pool, |holder| holder.starts_with(&prefix)).await
}
