//! The YARN suite (`scripts/e2e yarn`): a real ResourceManager and NodeManagers of every Hadoop
//! line (from Maven Central's jars), the RM client and the admin commands against them, the
//! same contract against `yarn-rm-double`, and real containers and Spark executors drained by
//! the real guarder.

#[path = "yarn_scenarios/mod.rs"]
mod yarn_scenarios;

use std::process::ExitCode;

use elastic_yarn_e2e::scenario;
use elastic_yarn_e2e::yarn_world::YarnWorld;
use yarn_scenarios::*;

fn main() -> ExitCode {
    elastic_yarn_e2e::runner::run(
        "yarn",
        YarnWorld::new,
        vec![
            scenario!(the_rm_contract_holds_on_every_line_and_on_the_double, 240),
            scenario!(the_admin_commands_work_against_the_real_rm, 120),
            scenario!(the_loop_sizes_real_nodemanagers_on_a_kerberized_rm, 300),
            scenario!(the_client_follows_the_active_rm_through_a_failover, 300),
            scenario!(the_guarder_drains_real_shell_containers_am_last, 300),
            scenario!(spark_executors_decommission_on_sigpwr, 480),
        ],
    )
}
