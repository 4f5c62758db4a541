//! The pool's status, computed in pure code from its addresses and the problems of this pass.

use controlkit::conditions::{ConditionUpdate, merge};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::{AddressPhase, StaticIP, StaticIPPoolStatus};

/// `Ready`: every address is usable (or held) and nothing is failing.
pub const READY: &str = "Ready";
/// `AddressesValid`: the spec gives addresses and names, overlapping no older pool.
pub const ADDRESSES_VALID: &str = "AddressesValid";
/// `DnsReady`: every address has its A and PTR records.
pub const DNS_READY: &str = "DnsReady";
/// `KeytabsReady`: every address has its principal and keytab Secret.
pub const KEYTABS_READY: &str = "KeytabsReady";

/// Counts over a pool's addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Addresses in the pool (not being removed).
    pub total: u32,
    /// Ready and free.
    pub free: u32,
    /// Claimed.
    pub claimed: u32,
    /// Bound.
    pub bound: u32,
    /// Ready.
    pub ready: u32,
    /// Being removed but still held.
    pub retiring: u32,
    /// Waiting for DNS records.
    pub dns_pending: u32,
    /// Waiting for a keytab.
    pub keytab_pending: u32,
}

/// Counts `addresses`; `dns` and `kerberos` say what the pool configures.
pub fn census(addresses: &[StaticIP], dns: bool, kerberos: bool) -> Census {
    let mut c = Census::default();
    for address in addresses {
        let state = address.state();
        if address.is_retiring() {
            if !address.is_free() {
                c.retiring += 1;
            }
            continue;
        }
        c.total += 1;
        match state.phase {
            AddressPhase::Claimed => c.claimed += 1,
            AddressPhase::Bound => c.bound += 1,
            AddressPhase::Free if state.ready => c.free += 1,
            AddressPhase::Free => {}
        }
        c.ready += u32::from(state.ready);
        c.dns_pending += u32::from(dns && !state.dns_ready);
        c.keytab_pending += u32::from(kerberos && !state.keytab_ready);
    }
    c
}

/// A failure to report: a CamelCase reason and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

