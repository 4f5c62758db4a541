//! `validate()`: a spec in, a [`ValidatedPool`] or every problem out.
//!
//! The CRD schema and its CEL rules refuse most bad objects at `kubectl apply`; this covers what
//! they cannot (cron syntax, time zones, window consistency, URLs, principals) and repeats the
//! structural rules, so that an object that slipped past an older CRD still gets a clear answer.
//! Every problem names its field and a stable reason; the operator reports them as a
//! `Ready=False` condition and an Event, and waits for the spec to change.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use url::Url;

use crate::crd::{
    ApplicationMasterPolicy, ElasticNodePoolSpec, LifecycleMode, MetricsSourceKind, RmAuthMode,
};
use crate::policy::{CapacityBounds, PolicyKind, PolicySettings, Statistic};
use crate::schedule::Schedule;

/// One problem in a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// JSON path of the field, e.g. `spec.capacity.floor.vcores`.
    pub field: String,
    /// Stable category (used as the condition and Event reason).
    pub reason: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(
            f,
            "{count} problem{} in the ElasticNodePool spec",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

/// The Secret and key of a Kerberos client keytab the spec names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeytabRef {
    /// The Secret in the pool's namespace.
    pub secret: String,
    /// The key of the keytab inside it.
    pub key: String,
}

impl ValidatedPool {
    /// RM addresses as the RM client takes them (no trailing slash).
    pub fn rm_addresses(&self) -> Vec<String> {
        self.resource_managers
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .collect()
    }

    /// The RM client's authentication; for Kerberos the keytab is found through the process'
    /// `KRB5_CLIENT_KTNAME`, which the caller fills from `keytab_secret`.
    pub fn rm_auth(&self) -> yarn_rm::RmAuth {
        self.auth.clone()
    }
}

/// Where windowed availability comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsSource {
    /// Each node's exporter on this port.
    Exporter {
        /// Port.
        port: u16,
    },
    /// Prometheus' HTTP API.
    Prometheus {
        /// Base URL.
        url: Url,
    },
}

/// When the pool is online.
#[derive(Clone, Debug)]
pub enum Lifecycle {
    /// Always.
    Resident,
    /// In cron windows.
    Periodic(Schedule),
    /// A requested count of NodeManagers.
    OnDemand {
        /// How many.
        node_managers: u32,
    },
}

/// How the guarder frees containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuarderSettings {
    /// Time a signalled container gets before SIGKILL.
    pub grace_period: Duration,
    /// Spark executors get SIGPWR.
    pub spark_decommission: bool,
    /// What happens to ApplicationMasters.
    pub application_masters: ApplicationMasterPolicy,
    /// Port of the guarder's API.
    pub port: u16,
}

/// A spec that passed every check, in the types the operator works with.
#[derive(Clone, Debug)]
pub struct ValidatedPool {
    /// RM web addresses, in the order given.
    pub resource_managers: Vec<Url>,
    /// RM authentication.
    pub auth: yarn_rm::RmAuth,
    /// The keytab Secret of a Kerberos pool.
    pub keytab: Option<KeytabRef>,
    /// YARN node label of the pool's NMs.
    pub node_label: String,
    /// When the pool is online.
    pub lifecycle: Lifecycle,
    /// Resize policy.
    pub policy: PolicyKind,
    /// Settings of the policy engine.
    pub settings: PolicySettings,
    /// Seconds between decisions.
    pub sync_interval: Duration,
    /// Where availability comes from.
    pub metrics: MetricsSource,
    /// Guarder behaviour.
    pub guarder: GuarderSettings,
    /// Uniffle coordinators (`host:port`), when remote shuffle is on.
    pub uniffle_coordinators: Vec<String>,
}

#[derive(Default)]
struct Problems(Vec<SpecError>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, reason: &'static str, message: impl Into<String>) {
        self.0.push(SpecError {
            field: field.into(),
            reason,
            message: message.into(),
        });
    }
}

