//! Checks of each pool: what the operator will read and call for it.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret};
use koordlet_metrics::report::WindowsReport;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client, ResourceExt};
use yarn_rm::{ResourceManager, RestResourceManager, RestSettings, RmAuth};

use super::evaluate::{
    ExporterView, LabelView, NodeSloView, evaluate_exporters, evaluate_hadoop_version,
    evaluate_node_label, evaluate_thresholds, hadoop_configuration,
};
use super::{DoctorArgs, Finding, Report};
use crate::controller::{datasets, keytabs};
use crate::crd::ElasticNodePool;
use crate::placement;
use crate::validate::{self, MetricsSource, ValidatedPool};

/// Adds every pool's checks to `report`.
pub async fn check(client: &Client, args: &DoctorArgs, report: &mut Report) -> anyhow::Result<()> {
    let pools = read_pools(client, args, report).await?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| anyhow::anyhow!("listing Nodes: {e}"))?
        .items;
    for pool in &pools {
        check_pool(client, args, pool, &nodes, report).await;
    }
    Ok(())
}

async fn read_pools(
    client: &Client,
    args: &DoctorArgs,
    report: &mut Report,
) -> anyhow::Result<Vec<ElasticNodePool>> {
    if args.pools.is_empty() {
        let pools = Api::<ElasticNodePool>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| anyhow::anyhow!("listing ElasticNodePools: {e}"))?;
        return Ok(pools.items);
    }
    let mut found = Vec::new();
    for wanted in &args.pools {
        let Some((namespace, name)) = wanted.split_once('/') else {
            report.add(
                wanted,
                "pool",
                Finding::fail("not NAMESPACE/NAME", "name pools as --pool yarn/elastic"),
            );
            continue;
        };
        let api: Api<ElasticNodePool> = Api::namespaced(client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(pool)) => found.push(pool),
            Ok(None) => report.add(
                wanted,
                "pool",
                Finding::fail("no such ElasticNodePool", "kubectl get elasticnodepools -A"),
            ),
            Err(error) => anyhow::bail!("reading ElasticNodePool {wanted}: {error}"),
        }
    }
    Ok(found)
}

async fn check_pool(
    client: &Client,
    args: &DoctorArgs,
    pool: &ElasticNodePool,
    nodes: &[Node],
    report: &mut Report,
) {
    let namespace = pool.namespace().unwrap_or_default();
    let scope = format!("{namespace}/{}", pool.name_any());
    let validated = match validate::validate(&pool.spec, Timestamp::now()) {
        Ok(validated) => {
            report.add(&scope, "spec", Finding::pass("valid"));
            validated
        }
        Err(errors) => {
            report.add(
                &scope,
                "spec",
                Finding::fail(
                    errors.to_string(),
                    "fix the spec (elastic-yarn-operator validate)",
                ),
            );
            return;
        }
    };
    let eligible: Vec<&Node> = nodes
        .iter()
        .filter(|node| placement::check(node, &pool.spec.placement).is_ok())
        .collect();
    report.add(
        &scope,
        "nodes",
        selected_nodes(pool, nodes.len(), &eligible),
    );
    report.add(&scope, "batchResources", batch_resources(&eligible));
    report.add(
        &scope,
        "hadoopConf",
        hadoop_conf(client, &namespace, &pool.spec.node_manager.config_map).await,
    );
    let exporters = match &validated.metrics {
        MetricsSource::Exporter { port } => {
            let views = exporter_views(&eligible, *port, args.timeout()).await;
            report.add(&scope, "exporters", evaluate_exporters(*port, &views));
            Some(views)
        }
        MetricsSource::Prometheus { url } => {
            report.add(
                &scope,
                "exporters",
                Finding::pass(format!("read through Prometheus at {url} (not checked)")),
            );
            None
        }
    };
    report.add(
        &scope,
        "nodeSlo",
        node_slos(client, &eligible, exporters.as_deref()).await,
    );
    if let Some(keytab) = &validated.keytab {
        report.add(
            &scope,
            "kerberos",
            kerberos(client, &namespace, &validated, keytab).await,
        );
    }
    resource_manager(args, &scope, &validated, report).await;
    if let Some(reference) = &pool.spec.static_ip {
        let needed = eligible.len().saturating_sub(running_node_managers(pool));
        report.add(
            &scope,
            "staticIps",
            static_ips(client, &reference.pool, needed).await,
        );
    }
    if !pool.spec.datasets.is_empty() {
        report.add(
            &scope,
            "datasets",
            fluid_datasets(client, &namespace, pool).await,
        );
    }
}

