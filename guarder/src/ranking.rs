//! Which containers to free when an NM must shrink, and in which order.
//!
//! Every container gets a score; lower scores are freed first. The score is a tier plus the
//! cost of freeing the container per vcore it gives back:
//!
//! * tier **decommission** — Spark executors when the pool runs Spark with decommissioning on:
//!   SIGPWR lets them finish their running tasks and leave; with remote shuffle nothing is lost;
//! * tier **terminate** — every other task container: SIGTERM, and its work so far is redone;
//! * tier **application master** — AMs: freeing one fails or restarts a whole application, so
//!   an AM is chosen only when all other containers together cannot free enough.
//!
//! Inside a tier the cost is a fixed price per victim (fewer victims are better) plus the work
//! at risk, which grows with the container's size and running time. The weights are
//! configurable ([`RankingWeights`]).
//!
//! [`plan_shrink`] takes containers in score order until the excess is covered, then drops
//! every chosen container that turned out not to be needed (most expensive first). For
//! containers of equal size this is the smallest number of victims.

use serde::{Deserialize, Serialize};

use crate::container::Framework;

/// How a container is asked to leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Release {
    /// SIGPWR: a Spark executor with decommissioning on finishes its tasks and exits.
    Decommission,
    /// SIGTERM: the container stops; its unfinished work is redone elsewhere.
    Terminate,
}

impl Release {
    /// The release a container of `framework` gets. SIGPWR kills every JVM that has no handler
    /// for it at once, so only Spark executors of a pool that declares decommissioning get it.
    pub const fn for_framework(framework: Framework, spark_decommission: bool) -> Release {
        match framework {
            Framework::SparkExecutor if spark_decommission => Release::Decommission,
            _ => Release::Terminate,
        }
    }
}

/// A running container the guarder may free.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Vcores YARN allocated to it.
    pub vcores: u32,
    /// Memory (MiB) YARN allocated to it.
    pub memory_mb: u64,
    /// What it runs.
    pub framework: Framework,
    /// True for an ApplicationMaster (by container number or class).
    pub application_master: bool,
    /// How it would be asked to leave.
    pub release: Release,
    /// Seconds since it started.
    pub running_seconds: u64,
}

/// Weights of the ranking. Costs are in arbitrary points; only their ratios matter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RankingWeights {
    /// Score offset of containers that leave gracefully (SIGPWR).
    pub decommission_tier: f64,
    /// Score offset of containers whose work is lost when they stop (SIGTERM).
    pub terminate_tier: f64,
    /// Score offset of ApplicationMasters; keep it far above the others.
    pub application_master_tier: f64,
    /// Price of each victim, spread over the vcores it frees.
    pub per_container: f64,
    /// Price per vcore-hour of work a terminated container loses.
    pub lost_work_per_vcore_hour: f64,
    /// Price per hour a decommissioned container has run (long-lived executors hold caches).
    pub decommission_per_hour: f64,
}

impl Default for RankingWeights {
    fn default() -> Self {
        RankingWeights {
            decommission_tier: 0.0,
            terminate_tier: 1_000.0,
            application_master_tier: 1_000_000.0,
            per_container: 10.0,
            lost_work_per_vcore_hour: 100.0,
            decommission_per_hour: 1.0,
        }
    }
}

impl RankingWeights {
    /// Score of a candidate; lower is freed first.
    pub fn score(&self, candidate: &Candidate) -> f64 {
        let hours = candidate.running_seconds as f64 / 3600.0;
        let vcores = f64::from(candidate.vcores.max(1));
        let (tier, at_risk) = if candidate.application_master {
            (self.application_master_tier, 0.0)
        } else {
            match candidate.release {
                Release::Decommission => {
                    (self.decommission_tier, self.decommission_per_hour * hours)
                }
                Release::Terminate => (
                    self.terminate_tier,
                    self.lost_work_per_vcore_hour * hours * vcores,
                ),
            }
        };
        tier + (self.per_container + at_risk) / vcores
    }
}

/// Vcores and memory to free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Excess {
    /// Vcores to free.
    pub vcores: u64,
    /// Memory (MiB) to free.
    pub memory_mb: u64,
}

