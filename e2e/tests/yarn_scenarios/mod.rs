//! The YARN suite's scenarios, by theme.

mod admin;
mod containers;
mod contract;
mod ha;
mod kerberos;
mod spark;

pub use admin::*;
pub use containers::*;
pub use contract::*;
pub use ha::*;
pub use kerberos::*;
pub use spark::*;
