//! The guarder against real container trees: `launch_container.sh`-like bash parents with
//! `CONTAINER_ID` set, real JVMs (Java 17) playing a decommissioning Spark executor and a
//! MapReduce task, a process that ignores SIGTERM, an ApplicationMaster and an unrelated
//! process. Real signals are sent, and the test checks who got which and how each ended.
//!
//! The guarder is scoped to this test's descendants, so nothing else on the machine can be
//! touched. `scripts/test` sets `ELASTIC_YARN_REQUIRE_REAL=1`: a missing JVM fails there.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use guarder::Framework;
use guarder::api::TargetRequest;
use guarder::discovery::Scope;
use guarder::drain::DrainSettings;
use guarder::service::{Guarder, GuarderConfig};
use koordlet_metrics::cgroup::CgroupLayout;

/// The scenarios share the machine's process table; one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SPARK_EXECUTOR: &str = "org.apache.spark.executor.YarnCoarseGrainedExecutorBackend";
const MAPREDUCE_TASK: &str = "org.apache.hadoop.mapred.YarnChild";

fn require_real() -> bool {
    std::env::var("ELASTIC_YARN_REQUIRE_REAL").as_deref() == Ok("1")
}

/// Compiles the fixture once per class into `dir`.
fn compile(dir: &Path, class: &str) -> bool {
    let (package, simple) = class.rsplit_once('.').expect("a qualified class");
    let source = include_str!("fixtures/FakeContainer.java")
        .replace("PACKAGE", package)
        .replace("CLASS", simple);
    let file = dir.join(format!("{simple}.java"));
    std::fs::write(&file, source).expect("the Java source is written");
    // javac warns about sun.misc.Signal (what Spark itself uses); show its output only on failure.
    match Command::new("javac").arg("-d").arg(dir).arg(&file).output() {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            eprintln!("javac failed:\n{}", String::from_utf8_lossy(&output.stderr));
            false
        }
        Err(_) => false,
    }
}

fn java_available(dir: &Path) -> bool {
    let ok = compile(dir, SPARK_EXECUTOR) && compile(dir, MAPREDUCE_TASK);
    if !ok {
        assert!(
            !require_real(),
            "javac/java (Java 17) are needed for this test"
        );
        eprintln!("SKIPPED: no working javac here");
    }
    ok
}

fn container_id(stamp: u128, number: u32) -> String {
    format!("container_e42_{stamp}_0007_01_{number:06}")
}

/// `bash -c <script>` with `CONTAINER_ID` set, as the NodeManager's launch shell.
fn launch(container: Option<&str>, script: &str) -> Child {
    let mut command = Command::new("bash");
    command.arg("-c").arg(script);
    command.env_remove("CONTAINER_ID");
    if let Some(id) = container {
        command.env("CONTAINER_ID", id);
    }
    command.spawn().expect("bash starts")
}

fn java(classes: &Path, class: &str, marker: &Path, mode: &str) -> String {
    format!(
        "java -Xmx64m -cp {} {class} {} {mode} & wait $!",
        classes.display(),
        marker.display()
    )
}

fn wait_for(path: &Path) {
    testkit::processes::wait_for_file(path, Duration::from_secs(30));
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stamp() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}

fn guarder(
    spark_decommission: bool,
    grace_ms: u64,
    cgroups: Option<(CgroupLayout, PathBuf)>,
) -> Guarder {
    Guarder::new(GuarderConfig {
        proc_root: PathBuf::from("/proc"),
        cgroups,
        scope: Scope::DescendantsOf(i32::try_from(std::process::id()).expect("a pid")),
        drain: DrainSettings {
            grace_ms,
            spark_decommission,
            ..DrainSettings::default()
        },
    })
}

