//! The CPU cap a node puts on a pod's NodeManager container, enforced on the launcher's
//! NodeManager process tree as the node would: a cgroup (v1 `cpu` controller) whose CFS quota is
//! the container's CPU limit. The kubelet sets it from `cpu` limits; koordlet sets it from
//! `kubernetes.io/batch-cpu` limits on best-effort pods, which is what an NM pod carries. A
//! container with neither gets a cgroup with no quota. Every YARN container the NM starts is
//! its child and lands in the same cgroup, as in a pod.

use std::path::{Path, PathBuf};

use guarder::discovery::{ProcessInfo, scan_processes};
use k8s_openapi::api::core::v1::Container;
use kube_quantity::ParsedQuantity;

/// Where the cgroup v1 `cpu` controller is mounted.
const CPU_CONTROLLER: &str = "/sys/fs/cgroup/cpu";
/// CFS period the quota is a share of (the kubelet's).
const PERIOD_MICROS: u64 = 100_000;

/// The CPU limit of `container` in milli-cores: `cpu`, else koordlet's `kubernetes.io/batch-cpu`
/// (in milli-cores already); `None` when it has neither.
pub fn cpu_limit_millis(container: &Container) -> Result<Option<u64>, String> {
    let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
    let Some(limits) = limits else {
        return Ok(None);
    };
    if let Some(cpu) = limits.get("cpu") {
        return quantity(&cpu.0).map(|cores| Some((cores * 1000.0).round() as u64));
    }
    // Counted in milli-cores already.
    limits
        .get("kubernetes.io/batch-cpu")
        .map(|q| quantity(&q.0).map(|millis| millis.round() as u64))
        .transpose()
}

/// A quantity as the API server writes it (`2`, `1.5`, `500m`, `9k`, `2Gi`).
fn quantity(text: &str) -> Result<f64, String> {
    let parsed = ParsedQuantity::try_from(text).map_err(|e| format!("quantity {text:?}: {e}"))?;
    parsed
        .to_bytes_f64()
        .filter(|value| value.is_finite() && *value >= 0.0)
        .ok_or_else(|| format!("quantity {text:?} is not a size"))
}

/// One pod's cgroup; removed on drop (once its processes are gone).
#[derive(Debug)]
pub struct PodCgroup {
    path: PathBuf,
}

impl PodCgroup {
    /// Makes the cgroup `<run>/<pod>` with the quota of `limit_millis` (none for `None`) and
    /// moves every process of `root`'s tree into it.
    pub fn enforce(
        run: &str,
        pod: &str,
        limit_millis: Option<u64>,
        root: u32,
    ) -> Result<PodCgroup, String> {
        let controller = Path::new(CPU_CONTROLLER);
        if !controller.join("cpu.cfs_quota_us").is_file() {
            return Err(format!(
                "pod CPU limits are enforced with cgroup v1's cpu controller, not mounted at {CPU_CONTROLLER}"
            ));
        }
        let runs = controller.join("elastic-yarn-e2e");
        reap_stale_runs(&runs);
        let path = runs.join(run).join(pod);
        std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let group = PodCgroup { path };
        group.write("cpu.cfs_period_us", &PERIOD_MICROS.to_string())?;
        let quota = limit_millis.map_or_else(
            || "-1".to_owned(),
            |millis| (millis * PERIOD_MICROS / 1000).to_string(),
        );
        group.write("cpu.cfs_quota_us", &quota)?;
        let processes =
            scan_processes(Path::new("/proc")).map_err(|e| format!("reading /proc: {e}"))?;
        let root = i32::try_from(root).map_err(|e| e.to_string())?;
        for pid in tree(&processes, root) {
            group.write("cgroup.procs", &pid.to_string())?;
        }
        Ok(group)
    }

    /// The quota now, as the kernel holds it (`-1`: none).
    pub fn quota_micros(&self) -> Result<i64, String> {
        let text = std::fs::read_to_string(self.path.join("cpu.cfs_quota_us"))
            .map_err(|e| e.to_string())?;
        text.trim().parse().map_err(|e| format!("{text:?}: {e}"))
    }

    /// The cgroup's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        std::fs::write(self.path.join(file), value)
            .map_err(|e| format!("{} <- {value}: {e}", self.path.join(file).display()))
    }
}

/// The processes in the cgroup at `path` now (none when it is gone).
pub fn member_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// `root` and every process below it.
fn tree(processes: &[ProcessInfo], root: i32) -> Vec<i32> {
    let mut found = vec![root];
    let mut next = 0;
    while let Some(&parent) = found.get(next) {
        found.extend(processes.iter().filter(|p| p.ppid == parent).map(|p| p.pid));
        next += 1;
    }
    found
}

impl Drop for PodCgroup {
    fn drop(&mut self) {
        // As the kubelet ends a pod: every process of it, YARN's containers too (the
        // DefaultContainerExecutor starts each in a session of its own, so they outlive an NM
        // that is killed before it cleaned up).
        kill_members(&self.path);
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Kills what is left in the cgroups of earlier runs whose test process is gone (a run that
/// was killed runs no destructor), and removes them.
fn reap_stale_runs(root: &Path) {
    let Ok(runs) = std::fs::read_dir(root) else {
        return;
    };
    for run in runs.flatten() {
        let name = run.file_name().to_string_lossy().into_owned();
        let owner = name
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<i32>().ok());
        let alive = owner.is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        });
        if alive {
            continue;
        }
        let pods = std::fs::read_dir(run.path())
            .into_iter()
            .flatten()
            .flatten();
        for pod in pods.filter(|entry| entry.path().is_dir()) {
            kill_members(&pod.path());
            let _ = std::fs::remove_dir(pod.path());
        }
        let _ = std::fs::remove_dir(run.path());
    }
}

/// SIGKILL to every process in the cgroup at `path`, then a moment for them to go.
fn kill_members(path: &Path) {
    for _ in 0..20 {
        let members = member_pids(path);
        if members.is_empty() {
            return;
        }
        for pid in members {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_the_api_server_writes_them() {
        assert_eq!(quantity("2"), Ok(2.0));
        assert_eq!(quantity("1.5"), Ok(1.5));
        assert_eq!(quantity("500m"), Ok(0.5));
        assert_eq!(quantity("9k"), Ok(9000.0));
        assert_eq!(quantity("2Gi"), Ok(2_147_483_648.0));
        assert!(quantity("lots").is_err());
    }
}
