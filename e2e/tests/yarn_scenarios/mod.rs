//! The YARN suite's scenarios, by theme.

mod admin;
mod containers;
mod contract;
mod spark;

pub use admin::*;
pub use containers::*;
pub use contract::*;
pub use spark::*;
