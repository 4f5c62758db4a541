//! YARN resources: vcores and memory, as the operator, the RM and the guarder count them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// YARN resources of one NodeManager.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Vcores.
    #[cfg_attr(feature = "schema", schemars(range(max = 4096)))]
    pub vcores: u32,
    /// Memory in MiB (what YARN calls MB: 2^20 bytes).
    #[cfg_attr(feature = "schema", schemars(range(max = 67_108_864)))]
    pub memory_mb: u64,
}

impl Resources {
    /// Resources of `vcores` and `memory_mb`.
    pub const fn new(vcores: u32, memory_mb: u64) -> Self {
        Resources { vcores, memory_mb }
    }

    /// True when both dimensions are at most those of `other`.
    pub const fn fits_in(&self, other: &Resources) -> bool {
        self.vcores <= other.vcores && self.memory_mb <= other.memory_mb
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} vcores / {} MiB", self.vcores, self.memory_mb)
    }
}
