use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{Container, Pod};
use rstest::rstest;

use super::*;
use crate::crd::{AccountingMode, ApplicationMasterPolicy, DatasetMount};

const NIGHTLY: &str = include_str!("../../../docs/examples/nightly-pool.yaml");
const ON_DEMAND: &str = include_str!("../../../docs/examples/ondemand-pool.yaml");
const KERBEROS: &str = include_str!("../../../docs/examples/resident-kerberos-pool.yaml");

fn pool(text: &str) -> ElasticNodePool {
    let mut pool: ElasticNodePool = serde_yaml::from_str(text).unwrap();
    pool.metadata.uid = Some("6a1f2c3d-0000-4000-8000-000000000001".to_owned());
    pool
}

fn slot(node: &str) -> NodeManagerSlot {
    NodeManagerSlot {
        node: node.to_owned(),
        static_address: None,
        drain_deadline: None,
    }
}

fn build(pool: &ElasticNodePool, slot: &NodeManagerSlot) -> Pod {
    node_manager_pod(
        &PoolRef::of(pool).unwrap(),
        &pool.spec,
        &BuildSettings::default(),
        slot,
    )
}

fn container<'a>(pod: &'a Pod, name: &str) -> &'a Container {
    let spec = pod.spec.as_ref().unwrap();
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .unwrap()
}

fn env<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .as_deref()
}

fn quantity(container: &Container, resource: &str) -> String {
    container
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap()[resource]
        .0
        .clone()
}

#[rstest]
#[case::nightly(NIGHTLY, "worker-7", "nightly-nm-worker-7", 60)]
#[case::on_demand(ON_DEMAND, "worker-7", "backfill-nm-worker-7", 60)]
#[case::kerberos(KERBEROS, "worker-7", "resident-nm-worker-7", 60)]
fn every_example_builds_a_pinned_pod_with_its_guarder(
    #[case] text: &str,
    #[case] node: &str,
    #[case] name: &str,
    #[case] grace: i64,
) {
    let pool = pool(text);
    let pod = build(&pool, &slot(node));
    let meta = &pod.metadata;
    assert_eq!(meta.name.as_deref(), Some(name));
    assert_eq!(meta.namespace, pool.metadata.namespace);
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("ElasticNodePool", Some(true), Some(true))
    );
    let labels = meta.labels.as_ref().unwrap();
    assert_eq!(labels["app.kubernetes.io/component"], "nodemanager");
    assert_eq!(labels[names::NODE_LABEL], node);
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.share_process_namespace, Some(true));
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(
        spec.security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
            .map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
    assert_eq!(spec.hostname.as_deref(), Some(name));
    assert_eq!(spec.termination_grace_period_seconds, Some(grace + 30));
    let terms = &spec
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    assert!(!terms.is_empty());
    for term in terms {
        let fields = term.match_fields.as_ref().unwrap();
        assert!(fields.iter().any(|f| f.key == "metadata.name"
            && f.operator == "In"
            && f.values.as_deref() == Some(&[node.to_owned()][..])));
    }
    let nm = container(&pod, HADOOP_CONF_CONTAINER);
    let rpc = pool.spec.node_manager.ports.rpc;
    // Without a static IP the NM registers as its pod IP, expanded by the kubelet from the
    // POD_IP variable, which must come first.
    assert_eq!(
        env(nm, "YARN-SITE.XML_yarn.nodemanager.address"),
        Some(format!("$(POD_IP):{rpc}").as_str())
    );
    let names_in_order: Vec<&str> = nm
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert!(
        names_in_order.iter().position(|n| *n == "POD_IP")
            < names_in_order
                .iter()
                .position(|n| *n == "YARN-SITE.XML_yarn.nodemanager.address")
    );
    assert!(
        !meta
            .annotations
            .as_ref()
            .unwrap()
            .contains_key(names::YARN_NODE_ID_ANNOTATION)
    );
    assert_eq!(
        yarn_host(&slot(node), Some("10.1.2.3")).as_deref(),
        Some("10.1.2.3")
    );
    let guarder = container(&pod, GUARDER_CONTAINER);
    let args = guarder.args.as_ref().unwrap();
    assert!(args.contains(&format!("--grace-period-seconds={grace}")));
    assert!(args.contains(&format!("--token-file={GUARDER_TOKEN_PATH}")));
    let volumes = spec.volumes.as_ref().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref())
                == Some(
                    names::guarder_token_secret_name(&pool.metadata.name.clone().unwrap()).as_str()
                ))
    );
}