/// True for a DNS-1123 subdomain (names of Secrets, ConfigMaps, PVCs).
fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// True for a YARN node label: `^[0-9a-zA-Z][0-9a-zA-Z_-]*$`, at most 255 characters.
fn is_yarn_label(label: &str) -> bool {
    let mut bytes = label.bytes();
    label.len() <= 255
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// True for `host:port` with a plausible host and a port in 1..=65535.
fn is_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    !host.is_empty() && !host.contains(['/', ' ', '@']) && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// True for `primary[/instance]@REALM`.
fn is_principal(principal: &str) -> bool {
    let Some((name, realm)) = principal.split_once('@') else {
        return false;
    };
    let mut parts = name.split('/');
    let primary_ok = parts.next().is_some_and(|p| !p.is_empty());
    let instance_ok = parts.next().is_none_or(|i| !i.is_empty());
    primary_ok
        && instance_ok
        && parts.next().is_none()
        && !realm.is_empty()
        && !realm.contains(['@', '/'])
}

fn web_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|err| format!("{text:?} is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must use http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    Ok(url)
}

/// Checks a spec and turns it into a [`ValidatedPool`]. `now` anchors the schedule checks.
pub fn validate(spec: &ElasticNodePoolSpec, now: Timestamp) -> Result<ValidatedPool, SpecErrors> {
    let mut problems = Problems::default();
    let resource_managers = resource_managers(spec, &mut problems);
    let auth = rm_auth(spec, &mut problems);
    node_manager(spec, &mut problems);
    let bounds = capacity(spec, &mut problems);
    let lifecycle = lifecycle(spec, now, &mut problems);
    let metrics = metrics_source(spec, &mut problems);
    let (policy, mut settings) = elasticity(spec, bounds, &mut problems);
    guarder(spec, &mut settings, &mut problems);
    datasets(spec, &mut problems);
    let uniffle_coordinators = shuffle(spec, &mut problems);
    schema(spec, &mut problems);
    let nm = &spec.node_manager;
    let elasticity = &spec.elasticity;
    let guarder = &spec.guarder;
    match (auth, lifecycle, metrics) {
        (Some((auth, keytab)), Some(lifecycle), Some(metrics)) if problems.0.is_empty() => {
            Ok(ValidatedPool {
                resource_managers,
                auth,
                keytab,
                node_label: nm.node_label.clone(),
                lifecycle,
                policy,
                settings,
                sync_interval: Duration::from_secs(u64::from(elasticity.sync_interval_seconds)),
                metrics,
                guarder: GuarderSettings {
                    grace_period: Duration::from_secs(u64::from(guarder.grace_period_seconds)),
                    spark_decommission: guarder.spark_decommission,
                    application_masters: guarder.application_masters,
                    port: guarder.port,
                },
                uniffle_coordinators,
            })
        }
        _ => Err(SpecErrors(problems.0)),
    }
}

/// `spec.resourceManager.addresses`: web URLs, each once.
fn resource_managers(spec: &ElasticNodePoolSpec, problems: &mut Problems) -> Vec<Url> {
    let rm = &spec.resource_manager;
    if rm.addresses.is_empty() {
        problems.add(
            "spec.resourceManager.addresses",
            "MissingResourceManager",
            "list at least one RM web address, e.g. http://rm1.example.com:8088",
        );
    }
    let mut resource_managers = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, address) in rm.addresses.iter().enumerate() {
        let field = format!("spec.resourceManager.addresses[{index}]");
        match web_url(address) {
            Ok(url) => {
                if !seen.insert(url.as_str().to_owned()) {
                    problems.add(
                        field,
                        "DuplicateResourceManager",
                        format!("{address:?} is listed twice"),
                    );
                } else {
                    resource_managers.push(url);
                }
            }
            Err(message) => problems.add(field, "InvalidResourceManagerAddress", message),
        }
    }
    resource_managers
}

/// `spec.resourceManager.auth`.
fn rm_auth(
    spec: &ElasticNodePoolSpec,
    problems: &mut Problems,
) -> Option<(yarn_rm::RmAuth, Option<KeytabRef>)> {
    let rm = &spec.resource_manager;
    match rm.auth.mode {
        RmAuthMode::Simple => match rm.auth.user.as_deref().map(str::trim) {
            Some(user) if !user.is_empty() => Some((
                yarn_rm::RmAuth::Simple {
                    user: user.to_owned(),
                },
                None,
            )),
            _ => {
                problems.add(
                    "spec.resourceManager.auth.user",
                    "MissingResourceManagerUser",
                    "Simple authentication needs a user allowed to change node resources (e.g. yarn)",
                );
                None
            }
        },
        RmAuthMode::Kerberos => match &rm.auth.kerberos {
            None => {
                problems.add(
                    "spec.resourceManager.auth.kerberos",
                    "MissingKerberosSettings",
                    "Kerberos authentication needs a principal and a keytab Secret",
                );
                None
            }
            Some(kerberos) => {
                let mut ok = true;
                if !is_principal(kerberos.principal.trim()) {
                    ok = false;
                    problems.add(
                        "spec.resourceManager.auth.kerberos.principal",
                        "InvalidPrincipal",
                        format!(
                            "{:?} is not a Kerberos principal (primary[/instance]@REALM)",
                            kerberos.principal
                        ),
                    );
                }
                if !is_dns_subdomain(&kerberos.keytab_secret.name) {
                    ok = false;
                    problems.add(
                        "spec.resourceManager.auth.kerberos.keytabSecret.name",
                        "InvalidSecretName",
                        format!(
                            "{:?} is not a valid Secret name",
                            kerberos.keytab_secret.name
                        ),
                    );
                }
                ok.then(|| {
                    let auth = yarn_rm::RmAuth::Kerberos {
                        principal: kerberos.principal.trim().to_owned(),
                        service: None,
                    };
                    let keytab = KeytabRef {
                        secret: kerberos.keytab_secret.name.clone(),
                        key: kerberos.keytab_secret.key.clone(),
                    };
                    (auth, Some(keytab))
                })
            }
        },
    }
}

