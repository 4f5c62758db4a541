//! Reconcile scenarios against a scripted Kubernetes API (tower-test `mock::pair`): every
//! request's method, path, query and body is asserted and answered as the API server would.
//! The RM is the RM double on loopback and the guarder its real HTTP API, so that the order
//! "RM first, then guarder, then the pod" is checked too.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use elastic_yarn_operator::build::names::POOL_FINALIZER;
use elastic_yarn_operator::controller::keytabs::KeytabStore;
use elastic_yarn_operator::controller::metrics::OperatorMetrics;
use elastic_yarn_operator::controller::{Context, ControllerSettings, reconcile};
use elastic_yarn_operator::crd::{ElasticNodePool, LifecycleMode, OnDemandSpec};
use guarder::discovery::Scope;
use guarder::drain::DrainSettings;
use guarder::service::{Guarder, GuarderConfig};
use http::{Request, Response};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use yarn_rm::{NodeId, Resources};
use yarn_rm_double::{DoubleAuth, DoubleCluster, DoubleNode, RmDouble, Role};

const NODE_FIXTURE: &str = include_str!("fixtures/node.yaml");
const POOL: &str = include_str!("../../docs/examples/nightly-pool.yaml");
const TOKEN: &str = "t0k3n-of-the-pool";

use testkit::scripted::{Expect, Seen, list, not_found, sent, sent_nth, serve};

/// The NM pod the reconcile applied at `path`.
fn applied_pod(seen: &[Seen], path: &str) -> Pod {
    serde_json::from_value(sent(seen, "PATCH", path).body.clone()).expect("an applied pod")
}

fn node(name: &str) -> Value {
    let mut node: Node = serde_yaml::from_str(NODE_FIXTURE).expect("scenario step");
    node.metadata.name = Some(name.to_owned());
    serde_json::to_value(node).expect("scenario step")
}

struct Rig {
    rm: RmDouble,
    guarder: Arc<Mutex<Guarder>>,
    guarder_port: u16,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let rm = RmDouble::new(DoubleCluster::new(), Role::Active, DoubleAuth::Simple);
    let dir = tempfile::tempdir().expect("scenario step");
    let token_file: PathBuf = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("scenario step");
    let guarder = Arc::new(Mutex::new(Guarder::new(GuarderConfig {
        proc_root: PathBuf::from("/proc"),
        cgroups: None,
        scope: Scope::DescendantsOf(i32::MAX - 1),
        drain: DrainSettings::default(),
    })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("scenario step");
    let guarder_port = listener.local_addr().expect("scenario step").port();
    let router = guarder::server::router(
        guarder.clone(),
        token_file,
        controlkit::process::Clock::start(),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.expect("scenario step") });
    Rig {
        rm,
        guarder,
        guarder_port,
        _dir: dir,
    }
}

impl Rig {
    /// An NM registered with the RM double as its pod IP on loopback.
    fn registered_nm(&self, capacity: Resources) -> NodeId {
        let node_id: NodeId = "127.0.0.1:45454".parse().expect("a node id");
        self.rm
            .cluster()
            .add_node(DoubleNode::running(node_id.clone(), capacity));
        node_id
    }
}

/// The nightly example made Resident (or OnDemand), pointing at the RM double and the guarder.
async fn pool(rig: &Rig, mode: LifecycleMode, finalized: bool) -> ElasticNodePool {
    let (address, _task) = rig.rm.clone().spawn().await.expect("scenario step");
    let mut pool: ElasticNodePool = serde_yaml::from_str(POOL).expect("scenario step");
    pool.metadata.uid = Some("9b2e4f60-0000-4000-8000-00000000e1a5".to_owned());
    pool.metadata.generation = Some(3);
    pool.metadata.resource_version = Some("42".to_owned());
    if finalized {
        pool.metadata.finalizers = Some(vec![POOL_FINALIZER.to_owned()]);
    }
    pool.spec.resource_manager.addresses = vec![format!("http://{address}")];
    pool.spec.guarder.port = rig.guarder_port;
    pool.spec.lifecycle.mode = mode;
    if mode == LifecycleMode::OnDemand {
        pool.spec.lifecycle.on_demand = Some(OnDemandSpec { node_managers: 1 });
    }
    pool
}

fn context(client: Client) -> Arc<Context> {
    Arc::new(Context::new(
        client,
        ControllerSettings::default(),
        OperatorMetrics::default(),
        None,
        KeytabStore::new(None),
    ))
}

fn token_secret() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "nightly-guarder-token", "namespace": "yarn"},
        "type": "Opaque",
        "data": {"token": base64(TOKEN)}
    })
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// An NM pod as the API server returns it: scheduled, with a pod IP on loopback.
fn nm_pod(node: &str, drain_deadline: Option<&str>) -> Value {
    let name = elastic_yarn_operator::build::names::node_manager_pod_name("nightly", node);
    let mut annotations = json!({"elasticyarn.io/node": node});
    if let Some(deadline) = drain_deadline {
        annotations["elasticyarn.io/drain-deadline"] = json!(deadline);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "yarn", "annotations": annotations,
            "labels": {"elasticyarn.io/pool": "nightly", "app.kubernetes.io/component": "nodemanager"}
        },
        "spec": {"nodeName": node, "containers": [{"name": "nodemanager", "image": "x"}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1"}
    })
}

fn nodes_read(answer: Value) -> Expect {
    Expect {
        method: "GET",
        path: "/api/v1/nodes".to_owned(),
        query: None,
        status: 200,
        answer,
    }
}

fn pods_read(answer: Value) -> Expect {
    Expect {
        method: "GET",
        path: "/api/v1/namespaces/yarn/pods".to_owned(),
        query: Some(POD_SELECTOR),
        status: 200,
        answer,
    }
}

fn token_read() -> Expect {
    Expect {
        method: "GET",
        path: "/api/v1/namespaces/yarn/secrets/nightly-guarder-token".to_owned(),
        query: None,
        status: 200,
        answer: token_secret(),
    }
}

fn status_patch(pool: &ElasticNodePool) -> Expect {
    Expect {
        method: "PATCH",
        path: "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status"
            .to_owned(),
        query: None,
        status: 200,
        answer: serde_json::to_value(pool).expect("a pool serializes"),
    }
}

/// The nightly pool uses Uniffle: each full pass ends by publishing its Spark settings.
fn spark_defaults_apply() -> Expect {
    Expect {
        method: "PATCH",
        path: "/api/v1/namespaces/yarn/configmaps/nightly-spark-defaults".to_owned(),
        query: Some("&force=true&fieldManager=elastic-yarn-operator"),
        status: 200,
        answer: json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "nightly-spark-defaults", "namespace": "yarn"}}),
    }
}

const POD_SELECTOR: &str =
    "&labelSelector=elasticyarn.io%2Fpool%3Dnightly%2Capp.kubernetes.io%2Fcomponent%3Dnodemanager";

