//! A koordlet double: pages in koordlet's exact text format, a model of koordlet's suppress loop
//! that turns a node's online load into those pages, and a loopback server that replays them
//! one per request (or, [`LiveKoordlet`], the page a test sets at the moment). Tests, the
//! benchmark and demos use it; it needs no cluster.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::koordlet::{SuppressPolicy, names};

/// The values of the contract-1 series on one page.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KoordletValues {
    /// Policy label of the suppress gauge.
    pub suppress_policy: SuppressPolicy,
    /// The suppress gauge (`None`: not emitted, as after a koordlet restart in `cfsQuota`).
    pub suppress_cores: Option<f64>,
    /// BE use, cores.
    pub be_used_cpu_cores: f64,
    /// LS use, cores.
    pub ls_used_cpu_cores: f64,
    /// Node use, cores.
    pub node_used_cpu_cores: f64,
    /// Node memory use, bytes.
    pub node_used_memory_bytes: f64,
    /// Batch CPU allocatable, milli-cores.
    pub batch_allocatable_milli_cores: f64,
    /// Batch memory allocatable, bytes.
    pub batch_allocatable_memory_bytes: f64,
}

/// Writes a page as koordlet's Go client does: `# HELP`, `# TYPE`, then samples, families in
/// name order. `filler_pods` adds the per-container series a busy node carries (16 per pod)
/// plus the Go runtime's, so that a page can be as large as a real one.
pub fn render_page(node: &str, values: &KoordletValues, filler_pods: usize) -> String {
    let mut page = String::with_capacity(4096 + filler_pods * 3000);
    runtime_series(&mut page);
    gauge_family(
        &mut page,
        names::BE_SUPPRESS_BE_USED_CPU_CORES,
        "Number of cpu cores used by BE.",
        &[(format!("node=\"{node}\""), values.be_used_cpu_cores)],
    );
    let suppress: Vec<(String, f64)> = values
        .suppress_cores
        .map(|cores| {
            (
                format!(
                    "node=\"{node}\",type=\"{}\"",
                    values.suppress_policy.label()
                ),
                cores,
            )
        })
        .into_iter()
        .collect();
    gauge_family(
        &mut page,
        names::BE_SUPPRESS_CPU_CORES,
        "Number of cores suppress by koordlet",
        &suppress,
    );
    gauge_family(
        &mut page,
        names::BE_SUPPRESS_LS_USED_CPU_CORES,
        "Number of cpu cores used by LS. We consider non-BE pods and podMeta-missing pods as LS.",
        &[(format!("node=\"{node}\""), values.ls_used_cpu_cores)],
    );
    container_series(&mut page, node, filler_pods);
    gauge_family(
        &mut page,
        names::NODE_RESOURCE_ALLOCATABLE,
        "the node allocatable of resources updated by koordinator",
        &[
            (
                format!("node=\"{node}\",resource=\"kubernetes.io/batch-cpu\",unit=\"integer\""),
                values.batch_allocatable_milli_cores,
            ),
            (
                format!("node=\"{node}\",resource=\"kubernetes.io/batch-memory\",unit=\"byte\""),
                values.batch_allocatable_memory_bytes,
            ),
        ],
    );
    gauge_family(
        &mut page,
        names::NODE_USED_CPU_CORES,
        "Number of cpu cores used by node in realtime",
        &[(format!("node=\"{node}\""), values.node_used_cpu_cores)],
    );
    gauge_family(
        &mut page,
        names::NODE_USED_MEMORY_BYTES,
        "Memory used by node in realtime",
        &[(format!("node=\"{node}\""), values.node_used_memory_bytes)],
    );
    page
}