fn running_node_managers(pool: &ElasticNodePool) -> usize {
    pool.status.as_ref().map_or(0, |s| s.node_managers.len())
}

fn selected_nodes(pool: &ElasticNodePool, all: usize, eligible: &[&Node]) -> Finding {
    if eligible.is_empty() {
        let selector = pool
            .spec
            .placement
            .node_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        return Finding::fail(
            format!(
                "none of the {all} Nodes matches the placement (nodeSelector {selector:?}, taints, affinity, cordons)"
            ),
            format!("label the nodes meant for batch work: kubectl label node <node> {selector}"),
        );
    }
    let names: Vec<String> = eligible.iter().map(|n| n.name_any()).collect();
    Finding::pass(format!(
        "{} Node(s) selected: {}",
        names.len(),
        names.join(", ")
    ))
}

fn batch_resources(eligible: &[&Node]) -> Finding {
    let without: Vec<String> = eligible
        .iter()
        .filter(|node| {
            placement::batch_allocatable(node)
                .is_none_or(|b| b.cpu_cores <= 0.0 || b.memory_mb <= 0.0)
        })
        .map(|n| n.name_any())
        .collect();
    if without.is_empty() {
        return Finding::pass(format!(
            "{} Node(s) offer kubernetes.io/batch-cpu and batch-memory",
            eligible.len()
        ));
    }
    let detail = format!("no batch resources on {}", without.join(", "));
    let fix = "enable Koordinator's co-location (colocation-config: enable: true) so that \
               koord-manager publishes kubernetes.io/batch-cpu/batch-memory on these nodes";
    if without.len() == eligible.len() {
        Finding::fail(detail, fix)
    } else {
        Finding::warn(detail, fix)
    }
}

fn internal_ip(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address.clone())
}

async fn exporter_views(
    eligible: &[&Node],
    port: u16,
    timeout: Duration,
) -> Vec<(String, ExporterView)> {
    let client = match controlkit::process::http_client().timeout(timeout).build() {
        Ok(client) => client,
        Err(error) => {
            let view = ExporterView::Unreachable(format!("no HTTP client: {error}"));
            return eligible
                .iter()
                .map(|node| (node.name_any(), view.clone()))
                .collect();
        }
    };
    let mut views = Vec::with_capacity(eligible.len());
    for node in eligible {
        let view = match internal_ip(node) {
            None => ExporterView::Unreachable("the Node has no InternalIP".to_owned()),
            Some(ip) => exporter_view(&client, &ip, port).await,
        };
        views.push((node.name_any(), view));
    }
    views
}

async fn exporter_view(client: &reqwest::Client, ip: &str, port: u16) -> ExporterView {
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    };
    let answer = client
        .get(format!("http://{host}:{port}/v1/windows"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    let body = match answer {
        Ok(response) => response.bytes().await,
        Err(error) => return ExporterView::Unreachable(error.to_string()),
    };
    let report = match body {
        Ok(body) => serde_json::from_slice::<WindowsReport>(&body).map_err(|e| e.to_string()),
        Err(error) => return ExporterView::Unreachable(error.to_string()),
    };
    match report {
        Err(error) => ExporterView::Unreachable(format!("not a windows report: {error}")),
        Ok(report) => match report.latest {
            None => ExporterView::NoSample(
                report
                    .last_error
                    .unwrap_or_else(|| "no scrape of koordlet yet".to_owned()),
            ),
            Some(latest) => ExporterView::Sample {
                threshold_percent: latest.inputs.memory_evict_threshold_percent,
                age_seconds: latest.age_seconds,
            },
        },
    }
}

/// Koordinator's NodeSLOs (cluster-scoped, one per node, named after it).
pub fn node_slo_api(client: &Client) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("slo.koordinator.sh", "v1alpha1", "NodeSLO"),
        "nodeslos",
    );
    Api::all_with(client.clone(), &resource)
}

