//! A real Hadoop YARN on loopback: a ResourceManager and NodeManagers as JVM processes of the jars
//! Maven Central publishes (`testkit/maven/fetch`, cached by version), each with its own
//! configuration folder in a temporary directory. Node labels are on (file-system store, the
//! centralized configuration the operator writes through REST), the CapacityScheduler has one
//! queue that may use every label the test names, and the NodeManagers run containers with the
//! DefaultContainerExecutor: plain processes of this host, with `CONTAINER_ID` in their
//! environment, which is what the guarder finds.
//!
//! The Hadoop lines come from `ELASTIC_YARN_HADOOP` (`3.4.2=/folder,3.5.0=/folder`, the first
//! being the primary line), which `scripts/e2e` sets; without it they are resolved now when
//! Maven is installed. Spark's jars come the same way from `ELASTIC_YARN_SPARK`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::kubernetes::e2e_required;
use crate::supervised::Supervised;
use crate::{free_port, wait_for_tcp};

/// `version=folder` pairs of the Hadoop lines, comma-separated; the first is the primary line.
pub const HADOOP_ENV: &str = "ELASTIC_YARN_HADOOP";
/// The folder of Spark's jars.
pub const SPARK_ENV: &str = "ELASTIC_YARN_SPARK";

/// The versions `testkit/maven/fetch` resolves.
const VERSIONS: &str = include_str!("../maven/versions.env");

/// Java 17 closes the JDK's internals that Hadoop 3.4 (and Spark's driver) reach by reflection.
pub const JAVA_17_OPENS: &[&str] = &[
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
];

/// One Hadoop line: its version and the folder of its jars.
#[derive(Clone, Debug)]
pub struct Hadoop {
    /// `3.4.2`.
    pub version: String,
    /// Every jar of the RM, the NM and the YARN client, flat.
    pub lib: PathBuf,
}

impl Hadoop {
    /// Every Hadoop line the tests run against, the primary first; empty when none is
    /// available and the e2e suites are not required (`ELASTIC_YARN_REQUIRE_E2E=1` makes that a
    /// failure).
    pub fn lines() -> Vec<Hadoop> {
        if let Some(text) = std::env::var(HADOOP_ENV).ok().filter(|v| !v.is_empty()) {
            return parse_lines(&text);
        }
        let versions = versions_value("HADOOP_VERSIONS");
        let lines: Vec<Hadoop> = versions
            .split_whitespace()
            .filter_map(|version| {
                fetch("hadoop", version).map(|lib| Hadoop {
                    version: version.to_owned(),
                    lib,
                })
            })
            .collect();
        assert!(
            !lines.is_empty() || !e2e_required(),
            "no Hadoop: set {HADOOP_ENV} (scripts/e2e does) or install Maven and a JDK"
        );
        lines
    }

    /// The primary line, on which the whole YARN and chain suites run.
    pub fn primary() -> Option<Hadoop> {
        Hadoop::lines().into_iter().next()
    }

    /// Whether this line publishes the distributed-shell application on Maven Central.
    pub fn has_distributed_shell(&self) -> bool {
        jar_present(&self.lib, "hadoop-yarn-applications-distributedshell-")
    }

    /// A JVM with this line's jars and `conf` first on its classpath.
    pub fn java(&self, conf: &Path, heap_mb: u32, main_class: &str) -> Command {
        let mut command = Command::new(java_binary());
        command
            .arg(format!("-Xmx{heap_mb}m"))
            .args(JAVA_17_OPENS)
            .arg("-Djava.net.preferIPv4Stack=true")
            .arg("-cp")
            .arg(self.classpath(conf))
            .arg(main_class);
        command
    }

    /// `conf:lib/*`.
    pub fn classpath(&self, conf: &Path) -> String {
        format!("{}:{}/*", conf.display(), self.lib.display())
    }
}

