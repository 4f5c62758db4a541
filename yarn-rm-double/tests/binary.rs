//! The `yarn-rm-double` binary as the admin commands' tests and a person trying them start it:
//! it prints its address, then answers RMWebServices with the nodes it was told to have (idle,
//! so all of their capacity is available). (Building this test also builds the binary that the
//! operator's CLI tests start.)

use std::path::Path;

use testkit::processes::DoubleProcess;

#[tokio::test]
async fn the_binary_prints_its_address_and_serves_the_nodes_it_was_given() {
    let double = DoubleProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_yarn-rm-double")),
        &["--nodes", "3", "--node-vcores", "5"],
        &[] as &[(&str, &str)],
    );
    let text = controlkit::process::http_get(format!(
        "{}/ws/v1/cluster/nodes?user.name=admin",
        double.url("127.0.0.1")
    ))
    .await
    .expect("nodes answered")
    .text()
    .await
    .expect("a body");
    let answer: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let nodes = answer["nodes"]["node"].as_array().expect("a node list");
    assert_eq!(nodes.len(), 3, "{answer}");
    assert!(
        nodes.iter().all(|n| n["availableResource"]["vCores"] == 5),
        "{answer}"
    );
}
