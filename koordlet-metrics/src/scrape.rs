//! Fetching koordlet's page every second and feeding the exporter.

use std::error::Error as _;
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use tokio::time::MissedTickBehavior;

use crate::cgroup::YarnCgroups;
use crate::exporter::{Clock, FetchError, ScrapeOutcome};
use crate::exposition::{SharedExporter, lock};

/// Pages larger than this are refused: koordlet's is a few hundred KiB on a busy node.
pub const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// An HTTP client for koordlet's metrics endpoint.
#[derive(Debug, Clone)]
pub struct KoordletClient {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    max_page_bytes: usize,
}

impl KoordletClient {
    /// A client for `url` that gives up after `timeout` (keep it under the scrape interval).
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<KoordletClient> {
        let url = reqwest::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("koordlet URL {url:?} is invalid: {e}"))?;
        if url.scheme() != "http" {
            anyhow::bail!(
                "koordlet URL {url} must use http:// (koordlet serves plain HTTP on the node)"
            );
        }
        let client = controlkit::process::http_client()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .build()?;
        Ok(KoordletClient {
            client,
            url,
            timeout,
            max_page_bytes: MAX_PAGE_BYTES,
        })
    }

    /// The URL scraped.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// Fetches the page once.
    pub async fn fetch(&self) -> Result<String, FetchError> {
        let mut response = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .map_err(|e| self.classify(&e))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(&e))? {
            if body.len() + chunk.len() > self.max_page_bytes {
                return Err(FetchError::Body(format!(
                    "page larger than {} bytes",
                    self.max_page_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|e| {
            FetchError::Body(format!(
                "not UTF-8 at byte {}",
                e.utf8_error().valid_up_to()
            ))
        })
    }

    fn classify(&self, error: &reqwest::Error) -> FetchError {
        if error.is_timeout() {
            return FetchError::Timeout(
                u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            );
        }
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        if error.is_body() || error.is_decode() {
            FetchError::Body(message)
        } else {
            FetchError::Connect(message)
        }
    }
}

/// Everything one scrape loop needs.
#[derive(Debug)]
pub struct ScrapeLoop {
    /// The exporter fed.
    pub exporter: SharedExporter,
    /// The koordlet client.
    pub client: KoordletClient,
    /// YARN's cgroups (`None`: YARN is taken to use nothing).
    pub yarn: Option<YarnCgroups>,
    /// The exporter's clock.
    pub clock: Clock,
    /// Time between scrapes.
    pub interval: Duration,
    /// Observes fetch durations.
    pub duration: Histogram,
}

impl ScrapeLoop {
    /// Scrapes every interval until `shutdown` completes. Failures are logged when the reason
    /// changes, not every second.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        tokio::pin!(shutdown);
        let mut last_reason: Option<&'static str> = None;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticker.tick() => {}
            }
            let started = std::time::Instant::now();
            let page = self.client.fetch().await;
            self.duration.observe(started.elapsed().as_secs_f64());
            let at = self.clock.now();
            let yarn = match self.yarn.as_mut() {
                Some(yarn) => yarn.read(at.monotonic_ms),
                None => Ok(Some(Default::default())),
            };
            let outcome =
                lock(&self.exporter).observe(at, page.as_deref().map_err(Clone::clone), yarn);
            match outcome {
                Ok(ScrapeOutcome::Sample(sample)) => {
                    if let Some(reason) = last_reason.take() {
                        tracing::info!(previous = reason, "koordlet scrapes give samples again");
                    }
                    tracing::debug!(
                        cpu_cores = sample.cpu_cores,
                        memory_bytes = sample.memory_bytes,
                        "sample"
                    );
                }
                Ok(ScrapeOutcome::WarmingUp) => {}
                Err(failure) => {
                    let reason = failure.category();
                    if last_reason != Some(reason) {
                        tracing::warn!(reason, error = %failure, "koordlet scrape gave no sample");
                        last_reason = Some(reason);
                    }
                }
            }
        }
    }
}
