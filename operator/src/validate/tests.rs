use rstest::rstest;
use serde_json::{Value, json};

use super::*;
use crate::crd::{ElasticNodePool, ElasticNodePoolSpec};

const GOOD: &str = r#"
resourceManager:
  addresses: ["http://rm1.example.com:8088", "http://rm2.example.com:8088"]
  auth: {mode: Simple, user: yarn}
nodeManager:
  image: apache/hadoop:3.4.1
  configMap: hadoop-conf
  nodeLabel: elastic
capacity:
  floor: {vcores: 0, memoryMb: 0}
  ceiling: {vcores: 40, memoryMb: 163840}
lifecycle:
  mode: Periodic
  periodic:
    timeZone: Asia/Shanghai
    windows:
      - {online: "0 22 * * *", drainStart: "0 6 * * *", offline: "30 6 * * *"}
    excludedDates: ["2026-12-31"]
elasticity:
  policy: elastic
datasets:
  - {name: tpcds-1t, mountPath: /data/tpcds}
shuffle:
  uniffle:
    coordinators: ["uniffle-coordinator-0.uniffle:19999", "uniffle-coordinator-1.uniffle:19999"]
"#;

fn now() -> Timestamp {
    "2026-11-24T00:00:00Z".parse().unwrap()
}

fn good() -> Value {
    serde_yaml::from_str(GOOD).unwrap()
}

/// Sets `path` (dot-separated, `[n]` for list items) in `value`.
fn set(value: &mut Value, path: &str, new: Value) {
    let mut target = value;
    for part in path.split('.') {
        target = match part.split_once('[') {
            Some((key, index)) => {
                let index: usize = index.trim_end_matches(']').parse().unwrap();
                &mut target[key][index]
            }
            None => &mut target[part],
        };
    }
    *target = new;
}

fn spec_of(value: Value) -> ElasticNodePoolSpec {
    serde_json::from_value(value).unwrap()
}

#[test]
fn a_good_spec_validates_with_defaults_filled_in() {
    let pool = validate(&spec_of(good()), now()).unwrap();
    assert_eq!(pool.resource_managers.len(), 2);
    assert_eq!(
        pool.auth,
        yarn_rm::RmAuth::Simple {
            user: "yarn".to_owned()
        }
    );
    assert_eq!(pool.keytab, None);
    assert_eq!(pool.policy, PolicyKind::Elastic);
    assert_eq!(pool.settings.scale_up_threshold_vcores, 3);
    assert!((pool.settings.shrink_tolerance - 0.10).abs() < 1e-12);
    assert_eq!(pool.settings.bounds.memory_per_vcore_mb, 4096);
    assert_eq!(pool.sync_interval, Duration::from_secs(15));
    assert_eq!(pool.guarder.grace_period, Duration::from_secs(60));
    assert!(pool.guarder.spark_decommission);
    assert_eq!(pool.metrics, MetricsSource::Exporter { port: 9320 });
    assert_eq!(pool.uniffle_coordinators.len(), 2);
    assert!(matches!(pool.lifecycle, Lifecycle::Periodic(_)));
}

#[test]
fn the_good_spec_passes_the_crd_cel_rules() {
    let pool = ElasticNodePool::new("nightly", spec_of(good()));
    pool.validate_cel().unwrap();
}

#[test]
fn kerberos_settings_are_carried_through() {
    let mut value = good();
    set(
        &mut value,
        "resourceManager.auth",
        json!({"mode": "Kerberos", "kerberos": {"principal": "elastic-yarn/ops@EXAMPLE.COM", "keytabSecret": {"name": "rm-keytab"}}}),
    );
    let pool = validate(&spec_of(value), now()).unwrap();
    assert_eq!(
        pool.auth,
        yarn_rm::RmAuth::Kerberos {
            principal: "elastic-yarn/ops@EXAMPLE.COM".to_owned(),
            service: None,
        }
    );
    assert_eq!(
        pool.keytab,
        Some(KeytabRef {
            secret: "rm-keytab".to_owned(),
            key: "keytab".to_owned(),
        })
    );
}

