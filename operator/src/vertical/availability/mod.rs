//! Windowed availability of each node, from the koordlet-metrics exporters (`GET /v1/windows`)
//! or from Prometheus' HTTP API (docs/architecture.md, contract 2), in the units the policy engine reads.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use koordlet_metrics::report::WindowsReport;
use koordlet_metrics::series;
use koordlet_metrics::{WindowSet, WindowStats};
use serde::Deserialize;
use url::Url;

use crate::policy::{Availability, BatchAllocatable};

const MIB: f64 = 1_048_576.0;

/// What the node can give to batch work, as the policy engine reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeReading {
    /// Windows, newest sample and its age.
    pub availability: Availability,
    /// koord-manager's batch allocatable, when koordlet reported it.
    pub batch_allocatable: Option<BatchAllocatable>,
}

/// Why a node's availability could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// No connection or no answer in time.
    #[error("{url} is unreachable: {message}")]
    Unreachable {
        /// Where.
        url: String,
        /// The transport's words.
        message: String,
    },
    /// An answer other than 200.
    #[error("{url} answered {status}")]
    Status {
        /// Where.
        url: String,
        /// HTTP status.
        status: u16,
    },
    /// An answer that is not the expected document.
    #[error("{url} sent an unreadable answer: {message}")]
    Malformed {
        /// Where.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The exporter runs but has no sample yet (koordlet unreachable from it).
    #[error("no sample for node {node} yet")]
    NoSample {
        /// Kubernetes node.
        node: String,
    },
    /// The node has no endpoint to read from.
    #[error("no metrics endpoint for node {node}")]
    NoEndpoint {
        /// Kubernetes node.
        node: String,
    },
    /// Values no node can have: not finite, negative, beyond any machine or beyond the node's
    /// own capacity. Treated as no reading: stale, never growth.
    #[error("node {node}: {what}")]
    Invalid {
        /// Kubernetes node.
        node: String,
        /// What is wrong.
        what: String,
    },
    /// A sample stamped later than now (beyond clock skew): its age cannot be trusted.
    #[error("node {node}: the newest sample is {seconds} s in the future")]
    FromTheFuture {
        /// Kubernetes node.
        node: String,
        /// How far ahead, whole seconds.
        seconds: u64,
    },
    /// An answer larger than any real one.
    #[error("{url} sent more than {limit} bytes")]
    TooLarge {
        /// Where.
        url: String,
        /// The cap.
        limit: usize,
    },
}

/// The error for a transport failure towards `url`.
fn unreachable(url: &str) -> impl Fn(reqwest::Error) -> SourceError + '_ {
    move |err| SourceError::Unreachable {
        url: url.to_owned(),
        message: err.to_string(),
    }
}

impl SourceError {
    /// Short stable category for metrics and Events.
    pub const fn category(&self) -> &'static str {
        match self {
            SourceError::Unreachable { .. } => "unreachable",
            SourceError::Status { .. } => "status",
            SourceError::Malformed { .. } => "malformed",
            SourceError::NoSample { .. } => "no_sample",
            SourceError::NoEndpoint { .. } => "no_endpoint",
            SourceError::Invalid { .. } => "invalid_metrics",
            SourceError::FromTheFuture { .. } => "future_timestamp",
            SourceError::TooLarge { .. } => "too_large",
        }
    }
}

fn scale_stats(stats: &WindowStats, factor: f64) -> WindowStats {
    WindowStats {
        count: stats.count,
        mean: stats.mean * factor,
        variance: stats.variance * factor * factor,
        min: stats.min * factor,
        max: stats.max * factor,
    }
}

fn scale(set: &WindowSet, factor: f64) -> WindowSet {
    WindowSet {
        one_minute: scale_stats(&set.one_minute, factor),
        five_minutes: scale_stats(&set.five_minutes, factor),
        ten_minutes: scale_stats(&set.ten_minutes, factor),
    }
}