#[tokio::test]
async fn first_reconcile_adds_the_finalizer_and_waits() {
    let rig = rig().await;
    let pool = pool(&rig, LifecycleMode::Resident, false).await;
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let mut answered = serde_json::to_value(&pool).expect("scenario step");
    answered["metadata"]["finalizers"] = json!([POOL_FINALIZER]);
    let server = tokio::spawn(serve(
        handle,
        vec![Expect {
            method: "PATCH",
            path: "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly"
                .to_owned(),
            query: None,
            status: 200,
            answer: answered,
        }],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("scenario step");
    let seen = server.await.expect("scenario step");
    let sent_pool_patch = sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly",
    );
    assert_eq!(sent_pool_patch.content_type, "application/json-patch+json");
    assert_eq!(
        sent_pool_patch.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [POOL_FINALIZER]}
        ])
    );
}

#[tokio::test]
async fn create_makes_the_token_secret_and_one_pod_per_eligible_node_then_reports() {
    let rig = rig().await;
    let pool = pool(&rig, LifecycleMode::Resident, true).await;
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let pod_name = elastic_yarn_operator::build::names::node_manager_pod_name(
        "nightly",
        "worker-7.dc1.example.com",
    );
    let mut off_label = serde_json::from_value::<Node>(node("worker-8")).expect("scenario step");
    off_label
        .metadata
        .labels
        .as_mut()
        .expect("scenario step")
        .remove("node-role.example.com/online");
    let server = tokio::spawn(serve(
        handle,
        vec![
            Expect {
                method: "GET",
                path: "/api/v1/nodes".to_owned(),
                query: Some(""),
                status: 200,
                answer: list(
                    "NodeList",
                    vec![
                        node("worker-7.dc1.example.com"),
                        serde_json::to_value(off_label).expect("scenario step"),
                    ],
                ),
            },
            Expect {
                method: "GET",
                path: "/api/v1/namespaces/yarn/pods".to_owned(),
                query: Some(POD_SELECTOR),
                status: 200,
                answer: list("PodList", vec![]),
            },
            Expect {
                method: "GET",
                path: "/api/v1/namespaces/yarn/secrets/nightly-guarder-token".to_owned(),
                query: None,
                status: 404,
                answer: not_found("secrets", "nightly-guarder-token"),
            },
            Expect {
                method: "PATCH",
                path: "/api/v1/namespaces/yarn/secrets/nightly-guarder-token".to_owned(),
                query: Some("&force=true&fieldManager=elastic-yarn-operator"),
                status: 200,
                answer: token_secret(),
            },
            Expect {
                method: "PATCH",
                path: format!("/api/v1/namespaces/yarn/pods/{pod_name}"),
                query: Some("&force=true&fieldManager=elastic-yarn-operator"),
                status: 201,
                answer: nm_pod("worker-7.dc1.example.com", None),
            },
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    let action = reconcile(Arc::new(pool.clone()), ctx)
        .await
        .expect("scenario step");
    let seen = server.await.expect("scenario step");
    let sent_secret_patch = sent(
        &seen,
        "PATCH",
        "/api/v1/namespaces/yarn/secrets/nightly-guarder-token",
    );
    let sent_status_patch = sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status",
    );

    // The token Secret: server-side apply, a fresh 48-character token, owned by the pool.
    assert_eq!(
        sent_secret_patch.content_type,
        "application/apply-patch+yaml"
    );
    let token = sent_secret_patch.body["data"]["token"]
        .as_str()
        .expect("scenario step");
    assert_eq!(token.len(), 64, "48 bytes in base64");
    assert_eq!(
        sent_secret_patch.body["metadata"]["ownerReferences"][0]["uid"],
        "9b2e4f60-0000-4000-8000-00000000e1a5"
    );
    // One pod, for the eligible node only, exactly as the build step makes it.
    let pod: Pod = applied_pod(
        &seen,
        "/api/v1/namespaces/yarn/pods/nightly-nm-worker-7-dc1-example-com-ce66b837",
    );
    assert_eq!(pod.metadata.name.as_deref(), Some(pod_name.as_str()));
    let expected = elastic_yarn_operator::build::node_manager_pod(
        &elastic_yarn_operator::build::PoolRef::of(&pool).expect("scenario step"),
        &pool.spec,
        &elastic_yarn_operator::build::BuildSettings::default(),
        &elastic_yarn_operator::build::NodeManagerSlot {
            node: "worker-7.dc1.example.com".to_owned(),
            static_address: None,
            drain_deadline: None,
        },
    );
    assert_eq!(pod, expected);
    // Status: merge patch, Online, RM reachable, the pod not yet registered (Starting).
    assert_eq!(
        sent_status_patch.content_type,
        "application/merge-patch+json"
    );
    let status = &sent_status_patch.body["status"];
    assert_eq!(status["phase"], "Online");
    assert_eq!(status["observedGeneration"], 3);
    let conditions: Vec<(String, String)> = status["conditions"]
        .as_array()
        .expect("scenario step")
        .iter()
        .map(|c| {
            (
                c["type"].as_str().expect("scenario step").to_owned(),
                c["status"].as_str().expect("scenario step").to_owned(),
            )
        })
        .collect();
    assert!(conditions.contains(&("ResourceManagerReachable".to_owned(), "True".to_owned())));
    assert!(conditions.contains(&("Ready".to_owned(), "True".to_owned())));
    // The RM now has the pool's label, non-exclusive.
    assert_eq!(rig.rm.cluster().labels().get("elastic"), Some(&false));
    assert_eq!(
        format!("{action:?}"),
        format!(
            "{:?}",
            kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(60))
        )
    );
    // Last, the Spark settings for jobs on this Uniffle pool, applied like every child.
    let config = seen.last().expect("the ConfigMap apply");
    assert_eq!(config.content_type, "application/apply-patch+yaml");
    let text = config.body["data"]["spark-defaults.conf"]
        .as_str()
        .expect("spark-defaults.conf");
    assert!(text.contains("spark.shuffle.manager org.apache.spark.shuffle.RssShuffleManager\n"));
    assert!(text.contains("spark.shuffle.service.enabled false\n"));
    assert_eq!(
        config.body["metadata"]["ownerReferences"][0]["kind"],
        "ElasticNodePool"
    );
}

#[tokio::test]
async fn drift_is_corrected_and_registered_nms_get_the_label() {
    let rig = rig().await;
    rig.registered_nm(Resources {
        memory_mb: 8192,
        vcores: 2,
    });
    let pool = pool(&rig, LifecycleMode::Resident, true).await;
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    // Someone edited the pod's labels by hand.
    let mut drifted = nm_pod("worker-7.dc1.example.com", None);
    drifted["metadata"]["labels"]["app.kubernetes.io/component"] = json!("nodemanager");
    drifted["metadata"]["labels"]["edited"] = json!("by-hand");
    let pod_name = drifted["metadata"]["name"]
        .as_str()
        .expect("scenario step")
        .to_owned();
    let server = tokio::spawn(serve(
        handle,
        vec![
            nodes_read(list("NodeList", vec![node("worker-7.dc1.example.com")])),
            pods_read(list("PodList", vec![drifted])),
            token_read(),
            Expect {
                method: "PATCH",
                path: format!("/api/v1/namespaces/yarn/pods/{pod_name}"),
                query: Some("&force=true&fieldManager=elastic-yarn-operator"),
                status: 200,
                answer: nm_pod("worker-7.dc1.example.com", None),
            },
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("scenario step");
    let seen = server.await.expect("scenario step");
    let sent_pod_patch = sent(
        &seen,
        "PATCH",
        "/api/v1/namespaces/yarn/pods/nightly-nm-worker-7-dc1-example-com-ce66b837",
    );
    // Server-side apply sends the whole desired pod; fields we own return to our values.
    assert_eq!(
        sent_pod_patch.body["metadata"]["labels"].get("edited"),
        None
    );
    assert_eq!(
        sent_pod_patch.body["metadata"]["labels"]["app.kubernetes.io/component"],
        "nodemanager"
    );
    // The NM registered as its pod IP and got the pool's label on the RM.
    let writes = rig.rm.writes();
    let label_write = writes
        .iter()
        .find(|w| w.path.ends_with("/replace-node-to-labels"))
        .expect("labels set");
    assert_eq!(
        serde_json::from_str::<Value>(&label_write.body).expect("scenario step"),
        json!({"nodeToLabels": [{"nodeId": "127.0.0.1:45454", "labels": ["elastic"]}]})
    );
    let row = &sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status",
    )
    .body["status"]["nodeManagers"][0];
    assert_eq!(row["state"], "Running");
    assert_eq!(row["yarnNodeId"], "127.0.0.1:45454");
    assert_eq!(row["capacity"], json!({"vcores": 2, "memoryMb": 8192}));
}

#[tokio::test]
async fn a_node_that_leaves_loses_its_label_and_pod() {
    let rig = rig().await;
    rig.registered_nm(Resources {
        memory_mb: 8192,
        vcores: 2,
    });
    let pool = pool(&rig, LifecycleMode::Resident, true).await;
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let gone = nm_pod("worker-gone", None);
    let pod_name = gone["metadata"]["name"]
        .as_str()
        .expect("scenario step")
        .to_owned();
    let server = tokio::spawn(serve(
        handle,
        vec![
            nodes_read(list("NodeList", vec![])),
            pods_read(list("PodList", vec![gone.clone()])),
            token_read(),
            Expect {
                method: "DELETE",
                path: format!("/api/v1/namespaces/yarn/pods/{pod_name}"),
                query: None,
                status: 200,
                answer: gone,
            },
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("scenario step");
    let seen = server.await.expect("scenario step");
    // The pod was deleted (`sent` fails the test otherwise).
    sent(
        &seen,
        "DELETE",
        "/api/v1/namespaces/yarn/pods/nightly-nm-worker-gone",
    );
    let status = &sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status",
    )
    .body["status"];
    assert_eq!(status["phase"], "Pending");
    assert_eq!(status["nodeManagers"], Value::Null);
    let writes = rig.rm.writes();
    assert_eq!(
        serde_json::from_str::<Value>(&writes.last().expect("scenario step").body)
            .expect("scenario step"),
        json!({"nodeToLabels": [{"nodeId": "127.0.0.1:45454", "labels": []}]})
    );
}

#[tokio::test]
async fn scale_down_drains_rm_first_then_guarder_then_marks_the_pod() {
    let rig = rig().await;
    let node_id = rig.registered_nm(Resources {
        memory_mb: 16_384,
        vcores: 4,
    });
    rig.rm.cluster().set_used(
        &node_id,
        Resources {
            memory_mb: 4096,
            vcores: 1,
        },
        1,
    );
    // OnDemand with one NM wanted, two running: the second by name order drains.
    let pool = pool(&rig, LifecycleMode::OnDemand, true).await;
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let keep = nm_pod("worker-a", None);
    let mut leave = nm_pod("worker-b", None);
    leave["status"]["podIP"] = json!("127.0.0.1");
    let mut keep_other_ip = keep.clone();
    keep_other_ip["status"]["podIP"] = json!("127.0.0.2");
    let leave_name = leave["metadata"]["name"]
        .as_str()
        .expect("scenario step")
        .to_owned();
    let keep_name = keep["metadata"]["name"]
        .as_str()
        .expect("scenario step")
        .to_owned();
    let server = tokio::spawn(serve(
        handle,
        vec![
            nodes_read(list("NodeList", vec![node("worker-a"), node("worker-b")])),
            pods_read(list("PodList", vec![keep_other_ip, leave])),
            token_read(),
            Expect {
                method: "PATCH",
                path: format!("/api/v1/namespaces/yarn/pods/{keep_name}"),
                query: None,
                status: 200,
                answer: keep,
            },
            Expect {
                method: "PATCH",
                path: format!("/api/v1/namespaces/yarn/pods/{leave_name}"),
                query: None,
                status: 200,
                answer: nm_pod("worker-b", Some("2026-11-24T12:01:00Z")),
            },
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    let before = jiff::Timestamp::now();
    reconcile(Arc::new(pool), ctx).await.expect("scenario step");
    let seen = server.await.expect("scenario step");
    let sent_pod_patch = sent(
        &seen,
        "PATCH",
        "/api/v1/namespaces/yarn/pods/nightly-nm-worker-b",
    );
    // The RM got capacity zero for the leaving NM ...
    assert_eq!(
        rig.rm
            .cluster()
            .node(&node_id)
            .expect("scenario step")
            .capacity,
        Resources::default()
    );
    // ... and the guarder a zero target due at the drain deadline (the grace period, 60 s).
    let target = rig
        .guarder
        .lock()
        .expect("scenario step")
        .status()
        .target
        .expect("a target");
    assert_eq!((target.vcores, target.memory_mb), (0, 0));
    assert!(target.reason.contains("scale_down"), "{}", target.reason);
    // Only then is the pod marked, with a merge patch of the annotation alone.
    assert_eq!(sent_pod_patch.content_type, "application/merge-patch+json");
    let deadline: jiff::Timestamp =
        sent_pod_patch.body["metadata"]["annotations"]["elasticyarn.io/drain-deadline"]
            .as_str()
            .expect("scenario step")
            .parse()
            .expect("scenario step");
    let grace = deadline.duration_since(before).as_secs();
    assert!(
        (59..=61).contains(&grace),
        "deadline {grace} s after the reconcile"
    );
    assert_eq!(
        sent(
            &seen,
            "PATCH",
            "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status"
        )
        .body["status"]["phase"],
        "Online"
    );
}

#[tokio::test]
async fn deleting_the_pool_removes_its_labels_then_its_finalizer() {
    let rig = rig().await;
    rig.registered_nm(Resources {
        memory_mb: 8192,
        vcores: 2,
    });
    let mut pool = pool(&rig, LifecycleMode::Resident, true).await;
    pool.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now(),
    ));
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let mut answered = serde_json::to_value(&pool).expect("scenario step");
    answered["metadata"]["finalizers"] = json!([]);
    let server = tokio::spawn(serve(
        handle,
        vec![
            pods_read(list(
                "PodList",
                vec![nm_pod("worker-7.dc1.example.com", None)],
            )),
            Expect {
                method: "PATCH",
                path: "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly"
                    .to_owned(),
                query: None,
                status: 200,
                answer: answered,
            },
        ],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("scenario step");
    let seen = server.await.expect("scenario step");
    assert_eq!(
        sent(
            &seen,
            "PATCH",
            "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly"
        )
        .body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": POOL_FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ])
    );
    let writes = rig.rm.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&writes[0].body).expect("scenario step"),
        json!({"nodeToLabels": [{"nodeId": "127.0.0.1:45454", "labels": []}]})
    );
}

#[tokio::test]
async fn an_invalid_spec_is_reported_and_waits_for_a_change() {
    let rig = rig().await;
    let mut pool = pool(&rig, LifecycleMode::Periodic, true).await;
    pool.spec
        .lifecycle
        .periodic
        .as_mut()
        .expect("scenario step")
        .time_zone = "Mars/Olympus".to_owned();
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let server = tokio::spawn(serve(
        handle,
        vec![Expect {
            method: "PATCH",
            path: "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status"
                .to_owned(),
            query: None,
            status: 200,
            answer: serde_json::to_value(&pool).expect("scenario step"),
        }],
    ));
    let action = reconcile(Arc::new(pool), ctx).await.expect("scenario step");
    let seen = server.await.expect("scenario step");
    let status = &sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status",
    )
    .body["status"];
    assert_eq!(status["phase"], "Degraded");
    assert_eq!(status["conditions"][0]["reason"], "UnknownTimeZone");
    assert!(
        status["conditions"][0]["message"]
            .as_str()
            .expect("scenario step")
            .contains("Mars/Olympus")
    );
    assert_eq!(
        format!("{action:?}"),
        format!("{:?}", kube::runtime::controller::Action::await_change())
    );
    assert!(rig.rm.requests().is_empty(), "nothing reaches the RM");
}

fn static_ip_pool() -> staticip::crd::StaticIPPool {
    serde_yaml::from_str(
        "apiVersion: elasticyarn.io/v1alpha1\nkind: StaticIPPool\nmetadata: {name: nm-addresses}\n\
         spec: {cidr: 10.42.8.0/29, dnsZone: yarn.example.com, secretNamespace: yarn, cni: {style: KubeOvn}}\n",
    )
    .expect("StaticIPPool")
}

fn static_ip_pool_read(status: u16, answer: Value) -> Expect {
    Expect {
        method: "GET",
        path: "/apis/elasticyarn.io/v1alpha1/staticippools/nm-addresses".to_owned(),
        query: None,
        status,
        answer,
    }
}

#[tokio::test]
async fn a_missing_static_ip_pool_keeps_nodemanagers_off_pod_ips() {
    let rig = rig().await;
    let mut pool = pool(&rig, LifecycleMode::Resident, true).await;
    pool.spec.static_ip = Some(elastic_yarn_operator::crd::StaticIpRef {
        pool: "nm-addresses".to_owned(),
    });
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let server = tokio::spawn(serve(
        handle,
        vec![
            static_ip_pool_read(404, not_found("staticippools", "nm-addresses")),
            status_patch(&pool),
        ],
    ));
    let action = reconcile(Arc::new(pool), ctx).await.expect("reconciled");
    let seen = server.await.expect("served");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(60)),
        "looks again for the StaticIPPool"
    );
    let ready = &sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status",
    )
    .body["status"]["conditions"][0];
    assert_eq!(ready["reason"], "StaticIpPoolMissing");
    assert!(
        ready["message"]
            .as_str()
            .expect("message")
            .contains("nm-addresses")
    );
    assert!(
        rig.rm.requests().is_empty(),
        "no NM is made on the wrong address"
    );
}

/// A Resident pool on the StaticIPPool `nm-addresses`, that pool, and its addresses as the
/// staticip controller makes them (not ready yet).
async fn static_ip_setup(
    rig: &Rig,
) -> (
    ElasticNodePool,
    staticip::crd::StaticIPPool,
    Vec<staticip::crd::StaticIP>,
) {
    let mut pool = pool(rig, LifecycleMode::Resident, true).await;
    pool.spec.static_ip = Some(elastic_yarn_operator::crd::StaticIpRef {
        pool: "nm-addresses".to_owned(),
    });
    let static_pool = static_ip_pool();
    let addresses = staticip::addresses::plan("nm-addresses", &static_pool.spec)
        .expect("plan")
        .iter()
        .map(|planned| staticip::build::static_ip(&static_pool, planned))
        .collect();
    (pool, static_pool, addresses)
}

/// What a reconcile of a static-address pool reads before it claims: the StaticIPPool, the
/// Nodes (`worker`), no pod yet, the guarder token, the pool's addresses.
fn reads_up_to_the_claims(
    static_pool: &staticip::crd::StaticIPPool,
    worker: &str,
    addresses: Vec<Value>,
) -> Vec<Expect> {
    vec![
        static_ip_pool_read(200, serde_json::to_value(static_pool).expect("json")),
        nodes_read(list("NodeList", vec![node(worker)])),
        pods_read(list("PodList", vec![])),
        token_read(),
        Expect {
            method: "GET",
            path: "/apis/elasticyarn.io/v1alpha1/staticips".to_owned(),
            query: Some("&labelSelector=elasticyarn.io%2Fstatic-ip-pool%3Dnm-addresses"),
            status: 200,
            answer: list("StaticIPList", addresses),
        },
    ]
}

#[tokio::test]
async fn an_exhausted_static_ip_pool_starts_no_nodemanager_on_a_pod_ip() {
    let rig = rig().await;
    let (pool, static_pool, addresses) = static_ip_setup(&rig).await;
    // Every address exists, none has its DNS records and keytab yet.
    let addresses: Vec<serde_json::Value> = addresses
        .iter()
        .map(|address| serde_json::to_value(address).expect("json"))
        .collect();
    let worker = "worker-7.dc1.example.com";
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    // No pod write between the address list and the status: the script fails on one.
    let mut script = reads_up_to_the_claims(&static_pool, worker, addresses);
    script.extend([status_patch(&pool), spark_defaults_apply()]);
    let server = tokio::spawn(serve(handle, script));
    let action = reconcile(Arc::new(pool), ctx).await.expect("reconciled");
    let seen = server.await.expect("served");
    let status = &sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status",
    )
    .body["status"];
    assert_eq!(status["totals"]["nodeManagers"], 0, "{status}");
    // The pool says why it runs nothing, not only an Event.
    let ready = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .expect("a Ready condition");
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (
            &serde_json::json!("False"),
            &serde_json::json!("StaticIpExhausted")
        ),
        "{status}"
    );
    // Nothing watches StaticIPs for the operator: it looks again soon.
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(30))
    );
}

