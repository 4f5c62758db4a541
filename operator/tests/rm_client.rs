//! Scenario tests of the RM client against the RM double on loopback: the exact requests of
//! every call, Jersey quirks, RemoteException errors, resize confirmation, HA failover, slow
//! and failing RMs, bounded concurrency, and authentication without Kerberos.

use std::sync::Arc;
use std::time::Duration;

use guarder::container::ContainerId;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use yarn_rm::{
    LabelOutcome, NodeId, NodeState, OverCommitTimeout, ResourceManager, Resources,
    RestResourceManager, RestSettings, RetryPolicy, RmAuth, RmError, Secret, SignalCommand,
};
use yarn_rm_double::{Credential, DoubleAuth, DoubleCluster, JerseyStyle, RmDouble, Role};

const BIG: Resources = Resources {
    memory_mb: 65536,
    vcores: 32,
};

fn node(index: usize) -> NodeId {
    format!("nm-{index}.yarn.test:45454")
        .parse()
        .expect("node id")
}

async fn start(double: RmDouble) -> (String, tokio::task::JoinHandle<()>) {
    let (address, task) = double.spawn().await.expect("bind loopback");
    (format!("http://{address}"), task)
}

fn settings(addresses: Vec<String>) -> RestSettings {
    let mut settings = RestSettings::new(
        addresses,
        RmAuth::Simple {
            user: "yarn".to_owned(),
        },
    );
    settings.retry = RetryPolicy {
        retries: 2,
        base: Duration::from_millis(5),
        max: Duration::from_millis(20),
    };
    settings.confirm_interval = Duration::from_millis(5);
    settings
}

fn client(addresses: Vec<String>) -> RestResourceManager {
    RestResourceManager::new(settings(addresses)).expect("client")
}

fn body_json(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON body")
}

#[tokio::test]
async fn every_call_sends_exactly_what_rmwebservices_reads() {
    let double = RmDouble::new(
        DoubleCluster::with_nodes(2, BIG),
        Role::Active,
        DoubleAuth::Simple,
    );
    let (url, _task) = start(double.clone()).await;
    let rm = client(vec![url]);

    let info = rm.cluster_info().await.expect("info");
    assert_eq!(info.hadoop_version, "3.3.6");
    assert_eq!(rm.nodes(&[]).await.expect("nodes").len(), 2);
    let running = rm
        .nodes(&[NodeState::Running, NodeState::Unhealthy])
        .await
        .expect("running");
    assert_eq!(running.len(), 2);
    let one = rm.node(&node(1)).await.expect("node");
    assert_eq!(one.capacity(), BIG);

    let smaller = Resources {
        memory_mb: 24576,
        vcores: 12,
    };
    let outcome = rm
        .resize(&node(1), smaller, OverCommitTimeout::Never)
        .await
        .expect("resize");
    assert_eq!(
        outcome.accepted, smaller,
        "the dispatcher applied the change before the answer"
    );
    assert_eq!(outcome.confirmed, smaller);
    assert_eq!(outcome.reads, 1);

    assert_eq!(
        rm.ensure_node_label("elastic").await.expect("label"),
        LabelOutcome::Created
    );
    assert_eq!(
        rm.ensure_node_label("elastic").await.expect("label again"),
        LabelOutcome::AlreadyPresent
    );
    rm.set_node_labels(&node(1), &["elastic".to_owned()])
        .await
        .expect("set labels");
    let container: ContainerId = "container_e17_1700000000000_0001_01_000005"
        .parse()
        .expect("id");
    rm.signal_container(&container, SignalCommand::GracefulShutdown)
        .await
        .expect("signal");

    let seen: Vec<(String, String, String)> = double
        .requests()
        .into_iter()
        .map(|request| (request.method, request.path, request.query))
        .collect();
    let expected = [
        ("GET", "/ws/v1/cluster/info", "user.name=yarn"),
        ("GET", "/ws/v1/cluster/nodes", "user.name=yarn"),
        (
            "GET",
            "/ws/v1/cluster/nodes",
            "states=RUNNING%2CUNHEALTHY&user.name=yarn",
        ),
        (
            "GET",
            "/ws/v1/cluster/nodes/nm-1.yarn.test:45454",
            "user.name=yarn",
        ),
        (
            "POST",
            "/ws/v1/cluster/nodes/nm-1.yarn.test:45454/resource",
            "user.name=yarn",
        ),
        (
            "GET",
            "/ws/v1/cluster/nodes/nm-1.yarn.test:45454",
            "user.name=yarn",
        ),
        ("GET", "/ws/v1/cluster/get-node-labels", "user.name=yarn"),
        ("POST", "/ws/v1/cluster/add-node-labels", "user.name=yarn"),
        ("GET", "/ws/v1/cluster/get-node-labels", "user.name=yarn"),
        (
            "POST",
            "/ws/v1/cluster/replace-node-to-labels",
            "user.name=yarn",
        ),
        (
            "POST",
            "/ws/v1/cluster/containers/container_e17_1700000000000_0001_01_000005/signal/GRACEFUL_SHUTDOWN",
            "user.name=yarn",
        ),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(m, p, q)| ((*m).to_owned(), (*p).to_owned(), (*q).to_owned()))
        .collect();
    assert_eq!(seen, expected);

    let writes = double.writes();
    assert_eq!(
        body_json(&writes[0].body),
        json!({"resource":{"memory":24576,"vCores":12},"overCommitTimeout":-1})
    );
    assert_eq!(
        body_json(&writes[1].body),
        json!({"nodeLabelInfo":[{"name":"elastic","exclusivity":false}]})
    );
    assert_eq!(
        body_json(&writes[2].body),
        json!({"nodeToLabels":[{"nodeId":"nm-1.yarn.test:45454","labels":["elastic"]}]})
    );
    assert_eq!(writes[3].body, "", "a signal has no body");

    let cluster = double.cluster();
    assert_eq!(cluster.node(&node(1)).expect("node").capacity, smaller);
    assert_eq!(
        cluster.node(&node(1)).expect("node").labels,
        vec!["elastic".to_owned()]
    );
    assert_eq!(cluster.labels().get("elastic"), Some(&false));
    assert_eq!(
        cluster.signals(),
        vec![(
            "container_e17_1700000000000_0001_01_000005".to_owned(),
            SignalCommand::GracefulShutdown
        )]
    );
}

