//! Real components the workspace's tests start on loopback, each in its own temporary folder:
//! an MIT Kerberos KDC with `kadmind` (`kdc`) and a BIND 9 name server taking TSIG-signed
//! dynamic updates (`named`). When a component is not installed the starter returns `None` and
//! the test skips, unless `ELASTIC_YARN_REQUIRE_REAL=1` (the test command sets it), which makes
//! a missing component a failure.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod kdc;
pub mod named;
pub mod scripted;

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

/// A port free for both TCP and UDP on loopback.
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Waits until something listens on `port`, failing the test after `within`.
pub fn wait_for_tcp(port: u16, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}