#[test]
fn pod_requests_mode_reserves_the_ceiling_and_the_daemon() {
    let pool = pool(NIGHTLY);
    let pod = build(&pool, &slot("worker-1"));
    let nm = container(&pod, NODE_MANAGER_CONTAINER);
    // The nightly pool's ceiling is 40 vcores and 160 GiB; the NM daemon adds 1 core, 2 GiB.
    let bytes = (163_840u64 << 20) + (2 << 30);
    assert_eq!(quantity(nm, "kubernetes.io/batch-cpu"), "41000");
    assert_eq!(
        quantity(nm, "kubernetes.io/batch-memory"),
        bytes.to_string()
    );
    let limits = nm.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(limits["kubernetes.io/batch-cpu"].0, "41000");
    assert_eq!(
        pod.metadata.labels.as_ref().unwrap()["koordinator.sh/qosClass"],
        "BE"
    );
}

#[test]
fn third_party_mode_puts_no_cap_on_the_nodemanager_its_containers_would_share() {
    let mut pool = pool(NIGHTLY);
    pool.spec.koordinator.accounting = AccountingMode::ThirdParty;
    let pod = build(&pool, &slot("worker-1"));
    let nm = container(&pod, NODE_MANAGER_CONTAINER);
    // YARN's containers are the NM's children: a limit here would be theirs too.
    assert_eq!(nm.resources, None);
    assert_eq!(
        pod.metadata.labels.as_ref().unwrap()["koordinator.sh/qosClass"],
        "BE"
    );
    // The guarder keeps its own small cap.
    let guarder = container(&pod, GUARDER_CONTAINER);
    assert_eq!(quantity(guarder, "kubernetes.io/batch-cpu"), "100");
}

#[test]
fn static_address_gives_host_name_cni_annotation_and_keytab() {
    let pool = pool(KERBEROS);
    let mut slot = slot("worker-2");
    slot.static_address = Some(StaticAddress {
        ip: IpAddr::V4(Ipv4Addr::new(10, 20, 0, 7)),
        fqdn: "nm-10-20-0-7.yarn.example.com".to_owned(),
        cni_annotations: BTreeMap::from([(
            "cni.projectcalico.org/ipAddrs".to_owned(),
            "[\"10.20.0.7\"]".to_owned(),
        )]),
        keytab_secret: Some("nm-10-20-0-7-keytab".to_owned()),
        principal: Some("nm/nm-10-20-0-7.yarn.example.com@EXAMPLE.COM".to_owned()),
    });
    let pod = build(&pool, &slot);
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("nm-10-20-0-7"));
    assert_eq!(spec.subdomain, None);
    let alias = &spec.host_aliases.as_ref().unwrap()[0];
    assert_eq!(alias.ip, "10.20.0.7");
    assert_eq!(
        alias.hostnames.as_deref(),
        Some(&["nm-10-20-0-7.yarn.example.com".to_owned()][..])
    );
    let annotations = pod.metadata.annotations.as_ref().unwrap();
    assert_eq!(
        annotations["cni.projectcalico.org/ipAddrs"],
        "[\"10.20.0.7\"]"
    );
    assert_eq!(
        annotations[names::YARN_NODE_ID_ANNOTATION],
        "nm-10-20-0-7.yarn.example.com:45454"
    );
    let nm = container(&pod, HADOOP_CONF_CONTAINER);
    assert_eq!(
        env(nm, "YARN-SITE.XML_yarn.nodemanager.hostname"),
        Some("nm-10-20-0-7.yarn.example.com")
    );
    assert_eq!(
        env(nm, "YARN-SITE.XML_yarn.nodemanager.keytab"),
        Some("/etc/security/keytabs/krb5.keytab")
    );
    assert_eq!(
        env(nm, "YARN-SITE.XML_yarn.nodemanager.principal"),
        Some("nm/nm-10-20-0-7.yarn.example.com@EXAMPLE.COM")
    );
    assert!(
        spec.volumes.as_ref().unwrap().iter().any(|v| v
            .secret
            .as_ref()
            .and_then(|s| s.secret_name.as_deref())
            == Some("nm-10-20-0-7-keytab"))
    );
}

#[test]
fn a_guarder_running_as_the_containers_user_needs_no_capability() {
    let mut pool = pool(NIGHTLY);
    let capabilities = |pod: &Pod| {
        container(pod, GUARDER_CONTAINER)
            .security_context
            .as_ref()
            .and_then(|c| c.capabilities.clone())
            .unwrap()
    };
    // Containers of other users (LinuxContainerExecutor): KILL and SYS_PTRACE, no user forced.
    let pod = build(&pool, &slot("worker-1"));
    assert_eq!(
        capabilities(&pod).add,
        Some(vec!["KILL".to_owned(), "SYS_PTRACE".to_owned()])
    );
    let context = pod.spec.as_ref().unwrap().security_context.clone().unwrap();
    assert_eq!((context.run_as_user, context.run_as_non_root), (None, None));

    pool.spec.guarder.run_as = Some(crate::crd::RunAs {
        user: 1000,
        group: 1001,
    });
    let pod = build(&pool, &slot("worker-1"));
    let added = capabilities(&pod);
    assert_eq!(added.add, None);
    assert_eq!(added.drop, Some(vec!["ALL".to_owned()]));
    // The NM, its containers and the guarder: one user and group, never root.
    let context = pod.spec.as_ref().unwrap().security_context.clone().unwrap();
    assert_eq!(context.run_as_user, Some(1000));
    assert_eq!(context.run_as_group, Some(1001));
    assert_eq!(context.run_as_non_root, Some(true));
}

