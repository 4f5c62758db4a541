use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;

use super::memory::MemoryStore;
use super::*;
use crate::addresses::plan;
use crate::build::static_ip;
use crate::crd::StaticIPPool;

const NOW: &str = "2026-11-24T12:00:00Z";

fn pool_addresses(pool: &str, count: usize, ready: bool) -> Vec<StaticIP> {
    let spec = serde_json::from_value(serde_json::json!({
        "ranges": [{"start": "10.20.0.1", "end": format!("10.20.{}.{}", count / 256, count % 256)}],
        "dnsZone": "yarn.test",
        "secretNamespace": "yarn",
    }))
    .unwrap();
    let pool = StaticIPPool::new(pool, spec);
    plan("night", &pool.spec)
        .unwrap()
        .iter()
        .take(count)
        .map(|planned| {
            let mut address = static_ip(&pool, planned);
            address.status = Some(StaticIPStatus {
                ready,
                ..StaticIPStatus::default()
            });
            address
        })
        .collect()
}

fn claimant(n: usize) -> Claimant {
    Claimant {
        identity: format!("yarn/night/node-{n}"),
        namespace: "yarn".to_owned(),
        pod: format!("night-nm-node-{n}"),
    }
}

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn a_claim_takes_a_ready_free_address_and_records_the_holder() {
    runtime().block_on(async {
        let mut addresses = pool_addresses("night", 3, true);
        addresses[0].status.as_mut().unwrap().ready = false;
        let store = MemoryStore::new(addresses);
        let got = claim(&store, "night", &claimant(1), now()).await.unwrap();
        let status = got.state();
        assert_ne!(got.spec.address, "10.20.0.1", "not ready: never claimed");
        assert_eq!(status.phase, AddressPhase::Claimed);
        assert_eq!(status.claimed_at.as_deref(), Some(NOW));
        assert_eq!(
            status.holder,
            Some(Holder {
                identity: "yarn/night/node-1".into(),
                namespace: "yarn".into(),
                pod: "night-nm-node-1".into(),
                uid: None,
            })
        );
        let again = claim(&store, "night", &claimant(1), now()).await.unwrap();
        assert_eq!(again.spec.address, got.spec.address, "sticky while held");
        assert_eq!(store.write_counts(), (1, 0), "no second write");
    });
}

