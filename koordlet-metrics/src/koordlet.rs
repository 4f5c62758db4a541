//! Reading koordlet's Prometheus page (docs/architecture.md, contract 1).
//!
//! A koordlet page holds a few thousand series; only a handful matter here. Lines are filtered
//! by name before `prometheus-parse` sees them, so the cost of a scrape does not grow with the
//! number of pods on the node. Values are checked for what can never be right (NaN, infinity,
//! negative, a fractional cpuset); whether a value is too large for the node is decided later,
//! where the node's capacity is known.

use std::fmt;

use prometheus_parse::{Sample, Scrape, Value};
use serde::{Deserialize, Serialize};

/// Names of the koordlet series read, as in Koordinator's `pkg/koordlet/metrics`.
pub mod names {
    /// Cores the BE cgroup may use, labelled by suppress `type`.
    pub const BE_SUPPRESS_CPU_CORES: &str = "koordlet_be_suppress_cpu_cores";
    /// Cores used by BE pods, as seen by the suppress loop.
    pub const BE_SUPPRESS_BE_USED_CPU_CORES: &str = "koordlet_be_suppress_be_used_cpu_cores";
    /// Cores used by everything that is not BE, as seen by the suppress loop.
    pub const BE_SUPPRESS_LS_USED_CPU_CORES: &str = "koordlet_be_suppress_ls_used_cpu_cores";
    /// Cores used by the whole node.
    pub const NODE_USED_CPU_CORES: &str = "koordlet_node_used_cpu_cores";
    /// Bytes of memory used by the whole node (what memory eviction compares).
    pub const NODE_USED_MEMORY_BYTES: &str = "koordlet_node_used_memory_bytes";
    /// Batch resources koord-manager last published for the node, by `resource` and `unit`.
    pub const NODE_RESOURCE_ALLOCATABLE: &str = "koordlet_node_resource_allocatable";

    /// Every series read.
    pub const ALL: [&str; 6] = [
        BE_SUPPRESS_CPU_CORES,
        BE_SUPPRESS_BE_USED_CPU_CORES,
        BE_SUPPRESS_LS_USED_CPU_CORES,
        NODE_USED_CPU_CORES,
        NODE_USED_MEMORY_BYTES,
        NODE_RESOURCE_ALLOCATABLE,
    ];
}

/// Resource names of batch allocatable (`resource` label).
const BATCH_CPU: &str = "kubernetes.io/batch-cpu";
const BATCH_MEMORY: &str = "kubernetes.io/batch-memory";

/// Every name above shares this prefix; lines without it are skipped unparsed.
const PREFIX: &str = "koordlet_";

/// How koordlet limits BE CPU (NodeSLO `cpuSuppressPolicy`), the `type` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SuppressPolicy {
    /// A cpuset of whole CPUs (at least 2).
    #[serde(rename = "cpuset")]
    Cpuset,
    /// A CFS quota on the BE cgroup; koordlet skips writes (and the gauge) for changes under
    /// 1% of the node.
    #[serde(rename = "cfsQuota")]
    CfsQuota,
}

impl SuppressPolicy {
    /// Both policies.
    pub const ALL: [SuppressPolicy; 2] = [SuppressPolicy::Cpuset, SuppressPolicy::CfsQuota];

    /// Value of koordlet's `type` label.
    pub const fn label(self) -> &'static str {
        match self {
            SuppressPolicy::Cpuset => "cpuset",
            SuppressPolicy::CfsQuota => "cfsQuota",
        }
    }

    /// The policy of a `type` label value.
    pub fn from_label(label: &str) -> Option<SuppressPolicy> {
        SuppressPolicy::ALL.into_iter().find(|p| p.label() == label)
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            SuppressPolicy::Cpuset => 0,
            SuppressPolicy::CfsQuota => 1,
        }
    }
}

impl fmt::Display for SuppressPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The values of one koordlet page that the exporter uses. `None` means the series was absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KoordletPage {
    /// `node` label of the series read (all agree).
    pub node: Option<String>,
    /// BE suppress limit by policy (koordlet keeps the gauge of a policy it no longer uses).
    pub suppress_cores: [Option<f64>; 2],
    /// Cores used by BE pods.
    pub be_used_cpu_cores: Option<f64>,
    /// Cores used by non-BE work.
    pub ls_used_cpu_cores: Option<f64>,
    /// Cores used by the node.
    pub node_used_cpu_cores: Option<f64>,
    /// Memory used by the node.
    pub node_used_memory_bytes: Option<f64>,
    /// Batch CPU allocatable published by koord-manager, in cores.
    pub batch_allocatable_cpu_cores: Option<f64>,
    /// Batch memory allocatable published by koord-manager, in bytes.
    pub batch_allocatable_memory_bytes: Option<f64>,
}

