//! Kerberos principals and keytabs of addresses, made through the MIT `kadmin` client
//! authenticated with the administrator's keytab, against the realm's kadmind.
//!
//! `ktadd` gives a principal new random keys each time, so a keytab is exported once and kept
//! in its Secret; exporting again would invalidate the copy a running NM holds.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Why a kadmin call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KerberosError {
    /// kadmind or the KDC did not answer.
    #[error("cannot reach the Kerberos admin server {server}: {detail}")]
    Unreachable {
        /// kadmind `host:port`.
        server: String,
        /// kadmin's message.
        detail: String,
    },
    /// The administrator could not log in or lacks the right.
    #[error("kadmin as {principal} was refused: {detail}")]
    Refused {
        /// Administrator principal.
        principal: String,
        /// kadmin's message.
        detail: String,
    },
    /// The query failed.
    #[error("kadmin {query:?} failed: {detail}")]
    Query {
        /// The query.
        query: String,
        /// kadmin's message.
        detail: String,
    },
    /// Local trouble: the `kadmin` program, temporary files.
    #[error("{0}")]
    Local(String),
}

/// The realm and the administrator.
#[derive(Clone, PartialEq, Eq)]
pub struct KadminTarget {
    /// Realm.
    pub realm: String,
    /// KDCs (`host[:port]`).
    pub kdcs: Vec<String>,
    /// kadmind (`host[:port]`).
    pub admin_server: String,
    /// Administrator principal.
    pub admin_principal: String,
    /// Administrator keytab (file contents).
    pub admin_keytab: Vec<u8>,
    /// Per-call timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for KadminTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KadminTarget")
            .field("realm", &self.realm)
            .field("kdcs", &self.kdcs)
            .field("admin_server", &self.admin_server)
            .field("admin_principal", &self.admin_principal)
            .field(
                "admin_keytab",
                &format_args!("<{} bytes>", self.admin_keytab.len()),
            )
            .finish()
    }
}

/// The client configuration `kadmin` reads for `target`: no DNS lookups, TCP to the KDCs.
pub fn krb5_conf(target: &KadminTarget) -> String {
    let kdcs: String = target
        .kdcs
        .iter()
        .map(|kdc| format!("    kdc = {kdc}\n"))
        .collect();
    format!(
        "[libdefaults]\n  default_realm = {realm}\n  dns_lookup_realm = false\n  \
         dns_lookup_kdc = false\n  rdns = false\n  udp_preference_limit = 1\n\n\
         [realms]\n  {realm} = {{\n{kdcs}    admin_server = {admin}\n  }}\n",
        realm = target.realm,
        admin = target.admin_server,
    )
}

/// Runs kadmin queries for one realm. Holds the configuration and the administrator keytab in
/// a private temporary folder that goes away with it.
#[derive(Debug)]
pub struct Kadmin {
    target: KadminTarget,
    dir: tempfile::TempDir,
    program: PathBuf,
}

impl Kadmin {
    /// Writes the configuration and keytab; `program` is the `kadmin` binary.
    pub fn new(target: KadminTarget, program: PathBuf) -> Result<Self, KerberosError> {
        let local = |e: std::io::Error| KerberosError::Local(format!("kadmin files: {e}"));
        let dir = tempfile::tempdir().map_err(local)?;
        std::fs::write(dir.path().join("krb5.conf"), krb5_conf(&target)).map_err(local)?;
        std::fs::write(dir.path().join("admin.keytab"), &target.admin_keytab).map_err(local)?;
        Ok(Kadmin {
            target,
            dir,
            program,
        })
    }

