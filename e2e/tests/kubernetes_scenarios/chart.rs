//! The chart through the real Helm, checked by the real API server.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use elastic_yarn_e2e::chart::{self, RELEASE_NAMESPACE, ValueSet, chart_dir};
use elastic_yarn_e2e::world::{World, output, run};
use serde_json::{Value, json};

fn repository() -> std::path::PathBuf {
    testkit::workspace_root()
}

/// `kubectl apply --dry-run=server` of these objects: the API server's schema, CEL and
/// admission checks, nothing stored. A warning fails too (an unrecognised schema format, a
/// deprecated API): an admin would see it on every install.
async fn dry_run(world: &World, file: &Path) {
    let mut kubectl = world.cluster.kubectl();
    kubectl.args(["apply", "--dry-run=server", "-f"]).arg(file);
    let answer = output(kubectl).await;
    let stderr = String::from_utf8_lossy(&answer.stderr);
    assert!(
        answer.status.success() && !stderr.contains("Warning"),
        "the API server refused or warned about {}:\n{}{stderr}",
        file.display(),
        String::from_utf8_lossy(&answer.stdout)
    );
}

/// Writes objects as one `List` for kubectl.
fn list_file(path: &Path, objects: &[Value]) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    std::fs::write(path, list.to_string()).expect("objects file");
}

/// What every rendering must hold: the controllers' Deployments, hardened containers with
/// resources, the dashboard, and monitors exactly when asked for.
fn check_shape(set: &ValueSet, objects: &[Value]) {
    let of_kind =
        |kind: &str| -> Vec<&Value> { objects.iter().filter(|o| o["kind"] == kind).collect() };
    let deployments: BTreeSet<&str> = of_kind("Deployment")
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    let mut wanted = BTreeSet::from(["elastic-yarn-operator"]);
    if set.values["staticip"]["enabled"] != false {
        wanted.insert("elastic-yarn-staticip");
    }
    assert_eq!(deployments, wanted, "{}: Deployments", set.name);
    for workload in of_kind("Deployment")
        .into_iter()
        .chain(of_kind("DaemonSet"))
    {
        for container in workload["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
        {
            let security = &container["securityContext"];
            let hardened = security["readOnlyRootFilesystem"] == true
                && security["runAsNonRoot"] == true
                && security["allowPrivilegeEscalation"] == false
                && security["capabilities"]["drop"] == json!(["ALL"]);
            assert!(
                hardened && container.get("resources").is_some(),
                "{}: {}/{} is not hardened or has no resources",
                set.name,
                workload["metadata"]["name"],
                container["name"]
            );
        }
    }
    if set.values["grafanaDashboard"]["enabled"] != false {
        let dashboards: Vec<&Value> = of_kind("ConfigMap")
            .into_iter()
            .filter(|m| m["data"].get("elastic-yarn.json").is_some())
            .collect();
        assert_eq!(dashboards.len(), 1, "{}: one dashboard ConfigMap", set.name);
        let text = dashboards[0]["data"]["elastic-yarn.json"]
            .as_str()
            .expect("dashboard text");
        serde_json::from_str::<Value>(text).expect("the dashboard is JSON");
    }
    let monitors: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o["apiVersion"] == "monitoring.coreos.com/v1")
        .filter_map(|o| o["kind"].as_str())
        .collect();
    let wanted: BTreeSet<&str> = if set.name == "monitored" {
        BTreeSet::from(["PodMonitor", "ServiceMonitor"])
    } else {
        BTreeSet::new()
    };
    assert_eq!(monitors, wanted, "{}: monitors", set.name);
    check_operator_security(set, &of_kind("Deployment"));
    check_availability_and_guarder(set, objects);
}