impl Excess {
    /// True when nothing needs freeing.
    pub const fn is_zero(&self) -> bool {
        self.vcores == 0 && self.memory_mb == 0
    }

    const fn covered_by(&self, vcores: u64, memory_mb: u64) -> bool {
        vcores >= self.vcores && memory_mb >= self.memory_mb
    }
}

/// The containers chosen to leave, in the order to signal them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShrinkPlan {
    /// Indices into the candidate list.
    pub victims: Vec<usize>,
    /// What the victims free together.
    pub freed: Excess,
    /// False when even every candidate together cannot free the excess.
    pub covers: bool,
}

/// Candidate indices ordered from first to free to last (ties keep the input order).
pub fn rank(candidates: &[Candidate], weights: &RankingWeights) -> Vec<usize> {
    let mut scored: Vec<(f64, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(index, c)| (weights.score(c), index))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, index)| index).collect()
}

/// Chooses the containers to free so that at least `excess` is given back.
pub fn plan_shrink(
    candidates: &[Candidate],
    excess: Excess,
    weights: &RankingWeights,
) -> ShrinkPlan {
    if excess.is_zero() {
        return ShrinkPlan {
            covers: true,
            ..ShrinkPlan::default()
        };
    }
    let order = rank(candidates, weights);
    let mut chosen = Vec::new();
    let (mut vcores, mut memory) = (0u64, 0u64);
    for index in order {
        if excess.covered_by(vcores, memory) {
            break;
        }
        let c = &candidates[index];
        vcores += u64::from(c.vcores);
        memory += c.memory_mb;
        chosen.push(index);
    }
    let covers = excess.covered_by(vcores, memory);
    if covers {
        // Drop victims that are not needed, the most expensive first.
        let mut position = chosen.len();
        while position > 0 {
            position -= 1;
            let c = &candidates[chosen[position]];
            let (v, m) = (vcores - u64::from(c.vcores), memory - c.memory_mb);
            if excess.covered_by(v, m) {
                vcores = v;
                memory = m;
                chosen.remove(position);
            }
        }
    }
    ShrinkPlan {
        victims: chosen,
        freed: Excess {
            vcores,
            memory_mb: memory,
        },
        covers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn executor(vcores: u32, running_seconds: u64) -> Candidate {
        Candidate {
            vcores,
            memory_mb: u64::from(vcores) * 4096,
            framework: Framework::SparkExecutor,
            application_master: false,
            release: Release::Decommission,
            running_seconds,
        }
    }

    fn task(vcores: u32, running_seconds: u64) -> Candidate {
        Candidate {
            framework: Framework::MapReduceTask,
            release: Release::Terminate,
            ..executor(vcores, running_seconds)
        }
    }

    fn am() -> Candidate {
        Candidate {
            framework: Framework::SparkApplicationMaster,
            application_master: true,
            release: Release::Terminate,
            ..executor(1, 10)
        }
    }

    #[test]
    fn sigpwr_only_for_spark_executors_with_decommissioning() {
        assert_eq!(
            Release::for_framework(Framework::SparkExecutor, true),
            Release::Decommission
        );
        assert_eq!(
            Release::for_framework(Framework::SparkExecutor, false),
            Release::Terminate
        );
        assert_eq!(
            Release::for_framework(Framework::MapReduceTask, true),
            Release::Terminate
        );
        assert_eq!(
            Release::for_framework(Framework::FlinkTaskManager, true),
            Release::Terminate
        );
    }

    #[test]
    fn graceful_before_lossy_before_application_masters() {
        let candidates = [am(), task(1, 60), executor(2, 7200)];
        assert_eq!(rank(&candidates, &RankingWeights::default()), vec![2, 1, 0]);
    }

    #[test]
    fn younger_tasks_lose_less_work() {
        let candidates = [task(2, 3600), task(2, 60)];
        assert_eq!(rank(&candidates, &RankingWeights::default()), vec![1, 0]);
    }

    #[test]
    fn frees_nothing_when_nothing_is_asked() {
        let plan = plan_shrink(&[task(1, 1)], Excess::default(), &RankingWeights::default());
        assert!(plan.covers);
        assert!(plan.victims.is_empty());
    }

    #[test]
    fn takes_an_application_master_only_when_the_rest_cannot_cover() {
        let candidates = [am(), task(1, 60)];
        let need = Excess {
            vcores: 2,
            memory_mb: 0,
        };
        let plan = plan_shrink(&candidates, need, &RankingWeights::default());
        assert!(plan.covers);
        assert_eq!(plan.victims.len(), 2);
        let need_one = Excess {
            vcores: 1,
            memory_mb: 0,
        };
        let plan = plan_shrink(&candidates, need_one, &RankingWeights::default());
        assert_eq!(plan.victims, vec![1]);
    }

    #[test]
    fn memory_excess_counts_as_much_as_cpu() {
        let mut big_memory = task(1, 10);
        big_memory.memory_mb = 32_768;
        let candidates = [task(4, 10), big_memory];
        let need = Excess {
            vcores: 0,
            memory_mb: 20_000,
        };
        let plan = plan_shrink(&candidates, need, &RankingWeights::default());
        assert!(plan.covers);
        assert_eq!(plan.victims, vec![1]);
    }

    #[test]
    fn says_when_everything_is_not_enough() {
        let plan = plan_shrink(
            &[task(1, 1)],
            Excess {
                vcores: 5,
                memory_mb: 0,
            },
            &RankingWeights::default(),
        );
        assert!(!plan.covers);
        assert_eq!(plan.victims, vec![0]);
        assert_eq!(plan.freed.vcores, 1);
    }

    fn any_candidate() -> impl Strategy<Value = Candidate> {
        (1u32..=8, 0u64..20_000, 0u8..4).prop_map(|(vcores, running, kind)| match kind {
            0 => am(),
            1 => task(vcores, running),
            _ => executor(vcores, running),
        })
    }

    proptest! {
        #[test]
        fn frees_at_least_the_excess_when_possible(
            candidates in prop::collection::vec(any_candidate(), 0..40),
            need_vcores in 0u64..60,
            need_memory in 0u64..200_000,
        ) {
            let need = Excess { vcores: need_vcores, memory_mb: need_memory };
            let plan = plan_shrink(&candidates, need, &RankingWeights::default());
            let total_v: u64 = candidates.iter().map(|c| u64::from(c.vcores)).sum();
            let total_m: u64 = candidates.iter().map(|c| c.memory_mb).sum();
            let possible = total_v >= need_vcores && total_m >= need_memory;
            prop_assert_eq!(plan.covers, possible);
            if possible {
                prop_assert!(plan.freed.vcores >= need_vcores);
                prop_assert!(plan.freed.memory_mb >= need_memory);
            }
            let freed_v: u64 = plan.victims.iter().map(|&i| u64::from(candidates[i].vcores)).sum();
            prop_assert_eq!(freed_v, plan.freed.vcores);
        }

        #[test]
        fn never_picks_an_application_master_while_others_suffice(
            candidates in prop::collection::vec(any_candidate(), 0..40),
            need_vcores in 0u64..60,
        ) {
            let need = Excess { vcores: need_vcores, memory_mb: 0 };
            let others: u64 = candidates
                .iter()
                .filter(|c| !c.application_master)
                .map(|c| u64::from(c.vcores))
                .sum();
            let plan = plan_shrink(&candidates, need, &RankingWeights::default());
            if others >= need_vcores {
                prop_assert!(plan.victims.iter().all(|&i| !candidates[i].application_master));
            }
        }

        #[test]
        fn minimal_in_count_for_equal_sized_containers(
            count in 1usize..40,
            vcores in 1u32..=8,
            need_vcores in 1u64..100,
            ages in prop::collection::vec(0u64..20_000, 40),
        ) {
            let candidates: Vec<Candidate> =
                (0..count).map(|i| executor(vcores, ages[i])).collect();
            let need = Excess { vcores: need_vcores, memory_mb: 0 };
            let plan = plan_shrink(&candidates, need, &RankingWeights::default());
            let minimal = need_vcores.div_ceil(u64::from(vcores)).min(count as u64);
            prop_assert_eq!(plan.victims.len() as u64, minimal);
        }
    }
}
