//! Types of the guarder's HTTP API (docs/architecture.md, contract 4), shared with the
//! operator through `yarn-types`.

pub use yarn_types::guarder::TargetRequest;
