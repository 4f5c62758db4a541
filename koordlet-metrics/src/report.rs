//! The JSON document of `GET /v1/windows` (docs/architecture.md, contract 2). The operator reads it
//! straight from the exporter pods when Prometheus is not used, so the type lives here and both
//! sides share it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::availability::SampleInputs;
use crate::window::WindowSet;

/// Everything the exporter knows about its node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsReport {
    /// Kubernetes node name.
    pub node: String,
    /// Cores batch (YARN) work may use, by window. Windows hold only accepted samples; an empty
    /// window has `count: 0`.
    pub cpu_cores: WindowSet,
    /// Bytes of memory batch (YARN) work may use, by window.
    pub memory_bytes: WindowSet,
    /// The newest accepted sample, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<LatestSample>,
    /// Scrapes attempted since start.
    pub scrapes: u64,
    /// Failed scrapes since start, by reason.
    pub scrape_errors: BTreeMap<String, u64>,
    /// The most recent failure, if the newest scrape failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Batch allocatable koord-manager last published, from koordlet's page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_allocatable: Option<BatchAllocatable>,
}

/// The newest accepted sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestSample {
    /// Cores batch work may use.
    pub cpu_cores: f64,
    /// Bytes batch work may use.
    pub memory_bytes: f64,
    /// Unix time of the scrape it came from, seconds.
    pub timestamp_seconds: f64,
    /// Seconds since then, by the exporter's monotonic clock (immune to clock jumps).
    pub age_seconds: f64,
    /// The inputs of the formula.
    pub inputs: SampleInputs,
}

/// koord-manager's batch allocatable as koordlet reports it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAllocatable {
    /// Cores (`kubernetes.io/batch-cpu` / 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<f64>,
    /// Bytes (`kubernetes.io/batch-memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<f64>,
    /// Seconds since koordlet last reported it (absent from older exporters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<f64>,
}