impl KoordletPage {
    /// The suppress limit of one policy.
    pub const fn suppress(&self, policy: SuppressPolicy) -> Option<f64> {
        self.suppress_cores[policy.index()]
    }
}

/// Why a page could not be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PageError {
    /// A series the exporter reads appears twice with the same labels.
    #[error("series {series}{labels} appears more than once")]
    DuplicateSeries {
        /// Series name.
        series: &'static str,
        /// Its distinguishing labels, in braces (may be empty).
        labels: String,
    },
    /// NaN, infinite, negative, or a cpuset of part of a CPU.
    #[error("series {series} has value {value}: {why}")]
    InvalidValue {
        /// Series name.
        series: &'static str,
        /// The value read.
        value: f64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The page belongs to another node than the exporter's.
    #[error("series {series} is for node {found:?}, this exporter serves node {expected:?}")]
    WrongNode {
        /// Series name.
        series: &'static str,
        /// Node expected (`--node`).
        expected: String,
        /// Node found in the `node` label.
        found: String,
    },
}

impl PageError {
    /// Short stable category, for metric labels.
    pub const fn category(&self) -> &'static str {
        match self {
            PageError::DuplicateSeries { .. } => "duplicate_series",
            PageError::InvalidValue { .. } => "invalid_value",
            PageError::WrongNode { .. } => "wrong_node",
        }
    }
}

/// Parses a koordlet page. `expected_node`, when given, must match the `node` label of every
/// series read.
pub fn parse_page(text: &str, expected_node: Option<&str>) -> Result<KoordletPage, PageError> {
    let relevant = text.lines().filter(|line| is_relevant(line));
    // Reading from memory cannot fail; the `io::Result` is the parser's interface.
    let scrape = Scrape::parse(relevant.map(|line| Ok(line.to_owned()))).unwrap_or(Scrape {
        docs: Default::default(),
        samples: Vec::new(),
    });
    let mut page = KoordletPage::default();
    for sample in &scrape.samples {
        read_sample(&mut page, sample, expected_node)?;
    }
    Ok(page)
}

fn is_relevant(line: &str) -> bool {
    let line = line.trim_start();
    if let Some(comment) = line.strip_prefix('#') {
        // `# TYPE koordlet_… gauge` lines tell the parser which samples are gauges.
        let mut words = comment.split_whitespace();
        return words.next() == Some("TYPE")
            && words.next().is_some_and(|name| known_name(name).is_some());
    }
    // Only the name is compared: label sets of a busy node run to hundreds of bytes per line.
    line.starts_with(PREFIX)
        && known_name(line.split(['{', ' ', '\t']).next().unwrap_or_default()).is_some()
}

