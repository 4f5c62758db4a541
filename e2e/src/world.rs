//! What a suite's scenarios share: the cluster, an administrator's client, a work folder kept
//! under `target/e2e/<suite>` (logs, kubeconfigs), the chart installed once, the RM double the
//! pools point at, and the controller processes started so far.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;
use testkit::kubernetes::Cluster;
use testkit::kubernetes::nodes::FakeNode;
use tokio::sync::{Mutex, OnceCell};
use yarn_rm_double::{DoubleAuth, DoubleCluster, RmDouble, Role};

use crate::chart::{RELEASE, RELEASE_NAMESPACE, chart_dir};
use crate::controller::{ControllerProcess, Launch};
use crate::runner::wait_for;

/// The loopback address of the RM double.
pub const RM_ADDRESS: &str = "127.0.0.2";
/// The shared state of one suite.
pub struct World {
    /// The cluster.
    pub cluster: &'static Cluster,
    /// An administrator's client.
    pub client: Client,
    /// `target/e2e/<suite>`: logs and files of this run.
    pub dir: PathBuf,
    /// The RM double pools point at (scenarios register "NodeManagers" in it).
    pub rm: RmDouble,
    /// Its base URL.
    pub rm_url: String,
    installed: OnceCell<String>,
    /// Operator processes started so far (the audit compares their requests).
    pub operators: Mutex<Vec<ControllerProcess>>,
    /// staticip controller processes started so far.
    pub staticips: Mutex<Vec<ControllerProcess>>,
    next_address: AtomicU32,
    /// The third byte of this suite's node addresses: suites running at the same time on one
    /// machine must not serve "node" ports (the exporter's) on the same addresses.
    address_block: u32,
    _rm_task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("dir", &self.dir)
            .field("rm_url", &self.rm_url)
            .finish_non_exhaustive()
    }
}

/// The PriorityClass Koordinator's installation makes for batch pods (NM pods name it): made
/// here when the cluster has none, with the value of Koordinator's chart.
async fn koordinator_priority_class(client: &Client) {
    let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> = Api::all(client.clone());
    let class = serde_json::from_value(json!({
        "metadata": {"name": "koord-batch"},
        "value": 5000,
        "description": "Koordinator's batch priority (made by the e2e tests where Koordinator is absent)",
    }))
    .expect("a PriorityClass");
    match classes.create(&PostParams::default(), &class).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => panic!("cannot create the koord-batch PriorityClass: {error}"),
    }
}

/// A client from a kubeconfig file.
pub async fn client_from(kubeconfig: &Path) -> Client {
    let config = Kubeconfig::read_from(kubeconfig).expect("a kubeconfig");
    let config = Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .expect("a client configuration");
    Client::try_from(config).expect("a client")
}

impl World {
    /// The world of `suite`, or `None` when there is no cluster (and none is required).
    pub async fn new(suite: &str) -> Option<World> {
        let cluster = Cluster::shared()?;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/e2e")
            .join(suite);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("work folder");
        if let Some(local) = &cluster.local {
            eprintln!("{suite}: control plane files in {}", local.dir().display());
        }
        let client = client_from(&cluster.kubeconfig).await;
        koordinator_priority_class(&client).await;
        let rm = RmDouble::new(DoubleCluster::new(), Role::Active, DoubleAuth::Simple);
        // Not on 127.0.0.1, where the API server listens: the operator is allowed this one
        // loopback address (its egress policy denies loopback and the API server).
        let listener = tokio::net::TcpListener::bind((RM_ADDRESS, 0))
            .await
            .expect("the RM double listens");
        let address = listener.local_addr().expect("the RM double's address");
        let task = tokio::spawn({
            let rm = rm.clone();
            async move {
                let _ = rm.serve(listener).await;
            }
        });
        Some(World {
            cluster,
            client,
            dir,
            rm,
            rm_url: format!("http://{address}"),
            installed: OnceCell::new(),
            operators: Mutex::new(Vec::new()),
            staticips: Mutex::new(Vec::new()),
            next_address: AtomicU32::new(1),
            address_block: match suite {
                "kubernetes" => 2,
                "chain" => 40,
                _ => 80,
            },
            _rm_task: task,
        })
    }

    /// A loopback address no other fake node of this run has.
    pub fn node_address(&self) -> String {
        let n = self.next_address.fetch_add(1, Ordering::Relaxed);
        format!("127.0.{}.{}", self.address_block + n / 250, 1 + n % 250)
    }

