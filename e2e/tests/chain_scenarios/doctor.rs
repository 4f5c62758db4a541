//! `elastic-yarn-operator doctor` against the chain's setup: the real control plane with the
//! chart's CRDs and RBAC, Koordinator's real NodeSLO CRD, the exporters and the real RM. The
//! working pool passes every check; then four things are broken as an admin might break them
//! (a NodeSLO threshold that differs from the exporter's, an operator account missing one verb,
//! a pool whose nodes lack its label and whose Hadoop configuration is not XML) and doctor names
//! each, with a non-zero exit code.

use std::process::Output;
use std::sync::Arc;

use elastic_yarn_e2e::chain_world::ChainWorld;
use elastic_yarn_e2e::chart;
use elastic_yarn_e2e::controller::service_account_token;
use elastic_yarn_e2e::koordinator::set_node_slo;
use elastic_yarn_e2e::world::{output, run};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

use super::{NAMESPACE, POOL, manifest_for, pool};

const BROKEN_ACCOUNT: &str = "doctor-broken";
const UNPLACED_POOL: &str = "doctor-unplaced";
const BROKEN_CONF: &str = "doctor-broken-conf";
const RELEASE_NAMESPACE: &str = "elastic-yarn";

pub async fn doctor_passes_the_setup_and_names_what_an_admin_broke(world: Arc<ChainWorld>) {
    pool(&world).await;
    let k8s = &world.k8s;
    let healthy = doctor(
        &world,
        &[
            "--pool",
            &format!("{NAMESPACE}/{POOL}"),
            "--service-account",
            "elastic-yarn/elastic-yarn-operator",
            "--json",
        ],
    )
    .await;
    let report = report_of(&healthy);
    assert_eq!(
        report["blockers"], 0,
        "the chain's setup has no blocker: {report:#}"
    );
    assert!(healthy.status.success(), "exit 0 without blockers");
    for check in [
        "crds",
        "rbac",
        "koordinatorCrds",
        "batchPriorityClass",
        "spec",
        "nodes",
        "batchResources",
        "hadoopConf",
        "exporters",
        "nodeSlo",
        "resourceManager",
        "hadoopVersion",
        "nodeLabel",
    ] {
        assert_eq!(
            status_of(&report, check),
            Some("pass"),
            "{check} passes: {report:#}"
        );
    }

    // As the chart's `helm test` pod runs it: as its own account (the hook's RBAC), reviewing
    // the operator's account.
    let as_hook = doctor_as_chart_test(&world).await;
    let report = report_of(&as_hook);
    assert!(
        as_hook.status.success() && report["blockers"] == 0 && report["warnings"] == 0,
        "the test hook's account reads everything doctor checks: {report:#}"
    );

    // What an admin breaks.
    set_node_slo(&k8s.client, "chain-1", 60).await;
    account_missing_pod_deletion(&world).await;
    let mut unplaced = manifest_for(&world, UNPLACED_POOL, "nowhere", "doctor");
    unplaced["metadata"]["name"] = json!(UNPLACED_POOL);
    unplaced["spec"]["nodeManager"]["configMap"] = json!(BROKEN_CONF);
    let maps: Api<ConfigMap> = Api::namespaced(k8s.client.clone(), NAMESPACE);
    let broken_conf: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": BROKEN_CONF},
        "data": {"yarn-site.xml": "<configuration><property><name>yarn.x</name>"},
    }))
    .expect("a ConfigMap");
    maps.create(&PostParams::default(), &broken_conf)
        .await
        .expect("the broken ConfigMap");
    elastic_yarn_e2e::pools::create(&k8s.client, &unplaced).await;

    let broken = doctor(
        &world,
        &[
            "--pool",
            &format!("{NAMESPACE}/{POOL}"),
            "--pool",
            &format!("{NAMESPACE}/{UNPLACED_POOL}"),
            "--service-account",
            &format!("{RELEASE_NAMESPACE}/{BROKEN_ACCOUNT}"),
            "--json",
        ],
    )
    .await;
    assert_eq!(broken.status.code(), Some(1), "exit 1 with blockers");
    let report = report_of(&broken);
    let failed = |check: &str, scope: &str| -> String {
        report["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["check"] == check && c["scope"] == scope && c["status"] == "fail")
            .map(|c| format!("{} / {}", c["detail"], c["fix"]))
            .unwrap_or_else(|| panic!("{scope} {check} fails: {report:#}"))
    };
    let rbac = failed("rbac", "installation");
    assert!(rbac.contains("delete pods (core)"), "{rbac}");
    let thresholds = failed("nodeSlo", "chain/chain");
    assert!(
        thresholds.contains("chain-1: NodeSLO 60%, exporter 70%")
            && thresholds.contains("memoryEvictThresholdPercent=60"),
        "{thresholds}"
    );
    let nodes = failed("nodes", "chain/doctor-unplaced");
    assert!(nodes.contains("e2e/pool=nowhere"), "{nodes}");
    let conf = failed("hadoopConf", "chain/doctor-unplaced");
    assert!(
        conf.contains(
            "ConfigMap chain/doctor-broken-conf: yarn-site.xml: not a Hadoop configuration file"
        ),
        "{conf}"
    );
    assert_eq!(report["blockers"], 4, "exactly what was broken: {report:#}");

    // The same as text, for people.
    let text = doctor(&world, &["--pool", &format!("{NAMESPACE}/{UNPLACED_POOL}")]).await;
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("[FAIL] nodes:") && text.contains("fix: label the nodes"),
        "{text}"
    );

    // Put everything back for the scenarios after this one.
    set_node_slo(&k8s.client, "chain-1", 70).await;
    elastic_yarn_e2e::pools::delete(&k8s.client, NAMESPACE, UNPLACED_POOL).await;
    maps.delete(BROKEN_CONF, &DeleteParams::default())
        .await
        .expect("the broken ConfigMap removed");
    remove_broken_account(&world).await;
}

