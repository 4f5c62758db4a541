//! Windowed availability of each node, from the koordlet-metrics exporters (`GET /v1/windows`)
//! or from Prometheus' HTTP API (DESIGN.md, contract 2), in the units the policy engine reads.

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

/// The policy engine's view of an exporter's report.
pub fn reading_from_report(report: &WindowsReport) -> Result<NodeReading, SourceError> {
    let latest = report.latest.ok_or_else(|| SourceError::NoSample {
        node: report.node.clone(),
    })?;
    let batch_allocatable = report.batch_allocatable.and_then(|b| {
        Some(BatchAllocatable {
            cpu_cores: b.cpu_cores?,
            memory_mb: b.memory_bytes? / MIB,
            // The exporter re-reads it every second with the sample.
            age_seconds: whole_seconds(latest.age_seconds),
        })
    });
    Ok(NodeReading {
        availability: Availability {
            cpu_cores: report.cpu_cores,
            memory_mb: scale(&report.memory_bytes, 1.0 / MIB),
            latest_cpu_cores: latest.cpu_cores,
            latest_memory_mb: latest.memory_bytes / MIB,
            age_seconds: whole_seconds(latest.age_seconds),
        },
        batch_allocatable,
    })
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
        let body = answer.bytes().await.map_err(unreachable(&text))?;
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
        Ok(PrometheusSource {
            http: crate::vertical::http_client(timeout)?,
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
        let body = answer.bytes().await.map_err(unreachable(&text))?;
        if status != 200 {
            return Err(SourceError::Status { url: text, status });
        }
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
                    (Some(cpu), Some(memory), Some(scraped)) => {
                        let age = whole_seconds(now_unix - scraped);
                        Ok(NodeReading {
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
                                (Some(cpu_cores), Some(memory_mb)) => Some(BatchAllocatable {
                                    cpu_cores,
                                    memory_mb,
                                    age_seconds: age,
                                }),
                                _ => None,
                            },
                        })
                    }
                    _ => Err(SourceError::NoSample { node: node.clone() }),
                };
                (node, reading)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
