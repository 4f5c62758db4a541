//! What each container uses: CPU as a rate between two scans, memory as resident bytes (or the
//! cgroup's working set when the container has a cgroup, which also counts page cache the
//! container dirtied and children that left the process tree).

use std::collections::HashMap;

use koordlet_metrics::cgroup::CgroupLayout;

use crate::container::ContainerId;
use crate::discovery::ContainerProcesses;
use crate::drain::ContainerUse;

const MIB: f64 = 1024.0 * 1024.0;

/// Turns successive scans into per-container use.
#[derive(Debug)]
pub struct UsageTracker {
    ticks_per_second: f64,
    layout: Option<CgroupLayout>,
    previous: HashMap<ContainerId, (u64, f64)>,
}

impl UsageTracker {
    /// A tracker; `layout` enables cgroup accounting for containers that have a cgroup.
    pub fn new(layout: Option<CgroupLayout>) -> UsageTracker {
        UsageTracker {
            ticks_per_second: procfs::ticks_per_second() as f64,
            layout,
            previous: HashMap::new(),
        }
    }

    /// The use of each container at `now_ms` (monotonic). `uptime_seconds` turns start ticks
    /// into running time. A container seen for the first time reports no CPU yet.
    pub fn measure(
        &mut self,
        now_ms: u64,
        uptime_seconds: f64,
        containers: &[ContainerProcesses],
    ) -> Vec<ContainerUse> {
        let mut seen = HashMap::with_capacity(containers.len());
        let uses = containers
            .iter()
            .map(|container| {
                let (cpu_seconds, memory_bytes) = self.counters(container);
                let cpu_cores = match self.previous.get(&container.id) {
                    Some((at_ms, before)) if now_ms > *at_ms && cpu_seconds >= *before => {
                        (cpu_seconds - before) / ((now_ms - at_ms) as f64 / 1000.0)
                    }
                    _ => 0.0,
                };
                seen.insert(container.id, (now_ms, cpu_seconds));
                let started = container.start_ticks() as f64 / self.ticks_per_second;
                ContainerUse {
                    id: container.id,
                    framework: container.framework,
                    application_master: container.application_master,
                    running_seconds: (uptime_seconds - started).max(0.0) as u64,
                    cpu_cores,
                    memory_mb: memory_bytes / MIB,
                }
            })
            .collect();
        self.previous = seen;
        uses
    }

    /// Cumulative CPU seconds and memory bytes, from the cgroup when it can be read.
    fn counters(&self, container: &ContainerProcesses) -> (f64, f64) {
        if let (Some(layout), Some(group)) = (&self.layout, &container.cgroup)
            && let (Ok(cpu_ns), Ok(memory)) = (
                layout.cpu_nanoseconds(group),
                layout.memory_working_set(group),
            )
        {
            return (cpu_ns as f64 / 1e9, memory as f64);
        }
        (
            container.cpu_ticks() as f64 / self.ticks_per_second,
            container.rss_bytes() as f64,
        )
    }
}
