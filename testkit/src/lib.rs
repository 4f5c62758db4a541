//! Real components the workspace's tests start on loopback, each in its own temporary folder:
//! an MIT Kerberos KDC with `kadmind` (`kdc`), a BIND 9 name server taking TSIG-signed
//! dynamic updates (`named`), and a Kubernetes control plane with kwok's fake nodes
//! (`kubernetes`, built from Go modules by `testkit/go/build`). When a component is not
//! installed the starter returns `None` and the test skips, unless `ELASTIC_YARN_REQUIRE_REAL=1`
//! (or, for the control plane, `ELASTIC_YARN_REQUIRE_E2E=1`), which makes a missing component a
//! failure. Every process runs under a watchdog ([`supervised`]) so none outlives its test.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod hadoop;
pub mod kdc;
pub mod kubernetes;
pub mod named;
pub mod processes;
pub mod scripted;
pub mod supervised;

/// Root of the workspace, for tests that read committed files (docs, chart).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A binary of a workspace crate, built beside the running test (`cargo test --workspace`, or
/// `cargo build --bins`). Panics with the command to run when it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_default();
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test and scripts/e2e do)",
        path.display()
    );
    path
}

/// Whether real components are required rather than optional.
pub fn required() -> bool {
    std::env::var("ELASTIC_YARN_REQUIRE_REAL").as_deref() == Ok("1")
}

/// Finds a system program in the usual places.
pub fn program(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

/// A port free for both TCP and UDP on loopback, never the same twice in one test process.
///
/// The port is released before the caller's server binds it, so the kernel may offer it again to
/// a test running on another thread in between; two servers given one port would see one of them
/// fail to listen while the other answers for both (BIND, for one, logs "address in use" and
/// keeps running). Remembering what was handed out closes that race within a process.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("address").port();
        if !handed_out.contains(&port) && UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
}

/// Runs one of testkit's caching scripts (`go/build`, `maven/fetch`), its progress on stderr,
/// and returns the folder it prints.
pub fn run_cache_script(script: &str, args: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let output = std::process::Command::new(&script)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(output.status.success(), "{} failed", script.display());
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Waits until something listens on `port`, failing the test after `within`.
pub fn wait_for_tcp(port: u16, within: Duration, what: &str) {
    wait_for_tcp_at("127.0.0.1", port, within, what);
}

/// Waits until something listens on `host:port` (any loopback address), failing the test
/// after `within`.
pub fn wait_for_tcp_at(host: &str, port: u16, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while TcpStream::connect((host, port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}
