//! `elastic-yarn-operator vertical`: one pool's loop against explicit endpoints, no Kubernetes —
//! the real `yarn-rm-double` process as the RM and an exporter answering `/v1/windows`.

mod support;

use std::process::Command;

use axum::Router;
use axum::routing::get;
use support::rm_double;

/// An exporter whose node can give 30 cores (and memory to match) to batch work.
fn exporter() -> String {
    let window =
        serde_json::json!({"count": 600, "mean": 30.0, "variance": 0.0, "min": 30.0, "max": 30.0});
    let memory = serde_json::json!({"count": 600, "mean": 1.6e11, "variance": 0.0, "min": 1.6e11, "max": 1.6e11});
    let report = serde_json::json!({
        "node": "worker-0",
        "cpuCores": {"1m": window, "5m": window, "10m": window},
        "memoryBytes": {"1m": memory, "5m": memory, "10m": memory},
        "latest": {
            "cpuCores": 30.0, "memoryBytes": 1.6e11, "timestampSeconds": 1.79e9, "ageSeconds": 0.4,
            "inputs": {
                "suppress": {"cores": 30.0, "policy": "cpuset", "ageMs": 0},
                "beUsedCpuCores": 0.0, "nodeUsedMemoryBytes": 0.0,
                "yarn": {"cpuCores": 0.0, "memoryBytes": 0.0, "cgroups": 0},
                "capacity": {"cpuCores": 64.0, "memoryBytes": 2.7e11},
                "memoryEvictThresholdPercent": 70.0
            }
        },
        "scrapes": 600,
        "scrapeErrors": {}
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let router = Router::new().route(
                "/v1/windows",
                get(move || {
                    let report = report.clone();
                    async move { axum::Json(report) }
                }),
            );
            axum::serve(listener, router).await.expect("serve");
        });
    });
    format!("http://{address}/")
}

#[test]
fn the_loop_runs_on_explicit_endpoints_and_prints_each_decision() {
    let rm =
        rm_double::spawn::<&str, &str>(&["--node-vcores", "10", "--node-memory-mb", "40960"], &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = dir.path().join("pool.yaml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/examples/nightly-pool.yaml"
    ))
    .expect("example")
    .replace("policy: elastic", "policy: threshold");
    std::fs::write(&pool, text).expect("written");
    let output = Command::new(env!("CARGO_BIN_EXE_elastic-yarn-operator"))
        .args(["vertical", "--pool"])
        .arg(&pool)
        .args([
            "--rm",
            &rm.url("127.0.0.1"),
            "--user",
            "yarn",
            "--ticks",
            "1",
        ])
        .arg("--nm")
        .arg(format!(
            "node=worker-0,id=nm-0.yarn.test:45454,exporter={}",
            exporter()
        ))
        .arg("--nm")
        .arg("node=worker-9,id=nm-9.yarn.test:45454")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["node"], "worker-0");
    assert_eq!(
        lines[0]["applied"],
        "resized 10 vcores / 40960 MiB -> 30 vcores / 122880 MiB"
    );
    assert_eq!(lines[0]["reason"], "threshold_grow");
    // An NM the RM does not know is reported, not guessed at.
    assert_eq!(lines[1]["applied"], "not registered");
    assert_eq!(lines[1]["metricsError"], "no_endpoint");
    // The double saw the resize as Hadoop would receive it.
    let requests: serde_json::Value =
        serde_json::from_str(&fetch(&format!("{}/_double/requests", rm.url("127.0.0.1"))))
            .expect("requests JSON");
    let posts: Vec<&serde_json::Value> = requests
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| r["method"] == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0]["path"],
        "/ws/v1/cluster/nodes/nm-0.yarn.test:45454/resource"
    );
}

/// A GET on a small runtime (the test itself is synchronous).
fn fetch(url: &str) -> String {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        controlkit::process::http_get(url)
            .await
            .expect("GET")
            .text()
            .await
            .expect("body")
    })
}