fn whole_seconds(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        // Rounded down: a sample 2.9 s old is not yet 3 s old.
        value as u64
    } else {
        0
    }
}

/// Most CPU cores any node can report: more is a corrupt value.
pub const MOST_CORES: f64 = 16_384.0;
/// Most memory any node can report, MiB (256 TiB).
pub const MOST_MEMORY_MB: f64 = 268_435_456.0;
/// How far ahead of the operator's clock a sample may be stamped (clock skew).
pub const CLOCK_SKEW_SECONDS: f64 = 30.0;
/// Largest answer read from an exporter.
pub const MOST_EXPORTER_BYTES: usize = 1 << 20;
/// Largest answer read from Prometheus (every node of a pool in one query).
pub const MOST_PROMETHEUS_BYTES: usize = 64 << 20;

/// Checks what a source said before the policy engine sees it: a value that is not finite,
/// negative, beyond any machine or beyond the node's own `capacity` (cores, MiB, when known)
/// makes the whole reading invalid, which the loop treats as no reading (stale): bad metrics
/// never make an NM grow.
pub fn checked(
    node: &str,
    reading: NodeReading,
    capacity: Option<(f64, f64)>,
) -> Result<NodeReading, SourceError> {
    let (most_cores, most_memory) = capacity
        .filter(|(c, m)| c.is_finite() && m.is_finite() && *c > 0.0 && *m > 0.0)
        .map_or((MOST_CORES, MOST_MEMORY_MB), |(c, m)| {
            // A little room: koordlet and the exporter round.
            (c * 1.05, m * 1.05)
        });
    let invalid = |what: String| SourceError::Invalid {
        node: node.to_owned(),
        what,
    };
    let check = |name: &str, value: f64, most: f64| {
        if !value.is_finite() {
            Err(invalid(format!("{name} is {value}")))
        } else if value < 0.0 {
            Err(invalid(format!("{name} is negative ({value})")))
        } else if value > most {
            Err(invalid(format!("{name} is {value}, above {most}")))
        } else {
            Ok(())
        }
    };
    let a = &reading.availability;
    for (resource, set, most) in [
        ("cpu cores", &a.cpu_cores, most_cores),
        ("memory MiB", &a.memory_mb, most_memory),
    ] {
        for (span, stats) in [
            ("1m", &set.one_minute),
            ("5m", &set.five_minutes),
            ("10m", &set.ten_minutes),
        ] {
            if stats.count == 0 {
                continue;
            }
            for (stat, value, limit) in [
                ("mean", stats.mean, most),
                ("min", stats.min, most),
                ("max", stats.max, most),
                ("variance", stats.variance, most * most),
            ] {
                check(&format!("{span} {stat} of {resource}"), value, limit)?;
            }
        }
    }
    check("latest cpu cores", a.latest_cpu_cores, most_cores)?;
    check("latest memory MiB", a.latest_memory_mb, most_memory)?;
    if let Some(b) = &reading.batch_allocatable {
        check("batch allocatable cpu cores", b.cpu_cores, MOST_CORES)?;
        check("batch allocatable memory MiB", b.memory_mb, MOST_MEMORY_MB)?;
    }
    Ok(reading)
}

/// Seconds since a sample, refusing one stamped in the future beyond clock skew.
fn age_of(node: &str, age_seconds: f64) -> Result<u64, SourceError> {
    if age_seconds.is_nan() {
        return Err(SourceError::Invalid {
            node: node.to_owned(),
            what: "the newest sample's age is NaN".to_owned(),
        });
    }
    if age_seconds < -CLOCK_SKEW_SECONDS {
        return Err(SourceError::FromTheFuture {
            node: node.to_owned(),
            seconds: whole_seconds(-age_seconds),
        });
    }
    Ok(whole_seconds(age_seconds))
}