    async fn query(&self, query: &str) -> Result<String, KerberosError> {
        let mut command = Command::new(&self.program);
        command
            .arg("-r")
            .arg(&self.target.realm)
            .arg("-p")
            .arg(&self.target.admin_principal)
            .arg("-k")
            .arg("-t")
            .arg(self.dir.path().join("admin.keytab"))
            .arg("-s")
            .arg(&self.target.admin_server)
            .arg("-q")
            .arg(query)
            .env("KRB5_CONFIG", self.dir.path().join("krb5.conf"))
            .env("KRB5CCNAME", "MEMORY:staticip-kadmin")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(self.target.timeout, command.output())
            .await
            .map_err(|_| KerberosError::Unreachable {
                server: self.target.admin_server.clone(),
                detail: format!("no answer within {:?}", self.target.timeout),
            })?
            .map_err(|e| {
                KerberosError::Local(format!("cannot run {}: {e}", self.program.display()))
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if stderr.contains("while initializing kadmin interface") {
            let unreachable = [
                "Cannot contact",
                "Cannot resolve",
                "Communication failure",
                "connect",
                "timed out",
            ]
            .iter()
            .any(|m| stderr.contains(m));
            return Err(if unreachable && !stderr.contains("Preauthentication") {
                KerberosError::Unreachable {
                    server: self.target.admin_server.clone(),
                    detail: stderr,
                }
            } else {
                KerberosError::Refused {
                    principal: self.target.admin_principal.clone(),
                    detail: stderr,
                }
            });
        }
        // kadmin exits 0 when a query fails; the failure is the query's line on stderr.
        let failure = stderr.lines().find(|line| {
            let line = line.trim();
            !line.is_empty()
                && !line.starts_with("Authenticating as principal")
                && !line.contains("No policy specified")
        });
        match failure {
            None if output.status.success() => {
                Ok(String::from_utf8_lossy(&output.stdout).into_owned())
            }
            _ => Err(KerberosError::Query {
                query: query.to_owned(),
                detail: failure.unwrap_or(&stderr).to_owned(),
            }),
        }
    }

    /// Creates `principal` with a random key; an existing one is kept.
    pub async fn ensure_principal(&self, principal: &str) -> Result<(), KerberosError> {
        match self.query(&format!("addprinc -randkey {principal}")).await {
            Err(KerberosError::Query { detail, .. }) if detail.contains("already exists") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Gives `principal` new keys and returns them as a keytab file.
    pub async fn export_keytab(&self, principal: &str) -> Result<Vec<u8>, KerberosError> {
        // One file per export: exports run concurrently, and `ktadd` appends to an existing
        // file, so a shared name could hand one address another's keys.
        static EXPORTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let number = EXPORTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = self.dir.path().join(format!("export-{number}.keytab"));
        let _ = tokio::fs::remove_file(&file).await;
        let result = self
            .query(&format!("ktadd -k {} {principal}", file.display()))
            .await;
        let keytab = match result {
            Ok(_) => tokio::fs::read(&file)
                .await
                .map_err(|e| KerberosError::Local(format!("exported keytab: {e}"))),
            Err(error) => Err(error),
        };
        let _ = tokio::fs::remove_file(&file).await;
        keytab
    }

    /// Deletes `principal`; a missing one is fine.
    pub async fn delete_principal(&self, principal: &str) -> Result<(), KerberosError> {
        match self.query(&format!("delprinc -force {principal}")).await {
            Err(KerberosError::Query { detail, .. }) if detail.contains("does not exist") => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_configuration_names_every_server() {
        let conf = krb5_conf(&KadminTarget {
            realm: "EXAMPLE.COM".into(),
            kdcs: vec!["kdc1.example.com".into(), "kdc2.example.com:8888".into()],
            admin_server: "kdc1.example.com:749".into(),
            admin_principal: "admin/admin@EXAMPLE.COM".into(),
            admin_keytab: vec![5, 2],
            timeout: Duration::from_secs(5),
        });
        assert!(conf.contains("default_realm = EXAMPLE.COM"));
        assert!(conf.contains("    kdc = kdc1.example.com\n    kdc = kdc2.example.com:8888\n"));
        assert!(conf.contains("admin_server = kdc1.example.com:749"));
        assert!(conf.contains("dns_lookup_kdc = false"));
    }
}
