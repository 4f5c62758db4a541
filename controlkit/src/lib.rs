//! What every elastic-yarn binary shares, in two parts.
//!
//! * The process part, with no Kubernetes in it (all four binaries): [`process`] (logging,
//!   shutdown, the HTTP client, clocks), [`openmetrics`] and [`egress`] (which addresses a
//!   user-named URL may reach).
//! * The controller part (feature `kube`, the operator and the staticip controller): leader
//!   election with a Lease, status conditions whose `lastTransitionTime` moves only on real
//!   flips, CRDs written for the chart as the API server understands them, Events, and one
//!   path from a failed reconcile to its Event and metric ([`report`]).

pub mod egress;
pub mod openmetrics;
pub mod process;

#[cfg(feature = "kube")]
pub mod conditions;
#[cfg(feature = "kube")]
pub mod crd;
#[cfg(feature = "kube")]
pub mod events;
#[cfg(feature = "kube")]
pub mod http;
#[cfg(feature = "kube")]
pub mod leader;
#[cfg(feature = "kube")]
pub mod report;
