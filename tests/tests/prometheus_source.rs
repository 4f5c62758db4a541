//! The operator's Prometheus source against a real Prometheus (Debian package `prometheus`)
//! scraping the real `koordlet-metrics` binary, itself scraping a koordlet double that serves one
//! steady page: the reading the operator gets through Prometheus' HTTP API must equal the one it
//! gets from the exporter's own `/v1/windows`.
//!
//! `scripts/test` installs Prometheus and sets `ELASTIC_YARN_REQUIRE_REAL=1`, so there a missing
//! binary fails the test; elsewhere it is skipped with a message.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use elastic_yarn_operator::vertical::availability::{ExporterSource, PrometheusSource};
use elastic_yarn_tests::workspace_binary;
use koordlet_metrics::koordlet::SuppressPolicy;
use koordlet_metrics::replay::{
    AfterLastStep, KoordletDouble, KoordletModel, KoordletReplay, NodeLoad, ReplayStep, render_page,
};
use url::Url;

const NODE: &str = "steady-node";

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_the_exporter_give_the_operator_the_same_reading() {
    let Some(binary) = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        assert!(
            std::env::var("ELASTIC_YARN_REQUIRE_REAL").as_deref() != Ok("1"),
            "prometheus is needed for this test"
        );
        eprintln!("SKIPPED: no prometheus binary");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");

    // A koordlet whose page never changes: every window holds one value.
    let mut koordlet = KoordletReplay::new(KoordletModel {
        cpu_cores: 32.0,
        memory_bytes: 128.0 * 1_073_741_824.0,
        cpu_suppress_threshold: 0.65,
        policy: SuppressPolicy::Cpuset,
    });
    let values = koordlet.step(&NodeLoad {
        online_cpu_cores: 6.0,
        online_memory_bytes: 40.0 * 1_073_741_824.0,
        be_cpu_cores: 1.0,
        be_memory_bytes: 1_073_741_824.0,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let koordlet_address = listener.local_addr().expect("address");
    tokio::spawn(
        KoordletDouble::new(
            vec![ReplayStep::Page(render_page(NODE, &values, 10))],
            AfterLastStep::RepeatLast,
        )
        .serve(listener),
    );

    let exporter_port = free_port();
    let prometheus_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: koordlet-metrics\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
        ),
    )
    .expect("config written");
    let _children = Killed(vec![
        Command::new(workspace_binary("koordlet-metrics"))
            .args([
                "--koordlet-url",
                &format!("http://{koordlet_address}/metrics"),
                "--listen",
                &format!("127.0.0.1:{exporter_port}"),
                "--node",
                NODE,
                "--node-cpu-cores",
                "32",
                "--node-memory-bytes",
                &(128.0 * 1_073_741_824.0_f64).to_string(),
                "--scrape-interval-ms",
                "200",
                "--no-yarn-usage",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("exporter starts"),
        Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    ]);

    let prometheus = PrometheusSource::new(
        Url::parse(&format!("http://127.0.0.1:{prometheus_port}/")).expect("url"),
        Duration::from_secs(2),
    )
    .expect("client");
    let exporter = ExporterSource::new(Duration::from_secs(2), 1).expect("client");
    let exporter_url = Url::parse(&format!("http://127.0.0.1:{exporter_port}/")).expect("url");
    let deadline = Instant::now() + Duration::from_secs(60);
    let through_prometheus = loop {
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        if let Ok(readings) = prometheus.read_all(now).await
            && let Some(Ok(reading)) = readings.get(NODE)
        {
            break *reading;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had the node's series"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let direct = exporter
        .read(&exporter_url)
        .await
        .expect("the exporter answers");

    let (p, d) = (through_prometheus.availability, direct.availability);
    for (name, via_prometheus, via_exporter) in [
        (
            "cpu 10m mean",
            p.cpu_cores.ten_minutes.mean,
            d.cpu_cores.ten_minutes.mean,
        ),
        (
            "cpu 1m min",
            p.cpu_cores.one_minute.min,
            d.cpu_cores.one_minute.min,
        ),
        (
            "memory 10m mean",
            p.memory_mb.ten_minutes.mean,
            d.memory_mb.ten_minutes.mean,
        ),
        (
            "memory 5m max",
            p.memory_mb.five_minutes.max,
            d.memory_mb.five_minutes.max,
        ),
        ("latest cpu", p.latest_cpu_cores, d.latest_cpu_cores),
        ("latest memory", p.latest_memory_mb, d.latest_memory_mb),
    ] {
        assert!(
            (via_prometheus - via_exporter).abs() <= 1e-9 * via_exporter.abs().max(1.0),
            "{name}: {via_prometheus} through Prometheus, {via_exporter} from the exporter"
        );
    }
    assert!(p.cpu_cores.ten_minutes.count > 0);
    assert!(
        p.latest_cpu_cores > 10.0,
        "the steady page leaves batch work room"
    );
    // Prometheus dates the sample by the exporter's last scrape: a few seconds at most.
    assert!(p.age_seconds <= 5, "age {} s", p.age_seconds);
    let allocatable = through_prometheus
        .batch_allocatable
        .expect("batch allocatable");
    let direct_allocatable = direct.batch_allocatable.expect("batch allocatable");
    assert!((allocatable.cpu_cores - direct_allocatable.cpu_cores).abs() < 1e-9);
}
