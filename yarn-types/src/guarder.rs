//! The guarder's HTTP API as the operator calls it (docs/architecture.md, contract 4).

use serde::{Deserialize, Serialize};

/// Body of `PUT /v1/target`: what the NM's containers may use at most, and by when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetRequest {
    /// Vcores the NM's running containers may keep.
    pub vcores: u32,
    /// Memory (MiB, YARN's "MB") the NM's running containers may keep.
    pub memory_mb: u64,
    /// Seconds from now by which the target must be reached; stragglers are killed then.
    pub deadline_seconds: u32,
    /// Why the operator asks, for the guarder's log and status.
    pub reason: String,
}
