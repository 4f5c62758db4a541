//! The chain suite's stand-in for the kubelet of its fake nodes. kwok gives the operator's NM
//! pods a phase and an IP (on loopback) but runs nothing; the launcher runs what each Running
//! NM pod describes, as a kubelet would run its containers:
//!
//! - the `hadoop-conf` init container as the real `hadoop-conf` binary: the pool's ConfigMap
//!   written into the pod's folder as the kubelet fills a volume, the container's own arguments
//!   and variables (`$(VAR)` expanded as the kubelet does, `fieldRef`s filled from the pod),
//!   volume paths mapped to folders of this run;
//! - the `nodemanager` container as a real NodeManager, bound to the pod's IP, with the
//!   configuration `hadoop-conf` rendered, started through the NodeManager image's entrypoint
//!   (`images/nodemanager/nodemanager`, by testkit);
//! - the `guarder` container as the real guarder with the pod's own arguments, its token read
//!   from the pod's Secret, listening on the pod's IP. Its scope is the NodeManager's process
//!   tree (what the pod's PID namespace is in a cluster).
//!
//! A guarder that exits is started again, as the kubelet restarts a container of a pod whose
//! restart policy is `Always`. The NodeManager's process tree runs in a cgroup with the CPU cap
//! the node would put on the container (`pod_cgroup`). When a pod goes (deleted by the
//! operator), its processes are stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use elastic_yarn_operator::build::{
    GUARDER_CONTAINER, HADOOP_CONF_CONTAINER, HADOOP_CONF_VOLUME, NODE_MANAGER_CONTAINER,
    POOL_CONF_VOLUME, names,
};
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret, Volume};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use testkit::hadoop::{NodeManagerOptions, YarnCluster};
use testkit::supervised::Supervised;

use crate::pod_cgroup::{PodCgroup, cpu_limit_millis};
use crate::pools::{node_of, running};

/// What the launcher runs for one pod.
#[derive(Clone, Debug)]
pub struct Launched {
    /// The pod.
    pub pod: String,
    /// Its Kubernetes node.
    pub node: String,
    /// The pod's IP.
    pub ip: String,
    /// The node id the NodeManager registered with.
    pub node_id: String,
    /// The guarder's base URL.
    pub guarder: String,
    /// The guarder's log file.
    pub guarder_log: PathBuf,
    /// The NodeManager's log file.
    pub nm_log: PathBuf,
    /// Its containers' logs (`yarn.nodemanager.log-dirs`, mapped to this run's folder).
    pub container_logs: PathBuf,
    /// The CFS quota of the NodeManager's cgroup, from the pod's CPU limit (`-1`: none).
    pub cpu_quota_micros: i64,
    /// That cgroup (the NodeManager and every YARN container it started).
    pub cgroup: PathBuf,
}

struct Running {
    uid: String,
    launched: Launched,
    nm_index: usize,
    guarder: Supervised,
    // To start the guarder again when it exits, as the kubelet restarts a container.
    guarder_command: Command,
    guarder_restarts: u32,
    // Dropped (removed) after the NodeManager stopped.
    _cgroup: PodCgroup,
}

#[derive(Default)]
struct State {
    running: Vec<Running>,
    stopped: Vec<Launched>,
    failures: Vec<String>,
}

/// The launcher of one pool's NM pods.
pub struct Launcher {
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launcher").finish_non_exhaustive()
    }
}

/// Where the launcher finds what it needs.
#[derive(Clone)]
pub struct LaunchContext {
    /// An administrator's client (reads pods, ConfigMaps and Secrets).
    pub client: Client,
    /// The pool's namespace.
    pub namespace: String,
    /// The pool.
    pub pool: String,
    /// The YARN cluster the NodeManagers join.
    pub yarn: Arc<Mutex<YarnCluster>>,
    /// Folder for tokens, volumes and logs.
    pub dir: PathBuf,
}

impl std::fmt::Debug for LaunchContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchContext")
            .field("namespace", &self.namespace)
            .field("pool", &self.pool)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Launcher {
    /// Starts watching the pool's NM pods (every half second).
    pub fn start(context: LaunchContext) -> Launcher {
        let state = Arc::new(Mutex::new(State::default()));
        let task = tokio::spawn(watch(context, state.clone()));
        Launcher { state, task }
    }

    /// What runs now.
    pub fn running(&self) -> Vec<Launched> {
        lock(&self.state)
            .running
            .iter()
            .map(|r| r.launched.clone())
            .collect()
    }

    /// What ran and was stopped because its pod went.
    pub fn stopped(&self) -> Vec<Launched> {
        lock(&self.state).stopped.clone()
    }

    /// Pods the launcher could not run, with the reason.
    pub fn failures(&self) -> Vec<String> {
        lock(&self.state).failures.clone()
    }

    /// Kills the guarder of `pod` (SIGKILL); the launcher starts it again.
    pub fn kill_guarder(&self, pod: &str) {
        let mut state = lock(&self.state);
        let running = state
            .running
            .iter_mut()
            .find(|r| r.launched.pod == pod)
            .unwrap_or_else(|| panic!("no guarder runs for {pod}"));
        running.guarder.signal("KILL");
    }

    /// How many times the guarder of `pod` was started again after it exited.
    pub fn guarder_restarts(&self, pod: &str) -> u32 {
        lock(&self.state)
            .running
            .iter()
            .find(|r| r.launched.pod == pod)
            .map_or(0, |r| r.guarder_restarts)
    }
}

