//! Applications on the real YARN of the suite: the distributed-shell client, the RM's view of
//! applications and containers, and the real guarder watching a NodeManager's containers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use elastic_yarn_operator::vertical::guarder_client::GuarderStatus;
use testkit::hadoop::{YarnCluster, java_home};
use testkit::supervised::Supervised;

use crate::runner::wait_for;

/// The bearer token the suite's guarders accept.
pub const GUARDER_TOKEN: &str = "yarn-suite-token";

/// Starts the distributed-shell client: an ApplicationMaster and `containers` containers that
/// each run `command` (plain shell), 256 MiB and 1 vcore each.
pub fn distributed_shell(
    cluster: &YarnCluster,
    name: &str,
    containers: u32,
    command: &str,
) -> Supervised {
    distributed_shell_with(cluster, name, containers, command, 1, None)
}

/// [`distributed_shell`] with `vcores` per container, the whole application (AM included) on
/// the nodes of `label` when given.
pub fn distributed_shell_with(
    cluster: &YarnCluster,
    name: &str,
    containers: u32,
    command: &str,
    vcores: u32,
    label: Option<&str>,
) -> Supervised {
    let jar = std::fs::read_dir(&cluster.hadoop.lib)
        .expect("the Hadoop jars")
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name().is_some_and(|f| {
                f.to_string_lossy()
                    .starts_with("hadoop-yarn-applications-distributedshell-")
            })
        })
        .expect("this Hadoop line has the distributed shell");
    let mut client = cluster.hadoop.java(
        &cluster.conf,
        256,
        "org.apache.hadoop.yarn.applications.distributedshell.Client",
    );
    client
        .arg("-jar")
        .arg(&jar)
        .args(["-appname", name, "-shell_command", command])
        .args(["-num_containers", &containers.to_string()])
        .args([
            "-container_memory",
            "256",
            "-container_vcores",
            &vcores.to_string(),
        ])
        .args(["-master_memory", "256", "-master_vcores", "1"])
        .args(["-timeout", "600000"]);
    if let Some(label) = label {
        client.args(["-node_label_expression", label]);
    }
    client
        .env("JAVA_HOME", java_home())
        .env("HADOOP_CONF_DIR", &cluster.conf)
        .current_dir(cluster.dir());
    Supervised::start(
        &format!("distributed-shell {name}"),
        &client,
        &cluster.dir().join(format!("{name}.client.log")),
    )
}

/// The RM's report of one node, as JSON.
pub async fn rm_node(rm_url: &str, node: &str) -> serde_json::Value {
    let url = format!("{rm_url}/ws/v1/cluster/nodes/{node}?user.name=yarn");
    let answer = controlkit::process::http_get(&url)
        .await
        .expect("the RM answers");
    let text = answer.text().await.expect("an answer");
    serde_json::from_str::<serde_json::Value>(&text).expect("JSON")["node"].clone()
}

/// Waits until the RM counts `count` containers on `node`.
pub async fn wait_for_containers(rm_url: &str, node: &str, count: u64, within: Duration) {
    wait_for(&format!("{count} containers on {node}"), within, || async {
        (rm_node(rm_url, node).await["numContainers"].as_u64() == Some(count)).then_some(())
    })
    .await;
}

