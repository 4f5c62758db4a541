//! YARN's own CPU and memory use, read from the NodeManager's cgroup hierarchy.
//!
//! The NodeManager's LinuxContainerExecutor puts every container under one hierarchy
//! (`hadoop-yarn` by default, docs/architecture.md, contract 5): on cgroup v1 under each controller's mount,
//! on v2 under the unified mount. Usage there is hierarchical, so the hierarchy's own counters
//! are YARN's total. CPU is a counter (`cpuacct.usage`, `cpu.stat` `usage_usec`): the rate comes
//! from two reads, and a counter that goes backwards (the NM recreated the group) restarts the
//! measurement instead of producing a negative rate. Memory is the working set (usage minus
//! inactive file cache), the figure kubelet and koordlet use.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::availability::YarnUsage;

/// How often the hierarchy patterns are matched again (NMs come and go; reading is every
/// scrape, searching is not).
const REDISCOVER_EVERY_MS: u64 = 30_000;

/// Where the cgroup controllers are mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupLayout {
    /// cgroup v1: one mount per controller.
    V1 {
        /// The mount holding `cpuacct` (`cpuacct` or `cpu,cpuacct`).
        cpuacct: PathBuf,
        /// The mount holding `memory`.
        memory: PathBuf,
    },
    /// cgroup v2: one unified mount.
    V2 {
        /// The unified mount.
        root: PathBuf,
    },
}

/// Why YARN's use could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Neither a v2 mount nor v1 `cpuacct` and `memory` mounts under the root.
    #[error("no cgroup v2 mount and no cgroup v1 cpuacct and memory mounts under {root}")]
    NoLayout {
        /// The cgroup root given.
        root: PathBuf,
    },
    /// A pattern is not a valid glob.
    #[error("YARN cgroup pattern {pattern:?} is invalid: {message}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        message: String,
    },
    /// A counter file could not be read or parsed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl CgroupError {
    /// Short stable category, for metric labels.
    pub const fn category(&self) -> &'static str {
        match self {
            CgroupError::NoLayout { .. } => "no_cgroup_layout",
            CgroupError::BadPattern { .. } => "bad_pattern",
            CgroupError::Read { .. } => "cgroup_read",
        }
    }
}

impl CgroupLayout {
    /// Finds the controllers under `root` (usually `/sys/fs/cgroup`). A hybrid host (v1
    /// controllers plus an empty v2 mount) is v1.
    pub fn detect(root: &Path) -> Result<CgroupLayout, CgroupError> {
        let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        let v2_has = |name: &str| controllers.split_whitespace().any(|c| c == name);
        if v2_has("cpu") && v2_has("memory") {
            return Ok(CgroupLayout::V2 {
                root: root.to_owned(),
            });
        }
        let mut cpuacct = None;
        let mut memory = None;
        if let Ok(entries) = fs::read_dir(root) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                // Prefer the exact mount over a co-mount symlink; either reads the same group.
                if name.split(',').any(|c| c == "cpuacct")
                    && (cpuacct.is_none() || name == "cpuacct")
                {
                    cpuacct = Some(path.clone());
                }
                if name.split(',').any(|c| c == "memory") {
                    memory = Some(path);
                }
            }
        }
        match (cpuacct, memory) {
            (Some(cpuacct), Some(memory)) => Ok(CgroupLayout::V1 { cpuacct, memory }),
            _ => Err(CgroupError::NoLayout {
                root: root.to_owned(),
            }),
        }
    }

    /// The directory to match patterns in (v1: the memory mount; cpuacct mirrors it).
    pub fn search_root(&self) -> &Path {
        match self {
            CgroupLayout::V1 { memory, .. } => memory,
            CgroupLayout::V2 { root } => root,
        }
    }

    /// Cumulative CPU time of a group (relative to the mounts), nanoseconds.
    pub fn cpu_nanoseconds(&self, group: &Path) -> Result<u64, CgroupError> {
        match self {
            CgroupLayout::V1 { cpuacct, .. } => {
                let path = cpuacct.join(group).join("cpuacct.usage");
                read_u64(&path, |text| text.trim().parse().ok())
            }
            CgroupLayout::V2 { root } => {
                let path = root.join(group).join("cpu.stat");
                let micros = read_u64(&path, |text| stat_field(text, "usage_usec"))?;
                Ok(micros.saturating_mul(1_000))
            }
        }
    }

    /// Working set of a group (relative to the mounts), bytes.
    pub fn memory_working_set(&self, group: &Path) -> Result<u64, CgroupError> {
        let (usage_file, inactive_field, base) = match self {
            CgroupLayout::V1 { memory, .. } => {
                ("memory.usage_in_bytes", "total_inactive_file", memory)
            }
            CgroupLayout::V2 { root } => ("memory.current", "inactive_file", root),
        };
        let dir = base.join(group);
        let usage = read_u64(&dir.join(usage_file), |text| text.trim().parse().ok())?;
        let inactive = read_u64(&dir.join("memory.stat"), |text| {
            stat_field(text, inactive_field)
        })?;
        Ok(usage.saturating_sub(inactive))
    }

    /// Processes in a group (relative to the mounts), not its descendants.
    pub fn processes(&self, group: &Path) -> Result<Vec<i32>, CgroupError> {
        let path = self.search_root().join(group).join("cgroup.procs");
        let text = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(text
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect())
    }
}

