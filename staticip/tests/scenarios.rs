//! Pool and claim flows against a scripted Kubernetes API (tower-test `mock::pair`): every
//! request's method and path is asserted in order and answered as the API server would; bodies
//! are checked. DNS scenarios write to a real BIND 9 started on loopback.

use std::sync::Arc;

use http::{Request, Response};
use jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use staticip::addresses::plan;
use staticip::build::static_ip;
use staticip::claim::{Claimant, KubeStore, claim};
use staticip::controller::{Context, ControllerSettings, Metrics, ReconcileError, reconcile};
use staticip::crd::{ADDRESS_FINALIZER, POOL_FINALIZER, StaticIP, StaticIPPool, StaticIPStatus};
use testkit::named::{KEY_NAME, KEY_SECRET, Named, REVERSE_ZONE, ZONE};
use testkit::scripted::{Expect, list, not_found, sent, serve};

const IPS: &str = "/apis/elasticyarn.io/v1alpha1/staticips";
const POOLS: &str = "/apis/elasticyarn.io/v1alpha1/staticippools";

fn expect(method: &'static str, path: impl Into<String>, status: u16, answer: Value) -> Expect {
    Expect {
        method,
        path: path.into(),
        query: None,
        status,
        answer,
    }
}

fn pool(name: &str, created: &str, extra: Value) -> StaticIPPool {
    let mut spec = json!({
        "cidr": "10.20.0.0/30",
        "dnsZone": ZONE,
        "secretNamespace": "yarn",
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let mut pool = StaticIPPool::new(name, serde_json::from_value(spec).expect("pool spec"));
    pool.metadata.uid = Some(format!("uid-{name}"));
    pool.metadata.generation = Some(1);
    pool.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        created.parse().expect("time"),
    ));
    pool.metadata.finalizers = Some(vec![POOL_FINALIZER.to_owned()]);
    pool
}

/// The pool's addresses as the API server holds them after a create, with a status.
fn stored(pool: &StaticIPPool, version: u32, status: Option<StaticIPStatus>) -> Vec<StaticIP> {
    plan(&pool.metadata.name.clone().expect("name"), &pool.spec)
        .expect("plan")
        .iter()
        .enumerate()
        .map(|(i, planned)| {
            let mut address = static_ip(pool, planned);
            address.metadata.uid = Some(format!("uid-address-{i}"));
            address.metadata.resource_version = Some(format!("{version}{i}"));
            address.status = status.clone();
            address
        })
        .collect()
}

fn value<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("json")
}

fn ready() -> StaticIPStatus {
    StaticIPStatus {
        ready: true,
        ..StaticIPStatus::default()
    }
}

/// The two reads every pass of a live pool starts with: its addresses, then all pools.
fn opening(addresses: &[StaticIP], pools: &[&StaticIPPool]) -> Vec<Expect> {
    vec![
        expect(
            "GET",
            IPS,
            200,
            list("StaticIPList", addresses.iter().map(value).collect()),
        ),
        expect(
            "GET",
            POOLS,
            200,
            list(
                "StaticIPPoolList",
                pools.iter().map(|p| value(*p)).collect(),
            ),
        ),
    ]
}

fn holder(node: &str, uid: Option<&str>) -> Option<staticip::crd::Holder> {
    Some(staticip::crd::Holder {
        identity: format!("yarn/night/{node}"),
        namespace: "yarn".into(),
        pod: format!("night-nm-{node}"),
        uid: uid.map(str::to_owned),
    })
}

fn context(client: Client) -> Arc<Context> {
    Arc::new(Context {
        leadership: None,
        client,
        settings: ControllerSettings {
            // One at a time, so the script's order is the order of requests.
            concurrency: 1,
            ..ControllerSettings::default()
        },
        metrics: Metrics::default(),
        recorder: None,
    })
}

async fn run(
    pool: StaticIPPool,
    script: Vec<Expect>,
) -> (Result<Action, ReconcileError>, Vec<testkit::scripted::Seen>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(serve(handle, script));
    let client = Client::new(service, "default");
    let result = reconcile(Arc::new(pool), context(client)).await;
    let seen = server.await.expect("script served");
    (result, seen)
}

