//! The synthetic Spark and MapReduce workload.
//!
//! Applications come from one seeded stream, so every policy sees the same applications in the
//! same order; only when they run differs. Containers follow YARN's 1 vcore : 4 GiB.

use guarder::Framework;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

use super::config::{DurationModel, WorkloadModel};

/// What a container runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    /// An ApplicationMaster: lives as long as its application.
    ApplicationMaster,
    /// A Spark executor: runs tasks; leaves gracefully on SIGPWR when decommissioning is on.
    SparkExecutor,
    /// A MapReduce task: its work is lost when it is stopped before the end.
    MapReduceTask,
}

impl ContainerKind {
    /// The framework the guarder would classify it as.
    pub const fn framework(self, spark: bool) -> Framework {
        match self {
            ContainerKind::ApplicationMaster if spark => Framework::SparkApplicationMaster,
            ContainerKind::ApplicationMaster => Framework::MapReduceApplicationMaster,
            ContainerKind::SparkExecutor => Framework::SparkExecutor,
            ContainerKind::MapReduceTask => Framework::MapReduceTask,
        }
    }
}

/// A container an application asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContainerRequest {
    /// Application.
    pub app: u32,
    /// Attempt of the application the request belongs to.
    pub attempt: u32,
    /// Index among the application's original worker requests (for MapReduce recovery).
    pub task_index: u32,
    /// What it runs.
    pub kind: ContainerKind,
    /// Vcores.
    pub vcores: u32,
    /// Memory, MiB.
    pub memory_mb: u32,
    /// Seconds of work at full speed (`f64::INFINITY` for an AM).
    pub work_seconds: f64,
    /// Length of one task (Spark) or of the whole container (MapReduce).
    pub task_seconds: f64,
    /// Share of its vcores it really uses.
    pub cpu_factor: f32,
    /// Share of its memory it really uses.
    pub memory_factor: f32,
    /// Ignores SIGTERM and decommissioning (a stuck JVM).
    pub stubborn: bool,
}

/// One application: its AM and its workers.
#[derive(Clone, Debug, PartialEq)]
pub struct AppSpec {
    /// Spark or MapReduce.
    pub spark: bool,
    /// The AM runs on the pool (otherwise on the main cluster, out of the simulation).
    pub am_on_pool: bool,
    /// The AM.
    pub am: ContainerRequest,
    /// Workers, asked for once the AM is up.
    pub workers: Vec<ContainerRequest>,
}

impl AppSpec {
    /// Vcores of all workers.
    pub fn worker_vcores(&self) -> u64 {
        self.workers.iter().map(|w| u64::from(w.vcores)).sum()
    }
}

/// A log-normal duration sampler; a model with unusable numbers yields its median.
#[derive(Clone, Copy, Debug)]
struct DurationSampler {
    distribution: Option<LogNormal<f64>>,
    median: f64,
    max: f64,
}

impl DurationSampler {
    fn new(model: &DurationModel) -> Self {
        let median = if model.median_seconds.is_finite() {
            model.median_seconds.max(1.0)
        } else {
            1.0
        };
        let sigma = if model.sigma.is_finite() {
            model.sigma.clamp(0.0, 5.0)
        } else {
            0.0
        };
        DurationSampler {
            distribution: LogNormal::new(median.ln(), sigma).ok(),
            median,
            max: if model.max_seconds.is_finite() {
                model.max_seconds.max(1.0)
            } else {
                f64::MAX
            },
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        self.distribution
            .map_or(self.median, |d| d.sample(rng))
            .clamp(1.0, self.max)
    }
}

/// Draws applications.
#[derive(Debug)]
pub struct WorkloadGenerator {
    rng: ChaCha8Rng,
    model: WorkloadModel,
    memory_per_vcore_mb: u32,
    executor_runtime: DurationSampler,
    spark_task: DurationSampler,
    mapreduce_task: DurationSampler,
}

impl WorkloadGenerator {
    /// A generator drawing from `rng`.
    pub fn new(rng: ChaCha8Rng, model: WorkloadModel, memory_per_vcore_mb: u32) -> Self {
        WorkloadGenerator {
            rng,
            executor_runtime: DurationSampler::new(&model.executor_runtime),
            spark_task: DurationSampler::new(&model.spark_task),
            mapreduce_task: DurationSampler::new(&model.mapreduce_task_runtime),
            model,
            memory_per_vcore_mb,
        }
    }

