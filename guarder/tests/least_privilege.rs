//! The guarder with no capability at all, running as the user its containers run as (what the
//! pool's `guarder.runAs` makes of an NM pod under the DefaultContainerExecutor): it finds their
//! processes by `CONTAINER_ID` and signals them as their owner. A container of another user
//! stays out of its sight, which is what `KILL` and `SYS_PTRACE` are for when containers run as
//! their submitters (LinuxContainerExecutor).
//!
//! It starts processes as `nobody`, so it needs root; `scripts/test` sets
//! `ELASTIC_YARN_REQUIRE_REAL=1`, which makes running without root a failure.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::processes::Children;

const NOBODY: u32 = 65534;
const TOKEN: &str = "least-privilege-token";

/// A container's process with `CONTAINER_ID`, as `uid` (`None`: this process' user); the shell
/// execs it, so that killing the child leaves no `sleep` behind.
fn container(id: &str, uid: Option<u32>) -> Child {
    let mut command = Command::new("bash");
    command
        .args(["-c", "exec sleep 600"])
        .env("CONTAINER_ID", id);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    command.spawn().expect("bash starts")
}

async fn status(base: &str) -> Value {
    let text = controlkit::process::http_get(format!("{base}/v1/status"))
        .await
        .expect("the guarder answers")
        .text()
        .await
        .expect("a body");
    serde_json::from_str(&text).expect("JSON")
}

fn listed(status: &Value) -> Vec<String> {
    status["containers"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|c| c["container"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The effective capabilities of a process, as `/proc/<pid>/status` shows them.
fn effective_capabilities(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the process' status")
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .map(|caps| caps.trim().to_owned())
        .expect("a CapEff line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guarder_without_capabilities_drains_the_containers_of_its_own_user() {
    // `/proc/self` belongs to this process' user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        assert!(
            std::env::var("ELASTIC_YARN_REQUIRE_REAL").as_deref() != Ok("1"),
            "this test starts processes as nobody: run it as root"
        );
        eprintln!("SKIPPED: needs root to start processes as nobody");
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("a readable folder");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("token written");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644))
        .expect("a readable token");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let ours = format!("container_e42_{stamp}_0009_01_000002");
    let theirs = format!("container_e42_{stamp}_0009_01_000003");
    let mut children = Children(vec![
        container(&ours, Some(NOBODY)),
        container(&theirs, None),
    ]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let guarder = Command::new(env!("CARGO_BIN_EXE_guarder"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--token-file")
        .arg(&token)
        .args(["--scan-interval-ms", "100", "--grace-period-seconds", "5"])
        .args(["--scope-pid", &std::process::id().to_string()])
        .arg("--cgroup-root")
        .arg(dir.path().join("no-cgroups"))
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::null())
        .spawn()
        .expect("the guarder starts as nobody");
    let guarder_pid = guarder.id();
    children.0.push(guarder);
    assert_eq!(
        effective_capabilities(guarder_pid),
        "0000000000000000",
        "the guarder runs with no capability"
    );

    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        if let Ok(text) = controlkit::process::http_get(format!("{base}/v1/status")).await
            && let Ok(status) =
                serde_json::from_str::<Value>(&text.text().await.unwrap_or_default())
            && !listed(&status).is_empty()
        {
            break listed(&status);
        }
        assert!(
            Instant::now() < deadline,
            "the guarder never listed a container"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(seen, vec![ours.clone()], "only its own user's container");

    let answer = controlkit::process::http_client()
        .build()
        .expect("an HTTP client")
        .put(format!("{base}/v1/target"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"vcores":0,"memoryMb":0,"deadlineSeconds":5,"reason":"drain"}"#)
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status().as_u16(), 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        if let Some(status) = children.0[0].try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the guarder could not end its user's container: {}",
            status(&base).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!ended.success(), "ended by a signal: {ended:?}");
    assert!(
        children.0[1].try_wait().expect("try_wait").is_none(),
        "another user's container is out of its reach"
    );
    let tallies = status(&base).await;
    assert_eq!(tallies["forceKills"], 0, "{tallies}");
}
