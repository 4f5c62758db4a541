//! The `yarn-rm-double` binary as a child process, with two nodes unless told otherwise.

use std::ffi::OsStr;

pub use testkit::processes::DoubleProcess;

/// Starts the double built beside the test with these extra arguments and environment.
pub fn spawn<K: AsRef<OsStr>, V: AsRef<OsStr>>(args: &[&str], env: &[(K, V)]) -> DoubleProcess {
    let mut all = vec!["--nodes", "2"];
    all.extend_from_slice(args);
    DoubleProcess::spawn(&testkit::workspace_binary("yarn-rm-double"), &all, env)
}