/// The folder of Spark's jars, or `None` (a failure when the e2e suites are required).
pub fn spark() -> Option<PathBuf> {
    let found = std::env::var_os(SPARK_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| fetch("spark", &versions_value("SPARK_VERSION")));
    assert!(
        found.is_some() || !e2e_required(),
        "no Spark: set {SPARK_ENV} (scripts/e2e does) or install Maven and a JDK"
    );
    found
}

/// The suite's Spark application (`testkit/spark/SleepyJob.java`: `tasks` tasks that each
/// sleep), compiled against `spark` with the JDK's `javac` into `dir`.
pub fn sleepy_job_jar(spark: &Path, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("spark/SleepyJob.java");
    let classes = dir.join("sleepy-classes");
    let jar = dir.join("sleepy.jar");
    let javac = java_home().join("bin/javac");
    let status = Command::new(&javac)
        .arg("-cp")
        .arg(format!("{}/*", spark.display()))
        .arg("-d")
        .arg(&classes)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", javac.display()));
    assert!(status.success(), "javac failed on {}", source.display());
    let status = Command::new(java_home().join("bin/jar"))
        .arg("cf")
        .arg(&jar)
        .arg("-C")
        .arg(&classes)
        .arg(".")
        .status()
        .expect("the JDK's jar tool runs");
    assert!(status.success(), "jar failed");
    jar
}

/// The Spark version `testkit/maven/fetch` resolves.
pub fn spark_version() -> String {
    versions_value("SPARK_VERSION")
}

fn parse_lines(text: &str) -> Vec<Hadoop> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(version, lib)| Hadoop {
            version: version.trim().to_owned(),
            lib: PathBuf::from(lib.trim()),
        })
        .collect()
}

fn versions_value(key: &str) -> String {
    VERSIONS
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .unwrap_or_default()
}

fn jar_present(lib: &Path, prefix: &str) -> bool {
    std::fs::read_dir(lib).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
    })
}