#[rstest]
#[case::no_rm("resourceManager.addresses", json!([]), "spec.resourceManager.addresses", "MissingResourceManager")]
#[case::rm_not_a_url("resourceManager.addresses[0]", json!("rm1:8088"), "spec.resourceManager.addresses[0]", "InvalidResourceManagerAddress")]
#[case::rm_ftp("resourceManager.addresses[0]", json!("ftp://rm1:8088"), "spec.resourceManager.addresses[0]", "InvalidResourceManagerAddress")]
#[case::rm_twice("resourceManager.addresses[1]", json!("http://rm1.example.com:8088"), "spec.resourceManager.addresses[1]", "DuplicateResourceManager")]
#[case::no_user("resourceManager.auth.user", json!(""), "spec.resourceManager.auth.user", "MissingResourceManagerUser")]
#[case::kerberos_missing("resourceManager.auth", json!({"mode": "Kerberos"}), "spec.resourceManager.auth.kerberos", "MissingKerberosSettings")]
#[case::bad_principal("resourceManager.auth", json!({"mode": "Kerberos", "kerberos": {"principal": "no-realm", "keytabSecret": {"name": "k"}}}), "spec.resourceManager.auth.kerberos.principal", "InvalidPrincipal")]
#[case::empty_image("nodeManager.image", json!(" "), "spec.nodeManager.image", "MissingImage")]
#[case::bad_configmap("nodeManager.configMap", json!("Hadoop_Conf"), "spec.nodeManager.configMap", "InvalidConfigMapName")]
#[case::bad_label("nodeManager.nodeLabel", json!("-elastic"), "spec.nodeManager.nodeLabel", "InvalidNodeLabel")]
#[case::same_ports("nodeManager.ports", json!({"rpc": 8042, "web": 8042, "localizer": 8040}), "spec.nodeManager.ports", "DuplicatePort")]
#[case::floor_above_ceiling("capacity.floor", json!({"vcores": 50, "memoryMb": 0}), "spec.capacity.floor.vcores", "FloorAboveCeiling")]
#[case::floor_memory_above("capacity.floor", json!({"vcores": 0, "memoryMb": 999999}), "spec.capacity.floor.memoryMb", "FloorAboveCeiling")]
#[case::zero_ceiling("capacity.ceiling", json!({"vcores": 0, "memoryMb": 0}), "spec.capacity.ceiling", "NonPositiveCeiling")]
#[case::unknown_zone("lifecycle.periodic.timeZone", json!("Asia/Atlantis"), "spec.lifecycle.periodic.timeZone", "UnknownTimeZone")]
#[case::bad_cron("lifecycle.periodic.windows[0].online", json!("every night"), "spec.lifecycle.periodic.windows[0].online", "InvalidCron")]
#[case::six_field_cron("lifecycle.periodic.windows[0].offline", json!("0 30 6 * * *"), "spec.lifecycle.periodic.windows[0].offline", "InvalidCron")]
#[case::reopens("lifecycle.periodic.windows[0].online", json!("0 * * * *"), "spec.lifecycle.periodic.windows[0]", "InconsistentWindow")]
#[case::bad_date("lifecycle.periodic.excludedDates[0]", json!("31/12/2026"), "spec.lifecycle.periodic.excludedDates[0]", "InvalidDate")]
#[case::periodic_missing("lifecycle", json!({"mode": "Periodic"}), "spec.lifecycle.periodic", "MissingPeriodic")]
#[case::on_demand_missing("lifecycle", json!({"mode": "OnDemand"}), "spec.lifecycle.onDemand", "MissingOnDemand")]
#[case::prometheus_without_url("elasticity.metrics", json!({"source": "Prometheus"}), "spec.elasticity.metrics.prometheusUrl", "MissingPrometheusUrl")]
#[case::prometheus_bad_url("elasticity.metrics", json!({"source": "Prometheus", "prometheusUrl": "prometheus:9090"}), "spec.elasticity.metrics.prometheusUrl", "InvalidPrometheusUrl")]
#[case::stale_order("elasticity.shrinkToFloorAfterSeconds", json!(30), "spec.elasticity.shrinkToFloorAfterSeconds", "InconsistentStaleness")]
#[case::static_outside("elasticity", json!({"policy": "static", "staticCapacity": {"vcores": 80, "memoryMb": 1024}}), "spec.elasticity.staticCapacity", "StaticOutsideBounds")]
#[case::zero_grace("guarder.gracePeriodSeconds", json!(0), "spec.guarder.gracePeriodSeconds", "InvalidGracePeriod")]
#[case::relative_mount("datasets[0].mountPath", json!("data/tpcds"), "spec.datasets[0].mountPath", "RelativeMountPath")]
#[case::bad_dataset("datasets[0].name", json!("TPC DS"), "spec.datasets[0].name", "InvalidDatasetName")]
#[case::ceiling_beyond_schema("capacity.ceiling.vcores", json!(5000), "spec.capacity.ceiling.vcores", "OutOfRange")]
#[case::sync_beyond_schema("elasticity.syncIntervalSeconds", json!(100_000), "spec.elasticity.syncIntervalSeconds", "OutOfRange")]
#[case::bad_coordinator("shuffle.uniffle.coordinators[0]", json!("uniffle-coordinator-0"), "spec.shuffle.uniffle.coordinators[0]", "InvalidCoordinator")]
fn each_bad_field_gets_a_clear_error(
    #[case] path: &str,
    #[case] new: Value,
    #[case] field: &str,
    #[case] reason: &str,
) {
    let mut value = good();
    set(&mut value, path, new);
    let errors = validate(&spec_of(value), now()).unwrap_err();
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.field == field && e.reason == reason),
        "expected {field} / {reason}, got:\n{errors}"
    );
    let text = errors.to_string();
    assert!(text.contains(field), "the message names the field: {text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut value = good();
    set(&mut value, "nodeManager.image", json!(""));
    set(
        &mut value,
        "capacity.floor",
        json!({"vcores": 99, "memoryMb": 0}),
    );
    set(
        &mut value,
        "lifecycle.periodic.timeZone",
        json!("Nowhere/Land"),
    );
    let errors = validate(&spec_of(value), now()).unwrap_err();
    assert_eq!(errors.0.len(), 3, "{errors}");
    assert!(
        errors
            .to_string()
            .starts_with("3 problems in the ElasticNodePool spec")
    );
}

