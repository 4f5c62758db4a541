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
use crate::{free_port, wait_for_tcp, wait_for_tcp_at};

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
    // hadoop-auth reads the default realm from `sun.security.krb5.Config` (Kerberos tests).
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
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
        self.java_with(conf, heap_mb, &[], main_class)
    }

    /// [`Hadoop::java`] with more JVM options.
    pub fn java_with(
        &self,
        conf: &Path,
        heap_mb: u32,
        options: &[String],
        main_class: &str,
    ) -> Command {
        let mut command = Command::new(java_binary());
        command
            .arg(format!("-Xmx{heap_mb}m"))
            .args(JAVA_17_OPENS)
            .args(options)
            .arg("-Djava.net.preferIPv4Stack=true")
            .arg("-cp")
            .arg(self.classpath(conf))
            .arg(main_class);
        command
    }

    /// A NodeManager with the configuration in `conf`, started as the NodeManager image starts
    /// it: through its entrypoint, `images/nodemanager/nodemanager`, with the jars of this
    /// line. `options` are more JVM options (each without spaces).
    pub fn node_manager(&self, conf: &Path, heap_mb: u32, options: &[String]) -> Command {
        let mut command =
            Command::new(crate::workspace_root().join("images/nodemanager/nodemanager"));
        command
            .env("HADOOP_CONF_DIR", conf)
            .env("HADOOP_LIB_DIR", &self.lib)
            .env("NODEMANAGER_HEAP_MB", heap_mb.to_string())
            .env("NODEMANAGER_OPTS", options.join(" "))
            .env("JAVA_HOME", java_home());
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

/// The suites' Spark application (`testkit/spark/SleepyJob.java`: `tasks` tasks that each
/// sleep, or keep a core busy), compiled against `spark` with the JDK's `javac` into `dir`.
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
    Some(crate::run_cache_script(
        "maven/fetch",
        &[component, version],
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
    /// More JVM options for the RM and every NM (e.g. `-Djava.security.krb5.conf=...`).
    pub jvm_options: Vec<String>,
    /// The loopback address the RMs bind (default `127.0.0.1`).
    pub rm_host: Option<String>,
    /// Two RMs (`rm1`, `rm2`) in an HA pair with automatic failover through a real ZooKeeper
    /// (from the same jars), instead of one RM.
    pub ha_pair: bool,
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
    /// The other RM of an HA pair (`rm2`; `rm` is `rm1`).
    pub partner: Option<ResourceManagerProcess>,
    /// The ZooKeeper server of an HA pair.
    pub zookeeper: Option<Supervised>,
    base_yarn_site: Vec<(String, String)>,
    core_site: String,
    jvm_options: Vec<String>,
}

/// The second RM of an HA pair.
#[derive(Debug)]
pub struct ResourceManagerProcess {
    /// The process.
    pub process: Supervised,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl YarnCluster {
    /// Starts an RM of this line (or an HA pair, with `ha_pair`) and waits until one is active.
    pub fn start(hadoop: &Hadoop, options: &YarnOptions) -> YarnCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name);
        // An HA pair names each RM's addresses by its id; a single RM has plain keys.
        let ids: &[&str] = if options.ha_pair {
            &["rm1", "rm2"]
        } else {
            &[""]
        };
        let mut base = common_yarn_site(hadoop, dir.path());
        let mut web_ports = Vec::new();
        let rm_host = options.rm_host.as_deref().unwrap_or("127.0.0.1");
        for id in ids {
            let (properties, web_port) = rm_addresses(id, rm_host);
            base.extend(properties);
            web_ports.push(web_port);
        }
        let zookeeper = options.ha_pair.then(|| {
            let (process, properties) = start_zookeeper(hadoop, dir.path());
            base.extend(properties);
            process
        });
        base.extend(options.rm_properties.iter().cloned());
        let conf = path("conf");
        let mut core: Vec<(String, String)> = vec![
            ("fs.defaultFS".to_owned(), "file:///".to_owned()),
            (
                "hadoop.tmp.dir".to_owned(),
                path("tmp").display().to_string(),
            ),
        ];
        core.extend(options.core_properties.iter().cloned());
        let core_site = site_xml(core.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let capacity = capacity_scheduler(&options.queue_labels);
        write_conf(&conf, &base, &core_site, &capacity);

        let mut rms = Vec::new();
        for (id, web_port) in ids.iter().zip(&web_ports) {
            let rm_conf = if id.is_empty() {
                conf.clone()
            } else {
                let own = path(&format!("conf-{id}"));
                let mut properties = base.clone();
                properties.push(("yarn.resourcemanager.ha.id".to_owned(), (*id).to_owned()));
                write_conf(&own, &properties, &core_site, &capacity);
                own
            };
            let mut command = hadoop.java_with(
                &rm_conf,
                512,
                &options.jvm_options,
                "org.apache.hadoop.yarn.server.resourcemanager.ResourceManager",
            );
            command.env("JAVA_HOME", java_home());
            command.envs(options.rm_env.iter().map(|(k, v)| (k, v)));
            let name = if id.is_empty() { "resourcemanager" } else { id };
            let process = Supervised::start(name, &command, &path(&format!("{name}.log")));
            rms.push(ResourceManagerProcess {
                process,
                url: format!("http://{rm_host}:{web_port}"),
            });
        }
        for port in &web_ports {
            wait_for_tcp_at(
                rm_host,
                *port,
                Duration::from_secs(90),
                "the ResourceManager",
            );
        }
        let active = wait_for_active(&rms, 90);
        let first = rms.remove(active);
        YarnCluster {
            hadoop: hadoop.clone(),
            rm: first.process,
            rm_url: first.url,
            conf,
            node_managers: Vec::new(),
            partner: rms.pop(),
            zookeeper,
            base_yarn_site: base,
            core_site,
            jvm_options: options.jvm_options.clone(),
            dir,
        }
    }

    /// Every RM's web address, the one that became active first at the start.
    pub fn rm_urls(&self) -> Vec<String> {
        let mut urls = vec![self.rm_url.clone()];
        urls.extend(self.partner.iter().map(|p| p.url.clone()));
        urls
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
        let mut command = self.hadoop.node_manager(&conf, 256, &self.jvm_options);
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

    /// Stops NodeManager `index` (its containers with it: they are its descendants).
    pub fn stop_node_manager(&mut self, index: usize) {
        self.node_managers[index].process.stop();
    }

    /// The cluster's temporary folder (for a test's own files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The yarn-site.xml every daemon of a cluster shares, but the RMs' addresses.
fn common_yarn_site(hadoop: &Hadoop, dir: &Path) -> Vec<(String, String)> {
    let path = |name: &str| dir.join(name).display().to_string();
    [
        (
            "yarn.resourcemanager.scheduler.class",
            "org.apache.hadoop.yarn.server.resourcemanager.scheduler.capacity.CapacityScheduler"
                .to_owned(),
        ),
        ("yarn.node-labels.enabled", "true".to_owned()),
        (
            "yarn.node-labels.fs-store.root-dir",
            format!("file://{}", path("node-labels")),
        ),
        (
            "yarn.node-labels.configuration-type",
            "centralized".to_owned(),
        ),
        // Containers are plain processes with this configuration and the jars of this line
        // on their classpath (there is no Hadoop distribution folder to point at).
        (
            "yarn.application.classpath",
            format!("{}:{}/*", path("conf"), hadoop.lib.display()),
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
        ("yarn.app.mapreduce.am.staging-dir", path("staging")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// One RM's addresses on free loopback ports (keys suffixed with `.<id>` in an HA pair), and
/// its web port.
fn rm_addresses(id: &str, host: &str) -> (Vec<(String, String)>, u16) {
    let suffix = if id.is_empty() {
        String::new()
    } else {
        format!(".{id}")
    };
    let web_port = free_port();
    let mut properties = vec![(
        format!("yarn.resourcemanager.hostname{suffix}"),
        host.to_owned(),
    )];
    for key in [
        "address",
        "scheduler.address",
        "resource-tracker.address",
        "admin.address",
    ] {
        properties.push((
            format!("yarn.resourcemanager.{key}{suffix}"),
            format!("{host}:{}", free_port()),
        ));
    }
    properties.push((
        format!("yarn.resourcemanager.webapp.address{suffix}"),
        format!("{host}:{web_port}"),
    ));
    (properties, web_port)
}

/// A standalone ZooKeeper server (the jar the RM already carries) and the yarn-site.xml of an
/// HA pair that elects its active RM there. Timeouts are short so that a failover takes seconds.
fn start_zookeeper(hadoop: &Hadoop, dir: &Path) -> (Supervised, Vec<(String, String)>) {
    let port = free_port();
    let data = dir.join("zookeeper");
    std::fs::create_dir_all(&data).expect("ZooKeeper folder");
    let mut command = hadoop.java_with(
        &dir.join("conf"),
        128,
        &["-Dzookeeper.admin.enableServer=false".to_owned()],
        "org.apache.zookeeper.server.ZooKeeperServerMain",
    );
    // port, data folder, tick (ms): sessions may be as short as two ticks.
    command.arg(port.to_string()).arg(&data).arg("500");
    let process = Supervised::start("zookeeper", &command, &dir.join("zookeeper.log"));
    wait_for_tcp(port, Duration::from_secs(60), "ZooKeeper");
    let properties = [
        ("yarn.resourcemanager.ha.enabled", "true".to_owned()),
        ("yarn.resourcemanager.ha.rm-ids", "rm1,rm2".to_owned()),
        (
            "yarn.resourcemanager.cluster-id",
            "elastic-yarn-test".to_owned(),
        ),
        (
            "yarn.resourcemanager.ha.automatic-failover.enabled",
            "true".to_owned(),
        ),
        ("hadoop.zk.address", format!("127.0.0.1:{port}")),
        ("hadoop.zk.timeout-ms", "2000".to_owned()),
        // NodeManagers and clients go to the other RM within a second or two.
        (
            "yarn.resourcemanager.connect.retry-interval.ms",
            "500".to_owned(),
        ),
        ("yarn.client.failover-sleep-base-ms", "200".to_owned()),
        ("yarn.client.failover-sleep-max-ms", "1000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    (process, properties)
}

/// Waits until one of `rms` has become active; returns its index.
fn wait_for_active(rms: &[ResourceManagerProcess], seconds: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        for (index, rm) in rms.iter().enumerate() {
            let text = std::fs::read_to_string(&rm.process.log).unwrap_or_default();
            if text.contains("Transitioned to active state") {
                return index;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no ResourceManager became active within {seconds} s\n{}",
            rms.iter()
                .map(|rm| rm.process.tail(30))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
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
    std::fs::create_dir_all(conf).expect("configuration folder");
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
