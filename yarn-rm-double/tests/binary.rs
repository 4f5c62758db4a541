//! The `yarn-rm-double` binary as the admin commands' tests and a person trying them start it:
//! it prints its address, then answers RMWebServices with the nodes it was told to have (idle,
//! so all of their capacity is available).
//! (Building this test also builds the binary that the operator's CLI tests start.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_binary_prints_its_address_and_serves_the_nodes_it_was_given() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_yarn-rm-double"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--nodes",
            "3",
            "--node-vcores",
            "5",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start yarn-rm-double");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address line");
    let address = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap_or_default()
        .to_owned();
    let text = controlkit::process::http_get(format!(
        "http://{address}/ws/v1/cluster/nodes?user.name=admin"
    ))
    .await
    .expect("nodes answered")
    .text()
    .await
    .expect("a body");
    let answer: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    child.kill().expect("kill");
    let _ = child.wait();
    let nodes = answer["nodes"]["node"].as_array().expect("a node list");
    assert_eq!(nodes.len(), 3, "{answer}");
    assert!(
        nodes.iter().all(|n| n["availableResource"]["vCores"] == 5),
        "{answer}"
    );
}