#[tokio::test]
async fn a_static_ip_pool_gives_each_nodemanager_a_claimed_address() {
    let rig = rig().await;
    let (pool, static_pool, mut addresses) = static_ip_setup(&rig).await;
    for (i, address) in addresses.iter_mut().enumerate() {
        address.metadata.resource_version = Some(format!("7{i}"));
        address.status = Some(staticip::crd::StaticIPStatus {
            dns_ready: true,
            ready: true,
            ..Default::default()
        });
    }
    let worker = "worker-7.dc1.example.com";
    let identity = format!("yarn/nightly/{worker}");
    let chosen = match staticip::claim::choose(&addresses, &identity) {
        staticip::claim::Choice::Take(index) => addresses[index].clone(),
        other => panic!("{other:?}"),
    };
    let chosen_name = chosen.metadata.name.clone().expect("name");
    let mut claimed = chosen.clone();
    claimed.status = Some(staticip::crd::StaticIPStatus {
        phase: staticip::crd::AddressPhase::Claimed,
        ..chosen.state()
    });
    let pod_name = elastic_yarn_operator::build::names::node_manager_pod_name("nightly", worker);
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let listed = addresses
        .iter()
        .map(|a| serde_json::to_value(a).expect("json"))
        .collect();
    let mut script = reads_up_to_the_claims(&static_pool, worker, listed);
    script.extend([
        Expect {
            method: "PUT",
            path: format!("/apis/elasticyarn.io/v1alpha1/staticips/{chosen_name}/status"),
            query: None,
            status: 200,
            answer: serde_json::to_value(&claimed).expect("json"),
        },
        Expect {
            method: "PATCH",
            path: format!("/api/v1/namespaces/yarn/pods/{pod_name}"),
            query: Some("&force=true&fieldManager=elastic-yarn-operator"),
            status: 201,
            answer: nm_pod(worker, None),
        },
        status_patch(&pool),
        spark_defaults_apply(),
    ]);
    let server = tokio::spawn(serve(handle, script));
    reconcile(Arc::new(pool), ctx).await.expect("reconciled");
    let seen = server.await.expect("served");
    // The claim: the address read, guarded by its resourceVersion, held for this NM's pod.
    let put = &sent(
        &seen,
        "PUT",
        "/apis/elasticyarn.io/v1alpha1/staticips/nm-addresses-10-42-8-2/status",
    )
    .body;
    assert_eq!(
        put["metadata"]["resourceVersion"],
        chosen.metadata.resource_version.clone().expect("rv")
    );
    assert_eq!(put["status"]["phase"], "Claimed");
    assert_eq!(put["status"]["holder"]["identity"], identity.as_str());
    assert_eq!(put["status"]["holder"]["pod"], pod_name.as_str());
    // The pod asks Kube-OVN for the address and registers with YARN by its FQDN.
    let pod: Pod = applied_pod(
        &seen,
        "/api/v1/namespaces/yarn/pods/nightly-nm-worker-7-dc1-example-com-ce66b837",
    );
    let annotations = pod.metadata.annotations.clone().expect("annotations");
    assert_eq!(
        annotations["ovn.kubernetes.io/ip_address"],
        chosen.spec.address
    );
    assert_eq!(
        annotations["elasticyarn.io/yarn-node-id"],
        format!("{}:45454", chosen.spec.fqdn)
    );
    assert_eq!(
        pod.spec.as_ref().and_then(|s| s.hostname.clone()),
        Some(chosen.spec.host_name.clone())
    );
}

