//! Scenarios of the loop against the RM double, an exporter answering `/v1/windows` with a
//! report the test sets, and the guarder's real HTTP API (in process, over no containers).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use controlkit::process::Clock;
use guarder::discovery::Scope;
use guarder::drain::DrainSettings;
use guarder::service::{Guarder, GuarderConfig};
use koordlet_metrics::report::{LatestSample, WindowsReport};
use koordlet_metrics::{WindowSet, WindowStats};

use super::*;
use crate::policy::CapacityBounds;
use crate::vertical::rate::WriteBudget;
use yarn_rm::{RestResourceManager, RestSettings, RmAuth, Secret};
use yarn_rm_double::{DoubleAuth, DoubleCluster, RmDouble, Role};

const TOKEN: &str = "pool-token";

/// What an exporter answers: a report, or a status.
type ExporterAnswers = Arc<Mutex<Result<WindowsReport, u16>>>;

fn report(node: &str, cores: f64) -> WindowsReport {
    let set = |value: f64| WindowSet {
        one_minute: WindowStats::constant(value),
        five_minutes: WindowStats::constant(value),
        ten_minutes: WindowStats::constant(value),
    };
    let memory = cores * 4.0 * 1024.0 * 1_048_576.0;
    WindowsReport {
        node: node.to_owned(),
        cpu_cores: set(cores),
        memory_bytes: set(memory),
        latest: Some(LatestSample {
            cpu_cores: cores,
            memory_bytes: memory,
            timestamp_seconds: 1.79e9,
            age_seconds: 0.0,
            inputs: serde_json::from_value(serde_json::json!({
                "suppress": {"cores": cores, "policy": "cpuset", "ageMs": 0},
                "beUsedCpuCores": 0.0,
                "nodeUsedMemoryBytes": 0.0,
                "yarn": {"cpuCores": 0.0, "memoryBytes": 0.0, "cgroups": 0},
                "capacity": {"cpuCores": 64.0, "memoryBytes": 2.7e11},
                "memoryEvictThresholdPercent": 70.0
            }))
            .unwrap(),
        }),
        scrapes: 600,
        scrape_errors: Default::default(),
        last_error: None,
        batch_allocatable: None,
    }
}

async fn windows(State(answer): State<ExporterAnswers>) -> Response {
    match answer.lock().unwrap().clone() {
        Ok(report) => axum::Json(report).into_response(),
        Err(status) => StatusCode::from_u16(status).unwrap().into_response(),
    }
}

async fn serve(router: Router) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Url::parse(&format!("http://{address}/")).unwrap()
}

struct Rig {
    double: RmDouble,
    exporters: Vec<ExporterAnswers>,
    guarders: Vec<Arc<Mutex<Guarder>>>,
    nms: Vec<NodeManagerEndpoints>,
    looper: VerticalLoop<RestResourceManager>,
    _dir: tempfile::TempDir,
}

fn settings(shrink_to_floor_after: u64, burst: u32) -> LoopSettings {
    let bounds = CapacityBounds {
        floor: Resources::new(2, 8192),
        ceiling: Resources::new(40, 163_840),
        memory_per_vcore_mb: 4096,
    };
    let mut settings = PolicySettings::with_bounds(bounds);
    settings.shrink_to_floor_after_seconds = shrink_to_floor_after;
    settings.stale_after_seconds = 1;
    settings.grow_cooldown_seconds = 0;
    LoopSettings {
        policy: PolicyKind::Threshold,
        settings,
        rm_writes_per_second: 0.001,
        rm_write_burst: burst,
        concurrency: 8,
    }
}

/// A guarder over no containers: scoped to a process without children.
fn idle_guarder() -> Guarder {
    Guarder::new(GuarderConfig {
        proc_root: PathBuf::from("/proc"),
        cgroups: None,
        scope: Scope::DescendantsOf(i32::MAX - 1),
        drain: DrainSettings::default(),
    })
}

