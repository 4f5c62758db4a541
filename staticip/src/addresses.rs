//! The addresses of a pool and their names, computed from the spec in pure code: CIDR and ranges
//! less reserved addresses, host names from the template, FQDNs, principals, object names, the
//! reverse zone, PTR names, and overlap between pools.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpAddrRange, IpNet, Ipv4AddrRange, Ipv6AddrRange};
use kube::ResourceExt;

use crate::crd::{StaticIPPool, StaticIPPoolSpec};

/// Largest pool: one `StaticIP` object, two DNS records and one principal per address.
pub const MAX_ADDRESSES: usize = 65_536;

/// Why a pool's spec gives no addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `cidr` does not parse.
    #[error("cidr {0:?} is not a CIDR block such as 10.20.0.0/24")]
    InvalidCidr(String),
    /// A range bound or reserved address does not parse.
    #[error("{0:?} is not an IP address")]
    InvalidAddress(String),
    /// A range ends before it starts, or mixes IPv4 and IPv6.
    #[error("range {start}..{end} is empty or mixes IPv4 and IPv6")]
    InvalidRange {
        /// First address.
        start: String,
        /// Last address.
        end: String,
    },
    /// More addresses than a pool may hold.
    #[error("the pool has more than {MAX_ADDRESSES} addresses; split it")]
    TooMany,
    /// Nothing left after reserved addresses.
    #[error("the pool has no usable address")]
    Empty,
    /// The template gives a name that is not a DNS label.
    #[error("host name {0:?} from hostNameTemplate is not a DNS label (a-z, 0-9, '-', at most 63)")]
    InvalidHostName(String),
    /// The template gives the same name twice.
    #[error("hostNameTemplate gives {0:?} to two addresses: use {{ip}} or {{index}}")]
    DuplicateHostName(String),
    /// Unknown `{placeholder}`.
    #[error("unknown placeholder {0:?} in a template")]
    UnknownPlaceholder(String),
    /// `dnsZone` is not a domain name.
    #[error("dnsZone {0:?} is not a domain name")]
    InvalidZone(String),
    /// The principal template gives something that is not a principal.
    #[error("principal {0:?} from principalTemplate is not primary/instance@REALM")]
    InvalidPrincipal(String),
}

/// One address as its `StaticIP` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedAddress {
    /// The address.
    pub ip: IpAddr,
    /// Name of the `StaticIP` object.
    pub object_name: String,
    /// Host name.
    pub host_name: String,
    /// `<host name>.<zone>`.
    pub fqdn: String,
    /// Kerberos principal, when the pool has a realm.
    pub principal: Option<String>,
}

fn parse_ip(text: &str) -> Result<IpAddr, SpecError> {
    IpAddr::from_str(text.trim()).map_err(|_| SpecError::InvalidAddress(text.to_owned()))
}

fn range(start: IpAddr, end: IpAddr) -> Option<IpAddrRange> {
    match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) if s <= e => Some(Ipv4AddrRange::new(s, e).into()),
        (IpAddr::V6(s), IpAddr::V6(e)) if s <= e => Some(Ipv6AddrRange::new(s, e).into()),
        _ => None,
    }
}

fn extend_bounded(
    set: &mut BTreeSet<IpAddr>,
    addresses: impl Iterator<Item = IpAddr>,
) -> Result<(), SpecError> {
    for ip in addresses {
        set.insert(ip);
        if set.len() > MAX_ADDRESSES {
            return Err(SpecError::TooMany);
        }
    }
    Ok(())
}

/// The usable addresses of a spec, in order.
pub fn usable_addresses(spec: &StaticIPPoolSpec) -> Result<BTreeSet<IpAddr>, SpecError> {
    let mut set = BTreeSet::new();
    if let Some(cidr) = &spec.cidr {
        let net = IpNet::from_str(cidr.trim()).map_err(|_| SpecError::InvalidCidr(cidr.clone()))?;
        // Refuse before enumerating: an IPv6 /64 would never end.
        if net.max_prefix_len() - net.prefix_len() > 16 {
            return Err(SpecError::TooMany);
        }
        extend_bounded(&mut set, net.hosts())?;
    }
    for r in &spec.ranges {
        let (start, end) = (parse_ip(&r.start)?, parse_ip(&r.end)?);
        let addresses = range(start, end).ok_or_else(|| SpecError::InvalidRange {
            start: r.start.clone(),
            end: r.end.clone(),
        })?;
        extend_bounded(&mut set, addresses)?;
    }
    for reserved in &spec.reserved {
        set.remove(&parse_ip(reserved)?);
    }
    if set.is_empty() {
        return Err(SpecError::Empty);
    }
    Ok(set)
}

/// The address with `-` for `.` and `:`, as it appears in names.
pub fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// Name of the `StaticIP` object of `ip` in `pool`.
pub fn object_name(pool: &str, ip: IpAddr) -> String {
    format!("{pool}-{}", dashed(ip))
}