fn dns_spec(named: &Named) -> Value {
    json!({"dns": {
        "server": format!("127.0.0.1:{}", named.port),
        "tsigKeyName": KEY_NAME,
        "tsigSecret": {"name": "tsig", "namespace": "yarn", "key": "secret"},
        "reverseZone": REVERSE_ZONE,
    }})
}

fn tsig_secret() -> Value {
    use base64::Engine;
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tsig", "namespace": "yarn"},
           "data": {"secret": base64::engine::general_purpose::STANDARD.encode(KEY_SECRET)}})
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn a_new_pool_gets_its_addresses_their_dns_records_and_a_status() {
    let Some(named) = Named::start() else { return };
    let pool = pool("night", "2026-11-01T00:00:00Z", dns_spec(&named));
    let made = stored(&pool, 1, None);
    let mut script = opening(&[], &[&pool]);
    for address in &made {
        script.push(expect(
            "PATCH",
            format!("{IPS}/{}", address.metadata.name.clone().expect("name")),
            200,
            value(address),
        ));
    }
    script.push(expect(
        "GET",
        "/api/v1/namespaces/yarn/secrets/tsig",
        200,
        tsig_secret(),
    ));
    for address in &made {
        let mut done = address.clone();
        done.status = Some(StaticIPStatus {
            dns_ready: true,
            ready: true,
            ..StaticIPStatus::default()
        });
        script.push(expect(
            "PATCH",
            format!(
                "{IPS}/{}/status",
                address.metadata.name.clone().expect("name")
            ),
            200,
            value(&done),
        ));
    }
    script.push(expect(
        "PATCH",
        format!("{POOLS}/night/status"),
        200,
        value(&pool),
    ));
    let (result, seen) = run(pool, script).await;
    let sent_status_patch = sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/staticips/night-10-20-0-1/status",
    );

    assert_eq!(
        result.expect("reconciled"),
        Action::requeue(std::time::Duration::from_secs(60))
    );
    // Server-side apply of each StaticIP: labelled, finalized, owned by the pool.
    let applied = &sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/staticips/night-10-20-0-1",
    );
    assert_eq!(applied.content_type, "application/apply-patch+yaml");
    assert_eq!(
        applied.body["spec"],
        json!({
            "address": "10.20.0.1", "pool": "night", "hostName": "nm-10-20-0-1", "fqdn": "nm-10-20-0-1.yarn.test"
        })
    );
    assert_eq!(
        applied.body["metadata"]["labels"]["elasticyarn.io/static-ip-pool"],
        "night"
    );
    assert_eq!(
        applied.body["metadata"]["finalizers"],
        json!([ADDRESS_FINALIZER])
    );
    assert_eq!(
        applied.body["metadata"]["ownerReferences"][0]["uid"],
        "uid-night"
    );
    // The records exist in the real server before the status says so.
    assert_eq!(named.lookup("nm-10-20-0-1.yarn.test", "A"), ["10.20.0.1"]);
    assert_eq!(
        named.lookup("2.0.20.10.in-addr.arpa", "PTR"),
        ["nm-10-20-0-2.yarn.test."]
    );
    assert_eq!(
        sent_status_patch.content_type,
        "application/merge-patch+json"
    );
    assert_eq!(
        sent_status_patch.body,
        json!({"status": {
            "dnsReady": true, "keytabReady": false, "ready": true, "keytabSecret": null, "message": null
        }})
    );
    let status = &sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/staticippools/night/status",
    )
    .body;
    assert_eq!(status["status"]["total"], 2);
    assert_eq!(status["status"]["free"], 2);
    assert_eq!(condition(status, "Ready")["status"], "True");
    assert_eq!(condition(status, "DnsReady")["reason"], "Made");
    assert_eq!(condition(status, "KeytabsReady")["reason"], "NotConfigured");
}

