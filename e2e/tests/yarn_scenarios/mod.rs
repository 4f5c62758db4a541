//! The YARN suite's scenarios, by theme.

mod admin;
mod contract;

pub use admin::*;
pub use contract::*;
