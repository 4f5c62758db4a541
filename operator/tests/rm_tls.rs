//! `https://` RMs: the client trusts the CA bundle it is given, and only that; a certificate
//! from another CA is refused with a clear error. The RM double is served behind a real TLS
//! terminator (rustls) with certificates made by rcgen.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use testkit::kubernetes::certs::{Authority, CA_CERT, SERVING_CERT, SERVING_KEY};
use tokio::net::{TcpListener, TcpStream};
use yarn_rm::{NodeState, ResourceManager, Resources, RestResourceManager, RestSettings, RmAuth};
use yarn_rm_double::{DoubleAuth, DoubleCluster, DoubleNode, RmDouble, Role};

/// Serves TLS on a loopback port with the certificate in `dir` and forwards every connection
/// to `backend` in plain text; returns the port.
async fn tls_terminator(dir: &Path, backend: std::net::SocketAddr) -> u16 {
    let chain = CertificateDer::pem_file_iter(dir.join(SERVING_CERT))
        .expect("the test setup works")
        .collect::<Result<Vec<_>, _>>()
        .expect("the test setup works");
    let key = PrivateKeyDer::from_pem_file(dir.join(SERVING_KEY)).expect("the test setup works");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the test setup works")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("the test setup works");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the test setup works");
    let port = listener.local_addr().expect("the test setup works").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                if let Ok(mut plain) = TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    port
}

fn client(port: u16, ca_file: Option<&Path>) -> RestResourceManager {
    let mut settings = RestSettings::new(
        vec![format!("https://localhost:{port}")],
        RmAuth::Simple {
            user: "yarn".to_owned(),
        },
    );
    settings.ca_file = ca_file.map(Path::to_path_buf);
    settings.retry.retries = 0;
    RestResourceManager::new(settings).expect("the test setup works")
}

#[tokio::test]
async fn https_rms_are_trusted_through_the_given_ca_bundle_only() {
    let cluster = DoubleCluster::new();
    cluster.add_node(DoubleNode::running(
        "nm-0.yarn.test:45454"
            .parse()
            .expect("the test setup works"),
        Resources {
            memory_mb: 8192,
            vcores: 8,
        },
    ));
    let (backend, _task) = RmDouble::new(cluster, Role::Active, DoubleAuth::Simple)
        .spawn()
        .await
        .expect("the test setup works");
    let ours = tempfile::tempdir().expect("the test setup works");
    Authority::create(ours.path());
    let port = tls_terminator(ours.path(), backend).await;

    let nodes = client(port, Some(&ours.path().join(CA_CERT)))
        .nodes(&[NodeState::Running])
        .await
        .expect("the test setup works");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].capacity().vcores, 8);

    // Another CA's bundle: the RM's certificate is not trusted.
    let other = tempfile::tempdir().expect("the test setup works");
    Authority::create(other.path());
    let error = client(port, Some(&other.path().join(CA_CERT)))
        .nodes(&[NodeState::Running])
        .await
        .unwrap_err();
    assert_eq!(error.category(), "unreachable", "{error}");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );
}
