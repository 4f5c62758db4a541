//! `node.koordinator.sh/thirdPartyAllocations`: what YARN uses on a node, for koord-manager to
//! subtract from the batch resources other pods may get (docs/architecture.md, contract 6, `ThirdParty`).
//!
//! The annotation holds every third party's allocation; ours is one entry named after the pool,
//! replaced in place, the others kept as they were. Units exactly as Koordinator reads them:
//! `kubernetes.io/batch-cpu` in milli-cores, `kubernetes.io/batch-memory` in bytes (YARN's MB
//! are MiB).

use serde_json::{Map, Value, json};

use crate::build::{NM_DAEMON_MEMORY_BYTES, NM_DAEMON_MILLI_CORES};
use crate::policy::Resources;

/// The annotation key.
pub const ANNOTATION: &str = "node.koordinator.sh/thirdPartyAllocations";

/// Name of a pool's entry.
pub fn allocation_name(namespace: &str, pool: &str) -> String {
    format!("elastic-yarn.{namespace}.{pool}")
}

/// The annotation's new value with `name`'s entry set to `allocated` plus the NM daemon's own
/// share (the `ThirdParty` pod requests nothing: the entry is all the node gives our NM), or
/// removed when `None`.
/// An unreadable old value is replaced rather than kept: koord-manager could not read it either.
pub fn updated(existing: Option<&str>, name: &str, allocated: Option<Resources>) -> String {
    let mut document = existing
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let allocations: Vec<Value> = document
        .get("allocations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| entry.get("name").and_then(Value::as_str) != Some(name))
        .chain(allocated.map(|r| {
            json!({
                "name": name,
                "priority": crate::build::names::BATCH_PRIORITY_CLASS,
                "resources": {
                    "kubernetes.io/batch-cpu":
                        (u64::from(r.vcores) * 1000 + NM_DAEMON_MILLI_CORES).to_string(),
                    "kubernetes.io/batch-memory":
                        ((r.memory_mb << 20) + NM_DAEMON_MEMORY_BYTES).to_string(),
                }
            })
        }))
        .collect();
    if let Some(object) = document.as_object_mut() {
        object.insert("allocations".to_owned(), Value::Array(allocations));
    } else {
        let mut object = Map::new();
        object.insert("allocations".to_owned(), Value::Array(allocations));
        document = Value::Object(object);
    }
    document.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_our_entry_in_exact_units_and_keeps_others() {
        let existing = r#"{"allocations":[{"name":"hadoop-yarn","priority":"koord-batch","resources":{"kubernetes.io/batch-cpu":"10000","kubernetes.io/batch-memory":"10Gi"}}]}"#;
        let text = updated(
            Some(existing),
            "elastic-yarn.yarn.nightly",
            Some(Resources::new(12, 49_152)),
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        let allocations = value["allocations"].as_array().unwrap();
        assert_eq!(allocations.len(), 2);
        assert_eq!(allocations[0]["name"], "hadoop-yarn");
        assert_eq!(
            allocations[1]["resources"]["kubernetes.io/batch-cpu"], "13000",
            "12 vcores and the daemon's core"
        );
        // 48 GiB + the daemon's 2 GiB in bytes, not 50 * 10^9 or 51200 * 10^6.
        assert_eq!(
            allocations[1]["resources"]["kubernetes.io/batch-memory"],
            "53687091200"
        );
    }

    #[test]
    fn replaces_and_removes_our_entry() {
        let first = updated(None, "p", Some(Resources::new(4, 4096)));
        let second = updated(Some(&first), "p", Some(Resources::new(2, 2048)));
        let value: Value = serde_json::from_str(&second).unwrap();
        assert_eq!(value["allocations"].as_array().unwrap().len(), 1);
        assert_eq!(
            value["allocations"][0]["resources"]["kubernetes.io/batch-cpu"],
            "3000"
        );
        let gone = updated(Some(&second), "p", None);
        assert_eq!(gone, r#"{"allocations":[]}"#);
        assert_eq!(
            updated(Some("not json"), "p", None),
            r#"{"allocations":[]}"#
        );
    }
}