#[tokio::test]
async fn a_wrong_tsig_key_leaves_addresses_unclaimable_and_says_why() {
    let Some(named) = Named::start() else { return };
    let pool = pool("night", "2026-11-01T00:00:00Z", dns_spec(&named));
    let existing = stored(&pool, 1, None);
    let mut secret = tsig_secret();
    {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let wrong = engine.encode(b"thirty-two bytes, but not theirs");
        secret["data"]["secret"] = json!(engine.encode(wrong));
    }
    let mut script: Vec<Expect> = [
        opening(&existing, &[&pool]),
        vec![expect(
            "GET",
            "/api/v1/namespaces/yarn/secrets/tsig",
            200,
            secret,
        )],
    ]
    .into_iter()
    .flatten()
    .collect();
    for address in &existing {
        script.push(expect(
            "PATCH",
            format!(
                "{IPS}/{}/status",
                address.metadata.name.clone().expect("name")
            ),
            200,
            value(address),
        ));
    }
    script.push(expect(
        "PATCH",
        format!("{POOLS}/night/status"),
        200,
        value(&pool),
    ));
    let (result, seen) = run(pool, script).await;
    let sent_status_patch = sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/staticips/night-10-20-0-1/status",
    );
    assert_eq!(
        result.expect("reconciled"),
        Action::requeue(std::time::Duration::from_secs(30))
    );
    assert_eq!(sent_status_patch.body["status"]["ready"], false);
    let message = sent_status_patch.body["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("refused the TSIG key"), "{message}");
    let status = &sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/staticippools/night/status",
    )
    .body;
    assert_eq!(condition(status, "DnsReady")["reason"], "DnsKeyRefused");
    assert_eq!(condition(status, "Ready")["status"], "False");
    assert_eq!(status["status"]["free"], 0);
    assert!(named.lookup("nm-10-20-0-1.yarn.test", "A").is_empty());
}

#[tokio::test]
async fn shrinking_retires_a_held_address_but_keeps_it_until_released() {
    let mut pool = pool("night", "2026-11-01T00:00:00Z", json!({}));
    let existing = stored(&pool, 1, Some(ready()));
    let mut held = existing[1].clone();
    held.status = Some(StaticIPStatus {
        phase: staticip::crd::AddressPhase::Bound,
        holder: holder("node-b", Some("pod-uid")),
        ..ready()
    });
    pool.spec.reserved = vec!["10.20.0.2".into()];
    let mut deleting = held.clone();
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
    );
    let script: Vec<Expect> = [
        opening(&[existing[0].clone(), held.clone()], &[&pool]),
        vec![
            expect(
                "DELETE",
                format!("{IPS}/night-10-20-0-2"),
                200,
                value(&deleting),
            ),
            expect("PATCH", format!("{POOLS}/night/status"), 200, value(&pool)),
        ],
    ]
    .into_iter()
    .flatten()
    .collect();
    let (result, seen) = run(pool, script).await;
    assert_eq!(
        result.expect("reconciled"),
        Action::requeue(std::time::Duration::from_secs(30))
    );
    let status = &sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/staticippools/night/status",
    )
    .body["status"];
    assert_eq!(
        (
            status["total"].clone(),
            status["retiring"].clone(),
            status["free"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
}

#[tokio::test]
async fn a_retired_address_nobody_holds_loses_its_records_then_its_finalizer() {
    let Some(named) = Named::start() else { return };
    let pool = pool("night", "2026-11-01T00:00:00Z", dns_spec(&named));
    // Records made earlier for the address that is now leaving.
    let dns = staticip::dns::DnsUpdater::new(staticip::dns::DnsTarget {
        server: format!("127.0.0.1:{}", named.port),
        key_name: KEY_NAME.into(),
        algorithm: staticip::crd::TsigAlgorithm::HmacSha256,
        key: {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(KEY_SECRET)
                .expect("key")
        },
        zone: ZONE.into(),
        reverse_zone: REVERSE_ZONE.into(),
        ttl: 60,
        timeout: std::time::Duration::from_secs(5),
    });
    dns.upsert("nm-10-20-0-2.yarn.test", "10.20.0.2".parse().expect("ip"))
        .await
        .expect("records");
    let mut existing = stored(
        &pool,
        1,
        Some(StaticIPStatus {
            dns_ready: true,
            ..ready()
        }),
    );
    existing[1].metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
    );
    let mut pool = pool;
    pool.spec.reserved = vec!["10.20.0.2".into()];
    let script: Vec<Expect> = [
        opening(&existing, &[&pool]),
        vec![
            expect(
                "GET",
                "/api/v1/namespaces/yarn/secrets/tsig",
                200,
                tsig_secret(),
            ),
            expect(
                "PATCH",
                format!("{IPS}/night-10-20-0-2"),
                200,
                value(&existing[1]),
            ),
            expect("PATCH", format!("{POOLS}/night/status"), 200, value(&pool)),
        ],
    ]
    .into_iter()
    .flatten()
    .collect();
    let (result, seen) = run(pool, script).await;
    result.expect("reconciled");
    assert!(named.lookup("nm-10-20-0-2.yarn.test", "A").is_empty());
    assert!(named.lookup("2.0.20.10.in-addr.arpa", "PTR").is_empty());
    assert_eq!(
        sent(
            &seen,
            "PATCH",
            "/apis/elasticyarn.io/v1alpha1/staticips/night-10-20-0-2"
        )
        .body,
        json!({"metadata": {"finalizers": [], "resourceVersion": "11"}})
    );
}

#[tokio::test]
async fn deleting_a_pool_waits_for_held_addresses() {
    let mut pool = pool("night", "2026-11-01T00:00:00Z", json!({}));
    pool.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Timestamp::now(),
    ));
    let mut existing = stored(&pool, 1, Some(ready()));
    existing[1].status = Some(StaticIPStatus {
        phase: staticip::crd::AddressPhase::Claimed,
        holder: holder("node-b", None),
        ..ready()
    });
    let deleting: Vec<StaticIP> = existing
        .iter()
        .map(|a| {
            let mut a = a.clone();
            a.metadata.deletion_timestamp = pool.metadata.deletion_timestamp.clone();
            a
        })
        .collect();
    let script: Vec<Expect> = [
        vec![expect(
            "GET",
            IPS,
            200,
            list("StaticIPList", existing.iter().map(value).collect()),
        )],
        vec![
            expect(
                "DELETE",
                format!("{IPS}/night-10-20-0-1"),
                200,
                value(&deleting[0]),
            ),
            expect(
                "DELETE",
                format!("{IPS}/night-10-20-0-2"),
                200,
                value(&deleting[1]),
            ),
            expect(
                "PATCH",
                format!("{IPS}/night-10-20-0-1"),
                200,
                value(&deleting[0]),
            ),
            expect("PATCH", format!("{POOLS}/night/status"), 200, value(&pool)),
        ],
    ]
    .into_iter()
    .flatten()
    .collect();
    let (result, seen) = run(pool, script).await;
    assert!(
        matches!(
            result,
            Err(ReconcileError::DeletionPending { held: 1, left: 0 })
        ),
        "{result:?}"
    );
    let ready = condition(
        &sent(
            &seen,
            "PATCH",
            "/apis/elasticyarn.io/v1alpha1/staticippools/night/status",
        )
        .body,
        "Ready",
    );
    assert_eq!(ready["reason"], "DeletionBlocked");
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("10.20.0.2 (yarn/night-nm-node-b)")
    );
}

