//! guarder: the sidecar in every NodeManager pod that frees YARN containers when the NM must
//! shrink.
//!
//! This library holds what the operator and the guarder binary share: the HTTP API types
//! ([`api`], DESIGN.md contract 4), container identities and frameworks ([`container`],
//! contract 5) and the pure ranking and shrink planner ([`ranking`]). The simulator in the
//! operator calls the same planner, so simulated drains choose the victims a real guarder would.

pub mod api;
pub mod container;
pub mod ranking;

pub use container::{ContainerId, Framework};
pub use ranking::{Candidate, RankingWeights, Release, ShrinkPlan, plan_shrink, rank};
