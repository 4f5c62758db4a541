//! guarder: the sidecar in every NodeManager pod that frees YARN containers when the NM must
//! shrink.
//!
//! The pure parts are shared with the operator and its simulator: the HTTP API types ([`api`],
//! docs/architecture.md, contract 4), container identities and frameworks ([`container`], contract 5), the
//! ranking and shrink planner ([`ranking`]) and the drain decisions ([`drain`]). The binary adds
//! process discovery ([`discovery`]), use measurement ([`usage`]), signal delivery
//! ([`signals`]), the state that ties them ([`service`]) and the HTTP server ([`server`]).
//! [`hadoop_conf`] renders the NM pod's Hadoop configuration (the `hadoop-conf` binary, the
//! pod's init container).

pub mod api;
pub mod container;
pub mod discovery;
pub mod drain;
pub mod hadoop_conf;
pub mod ranking;
pub mod server;
pub mod service;
pub mod signals;
pub mod usage;

pub use container::{ContainerId, Framework};
pub use ranking::{Candidate, RankingWeights, Release, ShrinkPlan, plan_shrink, rank};