async fn rig(nodes: usize, start_vcores: u32, loop_settings: LoopSettings) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let token_file: PathBuf = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let cluster = DoubleCluster::with_nodes(
        nodes,
        Resources {
            memory_mb: u64::from(start_vcores) * 4096,
            vcores: start_vcores,
        },
    );
    let double = RmDouble::new(cluster, Role::Active, DoubleAuth::Simple);
    let (address, _task) = double.clone().spawn().await.unwrap();
    let rm = RestResourceManager::new(RestSettings::new(
        vec![format!("http://{address}")],
        RmAuth::Simple {
            user: "yarn".to_owned(),
        },
    ))
    .unwrap();
    let mut exporters = Vec::new();
    let mut guarders = Vec::new();
    let mut nms = Vec::new();
    for index in 0..nodes {
        let node = format!("worker-{index}");
        let answer: ExporterAnswers = Arc::new(Mutex::new(Ok(report(&node, 16.0))));
        let exporter = serve(
            Router::new()
                .route("/v1/windows", get(windows))
                .with_state(answer.clone()),
        )
        .await;
        let guarder = Arc::new(Mutex::new(idle_guarder()));
        let guarder_url = serve(guarder::server::router(
            guarder.clone(),
            token_file.clone(),
            Clock::start(),
        ))
        .await;
        exporters.push(answer);
        guarders.push(guarder);
        nms.push(NodeManagerEndpoints {
            node,
            yarn_node_id: format!("nm-{index}.yarn.test:45454").parse().unwrap(),
            exporter: Some(exporter),
            guarder: Some(guarder_url),
            batch_allocatable: None,
        });
    }
    let looper = VerticalLoop::new(
        loop_settings,
        rm,
        MetricsReader::Exporters(ExporterSource::new(Duration::from_secs(2), 8).unwrap()),
        Some(GuarderClient::new(Secret::new(TOKEN), Duration::from_secs(2)).unwrap()),
    );
    Rig {
        double,
        exporters,
        guarders,
        nms,
        looper,
        _dir: dir,
    }
}

fn set(exporter: &ExporterAnswers, node: &str, cores: f64) {
    *exporter.lock().unwrap() = Ok(report(node, cores));
}

fn target(guarder: &Arc<Mutex<Guarder>>) -> Option<(u32, u64)> {
    guarder
        .lock()
        .unwrap()
        .status()
        .target
        .map(|t| (t.vcores, t.memory_mb))
}

/// The RM says the NM's containers hold `vcores` (and memory at 4 GiB each).
fn hold(rig: &Rig, index: usize, vcores: u32) {
    rig.double.cluster().set_used(
        &rig.nms[index].yarn_node_id,
        Resources {
            memory_mb: u64::from(vcores) * 4096,
            vcores,
        },
        vcores,
    );
}

fn capacity(rig: &Rig, index: usize) -> Resources {
    rig.double
        .cluster()
        .node(&rig.nms[index].yarn_node_id)
        .unwrap()
        .capacity
}

#[tokio::test]
async fn grows_on_the_rm_only_past_the_threshold() {
    let mut rig = rig(1, 10, settings(600, 10)).await;
    // 12 available against 10: within the +3 threshold.
    set(&rig.exporters[0], "worker-0", 12.0);
    let report = rig.looper.tick(&rig.nms).await;
    assert_eq!(
        report.outcomes[0].applied,
        Applied::Kept(KeepReason::BelowGrowThreshold)
    );
    assert!(rig.double.writes().is_empty());

    set(&rig.exporters[0], "worker-0", 16.0);
    let report = rig.looper.tick(&rig.nms).await;
    assert_eq!(
        report.outcomes[0].applied,
        Applied::Resized {
            from: Resources::new(10, 40_960),
            to: Resources::new(16, 65_536),
            direction: Direction::Grow,
            guarder_target: None,
        }
    );
    assert_eq!(report.outcomes[0].reason, Some("threshold_grow"));
    let writes = rig.double.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].method, "POST");
    assert_eq!(
        writes[0].path,
        "/ws/v1/cluster/nodes/nm-0.yarn.test:45454/resource"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&writes[0].body).unwrap(),
        serde_json::json!({"resource": {"memory": 65536, "vCores": 16}, "overCommitTimeout": -1})
    );
    assert_eq!(capacity(&rig, 0).vcores, 16);
    assert_eq!(target(&rig.guarders[0]), None, "no target to lift");
}

