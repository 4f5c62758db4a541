//! `/metrics` (OpenMetrics text of a registry) and `/healthz` (200 until shutdown begins) for a
//! controller's Service and probes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

#[derive(Clone)]
struct ServerState {
    registry: Arc<Registry>,
    healthy: Arc<AtomicBool>,
}

async fn metrics(State(state): State<ServerState>) -> Response {
    match crate::openmetrics::render(&state.registry) {
        Ok(text) => (
            [(header::CONTENT_TYPE, crate::openmetrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn healthz(State(state): State<ServerState>) -> Response {
    if state.healthy.load(Ordering::Relaxed) {
        "ok\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

/// The `/metrics` and `/healthz` routes.
pub fn router(registry: Registry, healthy: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(ServerState {
            registry: Arc::new(registry),
            healthy,
        })
}

/// Serves the routes on `listen` until the task is dropped.
pub async fn serve(listen: SocketAddr, router: Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, router).await
}
