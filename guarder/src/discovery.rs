//! Finding the NodeManager's YARN containers among the processes of the pod (the guarder shares
//! the NM pod's PID namespace), and what each uses.
//!
//! A process belongs to a container when (docs/architecture.md, contract 5), in this order:
//! 1. its environment holds a valid `CONTAINER_ID` (the NM exports it into `launch_container.sh`
//!    and every child inherits it);
//! 2. it sits in the container's cgroup (`<mount>/hadoop-yarn/<container id>/cgroup.procs`),
//!    which catches children that cleared their environment;
//! 3. it descends from a process that belongs to one (a double fork keeps the parent chain
//!    only while the parent lives, so this is the last resort).
//!
//! Protected processes are never part of a container: PID 1, the guarder itself, and the
//! NodeManager (by its main class).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use koordlet_metrics::cgroup::CgroupLayout;
use procfs::Current as _;

use crate::container::{ContainerId, Framework};

/// The NodeManager's main class: never a container, never signalled.
pub const NODE_MANAGER_CLASS: &str = "org.apache.hadoop.yarn.server.nodemanager.NodeManager";

/// One process as read from `/proc`.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Start time, clock ticks after boot (with the pid, identifies the process across reuse).
    pub start_ticks: u64,
    /// User + system CPU time, clock ticks.
    pub cpu_ticks: u64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Command line as `/proc` gives it: arguments separated by NUL (or, where no NUL appears,
    /// by spaces).
    pub cmdline: String,
    /// Container id from the environment, when present and valid.
    pub container: Option<ContainerId>,
}

/// Which processes the guarder may consider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every process of the PID namespace (the NM pod's, shared with the guarder).
    #[default]
    Namespace,
    /// Only descendants of this process (tests, or an NM found by pid).
    DescendantsOf(i32),
}

/// Reads every process under `proc_root` that can be read. Processes that exit while being
/// read are skipped.
pub fn scan_processes(proc_root: &Path) -> std::io::Result<Vec<ProcessInfo>> {
    let processes = procfs::process::all_processes_with_root(proc_root)
        .map_err(|e| std::io::Error::other(format!("cannot list {}: {e}", proc_root.display())))?;
    let page_size = procfs::page_size();
    let mut found = Vec::new();
    for process in processes.flatten() {
        let Ok(stat) = process.stat() else {
            continue;
        };
        // Kernel threads have neither environment nor command line.
        if stat.pid == 2 || stat.ppid == 2 {
            continue;
        }
        let dir = proc_root.join(stat.pid.to_string());
        // Raw reads: a parsed environment map per process would cost more than the scan.
        let cmdline = std::fs::read(dir.join("cmdline"))
            .map(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .trim_end_matches('\0')
                    .to_owned()
            })
            .unwrap_or_default();
        let container = std::fs::read(dir.join("environ"))
            .ok()
            .and_then(|env| container_from_environ(&env));
        found.push(ProcessInfo {
            pid: stat.pid,
            ppid: stat.ppid,
            start_ticks: stat.starttime,
            cpu_ticks: stat.utime + stat.stime,
            rss_bytes: stat.rss.saturating_mul(page_size),
            cmdline,
            container,
        });
    }
    Ok(found)
}

/// `CONTAINER_ID` from a raw `/proc/<pid>/environ` (NUL-separated `KEY=value`), when valid.
fn container_from_environ(environ: &[u8]) -> Option<ContainerId> {
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(b"CONTAINER_ID="))
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.parse().ok())
}

/// The processes of the containers' cgroups, by container, when the NM uses cgroups.
pub fn cgroup_members(
    layout: &CgroupLayout,
    hierarchy: &Path,
) -> BTreeMap<ContainerId, (PathBuf, Vec<i32>)> {
    let mut members = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(layout.search_root().join(hierarchy)) else {
        return members;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.parse::<ContainerId>().ok()) else {
            continue;
        };
        let group = hierarchy.join(&name);
        if let Ok(pids) = layout.processes(&group) {
            members.insert(id, (group, pids));
        }
    }
    members
}

/// A YARN container and its processes.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerProcesses {
    /// The container.
    pub id: ContainerId,
    /// Its processes (never a protected one), sorted.
    pub processes: Vec<ProcessInfo>,
    /// What it runs, from the first process whose command line names a known class.
    pub framework: Framework,
    /// The process that classified it (the JVM), or the oldest process.
    pub main_pid: i32,
    /// An ApplicationMaster, by container number or class.
    pub application_master: bool,
    /// The container's cgroup (relative to the mounts), when it has one.
    pub cgroup: Option<PathBuf>,
}

