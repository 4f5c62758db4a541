//! Processes that cannot outlive the test that started them. A test binary may keep a component
//! in a `static` (shared by its tests) where no destructor runs, and a failing test may never
//! reach its cleanup. So every process is started under a small shell watchdog that holds the
//! read end of a pipe whose write end only this process has: when the test process ends for any
//! reason, the pipe closes, and the watchdog stops the component (SIGTERM, then SIGKILL).
//! Lines written to the pipe are signals for the component, which lets a test kill it on demand.
//! The watchdog exits with the component, so [`Supervised::running`] tells whether it runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

// A background list reads /dev/null as its stdin, so the control pipe is kept on fd 3.
const WATCHDOG: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- &
child=$!
(
  while read -r signal <&3; do kill -s "$signal" "$child" 2>/dev/null; done
  kill -s TERM "$child" 2>/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$child" 2>/dev/null || exit 0; sleep 0.2; done
  kill -s KILL "$child" 2>/dev/null
) &
guard=$!
wait "$child"
status=$?
kill "$guard" 2>/dev/null
exit "$status"
"#;

/// A component running under its watchdog, its output in a log file.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    watchdog: Child,
    control: Option<ChildStdin>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Supervised {
    /// Starts `command` (its program, arguments and environment are kept; its stdio is
    /// replaced by the log file `log`).
    pub fn start(name: &str, command: &Command, log: &Path) -> Supervised {
        let file = std::fs::File::create(log).expect("log file");
        let mut shell = Command::new("/bin/sh");
        shell
            .arg("-c")
            .arg(WATCHDOG)
            .arg("watchdog")
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::piped())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => shell.env(key, value),
                None => shell.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            shell.current_dir(dir);
        }
        let mut watchdog = shell
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let control = watchdog.stdin.take();
        Supervised {
            name: name.to_owned(),
            watchdog,
            control,
            log: log.to_owned(),
        }
    }

    /// Sends a signal (`KILL`, `TERM`, `STOP`, ...) to the component.
    pub fn signal(&mut self, signal: &str) {
        if let Some(control) = self.control.as_mut() {
            // A watchdog that already exited has nothing left to signal.
            let _ = writeln!(control, "{signal}");
        }
    }

    /// Whether the component (through its watchdog) still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.watchdog.try_wait(), Ok(None))
    }

    /// Stops the component and waits for it, at most a few seconds.
    pub fn stop(&mut self) {
        self.control.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.running() {
            let _ = self.watchdog.kill();
            let _ = self.watchdog.wait();
        }
    }

    /// The last lines of its log, for failure messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        format!(
            "--- last lines of {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }

    /// The watchdog's process id: the component is its child, and the component's own children
    /// (a NodeManager's containers) its descendants.
    pub fn pid(&self) -> u32 {
        self.watchdog.id()
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
    }
}