fn read_u64(path: &Path, parse: impl Fn(&str) -> Option<u64>) -> Result<u64, CgroupError> {
    let text = fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).ok_or_else(|| CgroupError::Read {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, "unexpected content"),
    })
}

fn stat_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == field).then(|| value.trim().parse().ok())?
    })
}

/// Reads YARN's use from the hierarchies that match the configured patterns.
#[derive(Debug)]
pub struct YarnCgroups {
    layout: CgroupLayout,
    patterns: Vec<glob::Pattern>,
    groups: Vec<PathBuf>,
    discovered_at_ms: Option<u64>,
    last_cpu: HashMap<PathBuf, (u64, u64)>,
}

impl YarnCgroups {
    /// `patterns` are globs relative to the controller mounts (`hadoop-yarn`,
    /// `kubepods/besteffort/*/*/hadoop-yarn`). No pattern means YARN uses nothing.
    pub fn new(layout: CgroupLayout, patterns: &[String]) -> Result<YarnCgroups, CgroupError> {
        let patterns = patterns
            .iter()
            .map(|pattern| {
                glob::Pattern::new(pattern).map_err(|e| CgroupError::BadPattern {
                    pattern: pattern.clone(),
                    message: e.msg.to_owned(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(YarnCgroups {
            layout,
            patterns,
            groups: Vec::new(),
            discovered_at_ms: None,
            last_cpu: HashMap::new(),
        })
    }

    /// The groups currently summed, relative to the mounts.
    pub fn groups(&self) -> &[PathBuf] {
        &self.groups
    }

    fn discover(&mut self) {
        let root = self.layout.search_root();
        let mut found = Vec::new();
        for pattern in &self.patterns {
            let full = root.join(pattern.as_str());
            let Ok(paths) = glob::glob(&full.to_string_lossy()) else {
                continue;
            };
            for path in paths.flatten() {
                if path.is_dir()
                    && let Ok(relative) = path.strip_prefix(root)
                    && !found.iter().any(|f: &PathBuf| f == relative)
                {
                    found.push(relative.to_owned());
                }
            }
        }
        found.sort();
        self.last_cpu.retain(|group, _| found.contains(group));
        self.groups = found;
    }

    /// YARN's use at `now_ms` (a monotonic clock). `Ok(None)` while a CPU rate cannot be known
    /// yet: right after start, or when a group appeared or its counter went backwards.
    pub fn read(&mut self, now_ms: u64) -> Result<Option<YarnUsage>, CgroupError> {
        let due = self
            .discovered_at_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= REDISCOVER_EVERY_MS);
        if due {
            self.discover();
            self.discovered_at_ms = Some(now_ms);
        }
        match self.read_groups(now_ms) {
            Ok(usage) => Ok(usage),
            Err(error) => {
                // A group that vanished (the NM restarted): search again at the next read.
                self.discovered_at_ms = None;
                Err(error)
            }
        }
    }

    fn read_groups(&mut self, now_ms: u64) -> Result<Option<YarnUsage>, CgroupError> {
        let mut usage = YarnUsage {
            cgroups: self.groups.len(),
            ..YarnUsage::default()
        };
        let mut rate_known = true;
        for group in &self.groups {
            let cpu_ns = self.layout.cpu_nanoseconds(group)?;
            usage.memory_bytes += self.layout.memory_working_set(group)? as f64;
            let previous = self.last_cpu.insert(group.clone(), (now_ms, cpu_ns));
            match previous {
                Some((at_ms, before_ns)) if now_ms > at_ms && cpu_ns >= before_ns => {
                    let elapsed_ns = (now_ms - at_ms) as f64 * 1e6;
                    usage.cpu_cores += (cpu_ns - before_ns) as f64 / elapsed_ns;
                }
                _ => rate_known = false,
            }
        }
        Ok(rate_known.then_some(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn v2_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        );
        dir
    }

    fn set_v2(root: &Path, group: &str, usage_usec: u64, current: u64, inactive: u64) {
        write(
            &root.join(group).join("cpu.stat"),
            &format!("usage_usec {usage_usec}\nuser_usec 1\nsystem_usec 2\n"),
        );
        write(
            &root.join(group).join("memory.current"),
            &format!("{current}\n"),
        );
        write(
            &root.join(group).join("memory.stat"),
            &format!("anon 5\nfile 9\nactive_file 1\ninactive_file {inactive}\n"),
        );
    }

    #[test]
    fn detects_v2_and_v1_and_refuses_neither() {
        let v2 = v2_tree();
        assert_eq!(
            CgroupLayout::detect(v2.path()).unwrap(),
            CgroupLayout::V2 {
                root: v2.path().to_owned()
            }
        );
        let v1 = tempfile::tempdir().unwrap();
        fs::create_dir_all(v1.path().join("cpu,cpuacct")).unwrap();
        fs::create_dir_all(v1.path().join("memory")).unwrap();
        // A hybrid host's empty unified mount does not make it v2.
        write(&v1.path().join("unified/cgroup.controllers"), "");
        assert_eq!(
            CgroupLayout::detect(v1.path()).unwrap(),
            CgroupLayout::V1 {
                cpuacct: v1.path().join("cpu,cpuacct"),
                memory: v1.path().join("memory"),
            }
        );
        let empty = tempfile::tempdir().unwrap();
        let err = CgroupLayout::detect(empty.path()).unwrap_err();
        assert_eq!(err.category(), "no_cgroup_layout");
    }

    #[test]
    fn cpu_rate_from_two_reads_and_working_set_memory_summed_over_groups() {
        let tree = v2_tree();
        let root = tree.path();
        set_v2(root, "pods/a/hadoop-yarn", 1_000_000, 3_000, 1_000);
        set_v2(root, "pods/b/hadoop-yarn", 0, 5_000, 0);
        let layout = CgroupLayout::detect(root).unwrap();
        let mut yarn = YarnCgroups::new(layout, &["pods/*/hadoop-yarn".to_owned()]).unwrap();
        assert_eq!(yarn.read(10_000).unwrap(), None, "no rate after one read");
        assert_eq!(yarn.groups().len(), 2);
        // Two seconds later: group a used 3 s of CPU, group b 1 s: 2 cores together.
        set_v2(root, "pods/a/hadoop-yarn", 4_000_000, 3_000, 1_000);
        set_v2(root, "pods/b/hadoop-yarn", 1_000_000, 5_000, 0);
        let usage = yarn.read(12_000).unwrap().unwrap();
        assert!((usage.cpu_cores - 2.0).abs() < 1e-12, "{usage:?}");
        assert_eq!(usage.memory_bytes, 7_000.0);
        assert_eq!(usage.cgroups, 2);
    }

    #[test]
    fn a_counter_that_goes_backwards_restarts_the_rate() {
        let tree = v2_tree();
        let root = tree.path();
        set_v2(root, "hadoop-yarn", 9_000_000, 0, 0);
        let layout = CgroupLayout::detect(root).unwrap();
        let mut yarn = YarnCgroups::new(layout, &["hadoop-yarn".to_owned()]).unwrap();
        assert_eq!(yarn.read(0).unwrap(), None);
        set_v2(root, "hadoop-yarn", 1_000, 0, 0);
        assert_eq!(yarn.read(1_000).unwrap(), None, "reset gives no rate");
        set_v2(root, "hadoop-yarn", 501_000, 0, 0);
        let usage = yarn.read(2_000).unwrap().unwrap();
        assert!((usage.cpu_cores - 0.5).abs() < 1e-12);
    }

    #[test]
    fn no_group_means_yarn_uses_nothing_and_a_vanished_group_is_an_error() {
        let tree = v2_tree();
        let root = tree.path();
        let layout = CgroupLayout::detect(root).unwrap();
        let mut yarn = YarnCgroups::new(layout, &["hadoop-yarn".to_owned()]).unwrap();
        assert_eq!(yarn.read(0).unwrap(), Some(YarnUsage::default()));
        set_v2(root, "hadoop-yarn", 0, 10, 0);
        // Found at the next discovery (30 s later), then removed.
        assert_eq!(yarn.read(30_000).unwrap(), None);
        fs::remove_dir_all(root.join("hadoop-yarn")).unwrap();
        let err = yarn.read(31_000).unwrap_err();
        assert_eq!(err.category(), "cgroup_read");
        // The next read searches again and finds nothing.
        assert_eq!(yarn.read(32_000).unwrap(), Some(YarnUsage::default()));
    }

    #[test]
    fn v1_reads_cpuacct_and_memory_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            &root.join("cpu,cpuacct/hadoop-yarn/cpuacct.usage"),
            "1000000000\n",
        );
        write(
            &root.join("memory/hadoop-yarn/memory.usage_in_bytes"),
            "8192\n",
        );
        write(
            &root.join("memory/hadoop-yarn/memory.stat"),
            "cache 10\ninactive_file 99\ntotal_inactive_file 4096\n",
        );
        let layout = CgroupLayout::detect(root).unwrap();
        let mut yarn = YarnCgroups::new(layout, &["hadoop-yarn".to_owned()]).unwrap();
        assert_eq!(yarn.read(0).unwrap(), None);
        write(
            &root.join("cpu,cpuacct/hadoop-yarn/cpuacct.usage"),
            "1500000000\n",
        );
        let usage = yarn.read(1_000).unwrap().unwrap();
        assert!((usage.cpu_cores - 0.5).abs() < 1e-12);
        assert_eq!(usage.memory_bytes, 4096.0);
    }

    #[test]
    fn a_bad_pattern_is_a_clear_error() {
        let tree = v2_tree();
        let layout = CgroupLayout::detect(tree.path()).unwrap();
        let err = YarnCgroups::new(layout, &["[".to_owned()]).unwrap_err();
        assert_eq!(err.category(), "bad_pattern");
        assert!(err.to_string().contains("\"[\""), "{err}");
    }
}
