//! Static addresses end to end: the staticip controller (as its chart ServiceAccount) gives a
//! pool's addresses real DNS records in BIND and real principals in the KDC; two pools' NMs
//! claim them at once through the operator and never share one; deletion gives everything back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::chart::RELEASE_NAMESPACE;
use elastic_yarn_e2e::pools::{self, hadoop_conf, manifest, node_manager_pods, resident, running};
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::world::World;
use elastic_yarn_operator::crd::ElasticNodePool;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use staticip::crd::{AddressPhase, POOL_LABEL, StaticIP, StaticIPPool};
use testkit::kdc::{ADMIN_PRINCIPAL, Kdc, REALM};
use testkit::named::{KEY_NAME, KEY_SECRET, Named, REVERSE_ZONE, ZONE};

const ADDRESSES: &str = "e2e-addresses";

async fn put_secret(world: &World, name: &str, key: &str, value: Vec<u8>) {
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), RELEASE_NAMESPACE);
    let object: Secret =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("a Secret");
    let mut object = object;
    object.data = Some([(key.to_owned(), ByteString(value))].into());
    secrets
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&object),
        )
        .await
        .expect("Secret applied");
}

/// Creates a StaticIPPool, deleting a leftover of an earlier run first.
async fn recreate(pools: &Api<StaticIPPool>, pool: &StaticIPPool) {
    let name = pool.name_any();
    let _ = pools.delete(&name, &DeleteParams::default()).await;
    pools
        .create(&PostParams::default(), pool)
        .await
        .unwrap_or_else(|e| panic!("cannot create StaticIPPool {name}: {e}"));
}

/// Waits until every address of the pool is in `phase`, and returns them.
async fn all_in_phase(world: &World, phase: AddressPhase, what: &str) -> Vec<StaticIP> {
    wait_for(what, Duration::from_secs(90), || async {
        let all = addresses(world).await;
        all.iter()
            .all(|a| a.status.as_ref().is_some_and(|s| s.phase == phase))
            .then_some(all)
    })
    .await
}

async fn addresses(world: &World) -> Vec<StaticIP> {
    Api::<StaticIP>::all(world.client.clone())
        .list(&ListParams::default().labels(&format!("{POOL_LABEL}={ADDRESSES}")))
        .await
        .expect("StaticIPs listed")
        .items
}

