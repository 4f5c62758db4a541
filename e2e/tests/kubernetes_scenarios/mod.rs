//! The scenarios of the Kubernetes suite, by subject.

mod addresses;
mod chart;
mod leader;
mod pod_security;
mod pools;
mod rbac;
mod rules;

pub use addresses::static_addresses_with_real_bind_and_kdc;
pub use chart::{
    chart_installs_with_its_crds_and_examples_validate,
    chart_lints_and_renders_against_the_api_server,
};
pub use leader::{
    a_drain_survives_the_death_of_the_leader, a_frozen_leader_wakes_up_and_does_nothing,
    a_leader_cut_off_from_the_api_server_steps_down_at_once, expired_watches_are_listed_again,
    one_leader_acts_at_a_time,
};
pub use pod_security::a_guarder_running_as_the_nodemanager_user_passes_pod_security_baseline;
pub use pools::{
    a_node_that_dies_during_its_drain_stops_nothing_else, deleting_a_pool_leaves_nothing_behind,
    pool_follows_spec_and_node_changes, pools_may_not_point_the_operator_at_the_cluster_itself,
    resident_and_periodic_pools_run_their_node_managers,
    vertical_loop_ticks_through_a_node_update_storm,
};
pub use rbac::controllers_use_exactly_what_the_chart_grants;
pub use rules::crd_rules_refuse_bad_objects_with_their_messages;
