//! The `simulate` command as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

fn operator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_elastic-yarn-operator"))
        .args(args)
        .output()
        .expect("the operator binary runs")
}

fn simulate(out: &Path, extra: &[&str]) -> Output {
    let out = out.to_str().expect("utf-8 temp path");
    let mut args = vec![
        "simulate",
        "--nodes",
        "5",
        "--duration",
        "2h",
        "--quiet",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    operator(&args)
}

#[test]
fn simulate_writes_the_report_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let first = simulate(&dir.path().join("a"), &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    for policy in ["static", "follow", "threshold", "elastic", "oracle"] {
        assert!(stdout.contains(&format!("| {policy} |")), "{stdout}");
    }
    for file in [
        "report.json",
        "report.md",
        "timeseries.csv",
        "chart.svg",
        "chart.png",
    ] {
        assert!(dir.path().join("a").join(file).is_file(), "{file} written");
    }
    let second = simulate(&dir.path().join("b"), &[]);
    assert!(second.status.success());
    let a = std::fs::read(dir.path().join("a/report.json")).unwrap();
    let b = std::fs::read(dir.path().join("b/report.json")).unwrap();
    assert_eq!(a, b, "same seed, same report");
    let json: serde_json::Value = serde_json::from_slice(&a).unwrap();
    for field in [
        "delivered_vcore_hours",
        "oracle_ratio",
        "avg_cluster_cpu_util",
        "nm_evictions",
        "graceful_signals",
        "forced_kills",
        "containers_completed",
        "rm_updates",
    ] {
        assert!(
            json["policies"][0].get(field).is_some(),
            "{field} in report.json"
        );
    }
    assert_eq!(json["parameters"]["nodes"], 5);
    assert_eq!(json["trace"]["name"], "alibaba2018_day1_10s");
}

#[test]
fn another_trace_file_can_be_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("flat.csv");
    let mut text = String::from("cpu_util_percent,mem_util_percent\n");
    for _ in 0..100 {
        text.push_str("30,80\n");
    }
    std::fs::write(&trace, text).unwrap();
    let out = simulate(
        &dir.path().join("out"),
        &[
            "--trace",
            trace.to_str().unwrap(),
            "--policies",
            "threshold,elastic",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    assert_eq!(json["trace"]["name"], "flat");
    assert_eq!(json["policies"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = simulate(&dir.path().join("x"), &["--trace", "/nonexistent.csv"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read trace /nonexistent.csv")
    );

    let policy = simulate(&dir.path().join("x"), &["--policies", "greedy"]);
    assert!(!policy.status.success());
    assert!(String::from_utf8_lossy(&policy.stderr).contains("unknown policy"));

    let duration = operator(&["simulate", "--duration", "soon", "--quiet"]);
    assert!(!duration.status.success());
    assert!(String::from_utf8_lossy(&duration.stderr).contains("not a duration"));

    let nodes = operator(&["simulate", "--nodes", "0", "--quiet"]);
    assert!(!nodes.status.success());
    assert!(String::from_utf8_lossy(&nodes.stderr).contains("--nodes must be"));
}

#[test]
fn validate_command_reports_a_bad_pool() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pool.yaml");
    std::fs::write(
        &file,
        r#"apiVersion: elasticyarn.io/v1alpha1
kind: ElasticNodePool
metadata: {name: bad}
spec:
  resourceManager: {addresses: ["http://rm:8088"]}
  nodeManager: {image: hadoop, configMap: conf}
  capacity: {floor: {vcores: 50, memoryMb: 0}, ceiling: {vcores: 40, memoryMb: 1024}}
  lifecycle:
    mode: Periodic
    periodic: {timeZone: Mars/Base, windows: [{online: "0 22 * * *", drainStart: "0 6 * * *", offline: "0 7 * * *"}]}
"#,
    )
    .unwrap();
    let out = operator(&["validate", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("floor.vcores must not exceed"), "{stdout}");
    assert!(
        stdout.contains("spec.lifecycle.periodic.timeZone"),
        "{stdout}"
    );
}
