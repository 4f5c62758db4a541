//! The judgements of the doctor, apart from the reads (pure, so that each rule is tested).

use super::Finding;

/// Koordinator's default `memoryEvictThresholdPercent` when a NodeSLO does not set it.
pub const KOORDINATOR_DEFAULT_EVICT_PERCENT: f64 = 70.0;

/// Seconds after which an exporter's newest sample counts as stale (the loop's default).
const EXPORTER_STALE_SECONDS: f64 = 60.0;

/// What a node's NodeSLO says of batch memory eviction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeSloView {
    /// `spec.resourceUsedThresholdWithBE.memoryEvictThresholdPercent`, if set.
    pub memory_evict_threshold_percent: Option<f64>,
    /// `spec.resourceUsedThresholdWithBE.enable`, if set.
    pub enabled: Option<bool>,
}

/// What a node's exporter answered on `/v1/windows`.
#[derive(Clone, Debug, PartialEq)]
pub enum ExporterView {
    /// No answer (or not a windows report).
    Unreachable(String),
    /// It answers, but has no sample: it cannot read koordlet.
    NoSample(String),
    /// Its newest sample.
    Sample {
        /// The eviction threshold the exporter computes with, percent.
        threshold_percent: f64,
        /// Seconds since that sample.
        age_seconds: f64,
    },
}

/// A label as the RM lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelView {
    /// Its name.
    pub name: String,
    /// Whether it is exclusive.
    pub exclusive: bool,
}

/// The pool's nodes' exporters: each must answer with a fresh sample.
pub fn evaluate_exporters(port: u16, nodes: &[(String, ExporterView)]) -> Finding {
    let mut unreachable = Vec::new();
    let mut blind = Vec::new();
    let mut stale = Vec::new();
    for (node, view) in nodes {
        match view {
            ExporterView::Unreachable(error) => unreachable.push(format!("{node} ({error})")),
            ExporterView::NoSample(error) => blind.push(format!("{node} ({error})")),
            ExporterView::Sample { age_seconds, .. } if *age_seconds > EXPORTER_STALE_SECONDS => {
                stale.push(format!("{node} ({age_seconds:.0} s old)"));
            }
            ExporterView::Sample { .. } => {}
        }
    }
    if !unreachable.is_empty() {
        return Finding::fail(
            format!(
                "no exporter answers on port {port} of {}",
                unreachable.join(", ")
            ),
            format!(
                "run the koordlet-metrics DaemonSet on these nodes (chart value \
                 koordletMetrics.nodeSelector/tolerations) on the host network, port {port}, \
                 and let the operator reach <node IP>:{port}"
            ),
        );
    }
    if !blind.is_empty() {
        return Finding::fail(
            format!(
                "the exporter has no koordlet sample on {}",
                blind.join(", ")
            ),
            "check that koordlet runs on the node and serves its metrics where the exporter's \
             --koordlet-url points (chart value koordletMetrics.koordletUrl, default \
             http://127.0.0.1:9316/metrics)",
        );
    }
    if !stale.is_empty() {
        return Finding::warn(
            format!("stale samples on {}", stale.join(", ")),
            "the exporter's scrapes of koordlet fail or koordlet serves an unchanging page; see \
             the exporter's log and its scrape_errors",
        );
    }
    Finding::pass(format!(
        "{} exporter(s) on port {port} serve fresh koordlet samples",
        nodes.len()
    ))
}

