//! The real exporter binary against a koordlet double replaying the Alibaba 2018 trace.

mod support;

use koordlet_metrics::WindowStats;
use statrs::statistics::Statistics;
use support::{Exporter, expected_sample, start_double, trace_pages};

fn naive(values: &[f64]) -> WindowStats {
    WindowStats {
        count: values.len() as u32,
        mean: values.mean(),
        variance: values.population_variance(),
        min: values.min(),
        max: values.max(),
    }
}

fn assert_close(got: &WindowStats, expected: &WindowStats, what: &str) {
    assert_eq!(got.count, expected.count, "{what}: count");
    assert_eq!(got.min, expected.min, "{what}: min");
    assert_eq!(got.max, expected.max, "{what}: max");
    let scale = expected.mean.abs().max(1.0);
    assert!(
        (got.mean - expected.mean).abs() <= 1e-9 * scale,
        "{what}: mean {got:?} {expected:?}"
    );
    let tolerance = 1e-9 * expected.variance.max(scale * scale);
    assert!(
        (got.variance - expected.variance).abs() <= tolerance,
        "{what}: variance {got:?} {expected:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_match_the_replayed_pages_and_go_stale_when_koordlet_stops() {
    let pages = trace_pages(40);
    let (double, koordlet) = start_double(&pages).await;
    let exporter = Exporter::start(koordlet, &["--no-yarn-usage"]);

    assert_eq!(exporter.get("/healthz").await.text().await.unwrap(), "ok\n");
    let report = exporter.wait_for_outage(3).await;
    assert!(double.requests() >= pages.len() + 3);

    let (cpu, memory): (Vec<f64>, Vec<f64>) = pages.iter().map(expected_sample).unzip();
    assert_eq!(report.node, support::NODE);
    for (span, got) in [
        ("1m", report.cpu_cores.one_minute),
        ("5m", report.cpu_cores.five_minutes),
        ("10m", report.cpu_cores.ten_minutes),
    ] {
        assert_close(&got, &naive(&cpu), &format!("cpu {span}"));
    }
    assert_close(
        &report.memory_bytes.ten_minutes,
        &naive(&memory),
        "memory 10m",
    );

    // The newest sample is the last page's, and it ages while koordlet is down.
    let latest = report.latest.expect("a latest sample");
    assert_eq!(latest.cpu_cores, *cpu.last().unwrap());
    assert!(latest.age_seconds >= 0.2, "{latest:?}");
    assert_eq!(
        report.scrapes,
        pages.len() as u64 + report.scrape_errors["http_status"]
    );
    assert!(report.last_error.as_deref().unwrap().contains("503"));
    let allocatable = report
        .batch_allocatable
        .expect("koordlet publishes batch allocatable");
    assert_eq!(
        allocatable.cpu_cores,
        Some(pages.last().unwrap().batch_allocatable_milli_cores / 1000.0)
    );

    let metrics = exporter.get("/metrics").await;
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = metrics.text().await.unwrap();
    let mean_line = format!(
        "elastic_yarn_batch_cpu_available_cores{{node=\"{}\",window=\"1m\",stat=\"mean\"}} ",
        support::NODE
    );
    let exported: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix(&mean_line))
        .unwrap_or_else(|| panic!("no {mean_line} in\n{text}"))
        .parse()
        .unwrap();
    assert_eq!(exported, report.cpu_cores.one_minute.mean);
    assert!(text.contains("elastic_yarn_koordlet_scrape_duration_seconds_bucket"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_name_mismatch_is_reported_not_sampled() {
    let pages = trace_pages(3);
    let (_double, koordlet) = start_double(&pages).await;
    // The page says `replay-node`; this exporter serves another node.
    let exporter = Exporter::start_as("other-node", koordlet, &["--no-yarn-usage"]);
    let report = exporter.wait_for_outage(1).await;
    assert_eq!(report.node, "other-node");
    assert_eq!(report.scrape_errors["wrong_node"], 3);
    assert!(report.cpu_cores.ten_minutes.is_empty());
    assert!(report.latest.is_none());
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_koordlet-metrics"))
        .args([
            "--node",
            "n",
            "--koordlet-url",
            "https://koordlet:9316/metrics",
            "--no-yarn-usage",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must use http://"), "{stderr}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_koordlet-metrics"))
        .args(["--node", "n", "--memory-evict-threshold-percent", "170"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at most 100"));

    let empty = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_koordlet-metrics"))
        .args(["--node", "n", "--cgroup-root"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no cgroup v2 mount"));
}
