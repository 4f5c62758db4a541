//! Real Spark executors on the real YARN, decommissioned by the real guarder with SIGPWR.

use std::sync::Arc;
use std::time::Duration;

use elastic_yarn_e2e::runner::wait_for;
use elastic_yarn_e2e::yarn_apps::{
    container_logs, guarder, guarder_status, put_target, spark_submit,
};
use elastic_yarn_e2e::yarn_world::{YarnWorld, rm_client};
use testkit::hadoop::{
    Hadoop, NodeManagerOptions, YarnCluster, YarnOptions, sleepy_job_jar, wait_for_log_line,
};
use yarn_rm::{NodeId, OverCommitTimeout, ResourceManager, Resources};

/// The AM on a NodeManager of its own (the only one when the application starts), two executors
/// on a second; the guarder on the second is asked to free a little less than the executors
/// use: it picks one executor, sends SIGPWR to its JVM (not to the container's bash), and the
/// executor decommissions and exits 0; Spark replaces it, the job finishes with no failed task.
pub async fn spark_executors_decommission_on_sigpwr(world: Arc<YarnWorld>) {
    let hadoop = Hadoop::primary().expect("the primary Hadoop line");
    let spark = testkit::hadoop::spark().expect("Spark's jars");
    let work = world.dir.join("spark");
    std::fs::create_dir_all(&work).expect("work folder");
    let jar = sleepy_job_jar(&spark, &work);
    let (cluster, driver) = tokio::task::spawn_blocking(move || {
        let mut cluster = YarnCluster::start(&hadoop, &YarnOptions::default());
        // Room for the ApplicationMaster (512 MiB + overhead) only.
        cluster.add_node_manager(&NodeManagerOptions {
            memory_mb: 1024,
            vcores: 1,
            ..NodeManagerOptions::default()
        });
        let driver = spark_submit(&cluster, &spark, &jar, 2, &["60", "1500"]);
        wait_for_log_line(&driver, "Application report for", 120);
        cluster.add_node_manager(&NodeManagerOptions {
            memory_mb: 4096,
            vcores: 4,
            ..NodeManagerOptions::default()
        });
        (cluster, driver)
    })
    .await
    .expect("a cluster with a Spark application");

    let executors_nm = &cluster.node_managers[1];
    let (_guarder, url) = guarder(&work, executors_nm.process.pid(), 60, true);
    wait_for("two running executors", Duration::from_secs(120), || {
        let url = url.clone();
        async move {
            let status = guarder_status(&url).await;
            let executors = status["containers"]
                .as_array()?
                .iter()
                .filter(|c| c["framework"] == "sparkExecutor")
                .count();
            (executors == 2).then_some(())
        }
    })
    .await;
    // Executors decommission once they run tasks (a signal during start-up is another story).
    let driver = tokio::task::spawn_blocking(move || {
        wait_for_log_line(&driver, "Finished task 3.0", 120);
        driver
    })
    .await
    .expect("tasks run");
    // As the operator does: the RM first (room for one executor only, so that no replacement
    // lands here), then the guarder.
    let rm = rm_client(&cluster.rm_url);
    let node: NodeId = executors_nm.node_id.parse().expect("a node id");
    let one_executor = Resources {
        memory_mb: 1024,
        vcores: 1,
    };
    rm.resize(&node, one_executor, OverCommitTimeout::Never)
        .await
        .expect("the RM shrinks the NM");
    let busy = guarder_status(&url).await;
    let used = busy["usedMemoryMb"].as_f64().expect("memory in use");
    let vcores = busy["usedVcores"].as_f64().unwrap_or(0.0).ceil() as u32 + 4;
    put_target(&url, vcores, (used as u64).saturating_sub(1), 60).await;
    let after = wait_for(
        "one executor decommissioned",
        Duration::from_secs(90),
        || {
            let url = url.clone();
            async move {
                let status = guarder_status(&url).await;
                (status["leftAfterSignal"].as_u64() >= Some(1)).then_some(status)
            }
        },
    )
    .await;
    eprintln!("after: {after}");
    wait_for_log_line(&driver, "SLEEPY-JOB-DONE", 240);
    let text = std::fs::read_to_string(&driver.log).expect("driver log");
    assert!(
        !text.contains("Lost task"),
        "no task failed:\n{}",
        driver.tail(60)
    );
    // The executor's own log: it decommissioned; the NodeManager's: its container exited 0.
    let decommissioned = container_logs(&executors_nm.log_dir)
        .into_iter()
        .filter(|(_, text)| text.contains("Decommission executor"))
        .map(|(container, _)| container)
        .collect::<Vec<_>>();
    assert_eq!(decommissioned.len(), 1, "one executor decommissioned");
    let nm_log = std::fs::read_to_string(&executors_nm.process.log).expect("NM log");
    assert!(
        nm_log.contains(&format!(
            "Container {} transitioned from RUNNING to EXITED_WITH_SUCCESS",
            decommissioned[0]
        )),
        "{} exited 0",
        decommissioned[0]
    );
}
