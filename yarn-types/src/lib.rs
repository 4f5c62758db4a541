//! The few values every part of elastic-yarn exchanges: YARN container and node ids, a
//! NodeManager's resources, and the guarder's target request. No I/O, no Kubernetes: the
//! operator, the RM client, its double and the guarder all depend on this and on nothing of
//! each other's.

pub mod container;
pub mod guarder;
pub mod node;
pub mod resources;

pub use container::{ContainerId, ContainerIdError};
pub use guarder::TargetRequest;
pub use node::NodeId;
pub use resources::Resources;
