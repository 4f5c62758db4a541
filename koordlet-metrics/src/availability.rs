//! What batch (YARN) work may use on a node, from one koordlet page and YARN's own use.
//!
//! The formula (documented in `docs/koordlet-metrics.md`):
//!
//! ```text
//! cpu    = suppress − max(0, beUsed − yarnCpu)
//! memory = nodeMemory × evictThreshold − max(0, nodeUsedMemory − yarnMemory)
//! ```
//!
//! Koordinator caps all BE pods together at `suppress` cores; BE pods that are not YARN's
//! (`beUsed − yarnCpu`) take their share first. koordlet evicts BE pods once the node's memory
//! use passes the eviction threshold; whatever the node uses outside YARN's containers counts
//! against that line. YARN's own use is added back because the question is how much YARN could
//! hold, not how much is free right now: without it, every container YARN starts would make the
//! node look smaller and the operator would shrink the NM it just grew.

use serde::{Deserialize, Serialize};

use crate::koordlet::{KoordletPage, SuppressPolicy, names};

/// The node's size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCapacity {
    /// CPUs of the node.
    pub cpu_cores: f64,
    /// Memory of the node, bytes.
    pub memory_bytes: f64,
}

/// Which suppress series to trust.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PolicyChoice {
    /// The one koordlet is using: the only one present, or the one that changed last.
    #[default]
    Auto,
    /// Only this policy's series (the NodeSLO's `cpuSuppressPolicy`).
    Only(SuppressPolicy),
}

/// Settings of the formula.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FormulaSettings {
    /// koordlet's memory eviction threshold, percent of node memory (NodeSLO
    /// `memoryEvictThresholdPercent`, 70 by default).
    pub memory_evict_threshold_percent: f64,
    /// Which suppress series to use.
    pub policy: PolicyChoice,
    /// How long a `cfsQuota` limit stays valid after its series went missing. koordlet does not
    /// re-emit the gauge for changes under 1% (and not at all after a restart until the next
    /// larger change), while the quota it wrote stays in force.
    pub cfs_quota_hold_ms: u64,
}

impl Default for FormulaSettings {
    fn default() -> Self {
        FormulaSettings {
            memory_evict_threshold_percent: 70.0,
            policy: PolicyChoice::Auto,
            cfs_quota_hold_ms: 600_000,
        }
    }
}

/// What YARN's containers use on the node right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct YarnUsage {
    /// Cores.
    pub cpu_cores: f64,
    /// Bytes of memory (working set).
    pub memory_bytes: f64,
    /// How many YARN cgroup hierarchies were summed.
    pub cgroups: usize,
}

/// The suppress limit in force.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuppressLimit {
    /// Cores BE pods may use.
    pub cores: f64,
    /// The policy koordlet applies it with.
    pub policy: SuppressPolicy,
    /// Milliseconds since the series last showed this value (0 when on this page).
    pub age_ms: u64,
}

/// Every input of one sample, kept for `/v1/windows` so that an admin can check the arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleInputs {
    /// The suppress limit used.
    pub suppress: SuppressLimit,
    /// Cores used by all BE pods.
    pub be_used_cpu_cores: f64,
    /// Memory used by the node, bytes.
    pub node_used_memory_bytes: f64,
    /// YARN's own use.
    pub yarn: YarnUsage,
    /// The node's size.
    pub capacity: NodeCapacity,
    /// Eviction threshold, percent.
    pub memory_evict_threshold_percent: f64,
}

/// One sample of what batch work may use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAvailable {
    /// Cores.
    pub cpu_cores: f64,
    /// Bytes of memory.
    pub memory_bytes: f64,
}

/// Why no sample could be made from a page.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AvailabilityError {
    /// A series the formula needs is not on the page.
    #[error("koordlet page has no {series}{detail}")]
    MissingSeries {
        /// Series name.
        series: &'static str,
        /// Extra explanation (may be empty).
        detail: &'static str,
    },
    /// A value larger than the node can hold: a unit mix-up or a broken exporter.
    #[error("series {series} has value {value}, more than the node's {limit}")]
    OutOfRange {
        /// Series name.
        series: &'static str,
        /// The value read.
        value: f64,
        /// The largest value accepted.
        limit: f64,
    },
}

