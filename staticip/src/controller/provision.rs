//! Making and removing what an address needs outside Kubernetes: DNS records and a Kerberos
//! principal with its keytab. The clients are built once per pass from the pool's spec and its
//! Secrets; a missing Secret or bad key is a `Problem` for the pool's status.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::status::Problem;
use crate::addresses::{normalized_zone, reverse_zone, usable_addresses};
use crate::crd::{SecretKeyRef, StaticIPPoolSpec};
use crate::dns::{DnsError, DnsTarget, DnsUpdater};
use crate::kerberos::{Kadmin, KadminTarget, KerberosError};

/// Reads one key of a Secret.
pub async fn secret_value(
    client: &kube::Client,
    reference: &SecretKeyRef,
) -> Result<Vec<u8>, Problem> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &reference.namespace);
    let secret = secrets.get_opt(&reference.name).await.map_err(|e| {
        Problem::new(
            "SecretUnreadable",
            format!("Secret {}/{}: {e}", reference.namespace, reference.name),
        )
    })?;
    secret
        .and_then(|s| s.data)
        .and_then(|mut data| data.remove(&reference.key))
        .map(|bytes| bytes.0)
        .ok_or_else(|| {
            Problem::new(
                "SecretMissing",
                format!(
                    "Secret {}/{} has no key {:?}",
                    reference.namespace, reference.name, reference.key
                ),
            )
        })
}

/// The DNS updater of a pool, or why there is none.
pub async fn dns_updater(
    client: &kube::Client,
    spec: &StaticIPPoolSpec,
    timeout: Duration,
) -> Option<Result<DnsUpdater, Problem>> {
    let dns = spec.dns.as_ref()?;
    Some(
        async {
            let encoded = secret_value(client, &dns.tsig_secret).await?;
            let text = String::from_utf8_lossy(&encoded);
            let key = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| {
                    Problem::new(
                        "DnsKeyInvalid",
                        format!("the TSIG secret is not base64: {e}"),
                    )
                })?;
            let zone = normalized_zone(&spec.dns_zone).unwrap_or_default();
            let reverse = match &dns.reverse_zone {
                Some(zone) => zone.trim_end_matches('.').to_owned(),
                None => {
                    let all = usable_addresses(spec)
                        .map_err(|e| Problem::new("InvalidSpec", e.to_string()))?;
                    let (first, last) = match (all.first(), all.last()) {
                        (Some(f), Some(l)) => (*f, *l),
                        _ => return Err(Problem::new("InvalidSpec", "no addresses")),
                    };
                    reverse_zone(first, last)
                }
            };
            Ok(DnsUpdater::new(DnsTarget {
                server: dns.server.clone(),
                key_name: dns.tsig_key_name.clone(),
                algorithm: dns.tsig_algorithm,
                key,
                zone,
                reverse_zone: reverse,
                ttl: dns.ttl,
                timeout,
            }))
        }
        .await,
    )
}

/// The kadmin client of a pool, or why there is none.
pub async fn kadmin(
    client: &kube::Client,
    spec: &StaticIPPoolSpec,
    program: &std::path::Path,
    timeout: Duration,
) -> Option<Result<Kadmin, Problem>> {
    let kerberos = spec.kerberos.as_ref()?;
    Some(
        async {
            let keytab = secret_value(client, &kerberos.admin_keytab).await?;
            Kadmin::new(
                KadminTarget {
                    realm: kerberos.realm.clone(),
                    kdcs: kerberos.kdcs.clone(),
                    admin_server: kerberos.admin_server.clone(),
                    admin_principal: kerberos.admin_principal.clone(),
                    admin_keytab: keytab,
                    timeout,
                },
                program.to_path_buf(),
            )
            .map_err(|e| kerberos_problem(&e))
        }
        .await,
    )
}

/// The status reason of a DNS failure.
pub fn dns_problem(error: &DnsError) -> Problem {
    let reason = match error {
        DnsError::Unreachable { .. } => "DnsUnreachable",
        DnsError::KeyRefused { .. } => "DnsKeyRefused",
        DnsError::Refused { .. } => "DnsUpdateRefused",
        DnsError::Config(_) => "DnsConfigInvalid",
    };
    Problem::new(reason, error.to_string())
}

/// The status reason of a kadmin failure.
pub fn kerberos_problem(error: &KerberosError) -> Problem {
    let reason = match error {
        KerberosError::Unreachable { .. } => "KdcUnreachable",
        KerberosError::Refused { .. } => "KadminRefused",
        KerberosError::Query { .. } => "KadminQueryFailed",
        KerberosError::Local(_) => "KadminUnavailable",
    };
    Problem::new(reason, error.to_string())
}

/// Parses the address of a `StaticIP` (written by us, so a failure is a corrupted object).
pub fn ip_of(text: &str) -> Result<IpAddr, Problem> {
    text.parse().map_err(|_| {
        Problem::new(
            "AddressInvalid",
            format!("StaticIP address {text:?} is not an IP address"),
        )
    })
}