fn gauge_family(page: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(page, "# HELP {name} {help}");
    let _ = writeln!(page, "# TYPE {name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(page, "{name}{{{labels}}} {}", go_float(*value));
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, as client_golang writes values: the shortest
/// digits, in exponent form (two exponent digits at least) when the exponent is below -4 or at
/// least 6.
fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if value != 0.0 && !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{value}")
}

fn runtime_series(page: &mut String) {
    page.push_str(
        "# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.\n\
         # TYPE go_gc_duration_seconds summary\n\
         go_gc_duration_seconds{quantile=\"0\"} 3.1309e-05\n\
         go_gc_duration_seconds{quantile=\"0.25\"} 5.7812e-05\n\
         go_gc_duration_seconds{quantile=\"0.5\"} 8.0281e-05\n\
         go_gc_duration_seconds{quantile=\"0.75\"} 0.000118633\n\
         go_gc_duration_seconds{quantile=\"1\"} 0.004273718\n\
         go_gc_duration_seconds_sum 1.862035262\n\
         go_gc_duration_seconds_count 14411\n\
         # HELP go_goroutines Number of goroutines that currently exist.\n\
         # TYPE go_goroutines gauge\n\
         go_goroutines 213\n\
         # HELP go_memstats_alloc_bytes Number of bytes allocated and still in use.\n\
         # TYPE go_memstats_alloc_bytes gauge\n\
         go_memstats_alloc_bytes 4.3197528e+07\n\
         # HELP koordlet_kubelet_request_duration_seconds kubelet http request duration in seconds\n\
         # TYPE koordlet_kubelet_request_duration_seconds histogram\n",
    );
    let mut cumulative = 0u64;
    for (bound, count) in [
        ("0.005", 812),
        ("0.01", 4019),
        ("0.025", 9810),
        ("0.05", 1203),
    ] {
        cumulative += count;
        let _ = writeln!(
            page,
            "koordlet_kubelet_request_duration_seconds_bucket{{code=\"200\",verb=\"GET\",le=\"{bound}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        page,
        "koordlet_kubelet_request_duration_seconds_bucket{{code=\"200\",verb=\"GET\",le=\"+Inf\"}} {cumulative}\n\
         koordlet_kubelet_request_duration_seconds_sum{{code=\"200\",verb=\"GET\"}} 178.2\n\
         koordlet_kubelet_request_duration_seconds_count{{code=\"200\",verb=\"GET\"}} {cumulative}\n\
         # HELP process_resident_memory_bytes Resident memory size in bytes.\n\
         # TYPE process_resident_memory_bytes gauge\n\
         process_resident_memory_bytes 1.08212224e+08"
    );
}

fn container_series(page: &mut String, node: &str, pods: usize) {
    if pods == 0 {
        return;
    }
    for (family, help) in [
        (
            "koordlet_container_resource_limits",
            "the container limits of resources updated by koordinator",
        ),
        (
            "koordlet_container_resource_requests",
            "the container requests of resources updated by koordinator",
        ),
    ] {
        let _ = writeln!(page, "# HELP {family} {help}");
        let _ = writeln!(page, "# TYPE {family} gauge");
        for pod in 0..pods {
            for container in ["app", "sidecar"] {
                for (resource, unit, value) in [
                    ("cpu", "core", 2.0),
                    ("memory", "byte", 4.294967296e9),
                    ("kubernetes.io/batch-cpu", "integer", 2000.0),
                    ("kubernetes.io/batch-memory", "byte", 4.294967296e9),
                ] {
                    let _ = writeln!(
                        page,
                        "{family}{{container_id=\"containerd://{pod:064x}\",container_name=\"{container}\",\
                         koord_pod_name=\"online-{pod}\",node=\"{node}\",pod_name=\"online-{pod}\",\
                         pod_namespace=\"services\",pod_uid=\"7f3c2a10-{pod:04}-4d5e-9f00-00000000{pod:04}\",\
                         resource=\"{resource}\",unit=\"{unit}\"}} {}",
                        go_float(value)
                    );
                }
            }
        }
    }
}

/// A node as koordlet sees it, for turning online load into pages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KoordletModel {
    /// CPUs of the node.
    pub cpu_cores: f64,
    /// Memory of the node, bytes.
    pub memory_bytes: f64,
    /// NodeSLO `cpuSuppressThresholdPercent` / 100 (0.65 by default).
    pub cpu_suppress_threshold: f64,
    /// NodeSLO `cpuSuppressPolicy`.
    pub policy: SuppressPolicy,
}

/// What runs on the node in one second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeLoad {
    /// Online (LS) use, cores.
    pub online_cpu_cores: f64,
    /// Online use, bytes.
    pub online_memory_bytes: f64,
    /// BE use, cores.
    pub be_cpu_cores: f64,
    /// BE use, bytes.
    pub be_memory_bytes: f64,
}

/// koordlet's suppress loop over time (its gauge only moves when it writes the cgroup).
#[derive(Clone, Debug)]
pub struct KoordletReplay {
    model: KoordletModel,
    written: Option<f64>,
}

