//! What every elastic-yarn controller (the operator, the staticip controller) needs and does the
//! same way: leader election with a Lease, status conditions whose `lastTransitionTime` moves
//! only on real flips, and CRDs written for the chart as the API server understands them.

pub mod conditions;
pub mod crd;
pub mod events;
pub mod http;
pub mod leader;