#[tokio::test]
async fn both_jersey_notations_and_empty_lists_read_the_same() {
    for style in [JerseyStyle::Natural, JerseyStyle::Mapped] {
        let cluster = DoubleCluster::with_nodes(1, BIG);
        cluster.set_style(style);
        let double = RmDouble::new(cluster.clone(), Role::Active, DoubleAuth::Simple);
        let (url, _task) = start(double.clone()).await;
        let rm = client(vec![url]);

        let nodes = rm.nodes(&[]).await.expect("one node");
        assert_eq!(nodes.len(), 1, "{style:?}");
        assert_eq!(nodes[0].capacity(), BIG, "{style:?}");
        assert!(nodes[0].node_labels.is_empty(), "{style:?}");
        assert!(
            rm.nodes(&[NodeState::Lost])
                .await
                .expect("no node")
                .is_empty(),
            "{style:?}"
        );
        // No labels yet: `null` or absent; then one label: a lone object in mapped notation.
        assert_eq!(
            rm.ensure_node_label("elastic").await.expect("create"),
            LabelOutcome::Created
        );
        assert_eq!(
            rm.ensure_node_label("elastic").await.expect("found"),
            LabelOutcome::AlreadyPresent,
            "{style:?}"
        );
        rm.set_node_labels(&node(0), &["elastic".to_owned()])
            .await
            .expect("set");
        assert_eq!(
            rm.node(&node(0)).await.expect("node").node_labels,
            vec!["elastic".to_owned()],
            "{style:?}"
        );
        let raw = double
            .requests()
            .iter()
            .filter(|request| request.path.ends_with("/nodes"))
            .count();
        assert_eq!(raw, 2);
    }
}

