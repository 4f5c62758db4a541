//! What a NodeManager's node reports in the suites that run the vertical loop: a koordlet whose
//! page the test sets ([`LiveKoordlet`]) and the real `koordlet-metrics` exporter scraping it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use koordlet_metrics::koordlet::SuppressPolicy;
use koordlet_metrics::replay::{KoordletValues, LiveKoordlet};
use testkit::supervised::Supervised;

/// CPUs of every simulated node.
pub const NODE_CORES: f64 = 16.0;
/// Memory of every simulated node (64 GiB): with koordlet's 70% eviction line and 4 GiB used
/// outside YARN, memory allows 10 vcores, so CPU decides the capacity.
pub const NODE_MEMORY_BYTES: f64 = 64.0 * 1024.0 * 1024.0 * 1024.0;
const USED_MEMORY_BYTES: f64 = 4.0 * 1024.0 * 1024.0 * 1024.0;

/// A koordlet page of a node whose batch work may use `batch_cores` (suppress by CFS quota,
/// which takes fractions of a core, unlike cpuset; no other batch work; 4 GiB of memory used
/// outside YARN).
pub fn batch_cores(batch_cores: f64) -> KoordletValues {
    let online = NODE_CORES - batch_cores;
    KoordletValues {
        suppress_policy: SuppressPolicy::CfsQuota,
        suppress_cores: Some(batch_cores),
        be_used_cpu_cores: 0.0,
        ls_used_cpu_cores: online,
        node_used_cpu_cores: online,
        node_used_memory_bytes: USED_MEMORY_BYTES,
        batch_allocatable_milli_cores: batch_cores * 1000.0,
        batch_allocatable_memory_bytes: NODE_MEMORY_BYTES * 0.7 - USED_MEMORY_BYTES,
    }
}

/// A koordlet of `node` serving `values` on a loopback port until the test changes them; its
/// `/metrics` URL.
pub async fn live_koordlet(node: &str, values: KoordletValues) -> (LiveKoordlet, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!(
        "http://{}/metrics",
        listener.local_addr().expect("an address")
    );
    let koordlet = LiveKoordlet::new(node, values);
    tokio::spawn(koordlet.clone().serve(listener));
    (koordlet, url)
}

/// The real exporter of `node` scraping `koordlet_url` four times a second, listening on
/// `bind:port` (YARN's own use is not read: the suites' containers run without cgroups); its
/// base URL.
pub fn exporter(
    dir: &Path,
    node: &str,
    koordlet_url: &str,
    (bind, port): (&str, u16),
) -> (Supervised, String) {
    let mut command = Command::new(testkit::workspace_binary("koordlet-metrics"));
    command
        .args(["--node", node])
        .args(["--koordlet-url", koordlet_url])
        .args(["--listen", &format!("{bind}:{port}")])
        .args(["--scrape-interval-ms", "250", "--scrape-timeout-ms", "200"])
        .args(["--node-cpu-cores", &NODE_CORES.to_string()])
        .args(["--node-memory-bytes", &NODE_MEMORY_BYTES.to_string()])
        .arg("--no-yarn-usage");
    let process = Supervised::start(
        &format!("exporter {node}"),
        &command,
        &dir.join(format!("exporter-{node}.log")),
    );
    testkit::wait_for_tcp_at(bind, port, Duration::from_secs(30), "the exporter");
    (process, format!("http://{bind}:{port}/"))
}