#[rstest]
#[case::floor_above_ceiling("capacity.floor", json!({"vcores": 50, "memoryMb": 0}), "capacity.floor.vcores must not exceed")]
#[case::zero_ceiling("capacity.ceiling", json!({"vcores": 0, "memoryMb": 1024}), "capacity.ceiling must be positive")]
#[case::kerberos_missing("resourceManager.auth", json!({"mode": "Kerberos"}), "auth.kerberos is required")]
#[case::no_user("resourceManager.auth", json!({"mode": "Simple", "user": ""}), "auth.user is required")]
#[case::periodic_missing("lifecycle", json!({"mode": "Periodic"}), "lifecycle.periodic is required")]
#[case::on_demand_missing("lifecycle", json!({"mode": "OnDemand"}), "lifecycle.onDemand is required")]
#[case::same_ports("nodeManager.ports", json!({"rpc": 1, "web": 1, "localizer": 2}), "ports must differ")]
#[case::prometheus_without_url("elasticity.metrics", json!({"source": "Prometheus"}), "prometheusUrl is required")]
#[case::relative_mount("datasets[0].mountPath", json!("data"), "mountPath must be an absolute path")]
fn the_crd_cel_rules_refuse_what_a_schema_can_check(
    #[case] path: &str,
    #[case] new: Value,
    #[case] message: &str,
) {
    let mut value = good();
    set(&mut value, path, new);
    let pool = ElasticNodePool::new("bad", spec_of(value));
    let errors = pool.validate_cel().unwrap_err();
    assert!(
        format!("{errors:?}").contains(message),
        "expected {message:?} in {errors:?}"
    );
}

#[test]
fn oracle_is_not_a_policy_a_pool_can_choose() {
    let mut value = good();
    set(&mut value, "elasticity.policy", json!("oracle"));
    let err = serde_json::from_value::<ElasticNodePoolSpec>(value).unwrap_err();
    assert!(err.to_string().contains("unknown variant `oracle`"));
}

#[test]
fn helpers_recognise_names() {
    assert!(is_dns_subdomain("hadoop-conf.v2"));
    assert!(!is_dns_subdomain("Hadoop"));
    assert!(!is_dns_subdomain("a..b"));
    assert!(is_yarn_label("elastic_2-night"));
    assert!(!is_yarn_label("_x"));
    assert!(is_principal("nm/host.example.com@EXAMPLE.COM"));
    assert!(!is_principal("nm//x@R"));
    assert!(!is_principal("@R"));
    assert!(is_host_port("[::1]:19999"));
    assert!(!is_host_port("host:0"));
}
