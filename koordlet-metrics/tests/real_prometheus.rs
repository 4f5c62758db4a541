//! A real Prometheus (Debian package `prometheus`) scrapes the real exporter binary, which
//! scrapes a koordlet double replaying the Alibaba 2018 trace; Prometheus' HTTP API must then hold
//! every windowed series with the values the exporter computed.
//!
//! `scripts/test` installs Prometheus and sets `ELASTIC_YARN_REQUIRE_REAL=1`, so in CI a missing
//! binary fails the test; elsewhere it is skipped with a message.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use koordlet_metrics::WindowSpan;
use serde_json::Value;
use support::{Exporter, NODE, start_double, trace_pages};

struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus_binary() -> Option<String> {
    let candidates = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"];
    candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| (*p).to_owned())
}

fn start_prometheus(binary: &str, data: &Path, target: &str) -> Prometheus {
    let config = data.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
             scrape_configs:\n  - job_name: koordlet-metrics\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .expect("the Prometheus configuration is written");
    let port = support::free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            data.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("prometheus starts");
    Prometheus { child, port }
}

async fn query(prometheus: &Prometheus, promql: &str) -> Vec<Value> {
    let url = format!("http://127.0.0.1:{}/api/v1/query", prometheus.port);
    let url = reqwest::Url::parse_with_params(&url, &[("query", promql)]).expect("a query URL");
    let response = controlkit::process::http_get(url)
        .await
        .expect("prometheus answers");
    let text = response.text().await.expect("a body");
    let body: Value = serde_json::from_str(&text).expect("Prometheus answers JSON");
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn value_of(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .expect("a value string")
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_the_windowed_series_the_exporter_computed() {
    let Some(binary) = prometheus_binary() else {
        assert!(
            std::env::var("ELASTIC_YARN_REQUIRE_REAL").as_deref() != Ok("1"),
            "Prometheus is not installed (scripts/test installs the Debian package)"
        );
        eprintln!("SKIPPED: Prometheus is not installed; run scripts/test to install it");
        return;
    };
    let pages = trace_pages(30);
    let (_double, koordlet) = start_double(&pages).await;
    let exporter = Exporter::start(koordlet, &["--no-yarn-usage"]);
    let data = tempfile::tempdir().unwrap();
    let prometheus = start_prometheus(&binary, data.path(), &exporter.addr.to_string());

    // Once koordlet is gone the exporter's windows stop changing (for a minute), so whatever
    // Prometheus scraped after that must equal the exporter's own report.
    let report = exporter.wait_for_outage(3).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let errors = query(
            &prometheus,
            &format!("elastic_yarn_koordlet_scrape_errors_total{{node=\"{NODE}\",reason=\"http_status\"}}"),
        )
        .await;
        if errors.first().is_some_and(|sample| value_of(sample) >= 3.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the outage: {errors:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let frozen = exporter.report().await;
    assert_eq!(
        frozen.cpu_cores, report.cpu_cores,
        "windows move while koordlet is down"
    );

    let cpu = query(&prometheus, "elastic_yarn_batch_cpu_available_cores").await;
    let memory = query(&prometheus, "elastic_yarn_batch_memory_available_bytes").await;
    assert_eq!(cpu.len(), 12, "3 windows x 4 stats: {cpu:?}");
    assert_eq!(memory.len(), 12, "{memory:?}");
    for (samples, windows) in [(&cpu, &report.cpu_cores), (&memory, &report.memory_bytes)] {
        for sample in samples {
            let labels = &sample["metric"];
            assert_eq!(labels["node"], NODE);
            assert_eq!(labels["job"], "koordlet-metrics");
            let span = WindowSpan::ALL
                .into_iter()
                .find(|span| labels["window"] == span.label())
                .unwrap_or_else(|| panic!("unknown window in {labels}"));
            let stats = windows.get(span);
            let expected = match labels["stat"].as_str().unwrap() {
                "mean" => stats.mean,
                "variance" => stats.variance,
                "min" => stats.min,
                "max" => stats.max,
                other => panic!("unknown stat {other}"),
            };
            assert_eq!(value_of(sample), expected, "{labels}");
            assert_eq!(stats.count as usize, pages.len());
        }
    }
    let samples = query(
        &prometheus,
        "elastic_yarn_batch_available_samples{window=\"10m\"}",
    )
    .await;
    assert_eq!(value_of(&samples[0]), pages.len() as f64);
    let stamp = query(
        &prometheus,
        "elastic_yarn_koordlet_last_scrape_timestamp_seconds",
    )
    .await;
    assert_eq!(
        value_of(&stamp[0]),
        report.latest.unwrap().timestamp_seconds
    );
    // Staleness is visible in PromQL: the last good scrape is older than the last Prometheus scrape.
    let age = query(
        &prometheus,
        "time() - elastic_yarn_koordlet_last_scrape_timestamp_seconds",
    )
    .await;
    assert!(value_of(&age[0]) > 0.0);
}
