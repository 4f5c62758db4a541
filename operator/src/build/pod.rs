//! The NodeManager pod: the NM, its guarder sidecar in the same PID namespace, the Hadoop
//! configuration, datasets and (with a static IP) the address, host name and keytab.

use std::collections::BTreeMap;
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, HostAlias, HostPathVolumeSource, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector,
    PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, TCPSocketAction,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::{
    self, DRAIN_DEADLINE_ANNOTATION, NODE_ANNOTATION, NODE_LABEL, YARN_NODE_ID_ANNOTATION,
};
use super::{BuildSettings, PoolRef};
use crate::crd::{AccountingMode, ApplicationMasterPolicy, ElasticNodePoolSpec};

/// Name of the NodeManager container.
pub const NODE_MANAGER_CONTAINER: &str = "nodemanager";
/// Name of the guarder sidecar.
pub const GUARDER_CONTAINER: &str = "guarder";
/// Name of the init container that renders the NM's Hadoop configuration.
pub const HADOOP_CONF_CONTAINER: &str = "hadoop-conf";
/// The renderer in the guarder image (guarder's `hadoop-conf` binary, docs/images.md).
pub const HADOOP_CONF_BINARY: &str = "/usr/local/bin/hadoop-conf";
/// Volume of the pool's ConfigMap.
pub const POOL_CONF_VOLUME: &str = "pool-conf";
/// Volume (an emptyDir) of the rendered configuration, the NM's `HADOOP_CONF_DIR`.
pub const HADOOP_CONF_VOLUME: &str = "hadoop-conf";
/// Key of the token inside the guarder token Secret.
pub const GUARDER_TOKEN_KEY: &str = "token";
/// Where the token Secret is mounted in the guarder.
const GUARDER_TOKEN_DIR: &str = "/var/run/elastic-yarn/guarder";
/// Where the guarder reads its token (`GUARDER_TOKEN_DIR` and the Secret's key).
pub const GUARDER_TOKEN_PATH: &str = "/var/run/elastic-yarn/guarder/token";

/// The NM's `HADOOP_CONF_DIR`: the rendered configuration.
pub const HADOOP_CONF_DIR: &str = "/etc/hadoop/conf";
/// Where the init container reads the pool's ConfigMap.
pub const POOL_CONF_DIR: &str = "/etc/hadoop/pool-conf";
const YARN_LOCAL_DIR: &str = "/var/lib/hadoop-yarn";
const KEYTAB_DIR: &str = "/etc/security/keytabs";
/// Koordinator's batch resources (docs/architecture.md, contract 6).
const BATCH_CPU: &str = "kubernetes.io/batch-cpu";
const BATCH_MEMORY: &str = "kubernetes.io/batch-memory";
/// What the NM daemon itself needs besides YARN's containers: added to the pod's batch
/// resources (`PodRequests`) or to the node annotation (`ThirdParty`).
pub const NM_DAEMON_MILLI_CORES: u64 = 1000;
/// The daemon's memory, bytes.
pub const NM_DAEMON_MEMORY_BYTES: u64 = 2 << 30;
const GUARDER_MILLI_CORES: u64 = 100;
const GUARDER_MEMORY_BYTES: u64 = 128 << 20;
/// Where the guarder sees the node's cgroup filesystem (read-only) when the pool names YARN's
/// cgroup hierarchy (`nodeManager.yarnCgroup`).
pub const NODE_CGROUP_DIR: &str = "/host/sys/fs/cgroup";
/// Extra seconds the kubelet waits after the guarder's grace period before killing the pod.
const TERMINATION_MARGIN_SECONDS: i64 = 30;

