//! The Elastic YARN Operator.
//!
//! * [`crd`] — the `ElasticNodePool` custom resource; [`crdgen`] writes its YAML.
//! * [`validate`] — turns a spec into a [`validate::ValidatedPool`] or clear errors.
//! * [`schedule`] — `Periodic` windows in a time zone.
//! * [`policy`] — the pure resize policy engine.
//! * [`sim`] — the `simulate` main job: real traces replayed on a simulated co-located cluster.
//! * The ResourceManager client is the `yarn-rm` crate; its double, `yarn-rm-double`, is a
//!   dev-dependency only.

#![warn(clippy::too_many_lines)]

pub mod build;
pub mod cli;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod crdgen;
pub mod doctor;
pub mod lifecycle;
pub mod placement;
pub mod policy;
pub mod schedule;
#[cfg(feature = "simulate")]
pub mod sim;
pub mod validate;
pub mod vertical;
