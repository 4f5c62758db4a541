//! A real MIT Kerberos KDC on loopback, with its own realm and database in a temporary folder,
//! and on request the real `kadmind` beside it with an administrator keytab.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, program, required, wait_for_tcp};

pub const REALM: &str = "ELASTIC.TEST";

/// The administrator principal `start_with_kadmind` creates; the ACL gives it every right.
pub const ADMIN_PRINCIPAL: &str = "admin/admin@ELASTIC.TEST";

/// A running `krb5kdc` (and `kadmind` when asked) and the files that describe its realm.
#[derive(Debug)]
pub struct Kdc {
    dir: tempfile::TempDir,
    children: Vec<Child>,
    /// The client configuration of this realm.
    pub krb5_conf: PathBuf,
    kdc_conf: PathBuf,
    /// The KDC's port (TCP and UDP).
    pub port: u16,
    /// The admin server's port.
    pub admin_port: u16,
}

impl Kdc {
    /// Starts a KDC, or `None` when MIT Kerberos is not installed and real components are not
    /// required (`ELASTIC_YARN_REQUIRE_REAL=1` makes that a failure).
    pub fn start() -> Option<Kdc> {
        let (Some(krb5kdc), Some(kdb5_util)) = (program("krb5kdc"), program("kdb5_util")) else {
            assert!(
                !required(),
                "krb5kdc/kdb5_util not found: install krb5-kdc and krb5-admin-server"
            );
            eprintln!("skipping: MIT Kerberos KDC not installed");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let admin_port = free_port();
        let kpasswd_port = free_port();
        let path = |name: &str| dir.path().join(name);
        let krb5_conf = path("krb5.conf");
        let kdc_conf = path("kdc.conf");
        std::fs::write(
            &krb5_conf,
            format!(
                "[libdefaults]\n  default_realm = {REALM}\n  dns_lookup_realm = false\n  \
                 dns_lookup_kdc = false\n  dns_canonicalize_hostname = false\n  rdns = false\n  \
                 udp_preference_limit = 1\n\n[realms]\n  {REALM} = {{\n    kdc = 127.0.0.1:{port}\n    admin_server = 127.0.0.1:{admin_port}\n  }}\n\n\
                 [domain_realm]\n  localhost = {REALM}\n"
            ),
        )
        .expect("krb5.conf");
        std::fs::write(
            &kdc_conf,
            format!(
                "[kdcdefaults]\n  kdc_listen = 127.0.0.1:{port}\n  kdc_tcp_listen = 127.0.0.1:{port}\n\n\
                 [realms]\n  {REALM} = {{\n    database_name = {db}\n    key_stash_file = {stash}\n    \
                 acl_file = {acl}\n    kdc_listen = 127.0.0.1:{port}\n    kdc_tcp_listen = 127.0.0.1:{port}\n    \
                 kadmind_listen = 127.0.0.1:{admin_port}\n    kpasswd_listen = 127.0.0.1:{kpasswd_port}\n  }}\n\n\
                 [logging]\n  kdc = FILE:{log}\n  admin_server = FILE:{admin_log}\n",
                db = path("principal").display(),
                stash = path("stash").display(),
                acl = path("kadm5.acl").display(),
                log = path("kdc.log").display(),
                admin_log = path("kadmind.log").display(),
            ),
        )
        .expect("kdc.conf");
        std::fs::write(path("kadm5.acl"), format!("{ADMIN_PRINCIPAL} *\n")).expect("acl");
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
            children: vec![child],
            krb5_conf,
            kdc_conf,
            port,
            admin_port,
        };
        wait_for_tcp(port, Duration::from_secs(10), "krb5kdc");
        Some(kdc)
    }

    /// Starts a KDC and `kadmind`, with `ADMIN_PRINCIPAL` allowed everything and its keytab at
    /// `admin_keytab()`.
    pub fn start_with_kadmind() -> Option<Kdc> {
        let Some(kadmind) = program("kadmind") else {
            assert!(!required(), "kadmind not found: install krb5-admin-server");
            eprintln!("skipping: kadmind not installed");
            return None;
        };
        let mut kdc = Kdc::start()?;
        kdc.add_principal(ADMIN_PRINCIPAL);
        kdc.export(&kdc.admin_keytab(), &[ADMIN_PRINCIPAL]);
        let child = Command::new(kadmind)
            .arg("-nofork")
            .env("KRB5_CONFIG", &kdc.krb5_conf)
            .env("KRB5_KDC_PROFILE", &kdc.kdc_conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kadmind");
        kdc.children.push(child);
        wait_for_tcp(kdc.admin_port, Duration::from_secs(10), "kadmind");
        Some(kdc)
    }

    /// The administrator's keytab (after `start_with_kadmind`).
    pub fn admin_keytab(&self) -> PathBuf {
        self.path("admin.keytab")
    }

    /// Whether `principal` is in the database.
    pub fn has_principal(&self, principal: &str) -> bool {
        let kadmin = program("kadmin.local").expect("kadmin.local (krb5-admin-server)");
        let output = Command::new(kadmin)
            .args(["-r", REALM, "-q", &format!("getprinc {principal}")])
            .env("KRB5_CONFIG", &self.krb5_conf)
            .env("KRB5_KDC_PROFILE", &self.kdc_conf)
            .output()
            .expect("run kadmin.local");
        String::from_utf8_lossy(&output.stdout).contains(&format!("Principal: {principal}"))
    }

    /// Gets a ticket as `principal` with `keytab` (`kinit -k -t`) into a throwaway cache.
    pub fn kinit(&self, principal: &str, keytab: &Path) -> Result<(), String> {
        let kinit = program("kinit").expect("kinit (krb5-user)");
        let cache = self.dir.path().join(format!("cc-{}", std::process::id()));
        let output = Command::new(kinit)
            .args(["-k", "-t"])
            .arg(keytab)
            .arg("-c")
            .arg(&cache)
            .arg(principal)
            .env("KRB5_CONFIG", &self.krb5_conf)
            .output()
            .expect("run kinit");
        let _ = std::fs::remove_file(&cache);
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
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
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
