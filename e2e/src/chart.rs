//! The Helm chart through the real `helm` CLI: lint, render per value set, install.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{Value, json};
use testkit::kubernetes::{Cluster, run_ok};

use crate::audit::Permission;

/// The chart's folder.
pub fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/elastic-yarn")
}

/// Release name and namespace of the e2e installation.
pub const RELEASE: &str = "elastic-yarn";
/// Namespace of the e2e installation.
pub const RELEASE_NAMESPACE: &str = "elastic-yarn";

/// A set of values the chart is checked with.
#[derive(Debug, Clone)]
pub struct ValueSet {
    /// Its name.
    pub name: &'static str,
    /// The values.
    pub values: Value,
}

/// The value sets every check covers: defaults, the least, and everything monitored.
pub fn value_sets() -> Vec<ValueSet> {
    vec![
        ValueSet {
            name: "default",
            values: json!({}),
        },
        ValueSet {
            name: "minimal",
            values: json!({
                "staticip": {"enabled": false},
                "koordletMetrics": {"enabled": false},
                "grafanaDashboard": {"enabled": false},
                "operator": {"replicas": 1},
            }),
        },
        ValueSet {
            name: "monitored",
            values: json!({
                "metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"}}},
                "networkPolicy": {
                    "enabled": true,
                    "scraperNamespaceSelector": {"matchLabels": {"name": "monitoring"}},
                    "nodeManagerNamespaces": ["yarn"],
                },
                "operator": {"guarderImage": "registry.example.com/yarn/guarder:0.1.0"},
                "koordletMetrics": {"nodeSelector": {"node-role.example.com/online": "true"}},
            }),
        },
        ValueSet {
            name: "secured",
            values: json!({
                "operator": {
                    "egress": {"allowCidrs": ["10.20.0.0/16"], "denyCidrs": ["10.96.0.0/12"]},
                    "rmCaBundle": {"secretName": "rm-ca", "key": "ca.pem"},
                    "krb5ConfigMap": "krb5-conf",
                },
            }),
        },
    ]
}

/// Values the chart's schema must refuse, each with what Helm's message names.
pub fn refused_value_sets() -> Vec<(ValueSet, &'static str)> {
    let refused = |name, values, names| (ValueSet { name, values }, names);
    vec![
        refused(
            "misspelt-key",
            json!({"operator": {"replicass": 2}}),
            "replicass",
        ),
        refused(
            "no-replica",
            json!({"operator": {"replicas": 0}}),
            "/operator/replicas",
        ),
        refused(
            "text-for-a-number",
            json!({"koordletMetrics": {"port": "9320"}}),
            "/koordletMetrics/port",
        ),
        refused(
            "bad-pull-policy",
            json!({"image": {"pullPolicy": "Sometimes"}}),
            "/image/pullPolicy",
        ),
        refused(
            "bad-cidr",
            json!({"operator": {"egress": {"denyCidrs": ["10.96.0.0"]}}}),
            "/operator/egress/denyCidrs/0",
        ),
        refused(
            "bad-quantity",
            json!({"operator": {"resources": {"limits": {"memory": "lots"}}}}),
            "/operator/resources/limits/memory",
        ),
        refused(
            "port-out-of-range",
            json!({"guarder": {"port": 70000}}),
            "/guarder/port",
        ),
    ]
}

/// `helm template` of a value set that must fail: Helm's error output.
pub fn template_refused(cluster: &Cluster, home: &Path, set: &ValueSet) -> String {
    let values = values_file(home, set);
    let answer = cluster
        .helm(home)
        .args(["template", RELEASE])
        .arg(chart_dir())
        .args(["--namespace", RELEASE_NAMESPACE, "--values"])
        .arg(&values)
        .output()
        .expect("helm runs");
    assert!(
        !answer.status.success(),
        "{}: helm template accepted {}",
        set.name,
        set.values
    );
    String::from_utf8_lossy(&answer.stderr).into_owned()
}

/// Writes `values` to a file for `--values`.
pub fn values_file(dir: &Path, set: &ValueSet) -> PathBuf {
    let path = dir.join(format!("values-{}.json", set.name));
    std::fs::write(&path, set.values.to_string()).expect("values file");
    path
}

/// `helm template` of a value set: every rendered object.
pub fn template(cluster: &Cluster, home: &Path, set: &ValueSet) -> Vec<Value> {
    let values = values_file(home, set);
    let text = run_ok(
        cluster
            .helm(home)
            .args(["template", RELEASE])
            .arg(chart_dir())
            .args(["--namespace", RELEASE_NAMESPACE, "--values"])
            .arg(&values),
    );
    documents(&text)
}

/// The YAML documents of a stream, as JSON values (empty ones left out).
pub fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|document| {
            let value: Value = serde::Deserialize::deserialize(document).ok()?;
            (!value.is_null()).then_some(value)
        })
        .collect()
}

/// The permissions RBAC rules grant, one per group, resource and verb.
pub fn granted(rules: &[PolicyRule]) -> BTreeSet<Permission> {
    let mut granted = BTreeSet::new();
    for rule in rules {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    granted.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    granted
}