/// One NM of 20 vcores whose containers hold `held` vcores, with 8 available: one tick.
async fn shrink_from_20_to_8_vcores_holding(held: u32) -> (Rig, Applied) {
    let mut rig = rig(1, 20, settings(600, 10)).await;
    set(&rig.exporters[0], "worker-0", 8.0);
    hold(&rig, 0, held);
    let report = rig.looper.tick(&rig.nms).await;
    let applied = report.outcomes[0].applied.clone();
    (rig, applied)
}

fn shrunk_from_20_to_8(guarder_target: Option<Resources>) -> Applied {
    Applied::Resized {
        from: Resources::new(20, 81_920),
        to: Resources::new(8, 32_768),
        direction: Direction::Shrink,
        guarder_target,
    }
}

#[tokio::test]
async fn shrink_goes_to_the_rm_then_the_guarder_and_a_later_grow_lifts_the_target() {
    // Containers hold 20 vcores: what does not fit the new capacity must go.
    let (mut rig, applied) = shrink_from_20_to_8_vcores_holding(20).await;
    assert_eq!(
        applied,
        shrunk_from_20_to_8(Some(Resources::new(8, 32_768)))
    );
    assert_eq!(capacity(&rig, 0).vcores, 8);
    assert_eq!(target(&rig.guarders[0]), Some((8, 32_768)));

    set(&rig.exporters[0], "worker-0", 30.0);
    let report = rig.looper.tick(&rig.nms).await;
    assert_eq!(
        report.outcomes[0].applied,
        Applied::Resized {
            from: Resources::new(8, 32_768),
            to: Resources::new(30, 122_880),
            direction: Direction::Grow,
            guarder_target: Some(Resources::new(40, 163_840)),
        }
    );
    assert_eq!(
        target(&rig.guarders[0]),
        Some((40, 163_840)),
        "lifted to the ceiling: no limit"
    );
}

#[tokio::test]
async fn a_shrink_whose_containers_fit_leaves_the_guarder_alone_as_simulated() {
    let (rig, applied) = shrink_from_20_to_8_vcores_holding(4).await;
    assert_eq!(applied, shrunk_from_20_to_8(None));
    assert_eq!(target(&rig.guarders[0]), None);
}

#[tokio::test]
async fn a_guarder_that_lost_its_target_gets_it_back_next_tick() {
    let mut rig = rig(1, 20, settings(600, 10)).await;
    set(&rig.exporters[0], "worker-0", 8.0);
    hold(&rig, 0, 20);
    rig.looper.tick(&rig.nms).await;
    assert_eq!(target(&rig.guarders[0]), Some((8, 32_768)));
    // The sidecar restarts: a fresh guarder behind the same address has no target.
    *rig.guarders[0].lock().unwrap() = idle_guarder();
    assert_eq!(target(&rig.guarders[0]), None);
    let report = rig.looper.tick(&rig.nms).await;
    assert_eq!(
        report.outcomes[0].applied,
        Applied::GuarderRestored {
            target: Resources::new(8, 32_768)
        }
    );
    assert_eq!(target(&rig.guarders[0]), Some((8, 32_768)));
    assert_eq!(rig.double.writes().len(), 1, "the RM was written once");
}

#[tokio::test]
async fn a_refused_rm_write_keeps_the_guarder_untouched() {
    let mut rig = rig(1, 20, settings(600, 10)).await;
    set(&rig.exporters[0], "worker-0", 8.0);
    // The RM refuses to resize a node it no longer runs (503, as Hadoop answers).
    rig.double
        .cluster()
        .set_state(&rig.nms[0].yarn_node_id, yarn_rm::NodeState::Decommissioned);
    let report = rig.looper.tick(&rig.nms).await;
    let Applied::Failed { category, .. } = &report.outcomes[0].applied else {
        panic!("expected a failure, got {:?}", report.outcomes[0].applied);
    };
    assert_eq!(*category, "unavailable");
    assert_eq!(target(&rig.guarders[0]), None);
    assert_eq!(capacity(&rig, 0).vcores, 20);
}