#[test]
fn bind_then_release_then_the_same_identity_gets_the_address_back() {
    runtime().block_on(async {
        let store = MemoryStore::new(pool_addresses("night", 8, true));
        let first = claim(&store, "night", &claimant(1), now()).await.unwrap();
        let bound = bind(&store, "night", "yarn/night/node-1", "uid-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bound.state().phase, AddressPhase::Bound);
        assert_eq!(bound.state().holder.unwrap().uid.as_deref(), Some("uid-1"));
        let released = release(&store, "night", "yarn/night/node-1")
            .await
            .unwrap()
            .unwrap();
        assert!(released.is_free());
        assert_eq!(
            released.state().last_holder.as_deref(),
            Some("yarn/night/node-1")
        );
        assert!(
            release(&store, "night", "yarn/night/node-1")
                .await
                .unwrap()
                .is_none()
        );
        // Others claim meanwhile; none takes the address node-1 held last while another is free.
        for n in 2..8 {
            let other = claim(&store, "night", &claimant(n), now()).await.unwrap();
            assert_ne!(other.spec.address, first.spec.address);
        }
        let back = claim(&store, "night", &claimant(1), now()).await.unwrap();
        assert_eq!(back.spec.address, first.spec.address);
    });
}

#[test]
fn an_exhausted_pool_says_what_holds_its_addresses() {
    runtime().block_on(async {
        let mut addresses = pool_addresses("night", 4, true);
        addresses[3].status.as_mut().unwrap().ready = false;
        addresses[2].metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
        let store = MemoryStore::new(addresses);
        for n in 0..2 {
            claim(&store, "night", &claimant(n), now()).await.unwrap();
        }
        let error = claim(&store, "night", &claimant(9), now())
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ClaimError::Exhausted {
                    total: 4,
                    held: 2,
                    not_ready: 1,
                    retiring: 1,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "pool night is exhausted: 4 addresses, 2 held, 1 not ready yet, 1 retiring"
        );
    });
}

#[test]
fn a_stale_write_loses_and_the_loser_takes_another_address() {
    runtime().block_on(async {
        let store = MemoryStore::new(pool_addresses("night", 4, true));
        let snapshot = store.list("night").await.unwrap();
        let Choice::Take(index) = choose(&snapshot, "yarn/night/node-1") else {
            panic!("a free address")
        };
        // Someone else takes exactly that address first.
        let mut taken = snapshot[index].clone();
        taken.status = Some(claimed_status(taken.state(), &claimant(2), now()));
        store.replace_status(&taken).await.unwrap();
        let mut stale = snapshot[index].clone();
        stale.status = Some(claimed_status(stale.state(), &claimant(1), now()));
        assert!(matches!(
            store.replace_status(&stale).await,
            Err(StoreError::Conflict)
        ));
        let got = claim(&store, "night", &claimant(1), now()).await.unwrap();
        assert_ne!(got.spec.address, snapshot[index].spec.address);
    });
}

#[test]
fn claimants_that_all_read_before_anyone_writes_conflict_and_exactly_one_wins() {
    runtime().block_on(async {
        // One yield at every point: all four list before the first write lands.
        let store = Arc::new(MemoryStore::with_yields(
            pool_addresses("night", 1, true),
            vec![1],
        ));
        let mut tasks = Vec::new();
        for n in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                claim(store.as_ref(), "night", &claimant(n), now()).await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => winners += 1,
                Err(ClaimError::Exhausted { held: 1, .. }) => {}
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(winners, 1);
        assert_eq!(store.write_counts(), (1, 3), "three stale writes refused");
    });
}

#[test]
fn releasing_by_identity_prefix_frees_only_those_with_one_read() {
    runtime().block_on(async {
        let store = MemoryStore::new(pool_addresses("night", 6, true));
        for n in 0..4 {
            claim(&store, "night", &claimant(n), now()).await.unwrap();
        }
        let other = Claimant {
            identity: "yarn/day/node-9".into(),
            ..claimant(9)
        };
        claim(&store, "night", &other, now()).await.unwrap();
        let freed = release_matching(&store, "night", |h| h.starts_with("yarn/night/"))
            .await
            .unwrap();
        assert_eq!(freed, 4);
        let held = holders(&store);
        assert_eq!(held.keys().collect::<Vec<_>>(), ["yarn/day/node-9"]);
        let remembered = store
            .snapshot()
            .into_iter()
            .filter(|a| {
                a.state()
                    .last_holder
                    .is_some_and(|l| l.starts_with("yarn/night/"))
            })
            .count();
        assert_eq!(remembered, 4, "each remembers its last holder");
    });
}

/// Every holder's address, checking that no address has two holders and no identity two
/// addresses.
fn holders(store: &MemoryStore) -> BTreeMap<String, String> {
    let mut by_identity = BTreeMap::new();
    for address in store.snapshot() {
        if let Some(identity) = address.holder_identity() {
            let previous = by_identity.insert(identity.to_owned(), address.spec.address.clone());
            assert!(previous.is_none(), "{identity} holds two addresses");
        }
    }
    by_identity
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Claimants racing with interleavings chosen by proptest never share an address; each
    /// either holds one or was told the pool is exhausted (or contended) when it is full; and
    /// after a round of releases every identity that claims again gets its old address back.
    #[test]
    fn concurrent_claims_never_share_and_stay_sticky(
        size in 1usize..12,
        claimants in 1usize..16,
        yields in proptest::collection::vec(0u8..4, 1..32),
        releasing in proptest::collection::vec(any::<bool>(), 16),
    ) {
        runtime().block_on(async move {
            let store = Arc::new(MemoryStore::with_yields(pool_addresses("night", size, true), yields));
            let mut tasks = Vec::new();
            for n in 0..claimants {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    (n, claim(store.as_ref(), "night", &claimant(n), now()).await)
                }));
            }
            let mut won = BTreeMap::new();
            for task in tasks {
                let (n, result) = task.await.unwrap();
                match result {
                    Ok(address) => {
                        won.insert(claimant(n).identity, address.spec.address);
                    }
                    Err(ClaimError::Exhausted { .. } | ClaimError::Contended(_)) => {}
                    Err(other) => panic!("{other}"),
                }
            }
            let held = holders(&store);
            prop_assert_eq!(&held, &won, "what claimants were told is what the store holds");
            prop_assert_eq!(
                held.values().collect::<BTreeSet<_>>().len(),
                held.len(),
                "no address shared"
            );
            // A claimant loses a race only to another's win, so with fewer than MAX_ATTEMPTS
            // rivals everyone gets an address until the pool is full, and no more.
            prop_assert_eq!(won.len(), claimants.min(size));

            // Release some, concurrently; then everyone claims again, concurrently.
            let mut tasks = Vec::new();
            for (n, release_it) in releasing.iter().enumerate().take(claimants) {
                if *release_it {
                    let store = store.clone();
                    tasks.push(tokio::spawn(async move {
                        release(store.as_ref(), "night", &claimant(n).identity).await
                    }));
                }
            }
            for task in tasks {
                task.await.unwrap().unwrap();
            }
            let mut tasks = Vec::new();
            for n in 0..claimants {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    (n, claim(store.as_ref(), "night", &claimant(n), now()).await)
                }));
            }
            for task in tasks {
                let (n, result) = task.await.unwrap();
                let identity = claimant(n).identity;
                if let Some(before) = won.get(&identity) {
                    // Nobody else prefers an address someone released while any other is free,
                    // and the releaser prefers it: so it comes back, unless it was the only
                    // free one left for a claimant that had none.
                    let others_without = (0..claimants)
                        .filter(|m| !won.contains_key(&claimant(*m).identity))
                        .count();
                    if others_without == 0 {
                        let got = result.as_ref().map(|a| a.spec.address.clone()).map_err(ToString::to_string);
                        prop_assert_eq!(got, Ok(before.clone()));
                    }
                }
            }
            let held = holders(&store);
            prop_assert_eq!(held.values().collect::<BTreeSet<_>>().len(), held.len());
            Ok(())
        })?;
    }
}

