use std::net::IpAddr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rstest::rstest;

use super::*;
use crate::crd::{AddressRange, KerberosSpec, SecretKeyRef};

fn spec(cidr: Option<&str>, ranges: &[(&str, &str)], reserved: &[&str]) -> StaticIPPoolSpec {
    serde_json::from_value(serde_json::json!({
        "cidr": cidr,
        "ranges": ranges.iter().map(|(s, e)| AddressRange { start: (*s).to_owned(), end: (*e).to_owned() }).collect::<Vec<_>>(),
        "reserved": reserved,
        "dnsZone": "yarn.example.com.",
        "secretNamespace": "yarn",
    }))
    .unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn cidr_leaves_out_network_broadcast_and_reserved() {
    let set = usable_addresses(&spec(Some("10.20.0.0/29"), &[], &["10.20.0.1"])).unwrap();
    let got: Vec<String> = set.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "10.20.0.2",
            "10.20.0.3",
            "10.20.0.4",
            "10.20.0.5",
            "10.20.0.6"
        ]
    );
}

#[test]
fn ranges_are_inclusive_and_join_the_cidr() {
    let set = usable_addresses(&spec(
        Some("10.0.0.0/30"),
        &[("10.0.1.250", "10.0.2.1")],
        &[],
    ))
    .unwrap();
    assert_eq!(set.len(), 2 + 8);
    assert!(set.contains(&ip("10.0.1.255")) && set.contains(&ip("10.0.2.0")));
}

#[rstest]
#[case(spec(Some("10.0.0.0/33"), &[], &[]), SpecError::InvalidCidr("10.0.0.0/33".into()))]
#[case(spec(Some("10.0.0.0/8"), &[], &[]), SpecError::TooMany)]
#[case(spec(Some("fd00::/64"), &[], &[]), SpecError::TooMany)]
#[case(spec(None, &[("10.0.0.9", "10.0.0.1")], &[]), SpecError::InvalidRange { start: "10.0.0.9".into(), end: "10.0.0.1".into() })]
#[case(spec(None, &[("10.0.0.1", "fd00::1")], &[]), SpecError::InvalidRange { start: "10.0.0.1".into(), end: "fd00::1".into() })]
#[case(spec(None, &[("10.0.0.1", "10.0.0.x")], &[]), SpecError::InvalidAddress("10.0.0.x".into()))]
#[case(spec(Some("10.0.0.4/32"), &[], &["10.0.0.4"]), SpecError::Empty)]
fn bad_address_specs_say_why(#[case] spec: StaticIPPoolSpec, #[case] error: SpecError) {
    assert_eq!(usable_addresses(&spec), Err(error));
}

#[test]
fn plan_names_every_address() {
    let mut s = spec(Some("10.20.0.0/30"), &[("fd00::a", "fd00::a")], &[]);
    s.kerberos = Some(KerberosSpec {
        realm: "EXAMPLE.COM".into(),
        kdcs: vec!["kdc.example.com".into()],
        admin_server: "kdc.example.com".into(),
        admin_principal: "admin/admin@EXAMPLE.COM".into(),
        admin_keytab: SecretKeyRef {
            name: "a".into(),
            namespace: "b".into(),
            key: "c".into(),
        },
        principal_template: "nm/{fqdn}@{realm}".into(),
    });
    let planned = plan("night", &s).unwrap();
    assert_eq!(
        planned[0],
        PlannedAddress {
            ip: ip("10.20.0.1"),
            object_name: "night-10-20-0-1".into(),
            host_name: "nm-10-20-0-1".into(),
            fqdn: "nm-10-20-0-1.yarn.example.com".into(),
            principal: Some("nm/nm-10-20-0-1.yarn.example.com@EXAMPLE.COM".into()),
        }
    );
    assert_eq!(planned[2].host_name, "nm-fd00--a");
    assert_eq!(planned.len(), 3);
}