/// Everything the guarders of a pod logged, the earlier runs first.
pub fn guarder_log_text(launched: &Launched) -> String {
    let mut text = String::new();
    for restart in 1.. {
        let earlier = earlier_guarder_log(&launched.guarder_log, restart);
        match std::fs::read_to_string(&earlier) {
            Ok(part) => text.push_str(&part),
            Err(_) => break,
        }
    }
    text.push_str(&std::fs::read_to_string(&launched.guarder_log).unwrap_or_default());
    text
}

/// Where the log of the guarder's run before its `restart`-th restart is kept.
fn earlier_guarder_log(log: &Path, restart: u32) -> PathBuf {
    log.with_extension(format!("{restart}.log"))
}

/// Starts again the guarders that exited while their pod runs (restartPolicy Always).
fn restart_exited_guarders(state: &Mutex<State>) {
    let mut state = lock(state);
    for running in &mut state.running {
        if running.guarder.running() {
            continue;
        }
        running.guarder_restarts += 1;
        let log = running.launched.guarder_log.clone();
        let _ = std::fs::rename(&log, earlier_guarder_log(&log, running.guarder_restarts));
        running.guarder = Supervised::start(
            &format!("guarder {}", running.launched.pod),
            &running.guarder_command,
            &log,
        );
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn watch(context: LaunchContext, state: Arc<Mutex<State>>) {
    let pods_api: Api<Pod> = Api::namespaced(context.client.clone(), &context.namespace);
    let selector = ListParams::default().labels(&names::node_manager_selector(&context.pool));
    loop {
        // A failed LIST is what a kubelet would ride out too: try again next round (a panic
        // here would silently end the launcher).
        let pods = match pods_api.list(&selector).await {
            Ok(list) => list.items,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let live: Vec<&Pod> = pods.iter().filter(|p| running(p)).collect();
        // Pods that went: stop what ran for them.
        let gone: Vec<Running> = {
            let mut state = lock(&state);
            let (kept, gone) = std::mem::take(&mut state.running)
                .into_iter()
                .partition(|r| live.iter().any(|p| p.uid().as_deref() == Some(&r.uid)));
            state.running = kept;
            gone
        };
        for mut stopped in gone {
            stopped.guarder.stop();
            let yarn = context.yarn.clone();
            let index = stopped.nm_index;
            let _ = tokio::task::spawn_blocking(move || lock(&yarn).stop_node_manager(index)).await;
            lock(&state).stopped.push(stopped.launched);
        }
        restart_exited_guarders(&state);
        for pod in live {
            let uid = pod.uid().unwrap_or_default();
            let known = {
                let state = lock(&state);
                state.running.iter().any(|r| r.uid == uid)
                    || state.failures.iter().any(|f| f.starts_with(&uid))
            };
            if known {
                continue;
            }
            match launch(&context, pod).await {
                Ok(running) => lock(&state).running.push(running),
                Err(error) => lock(&state)
                    .failures
                    .push(format!("{uid} {}: {error}", pod.name_any())),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn container<'a>(pod: &'a Pod, name: &str) -> Result<&'a Container, String> {
    pod.spec
        .as_ref()
        .and_then(|spec| {
            spec.containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == name)
        })
        .ok_or_else(|| format!("no {name} container"))
}

/// The container's environment as the kubelet gives it: literal values with `$(VAR)` expanded
/// from the variables before them, `fieldRef`s from the pod.
fn environment(pod: &Pod, container: &Container, ip: &str) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for EnvVar {
        name,
        value,
        value_from,
    } in container.env.iter().flatten()
    {
        let resolved = match (
            value,
            value_from.as_ref().and_then(|f| f.field_ref.as_ref()),
        ) {
            (Some(value), _) => expand(value, &values),
            (None, Some(field)) => match field.field_path.as_str() {
                "status.podIP" => ip.to_owned(),
                "spec.nodeName" => pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
                "metadata.name" => pod.name_any(),
                _ => continue,
            },
            (None, None) => continue,
        };
        values.insert(name.clone(), resolved);
    }
    values
}

fn expand(value: &str, defined: &BTreeMap<String, String>) -> String {
    let mut text = value.to_owned();
    for (name, replacement) in defined {
        text = text.replace(&format!("$({name})"), replacement);
    }
    text
}

/// Where each of the container's volumes lives in this run.
fn volume_folders(container: &Container, pod_dir: &Path) -> Vec<(String, PathBuf)> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|mount| (mount.mount_path.clone(), pod_dir.join(&mount.name)))
        .collect()
}

fn map_paths(value: &str, folders: &[(String, PathBuf)]) -> String {
    folders
        .iter()
        .find(|(mount, _)| value.starts_with(mount.as_str()))
        .map_or_else(
            || value.to_owned(),
            |(mount, folder)| format!("{}{}", folder.display(), &value[mount.len()..]),
        )
}

/// The pod's volume `name`.
fn volume<'a>(pod: &'a Pod, name: &str) -> Option<&'a Volume> {
    pod.spec
        .as_ref()
        .and_then(|spec| spec.volumes.as_ref())
        .and_then(|volumes| volumes.iter().find(|v| v.name == name))
}

