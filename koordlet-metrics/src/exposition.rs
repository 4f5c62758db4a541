//! `GET /metrics`: the exporter's state in the OpenMetrics text format.
//!
//! The windowed series are written from the state at the moment Prometheus asks (a
//! `prometheus-client` collector), never from gauges set earlier: a window that emptied while
//! koordlet was down disappears from the page instead of repeating its last value.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::exporter::{Clock, Exporter, SCRAPE_ERROR_REASONS};
use crate::report::WindowsReport;
use crate::series;
use crate::window::{WindowSet, WindowSpan, WindowStats};

/// The exporter shared between the scrape loop and the HTTP server.
pub type SharedExporter = Arc<Mutex<Exporter>>;

/// Locks the exporter; a panic elsewhere cannot make the state unreadable.
pub fn lock(exporter: &SharedExporter) -> std::sync::MutexGuard<'_, Exporter> {
    exporter.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes the exporter's state on every scrape.
#[derive(Debug)]
struct WindowsCollector {
    exporter: SharedExporter,
    clock: Clock,
}

/// The registry of the exporter, and the scrape duration histogram the loop observes.
pub fn registry(exporter: SharedExporter, clock: Clock) -> (Registry, Histogram) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(WindowsCollector { exporter, clock }));
    let duration = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]);
    registry.register_with_unit(
        series::KOORDLET_SCRAPE_DURATION_SECONDS.trim_end_matches("_seconds"),
        "How long fetching koordlet's page took",
        Unit::Seconds,
        duration.clone(),
    );
    (registry, duration)
}

pub use controlkit::openmetrics::{CONTENT_TYPE, render};

impl Collector for WindowsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let report = lock(&self.exporter).report(self.clock.now());
        encode_report(&report, &mut encoder)
    }
}