    fn request(
        &mut self,
        app: u32,
        index: u32,
        kind: ContainerKind,
        vcores: u32,
    ) -> ContainerRequest {
        let (work, task, cpu_factor) = match kind {
            ContainerKind::ApplicationMaster => (f64::INFINITY, f64::INFINITY, 0.1),
            ContainerKind::SparkExecutor => {
                let work = self.executor_runtime.sample(&mut self.rng);
                let task = self.spark_task.sample(&mut self.rng).min(work);
                (work, task, self.rng.random_range(0.7..1.0))
            }
            ContainerKind::MapReduceTask => {
                let work = self.mapreduce_task.sample(&mut self.rng);
                (work, work, self.rng.random_range(0.8..1.0))
            }
        };
        ContainerRequest {
            app,
            attempt: 0,
            task_index: index,
            kind,
            vcores,
            memory_mb: vcores.saturating_mul(self.memory_per_vcore_mb),
            work_seconds: work,
            task_seconds: task,
            cpu_factor,
            memory_factor: self.rng.random_range(0.6..0.95),
            stubborn: self.rng.random::<f64>() < self.model.stubborn_share,
        }
    }

    /// The next application, numbered `app`.
    pub fn next_app(&mut self, app: u32) -> AppSpec {
        let spark = self.rng.random::<f64>() < self.model.spark_share;
        let am_on_pool = self.rng.random::<f64>() < self.model.am_on_pool_share;
        let mut am = self.request(app, u32::MAX, ContainerKind::ApplicationMaster, 1);
        am.stubborn = false;
        let workers = if spark {
            let (low, high) = self.model.spark_executors;
            let count = self.rng.random_range(low..=high.max(low));
            let sizes = self.model.executor_vcores;
            let vcores = sizes[self.rng.random_range(0..sizes.len())];
            (0..count)
                .map(|i| self.request(app, i, ContainerKind::SparkExecutor, vcores))
                .collect()
        } else {
            let (low, high) = self.model.mapreduce_tasks;
            let count = self.rng.random_range(low..=high.max(low));
            (0..count)
                .map(|i| self.request(app, i, ContainerKind::MapReduceTask, 1))
                .collect()
        };
        AppSpec {
            spark,
            am_on_pool,
            am,
            workers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::node::seeded;

    #[test]
    fn applications_follow_the_model() {
        let model = WorkloadModel::default();
        let mut generator = WorkloadGenerator::new(seeded(7, 1), model, 4096);
        let apps: Vec<AppSpec> = (0..2000).map(|i| generator.next_app(i)).collect();
        let spark = apps.iter().filter(|a| a.spark).count() as f64 / apps.len() as f64;
        assert!((0.65..0.75).contains(&spark), "spark share {spark}");
        for app in &apps {
            assert_eq!(app.am.kind, ContainerKind::ApplicationMaster);
            assert!(!app.workers.is_empty());
            for worker in &app.workers {
                assert_eq!(worker.memory_mb, worker.vcores * 4096);
                assert!(worker.task_seconds <= worker.work_seconds);
                assert!(worker.work_seconds >= 1.0);
                if app.spark {
                    assert!(model.executor_vcores.contains(&worker.vcores));
                    assert!(worker.work_seconds <= model.executor_runtime.max_seconds);
                } else {
                    assert_eq!(worker.vcores, 1);
                }
            }
        }
        let mut runtimes: Vec<f64> = apps
            .iter()
            .filter(|a| !a.spark)
            .flat_map(|a| a.workers.iter().map(|w| w.work_seconds))
            .collect();
        runtimes.sort_by(f64::total_cmp);
        let median = runtimes[runtimes.len() / 2];
        assert!((75.0..110.0).contains(&median), "MapReduce median {median}");
    }

    #[test]
    fn the_same_stream_gives_the_same_applications() {
        let model = WorkloadModel::default();
        let mut a = WorkloadGenerator::new(seeded(3, 9), model, 4096);
        let mut b = WorkloadGenerator::new(seeded(3, 9), model, 4096);
        for i in 0..50 {
            assert_eq!(a.next_app(i), b.next_app(i));
        }
    }
}
