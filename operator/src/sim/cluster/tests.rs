use super::*;
use crate::sim::config::SimConfig;
use crate::sim::node::{NodeProfile, NodeSeries, NodeTimeline};

const HOUR: u32 = 3600;

fn config(nodes: usize, duration: u32) -> SimConfig {
    let mut config = SimConfig {
        nodes,
        duration_seconds: duration,
        ..SimConfig::default()
    };
    config.variety.metrics_outage_probability = 0.0;
    config
}

/// A node whose batch CPU (cores) and memory (GiB) follow the given functions of time.
fn node(
    config: &SimConfig,
    cpu: impl Fn(usize) -> f32,
    memory_gib: impl Fn(usize) -> f32,
) -> NodeTimeline {
    let seconds = config.duration_seconds as usize;
    let batch_cpu_cores: Vec<f32> = (0..seconds).map(&cpu).collect();
    let online_cpu_cores = batch_cpu_cores
        .iter()
        .map(|b| (config.node_cores as f32 * 0.65 - b).max(0.0))
        .collect();
    let batch_memory_mb: Vec<f32> = (0..seconds).map(|t| memory_gib(t) * 1024.0).collect();
    let online_memory_mb = batch_memory_mb
        .iter()
        .map(|m| (config.node_memory_gib as f32 * 1024.0 * 0.7 - m).max(0.0))
        .collect();
    let profile = NodeProfile {
        offset_seconds: 0,
        cpu_scale: 1.0,
        memory_scale: 1.0,
        metrics_outage: None,
    };
    NodeTimeline::from_series(
        config,
        profile,
        NodeSeries {
            online_cpu_cores,
            online_memory_mb,
            batch_cpu_cores,
            batch_memory_mb,
        },
    )
}

fn run(config: &SimConfig, nodes: &[NodeTimeline], kind: PolicyKind) -> Counters {
    run_policy(config, nodes, kind, &|_| {}).counters
}

fn consistent(counters: &Counters) {
    assert!(
        counters.forced_kills <= counters.graceful_signals + counters.containers_lost_to_evictions
    );
    assert!(counters.delivered_vcore_seconds <= counters.allocated_vcore_seconds + 1e-6);
    assert!(counters.lost_vcore_seconds >= 0.0);
}

#[test]
fn a_steady_node_needs_no_signal_and_is_never_evicted() {
    let config = config(4, HOUR);
    let nodes: Vec<NodeTimeline> = (0..4).map(|_| node(&config, |_| 20.0, |_| 200.0)).collect();
    for kind in [
        PolicyKind::Elastic,
        PolicyKind::Threshold,
        PolicyKind::Oracle,
    ] {
        let c = run(&config, &nodes, kind);
        consistent(&c);
        assert_eq!(c.nm_evictions_cpu + c.nm_evictions_memory, 0, "{kind}");
        assert_eq!(c.graceful_signals, 0, "{kind}");
        assert!(c.containers_completed > 100, "{kind}: {c:?}");
    }
    // Elastic offers a little more than the CPU, because containers use less than their vcores.
    let elastic = run_policy(&config, &nodes, PolicyKind::Elastic, &|_| {});
    let last = elastic.series.last().unwrap();
    assert_eq!(last.capacity_vcores, 4 * 23);
    let threshold = run_policy(&config, &nodes, PolicyKind::Threshold, &|_| {});
    assert_eq!(threshold.series.last().unwrap().capacity_vcores, 4 * 20);
}

#[test]
fn a_cliff_evicts_under_the_published_rule_but_not_under_elastic() {
    let config = config(4, HOUR);
    // 20 cores, then 3 for twenty minutes from 20:07, then 20 again.
    let cliff = |t: usize| if (1207..2407).contains(&t) { 3.0 } else { 20.0 };
    let nodes: Vec<NodeTimeline> = (0..4).map(|_| node(&config, cliff, |_| 200.0)).collect();
    let threshold = run(&config, &nodes, PolicyKind::Threshold);
    consistent(&threshold);
    assert!(threshold.nm_evictions_cpu > 0, "{threshold:?}");
    for kind in [PolicyKind::Elastic, PolicyKind::Oracle] {
        let c = run(&config, &nodes, kind);
        consistent(&c);
        assert_eq!(
            c.nm_evictions_cpu + c.nm_evictions_memory,
            0,
            "{kind}: {c:?}"
        );
        assert!(c.graceful_signals > 0, "{kind} freed containers");
        assert!(
            c.lost_vcore_seconds < threshold.lost_vcore_seconds,
            "{kind}"
        );
    }
}

