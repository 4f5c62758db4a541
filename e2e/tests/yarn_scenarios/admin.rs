//! `elastic-yarn-operator yarn ...` against the real RM, as an admin would debug a cluster.

use std::process::{Command, Output};
use std::sync::Arc;

use elastic_yarn_e2e::yarn_world::{LABEL, YarnWorld};

fn yarn_command(rm: &str, args: &[&str]) -> Output {
    Command::new(testkit::workspace_binary("elastic-yarn-operator"))
        .args(["yarn", "--rm", rm])
        .args(args)
        .output()
        .expect("the admin command runs")
}

fn succeeds(rm: &str, args: &[&str]) -> String {
    let output = yarn_command(rm, args);
    assert!(
        output.status.success(),
        "yarn {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(rm: &str, args: &[&str]) -> serde_json::Value {
    let mut with_json = args.to_vec();
    with_json.extend(["-o", "json"]);
    serde_json::from_str(&succeeds(rm, &with_json)).expect("JSON output")
}

pub async fn the_admin_commands_work_against_the_real_rm(world: Arc<YarnWorld>) {
    let line = world.primary();
    let rm = line.rm_url.as_str();
    let node = line.nodes[1].to_string();

    let info = succeeds(rm, &["info"]);
    assert!(
        info.contains("ACTIVE") && info.contains(&line.version),
        "{info}"
    );
    let nodes = json(rm, &["nodes", "--state", "RUNNING"]);
    let ids: Vec<&str> = nodes
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    for id in &line.nodes {
        assert!(ids.contains(&id.to_string().as_str()), "{id} in {ids:?}");
    }

    let before = json(rm, &["node", &node]);
    let resized = json(
        rm,
        &["resize", &node, "--vcores", "3", "--memory-mb", "3072"],
    );
    assert_eq!(resized["previous"], before["capacity"], "{resized}");
    assert_eq!(resized["confirmed"]["vCores"], 3, "{resized}");
    assert_eq!(json(rm, &["node", &node])["capacity"]["memory"], 3072);

    let ensured = succeeds(rm, &["label", "ensure", LABEL]);
    assert!(ensured.contains(LABEL), "{ensured}");
    succeeds(rm, &["label", "set", &node, LABEL]);
    assert_eq!(json(rm, &["node", &node])["labels"][0], LABEL);
    let listed = json(rm, &["label", "list"]);
    assert!(
        listed
            .as_array()
            .expect("a list")
            .iter()
            .any(|l| l["name"] == LABEL),
        "{listed}"
    );

    // Refusals exit non-zero with the RM's reason and a stable category.
    let stranger = yarn_command(rm, &["--user", "nobody", "label", "set", &node]);
    let stderr = String::from_utf8_lossy(&stranger.stderr);
    assert!(!stranger.status.success());
    assert!(
        stderr.contains("not authorized") && stderr.contains("[forbidden]"),
        "{stderr}"
    );
    let unknown = yarn_command(rm, &["node", "localhost:1"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success());
    assert!(
        stderr.contains("nodeId, localhost:1, is not found") && stderr.contains("[not_found]"),
        "{stderr}"
    );

    // Back as the world started it.
    succeeds(rm, &["label", "set", &node]);
    let memory = before["capacity"]["memory"].to_string();
    let vcores = before["capacity"]["vCores"].to_string();
    succeeds(
        rm,
        &["resize", &node, "--vcores", &vcores, "--memory-mb", &memory],
    );
}
