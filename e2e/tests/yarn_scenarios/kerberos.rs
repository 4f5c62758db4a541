//! The RM's web endpoints behind Hadoop's own SPNEGO filter, a real MIT KDC, and the operator's
//! loop authenticating with its pool's keytab while it sizes real NodeManagers from the real
//! exporter.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::node_metrics::{batch_cores, exporter, live_koordlet};
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_world::{LABEL, YarnWorld, krb5_conf_option, spnego_core_site};
use testkit::hadoop::{Hadoop, NodeManagerOptions, YarnCluster, YarnOptions};
use testkit::kdc::{Kdc, REALM};
use testkit::supervised::Supervised;
use yarn_rm::{ResourceManager, Resources, RestResourceManager, RestSettings, RmAuth};

/// The pool's principal: a YARN administrator.
const OPERATOR: &str = "elastic-yarn";
/// A principal the KDC knows but YARN's ACL does not name.
const INTRUDER: &str = "intruder";

fn principal(name: &str) -> String {
    format!("{name}@{REALM}")
}

/// A realm with the RM's HTTP service and two clients, each with its own keytab.
fn realm() -> Kdc {
    let kdc = Kdc::start().expect("MIT Kerberos (scripts/e2e installs it)");
    for name in ["HTTP/localhost", OPERATOR, INTRUDER] {
        kdc.add_principal(&principal(name));
        let file = kdc.path(&format!("{}.keytab", name.replace('/', "-")));
        kdc.export(&file, &[&principal(name)]);
    }
    kdc
}

/// An RM of the primary line whose web endpoints take SPNEGO only (the NMs' too, as they share
/// core-site.xml), with `elastic-yarn` its only administrator, and two NodeManagers.
fn kerberized_cluster(hadoop: &Hadoop, kdc: &Kdc) -> YarnCluster {
    let options = YarnOptions {
        queue_labels: vec![LABEL.to_owned()],
        rm_properties: vec![
            ("yarn.acl.enable".to_owned(), "true".to_owned()),
            ("yarn.admin.acl".to_owned(), OPERATOR.to_owned()),
        ],
        core_properties: spnego_core_site(
            &principal("HTTP/localhost"),
            &kdc.path("HTTP-localhost.keytab"),
        ),
        jvm_options: vec![krb5_conf_option(&kdc.krb5_conf)],
        ..YarnOptions::default()
    };
    let mut cluster = YarnCluster::start(hadoop, &options);
    for _ in 0..2 {
        cluster.add_node_manager(&NodeManagerOptions::default());
    }
    cluster
}

/// `elastic-yarn-operator yarn ... -o json` as `name`, with its keytab.
fn yarn_cli(kdc: &Kdc, rm: &str, name: &str, args: &[&str]) -> Output {
    Command::new(testkit::workspace_binary("elastic-yarn-operator"))
        .args(["yarn", "--rm", rm, "--principal", &principal(name)])
        .arg("--keytab")
        .arg(kdc.path(&format!("{name}.keytab")))
        .arg("--krb5-config")
        .arg(&kdc.krb5_conf)
        .args(["-o", "json"])
        .args(args)
        .output()
        .expect("the operator binary runs")
}

fn succeeded(output: &Output, what: &str) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

/// The RM's view of a node, read with the operator's keytab.
fn capacity_on_rm(kdc: &Kdc, rm: &str, node: &str) -> Resources {
    let answer = succeeded(&yarn_cli(kdc, rm, OPERATOR, &["node", node]), "yarn node");
    // The admin command writes capacities as the RM does (`memory`, `vCores`).
    serde_json::from_value::<yarn_rm::model::WireResources>(answer["capacity"].clone())
        .expect("a capacity")
        .into()
}

/// The pool the loop runs: Kerberos as `elastic-yarn`, `elastic`, ceiling 8 vcores / 32 GiB.
fn pool_file(dir: &Path, rm: &str) -> PathBuf {
    let text = format!(
        "apiVersion: elasticyarn.io/v1alpha1\n\
         kind: ElasticNodePool\n\
         metadata: {{name: kerberized, namespace: yarn}}\n\
         spec:\n  \
           resourceManager:\n    \
             addresses: [\"{rm}\"]\n    \
             auth:\n      \
               mode: Kerberos\n      \
               kerberos:\n        \
                 principal: {}\n        \
                 keytabSecret: {{name: elastic-yarn-keytab, key: keytab}}\n  \
           nodeManager: {{image: hadoop-nodemanager:3.4.2, configMap: hadoop-conf, nodeLabel: {LABEL}}}\n  \
           capacity:\n    \
             floor: {{vcores: 0, memoryMb: 0}}\n    \
             ceiling: {{vcores: 8, memoryMb: 32768}}\n  \
           lifecycle: {{mode: Resident}}\n  \
           elasticity: {{policy: elastic}}\n",
        principal(OPERATOR)
    );
    let path = dir.join("kerberized-pool.yaml");
    std::fs::write(&path, text).expect("pool file");
    path
}

