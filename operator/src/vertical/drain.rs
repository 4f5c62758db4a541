//! Draining an NM: capacity zero on the RM (no new containers), then a zero target for the
//! guarder with the removal time as deadline; when the pod goes, the NM's YARN label goes too.
//!
//! YARN's own graceful decommission (exclude file and `refreshNodes -g` over the admin RPC) is a
//! second strategy that could slot in here; the REST API has no call for it
//! (docs/architecture.md, contract 3).

use yarn_types::TargetRequest;

use super::NodeManagerEndpoints;
use super::guarder_client::{GuarderClient, GuarderError};
use yarn_rm::{NodeId, OverCommitTimeout, ResourceManager, Resources, RmError};

/// Why a drain step failed.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The RM refused or could not be reached.
    #[error("{0}")]
    ResourceManager(#[from] RmError),
    /// The guarder refused or could not be reached.
    #[error("{0}")]
    Guarder(#[from] GuarderError),
}

impl DrainError {
    /// Short stable category.
    pub fn category(&self) -> &'static str {
        match self {
            DrainError::ResourceManager(error) => error.category(),
            DrainError::Guarder(error) => error.category(),
        }
    }
}

/// How far starting a drain got once the RM stopped giving the NM containers.
#[derive(Debug)]
pub enum DrainStarted {
    /// The guarder has its zero target.
    GuarderTold,
    /// The NM has no guarder address yet: its containers go with the pod at the deadline.
    NoGuarder,
    /// The guarder could not be told (a dead node, a restarting sidecar): its containers go
    /// with the pod at the deadline unless a later tick reaches it.
    GuarderUnreachable(GuarderError),
}

/// Starts draining `nm`: the RM gets capacity zero (confirmed), then the guarder a zero target
/// due in `deadline_seconds`. An NM the RM does not know is only told to the guarder. Only the
/// RM step can fail the drain: without it the NM would keep taking containers; a guarder that
/// cannot be told is reported, not fatal, so that one dead node never holds up its pool.
pub async fn start_drain<R: ResourceManager>(
    rm: &R,
    guarder: Option<&GuarderClient>,
    nm: &NodeManagerEndpoints,
    deadline_seconds: u32,
    reason: &str,
) -> Result<DrainStarted, DrainError> {
    match rm
        .resize(
            &nm.yarn_node_id,
            Resources::default(),
            OverCommitTimeout::Never,
        )
        .await
    {
        Ok(_) | Err(RmError::NotFound { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    let (Some(client), Some(url)) = (guarder, &nm.guarder) else {
        return Ok(DrainStarted::NoGuarder);
    };
    let target = TargetRequest {
        vcores: 0,
        memory_mb: 0,
        deadline_seconds,
        reason: format!("drain: {reason}"),
    };
    Ok(match client.put_target(url, &target).await {
        Ok(()) => DrainStarted::GuarderTold,
        Err(error) => DrainStarted::GuarderUnreachable(error),
    })
}

/// Keeps a draining NM's guarder on its zero target, level-triggered: the guarder's status is
/// read and, when it holds no zero target (it restarted and forgot it, or the first request
/// never arrived), the target is sent again with what is left of the deadline. `Ok(true)` when
/// it had to be sent again.
pub async fn hold_drain_target(
    client: &GuarderClient,
    url: &url::Url,
    deadline_seconds: u32,
) -> Result<bool, GuarderError> {
    let status = client.status(url).await?;
    if status
        .target
        .is_some_and(|target| target.vcores == 0 && target.memory_mb == 0)
    {
        return Ok(false);
    }
    let target = TargetRequest {
        vcores: 0,
        memory_mb: 0,
        deadline_seconds,
        reason: "drain: resumed".to_owned(),
    };
    client.put_target(url, &target).await?;
    Ok(true)
}

/// Removes the pool's label from an NM that leaves; an NM the RM already forgot is fine.
pub async fn remove_label<R: ResourceManager>(rm: &R, node: &NodeId) -> Result<(), DrainError> {
    match rm.set_node_labels(node, &[]).await {
        Ok(()) | Err(RmError::NotFound { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}
