//! What every elastic-yarn controller (the operator, the staticip controller) needs and does the
//! same way: leader election with a Lease, and status conditions whose `lastTransitionTime` moves
//! only on real flips.

pub mod conditions;
pub mod events;
pub mod http;
pub mod leader;
