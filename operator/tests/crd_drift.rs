//! The CRDs committed in the Helm chart are exactly what the Rust types generate.

use std::path::PathBuf;

use elastic_yarn_operator::crdgen::{CHART_CRD_DIR, generated_crds};

#[test]
fn committed_crds_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CHART_CRD_DIR);
    for (file, yaml) in generated_crds().unwrap() {
        let committed = std::fs::read_to_string(dir.join(&file)).unwrap_or_default();
        assert!(
            committed == yaml,
            "{file} in {CHART_CRD_DIR} is out of date: run `cargo run -p elastic-yarn-operator -- crdgen`"
        );
    }
}
