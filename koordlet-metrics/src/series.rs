//! Names of the series the exporter publishes (DESIGN.md, contract 2).
//!
//! The operator queries Prometheus with exactly these names and labels, so they live in one
//! place and both sides import them.

/// Cores that batch (YARN) work may use on the node.
pub const BATCH_CPU_AVAILABLE_CORES: &str = "elastic_yarn_batch_cpu_available_cores";
/// Bytes of memory that batch (YARN) work may use on the node before koordlet evicts.
pub const BATCH_MEMORY_AVAILABLE_BYTES: &str = "elastic_yarn_batch_memory_available_bytes";
/// Unix time of the last successful koordlet scrape.
pub const KOORDLET_LAST_SCRAPE_TIMESTAMP_SECONDS: &str =
    "elastic_yarn_koordlet_last_scrape_timestamp_seconds";
/// Failed koordlet scrapes, by reason.
pub const KOORDLET_SCRAPE_ERRORS_TOTAL: &str = "elastic_yarn_koordlet_scrape_errors_total";

/// Label holding the Kubernetes node name.
pub const LABEL_NODE: &str = "node";
/// Label holding the window span (`1m`, `5m`, `10m`).
pub const LABEL_WINDOW: &str = "window";
/// Label holding the statistic (`mean`, `variance`, `min`, `max`).
pub const LABEL_STAT: &str = "stat";

/// Values of the `stat` label, in the order the exporter writes them.
pub const STATS: [&str; 4] = ["mean", "variance", "min", "max"];