#[tokio::test]
async fn stale_metrics_hold_then_go_to_the_floor_and_never_grow() {
    // Stale after 1 s, floor after 3 s.
    let mut rig = rig(1, 10, settings(3, 10)).await;
    set(&rig.exporters[0], "worker-0", 30.0);
    hold(&rig, 0, 10);
    // The exporter goes away after one reading that called for a grow, which was deferred.
    let mut budget = WriteBudget::new(0.0, 1);
    assert!(budget.try_take(0.0));
    rig.looper.core_mut().set_budget(budget);
    let first = rig.looper.tick(&rig.nms).await;
    assert_eq!(first.outcomes[0].applied, Applied::RateLimited);
    rig.looper
        .core_mut()
        .set_budget(WriteBudget::new(100.0, 10));
    *rig.exporters[0].lock().unwrap() = Err(503);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = rig.looper.tick(&rig.nms).await;
    assert_eq!(
        report.outcomes[0].applied,
        Applied::Kept(KeepReason::StaleMetrics)
    );
    assert_eq!(report.outcomes[0].metrics_error, Some("status"));
    assert!(rig.double.writes().is_empty());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let report = rig.looper.tick(&rig.nms).await;
    assert_eq!(report.outcomes[0].reason, Some("stale_metrics_floor"));
    assert_eq!(capacity(&rig, 0).vcores, 2);
    assert_eq!(target(&rig.guarders[0]), Some((2, 8192)));
}

#[tokio::test]
async fn never_read_nms_hold_until_the_floor_time() {
    let mut rig = rig(1, 10, settings(600, 10)).await;
    *rig.exporters[0].lock().unwrap() = Err(500);
    let report = rig.looper.tick(&rig.nms).await;
    assert_eq!(
        report.outcomes[0].applied,
        Applied::Kept(KeepReason::StaleMetrics)
    );
    assert_eq!(report.outcomes[0].metrics_age_seconds, None);
    assert!(rig.double.writes().is_empty());
}

#[tokio::test]
async fn write_budget_serves_shrinks_first_and_defers_the_rest() {
    let mut rig = rig(4, 20, settings(600, 2)).await;
    // Two want to grow, two to shrink; only two writes are allowed.
    set(&rig.exporters[0], "worker-0", 30.0);
    set(&rig.exporters[1], "worker-1", 5.0);
    set(&rig.exporters[2], "worker-2", 30.0);
    set(&rig.exporters[3], "worker-3", 6.0);
    let report = rig.looper.tick(&rig.nms).await;
    let applied: Vec<&Applied> = report.outcomes.iter().map(|o| &o.applied).collect();
    assert_eq!(applied[0], &Applied::RateLimited);
    assert_eq!(applied[2], &Applied::RateLimited);
    assert!(matches!(
        applied[1],
        Applied::Resized {
            direction: Direction::Shrink,
            ..
        }
    ));
    assert!(matches!(
        applied[3],
        Applied::Resized {
            direction: Direction::Shrink,
            ..
        }
    ));
    assert_eq!(rig.double.writes().len(), 2);
}

#[tokio::test]
async fn unregistered_nms_and_an_unreachable_rm_decide_nothing() {
    let mut rig = rig(1, 10, settings(600, 10)).await;
    let mut nms = rig.nms.clone();
    nms[0].yarn_node_id = "not-yet.yarn.test:45454".parse().unwrap();
    let report = rig.looper.tick(&nms).await;
    assert_eq!(report.outcomes[0].applied, Applied::NotRegistered);

    rig.double.set_role(Role::Standby { active: None });
    let report = rig.looper.tick(&rig.nms).await;
    assert_eq!(
        report.rm_error.as_ref().map(RmError::category),
        Some("no_active_rm")
    );
    assert_eq!(report.outcomes[0].applied, Applied::Unknown);
    assert!(rig.double.writes().is_empty());
}

