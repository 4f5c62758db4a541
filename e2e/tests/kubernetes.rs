//! The Kubernetes suite (`scripts/e2e kubernetes`): the chart checked and installed with the real
//! Helm against a real API server, the CRDs' rules enforced by it, and the operator and staticip
//! controller running as processes under the chart's own RBAC, each scenario asserting what the
//! API server really holds afterwards. Its last scenario reads the API server's audit log: no
//! request of the controllers was refused, and the chart grants nothing they never use.

#[path = "kubernetes_scenarios/mod.rs"]
mod kubernetes_scenarios;

use std::process::ExitCode;

use elastic_yarn_e2e::scenario;
use elastic_yarn_e2e::world::World;
use kubernetes_scenarios::*;

fn main() -> ExitCode {
    elastic_yarn_e2e::runner::run(
        "kubernetes",
        || World::new("kubernetes"),
        vec![
            scenario!(chart_lints_and_renders_against_the_api_server, 300),
            scenario!(chart_installs_with_its_crds_and_examples_validate, 300),
            scenario!(crd_rules_refuse_bad_objects_with_their_messages, 60),
            scenario!(resident_and_periodic_pools_run_their_node_managers, 240),
            scenario!(pool_follows_spec_and_node_changes, 300),
            scenario!(vertical_loop_ticks_through_a_node_update_storm, 180),
            scenario!(a_node_that_dies_during_its_drain_stops_nothing_else, 240),
            scenario!(deleting_a_pool_leaves_nothing_behind, 180),
            scenario!(pools_may_not_point_the_operator_at_the_cluster_itself, 120),
            scenario!(
                a_guarder_running_as_the_nodemanager_user_passes_pod_security_baseline,
                180
            ),
            scenario!(static_addresses_with_real_bind_and_kdc, 300),
            scenario!(one_leader_acts_at_a_time, 240),
            scenario!(a_frozen_leader_wakes_up_and_does_nothing, 240),
            scenario!(a_drain_survives_the_death_of_the_leader, 240),
            scenario!(a_leader_cut_off_from_the_api_server_steps_down_at_once, 300),
            scenario!(expired_watches_are_listed_again, 300),
            scenario!(controllers_use_exactly_what_the_chart_grants, 60),
        ],
    )
}
