//! A Periodic window's drain with work on the NMs: the pool goes Periodic with its drain already
//! started and its offline time a minute or two away. The operator takes every NM's capacity to
//! zero on the RM and gives each guarder a zero target with the window's deadline; the guarder
//! spreads its signals over the window (executors first, the ApplicationMaster last): the Spark
//! executor decommissions on SIGPWR and exits by itself, nothing is killed, the empty NMs' pods
//! go, and the launcher stops their NodeManagers and guarders as the kubelet would. One guarder
//! is killed once the drain reached it: started again, it gets its target back from the
//! operator, and the drain still ends with nothing killed.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::chain_world::ChainWorld;
use elastic_yarn_e2e::launcher::guarder_log_text;
use elastic_yarn_e2e::pools::{event_reasons, node_manager_pods, patch_spec, periodic_window};
use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_apps::{container_logs, read_guarder_status};
use elastic_yarn_operator::vertical::guarder_client::GuarderStatus;
use serde_json::json;

use super::{NAMESPACE, POOL, frameworks, pool, rm_capacity, spark_job};

pub async fn a_periodic_drain_window_takes_the_nodemanagers_away(world: Arc<ChainWorld>) {
    let pool = pool(&world).await;
    let k8s = &world.k8s;
    let before = pool.launcher.running();
    assert_eq!(before.len(), 2, "{before:?}");

    // A long job on whatever room the NMs still have (an AM and an executor).
    let driver = spark_job(&world, 1, &["400", "1500"], 2).await;
    let mut with_executor = None;
    for nm in &before {
        if frameworks(&nm.guarder)
            .await
            .iter()
            .any(|f| f == "sparkExecutor")
        {
            with_executor = Some(nm.clone());
        }
    }
    let with_executor = with_executor.expect("an NM running the executor");

    patch_spec(
        &k8s.client,
        NAMESPACE,
        POOL,
        // Opened ten minutes ago, draining since a minute ago, offline in one or two minutes.
        json!({"lifecycle": periodic_window(-10, -1, 2)}),
    )
    .await;
    // The guarder of the NM with the executor dies once the drain's target reached it; the
    // launcher starts it again, as the kubelet would, with no memory of the target: the
    // operator gives it back.
    let zero_target = |url: String| async move {
        let status = read_guarder_status(&url).await.ok()?;
        let status: GuarderStatus = serde_json::from_value(status).ok()?;
        status.target.filter(|t| t.vcores == 0)
    };
    wait_for(
        "the drain's target at the guarder",
        Duration::from_secs(60),
        || zero_target(with_executor.guarder.clone()),
    )
    .await;
    pool.launcher.kill_guarder(&with_executor.pod);
    wait_for(
        "the guarder started again",
        Duration::from_secs(30),
        || async { (pool.launcher.guarder_restarts(&with_executor.pod) >= 1).then_some(()) },
    )
    .await;
    // Seen in its status, or in its own log: the drain may end (the NM empty, its pod gone and
    // the guarder with it) a moment after the target came back, before a status read.
    wait_for(
        "the target given back to the new guarder",
        Duration::from_secs(60),
        || async {
            if zero_target(with_executor.guarder.clone()).await.is_some() {
                return Some(());
            }
            let own_log = std::fs::read_to_string(&with_executor.guarder_log).unwrap_or_default();
            own_log
                .lines()
                .any(|line| line.contains("guarder::service: target vcores=0 "))
                .then_some(())
        },
    )
    .await;
    wait_for("the NM pods gone", Duration::from_secs(240), || async {
        node_manager_pods(&k8s.client, NAMESPACE, POOL)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let stopped = wait_for(
        "the launcher to stop both NMs",
        Duration::from_secs(60),
        || async {
            let stopped = pool.launcher.stopped();
            (stopped.len() == 2).then_some(stopped)
        },
    )
    .await;
    assert!(pool.launcher.running().is_empty());
    for nm in &stopped {
        // The RM had the capacity at zero before the pod went.
        let capacity = rm_capacity(&world, &nm.node_id).await;
        assert!(
            capacity.is_none_or(|c| c.vcores == 0),
            "{}: {capacity:?}",
            nm.node
        );
    }

    // The executor left gracefully and by itself; nothing was killed on any NM.
    let guarder_log = guarder_log_text(&with_executor);
    let signals: Vec<&str> = guarder_log
        .lines()
        .filter(|line| line.contains(" signal container="))
        .collect();
    assert!(
        signals
            .iter()
            .any(|l| l.contains("signal=\"SIGPWR\"") && l.contains("framework=\"spark_executor\"")),
        "the executor got SIGPWR:\n{guarder_log}"
    );
    for nm in &stopped {
        let log = guarder_log_text(nm);
        assert!(
            !log.contains("SIGKILL"),
            "{}: nothing killed:\n{log}",
            nm.node
        );
    }
    let decommissioned = container_logs(&with_executor.container_logs)
        .into_iter()
        .filter(|(_, text)| text.contains("Decommission executor"))
        .count();
    assert!(
        decommissioned >= 1,
        "the executor's own log says it decommissioned"
    );
    let reasons = event_reasons(&k8s.client, NAMESPACE, POOL).await;
    for reason in ["DrainStarted", "NodeManagerRemoved"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    eprintln!(
        "  drain signals on {}:\n    {}",
        with_executor.node,
        signals.join("\n    ")
    );
    drop(driver);
}
