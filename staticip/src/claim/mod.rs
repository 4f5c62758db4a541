//! The claim API the operator uses: claim a free, ready address for an NM identity, bind it when
//! the pod runs on it, release it when the pod is gone.
//!
//! Every change is a replace of the `StaticIP`'s status carrying the `resourceVersion` that was
//! read, so the API server accepts exactly one of two claimants that race for the same address;
//! the loser reads again and picks another. Claims are sticky: an identity that holds an address
//! gets it again, and one that released an address gets it back first if it is still free.

pub mod memory;
mod store;

use jiff::Timestamp;

use crate::crd::{AddressPhase, Holder, StaticIP, StaticIPStatus};

pub use store::{AddressStore, KubeStore, StoreError};

/// Attempts before a claim gives up on contention (each attempt reads the pool again).
pub const MAX_ATTEMPTS: usize = 16;

/// Who wants an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    /// Stable identity of the NM (`<namespace>/<pool>/<node>` for the operator).
    pub identity: String,
    /// Namespace of the pod.
    pub namespace: String,
    /// Name of the pod.
    pub pod: String,
}

/// Why a claim failed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// No free, ready address.
    #[error(
        "pool {pool} is exhausted: {total} addresses, {held} held, {not_ready} not ready yet, {retiring} retiring"
    )]
    Exhausted {
        /// The pool.
        pool: String,
        /// Addresses in the pool.
        total: usize,
        /// Held by others.
        held: usize,
        /// Free but without DNS records or keytab yet.
        not_ready: usize,
        /// Being removed.
        retiring: usize,
    },
    /// Other claimants won every attempt.
    #[error("pool {0}: lost {MAX_ATTEMPTS} races for an address in a row; retry")]
    Contended(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `choose` picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The identity already holds this one.
    Held(usize),
    /// Take this free one.
    Take(usize),
    /// Nothing to take.
    Exhausted {
        /// Held by others.
        held: usize,
        /// Free but not ready.
        not_ready: usize,
        /// Being removed.
        retiring: usize,
    },
}