fn config_map_name(pod: &Pod) -> Result<String, String> {
    volume(pod, POOL_CONF_VOLUME)
        .and_then(|v| v.config_map.as_ref())
        .map(|c| c.name.clone())
        .ok_or_else(|| format!("no {POOL_CONF_VOLUME} ConfigMap volume"))
}

/// Runs the pod's `hadoop-conf` init container as the real binary: the ConfigMap's files in
/// the pool-conf volume's folder, the container's arguments and variables with this run's
/// folders. Returns the folder of the rendered configuration.
async fn render_hadoop_conf(
    context: &LaunchContext,
    pod: &Pod,
    ip: &str,
    pod_dir: &Path,
) -> Result<PathBuf, String> {
    let init = container(pod, HADOOP_CONF_CONTAINER)?;
    let maps: Api<ConfigMap> = Api::namespaced(context.client.clone(), &context.namespace);
    let name = config_map_name(pod)?;
    let map = maps
        .get(&name)
        .await
        .map_err(|e| format!("ConfigMap {name}: {e}"))?;
    let pool_conf = pod_dir.join(POOL_CONF_VOLUME);
    std::fs::create_dir_all(&pool_conf).map_err(|e| format!("{}: {e}", pool_conf.display()))?;
    for (file, text) in map.data.iter().flatten() {
        std::fs::write(pool_conf.join(file), text).map_err(|e| format!("{file}: {e}"))?;
    }
    // The settings name the NM container's paths; the arguments name the init container's.
    let mut folders = volume_folders(container(pod, NODE_MANAGER_CONTAINER)?, pod_dir);
    folders.extend(volume_folders(init, pod_dir));
    let mut command = Command::new(testkit::workspace_binary("hadoop-conf"));
    command.env_clear();
    command.args(
        init.args
            .iter()
            .flatten()
            .map(|arg| match arg.split_once('=') {
                Some((flag, path)) => format!("{flag}={}", map_paths(path, &folders)),
                None => arg.clone(),
            }),
    );
    for (name, value) in environment(pod, init, ip) {
        command.env(name, map_paths(&value, &folders));
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("hadoop-conf: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the hadoop-conf init container failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(pod_dir.join(HADOOP_CONF_VOLUME))
}

/// The NodeManager's settings: the yarn-site.xml the pod's init container rendered.
async fn node_manager_settings(
    context: &LaunchContext,
    pod: &Pod,
    ip: &str,
    pod_dir: &Path,
) -> Result<NodeManagerOptions, String> {
    let conf = render_hadoop_conf(context, pod, ip, pod_dir).await?;
    let site = std::fs::read_to_string(conf.join("yarn-site.xml"))
        .map_err(|e| format!("the rendered yarn-site.xml: {e}"))?;
    let properties: Vec<(String, String)> = guarder::hadoop_conf::parse("yarn-site.xml", &site)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|property| (property.name, property.value))
        .collect();
    let folders = volume_folders(container(pod, NODE_MANAGER_CONTAINER)?, pod_dir);
    let setting = |key: &str| {
        properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("the pod does not set {key}"))
    };
    let number = |key: &str| -> Result<u64, String> {
        setting(key)?.parse().map_err(|e| format!("{key}: {e}"))
    };
    let address = setting("yarn.nodemanager.address")?;
    let rpc_port = address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| format!("yarn.nodemanager.address {address:?} has no port"))?;
    for (_, folder) in &folders {
        std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    Ok(NodeManagerOptions {
        host: setting("yarn.nodemanager.hostname")?,
        memory_mb: number("yarn.nodemanager.resource.memory-mb")?,
        vcores: u32::try_from(number("yarn.nodemanager.resource.cpu-vcores")?)
            .map_err(|e| e.to_string())?,
        rpc_port,
        properties,
        env: Vec::new(),
    })
}

