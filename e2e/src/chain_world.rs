//! The chain suite's world: the Kubernetes world (control plane, chart, an operator) and a real
//! YARN of the primary Hadoop line whose RM listens on a loopback address of its own (the one
//! the operator is allowed to reach), and two fake nodes, each with a koordlet the test
//! scripts and the real exporter listening on the node's address, as its DaemonSet pod would.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use koordlet_metrics::replay::LiveKoordlet;
use testkit::hadoop::{Hadoop, YarnCluster, YarnOptions};
use testkit::kdc::{Kdc, REALM};
use testkit::kubernetes::nodes::FakeNode;
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
/// The YARN label of the `ThirdParty` pool's NMs (the queue may use it too).
pub const THIRD_PARTY_LABEL: &str = "batch-third-party";
/// The YARN label of the RM-outage scenario's pool (the queue may use it too).
pub const OUTAGE_LABEL: &str = "batch-outage";

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
    /// The realm of the Kerberos scenario; the operator runs in its environment, as the chart
    /// sets it up (a writable client keytab it merges pools' keytabs into, a `DIR:` cache).
    pub kdc: Kdc,
}

/// The principal of the HTTP service of an RM on [`CHAIN_RM_ADDRESS`].
pub fn rm_http_principal() -> String {
    format!("HTTP/{CHAIN_RM_ADDRESS}@{REALM}")
}

/// The principal Kerberos pools authenticate as.
pub fn operator_principal() -> String {
    format!("elastic-yarn@{REALM}")
}

/// A realm with the RM's HTTP service and the pools' principal, each with its keytab
/// (`http.keytab`, `operator.keytab`), and a principal that is not the pools' (`other.keytab`).
fn realm() -> Kdc {
    let kdc = Kdc::start().expect("MIT Kerberos (scripts/e2e installs it)");
    let other = format!("someone-else@{REALM}");
    for (principal, file) in [
        (rm_http_principal(), "http.keytab"),
        (operator_principal(), "operator.keytab"),
        (other, "other.keytab"),
    ] {
        kdc.add_principal(&principal);
        kdc.export(&kdc.path(file), &[&principal]);
    }
    kdc
}

impl ChainNode {
    /// Starts the koordlet (offering [`START_CORES`]) and the exporter of a fake node.
    async fn start(k8s: &World, fake: FakeNode) -> ChainNode {
        let (koordlet, url) = live_koordlet(&fake.name, batch_cores(START_CORES)).await;
        let (process, _) = exporter(&k8s.dir, &fake.name, &url, (&fake.address, EXPORTER_PORT));
        ChainNode {
            name: fake.name,
            address: fake.address,
            koordlet,
            exporter: process,
        }
    }
}

impl ChainWorld {
    /// One more fake node labelled `e2e/pool=<selector>`, with its koordlet and exporter.
    pub async fn extra_node(&self, name: &str, selector: &str) -> ChainNode {
        let mut fakes = self.k8s.nodes(&[name], &[("e2e/pool", selector)]).await;
        let fake = fakes.pop().expect("the node was made");
        ChainNode::start(&self.k8s, fake).await
    }

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
                    queue_labels: vec![
                        LABEL.to_owned(),
                        THIRD_PARTY_LABEL.to_owned(),
                        OUTAGE_LABEL.to_owned(),
                    ],
                    rm_properties: production_acls(),
                    rm_host: Some(CHAIN_RM_ADDRESS.to_owned()),
                    ..YarnOptions::default()
                },
            )
        })
        .await
        .expect("the RM starts");
        let rm_url = cluster.rm_url.clone();
        let kdc = tokio::task::spawn_blocking(realm)
            .await
            .expect("the realm starts");
        let caches = k8s.dir.join("operator-ccache");
        std::fs::create_dir_all(&caches).expect("ticket cache folder");
        let environment = vec![
            (
                "KRB5_CLIENT_KTNAME".to_owned(),
                k8s.dir.join("operator-client.keytab").display().to_string(),
            ),
            ("KRB5CCNAME".to_owned(), format!("DIR:{}", caches.display())),
            (
                "KRB5_CONFIG".to_owned(),
                kdc.krb5_conf.display().to_string(),
            ),
        ];
        k8s.start_operator_with("operator-a", CHAIN_RM_ADDRESS, environment)
            .await;
        k8s.operator().await;
        let fakes = k8s
            .nodes(&["chain-0", "chain-1"], &[("e2e/pool", SELECTOR)])
            .await;
        // Koordinator's NodeSLOs as koord-manager writes them, with the threshold the exporters
        // use (their default, 70 %).
        if crate::koordinator::install_crds(&k8s).await {
            for fake in &fakes {
                crate::koordinator::set_node_slo(&k8s.client, &fake.name, 70).await;
            }
        }
        let mut nodes = Vec::new();
        for fake in fakes {
            nodes.push(ChainNode::start(&k8s, fake).await);
        }
        Some(ChainWorld {
            k8s,
            yarn: Arc::new(Mutex::new(cluster)),
            rm_url,
            nodes,
            spark,
            kdc,
        })
    }
}
