//! Child processes of a test: killed when the test ends however it ends, and files they write
//! to say they are ready.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Children killed (and reaped) when the test ends, however it ends.
#[derive(Debug, Default)]
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `path` exists; panics after `within`.
pub fn wait_for_file(path: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `yarn-rm-double` binary, killed on drop.
#[derive(Debug)]
pub struct DoubleProcess {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl DoubleProcess {
    /// Starts the double at `program` on a free loopback port with these extra arguments and
    /// environment, and waits for the address it prints.
    pub fn spawn<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        program: &Path,
        args: &[&str],
        env: &[(K, V)],
    ) -> DoubleProcess {
        let mut child = Command::new(program)
            .args(["--listen", "127.0.0.1:0"])
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