#[tokio::test]
async fn remote_exceptions_become_typed_errors() {
    let cluster = DoubleCluster::with_nodes(2, BIG);
    cluster.set_state(&node(1), NodeState::Lost);
    cluster.add_label("gpu", true);
    let double = RmDouble::new(cluster, Role::Active, DoubleAuth::Simple);
    let (url, _task) = start(double.clone()).await;
    let rm = client(vec![url.clone()]);

    let missing = rm.node(&node(7)).await.expect_err("unknown node");
    assert_eq!(missing.category(), "not_found");
    assert!(
        missing
            .to_string()
            .contains("nodeId, nm-7.yarn.test:45454, is not found")
    );

    let inactive = rm
        .resize(&node(1), Resources::default(), OverCommitTimeout::Never)
        .await
        .expect_err("inactive node");
    assert_eq!(inactive.category(), "unavailable");
    assert!(
        inactive.to_string().contains("unrecognized node"),
        "{inactive}"
    );

    let conflict = rm
        .ensure_node_label("gpu")
        .await
        .expect_err("exclusive label");
    assert_eq!(conflict.category(), "label_conflict");
    let unknown_label = rm
        .set_node_labels(&node(0), &["nonexistent".to_owned()])
        .await
        .expect_err("label not in the cluster");
    assert_eq!(unknown_label.category(), "bad_request");

    let invalid = rm
        .ensure_node_label("not a label")
        .await
        .expect_err("bad name");
    assert_eq!(invalid.category(), "invalid_input");

    // Without a user name every call is refused, as a real RM that does not allow anonymous
    // callers does (its AuthenticationFilter, before RMWebServices).
    let anonymous = RestResourceManager::new(RestSettings::new(
        vec![url],
        RmAuth::DelegationToken {
            token: Secret::new("not-checked-by-a-simple-rm"),
        },
    ))
    .expect("client");
    let refused = anonymous
        .resize(&node(0), BIG, OverCommitTimeout::Never)
        .await
        .expect_err("no user");
    assert_eq!(refused.category(), "unauthorized");
    assert!(
        refused.to_string().contains("Authentication required"),
        "{refused}"
    );

    // Nothing refused reached the cluster, and the refused label was never POSTed.
    assert!(!double.cluster().labels().contains_key("nonexistent"));
    assert!(
        !double
            .writes()
            .iter()
            .any(|request| request.path.ends_with("add-node-labels")),
        "an exclusive label is never re-added"
    );
}

#[tokio::test]
async fn a_resize_is_confirmed_by_reading_the_node_back() {
    let cluster = DoubleCluster::with_nodes(1, BIG);
    cluster.lag_resizes(2);
    let double = RmDouble::new(cluster.clone(), Role::Active, DoubleAuth::Simple);
    let (url, _task) = start(double).await;
    let rm = client(vec![url.clone()]);
    let target = Resources {
        memory_mb: 8192,
        vcores: 4,
    };
    let outcome = rm
        .resize(&node(0), target, OverCommitTimeout::Seconds(30))
        .await
        .expect("confirmed after lagging reads");
    assert_eq!(
        outcome.accepted, BIG,
        "the answer beat the dispatcher and shows the old capacity"
    );
    assert_eq!(outcome.reads, 3);
    assert_eq!(outcome.confirmed, target);

    cluster.lag_resizes(10);
    let mut patient = settings(vec![url]);
    patient.confirm_reads = 3;
    let rm = RestResourceManager::new(patient).expect("client");
    let error = rm
        .resize(&node(0), BIG, OverCommitTimeout::Never)
        .await
        .expect_err("never shows the change");
    match error {
        RmError::NotConfirmed {
            requested,
            seen,
            reads,
            ..
        } => {
            assert_eq!(requested, BIG);
            assert_eq!(seen, target);
            assert_eq!(reads, 3);
        }
        other => panic!("expected NotConfirmed, got {other}"),
    }
}

#[tokio::test]
async fn the_active_rm_is_found_and_a_standby_never_takes_a_write() {
    let cluster = DoubleCluster::with_nodes(1, BIG);
    let rm2 = RmDouble::new(cluster.clone(), Role::Active, DoubleAuth::Simple);
    let (url2, _task2) = start(rm2.clone()).await;
    let rm1 = RmDouble::new(
        cluster.clone(),
        Role::Standby {
            active: Some(url2.clone()),
        },
        DoubleAuth::Simple,
    );
    let (url1, _task1) = start(rm1.clone()).await;
    let rm = client(vec![url1, url2.clone()]);

    rm.resize(
        &node(0),
        Resources {
            memory_mb: 4096,
            vcores: 2,
        },
        OverCommitTimeout::Never,
    )
    .await
    .expect("resize through the active RM");
    assert_eq!(rm.active_address(), Some(url2.as_str()));
    let standby_paths: Vec<String> = rm1.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        standby_paths,
        vec!["/ws/v1/cluster/info".to_owned()],
        "only probed"
    );
    assert_eq!(rm2.writes().len(), 1);
}

