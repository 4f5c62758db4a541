//! Draining an NM: capacity zero on the RM (no new containers), then a zero target for the
//! guarder with the removal time as deadline; when the pod goes, the NM's YARN label goes too.
//!
//! YARN's own graceful decommission (exclude file and `refreshNodes -g` over the admin RPC) is a
//! second strategy that could slot in here; the REST API has no call for it (DESIGN.md,
//! contract 3).

use guarder::api::TargetRequest;

use super::NodeManagerEndpoints;
use super::guarder_client::{GuarderClient, GuarderError};
use crate::yarn::{Capacity, NodeId, OverCommitTimeout, ResourceManager, RmError};

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

/// Starts draining `nm`: the RM gets capacity zero (confirmed), then the guarder a zero target
/// due in `deadline_seconds`. An NM the RM does not know is only told to the guarder.
pub async fn start_drain<R: ResourceManager>(
    rm: &R,
    guarder: Option<&GuarderClient>,
    nm: &NodeManagerEndpoints,
    deadline_seconds: u32,
    reason: &str,
) -> Result<(), DrainError> {
    match rm
        .resize(
            &nm.yarn_node_id,
            Capacity::default(),
            OverCommitTimeout::Never,
        )
        .await
    {
        Ok(_) | Err(RmError::NotFound { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    if let (Some(client), Some(url)) = (guarder, &nm.guarder) {
        client
            .put_target(
                url,
                &TargetRequest {
                    vcores: 0,
                    memory_mb: 0,
                    deadline_seconds,
                    reason: format!("drain: {reason}"),
                },
            )
            .await?;
    }
    Ok(())
}

/// Removes the pool's label from an NM that leaves; an NM the RM already forgot is fine.
pub async fn remove_label<R: ResourceManager>(rm: &R, node: &NodeId) -> Result<(), DrainError> {
    match rm.set_node_labels(node, &[]).await {
        Ok(()) | Err(RmError::NotFound { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}