/// The policy engine's view of an exporter's report.
pub fn reading_from_report(report: &WindowsReport) -> Result<NodeReading, SourceError> {
    let latest = report.latest.ok_or_else(|| SourceError::NoSample {
        node: report.node.clone(),
    })?;
    let age = age_of(&report.node, latest.age_seconds)?;
    let batch_allocatable = report.batch_allocatable.and_then(|b| {
        Some(BatchAllocatable {
            cpu_cores: b.cpu_cores?,
            memory_mb: b.memory_bytes? / MIB,
            // Its own age when the exporter says it; else it came with the newest sample.
            age_seconds: b.age_seconds.map_or(age, whole_seconds),
        })
    });
    let capacity = Some((
        latest.inputs.capacity.cpu_cores,
        latest.inputs.capacity.memory_bytes / MIB,
    ));
    checked(
        &report.node,
        NodeReading {
            availability: Availability {
                cpu_cores: report.cpu_cores,
                memory_mb: scale(&report.memory_bytes, 1.0 / MIB),
                latest_cpu_cores: latest.cpu_cores,
                latest_memory_mb: latest.memory_bytes / MIB,
                age_seconds: age,
            },
            batch_allocatable,
        },
        capacity,
    )
}

/// Reads a whole answer, refusing one larger than `limit` bytes (a broken or hostile endpoint
/// must not fill the operator's memory).
pub(crate) async fn body_capped(
    mut answer: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if answer.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why an answer's body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Larger than the cap.
    TooLarge,
    /// The connection failed.
    Transport(reqwest::Error),
}

/// Reads `GET /v1/windows` of each node's exporter.
#[derive(Clone, Debug)]
pub struct ExporterSource {
    http: reqwest::Client,
    concurrency: usize,
}

impl ExporterSource {
    /// A source with this per-request timeout and at most `concurrency` requests at once.
    pub fn new(timeout: Duration, concurrency: usize) -> Result<ExporterSource, reqwest::Error> {
        Ok(ExporterSource {
            http: crate::vertical::http_client(timeout)?,
            concurrency: concurrency.max(1),
        })
    }

    /// One exporter's reading.
    pub async fn read(&self, base: &Url) -> Result<NodeReading, SourceError> {
        let url = base
            .join("v1/windows")
            .map_err(|err| SourceError::Malformed {
                url: base.to_string(),
                message: err.to_string(),
            })?;
        let text = url.to_string();
        let answer = self
            .http
            .get(url)
            .send()
            .await
            .map_err(unreachable(&text))?;
        let status = answer.status().as_u16();
        if status != 200 {
            return Err(SourceError::Status { url: text, status });
        }
        let body = body_capped(answer, MOST_EXPORTER_BYTES)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge => SourceError::TooLarge {
                    url: text.clone(),
                    limit: MOST_EXPORTER_BYTES,
                },
                BodyError::Transport(error) => unreachable(&text)(error),
            })?;
        let report: WindowsReport =
            serde_json::from_slice(&body).map_err(|err| SourceError::Malformed {
                url: text,
                message: err.to_string(),
            })?;
        reading_from_report(&report)
    }

    /// Every node's reading, concurrently; nodes without an exporter URL get `NoEndpoint`.
    pub async fn read_all(
        &self,
        nodes: &[(String, Option<Url>)],
    ) -> BTreeMap<String, Result<NodeReading, SourceError>> {
        let mut reads = Vec::with_capacity(nodes.len());
        for (node, url) in nodes.iter().cloned() {
            reads.push(async move {
                let reading = match &url {
                    Some(url) => self.read(url).await,
                    None => Err(SourceError::NoEndpoint { node: node.clone() }),
                };
                (node, reading)
            });
        }
        futures::stream::iter(reads)
            .buffer_unordered(self.concurrency)
            .collect()
            .await
    }
}

/// Reads every node's windows from Prometheus with one instant query.
#[derive(Clone, Debug)]
pub struct PrometheusSource {
    http: reqwest::Client,
    base: Url,
}

#[derive(Deserialize)]
struct QueryAnswer {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Sample>,
}

