//! YARN container identities and the framework a container runs (docs/architecture.md, contract 5).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A parsed YARN container id such as `container_e17_1410901177871_0001_01_000005`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId {
    /// RM restart epoch (`e17`), absent on clusters that never restarted with work preserving.
    pub epoch: Option<u32>,
    /// RM start time in milliseconds, the first part of the application id.
    pub cluster_timestamp: u64,
    /// Application sequence number.
    pub application: u32,
    /// Application attempt number.
    pub attempt: u32,
    /// Container sequence number within the attempt; 1 is the ApplicationMaster.
    pub container: u64,
    digits: Widths,
}

/// Digit counts of the original text, so that formatting gives back the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Widths {
    application: u8,
    attempt: u8,
    container: u8,
}

/// Why a string is not a container id.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "{text:?} is not a YARN container id (container_[e<epoch>_]<clusterTs>_<app>_<attempt>_<container>): {reason}"
)]
pub struct ContainerIdError {
    text: String,
    reason: &'static str,
}

impl ContainerId {
    /// True for the first container of an attempt, which YARN always gives to the
    /// ApplicationMaster.
    pub const fn is_application_master(&self) -> bool {
        self.container == 1
    }

    /// The application id (`application_<clusterTs>_<app>`).
    pub fn application_id(&self) -> String {
        format!(
            "application_{}_{:0width$}",
            self.cluster_timestamp,
            self.application,
            width = usize::from(self.digits.application)
        )
    }
}

fn digits_field(
    text: &str,
    part: Option<&str>,
    min_digits: usize,
    what: &'static str,
) -> Result<(u64, u8), ContainerIdError> {
    let err = |reason| ContainerIdError {
        text: text.to_owned(),
        reason,
    };
    let part = part.ok_or_else(|| err(what))?;
    if part.len() < min_digits || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(what));
    }
    let value = part.parse::<u64>().map_err(|_| err(what))?;
    let width = u8::try_from(part.len()).map_err(|_| err(what))?;
    Ok((value, width))
}

impl FromStr for ContainerId {
    type Err = ContainerIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| ContainerIdError {
            text: text.to_owned(),
            reason,
        };
        let rest = text
            .strip_prefix("container_")
            .ok_or_else(|| err("missing the container_ prefix"))?;
        let mut parts = rest.split('_').peekable();
        let epoch = match parts.peek() {
            Some(first) if first.starts_with('e') => {
                let digits = &first[1..];
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("epoch must be e followed by digits"));
                }
                let epoch = digits
                    .parse::<u32>()
                    .map_err(|_| err("epoch out of range"))?;
                parts.next();
                Some(epoch)
            }
            _ => None,
        };
        let (cluster_timestamp, _) = digits_field(text, parts.next(), 1, "bad cluster timestamp")?;
        let (application, app_width) =
            digits_field(text, parts.next(), 4, "application number needs 4+ digits")?;
        let (attempt, attempt_width) =
            digits_field(text, parts.next(), 2, "attempt number needs 2+ digits")?;
        let (container, container_width) =
            digits_field(text, parts.next(), 6, "container number needs 6+ digits")?;
        if parts.next().is_some() {
            return Err(err("unexpected trailing part"));
        }
        Ok(ContainerId {
            epoch,
            cluster_timestamp,
            application: u32::try_from(application).map_err(|_| err("application out of range"))?,
            attempt: u32::try_from(attempt).map_err(|_| err("attempt out of range"))?,
            container,
            digits: Widths {
                application: app_width,
                attempt: attempt_width,
                container: container_width,
            },
        })
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("container_")?;
        if let Some(epoch) = self.epoch {
            write!(f, "e{epoch:02}_")?;
        }
        write!(
            f,
            "{}_{:0aw$}_{:0tw$}_{:0cw$}",
            self.cluster_timestamp,
            self.application,
            self.attempt,
            self.container,
            aw = usize::from(self.digits.application),
            tw = usize::from(self.digits.attempt),
            cw = usize::from(self.digits.container),
        )
    }
}

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
    #[case("container_1410901177871_0001_01_000005", None, 1, 5)]
    #[case("container_e17_1410901177871_0001_01_000001", Some(17), 1, 1)]
    #[case(
        "container_e03_1700000000000_12345_02_1000001",
        Some(3),
        12345,
        1_000_001
    )]
    fn parses_ids_with_and_without_epoch(
        #[case] text: &str,
        #[case] epoch: Option<u32>,
        #[case] application: u32,
        #[case] container: u64,
    ) {
        let id: ContainerId = text.parse().unwrap();
        assert_eq!(id.epoch, epoch);
        assert_eq!(id.application, application);
        assert_eq!(id.container, container);
        assert_eq!(id.to_string(), text);
        assert_eq!(id.is_application_master(), container == 1);
    }

    #[test]
    fn application_id_keeps_zero_padding() {
        let id: ContainerId = "container_e17_1410901177871_0001_01_000005"
            .parse()
            .unwrap();
        assert_eq!(id.application_id(), "application_1410901177871_0001");
    }

    #[rstest]
    #[case("")]
    #[case("container_")]
    #[case("application_1410901177871_0001")]
    #[case("container_1410901177871_001_01_000005")]
    #[case("container_1410901177871_0001_1_000005")]
    #[case("container_1410901177871_0001_01_00005")]
    #[case("container_ex_1410901177871_0001_01_000005")]
    #[case("container_1410901177871_0001_01_000005_7")]
    #[case("container_1410901177871_0001_01_0000a5")]
    fn refuses_what_is_not_a_container_id(#[case] text: &str) {
        let err = text.parse::<ContainerId>().unwrap_err();
        assert!(err.to_string().contains("is not a YARN container id"));
    }

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