#[tokio::test]
async fn the_younger_of_two_overlapping_pools_makes_nothing() {
    let old = pool(
        "day",
        "2026-10-01T00:00:00Z",
        json!({"cidr": "10.20.0.0/24"}),
    );
    let young = pool("night", "2026-11-01T00:00:00Z", json!({}));
    let script = vec![
        expect("GET", IPS, 200, list("StaticIPList", vec![])),
        expect(
            "GET",
            POOLS,
            200,
            list("StaticIPPoolList", vec![value(&old), value(&young)]),
        ),
        expect("PATCH", format!("{POOLS}/night/status"), 200, value(&young)),
    ];
    let (result, seen) = run(young, script).await;
    assert_eq!(
        result.expect("reconciled"),
        Action::requeue(std::time::Duration::from_secs(30))
    );
    let valid = condition(
        &sent(
            &seen,
            "PATCH",
            "/apis/elasticyarn.io/v1alpha1/staticippools/night/status",
        )
        .body,
        "AddressesValid",
    );
    assert_eq!(valid["reason"], "Overlapping");
    assert_eq!(
        valid["message"],
        "address 10.20.0.1 is also in the older pool day: this pool makes no addresses until they no longer overlap"
    );
}

#[tokio::test]
async fn a_claim_whose_pod_never_came_is_released_after_the_timeout() {
    let pool = pool("night", "2026-11-01T00:00:00Z", json!({}));
    let mut existing = stored(&pool, 1, Some(ready()));
    existing[0].status = Some(StaticIPStatus {
        phase: staticip::crd::AddressPhase::Claimed,
        holder: holder("node-a", None),
        claimed_at: Some("2026-11-24T10:00:00Z".into()),
        ..ready()
    });
    let mut freed = existing[0].clone();
    freed.status = Some(StaticIPStatus {
        last_holder: Some("yarn/night/node-a".into()),
        ..ready()
    });
    let script: Vec<Expect> = [
        opening(&existing, &[&pool]),
        vec![
            expect(
                "GET",
                "/api/v1/namespaces/yarn/pods/night-nm-node-a",
                404,
                not_found("pods", "night-nm-node-a"),
            ),
            expect(
                "PUT",
                format!("{IPS}/night-10-20-0-1/status"),
                200,
                value(&freed),
            ),
            expect("PATCH", format!("{POOLS}/night/status"), 200, value(&pool)),
        ],
    ]
    .into_iter()
    .flatten()
    .collect();
    let (result, seen) = run(pool, script).await;
    result.expect("reconciled");
    let put = &sent(
        &seen,
        "PUT",
        "/apis/elasticyarn.io/v1alpha1/staticips/night-10-20-0-1/status",
    )
    .body;
    assert_eq!(
        put["metadata"]["resourceVersion"], "10",
        "guarded by what was read"
    );
    assert_eq!(put["status"]["phase"], "Free");
    assert_eq!(put["status"]["lastHolder"], "yarn/night/node-a");
    assert!(put["status"].get("holder").is_none());
    assert_eq!(
        sent(
            &seen,
            "PATCH",
            "/apis/elasticyarn.io/v1alpha1/staticippools/night/status"
        )
        .body["status"]["free"],
        2
    );
}

