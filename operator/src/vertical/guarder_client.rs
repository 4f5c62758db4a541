//! The operator's side of the guarder API (docs/architecture.md, contract 4): `PUT /v1/target` with the
//! pool's bearer token, `GET /v1/status` for measured use and signal counts.

use std::time::Duration;

use serde::Deserialize;
use url::Url;
use yarn_types::TargetRequest;

use yarn_rm::Secret;

/// Why a guarder call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GuarderError {
    /// No connection or no answer in time.
    #[error("guarder {url} is unreachable: {message}")]
    Unreachable {
        /// Where.
        url: String,
        /// The transport's words.
        message: String,
    },
    /// The guarder refused the token.
    #[error("guarder {url} refused the token ({status})")]
    Unauthorized {
        /// Where.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// Another status.
    #[error("guarder {url} answered {status}: {body}")]
    Status {
        /// Where.
        url: String,
        /// HTTP status.
        status: u16,
        /// What it said.
        body: String,
    },
    /// An unreadable status document.
    #[error("guarder {url} sent an unreadable status: {message}")]
    Malformed {
        /// Where.
        url: String,
        /// What is wrong.
        message: String,
    },
}

/// The error for a transport failure towards `url`.
fn unreachable(url: &str) -> impl Fn(reqwest::Error) -> GuarderError + '_ {
    move |err| GuarderError::Unreachable {
        url: url.to_owned(),
        message: err.to_string(),
    }
}

impl GuarderError {
    /// Short stable category for metrics and Events.
    pub const fn category(&self) -> &'static str {
        match self {
            GuarderError::Unreachable { .. } => "guarder_unreachable",
            GuarderError::Unauthorized { .. } => "guarder_unauthorized",
            GuarderError::Status { .. } => "guarder_status",
            GuarderError::Malformed { .. } => "guarder_malformed",
        }
    }
}

/// Signals of one kind the guarder sent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalTally {
    /// `SIGPWR`, `SIGTERM` or `SIGKILL`.
    pub signal: String,
    /// Framework.
    pub framework: String,
    /// How many.
    pub count: u64,
}

/// The target a guarder enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnforcedTarget {
    /// Vcores the containers may keep.
    pub vcores: u32,
    /// MiB they may keep.
    pub memory_mb: u64,
}

/// What the operator reads from `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuarderStatus {
    /// The target in force, if any.
    #[serde(default)]
    pub target: Option<EnforcedTarget>,
    /// Vcores the NM's containers use.
    pub used_vcores: f64,
    /// MiB they use.
    pub used_memory_mb: f64,
    /// Signals sent.
    #[serde(default)]
    pub signals: Vec<SignalTally>,
    /// Force kills.
    #[serde(default)]
    pub force_kills: u64,
}

impl GuarderStatus {
    /// Graceful signals (everything but SIGKILL).
    pub fn graceful_signals(&self) -> u64 {
        self.signals
            .iter()
            .filter(|s| s.signal != "SIGKILL")
            .map(|s| s.count)
            .sum()
    }
}

/// Largest status page read from a guarder (its ranked containers of one NM).
const MOST_STATUS_BYTES: usize = 4 << 20;

/// A client of every guarder of a pool.
#[derive(Clone, Debug)]
pub struct GuarderClient {
    http: reqwest::Client,
    token: Secret,
}

impl GuarderClient {
    /// A client sending `token`, with this per-request timeout.
    pub fn new(token: Secret, timeout: Duration) -> Result<GuarderClient, reqwest::Error> {
        Ok(GuarderClient {
            http: super::http_client(timeout)?,
            token,
        })
    }

    fn endpoint(base: &Url, path: &str) -> Result<Url, GuarderError> {
        base.join(path).map_err(|err| GuarderError::Malformed {
            url: base.to_string(),
            message: err.to_string(),
        })
    }

    /// `PUT /v1/target`; the guarder answers 202.
    pub async fn put_target(&self, base: &Url, target: &TargetRequest) -> Result<(), GuarderError> {
        let url = Self::endpoint(base, "v1/target")?;
        let text = url.to_string();
        let body = serde_json::to_vec(target).map_err(|err| GuarderError::Malformed {
            url: text.clone(),
            message: err.to_string(),
        })?;
        let answer = self
            .http
            .put(url)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(unreachable(&text))?;
        let status = answer.status().as_u16();
        match status {
            200..=299 => Ok(()),
            401 | 403 => Err(GuarderError::Unauthorized { url: text, status }),
            _ => Err(GuarderError::Status {
                url: text,
                status,
                body: super::availability::body_capped(answer, 4096)
                    .await
                    .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
                    .unwrap_or_default(),
            }),
        }
    }

    /// `GET /v1/status`.
    pub async fn status(&self, base: &Url) -> Result<GuarderStatus, GuarderError> {
        let url = Self::endpoint(base, "v1/status")?;
        let text = url.to_string();
        let answer = self
            .http
            .get(url)
            .send()
            .await
            .map_err(unreachable(&text))?;
        let status = answer.status().as_u16();
        if status != 200 {
            return Err(GuarderError::Status {
                url: text,
                status,
                body: String::new(),
            });
        }
        let body = super::availability::body_capped(answer, MOST_STATUS_BYTES)
            .await
            .map_err(|error| match error {
                super::availability::BodyError::TooLarge => GuarderError::Malformed {
                    url: text.clone(),
                    message: format!("a status larger than {MOST_STATUS_BYTES} bytes"),
                },
                super::availability::BodyError::Transport(error) => unreachable(&text)(error),
            })?;
        serde_json::from_slice(&body).map_err(|err| GuarderError::Malformed {
            url: text,
            message: err.to_string(),
        })
    }
}