#[derive(Deserialize)]
struct Sample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Default)]
struct NodeSeries {
    cpu: WindowSet,
    memory: WindowSet,
    latest_cpu: Option<f64>,
    latest_memory: Option<f64>,
    last_scrape: Option<f64>,
    allocatable_cpu: Option<f64>,
    allocatable_memory: Option<f64>,
}

fn stats_slot<'a>(set: &'a mut WindowSet, window: &str) -> Option<&'a mut WindowStats> {
    match window {
        "1m" => Some(&mut set.one_minute),
        "5m" => Some(&mut set.five_minutes),
        "10m" => Some(&mut set.ten_minutes),
        _ => None,
    }
}

fn set_stat(stats: &mut WindowStats, stat: &str, value: f64) {
    match stat {
        "mean" => stats.mean = value,
        "variance" => stats.variance = value,
        "min" => stats.min = value,
        "max" => stats.max = value,
        _ => return,
    }
    // The exporter publishes a window only when it holds samples.
    stats.count = stats.count.max(1);
}

impl PrometheusSource {
    /// A source reading from Prometheus at `base` (e.g. `http://prometheus:9090/`).
    pub fn new(base: Url, timeout: Duration) -> Result<PrometheusSource, reqwest::Error> {
        PrometheusSource::with_egress(base, timeout, None)
    }

    /// A source whose connections follow `egress` (see [`controlkit::egress`]).
    pub fn with_egress(
        base: Url,
        timeout: Duration,
        egress: Option<&std::sync::Arc<controlkit::egress::EgressPolicy>>,
    ) -> Result<PrometheusSource, reqwest::Error> {
        let mut http = controlkit::process::http_client()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(egress) = egress {
            http = http.dns_resolver(egress.resolver());
        }
        Ok(PrometheusSource {
            http: http.build()?,
            base,
        })
    }

    /// The query: every series the policy reads, for every node.
    pub fn query() -> String {
        format!(
            "{{__name__=~\"{}|{}|{}|{}|{}|{}|{}|{}\"}}",
            series::BATCH_CPU_AVAILABLE_CORES,
            series::BATCH_MEMORY_AVAILABLE_BYTES,
            series::BATCH_AVAILABLE_SAMPLES,
            series::BATCH_CPU_AVAILABLE_LATEST_CORES,
            series::BATCH_MEMORY_AVAILABLE_LATEST_BYTES,
            series::KOORDLET_LAST_SCRAPE_TIMESTAMP_SECONDS,
            series::BATCH_ALLOCATABLE_CPU_CORES,
            series::BATCH_ALLOCATABLE_MEMORY_BYTES,
        )
    }

    /// Every node's reading; `now_unix` (seconds) dates the samples.
    pub async fn read_all(
        &self,
        now_unix: f64,
    ) -> Result<BTreeMap<String, Result<NodeReading, SourceError>>, SourceError> {
        let mut url = self
            .base
            .join("api/v1/query")
            .map_err(|err| SourceError::Malformed {
                url: self.base.to_string(),
                message: err.to_string(),
            })?;
        url.query_pairs_mut().append_pair("query", &Self::query());
        let text = self.base.to_string();
        let answer = self
            .http
            .get(url)
            .send()
            .await
            .map_err(unreachable(&text))?;
        let status = answer.status().as_u16();
        if status != 200 {
            return Err(SourceError::Status { url: text, status });
        }
        let body =
            body_capped(answer, MOST_PROMETHEUS_BYTES)
                .await
                .map_err(|error| match error {
                    BodyError::TooLarge => SourceError::TooLarge {
                        url: text.clone(),
                        limit: MOST_PROMETHEUS_BYTES,
                    },
                    BodyError::Transport(error) => unreachable(&text)(error),
                })?;
        Self::parse(&body, now_unix)
            .map_err(|message| SourceError::Malformed { url: text, message })
    }