impl AvailabilityError {
    /// Short stable category, for metric labels.
    pub const fn category(&self) -> &'static str {
        match self {
            AvailabilityError::MissingSeries { .. } => "missing_series",
            AvailabilityError::OutOfRange { .. } => "out_of_range",
        }
    }
}

/// Measurements may exceed the node by a little (sampling jitter); beyond this they are wrong.
const OVER_CAPACITY_SLACK: f64 = 1.05;

/// The formula, on inputs already checked.
pub fn batch_available(inputs: &SampleInputs) -> BatchAvailable {
    let other_be_cpu = (inputs.be_used_cpu_cores - inputs.yarn.cpu_cores).max(0.0);
    let cpu_cores = (inputs.suppress.cores - other_be_cpu).max(0.0);
    let memory_line = inputs.capacity.memory_bytes * inputs.memory_evict_threshold_percent / 100.0;
    let other_memory = (inputs.node_used_memory_bytes - inputs.yarn.memory_bytes).max(0.0);
    let memory_bytes = (memory_line - other_memory).max(0.0);
    BatchAvailable {
        cpu_cores,
        memory_bytes,
    }
}

/// The suppress series seen so far, by policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct SuppressTracker {
    seen: [Option<SeenLimit>; 2],
}

#[derive(Clone, Copy, Debug)]
struct SeenLimit {
    cores: f64,
    seen_at_ms: u64,
    changed_at_ms: u64,
}

impl SuppressTracker {
    /// Records the suppress series of a page read at `now_ms`.
    pub fn observe(&mut self, now_ms: u64, page: &KoordletPage) {
        for policy in SuppressPolicy::ALL {
            let Some(cores) = page.suppress(policy) else {
                continue;
            };
            let slot = &mut self.seen[policy.index()];
            let changed_at_ms = match slot {
                Some(previous) if previous.cores == cores => previous.changed_at_ms,
                _ => now_ms,
            };
            *slot = Some(SeenLimit {
                cores,
                seen_at_ms: now_ms,
                changed_at_ms,
            });
        }
    }

    /// The limit in force at `now_ms`, after [`SuppressTracker::observe`] of the page read then.
    pub fn current(
        &self,
        now_ms: u64,
        settings: &FormulaSettings,
    ) -> Result<SuppressLimit, AvailabilityError> {
        let allowed = |policy: SuppressPolicy| match settings.policy {
            PolicyChoice::Auto => true,
            PolicyChoice::Only(only) => only == policy,
        };
        let usable = SuppressPolicy::ALL.into_iter().filter_map(|policy| {
            let seen = self.seen[policy.index()]?;
            let age_ms = now_ms.saturating_sub(seen.seen_at_ms);
            // A cpuset limit is re-emitted every second; only a quota may go quiet.
            let valid = age_ms == 0
                || (policy == SuppressPolicy::CfsQuota && age_ms <= settings.cfs_quota_hold_ms);
            (allowed(policy) && valid).then_some((policy, seen, age_ms))
        });
        // With both present, the policy koordlet switched to is the one whose value moves; on a
        // tie, the smaller limit is the safe one.
        usable
            .max_by(|(_, a, _), (_, b, _)| {
                a.changed_at_ms
                    .cmp(&b.changed_at_ms)
                    .then(b.cores.total_cmp(&a.cores))
            })
            .map(|(policy, seen, age_ms)| SuppressLimit {
                cores: seen.cores,
                policy,
                age_ms,
            })
            .ok_or(AvailabilityError::MissingSeries {
                series: names::BE_SUPPRESS_CPU_CORES,
                detail: match settings.policy {
                    PolicyChoice::Only(SuppressPolicy::Cpuset) => " of type cpuset",
                    PolicyChoice::Only(SuppressPolicy::CfsQuota) => {
                        " of type cfsQuota (seen within the hold time)"
                    }
                    PolicyChoice::Auto => " (of any type, within the hold time)",
                },
            })
    }
}