/// Koordinator's eviction threshold on each node against the exporter's: the exporter offers
/// batch work memory up to its threshold, so one higher than koordlet's gets NMs evicted.
pub fn evaluate_thresholds(nodes: &[(String, Option<NodeSloView>, Option<f64>)]) -> Finding {
    let mut mismatched = Vec::new();
    let mut missing = Vec::new();
    let mut disabled = Vec::new();
    let mut wanted = None;
    for (node, slo, exporter) in nodes {
        let Some(slo) = slo else {
            missing.push(node.as_str());
            continue;
        };
        if slo.enabled == Some(false) {
            disabled.push(node.as_str());
        }
        let koordlet = slo
            .memory_evict_threshold_percent
            .unwrap_or(KOORDINATOR_DEFAULT_EVICT_PERCENT);
        if let Some(exporter) = exporter
            && (koordlet - exporter).abs() > f64::EPSILON
        {
            mismatched.push(format!("{node}: NodeSLO {koordlet}%, exporter {exporter}%"));
            wanted = Some(koordlet);
        }
    }
    if let Some(wanted) = wanted {
        return Finding::fail(
            format!(
                "memory eviction thresholds differ: {}",
                mismatched.join("; ")
            ),
            format!(
                "set the exporter's threshold to koordlet's (chart value \
                 koordletMetrics.memoryEvictThresholdPercent={wanted}), or change \
                 memoryEvictThresholdPercent in Koordinator's slo-controller-config"
            ),
        );
    }
    if !missing.is_empty() {
        return Finding::warn(
            format!("no NodeSLO for {}", missing.join(", ")),
            "koord-manager makes one NodeSLO per node when co-location is enabled \
             (slo-controller-config); without it koordlet uses its defaults",
        );
    }
    if !disabled.is_empty() {
        return Finding::warn(
            format!(
                "batch memory eviction is disabled on {}",
                disabled.join(", ")
            ),
            "nothing then protects online pods from batch memory: enable \
             resourceUsedThresholdWithBE in slo-controller-config",
        );
    }
    Finding::pass(format!(
        "{} node(s): koordlet's eviction threshold matches the exporter's",
        nodes.len()
    ))
}

/// The Hadoop release the RM runs: from 3.4 the RM can keep ApplicationMasters off
/// non-exclusive labelled nodes (YARN-11088), which is what elastic NMs are.
pub fn evaluate_hadoop_version(version: &str) -> Finding {
    let mut numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(str::parse::<u32>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= (3, 4) => Finding::pass(format!(
            "Hadoop {version}: ApplicationMasters stay off the pool's non-exclusive label while \
             yarn.node-labels.am.allowed-non-exclusive-allocation is false (its default)"
        )),
        (Some(Ok(_)), Some(Ok(_))) => Finding::warn(
            format!(
                "Hadoop {version}: ApplicationMasters may be placed on elastic NMs (the RM \
                 setting that keeps them off non-exclusive labels came in 3.4, YARN-11088)"
            ),
            "upgrade the RM to Hadoop 3.4 or later, or keep spec.guarder.applicationMasters at \
             its default so that AMs leave last",
        ),
        _ => Finding::warn(
            format!("cannot read the Hadoop version from {version:?}"),
            "check that the address is a YARN ResourceManager",
        ),
    }
}

/// The pool's YARN label on the RM.
pub fn evaluate_node_label(label: &str, labels: Result<Vec<LabelView>, String>) -> Finding {
    let labels = match labels {
        Ok(labels) => labels,
        Err(error) => {
            return Finding::fail(
                format!("cannot list the RM's node labels: {error}"),
                "enable node labels on the RM (yarn.node-labels.enabled=true with \
                 yarn.node-labels.fs-store.root-dir) and let the operator's user administer \
                 the cluster (yarn.admin.acl)",
            );
        }
    };
    match labels.iter().find(|l| l.name == label) {
        Some(found) if found.exclusive => Finding::fail(
            format!(
                "the label {label} is exclusive: only applications asking for it may use the pool"
            ),
            format!(
                "remove it (yarn rmadmin -removeFromClusterNodeLabels {label}) and let the \
                 operator make it non-exclusive, or choose another spec.nodeManager.nodeLabel"
            ),
        ),
        Some(_) => Finding::pass(format!("the label {label} exists, non-exclusive")),
        None => Finding::warn(
            format!(
                "the label {label} is not on the RM yet ({} other label(s))",
                labels.len()
            ),
            "the operator adds it, non-exclusive, at the pool's first reconcile; if it stays \
             missing, see the pool's Events",
        ),
    }
}

/// Keys that tell a NodeManager where its ResourceManager is (one suffices).
const RM_LOCATION_KEYS: &[&str] = &[
    "yarn.resourcemanager.hostname",
    "yarn.resourcemanager.resource-tracker.address",
    "yarn.resourcemanager.ha.rm-ids",
];