#[test]
fn datasets_drain_and_guarder_options_reach_the_pod() {
    let mut pool = pool(NIGHTLY);
    pool.spec.datasets = vec![DatasetMount {
        name: "tpcds-1t".to_owned(),
        mount_path: "/data/tpcds".to_owned(),
        cache: None,
    }];
    pool.spec.guarder.application_masters = ApplicationMasterPolicy::Never;
    pool.spec.guarder.spark_decommission = false;
    let mut slot = slot("worker-3");
    slot.drain_deadline = Some("2026-11-24T22:30:00Z".parse().unwrap());
    let pod = build(&pool, &slot);
    let spec = pod.spec.as_ref().unwrap();
    let claim = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find_map(|v| v.persistent_volume_claim.as_ref())
        .unwrap();
    assert_eq!(claim.claim_name, "tpcds-1t");
    let nm = container(&pod, NODE_MANAGER_CONTAINER);
    assert!(
        nm.volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.mount_path == "/data/tpcds")
    );
    assert_eq!(
        pod.metadata.annotations.as_ref().unwrap()[names::DRAIN_DEADLINE_ANNOTATION],
        "2026-11-24T22:30:00Z"
    );
    let args = container(&pod, GUARDER_CONTAINER).args.clone().unwrap();
    assert!(args.contains(&"--spare-application-masters".to_owned()));
    assert!(!args.contains(&"--spark-decommission".to_owned()));
}

#[test]
fn user_affinity_terms_each_gain_the_node() {
    let mut pool = pool(NIGHTLY);
    let term = |zone: &str| k8s_openapi::api::core::v1::NodeSelectorTerm {
        match_expressions: Some(vec![k8s_openapi::api::core::v1::NodeSelectorRequirement {
            key: "topology.kubernetes.io/zone".to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![zone.to_owned()]),
        }]),
        match_fields: None,
    };
    pool.spec.placement.affinity = Some(k8s_openapi::api::core::v1::Affinity {
        node_affinity: Some(k8s_openapi::api::core::v1::NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(
                k8s_openapi::api::core::v1::NodeSelector {
                    node_selector_terms: vec![term("a"), term("b")],
                },
            ),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        ..Default::default()
    });
    let pod = build(&pool, &slot("worker-4"));
    let terms = pod
        .spec
        .unwrap()
        .affinity
        .unwrap()
        .node_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()
        .node_selector_terms;
    assert_eq!(terms.len(), 2);
    for term in terms {
        assert_eq!(term.match_expressions.unwrap().len(), 1);
        assert_eq!(
            term.match_fields.unwrap()[0].values,
            Some(vec!["worker-4".to_owned()])
        );
    }
}

#[test]
fn token_secret_and_missing_uid() {
    let pool_object = pool(NIGHTLY);
    let secret = guarder_token_secret(&PoolRef::of(&pool_object).unwrap(), "s3cret");
    assert_eq!(
        secret.metadata.name.as_deref(),
        Some("nightly-guarder-token")
    );
    assert_eq!(secret.data.unwrap()[GUARDER_TOKEN_KEY].0, b"s3cret");
    let mut unsaved = pool_object;
    unsaved.metadata.uid = None;
    assert_eq!(
        PoolRef::of(&unsaved),
        Err(BuildError::MissingMetadata("uid"))
    );
}

#[test]
fn remote_shuffle_leaves_the_node_manager_without_a_shuffle_service() {
    let with_uniffle = pool(NIGHTLY);
    assert!(with_uniffle.spec.shuffle.is_some());
    let pod = build(&with_uniffle, &slot("worker-7"));
    let nm = container(&pod, HADOOP_CONF_CONTAINER);
    assert_eq!(
        env(nm, "YARN-SITE.XML_yarn.nodemanager.aux-services"),
        Some("")
    );

    let mut local = pool(NIGHTLY);
    local.spec.shuffle = None;
    let pod = build(&local, &slot("worker-7"));
    let nm = container(&pod, HADOOP_CONF_CONTAINER);
    assert_eq!(
        env(nm, "YARN-SITE.XML_yarn.nodemanager.aux-services"),
        None,
        "the admin's yarn-site.xml decides"
    );
}

