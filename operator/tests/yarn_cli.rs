//! `elastic-yarn-operator yarn ...` against the `yarn-rm-double` binary: an HA pair, table and
//! JSON output, and errors that exit non-zero with their category.

mod support;

use std::process::Command;

use support::rm_double::{self, DoubleProcess};

fn double(extra: &[&str]) -> (DoubleProcess, String) {
    let process = rm_double::spawn(extra, &[] as &[(&str, &str)]);
    let url = process.url("127.0.0.1");
    (process, url)
}

fn yarn(rms: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_elastic-yarn-operator"))
        .args(["yarn", "--rm", rms])
        .args(args)
        .env_remove("ELASTIC_YARN_RM")
        .output()
        .expect("run yarn");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_admin_inspects_and_changes_an_ha_pair() {
    let active = double(&["--mapped"]);
    let standby = double(&["--standby-of", &active.1]);
    let pair = format!("{},{}", standby.1, active.1);

    let (ok, info, _) = yarn(&pair, &["info"]);
    assert!(ok);
    let states: Vec<&str> = info
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().nth(1).expect("state column"))
        .collect();
    assert_eq!(states, vec!["STANDBY", "ACTIVE"], "{info}");

    let (ok, table, _) = yarn(&pair, &["nodes"]);
    assert!(ok);
    assert!(table.starts_with("NODE "), "{table}");
    assert!(
        table.contains("nm-1.yarn.test:45454  RUNNING  0/32"),
        "{table}"
    );

    let (ok, resized, stderr) = yarn(
        &pair,
        &[
            "resize",
            "nm-0.yarn.test:45454",
            "--vcores",
            "4",
            "--memory-mb",
            "16384",
            "-o",
            "json",
        ],
    );
    assert!(ok, "{stderr}");
    let resized: serde_json::Value = serde_json::from_str(&resized).expect("JSON");
    assert_eq!(resized["previous"]["vCores"], 32);
    assert_eq!(
        resized["confirmed"],
        serde_json::json!({"memory": 16384, "vCores": 4})
    );

    let (ok, _, _) = yarn(&pair, &["label", "ensure", "elastic"]);
    assert!(ok);
    let (ok, _, _) = yarn(&pair, &["label", "set", "nm-0.yarn.test:45454", "elastic"]);
    assert!(ok);
    let (ok, node, _) = yarn(&pair, &["-o", "json", "node", "nm-0.yarn.test:45454"]);
    assert!(ok);
    let node: serde_json::Value = serde_json::from_str(&node).expect("JSON");
    assert_eq!(node["labels"], serde_json::json!(["elastic"]));
    assert_eq!(node["capacity"]["vCores"], 4);
}

#[test]
fn errors_exit_non_zero_with_their_category() {
    let rm = double(&[]);
    let (ok, _, stderr) = yarn(&rm.1, &["node", "nm-7.yarn.test:45454"]);
    assert!(!ok);
    assert!(stderr.contains("is not found [not_found]"), "{stderr}");

    let (ok, _, stderr) = yarn(&rm.1, &["node", "no-port"]);
    assert!(!ok);
    assert!(stderr.contains("is not host:port"), "{stderr}");

    let (ok, _, stderr) = yarn(&rm.1, &["label", "ensure", "bad label"]);
    assert!(!ok);
    assert!(stderr.contains("[invalid_input]"), "{stderr}");

    let (ok, _, stderr) = yarn("ftp://rm.example.com:8090", &["nodes"]);
    assert!(!ok);
    assert!(stderr.contains("neither http nor https"), "{stderr}");
}