impl ContainerProcesses {
    /// CPU ticks of all its processes.
    pub fn cpu_ticks(&self) -> u64 {
        self.processes.iter().map(|p| p.cpu_ticks).sum()
    }

    /// Resident bytes of all its processes.
    pub fn rss_bytes(&self) -> u64 {
        self.processes.iter().map(|p| p.rss_bytes).sum()
    }

    /// Start ticks of its oldest process.
    pub fn start_ticks(&self) -> u64 {
        self.processes
            .iter()
            .map(|p| p.start_ticks)
            .min()
            .unwrap_or(0)
    }
}

/// True for the processes the guarder must never signal: the pod's init process and itself.
pub fn is_protected(process: &ProcessInfo, own_pid: i32) -> bool {
    process.pid <= 1 || process.pid == own_pid
}

/// True when `process` is a JVM whose main class is exactly the NodeManager's. The class name
/// elsewhere on the command line (a `-D` value, a program argument) does not count.
pub fn runs_node_manager(process: &ProcessInfo) -> bool {
    java_main_class(&process.cmdline) == Some(NODE_MANAGER_CLASS)
}

/// The main class of a `java` command line: the first argument that is neither an option nor
/// an option's value. `None` for anything else (not a JVM, `-jar`, `--module`).
pub fn java_main_class(cmdline: &str) -> Option<&str> {
    // Launcher options whose value is the next argument (the `--opt=value` forms need no skip).
    const WITH_VALUE: [&str; 12] = [
        "-cp",
        "-classpath",
        "--class-path",
        "-p",
        "--module-path",
        "--upgrade-module-path",
        "--add-modules",
        "--add-opens",
        "--add-exports",
        "--add-reads",
        "--patch-module",
        "--limit-modules",
    ];
    let mut args = arguments(cmdline);
    let program = args.next()?;
    if program != "java" && !program.ends_with("/java") {
        return None;
    }
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
        } else if ["-jar", "-m", "--module"].contains(&arg) {
            return None;
        } else if WITH_VALUE.contains(&arg) {
            skip_value = true;
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

/// Groups processes into containers.
pub fn containers(
    processes: &[ProcessInfo],
    cgroups: &BTreeMap<ContainerId, (PathBuf, Vec<i32>)>,
    scope: Scope,
    own_pid: i32,
) -> Vec<ContainerProcesses> {
    let by_pid: HashMap<i32, &ProcessInfo> = processes.iter().map(|p| (p.pid, p)).collect();
    let in_scope = |pid: i32| match scope {
        Scope::Namespace => true,
        Scope::DescendantsOf(root) => descends_from(pid, root, &by_pid),
    };
    let mut owner: HashMap<i32, ContainerId> = HashMap::new();
    for process in processes {
        if let Some(id) = process.container {
            owner.insert(process.pid, id);
        }
    }
    for (id, (_, pids)) in cgroups {
        for pid in pids {
            owner.entry(*pid).or_insert(*id);
        }
    }
    for process in processes {
        if owner.contains_key(&process.pid) {
            continue;
        }
        if let Some(id) = attributed_ancestor(process.pid, &by_pid, &owner) {
            owner.insert(process.pid, id);
        }
    }
    // The NodeManager is never part of a container, even with a CONTAINER_ID leaking into its
    // environment; a container's own process naming the class stays in its container (else any
    // container could make itself unkillable): one below a container process or in a
    // container's cgroup is not the NM.
    let in_container_cgroup: HashSet<i32> = cgroups
        .values()
        .flat_map(|(_, pids)| pids.iter().copied())
        .collect();
    let is_the_node_manager = |process: &ProcessInfo| {
        runs_node_manager(process)
            && !in_container_cgroup.contains(&process.pid)
            && below_a_container(process.pid, &by_pid).is_none()
    };
    let mut grouped: BTreeMap<ContainerId, Vec<ProcessInfo>> = BTreeMap::new();
    for process in processes {
        if is_protected(process, own_pid) || is_the_node_manager(process) || !in_scope(process.pid)
        {
            continue;
        }
        if let Some(id) = owner.get(&process.pid) {
            grouped.entry(*id).or_default().push(process.clone());
        }
    }
    grouped
        .into_iter()
        .map(|(id, mut processes)| {
            processes.sort_by_key(|p| p.pid);
            // YARN's launch script ends in `exec bash -c "java … <class> …"`, so the shell's
            // command line names the class too; the JVM is the one to signal.
            let classified = processes
                .iter()
                .filter_map(|p| {
                    let framework = Framework::from_command_line(&p.cmdline);
                    (framework != Framework::Unknown).then_some((framework, p))
                })
                .max_by_key(|(_, p)| (is_jvm(&p.cmdline), p.start_ticks, p.pid))
                .map(|(framework, p)| (framework, p.pid));
            let oldest = processes
                .iter()
                .min_by_key(|p| (p.start_ticks, p.pid))
                .map_or(0, |p| p.pid);
            let (framework, main_pid) = classified.unwrap_or((Framework::Unknown, oldest));
            ContainerProcesses {
                id,
                application_master: id.is_application_master() || framework.is_application_master(),
                framework,
                main_pid,
                cgroup: cgroups.get(&id).map(|(group, _)| group.clone()),
                processes,
            }
        })
        .collect()
}

fn is_jvm(cmdline: &str) -> bool {
    arguments(cmdline)
        .next()
        .is_some_and(|program| program == "java" || program.ends_with("/java"))
}

/// The arguments of a command line: NUL-separated as read from `/proc`, so that an argument
/// with a space (`-XX:OnOutOfMemoryError=kill %p`) stays whole; space-separated otherwise.
fn arguments(cmdline: &str) -> impl Iterator<Item = &str> {
    let nul_separated = cmdline.contains('\0');
    cmdline
        .split(move |c: char| {
            if nul_separated {
                c == '\0'
            } else {
                c.is_whitespace()
            }
        })
        .filter(|arg| !arg.is_empty())
}

fn descends_from(pid: i32, root: i32, by_pid: &HashMap<i32, &ProcessInfo>) -> bool {
    let mut seen = HashSet::new();
    let mut current = pid;
    while let Some(process) = by_pid.get(&current) {
        if process.ppid == root {
            return true;
        }
        if !seen.insert(current) || process.ppid <= 0 {
            return false;
        }
        current = process.ppid;
    }
    false
}

/// The pids of the ancestors of `pid`, nearest first, down to (not including) PID 1; the walk
/// ends at a process not scanned, or at a cycle.
fn ancestors<'a>(
    pid: i32,
    by_pid: &'a HashMap<i32, &'a ProcessInfo>,
) -> impl Iterator<Item = i32> + 'a {
    let mut seen = HashSet::new();
    let mut current = by_pid.get(&pid).map(|p| p.ppid);
    std::iter::from_fn(move || {
        let pid = current.filter(|pid| *pid > 1 && seen.insert(*pid))?;
        current = by_pid.get(&pid).map(|p| p.ppid);
        Some(pid)
    })
}

