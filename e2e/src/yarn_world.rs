//! What the YARN suite's scenarios share: a real ResourceManager with two NodeManagers for each
//! Hadoop line (`testkit::hadoop`), and a work folder under `target/e2e/yarn`.

use std::path::PathBuf;
use std::sync::Mutex;

use testkit::hadoop::{Hadoop, NodeManagerOptions, YarnCluster, YarnOptions};
use yarn_rm::{NodeId, RestResourceManager, RestSettings, RmAuth};

/// The node label the suite's queue may use, as a pool's would.
pub const LABEL: &str = "elastic";

/// One Hadoop line under test.
#[derive(Debug)]
pub struct Line {
    /// Its version.
    pub version: String,
    /// The RM's web address.
    pub rm_url: String,
    /// The node ids of its NodeManagers, as they registered.
    pub nodes: Vec<NodeId>,
    /// The processes (a scenario may add NodeManagers or read their logs).
    pub cluster: Mutex<YarnCluster>,
}

impl Line {
    /// Locks the processes.
    pub fn processes(&self) -> std::sync::MutexGuard<'_, YarnCluster> {
        self.cluster
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The shared state of the YARN suite.
#[derive(Debug)]
pub struct YarnWorld {
    /// Every line, the primary first.
    pub lines: Vec<Line>,
    /// `target/e2e/yarn`.
    pub dir: PathBuf,
}

impl YarnWorld {
    /// Starts every line's RM and NodeManagers (`None` when Hadoop is not available and not
    /// required).
    pub async fn new() -> Option<YarnWorld> {
        let dir = testkit::workspace_root().join("target/e2e/yarn");
        std::fs::create_dir_all(&dir).expect("work folder");
        let lines = tokio::task::spawn_blocking(start_lines)
            .await
            .expect("the lines start")?;
        Some(YarnWorld { lines, dir })
    }

    /// The primary line (the whole suite runs on it).
    pub fn primary(&self) -> &Line {
        &self.lines[0]
    }
}

fn start_lines() -> Option<Vec<Line>> {
    let hadoops = Hadoop::lines();
    if hadoops.is_empty() {
        return None;
    }
    let lines = hadoops.iter().map(start_line).collect();
    Some(lines)
}

/// An RM whose queue may use [`LABEL`], and two NodeManagers of 4 vcores and 4 GiB.
pub fn start_line(hadoop: &Hadoop) -> Line {
    let options = YarnOptions {
        queue_labels: vec![LABEL.to_owned()],
        rm_properties: production_acls(),
        core_properties: vec![(
            // A production RM does not act for anonymous callers ("dr.who").
            "hadoop.http.authentication.simple.anonymous.allowed".to_owned(),
            "false".to_owned(),
        )],
        ..YarnOptions::default()
    };
    let mut cluster = YarnCluster::start(hadoop, &options);
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let index = cluster.add_node_manager(&NodeManagerOptions::default());
        let id = &cluster.node_managers[index].node_id;
        nodes.push(id.parse().expect("the NM registered with a node id"));
    }
    Line {
        version: hadoop.version.clone(),
        rm_url: cluster.rm_url.clone(),
        nodes,
        cluster: Mutex::new(cluster),
    }
}

/// ACLs on, with `yarn` the only administrator: changing a node's resources or labels needs it.
pub fn production_acls() -> Vec<(String, String)> {
    vec![
        ("yarn.acl.enable".to_owned(), "true".to_owned()),
        ("yarn.admin.acl".to_owned(), "yarn".to_owned()),
    ]
}

/// A client of the RM at `url` as the operator builds it (simple authentication as `yarn`).
pub fn rm_client(url: &str) -> RestResourceManager {
    RestResourceManager::new(RestSettings::new(
        vec![url.to_owned()],
        RmAuth::Simple {
            user: "yarn".to_owned(),
        },
    ))
    .expect("an RM client")
}

/// core-site.xml for web endpoints behind Hadoop's own SPNEGO filter
/// (`AuthenticationFilterInitializer`, type `kerberos`) with this HTTP principal and keytab; the
/// JVMs also need [`krb5_conf_option`].
pub fn spnego_core_site(principal: &str, keytab: &std::path::Path) -> Vec<(String, String)> {
    [
        (
            "hadoop.http.filter.initializers",
            "org.apache.hadoop.security.AuthenticationFilterInitializer".to_owned(),
        ),
        ("hadoop.http.authentication.type", "kerberos".to_owned()),
        (
            "hadoop.http.authentication.kerberos.principal",
            principal.to_owned(),
        ),
        (
            "hadoop.http.authentication.kerberos.keytab",
            keytab.display().to_string(),
        ),
        (
            "hadoop.http.authentication.simple.anonymous.allowed",
            "false".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The JVM option that points Java's Kerberos at a realm's krb5.conf.
pub fn krb5_conf_option(krb5_conf: &std::path::Path) -> String {
    format!("-Djava.security.krb5.conf={}", krb5_conf.display())
}