#[tokio::test]
async fn a_running_nodemanager_binds_its_address_and_a_removed_one_releases_it() {
    let rig = rig().await;
    let mut pool = pool(&rig, LifecycleMode::Resident, true).await;
    pool.spec.static_ip = Some(elastic_yarn_operator::crd::StaticIpRef {
        pool: "nm-addresses".to_owned(),
    });
    let static_pool = static_ip_pool();
    let mut addresses: Vec<staticip::crd::StaticIP> =
        staticip::addresses::plan("nm-addresses", &static_pool.spec)
            .expect("plan")
            .iter()
            .take(2)
            .map(|planned| staticip::build::static_ip(&static_pool, planned))
            .collect();
    let (worker, gone) = ("worker-7.dc1.example.com", "worker-gone");
    for (address, node) in addresses.iter_mut().zip([worker, gone]) {
        address.metadata.resource_version = Some("50".to_owned());
        address.status = Some(staticip::crd::StaticIPStatus {
            phase: staticip::crd::AddressPhase::Claimed,
            holder: Some(staticip::crd::Holder {
                identity: format!("yarn/nightly/{node}"),
                namespace: "yarn".to_owned(),
                pod: elastic_yarn_operator::build::names::node_manager_pod_name("nightly", node),
                uid: None,
            }),
            ready: true,
            ..Default::default()
        });
    }
    let listed = || Expect {
        method: "GET",
        path: "/apis/elasticyarn.io/v1alpha1/staticips".to_owned(),
        query: None,
        status: 200,
        answer: list(
            "StaticIPList",
            addresses
                .iter()
                .map(|a| serde_json::to_value(a).expect("json"))
                .collect(),
        ),
    };
    let put = |i: usize| Expect {
        method: "PUT",
        path: format!(
            "/apis/elasticyarn.io/v1alpha1/staticips/{}/status",
            addresses[i].metadata.name.clone().expect("name")
        ),
        query: None,
        status: 200,
        answer: serde_json::to_value(&addresses[i]).expect("json"),
    };
    // The running NM's pod has the address it claimed; the other's node is gone.
    let mut running = nm_pod(worker, None);
    running["metadata"]["uid"] = json!("pod-uid-7");
    running["status"]["podIP"] = json!(addresses[0].spec.address);
    let leaving = nm_pod(gone, None);
    let pod_name =
        |node: &str| elastic_yarn_operator::build::names::node_manager_pod_name("nightly", node);
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let server = tokio::spawn(serve(
        handle,
        vec![
            static_ip_pool_read(200, serde_json::to_value(&static_pool).expect("json")),
            nodes_read(list("NodeList", vec![node(worker)])),
            pods_read(list("PodList", vec![running.clone(), leaving.clone()])),
            token_read(),
            // The claim finds the address this NM holds: no write.
            listed(),
            Expect {
                method: "PATCH",
                path: format!("/api/v1/namespaces/yarn/pods/{}", pod_name(worker)),
                query: Some("&force=true&fieldManager=elastic-yarn-operator"),
                status: 200,
                answer: running,
            },
            // Bound to the running pod.
            listed(),
            put(0),
            Expect {
                method: "DELETE",
                path: format!("/api/v1/namespaces/yarn/pods/{}", pod_name(gone)),
                query: None,
                status: 200,
                answer: leaving,
            },
            // Released once the pod is deleted.
            listed(),
            put(1),
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("reconciled");
    let seen = server.await.expect("served");
    let bound = &sent(
        &seen,
        "PUT",
        "/apis/elasticyarn.io/v1alpha1/staticips/nm-addresses-10-42-8-1/status",
    )
    .body;
    assert_eq!(bound["status"]["phase"], "Bound");
    assert_eq!(bound["status"]["holder"]["uid"], "pod-uid-7");
    assert_eq!(bound["metadata"]["resourceVersion"], "50");
    // The pod was deleted (`sent` fails the test otherwise).
    sent(
        &seen,
        "DELETE",
        "/api/v1/namespaces/yarn/pods/nightly-nm-worker-gone",
    );
    let released = &sent(
        &seen,
        "PUT",
        "/apis/elasticyarn.io/v1alpha1/staticips/nm-addresses-10-42-8-2/status",
    )
    .body;
    assert_eq!(released["status"]["phase"], "Free");
    assert_eq!(released["status"]["holder"], Value::Null);
    assert_eq!(released["status"]["lastHolder"], "yarn/nightly/worker-gone");
}

fn dataset_read(phase: Option<&str>) -> Expect {
    let mut dataset = json!({
        "apiVersion": "data.fluid.io/v1alpha1", "kind": "Dataset",
        "metadata": {"name": "tpcds-1t", "namespace": "yarn"},
        "spec": {"mounts": [{"mountPoint": "s3://warehouse/tpcds-1t", "name": "tpcds"}]}
    });
    if let Some(phase) = phase {
        dataset["status"] = json!({"phase": phase});
    }
    Expect {
        method: "GET",
        path: "/apis/data.fluid.io/v1alpha1/namespaces/yarn/datasets/tpcds-1t".to_owned(),
        query: None,
        status: 200,
        answer: dataset,
    }
}

#[tokio::test]
async fn no_node_manager_starts_before_its_fluid_dataset_is_bound() {
    let rig = rig().await;
    let mut pool = pool(&rig, LifecycleMode::Resident, true).await;
    pool.spec.datasets = vec![elastic_yarn_operator::crd::DatasetMount {
        name: "tpcds-1t".to_owned(),
        mount_path: "/data/tpcds".to_owned(),
        cache: None,
    }];
    let worker = "worker-7.dc1.example.com";
    let pod_name = elastic_yarn_operator::build::names::node_manager_pod_name("nightly", worker);

    // Not bound: no pod, and the status says why.
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let server = tokio::spawn(serve(
        handle,
        vec![
            nodes_read(list("NodeList", vec![node(worker)])),
            pods_read(list("PodList", vec![])),
            dataset_read(Some("NotBound")),
            token_read(),
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    let action = reconcile(Arc::new(pool.clone()), ctx)
        .await
        .expect("reconciled");
    let seen = server.await.expect("served");
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(30)),
        "looks again soon: nothing watches Datasets"
    );
    let conditions = sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status",
    )
    .body["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .clone();
    let by_type = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t)
            .expect("condition")
            .clone()
    };
    assert_eq!(by_type("DatasetsReady")["reason"], "DatasetNotBound");
    assert!(
        by_type("DatasetsReady")["message"]
            .as_str()
            .expect("message")
            .contains("tpcds-1t (NotBound)")
    );
    assert_eq!(by_type("Ready")["reason"], "DatasetsNotReady");

    // Bound: the NM pod is made, with the dataset's PVC mounted.
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let server = tokio::spawn(serve(
        handle,
        vec![
            nodes_read(list("NodeList", vec![node(worker)])),
            pods_read(list("PodList", vec![])),
            dataset_read(Some("Bound")),
            token_read(),
            Expect {
                method: "PATCH",
                path: format!("/api/v1/namespaces/yarn/pods/{pod_name}"),
                query: Some("&force=true&fieldManager=elastic-yarn-operator"),
                status: 201,
                answer: nm_pod(worker, None),
            },
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("reconciled");
    let seen = server.await.expect("served");
    let pod: Pod = applied_pod(
        &seen,
        "/api/v1/namespaces/yarn/pods/nightly-nm-worker-7-dc1-example-com-ce66b837",
    );
    let claims: Vec<String> = pod
        .spec
        .and_then(|s| s.volumes)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.persistent_volume_claim.map(|c| c.claim_name))
        .collect();
    assert_eq!(claims, ["tpcds-1t"]);
    let conditions = sent(
        &seen,
        "PATCH",
        "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status",
    )
    .body["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .clone();
    let ready = conditions
        .iter()
        .find(|c| c["type"] == "DatasetsReady")
        .expect("DatasetsReady");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("True"), Some("Bound"))
    );
}

#[tokio::test]
async fn a_periodic_pools_cache_warms_up_before_its_window_with_a_data_load() {
    let rig = rig().await;
    let mut pool = pool(&rig, LifecycleMode::Periodic, true).await;
    // A window that opens in under five minutes (UTC), so the 10-minute warm-up has begun.
    let at = |minutes: i64| {
        let t = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_mins(minutes))
            .expect("time")
            .to_zoned(jiff::tz::TimeZone::UTC);
        format!("{} {} * * *", t.minute(), t.hour())
    };
    let periodic = serde_json::json!({
        "timeZone": "UTC",
        "windows": [{"online": at(5), "drainStart": at(120), "offline": at(180)}],
    });
    pool.spec.lifecycle.periodic = Some(serde_json::from_value(periodic).expect("periodic"));
    pool.spec.datasets = vec![elastic_yarn_operator::crd::DatasetMount {
        name: "tpcds-1t".to_owned(),
        mount_path: "/data/tpcds".to_owned(),
        cache: Some(elastic_yarn_operator::crd::DatasetCacheSpec {
            runtime: elastic_yarn_operator::crd::FluidRuntimeKind::AlluxioRuntime,
            replicas: 3,
            warm_up_seconds: 600,
            data_load: true,
        }),
    }];
    let scale = |replicas: i32| {
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
               "metadata": {"name": "tpcds-1t", "namespace": "yarn"},
               "spec": {"replicas": replicas}, "status": {"replicas": replicas}})
    };
    let scale_path = "/apis/data.fluid.io/v1alpha1/namespaces/yarn/alluxioruntimes/tpcds-1t/scale";
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let server = tokio::spawn(serve(
        handle,
        vec![
            nodes_read(list("NodeList", vec![node("worker-7.dc1.example.com")])),
            pods_read(list("PodList", vec![])),
            dataset_read(Some("Bound")),
            token_read(),
            Expect {
                method: "GET",
                path: scale_path.to_owned(),
                query: None,
                status: 200,
                answer: scale(0),
            },
            Expect {
                method: "PATCH",
                path: scale_path.to_owned(),
                query: None,
                status: 200,
                answer: scale(3),
            },
            Expect {
                method: "POST",
                path: "/apis/data.fluid.io/v1alpha1/namespaces/yarn/dataloads".to_owned(),
                query: None,
                status: 201,
                answer: json!({"apiVersion": "data.fluid.io/v1alpha1", "kind": "DataLoad",
                               "metadata": {"name": "tpcds-1t-warm-up", "namespace": "yarn"}}),
            },
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("reconciled");
    let seen = server.await.expect("served");
    let sent_scale_patch = sent(
        &seen,
        "PATCH",
        "/apis/data.fluid.io/v1alpha1/namespaces/yarn/alluxioruntimes/tpcds-1t/scale",
    );
    assert_eq!(
        sent_scale_patch.content_type,
        "application/merge-patch+json"
    );
    assert_eq!(sent_scale_patch.body, json!({"spec": {"replicas": 3}}));
    let load = &sent(
        &seen,
        "POST",
        "/apis/data.fluid.io/v1alpha1/namespaces/yarn/dataloads",
    )
    .body;
    assert_eq!(load["kind"], "DataLoad");
    assert_eq!(
        load["spec"]["dataset"],
        json!({"name": "tpcds-1t", "namespace": "yarn"})
    );
    assert_eq!(
        load["metadata"]["ownerReferences"][0]["kind"],
        "ElasticNodePool"
    );
    assert!(
        load["metadata"]["name"]
            .as_str()
            .expect("name")
            .starts_with("tpcds-1t-warm-up-")
    );
    // Still outside the window: no NodeManager yet.
    assert_eq!(
        sent(
            &seen,
            "PATCH",
            "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status"
        )
        .body["status"]["phase"],
        "Offline"
    );
}

#[tokio::test]
async fn a_spec_change_a_running_pod_refuses_drains_it_for_recreation() {
    let rig = rig().await;
    let node_id = rig.registered_nm(Resources {
        memory_mb: 8192,
        vcores: 2,
    });
    let mut pool = pool(&rig, LifecycleMode::Resident, true).await;
    pool.spec.node_manager.image = "registry.example.com/hadoop-nodemanager:3.4.2".to_owned();
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    let running = nm_pod("worker-7.dc1.example.com", None);
    let pod_name = running["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let refusal = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("Pod \"{pod_name}\" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`..."),
        "reason": "Invalid", "code": 422
    });
    let server = tokio::spawn(serve(
        handle,
        vec![
            nodes_read(list("NodeList", vec![node("worker-7.dc1.example.com")])),
            pods_read(list("PodList", vec![running.clone()])),
            token_read(),
            Expect {
                method: "PATCH",
                path: format!("/api/v1/namespaces/yarn/pods/{pod_name}"),
                query: Some("&force=true&fieldManager=elastic-yarn-operator"),
                status: 422,
                answer: refusal,
            },
            Expect {
                method: "PATCH",
                path: format!("/api/v1/namespaces/yarn/pods/{pod_name}"),
                query: None,
                status: 200,
                answer: running,
            },
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("reconciled");
    let seen = server.await.expect("served");
    assert_eq!(
        sent_nth(
            &seen,
            "PATCH",
            "/api/v1/namespaces/yarn/pods/nightly-nm-worker-7-dc1-example-com-ce66b837",
            1
        )
        .content_type,
        "application/merge-patch+json"
    );
    assert!(
        sent_nth(
            &seen,
            "PATCH",
            "/api/v1/namespaces/yarn/pods/nightly-nm-worker-7-dc1-example-com-ce66b837",
            1
        )
        .body["metadata"]["annotations"]["elasticyarn.io/drain-deadline"]
            .is_string()
    );
    assert_eq!(
        rig.rm.cluster().node(&node_id).expect("node").capacity,
        Resources::default()
    );
    let target = rig
        .guarder
        .lock()
        .expect("guarder")
        .status()
        .target
        .expect("target");
    assert!(target.reason.contains("spec_changed"), "{}", target.reason);
}

mod leader_election {
    use std::time::Duration;

    use elastic_yarn_operator::controller::leader::{LeaseSettings, try_hold};
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::Api;

    use super::*;

    const LEASE_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/elastic-yarn/leases";

    fn settings(identity: &str) -> LeaseSettings {
        LeaseSettings {
            name: "elastic-yarn-operator".to_owned(),
            identity: identity.to_owned(),
            duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
        }
    }

    fn lease(holder: &str, renewed: jiff::Timestamp) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "elastic-yarn-operator", "namespace": "elastic-yarn", "resourceVersion": "7"},
            "spec": {
                "holderIdentity": holder, "leaseDurationSeconds": 15,
                "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                "leaseTransitions": 2
            }
        })
    }

    fn get(answer: Value, status: u16) -> Expect {
        Expect {
            method: "GET",
            path: format!("{LEASE_PATH}/elastic-yarn-operator"),
            query: None,
            status,
            answer,
        }
    }

    async fn attempt(identity: &str, script: Vec<Expect>) -> (bool, Vec<Seen>) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api: Api<Lease> = Api::namespaced(Client::new(service, "default"), "elastic-yarn");
        let server = tokio::spawn(serve(handle, script));
        let held = try_hold(&api, &settings(identity))
            .await
            .expect("no API error");
        (held, server.await.expect("served"))
    }

    #[tokio::test]
    async fn the_first_replica_creates_the_lease() {
        let (held, seen) = attempt(
            "operator-a",
            vec![
                get(
                    not_found("leases.coordination.k8s.io", "elastic-yarn-operator"),
                    404,
                ),
                Expect {
                    method: "POST",
                    path: LEASE_PATH.to_owned(),
                    query: None,
                    status: 201,
                    answer: lease("operator-a", jiff::Timestamp::now()),
                },
            ],
        )
        .await;
        assert!(held);
        assert_eq!(
            sent(
                &seen,
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/elastic-yarn/leases"
            )
            .body["spec"]["holderIdentity"],
            "operator-a"
        );
        assert_eq!(
            sent(
                &seen,
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/elastic-yarn/leases"
            )
            .body["spec"]["leaseDurationSeconds"],
            15
        );
    }

    #[tokio::test]
    async fn a_fresh_lease_of_another_replica_is_left_alone() {
        let (held, seen) = attempt(
            "operator-b",
            vec![get(lease("operator-a", jiff::Timestamp::now()), 200)],
        )
        .await;
        assert!(!held);
        assert_eq!(seen.len(), 1, "no write");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_with_its_resource_version_and_a_lost_race_is_no_lead() {
        let stale = jiff::Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(60))
            .expect("a time");
        let (held, seen) = attempt(
            "operator-b",
            vec![
                get(lease("operator-a", stale), 200),
                Expect {
                    method: "PUT",
                    path: format!("{LEASE_PATH}/elastic-yarn-operator"),
                    query: None,
                    status: 409,
                    answer: json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "Operation cannot be fulfilled on leases.coordination.k8s.io \"elastic-yarn-operator\": the object has been modified; please apply your changes to the latest version and try again",
                        "reason": "Conflict", "code": 409
                    }),
                },
            ],
        )
        .await;
        assert!(!held, "the other replica renewed first");
        let sent = &sent(
            &seen,
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/elastic-yarn/leases/elastic-yarn-operator",
        )
        .body;
        assert_eq!(sent["metadata"]["resourceVersion"], "7");
        assert_eq!(sent["spec"]["holderIdentity"], "operator-b");
        assert_eq!(sent["spec"]["leaseTransitions"], 3);
    }
}

