//! Shared by the integration tests: the trace replay, the exporter binary, HTTP helpers.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use koordlet_metrics::koordlet::SuppressPolicy;
use koordlet_metrics::replay::{
    AfterLastStep, KoordletDouble, KoordletModel, KoordletReplay, KoordletValues, NodeLoad,
    ReplayStep, render_page,
};
use koordlet_metrics::report::WindowsReport;

pub const NODE: &str = "replay-node";
pub const NODE_CORES: f64 = 32.0;
pub const NODE_MEMORY_BYTES: f64 = 128.0 * 1024.0 * 1024.0 * 1024.0;

/// CPU and memory percentages of the embedded Alibaba 2018 trace (one row per 10 s).
pub fn trace_rows(count: usize) -> Vec<(f64, f64)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../operator/traces/alibaba2018_day1_10s.csv");
    let text = std::fs::read_to_string(&path).expect("the embedded trace is in the repository");
    text.lines()
        .skip(1)
        .take(count)
        .map(|line| {
            let mut fields = line.split(',').map(|f| f.parse::<f64>().expect("number"));
            (fields.next().expect("cpu"), fields.next().expect("memory"))
        })
        .collect()
}

/// koordlet's pages for the first `count` trace rows on a 32-core, 128 GiB node running cfsQuota
/// suppression, with other BE pods using a little CPU.
pub fn trace_pages(count: usize) -> Vec<KoordletValues> {
    let mut koordlet = KoordletReplay::new(KoordletModel {
        cpu_cores: NODE_CORES,
        memory_bytes: NODE_MEMORY_BYTES,
        cpu_suppress_threshold: 0.65,
        policy: SuppressPolicy::CfsQuota,
    });
    trace_rows(count)
        .iter()
        .enumerate()
        .map(|(i, (cpu_percent, memory_percent))| {
            koordlet.step(&NodeLoad {
                online_cpu_cores: cpu_percent / 100.0 * NODE_CORES,
                // The trace's machines are memory-heavy; a co-located node keeps more headroom.
                online_memory_bytes: memory_percent / 100.0 * NODE_MEMORY_BYTES * 0.6,
                be_cpu_cores: 1.0 + (i % 4) as f64 * 0.5,
                be_memory_bytes: 2.0 * 1024.0 * 1024.0 * 1024.0,
            })
        })
        .collect()
}

/// What the exporter should compute from a page when YARN uses nothing.
pub fn expected_sample(values: &KoordletValues) -> (f64, f64) {
    let cpu = (values.suppress_cores.expect("emitted") - values.be_used_cpu_cores).max(0.0);
    let memory = (NODE_MEMORY_BYTES * 0.7 - values.node_used_memory_bytes).max(0.0);
    (cpu, memory)
}

/// A koordlet double on a loopback port serving these pages, then 503.
pub async fn start_double(pages: &[KoordletValues]) -> (KoordletDouble, SocketAddr) {
    let steps = pages
        .iter()
        .map(|values| ReplayStep::Page(render_page(NODE, values, 124)))
        .collect();
    start_steps(steps, AfterLastStep::Unavailable).await
}

/// A koordlet double with arbitrary steps.
pub async fn start_steps(
    steps: Vec<ReplayStep>,
    after: AfterLastStep,
) -> (KoordletDouble, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let double = KoordletDouble::new(steps, after);
    tokio::spawn(double.clone().serve(listener));
    (double, addr)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The exporter binary, killed when dropped.
pub struct Exporter {
    child: Child,
    pub addr: SocketAddr,
}

impl Exporter {
    pub fn start(koordlet: SocketAddr, extra: &[&str]) -> Exporter {
        Exporter::start_as(NODE, koordlet, extra)
    }

    pub fn start_as(node: &str, koordlet: SocketAddr, extra: &[&str]) -> Exporter {
        // Timeout longer than the interval on purpose: a loaded test machine must not turn a
        // served page into a timeout, or the expected windows would be unknowable.
        Exporter::start_with(node, koordlet, 100, 5000, extra)
    }

    pub fn start_with(
        node: &str,
        koordlet: SocketAddr,
        interval_ms: u64,
        timeout_ms: u64,
        extra: &[&str],
    ) -> Exporter {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let child = Command::new(env!("CARGO_BIN_EXE_koordlet-metrics"))
            .args([
                "--koordlet-url",
                &format!("http://{koordlet}/metrics"),
                "--listen",
                &addr.to_string(),
                "--node",
                node,
                "--node-cpu-cores",
                &NODE_CORES.to_string(),
                "--node-memory-bytes",
                &NODE_MEMORY_BYTES.to_string(),
                "--scrape-interval-ms",
                &interval_ms.to_string(),
                "--scrape-timeout-ms",
                &timeout_ms.to_string(),
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the exporter binary starts");
        Exporter { child, addr }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("a pid")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match controlkit::process::http_get(format!("http://{}{path}", self.addr)).await {
                Ok(response) => return response,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("exporter at {} does not answer: {error}", self.addr),
            }
        }
    }

    pub async fn report(&self) -> WindowsReport {
        let text = self.get("/v1/windows").await.text().await.expect("body");
        serde_json::from_str(&text).expect("a windows report")
    }

    /// Waits until the exporter has seen koordlet fail at least `failures` times after the
    /// double's pages ran out.
    pub async fn wait_for_outage(&self, failures: u64) -> WindowsReport {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let report = self.report().await;
            if report
                .scrape_errors
                .get("http_status")
                .copied()
                .unwrap_or(0)
                >= failures
            {
                return report;
            }
            assert!(Instant::now() < deadline, "no outage seen: {report:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
