//! A Kerberos pool against an RM behind Hadoop's SPNEGO filter: the operator, in the Kerberos
//! environment the chart gives it, merges the keytab of the pool's Secret into its client keytab,
//! reaches the RM through SPNEGO and makes the pool's label there. A pool naming the same
//! principal with a Secret that holds someone else's key is refused, with the reason.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::chain_world::{
    CHAIN_RM_ADDRESS, ChainWorld, operator_principal, rm_http_principal,
};
use elastic_yarn_e2e::pools::{condition, event_notes, status};
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_world::{krb5_conf_option, spnego_core_site};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use testkit::hadoop::{Hadoop, YarnCluster, YarnOptions};

const NAMESPACE: &str = "chain-kerberos";
const LABEL: &str = "kerberized";

fn pool(name: &str, rm: &str, secret: &str) -> serde_json::Value {
    json!({
        "apiVersion": "elasticyarn.io/v1alpha1",
        "kind": "ElasticNodePool",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "resourceManager": {
                "addresses": [rm],
                "auth": {
                    "mode": "Kerberos",
                    "kerberos": {
                        "principal": operator_principal(),
                        "keytabSecret": {"name": secret, "key": "keytab"},
                    },
                },
            },
            "nodeManager": {
                "image": "apache/hadoop:3.4.2",
                "configMap": "hadoop-conf",
                "nodeLabel": LABEL,
            },
            // No node carries this label: the pool talks to the RM and runs no NM.
            "placement": {"nodeSelector": {"e2e/pool": "kerberized"}},
            "capacity": {"ceiling": {"vcores": 8, "memoryMb": 32768}},
            "lifecycle": {"mode": "Resident"},
        }
    })
}

async fn keytab_secret(world: &ChainWorld, name: &str, file: &str) {
    let bytes = std::fs::read(world.kdc.path(file)).expect("a keytab");
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some([("keytab".to_owned(), ByteString(bytes))].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(world.k8s.client.clone(), NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .expect("the keytab Secret");
}

pub async fn a_kerberos_pool_reaches_a_kerberized_rm_with_its_own_keytab(world: Arc<ChainWorld>) {
    let hadoop = Hadoop::primary().expect("the primary Hadoop line");
    let options = YarnOptions {
        rm_host: Some(CHAIN_RM_ADDRESS.to_owned()),
        core_properties: spnego_core_site(&rm_http_principal(), &world.kdc.path("http.keytab")),
        jvm_options: vec![krb5_conf_option(&world.kdc.krb5_conf)],
        rm_properties: vec![
            ("yarn.acl.enable".to_owned(), "true".to_owned()),
            ("yarn.admin.acl".to_owned(), "elastic-yarn".to_owned()),
        ],
        queue_labels: vec![LABEL.to_owned()],
        ..YarnOptions::default()
    };
    let cluster = tokio::task::spawn_blocking(move || YarnCluster::start(&hadoop, &options))
        .await
        .expect("the Kerberized RM starts");
    let k8s = &world.k8s;
    k8s.namespace(NAMESPACE).await;
    keytab_secret(&world, "elastic-yarn-keytab", "operator.keytab").await;
    keytab_secret(&world, "someone-elses-keytab", "other.keytab").await;
    for (name, secret) in [
        ("kerberized", "elastic-yarn-keytab"),
        ("impostor", "someone-elses-keytab"),
    ] {
        elastic_yarn_e2e::pools::create(&k8s.client, &pool(name, &cluster.rm_url, secret)).await;
    }

    wait_for(
        "the Kerberos pool to reach the RM",
        Duration::from_secs(120),
        || async {
            let status = status(&k8s.client, NAMESPACE, "kerberized").await?;
            (condition(&status, "ResourceManagerReachable").as_deref() == Some("True"))
                .then_some(())
        },
    )
    .await;
    // The label the operator made, read back through SPNEGO with the same principal.
    let labels = wait_for(
        "the pool's label on the RM",
        Duration::from_secs(60),
        || async {
            let output =
                std::process::Command::new(testkit::workspace_binary("elastic-yarn-operator"))
                    .args([
                        "yarn",
                        "--rm",
                        &cluster.rm_url,
                        "--principal",
                        &operator_principal(),
                    ])
                    .arg("--keytab")
                    .arg(world.kdc.path("operator.keytab"))
                    .arg("--krb5-config")
                    .arg(&world.kdc.krb5_conf)
                    .args(["-o", "json", "label", "list"])
                    .output()
                    .ok()?;
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.contains(LABEL).then_some(text)
        },
    )
    .await;
    eprintln!("  labels on the Kerberized RM: {}", labels.trim());

    // The impostor holds no key for the principal it names: refused, with the reason.
    let refused = wait_for(
        "the impostor pool refused",
        Duration::from_secs(120),
        || async {
            event_notes(&k8s.client, NAMESPACE, "impostor")
                .await
                .into_iter()
                .find(|(_, note)| note.contains("holds no key for"))
        },
    )
    .await;
    assert!(
        refused.1.contains(&operator_principal()),
        "the Event names the principal: {refused:?}"
    );
    let impostor = status(&k8s.client, NAMESPACE, "impostor").await;
    assert!(
        impostor
            .as_ref()
            .and_then(|s| condition(s, "ResourceManagerReachable"))
            .as_deref()
            != Some("True"),
        "the impostor never reached the RM: {impostor:?}"
    );
    drop(cluster);
}