/// An address claimed from a `StaticIPPool` for one NodeManager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticAddress {
    /// The IP.
    pub ip: IpAddr,
    /// Fully qualified host name with DNS records (A and PTR) made ahead of time.
    pub fqdn: String,
    /// Annotations that make the CNI give the pod this IP (Calico, Kube-OVN or another key).
    pub cni_annotations: BTreeMap<String, String>,
    /// Secret holding the NM's keytab for this host (key `krb5.keytab`), when the pool has a
    /// realm.
    pub keytab_secret: Option<String>,
    /// The NM's Kerberos principal for this host, made with the keytab.
    pub principal: Option<String>,
}

/// One NodeManager of a pool: where it runs and what it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeManagerSlot {
    /// Kubernetes node.
    pub node: String,
    /// Static address, when the pool has a `StaticIPPool`.
    pub static_address: Option<StaticAddress>,
    /// Set while the NM drains: the time it is removed at the latest.
    pub drain_deadline: Option<Timestamp>,
}

/// Host the NM registers with YARN: the static FQDN (with DNS records made ahead of time), or
/// else the pod's IP, which AMs can reach without any DNS record. `None` when it is the pod IP
/// and that is not known yet.
pub fn yarn_host(slot: &NodeManagerSlot, pod_ip: Option<&str>) -> Option<String> {
    match &slot.static_address {
        Some(address) => Some(address.fqdn.clone()),
        None => pod_ip.map(str::to_owned),
    }
}