#[tokio::test]
async fn third_party_allocation_is_written_with_the_nodes_resource_version() {
    use elastic_yarn_operator::controller::runtime::write_allocation;
    use elastic_yarn_operator::policy::Resources;

    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let nodes: kube::Api<Node> = kube::Api::all(Client::new(service, "default"));
    let existing = r#"{"allocations":[{"name":"hadoop-yarn","priority":"koord-batch","resources":{"kubernetes.io/batch-cpu":"2000","kubernetes.io/batch-memory":"2Gi"}}]}"#;
    let metadata = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": "w1", "resourceVersion": "5150",
            "annotations": {"node.koordinator.sh/thirdPartyAllocations": existing}
        }
    });
    let server = tokio::spawn(serve(
        handle,
        vec![
            Expect {
                method: "GET",
                path: "/api/v1/nodes/w1".to_owned(),
                query: None,
                status: 200,
                answer: metadata.clone(),
            },
            Expect {
                method: "PATCH",
                path: "/api/v1/nodes/w1".to_owned(),
                query: None,
                status: 200,
                answer: metadata,
            },
        ],
    ));
    write_allocation(
        &nodes,
        "elastic-yarn.yarn.nightly",
        "w1",
        Some(Resources::new(6, 24_576)),
    )
    .await
    .expect("written");
    let seen = server.await.expect("served");
    let sent_node_patch = sent(&seen, "PATCH", "/api/v1/nodes/w1");
    assert_eq!(sent_node_patch.content_type, "application/merge-patch+json");
    assert_eq!(sent_node_patch.body["metadata"]["resourceVersion"], "5150");
    let value: Value = serde_json::from_str(
        sent_node_patch.body["metadata"]["annotations"]["node.koordinator.sh/thirdPartyAllocations"]
            .as_str()
            .expect("a string"),
    )
    .expect("JSON");
    assert_eq!(value["allocations"][0]["name"], "hadoop-yarn");
    assert_eq!(
        value["allocations"][1],
        json!({
            "name": "elastic-yarn.yarn.nightly", "priority": "koord-batch",
            // 6 vcores and 24 GiB of YARN's, 1 core and 2 GiB of the NM daemon's.
            "resources": {"kubernetes.io/batch-cpu": "7000", "kubernetes.io/batch-memory": "27917287424"}
        })
    );
}

