//! `elastic-yarn-operator render`: the pure build step from files, as an admin runs it.

use std::path::PathBuf;
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn render(pool: &str, nodes: &[PathBuf]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_elastic-yarn-operator"));
    command.arg("render").arg("--pool").arg(repo(pool));
    for node in nodes {
        command.arg("--node").arg(node);
    }
    let output = command.output().expect("the operator runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn renders_the_token_secret_the_spark_settings_and_one_pod_per_eligible_node() {
    let (code, stdout, stderr) = render(
        "docs/examples/nightly-pool.yaml",
        &[repo("operator/tests/fixtures/node.yaml")],
    );
    assert_eq!(code, 0, "{stderr}");
    let documents: Vec<serde_yaml::Value> = stdout
        .split("\n---\n")
        .map(|d| serde_yaml::from_str(d.trim_start_matches("---\n")).expect("YAML"))
        .collect();
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().expect("kind"))
        .collect();
    // The nightly pool uses Uniffle: its Spark settings come with it.
    assert_eq!(kinds, ["Secret", "ConfigMap", "Pod"]);
    assert_eq!(
        documents[1]["metadata"]["name"].as_str(),
        Some("nightly-spark-defaults")
    );
    assert_eq!(
        documents[2]["metadata"]["name"].as_str(),
        Some("nightly-nm-worker-7-dc1-example-com-ce66b837")
    );
    assert_eq!(
        documents[2]["spec"]["shareProcessNamespace"].as_bool(),
        Some(true)
    );
}

#[test]
fn an_ineligible_node_is_named_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo("operator/tests/fixtures/node.yaml"))
        .expect("fixture")
        .replace(
            "node-role.example.com/online: \"true\"",
            "node-role.example.com/online: \"false\"",
        );
    let node = dir.path().join("node.yaml");
    std::fs::write(&node, text).expect("written");
    let (code, stdout, stderr) = render("docs/examples/nightly-pool.yaml", &[node]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("worker-7.dc1.example.com is not eligible")
            && stderr.contains("NodeSelector(\"node-role.example.com/online\")"),
        "{stderr}"
    );
    assert!(!stdout.contains("kind: Pod"));
}

#[test]
fn an_invalid_pool_is_refused_with_its_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo("docs/examples/nightly-pool.yaml"))
        .expect("example")
        .replace("Asia/Shanghai", "Mars/Olympus");
    let pool = dir.path().join("pool.yaml");
    std::fs::write(&pool, text).expect("written");
    let mut command = Command::new(env!("CARGO_BIN_EXE_elastic-yarn-operator"));
    let output = command
        .args(["render", "--pool"])
        .arg(&pool)
        .arg("--node")
        .arg(repo("operator/tests/fixtures/node.yaml"))
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Mars/Olympus"));
}