fn encode_report(
    report: &WindowsReport,
    encoder: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    let node = report.node.as_str();
    windowed(
        encoder,
        series::BATCH_CPU_AVAILABLE_CORES,
        "Cores batch (YARN) work may use on the node, over the window",
        node,
        &report.cpu_cores,
    )?;
    windowed(
        encoder,
        series::BATCH_MEMORY_AVAILABLE_BYTES,
        "Bytes of memory batch (YARN) work may use before koordlet evicts, over the window",
        node,
        &report.memory_bytes,
    )?;
    {
        let mut family = encoder.encode_descriptor(
            series::BATCH_AVAILABLE_SAMPLES,
            "Samples held in the window",
            None,
            MetricType::Gauge,
        )?;
        for span in WindowSpan::ALL {
            let labels = [
                (series::LABEL_NODE, node),
                (series::LABEL_WINDOW, span.label()),
            ];
            let count = i64::from(report.cpu_cores.get(span).count);
            ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
        }
    }
    let node_label = [(series::LABEL_NODE, node)];
    if let Some(latest) = &report.latest {
        for (name, help, value) in [
            (
                series::BATCH_CPU_AVAILABLE_LATEST_CORES,
                "Cores batch work may use, newest sample",
                latest.cpu_cores,
            ),
            (
                series::BATCH_MEMORY_AVAILABLE_LATEST_BYTES,
                "Bytes batch work may use, newest sample",
                latest.memory_bytes,
            ),
            (
                series::KOORDLET_LAST_SCRAPE_TIMESTAMP_SECONDS,
                "Unix time of the last koordlet scrape that gave a sample",
                latest.timestamp_seconds,
            ),
            (
                series::YARN_USED_CPU_CORES,
                "Cores YARN's containers used at the newest sample",
                latest.inputs.yarn.cpu_cores,
            ),
            (
                series::YARN_USED_MEMORY_BYTES,
                "Bytes (working set) YARN's containers used at the newest sample",
                latest.inputs.yarn.memory_bytes,
            ),
            (
                series::YARN_CGROUPS,
                "YARN cgroup hierarchies summed at the newest sample",
                latest.inputs.yarn.cgroups as f64,
            ),
        ] {
            gauge(encoder, name, help, &node_label, value)?;
        }
    }
    if let Some(allocatable) = &report.batch_allocatable {
        if let Some(cores) = allocatable.cpu_cores {
            gauge(
                encoder,
                series::BATCH_ALLOCATABLE_CPU_CORES,
                "Batch CPU allocatable koord-manager published for the node, cores",
                &node_label,
                cores,
            )?;
        }
        if let Some(bytes) = allocatable.memory_bytes {
            gauge(
                encoder,
                series::BATCH_ALLOCATABLE_MEMORY_BYTES,
                "Batch memory allocatable koord-manager published for the node, bytes",
                &node_label,
                bytes,
            )?;
        }
    }
    {
        let mut scrapes = encoder.encode_descriptor(
            series::KOORDLET_SCRAPES,
            "koordlet scrapes attempted",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(report.scrapes).encode(scrapes.encode_family(&node_label)?)?;
    }
    let mut errors = encoder.encode_descriptor(
        series::KOORDLET_SCRAPE_ERRORS,
        "koordlet scrapes that gave no sample, by reason",
        None,
        MetricType::Counter,
    )?;
    // Every reason from the start, so that `increase()` sees the first failure of each.
    for reason in SCRAPE_ERROR_REASONS {
        let count = report.scrape_errors.get(reason).copied().unwrap_or(0);
        let labels = [(series::LABEL_NODE, node), (series::LABEL_REASON, reason)];
        ConstCounter::new(count).encode(errors.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: &[(&str, &str); 1],
    value: f64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(family.encode_family(labels)?)
}

fn windowed(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    node: &str,
    windows: &WindowSet,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for span in WindowSpan::ALL {
        let stats = windows.get(span);
        if stats.is_empty() {
            continue;
        }
        for (stat, value) in series::STATS.into_iter().zip(stat_values(stats)) {
            let labels = [
                (series::LABEL_NODE, node),
                (series::LABEL_WINDOW, span.label()),
                (series::LABEL_STAT, stat),
            ];
            ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

fn stat_values(stats: &WindowStats) -> [f64; 4] {
    [stats.mean, stats.variance, stats.min, stats.max]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::{FormulaSettings, NodeCapacity, YarnUsage};
    use crate::exporter::{ExporterConfig, FetchError, Moment};
    use crate::koordlet::SuppressPolicy;
    use crate::replay::{KoordletValues, render_page};

    fn report_after(pages: &[Option<f64>]) -> WindowsReport {
        let mut exporter = Exporter::new(ExporterConfig {
            node: "n1".to_owned(),
            capacity: NodeCapacity {
                cpu_cores: 16.0,
                memory_bytes: 64e9,
            },
            settings: FormulaSettings::default(),
        });
        for (second, suppress) in pages.iter().enumerate() {
            let at = Moment {
                monotonic_ms: second as u64 * 1000,
                wall_seconds: 1.7e9 + second as f64,
            };
            let page = suppress.map(|cores| {
                render_page(
                    "n1",
                    &KoordletValues {
                        suppress_policy: SuppressPolicy::CfsQuota,
                        suppress_cores: Some(cores),
                        be_used_cpu_cores: 1.0,
                        ls_used_cpu_cores: 2.0,
                        node_used_cpu_cores: 3.0,
                        node_used_memory_bytes: 20e9,
                        batch_allocatable_milli_cores: 7500.0,
                        batch_allocatable_memory_bytes: 1e10,
                    },
                    0,
                )
            });
            let _ = exporter.observe(
                at,
                page.as_deref().ok_or(FetchError::Status(500)),
                Ok(Some(YarnUsage::default())),
            );
        }
        exporter.report(Moment {
            monotonic_ms: pages.len() as u64 * 1000,
            wall_seconds: 1.7e9 + pages.len() as f64,
        })
    }

    fn page_of(report: &WindowsReport) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(FixedReport(report.clone())));
        render(&registry).unwrap()
    }

    #[derive(Debug)]
    struct FixedReport(WindowsReport);

    impl Collector for FixedReport {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            encode_report(&self.0, &mut encoder)
        }
    }

    #[test]
    fn windows_are_written_with_the_contract_labels() {
        let text = page_of(&report_after(&[Some(5.0), Some(7.0), None]));
        // suppress − (beUsed − yarn) = 5 − 1 and 7 − 1.
        for expected in [
            "elastic_yarn_batch_cpu_available_cores{node=\"n1\",window=\"1m\",stat=\"mean\"} 5.0",
            "elastic_yarn_batch_cpu_available_cores{node=\"n1\",window=\"10m\",stat=\"min\"} 4.0",
            "elastic_yarn_batch_cpu_available_cores{node=\"n1\",window=\"5m\",stat=\"variance\"} 1.0",
            "elastic_yarn_batch_available_samples{node=\"n1\",window=\"1m\"} 2",
            "elastic_yarn_batch_cpu_available_latest_cores{node=\"n1\"} 6.0",
            "elastic_yarn_koordlet_last_scrape_timestamp_seconds{node=\"n1\"} 1700000001.0",
            "elastic_yarn_koordlet_scrape_errors_total{node=\"n1\",reason=\"http_status\"} 1",
            "elastic_yarn_koordlet_scrape_errors_total{node=\"n1\",reason=\"timeout\"} 0",
            "elastic_yarn_koordlet_scrapes_total{node=\"n1\"} 3",
            "elastic_yarn_batch_allocatable_cpu_cores{node=\"n1\"} 7.5",
            "# TYPE elastic_yarn_batch_memory_available_bytes gauge",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn an_empty_window_is_absent_not_zero() {
        let text = page_of(&report_after(&[None, None]));
        assert!(
            !text.contains("elastic_yarn_batch_cpu_available_cores{"),
            "{text}"
        );
        assert!(!text.contains("last_scrape_timestamp_seconds{"), "{text}");
        assert!(
            text.contains("elastic_yarn_batch_available_samples{node=\"n1\",window=\"10m\"} 0")
        );
        assert!(text.contains("reason=\"http_status\"} 2"));
    }
}