#[tokio::test]
async fn with_the_rm_down_the_guarder_still_protects_what_runs() {
    let mut rig = rig(1, 20, settings(600, 10)).await;
    set(&rig.exporters[0], "worker-0", 20.0);
    hold(&rig, 0, 20);
    let report = rig.looper.tick(&rig.nms).await;
    assert!(matches!(report.outcomes[0].applied, Applied::Kept(_)));
    // The RM goes away; the node's online load rises.
    rig.double.set_role(Role::Standby { active: None });
    set(&rig.exporters[0], "worker-0", 8.0);
    let report = rig.looper.tick(&rig.nms).await;
    assert!(report.rm_error.is_some());
    assert_eq!(
        report.outcomes[0].applied,
        Applied::Protected {
            target: Resources::new(8, 32_768)
        }
    );
    assert_eq!(target(&rig.guarders[0]), Some((8, 32_768)));
    assert!(rig.double.writes().is_empty(), "nothing written to the RM");
}

#[tokio::test]
async fn drain_zeroes_the_rm_then_targets_the_guarder_and_label_removal_follows() {
    let rig = rig(1, 10, settings(600, 10)).await;
    let nm = &rig.nms[0];
    let started = drain::start_drain(
        rig.looper.resource_manager(),
        rig.looper.guarder_client(),
        nm,
        1800,
        "schedule",
    )
    .await
    .unwrap();
    assert!(
        matches!(started, drain::DrainStarted::GuarderTold),
        "{started:?}"
    );
    assert_eq!(capacity(&rig, 0), Resources::default());
    assert_eq!(target(&rig.guarders[0]), Some((0, 0)));
    drain::remove_label(rig.looper.resource_manager(), &nm.yarn_node_id)
        .await
        .unwrap();
    let writes = rig.double.writes();
    let paths: Vec<&str> = writes.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/ws/v1/cluster/nodes/nm-0.yarn.test:45454/resource",
            "/ws/v1/cluster/replace-node-to-labels"
        ]
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&writes[1].body).unwrap(),
        serde_json::json!({"nodeToLabels": [{"nodeId": "nm-0.yarn.test:45454", "labels": []}]})
    );
}

#[tokio::test]
async fn a_restarted_guarder_gets_its_drain_target_back_once() {
    let rig = rig(1, 10, settings(600, 10)).await;
    let nm = &rig.nms[0];
    let client = rig.looper.guarder_client().expect("a guarder client");
    let url = nm.guarder.as_ref().expect("a guarder");
    drain::start_drain(
        rig.looper.resource_manager(),
        Some(client),
        nm,
        1800,
        "schedule",
    )
    .await
    .unwrap();
    // Held: nothing to send.
    assert!(!drain::hold_drain_target(client, url, 1700).await.unwrap());
    // The sidecar restarts and remembers nothing.
    *rig.guarders[0].lock().unwrap() = idle_guarder();
    assert_eq!(target(&rig.guarders[0]), None);
    assert!(drain::hold_drain_target(client, url, 1700).await.unwrap());
    assert_eq!(target(&rig.guarders[0]), Some((0, 0)));
    assert!(!drain::hold_drain_target(client, url, 1690).await.unwrap());
}

#[tokio::test]
async fn a_drain_whose_guarder_cannot_be_reached_still_zeroes_the_rm() {
    let rig = rig(1, 10, settings(600, 10)).await;
    let mut nm = rig.nms[0].clone();
    // A port nothing listens on: the guarder of a node that died.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    nm.guarder = Some(url.parse().unwrap());
    let started = drain::start_drain(
        rig.looper.resource_manager(),
        rig.looper.guarder_client(),
        &nm,
        60,
        "node_ineligible",
    )
    .await
    .expect("the RM step succeeded");
    assert!(
        matches!(started, drain::DrainStarted::GuarderUnreachable(_)),
        "{started:?}"
    );
    assert_eq!(capacity(&rig, 0), Resources::default());
}