#[tokio::test]
async fn a_failover_mid_run_is_followed() {
    let cluster = DoubleCluster::with_nodes(1, BIG);
    let rm1 = RmDouble::new(cluster.clone(), Role::Active, DoubleAuth::Simple);
    let (url1, _task1) = start(rm1.clone()).await;
    let rm2 = RmDouble::new(
        cluster.clone(),
        Role::Standby {
            active: Some(url1.clone()),
        },
        DoubleAuth::Simple,
    );
    let (url2, _task2) = start(rm2.clone()).await;
    let rm = client(vec![url1.clone(), url2.clone()]);

    let first = Resources {
        memory_mb: 16384,
        vcores: 8,
    };
    rm.resize(&node(0), first, OverCommitTimeout::Never)
        .await
        .expect("first");
    assert_eq!(rm.active_address(), Some(url1.as_str()));

    // ZooKeeper elects rm2; rm1 becomes standby and redirects.
    rm1.set_role(Role::Standby {
        active: Some(url2.clone()),
    });
    rm2.set_role(Role::Active);
    let second = Resources {
        memory_mb: 8192,
        vcores: 4,
    };
    rm.resize(&node(0), second, OverCommitTimeout::Never)
        .await
        .expect("second");
    assert_eq!(rm.active_address(), Some(url2.as_str()));
    assert_eq!(cluster.node(&node(0)).expect("node").capacity, second);

    // rm1 executed only the write it got while active; the later one it redirected (307).
    let rm1_writes: Vec<u16> = rm1.writes().iter().map(|r| r.outcome).collect();
    assert_eq!(rm1_writes, vec![200, 307]);
    let rm2_writes: Vec<u16> = rm2.writes().iter().map(|r| r.outcome).collect();
    assert_eq!(rm2_writes, vec![200]);
    assert_eq!(rm.metrics().failovers.get(), 1);
}

#[tokio::test]
async fn a_dead_active_rm_is_replaced_by_the_other() {
    let cluster = DoubleCluster::with_nodes(3, BIG);
    let rm1 = RmDouble::new(cluster.clone(), Role::Active, DoubleAuth::Simple);
    let (url1, task1) = start(rm1).await;
    let rm2 = RmDouble::new(cluster, Role::Standby { active: None }, DoubleAuth::Simple);
    let (url2, _task2) = start(rm2.clone()).await;
    let rm = client(vec![url1, url2.clone()]);
    assert_eq!(rm.nodes(&[]).await.expect("via rm1").len(), 3);

    task1.abort();
    let _ = task1.await;
    rm2.set_role(Role::Active);
    assert_eq!(rm.nodes(&[]).await.expect("via rm2").len(), 3);
    assert_eq!(rm.active_address(), Some(url2.as_str()));
    // A dead active RM counts as a failover as much as one that redirects.
    assert_eq!(rm.metrics().failovers.get(), 1);
}

#[tokio::test]
async fn no_active_rm_is_a_clear_transient_error() {
    let cluster = DoubleCluster::with_nodes(1, BIG);
    let rm1 = RmDouble::new(
        cluster.clone(),
        Role::Standby { active: None },
        DoubleAuth::Simple,
    );
    let rm2 = RmDouble::new(cluster, Role::Standby { active: None }, DoubleAuth::Simple);
    let (url1, _t1) = start(rm1.clone()).await;
    let (url2, _t2) = start(rm2.clone()).await;
    let rm = client(vec![url1.clone(), url2.clone()]);
    let error = rm
        .resize(&node(0), BIG, OverCommitTimeout::Never)
        .await
        .expect_err("nobody is active");
    assert_eq!(error.category(), "no_active_rm");
    assert!(error.is_transient());
    assert!(
        error.to_string().contains(&format!("{url1} is Standby")),
        "{error}"
    );
    assert!(rm1.writes().is_empty() && rm2.writes().is_empty());
}

#[tokio::test]
async fn a_slow_rm_times_out_and_idempotent_calls_are_retried() {
    let double = RmDouble::new(
        DoubleCluster::with_nodes(1, BIG),
        Role::Active,
        DoubleAuth::Simple,
    );
    double.set_delay(Duration::from_millis(400));
    let (url, _task) = start(double.clone()).await;
    let mut slow = settings(vec![url]);
    slow.request_timeout = Duration::from_millis(100);
    slow.retry.retries = 1;
    let rm = RestResourceManager::new(slow).expect("client");
    let error = rm.nodes(&[]).await.expect_err("too slow");
    assert_eq!(error.category(), "timeout");
    let abandoned: Vec<u16> = double.requests().iter().map(|r| r.outcome).collect();
    assert_eq!(
        abandoned,
        vec![0, 0],
        "one attempt and one retry, both given up"
    );

    double.set_delay(Duration::ZERO);
    assert_eq!(rm.nodes(&[]).await.expect("fast again").len(), 1);
}

