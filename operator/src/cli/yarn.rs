//! `elastic-yarn-operator yarn ...`: the RM client from the command line, for admins who debug
//! what the operator sees and does.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use yarn_types::ContainerId;

use yarn_rm::{
    KerberosEnvironment, NodeId, NodeReport, NodeState, OverCommitTimeout, ResourceManager,
    Resources, RestResourceManager, RestSettings, RetryPolicy, RmAuth, RmError, Secret,
    SignalCommand, model::WireResources,
};

/// Options shared by every `yarn` command.
#[derive(Debug, Args)]
pub struct YarnArgs {
    /// ResourceManager web address (`http://host:8088`); repeat, or separate with commas, for
    /// an HA pair.
    #[arg(
        long = "rm",
        env = "ELASTIC_YARN_RM",
        value_delimiter = ',',
        required = true
    )]
    pub rm: Vec<String>,
    /// YARN user for simple authentication (`user.name`).
    #[arg(long, default_value = "yarn", conflicts_with_all = ["keytab", "delegation_token_file"])]
    pub user: String,
    /// Keytab of the Kerberos principal (SPNEGO authentication).
    #[arg(long, requires = "principal")]
    pub keytab: Option<PathBuf>,
    /// Kerberos principal, e.g. `elastic-yarn@EXAMPLE.COM`.
    #[arg(long, requires = "keytab")]
    pub principal: Option<String>,
    /// krb5.conf to use instead of the system's.
    #[arg(long, requires = "keytab")]
    pub krb5_config: Option<PathBuf>,
    /// SPNEGO service as `service@host` when not `HTTP@<RM host>` (an RM behind a proxy).
    #[arg(long, requires = "keytab")]
    pub spnego_service: Option<String>,
    /// PEM bundle of the CAs that sign the RMs' certificates, for `https://` RM addresses
    /// (default: the platform's trust store).
    #[arg(long, env = "RM_CA_FILE")]
    pub rm_ca_file: Option<PathBuf>,
    /// File holding an RM delegation token.
    #[arg(long, conflicts_with = "keytab")]
    pub delegation_token_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value = "table", global = true)]
    pub output: OutputFormat,
    /// Seconds one HTTP exchange may take.
    #[arg(long, default_value_t = 10, global = true)]
    pub timeout_seconds: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: YarnCommand,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// The `yarn` commands.
#[derive(Debug, Subcommand)]
pub enum YarnCommand {
    /// Every RM with its HA state, and which one is active.
    Info,
    /// List NodeManagers.
    Nodes {
        /// Only nodes in these states (RUNNING, UNHEALTHY, LOST, ...), comma-separated.
        #[arg(long, value_delimiter = ',')]
        state: Vec<NodeState>,
    },
    /// Show one NodeManager.
    Node {
        /// `host:port`.
        id: NodeId,
    },
    /// Set a NodeManager's YARN capacity; the change is read back to confirm it.
    Resize {
        /// `host:port`.
        id: NodeId,
        /// Virtual cores.
        #[arg(long)]
        vcores: u32,
        /// Memory, MB.
        #[arg(long)]
        memory_mb: u64,
        /// Let the RM preempt containers still over the new capacity after this many seconds
        /// (default: never; the guarder drains them).
        #[arg(long)]
        over_commit_timeout_seconds: Option<u32>,
    },
    /// Cluster node labels.
    Label {
        /// What to do with labels.
        #[command(subcommand)]
        command: LabelCommand,
    },
    /// Signal a container through its NodeManager.
    Signal {
        /// Container id.
        container: ContainerId,
        /// GRACEFUL_SHUTDOWN, FORCEFUL_SHUTDOWN or OUTPUT_THREAD_DUMP.
        command: SignalCommand,
    },
}

/// `yarn label ...`.
#[derive(Debug, Subcommand)]
pub enum LabelCommand {
    /// List the cluster's node labels.
    List,
    /// Add a non-exclusive cluster label unless it exists.
    Ensure {
        /// Label name.
        name: String,
    },
    /// Replace a node's labels (none: remove them all).
    Set {
        /// `host:port`.
        id: NodeId,
        /// Labels.
        labels: Vec<String>,
    },
}