/// `spec.nodeManager`: image, ConfigMap, YARN label, ports.
fn node_manager(spec: &ElasticNodePoolSpec, problems: &mut Problems) {
    let nm = &spec.node_manager;
    if nm.image.trim().is_empty() {
        problems.add(
            "spec.nodeManager.image",
            "MissingImage",
            "name the NodeManager image",
        );
    }
    if !is_dns_subdomain(&nm.config_map) {
        problems.add(
            "spec.nodeManager.configMap",
            "InvalidConfigMapName",
            format!("{:?} is not a valid ConfigMap name", nm.config_map),
        );
    }
    if !is_yarn_label(&nm.node_label) {
        problems.add(
            "spec.nodeManager.nodeLabel",
            "InvalidNodeLabel",
            format!(
                "{:?} is not a YARN node label (letters, digits, '_' and '-', starting with a letter or digit)",
                nm.node_label
            ),
        );
    }
    let ports = nm.ports;
    for (name, port) in [
        ("rpc", ports.rpc),
        ("web", ports.web),
        ("localizer", ports.localizer),
    ] {
        if port == 0 {
            problems.add(
                format!("spec.nodeManager.ports.{name}"),
                "InvalidPort",
                "port 0 is not a fixed port",
            );
        }
    }
    if ports.rpc == ports.web || ports.rpc == ports.localizer || ports.web == ports.localizer {
        problems.add(
            "spec.nodeManager.ports",
            "DuplicatePort",
            "rpc, web and localizer ports must differ",
        );
    }
}

/// `spec.capacity`: the floor and ceiling of every NM.
fn capacity(spec: &ElasticNodePoolSpec, problems: &mut Problems) -> CapacityBounds {
    let capacity = &spec.capacity;
    let (floor, ceiling) = (capacity.floor, capacity.ceiling);
    if ceiling.vcores == 0 || ceiling.memory_mb == 0 {
        problems.add(
            "spec.capacity.ceiling",
            "NonPositiveCeiling",
            "the ceiling needs at least 1 vcore and 1 MiB",
        );
    }
    if floor.vcores > ceiling.vcores {
        problems.add(
            "spec.capacity.floor.vcores",
            "FloorAboveCeiling",
            format!(
                "floor {} vcores exceeds ceiling {}",
                floor.vcores, ceiling.vcores
            ),
        );
    }
    if floor.memory_mb > ceiling.memory_mb {
        problems.add(
            "spec.capacity.floor.memoryMb",
            "FloorAboveCeiling",
            format!(
                "floor {} MiB exceeds ceiling {} MiB",
                floor.memory_mb, ceiling.memory_mb
            ),
        );
    }
    if capacity.memory_per_vcore_mb == 0 {
        problems.add(
            "spec.capacity.memoryPerVcoreMb",
            "NonPositiveRatio",
            "memory per vcore must be positive (4096 is typical)",
        );
    }
    CapacityBounds {
        floor,
        ceiling,
        memory_per_vcore_mb: u64::from(capacity.memory_per_vcore_mb),
    }
}

