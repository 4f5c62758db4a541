//! The `yarn-rm-double` binary as a child process.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `yarn-rm-double`, killed on drop.
pub struct DoubleProcess {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl DoubleProcess {
    /// Starts the double on a free loopback port with these extra arguments and environment,
    /// and waits for the address it prints.
    pub fn spawn<K: AsRef<OsStr>, V: AsRef<OsStr>>(args: &[&str], env: &[(K, V)]) -> DoubleProcess {
        let mut child = Command::new(testkit::workspace_binary("yarn-rm-double"))
            .args(["--listen", "127.0.0.1:0", "--nodes", "2"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start yarn-rm-double");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("address line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("printed address ends with the port");
        DoubleProcess { child, port }
    }

    /// `http://<host>:<port>`; Kerberos needs `localhost` to match `HTTP/localhost`.
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }
}

impl Drop for DoubleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