    /// Creates fake nodes `names` labelled `labels`.
    pub async fn nodes(&self, names: &[&str], labels: &[(&str, &str)]) -> Vec<FakeNode> {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut made = Vec::new();
        for name in names {
            let node = FakeNode::new(name, &self.node_address(), labels);
            node.create(&api).await;
            made.push(node);
        }
        for node in &made {
            let name = node.name.clone();
            wait_for(
                &format!("node {name} Ready"),
                Duration::from_secs(60),
                || {
                    let api = api.clone();
                    let name = name.clone();
                    async move {
                        let node = api.get(&name).await.ok()?;
                        let ready = node
                            .status?
                            .conditions?
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True");
                        ready.then_some(())
                    }
                },
            )
            .await;
        }
        made
    }

    /// A fresh namespace (a leftover of an earlier run is deleted first) with its `default`
    /// ServiceAccount in place.
    pub async fn namespace(&self, name: &str) -> String {
        let api: Api<Namespace> = Api::all(self.client.clone());
        if api.get_opt(name).await.ok().flatten().is_some() {
            let _ = api.delete(name, &DeleteParams::default()).await;
            wait_for(
                &format!("old namespace {name} gone"),
                Duration::from_secs(120),
                || {
                    let api = api.clone();
                    async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
                },
            )
            .await;
        }
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("a namespace");
        api.create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("cannot create namespace {name}: {e}"));
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), name);
        wait_for(
            &format!("ServiceAccount default in {name}"),
            Duration::from_secs(60),
            || {
                let accounts = accounts.clone();
                async move { accounts.get_opt("default").await.ok().flatten() }
            },
        )
        .await;
        name.to_owned()
    }

    /// Makes sure namespace `name` exists (kept if it does).
    pub async fn namespace_if_missing(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        if api.get_opt(name).await.ok().flatten().is_none() {
            self.namespace(name).await;
        }
    }

    /// The Prometheus Operator's real ServiceMonitor and PodMonitor CRDs (built beside the
    /// control plane), so that the chart's monitors meet their real schemas. A cluster given by
    /// `KUBECONFIG` is expected to have them.
    pub async fn monitor_crds(&self) {
        let Some(bin) = &self.cluster.bin else {
            return;
        };
        self.apply_crds(
            &bin.join("crds"),
            &[
                "servicemonitors.monitoring.coreos.com",
                "podmonitors.monitoring.coreos.com",
            ],
        )
        .await;
    }

    /// `kubectl apply --server-side` of the CRDs in `path` (a file or folder), then waits until
    /// each of `names` is established.
    pub async fn apply_crds(&self, path: &std::path::Path, names: &[&str]) {
        let mut apply = self.cluster.kubectl();
        apply.args(["apply", "--server-side", "-f"]).arg(path);
        run(apply).await;
        let mut wait = self.cluster.kubectl();
        wait.args(["wait", "--for=condition=Established", "--timeout=60s"])
            .args(names.iter().map(|name| format!("crd/{name}")));
        run(wait).await;
    }

    /// Installs the chart once (`helm install --wait`); returns Helm's output (with NOTES).
    pub async fn install_chart(&self) -> &str {
        self.installed
            .get_or_init(|| async {
                self.monitor_crds().await;
                // The chart's workloads need a node to run on.
                self.nodes(&["e2e-infra"], &[("e2e/role", "infra")]).await;
                let home = self.dir.join("helm");
                std::fs::create_dir_all(&home).expect("helm home");
                let values = crate::chart::values_file(
                    &home,
                    &crate::chart::ValueSet {
                        name: "e2e",
                        values: json!({
                            "metrics": {"serviceMonitor": {"enabled": true}},
                            "networkPolicy": {"enabled": true},
                        }),
                    },
                );
                let mut helm = self.cluster.helm(&home);
                helm.args(["install", RELEASE])
                    .arg(chart_dir())
                    .args([
                        "--namespace",
                        RELEASE_NAMESPACE,
                        "--create-namespace",
                        "--wait",
                        "--timeout",
                        "3m",
                        "--values",
                    ])
                    .arg(values);
                let installed = output(helm).await;
                if !installed.status.success() {
                    let mut state = self.cluster.kubectl();
                    state.args([
                        "get",
                        "all,events",
                        "--namespace",
                        RELEASE_NAMESPACE,
                        "-o",
                        "wide",
                    ]);
                    let state = output(state).await;
                    panic!(
                        "helm install failed:\n{}\n{}\nwhat the namespace holds:\n{}",
                        String::from_utf8_lossy(&installed.stdout),
                        String::from_utf8_lossy(&installed.stderr),
                        String::from_utf8_lossy(&state.stdout)
                    );
                }
                String::from_utf8_lossy(&installed.stdout).into_owned()
            })
            .await
    }

    /// Starts `binary run` as replica `identity`, authenticated as the chart's ServiceAccount
    /// `account` (the chart is installed first).
    pub async fn start_controller(
        &self,
        binary: &str,
        account: &str,
        identity: &str,
        extra_args: &[&str],
    ) -> ControllerProcess {
        self.launch_controller(binary, account, identity, extra_args, Vec::new(), None)
            .await
    }

    /// Starts `binary run` as [`World::start_controller`] does, with more environment, reaching
    /// the API server at `server` when given (a proxy in front of it).
    async fn launch_controller(
        &self,
        binary: &str,
        account: &str,
        identity: &str,
        extra_args: &[&str],
        env: Vec<(String, String)>,
        server: Option<String>,
    ) -> ControllerProcess {
        self.install_chart().await;
        let mut args = vec!["run".to_owned()];
        args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
        crate::controller::start(
            self.cluster,
            &self.client,
            Launch {
                binary,
                args,
                account: (RELEASE_NAMESPACE, account),
                identity,
                env,
                dir: &self.dir,
                server,
            },
        )
        .await
    }

    /// Starts an operator replica `identity` as the chart's operator ServiceAccount.
    pub async fn start_operator(&self, identity: &str) {
        self.start_operator_reaching(identity, RM_ADDRESS).await;
    }

    /// Starts an operator replica `identity` allowed to reach the RM at loopback address
    /// `rm_address` (its egress policy denies loopback otherwise).
    pub async fn start_operator_reaching(&self, identity: &str, rm_address: &str) {
        self.start_operator_with(identity, rm_address, Vec::new())
            .await;
    }

    /// [`World::start_operator_reaching`] with more environment (e.g. the Kerberos
    /// environment the chart gives it: `KRB5_CLIENT_KTNAME`, `KRB5CCNAME`, `KRB5_CONFIG`).
    pub async fn start_operator_with(
        &self,
        identity: &str,
        rm_address: &str,
        env: Vec<(String, String)>,
    ) {
        self.start_operator_process(identity, rm_address, env, None)
            .await;
    }

    /// Starts an operator replica `identity` that reaches the API server through `server` (a
    /// proxy in front of it).
    pub async fn start_operator_through(&self, identity: &str, server: String) {
        self.start_operator_process(identity, RM_ADDRESS, Vec::new(), Some(server))
            .await;
    }

    async fn start_operator_process(
        &self,
        identity: &str,
        rm_address: &str,
        env: Vec<(String, String)>,
        server: Option<String>,
    ) {
        let process = self
            .launch_controller(
                "elastic-yarn-operator",
                "elastic-yarn-operator",
                identity,
                &[&format!("--allow-egress-cidr={rm_address}/32")],
                env,
                server,
            )
            .await;
        self.operators.lock().await.push(process);
    }

    /// Makes sure an operator runs and leads (starting `operator-a` if none was started).
    pub async fn operator(&self) {
        if self.operators.lock().await.is_empty() {
            self.start_operator("operator-a").await;
        }
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(self.client.clone(), RELEASE_NAMESPACE);
        wait_for("an operator to lead", Duration::from_secs(60), || {
            let leases = leases.clone();
            async move {
                let lease = leases.get_opt("elastic-yarn-operator").await.ok()??;
                lease.spec?.holder_identity
            }
        })
        .await;
    }

    /// The operators' logs, for failure messages.
    pub async fn operator_logs(&self) -> String {
        let operators = self.operators.lock().await;
        operators
            .iter()
            .map(|o| o.process.tail(40))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs a command off the async threads, returning its stdout; panics with its output when it
/// fails.
pub async fn run(mut command: std::process::Command) -> String {
    tokio::task::spawn_blocking(move || testkit::kubernetes::run_ok(&mut command))
        .await
        .expect("the command ran")
}

/// Runs a command off the async threads and returns its whole output, success or not.
pub async fn output(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
    })
    .await
    .expect("the command ran")
}
