//! What each node offers to batch work, second by second: the online load from the trace (with
//! the node's offset, scale and noise), Koordinator's suppress limit on batch CPU, the memory
//! batch work may use before koordlet evicts, and what the operator would read at each sync
//! (the exporter's windows, koord-manager's batch allocatable, and the future for the oracle).
//!
//! None of this depends on the policy, so it is computed once and shared: every policy faces
//! exactly the same nodes.

use std::collections::VecDeque;

use koordlet_metrics::WindowedSeries;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::config::{SimConfig, SuppressPolicy};
use super::trace::Trace;
use crate::policy::{Availability, BatchAllocatable, Foresight};

/// How one node's online load differs from the trace.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeProfile {
    /// Seconds the trace is shifted by (the node runs ahead when positive).
    pub offset_seconds: i64,
    /// Factor on the trace's CPU percentage.
    pub cpu_scale: f64,
    /// Factor on the trace's memory percentage.
    pub memory_scale: f64,
    /// Exporter outage: first and last second without samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_outage: Option<(u32, u32)>,
}

/// What the operator reads for a node at one sync tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TickView {
    /// The exporter's windows (`None` before its first sample).
    pub availability: Option<Availability>,
    /// koord-manager's batch allocatable.
    pub batch_allocatable: BatchAllocatable,
    /// The least the node offers over the oracle's horizon.
    pub foresight: Foresight,
}

/// One node over the whole run.
#[derive(Clone, Debug)]
pub struct NodeTimeline {
    /// How the node differs from the trace.
    pub profile: NodeProfile,
    /// Online CPU use, cores, per second.
    pub online_cpu_cores: Vec<f32>,
    /// Koordinator's limit on batch CPU, cores, per second.
    pub batch_cpu_cores: Vec<f32>,
    /// Memory batch work may use before eviction, MiB, per second.
    pub batch_memory_mb: Vec<f32>,
    /// What the operator reads at each sync tick (tick `k` is second `k * sync_seconds`).
    pub ticks: Vec<TickView>,
}

/// A stream of seeded random numbers per node and purpose, independent of evaluation order.
pub(crate) fn seeded(seed: u64, stream: u64) -> ChaCha8Rng {
    // splitmix64 of (seed, stream) so that neighbouring seeds give unrelated streams.
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ChaCha8Rng::seed_from_u64(z ^ (z >> 31))
}

/// Draws node `index`'s profile.
pub fn profile(config: &SimConfig, index: usize) -> NodeProfile {
    let variety = &config.variety;
    let mut rng = seeded(config.seed, 1_000_000 + index as u64);
    let max_offset = i64::from(variety.max_offset_seconds);
    let offset_seconds = if max_offset > 0 {
        rng.random_range(-max_offset..=max_offset)
    } else {
        0
    };
    let between = |rng: &mut ChaCha8Rng, (low, high): (f64, f64)| {
        if high > low {
            rng.random_range(low..high)
        } else {
            low
        }
    };
    let cpu_scale = between(&mut rng, variety.cpu_scale);
    let memory_scale = between(&mut rng, variety.memory_scale);
    let outage = rng.random::<f64>() < variety.metrics_outage_probability;
    let (shortest, longest) = variety.metrics_outage_seconds;
    let metrics_outage = (outage && config.duration_seconds > longest).then(|| {
        let length = rng.random_range(shortest.min(longest)..=longest);
        let start = rng.random_range(0..config.duration_seconds - length);
        (start, start + length - 1)
    });
    NodeProfile {
        offset_seconds,
        cpu_scale,
        memory_scale,
        metrics_outage,
    }
}

/// Horizon of the oracle's foresight: long enough to drain before a drop arrives.
pub fn foresight_horizon(config: &SimConfig) -> usize {
    (config.sync_seconds + config.grace_period_seconds + 60) as usize
}

/// The oracle's near horizon: until its next decision has taken effect.
pub fn foresight_soon(config: &SimConfig) -> usize {
    (2 * config.sync_seconds + config.workload.terminate_exit_seconds) as usize
}

