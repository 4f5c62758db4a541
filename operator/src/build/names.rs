//! Deterministic names and labels of the children of a pool.
//!
//! A child's name depends only on the pool and the node, so a restarted operator finds the pods it
//! made, and server-side apply updates rather than duplicates them.

use std::collections::BTreeMap;

/// Label holding the pool's name on every child.
pub const POOL_LABEL: &str = "elasticyarn.io/pool";
/// Label holding the Kubernetes node of an NM pod (hashed when the name is too long for a label).
pub const NODE_LABEL: &str = "elasticyarn.io/node";
/// Annotation holding the full Kubernetes node name of an NM pod.
pub const NODE_ANNOTATION: &str = "elasticyarn.io/node";
/// Annotation holding the YARN node id (`host:port`) of an NM pod.
pub const YARN_NODE_ID_ANNOTATION: &str = "elasticyarn.io/yarn-node-id";
/// Annotation set on an NM pod while it drains: the RFC 3339 time it is removed at the latest.
pub const DRAIN_DEADLINE_ANNOTATION: &str = "elasticyarn.io/drain-deadline";
/// The field manager of every server-side apply of the operator.
pub const FIELD_MANAGER: &str = "elastic-yarn-operator";
/// Koordinator's PriorityClass of batch (best-effort) pods, which every NM pod names.
pub const BATCH_PRIORITY_CLASS: &str = "koord-batch";
/// Finalizer of a pool: its YARN labels are removed from the RM before it goes.
pub const POOL_FINALIZER: &str = "elasticyarn.io/yarn-cleanup";

const MAX_LABEL: usize = 63;

/// FNV-1a, 64 bits: stable across releases and platforms (std's hasher is not).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// `text` as a DNS label: lowercase letters, digits and '-', at most 63 characters. When it had to
/// change (dots, capitals, length) an 8-digit hash of `identity` keeps distinct inputs apart.
fn dns_label(text: &str, identity: &[&str]) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_matches('-');
    if cleaned == text && cleaned.len() <= MAX_LABEL {
        return cleaned.to_owned();
    }
    let suffix = format!("{:08x}", fnv1a(identity) & 0xffff_ffff);
    let room = MAX_LABEL - suffix.len() - 1;
    let stem: String = cleaned.chars().take(room).collect();
    let stem = stem.trim_end_matches('-');
    if stem.is_empty() {
        suffix
    } else {
        format!("{stem}-{suffix}")
    }
}

/// Name (and host name) of the NodeManager pod of `pool` on `node`: `<pool>-nm-<node>`, a DNS
/// label, so that it can also serve as the NM's host name.
pub fn node_manager_pod_name(pool: &str, node: &str) -> String {
    dns_label(&format!("{pool}-nm-{node}"), &[pool, node])
}

/// Value of [`NODE_LABEL`] for `node`: the name itself when it is a valid label value.
pub fn node_label_value(node: &str) -> String {
    let valid = node.len() <= MAX_LABEL
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && node
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && node
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if valid {
        node.to_owned()
    } else {
        dns_label(node, &[node])
    }
}

/// Name of the Secret holding the bearer token shared by the operator and a pool's guarders.
pub fn guarder_token_secret_name(pool: &str) -> String {
    dns_label(&format!("{pool}-guarder-token"), &[pool, "guarder-token"])
}

/// The standard labels of every child of `pool`, with its component.
pub fn child_labels(pool: &str, component: &str) -> BTreeMap<String, String> {
    let pool_value = node_label_value(pool);
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            "elastic-yarn".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), pool_value.clone()),
        (
            "app.kubernetes.io/component".to_owned(),
            component.to_owned(),
        ),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            FIELD_MANAGER.to_owned(),
        ),
        (
            "app.kubernetes.io/part-of".to_owned(),
            "elastic-yarn".to_owned(),
        ),
        (POOL_LABEL.to_owned(), pool_value),
    ])
}

/// Label selector (`key=value,...`) of a pool's NodeManager pods.
pub fn node_manager_selector(pool: &str) -> String {
    format!(
        "{POOL_LABEL}={},app.kubernetes.io/component=nodemanager",
        node_label_value(pool)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn is_dns_label(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    }

    #[rstest]
    #[case("nightly", "worker-3", "nightly-nm-worker-3")]
    #[case(
        "nightly",
        "worker-3.dc1.example.com",
        "nightly-nm-worker-3-dc1-example-com-"
    )]
    #[case("pool", "Worker_A", "pool-nm-worker-a-")]
    fn pod_names_are_dns_labels(#[case] pool: &str, #[case] node: &str, #[case] prefix: &str) {
        let name = node_manager_pod_name(pool, node);
        assert!(is_dns_label(&name), "{name}");
        assert!(
            name.starts_with(prefix),
            "{name} should start with {prefix}"
        );
        assert_eq!(name, node_manager_pod_name(pool, node), "deterministic");
    }

    #[test]
    fn long_and_colliding_names_stay_apart() {
        let long = "n".repeat(200);
        let a = node_manager_pod_name("pool", &format!("{long}-a"));
        let b = node_manager_pod_name("pool", &format!("{long}-b"));
        assert!(is_dns_label(&a) && is_dns_label(&b));
        assert_ne!(a, b);
        // "a.b" and "a-b" clean to the same text; the hash keeps them apart.
        assert_ne!(
            node_manager_pod_name("pool", "a.b"),
            node_manager_pod_name("pool", "a-b")
        );
    }

    #[test]
    fn node_label_values_keep_valid_names() {
        assert_eq!(node_label_value("worker-3.dc1"), "worker-3.dc1");
        let long = node_label_value(&"x".repeat(100));
        assert!(long.len() <= 63);
    }
}