#[test]
fn memory_past_the_threshold_evicts_the_nm() {
    let config = config(2, HOUR);
    // The static policy keeps 10 vcores / 30 GiB while batch memory falls to 5 GiB.
    let squeeze = |t: usize| if t < 1800 { 100.0 } else { 5.0 };
    let nodes: Vec<NodeTimeline> = (0..2).map(|_| node(&config, |_| 20.0, squeeze)).collect();
    let c = run(&config, &nodes, PolicyKind::Static);
    consistent(&c);
    assert!(c.nm_evictions_memory > 0, "{c:?}");
    assert_eq!(c.graceful_signals, 0, "static never asks the guarder");
}

#[test]
fn a_gradual_memory_decline_is_met_by_the_guarder() {
    let config = config(2, HOUR);
    // From 100 GiB down to 20 GiB over ten minutes.
    let decline = |t: usize| {
        let progress = (t.saturating_sub(1200) as f32 / 600.0).min(1.0);
        100.0 - 80.0 * progress
    };
    let nodes: Vec<NodeTimeline> = (0..2).map(|_| node(&config, |_| 20.0, decline)).collect();
    let c = run(&config, &nodes, PolicyKind::Elastic);
    consistent(&c);
    assert_eq!(c.nm_evictions_memory, 0, "{c:?}");
    assert!(c.graceful_signals > 0);
}

#[test]
fn a_slow_decline_drains_gracefully_without_kills() {
    let mut config = config(4, HOUR);
    config.workload.stubborn_share = 0.0;
    // 24 cores falling to 12 over twenty minutes: Koordinator only throttles, nothing is urgent.
    let slope = |t: usize| {
        let progress = (t.saturating_sub(900) as f32 / 1200.0).min(1.0);
        24.0 - 12.0 * progress
    };
    let nodes: Vec<NodeTimeline> = (0..4).map(|_| node(&config, slope, |_| 200.0)).collect();
    let c = run(&config, &nodes, PolicyKind::Elastic);
    consistent(&c);
    assert_eq!(c.forced_kills, 0, "{c:?}");
    assert_eq!(c.nm_evictions_cpu, 0);
    assert!(c.rm_updates > 4, "the RM capacity went down with the node");
}

#[test]
fn stuck_containers_are_killed_only_after_being_signalled() {
    let mut config = config(4, HOUR);
    config.workload.stubborn_share = 1.0;
    let cliff = |t: usize| if t >= 1207 { 4.0 } else { 20.0 };
    let nodes: Vec<NodeTimeline> = (0..4).map(|_| node(&config, cliff, |_| 200.0)).collect();
    let c = run(&config, &nodes, PolicyKind::Elastic);
    consistent(&c);
    assert!(
        c.forced_kills > 0,
        "containers that ignore SIGTERM end with SIGKILL: {c:?}"
    );
    assert!(c.forced_kills <= c.graceful_signals);
}

#[test]
fn a_run_is_a_function_of_its_inputs() {
    let config = config(3, HOUR);
    let wave = |t: usize| 14.0 + 8.0 * ((t as f32) / 600.0).sin();
    let nodes: Vec<NodeTimeline> = (0..3).map(|_| node(&config, wave, |_| 120.0)).collect();
    for kind in PolicyKind::ALL {
        let first = run_policy(&config, &nodes, kind, &|_| {});
        let second = run_policy(&config, &nodes, kind, &|_| {});
        assert_eq!(first, second, "{kind}");
    }
}

#[test]
fn koordinator_evicts_only_when_both_the_window_and_now_are_unsatisfied() {
    let config = config(1, HOUR);
    let nodes = vec![node(&config, |_| 20.0, |_| 200.0)];
    let mut simulation = Simulation::new(&config, &nodes, PolicyKind::Static);
    for _ in 0..60 {
        simulation.nodes[0].eviction.push(60, 5.0, 10.0, 5.0);
    }
    // The window is at satisfaction 0.5; now at 0.5 too: evict.
    assert!(simulation.cpu_satisfaction_too_low(0, 5.0, 10.0, 5.0));
    // Now the limit is back at 8 of 10: satisfaction 0.8, no eviction.
    assert!(!simulation.cpu_satisfaction_too_low(0, 8.0, 10.0, 8.0));
    // Batch work does not use its limit: no eviction either.
    assert!(!simulation.cpu_satisfaction_too_low(0, 5.0, 10.0, 2.0));
    // Too few samples in the window.
    simulation.nodes[0].eviction.clear();
    simulation.nodes[0].eviction.push(60, 5.0, 10.0, 5.0);
    assert!(!simulation.cpu_satisfaction_too_low(0, 5.0, 10.0, 5.0));
}

#[test]
fn progress_reports_every_simulated_second() {
    let config = config(1, 2 * HOUR + 17);
    let nodes = vec![node(&config, |_| 10.0, |_| 50.0)];
    let counted = std::sync::atomic::AtomicU64::new(0);
    let progress = |n: u64| {
        counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    };
    run_policy(&config, &nodes, PolicyKind::Follow, &progress);
    assert_eq!(
        counted.load(std::sync::atomic::Ordering::Relaxed),
        u64::from(config.duration_seconds)
    );
}
