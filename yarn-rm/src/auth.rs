//! Authentication to the RM's web services: `user.name` (simple), SPNEGO (Kerberos) with the
//! `hadoop.auth` cookie reused afterwards, or an RM delegation token.
//!
//! Kerberos uses the system's MIT GSSAPI library. Which keytab and ticket cache it reads is
//! process-wide configuration (`KRB5_CONFIG`, `KRB5_CLIENT_KTNAME`, `KRB5CCNAME`), as for every
//! Hadoop client; [`KerberosEnvironment`] sets it for a child process. Tickets are obtained
//! from the client keytab on demand, so they never expire for good. With a `DIR:` ticket cache
//! collection one process can hold tickets of several principals (all in the client keytab).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{
    GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL, OidSet,
};

use super::error::RmError;

/// The cookie Hadoop's `AuthenticationFilter` issues after a successful authentication.
pub const AUTH_COOKIE: &str = "hadoop.auth";
/// The header RMWebServices reads an RM delegation token from.
pub const DELEGATION_TOKEN_HEADER: &str = "Hadoop-YARN-RM-Delegation-Token";

/// A value that must never reach a log: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the client proves who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RmAuth {
    /// `?user.name=<user>` on every call (clusters without Kerberos).
    Simple {
        /// The YARN user; it must be allowed to change node resources.
        user: String,
    },
    /// SPNEGO with the given client principal; the keytab comes from the process'
    /// Kerberos environment (see [`KerberosEnvironment`]).
    Kerberos {
        /// Client principal, e.g. `elastic-yarn@EXAMPLE.COM`.
        principal: String,
        /// Service principal to ask a ticket for, as `service@host`; by default `HTTP@<RM host>`.
        service: Option<String>,
    },
    /// An RM delegation token in the `Hadoop-YARN-RM-Delegation-Token` header.
    DelegationToken {
        /// The encoded token.
        token: Secret,
    },
}

/// The Kerberos environment of a process that authenticates with a keytab.
///
/// MIT Kerberos reads it when the process starts using Kerberos, and changing the environment
/// of a running multi-threaded process is unsound, so it is given to a child process instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KerberosEnvironment {
    /// Keytab of the client principal (`KRB5_CLIENT_KTNAME`): tickets are obtained from it
    /// when needed and renewed by obtaining new ones.
    pub client_keytab: PathBuf,
    /// `krb5.conf` to use (`KRB5_CONFIG`), when not the system's.
    pub config: Option<PathBuf>,
    /// Folder for a ticket cache collection (`DIR:`), needed when one process authenticates
    /// as several principals (one cache each); `None` keeps tickets in memory, which serves
    /// one principal per process.
    pub ticket_caches: Option<PathBuf>,
}

impl KerberosEnvironment {
    /// The variables to set: the keytab, the configuration, and a private ticket cache so
    /// that the process neither reads nor overwrites the user's tickets.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        let cache = match &self.ticket_caches {
            Some(folder) => format!("DIR:{}", absolute(folder)),
            None => "MEMORY:elastic-yarn".to_owned(),
        };
        let mut variables = vec![
            ("KRB5_CLIENT_KTNAME", absolute(&self.client_keytab)),
            ("KRB5CCNAME", cache),
        ];
        if let Some(config) = &self.config {
            variables.push(("KRB5_CONFIG", absolute(config)));
        }
        variables
    }

    /// Whether this process already runs in this environment.
    pub fn is_current(&self) -> bool {
        self.variables()
            .iter()
            .all(|(name, value)| std::env::var(name).ok().as_deref() == Some(value.as_str()))
    }
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// A SPNEGO exchange in progress: the first token has been made; the RM's answer token, when it
/// sends one, completes mutual authentication.
pub struct SpnegoExchange {
    context: ClientCtx,
    /// The `Authorization: Negotiate` token, base64.
    pub token: Secret,
}

impl fmt::Debug for SpnegoExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpnegoExchange").finish_non_exhaustive()
    }
}