async fn node_slos(
    client: &Client,
    eligible: &[&Node],
    exporters: Option<&[(String, ExporterView)]>,
) -> Finding {
    let api = node_slo_api(client);
    let mut nodes = Vec::with_capacity(eligible.len());
    for node in eligible {
        let name = node.name_any();
        let slo = match api.get_opt(&name).await {
            Ok(found) => found.map(|object| {
                let thresholds = &object.data["spec"]["resourceUsedThresholdWithBE"];
                NodeSloView {
                    memory_evict_threshold_percent: thresholds["memoryEvictThresholdPercent"]
                        .as_f64(),
                    enabled: thresholds["enable"].as_bool(),
                }
            }),
            Err(error) => {
                return Finding::warn(
                    format!("cannot read NodeSLOs: {error}"),
                    "install Koordinator, and run doctor as a user that may get nodeslos",
                );
            }
        };
        let exporter = exporters.and_then(|views| {
            views
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| match v {
                    ExporterView::Sample {
                        threshold_percent, ..
                    } => Some(*threshold_percent),
                    _ => None,
                })
        });
        nodes.push((name, slo, exporter));
    }
    evaluate_thresholds(&nodes)
}

/// The pool's Hadoop configuration, as its NM pods will read it.
async fn hadoop_conf(client: &Client, namespace: &str, name: &str) -> Finding {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match maps.get_opt(name).await {
        Ok(map) => hadoop_configuration(
            &format!("{namespace}/{name}"),
            map.as_ref()
                .map(|m| m.data.clone().unwrap_or_default())
                .as_ref(),
        ),
        Err(error) => Finding::warn(
            format!("cannot read ConfigMap {namespace}/{name}: {error}"),
            "run doctor as a user that may get ConfigMaps in the pool's namespace",
        ),
    }
}