/// Runs `testkit/maven/fetch` when Maven is installed.
fn fetch(component: &str, version: &str) -> Option<PathBuf> {
    crate::program("mvn")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("maven/fetch");
    let output = Command::new(&script)
        .args([component, version])
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(output.status.success(), "{} failed", script.display());
    Some(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// The `java` on the PATH (the JDK's, resolved through its links).
pub fn java_binary() -> PathBuf {
    java_home().join("bin/java")
}

/// The JDK the processes run on: `JAVA_HOME`, else the one `java` on the PATH belongs to.
pub fn java_home() -> PathBuf {
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let java = crate::program("java").unwrap_or_else(|| PathBuf::from("/usr/bin/java"));
    std::fs::canonicalize(&java)
        .ok()
        .and_then(|real| real.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("/usr"))
}

/// A Hadoop `*-site.xml` of these properties (values escaped).
pub fn site_xml<'a>(properties: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<configuration>\n");
    for (name, value) in properties {
        xml.push_str(&format!(
            "  <property><name>{}</name><value>{}</value></property>\n",
            escape(name),
            escape(value)
        ));
    }
    xml.push_str("</configuration>\n");
    xml
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const LOG4J: &str = "log4j.rootLogger=INFO,console\n\
log4j.appender.console=org.apache.log4j.ConsoleAppender\n\
log4j.appender.console.target=System.err\n\
log4j.appender.console.layout=org.apache.log4j.PatternLayout\n\
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{1}: %m%n\n\
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR\n";

/// How a test wants the cluster.
#[derive(Clone, Debug, Default)]
pub struct YarnOptions {
    /// Node labels the queue `default` may use in full (the labels need not exist yet).
    pub queue_labels: Vec<String>,
    /// More RM properties (yarn-site.xml), e.g. authentication.
    pub rm_properties: Vec<(String, String)>,
    /// More core-site.xml properties, for the RM and every NM.
    pub core_properties: Vec<(String, String)>,
    /// Environment of the RM process (e.g. `KRB5_CONFIG`).
    pub rm_env: Vec<(String, String)>,
}

/// A NodeManager to start.
#[derive(Clone, Debug)]
pub struct NodeManagerOptions {
    /// The address it binds and registers by (`127.0.0.1` registers as `localhost`).
    pub host: String,
    /// `yarn.nodemanager.resource.memory-mb`.
    pub memory_mb: u64,
    /// `yarn.nodemanager.resource.cpu-vcores`.
    pub vcores: u32,
    /// Its RPC port (the node id's port); 0 picks a free one.
    pub rpc_port: u16,
    /// More yarn-site.xml properties (the pod's own settings, in the chain).
    pub properties: Vec<(String, String)>,
    /// More environment.
    pub env: Vec<(String, String)>,
}

impl Default for NodeManagerOptions {
    fn default() -> NodeManagerOptions {
        NodeManagerOptions {
            host: "127.0.0.1".to_owned(),
            memory_mb: 4096,
            vcores: 4,
            rpc_port: 0,
            properties: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// A running NodeManager.
#[derive(Debug)]
pub struct NodeManagerProcess {
    /// The process, under its watchdog.
    pub process: Supervised,
    /// `host:port` as it registered with the RM.
    pub node_id: String,
    /// Its configuration folder.
    pub conf: PathBuf,
    /// Where its containers' logs go (`<app>/<container>/stdout|stderr`).
    pub log_dir: PathBuf,
}

/// A running ResourceManager and its NodeManagers.
#[derive(Debug)]
pub struct YarnCluster {
    dir: tempfile::TempDir,
    /// The Hadoop line.
    pub hadoop: Hadoop,
    /// The RM process.
    pub rm: Supervised,
    /// `http://127.0.0.1:<port>`, the RM's web address.
    pub rm_url: String,
    /// The client configuration (yarn-site.xml, core-site.xml) the RM and every NM start from:
    /// give it to YARN clients and Spark as `HADOOP_CONF_DIR`.
    pub conf: PathBuf,
    /// The NodeManagers started so far.
    pub node_managers: Vec<NodeManagerProcess>,
    base_yarn_site: Vec<(String, String)>,
    core_site: String,
}

impl YarnCluster {
    /// Starts an RM of this line and waits until it is active.
    pub fn start(hadoop: &Hadoop, options: &YarnOptions) -> YarnCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name);
        let web_port = free_port();
        let rm_address = |port: u16| format!("127.0.0.1:{port}");
        let mut base: Vec<(String, String)> = vec![
            ("yarn.resourcemanager.hostname", "127.0.0.1".to_owned()),
            ("yarn.resourcemanager.address", rm_address(free_port())),
            (
                "yarn.resourcemanager.scheduler.address",
                rm_address(free_port()),
            ),
            (
                "yarn.resourcemanager.resource-tracker.address",
                rm_address(free_port()),
            ),
            ("yarn.resourcemanager.admin.address", rm_address(free_port())),
            ("yarn.resourcemanager.webapp.address", rm_address(web_port)),
            (
                "yarn.resourcemanager.scheduler.class",
                "org.apache.hadoop.yarn.server.resourcemanager.scheduler.capacity.CapacityScheduler"
                    .to_owned(),
            ),
            ("yarn.node-labels.enabled", "true".to_owned()),
            (
                "yarn.node-labels.fs-store.root-dir",
                format!("file://{}", path("node-labels").display()),
            ),
            ("yarn.node-labels.configuration-type", "centralized".to_owned()),
            // Containers are plain processes with this configuration and the jars of this line
            // on their classpath (there is no Hadoop distribution folder to point at).
            (
                "yarn.application.classpath",
                format!("{}:{}/*", path("conf").display(), hadoop.lib.display()),
            ),
            ("yarn.nodemanager.vmem-check-enabled", "false".to_owned()),
            (
                "yarn.nodemanager.disk-health-checker.max-disk-utilization-per-disk-percentage",
                "100".to_owned(),
            ),
            ("yarn.scheduler.minimum-allocation-mb", "128".to_owned()),
            ("yarn.nodemanager.log.retain-seconds", "3600".to_owned()),
            ("yarn.log-aggregation-enable", "false".to_owned()),
            (
                "yarn.resourcemanager.nodemanagers.heartbeat-interval-ms",
                "500".to_owned(),
            ),
            (
                "yarn.app.mapreduce.am.staging-dir",
                path("staging").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        base.extend(options.rm_properties.iter().cloned());
        let conf = path("conf");
        std::fs::create_dir_all(&conf).expect("conf dir");
        let mut core: Vec<(String, String)> = vec![
            ("fs.defaultFS".to_owned(), "file:///".to_owned()),
            (
                "hadoop.tmp.dir".to_owned(),
                path("tmp").display().to_string(),
            ),
        ];
        core.extend(options.core_properties.iter().cloned());
        let core_site = site_xml(core.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        write_conf(
            &conf,
            &base,
            &core_site,
            &capacity_scheduler(&options.queue_labels),
        );

        let mut command = hadoop.java(
            &conf,
            512,
            "org.apache.hadoop.yarn.server.resourcemanager.ResourceManager",
        );
        command.env("JAVA_HOME", java_home());
        for (key, value) in &options.rm_env {
            command.env(key, value);
        }
        let rm = Supervised::start("resourcemanager", &command, &path("resourcemanager.log"));
        wait_for_tcp(web_port, Duration::from_secs(90), "the ResourceManager");
        let cluster = YarnCluster {
            hadoop: hadoop.clone(),
            rm,
            rm_url: format!("http://127.0.0.1:{web_port}"),
            conf,
            node_managers: Vec::new(),
            base_yarn_site: base,
            core_site,
            dir,
        };
        cluster.wait_for_log(&cluster.rm, "Transitioned to active state", 90);
        cluster
    }

    /// Starts a NodeManager and waits until it has registered; returns its index.
    pub fn add_node_manager(&mut self, options: &NodeManagerOptions) -> usize {
        let index = self.node_managers.len();
        let root = self.dir.path().join(format!("nm-{index}"));
        let conf = root.join("conf");
        let log_dir = root.join("logs");
        let local_dir = root.join("local");
        for dir in [&conf, &log_dir, &local_dir] {
            std::fs::create_dir_all(dir).expect("NM folders");
        }
        let host = &options.host;
        let rpc_port = if options.rpc_port == 0 {
            free_port()
        } else {
            options.rpc_port
        };
        let mut properties = self.base_yarn_site.clone();
        let address = |port: u16| format!("{host}:{port}");
        properties.extend(
            [
                ("yarn.nodemanager.hostname", host.clone()),
                ("yarn.nodemanager.address", address(rpc_port)),
                ("yarn.nodemanager.localizer.address", address(free_port())),
                ("yarn.nodemanager.webapp.address", address(free_port())),
                (
                    "yarn.nodemanager.local-dirs",
                    local_dir.display().to_string(),
                ),
                ("yarn.nodemanager.log-dirs", log_dir.display().to_string()),
                (
                    "yarn.nodemanager.resource.memory-mb",
                    options.memory_mb.to_string(),
                ),
                (
                    "yarn.nodemanager.resource.cpu-vcores",
                    options.vcores.to_string(),
                ),
                (
                    "yarn.nodemanager.recovery.dir",
                    root.join("recovery").display().to_string(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
        );
        properties.extend(options.properties.iter().cloned());
        write_conf(
            &conf,
            &properties,
            &self.core_site,
            &capacity_scheduler(&[]),
        );
        let mut command = self.hadoop.java(
            &conf,
            256,
            "org.apache.hadoop.yarn.server.nodemanager.NodeManager",
        );
        command.env("JAVA_HOME", java_home());
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let process = Supervised::start(
            &format!("nodemanager-{index}"),
            &command,
            &root.join("nodemanager.log"),
        );
        let line = self.wait_for_log(&process, "Registered with ResourceManager as ", 90);
        let node_id = line
            .split("Registered with ResourceManager as ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        self.node_managers.push(NodeManagerProcess {
            process,
            node_id,
            conf,
            log_dir,
        });
        index
    }

    /// Waits for a line containing `needle` in a process's log and returns it; fails the test
    /// with the log's tail when the process exits or `seconds` pass.
    pub fn wait_for_log(&self, process: &Supervised, needle: &str, seconds: u64) -> String {
        wait_for_log_line(process, needle, seconds)
    }

    /// The cluster's temporary folder (for a test's own files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Waits for a line containing `needle` in a supervised process's log.
pub fn wait_for_log_line(process: &Supervised, needle: &str, seconds: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let text = std::fs::read_to_string(&process.log).unwrap_or_default();
        if let Some(line) = text.lines().find(|line| line.contains(needle)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{} did not log {needle:?} within {seconds} s\n{}",
            process.name(),
            process.tail(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write_conf(conf: &Path, yarn: &[(String, String)], core_site: &str, capacity: &str) {
    // A later property of the same name wins, as the tests expect when they override.
    let merged: BTreeMap<&str, &str> = yarn.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let files = [
        ("yarn-site.xml", site_xml(merged)),
        ("core-site.xml", core_site.to_owned()),
        ("capacity-scheduler.xml", capacity.to_owned()),
        ("log4j.properties", LOG4J.to_owned()),
    ];
    for (name, text) in files {
        std::fs::write(conf.join(name), text).expect("Hadoop configuration");
    }
}

/// One queue, `default`, with the whole of the default partition and of each label.
fn capacity_scheduler(labels: &[String]) -> String {
    let mut properties: Vec<(String, String)> = vec![
        (
            "yarn.scheduler.capacity.root.queues".into(),
            "default".into(),
        ),
        (
            "yarn.scheduler.capacity.root.default.capacity".into(),
            "100".into(),
        ),
        (
            "yarn.scheduler.capacity.root.default.maximum-capacity".into(),
            "100".into(),
        ),
        (
            "yarn.scheduler.capacity.maximum-am-resource-percent".into(),
            "0.5".into(),
        ),
        (
            "yarn.scheduler.capacity.root.default.user-limit-factor".into(),
            "10".into(),
        ),
    ];
    if !labels.is_empty() {
        let list = labels.join(",");
        properties.push((
            "yarn.scheduler.capacity.root.accessible-node-labels".into(),
            list.clone(),
        ));
        properties.push((
            "yarn.scheduler.capacity.root.default.accessible-node-labels".into(),
            list,
        ));
        for label in labels {
            for queue in ["root", "root.default"] {
                for key in ["capacity", "maximum-capacity"] {
                    properties.push((
                        format!(
                            "yarn.scheduler.capacity.{queue}.accessible-node-labels.{label}.{key}"
                        ),
                        "100".into(),
                    ));
                }
            }
        }
    }
    site_xml(properties.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_files_escape_values() {
        let xml = site_xml([("a", "x<y&z")]);
        assert!(xml.contains("<value>x&lt;y&amp;z</value>"), "{xml}");
    }

    #[test]
    fn lines_parse_in_order() {
        let lines = parse_lines("3.4.2=/a, 3.5.0=/b");
        let versions: Vec<&str> = lines.iter().map(|l| l.version.as_str()).collect();
        assert_eq!(versions, ["3.4.2", "3.5.0"]);
        assert_eq!(lines[1].lib, PathBuf::from("/b"));
    }

    #[test]
    fn queue_gets_each_label_in_full() {
        let xml = capacity_scheduler(&["elastic".to_owned()]);
        assert!(
            xml.contains(
                "yarn.scheduler.capacity.root.default.accessible-node-labels.elastic.capacity</name><value>100"
            ),
            "{xml}"
        );
    }
}