fn read_sample(
    page: &mut KoordletPage,
    sample: &Sample,
    expected_node: Option<&str>,
) -> Result<(), PageError> {
    let Some(series) = known_name(&sample.metric) else {
        return Ok(());
    };
    let value = match sample.value {
        Value::Gauge(v) | Value::Untyped(v) | Value::Counter(v) => v,
        // A histogram or summary under one of these names is not koordlet's page.
        Value::Histogram(_) | Value::Summary(_) => {
            return Err(PageError::InvalidValue {
                series,
                value: f64::NAN,
                why: "expected a gauge",
            });
        }
    };
    let node = sample.labels.get("node");
    if let (Some(expected), Some(found)) = (expected_node, node)
        && expected != found
    {
        return Err(PageError::WrongNode {
            series,
            expected: expected.to_owned(),
            found: found.to_owned(),
        });
    }
    // koordlet writes batch CPU in milli-cores (`unit="integer"`); everything else as is.
    let (slot, divisor) = match series {
        names::BE_SUPPRESS_CPU_CORES => {
            let Some(policy) = sample
                .labels
                .get("type")
                .and_then(SuppressPolicy::from_label)
            else {
                // A suppress type this exporter does not know: not an error, not used.
                return Ok(());
            };
            if policy == SuppressPolicy::Cpuset && value.is_finite() && value.fract() != 0.0 {
                return Err(PageError::InvalidValue {
                    series,
                    value,
                    why: "a cpuset holds whole CPUs",
                });
            }
            (&mut page.suppress_cores[policy.index()], 1.0)
        }
        names::BE_SUPPRESS_BE_USED_CPU_CORES => (&mut page.be_used_cpu_cores, 1.0),
        names::BE_SUPPRESS_LS_USED_CPU_CORES => (&mut page.ls_used_cpu_cores, 1.0),
        names::NODE_USED_CPU_CORES => (&mut page.node_used_cpu_cores, 1.0),
        names::NODE_USED_MEMORY_BYTES => (&mut page.node_used_memory_bytes, 1.0),
        names::NODE_RESOURCE_ALLOCATABLE => {
            match (sample.labels.get("resource"), sample.labels.get("unit")) {
                (Some(BATCH_CPU), Some("integer")) => {
                    (&mut page.batch_allocatable_cpu_cores, 1000.0)
                }
                (Some(BATCH_MEMORY), Some("byte")) => {
                    (&mut page.batch_allocatable_memory_bytes, 1.0)
                }
                _ => return Ok(()),
            }
        }
        _ => return Ok(()),
    };
    check_value(series, value)?;
    if slot.is_some() {
        return Err(PageError::DuplicateSeries {
            series,
            labels: distinguishing_labels(sample),
        });
    }
    *slot = Some(value / divisor);
    if page.node.is_none() {
        page.node = node.map(str::to_owned);
    }
    Ok(())
}

fn known_name(metric: &str) -> Option<&'static str> {
    names::ALL.into_iter().find(|name| *name == metric)
}

fn check_value(series: &'static str, value: f64) -> Result<(), PageError> {
    let why = if value.is_nan() {
        "not a number"
    } else if value.is_infinite() {
        "infinite"
    } else if value < 0.0 {
        "negative"
    } else {
        return Ok(());
    };
    Err(PageError::InvalidValue { series, value, why })
}