/// Starts the real guarder over the descendants of `scope` (a NodeManager's watchdog): its
/// containers, never the NM, never anything else on this host.
pub fn guarder(
    dir: &Path,
    scope: u32,
    grace_seconds: u32,
    decommission: bool,
) -> (Supervised, String) {
    let token = dir.join("guarder-token");
    std::fs::write(&token, GUARDER_TOKEN).expect("token file");
    let port = testkit::free_port();
    let mut command = Command::new(testkit::workspace_binary("guarder"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--token-file")
        .arg(&token)
        .args(["--grace-period-seconds", &grace_seconds.to_string()])
        .args(["--scan-interval-ms", "200"])
        .arg("--cgroup-root")
        .arg(dir.join("no-cgroups"))
        .args(["--scope-pid", &scope.to_string()]);
    if decommission {
        command.arg("--spark-decommission");
    }
    let process = Supervised::start(
        "guarder",
        &command,
        &dir.join(format!("guarder-{port}.log")),
    );
    testkit::wait_for_tcp(port, Duration::from_secs(30), "the guarder");
    (process, format!("http://127.0.0.1:{port}"))
}

/// The guarder's `/v1/status`.
pub async fn guarder_status(url: &str) -> serde_json::Value {
    read_guarder_status(url)
        .await
        .unwrap_or_else(|error| panic!("the guarder at {url}: {error}"))
}

/// The guarder's `/v1/status`, or why it could not be read (a guarder starting again).
pub async fn read_guarder_status(url: &str) -> Result<serde_json::Value, String> {
    let text = controlkit::process::http_get(format!("{url}/v1/status"))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// The guarder's `/v1/status` as the operator reads it (target, use, signal tallies, kills).
pub async fn guarder_tallies(url: &str) -> GuarderStatus {
    serde_json::from_value(guarder_status(url).await).expect("the guarder's status")
}

/// Sends the guarder a target, as the operator does.
pub async fn put_target(url: &str, vcores: u32, memory_mb: u64, deadline_seconds: u32) {
    let client = controlkit::process::http_client()
        .build()
        .expect("an HTTP client");
    let answer = client
        .put(format!("{url}/v1/target"))
        .bearer_auth(GUARDER_TOKEN)
        .header("content-type", "application/json")
        .body(
            serde_json::to_string(&serde_json::json!({
                "vcores": vcores,
                "memoryMb": memory_mb,
                "deadlineSeconds": deadline_seconds,
                "reason": "e2e",
            }))
            .expect("JSON"),
        )
        .send()
        .await
        .expect("the guarder answers");
    assert!(
        answer.status().is_success(),
        "target refused: {}",
        answer.status()
    );
}

/// Starts a Spark application in client mode (the driver is this process' child, its
/// executors YARN containers): `SparkSubmit` from Spark's jars alone, `spark.yarn.jars` pointing
/// at the same jars on this host, decommissioning on, executors of 512 MiB and 1 core.
pub fn spark_submit(
    cluster: &YarnCluster,
    spark: &Path,
    jar: &Path,
    executors: u32,
    args: &[&str],
) -> Supervised {
    spark_submit_with(cluster, spark, jar, executors, args, &[])
}

/// [`spark_submit`] with more `--conf` settings (e.g. node-label expressions).
pub fn spark_submit_with(
    cluster: &YarnCluster,
    spark: &Path,
    jar: &Path,
    executors: u32,
    args: &[&str],
    more_settings: &[String],
) -> Supervised {
    let mut driver = Command::new(testkit::hadoop::java_binary());
    driver
        .arg("-Xmx512m")
        .args(testkit::hadoop::JAVA_17_OPENS)
        .arg("-cp")
        .arg(format!("{}:{}/*", cluster.conf.display(), spark.display()))
        .arg("org.apache.spark.deploy.SparkSubmit")
        .args(["--master", "yarn", "--deploy-mode", "client"])
        .args(["--class", "SleepyJob"])
        .args(["--num-executors", &executors.to_string()])
        .args(["--executor-cores", "1", "--executor-memory", "512m"])
        .args(["--driver-memory", "512m"]);
    let settings = [
        format!("spark.yarn.jars=local:{}/*", spark.display()),
        // The executors take Hadoop from Spark's own shaded client, not the NM's classpath.
        "spark.yarn.populateHadoopClasspath=false".to_owned(),
        "spark.yarn.am.memory=512m".to_owned(),
        "spark.decommission.enabled=true".to_owned(),
        "spark.executor.decommission.signal=PWR".to_owned(),
        "spark.dynamicAllocation.enabled=false".to_owned(),
        "spark.ui.enabled=false".to_owned(),
        "spark.driver.host=127.0.0.1".to_owned(),
        "spark.driver.bindAddress=127.0.0.1".to_owned(),
    ];
    for setting in settings.iter().chain(more_settings) {
        driver.args(["--conf", setting]);
    }
    driver
        .arg(jar)
        .args(args)
        .env("JAVA_HOME", java_home())
        .env("HADOOP_CONF_DIR", &cluster.conf)
        .current_dir(cluster.dir());
    Supervised::start(
        "spark driver",
        &driver,
        &cluster.dir().join("spark-driver.log"),
    )
}

/// `(container id, stderr)` of every container that logged under a NodeManager's log folder.
pub fn container_logs(log_dir: &Path) -> Vec<(String, String)> {
    let mut logs = Vec::new();
    for app in std::fs::read_dir(log_dir).into_iter().flatten().flatten() {
        for container in std::fs::read_dir(app.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(container.path().join("stderr")).unwrap_or_default();
            logs.push((container.file_name().to_string_lossy().into_owned(), text));
        }
    }
    logs
}

/// Kills an application through the RM's REST API as `yarn` (the suites' YARN administrator),
/// and waits until the RM reports it KILLED.
pub async fn kill_application(rm_url: &str, application: &str) {
    let url = format!("{rm_url}/ws/v1/cluster/apps/{application}/state?user.name=yarn");
    let client = controlkit::process::http_client()
        .build()
        .expect("an HTTP client");
    let answer = client
        .put(&url)
        .header("content-type", "application/json")
        .body(r#"{"state":"KILLED"}"#)
        .send()
        .await
        .expect("the RM answers");
    assert!(
        answer.status().is_success(),
        "killing {application}: {}",
        answer.status()
    );
    wait_for(
        &format!("{application} KILLED"),
        Duration::from_secs(60),
        || async {
            let text = controlkit::process::http_get(&url)
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains("KILLED").then_some(())
        },
    )
    .await;
}