/// Stable 64-bit FNV-1a hash of `identity` and `address`: each identity ranks the addresses in
/// its own order (rendezvous hashing), the same in every process, so claimants spread over the
/// pool instead of all racing for its first address.
fn rank(identity: &str, address: &str) -> u64 {
    identity
        .bytes()
        .chain([0])
        .chain(address.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Which address `identity` should have among `addresses` (pure, one pass). An address it
/// holds comes first; then a free and ready one it held last; then one nobody held yet; then
/// any free and ready one. Among equals the identity's own ranking decides.
pub fn choose(addresses: &[StaticIP], identity: &str) -> Choice {
    let (mut held, mut not_ready, mut retiring) = (0, 0, 0);
    // Best candidate so far: (tier, rank, index).
    let mut best: Option<(u8, u64, usize)> = None;
    for (index, address) in addresses.iter().enumerate() {
        let state = address.status.as_ref();
        if address.holder_identity() == Some(identity) {
            return Choice::Held(index);
        }
        if address.is_retiring() {
            retiring += 1;
        } else if !address.is_free() {
            held += 1;
        } else if !state.is_some_and(|s| s.ready) {
            not_ready += 1;
        } else {
            let tier = match state.and_then(|s| s.last_holder.as_deref()) {
                Some(last) if last == identity => 0,
                None => 1,
                Some(_) => 2,
            };
            let candidate = (tier, rank(identity, &address.spec.address), index);
            if best.is_none_or(|b| candidate < b) {
                best = Some(candidate);
            }
        }
    }
    match best {
        Some((_, _, index)) => Choice::Take(index),
        None => Choice::Exhausted {
            held,
            not_ready,
            retiring,
        },
    }
}

fn claimed_status(old: StaticIPStatus, claimant: &Claimant, now: Timestamp) -> StaticIPStatus {
    StaticIPStatus {
        phase: AddressPhase::Claimed,
        holder: Some(Holder {
            identity: claimant.identity.clone(),
            namespace: claimant.namespace.clone(),
            pod: claimant.pod.clone(),
            uid: None,
        }),
        claimed_at: Some(now.to_string()),
        ..old
    }
}

/// Claims an address of `pool` for `claimant`, or returns the one it holds.
pub async fn claim<S: AddressStore>(
    store: &S,
    pool: &str,
    claimant: &Claimant,
    now: Timestamp,
) -> Result<StaticIP, ClaimError> {
    let mut results = claim_all(store, pool, std::slice::from_ref(claimant), now).await?;
    results
        .pop()
        .unwrap_or_else(|| Err(ClaimError::Contended(pool.to_owned())))
}

/// Claims an address for each claimant in turn, reading the pool once and again only after a
/// lost race, so that a batch of N claims costs one list and N writes rather than N lists.
/// Fails as a whole only when the first read fails; each claimant has its own result.
pub async fn claim_all<S: AddressStore>(
    store: &S,
    pool: &str,
    claimants: &[Claimant],
    now: Timestamp,
) -> Result<Vec<Result<StaticIP, ClaimError>>, StoreError> {
    let mut snapshot = store.list(pool).await?;
    let mut results = Vec::with_capacity(claimants.len());
    for claimant in claimants {
        let mut lost = 0;
        let result = loop {
            let index = match choose(&snapshot, &claimant.identity) {
                Choice::Held(index) => {
                    let holder = snapshot[index].state().holder;
                    let same_pod = holder.as_ref().is_some_and(|h| {
                        h.pod == claimant.pod && h.namespace == claimant.namespace
                    });
                    if same_pod {
                        break Ok(snapshot[index].clone());
                    }
                    index
                }
                Choice::Take(index) => index,
                Choice::Exhausted {
                    held,
                    not_ready,
                    retiring,
                } => {
                    break Err(ClaimError::Exhausted {
                        pool: pool.to_owned(),
                        total: snapshot.len(),
                        held,
                        not_ready,
                        retiring,
                    });
                }
            };
            let mut address = snapshot[index].clone();
            address.status = Some(claimed_status(address.state(), claimant, now));
            match store.replace_status(&address).await {
                Ok(written) => {
                    snapshot[index] = written.clone();
                    break Ok(written);
                }
                Err(StoreError::Conflict | StoreError::NotFound) => {
                    lost += 1;
                    if lost >= MAX_ATTEMPTS {
                        break Err(ClaimError::Contended(pool.to_owned()));
                    }
                    match store.list(pool).await {
                        Ok(fresh) => snapshot = fresh,
                        Err(error) => break Err(error.into()),
                    }
                }
                Err(error) => break Err(error.into()),
            }
        };
        results.push(result);
    }
    Ok(results)
}

/// Changes the status of the address `identity` holds with `change`, re-reading on conflict.
/// `Ok(None)` when it holds none.
async fn update_held<S: AddressStore>(
    store: &S,
    pool: &str,
    identity: &str,
    change: impl Fn(StaticIPStatus) -> StaticIPStatus,
) -> Result<Option<StaticIP>, ClaimError> {
    for _ in 0..MAX_ATTEMPTS {
        let addresses = store.list(pool).await?;
        let Some(mut address) = addresses
            .into_iter()
            .find(|a| a.holder_identity() == Some(identity))
        else {
            return Ok(None);
        };
        let new = change(address.state());
        if address.status.as_ref() == Some(&new) {
            return Ok(Some(address));
        }
        address.status = Some(new);
        match store.replace_status(&address).await {
            Ok(written) => return Ok(Some(written)),
            Err(StoreError::Conflict) => {}
            Err(StoreError::NotFound) => return Ok(None),
            Err(error) => return Err(error.into()),
        }
    }
    Err(ClaimError::Contended(pool.to_owned()))
}

/// Marks the address `identity` holds as bound to the running pod `uid`.
pub async fn bind<S: AddressStore>(
    store: &S,
    pool: &str,
    identity: &str,
    uid: &str,
) -> Result<Option<StaticIP>, ClaimError> {
    update_held(store, pool, identity, |status| {
        let holder = status.holder.clone().map(|h| Holder {
            uid: Some(uid.to_owned()),
            ..h
        });
        StaticIPStatus {
            phase: AddressPhase::Bound,
            holder,
            ..status
        }
    })
    .await
}

/// How long until the first of `addresses`' claims turns stale (its pod may then be checked
/// and the claim released), or `None` when no claim is waiting for its pod.
pub fn next_stale_in(
    addresses: &[StaticIP],
    timeout: jiff::SignedDuration,
    now: Timestamp,
) -> Option<std::time::Duration> {
    addresses
        .iter()
        .map(StaticIP::state)
        .filter(|state| state.phase == AddressPhase::Claimed)
        .filter_map(|state| state.claimed_at?.parse::<Timestamp>().ok())
        .filter_map(|claimed| claimed.checked_add(timeout).ok())
        .map(|stale| std::time::Duration::try_from(stale.duration_since(now)).unwrap_or_default())
        .min()
}

/// The status of an address `identity` lets go of: free, and remembered so that the identity
/// gets it back first.
pub fn released(status: StaticIPStatus, identity: &str) -> StaticIPStatus {
    StaticIPStatus {
        phase: AddressPhase::Free,
        holder: None,
        claimed_at: None,
        last_holder: Some(identity.to_owned()),
        ..status
    }
}

/// Frees the address `identity` holds (remembering it, so the identity gets it back first).
pub async fn release<S: AddressStore>(
    store: &S,
    pool: &str,
    identity: &str,
) -> Result<Option<StaticIP>, ClaimError> {
    update_held(store, pool, identity, |status| released(status, identity)).await
}

/// Frees every address whose holder identity `matches`, reading the pool once; an address that
/// changed meanwhile is released through `release`, which reads it again. Returns how many.
pub async fn release_matching<S: AddressStore>(
    store: &S,
    pool: &str,
    matches: impl Fn(&str) -> bool,
) -> Result<usize, ClaimError> {
    let mut count = 0;
    for mut address in store.list(pool).await? {
        let Some(identity) = address
            .holder_identity()
            .filter(|h| matches(h))
            .map(str::to_owned)
        else {
            continue;
        };
        address.status = Some(released(address.state(), &identity));
        match store.replace_status(&address).await {
            Ok(_) => count += 1,
            Err(StoreError::Conflict) => {
                count += usize::from(release(store, pool, &identity).await?.is_some());
            }
            Err(StoreError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests;