#[tokio::test]
async fn a_claim_that_loses_the_race_reads_again_and_takes_another_address() {
    let pool = pool("night", "2026-11-01T00:00:00Z", json!({}));
    let existing = stored(&pool, 1, Some(ready()));
    let claimant = Claimant {
        identity: "yarn/night/node-a".into(),
        namespace: "yarn".into(),
        pod: "night-nm-node-a".into(),
    };
    // Which address node-a tries first depends on its identity's hash: find out.
    let first = match staticip::claim::choose(&existing, &claimant.identity) {
        staticip::claim::Choice::Take(i) => i,
        other => panic!("{other:?}"),
    };
    let second = 1 - first;
    let mut taken = existing.clone();
    taken[first].metadata.resource_version = Some("99".into());
    taken[first].status = Some(StaticIPStatus {
        phase: staticip::crd::AddressPhase::Claimed,
        holder: holder("node-z", None),
        ..ready()
    });
    let name = |i: usize| existing[i].metadata.name.clone().expect("name");
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Operation cannot be fulfilled on staticips.elasticyarn.io: the object has been modified; please apply your changes to the latest version and try again",
        "reason": "Conflict", "details": {"name": name(first), "group": "elasticyarn.io", "kind": "staticips"}, "code": 409});
    let mut won = existing[second].clone();
    won.status = Some(StaticIPStatus {
        phase: staticip::crd::AddressPhase::Claimed,
        ..ready()
    });
    let script = vec![
        Expect {
            query: Some("&labelSelector=elasticyarn.io%2Fstatic-ip-pool%3Dnight"),
            ..expect(
                "GET",
                IPS,
                200,
                list("StaticIPList", existing.iter().map(value).collect()),
            )
        },
        expect(
            "PUT",
            format!("{IPS}/{}/status", name(first)),
            409,
            conflict,
        ),
        expect(
            "GET",
            IPS,
            200,
            list("StaticIPList", taken.iter().map(value).collect()),
        ),
        expect(
            "PUT",
            format!("{IPS}/{}/status", name(second)),
            200,
            value(&won),
        ),
    ];
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(serve(handle, script));
    let store = KubeStore::new(Client::new(service, "default"));
    let now: Timestamp = "2026-11-24T12:00:00Z".parse().expect("time");
    let got = claim(&store, "night", &claimant, now)
        .await
        .expect("claimed");
    let seen = server.await.expect("served");
    let sent_status_put = sent(
        &seen,
        "PUT",
        "/apis/elasticyarn.io/v1alpha1/staticips/night-10-20-0-2/status",
    );
    let status_put_2 = sent(
        &seen,
        "PUT",
        "/apis/elasticyarn.io/v1alpha1/staticips/night-10-20-0-1/status",
    );
    assert_eq!(got.metadata.name, Some(name(second)));
    assert_eq!(
        sent_status_put.body["metadata"]["resourceVersion"],
        format!("1{first}")
    );
    assert_eq!(
        sent_status_put.body["status"]["holder"]["identity"],
        "yarn/night/node-a"
    );
    assert_eq!(
        status_put_2.body["metadata"]["resourceVersion"],
        format!("1{second}")
    );
    assert_eq!(status_put_2.body["status"]["phase"], "Claimed");
    assert_eq!(
        status_put_2.body["status"]["claimedAt"],
        "2026-11-24T12:00:00Z"
    );
}

