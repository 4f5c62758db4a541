//! What every elastic-yarn binary does the same way at its edges, with no Kubernetes in it:
//! logging, stopping on a signal, an HTTP client with the workspace's TLS provider, and the
//! two clocks samples are stamped with.

/// Logs to stderr at `RUST_LOG` (default `info`), coloured only on a terminal.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// A builder for an HTTP client of this workspace. Installs rustls' ring provider first (the
/// one kube uses): reqwest is built without a provider of its own, so that no second crypto
/// library is compiled, and would refuse to build a client without one.
pub fn http_client() -> reqwest::ClientBuilder {
    // Err only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    #[allow(
        clippy::disallowed_methods,
        reason = "the one place a client is built, after the provider"
    )]
    reqwest::Client::builder()
}

/// `GET url` with a default client of [`http_client`] (tests, one-off reads).
pub async fn http_get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http_client().build()?.get(url).send().await
}

/// A moment on both clocks.
///
/// Time comes in two clocks: a monotonic one (milliseconds since start) orders samples and ages
/// them, so a wall-clock jump can neither reorder windows nor make old data look fresh; the
/// wall clock only stamps what is published.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moment {
    /// Monotonic milliseconds since the clock started.
    pub monotonic_ms: u64,
    /// Unix time, seconds.
    pub wall_seconds: f64,
}

/// Reads both clocks.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    started: std::time::Instant,
}

impl Clock {
    /// A clock whose monotonic zero is now.
    pub fn start() -> Clock {
        Clock {
            started: std::time::Instant::now(),
        }
    }

    /// The current moment.
    pub fn now(&self) -> Moment {
        let wall_seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Moment {
            monotonic_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            wall_seconds,
        }
    }
}
