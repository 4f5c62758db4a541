//! The guarder binary's HTTP API (docs/architecture.md, contract 4): bearer token, clear 400s, 202 with the
//! outcome, status, metrics, health. Scoped to a process that has no children, so it finds no
//! container and signals nothing.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct GuarderProcess {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for GuarderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start() -> GuarderProcess {
    let dir = tempfile::tempdir().expect("a temp dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").expect("token written");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_guarder"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--scan-interval-ms",
            "100",
        ])
        .arg("--token-file")
        .arg(&token)
        // pid 1 of a container or the test runner: its descendants are not containers of ours,
        // and no container id is set in this environment anyway.
        .args(["--scope-pid", "2147483646"])
        .stdout(Stdio::null())
        .spawn()
        .expect("the guarder starts");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while controlkit::process::http_get(format!("{base}/healthz"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the guarder never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    GuarderProcess {
        child,
        base,
        _dir: dir,
    }
}

async fn put(guarder: &GuarderProcess, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = controlkit::process::http_client()
        .build()
        .expect("an HTTP client")
        .put(format!("{}/v1/target", guarder.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const TARGET: &str = r#"{"vcores":8,"memoryMb":16384,"deadlineSeconds":600,"reason":"night ends"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_the_contract_says() {
    let guarder = start().await;

    let (status, body) = put(&guarder, None, TARGET).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("missing bearer token")
    );
    let (status, _) = put(&guarder, Some("wrong"), TARGET).await;
    assert_eq!(status, 401);

    let (status, body) = put(&guarder, Some("s3cret-token"), r#"{"vcores":"eight"}"#).await;
    assert_eq!(status, 400);
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("vcores") && message.contains("memoryMb"),
        "{message}"
    );
    let (status, body) = put(
        &guarder,
        Some("s3cret-token"),
        r#"{"vcores":1,"memoryMb":1,"deadlineSeconds":1,"reason":"x","extra":1}"#,
    )
    .await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");

    // Nothing runs: the target is above current use, a recorded no-op.
    let (status, body) = put(&guarder, Some("s3cret-token"), TARGET).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["outcome"], "noOp");

    let status: Value = serde_json::from_str(
        &controlkit::process::http_get(format!("{}/v1/status", guarder.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["target"]["vcores"], 8);
    assert_eq!(status["target"]["reason"], "night ends");
    assert_eq!(status["noOpTargets"], 1);
    assert_eq!(status["containers"].as_array().unwrap().len(), 0);

    let metrics = controlkit::process::http_get(format!("{}/metrics", guarder.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "elastic_yarn_guarder_target_vcores 8",
        "elastic_yarn_guarder_target_memory_mb 16384",
        "elastic_yarn_guarder_used_vcores 0",
        "elastic_yarn_guarder_containers 0",
        "# TYPE elastic_yarn_guarder_force_kills counter",
    ] {
        assert!(metrics.contains(series), "missing {series} in\n{metrics}");
    }
}

#[test]
fn an_unreadable_token_file_stops_the_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_guarder"))
        .args([
            "--token-file",
            "/nonexistent/token",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("the guarder runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read the token file"));
}
