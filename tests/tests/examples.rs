//! Every example manifest in docs/ is a valid ElasticNodePool: it deserializes, passes the
//! CRD's CEL rules and the operator's validate(), and names the resource the CRD defines.

use std::fs;

use elastic_yarn_operator::crd::{API_GROUP, ElasticNodePool};
use elastic_yarn_operator::validate::validate;
use elastic_yarn_tests::workspace_root;
use kube::CustomResourceExt;

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
    let examples = examples();
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
fn examples_use_the_crd_group_and_kind() {
    let crd = ElasticNodePool::crd();
    assert_eq!(crd.spec.group, API_GROUP);
    for (path, text) in examples() {
        let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
        assert_eq!(
            value["apiVersion"].as_str(),
            Some(format!("{API_GROUP}/v1alpha1").as_str()),
            "{path}"
        );
        assert_eq!(
            value["kind"].as_str(),
            Some(crd.spec.names.kind.as_str()),
            "{path}"
        );
    }
}