fn distinguishing_labels(sample: &Sample) -> String {
    let mut labels: Vec<String> = sample
        .labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{value}\""))
        .collect();
    labels.sort();
    format!("{{{}}}", labels.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PAGE: &str = r#"# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 87
# HELP koordlet_be_suppress_be_used_cpu_cores Number of cpu cores used by BE.
# TYPE koordlet_be_suppress_be_used_cpu_cores gauge
koordlet_be_suppress_be_used_cpu_cores{node="node-a"} 6.25
# HELP koordlet_be_suppress_cpu_cores Number of cores suppress by koordlet
# TYPE koordlet_be_suppress_cpu_cores gauge
koordlet_be_suppress_cpu_cores{node="node-a",type="cfsQuota"} 20.48
# HELP koordlet_be_suppress_ls_used_cpu_cores Number of cpu cores used by LS.
# TYPE koordlet_be_suppress_ls_used_cpu_cores gauge
koordlet_be_suppress_ls_used_cpu_cores{node="node-a"} 11.5
# HELP koordlet_node_resource_allocatable the node allocatable of resources updated by koordinator
# TYPE koordlet_node_resource_allocatable gauge
koordlet_node_resource_allocatable{node="node-a",resource="kubernetes.io/batch-cpu",unit="integer"} 18250
koordlet_node_resource_allocatable{node="node-a",resource="kubernetes.io/batch-memory",unit="byte"} 6.8719476736e+10
koordlet_node_resource_allocatable{node="node-a",resource="kubernetes.io/mid-cpu",unit="integer"} 3000
# HELP koordlet_node_used_cpu_cores Number of cpu cores used by node in realtime
# TYPE koordlet_node_used_cpu_cores gauge
koordlet_node_used_cpu_cores{node="node-a"} 17.75
# HELP koordlet_node_used_memory_bytes Memory used by node in realtime
# TYPE koordlet_node_used_memory_bytes gauge
koordlet_node_used_memory_bytes{node="node-a"} 1.2884901888e+11
"#;

    #[test]
    fn reads_the_contract_series_and_converts_milli_cores() {
        let page = parse_page(PAGE, Some("node-a")).unwrap();
        assert_eq!(page.node.as_deref(), Some("node-a"));
        assert_eq!(page.suppress(SuppressPolicy::CfsQuota), Some(20.48));
        assert_eq!(page.suppress(SuppressPolicy::Cpuset), None);
        assert_eq!(page.be_used_cpu_cores, Some(6.25));
        assert_eq!(page.ls_used_cpu_cores, Some(11.5));
        assert_eq!(page.node_used_cpu_cores, Some(17.75));
        assert_eq!(
            page.node_used_memory_bytes,
            Some(120.0 * 1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(page.batch_allocatable_cpu_cores, Some(18.25));
        assert_eq!(
            page.batch_allocatable_memory_bytes,
            Some(64.0 * 1024.0 * 1024.0 * 1024.0)
        );
    }

    #[test]
    fn another_nodes_page_is_refused() {
        let err = parse_page(PAGE, Some("node-b")).unwrap_err();
        assert_eq!(err.category(), "wrong_node");
        assert!(err.to_string().contains("node-a"), "{err}");
    }

    #[test]
    fn absent_series_stay_absent() {
        let page = parse_page("go_goroutines 3\n", None).unwrap();
        assert_eq!(page, KoordletPage::default());
    }

    #[test]
    fn nan_negative_and_infinite_values_are_refused() {
        for (value, expected_why) in [
            ("NaN", "not a number"),
            ("-1", "negative"),
            ("+Inf", "infinite"),
        ] {
            let text = format!("koordlet_node_used_cpu_cores{{node=\"n\"}} {value}\n");
            match parse_page(&text, None) {
                Err(PageError::InvalidValue { series, why, .. }) => {
                    assert_eq!(series, names::NODE_USED_CPU_CORES);
                    assert_eq!(why, expected_why);
                }
                other => panic!("{value}: expected an invalid value, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_cpuset_of_part_of_a_cpu_is_refused_but_a_quota_is_not() {
        let cpuset = "koordlet_be_suppress_cpu_cores{node=\"n\",type=\"cpuset\"} 7.5\n";
        assert_eq!(
            parse_page(cpuset, None).unwrap_err().category(),
            "invalid_value"
        );
        let quota = "koordlet_be_suppress_cpu_cores{node=\"n\",type=\"cfsQuota\"} 7.5\n";
        assert_eq!(
            parse_page(quota, None)
                .unwrap()
                .suppress(SuppressPolicy::CfsQuota),
            Some(7.5)
        );
    }

    #[test]
    fn both_policies_may_be_present_and_unknown_types_are_ignored() {
        let text = "koordlet_be_suppress_cpu_cores{node=\"n\",type=\"cpuset\"} 8\n\
                    koordlet_be_suppress_cpu_cores{node=\"n\",type=\"cfsQuota\"} 9.5\n\
                    koordlet_be_suppress_cpu_cores{node=\"n\",type=\"future\"} 1\n";
        let page = parse_page(text, Some("n")).unwrap();
        assert_eq!(page.suppress(SuppressPolicy::Cpuset), Some(8.0));
        assert_eq!(page.suppress(SuppressPolicy::CfsQuota), Some(9.5));
    }

    #[test]
    fn a_repeated_series_is_refused() {
        let text = "koordlet_node_used_memory_bytes{node=\"n\"} 1\n\
                    koordlet_node_used_memory_bytes{node=\"n\"} 2\n";
        let err = parse_page(text, None).unwrap_err();
        assert_eq!(err.category(), "duplicate_series");
        assert!(err.to_string().contains("node=\"n\""), "{err}");
    }

    #[test]
    fn names_that_only_start_like_ours_are_not_ours() {
        let text = "koordlet_node_used_cpu_cores_total{node=\"n\"} 5\n";
        assert_eq!(parse_page(text, None).unwrap().node_used_cpu_cores, None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_page(&text, Some("n"));
        }

        #[test]
        fn arbitrary_lines_with_our_names_never_panic(
            lines in prop::collection::vec(
                (0usize..6, "[ -~]{0,40}", "[ -~]{0,20}"), 0..40)
        ) {
            let names = names::ALL;
            let text: String = lines
                .iter()
                .map(|(i, labels, value)| format!("{}{{{labels}}} {value}\n", names[*i]))
                .collect();
            if let Ok(page) = parse_page(&text, None) {
                for value in page.suppress_cores.iter().chain([
                    &page.be_used_cpu_cores,
                    &page.node_used_memory_bytes,
                ]).flatten() {
                    prop_assert!(value.is_finite() && *value >= 0.0);
                }
            }
        }
    }
}
