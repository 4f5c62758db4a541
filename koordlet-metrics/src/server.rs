//! The exporter's HTTP API: `GET /metrics`, `GET /v1/windows`, `GET /healthz`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::exporter::Clock;
use crate::exposition::{self, SharedExporter, lock};

#[derive(Clone, Debug)]
struct ApiState {
    exporter: SharedExporter,
    registry: Arc<Registry>,
    clock: Clock,
}

/// The routes of the exporter.
pub fn router(exporter: SharedExporter, registry: Arc<Registry>, clock: Clock) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/windows", get(windows))
        .route("/healthz", get(healthz))
        .with_state(ApiState {
            exporter,
            registry,
            clock,
        })
}

async fn metrics(State(state): State<ApiState>) -> Response {
    match exposition::render(&state.registry) {
        Ok(text) => ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        )
            .into_response(),
    }
}

async fn windows(State(state): State<ApiState>) -> Response {
    let report = lock(&state.exporter).report(state.clock.now());
    Json(report).into_response()
}

/// Liveness only: a koordlet outage is reported in the metrics, restarting the exporter would
/// not end it.
async fn healthz() -> &'static str {
    "ok\n"
}
