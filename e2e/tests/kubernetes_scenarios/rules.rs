//! The CRDs' own rules, enforced by the API server.

use std::sync::Arc;

use elastic_yarn_e2e::world::{World, output};
use serde_json::{Value, json};

/// Creates `object` with kubectl and returns what the API server answered, expecting a refusal.
async fn refused(world: &World, name: &str, object: &Value) -> String {
    let file = world.dir.join(format!("bad-{name}.json"));
    std::fs::write(&file, object.to_string()).expect("object file");
    let mut kubectl = world.cluster.kubectl();
    kubectl.args(["create", "-f"]).arg(&file);
    let answer = output(kubectl).await;
    assert!(
        !answer.status.success(),
        "{name}: the API server accepted a bad object"
    );
    String::from_utf8_lossy(&answer.stderr).into_owned()
}

fn pool(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "elasticyarn.io/v1alpha1",
        "kind": "ElasticNodePool",
        "metadata": {"name": name, "namespace": "e2e-rules"},
        "spec": spec,
    })
}

fn good_spec() -> Value {
    json!({
        "resourceManager": {"addresses": ["http://rm.example.com:8088"], "auth": {"mode": "Simple", "user": "yarn"}},
        "nodeManager": {"image": "apache/hadoop:3.4.1", "configMap": "hadoop-conf"},
        "capacity": {"ceiling": {"vcores": 8, "memoryMb": 32768}},
        "lifecycle": {"mode": "Resident"},
    })
}

/// Each CEL rule refuses its bad object with its own message; the good object is accepted.
pub async fn crd_rules_refuse_bad_objects_with_their_messages(world: Arc<World>) {
    world.install_chart().await;
    world.namespace("e2e-rules").await;
    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut floor_above = good_spec();
    floor_above["capacity"]["floor"] = json!({"vcores": 9, "memoryMb": 0});
    cases.push((
        "floor-above-ceiling",
        pool("floor-above-ceiling", floor_above),
        "capacity.floor.vcores must not exceed capacity.ceiling.vcores",
    ));
    let mut periodic = good_spec();
    periodic["lifecycle"] = json!({"mode": "Periodic"});
    cases.push((
        "periodic-without-windows",
        pool("periodic-without-windows", periodic),
        "lifecycle.periodic is required when lifecycle.mode is Periodic",
    ));
    let mut ports = good_spec();
    ports["nodeManager"]["ports"] = json!({"rpc": 8042, "web": 8042});
    cases.push((
        "same-ports",
        pool("same-ports", ports),
        "NodeManager ports must differ from each other",
    ));
    let mut prometheus = good_spec();
    prometheus["elasticity"] = json!({"metrics": {"source": "Prometheus"}});
    cases.push((
        "prometheus-without-url",
        pool("prometheus-without-url", prometheus),
        "metrics.prometheusUrl is required when metrics.source is Prometheus",
    ));
    let mut no_user = good_spec();
    // An absent user defaults to `yarn`; an empty one is what the rule refuses.
    no_user["resourceManager"]["auth"] = json!({"mode": "Simple", "user": ""});
    cases.push((
        "simple-without-user",
        pool("simple-without-user", no_user),
        "auth.user is required when auth.mode is Simple",
    ));
    for (name, hierarchy) in [
        ("cgroup-climbs-out", "/kubepods.slice/../../etc"),
        ("cgroup-relative", "hadoop-yarn"),
    ] {
        let mut cgroup = good_spec();
        cgroup["nodeManager"]["yarnCgroup"] = json!(hierarchy);
        cases.push((name, pool(name, cgroup), "spec.nodeManager.yarnCgroup"));
    }
    cases.push((
        "addresses-missing",
        json!({
            "apiVersion": "elasticyarn.io/v1alpha1",
            "kind": "StaticIPPool",
            "metadata": {"name": "e2e-no-addresses"},
            "spec": {"dnsZone": "nm.example.com", "secretNamespace": "e2e-rules"},
        }),
        "set cidr or ranges",
    ));
    for (name, object, message) in &cases {
        let answer = refused(&world, name, object).await;
        assert!(
            answer.contains(message),
            "{name}: wanted {message:?} in the API server's answer, got:\n{answer}"
        );
    }
    let mut good = good_spec();
    good["nodeManager"]["yarnCgroup"] =
        json!("/kubepods.slice/kubepods-besteffort.slice/hadoop-yarn");
    let file = world.dir.join("good-pool.json");
    std::fs::write(&file, pool("good", good).to_string()).expect("object file");
    let mut kubectl = world.cluster.kubectl();
    kubectl
        .args(["create", "--dry-run=server", "-f"])
        .arg(&file);
    let answer = output(kubectl).await;
    assert!(
        answer.status.success(),
        "the good pool was refused: {}",
        String::from_utf8_lossy(&answer.stderr)
    );
}