#[tokio::test]
async fn failing_rms_are_retried_only_when_it_is_safe() {
    let double = RmDouble::new(
        DoubleCluster::with_nodes(1, BIG),
        Role::Active,
        DoubleAuth::Simple,
    );
    let (url, _task) = start(double.clone()).await;
    let rm = client(vec![url]);

    double.fail_next(&[500, 502]);
    assert_eq!(rm.nodes(&[]).await.expect("third attempt").len(), 1);
    assert_eq!(rm.metrics().retries.get(), 2);

    // 503 is RMWebServices' answer to an operation it cannot do: not retried.
    double.fail_next(&[503]);
    assert_eq!(
        rm.nodes(&[]).await.expect_err("503").category(),
        "unavailable"
    );

    // A signal might have been delivered: it is not sent twice.
    let before = double.requests().len();
    double.fail_next(&[500]);
    let container: ContainerId = "container_1700000000000_0001_01_000002"
        .parse()
        .expect("id");
    let error = rm
        .signal_container(&container, SignalCommand::ForcefulShutdown)
        .await
        .expect_err("500");
    assert_eq!(error.category(), "server_error");
    assert_eq!(double.requests().len(), before + 1);
    assert!(double.cluster().signals().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_bounded() {
    let double = RmDouble::new(
        DoubleCluster::with_nodes(1, BIG),
        Role::Active,
        DoubleAuth::Simple,
    );
    double.set_delay(Duration::from_millis(50));
    let (url, _task) = start(double.clone()).await;
    let mut bounded = settings(vec![url]);
    bounded.max_in_flight = 4;
    let rm = Arc::new(RestResourceManager::new(bounded).expect("client"));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let rm = Arc::clone(&rm);
        calls.spawn(async move { rm.node(&node(0)).await.map(|_| ()) });
    }
    while let Some(result) = calls.join_next().await {
        result.expect("task").expect("call");
    }
    assert_eq!(double.requests().len(), 24);
    assert_eq!(
        double.most_in_flight(),
        4,
        "never more than the limit, and it was used"
    );
}

#[tokio::test]
async fn delegation_tokens_authenticate_and_wrong_ones_are_refused() {
    let cluster = DoubleCluster::with_nodes(1, BIG);
    let double = RmDouble::new(
        cluster,
        Role::Active,
        DoubleAuth::DelegationToken("KAAIZWxhc3RpYw".to_owned()),
    );
    let (url, _task) = start(double.clone()).await;
    let with_token = |token: &str| {
        RestResourceManager::new(RestSettings::new(
            vec![url.clone()],
            RmAuth::DelegationToken {
                token: Secret::new(token),
            },
        ))
        .expect("client")
    };
    with_token("KAAIZWxhc3RpYw")
        .resize(
            &node(0),
            Resources {
                memory_mb: 1024,
                vcores: 1,
            },
            OverCommitTimeout::Never,
        )
        .await
        .expect("token accepted");
    assert!(
        double
            .requests()
            .iter()
            .all(|request| request.credential == Credential::DelegationToken
                && !request.query.contains("user.name"))
    );
    let refused = with_token("forged")
        .nodes(&[])
        .await
        .expect_err("forged token");
    assert_eq!(refused.category(), "forbidden");
}

#[tokio::test]
async fn metrics_count_latency_and_errors_by_category() {
    let double = RmDouble::new(
        DoubleCluster::with_nodes(1, BIG),
        Role::Active,
        DoubleAuth::Simple,
    );
    let (url, _task) = start(double).await;
    let rm = client(vec![url]);
    rm.nodes(&[]).await.expect("ok");
    rm.node(&node(9)).await.expect_err("missing");
    let mut registry = Registry::with_prefix("elastic_yarn_rm");
    rm.metrics().register(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).expect("encode");
    assert!(text.contains(r#"elastic_yarn_rm_errors_total{call="node",category="not_found"} 1"#));
    assert!(text.contains(
        r#"elastic_yarn_rm_request_duration_seconds_count{call="nodes",outcome="ok"} 1"#
    ));
}

#[tokio::test]
async fn an_unreachable_single_rm_is_reported_with_its_address() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let rm = client(vec![url.clone()]);
    let error = rm.cluster_info().await.expect_err("nobody listens");
    assert_eq!(error.category(), "unreachable");
    assert!(error.to_string().contains(&url), "{error}");
}