/// One decision path: the operator's loop, reading a real RM client against the RM double, an
/// exporter over HTTP and a real guarder, makes the same decisions as [`LoopCore`] fed the same
/// inputs directly, as `simulate` feeds it.
#[tokio::test]
async fn the_operator_loop_decides_what_the_core_decides_on_the_same_inputs() {
    // (cores the node offers, vcores the containers hold), one pair per tick.
    let script = [
        (16.0, 10),
        (8.0, 20),
        (8.0, 20),
        (30.0, 4),
        (30.0, 30),
        (5.0, 30),
        (5.0, 4),
        (22.0, 0),
        (2.0, 12),
        (40.0, 0),
    ];
    let loop_settings = settings(600, 10);
    let mut rig = rig(1, 10, loop_settings.clone()).await;
    let mut core = LoopCore::new(loop_settings);
    // The core's own view of the RM and the guarder, carried forward as `simulate` does.
    let capacity_of = |rig: &Rig| capacity(rig, 0);
    let mut capacity = Resources::new(10, 40_960);
    let mut guarder_target: Option<Resources> = None;
    for (tick, (cores, held)) in script.into_iter().enumerate() {
        set(&rig.exporters[0], "worker-0", cores);
        hold(&rig, 0, held);
        let allocated = Resources::new(held, u64::from(held) * 4096);

        let observation = Observation {
            node: "worker-0".to_owned(),
            rm: RmView::Registered {
                capacity,
                allocated,
            },
            reading: availability::reading_from_report(&report("worker-0", cores))
                .map_err(|e| e.category()),
            guarder: GuarderView::Status {
                target: guarder_target,
                used: MeasuredUse {
                    cpu_cores: 0.0,
                    memory_mb: 0.0,
                },
            },
            node_allocatable: None,
            foresight: None,
        };
        let expected = core.plan(0, &[observation]).remove(0);
        if let (Some(to), Planned::Resize { direction, .. }) =
            (expected.rm_capacity, expected.planned)
        {
            capacity = to;
            core.rm_written("worker-0", direction, 0);
        }
        if let Some(target) = &expected.guarder_target {
            guarder_target = Some(target_resources(target));
        }

        let writes_before = rig.double.writes().len();
        let report = rig.looper.tick(&rig.nms).await;
        let writes = rig.double.writes();
        let rm_written = writes[writes_before..]
            .iter()
            .filter(|w| w.path.ends_with("/resource"))
            .count();
        assert_eq!(
            rm_written,
            usize::from(expected.rm_capacity.is_some()),
            "tick {tick}: RM writes; the core planned {expected:?}, the loop did {:?}",
            report.outcomes[0].applied
        );
        assert_eq!(
            to_resources(capacity_of(&rig)),
            capacity,
            "tick {tick}: capacity on the RM"
        );
        assert_eq!(
            target(&rig.guarders[0]),
            guarder_target.map(|t| (t.vcores, t.memory_mb)),
            "tick {tick}: the guarder's target; the core planned {expected:?}, the loop did {:?}",
            report.outcomes[0].applied
        );
    }
    assert!(
        rig.double.writes().len() >= 4,
        "the script moved the NM several times: {:?}",
        rig.double.writes()
    );
}

#[tokio::test]
async fn a_node_shared_with_another_pool_offers_only_what_that_pool_does_not_hold() {
    let mut rig = rig(1, 20, settings(600, 10)).await;
    // The node offers 20 cores to batch work; another pool's NM holds 12 of them.
    set(&rig.exporters[0], "worker-0", 20.0);
    let others = HashMap::from([("worker-0".to_owned(), Resources::new(12, 49_152))]);
    let report = rig.looper.tick_sharing(&rig.nms, &others).await;
    assert_eq!(
        report.outcomes[0].applied,
        shrunk_from_20_to_8(None),
        "sized to the 8 cores left, not the node's 20"
    );
    assert_eq!(capacity(&rig, 0).vcores, 8);
}
