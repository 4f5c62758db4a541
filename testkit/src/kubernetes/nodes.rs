//! Fake nodes for the e2e tests: Node objects handed to kwok, with the allocatable Koordinator
//! would publish (`kubernetes.io/batch-cpu` in milli-cores, `kubernetes.io/batch-memory` in
//! bytes) and an address on loopback of their own.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use super::KWOK_NODE_ANNOTATION;

/// What a fake node offers to batch work.
#[derive(Debug, Clone)]
pub struct FakeNode {
    /// Node name.
    pub name: String,
    /// Labels (the pool's placement selects on them).
    pub labels: BTreeMap<String, String>,
    /// Koordinator's batch CPU, milli-cores.
    pub batch_cpu_milli: u64,
    /// Koordinator's batch memory, bytes.
    pub batch_memory_bytes: u64,
    /// The node's InternalIP (a loopback address, so tests can serve "node" ports).
    pub address: String,
}

impl FakeNode {
    /// A node `name` labelled `labels`, offering 40 batch cores and 160 GiB (room for two
    /// pools whose NM pods reserve their ceilings).
    pub fn new(name: &str, address: &str, labels: &[(&str, &str)]) -> FakeNode {
        FakeNode {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            batch_cpu_milli: 40_000,
            batch_memory_bytes: 160 << 30,
            address: address.to_owned(),
        }
    }

    /// The Node object.
    pub fn object(&self) -> Node {
        let mut labels = self.labels.clone();
        labels.insert("kubernetes.io/hostname".to_owned(), self.name.clone());
        labels.insert("type".to_owned(), "kwok".to_owned());
        let allocatable = json!({
            "cpu": "32",
            "memory": "128Gi",
            "pods": "110",
            "kubernetes.io/batch-cpu": self.batch_cpu_milli.to_string(),
            "kubernetes.io/batch-memory": self.batch_memory_bytes.to_string(),
        });
        serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {KWOK_NODE_ANNOTATION: "fake"},
            },
            "status": {
                "allocatable": allocatable,
                "capacity": allocatable,
                "addresses": [
                    {"type": "InternalIP", "address": self.address},
                    {"type": "Hostname", "address": self.name},
                ],
            },
        }))
        .expect("a Node")
    }

    /// Creates the node (replacing a leftover of an earlier run).
    pub async fn create(&self, nodes: &Api<Node>) -> Node {
        let _ = nodes.delete(&self.name, &DeleteParams::default()).await;
        for _ in 0..50 {
            match nodes.create(&PostParams::default(), &self.object()).await {
                Ok(node) => return node,
                // The leftover is still going.
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(error) => panic!("cannot create node {}: {error}", self.name),
            }
        }
        panic!("node {} was never free to create", self.name)
    }
}