#[tokio::test]
async fn metrics_and_health_are_served() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let metrics = OperatorMetrics::default();
    metrics.reconciles.inc();
    metrics
        .failures
        .get_or_create(&elastic_yarn_operator::controller::metrics::FailureLabels {
            category: "no_active_rm",
        })
        .inc();
    let healthy = Arc::new(AtomicBool::new(true));
    let router =
        elastic_yarn_operator::controller::metrics::router(metrics.registry(), healthy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let text = controlkit::process::http_get(format!("http://{address}/metrics"))
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert!(
        text.contains("elastic_yarn_operator_reconciles_total 1"),
        "{text}"
    );
    assert!(text.contains("elastic_yarn_operator_failures_total{category=\"no_active_rm\"} 1"));
    // The RM clients' series sit beside the operator's (families appear once they have a series).
    assert!(text.contains("elastic_yarn_rm_failovers_total 0"), "{text}");
    let health = controlkit::process::http_get(format!("http://{address}/healthz"))
        .await
        .expect("GET");
    assert_eq!(health.status().as_u16(), 200);
    healthy.store(false, Ordering::Relaxed);
    let health = controlkit::process::http_get(format!("http://{address}/healthz"))
        .await
        .expect("GET");
    assert_eq!(health.status().as_u16(), 503);
}

