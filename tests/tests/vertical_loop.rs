//! The vertical loop across real parts: the real `koordlet-metrics` binary scrapes a koordlet
//! double replaying the embedded Alibaba trace; the operator's loop reads the exporter, decides,
//! and writes to the RM double; the real `guarder` binary watches real container processes.
//!
//! When the trace's online load surges, the NM's capacity goes down on the RM before the guarder
//! is told anything (a recording proxy in front of the guarder checks the RM at the moment the
//! target passes), the guarder frees exactly the executors (never the ApplicationMaster, never a
//! process outside YARN), the one that ignores SIGTERM is killed after the grace period, and
//! the NM is back within its allowance no later than the grace period after the target.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use elastic_yarn_operator::policy::{
    CapacityBounds, PolicyKind, PolicySettings, Resources, Statistic,
};
use elastic_yarn_operator::vertical::availability::ExporterSource;
use elastic_yarn_operator::vertical::guarder_client::{GuarderClient, GuarderStatus};
use elastic_yarn_operator::vertical::{
    Applied, LoopSettings, MetricsReader, NodeManagerEndpoints, VerticalLoop,
};
use elastic_yarn_tests::{workspace_binary, workspace_root};
use koordlet_metrics::WindowSpan;
use koordlet_metrics::koordlet::SuppressPolicy;
use koordlet_metrics::replay::{
    AfterLastStep, KoordletDouble, KoordletModel, KoordletReplay, NodeLoad, ReplayStep, render_page,
};
use testkit::processes::Children;
use url::Url;
use yarn_rm::{NodeId, RestResourceManager, RestSettings, RmAuth, Secret};
use yarn_rm_double::{DoubleAuth, DoubleCluster, RmDouble, Role};

const NODE: &str = "trace-node";
const NODE_CORES: f64 = 32.0;
const NODE_MEMORY_BYTES: f64 = 128.0 * 1024.0 * 1024.0 * 1024.0;
const TOKEN: &str = "cross-part-token";
const GRACE_SECONDS: u32 = 2;
const MIB_PER_VCORE: u64 = 128;

/// Rows of the embedded trace: CPU and memory percent, one per 10 s of the real day.
fn trace_rows() -> Vec<(f64, f64)> {
    let text =
        std::fs::read_to_string(workspace_root().join("operator/traces/alibaba2018_day1_10s.csv"))
            .expect("the test setup works");
    text.lines()
        .skip(1)
        .map(|line| {
            let mut fields = line
                .split(',')
                .map(|f| f.parse::<f64>().expect("the test setup works"));
            (
                fields.next().expect("the test setup works"),
                fields.next().expect("the test setup works"),
            )
        })
        .collect()
}

