//! The staticip controller and claim API against a real API server: skipped unless `KUBECONFIG`
//! is set, failing instead when `ELASTIC_YARN_REQUIRE_E2E=1`. Needs the CRDs installed
//! (`charts/elastic-yarn/crds/`).
//!
//! Applies a StaticIPPool of two TEST-NET-1 addresses without DNS or Kerberos, runs passes of
//! the controller's own reconcile until both addresses are ready, lets two claimants race with
//! the real API server's resourceVersion checks (they must get different addresses), releases,
//! then deletes the pool and waits until its finalizer lets it go.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use staticip::claim::{Claimant, KubeStore, claim, release};
use staticip::controller::{Context, ControllerSettings, Metrics, reconcile};
use staticip::crd::{POOL_LABEL, StaticIP, StaticIPPool};

fn configured() -> bool {
    let set = std::env::var("KUBECONFIG").is_ok_and(|v| !v.is_empty());
    if !set {
        assert!(
            std::env::var("ELASTIC_YARN_REQUIRE_E2E").as_deref() != Ok("1"),
            "ELASTIC_YARN_REQUIRE_E2E=1 but KUBECONFIG is not set"
        );
        eprintln!("SKIPPED: set KUBECONFIG to run against a real cluster");
    }
    set
}

async fn pass(pools: &Api<StaticIPPool>, name: &str, ctx: &Arc<Context>) -> bool {
    match pools.get_opt(name).await.expect("read the pool") {
        Some(pool) => {
            let _ = reconcile(Arc::new(pool), ctx.clone()).await;
            true
        }
        None => false,
    }
}

#[tokio::test]
async fn a_pool_makes_its_addresses_and_racing_claims_never_share_one() {
    if !configured() {
        return;
    }
    let client = Client::try_default().await.expect("kubeconfig");
    let name = format!("e2e-{}", Timestamp::now().as_second());
    let pools: Api<StaticIPPool> = Api::all(client.clone());
    let pool: StaticIPPool = serde_json::from_value(serde_json::json!({
        "apiVersion": "elasticyarn.io/v1alpha1", "kind": "StaticIPPool",
        "metadata": {"name": name},
        "spec": {"cidr": "192.0.2.0/30", "dnsZone": "e2e.example.com", "secretNamespace": "default"}
    }))
    .expect("pool");
    pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("create the pool");
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings: ControllerSettings::default(),
        metrics: Metrics::default(),
        recorder: None,
    });
    let ips: Api<StaticIP> = Api::all(client.clone());
    let selector = ListParams::default().labels(&format!("{POOL_LABEL}={name}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        pass(&pools, &name, &ctx).await;
        let made = ips.list(&selector).await.expect("list").items;
        if made.len() == 2 && made.iter().all(|a| a.state().ready) {
            break;
        }
        assert!(Instant::now() < deadline, "addresses not ready: {made:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let store = KubeStore::new(client.clone());
    let now = Timestamp::now();
    let claimant = |n: u32| Claimant {
        identity: format!("default/e2e/node-{n}"),
        namespace: "default".to_owned(),
        pod: format!("e2e-nm-node-{n}"),
    };
    let (first, second) = (claimant(1), claimant(2));
    let (a, b) = tokio::join!(
        claim(&store, &name, &first, now),
        claim(&store, &name, &second, now)
    );
    let (a, b) = (a.expect("claim 1"), b.expect("claim 2"));
    assert_ne!(a.spec.address, b.spec.address);
    let third = claim(&store, &name, &claimant(3), now).await;
    assert!(third.is_err(), "two addresses, two holders: {third:?}");
    for n in [1, 2] {
        release(&store, &name, &claimant(n).identity)
            .await
            .expect("release");
    }

    pools
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the pool");
    let deadline = Instant::now() + Duration::from_secs(60);
    while pass(&pools, &name, &ctx).await {
        assert!(Instant::now() < deadline, "the pool was not released");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(ips.list(&selector).await.expect("list").items.is_empty());
}
