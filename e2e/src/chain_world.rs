//! The chain suite's world: the Kubernetes world (control plane, chart, an operator) and a real
//! YARN of the primary Hadoop line whose RM listens on a loopback address of its own (the one
//! the operator is allowed to reach), and two fake nodes, each with a koordlet the test
//! scripts and the real exporter listening on the node's address, as its DaemonSet pod would.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use koordlet_metrics::replay::LiveKoordlet;
use testkit::hadoop::{Hadoop, YarnCluster, YarnOptions};
use testkit::supervised::Supervised;

use crate::node_metrics::{batch_cores, exporter, live_koordlet};
use crate::world::World;
use crate::yarn_world::{LABEL, production_acls};

/// The RM's loopback address.
pub const CHAIN_RM_ADDRESS: &str = "127.0.0.3";
/// The value of the `e2e/pool` label the chain's pool selects.
pub const SELECTOR: &str = "chain";
/// The exporter's port on every node (the pool's default `exporterPort`).
pub const EXPORTER_PORT: u16 = 9320;
/// Batch cores every node offers at the start (`elastic` offers 8 vcores, the pool's ceiling).
pub const START_CORES: f64 = 7.0;

/// A fake node and what runs on it for the chain.
#[derive(Debug)]
pub struct ChainNode {
    /// Its name.
    pub name: String,
    /// Its InternalIP (loopback).
    pub address: String,
    /// Its koordlet: the test sets its page.
    pub koordlet: LiveKoordlet,
    /// The exporter process.
    pub exporter: Supervised,
}

/// The chain suite's shared state.
#[derive(Debug)]
pub struct ChainWorld {
    /// The Kubernetes side.
    pub k8s: World,
    /// The YARN cluster (the launcher adds and stops NodeManagers).
    pub yarn: Arc<Mutex<YarnCluster>>,
    /// The RM's web address.
    pub rm_url: String,
    /// The fake nodes.
    pub nodes: Vec<ChainNode>,
    /// Spark's jars.
    pub spark: PathBuf,
}

impl ChainWorld {
    /// Starts everything; `None` when the control plane or Hadoop is not available (and not
    /// required).
    pub async fn new() -> Option<ChainWorld> {
        let k8s = World::new("chain").await?;
        let hadoop = Hadoop::primary()?;
        let spark = testkit::hadoop::spark()?;
        let cluster = tokio::task::spawn_blocking(move || {
            YarnCluster::start(
                &hadoop,
                &YarnOptions {
                    queue_labels: vec![LABEL.to_owned()],
                    rm_properties: production_acls(),
                    rm_host: Some(CHAIN_RM_ADDRESS.to_owned()),
                    ..YarnOptions::default()
                },
            )
        })
        .await
        .expect("the RM starts");
        let rm_url = cluster.rm_url.clone();
        k8s.start_operator_reaching("operator-a", CHAIN_RM_ADDRESS)
            .await;
        k8s.operator().await;
        let fakes = k8s
            .nodes(&["chain-0", "chain-1"], &[("e2e/pool", SELECTOR)])
            .await;
        let mut nodes = Vec::new();
        for fake in fakes {
            let (koordlet, url) = live_koordlet(&fake.name, batch_cores(START_CORES)).await;
            let (process, _) = exporter(&k8s.dir, &fake.name, &url, (&fake.address, EXPORTER_PORT));
            nodes.push(ChainNode {
                name: fake.name,
                address: fake.address,
                koordlet,
                exporter: process,
            });
        }
        Some(ChainWorld {
            k8s,
            yarn: Arc::new(Mutex::new(cluster)),
            rm_url,
            nodes,
            spark,
        })
    }
}
