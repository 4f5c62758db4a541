//! An HTTPS proxy in front of the real API server that can expire watches: on demand it ends
//! every watch stream in flight and answers the next watch of each resource path with what
//! kube-apiserver sends when a watch's resourceVersion is older than its history (a `200` whose
//! only event is an `ERROR` carrying a `410 Expired` Status), as after a long disconnection or an
//! etcd compaction. Everything else passes through untouched (the client's own token included),
//! so the API server still authenticates and authorizes every request.
//!
//! It serves the control plane's own certificate (its SANs name 127.0.0.1), so a client that
//! trusts the cluster CA trusts the proxy.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;

type Body = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Incoming>;

/// What kube-apiserver streams for a watch whose resourceVersion it no longer has.
const EXPIRED_EVENT: &str = r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (2)","reason":"Expired","code":410}}"#;

#[derive(Debug, Default)]
struct Expiry {
    /// Expiring: each path not yet in `done` gets one 410.
    on: bool,
    done: HashSet<String>,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    expiry: Mutex<Expiry>,
    expired: AtomicU64,
    /// Bumped to end every watch stream in flight.
    reset: watch::Sender<u64>,
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct WatchProxy {
    /// Where clients connect (`https://<address>`).
    pub address: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl WatchProxy {
    /// Starts a proxy to `upstream` (`https://127.0.0.1:<port>`) serving the certificate and key
    /// in `cert_dir` (the control plane's), trusting `ca_pem` upstream.
    pub async fn start(upstream: &str, cert_dir: &Path, ca_pem: &str) -> WatchProxy {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain =
            CertificateDer::pem_file_iter(cert_dir.join(testkit::kubernetes::certs::SERVING_CERT))
                .expect("the serving certificate")
                .collect::<Result<Vec<_>, _>>()
                .expect("the serving certificate");
        let key =
            PrivateKeyDer::from_pem_file(cert_dir.join(testkit::kubernetes::certs::SERVING_KEY))
                .expect("the serving key");
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("a server configuration");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));

        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("the CA")).expect("the CA");
        }
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client)
            .https_only()
            .enable_http1()
            .build();
        let upstream_client: Upstream = Client::builder(TokioExecutor::new()).build(connector);

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("an address");
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            expiry: Mutex::new(Expiry::default()),
            expired: AtomicU64::new(0),
            reset: watch::channel(0).0,
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, shared, upstream_client) =
                    (acceptor.clone(), serving.clone(), upstream_client.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        handle(shared.clone(), upstream_client.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        WatchProxy {
            address,
            shared,
            task,
        }
    }

    /// Ends every watch in flight and answers the next watch of each resource path with `410
    /// Expired`, until [`WatchProxy::stop_expiring`].
    pub fn expire_watches(&self) {
        *lock(&self.shared.expiry) = Expiry {
            on: true,
            done: HashSet::new(),
        };
        self.shared.reset.send_modify(|generation| *generation += 1);
    }

    /// Watches pass through again.
    pub fn stop_expiring(&self) {
        lock(&self.shared.expiry).on = false;
    }

    /// The resource paths whose watch got a 410 since [`WatchProxy::expire_watches`].
    pub fn expired_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = lock(&self.shared.expiry).done.iter().cloned().collect();
        paths.sort();
        paths
    }

    /// Watches answered with 410 in all.
    pub fn expired(&self) -> u64 {
        self.shared.expired.load(Ordering::Relaxed)
    }
}

impl Drop for WatchProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn is_watch(request: &Request<Incoming>) -> bool {
    request.uri().query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    })
}

async fn handle(
    shared: Arc<Shared>,
    upstream: Upstream,
    request: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let watch = is_watch(&request);
    if watch {
        let path = request.uri().path().to_owned();
        let expire = {
            let mut expiry = lock(&shared.expiry);
            expiry.on && expiry.done.insert(path)
        };
        if expire {
            shared.expired.fetch_add(1, Ordering::Relaxed);
            let body = Full::new(Bytes::from(format!("{EXPIRED_EVENT}\n")))
                .map_err(|never| match never {})
                .boxed_unsync();
            return Ok(Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(body)
                .unwrap_or_else(|_| Response::new(empty())));
        }
    }
    let (mut parts, body) = request.into_parts();
    let target = format!(
        "{}{}",
        shared.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let Ok(uri) = target.parse() else {
        return Ok(bad_gateway());
    };
    parts.uri = uri;
    parts.headers.remove(hyper::header::HOST);
    let Ok(answer) = upstream.request(Request::from_parts(parts, body)).await else {
        return Ok(bad_gateway());
    };
    let (parts, body) = answer.into_parts();
    if !watch {
        return Ok(Response::from_parts(
            parts,
            body.map_err(Into::into).boxed_unsync(),
        ));
    }
    // A watch stream ends when the test expires watches.
    let mut reset = shared.reset.subscribe();
    reset.borrow_and_update();
    let ended = async move {
        let _ = reset.changed().await;
    };
    let frames = body
        .into_data_stream()
        .map(|chunk| chunk.map(Frame::data).map_err(Into::into))
        .take_until(Box::pin(ended));
    Ok(Response::from_parts(
        parts,
        BodyExt::boxed_unsync(StreamBody::new(frames)),
    ))
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn bad_gateway() -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    response
}
