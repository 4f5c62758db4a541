//! The project's controllers as real processes, authenticated as the chart's ServiceAccounts
//! with a token from the TokenRequest API, so that the chart's RBAC is what the API server
//! enforces on them.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::{Api, Client};
use testkit::kubernetes::Cluster;
use testkit::supervised::Supervised;

/// A token of `namespace/account`, valid for an hour.
pub async fn service_account_token(client: &Client, namespace: &str, account: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("no token for {namespace}/{account}: {e}"))
        .status
        .expect("a token in the answer")
        .token
}

/// The credential id the API server's audit log gives requests made with `token`.
pub fn credential_id(token: &str) -> String {
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .expect("a JWT");
    format!(
        "JTI={}",
        claims["jti"].as_str().expect("the token has a jti claim")
    )
}

/// A controller process.
#[derive(Debug)]
pub struct ControllerProcess {
    /// The process under its watchdog.
    pub process: Supervised,
    /// Its token's credential id in the audit log.
    pub credential: String,
    /// Its `/metrics` and `/healthz`.
    pub metrics: SocketAddr,
    /// Its identity in the leader Lease.
    pub identity: String,
}

/// What to start.
#[derive(Debug)]
pub struct Launch<'a> {
    /// Binary name in the workspace.
    pub binary: &'a str,
    /// Arguments (`--listen` is added: a free port on loopback).
    pub args: Vec<String>,
    /// The ServiceAccount (namespace, name) it runs as.
    pub account: (&'a str, &'a str),
    /// Lease identity.
    pub identity: &'a str,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Folder for its kubeconfig and log.
    pub dir: &'a Path,
    /// The API server address it is given instead of the cluster's (a proxy in front of it).
    pub server: Option<String>,
}

/// Starts a controller as its ServiceAccount.
pub async fn start(cluster: &Cluster, client: &Client, launch: Launch<'_>) -> ControllerProcess {
    let (namespace, account) = launch.account;
    let token = service_account_token(client, namespace, account).await;
    let kubeconfig = launch
        .dir
        .join(format!("{}-{}.kubeconfig", launch.binary, launch.identity));
    cluster.token_kubeconfig(&token, &kubeconfig);
    if let Some(server) = &launch.server {
        let text = std::fs::read_to_string(&kubeconfig).expect("the kubeconfig");
        let mut config: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        config["clusters"][0]["cluster"]["server"] = serde_json::json!(server);
        std::fs::write(&kubeconfig, config.to_string()).expect("kubeconfig");
    }
    let port = testkit::free_port();
    let metrics: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
    let mut command = Command::new(testkit::workspace_binary(launch.binary));
    command
        .args(&launch.args)
        .arg(format!("--listen={metrics}"))
        .env("KUBECONFIG", &kubeconfig)
        .env("POD_NAMESPACE", namespace)
        .env("POD_NAME", launch.identity)
        .env(
            "RUST_LOG",
            std::env::var("E2E_CONTROLLER_LOG").unwrap_or_else(|_| "info".to_owned()),
        );
    for (key, value) in &launch.env {
        command.env(key, value);
    }
    let log = launch
        .dir
        .join(format!("{}-{}.log", launch.binary, launch.identity));
    let process = Supervised::start(launch.identity, &command, &log);
    ControllerProcess {
        process,
        credential: credential_id(&token),
        metrics,
        identity: launch.identity.to_owned(),
    }
}

impl ControllerProcess {
    /// Its `/metrics` text (empty while it does not answer).
    pub async fn metrics_text(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics);
        let client = controlkit::process::http_client().build();
        let answer = match client {
            Ok(client) => client.get(&url).send().await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The value of the first sample of `series` whose line contains every `labels` text.
    pub async fn metric(&self, series: &str, labels: &[&str]) -> Option<f64> {
        let text = self.metrics_text().await;
        text.lines()
            .filter(|l| l.starts_with(series))
            .find(|l| labels.iter().all(|label| l.contains(label)))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}
