//! koordlet-metrics: what a node can really give to batch work, smoothed.
//!
//! The exporter scrapes koordlet every second ([`scrape`]), reads the page ([`koordlet`]) and
//! YARN's own use ([`cgroup`]), turns them into what YARN may use ([`availability`]) and keeps
//! 1/5/10-minute windows of it ([`window`], [`exporter`]). It publishes them on `/metrics`
//! ([`exposition`]) and `/v1/windows` ([`report`], [`server`]). The operator and its simulator
//! read the same [`window::WindowSet`], so that a decision made in `simulate` is the decision
//! the operator would make on a live cluster. [`replay`] is a koordlet double for tests.

pub mod app;
pub mod availability;
pub mod cgroup;
pub mod exporter;
pub mod exposition;
pub mod koordlet;
pub mod replay;
pub mod report;
pub mod scrape;
pub mod series;
pub mod server;
pub mod window;

pub use window::{RollingWindow, WindowSet, WindowSpan, WindowStats, WindowedSeries};
