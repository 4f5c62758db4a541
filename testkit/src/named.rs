//! A real BIND 9 `named` on loopback, primary for a forward zone and an IPv4 reverse zone, both
//! open to dynamic updates (RFC 2136) signed with one TSIG key.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, program, required, wait_for_tcp};

/// The forward zone.
pub const ZONE: &str = "yarn.test";
/// The reverse zone of 10.0.0.0/8.
pub const REVERSE_ZONE: &str = "10.in-addr.arpa";
/// The TSIG key's name.
pub const KEY_NAME: &str = "elastic-yarn-test";
/// The TSIG key's secret (HMAC-SHA256), base64 as in `named.conf` and in Secrets.
pub const KEY_SECRET: &str = "c3RhdGljaXAgdGVzdCBrZXkgZm9yIGVsYXN0aWMteWFybiE=";

/// A running `named`.
#[derive(Debug)]
pub struct Named {
    dir: tempfile::TempDir,
    child: Child,
    /// Port for DNS over UDP and TCP on 127.0.0.1.
    pub port: u16,
}

const SOA: &str = "$TTL 300\n@ IN SOA ns.yarn.test. hostmaster.yarn.test. 1 3600 600 86400 300\n\
                   @ IN NS ns.yarn.test.\n";

impl Named {
    /// Starts `named`, or `None` when BIND 9 is not installed and real components are optional.
    pub fn start() -> Option<Named> {
        let Some(named) = program("named") else {
            assert!(
                !required(),
                "named not found: install bind9 and bind9-dnsutils"
            );
            eprintln!("skipping: BIND 9 not installed");
            return None;
        };
        // Another process may take the port between `free_port` and named's bind; named then
        // logs "address in use" and runs on without listening, so a new port is tried.
        for _ in 0..5 {
            let server = Named::launch(&named, free_port());
            if server.wait_until_running() {
                wait_for_tcp(server.port, Duration::from_secs(20), "named");
                return Some(server);
            }
            eprintln!(
                "named could not listen, trying another port:\n{}",
                server.log()
            );
        }
        panic!("named could not listen on any of 5 free ports");
    }

    fn launch(named: &Path, port: u16) -> Named {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("forward.zone"), format!("{SOA}ns IN A 127.0.0.1\n")).expect("zone");
        std::fs::write(path("reverse.zone"), SOA).expect("zone");
        let zone = |name: &str, file: &str| {
            format!(
                "zone \"{name}\" {{ type primary; file \"{}\"; allow-update {{ key \"{KEY_NAME}\"; }}; }};\n",
                path(file).display()
            )
        };
        let conf = path("named.conf");
        std::fs::write(
            &conf,
            format!(
                "options {{\n  directory \"{dir}\";\n  pid-file \"{dir}/named.pid\";\n  \
                 session-keyfile \"{dir}/session.key\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  \
                 listen-on-v6 {{ none; }};\n  recursion no;\n  dnssec-validation no;\n}};\n\
                 controls {{ }};\n\
                 key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{KEY_SECRET}\"; }};\n{}{}",
                zone(ZONE, "forward.zone"),
                zone(REVERSE_ZONE, "reverse.zone"),
                dir = dir.path().display(),
            ),
        )
        .expect("named.conf");
        let child = Command::new(named)
            .args(["-g", "-n", "1", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(path("named.log")).expect("log file"))
            .spawn()
            .expect("start named");
        Named { dir, child, port }
    }

    /// Waits for named's last start-up line ("running", after every zone loaded); false when it
    /// could not bind its port or exited.
    fn wait_until_running(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if log.contains("address in use") || log.contains("exiting (due to fatal error)") {
                return false;
            }
            if log.lines().any(|line| line.ends_with(" running")) {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "named did not finish starting:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `named`'s log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("named.log")).unwrap_or_default()
    }

    /// A path in the server's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The answers for `name` and `record_type` as `dig +short` prints them, asked of this server
    /// with the real `dig`.
    pub fn lookup(&self, name: &str, record_type: &str) -> Vec<String> {
        let dig = program("dig").expect("dig (bind9-dnsutils)");
        let output = Command::new(dig)
            .args(["@127.0.0.1", "-p", &self.port.to_string(), "+short", "+tcp"])
            .args([name, record_type])
            .output()
            .expect("run dig");
        assert!(
            output.status.success(),
            "dig {name} {record_type} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
