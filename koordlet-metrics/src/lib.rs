//! koordlet-metrics: what a node can really give to batch work, smoothed.
//!
//! This crate owns the contract between the per-node exporter and the operator (DESIGN.md,
//! contract 2): the series names in [`series`] and the rolling windows in [`window`]. The
//! exporter binary (scraping koordlet every second) builds on these; the operator and its
//! simulator read the same [`window::WindowSet`] so that a decision made in `simulate` is the
//! decision the operator would make on a live cluster.

pub mod series;
pub mod window;

pub use window::{RollingWindow, WindowSet, WindowSpan, WindowStats, WindowedSeries};
