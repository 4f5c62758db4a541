//! YARN's use read from real cgroup v1 groups (this machine mounts cgroup v1, writable as root):
//! a process that burns CPU and holds 64 MiB runs inside `hadoop-yarn/<container id>`, and both
//! the library and the exporter binary must see it.
//!
//! Where cgroups are not writable the tests are skipped with a message, unless
//! `ELASTIC_YARN_REQUIRE_REAL=1` (set by `scripts/test`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use koordlet_metrics::cgroup::{CgroupLayout, YarnCgroups};
use koordlet_metrics::replay::{AfterLastStep, ReplayStep, render_page};
use support::{Exporter, NODE, start_steps, trace_pages};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CONTAINER: &str = "container_e17_1700000000000_0042_01_000002";

/// A YARN-like hierarchy under the cpuacct and memory mounts, removed when dropped.
struct YarnHierarchy {
    top: String,
    containers: Vec<PathBuf>,
    workload: Option<Child>,
}

impl YarnHierarchy {
    fn create(layout: &CgroupLayout) -> Option<YarnHierarchy> {
        let CgroupLayout::V1 { cpuacct, memory } = layout else {
            return None;
        };
        let top = format!("elastic-yarn-test-{}-{}", std::process::id(), unique());
        let containers: Vec<PathBuf> = [cpuacct, memory]
            .iter()
            .map(|mount| mount.join(&top).join("hadoop-yarn").join(CONTAINER))
            .collect();
        let mut hierarchy = YarnHierarchy {
            top,
            containers: Vec::new(),
            workload: None,
        };
        for dir in containers {
            if std::fs::create_dir_all(&dir).is_err() {
                return None;
            }
            hierarchy.containers.push(dir);
        }
        Some(hierarchy)
    }

    fn pattern(&self) -> String {
        format!("{}/hadoop-yarn", self.top)
    }

    /// Starts a process that joins the container's groups before it allocates anything, then
    /// touches 64 MiB and spins.
    fn start_workload(&mut self) {
        let joins: Vec<String> = self
            .containers
            .iter()
            .map(|dir| format!("echo $$ > {}/cgroup.procs", dir.display()))
            .collect();
        let script = format!(
            "{} && exec python3 -c 'data = b\"x\" * (64 << 20)\nwhile True: pass'",
            joins.join(" && ")
        );
        self.workload = Some(
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .spawn()
                .expect("sh starts"),
        );
    }
}

impl Drop for YarnHierarchy {
    fn drop(&mut self) {
        if let Some(mut child) = self.workload.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in &self.containers {
            let _ = std::fs::remove_dir(dir);
            if let Some(yarn) = dir.parent() {
                let _ = std::fs::remove_dir(yarn);
                if let Some(top) = yarn.parent() {
                    let _ = std::fs::remove_dir(top);
                }
            }
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn writable_hierarchy() -> Option<(CgroupLayout, YarnHierarchy)> {
    let required = std::env::var("ELASTIC_YARN_REQUIRE_REAL").as_deref() == Ok("1");
    let layout = CgroupLayout::detect(Path::new(CGROUP_ROOT));
    let hierarchy = layout.as_ref().ok().and_then(YarnHierarchy::create);
    match (layout, hierarchy) {
        (Ok(layout), Some(hierarchy)) => Some((layout, hierarchy)),
        (layout, _) => {
            assert!(!required, "cgroup v1 is not writable here: {layout:?}");
            eprintln!("SKIPPED: cgroup v1 cpuacct and memory are not writable here ({layout:?})");
            None
        }
    }
}

#[test]
fn a_busy_container_shows_up_in_yarns_use() {
    let Some((layout, mut hierarchy)) = writable_hierarchy() else {
        return;
    };
    hierarchy.start_workload();
    std::thread::sleep(Duration::from_millis(800));
    let mut yarn = YarnCgroups::new(layout, &[hierarchy.pattern()]).unwrap();
    let started = Instant::now();
    assert_eq!(yarn.read(0).unwrap(), None, "one read gives no CPU rate");
    std::thread::sleep(Duration::from_millis(1500));
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let usage = yarn
        .read(elapsed_ms)
        .unwrap()
        .expect("a rate after two reads");
    assert_eq!(usage.cgroups, 1);
    // One spinning thread: some CPU, never much more than one core.
    assert!(usage.cpu_cores > 0.05 && usage.cpu_cores < 1.2, "{usage:?}");
    assert!(usage.memory_bytes >= 60.0 * 1024.0 * 1024.0, "{usage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_adds_yarns_own_use_back() {
    let Some((_layout, mut hierarchy)) = writable_hierarchy() else {
        return;
    };
    hierarchy.start_workload();
    let mut page = trace_pages(1)[0];
    // All BE use is YARN's busy container, and a bit more.
    page.be_used_cpu_cores = 1.5;
    let steps = vec![ReplayStep::Page(render_page(NODE, &page, 10))];
    let (_double, koordlet) = start_steps(steps, AfterLastStep::RepeatLast).await;
    let exporter = Exporter::start(
        koordlet,
        &[
            "--cgroup-root",
            CGROUP_ROOT,
            "--yarn-cgroup",
            &hierarchy.pattern(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let latest = loop {
        let report = exporter.report().await;
        let grown = |l: &koordlet_metrics::report::LatestSample| {
            l.inputs.yarn.cpu_cores > 0.05 && l.inputs.yarn.memory_bytes >= 60.0 * 1024.0 * 1024.0
        };
        if let Some(latest) = report.latest.filter(grown) {
            break latest;
        }
        assert!(
            Instant::now() < deadline,
            "YARN's use never showed: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let inputs = latest.inputs;
    assert_eq!(inputs.yarn.cgroups, 1);
    let other_batch = (inputs.be_used_cpu_cores - inputs.yarn.cpu_cores).max(0.0);
    assert_eq!(latest.cpu_cores, inputs.suppress.cores - other_batch);
    assert!(
        latest.cpu_cores > inputs.suppress.cores - 1.5,
        "YARN's own use was added back"
    );
}