/// The container of the nearest ancestor that names one in its own environment.
fn below_a_container(pid: i32, by_pid: &HashMap<i32, &ProcessInfo>) -> Option<ContainerId> {
    ancestors(pid, by_pid).find_map(|ancestor| by_pid.get(&ancestor)?.container)
}

fn attributed_ancestor(
    pid: i32,
    by_pid: &HashMap<i32, &ProcessInfo>,
    owner: &HashMap<i32, ContainerId>,
) -> Option<ContainerId> {
    ancestors(pid, by_pid).find_map(|ancestor| owner.get(&ancestor).copied())
}

/// Seconds since boot, to turn start ticks into running time.
pub fn uptime_seconds() -> f64 {
    procfs::Uptime::current().map_or(0.0, |u| u.uptime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: i32, ppid: i32, cmdline: &str, container: Option<&str>) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            start_ticks: pid as u64,
            cpu_ticks: 10,
            rss_bytes: 1 << 20,
            cmdline: cmdline.to_owned(),
            container: container.map(|c| c.parse().unwrap()),
        }
    }

    const EXECUTOR: &str = "container_e07_1700000000000_0001_01_000002";
    const AM: &str = "container_e07_1700000000000_0001_01_000001";

    fn pod() -> Vec<ProcessInfo> {
        vec![
            process(1, 0, "/usr/bin/tini -- nodemanager", None),
            process(10, 1, &format!("java -Xmx1g {NODE_MANAGER_CLASS}"), None),
            process(20, 10, "bash launch_container.sh", Some(EXECUTOR)),
            // What launch_container.sh execs: a shell whose command line names the class.
            process(
                19,
                20,
                "/bin/bash -c /usr/lib/jvm/bin/java -server org.apache.spark.executor.YarnCoarseGrainedExecutorBackend",
                Some(EXECUTOR),
            ),
            process(
                21,
                20,
                "java -server org.apache.spark.executor.YarnCoarseGrainedExecutorBackend --executor-id 1",
                Some(EXECUTOR),
            ),
            // A child that cleared its environment, found through its parent.
            process(22, 21, "python3 worker.py", None),
            process(30, 10, "bash launch_container.sh", Some(AM)),
            process(
                31,
                30,
                "java org.apache.spark.deploy.yarn.ApplicationMaster --class x",
                Some(AM),
            ),
            process(40, 1, "guarder --listen 0.0.0.0:9321", None),
            process(50, 1, "sleep 100", None),
        ]
    }

    #[test]
    fn groups_processes_by_environment_and_parent_chain() {
        let found = containers(&pod(), &BTreeMap::new(), Scope::Namespace, 40);
        assert_eq!(found.len(), 2);
        let executor = found.iter().find(|c| c.id.to_string() == EXECUTOR).unwrap();
        let pids: Vec<i32> = executor.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [19, 20, 21, 22]);
        assert_eq!(executor.framework, Framework::SparkExecutor);
        assert_eq!(executor.main_pid, 21);
        assert!(!executor.application_master);
        let am = found.iter().find(|c| c.id.to_string() == AM).unwrap();
        assert!(am.application_master);
        assert_eq!(am.framework, Framework::SparkApplicationMaster);
    }

    #[test]
    fn protected_processes_never_join_a_container() {
        let mut processes = pod();
        // Even with a CONTAINER_ID leaking into them: PID 1, the NM and the guarder itself.
        for p in processes
            .iter_mut()
            .filter(|p| [1, 10, 40].contains(&p.pid))
        {
            p.container = Some(EXECUTOR.parse().unwrap());
        }
        let found = containers(&processes, &BTreeMap::new(), Scope::Namespace, 40);
        let all: Vec<i32> = found
            .iter()
            .flat_map(|c| c.processes.iter().map(|p| p.pid))
            .collect();
        assert!(
            !all.contains(&1) && !all.contains(&10) && !all.contains(&40),
            "{all:?}"
        );
        assert!(!all.contains(&50), "unrelated processes stay out");
    }

    #[rstest::rstest]
    #[case::hadoop_launcher(
        "/usr/lib/jvm/bin/java\0-Dproc_nodemanager\0-Xmx1g\0-XX:OnOutOfMemoryError=kill -9 %p\0org.apache.hadoop.yarn.server.nodemanager.NodeManager",
        Some(NODE_MANAGER_CLASS)
    )]
    #[case::classpath_value_skipped(
        "java\0-cp\0/opt/hadoop/lib/*\0--add-opens\0java.base/java.lang=ALL-UNNAMED\0org.apache.hadoop.yarn.server.nodemanager.NodeManager",
        Some(NODE_MANAGER_CLASS)
    )]
    #[case::class_in_a_property(
        "java\0-Dx=org.apache.hadoop.yarn.server.nodemanager.NodeManager\0org.example.Miner",
        Some("org.example.Miner")
    )]
    #[case::class_as_an_argument(
        "java\0org.example.Miner\0org.apache.hadoop.yarn.server.nodemanager.NodeManager",
        Some("org.example.Miner")
    )]
    #[case::a_space_inside_an_option(
        "java\0-XX:OnOutOfMemoryError=kill org.apache.hadoop.yarn.server.nodemanager.NodeManager\0org.example.Miner",
        Some("org.example.Miner")
    )]
    #[case::a_jar(
        "java\0-jar\0nm.jar\0org.apache.hadoop.yarn.server.nodemanager.NodeManager",
        None
    )]
    #[case::not_java("python3\0org.apache.hadoop.yarn.server.nodemanager.NodeManager", None)]
    fn the_main_class_is_the_first_argument_after_the_options(
        #[case] cmdline: &str,
        #[case] expected: Option<&str>,
    ) {
        assert_eq!(java_main_class(cmdline), expected);
    }

    #[test]
    fn a_container_naming_the_node_manager_class_is_still_a_container() {
        let mut processes = pod();
        // Below a container's launch script, or in its cgroup, with the NM class as main class.
        processes.push(process(
            23,
            20,
            &format!("java -Xmx1g {NODE_MANAGER_CLASS}"),
            None,
        ));
        processes.push(process(61, 1, &format!("java {NODE_MANAGER_CLASS}"), None));
        let mr: ContainerId = "container_1700000000000_0002_01_000005".parse().unwrap();
        let cgroups = BTreeMap::from([(
            mr,
            (PathBuf::from("hadoop-yarn").join(mr.to_string()), vec![61]),
        )]);
        let found = containers(&processes, &cgroups, Scope::Namespace, 40);
        let members = |id: String| -> Vec<i32> {
            found
                .iter()
                .find(|c| c.id.to_string() == id)
                .map(|c| c.processes.iter().map(|p| p.pid).collect())
                .unwrap_or_default()
        };
        assert!(members(EXECUTOR.to_owned()).contains(&23));
        assert_eq!(members(mr.to_string()), [61]);
        assert!(
            !found
                .iter()
                .any(|c| c.processes.iter().any(|p| p.pid == 10))
        );
    }

    #[test]
    fn cgroup_membership_finds_processes_without_the_environment() {
        let mut processes = pod();
        processes.push(process(
            60,
            1,
            "java org.apache.hadoop.mapred.YarnChild 10.0.0.1",
            None,
        ));
        let mr: ContainerId = "container_1700000000000_0002_01_000005".parse().unwrap();
        let cgroups = BTreeMap::from([(
            mr,
            (PathBuf::from("hadoop-yarn").join(mr.to_string()), vec![60]),
        )]);
        let found = containers(&processes, &cgroups, Scope::Namespace, 40);
        let task = found.iter().find(|c| c.id == mr).unwrap();
        assert_eq!(task.framework, Framework::MapReduceTask);
        assert_eq!(
            task.cgroup.as_deref(),
            Some(Path::new("hadoop-yarn").join(mr.to_string()).as_path())
        );
    }

    #[test]
    fn reads_container_groups_of_a_v2_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let group = root.join("hadoop-yarn").join(EXECUTOR);
        std::fs::create_dir_all(&group).unwrap();
        std::fs::write(group.join("cgroup.procs"), "21\n22\n").unwrap();
        // Not a container: the NM's own sub-group, and a malformed name.
        std::fs::create_dir_all(root.join("hadoop-yarn/nodemanager")).unwrap();
        let layout = CgroupLayout::detect(root).unwrap();
        let members = cgroup_members(&layout, Path::new("hadoop-yarn"));
        let id: ContainerId = EXECUTOR.parse().unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[&id].1, [21, 22]);
        assert_eq!(members[&id].0, Path::new("hadoop-yarn").join(EXECUTOR));
        assert!(cgroup_members(&layout, Path::new("absent")).is_empty());
    }

    #[test]
    fn a_scope_keeps_only_descendants() {
        let found = containers(&pod(), &BTreeMap::new(), Scope::DescendantsOf(30), 40);
        let pids: Vec<i32> = found
            .iter()
            .flat_map(|c| c.processes.iter().map(|p| p.pid))
            .collect();
        assert_eq!(pids, [31]);
    }

    #[test]
    fn container_id_comes_from_the_raw_environment() {
        let env = b"PATH=/bin\0CONTAINER_ID=container_e07_1700000000000_0001_01_000002\0HOME=/\0";
        assert_eq!(container_from_environ(env), Some(EXECUTOR.parse().unwrap()));
        assert_eq!(
            container_from_environ(
                b"NOT_CONTAINER_ID=container_e07_1700000000000_0001_01_000002\0"
            ),
            None
        );
        assert_eq!(container_from_environ(b"CONTAINER_ID=garbage\0"), None);
    }

    #[test]
    fn reads_this_process_from_proc() {
        let processes = scan_processes(Path::new("/proc")).unwrap();
        let me = processes
            .iter()
            .find(|p| p.pid == std::process::id() as i32)
            .unwrap();
        assert!(me.rss_bytes > 0);
        assert!(!me.cmdline.is_empty());
    }
}