/// Smallest value of `series` over `[t, t + width)` for every `t` that is a multiple of `step`.
fn forward_minimum(series: &[f32], width: usize, step: usize, ticks: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(ticks);
    let mut deque: VecDeque<usize> = VecDeque::new();
    let mut pushed = 0usize;
    for tick in 0..ticks {
        let start = tick * step;
        let end = (start + width).min(series.len());
        while pushed < end {
            while deque.back().is_some_and(|&i| series[i] >= series[pushed]) {
                deque.pop_back();
            }
            deque.push_back(pushed);
            pushed += 1;
        }
        while deque.front().is_some_and(|&i| i < start) {
            deque.pop_front();
        }
        out.push(deque.front().map_or(0.0, |&i| series[i]));
    }
    out
}

/// A node's per-second series: what online services use and what batch work may use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSeries {
    /// Online CPU use, cores.
    pub online_cpu_cores: Vec<f32>,
    /// Online memory use, MiB.
    pub online_memory_mb: Vec<f32>,
    /// Koordinator's limit on batch CPU, cores.
    pub batch_cpu_cores: Vec<f32>,
    /// Memory batch work may use before eviction, MiB.
    pub batch_memory_mb: Vec<f32>,
}

/// Builds node `index`'s timeline from the trace.
pub fn timeline(config: &SimConfig, trace: &Trace, index: usize) -> NodeTimeline {
    let profile = profile(config, index);
    let series = node_series(config, trace, &profile, index);
    NodeTimeline::from_series(config, profile, series)
}

/// The per-second series of a node: the trace shifted, scaled and noised, and Koordinator's
/// limits derived from it.
fn node_series(
    config: &SimConfig,
    trace: &Trace,
    profile: &NodeProfile,
    index: usize,
) -> NodeSeries {
    let variety = &config.variety;
    let koord = &config.koordinator;
    let seconds = config.duration_seconds as usize;
    let cores = f64::from(config.node_cores);
    let memory_mb = f64::from(config.node_memory_gib) * 1024.0;
    let span = i64::try_from(trace.span_seconds()).unwrap_or(i64::MAX);
    let mut rng = seeded(config.seed, 2_000_000 + index as u64);
    let rho = variety.noise_correlation.clamp(0.0, 0.9999);
    let innovation = (1.0 - rho * rho).sqrt();
    let (mut cpu_noise, mut memory_noise) = (0.0f64, 0.0f64);

    let mut online_cpu_cores = Vec::with_capacity(seconds);
    let mut online_memory_mb = Vec::with_capacity(seconds);
    let mut batch_cpu_cores = Vec::with_capacity(seconds);
    let mut batch_memory_mb = Vec::with_capacity(seconds);
    let mut limit = 0.0f64;
    let floor_cores = match koord.suppress_policy {
        SuppressPolicy::Cpuset => 2.0,
        SuppressPolicy::CfsQuota => 0.02,
    };
    for t in 0..seconds {
        let shifted = (t as i64 + profile.offset_seconds).rem_euclid(span.max(1));
        let row = trace.at(u64::try_from(shifted).unwrap_or(0));
        let e1: f64 = StandardNormal.sample(&mut rng);
        let e2: f64 = StandardNormal.sample(&mut rng);
        cpu_noise = rho * cpu_noise + innovation * variety.cpu_noise_points * e1;
        memory_noise = rho * memory_noise + innovation * variety.memory_noise_points * e2;
        let cpu_percent = (row.cpu_percent * profile.cpu_scale + cpu_noise).clamp(0.0, 100.0);
        let memory_percent =
            (row.memory_percent * profile.memory_scale * variety.online_memory_factor
                + memory_noise)
                .clamp(0.0, 100.0);
        let online_cpu = cpu_percent / 100.0 * cores;
        let online_memory = memory_percent / 100.0 * memory_mb;

        // koordlet: suppress(BE) = capacity x threshold - online use, at least the policy's
        // floor; it rises by at most a tenth of the node per second ("scale up slow").
        let mut target = cores * koord.cpu_suppress_threshold - online_cpu;
        if koord.suppress_policy == SuppressPolicy::Cpuset {
            target = target.floor();
        }
        let target = target.max(floor_cores).min(cores);
        limit = if t == 0 || target <= limit {
            target
        } else {
            let step = cores * koord.max_increase_per_second;
            let step = match koord.suppress_policy {
                SuppressPolicy::Cpuset => step.floor().max(1.0),
                SuppressPolicy::CfsQuota => step,
            };
            target.min(limit + step)
        };
        online_cpu_cores.push(online_cpu as f32);
        online_memory_mb.push(online_memory as f32);
        batch_cpu_cores.push(limit as f32);
        batch_memory_mb
            .push((memory_mb * koord.memory_evict_threshold - online_memory).max(0.0) as f32);
    }
    NodeSeries {
        online_cpu_cores,
        online_memory_mb,
        batch_cpu_cores,
        batch_memory_mb,
    }
}

