//! Names of the series the exporter publishes (docs/architecture.md, contract 2).
//!
//! The operator queries Prometheus with exactly these names and labels, so they live in one
//! place and both sides import them. Counters are named without `_total` where the exposition
//! library adds it.

/// Cores that batch (YARN) work may use on the node, by `window` and `stat`.
pub const BATCH_CPU_AVAILABLE_CORES: &str = "elastic_yarn_batch_cpu_available_cores";
/// Bytes of memory that batch (YARN) work may use on the node before koordlet evicts, by
/// `window` and `stat`.
pub const BATCH_MEMORY_AVAILABLE_BYTES: &str = "elastic_yarn_batch_memory_available_bytes";
/// Samples in each window (`window` label); a window with none is not published at all.
pub const BATCH_AVAILABLE_SAMPLES: &str = "elastic_yarn_batch_available_samples";
/// The newest sample of [`BATCH_CPU_AVAILABLE_CORES`].
pub const BATCH_CPU_AVAILABLE_LATEST_CORES: &str = "elastic_yarn_batch_cpu_available_latest_cores";
/// The newest sample of [`BATCH_MEMORY_AVAILABLE_BYTES`].
pub const BATCH_MEMORY_AVAILABLE_LATEST_BYTES: &str =
    "elastic_yarn_batch_memory_available_latest_bytes";
/// Unix time of the last koordlet scrape that gave a sample.
pub const KOORDLET_LAST_SCRAPE_TIMESTAMP_SECONDS: &str =
    "elastic_yarn_koordlet_last_scrape_timestamp_seconds";
/// Failed koordlet scrapes, by `reason` (exposed with `_total`).
pub const KOORDLET_SCRAPE_ERRORS: &str = "elastic_yarn_koordlet_scrape_errors";
/// The same, as it appears on the wire.
pub const KOORDLET_SCRAPE_ERRORS_TOTAL: &str = "elastic_yarn_koordlet_scrape_errors_total";
/// Scrapes attempted (exposed with `_total`).
pub const KOORDLET_SCRAPES: &str = "elastic_yarn_koordlet_scrapes";
/// How long fetching koordlet's page took.
pub const KOORDLET_SCRAPE_DURATION_SECONDS: &str = "elastic_yarn_koordlet_scrape_duration_seconds";
/// Cores YARN's containers used at the newest sample.
pub const YARN_USED_CPU_CORES: &str = "elastic_yarn_yarn_used_cpu_cores";
/// Bytes (working set) YARN's containers used at the newest sample.
pub const YARN_USED_MEMORY_BYTES: &str = "elastic_yarn_yarn_used_memory_bytes";
/// YARN cgroup hierarchies found on the node.
pub const YARN_CGROUPS: &str = "elastic_yarn_yarn_cgroups";
/// koord-manager's batch CPU allocatable for the node, cores.
pub const BATCH_ALLOCATABLE_CPU_CORES: &str = "elastic_yarn_batch_allocatable_cpu_cores";
/// koord-manager's batch memory allocatable for the node, bytes.
pub const BATCH_ALLOCATABLE_MEMORY_BYTES: &str = "elastic_yarn_batch_allocatable_memory_bytes";

/// Label holding the Kubernetes node name.
pub const LABEL_NODE: &str = "node";
/// Label holding the window span (`1m`, `5m`, `10m`).
pub const LABEL_WINDOW: &str = "window";
/// Label holding the statistic (`mean`, `variance`, `min`, `max`).
pub const LABEL_STAT: &str = "stat";
/// Label holding the reason of a scrape error.
pub const LABEL_REASON: &str = "reason";

/// Values of the `stat` label, in the order the exporter writes them.
pub const STATS: [&str; 4] = ["mean", "variance", "min", "max"];
