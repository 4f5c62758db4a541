//! The chain suite (`scripts/e2e chain`): an ElasticNodePool on a real control plane, its NM
//! pods run as real NodeManagers and guarders (`e2e::launcher`), the real exporter on every
//! node, the operator labelling, sizing and draining them on a real RM while a real Spark job
//! runs on them.

#[path = "chain_scenarios/mod.rs"]
mod chain_scenarios;

use std::process::ExitCode;

use chain_scenarios::*;
use elastic_yarn_e2e::chain_world::ChainWorld;
use elastic_yarn_e2e::scenario;

fn main() -> ExitCode {
    elastic_yarn_e2e::runner::run(
        "chain",
        ChainWorld::new,
        vec![
            scenario!(
                the_pods_become_nodemanagers_labelled_and_sized_on_the_rm,
                300
            ),
            scenario!(doctor_passes_the_setup_and_names_what_an_admin_broke, 300),
            scenario!(the_loop_reacts_to_koordlet_drops_within_seconds, 300),
            scenario!(spark_survives_a_drop_of_batch_cpu, 900),
            scenario!(a_periodic_drain_window_takes_the_nodemanagers_away, 600),
            scenario!(
                a_kerberos_pool_reaches_a_kerberized_rm_with_its_own_keytab,
                300
            ),
            scenario!(
                a_third_party_nodemanager_lets_its_containers_use_their_allocation,
                600
            ),
            scenario!(two_pools_on_one_node_divide_it, 300),
            scenario!(the_rm_hung_for_minutes_loses_nothing, 600),
        ],
    )
}