impl KoordletReplay {
    /// A koordlet that has not suppressed anything yet.
    pub fn new(model: KoordletModel) -> KoordletReplay {
        KoordletReplay {
            model,
            written: None,
        }
    }

    /// The page values after one suppress loop with this load.
    pub fn step(&mut self, load: &NodeLoad) -> KoordletValues {
        let m = &self.model;
        let target = (m.cpu_cores * m.cpu_suppress_threshold - load.online_cpu_cores).max(0.0);
        let written = match m.policy {
            // Whole CPUs, at least two; applied every loop.
            SuppressPolicy::Cpuset => target.ceil().max(2.0).min(m.cpu_cores),
            // Changes under 1% of the node are skipped: the quota and its gauge stay put.
            SuppressPolicy::CfsQuota => match self.written {
                Some(previous) if (target - previous).abs() < m.cpu_cores * 0.01 => previous,
                _ => target.max(m.cpu_cores * 0.02),
            },
        };
        self.written = Some(written);
        KoordletValues {
            suppress_policy: m.policy,
            suppress_cores: Some(written),
            be_used_cpu_cores: load.be_cpu_cores,
            ls_used_cpu_cores: load.online_cpu_cores,
            node_used_cpu_cores: load.online_cpu_cores + load.be_cpu_cores,
            node_used_memory_bytes: load.online_memory_bytes + load.be_memory_bytes,
            batch_allocatable_milli_cores: (target * 1000.0).round(),
            batch_allocatable_memory_bytes: (m.memory_bytes * 0.7 - load.online_memory_bytes)
                .max(0.0),
        }
    }
}

/// What the double answers to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum ReplayStep {
    /// 200 with this page.
    Page(String),
    /// This status with a short body.
    Status(u16),
    /// Wait, then answer 200 with this page (a slow koordlet).
    Slow(Duration, String),
}

/// What the double does once its steps are used up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterLastStep {
    /// Serve the last step again and again.
    RepeatLast,
    /// Answer 503 (koordlet gone).
    Unavailable,
}

#[derive(Debug)]
struct ReplayState {
    steps: Vec<ReplayStep>,
    after: AfterLastStep,
    requests: AtomicUsize,
}

/// A koordlet double serving its steps one per request on `GET /metrics`.
#[derive(Debug, Clone)]
pub struct KoordletDouble {
    state: Arc<ReplayState>,
}

impl KoordletDouble {
    /// A double with these steps.
    pub fn new(steps: Vec<ReplayStep>, after: AfterLastStep) -> KoordletDouble {
        KoordletDouble {
            state: Arc::new(ReplayState {
                steps,
                after,
                requests: AtomicUsize::new(0),
            }),
        }
    }

    /// Requests answered so far (including the one being answered).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let app = Router::new()
            .route("/metrics", get(answer))
            .with_state(self.state);
        axum::serve(listener, app).await
    }
}

/// A koordlet double serving one node's page from values the test changes at will: the
/// "scripted koordlet" of an end-to-end test, where the online load rises at a moment chosen by
/// the test rather than after a number of scrapes.
#[derive(Debug, Clone)]
pub struct LiveKoordlet {
    node: String,
    values: Arc<Mutex<KoordletValues>>,
}

impl LiveKoordlet {
    /// A double for `node` serving `values` until they are changed.
    pub fn new(node: &str, values: KoordletValues) -> LiveKoordlet {
        LiveKoordlet {
            node: node.to_owned(),
            values: Arc::new(Mutex::new(values)),
        }
    }

    /// Serves `values` from the next request on.
    pub fn set(&self, values: KoordletValues) {
        *self.values.lock().unwrap_or_else(PoisonError::into_inner) = values;
    }

    /// The values served now.
    pub fn values(&self) -> KoordletValues {
        *self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let app = Router::new()
            .route("/metrics", get(live_page))
            .with_state(self);
        axum::serve(listener, app).await
    }
}

async fn live_page(State(koordlet): State<LiveKoordlet>) -> Response {
    let page = render_page(&koordlet.node, &koordlet.values(), 0);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        page,
    )
        .into_response()
}

