//! CPU and memory of one operator cycle over a pool of 5,000 NodeManagers.
//!
//! * reconcile: the pure part of a reconcile (placement of 5,000 nodes, the lifecycle plan,
//!   5,000 NM pods built and serialized as server-side apply sends them, the status);
//! * vertical loop: one tick over 5,000 NMs — 5,000 exporter reads and the RM's node list over
//!   HTTP on loopback, 5,000 decisions, and the resizes the decisions call for (10% of NMs see
//!   their availability change each tick).
//!
//! The RM double and the exporter double run in this process, so the CPU figure of the loop is an
//! upper bound: it includes serving every request too.
//!
//! `cargo bench -p elastic-yarn-operator --bench operator_cycle` (CYCLE_BENCH_NMS and
//! CYCLE_BENCH_ROUNDS change the defaults 5000 and 5).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use elastic_yarn_operator::build::{self, BuildSettings, NodeManagerSlot, PoolRef};
use elastic_yarn_operator::controller::status::{RmReachability, StatusInputs, pool_status};
use elastic_yarn_operator::crd::{ElasticNodePool, NodeManagerState, NodeManagerStatus, Resources};
use elastic_yarn_operator::lifecycle::{self, ExistingNodeManager};
use elastic_yarn_operator::placement;
use elastic_yarn_operator::policy::{CapacityBounds, PolicyKind, PolicySettings};
use elastic_yarn_operator::validate::validate;
use elastic_yarn_operator::vertical::availability::ExporterSource;
use elastic_yarn_operator::vertical::{
    LoopSettings, MetricsReader, NodeManagerEndpoints, VerticalLoop,
};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use koordlet_metrics::report::{LatestSample, WindowsReport};
use koordlet_metrics::{WindowSet, WindowStats};
use yarn_rm::{RestResourceManager, RestSettings, RmAuth};
use yarn_rm_double::{DoubleAuth, DoubleCluster, RmDouble, Role};

const POOL: &str = include_str!("../../docs/examples/nightly-pool.yaml");
const NODE: &str = include_str!("../tests/fixtures/node.yaml");

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// (resident, peak resident) of this process, KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User plus system CPU of this process, seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `state`.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command.
    (ticks(11) + ticks(12)) / 100.0
}

fn report(node: &str, cores: f64) -> WindowsReport {
    let set = |value: f64| WindowSet {
        one_minute: WindowStats::constant(value),
        five_minutes: WindowStats::constant(value),
        ten_minutes: WindowStats::constant(value),
    };
    let memory = cores * 4.0 * 1_073_741_824.0;
    WindowsReport {
        node: node.to_owned(),
        cpu_cores: set(cores),
        memory_bytes: set(memory),
        latest: Some(LatestSample {
            cpu_cores: cores,
            memory_bytes: memory,
            timestamp_seconds: 1.79e9,
            age_seconds: 0.5,
            inputs: serde_json::from_value(serde_json::json!({
                "suppress": {"cores": cores, "policy": "cpuset", "ageMs": 0},
                "beUsedCpuCores": 0.0, "nodeUsedMemoryBytes": 0.0,
                "yarn": {"cpuCores": 0.0, "memoryBytes": 0.0, "cgroups": 0},
                "capacity": {"cpuCores": 64.0, "memoryBytes": 2.7e11},
                "memoryEvictThresholdPercent": 70.0
            }))
            .expect("sample inputs"),
        }),
        scrapes: 600,
        scrape_errors: Default::default(),
        last_error: None,
        batch_allocatable: None,
    }
}

/// Every node's exporter at `/<node>/v1/windows`; one node in ten swings between 12 and 30 cores
/// from one tick to the next.
async fn windows(
    Path(node): Path<String>,
    State(tick): State<Arc<AtomicU64>>,
) -> impl IntoResponse {
    let index: u64 = node.trim_start_matches("worker-").parse().unwrap_or(0);
    let tick = tick.load(Ordering::Relaxed);
    let cores = if index % 10 == tick % 10 {
        if tick % 2 == 0 { 30.0 } else { 12.0 }
    } else {
        20.0
    };
    axum::Json(report(&node, cores))
}