/// Checks a page against the node and assembles the inputs of one sample.
pub fn sample_inputs(
    page: &KoordletPage,
    suppress: SuppressLimit,
    yarn: YarnUsage,
    capacity: NodeCapacity,
    settings: &FormulaSettings,
) -> Result<SampleInputs, AvailabilityError> {
    let required = |series: &'static str, value: Option<f64>| {
        value.ok_or(AvailabilityError::MissingSeries { series, detail: "" })
    };
    let be_used_cpu_cores = required(names::BE_SUPPRESS_BE_USED_CPU_CORES, page.be_used_cpu_cores)?;
    let node_used_memory_bytes =
        required(names::NODE_USED_MEMORY_BYTES, page.node_used_memory_bytes)?;
    let cpu_limit = capacity.cpu_cores * OVER_CAPACITY_SLACK;
    let memory_limit = capacity.memory_bytes * OVER_CAPACITY_SLACK;
    for (series, value, limit) in [
        (names::BE_SUPPRESS_CPU_CORES, suppress.cores, cpu_limit),
        (
            names::BE_SUPPRESS_BE_USED_CPU_CORES,
            be_used_cpu_cores,
            cpu_limit,
        ),
        (
            names::NODE_USED_MEMORY_BYTES,
            node_used_memory_bytes,
            memory_limit,
        ),
    ] {
        if value > limit {
            return Err(AvailabilityError::OutOfRange {
                series,
                value,
                limit,
            });
        }
    }
    Ok(SampleInputs {
        suppress,
        be_used_cpu_cores,
        node_used_memory_bytes,
        yarn,
        capacity,
        memory_evict_threshold_percent: settings.memory_evict_threshold_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

    fn node() -> NodeCapacity {
        NodeCapacity {
            cpu_cores: 32.0,
            memory_bytes: 128.0 * GIB,
        }
    }

    fn inputs(suppress: f64, be_used: f64, node_memory: f64, yarn: YarnUsage) -> SampleInputs {
        SampleInputs {
            suppress: SuppressLimit {
                cores: suppress,
                policy: SuppressPolicy::CfsQuota,
                age_ms: 0,
            },
            be_used_cpu_cores: be_used,
            node_used_memory_bytes: node_memory,
            yarn,
            capacity: node(),
            memory_evict_threshold_percent: 70.0,
        }
    }

    #[test]
    fn yarn_gets_the_suppress_limit_minus_other_batch_work() {
        // 20 cores for BE; BE uses 9 of which YARN 6: other BE pods hold 3, YARN may use 17.
        let yarn = YarnUsage {
            cpu_cores: 6.0,
            memory_bytes: 24.0 * GIB,
            cgroups: 1,
        };
        let got = batch_available(&inputs(20.0, 9.0, 80.0 * GIB, yarn));
        assert_eq!(got.cpu_cores, 17.0);
        // Eviction line 89.6 GiB; the node uses 80 of which YARN 24: YARN may hold 33.6 GiB.
        assert!((got.memory_bytes - 33.6 * GIB).abs() < 1.0);
    }

    #[test]
    fn yarn_measured_above_all_batch_use_does_not_inflate_the_limit() {
        // Sampling skew: YARN's cgroup read after a burst that koordlet has not seen yet.
        let yarn = YarnUsage {
            cpu_cores: 12.0,
            memory_bytes: 0.0,
            cgroups: 1,
        };
        let got = batch_available(&inputs(20.0, 9.0, 10.0 * GIB, yarn));
        assert_eq!(got.cpu_cores, 20.0);
    }

    #[test]
    fn an_overloaded_node_offers_nothing_rather_than_a_negative_amount() {
        let got = batch_available(&inputs(2.0, 30.0, 120.0 * GIB, YarnUsage::default()));
        assert_eq!(got.cpu_cores, 0.0);
        assert_eq!(got.memory_bytes, 0.0);
    }

    fn page_with(cpuset: Option<f64>, quota: Option<f64>) -> KoordletPage {
        KoordletPage {
            suppress_cores: [cpuset, quota],
            be_used_cpu_cores: Some(1.0),
            node_used_memory_bytes: Some(GIB),
            ..KoordletPage::default()
        }
    }

    #[test]
    fn a_quiet_cfs_quota_stays_valid_for_the_hold_time_only() {
        let settings = FormulaSettings {
            cfs_quota_hold_ms: 10_000,
            ..FormulaSettings::default()
        };
        let mut tracker = SuppressTracker::default();
        tracker.observe(1_000, &page_with(None, Some(12.5)));
        tracker.observe(2_000, &page_with(None, None));
        let held = tracker.current(2_000, &settings).unwrap();
        assert_eq!((held.cores, held.age_ms), (12.5, 1_000));
        assert!(tracker.current(11_000, &settings).is_ok());
        let err = tracker.current(11_001, &settings).unwrap_err();
        assert_eq!(err.category(), "missing_series");
    }

    #[test]
    fn a_missing_cpuset_is_missing_at_once() {
        let settings = FormulaSettings::default();
        let mut tracker = SuppressTracker::default();
        tracker.observe(1_000, &page_with(Some(8.0), None));
        assert_eq!(tracker.current(1_000, &settings).unwrap().cores, 8.0);
        tracker.observe(2_000, &page_with(None, None));
        assert!(tracker.current(2_000, &settings).is_err());
    }

    #[test]
    fn with_both_series_the_one_that_moves_is_koordlets_policy() {
        let settings = FormulaSettings::default();
        let mut tracker = SuppressTracker::default();
        // The cpuset gauge is left over from before a NodeSLO change; the quota moves.
        tracker.observe(1_000, &page_with(Some(4.0), Some(10.0)));
        let tie = tracker.current(1_000, &settings).unwrap();
        assert_eq!((tie.policy, tie.cores), (SuppressPolicy::Cpuset, 4.0));
        tracker.observe(2_000, &page_with(Some(4.0), Some(11.0)));
        let moved = tracker.current(2_000, &settings).unwrap();
        assert_eq!(
            (moved.policy, moved.cores),
            (SuppressPolicy::CfsQuota, 11.0)
        );
        let only_cpuset = FormulaSettings {
            policy: PolicyChoice::Only(SuppressPolicy::Cpuset),
            ..settings
        };
        assert_eq!(tracker.current(2_000, &only_cpuset).unwrap().cores, 4.0);
    }

    #[test]
    fn values_beyond_the_node_are_refused() {
        let settings = FormulaSettings::default();
        let limit = SuppressLimit {
            cores: 20.0,
            policy: SuppressPolicy::CfsQuota,
            age_ms: 0,
        };
        let mut page = page_with(None, Some(20.0));
        page.node_used_memory_bytes = Some(1e30);
        let err = sample_inputs(&page, limit, YarnUsage::default(), node(), &settings).unwrap_err();
        assert_eq!(err.category(), "out_of_range");
        page.node_used_memory_bytes = None;
        let err = sample_inputs(&page, limit, YarnUsage::default(), node(), &settings).unwrap_err();
        assert_eq!(
            err,
            AvailabilityError::MissingSeries {
                series: names::NODE_USED_MEMORY_BYTES,
                detail: ""
            }
        );
    }

    proptest! {
        #[test]
        fn never_negative_never_above_the_limits(
            suppress in 0f64..64.0,
            be_used in 0f64..64.0,
            yarn_cpu in 0f64..64.0,
            node_memory in 0f64..256.0,
            yarn_memory in 0f64..256.0,
        ) {
            let yarn = YarnUsage { cpu_cores: yarn_cpu, memory_bytes: yarn_memory * GIB, cgroups: 1 };
            let got = batch_available(&inputs(suppress, be_used, node_memory * GIB, yarn));
            prop_assert!(got.cpu_cores >= 0.0 && got.cpu_cores <= suppress);
            prop_assert!(got.memory_bytes >= 0.0 && got.memory_bytes <= 0.7 * node().memory_bytes + 1.0);
            // YARN using more never makes YARN's share smaller.
            let more = YarnUsage { cpu_cores: yarn_cpu + 1.0, ..yarn };
            prop_assert!(batch_available(&inputs(suppress, be_used, node_memory * GIB, more)).cpu_cores >= got.cpu_cores);
        }
    }
}
