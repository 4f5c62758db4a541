//! staticip: a pool of fixed IP addresses for NodeManagers, with DNS records and Kerberos
//! keytabs made ahead of time (DESIGN.md, `StaticIPPool` and `StaticIP`).
//!
//! The resources, the pool controller and the claim API arrive with their own issue; this
//! crate fixes the API group they share with the operator.

/// API group of `StaticIPPool` and `StaticIP`, shared with `ElasticNodePool`.
pub const API_GROUP: &str = "elasticyarn.io";
/// API version of `StaticIPPool` and `StaticIP`.
pub const API_VERSION: &str = "v1alpha1";