fn reconcile_cycle(
    pool: &ElasticNodePool,
    nodes: &[Node],
    existing: &[ExistingNodeManager],
) -> usize {
    let validated = validate(&pool.spec, jiff::Timestamp::now()).expect("a valid pool");
    let eligible: BTreeSet<String> = nodes
        .iter()
        .filter(|n| placement::check(n, &pool.spec.placement).is_ok())
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    let plan = lifecycle::plan(
        &elastic_yarn_operator::validate::Lifecycle::Resident,
        jiff::Timestamp::now(),
        &eligible,
        existing,
        validated.guarder.grace_period,
    );
    let pool_ref = PoolRef::of(pool).expect("metadata");
    let settings = BuildSettings::default();
    let mut bytes = 0;
    for node in &plan.run {
        let slot = NodeManagerSlot {
            node: node.clone(),
            static_address: None,
            drain_deadline: None,
        };
        let pod = build::node_manager_pod(&pool_ref, &pool.spec, &settings, &slot);
        bytes += serde_json::to_vec(&pod).expect("serializes").len();
    }
    let rows: Vec<NodeManagerStatus> = plan
        .run
        .iter()
        .map(|node| NodeManagerStatus {
            node: node.clone(),
            pod: build::names::node_manager_pod_name("nightly", node),
            ip: Some("10.0.0.1".to_owned()),
            yarn_node_id: Some("10.0.0.1:45454".to_owned()),
            capacity: Resources {
                vcores: 20,
                memory_mb: 81_920,
            },
            used: Resources {
                vcores: 10,
                memory_mb: 40_960,
            },
            state: NodeManagerState::Running,
            problem: None,
        })
        .collect();
    let status = pool_status(
        pool.status.as_ref(),
        StatusInputs {
            generation: Some(1),
            plan: &plan,
            node_managers: rows,
            rm: RmReachability::Reachable,
            fresh_metrics: Some((plan.run.len(), plan.run.len())),
            datasets: elastic_yarn_operator::controller::datasets::DatasetsReadiness::NoDatasets,
            signals: (0, 0),
            unaddressed: 0,
        },
        &Time(jiff::Timestamp::now()),
    );
    bytes + serde_json::to_vec(&status).expect("serializes").len()
}

fn main() {
    let count = setting("CYCLE_BENCH_NMS", 5000);
    let rounds = setting("CYCLE_BENCH_ROUNDS", 5);
    let mut pool: ElasticNodePool = serde_yaml::from_str(POOL).expect("pool");
    pool.metadata.uid = Some("00000000-0000-4000-8000-000000000000".to_owned());
    let template: Node = serde_yaml::from_str(NODE).expect("node");
    let nodes: Vec<Node> = (0..count)
        .map(|i| {
            let mut node = template.clone();
            node.metadata.name = Some(format!("worker-{i}"));
            node
        })
        .collect();
    let existing: Vec<ExistingNodeManager> = (0..count)
        .map(|i| ExistingNodeManager {
            node: format!("worker-{i}"),
            drain_deadline: None,
            empty: false,
            node_present: true,
            failed: false,
        })
        .collect();
    println!("operator_cycle: {count} NodeManagers, {rounds} rounds");
    let (rss, _) = memory_kib();
    println!("start: resident {rss} KiB");
    for round in 1..=rounds {
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let bytes = reconcile_cycle(&pool, &nodes, &existing);
        let (rss, peak) = memory_kib();
        println!(
            "reconcile {round}: {:.3} s CPU, {:.3} s wall, {} KiB sent, resident {rss} KiB (peak {peak})",
            cpu_seconds() - cpu,
            wall.elapsed().as_secs_f64(),
            bytes / 1024
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let start = Resources { memory_mb: 81_920, vcores: 20 };
        let cluster = DoubleCluster::with_nodes(count, start);
        let double = RmDouble::new(cluster, Role::Active, DoubleAuth::Simple).without_recording();
        let (rm_address, _rm) = double.spawn().await.expect("bind");
        let tick = Arc::new(AtomicU64::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let exporter_address = listener.local_addr().expect("address");
        let router = Router::new()
            .route("/{node}/v1/windows", get(windows))
            .with_state(tick.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let mut settings = RestSettings::new(
            vec![format!("http://{rm_address}")],
            RmAuth::Simple { user: "yarn".to_owned() },
        );
        settings.max_in_flight = 64;
        settings.confirm_interval = Duration::from_millis(1);
        let rm = RestResourceManager::new(settings).expect("client");
        let bounds = CapacityBounds {
            floor: Resources::new(0, 0),
            ceiling: Resources::new(40, 163_840),
            memory_per_vcore_mb: 4096,
        };
        let mut policy = PolicySettings::with_bounds(bounds);
        policy.grow_cooldown_seconds = 0;
        let mut looper = VerticalLoop::new(
            LoopSettings {
                policy: PolicyKind::Threshold,
                settings: policy,
                rm_writes_per_second: 1.0e6,
                rm_write_burst: u32::MAX,
                concurrency: 64,
            },
            rm,
            MetricsReader::Exporters(ExporterSource::new(Duration::from_secs(10), 64).expect("client")),
            None,
        );
        let nms: Vec<NodeManagerEndpoints> = (0..count)
            .map(|i| NodeManagerEndpoints {
                node: format!("worker-{i}"),
                yarn_node_id: format!("nm-{i}.yarn.test:45454").parse().expect("id"),
                exporter: Some(
                    url::Url::parse(&format!("http://{exporter_address}/worker-{i}/")).expect("url"),
                ),
                guarder: None,
                batch_allocatable: None,
            })
            .collect();
        for round in 1..=rounds {
            tick.store(round as u64, Ordering::Relaxed);
            let (cpu, wall) = (cpu_seconds(), Instant::now());
            let report = looper.tick(&nms).await;
            let resized = report
                .outcomes
                .iter()
                .filter(|o| matches!(o.applied, elastic_yarn_operator::vertical::Applied::Resized { .. }))
                .count();
            let (rss, peak) = memory_kib();
            println!(
                "vertical loop {round}: {:.3} s CPU (doubles included), {:.3} s wall, {resized} resizes, resident {rss} KiB (peak {peak})",
                cpu_seconds() - cpu,
                wall.elapsed().as_secs_f64()
            );
        }
    });
}