/// koordlet pages: 100 trace rows as they are, then the following rows with the online load
/// multiplied by 3.5 (an online surge), one page per scrape.
fn koordlet_steps() -> Vec<ReplayStep> {
    let mut koordlet = KoordletReplay::new(KoordletModel {
        cpu_cores: NODE_CORES,
        memory_bytes: NODE_MEMORY_BYTES,
        cpu_suppress_threshold: 0.65,
        policy: SuppressPolicy::CfsQuota,
    });
    trace_rows()
        .into_iter()
        .take(700)
        .enumerate()
        .map(|(index, (cpu_percent, memory_percent))| {
            let surge = if index < 100 { 1.0 } else { 3.5 };
            let values = koordlet.step(&NodeLoad {
                online_cpu_cores: (cpu_percent / 100.0 * NODE_CORES * surge).min(NODE_CORES),
                online_memory_bytes: memory_percent / 100.0 * NODE_MEMORY_BYTES * 0.5,
                be_cpu_cores: 0.5,
                be_memory_bytes: 1.0e9,
            });
            ReplayStep::Page(render_page(NODE, &values, 20))
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("the test setup works")
        .local_addr()
        .expect("the test setup works")
        .port()
}

fn wait_http(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let address = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("the test setup works");
        if std::net::TcpStream::connect(address).is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A YARN container: `bash` exec'ing Python that holds `megabytes` of resident memory.
fn container(id: Option<&str>, megabytes: u64, ignore_term: bool, marker: &Path) -> Child {
    let script = format!(
        "import signal, time\n\
         {}\n\
         block = b'x' * ({megabytes} << 20)\n\
         open({:?}, 'w').close()\n\
         time.sleep(600)\n",
        if ignore_term {
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)"
        } else {
            ""
        },
        marker.display().to_string()
    );
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg("exec python3 -c \"$0\"")
        .arg(script)
        .env_remove("CONTAINER_ID")
        .stdout(Stdio::null());
    if let Some(id) = id {
        command.env("CONTAINER_ID", id);
    }
    command.spawn().expect("the test setup works")
}

fn wait_for(path: &Path) {
    testkit::processes::wait_for_file(path, Duration::from_secs(30));
}

/// What the proxy saw when a target passed on its way to the guarder.
#[derive(Clone, Debug)]
struct TargetPassage {
    body: serde_json::Value,
    rm_capacity: Resources,
    guarder_signals_before: u64,
}

#[derive(Clone)]
struct Proxy {
    guarder: Url,
    rm: RmDouble,
    node: NodeId,
    http: reqwest::Client,
    passages: Arc<Mutex<Vec<TargetPassage>>>,
}

async fn signals(http: &reqwest::Client, guarder: &Url) -> u64 {
    let body = http
        .get(guarder.join("v1/status").expect("the test setup works"))
        .send()
        .await
        .expect("the test setup works")
        .bytes()
        .await
        .expect("the test setup works");
    let status: GuarderStatus = serde_json::from_slice(&body).expect("the test setup works");
    status.signals.iter().map(|s| s.count).sum()
}

async fn forward(
    State(proxy): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::PUT {
        let passage = TargetPassage {
            body: serde_json::from_slice(&body).expect("the test setup works"),
            rm_capacity: proxy
                .rm
                .cluster()
                .node(&proxy.node)
                .expect("the test setup works")
                .capacity,
            guarder_signals_before: signals(&proxy.http, &proxy.guarder).await,
        };
        proxy
            .passages
            .lock()
            .expect("the test setup works")
            .push(passage);
    }
    let url = proxy
        .guarder
        .join(uri.path())
        .expect("the test setup works");
    let mut request = proxy.http.request(method, url).body(body);
    if let Some(auth) = headers.get("authorization") {
        request = request.header("authorization", auth.as_bytes());
    }
    if let Some(kind) = headers.get("content-type") {
        request = request.header("content-type", kind.as_bytes());
    }
    let answer = request.send().await.expect("the test setup works");
    let status = StatusCode::from_u16(answer.status().as_u16()).expect("the test setup works");
    (status, answer.bytes().await.expect("the test setup works")).into_response()
}

fn settings() -> LoopSettings {
    let bounds = CapacityBounds {
        floor: Resources::new(1, MIB_PER_VCORE),
        ceiling: Resources::new(16, 16 * MIB_PER_VCORE),
        memory_per_vcore_mb: MIB_PER_VCORE,
    };
    let mut settings = PolicySettings::with_bounds(bounds);
    // The published rule on the 1-minute minimum: quick to see a surge at 10 scrapes a second.
    settings.window = WindowSpan::OneMinute;
    settings.statistic = Statistic::Min;
    settings.stale_after_seconds = 5;
    settings.shrink_to_floor_after_seconds = 30;
    settings.grace_period_seconds = GRACE_SECONDS;
    LoopSettings {
        policy: PolicyKind::Threshold,
        settings,
        rm_writes_per_second: 10.0,
        rm_write_burst: 5,
        concurrency: 4,
    }
}

fn ended(child: &mut Child) -> Option<ExitStatus> {
    child.try_wait().expect("the test setup works")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_surge_shrinks_the_rm_first_then_the_guarder_frees_exactly_the_executors() {
    let dir = tempfile::tempdir().expect("the test setup works");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("the test setup works");

    // koordlet replaying the trace, and the real exporter scraping it every 100 ms.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the test setup works");
    let koordlet_address = listener.local_addr().expect("the test setup works");
    tokio::spawn(KoordletDouble::new(koordlet_steps(), AfterLastStep::RepeatLast).serve(listener));
    let exporter_url = format!("http://127.0.0.1:{}/", free_port());
    let mut children = Children(Vec::new());
    children.0.push(
        Command::new(workspace_binary("koordlet-metrics"))
            .args([
                "--koordlet-url",
                &format!("http://{koordlet_address}/metrics"),
                "--listen",
                exporter_url
                    .trim_start_matches("http://")
                    .trim_end_matches('/'),
                "--node",
                NODE,
                "--node-cpu-cores",
                &NODE_CORES.to_string(),
                "--node-memory-bytes",
                &NODE_MEMORY_BYTES.to_string(),
                "--scrape-interval-ms",
                "100",
                "--scrape-timeout-ms",
                "5000",
                "--no-yarn-usage",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the test setup works"),
    );

    // The NM's containers: an ApplicationMaster, three executors of 300 MiB (one ignores
    // SIGTERM), and a process outside YARN holding as much.
    let stamp = 1_790_000_000_000u64;
    let id = |n: u32| format!("container_e01_{stamp}_0001_01_{n:06}");
    let markers: Vec<PathBuf> = (0..5)
        .map(|i| dir.path().join(format!("ready-{i}")))
        .collect();
    let mut application_master = container(Some(&id(1)), 1, false, &markers[0]);
    let mut executors = [
        container(Some(&id(2)), 300, false, &markers[1]),
        container(Some(&id(3)), 300, false, &markers[2]),
        container(Some(&id(4)), 300, true, &markers[3]),
    ];
    let mut outsider = container(None, 300, false, &markers[4]);
    markers.iter().for_each(|m| wait_for(m));

    // The real guarder, scoped to this test's descendants.
    let guarder_url = format!("http://127.0.0.1:{}/", free_port());
    children.0.push(
        Command::new(workspace_binary("guarder"))
            .args([
                "--listen",
                guarder_url
                    .trim_start_matches("http://")
                    .trim_end_matches('/'),
                "--token-file",
                token_file.to_str().expect("the test setup works"),
                "--grace-period-seconds",
                &GRACE_SECONDS.to_string(),
                "--scan-interval-ms",
                "100",
                "--cgroup-root",
                dir.path()
                    .join("no-cgroups")
                    .to_str()
                    .expect("the test setup works"),
                "--scope-pid",
                &std::process::id().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the test setup works"),
    );
    wait_http(&exporter_url);
    wait_http(&guarder_url);

    // The RM double with the NM at 12 vcores, and the recording proxy in front of the guarder.
    let node: NodeId = "nm-0.yarn.test:45454"
        .parse()
        .expect("the test setup works");
    let cluster = DoubleCluster::new();
    cluster.add_node(yarn_rm_double::DoubleNode::running(
        node.clone(),
        Resources {
            memory_mb: 12 * MIB_PER_VCORE,
            vcores: 12,
        },
    ));
    // The RM allocated the four containers: the AM 1 vcore, each executor 3 (10 vcores), so a
    // shrink below that leaves running work holding more than the NM's capacity.
    cluster.set_used(
        &node,
        Resources {
            memory_mb: 10 * MIB_PER_VCORE,
            vcores: 10,
        },
        4,
    );
    let rm = RmDouble::new(cluster, Role::Active, DoubleAuth::Simple);
    let (rm_address, _rm_task) = rm.clone().spawn().await.expect("the test setup works");
    let guarder = Url::parse(&guarder_url).expect("the test setup works");
    let proxy = Proxy {
        guarder: guarder.clone(),
        rm: rm.clone(),
        node: node.clone(),
        http: controlkit::process::http_client()
            .build()
            .expect("the test setup works"),
        passages: Arc::new(Mutex::new(Vec::new())),
    };
    let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the test setup works");
    let proxy_url = Url::parse(&format!(
        "http://{}/",
        proxy_listener.local_addr().expect("the test setup works")
    ))
    .expect("the test setup works");
    let router = Router::new().fallback(forward).with_state(proxy.clone());
    tokio::spawn(async move {
        axum::serve(proxy_listener, router)
            .await
            .expect("the test setup works")
    });

    let client = RestResourceManager::new(RestSettings::new(
        vec![format!("http://{rm_address}")],
        RmAuth::Simple {
            user: "yarn".to_owned(),
        },
    ))
    .expect("the test setup works");
    let mut looper = VerticalLoop::new(
        settings(),
        client,
        MetricsReader::Exporters(
            ExporterSource::new(Duration::from_secs(2), 4).expect("the test setup works"),
        ),
        Some(
            GuarderClient::new(Secret::new(TOKEN), Duration::from_secs(2))
                .expect("the test setup works"),
        ),
    );
    let nms = [NodeManagerEndpoints {
        node: NODE.to_owned(),
        yarn_node_id: node.clone(),
        exporter: Some(Url::parse(&exporter_url).expect("the test setup works")),
        guarder: Some(proxy_url),
        batch_allocatable: None,
    }];

    // Tick every 300 ms; watch the guarder's status in between.
    let http = controlkit::process::http_client()
        .build()
        .expect("the test setup works");
    let started = Instant::now();
    let mut floor_target_at = None;
    let mut over_allowance_since: Option<Instant> = None;
    let mut longest_over = Duration::ZERO;
    let mut shrinks = Vec::new();
    while started.elapsed() < Duration::from_secs(90) {
        let report = looper.tick(&nms).await;
        assert!(report.rm_error.is_none(), "{:?}", report.rm_error);
        let outcome = &report.outcomes[0];
        if let Applied::Resized { to, .. } = &outcome.applied {
            shrinks.push((*to, outcome.reason));
            if to.vcores == 1 && floor_target_at.is_none() {
                floor_target_at = Some(Instant::now());
            }
        }
        let status: GuarderStatus = serde_json::from_slice(
            &http
                .get(guarder.join("v1/status").expect("the test setup works"))
                .send()
                .await
                .expect("the test setup works")
                .bytes()
                .await
                .expect("the test setup works"),
        )
        .expect("the test setup works");
        if let Some(target) = status.target {
            let over = status.used_memory_mb > target.memory_mb as f64;
            match (over, over_allowance_since) {
                (true, None) => over_allowance_since = Some(Instant::now()),
                (false, Some(since)) => {
                    longest_over = longest_over.max(since.elapsed());
                    over_allowance_since = None;
                }
                _ => {}
            }
        }
        let all_gone = executors.iter_mut().all(|e| ended(e).is_some());
        if all_gone
            && floor_target_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2))
            && over_allowance_since.is_none()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if let Some(since) = over_allowance_since {
        longest_over = longest_over.max(since.elapsed());
    }

    eprintln!("resizes: {shrinks:?}\nlongest over the allowance: {longest_over:?}");
    // The surge took the NM to its floor on the RM.
    let floor_at = floor_target_at.unwrap_or_else(|| panic!("no shrink to the floor: {shrinks:?}"));
    assert_eq!(
        rm.cluster()
            .node(&node)
            .expect("the test setup works")
            .capacity,
        Resources {
            memory_mb: MIB_PER_VCORE,
            vcores: 1
        }
    );
    // Every target reached the guarder only after the RM already had that capacity, and the
    // first one found the guarder without a single signal sent.
    let passages = proxy.passages.lock().expect("the test setup works").clone();
    eprintln!("targets at the guarder: {passages:?}");
    assert!(!passages.is_empty());
    assert_eq!(passages[0].guarder_signals_before, 0, "{passages:?}");
    for passage in &passages {
        assert_eq!(
            u64::from(passage.rm_capacity.vcores),
            passage.body["vcores"]
                .as_u64()
                .expect("the test setup works"),
            "{passages:?}"
        );
        assert_eq!(
            passage.rm_capacity.memory_mb,
            passage.body["memoryMb"]
                .as_u64()
                .expect("the test setup works"),
            "{passages:?}"
        );
    }
    // Exactly the executors were freed: two by SIGTERM, the one ignoring it by SIGKILL.
    let endings: Vec<Option<i32>> = executors
        .iter_mut()
        .map(|e| ended(e).and_then(|status| status.signal()))
        .collect();
    assert_eq!(endings, [Some(15), Some(15), Some(9)]);
    assert!(ended(&mut application_master).is_none(), "the AM survives");
    assert!(
        ended(&mut outsider).is_none(),
        "a process outside YARN is never touched"
    );
    // The NM was over its allowance no longer than the grace period, give or take what this
    // test can see: a guarder scan (100 ms), a tick of this loop (300 ms plus its calls) and the
    // kernel reaping the killed process, on a busy 2-core machine.
    assert!(
        longest_over <= Duration::from_secs(u64::from(GRACE_SECONDS)) + Duration::from_millis(2500),
        "over the allowance for {longest_over:?}"
    );
    assert!(floor_at.elapsed() < Duration::from_secs(60));
    for mut child in [application_master, outsider] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
