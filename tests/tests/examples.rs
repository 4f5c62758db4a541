//! Every example manifest in docs/ is a valid ElasticNodePool or StaticIPPool: it deserializes,
//! passes the CRD's CEL rules and the checks the controllers make (the operator's validate(),
//! the staticip address plan), and names a resource the CRDs define.

use std::fs;

use elastic_yarn_operator::crd::{API_GROUP, ElasticNodePool};
use elastic_yarn_operator::validate::validate;
use elastic_yarn_tests::workspace_root;
use kube::CustomResourceExt;
use staticip::crd::StaticIPPool;

fn examples_of(kind: &str) -> Vec<(String, String)> {
    examples()
        .into_iter()
        .filter(|(_, text)| {
            let value: serde_yaml::Value = serde_yaml::from_str(text).expect("YAML");
            value["kind"].as_str() == Some(kind)
        })
        .collect()
}

fn examples() -> Vec<(String, String)> {
    let dir = workspace_root().join("docs/examples");
    let mut found: Vec<(String, String)> = fs::read_dir(&dir)
        .expect("docs/examples exists")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let text = fs::read_to_string(&path).expect("example readable");
            (path.display().to_string(), text)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn docs_examples_are_valid_pools() {
    let examples = examples_of("ElasticNodePool");
    assert!(examples.len() >= 3, "examples found: {}", examples.len());
    let now = "2026-11-24T00:00:00Z".parse().expect("timestamp");
    for (path, text) in examples {
        let pool: ElasticNodePool =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(pool.metadata.name.is_some(), "{path} has a name");
        pool.validate_cel()
            .unwrap_or_else(|e| panic!("{path} refused by the CRD's CEL rules: {e:?}"));
        validate(&pool.spec, now).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

#[test]
fn docs_examples_are_valid_static_ip_pools() {
    let examples = examples_of("StaticIPPool");
    assert!(!examples.is_empty(), "a StaticIPPool example");
    for (path, text) in examples {
        let pool: StaticIPPool =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let name = pool.metadata.name.clone().expect("a name");
        pool.validate_cel()
            .unwrap_or_else(|e| panic!("{path} refused by the CRD's CEL rules: {e:?}"));
        staticip::addresses::plan(&name, &pool.spec).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

#[test]
fn examples_use_the_crd_group_and_kind() {
    let kinds = [
        ElasticNodePool::crd().spec.names.kind,
        StaticIPPool::crd().spec.names.kind,
    ];
    assert_eq!(ElasticNodePool::crd().spec.group, API_GROUP);
    assert_eq!(StaticIPPool::crd().spec.group, API_GROUP);
    for (path, text) in examples() {
        let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        assert_eq!(
            value["apiVersion"].as_str(),
            Some(format!("{API_GROUP}/v1alpha1").as_str()),
            "{path}"
        );
        let kind = value["kind"].as_str().unwrap_or_default();
        assert!(kinds.iter().any(|k| k == kind), "{path}: kind {kind}");
    }
}