/// Runs scans until `done` or the time runs out.
fn drive(
    guarder: &mut Guarder,
    started: Instant,
    within: Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + within;
    while !done() && Instant::now() < deadline {
        let now = started.elapsed().as_millis() as u64;
        guarder.scan(now);
        guarder.step(now);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn drains_real_containers_gracefully_and_kills_only_stragglers() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("a temp dir");
    if !java_available(dir.path()) {
        return;
    }
    let stamp = stamp();
    let executor_id = container_id(stamp, 2);
    let task_id = container_id(stamp, 3);
    let straggler_id = container_id(stamp, 4);
    let am_id = container_id(stamp, 1);
    let executor_marker = dir.path().join("executor");
    let task_marker = dir.path().join("task");

    let mut executor = launch(
        Some(&executor_id),
        &java(dir.path(), SPARK_EXECUTOR, &executor_marker, "decommission"),
    );
    let mut task = launch(
        Some(&task_id),
        &java(dir.path(), MAPREDUCE_TASK, &task_marker, "plain"),
    );
    // Ignores SIGTERM, and so does the child it leaves running.
    let mut straggler = launch(Some(&straggler_id), "trap '' TERM; sleep 600 & wait $!");
    let mut am = launch(Some(&am_id), "sleep 600 & wait $!");
    let mut unrelated = launch(None, "sleep 600 & wait $!");
    wait_for(&executor_marker.with_extension("ready"));
    wait_for(&task_marker.with_extension("ready"));

    let started = Instant::now();
    let mut guarder = guarder(true, 3_000, None);
    guarder.scan(0);
    guarder.scan(200);
    let status = guarder.status();
    let found: Vec<(&str, Framework, bool)> = status
        .containers
        .iter()
        .map(|c| (c.container.as_str(), c.framework, c.application_master))
        .collect();
    assert_eq!(
        found.len(),
        4,
        "the four containers and nothing else: {found:?}"
    );
    assert!(found.contains(&(executor_id.as_str(), Framework::SparkExecutor, false)));
    assert!(found.contains(&(task_id.as_str(), Framework::MapReduceTask, false)));
    assert!(found.contains(&(am_id.as_str(), Framework::Unknown, true)));
    // The AM is ranked last.
    assert_eq!(
        status.containers.last().map(|c| c.container.as_str()),
        Some(am_id.as_str())
    );

    // Keep the AM's memory plus 1 MiB: every other container must go, the AM can stay.
    let am_memory = status
        .containers
        .iter()
        .find(|c| c.container == am_id)
        .map(|c| c.memory_mb)
        .expect("the AM is measured");
    let outcome = guarder.set_target(
        200,
        &TargetRequest {
            vcores: 1_000,
            memory_mb: am_memory.ceil() as u64 + 1,
            deadline_seconds: 3,
            reason: "online load rising".to_owned(),
        },
    );
    assert!(format!("{outcome:?}").contains("Shrinking"), "{outcome:?}");

    drive(&mut guarder, started, Duration::from_secs(30), || {
        [&mut executor, &mut task, &mut straggler]
            .into_iter()
            .all(|c| c.try_wait().ok().flatten().is_some())
    });

    let executor_exit = wait_exit(&mut executor, Duration::from_secs(5)).expect("executor left");
    assert_eq!(
        executor_exit.code(),
        Some(0),
        "decommissioned cleanly: {executor_exit:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&executor_marker).unwrap(),
        "decommissioning"
    );

    let task_exit = wait_exit(&mut task, Duration::from_secs(5)).expect("task left");
    assert_eq!(task_exit.signal(), Some(SIGTERM), "{task_exit:?}");
    assert_eq!(std::fs::read_to_string(&task_marker).unwrap(), "terminated");

    let straggler_exit = wait_exit(&mut straggler, Duration::from_secs(5)).expect("killed");
    assert_eq!(straggler_exit.signal(), Some(9), "{straggler_exit:?}");

    assert!(am.try_wait().unwrap().is_none(), "the AM survives");
    assert!(
        unrelated.try_wait().unwrap().is_none(),
        "unrelated processes are never touched"
    );

    let status = guarder.status();
    let count = |signal: &str, framework: &str| {
        status
            .signals
            .iter()
            .find(|s| s.signal == signal && s.framework == framework)
            .map_or(0, |s| s.count)
    };
    assert_eq!(count("SIGPWR", "spark_executor"), 1, "{:?}", status.signals);
    assert_eq!(count("SIGTERM", "mapreduce_task"), 1);
    assert_eq!(count("SIGTERM", "unknown"), 1);
    assert_eq!(count("SIGKILL", "unknown"), 1);
    assert_eq!(status.force_kills, 1, "only the straggler");
    assert_eq!(
        count("SIGKILL", "spark_executor") + count("SIGKILL", "mapreduce_task"),
        0
    );

    for child in [&mut am, &mut unrelated] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

const SIGTERM: i32 = 15;

#[test]
fn a_target_above_use_signals_nothing() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let stamp = stamp();
    let mut container = launch(Some(&container_id(stamp, 2)), "sleep 600 & wait $!");
    let mut guarder = guarder(true, 1_000, None);
    guarder.scan(0);
    let outcome = guarder.set_target(
        0,
        &TargetRequest {
            vcores: 64,
            memory_mb: 1 << 20,
            deadline_seconds: 0,
            reason: "grow".to_owned(),
        },
    );
    assert!(format!("{outcome:?}").contains("NoOp"), "{outcome:?}");
    drive(&mut guarder, Instant::now(), Duration::from_secs(2), || {
        false
    });
    assert!(container.try_wait().unwrap().is_none());
    assert_eq!(guarder.status().no_op_targets, 1);
    let _ = container.kill();
    let _ = container.wait();
}

/// A container found only through its cgroup v1 groups (its environment has no
/// `CONTAINER_ID`), measured with the groups' accounting.
#[test]
fn cgroup_v1_groups_find_and_measure_a_container() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = Path::new("/sys/fs/cgroup");
    let layout = CgroupLayout::detect(root);
    let hierarchy = PathBuf::from(format!("elastic-yarn-guarder-test-{}", std::process::id()))
        .join("hadoop-yarn");
    let id = container_id(stamp(), 9);
    let groups: Vec<PathBuf> = ["cpu", "cpuacct", "memory"]
        .iter()
        .map(|controller| root.join(controller).join(&hierarchy).join(&id))
        .collect();
    let created = matches!(layout, Ok(CgroupLayout::V1 { .. }))
        && groups.iter().all(|g| std::fs::create_dir_all(g).is_ok());
    if !created {
        assert!(
            !require_real(),
            "cgroup v1 cpu, cpuacct and memory must be writable here"
        );
        eprintln!("SKIPPED: cgroup v1 is not writable here");
        return;
    }
    let joins: Vec<String> = groups
        .iter()
        .map(|g| format!("echo $$ > {}/cgroup.procs", g.display()))
        .collect();
    let script = format!(
        "{} && exec python3 -c 'data = b\"x\" * (64 << 20)\nwhile True: pass'",
        joins.join(" && ")
    );
    let mut worker = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env_remove("CONTAINER_ID")
        .spawn()
        .expect("sh starts");

    let layout = layout.expect("detected");
    let mut guarder = guarder(false, 1_000, Some((layout, hierarchy.clone())));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let mut outcome = None;
    while Instant::now() < deadline {
        let now = started.elapsed().as_millis() as u64;
        guarder.scan(now);
        let status = guarder.status();
        outcome = status
            .containers
            .iter()
            .find(|c| c.container == id)
            .map(|c| (c.memory_mb, c.cpu_cores, c.framework));
        if outcome.is_some_and(|(memory, cpu, _)| memory >= 60.0 && cpu > 0.05) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = worker.kill();
    let _ = worker.wait();
    for group in &groups {
        let _ = std::fs::remove_dir(group);
        if let Some(yarn) = group.parent() {
            let _ = std::fs::remove_dir(yarn);
            if let Some(top) = yarn.parent() {
                let _ = std::fs::remove_dir(top);
            }
        }
    }
    let (memory_mb, cpu_cores, framework) = outcome.expect("found through its cgroup");
    assert!(memory_mb >= 60.0, "cgroup working set: {memory_mb} MiB");
    assert!(cpu_cores > 0.05, "cgroup CPU: {cpu_cores}");
    assert_eq!(framework, Framework::Unknown);
}

/// A drain of the whole NM (a zero target) with room before its deadline: the containers get
/// SIGTERM one after another by rank, the ApplicationMaster last, not all at once.
#[test]
fn a_drain_signals_one_container_after_another_with_the_am_last() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let stamp = stamp();
    let mut am = launch(Some(&container_id(stamp, 1)), "sleep 600 & wait $!");
    let mut tasks = [
        launch(Some(&container_id(stamp, 2)), "sleep 600 & wait $!"),
        launch(Some(&container_id(stamp, 3)), "sleep 600 & wait $!"),
    ];
    let mut guarder = guarder(false, 1_000, None);
    let started = Instant::now();
    guarder.scan(0);
    std::thread::sleep(Duration::from_millis(200));
    guarder.scan(200);
    // Drained by 4 s, a grace period of 1 s: signals spread over the first 3 s.
    guarder.set_target(
        200,
        &TargetRequest {
            vcores: 0,
            memory_mb: 0,
            deadline_seconds: 4,
            reason: "drain".to_owned(),
        },
    );
    // Who was gone at which poll: one signal at a time means three different polls.
    let [task_2, task_3] = &mut tasks;
    let mut children = [("task-2", task_2), ("task-3", task_3), ("am", &mut am)];
    let mut gone: Vec<(&str, u32)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut poll = 0;
    while gone.len() < 3 && Instant::now() < deadline {
        poll += 1;
        let now = started.elapsed().as_millis() as u64;
        guarder.scan(now);
        guarder.step(now);
        for (name, child) in &mut children {
            if !gone.iter().any(|(n, _)| n == name) && child.try_wait().ok().flatten().is_some() {
                gone.push((name, poll));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(gone.len(), 3, "every container left: {gone:?}");
    assert!(
        gone[0].1 < gone[1].1 && gone[1].1 < gone[2].1,
        "one after another, not at once: {gone:?}"
    );
    assert_eq!(gone[2].0, "am", "the AM last: {gone:?}");
    let terms = guarder
        .status()
        .signals
        .iter()
        .filter(|s| s.signal == "SIGTERM")
        .map(|s| s.count)
        .sum::<u64>();
    assert_eq!(terms, 3, "one SIGTERM each, no SIGKILL needed");
}