impl SpnegoExchange {
    /// Starts an exchange: acquires the principal's credentials (getting a ticket from the
    /// keytab if needed) and makes the first token for `service@host`. Blocking: it may talk to
    /// the KDC.
    pub fn start(principal: &str, service: &str) -> Result<SpnegoExchange, RmError> {
        let kerberos = |what: &str, err: libgssapi::error::Error| RmError::Kerberos {
            message: format!("{what}: {err}"),
        };
        let name = Name::new(principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
            .map_err(|err| kerberos(&format!("principal {principal:?}"), err))?;
        let mut mechanisms = OidSet::new();
        for mechanism in [GSS_MECH_KRB5, GSS_MECH_SPNEGO] {
            mechanisms
                .add(mechanism)
                .map_err(|err| kerberos("mechanisms", err))?;
        }
        let credentials = Cred::acquire(Some(&name), None, CredUsage::Initiate, Some(&mechanisms))
            .map_err(|err| kerberos(&format!("credentials of {principal}"), err))?;
        let target = Name::new(service.as_bytes(), Some(GSS_NT_HOSTBASED_SERVICE))
            .map_err(|err| kerberos(&format!("service {service:?}"), err))?;
        let mut context = ClientCtx::new(
            Some(credentials),
            target,
            CtxFlags::GSS_C_MUTUAL_FLAG,
            Some(GSS_MECH_SPNEGO),
        );
        let token = context
            .step(None, None)
            .map_err(|err| kerberos(&format!("ticket for {service}"), err))?
            .ok_or_else(|| RmError::Kerberos {
                message: "GSSAPI made no SPNEGO token".to_owned(),
            })?;
        Ok(SpnegoExchange {
            context,
            token: Secret::new(BASE64.encode(&*token)),
        })
    }

    /// Checks the RM's answer token (`WWW-Authenticate: Negotiate <token>`): the RM proves it
    /// holds the service key, so a spoofed RM is refused.
    pub fn finish(mut self, answer: &str) -> Result<(), RmError> {
        let token = BASE64
            .decode(answer.trim())
            .map_err(|err| RmError::Kerberos {
                message: format!("the RM's Negotiate answer is not base64: {err}"),
            })?;
        self.context
            .step(Some(&token), None)
            .map_err(|err| RmError::Kerberos {
                message: format!("mutual authentication of the RM failed: {err}"),
            })?;
        if self.context.is_complete() {
            Ok(())
        } else {
            Err(RmError::Kerberos {
                message: "the RM's Negotiate answer did not complete the exchange".to_owned(),
            })
        }
    }
}

/// The service name to ask a ticket for: `HTTP@<host>`, as Hadoop's `KerberosAuthenticator`.
pub fn http_service(host: &str) -> String {
    format!("HTTP@{}", host.to_ascii_lowercase())
}

/// `hadoop.auth` cookies, one per RM (HA RMs may sign with different secrets).
#[derive(Debug, Default)]
pub struct CookieJar {
    cookies: Mutex<HashMap<usize, Secret>>,
}

impl CookieJar {
    /// The cookie for RM `index`, if one was issued.
    pub fn get(&self, index: usize) -> Option<Secret> {
        self.lock().get(&index).cloned()
    }

    /// Reads `Set-Cookie` headers: keeps a new `hadoop.auth` value, forgets a cleared one.
    pub fn absorb<'a>(&self, index: usize, set_cookies: impl Iterator<Item = &'a str>) {
        for header in set_cookies {
            let Some(value) = auth_cookie_value(header) else {
                continue;
            };
            let mut cookies = self.lock();
            if value.is_empty() || value == "\"\"" {
                cookies.remove(&index);
            } else {
                cookies.insert(index, Secret::new(value));
            }
        }
    }

    /// Forgets RM `index`'s cookie (after a 401: it expired or the RM restarted).
    pub fn forget(&self, index: usize) {
        self.lock().remove(&index);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Secret>> {
        super::lock(&self.cookies)
    }
}

/// The value of a `hadoop.auth=...` `Set-Cookie` header, quotes kept as sent.
fn auth_cookie_value(header: &str) -> Option<&str> {
    let first = header.split(';').next()?.trim();
    let (name, value) = first.split_once('=')?;
    (name.trim() == AUTH_COOKIE).then_some(value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let auth = RmAuth::DelegationToken {
            token: Secret::new("KAAIZWxhc3RpYw"),
        };
        let printed = format!("{auth:?}");
        assert!(!printed.contains("KAAI"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn the_jar_keeps_issued_cookies_and_forgets_cleared_ones() {
        let jar = CookieJar::default();
        jar.absorb(
            0,
            [
                "JSESSIONID=abc; Path=/",
                "hadoop.auth=\"u=alice&p=alice@EX.COM&t=kerberos&e=1&s=x\"; Path=/; HttpOnly",
            ]
            .into_iter(),
        );
        assert_eq!(
            jar.get(0).map(|cookie| cookie.expose().to_owned()),
            Some("\"u=alice&p=alice@EX.COM&t=kerberos&e=1&s=x\"".to_owned())
        );
        assert!(jar.get(1).is_none());
        jar.absorb(
            0,
            ["hadoop.auth=; Path=/; Expires=Thu, 01-Jan-1970 00:00:00 GMT"].into_iter(),
        );
        assert!(jar.get(0).is_none());
    }

    #[test]
    fn the_environment_uses_a_private_ticket_cache() {
        let environment = KerberosEnvironment {
            client_keytab: PathBuf::from("/etc/security/keytabs/ey.keytab"),
            config: Some(PathBuf::from("/etc/krb5.conf")),
            ticket_caches: None,
        };
        let variables = environment.variables();
        assert!(variables.contains(&(
            "KRB5_CLIENT_KTNAME",
            "/etc/security/keytabs/ey.keytab".to_owned()
        )));
        assert!(variables.contains(&("KRB5CCNAME", "MEMORY:elastic-yarn".to_owned())));
        assert!(variables.contains(&("KRB5_CONFIG", "/etc/krb5.conf".to_owned())));
        let several = KerberosEnvironment {
            ticket_caches: Some(PathBuf::from("/run/elastic-yarn/tickets")),
            ..environment
        };
        assert!(
            several
                .variables()
                .contains(&("KRB5CCNAME", "DIR:/run/elastic-yarn/tickets".to_owned()))
        );
    }

    #[test]
    fn the_service_is_http_at_the_lower_case_host() {
        assert_eq!(http_service("RM1.Example.COM"), "HTTP@rm1.example.com");
    }
}
