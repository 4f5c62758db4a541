//! A real MIT Kerberos KDC on loopback, with its own realm and database in a temporary folder.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REALM: &str = "ELASTIC.TEST";

/// A running `krb5kdc` and the files that describe its realm.
pub struct Kdc {
    dir: tempfile::TempDir,
    child: Child,
    pub krb5_conf: PathBuf,
    kdc_conf: PathBuf,
}

/// Finds an MIT Kerberos program in the usual places.
fn program(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

/// A port free for both TCP and UDP on loopback.
fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Kdc {
    /// Starts a KDC, or `None` when MIT Kerberos is not installed and real components are not
    /// required (`ELASTIC_YARN_REQUIRE_REAL=1` makes that a failure).
    pub fn start() -> Option<Kdc> {
        let required = std::env::var("ELASTIC_YARN_REQUIRE_REAL").as_deref() == Ok("1");
        let (Some(krb5kdc), Some(kdb5_util)) = (program("krb5kdc"), program("kdb5_util")) else {
            assert!(
                !required,
                "krb5kdc/kdb5_util not found: install krb5-kdc and krb5-admin-server"
            );
            eprintln!("skipping: MIT Kerberos KDC not installed");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let path = |name: &str| dir.path().join(name);
        let krb5_conf = path("krb5.conf");
        let kdc_conf = path("kdc.conf");
        std::fs::write(
            &krb5_conf,
            format!(
                "[libdefaults]\n  default_realm = {REALM}\n  dns_lookup_realm = false\n  \
                 dns_lookup_kdc = false\n  dns_canonicalize_hostname = false\n  rdns = false\n  \
                 udp_preference_limit = 1\n\n[realms]\n  {REALM} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n\n\
                 [domain_realm]\n  localhost = {REALM}\n"
            ),
        )
        .expect("krb5.conf");
        std::fs::write(
            &kdc_conf,
            format!(
                "[kdcdefaults]\n  kdc_listen = 127.0.0.1:{port}\n  kdc_tcp_listen = 127.0.0.1:{port}\n\n\
                 [realms]\n  {REALM} = {{\n    database_name = {db}\n    key_stash_file = {stash}\n    \
                 acl_file = {acl}\n    kdc_listen = 127.0.0.1:{port}\n    kdc_tcp_listen = 127.0.0.1:{port}\n  }}\n\n\
                 [logging]\n  kdc = FILE:{log}\n",
                db = path("principal").display(),
                stash = path("stash").display(),
                acl = path("kadm5.acl").display(),
                log = path("kdc.log").display(),
            ),
        )
        .expect("kdc.conf");
        std::fs::write(path("kadm5.acl"), "").expect("acl");
        let env = [
            ("KRB5_CONFIG", krb5_conf.clone()),
            ("KRB5_KDC_PROFILE", kdc_conf.clone()),
        ];
        let created = Command::new(kdb5_util)
            .args([
                "create",
                "-s",
                "-r",
                REALM,
                "-P",
                "elastic-yarn-test-master",
            ])
            .envs(env.clone())
            .stdout(Stdio::null())
            .output()
            .expect("run kdb5_util");
        assert!(
            created.status.success(),
            "kdb5_util create failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let child = Command::new(krb5kdc)
            .arg("-n")
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start krb5kdc");
        let kdc = Kdc {
            dir,
            child,
            krb5_conf,
            kdc_conf,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "krb5kdc did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(kdc)
    }

    /// A path in the KDC's folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs one `kadmin.local` query.
    pub fn kadmin(&self, query: &str) {
        let kadmin = program("kadmin.local").expect("kadmin.local (krb5-admin-server)");
        let output = Command::new(kadmin)
            .args(["-r", REALM, "-q", query])
            .env("KRB5_CONFIG", &self.krb5_conf)
            .env("KRB5_KDC_PROFILE", &self.kdc_conf)
            .output()
            .expect("run kadmin.local");
        let stderr = String::from_utf8_lossy(&output.stderr);
        // kadmin.local exits 0 even when the query fails; its errors start with the command.
        let failed = stderr
            .lines()
            .any(|line| !line.contains("No policy specified") && !line.trim().is_empty());
        assert!(
            output.status.success() && !failed,
            "kadmin.local -q {query:?} failed: {stderr}"
        );
    }

    /// Creates a principal with a random key.
    pub fn add_principal(&self, principal: &str) {
        self.kadmin(&format!("addprinc -randkey {principal}"));
    }

    /// Exports (and thereby re-keys) principals into a keytab.
    pub fn export(&self, keytab: &Path, principals: &[&str]) {
        for principal in principals {
            self.kadmin(&format!("ktadd -k {} {principal}", keytab.display()));
        }
    }

    /// The environment for a process that uses this realm.
    pub fn krb5_config_env(&self) -> (&'static str, String) {
        ("KRB5_CONFIG", self.krb5_conf.display().to_string())
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
