//! A real Kubernetes control plane on loopback, for end-to-end tests: etcd, kube-apiserver
//! (RBAC on, real serving certificates, service-account tokens, an audit log of what service
//! accounts do), kube-controller-manager (garbage collector, namespaces, service accounts, ...),
//! kube-scheduler, and kwok giving fake nodes and their pods a lifecycle (there is no kubelet).
//! The binaries are built from Go modules by `testkit/go/build` and cached by version.
//!
//! [`Cluster::shared`] gives a test binary one cluster: the one `KUBECONFIG` names when it is
//! set (any real cluster), or else a local control plane started once for the binary.

pub mod certs;
pub mod nodes;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::supervised::Supervised;
use crate::{free_port, wait_for_tcp};
pub use certs::ClientCert;

/// The versions `testkit/go/build` builds.
const VERSIONS: &str = include_str!("../../go/versions.env");

/// The Kubernetes release the control plane is built from (`KUBERNETES_VERSION` in
/// `testkit/go/versions.env`).
pub fn kubernetes_version() -> &'static str {
    VERSIONS
        .lines()
        .find_map(|line| line.strip_prefix("KUBERNETES_VERSION="))
        .map_or("", str::trim)
}

/// Turns a skip into a failure (the test command sets it).
pub const REQUIRE_E2E: &str = "ELASTIC_YARN_REQUIRE_E2E";
/// The folder of prebuilt binaries (`testkit/go/build` prints it); without it the tests build
/// them (cached).
pub const BIN_ENV: &str = "ELASTIC_YARN_KUBE_BIN";

/// Service accounts' requests are audited (their verbs are what the chart's RBAC must grant);
/// the components' own traffic is not.
const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
"#;

/// kwok's lifecycle for fake nodes (annotated `kwok.x-k8s.io/node: fake`) and their pods.
const KWOK_STAGES: &str = include_str!("kwok-stages.yaml");

/// The annotation that hands a Node to kwok.
pub const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// Whether e2e tests must run rather than skip.
pub fn e2e_required() -> bool {
    std::env::var(REQUIRE_E2E).as_deref() == Ok("1")
}

/// A cluster the e2e tests run against.
#[derive(Debug)]
pub struct Cluster {
    /// An administrator's kubeconfig.
    pub kubeconfig: PathBuf,
    /// The API server's URL.
    pub server: String,
    /// The CA that signed the API server's certificate (PEM).
    pub ca_pem: String,
    /// `kubectl`, `helm` and the other binaries (`None`: take them from `PATH`).
    pub bin: Option<PathBuf>,
    /// The local control plane (`None` for a cluster given by `KUBECONFIG`).
    pub local: Option<ControlPlane>,
}

static SHARED: OnceLock<Option<Cluster>> = OnceLock::new();

impl Cluster {
    /// The cluster of this test binary, or `None` (the test skips) when there is none and
    /// e2e tests are not required.
    pub fn shared() -> Option<&'static Cluster> {
        SHARED.get_or_init(Cluster::find).as_ref()
    }

    fn find() -> Option<Cluster> {
        if let Some(path) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
            return Some(Cluster::external(PathBuf::from(path)));
        }
        let Some(bin) = binaries() else {
            assert!(
                !e2e_required(),
                "{REQUIRE_E2E}=1 but there is no cluster: set KUBECONFIG, or {BIN_ENV}, or \
                 install Go so that testkit/go/build can build the control plane"
            );
            eprintln!("SKIPPED: no KUBECONFIG and no Go to build a local control plane");
            return None;
        };
        let local = ControlPlane::start(&bin);
        Some(Cluster {
            kubeconfig: local.admin_kubeconfig.clone(),
            server: local.server.clone(),
            ca_pem: local.ca_pem.clone(),
            bin: Some(bin),
            local: Some(local),
        })
    }

    fn external(kubeconfig: PathBuf) -> Cluster {
        let view = |path: &str| {
            let output = Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["config", "view", "--minify", "--raw", "-o"])
                .arg(format!("jsonpath={path}"))
                .output()
                .expect("kubectl on PATH reads KUBECONFIG");
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let server = view("{.clusters[0].cluster.server}");
        let ca = view("{.clusters[0].cluster.certificate-authority-data}");
        let ca_pem = STANDARD
            .decode(ca.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        Cluster {
            kubeconfig,
            server,
            ca_pem,
            bin: None,
            local: None,
        }
    }

    /// A program of the cluster's toolset (`kubectl`, `helm`, `kwok`, ...).
    pub fn program(&self, name: &str) -> PathBuf {
        match &self.bin {
            Some(bin) => bin.join(name),
            None => PathBuf::from(name),
        }
    }

    /// `kubectl` as the administrator.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(self.program("kubectl"));
        command.arg("--kubeconfig").arg(&self.kubeconfig);
        command
    }

    /// `helm` as the administrator, with its caches in a private folder.
    pub fn helm(&self, home: &Path) -> Command {
        let mut command = Command::new(self.program("helm"));
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"));
        command
    }

    /// Runs `kubectl` with `args`, failing the test with its output when it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        run_ok(self.kubectl().args(args))
    }

    /// A kubeconfig that authenticates with a bearer `token` (a service account's).
    pub fn token_kubeconfig(&self, token: &str, path: &Path) {
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": {
                "server": self.server,
                "certificate-authority-data": STANDARD.encode(&self.ca_pem),
            }}],
            "users": [{"name": "token", "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "token"}}],
            "current-context": "e2e",
        });
        std::fs::write(path, config.to_string()).expect("kubeconfig");
    }

    /// The audit log of service accounts' requests (local control plane only).
    pub fn audit_log(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.audit_log.as_path())
    }
}