    /// Groups an instant-query answer by node.
    pub fn parse(
        body: &[u8],
        now_unix: f64,
    ) -> Result<BTreeMap<String, Result<NodeReading, SourceError>>, String> {
        let answer: QueryAnswer =
            serde_json::from_slice(body).map_err(|err| format!("not a query answer: {err}"))?;
        if answer.status != "success" {
            return Err(answer.error.unwrap_or_else(|| answer.status.clone()));
        }
        let data = answer.data.ok_or("a success answer without data")?;
        if data.result_type != "vector" {
            return Err(format!("expected a vector, got {}", data.result_type));
        }
        let mut nodes: BTreeMap<String, NodeSeries> = BTreeMap::new();
        for sample in data.result {
            let Some(node) = sample.metric.get(series::LABEL_NODE) else {
                continue;
            };
            let Ok(value) = sample.value.1.parse::<f64>() else {
                continue;
            };
            let entry = nodes.entry(node.clone()).or_default();
            let window = sample.metric.get(series::LABEL_WINDOW).map(String::as_str);
            let stat = sample.metric.get(series::LABEL_STAT).map(String::as_str);
            match sample.metric.get("__name__").map(String::as_str) {
                Some(series::BATCH_CPU_AVAILABLE_CORES) => {
                    if let (Some(slot), Some(stat)) =
                        (window.and_then(|w| stats_slot(&mut entry.cpu, w)), stat)
                    {
                        set_stat(slot, stat, value);
                    }
                }
                Some(series::BATCH_MEMORY_AVAILABLE_BYTES) => {
                    if let (Some(slot), Some(stat)) =
                        (window.and_then(|w| stats_slot(&mut entry.memory, w)), stat)
                    {
                        set_stat(slot, stat, value / MIB);
                    }
                }
                Some(series::BATCH_AVAILABLE_SAMPLES) => {
                    let count = if value.is_finite() && value >= 0.0 {
                        value.min(f64::from(u32::MAX)) as u32
                    } else {
                        0
                    };
                    for set in [&mut entry.cpu, &mut entry.memory] {
                        if let Some(slot) = window.and_then(|w| stats_slot(set, w)) {
                            slot.count = count;
                        }
                    }
                }
                Some(series::BATCH_CPU_AVAILABLE_LATEST_CORES) => entry.latest_cpu = Some(value),
                Some(series::BATCH_MEMORY_AVAILABLE_LATEST_BYTES) => {
                    entry.latest_memory = Some(value / MIB);
                }
                Some(series::KOORDLET_LAST_SCRAPE_TIMESTAMP_SECONDS) => {
                    entry.last_scrape = Some(value);
                }
                Some(series::BATCH_ALLOCATABLE_CPU_CORES) => entry.allocatable_cpu = Some(value),
                Some(series::BATCH_ALLOCATABLE_MEMORY_BYTES) => {
                    entry.allocatable_memory = Some(value / MIB);
                }
                _ => {}
            }
        }
        Ok(nodes
            .into_iter()
            .map(|(node, series)| {
                let reading = match (series.latest_cpu, series.latest_memory, series.last_scrape) {
                    (Some(cpu), Some(memory), Some(scraped)) => age_of(&node, now_unix - scraped)
                        .and_then(|age| {
                            checked(
                                &node,
                                NodeReading {
                                    availability: Availability {
                                        cpu_cores: series.cpu,
                                        memory_mb: series.memory,
                                        latest_cpu_cores: cpu,
                                        latest_memory_mb: memory,
                                        age_seconds: age,
                                    },
                                    batch_allocatable: match (
                                        series.allocatable_cpu,
                                        series.allocatable_memory,
                                    ) {
                                        (Some(cpu_cores), Some(memory_mb)) => {
                                            Some(BatchAllocatable {
                                                cpu_cores,
                                                memory_mb,
                                                age_seconds: age,
                                            })
                                        }
                                        _ => None,
                                    },
                                },
                                None,
                            )
                        }),
                    _ => Err(SourceError::NoSample { node: node.clone() }),
                };
                (node, reading)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