/// The operator's PodDisruptionBudget with more than one replica, the guarder image from the
/// chart's registry unless named, and the guarder port opened to the operator only where asked.
fn check_availability_and_guarder(set: &ValueSet, objects: &[Value]) {
    let budgets = objects
        .iter()
        .filter(|o| o["kind"] == "PodDisruptionBudget")
        .count();
    let replicas = set.values["operator"]["replicas"].as_u64().unwrap_or(2);
    assert_eq!(
        budgets,
        usize::from(replicas > 1),
        "{}: a PodDisruptionBudget exactly with several replicas",
        set.name
    );
    let operator = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "elastic-yarn-operator")
        .expect("the operator Deployment");
    let args = &operator["spec"]["template"]["spec"]["containers"][0]["args"];
    let guarder_image = args
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix("--guarder-image="));
    let wanted = set.values["operator"]["guarderImage"].as_str().map_or_else(
        || "ghcr.io/elastic-yarn/guarder:0.1.0".to_owned(),
        str::to_owned,
    );
    assert_eq!(guarder_image, Some(wanted.as_str()), "{}", set.name);
    let guarder_policies: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["namespace"] == "yarn")
        .collect();
    if set.name == "monitored" {
        assert_eq!(
            guarder_policies.len(),
            1,
            "{}: the guarder's policy",
            set.name
        );
        let ingress = &guarder_policies[0]["spec"]["ingress"];
        assert_eq!(
            ingress[0]["ports"],
            json!([{"port": 9321, "protocol": "TCP"}])
        );
        let open: Vec<(u64, u64)> = ingress[1]["ports"]
            .as_array()
            .expect("the other ports")
            .iter()
            .filter(|p| p["protocol"] == "TCP")
            .map(|p| {
                (
                    p["port"].as_u64().unwrap_or(0),
                    p["endPort"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(
            open,
            [(1, 9320), (9322, 65535)],
            "every TCP port but the guarder's"
        );
    } else {
        assert!(
            guarder_policies.is_empty(),
            "{}: no guarder policy",
            set.name
        );
    }
}

/// The operator's egress flags, CA bundle, krb5.conf and `DIR:` ticket cache, as the values say.
fn check_operator_security(set: &ValueSet, deployments: &[&Value]) {
    let operator = deployments
        .iter()
        .find(|d| d["metadata"]["name"] == "elastic-yarn-operator")
        .expect("the operator Deployment");
    let pod = &operator["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let env = |name: &str| {
        container["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
    };
    assert_eq!(
        env("KRB5CCNAME"),
        Some("DIR:/var/run/elastic-yarn/tickets"),
        "{}: a ticket cache collection",
        set.name
    );
    let volumes: BTreeSet<&str> = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    if set.name == "secured" {
        for wanted in [
            "--allow-egress-cidr=10.20.0.0/16",
            "--deny-egress-cidr=10.96.0.0/12",
            "--rm-ca-file=/etc/elastic-yarn/rm-ca/ca.pem",
        ] {
            assert!(args.contains(&wanted), "{}: {wanted} in {args:?}", set.name);
        }
        assert_eq!(env("KRB5_CONFIG"), Some("/etc/elastic-yarn/krb5/krb5.conf"));
        assert!(
            volumes.contains("krb5-conf") && volumes.contains("rm-ca"),
            "{volumes:?}"
        );
    } else {
        assert!(
            !args.iter().any(|a| a.starts_with("--rm-ca-file")) && env("KRB5_CONFIG").is_none(),
            "{}: no CA bundle or krb5.conf unless asked: {args:?}",
            set.name
        );
    }
}

/// `helm lint --strict`; every value set rendered by `helm template`, checked for its shape and
/// applied with `--dry-run=server`; the CRDs and the NM pods `render` builds for the examples,
/// dry-run too.
pub async fn chart_lints_and_renders_against_the_api_server(world: Arc<World>) {
    if world.cluster.local.is_some() {
        // The control plane was built with its release's version stamps.
        let mut version = world.cluster.kubectl();
        version.args(["version", "-o", "json"]);
        let versions: Value = serde_json::from_str(&run(version).await).expect("version JSON");
        let release = testkit::kubernetes::kubernetes_version();
        assert!(
            !release.is_empty(),
            "KUBERNETES_VERSION in testkit/go/versions.env"
        );
        assert_eq!(
            versions["serverVersion"]["gitVersion"], release,
            "{versions}"
        );
        assert_eq!(
            versions["clientVersion"]["gitVersion"], release,
            "{versions}"
        );
    }
    let home = world.dir.join("helm-check");
    std::fs::create_dir_all(&home).expect("helm home");
    let mut lint = world.cluster.helm(&home);
    lint.args(["lint", "--strict"]).arg(chart_dir());
    run(lint).await;

    world.monitor_crds().await;
    world.namespace_if_missing(RELEASE_NAMESPACE).await;
    // The examples' namespace, where the "monitored" set puts the guarder's NetworkPolicy.
    world.namespace_if_missing("yarn").await;
    dry_run(&world, &chart_dir().join("crds")).await;
    for (set, names) in chart::refused_value_sets() {
        let message = chart::template_refused(world.cluster, &home, &set);
        assert!(
            message.contains(names),
            "{}: Helm's refusal names {names}:\n{message}",
            set.name
        );
    }
    for set in chart::value_sets() {
        let objects = chart::template(world.cluster, &home, &set);
        check_shape(&set, &objects);
        // `helm test` hooks come after the release: their Pod needs its ServiceAccount to
        // exist, which a dry run of the same list does not make.
        let (hooks, release): (Vec<Value>, Vec<Value>) = objects
            .into_iter()
            .partition(|o| o["metadata"]["annotations"]["helm.sh/hook"] == "test");
        assert!(
            hooks.iter().any(|o| o["kind"] == "Pod"),
            "{}: the doctor test hook",
            set.name
        );
        let file = home.join(format!("rendered-{}.json", set.name));
        list_file(&file, &release);
        dry_run(&world, &file).await;
        let accounts: Vec<Value> = hooks
            .iter()
            .filter(|o| o["kind"] == "ServiceAccount")
            .cloned()
            .collect();
        let file = home.join(format!("hook-accounts-{}.json", set.name));
        list_file(&file, &accounts);
        let mut apply = world.cluster.kubectl();
        apply.args(["apply", "-f"]).arg(&file);
        run(apply).await;
        let file = home.join(format!("hooks-{}.json", set.name));
        list_file(&file, &hooks);
        dry_run(&world, &file).await;
    }

    // Helm installs CRDs before templates; the NM pods below need them only for their owner,
    // which a dry run does not check.
    let examples = repository().join("docs/examples");
    let mut pools: Vec<_> = std::fs::read_dir(&examples)
        .expect("docs/examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("-pool.yaml"))
        .collect();
    pools.sort();
    assert!(!pools.is_empty(), "no example pools");
    for pool in pools {
        let mut render =
            std::process::Command::new(testkit::workspace_binary("elastic-yarn-operator"));
        render
            .arg("render")
            .arg("--pool")
            .arg(&pool)
            .arg("--node")
            .arg(repository().join("operator/tests/fixtures/node.yaml"))
            .arg("--static-ip-pool")
            .arg(examples.join("staticippool.yaml"));
        let rendered = run(render).await;
        let objects = chart::documents(&rendered);
        assert!(!objects.is_empty(), "{}: nothing rendered", pool.display());
        let file = home.join(format!(
            "nm-{}.json",
            pool.file_stem().unwrap_or_default().to_string_lossy()
        ));
        list_file(&file, &objects);
        dry_run(&world, &file).await;
    }
}

/// `helm install --wait` of the chart: its CRDs established, its workloads available, its
/// NOTES saying what to do next; then every example resource in docs/examples passes the API
/// server's schema and CEL rules.
pub async fn chart_installs_with_its_crds_and_examples_validate(world: Arc<World>) {
    let output = world.install_chart().await;
    assert!(
        output.contains("kubectl get enp"),
        "NOTES lack the next steps:\n{output}"
    );
    let mut wait = world.cluster.kubectl();
    wait.args([
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/elasticnodepools.elasticyarn.io",
        "crd/staticippools.elasticyarn.io",
        "crd/staticips.elasticyarn.io",
    ]);
    run(wait).await;
    let mut get = world.cluster.kubectl();
    get.args([
        "get",
        "deployments,daemonsets,servicemonitors,podmonitors,networkpolicies,serviceaccounts",
        "--namespace",
        RELEASE_NAMESPACE,
        "-o",
        "json",
    ]);
    let installed: Value = serde_json::from_str(&run(get).await).expect("kubectl JSON");
    let items = installed["items"].as_array().expect("items");
    let names = |kind: &str| -> BTreeSet<String> {
        items
            .iter()
            .filter(|i| i["kind"] == kind)
            .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names("Deployment"),
        BTreeSet::from([
            "elastic-yarn-operator".to_owned(),
            "elastic-yarn-staticip".to_owned()
        ])
    );
    for deployment in items.iter().filter(|i| i["kind"] == "Deployment") {
        assert_eq!(
            deployment["status"]["availableReplicas"], deployment["spec"]["replicas"],
            "{} is not available",
            deployment["metadata"]["name"]
        );
    }
    assert_eq!(names("DaemonSet").len(), 1, "the exporter DaemonSet");
    assert!(!names("ServiceMonitor").is_empty(), "ServiceMonitors");
    assert!(!names("PodMonitor").is_empty(), "the guarders' PodMonitor");
    assert!(
        names("ServiceAccount").contains("elastic-yarn-operator")
            && names("ServiceAccount").contains("elastic-yarn-staticip"),
        "the controllers' ServiceAccounts"
    );

    world.namespace_if_missing("yarn").await;
    let mut examples = world.cluster.kubectl();
    examples
        .args(["apply", "--dry-run=server", "-f"])
        .arg(repository().join("docs/examples"));
    let applied = run(examples).await;
    assert!(
        applied.contains("elasticnodepool") && applied.contains("staticippool"),
        "examples: {applied}"
    );
}