/// Runs a `yarn` command. With `--keytab`, the process first re-executes itself in the
/// Kerberos environment (see [`KerberosEnvironment`]).
pub fn run(args: YarnArgs) -> anyhow::Result<ExitCode> {
    if let (Some(keytab), Some(_)) = (&args.keytab, &args.principal) {
        let environment = KerberosEnvironment {
            client_keytab: keytab.clone(),
            config: args.krb5_config.clone(),
            ticket_caches: None,
        };
        if !keytab.is_file() {
            anyhow::bail!("keytab {} is not a readable file", keytab.display());
        }
        if !environment.is_current() {
            let program = std::env::current_exe().context("finding this program")?;
            let error = std::process::Command::new(program)
                .args(std::env::args_os().skip(1))
                .envs(environment.variables())
                .exec();
            return Err(error).context("re-executing with the Kerberos environment");
        }
    }
    let auth = auth(&args)?;
    let mut settings = RestSettings::new(args.rm.clone(), auth);
    settings.ca_file = args.rm_ca_file.clone();
    settings.request_timeout = Duration::from_secs(args.timeout_seconds.max(1));
    // An admin at a terminal wants the answer or the error now, not after backoff.
    settings.retry = RetryPolicy {
        retries: 1,
        ..RetryPolicy::default()
    };
    let client = RestResourceManager::new(settings).map_err(describe)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let text = runtime.block_on(execute(&client, &args))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn auth(args: &YarnArgs) -> anyhow::Result<RmAuth> {
    if let Some(principal) = &args.principal {
        return Ok(RmAuth::Kerberos {
            principal: principal.clone(),
            service: args.spnego_service.clone(),
        });
    }
    if let Some(path) = &args.delegation_token_file {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("reading the delegation token {}", path.display()))?;
        return Ok(RmAuth::DelegationToken {
            token: Secret::new(token.trim()),
        });
    }
    Ok(RmAuth::Simple {
        user: args.user.clone(),
    })
}

fn describe(error: RmError) -> anyhow::Error {
    anyhow::anyhow!("{error} [{}]", error.category())
}

async fn execute(client: &RestResourceManager, args: &YarnArgs) -> anyhow::Result<String> {
    let json = args.output == OutputFormat::Json;
    match &args.command {
        YarnCommand::Info => {
            let answers = client.every_rm().await;
            let rows: Vec<RmRow> = answers
                .into_iter()
                .map(|(address, answer)| match answer {
                    Ok(info) => RmRow {
                        address,
                        ha_state: format!("{:?}", info.ha_state).to_uppercase(),
                        version: info.resource_manager_version,
                        error: None,
                    },
                    Err(error) => RmRow {
                        address,
                        ha_state: "-".to_owned(),
                        version: "-".to_owned(),
                        error: Some(format!("{error} [{}]", error.category())),
                    },
                })
                .collect();
            rows_output(
                &rows,
                json,
                &["RM", "HA STATE", "VERSION", "ERROR"],
                |row| {
                    vec![
                        row.address.clone(),
                        row.ha_state.clone(),
                        row.version.clone(),
                        row.error.clone().unwrap_or_default(),
                    ]
                },
            )
        }
        YarnCommand::Nodes { state } => {
            let nodes = client.nodes(state).await.map_err(describe)?;
            nodes_output(&nodes, json)
        }
        YarnCommand::Node { id } => {
            let node = client.node(id).await.map_err(describe)?;
            if json {
                // One node, one object (scripts read `.capacity`, not `.[0].capacity`).
                return to_json(&NodeRow::from(&node));
            }
            nodes_output(std::slice::from_ref(&node), json)
        }
        YarnCommand::Resize {
            id,
            vcores,
            memory_mb,
            over_commit_timeout_seconds,
        } => {
            let capacity = Resources {
                memory_mb: *memory_mb,
                vcores: *vcores,
            };
            let over_commit = over_commit_timeout_seconds
                .map_or(OverCommitTimeout::Never, OverCommitTimeout::Seconds);
            // The RM's answer may already show the new capacity: the old one is read first.
            let previous = client.node(id).await.map_err(describe)?.capacity();
            let outcome = client
                .resize(id, capacity, over_commit)
                .await
                .map_err(describe)?;
            if json {
                return to_json(&serde_json::json!({
                    "node": outcome.node.to_string(),
                    "previous": WireResources::from(previous),
                    "confirmed": WireResources::from(outcome.confirmed),
                    "reads": outcome.reads,
                }));
            }
            Ok(format!(
                "{}: {} -> {} (confirmed after {} read{})\n",
                outcome.node,
                previous,
                outcome.confirmed,
                outcome.reads,
                if outcome.reads == 1 { "" } else { "s" }
            ))
        }
        YarnCommand::Label { command } => label(client, command, json).await,
        YarnCommand::Signal { container, command } => {
            client
                .signal_container(container, *command)
                .await
                .map_err(describe)?;
            if json {
                return to_json(&serde_json::json!({
                    "container": container.to_string(),
                    "command": command.as_str(),
                }));
            }
            Ok(format!("sent {} to {container}\n", command.as_str()))
        }
    }
}