/// The pool's Hadoop configuration ConfigMap (`name`, its data or `None` when it does not
/// exist), judged as the NM pod will use it: the `hadoop-conf` init container must parse
/// `yarn-site.xml`, the NM must parse every `*-site.xml`, and the NM must learn where the RM is.
pub fn hadoop_configuration(
    name: &str,
    data: Option<&std::collections::BTreeMap<String, String>>,
) -> Finding {
    let fix_map =
        "kubectl apply a ConfigMap with the pool's yarn-site.xml (docs/install.md, step 5)";
    let Some(data) = data else {
        return Finding::fail(format!("ConfigMap {name} does not exist"), fix_map);
    };
    if !data.contains_key("yarn-site.xml") {
        return Finding::fail(format!("ConfigMap {name} has no yarn-site.xml"), fix_map);
    }
    let mut described = Vec::new();
    let mut knows_rm = false;
    for (file, text) in data.iter().filter(|(file, _)| file.ends_with("-site.xml")) {
        match guarder::hadoop_conf::parse(file, text) {
            Ok(properties) => {
                if file == "yarn-site.xml" {
                    knows_rm = properties.iter().any(|p| {
                        RM_LOCATION_KEYS.contains(&p.name.as_str()) && !p.value.is_empty()
                    });
                }
                described.push(format!("{file} ({} properties)", properties.len()));
            }
            Err(error) => {
                return Finding::fail(
                    format!("ConfigMap {name}: {error}"),
                    "make it a Hadoop <configuration> of <property> name/value pairs: the NM \
                     pod's hadoop-conf init container fails on it (Start/init_failed)",
                );
            }
        }
    }
    if !knows_rm {
        return Finding::warn(
            format!("ConfigMap {name}: yarn-site.xml does not say where the RM is"),
            "set yarn.resourcemanager.hostname (or the HA rm-ids and their addresses): NMs \
             otherwise look for it at 0.0.0.0",
        );
    }
    Finding::pass(format!("ConfigMap {name}: {}", described.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn slo(threshold: Option<f64>) -> Option<NodeSloView> {
        Some(NodeSloView {
            memory_evict_threshold_percent: threshold,
            enabled: Some(true),
        })
    }

    #[test]
    fn a_threshold_differing_from_koordlets_is_a_blocker_naming_the_value_to_set() {
        let finding = evaluate_thresholds(&[
            ("a".to_owned(), slo(Some(70.0)), Some(70.0)),
            ("b".to_owned(), slo(Some(60.0)), Some(70.0)),
        ]);
        assert_eq!(finding.status, Status::Fail);
        assert!(
            finding.detail.contains("b: NodeSLO 60%, exporter 70%"),
            "{finding:?}"
        );
        assert!(
            finding
                .fix
                .as_deref()
                .is_some_and(|f| f.contains("memoryEvictThresholdPercent=60")),
            "{finding:?}"
        );
    }

    #[test]
    fn an_unset_threshold_is_koordinators_default() {
        let finding = evaluate_thresholds(&[("a".to_owned(), slo(None), Some(70.0))]);
        assert_eq!(finding.status, Status::Pass, "{finding:?}");
        let finding = evaluate_thresholds(&[("a".to_owned(), slo(None), Some(65.0))]);
        assert_eq!(finding.status, Status::Fail, "{finding:?}");
    }

    #[test]
    fn missing_or_disabled_nodeslos_warn() {
        let missing = evaluate_thresholds(&[("a".to_owned(), None, Some(70.0))]);
        assert_eq!(missing.status, Status::Warn);
        let off = Some(NodeSloView {
            memory_evict_threshold_percent: Some(70.0),
            enabled: Some(false),
        });
        let disabled = evaluate_thresholds(&[("a".to_owned(), off, Some(70.0))]);
        assert_eq!(disabled.status, Status::Warn);
        assert!(disabled.detail.contains("disabled on a"), "{disabled:?}");
    }

    #[test]
    fn exporters_unreachable_blind_or_stale() {
        let fresh = ExporterView::Sample {
            threshold_percent: 70.0,
            age_seconds: 1.0,
        };
        let pass = evaluate_exporters(9320, &[("a".to_owned(), fresh.clone())]);
        assert_eq!(pass.status, Status::Pass);
        let down = evaluate_exporters(
            9320,
            &[
                ("a".to_owned(), fresh.clone()),
                (
                    "b".to_owned(),
                    ExporterView::Unreachable("refused".to_owned()),
                ),
            ],
        );
        assert_eq!(down.status, Status::Fail);
        assert!(down.detail.contains("b (refused)"), "{down:?}");
        let blind = evaluate_exporters(
            9320,
            &[("a".to_owned(), ExporterView::NoSample("connect".to_owned()))],
        );
        assert_eq!(blind.status, Status::Fail);
        let stale = evaluate_exporters(
            9320,
            &[(
                "a".to_owned(),
                ExporterView::Sample {
                    threshold_percent: 70.0,
                    age_seconds: 300.0,
                },
            )],
        );
        assert_eq!(stale.status, Status::Warn);
    }

    #[test]
    fn hadoop_versions_from_3_4_keep_application_masters_off() {
        assert_eq!(evaluate_hadoop_version("3.4.2").status, Status::Pass);
        assert_eq!(evaluate_hadoop_version("3.5.0").status, Status::Pass);
        assert_eq!(
            evaluate_hadoop_version("4.0.0-SNAPSHOT").status,
            Status::Pass
        );
        assert_eq!(evaluate_hadoop_version("3.3.6").status, Status::Warn);
        assert_eq!(evaluate_hadoop_version("2.10.2").status, Status::Warn);
        assert_eq!(evaluate_hadoop_version("").status, Status::Warn);
    }

    #[test]
    fn the_pools_label_exists_non_exclusive() {
        let label = |name: &str, exclusive| LabelView {
            name: name.to_owned(),
            exclusive,
        };
        assert_eq!(
            evaluate_node_label("elastic", Ok(vec![label("elastic", false)])).status,
            Status::Pass
        );
        assert_eq!(
            evaluate_node_label("elastic", Ok(vec![label("elastic", true)])).status,
            Status::Fail
        );
        assert_eq!(
            evaluate_node_label("elastic", Ok(vec![label("gpu", false)])).status,
            Status::Warn
        );
        assert_eq!(
            evaluate_node_label("elastic", Err("disabled".to_owned())).status,
            Status::Fail
        );
    }

    #[test]
    fn the_hadoop_configuration_is_judged_as_the_nm_pod_reads_it() {
        use std::collections::BTreeMap;
        let site = |body: &str| format!("<configuration>{body}</configuration>");
        let rm = "<property><name>yarn.resourcemanager.hostname</name><value>rm</value></property>";
        let map = |entries: &[(&str, String)]| -> BTreeMap<String, String> {
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        assert_eq!(hadoop_configuration("yarn/conf", None).status, Status::Fail);
        let no_site = map(&[("core-site.xml", site(""))]);
        assert_eq!(
            hadoop_configuration("yarn/conf", Some(&no_site)).status,
            Status::Fail
        );
        let broken_core = map(&[
            ("yarn-site.xml", site(rm)),
            ("core-site.xml", "<configuration>".to_owned()),
        ]);
        let finding = hadoop_configuration("yarn/conf", Some(&broken_core));
        assert_eq!(finding.status, Status::Fail);
        assert!(
            finding
                .detail
                .starts_with("ConfigMap yarn/conf: core-site.xml: "),
            "{}",
            finding.detail
        );
        let no_rm = map(&[("yarn-site.xml", site(""))]);
        assert_eq!(
            hadoop_configuration("yarn/conf", Some(&no_rm)).status,
            Status::Warn
        );
        let good = map(&[
            ("yarn-site.xml", site(rm)),
            ("log4j.properties", "not xml".to_owned()),
        ]);
        let finding = hadoop_configuration("yarn/conf", Some(&good));
        assert_eq!(finding.status, Status::Pass, "{}", finding.detail);
        assert_eq!(
            finding.detail,
            "ConfigMap yarn/conf: yarn-site.xml (1 properties)"
        );
    }
}