/// Runs a command, returning its stdout, or panics with its stderr.
pub fn run_ok(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The prebuilt binaries: `ELASTIC_YARN_KUBE_BIN`, else built now (cached by version) when Go
/// is installed.
pub fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    crate::program("go").or_else(|| which("go"))?;
    Some(crate::run_cache_script("go/build", &[]))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// The local control plane's processes and files.
#[derive(Debug)]
pub struct ControlPlane {
    dir: tempfile::TempDir,
    /// The administrator's kubeconfig (client certificate in `system:masters`).
    pub admin_kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// The cluster CA (PEM).
    pub ca_pem: String,
    /// Service accounts' requests, one JSON audit event per line.
    pub audit_log: PathBuf,
    bin: PathBuf,
    processes: Mutex<Vec<Supervised>>,
}

impl ControlPlane {
    /// Starts etcd, the API server, the controller manager, the scheduler and kwok from the
    /// binaries in `bin`, and waits until the API server is ready.
    pub fn start(bin: &Path) -> ControlPlane {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("elastic-yarn-kube-")
            .tempdir()
            .expect("control plane folder");
        let path = |name: &str| dir.path().join(name);
        let authority = certs::Authority::create(dir.path());
        let mut processes = Vec::new();

        let etcd_port = free_port();
        let peer_port = free_port();
        let etcd = format!("http://127.0.0.1:{etcd_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let mut command = Command::new(bin.join("etcd"));
        command.args([
            "--name=e2e",
            &format!("--data-dir={}", path("etcd").display()),
            &format!("--listen-client-urls={etcd}"),
            &format!("--advertise-client-urls={etcd}"),
            &format!("--listen-peer-urls={peer}"),
            &format!("--initial-advertise-peer-urls={peer}"),
            &format!("--initial-cluster=e2e={peer}"),
            // A test cluster loses nothing worth an fsync per write.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]);
        processes.push(Supervised::start("etcd", &command, &path("etcd.log")));
        wait_for_tcp(etcd_port, Duration::from_secs(30), "etcd");

        let port = free_port();
        let server = format!("https://127.0.0.1:{port}");
        std::fs::write(path("audit-policy.yaml"), AUDIT_POLICY).expect("audit policy");
        let audit_log = path("audit.log");
        let mut command = Command::new(bin.join("kube-apiserver"));
        command.args([
            &format!("--etcd-servers={etcd}"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            &format!("--secure-port={port}"),
            &format!("--tls-cert-file={}", path(certs::SERVING_CERT).display()),
            &format!(
                "--tls-private-key-file={}",
                path(certs::SERVING_KEY).display()
            ),
            &format!("--client-ca-file={}", path(certs::CA_CERT).display()),
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            &format!(
                "--service-account-key-file={}",
                path(certs::SA_PUB).display()
            ),
            &format!(
                "--service-account-signing-key-file={}",
                path(certs::SA_KEY).display()
            ),
            "--api-audiences=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
            &format!(
                "--audit-policy-file={}",
                path("audit-policy.yaml").display()
            ),
            &format!("--audit-log-path={}", audit_log.display()),
            "--audit-log-maxsize=1024",
            "--allow-privileged=true",
            // Setting blockOwnerDeletion needs `update` on the owner's finalizers, as in
            // hardened clusters; the chart must grant it.
            "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
            "--v=1",
        ]);
        processes.push(Supervised::start(
            "kube-apiserver",
            &command,
            &path("kube-apiserver.log"),
        ));

        let ca_pem = authority.cert_pem.clone();
        let kubeconfig = |user: &str, group: Option<&str>| {
            let file = path(&format!("{}.kubeconfig", user.replace(':', "-")));
            write_cert_kubeconfig(&file, &server, &ca_pem, &authority.client(user, group));
            file
        };
        let admin_kubeconfig = kubeconfig("e2e-admin", Some("system:masters"));
        wait_ready(bin, &admin_kubeconfig, &mut processes);

        let controllers = kubeconfig("system:kube-controller-manager", None);
        let mut command = Command::new(bin.join("kube-controller-manager"));
        command.args([
            &format!("--kubeconfig={}", controllers.display()),
            &format!("--authentication-kubeconfig={}", controllers.display()),
            &format!("--authorization-kubeconfig={}", controllers.display()),
            "--bind-address=127.0.0.1",
            &format!("--secure-port={}", free_port()),
            "--leader-elect=false",
            // Every controller on by default (garbage collector, namespaces, service accounts,
            // node lifecycle: kwok renews the nodes' Leases as kubelets would).
            "--controllers=*",
            &format!(
                "--service-account-private-key-file={}",
                path(certs::SA_KEY).display()
            ),
            &format!("--root-ca-file={}", path(certs::CA_CERT).display()),
            "--use-service-account-credentials=true",
            "--concurrent-gc-syncs=5",
            "--v=1",
        ]);
        processes.push(Supervised::start(
            "kube-controller-manager",
            &command,
            &path("kube-controller-manager.log"),
        ));

        let scheduler = kubeconfig("system:kube-scheduler", None);
        let mut command = Command::new(bin.join("kube-scheduler"));
        command.args([
            &format!("--kubeconfig={}", scheduler.display()),
            &format!("--authentication-kubeconfig={}", scheduler.display()),
            &format!("--authorization-kubeconfig={}", scheduler.display()),
            "--bind-address=127.0.0.1",
            &format!("--secure-port={}", free_port()),
            "--leader-elect=false",
            "--v=1",
        ]);
        processes.push(Supervised::start(
            "kube-scheduler",
            &command,
            &path("kube-scheduler.log"),
        ));

        std::fs::write(path("kwok-stages.yaml"), KWOK_STAGES).expect("kwok stages");
        let kwok = kubeconfig("e2e-kwok", Some("system:masters"));
        let mut command = Command::new(bin.join("kwok"));
        command.args([
            &format!("--kubeconfig={}", kwok.display()),
            &format!("--config={}", path("kwok-stages.yaml").display()),
            "--manage-all-nodes=false",
            &format!("--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake"),
            // Pod IPs on loopback: a test can serve a pod's ports on its own address.
            "--cidr=127.1.0.0/16",
            "--node-ip=127.0.0.1",
            &format!("--server-address=127.0.0.1:{}", free_port()),
            // Node heartbeats through Leases in kube-node-lease, like a kubelet's.
            "--node-lease-duration-seconds=40",
        ]);
        processes.push(Supervised::start("kwok", &command, &path("kwok.log")));

        let plane = ControlPlane {
            dir,
            admin_kubeconfig,
            server,
            ca_pem: authority.cert_pem.clone(),
            audit_log,
            bin: bin.to_owned(),
            processes: Mutex::new(processes),
        };
        plane.wait_for_default_service_account();
        eprintln!(
            "control plane ready in {:.1} s ({})",
            started.elapsed().as_secs_f64(),
            plane.dir.path().display()
        );
        plane
    }

    /// The components' logs, for failure messages.
    pub fn logs(&self) -> String {
        let processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        processes
            .iter()
            .map(|p| p.tail(30))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The folder holding the certificates, kubeconfigs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The service-account controller runs: namespaces get their `default` account, which
    /// pods need before they can be created.
    fn wait_for_default_service_account(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = Command::new(self.bin.join("kubectl"))
                .arg("--kubeconfig")
                .arg(&self.admin_kubeconfig)
                .args(["get", "serviceaccount", "default", "--namespace", "default"])
                .output()
                .is_ok_and(|o| o.status.success());
            if found {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no default ServiceAccount within 60 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn write_cert_kubeconfig(path: &Path, server: &str, ca_pem: &str, client: &ClientCert) {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {
            "server": server,
            "certificate-authority-data": STANDARD.encode(ca_pem),
        }}],
        "users": [{"name": "user", "user": {
            "client-certificate-data": STANDARD.encode(&client.cert_pem),
            "client-key-data": STANDARD.encode(&client.key_pem),
        }}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "user"}}],
        "current-context": "e2e",
    });
    std::fs::write(path, config.to_string()).expect("kubeconfig");
}

/// Waits for `/readyz`, failing with the components' logs when the API server does not come up.
fn wait_ready(bin: &Path, kubeconfig: &Path, processes: &mut [Supervised]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ready = Command::new(bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["get", "--raw", "/readyz"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ready {
            return;
        }
        let dead: Vec<String> = processes
            .iter_mut()
            .filter_map(|p| (!p.running()).then(|| p.tail(40)))
            .collect();
        assert!(dead.is_empty(), "a component exited:\n{}", dead.join("\n"));
        assert!(
            Instant::now() < deadline,
            "the API server was not ready within 90 s:\n{}",
            processes
                .iter()
                .map(|p| p.tail(40))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