async fn label(
    client: &RestResourceManager,
    command: &LabelCommand,
    json: bool,
) -> anyhow::Result<String> {
    match command {
        LabelCommand::List => {
            let labels = client.node_labels().await.map_err(describe)?;
            rows_output(&labels, json, &["LABEL", "EXCLUSIVE"], |label| {
                vec![label.name.clone(), label.exclusivity.to_string()]
            })
        }
        LabelCommand::Ensure { name } => {
            let outcome = client.ensure_node_label(name).await.map_err(describe)?;
            let word = match outcome {
                yarn_rm::LabelOutcome::Created => "created",
                yarn_rm::LabelOutcome::AlreadyPresent => "already present",
            };
            if json {
                return to_json(&serde_json::json!({"label": name, "outcome": word}));
            }
            Ok(format!("label {name}: {word} (non-exclusive)\n"))
        }
        LabelCommand::Set { id, labels } => {
            client.set_node_labels(id, labels).await.map_err(describe)?;
            if json {
                return to_json(&serde_json::json!({"node": id.to_string(), "labels": labels}));
            }
            Ok(format!("{id}: labels [{}]\n", labels.join(",")))
        }
    }
}

/// One RM in `yarn info`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RmRow {
    address: String,
    ha_state: String,
    version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One node in `yarn nodes` / `yarn node`, normalized across Hadoop versions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeRow {
    id: String,
    state: NodeState,
    capacity: WireResources,
    used: WireResources,
    containers: i64,
    labels: Vec<String>,
    http_address: String,
    health_report: String,
}

impl From<&NodeReport> for NodeRow {
    fn from(node: &NodeReport) -> NodeRow {
        NodeRow {
            id: node.id.to_string(),
            state: node.state,
            capacity: node.capacity().into(),
            used: node.used().into(),
            containers: node.num_containers,
            labels: node.node_labels.clone(),
            http_address: node.node_http_address.clone(),
            health_report: node.health_report.clone(),
        }
    }
}

fn nodes_output(nodes: &[NodeReport], json: bool) -> anyhow::Result<String> {
    let rows: Vec<NodeRow> = nodes.iter().map(NodeRow::from).collect();
    let headers = [
        "NODE",
        "STATE",
        "VCORES USED/TOTAL",
        "MEMORY MB USED/TOTAL",
        "CONTAINERS",
        "LABELS",
    ];
    rows_output(&rows, json, &headers, |row| {
        vec![
            row.id.clone(),
            row.state.to_string(),
            format!("{}/{}", row.used.vcores, row.capacity.vcores),
            format!("{}/{}", row.used.memory_mb, row.capacity.memory_mb),
            row.containers.to_string(),
            row.labels.join(","),
        ]
    })
}

/// Rows as JSON, or as a table of the given cells.
fn rows_output<T: Serialize>(
    rows: &[T],
    json: bool,
    headers: &[&str],
    cells: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<String> {
    if json {
        return to_json(&rows);
    }
    let table: Vec<Vec<String>> = rows.iter().map(cells).collect();
    Ok(render_table(headers, &table))
}

fn to_json(value: &impl Serialize) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("writing JSON")?;
    text.push('\n');
    Ok(text)
}

/// Left-aligned columns separated by two spaces, like kubectl.
fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<width$}  ");
            }
        }
        text.push_str(out.trim_end());
        text.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let text = render_table(
            &["NODE", "STATE"],
            &[
                vec!["nm-1:45454".to_owned(), "RUNNING".to_owned()],
                vec!["a:1".to_owned(), "LOST".to_owned()],
            ],
        );
        assert_eq!(
            text,
            "NODE        STATE\nnm-1:45454  RUNNING\na:1         LOST\n"
        );
    }
}