/// What the NM container is told to register as: the static FQDN, or `$(POD_IP)`, which the
/// kubelet expands from the `POD_IP` variable defined before it.
fn configured_host(slot: &NodeManagerSlot) -> String {
    yarn_host(slot, None).unwrap_or_else(|| "$(POD_IP)".to_owned())
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: path.to_owned(),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// A `yarn-site.xml` property of this pod, in the environment form the `hadoop-conf` init
/// container writes into the NM's configuration (`YARN-SITE.XML_<key>=<value>`, the names Apache
/// Hadoop's images use too; docs/images.md).
fn yarn_site(key: &str, value: impl Into<String>) -> EnvVar {
    env(&format!("YARN-SITE.XML_{key}"), value)
}

fn port(name: &str, number: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(number),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

fn batch_resources(milli_cores: u64, bytes: u64) -> ResourceRequirements {
    let list = BTreeMap::from([
        (BATCH_CPU.to_owned(), Quantity(milli_cores.to_string())),
        (BATCH_MEMORY.to_owned(), Quantity(bytes.to_string())),
    ]);
    ResourceRequirements {
        requests: Some(list.clone()),
        limits: Some(list),
        ..ResourceRequirements::default()
    }
}

/// Capacity the NM registers with before the operator first sizes it: the floor, but at least
/// one vcore with its memory, so that it registers as a usable node.
fn initial_capacity(spec: &ElasticNodePoolSpec) -> (u32, u64) {
    let floor = spec.capacity.floor;
    let vcores = floor.vcores.max(1);
    let memory = floor
        .memory_mb
        .max(u64::from(spec.capacity.memory_per_vcore_mb))
        .min(spec.capacity.ceiling.memory_mb.max(1));
    (vcores.min(spec.capacity.ceiling.vcores.max(1)), memory)
}

/// This pod's own Hadoop settings: where the NM listens and registers, its starting capacity,
/// its folders, its keytab and principal on a static address, and no shuffle service with
/// remote shuffle. `POD_IP` comes first: the kubelet expands `$(POD_IP)` in the values after it.
fn node_manager_settings(
    spec: &ElasticNodePoolSpec,
    host: &str,
    slot: &NodeManagerSlot,
) -> Vec<EnvVar> {
    let ports = spec.node_manager.ports;
    let (vcores, memory_mb) = initial_capacity(spec);
    let mut settings = vec![
        field_env("NODE_NAME", "spec.nodeName"),
        field_env("POD_IP", "status.podIP"),
        yarn_site("yarn.nodemanager.hostname", host),
        yarn_site("yarn.nodemanager.address", format!("{host}:{}", ports.rpc)),
        yarn_site(
            "yarn.nodemanager.webapp.address",
            format!("{host}:{}", ports.web),
        ),
        yarn_site(
            "yarn.nodemanager.localizer.address",
            format!("{host}:{}", ports.localizer),
        ),
        yarn_site("yarn.nodemanager.resource.cpu-vcores", vcores.to_string()),
        yarn_site("yarn.nodemanager.resource.memory-mb", memory_mb.to_string()),
        yarn_site(
            "yarn.nodemanager.resource.detect-hardware-capabilities",
            "false",
        ),
        yarn_site(
            "yarn.nodemanager.local-dirs",
            format!("{YARN_LOCAL_DIR}/local"),
        ),
        yarn_site(
            "yarn.nodemanager.log-dirs",
            format!("{YARN_LOCAL_DIR}/logs"),
        ),
    ];
    // With remote shuffle the NM serves no shuffle data (no `spark_shuffle` or
    // `mapreduce_shuffle` aux service): nothing is lost when it shrinks or leaves, and it needs
    // no extra memory for a shuffle service.
    if spec
        .shuffle
        .as_ref()
        .is_some_and(|shuffle| shuffle.uniffle.is_some())
    {
        settings.push(yarn_site("yarn.nodemanager.aux-services", ""));
    }
    if let Some(hierarchy) = &spec.node_manager.yarn_cgroup {
        settings.push(yarn_site(
            "yarn.nodemanager.linux-container-executor.cgroups.hierarchy",
            hierarchy.clone(),
        ));
    }
    if let Some(address) = &slot.static_address
        && address.keytab_secret.is_some()
    {
        settings.push(yarn_site(
            "yarn.nodemanager.keytab",
            format!("{KEYTAB_DIR}/{}", staticip::crd::KEYTAB_KEY),
        ));
        // The exact principal, not `nm/_HOST@...`: Hadoop fills `_HOST` from the pod's own
        // canonical name, which is the cluster's pod name, not the static FQDN.
        if let Some(principal) = &address.principal {
            settings.push(yarn_site("yarn.nodemanager.principal", principal.clone()));
        }
    }
    settings
}

/// The renderer needs no identity: it runs as the guarder image's unprivileged user whatever
/// the pod's or the image's user (an image built to run the guarder as root, for a
/// LinuxContainerExecutor, must not make the init container root), with no privilege, no
/// capability and nothing written but the emptyDir, whose files every user may read.
const RENDERER_USER: i64 = 65532;

fn renderer_security_context() -> SecurityContext {
    SecurityContext {
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        run_as_non_root: Some(true),
        run_as_user: Some(RENDERER_USER),
        run_as_group: Some(RENDERER_USER),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

/// The init container that renders the NM's configuration: the pool's ConfigMap copied into
/// the writable `HADOOP_CONF_DIR` volume, with this pod's settings written into it. It runs the
/// guarder's image (every pool has one), so the NM image needs nothing of elastic-yarn.
fn hadoop_conf_container(
    spec: &ElasticNodePoolSpec,
    settings: &BuildSettings,
    host: &str,
    slot: &NodeManagerSlot,
) -> Container {
    Container {
        name: HADOOP_CONF_CONTAINER.to_owned(),
        image: Some(guarder_image(spec, settings)),
        command: Some(vec![HADOOP_CONF_BINARY.to_owned()]),
        args: Some(vec![
            format!("--from={POOL_CONF_DIR}"),
            format!("--to={HADOOP_CONF_DIR}"),
        ]),
        env: Some(node_manager_settings(spec, host, slot)),
        resources: Some(batch_resources(GUARDER_MILLI_CORES, GUARDER_MEMORY_BYTES)),
        volume_mounts: Some(vec![
            mount(POOL_CONF_VOLUME, POOL_CONF_DIR, true),
            mount(HADOOP_CONF_VOLUME, HADOOP_CONF_DIR, false),
        ]),
        security_context: Some(renderer_security_context()),
        ..Container::default()
    }
}

fn guarder_image(spec: &ElasticNodePoolSpec, settings: &BuildSettings) -> String {
    spec.guarder
        .image
        .clone()
        .unwrap_or_else(|| settings.guarder_image.clone())
}

fn node_manager_container(spec: &ElasticNodePoolSpec, slot: &NodeManagerSlot) -> Container {
    let ports = spec.node_manager.ports;
    let environment = vec![
        field_env("NODE_NAME", "spec.nodeName"),
        field_env("POD_IP", "status.podIP"),
        env("HADOOP_CONF_DIR", HADOOP_CONF_DIR),
        env("YARN_CONF_DIR", HADOOP_CONF_DIR),
    ];
    let mut mounts = vec![
        mount(HADOOP_CONF_VOLUME, HADOOP_CONF_DIR, true),
        mount("yarn-local", YARN_LOCAL_DIR, false),
    ];
    if let Some(address) = &slot.static_address
        && address.keytab_secret.is_some()
    {
        mounts.push(mount("nm-keytab", KEYTAB_DIR, true));
    }
    for (index, dataset) in spec.datasets.iter().enumerate() {
        mounts.push(mount(
            &format!("dataset-{index}"),
            &dataset.mount_path,
            false,
        ));
    }
    let resources = match spec.koordinator.accounting {
        // The pod reserves the ceiling: Koordinator accounts for YARN through the pod itself.
        AccountingMode::PodRequests => Some(batch_resources(
            u64::from(spec.capacity.ceiling.vcores) * 1000 + NM_DAEMON_MILLI_CORES,
            (spec.capacity.ceiling.memory_mb << 20) + NM_DAEMON_MEMORY_BYTES,
        )),
        // YARN's use and the daemon's go into the node annotation, and the container carries
        // no resources: YARN's containers are the NM's children in its cgroup, so any limit
        // here (koordlet turns batch limits into a CFS quota and a memory limit) would be a cap
        // they all share, far below what YARN allocated them. What bounds them is YARN's own
        // per-container memory check and koordlet's suppression of the best-effort tier.
        AccountingMode::ThirdParty => None,
    };
    Container {
        name: NODE_MANAGER_CONTAINER.to_owned(),
        image: Some(spec.node_manager.image.clone()),
        env: Some(environment),
        ports: Some(vec![
            port("nm-rpc", ports.rpc),
            port("nm-web", ports.web),
            port("nm-localizer", ports.localizer),
        ]),
        resources,
        volume_mounts: Some(mounts),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                host: None,
                port: IntOrString::String("nm-rpc".to_owned()),
            }),
            period_seconds: Some(10),
            ..Probe::default()
        }),
        ..Container::default()
    }
}