#[tokio::test]
async fn a_removed_third_party_nm_gives_its_allocation_back_to_koordinator() {
    let rig = rig().await;
    rig.registered_nm(Resources {
        memory_mb: 8192,
        vcores: 2,
    });
    let mut pool = pool(&rig, LifecycleMode::OnDemand, true).await;
    pool.spec.lifecycle.on_demand = Some(OnDemandSpec { node_managers: 0 });
    pool.spec.koordinator.accounting = elastic_yarn_operator::crd::AccountingMode::ThirdParty;
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "default"));
    // Scaled to zero, drained, and its drain deadline passed: the pod goes now.
    let running = nm_pod("worker-7.dc1.example.com", Some("2026-01-01T00:00:00Z"));
    let pod_name = running["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let ours = r#"{"allocations":[{"name":"elastic-yarn.yarn.nightly","priority":"koord-batch","resources":{"kubernetes.io/batch-cpu":"2000","kubernetes.io/batch-memory":"8589934592"}}]}"#;
    let mut annotated = node("worker-7.dc1.example.com");
    annotated["metadata"]["resourceVersion"] = json!("77");
    annotated["metadata"]["annotations"] =
        json!({"node.koordinator.sh/thirdPartyAllocations": ours});
    let server = tokio::spawn(serve(
        handle,
        vec![
            nodes_read(list("NodeList", vec![annotated.clone()])),
            pods_read(list("PodList", vec![running.clone()])),
            token_read(),
            Expect {
                method: "DELETE",
                path: format!("/api/v1/namespaces/yarn/pods/{pod_name}"),
                query: None,
                status: 200,
                answer: running,
            },
            Expect {
                method: "GET",
                path: "/api/v1/nodes/worker-7.dc1.example.com".to_owned(),
                query: None,
                status: 200,
                answer: annotated.clone(),
            },
            Expect {
                method: "PATCH",
                path: "/api/v1/nodes/worker-7.dc1.example.com".to_owned(),
                query: None,
                status: 200,
                answer: annotated,
            },
            status_patch(&pool),
            spark_defaults_apply(),
        ],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("reconciled");
    let seen = server.await.expect("served");
    let sent_node_patch = sent(&seen, "PATCH", "/api/v1/nodes/worker-7.dc1.example.com");
    assert_eq!(sent_node_patch.body["metadata"]["resourceVersion"], "77");
    assert_eq!(
        sent_node_patch.body["metadata"]["annotations"]["node.koordinator.sh/thirdPartyAllocations"],
        r#"{"allocations":[]}"#
    );
    assert_eq!(
        sent(
            &seen,
            "PATCH",
            "/apis/elasticyarn.io/v1alpha1/namespaces/yarn/elasticnodepools/nightly/status"
        )
        .body["status"]["phase"],
        "Offline"
    );
}

#[tokio::test]
async fn an_invalid_spec_is_announced_with_an_event_on_the_pool() {
    use kube::runtime::events::{Recorder, Reporter};

    let rig = rig().await;
    let mut pool = pool(&rig, LifecycleMode::Periodic, true).await;
    pool.spec
        .lifecycle
        .periodic
        .as_mut()
        .expect("periodic")
        .windows[0]
        .online = "every night".to_owned();
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let ctx = Arc::new(Context::new(
        client.clone(),
        ControllerSettings::default(),
        OperatorMetrics::default(),
        Some(Recorder::new(
            client,
            Reporter {
                controller: "elastic-yarn-operator".to_owned(),
                instance: Some("operator-0".to_owned()),
            },
        )),
        KeytabStore::new(None),
    ));
    let server = tokio::spawn(serve(
        handle,
        vec![
            Expect {
                method: "POST",
                path: "/apis/events.k8s.io/v1/namespaces/yarn/events".to_owned(),
                query: None,
                status: 201,
                answer: json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                               "metadata": {"name": "nightly.1", "namespace": "yarn"},
                               "eventTime": "2026-11-24T23:00:00.000000Z"}),
            },
            status_patch(&pool),
        ],
    ));
    reconcile(Arc::new(pool), ctx).await.expect("reconciled");
    let seen = server.await.expect("served");
    let event = &sent(
        &seen,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/yarn/events",
    )
    .body;
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "InvalidSpec");
    assert_eq!(event["regarding"]["kind"], "ElasticNodePool");
    assert_eq!(event["regarding"]["name"], "nightly");
    assert_eq!(event["reportingController"], "elastic-yarn-operator");
    assert!(
        event["note"]
            .as_str()
            .expect("a note")
            .contains("every night"),
        "{event}"
    );
}