#[rstest]
#[case("yarn-{index}", Ok("yarn-1"))]
#[case("{pool}-{ip}", Ok("night-10-20-0-2"))]
#[case("NM-{ip}", Err(SpecError::InvalidHostName("NM-10-20-0-1".into())))]
#[case("nm", Err(SpecError::DuplicateHostName("nm".into())))]
#[case("nm-{node}", Err(SpecError::UnknownPlaceholder("{node}".into())))]
#[case("nm-{ip", Err(SpecError::UnknownPlaceholder("{ip".into())))]
fn host_name_templates(#[case] template: &str, #[case] second: Result<&str, SpecError>) {
    let mut s = spec(Some("10.20.0.0/29"), &[], &[]);
    s.host_name_template = template.into();
    let got = plan("night", &s).map(|p| p[1].host_name.clone());
    assert_eq!(got, second.map(str::to_owned));
}

#[test]
fn bad_zone_and_principal_are_refused() {
    let mut s = spec(Some("10.20.0.0/30"), &[], &[]);
    s.dns_zone = "yarn..example".into();
    assert_eq!(
        plan("p", &s),
        Err(SpecError::InvalidZone("yarn..example".into()))
    );
    let mut s = spec(Some("10.20.0.0/30"), &[], &[]);
    s.kerberos = Some(KerberosSpec {
        realm: "EXAMPLE.COM".into(),
        kdcs: vec![],
        admin_server: String::new(),
        admin_principal: String::new(),
        admin_keytab: SecretKeyRef {
            name: "a".into(),
            namespace: "b".into(),
            key: "c".into(),
        },
        principal_template: "nm/{fqdn}\" -q \"delprinc x".into(),
    });
    assert!(matches!(plan("p", &s), Err(SpecError::InvalidPrincipal(_))));
}

#[rstest]
#[case("10.20.0.5", "5.0.20.10.in-addr.arpa")]
#[case(
    "fd00::1",
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa"
)]
fn ptr_names(#[case] address: &str, #[case] name: &str) {
    assert_eq!(ptr_name(ip(address)), name);
}

#[rstest]
#[case("10.20.0.1", "10.20.0.254", "0.20.10.in-addr.arpa")]
#[case("10.20.0.1", "10.20.3.254", "20.10.in-addr.arpa")]
#[case("10.20.0.1", "10.21.0.1", "10.in-addr.arpa")]
// fd00::/120: 30 nibbles fixed, the last two vary.
#[case(
    "fd00::1",
    "fd00::ff",
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa"
)]
fn reverse_zones_on_octet_and_nibble_boundaries(
    #[case] first: &str,
    #[case] last: &str,
    #[case] zone: &str,
) {
    assert_eq!(reverse_zone(ip(first), ip(last)), zone);
}

fn pool(name: &str, created: &str, cidr: &str) -> StaticIPPool {
    let mut p = StaticIPPool::new(name, spec(Some(cidr), &[], &[]));
    p.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
    p
}

#[test]
fn the_younger_of_two_overlapping_pools_gives_way() {
    let old = pool("old", "2026-11-01T00:00:00Z", "10.20.0.0/24");
    let young = pool("young", "2026-11-02T00:00:00Z", "10.20.0.128/25");
    let apart = pool("apart", "2026-10-01T00:00:00Z", "10.30.0.0/24");
    let all = [old.clone(), young.clone(), apart.clone()];
    assert_eq!(overlap(&old, &all), None);
    assert_eq!(
        overlap(&young, &all),
        Some(("old".into(), ip("10.20.0.129")))
    );
    assert_eq!(overlap(&apart, &all), None);
}

#[test]
fn the_documented_example_plans_sixty_one_addresses() {
    let text = include_str!("../../../docs/examples/staticippool.yaml");
    let pool: StaticIPPool = serde_yaml::from_str(text).unwrap();
    let planned = plan("nm-addresses", &pool.spec).unwrap();
    assert_eq!(planned.len(), 61);
    assert_eq!(planned[0].ip, ip("10.42.8.2"));
    assert_eq!(
        planned[0].principal.as_deref(),
        Some("nm/nm-10-42-8-2.yarn.hadoop.example.com@HADOOP.EXAMPLE.COM")
    );
    let dns = pool.spec.dns.unwrap();
    let (first, last) = (planned[0].ip, planned[60].ip);
    assert_eq!(
        dns.reverse_zone.as_deref(),
        Some(reverse_zone(first, last).as_str())
    );
}