/// The guarder's command: the pod's arguments, its listen address on the pod's IP, its token
/// from the pod's Secret, scoped to the NodeManager's process tree.
async fn guarder_command(
    context: &LaunchContext,
    pod: &Pod,
    ip: &str,
    pod_dir: &Path,
    scope: u32,
) -> Result<(Command, u16), String> {
    let container = container(pod, GUARDER_CONTAINER)?;
    let secret_name = volume(pod, "guarder-token")
        .and_then(|v| v.secret.as_ref())
        .and_then(|s| s.secret_name.clone())
        .ok_or("no guarder-token Secret volume")?;
    let secrets: Api<Secret> = Api::namespaced(context.client.clone(), &context.namespace);
    let secret = secrets
        .get(&secret_name)
        .await
        .map_err(|e| format!("Secret {secret_name}: {e}"))?;
    let token = secret
        .data
        .as_ref()
        .and_then(|d| d.values().next())
        .map(|bytes| bytes.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.values().next())
                .map(|text| text.clone().into_bytes())
        })
        .ok_or_else(|| format!("Secret {secret_name} is empty"))?;
    let token_file = pod_dir.join("guarder-token");
    std::fs::write(&token_file, token).map_err(|e| e.to_string())?;
    let mut command = Command::new(testkit::workspace_binary("guarder"));
    let mut port = None;
    for arg in container.args.iter().flatten() {
        if let Some(listen) = arg.strip_prefix("--listen=") {
            let number: u16 = listen
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .ok_or_else(|| format!("{arg}: no port"))?;
            port = Some(number);
            command.arg(format!("--listen={ip}:{number}"));
        } else if arg.starts_with("--token-file=") {
            command.arg(format!("--token-file={}", token_file.display()));
        } else {
            command.arg(arg);
        }
    }
    command
        .args(["--scope-pid", &scope.to_string()])
        .arg("--cgroup-root")
        .arg(pod_dir.join("no-cgroups"));
    Ok((command, port.ok_or("the guarder has no --listen")?))
}

async fn launch(context: &LaunchContext, pod: &Pod) -> Result<Running, String> {
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .ok_or("no pod IP")?;
    let name = pod.name_any();
    let pod_dir = context.dir.join(&name);
    std::fs::create_dir_all(&pod_dir).map_err(|e| e.to_string())?;
    let options = node_manager_settings(context, pod, &ip, &pod_dir).await?;
    let container_logs = options
        .properties
        .iter()
        .rev()
        .find(|(key, _)| key == "yarn.nodemanager.log-dirs")
        .map(|(_, value)| PathBuf::from(value))
        .ok_or("the pod does not set yarn.nodemanager.log-dirs")?;
    let yarn = context.yarn.clone();
    let (nm_index, node_id, scope, nm_log) = tokio::task::spawn_blocking(move || {
        let mut cluster = lock(&yarn);
        let index = cluster.add_node_manager(&options);
        let nm = &cluster.node_managers[index];
        (
            index,
            nm.node_id.clone(),
            nm.process.pid(),
            nm.process.log.clone(),
        )
    })
    .await
    .map_err(|e| format!("the NodeManager did not start: {e}"))?;
    // The node's cap on the NM container, before the NM starts any YARN container.
    let limit = cpu_limit_millis(container(pod, NODE_MANAGER_CONTAINER)?)?;
    let run = format!("{}-{}", std::process::id(), context.pool);
    let cgroup = PodCgroup::enforce(&run, &name, limit, scope)?;
    let cpu_quota_micros = cgroup.quota_micros()?;
    let (command, port) = guarder_command(context, pod, &ip, &pod_dir, scope).await?;
    let guarder_log = pod_dir.join("guarder.log");
    let guarder = Supervised::start(&format!("guarder {name}"), &command, &guarder_log);
    let ready = {
        let ip = ip.clone();
        tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(|| {
                testkit::wait_for_tcp_at(&ip, port, Duration::from_secs(30), "the guarder");
            })
            .is_ok()
        })
        .await
        .unwrap_or(false)
    };
    if !ready {
        return Err(format!("the guarder did not listen:\n{}", guarder.tail(20)));
    }
    Ok(Running {
        uid: pod.uid().unwrap_or_default(),
        launched: Launched {
            pod: name,
            node: node_of(pod),
            ip: ip.clone(),
            node_id,
            guarder: format!("http://{ip}:{port}"),
            guarder_log,
            nm_log,
            container_logs,
            cpu_quota_micros,
            cgroup: cgroup.path().to_path_buf(),
        },
        nm_index,
        guarder,
        guarder_command: command,
        guarder_restarts: 0,
        _cgroup: cgroup,
    })
}
