//! End to end against a real cluster and RM: skipped unless `KUBECONFIG` and
//! `ELASTIC_YARN_TEST_RM` are set, failing instead when `ELASTIC_YARN_REQUIRE_E2E=1`.
//!
//! Needs the CRDs installed, a namespace (`ELASTIC_YARN_TEST_NAMESPACE`, default
//! `elastic-yarn-e2e`) and at least one node matching `ELASTIC_YARN_TEST_NODE_SELECTOR`
//! (`key=value`, default: every node). The test applies an `OnDemand` pool asking for one NM,
//! runs reconciles with the operator's own controller code until the NM pod exists, checks the
//! status, then deletes the pool and waits for the finalizer to release it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use elastic_yarn_operator::build::names;
use elastic_yarn_operator::controller::keytabs::KeytabStore;
use elastic_yarn_operator::controller::metrics::OperatorMetrics;
use elastic_yarn_operator::controller::{Context, ControllerSettings, reconcile};
use elastic_yarn_operator::crd::ElasticNodePool;
use elastic_yarn_operator::yarn::{ResourceManager, RestResourceManager, RestSettings, RmAuth};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};

struct Cluster {
    rm: String,
    namespace: String,
    selector: Option<(String, String)>,
}

fn configured() -> Option<Cluster> {
    let kubeconfig = std::env::var("KUBECONFIG").ok().filter(|v| !v.is_empty());
    let rm = std::env::var("ELASTIC_YARN_TEST_RM")
        .ok()
        .filter(|v| !v.is_empty());
    match (kubeconfig, rm) {
        (Some(_), Some(rm)) => Some(Cluster {
            rm,
            namespace: std::env::var("ELASTIC_YARN_TEST_NAMESPACE")
                .unwrap_or_else(|_| "elastic-yarn-e2e".to_owned()),
            selector: std::env::var("ELASTIC_YARN_TEST_NODE_SELECTOR")
                .ok()
                .and_then(|s| s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))),
        }),
        _ => {
            assert!(
                std::env::var("ELASTIC_YARN_REQUIRE_E2E").as_deref() != Ok("1"),
                "ELASTIC_YARN_REQUIRE_E2E=1 but KUBECONFIG and ELASTIC_YARN_TEST_RM are not both set"
            );
            eprintln!(
                "SKIPPED: set KUBECONFIG and ELASTIC_YARN_TEST_RM to run against a real cluster"
            );
            None
        }
    }
}

#[tokio::test]
async fn the_real_rm_answers() {
    let Some(cluster) = configured() else {
        return;
    };
    let rm = RestResourceManager::new(RestSettings::new(
        vec![cluster.rm.clone()],
        RmAuth::Simple {
            user: std::env::var("ELASTIC_YARN_TEST_RM_USER").unwrap_or_else(|_| "yarn".to_owned()),
        },
    ))
    .expect("an RM client");
    let info = rm.cluster_info().await.expect("the RM answers /info");
    assert!(!info.resource_manager_version.is_empty());
    rm.nodes(&[]).await.expect("the RM lists its nodes");
}

#[tokio::test]
async fn an_on_demand_pool_gets_its_node_manager_and_goes_away_cleanly() {
    let Some(cluster) = configured() else {
        return;
    };
    let client = Client::try_default()
        .await
        .expect("a Kubernetes client from KUBECONFIG");
    let pools: Api<ElasticNodePool> = Api::namespaced(client.clone(), &cluster.namespace);
    let selector = cluster
        .selector
        .as_ref()
        .map(|(k, v)| format!("\n    nodeSelector:\n      {k}: \"{v}\""))
        .unwrap_or_default();
    let manifest = format!(
        r#"
apiVersion: elasticyarn.io/v1alpha1
kind: ElasticNodePool
metadata:
  name: e2e
  namespace: {namespace}
spec:
  resourceManager:
    addresses: ["{rm}"]
  nodeManager:
    image: apache/hadoop:3.4.1
    configMap: hadoop-conf
  placement:{selector}
    tolerations: [{{operator: Exists}}]
  capacity:
    ceiling: {{vcores: 2, memoryMb: 4096}}
  lifecycle:
    mode: OnDemand
    onDemand: {{nodeManagers: 1}}
"#,
        namespace = cluster.namespace,
        rm = cluster.rm,
    );
    let pool: ElasticNodePool = serde_yaml::from_str(&manifest).expect("manifest");
    let _ = pools.delete("e2e", &DeleteParams::default()).await;
    let created = pools
        .create(&PostParams::default(), &pool)
        .await
        .expect("pool created");
    let ctx = Arc::new(Context::new(
        client.clone(),
        ControllerSettings::default(),
        OperatorMetrics::default(),
        None,
        KeytabStore::new(None),
    ));
    let pods: Api<Pod> = Api::namespaced(client.clone(), &cluster.namespace);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut current = created;
    loop {
        reconcile(Arc::new(current.clone()), ctx.clone())
            .await
            .expect("reconcile");
        let found = pods
            .list(&ListParams::default().labels(&names::node_manager_selector("e2e")))
            .await
            .expect("pods listed");
        if found.items.len() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no NodeManager pod after 2 minutes"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        current = pools.get("e2e").await.expect("pool");
    }
    let status = pools
        .get_status("e2e")
        .await
        .expect("pool")
        .status
        .expect("a status");
    assert!(status.conditions.iter().any(|c| c.type_ == "Ready"));
    pools
        .delete("e2e", &DeleteParams::default())
        .await
        .expect("pool deleted");
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Some(pool) = pools.get_opt("e2e").await.expect("read") {
        reconcile(Arc::new(pool), ctx.clone())
            .await
            .expect("cleanup");
        assert!(Instant::now() < deadline, "the finalizer never let go");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