#[tokio::test]
async fn each_address_gets_a_principal_and_a_keytab_secret_that_authenticates() {
    use base64::Engine;
    let Some(kdc) = testkit::kdc::Kdc::start_with_kadmind() else {
        return;
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let realm = testkit::kdc::REALM;
    let mut pool = pool(
        "night",
        "2026-11-01T00:00:00Z",
        json!({"cidr": "10.20.0.0/31", "kerberos": {
            "realm": realm,
            "kdcs": [format!("127.0.0.1:{}", kdc.port)],
            "adminServer": format!("127.0.0.1:{}", kdc.admin_port),
            "adminPrincipal": testkit::kdc::ADMIN_PRINCIPAL,
            "adminKeytab": {"name": "kadmin", "namespace": "elastic-yarn", "key": "keytab"},
        }}),
    );
    pool.spec.cidr = Some("10.20.0.7/32".into());
    let existing = stored(&pool, 1, None);
    let admin = std::fs::read(kdc.admin_keytab()).expect("admin keytab");
    let admin_secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "kadmin", "namespace": "elastic-yarn"}, "data": {"keytab": engine.encode(&admin)}});
    let mut done = existing[0].clone();
    done.status = Some(StaticIPStatus {
        keytab_ready: true,
        ready: true,
        keytab_secret: Some("night-10-20-0-7-keytab".into()),
        ..StaticIPStatus::default()
    });
    let script: Vec<Expect> = [
        opening(&existing, &[&pool]),
        vec![
        expect(
            "GET",
            "/api/v1/namespaces/elastic-yarn/secrets/kadmin",
            200,
            admin_secret,
        ),
        expect(
            "GET",
            "/api/v1/namespaces/yarn/secrets/night-10-20-0-7-keytab",
            404,
            not_found("secrets", "night-10-20-0-7-keytab"),
        ),
        expect(
            "PATCH",
            "/api/v1/namespaces/yarn/secrets/night-10-20-0-7-keytab",
            200,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "night-10-20-0-7-keytab", "namespace": "yarn"}}),
        ),
        expect(
            "PATCH",
            format!("{IPS}/night-10-20-0-7/status"),
            200,
            value(&done),
        ),
        expect("PATCH", format!("{POOLS}/night/status"), 200, value(&pool)),
        ],
    ]
    .into_iter()
    .flatten()
    .collect();
    let (result, seen) = run(pool, script).await;
    result.expect("reconciled");
    let principal = format!("nm/nm-10-20-0-7.yarn.test@{realm}");
    assert!(kdc.has_principal(&principal));
    let secret = &sent(
        &seen,
        "PATCH",
        "/api/v1/namespaces/yarn/secrets/night-10-20-0-7-keytab",
    )
    .body;
    assert_eq!(
        secret["metadata"]["annotations"]["elasticyarn.io/principal"],
        principal.as_str()
    );
    assert_eq!(secret["metadata"]["ownerReferences"][0]["kind"], "StaticIP");
    let keytab = engine
        .decode(
            secret["data"]["krb5.keytab"]
                .as_str()
                .expect("keytab in the Secret"),
        )
        .expect("base64");
    let file = kdc.path("from-secret.keytab");
    std::fs::write(&file, keytab).expect("write");
    kdc.kinit(&principal, &file)
        .expect("the Secret's keytab authenticates");
    assert_eq!(
        sent(
            &seen,
            "PATCH",
            "/apis/elasticyarn.io/v1alpha1/staticips/night-10-20-0-7/status"
        )
        .body["status"]["keytabSecret"],
        "night-10-20-0-7-keytab"
    );
    assert_eq!(
        condition(
            &sent(
                &seen,
                "PATCH",
                "/apis/elasticyarn.io/v1alpha1/staticippools/night/status"
            )
            .body,
            "KeytabsReady"
        )["reason"],
        "Made"
    );
}