async fn answer(State(state): State<Arc<ReplayState>>) -> Response {
    let index = state.requests.fetch_add(1, Ordering::SeqCst);
    let step = match state.steps.get(index) {
        Some(step) => step.clone(),
        None => match (state.after, state.steps.last()) {
            (AfterLastStep::RepeatLast, Some(last)) => last.clone(),
            _ => ReplayStep::Status(503),
        },
    };
    let page = |text: String| {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response()
    };
    match step {
        ReplayStep::Page(text) => page(text),
        ReplayStep::Slow(delay, text) => {
            tokio::time::sleep(delay).await;
            page(text)
        }
        ReplayStep::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, format!("{status}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::koordlet::parse_page;

    fn values() -> KoordletValues {
        KoordletValues {
            suppress_policy: SuppressPolicy::Cpuset,
            suppress_cores: Some(12.0),
            be_used_cpu_cores: 3.5,
            ls_used_cpu_cores: 9.25,
            node_used_cpu_cores: 12.75,
            node_used_memory_bytes: 1.5e11,
            batch_allocatable_milli_cores: 11_500.0,
            batch_allocatable_memory_bytes: 2.5e10,
        }
    }

    #[test]
    fn rendered_pages_read_back_exactly() {
        let page = parse_page(&render_page("n1", &values(), 3), Some("n1")).unwrap();
        assert_eq!(page.suppress(SuppressPolicy::Cpuset), Some(12.0));
        assert_eq!(page.be_used_cpu_cores, Some(3.5));
        assert_eq!(page.node_used_memory_bytes, Some(1.5e11));
        assert_eq!(page.batch_allocatable_cpu_cores, Some(11.5));
        assert_eq!(page.batch_allocatable_memory_bytes, Some(2.5e10));
    }

    #[test]
    fn a_busy_node_page_has_about_two_thousand_series() {
        let text = render_page("n1", &values(), 124);
        let series = text.lines().filter(|l| !l.starts_with('#')).count();
        assert!((1_990..2_100).contains(&series), "{series}");
    }

    #[test]
    fn values_are_written_as_go_writes_them() {
        assert_eq!(go_float(1.5e11), "1.5e+11");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(3.1309e-5), "3.1309e-05");
        assert_eq!(go_float(0.000_118_633), "0.000118633");
        assert_eq!(go_float(f64::NAN), "NaN");
        assert_eq!(go_float(0.0), "0");
    }

    fn koordlet_on(cpu_cores: f64, policy: SuppressPolicy) -> KoordletReplay {
        KoordletReplay::new(KoordletModel {
            cpu_cores,
            memory_bytes: 1e12,
            cpu_suppress_threshold: 0.65,
            policy,
        })
    }

    fn online(cores: f64) -> NodeLoad {
        NodeLoad {
            online_cpu_cores: cores,
            online_memory_bytes: 0.0,
            be_cpu_cores: 0.0,
            be_memory_bytes: 0.0,
        }
    }

    #[test]
    fn cfs_quota_skips_changes_under_one_percent_of_the_node() {
        let mut koordlet = koordlet_on(100.0, SuppressPolicy::CfsQuota);
        assert_eq!(koordlet.step(&online(20.0)).suppress_cores, Some(45.0));
        assert_eq!(koordlet.step(&online(20.5)).suppress_cores, Some(45.0));
        assert_eq!(koordlet.step(&online(22.0)).suppress_cores, Some(43.0));
    }

    #[test]
    fn cpuset_moves_in_whole_cpus_and_keeps_two() {
        let mut koordlet = koordlet_on(16.0, SuppressPolicy::Cpuset);
        assert_eq!(koordlet.step(&online(3.3)).suppress_cores, Some(8.0));
        assert_eq!(koordlet.step(&online(10.0)).suppress_cores, Some(2.0));
    }

    #[tokio::test]
    async fn a_live_koordlet_serves_the_values_set_last() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let koordlet = LiveKoordlet::new("n1", values());
        let server = tokio::spawn(koordlet.clone().serve(listener));
        let read = || async {
            let text = controlkit::process::http_get(&url)
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            parse_page(&text, Some("n1")).unwrap()
        };
        assert_eq!(read().await.suppress(SuppressPolicy::Cpuset), Some(12.0));
        koordlet.set(KoordletValues {
            suppress_cores: Some(4.0),
            ..values()
        });
        assert_eq!(read().await.suppress(SuppressPolicy::Cpuset), Some(4.0));
        assert_eq!(read().await.be_used_cpu_cores, Some(3.5));
        server.abort();
    }
}