async fn kerberos(
    client: &Client,
    namespace: &str,
    validated: &ValidatedPool,
    keytab: &validate::KeytabRef,
) -> Finding {
    let RmAuth::Kerberos { principal, .. } = &validated.auth else {
        return Finding::pass("no Kerberos");
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let bytes = match secrets.get_opt(&keytab.secret).await {
        Ok(Some(secret)) => secret
            .data
            .and_then(|mut data| data.remove(&keytab.key))
            .map(|b| b.0),
        Ok(None) => None,
        Err(error) => {
            return Finding::warn(
                format!("cannot read Secret {}: {error}", keytab.secret),
                "run doctor as a user that may get Secrets in the pool's namespace",
            );
        }
    };
    let Some(bytes) = bytes else {
        return Finding::fail(
            format!(
                "no key {} in Secret {}/{}",
                keytab.key, namespace, keytab.secret
            ),
            format!(
                "kubectl -n {namespace} create secret generic {} --from-file={}=<keytab file>",
                keytab.secret, keytab.key
            ),
        );
    };
    match keytabs::principals(&bytes) {
        Ok(found) if found.iter().any(|p| p == principal) => {
            krb5_config(principal).unwrap_or_else(|| {
                Finding::pass(format!(
                    "the keytab holds {principal}; krb5.conf names its realm"
                ))
            })
        }
        Ok(found) => Finding::fail(
            format!("the keytab holds {} but not {principal}", found.join(", ")),
            format!("export {principal}'s key into it (kadmin: ktadd -k <file> {principal})"),
        ),
        Err(error) => Finding::fail(
            format!(
                "Secret {}/{} key {} is not a keytab: {error}",
                namespace, keytab.secret, keytab.key
            ),
            "store the keytab file's bytes under that key",
        ),
    }
}

/// A warning when the krb5.conf this process would use does not name the principal's realm.
fn krb5_config(principal: &str) -> Option<Finding> {
    let realm = principal.rsplit_once('@').map(|(_, realm)| realm)?;
    let path = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".to_owned());
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (!text.contains(realm)).then(|| {
        Finding::warn(
            format!("the keytab holds {principal}, but {path} does not name the realm {realm}"),
            "give the operator a krb5.conf for the realm (chart value operator.krb5ConfigMap)",
        )
    })
}

async fn resource_manager(
    args: &DoctorArgs,
    scope: &str,
    validated: &ValidatedPool,
    report: &mut Report,
) {
    if matches!(validated.auth, RmAuth::Kerberos { .. }) && args.client_keytab.is_none() {
        report.add(
            scope,
            "resourceManager",
            Finding::warn(
                "not called: a Kerberos RM needs the pool's keytab in KRB5_CLIENT_KTNAME",
                "run doctor in the operator's pod (helm test) or with KRB5_CLIENT_KTNAME set to \
                 a file holding the pool's keytab",
            ),
        );
        return;
    }
    let mut settings = RestSettings::new(validated.rm_addresses(), validated.auth.clone());
    settings.ca_file = args.rm_ca_file.clone();
    settings.request_timeout = args.timeout();
    settings.retry.retries = 0;
    let addresses = validated.rm_addresses().join(", ");
    let rm = match RestResourceManager::new(settings) {
        Ok(rm) => rm,
        Err(error) => {
            report.add(
                scope,
                "resourceManager",
                Finding::fail(
                    format!("no RM client: {error}"),
                    "check spec.resourceManager",
                ),
            );
            return;
        }
    };
    let info = match rm.cluster_info().await {
        Ok(info) => info,
        Err(error) => {
            report.add(
                scope,
                "resourceManager",
                Finding::fail(
                    format!("no active RM answers at {addresses}: {error}"),
                    "check spec.resourceManager.addresses, the network path from the operator \
                     and the RM's web port (yarn.resourcemanager.webapp.address)",
                ),
            );
            return;
        }
    };
    report.add(
        scope,
        "resourceManager",
        Finding::pass(format!(
            "active RM answers at {addresses} ({:?})",
            info.ha_state
        )),
    );
    report.add(
        scope,
        "hadoopVersion",
        evaluate_hadoop_version(&info.hadoop_version),
    );
    let labels = rm
        .node_labels()
        .await
        .map(|labels| {
            labels
                .into_iter()
                .map(|l| LabelView {
                    name: l.name,
                    exclusive: l.exclusivity,
                })
                .collect()
        })
        .map_err(|e| e.to_string());
    report.add(
        scope,
        "nodeLabel",
        evaluate_node_label(&validated.node_label, labels),
    );
}

async fn static_ips(client: &Client, name: &str, needed: usize) -> Finding {
    let api: Api<staticip::crd::StaticIPPool> = Api::all(client.clone());
    let pool = match api.get_opt(name).await {
        Ok(Some(pool)) => pool,
        Ok(None) => {
            return Finding::fail(
                format!("no StaticIPPool {name}"),
                "create it (docs/staticip.md) or remove spec.staticIP",
            );
        }
        Err(error) => {
            return Finding::warn(
                format!("cannot read StaticIPPool {name}: {error}"),
                "run doctor as a user that may get staticippools",
            );
        }
    };
    let status = pool.status.unwrap_or_default();
    let not_ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status != "True");
    let cni = pool.spec.cni.annotation_key.clone().map_or_else(
        || format!("{:?} CNI annotation", pool.spec.cni.style),
        |key| format!("annotation {key}"),
    );
    if let Some(condition) = not_ready {
        return Finding::fail(
            format!("StaticIPPool {name} is not Ready: {}", condition.message),
            "see kubectl describe staticippool and the staticip controller's log",
        );
    }
    let free = usize::try_from(status.free).unwrap_or(usize::MAX);
    if free < needed {
        let detail = format!(
            "StaticIPPool {name}: {free} free address(es) for {needed} node(s) without an NM"
        );
        let fix = "add addresses (spec.cidr or spec.ranges) or release unused StaticIPs";
        return if free == 0 {
            Finding::fail(detail, fix)
        } else {
            Finding::warn(detail, fix)
        };
    }
    Finding::pass(format!(
        "StaticIPPool {name} Ready, {free} free of {} ({cni})",
        status.total
    ))
}

async fn fluid_datasets(client: &Client, namespace: &str, pool: &ElasticNodePool) -> Finding {
    let states = match datasets::read(client, namespace, &pool.spec.datasets).await {
        Ok(states) => states,
        Err(error) => {
            return Finding::warn(
                format!("cannot read Fluid Datasets: {error}"),
                "install Fluid, and run doctor as a user that may get datasets",
            );
        }
    };
    match datasets::readiness(&states) {
        datasets::DatasetsReadiness::NotReady { reason, message } => {
            let fix = "create the Dataset and its runtime in the pool's namespace (Fluid)";
            if reason == "DatasetMissing" {
                Finding::fail(message, fix)
            } else {
                Finding::warn(
                    message,
                    "wait for Fluid to bind it, or see its runtime's status",
                )
            }
        }
        _ => Finding::pass(format!("{} Dataset(s) bound", states.len())),
    }
}