impl NodeTimeline {
    /// Assembles a timeline from per-second series (each at least `duration_seconds` long):
    /// what the exporter, koord-manager and the oracle would show at every sync.
    pub fn from_series(
        config: &SimConfig,
        profile: NodeProfile,
        series: NodeSeries,
    ) -> NodeTimeline {
        let NodeSeries {
            online_cpu_cores,
            online_memory_mb,
            batch_cpu_cores,
            batch_memory_mb,
        } = series;
        let koord = &config.koordinator;
        let seconds = (config.duration_seconds as usize)
            .min(online_cpu_cores.len())
            .min(online_memory_mb.len())
            .min(batch_cpu_cores.len())
            .min(batch_memory_mb.len());
        let cores = f64::from(config.node_cores);
        let memory_mb = f64::from(config.node_memory_gib) * 1024.0;
        let sync = config.sync_seconds as usize;
        let tick_count = seconds.div_ceil(sync);
        let horizon = foresight_horizon(config);
        let future_cpu = forward_minimum(&batch_cpu_cores, horizon, sync, tick_count);
        let future_cpu_soon =
            forward_minimum(&batch_cpu_cores, foresight_soon(config), sync, tick_count);
        let future_memory = forward_minimum(&batch_memory_mb, horizon, sync, tick_count);

        let mut cpu_windows = WindowedSeries::new();
        let mut memory_windows = WindowedSeries::new();
        let mut last_sample: Option<usize> = None;
        let update = koord.allocatable_update_seconds.max(1) as usize;
        let mut allocatable = BatchAllocatable {
            cpu_cores: 0.0,
            memory_mb: 0.0,
            age_seconds: 0,
        };
        let mut allocatable_at = 0usize;
        let (mut cpu_sum, mut memory_sum, mut summed) = (0.0f64, 0.0f64, 0usize);
        let mut ticks = Vec::with_capacity(tick_count);
        for t in 0..seconds {
            let in_outage = profile
                .metrics_outage
                .is_some_and(|(start, end)| (start as usize..=end as usize).contains(&t));
            let at_ms = t as u64 * 1000;
            if !in_outage {
                // Values come from finite f32 arithmetic and time only moves forward, so the
                // windows accept every sample; a refusal would only leave a gap, like an outage.
                let cpu_ok = cpu_windows
                    .push(at_ms, f64::from(batch_cpu_cores[t]))
                    .is_ok();
                let memory_ok = memory_windows
                    .push(at_ms, f64::from(batch_memory_mb[t]))
                    .is_ok();
                if cpu_ok && memory_ok {
                    last_sample = Some(t);
                }
            }
            cpu_sum += cores * koord.reclaim_threshold - f64::from(online_cpu_cores[t]);
            memory_sum += memory_mb * koord.reclaim_threshold - f64::from(online_memory_mb[t]);
            summed += 1;
            if t % update == 0 {
                // koord-manager's batch allocatable from the last period's mean node usage.
                allocatable = BatchAllocatable {
                    cpu_cores: (cpu_sum / summed as f64).max(0.0),
                    memory_mb: (memory_sum / summed as f64).max(0.0),
                    age_seconds: 0,
                };
                allocatable_at = t;
                (cpu_sum, memory_sum, summed) = (0.0, 0.0, 0);
            }
            if t % sync == 0 {
                cpu_windows.expire(at_ms);
                memory_windows.expire(at_ms);
                let availability = last_sample.map(|last| Availability {
                    cpu_cores: cpu_windows.snapshot(),
                    memory_mb: memory_windows.snapshot(),
                    latest_cpu_cores: f64::from(batch_cpu_cores[last]),
                    latest_memory_mb: f64::from(batch_memory_mb[last]),
                    age_seconds: (t - last) as u64,
                });
                let tick = t / sync;
                ticks.push(TickView {
                    availability,
                    batch_allocatable: BatchAllocatable {
                        age_seconds: (t - allocatable_at) as u64,
                        ..allocatable
                    },
                    foresight: Foresight {
                        cpu_cores_min_soon: f64::from(future_cpu_soon[tick]),
                        cpu_cores_min: f64::from(future_cpu[tick]),
                        memory_mb_min: f64::from(future_memory[tick]),
                        horizon_seconds: u32::try_from(horizon).unwrap_or(u32::MAX),
                    },
                });
            }
        }
        NodeTimeline {
            profile,
            online_cpu_cores,
            batch_cpu_cores,
            batch_memory_mb,
            ticks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimConfig {
        SimConfig {
            nodes: 3,
            duration_seconds: 3600,
            ..SimConfig::default()
        }
    }

    #[test]
    fn forward_minimum_matches_a_naive_scan() {
        let series: Vec<f32> = (0..500).map(|i| ((i * 37) % 101) as f32).collect();
        let got = forward_minimum(&series, 40, 7, 500 / 7);
        for (tick, value) in got.iter().enumerate() {
            let start = tick * 7;
            let end = (start + 40).min(series.len());
            let expected = series[start..end]
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min);
            assert_eq!(*value, expected, "tick {tick}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_node() {
        let trace = Trace::embedded().unwrap();
        let a = timeline(&small(), &trace, 1);
        let b = timeline(&small(), &trace, 1);
        assert_eq!(a.profile, b.profile);
        assert_eq!(a.batch_cpu_cores, b.batch_cpu_cores);
        let c = timeline(&small(), &trace, 2);
        assert_ne!(a.batch_cpu_cores, c.batch_cpu_cores);
    }

    #[test]
    fn batch_cpu_is_the_suppress_threshold_minus_online_use_in_whole_cpus() {
        let trace = Trace::embedded().unwrap();
        let config = small();
        let node = timeline(&config, &trace, 0);
        let cores = f64::from(config.node_cores);
        for t in 1..node.batch_cpu_cores.len() {
            let limit = f64::from(node.batch_cpu_cores[t]);
            let previous = f64::from(node.batch_cpu_cores[t - 1]);
            let target = (cores * 0.65 - f64::from(node.online_cpu_cores[t]))
                .floor()
                .max(2.0);
            assert_eq!(limit.fract(), 0.0, "cpuset limits are whole CPUs");
            assert!(limit >= 2.0);
            assert!(limit <= target + 1e-6, "never above the threshold at {t}");
            assert!(
                limit - previous <= (cores * 0.1).floor() + 1e-6,
                "rises slowly at {t}"
            );
        }
    }

    #[test]
    fn ticks_hold_the_exporter_view_and_go_stale_in_an_outage() {
        let trace = Trace::embedded().unwrap();
        let mut config = small();
        config.variety.metrics_outage_probability = 1.0;
        config.variety.metrics_outage_seconds = (600, 600);
        let node = timeline(&config, &trace, 0);
        let (start, end) = node.profile.metrics_outage.unwrap();
        assert_eq!(end - start + 1, 600);
        let sync = config.sync_seconds as usize;
        let inside = (end as usize / sync) * sync;
        let view = node.ticks[inside / sync].availability.unwrap();
        assert!(view.age_seconds as usize >= inside - start as usize);
        let before = node.ticks[(start as usize / sync).saturating_sub(1)];
        if start as usize >= 2 * sync {
            let fresh = before.availability.unwrap();
            assert!(fresh.age_seconds <= 1);
            assert_eq!(
                fresh.cpu_cores.one_minute.count.min(60),
                fresh.cpu_cores.one_minute.count
            );
        }
    }

    #[test]
    fn the_oracle_sees_the_minimum_of_the_coming_horizon() {
        let trace = Trace::embedded().unwrap();
        let config = small();
        let node = timeline(&config, &trace, 0);
        let horizon = foresight_horizon(&config);
        let sync = config.sync_seconds as usize;
        for (tick, view) in node.ticks.iter().enumerate().step_by(17) {
            let start = tick * sync;
            let end = (start + horizon).min(node.batch_cpu_cores.len());
            let expected = node.batch_cpu_cores[start..end]
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min);
            assert_eq!(view.foresight.cpu_cores_min, f64::from(expected));
        }
    }
}
