//! The framework a YARN container runs (docs/architecture.md, contract 5); container ids are
//! [`yarn_types::ContainerId`].

pub use yarn_types::container::{ContainerId, ContainerIdError};

use serde::{Deserialize, Serialize};

/// What a YARN container runs, as far as freeing it is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Framework {
    /// A Spark executor (`YarnCoarseGrainedExecutorBackend`).
    SparkExecutor,
    /// A Spark ApplicationMaster (cluster mode) or ExecutorLauncher (client mode).
    SparkApplicationMaster,
    /// A MapReduce ApplicationMaster.
    MapReduceApplicationMaster,
    /// A MapReduce map or reduce task (`YarnChild`).
    MapReduceTask,
    /// A Flink JobManager running as the YARN ApplicationMaster.
    FlinkJobManager,
    /// A Flink TaskManager.
    FlinkTaskManager,
    /// A Tez DAG ApplicationMaster.
    TezApplicationMaster,
    /// A Tez task container (`TezChild`).
    TezTask,
    /// Anything else (distributed shell, custom AMs...).
    Unknown,
}

const CLASSES: &[(&str, Framework)] = &[
    (
        "org.apache.spark.executor.YarnCoarseGrainedExecutorBackend",
        Framework::SparkExecutor,
    ),
    // Spark 2.x launched executors on YARN with the generic backend.
    (
        "org.apache.spark.executor.CoarseGrainedExecutorBackend",
        Framework::SparkExecutor,
    ),
    (
        "org.apache.spark.deploy.yarn.ApplicationMaster",
        Framework::SparkApplicationMaster,
    ),
    (
        "org.apache.spark.deploy.yarn.ExecutorLauncher",
        Framework::SparkApplicationMaster,
    ),
    (
        "org.apache.hadoop.mapreduce.v2.app.MRAppMaster",
        Framework::MapReduceApplicationMaster,
    ),
    (
        "org.apache.hadoop.mapred.YarnChild",
        Framework::MapReduceTask,
    ),
    (
        "org.apache.flink.yarn.entrypoint.YarnJobClusterEntrypoint",
        Framework::FlinkJobManager,
    ),
    (
        "org.apache.flink.yarn.entrypoint.YarnSessionClusterEntrypoint",
        Framework::FlinkJobManager,
    ),
    (
        "org.apache.flink.yarn.entrypoint.YarnApplicationClusterEntryPoint",
        Framework::FlinkJobManager,
    ),
    (
        "org.apache.flink.yarn.YarnTaskExecutorRunner",
        Framework::FlinkTaskManager,
    ),
    (
        "org.apache.tez.dag.app.DAGAppMaster",
        Framework::TezApplicationMaster,
    ),
    ("org.apache.tez.runtime.task.TezChild", Framework::TezTask),
];

impl Framework {
    /// Classifies a process from its command line (`/proc/<pid>/cmdline`, NUL- or
    /// space-separated). Only a whole argument naming the main class counts, so a class name
    /// inside a `-D` property does not.
    pub fn from_command_line(cmdline: &str) -> Framework {
        cmdline
            .split(|c: char| c == '\0' || c.is_whitespace())
            .find_map(|arg| {
                CLASSES
                    .iter()
                    .find(|(class, _)| *class == arg)
                    .map(|(_, framework)| *framework)
            })
            .unwrap_or(Framework::Unknown)
    }

    /// True for the ApplicationMaster classes.
    pub const fn is_application_master(self) -> bool {
        matches!(
            self,
            Framework::SparkApplicationMaster
                | Framework::MapReduceApplicationMaster
                | Framework::FlinkJobManager
                | Framework::TezApplicationMaster
        )
    }

    /// Stable label for metrics and status.
    pub const fn label(self) -> &'static str {
        match self {
            Framework::SparkExecutor => "spark_executor",
            Framework::SparkApplicationMaster => "spark_am",
            Framework::MapReduceApplicationMaster => "mapreduce_am",
            Framework::MapReduceTask => "mapreduce_task",
            Framework::FlinkJobManager => "flink_jobmanager",
            Framework::FlinkTaskManager => "flink_taskmanager",
            Framework::TezApplicationMaster => "tez_am",
            Framework::TezTask => "tez_task",
            Framework::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "/usr/lib/jvm/java-17/bin/java\0-server\0-Xmx4g\0org.apache.spark.executor.YarnCoarseGrainedExecutorBackend\0--driver-url\0spark://x",
        Framework::SparkExecutor
    )]
    #[case(
        "bash -c /opt/java/bin/java -Xmx1g org.apache.spark.deploy.yarn.ExecutorLauncher --arg x",
        Framework::SparkApplicationMaster
    )]
    #[case(
        "java\0org.apache.hadoop.mapreduce.v2.app.MRAppMaster",
        Framework::MapReduceApplicationMaster
    )]
    #[case(
        "java\0-Djava.net.preferIPv4Stack=true\0org.apache.hadoop.mapred.YarnChild\x0010.0.0.1\x0045678",
        Framework::MapReduceTask
    )]
    #[case(
        "java org.apache.flink.yarn.YarnTaskExecutorRunner -D x",
        Framework::FlinkTaskManager
    )]
    #[case("java org.apache.tez.runtime.task.TezChild", Framework::TezTask)]
    #[case(
        "java -Dmain=org.apache.hadoop.mapred.YarnChild com.example.Main",
        Framework::Unknown
    )]
    #[case("sleep 1000", Framework::Unknown)]
    fn classifies_frameworks_from_the_command_line(
        #[case] cmdline: &str,
        #[case] expected: Framework,
    ) {
        assert_eq!(Framework::from_command_line(cmdline), expected);
    }

    #[test]
    fn application_master_classes_are_known() {
        assert!(Framework::SparkApplicationMaster.is_application_master());
        assert!(Framework::TezApplicationMaster.is_application_master());
        assert!(!Framework::SparkExecutor.is_application_master());
        assert!(!Framework::Unknown.is_application_master());
    }
}