/// `elastic-yarn-operator vertical` every second, in the Kerberos environment the operator
/// gives itself for a pool's keytab (the keytab, the realm's krb5.conf, an in-memory cache).
fn vertical_loop(kdc: &Kdc, pool: &Path, nms: &[String], dir: &Path) -> Supervised {
    let mut command = Command::new(testkit::workspace_binary("elastic-yarn-operator"));
    command
        .arg("vertical")
        .arg("--pool")
        .arg(pool)
        .args(["--interval-seconds", "1"])
        .env(
            "KRB5_CLIENT_KTNAME",
            kdc.path(&format!("{OPERATOR}.keytab")),
        )
        .env("KRB5_CONFIG", &kdc.krb5_conf)
        .env("KRB5CCNAME", "MEMORY:elastic-yarn")
        .stdin(Stdio::null());
    for nm in nms {
        command.arg("--nm").arg(nm);
    }
    Supervised::start("vertical loop", &command, &dir.join("vertical.log"))
}

pub async fn the_loop_sizes_real_nodemanagers_on_a_kerberized_rm(world: Arc<YarnWorld>) {
    let hadoop = world.primary().processes().hadoop.clone();
    let (kdc, cluster) = tokio::task::spawn_blocking(move || {
        let kdc = realm();
        let cluster = kerberized_cluster(&hadoop, &kdc);
        (kdc, cluster)
    })
    .await
    .expect("the realm and the cluster start");
    // Clients name the RM by the host of its HTTP principal.
    let rm = cluster.rm_url.replace("127.0.0.1", "localhost");
    let nodes: Vec<String> = cluster
        .node_managers
        .iter()
        .map(|nm| nm.node_id.clone())
        .collect();

    // Without a ticket the RM answers 401 Negotiate, reads included.
    let anonymous = RestResourceManager::new(RestSettings::new(
        vec![rm.clone()],
        RmAuth::Simple {
            user: OPERATOR.to_owned(),
        },
    ))
    .expect("a client");
    let refused = anonymous
        .nodes(&[])
        .await
        .expect_err("no SPNEGO, no answer");
    assert_eq!(refused.category(), "unauthorized", "{refused}");

    // With the pool's keytab: every node is listed, and the administrator may add the label...
    let listed = succeeded(&yarn_cli(&kdc, &rm, OPERATOR, &["nodes"]), "yarn nodes");
    for node in &nodes {
        assert!(
            listed
                .as_array()
                .is_some_and(|rows| rows.iter().any(|row| row["id"] == node.as_str())),
            "{node} listed through SPNEGO: {listed}"
        );
    }
    succeeded(
        &yarn_cli(&kdc, &rm, OPERATOR, &["label", "ensure", LABEL]),
        "label ensure as the administrator",
    );
    // ... while a principal outside yarn.admin.acl authenticates but may not.
    let intruder = yarn_cli(&kdc, &rm, INTRUDER, &["label", "ensure", "intruders"]);
    let stderr = String::from_utf8_lossy(&intruder.stderr);
    assert!(
        !intruder.status.success() && stderr.contains("forbidden"),
        "a non-administrator's label write is refused: {stderr}"
    );

    // The loop: a koordlet and the real exporter per node, 6 batch cores each.
    let dir = cluster.dir().to_path_buf();
    let mut koordlets = Vec::new();
    let mut exporters = Vec::new();
    let mut nm_args = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        let name = format!("kerberized-{index}");
        let (koordlet, koordlet_url) = live_koordlet(&name, batch_cores(6.0)).await;
        let (process, url) = exporter(
            &dir,
            &name,
            &koordlet_url,
            ("127.0.0.1", testkit::free_port()),
        );
        nm_args.push(format!("node={name},id={node},exporter={url}"));
        koordlets.push(koordlet);
        exporters.push(process);
    }
    let pool = pool_file(&dir, &rm);
    let looper = vertical_loop(&kdc, &pool, &nm_args, &dir);

    // Both NMs grow from their registered 4 vcores to what 6 free cores allow.
    let grown: Vec<Resources> = {
        let mut grown = Vec::new();
        for node in &nodes {
            let capacity = wait_for(
                "the loop grows the NM on the RM",
                Duration::from_secs(60),
                || async {
                    let capacity = capacity_on_rm(&kdc, &rm, node);
                    (capacity.vcores > 4).then_some(capacity)
                },
            )
            .await;
            grown.push(capacity);
        }
        grown
    };
    for capacity in &grown {
        assert!(
            capacity.vcores <= 8 && capacity.memory_mb <= 32768,
            "within the pool's ceiling: {capacity}"
        );
    }

    // The online load takes node 0's batch cores down to 2: the loop shrinks that NM only.
    koordlets[0].set(batch_cores(2.0));
    let shrunk = wait_for(
        "the loop shrinks NM 0 on the RM",
        Duration::from_secs(60),
        || async {
            let capacity = capacity_on_rm(&kdc, &rm, &nodes[0]);
            (capacity.vcores <= 2).then_some(capacity)
        },
    )
    .await;
    assert!(shrunk.vcores >= 1, "{shrunk}");
    eprintln!("  grown to {grown:?}; NM 0 shrunk to {shrunk}");
    assert_eq!(
        capacity_on_rm(&kdc, &rm, &nodes[1]),
        grown[1],
        "NM 1's node kept its batch cores"
    );
    let log = std::fs::read_to_string(&looper.log).expect("the loop's output");
    assert!(
        log.lines()
            .any(|line| line.contains("\"node\":\"kerberized-0\"")
                && line.contains(&format!(
                    "-> {} vcores / {} MiB",
                    shrunk.vcores, shrunk.memory_mb
                ))),
        "the loop printed the shrink it made:\n{}",
        looper.tail(20)
    );
    assert!(
        !log.contains("\"failed ["),
        "no tick failed:\n{}",
        looper.tail(20)
    );
    drop((looper, exporters, cluster, kdc));
}