pub async fn static_addresses_with_real_bind_and_kdc(world: Arc<World>) {
    world.operator().await;
    let (named, kdc) = tokio::task::spawn_blocking(|| {
        (
            Named::start().expect("BIND 9 (bind9) is installed"),
            Kdc::start_with_kadmind()
                .expect("the MIT KDC (krb5-kdc, krb5-admin-server) is installed"),
        )
    })
    .await
    .expect("BIND and the KDC started");
    let ns = world.namespace("e2e-static").await;
    hadoop_conf(&world.client, &ns).await;
    put_secret(&world, "e2e-tsig", "secret", KEY_SECRET.as_bytes().to_vec()).await;
    let keytab = std::fs::read(kdc.admin_keytab()).expect("admin keytab");
    put_secret(&world, "e2e-kadmin", "keytab", keytab).await;

    let process = world
        .start_controller(
            "staticip-controller",
            "elastic-yarn-staticip",
            "staticip-a",
            &[],
        )
        .await;
    world.staticips.lock().await.push(process);

    let pool: StaticIPPool = serde_json::from_value(json!({
        "apiVersion": "elasticyarn.io/v1alpha1",
        "kind": "StaticIPPool",
        "metadata": {"name": ADDRESSES},
        "spec": {
            "cidr": "10.99.0.0/29",
            "hostNameTemplate": "nm-{index}",
            "claimTimeoutSeconds": 30,
            "dnsZone": ZONE,
            "secretNamespace": ns,
            "cni": {"style": "KubeOvn"},
            "dns": {
                "server": format!("127.0.0.1:{}", named.port),
                "tsigKeyName": KEY_NAME,
                "tsigAlgorithm": "hmac-sha256",
                "tsigSecret": {"name": "e2e-tsig", "namespace": RELEASE_NAMESPACE, "key": "secret"},
                "reverseZone": REVERSE_ZONE,
                "ttl": 60,
            },
            "kerberos": {
                "realm": REALM,
                "kdcs": [format!("127.0.0.1:{}", kdc.port)],
                "adminServer": format!("127.0.0.1:{}", kdc.admin_port),
                "adminPrincipal": ADMIN_PRINCIPAL,
                "adminKeytab": {"name": "e2e-kadmin", "namespace": RELEASE_NAMESPACE, "key": "keytab"},
                "principalTemplate": "nm/{fqdn}@{realm}",
            },
        }
    }))
    .expect("a StaticIPPool");
    let static_pools: Api<StaticIPPool> = Api::all(world.client.clone());
    recreate(&static_pools, &pool).await;
    wait_for(
        "six addresses with records and keytabs",
        Duration::from_secs(120),
        || async {
            let status = static_pools.get_status(ADDRESSES).await.ok()?.status?;
            (status.total == 6 && status.ready == 6).then_some(())
        },
    )
    .await;

    // Two pools on the same three nodes claim at once: six NMs, six addresses.
    let nodes = ["e2e-static-1", "e2e-static-2", "e2e-static-3"];
    world.nodes(&nodes, &[("e2e/pool", "static")]).await;
    for name in ["static-a", "static-b"] {
        let mut pool = manifest(&world, &ns, name, "static", resident());
        pool["spec"]["staticIP"] = json!({"pool": ADDRESSES});
        pools::create(&world.client, &pool).await;
    }
    let pods = wait_for(
        "six NMs running on their static addresses",
        Duration::from_secs(120),
        || async {
            let mut all = node_manager_pods(&world.client, &ns, "static-a").await;
            all.extend(node_manager_pods(&world.client, &ns, "static-b").await);
            (all.len() == 6 && all.iter().all(running)).then_some(all)
        },
    )
    .await;
    let ips: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect();
    assert_eq!(ips.len(), 6, "six NMs, six different addresses: {ips:?}");
    assert!(ips.iter().all(|ip| ip.starts_with("10.99.0.")), "{ips:?}");
    let bound = all_in_phase(
        &world,
        AddressPhase::Bound,
        "every address bound to its pod",
    )
    .await;
    let pod_uids: BTreeSet<String> = pods.iter().map(|p| p.uid().unwrap_or_default()).collect();
    for address in &bound {
        let holder = address
            .status
            .as_ref()
            .and_then(|s| s.holder.as_ref())
            .expect("a holder");
        assert!(
            holder
                .uid
                .as_ref()
                .is_some_and(|uid| pod_uids.contains(uid)),
            "{} is bound to a pod that is not one of the NMs",
            address.spec.address
        );
        let records = named.lookup(&address.spec.fqdn, "A");
        assert_eq!(
            records,
            vec![address.spec.address.clone()],
            "A record of {}",
            address.spec.fqdn
        );
        let principal = address.spec.principal.clone().expect("a principal");
        assert!(kdc.has_principal(&principal), "{principal} in the KDC");
    }
    let keytabs: Api<Secret> = Api::namespaced(world.client.clone(), &ns);
    let one = &bound[0];
    let secret = keytabs
        .list(&ListParams::default())
        .await
        .expect("Secrets listed")
        .items
        .into_iter()
        .find(|s| {
            s.owner_references()
                .iter()
                .any(|o| o.name == one.name_any())
        })
        .expect("the address's keytab Secret");
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.values().next())
        .map(|b| b.0.clone())
        .expect("keytab bytes");
    let file = world.dir.join("nm.keytab");
    std::fs::write(&file, bytes).expect("keytab file");
    kdc.kinit(one.spec.principal.as_deref().expect("a principal"), &file)
        .expect("the NM's keytab authenticates");

    // Deleting the pools frees the addresses; deleting the StaticIPPool takes records, principals
    // and keytabs away.
    let enps: Api<ElasticNodePool> = Api::namespaced(world.client.clone(), &ns);
    for name in ["static-a", "static-b"] {
        enps.delete(name, &DeleteParams::default())
            .await
            .expect("pool deleted");
    }
    all_in_phase(&world, AddressPhase::Free, "every address free again").await;

    // A claim whose pod never comes is released once it is older than the pool's timeout.
    let ghost = staticip::claim::Claimant {
        identity: format!("{ns}/ghost/nowhere"),
        namespace: ns.clone(),
        pod: "ghost-nm-nowhere".to_owned(),
    };
    let store = staticip::claim::KubeStore::new(world.client.clone());
    let claimed = staticip::claim::claim(&store, ADDRESSES, &ghost, jiff::Timestamp::now())
        .await
        .expect("a free address to claim");
    wait_for(
        "the stale claim released",
        Duration::from_secs(90),
        || async {
            let all = addresses(&world).await;
            let address = all.iter().find(|a| a.name_any() == claimed.name_any())?;
            (address.status.as_ref()?.phase == AddressPhase::Free).then_some(())
        },
    )
    .await;

    // A pool whose TSIG key BIND refuses: no address is made ready, the condition says why,
    // and the Warning repeats as one Event series.
    put_secret(
        &world,
        "e2e-tsig-wrong",
        "secret",
        b"d3Jvbmcga2V5IGZvciB0aGUgdGVzdA==".to_vec(),
    )
    .await;
    let mut wrong: StaticIPPool = pool.clone();
    wrong.metadata.name = Some("e2e-wrong-key".to_owned());
    wrong.spec.cidr = Some("10.98.0.0/30".to_owned());
    wrong.spec.kerberos = None;
    if let Some(dns) = wrong.spec.dns.as_mut() {
        dns.tsig_secret.name = "e2e-tsig-wrong".to_owned();
    }
    recreate(&static_pools, &wrong).await;
    wait_for(
        "DnsReady=False/DnsKeyRefused",
        Duration::from_secs(60),
        || async {
            let status = static_pools
                .get_status("e2e-wrong-key")
                .await
                .ok()?
                .status?;
            let refused = status.conditions.iter().any(|c| {
                c.type_ == "DnsReady" && c.status == "False" && c.reason == "DnsKeyRefused"
            });
            (refused && status.ready == 0).then_some(())
        },
    )
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(world.client.clone());
    wait_for(
        "the DNS Warning repeated in one series",
        Duration::from_secs(90),
        || async {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("DnsUpdateFailed")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                            == Some("e2e-wrong-key")
                        && e.series.as_ref().is_some_and(|s| s.count >= 2)
                })
        },
    )
    .await;
    static_pools
        .delete("e2e-wrong-key", &DeleteParams::default())
        .await
        .expect("the wrong-key pool deleted");

    static_pools
        .delete(ADDRESSES, &DeleteParams::default())
        .await
        .expect("StaticIPPool deleted");
    wait_for(
        "the StaticIPPools and their addresses gone",
        Duration::from_secs(120),
        || async {
            let gone = static_pools.get_opt(ADDRESSES).await.ok()?.is_none()
                && static_pools.get_opt("e2e-wrong-key").await.ok()?.is_none()
                && addresses(&world).await.is_empty();
            gone.then_some(())
        },
    )
    .await;
    // The wrong-key pool went too: its never-made records could not be removed, which the
    // controller says instead of keeping the pool forever.
    let skipped = events
        .list(&ListParams::default())
        .await
        .expect("events listed")
        .items
        .into_iter()
        .any(|e| {
            e.reason.as_deref() == Some("CleanupSkipped")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("e2e-wrong-key")
        });
    assert!(skipped, "no CleanupSkipped Event for the wrong-key pool");
    for address in &bound {
        assert!(
            named.lookup(&address.spec.fqdn, "A").is_empty(),
            "{} kept its A record",
            address.spec.fqdn
        );
        let principal = address.spec.principal.clone().expect("a principal");
        assert!(
            !kdc.has_principal(&principal),
            "{principal} is still in the KDC"
        );
    }
}
