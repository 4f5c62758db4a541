//! Static IP addresses for YARN NodeManagers.
//!
//! YARN admits NMs by host whitelists and authenticates them with keytabs bound to host names,
//! while pods get a new address and name on every start. A `StaticIPPool` fixes a set of
//! addresses; the controller makes one `StaticIP` per address, its DNS A and PTR records
//! (RFC 2136 updates signed with TSIG) and its Kerberos principal and keytab Secret, all ahead of
//! time. The operator claims an address per NM through [`claim`], and starts the NM pod with the
//! CNI annotation ([`cni`]), the host name and the keytab of that address.

pub mod addresses;
pub mod build;
pub mod claim;
pub mod cni;
pub mod controller;
pub mod crd;
pub mod crdgen;
pub mod dns;
pub mod kerberos;