#[test]
fn an_init_container_renders_the_pods_settings_into_the_configuration_the_nm_reads() {
    let pool = pool(NIGHTLY);
    let settings = BuildSettings {
        guarder_image: "registry.example.com/guarder:1.2.3".to_owned(),
    };
    let pod = node_manager_pod(
        &PoolRef::of(&pool).unwrap(),
        &pool.spec,
        &settings,
        &slot("worker-3"),
    );
    let render = container(&pod, HADOOP_CONF_CONTAINER);
    assert_eq!(
        render.image.as_deref(),
        Some("registry.example.com/guarder:1.2.3"),
        "the guarder's image carries the renderer: the NM image needs nothing of ours"
    );
    assert_eq!(
        render.command.as_deref(),
        Some(&[HADOOP_CONF_BINARY.to_owned()][..])
    );
    let security = render.security_context.as_ref().unwrap();
    assert_eq!(
        (security.run_as_user, security.run_as_non_root),
        (Some(65532), Some(true)),
        "unprivileged whatever user the guarder image has"
    );
    let mounts_of = |c: &Container| -> Vec<(String, String, bool)> {
        c.volume_mounts
            .iter()
            .flatten()
            .map(|m| {
                (
                    m.name.clone(),
                    m.mount_path.clone(),
                    m.read_only == Some(true),
                )
            })
            .collect()
    };
    assert_eq!(
        mounts_of(render),
        [
            (POOL_CONF_VOLUME.to_owned(), POOL_CONF_DIR.to_owned(), true),
            (
                HADOOP_CONF_VOLUME.to_owned(),
                HADOOP_CONF_DIR.to_owned(),
                false
            ),
        ]
    );
    assert_eq!(
        env(render, "YARN-SITE.XML_yarn.nodemanager.resource.cpu-vcores"),
        Some("1")
    );
    let nm = container(&pod, NODE_MANAGER_CONTAINER);
    assert!(mounts_of(nm).contains(&(
        HADOOP_CONF_VOLUME.to_owned(),
        HADOOP_CONF_DIR.to_owned(),
        true
    )));
    assert!(
        !mounts_of(nm)
            .iter()
            .any(|(name, _, _)| name == POOL_CONF_VOLUME)
    );
    assert_eq!(env(nm, "HADOOP_CONF_DIR"), Some(HADOOP_CONF_DIR));
    assert!(
        !nm.env.iter().flatten().any(|e| e.name.contains(".XML_")),
        "the NM's settings are in its files, not its environment"
    );
    let volumes = pod.spec.as_ref().unwrap().volumes.as_ref().unwrap();
    let conf = volumes
        .iter()
        .find(|v| v.name == HADOOP_CONF_VOLUME)
        .unwrap();
    assert!(conf.empty_dir.is_some());
    let pool_conf = volumes.iter().find(|v| v.name == POOL_CONF_VOLUME).unwrap();
    assert_eq!(
        pool_conf.config_map.as_ref().unwrap().name,
        pool.spec.node_manager.config_map
    );
}

#[test]
fn a_yarn_cgroup_reaches_the_nm_configuration_and_the_guarder() {
    let mut pool = pool(NIGHTLY);
    let pod = build(&pool, &slot("worker-4"));
    let guarder = container(&pod, GUARDER_CONTAINER);
    let args = guarder.args.as_ref().unwrap();
    assert!(!args.iter().any(|a| a.starts_with("--yarn-cgroup")));
    assert!(
        !pod.spec
            .as_ref()
            .unwrap()
            .volumes
            .iter()
            .flatten()
            .any(|v| v.host_path.is_some()),
        "no node path is mounted unless the pool names a hierarchy"
    );

    let hierarchy = "/kubepods.slice/kubepods-besteffort.slice/hadoop-yarn";
    pool.spec.node_manager.yarn_cgroup = Some(hierarchy.to_owned());
    let pod = build(&pool, &slot("worker-4"));
    assert_eq!(
        env(
            container(&pod, HADOOP_CONF_CONTAINER),
            "YARN-SITE.XML_yarn.nodemanager.linux-container-executor.cgroups.hierarchy"
        ),
        Some(hierarchy)
    );
    let guarder = container(&pod, GUARDER_CONTAINER);
    let args = guarder.args.as_ref().unwrap();
    assert!(args.contains(&format!("--cgroup-root={NODE_CGROUP_DIR}")));
    // Relative to the controller mounts: a leading `/` would make the guarder's join drop the
    // root.
    assert!(args.contains(
        &"--yarn-cgroup=kubepods.slice/kubepods-besteffort.slice/hadoop-yarn".to_owned()
    ));
    let mount = guarder
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == NODE_CGROUP_DIR)
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    let volume = pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap();
    assert_eq!(volume.host_path.as_ref().unwrap().path, "/sys/fs/cgroup");
}