fn fill(template: &str, values: &[(&str, &str)]) -> Result<String, SpecError> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| SpecError::UnknownPlaceholder(rest[open..].to_owned()))?;
        let key = &after[..close];
        let value = values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .ok_or_else(|| SpecError::UnknownPlaceholder(format!("{{{key}}}")))?;
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `label` is an RFC 1123 DNS label.
pub fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// `zone` without its trailing dot, if it is a domain name.
pub fn normalized_zone(zone: &str) -> Option<String> {
    let zone = zone.trim().trim_end_matches('.').to_ascii_lowercase();
    (zone.len() <= 253 && zone.split('.').all(is_dns_label)).then_some(zone)
}

/// Every address of a pool with its names; an error says what in the spec is wrong.
pub fn plan(pool: &str, spec: &StaticIPPoolSpec) -> Result<Vec<PlannedAddress>, SpecError> {
    let zone = normalized_zone(&spec.dns_zone)
        .ok_or_else(|| SpecError::InvalidZone(spec.dns_zone.clone()))?;
    let addresses = usable_addresses(spec)?;
    let mut seen: BTreeMap<String, IpAddr> = BTreeMap::new();
    let mut planned = Vec::with_capacity(addresses.len());
    for (index, ip) in addresses.into_iter().enumerate() {
        let ip_text = dashed(ip);
        let index_text = index.to_string();
        let host_name = fill(
            &spec.host_name_template,
            &[("ip", &ip_text), ("index", &index_text), ("pool", pool)],
        )?;
        if !is_dns_label(&host_name) {
            return Err(SpecError::InvalidHostName(host_name));
        }
        if seen.insert(host_name.clone(), ip).is_some() {
            return Err(SpecError::DuplicateHostName(host_name));
        }
        let fqdn = format!("{host_name}.{zone}");
        let principal = match &spec.kerberos {
            Some(kerberos) => {
                let principal = fill(
                    &kerberos.principal_template,
                    &[
                        ("fqdn", &fqdn),
                        ("host", &host_name),
                        ("realm", &kerberos.realm),
                    ],
                )?;
                if !is_principal(&principal) {
                    return Err(SpecError::InvalidPrincipal(principal));
                }
                Some(principal)
            }
            None => None,
        };
        planned.push(PlannedAddress {
            ip,
            object_name: object_name(pool, ip),
            host_name,
            fqdn,
            principal,
        });
    }
    Ok(planned)
}

fn is_principal(principal: &str) -> bool {
    let Some((name, realm)) = principal.split_once('@') else {
        return false;
    };
    !name.is_empty()
        && !realm.is_empty()
        && !principal.contains(char::is_whitespace)
        && !realm.contains('@')
        // kadmin queries are quoted by us; a quote or backslash would change the query.
        && !principal.contains(['"', '\\', '\''])
}

/// The reverse-lookup name of `ip` (`5.0.0.10.in-addr.arpa`, nibbles under `ip6.arpa`).
pub fn ptr_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut labels: Vec<String> = v6
                .octets()
                .iter()
                .flat_map(|byte| [byte >> 4, byte & 0xf])
                .map(|nibble| format!("{nibble:x}"))
                .collect();
            labels.reverse();
            format!("{}.ip6.arpa", labels.join("."))
        }
    }
}

/// The smallest reverse zone on an octet (IPv4) or nibble (IPv6) boundary that holds every
/// address from `first` to `last` (same family).
pub fn reverse_zone(first: IpAddr, last: IpAddr) -> String {
    let (common_bits, step, first_ptr) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (
            (u32::from(a) ^ u32::from(b)).leading_zeros() as usize,
            8,
            ptr_name(first),
        ),
        (IpAddr::V6(a), IpAddr::V6(b)) => (
            (u128::from(a) ^ u128::from(b)).leading_zeros() as usize,
            4,
            ptr_name(first),
        ),
        _ => return String::new(),
    };
    let kept = common_bits / step;
    let total = if first.is_ipv4() { 4 } else { 32 };
    // The PTR name lists the labels least significant first: drop the ones that vary.
    first_ptr
        .split('.')
        .skip(total - kept)
        .collect::<Vec<_>>()
        .join(".")
}

/// The first address this pool shares with an older pool (the older one keeps it), if any. Age
/// is `metadata.creationTimestamp`, then the name, so exactly one of two overlapping pools wins.
pub fn overlap(pool: &StaticIPPool, others: &[StaticIPPool]) -> Option<(String, IpAddr)> {
    let mine = usable_addresses(&pool.spec).ok()?;
    let key = |p: &StaticIPPool| {
        (
            p.metadata.creation_timestamp.clone().map(|t| t.0),
            p.name_any(),
        )
    };
    let my_key = key(pool);
    others
        .iter()
        .filter(|other| other.name_any() != pool.name_any() && key(other) < my_key)
        .find_map(|other| {
            let theirs = usable_addresses(&other.spec).ok()?;
            mine.intersection(&theirs)
                .next()
                .map(|ip| (other.name_any(), *ip))
        })
}

#[cfg(test)]
mod tests;