#[test]
fn the_next_stale_check_is_when_the_oldest_waiting_claim_times_out() {
    let timeout = jiff::SignedDuration::from_secs(30);
    let mut addresses = pool_addresses("night", 3, true);
    assert_eq!(
        next_stale_in(&addresses, timeout, now()),
        None,
        "no claim, no check"
    );
    let claimed_at = |seconds_ago: i64| {
        now()
            .checked_sub(jiff::SignedDuration::from_secs(seconds_ago))
            .unwrap()
            .to_string()
    };
    addresses[0].status = Some(StaticIPStatus {
        phase: AddressPhase::Claimed,
        claimed_at: Some(claimed_at(10)),
        ..StaticIPStatus::default()
    });
    addresses[1].status = Some(StaticIPStatus {
        phase: AddressPhase::Claimed,
        claimed_at: Some(claimed_at(25)),
        ..StaticIPStatus::default()
    });
    // A bound address is not waiting for its pod, however old its claim.
    addresses[2].status = Some(StaticIPStatus {
        phase: AddressPhase::Bound,
        claimed_at: Some(claimed_at(3600)),
        ..StaticIPStatus::default()
    });
    assert_eq!(
        next_stale_in(&addresses, timeout, now()),
        Some(std::time::Duration::from_secs(5))
    );
    addresses[1].status.as_mut().unwrap().claimed_at = Some(claimed_at(90));
    assert_eq!(
        next_stale_in(&addresses, timeout, now()),
        Some(std::time::Duration::ZERO),
        "an overdue claim is checked at once"
    );
}