/// `elastic-yarn-operator doctor <args>` as the cluster's admin.
async fn doctor(world: &ChainWorld, args: &[&str]) -> Output {
    let mut command =
        std::process::Command::new(testkit::workspace_binary("elastic-yarn-operator"));
    command
        .arg("doctor")
        .args(args)
        .args(["--lease-namespace", RELEASE_NAMESPACE])
        .env("KUBECONFIG", &world.k8s.cluster.kubeconfig)
        .env_remove("KRB5_CLIENT_KTNAME");
    output(command).await
}

/// The chart's test hook objects but its Pod, applied; then doctor run as the Pod would be: as
/// the hook's account, with the Pod's arguments (and `--json`).
async fn doctor_as_chart_test(world: &ChainWorld) -> Output {
    let k8s = &world.k8s;
    let home = k8s.dir.join("doctor-hook");
    std::fs::create_dir_all(&home).expect("helm home");
    let set = chart::ValueSet {
        name: "doctor-hook",
        values: json!({}),
    };
    let hooks: Vec<Value> = chart::template(k8s.cluster, &home, &set)
        .into_iter()
        .filter(|o| o["metadata"]["annotations"]["helm.sh/hook"] == "test")
        .collect();
    let pod = hooks
        .iter()
        .find(|o| o["kind"] == "Pod")
        .expect("the test hook's Pod")
        .clone();
    let objects: Vec<Value> = hooks.into_iter().filter(|o| o["kind"] != "Pod").collect();
    let file = home.join("hook-rbac.json");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(&file, list.to_string()).expect("objects file");
    let mut apply = k8s.cluster.kubectl();
    apply.args(["apply", "-f"]).arg(&file);
    run(apply).await;
    let account = pod["spec"]["serviceAccountName"]
        .as_str()
        .expect("the Pod's account");
    let token = service_account_token(&k8s.client, RELEASE_NAMESPACE, account).await;
    let kubeconfig = home.join("doctor.kubeconfig");
    k8s.cluster.token_kubeconfig(&token, &kubeconfig);
    let args: Vec<String> = pod["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("doctor"), "{args:?}");
    let mut command =
        std::process::Command::new(testkit::workspace_binary("elastic-yarn-operator"));
    command
        .args(&args)
        .args(["--pool", &format!("{NAMESPACE}/{POOL}"), "--json"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KRB5_CLIENT_KTNAME");
    output(command).await
}

fn report_of(answer: &Output) -> Value {
    serde_json::from_slice(&answer.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&answer.stdout),
            String::from_utf8_lossy(&answer.stderr)
        )
    })
}

fn status_of<'a>(report: &'a Value, check: &str) -> Option<&'a str> {
    report["checks"]
        .as_array()?
        .iter()
        .find(|c| c["check"] == check)?["status"]
        .as_str()
}

/// An account bound to the chart's roles, but with `delete` on pods taken out.
async fn account_missing_pod_deletion(world: &ChainWorld) {
    let client = &world.k8s.client;
    let chart: ClusterRole = Api::all(client.clone())
        .get("elastic-yarn-operator")
        .await
        .expect("the chart's ClusterRole");
    let mut rules = chart.rules.unwrap_or_default();
    for rule in &mut rules {
        if rule.resources.iter().flatten().any(|r| r == "pods") {
            rule.verbs.retain(|v| v != "delete");
        }
    }
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": BROKEN_ACCOUNT},
        "rules": rules,
    }))
    .expect("a ClusterRole");
    let params = PostParams::default();
    Api::<ClusterRole>::all(client.clone())
        .create(&params, &role)
        .await
        .expect("ClusterRole created");
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": BROKEN_ACCOUNT}})).expect("account");
    Api::<ServiceAccount>::namespaced(client.clone(), RELEASE_NAMESPACE)
        .create(&params, &account)
        .await
        .expect("ServiceAccount created");
    let subject =
        json!([{"kind": "ServiceAccount", "name": BROKEN_ACCOUNT, "namespace": RELEASE_NAMESPACE}]);
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": BROKEN_ACCOUNT},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": BROKEN_ACCOUNT},
        "subjects": subject,
    }))
    .expect("a binding");
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&params, &binding)
        .await
        .expect("ClusterRoleBinding created");
    let lease: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": BROKEN_ACCOUNT},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "elastic-yarn-operator-leader"},
        "subjects": subject,
    }))
    .expect("a binding");
    Api::<RoleBinding>::namespaced(client.clone(), RELEASE_NAMESPACE)
        .create(&params, &lease)
        .await
        .expect("RoleBinding created");
}

async fn remove_broken_account(world: &ChainWorld) {
    let client = &world.k8s.client;
    let params = DeleteParams::default();
    let _ = Api::<RoleBinding>::namespaced(client.clone(), RELEASE_NAMESPACE)
        .delete(BROKEN_ACCOUNT, &params)
        .await;
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .delete(BROKEN_ACCOUNT, &params)
        .await;
    let _ = Api::<ClusterRole>::all(client.clone())
        .delete(BROKEN_ACCOUNT, &params)
        .await;
    let _ = Api::<ServiceAccount>::namespaced(client.clone(), RELEASE_NAMESPACE)
        .delete(BROKEN_ACCOUNT, &params)
        .await;
}
