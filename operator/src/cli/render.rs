//! `elastic-yarn-operator render`: the children the operator would create for a pool on some
//! nodes, printed as YAML for an admin to review (the pure build step, no cluster needed).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;

use kube::ResourceExt;
use staticip::claim::Choice;
use staticip::crd::{StaticIP, StaticIPPool, StaticIPStatus};

use crate::build::{self, BuildSettings, NodeManagerSlot, PoolRef, StaticAddress};
use crate::crd::ElasticNodePool;
use crate::placement;
use crate::validate::validate;

/// UID shown in owner references of rendered objects (the API server assigns the real one).
const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";
/// Token shown in the rendered Secret (the operator makes a random one, once).
const PLACEHOLDER_TOKEN: &str = "random-token-made-once-by-the-operator";

/// Options of `render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// YAML file with one ElasticNodePool.
    #[arg(long)]
    pool: PathBuf,
    /// YAML file with a Kubernetes Node (repeat for several; `kubectl get node X -o yaml`).
    #[arg(long = "node", required = true)]
    nodes: Vec<PathBuf>,
    /// Guarder image used when the pool names none.
    #[arg(long)]
    guarder_image: Option<String>,
    /// YAML file with the StaticIPPool the pool names: pods get the address each NM would
    /// claim from a fresh pool (CNI annotation, host name, keytab Secret).
    #[arg(long)]
    static_ip_pool: Option<PathBuf>,
}

/// The address each node's NM would claim from a fresh `static_pool` (every address ready and
/// free, the keytab Secret named as the controller names it).
fn fresh_addresses(
    static_pool: &StaticIPPool,
    pool_ref: &PoolRef,
    nodes: &[String],
) -> anyhow::Result<Vec<Option<StaticAddress>>> {
    let name = static_pool.name_any();
    let planned = staticip::addresses::plan(&name, &static_pool.spec)
        .with_context(|| format!("StaticIPPool {name}"))?;
    let mut addresses: Vec<StaticIP> = planned
        .iter()
        .map(|p| {
            let mut address = staticip::build::static_ip(static_pool, p);
            let keytab = address.spec.principal.is_some();
            address.status = Some(StaticIPStatus {
                ready: true,
                keytab_ready: keytab,
                keytab_secret: keytab.then(|| staticip::build::keytab_secret_name(&address)),
                ..StaticIPStatus::default()
            });
            address
        })
        .collect();
    let mut chosen = Vec::with_capacity(nodes.len());
    for node in nodes {
        let identity = crate::controller::addresses::identity(pool_ref, node);
        chosen.push(match staticip::claim::choose(&addresses, &identity) {
            Choice::Take(index) | Choice::Held(index) => {
                let address = &mut addresses[index];
                address
                    .status
                    .get_or_insert_with(StaticIPStatus::default)
                    .holder = Some(staticip::crd::Holder {
                    identity,
                    namespace: pool_ref.namespace.clone(),
                    pod: build::names::node_manager_pod_name(&pool_ref.name, node),
                    uid: None,
                });
                crate::controller::addresses::static_address(static_pool, address)
            }
            Choice::Exhausted { .. } => None,
        });
    }
    Ok(chosen)
}

fn read_yaml<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    what: &str,
) -> anyhow::Result<T> {
    let text = super::manifest::read(path)?;
    serde_yaml::from_str(&text).with_context(|| format!("{} is not {what}", path.display()))
}

/// Runs `render`, writing YAML documents to stdout and problems to stderr.
pub fn run(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    let mut pool: ElasticNodePool = read_yaml(&args.pool, "an ElasticNodePool")?;
    if let Err(errors) = validate(&pool.spec, Timestamp::now()) {
        eprintln!("{}: {errors}", args.pool.display());
        return Ok(ExitCode::FAILURE);
    }
    pool.metadata
        .namespace
        .get_or_insert_with(|| "default".to_owned());
    pool.metadata
        .uid
        .get_or_insert_with(|| PLACEHOLDER_UID.to_owned());
    let pool_ref = PoolRef::of(&pool).context("the pool needs metadata.name")?;
    let settings = args
        .guarder_image
        .clone()
        .map_or_else(BuildSettings::default, |guarder_image| BuildSettings {
            guarder_image,
        });
    let mut documents = vec![serde_yaml::to_string(&build::guarder_token_secret(
        &pool_ref,
        PLACEHOLDER_TOKEN,
    ))?];
    if let Some(config) =
        build::spark::spark_defaults(&pool_ref, &pool.spec, &pool.spec.node_manager.node_label)
    {
        documents.push(serde_yaml::to_string(&config)?);
    }
    let mut ineligible = 0;
    let mut eligible = Vec::new();
    for path in &args.nodes {
        let node: Node = read_yaml(path, "a Kubernetes Node")?;
        let name = node
            .metadata
            .name
            .clone()
            .with_context(|| format!("{}: the Node has no metadata.name", path.display()))?;
        if let Err(reason) = placement::check(&node, &pool.spec.placement) {
            ineligible += 1;
            eprintln!(
                "node {name} is not eligible for pool {}: {reason:?}",
                pool_ref.name
            );
            continue;
        }
        eligible.push(name);
    }
    let addresses = match (&pool.spec.static_ip, &args.static_ip_pool) {
        (Some(_), Some(path)) => {
            let static_pool: StaticIPPool = read_yaml(path, "a StaticIPPool")?;
            fresh_addresses(&static_pool, &pool_ref, &eligible)?
        }
        (Some(reference), None) => {
            eprintln!(
                "pool {} claims addresses from StaticIPPool {}: pass --static-ip-pool to see them; \
                 shown without",
                pool_ref.name, reference.pool
            );
            vec![None; eligible.len()]
        }
        (None, _) => vec![None; eligible.len()],
    };
    for (name, static_address) in eligible.into_iter().zip(addresses) {
        let slot = NodeManagerSlot {
            node: name,
            static_address,
            drain_deadline: None,
        };
        let pod = build::node_manager_pod(&pool_ref, &pool.spec, &settings, &slot);
        documents.push(serde_yaml::to_string(&pod)?);
    }
    let mut out = std::io::stdout().lock();
    for document in documents {
        writeln!(out, "---\n{}", document.trim_end())?;
    }
    Ok(if ineligible == args.nodes.len() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