impl Problem {
    /// A problem.
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Problem {
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// What went wrong in this pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// The spec gives no addresses, or overlaps an older pool.
    pub spec: Option<Problem>,
    /// DNS updates failed.
    pub dns: Option<Problem>,
    /// kadmin failed.
    pub kerberos: Option<Problem>,
    /// The pool is being deleted but addresses are held.
    pub deletion: Option<Problem>,
}

fn configured(
    type_: &'static str,
    enabled: bool,
    problem: Option<&Problem>,
    pending: u32,
    what: &str,
) -> ConditionUpdate {
    match (enabled, problem) {
        (false, _) => {
            ConditionUpdate::holds(type_, "NotConfigured", format!("the pool makes no {what}"))
        }
        (true, Some(p)) => ConditionUpdate::fails(type_, &p.reason, p.message.clone()),
        (true, None) if pending > 0 => ConditionUpdate::fails(
            type_,
            "Pending",
            format!("{pending} addresses wait for their {what}"),
        ),
        (true, None) => {
            ConditionUpdate::holds(type_, "Made", format!("every address has its {what}"))
        }
    }
}

/// The new status.
#[allow(clippy::too_many_arguments, reason = "one flat call site in reconcile")]
pub fn pool_status(
    old: &StaticIPPoolStatus,
    census: &Census,
    problems: &Problems,
    dns: bool,
    kerberos: bool,
    generation: Option<i64>,
    now: &Time,
) -> StaticIPPoolStatus {
    let valid = match &problems.spec {
        Some(p) => ConditionUpdate::fails(ADDRESSES_VALID, &p.reason, p.message.clone()),
        None => ConditionUpdate::holds(
            ADDRESSES_VALID,
            "Valid",
            format!("{} addresses", census.total),
        ),
    };
    let dns_condition = configured(
        DNS_READY,
        dns,
        problems.dns.as_ref(),
        census.dns_pending,
        "DNS records",
    );
    let keytabs = configured(
        KEYTABS_READY,
        kerberos,
        problems.kerberos.as_ref(),
        census.keytab_pending,
        "keytab",
    );
    let ready = if let Some(p) = &problems.deletion {
        ConditionUpdate::fails(READY, &p.reason, p.message.clone())
    } else if let Some(failing) = [&valid, &dns_condition, &keytabs]
        .into_iter()
        .find(|c| !c.status)
    {
        ConditionUpdate::fails(READY, &failing.reason, failing.message.clone())
    } else {
        ConditionUpdate::holds(
            READY,
            "AddressesReady",
            format!("{} free of {} addresses", census.free, census.total),
        )
    };
    StaticIPPoolStatus {
        observed_generation: generation,
        conditions: merge(
            &old.conditions,
            &[valid, dns_condition, keytabs, ready],
            generation,
            now,
        ),
        total: census.total,
        free: census.free,
        claimed: census.claimed,
        bound: census.bound,
        ready: census.ready,
        retiring: census.retiring,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Holder, StaticIPSpec, StaticIPStatus};

    fn address(phase: AddressPhase, dns: bool, keytab: bool, retiring: bool) -> StaticIP {
        let mut a = StaticIP::new(
            "a",
            StaticIPSpec {
                address: "10.0.0.1".into(),
                pool: "p".into(),
                host_name: "h".into(),
                fqdn: "h.z".into(),
                principal: None,
            },
        );
        a.status = Some(StaticIPStatus {
            phase,
            holder: (phase != AddressPhase::Free).then(|| Holder {
                identity: "i".into(),
                namespace: "n".into(),
                pod: "p".into(),
                uid: None,
            }),
            dns_ready: dns,
            keytab_ready: keytab,
            ready: dns && keytab,
            ..StaticIPStatus::default()
        });
        if retiring {
            a.metadata.deletion_timestamp = Some(Time("2026-11-24T10:00:00Z".parse().unwrap()));
        }
        a
    }

    #[test]
    fn census_counts_each_address_once() {
        let addresses = [
            address(AddressPhase::Free, true, true, false),
            address(AddressPhase::Free, false, true, false),
            address(AddressPhase::Claimed, true, true, false),
            address(AddressPhase::Bound, true, true, false),
            address(AddressPhase::Bound, true, true, true),
            address(AddressPhase::Free, true, true, true),
        ];
        assert_eq!(
            census(&addresses, true, true),
            Census {
                total: 4,
                free: 1,
                claimed: 1,
                bound: 1,
                ready: 3,
                retiring: 1,
                dns_pending: 1,
                keytab_pending: 0,
            }
        );
    }

    #[test]
    fn an_address_ready_before_the_pool_gained_dns_needs_its_records() {
        use crate::controller::reconcile::needs_provisioning;
        let before = address(AddressPhase::Bound, false, false, false);
        let mut ready = before.clone();
        ready.status.as_mut().unwrap().ready = true;
        assert!(!needs_provisioning(&ready, false, false));
        assert!(needs_provisioning(&ready, true, false), "DNS added later");
        assert!(
            !needs_provisioning(&ready, false, true),
            "no principal: nothing to make"
        );
        assert!(
            needs_provisioning(&before, false, false),
            "never marked ready"
        );
        let retiring = address(AddressPhase::Free, false, false, true);
        assert!(!needs_provisioning(&retiring, true, true));
    }

    #[test]
    fn ready_names_the_first_failure() {
        let now = Time("2026-11-24T10:00:00Z".parse().unwrap());
        let c = Census {
            total: 4,
            free: 4,
            ready: 4,
            ..Census::default()
        };
        let fine = pool_status(
            &StaticIPPoolStatus::default(),
            &c,
            &Problems::default(),
            false,
            false,
            Some(1),
            &now,
        );
        let ready = fine.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "AddressesReady")
        );
        let problems = Problems {
            dns: Some(Problem::new("DnsKeyRefused", "server refused the TSIG key")),
            ..Problems::default()
        };
        let failing = pool_status(&fine, &c, &problems, true, false, Some(1), &now);
        let by = |t: &str| {
            failing
                .conditions
                .iter()
                .find(|c| c.type_ == t)
                .unwrap()
                .clone()
        };
        assert_eq!(by(READY).reason, "DnsKeyRefused");
        assert_eq!(by(DNS_READY).status, "False");
        assert_eq!(by(KEYTABS_READY).reason, "NotConfigured");
        assert_eq!(failing.free, 4);
    }
}
