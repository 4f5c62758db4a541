//! Delivering an [`Order`] to a container's processes with `nix`.
//!
//! SIGPWR goes to the Spark executor's JVM only: the launch shell around it would die of it
//! (SIGPWR's default action is to terminate). SIGTERM and SIGKILL go to every process of the
//! container, as the NodeManager signals a container's whole process group. Before each signal
//! the process is checked again: still alive, same start time (a reused pid is another process),
//! and not protected.

use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::container::Framework;
use crate::discovery::{ContainerProcesses, ProcessInfo, is_protected};
use crate::drain::{Order, SignalKind};

/// What a delivery did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Processes signalled.
    pub signalled: usize,
    /// Processes that had already exited or were replaced by another process.
    pub gone: usize,
    /// Processes the kernel refused to signal.
    pub refused: usize,
}

/// The signal of an order.
pub const fn signal_of(kind: SignalKind) -> Signal {
    match kind {
        SignalKind::Decommission => Signal::SIGPWR,
        SignalKind::Terminate => Signal::SIGTERM,
        SignalKind::Kill => Signal::SIGKILL,
    }
}

/// Sends the order's signal to the container's processes.
pub fn deliver(
    order: &Order,
    container: &ContainerProcesses,
    proc_root: &Path,
    own_pid: i32,
) -> Delivery {
    let targets: Vec<&ProcessInfo> = match order.kind {
        SignalKind::Decommission if container.framework == Framework::SparkExecutor => container
            .processes
            .iter()
            .filter(|p| p.pid == container.main_pid)
            .collect(),
        // An order to decommission anything else would kill it without cleanup: terminate
        // would be right, but the drainer never asks that; deliver nothing rather than harm.
        SignalKind::Decommission => Vec::new(),
        SignalKind::Terminate | SignalKind::Kill => container.processes.iter().collect(),
    };
    let signal = signal_of(order.kind);
    let mut delivery = Delivery::default();
    for process in targets {
        if is_protected(process, own_pid) || !still_the_same(process, proc_root) {
            delivery.gone += 1;
            continue;
        }
        match kill(Pid::from_raw(process.pid), signal) {
            Ok(()) => delivery.signalled += 1,
            Err(Errno::ESRCH) => delivery.gone += 1,
            Err(_) => delivery.refused += 1,
        }
    }
    delivery
}

fn still_the_same(process: &ProcessInfo, proc_root: &Path) -> bool {
    procfs::process::Process::new_with_root(proc_root.join(process.pid.to_string()))
        .and_then(|p| p.stat())
        .is_ok_and(|stat| stat.starttime == process.start_ticks)
}