fn guarder_container(spec: &ElasticNodePoolSpec, settings: &BuildSettings) -> Container {
    let guarder = &spec.guarder;
    let mut args = vec![
        format!("--listen=0.0.0.0:{}", guarder.port),
        format!("--token-file={GUARDER_TOKEN_PATH}"),
        format!("--grace-period-seconds={}", guarder.grace_period_seconds),
        // YARN's vcore is one physical core here: the capacity the RM sees is in cores.
        "--cores-per-vcore=1".to_owned(),
    ];
    if guarder.spark_decommission {
        args.push("--spark-decommission".to_owned());
    }
    if guarder.application_masters == ApplicationMasterPolicy::Never {
        args.push("--spare-application-masters".to_owned());
    }
    let mut mounts = vec![mount("guarder-token", GUARDER_TOKEN_DIR, true)];
    // The NM's executor puts YARN's containers in this hierarchy of the node: the guarder reads
    // them from the node's cgroup filesystem (its own container's cgroup namespace shows only
    // itself). The hierarchy is relative to the controller mounts there.
    if let Some(hierarchy) = &spec.node_manager.yarn_cgroup {
        args.push(format!("--cgroup-root={NODE_CGROUP_DIR}"));
        args.push(format!(
            "--yarn-cgroup={}",
            hierarchy.trim_start_matches('/')
        ));
        mounts.push(mount("node-cgroup", NODE_CGROUP_DIR, true));
    }
    let health = Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".to_owned()),
            port: IntOrString::String("guarder".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        ..Probe::default()
    };
    Container {
        name: GUARDER_CONTAINER.to_owned(),
        image: Some(guarder_image(spec, settings)),
        args: Some(args),
        env: Some(vec![
            field_env("NODE_NAME", "spec.nodeName"),
            env("RUST_LOG", "info"),
        ]),
        ports: Some(vec![port("guarder", guarder.port)]),
        resources: Some(batch_resources(GUARDER_MILLI_CORES, GUARDER_MEMORY_BYTES)),
        volume_mounts: Some(mounts),
        readiness_probe: Some(health.clone()),
        liveness_probe: Some(health),
        security_context: Some(SecurityContext {
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                // Running as the containers' own user (`runAs`), it reads their environment and
                // signals them as their owner. Otherwise KILL signals containers that run as
                // other users, and SYS_PTRACE reads their /proc/<pid>/environ for CONTAINER_ID.
                add: guarder
                    .run_as
                    .is_none()
                    .then(|| vec!["KILL".to_owned(), "SYS_PTRACE".to_owned()]),
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// The pool's affinity with one more requirement: this node, by name (as DaemonSets pin their
/// pods, so that the scheduler still checks resources and taints).
fn pinned_affinity(affinity: Option<&Affinity>, node: &str) -> Affinity {
    let this_node = NodeSelectorRequirement {
        key: "metadata.name".to_owned(),
        operator: "In".to_owned(),
        values: Some(vec![node.to_owned()]),
    };
    let mut affinity = affinity.cloned().unwrap_or_default();
    let mut node_affinity = affinity.node_affinity.take().unwrap_or_default();
    let mut terms = node_affinity
        .required_during_scheduling_ignored_during_execution
        .take()
        .map(|selector| selector.node_selector_terms)
        .unwrap_or_default();
    if terms.is_empty() {
        terms.push(NodeSelectorTerm::default());
    }
    // Terms are ORed: the node requirement joins every one of them.
    for term in &mut terms {
        term.match_fields
            .get_or_insert_with(Vec::new)
            .push(this_node.clone());
    }
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: terms,
    });
    affinity.node_affinity = Some(node_affinity);
    affinity
}

/// The pod's volumes: the pool's Hadoop configuration and its rendering, local dirs, the guarder's token, the NM's keytab
/// on a static address, and the pool's datasets.
fn pod_volumes(pool: &PoolRef, spec: &ElasticNodePoolSpec, slot: &NodeManagerSlot) -> Vec<Volume> {
    let mut volumes = vec![
        Volume {
            name: POOL_CONF_VOLUME.to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: spec.node_manager.config_map.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: HADOOP_CONF_VOLUME.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        Volume {
            name: "yarn-local".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        Volume {
            name: "guarder-token".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(names::guarder_token_secret_name(&pool.name)),
                default_mode: Some(0o400),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    if spec.node_manager.yarn_cgroup.is_some() {
        volumes.push(Volume {
            name: "node-cgroup".to_owned(),
            host_path: Some(HostPathVolumeSource {
                path: "/sys/fs/cgroup".to_owned(),
                type_: Some("Directory".to_owned()),
            }),
            ..Volume::default()
        });
    }
    if let Some(secret) = slot
        .static_address
        .as_ref()
        .and_then(|a| a.keytab_secret.as_ref())
    {
        volumes.push(Volume {
            name: "nm-keytab".to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                default_mode: Some(0o400),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    for (index, dataset) in spec.datasets.iter().enumerate() {
        volumes.push(Volume {
            name: format!("dataset-{index}"),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: dataset.name.clone(),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    volumes
}

/// Seccomp by default; the NM and the guarder as one user when the pool says so.
fn pod_security_context(spec: &ElasticNodePoolSpec) -> PodSecurityContext {
    PodSecurityContext {
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        // The NM and the guarder as one user: see `guarder.runAs`.
        run_as_user: spec.guarder.run_as.map(|run_as| run_as.user),
        run_as_group: spec.guarder.run_as.map(|run_as| run_as.group),
        run_as_non_root: spec.guarder.run_as.map(|_| true),
        ..PodSecurityContext::default()
    }
}

/// The NodeManager pod of `pool` for `slot`.
pub fn node_manager_pod(
    pool: &PoolRef,
    spec: &ElasticNodePoolSpec,
    settings: &BuildSettings,
    slot: &NodeManagerSlot,
) -> Pod {
    let name = names::node_manager_pod_name(&pool.name, &slot.node);
    let host = configured_host(slot);
    let mut metadata = pool.child_metadata(name.clone(), "nodemanager");
    let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(NODE_LABEL.to_owned(), names::node_label_value(&slot.node));
    let mut annotations = BTreeMap::from([(NODE_ANNOTATION.to_owned(), slot.node.clone())]);
    // Known ahead only for a static host; otherwise the pod IP decides it.
    if let Some(host) = yarn_host(slot, None) {
        annotations.insert(
            YARN_NODE_ID_ANNOTATION.to_owned(),
            format!("{host}:{}", spec.node_manager.ports.rpc),
        );
    }
    if let Some(deadline) = slot.drain_deadline {
        annotations.insert(DRAIN_DEADLINE_ANNOTATION.to_owned(), deadline.to_string());
    }
    let volumes = pod_volumes(pool, spec, slot);
    let mut hostname = name.clone();
    let mut host_aliases = None;
    if let Some(address) = &slot.static_address {
        annotations.extend(address.cni_annotations.clone());
        // The pod is called by the static host name, and inside the pod the FQDN resolves to
        // its own address without asking DNS. (`subdomain` cannot carry the zone: it must be a
        // single label and names a Service of the cluster domain.)
        let short = address
            .fqdn
            .split_once('.')
            .map_or(address.fqdn.as_str(), |(short, _)| short);
        hostname = short.to_owned();
        host_aliases = Some(vec![HostAlias {
            ip: address.ip.to_string(),
            hostnames: Some(vec![address.fqdn.clone()]),
        }]);
    }
    metadata.annotations = Some(annotations);
    let placement = &spec.placement;
    // In both accounting modes the NM is a Koordinator best-effort pod on batch resources.
    metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("koordinator.sh/qosClass".to_owned(), "BE".to_owned());
    Pod {
        metadata,
        spec: Some(PodSpec {
            init_containers: Some(vec![hadoop_conf_container(spec, settings, &host, slot)]),
            containers: vec![
                node_manager_container(spec, slot),
                guarder_container(spec, settings),
            ],
            // The guarder sees and signals the NM's container processes.
            share_process_namespace: Some(true),
            // Neither the NM nor the guarder calls the API server: no token in the pod for a
            // YARN container to read.
            automount_service_account_token: Some(false),
            security_context: Some(pod_security_context(spec)),
            hostname: Some(hostname),
            host_aliases,
            affinity: Some(pinned_affinity(placement.affinity.as_ref(), &slot.node)),
            node_selector: (!placement.node_selector.is_empty())
                .then(|| placement.node_selector.clone()),
            tolerations: (!placement.tolerations.is_empty()).then(|| placement.tolerations.clone()),
            priority_class_name: Some(names::BATCH_PRIORITY_CLASS.to_owned()),
            restart_policy: Some("Always".to_owned()),
            termination_grace_period_seconds: Some(
                i64::from(spec.guarder.grace_period_seconds) + TERMINATION_MARGIN_SECONDS,
            ),
            enable_service_links: Some(false),
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
        status: None,
    }
}
