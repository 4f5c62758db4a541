//! The double's side of Hadoop's `AuthenticationFilter` with the Kerberos handler: SPNEGO
//! tokens verified for real with the service keytab (`KRB5_KTNAME`), and `hadoop.auth`
//! cookies issued afterwards.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use libgssapi::context::{SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use rand::RngExt;

/// Verifies SPNEGO tokens as the RM's `HTTP/<host>` service.
#[derive(Debug)]
pub struct SpnegoAcceptor {
    credentials: Cred,
    sessions: Mutex<HashMap<String, Session>>,
    lifetime: Duration,
}

#[derive(Debug, Clone)]
struct Session {
    principal: String,
    expires: Instant,
}

/// A successful SPNEGO verification.
#[derive(Debug)]
pub struct Accepted {
    /// The client principal.
    pub principal: String,
    /// The server's answer token, base64 (mutual authentication).
    pub answer: Option<String>,
    /// The `Set-Cookie` value to send.
    pub cookie: String,
}

impl SpnegoAcceptor {
    /// Loads the acceptor credentials from the service keytab of the process' Kerberos
    /// environment. Blocking.
    pub fn from_environment(lifetime: Duration) -> Result<SpnegoAcceptor, String> {
        let credentials = Cred::acquire(None, None, CredUsage::Accept, None).map_err(|err| {
            format!("no service credentials (set KRB5_KTNAME to the HTTP keytab): {err}")
        })?;
        Ok(SpnegoAcceptor {
            credentials,
            sessions: Mutex::new(HashMap::new()),
            lifetime,
        })
    }

    /// Verifies a `Negotiate` token. Blocking (GSSAPI). The error is GSSAPI's message, which
    /// Hadoop's filter sends back with a 403.
    pub fn accept(&self, token_base64: &str) -> Result<Accepted, String> {
        let token = BASE64
            .decode(token_base64.trim())
            .map_err(|err| format!("AuthenticationException: the token is not base64: {err}"))?;
        let mut context = ServerCtx::new(Some(self.credentials.clone()));
        let answer = context
            .step(&token, None)
            .map_err(|err| format!("GSSException: {err}"))?;
        if !context.is_complete() {
            return Err("GSSException: the SPNEGO exchange needs more steps".to_owned());
        }
        let principal = context
            .source_name()
            .map_err(|err| format!("GSSException: {err}"))?
            .to_string();
        let cookie = self.issue(&principal);
        Ok(Accepted {
            principal,
            answer: answer.map(|bytes| BASE64.encode(&*bytes)),
            cookie,
        })
    }

    /// The principal of a valid, unexpired `hadoop.auth` cookie value.
    pub fn session(&self, cookie_value: &str) -> Option<String> {
        let signature = cookie_value
            .trim_matches('"')
            .split('&')
            .find_map(|part| part.strip_prefix("s="))?;
        let mut sessions = self.lock();
        let session = sessions.get(signature)?.clone();
        if session.expires <= Instant::now() {
            sessions.remove(signature);
            return None;
        }
        Some(session.principal)
    }

    /// Forgets every session: the next cookie is refused, as after an RM restart with a new
    /// signing secret.
    pub fn expire_sessions(&self) {
        self.lock().clear();
    }

    fn issue(&self, principal: &str) -> String {
        let mut random = [0u8; 24];
        rand::rng().fill(&mut random[..]);
        let signature = BASE64.encode(random);
        let expires_ms = SystemTime::now()
            .checked_add(self.lifetime)
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_millis());
        let short = principal.split(['/', '@']).next().unwrap_or(principal);
        self.lock().insert(
            signature.clone(),
            Session {
                principal: principal.to_owned(),
                expires: Instant::now() + self.lifetime,
            },
        );
        // The cookie AuthenticationFilter writes: the token in quotes, Path=/, HttpOnly.
        format!(
            "hadoop.auth=\"u={short}&p={principal}&t=kerberos&e={expires_ms}&s={signature}\"; Path=/; HttpOnly"
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        yarn_rm::lock(&self.sessions)
    }
}