/// `spec.lifecycle`.
fn lifecycle(
    spec: &ElasticNodePoolSpec,
    now: Timestamp,
    problems: &mut Problems,
) -> Option<Lifecycle> {
    match spec.lifecycle.mode {
        LifecycleMode::Resident => Some(Lifecycle::Resident),
        LifecycleMode::OnDemand => match &spec.lifecycle.on_demand {
            Some(on_demand) => Some(Lifecycle::OnDemand {
                node_managers: on_demand.node_managers,
            }),
            None => {
                problems.add(
                    "spec.lifecycle.onDemand",
                    "MissingOnDemand",
                    "an OnDemand pool needs onDemand.nodeManagers",
                );
                None
            }
        },
        LifecycleMode::Periodic => match &spec.lifecycle.periodic {
            None => {
                problems.add(
                    "spec.lifecycle.periodic",
                    "MissingPeriodic",
                    "a Periodic pool needs periodic.windows and a time zone",
                );
                None
            }
            Some(periodic) => match Schedule::parse(periodic) {
                Ok(schedule) => {
                    let errors = schedule.check(now);
                    for error in &errors {
                        problems.add(
                            format!("spec.lifecycle.periodic.{}", error.field),
                            error.reason,
                            error.message.clone(),
                        );
                    }
                    errors.is_empty().then_some(Lifecycle::Periodic(schedule))
                }
                Err(errors) => {
                    for error in errors {
                        problems.add(
                            format!("spec.lifecycle.periodic.{}", error.field),
                            error.reason,
                            error.message,
                        );
                    }
                    None
                }
            },
        },
    }
}

/// `spec.elasticity.metrics`: where batch availability is read.
fn metrics_source(spec: &ElasticNodePoolSpec, problems: &mut Problems) -> Option<MetricsSource> {
    let elasticity = &spec.elasticity;
    match elasticity.metrics.source {
        MetricsSourceKind::Exporter => {
            if elasticity.metrics.exporter_port == 0 {
                problems.add(
                    "spec.elasticity.metrics.exporterPort",
                    "InvalidPort",
                    "port 0 is not valid",
                );
            }
            Some(MetricsSource::Exporter {
                port: elasticity.metrics.exporter_port,
            })
        }
        MetricsSourceKind::Prometheus => match elasticity.metrics.prometheus_url.as_deref() {
            None => {
                problems.add(
                    "spec.elasticity.metrics.prometheusUrl",
                    "MissingPrometheusUrl",
                    "source Prometheus needs prometheusUrl, e.g. http://prometheus.monitoring:9090",
                );
                None
            }
            Some(text) => match web_url(text) {
                Ok(url) => Some(MetricsSource::Prometheus { url }),
                Err(message) => {
                    problems.add(
                        "spec.elasticity.metrics.prometheusUrl",
                        "InvalidPrometheusUrl",
                        message,
                    );
                    None
                }
            },
        },
    }
}

/// The rest of `spec.elasticity`: the policy and its settings.
fn elasticity(
    spec: &ElasticNodePoolSpec,
    bounds: CapacityBounds,
    problems: &mut Problems,
) -> (PolicyKind, PolicySettings) {
    let elasticity = &spec.elasticity;
    if elasticity.sync_interval_seconds == 0 {
        problems.add(
            "spec.elasticity.syncIntervalSeconds",
            "InvalidInterval",
            "the sync interval must be at least 1 second",
        );
    }
    if elasticity.shrink_tolerance_percent > 100 {
        problems.add(
            "spec.elasticity.shrinkTolerancePercent",
            "InvalidTolerance",
            "the shrink tolerance is a percentage between 0 and 100",
        );
    }
    if elasticity.stale_after_seconds == 0 {
        problems.add(
            "spec.elasticity.staleAfterSeconds",
            "InvalidInterval",
            "metrics need at least 1 second before they count as stale",
        );
    }
    if elasticity.shrink_to_floor_after_seconds < elasticity.stale_after_seconds {
        problems.add(
            "spec.elasticity.shrinkToFloorAfterSeconds",
            "InconsistentStaleness",
            format!(
                "shrinkToFloorAfterSeconds ({}) must not be shorter than staleAfterSeconds ({})",
                elasticity.shrink_to_floor_after_seconds, elasticity.stale_after_seconds
            ),
        );
    }
    let static_capacity = elasticity.static_capacity;
    let policy = PolicyKind::from(elasticity.policy);
    if policy == PolicyKind::Static && bounds.clamp(static_capacity) != static_capacity {
        problems.add(
            "spec.elasticity.staticCapacity",
            "StaticOutsideBounds",
            format!(
                "the static capacity ({static_capacity}) lies outside the pool's floor and ceiling"
            ),
        );
    }
    let mut settings = PolicySettings::with_bounds(bounds);
    settings.scale_up_threshold_vcores = elasticity.scale_up_threshold_vcores;
    settings.shrink_tolerance = f64::from(elasticity.shrink_tolerance_percent.min(100)) / 100.0;
    settings.window = match elasticity.window {
        crate::crd::WindowName::OneMinute => koordlet_metrics::WindowSpan::OneMinute,
        crate::crd::WindowName::FiveMinutes => koordlet_metrics::WindowSpan::FiveMinutes,
        crate::crd::WindowName::TenMinutes => koordlet_metrics::WindowSpan::TenMinutes,
    };
    settings.statistic = match elasticity.statistic {
        crate::crd::StatisticName::Mean => Statistic::Mean,
        crate::crd::StatisticName::Min => Statistic::Min,
        crate::crd::StatisticName::Max => Statistic::Max,
    };
    settings.grow_cooldown_seconds = u64::from(elasticity.grow_cooldown_seconds);
    settings.stale_after_seconds = u64::from(elasticity.stale_after_seconds);
    settings.shrink_to_floor_after_seconds = u64::from(elasticity.shrink_to_floor_after_seconds);
    settings.static_capacity = static_capacity;
    (policy, settings)
}

