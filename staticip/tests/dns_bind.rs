//! A and PTR records through RFC 2136 updates signed with TSIG, against a real BIND 9 `named`
//! started on loopback: made, read back with the real `dig`, replaced, removed; a wrong key and
//! an unreachable server give clear errors.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use staticip::crd::TsigAlgorithm;
use staticip::dns::{DnsError, DnsTarget, DnsUpdater};
use testkit::named::{KEY_NAME, KEY_SECRET, Named, REVERSE_ZONE, ZONE};

fn target(server: &Named, key: &str) -> DnsTarget {
    DnsTarget {
        server: format!("127.0.0.1:{}", server.port),
        key_name: KEY_NAME.to_owned(),
        algorithm: TsigAlgorithm::HmacSha256,
        key: base64::engine::general_purpose::STANDARD
            .decode(key)
            .expect("base64 key"),
        zone: ZONE.to_owned(),
        reverse_zone: REVERSE_ZONE.to_owned(),
        ttl: 120,
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn records_are_made_replaced_and_removed() {
    let Some(named) = Named::start() else { return };
    let dns = DnsUpdater::new(target(&named, KEY_SECRET));
    let ip: IpAddr = "10.20.0.5".parse().unwrap();
    let fqdn = "nm-10-20-0-5.yarn.test";

    dns.upsert(fqdn, ip)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", named.log()));
    assert_eq!(named.lookup(fqdn, "A"), ["10.20.0.5"]);
    assert_eq!(
        named.lookup("5.0.20.10.in-addr.arpa", "PTR"),
        [format!("{fqdn}.")]
    );

    // Idempotent, and a new address replaces the old A record instead of adding a second.
    dns.upsert(fqdn, ip).await.unwrap();
    let moved: IpAddr = "10.20.0.6".parse().unwrap();
    dns.upsert(fqdn, moved).await.unwrap();
    assert_eq!(named.lookup(fqdn, "A"), ["10.20.0.6"]);
    assert_eq!(
        named.lookup("6.0.20.10.in-addr.arpa", "PTR"),
        [format!("{fqdn}.")]
    );

    dns.remove(fqdn, moved).await.unwrap();
    dns.remove(fqdn, ip).await.unwrap();
    assert!(named.lookup(fqdn, "A").is_empty());
    assert!(named.lookup("5.0.20.10.in-addr.arpa", "PTR").is_empty());
    assert!(named.lookup("6.0.20.10.in-addr.arpa", "PTR").is_empty());
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_changes_nothing() {
    let Some(named) = Named::start() else { return };
    let wrong =
        base64::engine::general_purpose::STANDARD.encode(b"not the key the server knows!!!");
    let dns = DnsUpdater::new(target(&named, &wrong));
    let error = dns
        .upsert("nm-10-20-0-7.yarn.test", "10.20.0.7".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DnsError::KeyRefused { key, .. } if key == KEY_NAME),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("refused the TSIG key"),
        "{error}"
    );
    assert!(named.lookup("nm-10-20-0-7.yarn.test", "A").is_empty());
}

#[tokio::test]
async fn names_outside_the_zones_and_dead_servers_are_clear_errors() {
    let Some(named) = Named::start() else { return };
    let dns = DnsUpdater::new(target(&named, KEY_SECRET));
    let outside = dns
        .upsert("nm-1.other.test", "10.20.0.8".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        outside,
        DnsError::Config("nm-1.other.test is not in zone yarn.test".to_owned())
    );
    let port = named.port;
    drop(named);
    let mut dead = target_for_port(port);
    dead.timeout = Duration::from_secs(2);
    let error = DnsUpdater::new(dead)
        .upsert("nm-10-20-0-8.yarn.test", "10.20.0.8".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, DnsError::Unreachable { .. }), "{error:?}");
}

fn target_for_port(port: u16) -> DnsTarget {
    DnsTarget {
        server: format!("127.0.0.1:{port}"),
        key_name: KEY_NAME.to_owned(),
        algorithm: TsigAlgorithm::HmacSha256,
        key: base64::engine::general_purpose::STANDARD
            .decode(KEY_SECRET)
            .expect("base64 key"),
        zone: ZONE.to_owned(),
        reverse_zone: REVERSE_ZONE.to_owned(),
        ttl: 120,
        timeout: Duration::from_secs(5),
    }
}
