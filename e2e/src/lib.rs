//! End-to-end tests of elastic-yarn against real components, started on loopback by the tests
//! themselves (see `testkit`) or given by `KUBECONFIG`. Each suite is a test target with its
//! own runner ([`runner`]): its scenarios run in order on one [`world::World`], because they
//! share cluster-scoped objects (nodes, CRDs, the chart's RBAC) and controller processes that
//! watch every namespace. `scripts/e2e` builds what they need and runs them.

pub mod audit;
pub mod chain_world;
pub mod chart;
pub mod controller;
pub mod fault_proxy;
pub mod koordinator;
pub mod launcher;
pub mod node_metrics;
pub mod pod_cgroup;
pub mod pools;
pub mod rm_contract;
pub mod runner;
pub mod watch_proxy;
pub mod world;
pub mod yarn_apps;
pub mod yarn_world;
