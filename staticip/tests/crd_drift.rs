//! The CRDs committed in the Helm chart are exactly what the Rust types generate.

use std::path::PathBuf;

use staticip::crdgen::{CHART_CRD_DIR, generated_crds};

#[test]
fn committed_crds_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CHART_CRD_DIR);
    let crds = generated_crds().unwrap();
    assert_eq!(crds.len(), 2);
    for (file, yaml) in crds {
        let committed = std::fs::read_to_string(dir.join(&file)).unwrap_or_default();
        assert!(
            committed == yaml,
            "{file} in {CHART_CRD_DIR} is out of date: run `cargo run -p staticip -- crdgen`"
        );
    }
}