/// `spec.guarder`.
fn guarder(spec: &ElasticNodePoolSpec, settings: &mut PolicySettings, problems: &mut Problems) {
    let guarder = &spec.guarder;
    if guarder.grace_period_seconds == 0 {
        problems.add(
            "spec.guarder.gracePeriodSeconds",
            "InvalidGracePeriod",
            "containers need at least 1 second to leave gracefully",
        );
    }
    if guarder.port == 0 {
        problems.add("spec.guarder.port", "InvalidPort", "port 0 is not valid");
    }
    // The deadline of an urgent guarder target is the pool's grace period.
    settings.grace_period_seconds = guarder.grace_period_seconds;
}

/// `spec.datasets`: names and mount paths, each once.
fn datasets(spec: &ElasticNodePoolSpec, problems: &mut Problems) {
    let mut dataset_names = BTreeSet::new();
    let mut mount_paths = BTreeSet::new();
    for (index, dataset) in spec.datasets.iter().enumerate() {
        let field = format!("spec.datasets[{index}]");
        if !is_dns_subdomain(&dataset.name) {
            problems.add(
                format!("{field}.name"),
                "InvalidDatasetName",
                format!("{:?} is not a valid Dataset/PVC name", dataset.name),
            );
        } else if !dataset_names.insert(dataset.name.as_str()) {
            problems.add(
                format!("{field}.name"),
                "DuplicateDataset",
                format!("{:?} is listed twice", dataset.name),
            );
        }
        if !dataset.mount_path.starts_with('/') {
            problems.add(
                format!("{field}.mountPath"),
                "RelativeMountPath",
                format!("{:?} must be an absolute path", dataset.mount_path),
            );
        } else if !mount_paths.insert(dataset.mount_path.trim_end_matches('/')) {
            problems.add(
                format!("{field}.mountPath"),
                "DuplicateMountPath",
                format!("{:?} is used by another dataset", dataset.mount_path),
            );
        }
    }
}

/// `spec.shuffle`: the Uniffle coordinators.
fn shuffle(spec: &ElasticNodePoolSpec, problems: &mut Problems) -> Vec<String> {
    let mut uniffle_coordinators = Vec::new();
    if let Some(uniffle) = spec.shuffle.as_ref().and_then(|s| s.uniffle.as_ref()) {
        if uniffle.coordinators.is_empty() {
            problems.add(
                "spec.shuffle.uniffle.coordinators",
                "MissingCoordinators",
                "list the Uniffle coordinators as host:port",
            );
        }
        for (index, coordinator) in uniffle.coordinators.iter().enumerate() {
            if is_host_port(coordinator.trim()) {
                uniffle_coordinators.push(coordinator.trim().to_owned());
            } else {
                problems.add(
                    format!("spec.shuffle.uniffle.coordinators[{index}]"),
                    "InvalidCoordinator",
                    format!("{coordinator:?} is not host:port"),
                );
            }
        }
    }
    uniffle_coordinators
}

/// What the API server would refuse by schema (specs read from files never met it), for the
/// fields no check above already explained.
fn schema(spec: &ElasticNodePoolSpec, problems: &mut Problems) {
    let mut limits = Problems::default();
    schema_limits::check(spec, &mut limits);
    for limit in limits.0 {
        if !problems.0.iter().any(|p| p.field == limit.field) {
            problems.0.push(limit);
        }
    }
}

mod schema_limits;

#[cfg(test)]
mod tests;
