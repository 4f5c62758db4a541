//! `elastic-yarn-operator doctor`: checks a cluster and its ResourceManagers the way the operator
//! will use them, before the operator finds out the hard way, and prints a checklist with what to
//! fix. Nothing is written: every check reads.
//!
//! Checks come in two scopes: the installation (CRDs, the operator's RBAC, Koordinator) and each
//! pool (its spec, the Nodes it selects and their batch resources, Koordinator's NodeSLO against
//! the exporter, the exporter itself, the RM, its node labels and Hadoop version, Kerberos,
//! static addresses, Fluid datasets). A failed check is a blocker: the exit code is 1.

mod evaluate;
mod installation;
mod pools;
mod rbac;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

pub use evaluate::{
    ExporterView, LabelView, NodeSloView, evaluate_exporters, evaluate_hadoop_version,
    evaluate_node_label, evaluate_thresholds,
};
pub use pools::node_slo_api;
pub use rbac::{OPERATOR_PERMISSIONS, Permission};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As the operator needs it.
    Pass,
    /// Works, but something will hurt later (or could not be checked).
    Warn,
    /// A blocker: the operator will fail or misbehave.
    Fail,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `installation` or the pool as `namespace/name`.
    pub scope: String,
    /// Stable name of the check (`crds`, `rbac`, `nodeSlo`, `resourceManager`...).
    pub check: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What a check found, before it is given its scope and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it.
    pub fix: Option<String>,
}

impl Finding {
    /// A passed check.
    pub fn pass(detail: impl Into<String>) -> Finding {
        Finding {
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A warning with its fix.
    pub fn warn(detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A blocker with its fix.
    pub fn fail(detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The checklist.
    pub checks: Vec<Check>,
    /// Failed checks.
    pub blockers: usize,
    /// Warnings.
    pub warnings: usize,
}

impl Report {
    /// Adds a finding under `scope` and `check`.
    pub fn add(&mut self, scope: &str, check: &'static str, finding: Finding) {
        match finding.status {
            Status::Fail => self.blockers += 1,
            Status::Warn => self.warnings += 1,
            Status::Pass => {}
        }
        self.checks.push(Check {
            scope: scope.to_owned(),
            check,
            status: finding.status,
            detail: finding.detail,
            fix: finding.fix,
        });
    }

    /// The checklist as text, one line per check and its fix below.
    pub fn render_text(&self) -> String {
        let mut text = String::new();
        let mut scope = "";
        for check in &self.checks {
            if check.scope != scope {
                scope = &check.scope;
                let _ = writeln!(text, "{scope}");
            }
            let _ = writeln!(
                text,
                "  [{}] {}: {}",
                check.status.mark(),
                check.check,
                check.detail
            );
            if let Some(fix) = &check.fix {
                let _ = writeln!(text, "         fix: {fix}");
            }
        }
        let _ = writeln!(
            text,
            "{} check(s): {} blocker(s), {} warning(s)",
            self.checks.len(),
            self.blockers,
            self.warnings
        );
        text
    }

    /// 0 without blockers, 1 with.
    pub fn exit_code(&self) -> ExitCode {
        if self.blockers == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// `elastic-yarn-operator doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// A pool to check, as NAMESPACE/NAME (repeat); default: every ElasticNodePool.
    #[arg(long = "pool")]
    pub pools: Vec<String>,
    /// The operator's ServiceAccount as NAMESPACE/NAME: its permissions are checked with
    /// SubjectAccessReviews (the caller needs `create` on them). Without it, the caller's own
    /// permissions are checked, as in the chart's `helm test`, which runs as that account.
    #[arg(long)]
    pub service_account: Option<String>,
    /// Namespace of the operator's leader Lease (its own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "elastic-yarn")]
    pub lease_namespace: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Seconds one HTTP exchange (RM, exporter) may take.
    #[arg(long, default_value_t = 10)]
    pub timeout_seconds: u64,
    /// PEM bundle of the CAs that sign `https://` RMs' certificates.
    #[arg(long, env = "RM_CA_FILE")]
    pub rm_ca_file: Option<PathBuf>,
    /// Client keytab file Kerberos pools' keytabs are merged into to reach their RMs (as the
    /// operator's `KRB5_CLIENT_KTNAME`); without it their RMs are not called.
    #[arg(long, env = "KRB5_CLIENT_KTNAME")]
    pub client_keytab: Option<PathBuf>,
}

impl DoctorArgs {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.max(1))
    }
}

/// Runs every check against the cluster of the current kubeconfig (or in-cluster account).
pub fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(|error| {
            anyhow::anyhow!(
                "cannot reach a Kubernetes API server (kubeconfig or in-cluster): {error}"
            )
        })?;
        let report = diagnose(&client, args).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.render_text());
        }
        Ok(report.exit_code())
    })
}

/// Every check, as one report.
pub async fn diagnose(client: &kube::Client, args: &DoctorArgs) -> anyhow::Result<Report> {
    let mut report = Report::default();
    installation::check(client, args, &mut report).await;
    pools::check(client, args, &mut report).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blockers_and_warnings_are_counted_and_set_the_exit_code() {
        let mut report = Report::default();
        report.add("installation", "crds", Finding::pass("3 CRDs"));
        assert_eq!(report.exit_code(), ExitCode::SUCCESS);
        report.add(
            "yarn/pool",
            "nodeSlo",
            Finding::warn("no NodeSLO", "create one"),
        );
        assert_eq!(report.exit_code(), ExitCode::SUCCESS);
        report.add(
            "yarn/pool",
            "nodes",
            Finding::fail("none selected", "label them"),
        );
        assert_eq!((report.blockers, report.warnings), (1, 1));
        assert_eq!(report.exit_code(), ExitCode::FAILURE);
        let text = report.render_text();
        assert!(
            text.contains("installation\n  [ok  ] crds: 3 CRDs"),
            "{text}"
        );
        assert!(
            text.contains("yarn/pool\n  [WARN] nodeSlo: no NodeSLO\n         fix: create one"),
            "{text}"
        );
        assert!(
            text.ends_with("3 check(s): 1 blocker(s), 1 warning(s)\n"),
            "{text}"
        );
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["checks"][2]["status"], "fail");
        assert_eq!(json["checks"][0].get("fix"), None);
        assert_eq!(json["blockers"], 1);
    }
}
