//! The chain under a Spark job: the operator's NM pods become real NodeManagers, the operator
//! labels and sizes them on the real RM from the real exporters, and when one node's koordlet
//! lowers its batch limit, the RM is lowered first and then the guarder decommissions executors
//! with SIGPWR; the job finishes with no failed task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use elastic_yarn_e2e::chain_world::ChainWorld;
use elastic_yarn_e2e::node_metrics::batch_cores;
use elastic_yarn_e2e::pools::{event_reasons, status};
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_apps::{container_logs, guarder_tallies};
use elastic_yarn_e2e::yarn_world::rm_client;
use testkit::hadoop::wait_for_log_line;
use yarn_rm::{NodeId, ResourceManager};

use super::{NAMESPACE, POOL, frameworks, pool, rm_capacity, spark_job, wait_for_rm};

/// Executors the job asks for (1 core, 512 MiB each).
const EXECUTORS: u32 = 2;

pub async fn spark_survives_a_drop_of_batch_cpu(world: Arc<ChainWorld>) {
    let pool = pool(&world).await;
    let k8s = &world.k8s;

    let launched = pool.launcher.running();
    assert_eq!(launched.len(), 2, "{launched:?}");
    let rm = rm_client(&world.rm_url);

    // Room for two 1-vcore containers on each NM, so that the job (its AM and two executors)
    // spreads over both.
    for node in &world.nodes {
        node.koordlet.set(batch_cores(2.0));
    }
    for nm in &launched {
        wait_for_rm(&world, "the NMs at 2 vcores", &nm.node_id, |c| {
            c.vcores == 2
        })
        .await;
    }

    // A Spark job on the pool's label, its tasks keeping their cores busy.
    let driver = spark_job(&world, EXECUTORS, &["120", "1500", "spin"], 4).await;

    // The node whose batch CPU goes: the one with executors and without the ApplicationMaster.
    let mut victim = None;
    for nm in &launched {
        let frameworks = frameworks(&nm.guarder).await;
        let executors = frameworks.iter().filter(|f| *f == "sparkExecutor").count();
        if executors > 0 && !frameworks.iter().any(|f| f == "sparkApplicationMaster") {
            victim = Some((nm.clone(), executors));
        }
    }
    let (victim, executors) = victim.expect("an NM with executors and without the AM");
    let before = rm_capacity(&world, &victim.node_id)
        .await
        .expect("the RM's capacity");
    let node = world
        .nodes
        .iter()
        .find(|n| n.name == victim.node)
        .expect("the victim's node");

    // The online load rises: the node's batch CPU falls to 70% of what YARN has allocated
    // there. The RM is lowered at once (no new containers); running ones are at risk only once
    // koordlet's one-minute average satisfaction is below 75% (`elastic`'s relaxed case), and
    // then the guarder decommissions executors with SIGPWR and a long deadline.
    let id: NodeId = victim.node_id.parse().expect("a node id");
    let allocated = rm.node(&id).await.expect("the victim's node").used().vcores;
    let level = 0.7 * f64::from(allocated);
    let dropped = Instant::now();
    node.koordlet.set(batch_cores(level));
    let mut rm_lowered = None;
    let mut first_signal = None;
    while first_signal.is_none() || rm_lowered.is_none() {
        assert!(
            dropped.elapsed() < Duration::from_secs(120),
            "the chain did not react: RM lowered {rm_lowered:?}, first signal {first_signal:?}"
        );
        // The guarder first: if it has signalled, the RM must already show the lower capacity.
        let signals: u64 = guarder_tallies(&victim.guarder)
            .await
            .signals
            .iter()
            .map(|tally| tally.count)
            .sum();
        let capacity = rm_capacity(&world, &victim.node_id).await;
        let lowered = capacity.is_some_and(|c| c.vcores < before.vcores);
        if lowered && rm_lowered.is_none() {
            rm_lowered = Some(dropped.elapsed());
        }
        if signals > 0 && first_signal.is_none() {
            assert!(lowered, "a signal before the RM was lowered: {capacity:?}");
            first_signal = Some(dropped.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rm_lowered, first_signal) = (
        rm_lowered.unwrap_or_default(),
        first_signal.unwrap_or_default(),
    );
    eprintln!(
        "  drop on {} to {level:.1} cores: RM lowered after {rm_lowered:?}, first signal after {first_signal:?} ({executors} executors there)",
        victim.node,
    );
    super::record_reaction(rm_lowered, Some(first_signal));
    super::report();

    // The job finishes; no task was lost to the decommissioning.
    let driver = tokio::task::spawn_blocking(move || {
        wait_for_log_line(&driver, "SLEEPY-JOB-DONE", 420);
        driver
    })
    .await
    .expect("the job finishes");
    let text = std::fs::read_to_string(&driver.log).expect("driver log");
    assert!(
        !text.contains("Lost task"),
        "no task failed:\n{}",
        driver.tail(60)
    );
    let decommissioned = container_logs(&victim.container_logs)
        .into_iter()
        .filter(|(_, text)| text.contains("Decommission executor"))
        .count();
    let signals = guarder_tallies(&victim.guarder).await.signals;
    assert!(
        signals.iter().all(|tally| tally.signal == "SIGPWR"),
        "only graceful decommissioning: {signals:?}"
    );
    let sent: u64 = signals.iter().map(|tally| tally.count).sum();
    assert_eq!(
        decommissioned as u64, sent,
        "every executor signalled says in its own log that it decommissioned"
    );

    // The pool's status counts the guarders' signals; the row shows the lowered capacity.
    let after = wait_for(
        "the status to count the signals",
        Duration::from_secs(60),
        || async {
            let status = status(&k8s.client, NAMESPACE, POOL).await?;
            (status.graceful_signals >= 1).then_some(status)
        },
    )
    .await;
    assert_eq!(after.forced_kills, 0, "{after:?}");
    let row = after
        .node_managers
        .iter()
        .find(|row| row.node == victim.node)
        .expect("the victim's row");
    assert!(row.capacity.vcores < before.vcores, "{row:?}");
    let reasons = event_reasons(&k8s.client, NAMESPACE, POOL).await;
    for reason in [
        "NodeManagerCreated",
        "NodeManagerLabelled",
        "NodeManagerGrown",
        "NodeManagerShrunk",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
}
