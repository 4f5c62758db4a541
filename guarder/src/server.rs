//! The guarder's HTTP API (docs/architecture.md, contract 4): `PUT /v1/target` (bearer token),
//! `GET /v1/status`, `GET /metrics`, `GET /healthz`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, put};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde_json::json;

use controlkit::openmetrics::{CONTENT_TYPE, render};
use controlkit::process::Clock;

use crate::api::TargetRequest;
use crate::drain::SignalKind;
use crate::service::Guarder;

/// The guarder shared by the scan loop and the server.
pub type SharedGuarder = Arc<Mutex<Guarder>>;

/// Locks the guarder; a panic elsewhere cannot make it unusable.
pub fn lock(guarder: &SharedGuarder) -> MutexGuard<'_, Guarder> {
    guarder.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Debug)]
struct ApiState {
    guarder: SharedGuarder,
    registry: Arc<Registry>,
    token_file: PathBuf,
    clock: Clock,
}

/// The routes. The token is read from `token_file` at every request, so a rotated Secret takes
/// effect without a restart.
pub fn router(guarder: SharedGuarder, token_file: PathBuf, clock: Clock) -> Router {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(GuarderCollector {
        guarder: guarder.clone(),
    }));
    Router::new()
        .route("/v1/target", put(put_target))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(ApiState {
            guarder,
            registry: Arc::new(registry),
            token_file,
            clock,
        })
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn authorized(headers: &HeaderMap, token_file: &Path) -> Result<(), (StatusCode, &'static str)> {
    let expected = std::fs::read_to_string(token_file).map_err(|e| {
        tracing::error!(file = %token_file.display(), error = %e, "cannot read the token file");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the guarder cannot read its token file",
        )
    })?;
    let expected = expected.trim();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token)
            if !expected.is_empty() && constant_time_eq(token.as_bytes(), expected.as_bytes()) =>
        {
            Ok(())
        }
        Some(_) => Err((StatusCode::UNAUTHORIZED, "wrong bearer token")),
        None => Err((
            StatusCode::UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer <token>)",
        )),
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn put_target(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err((status, message)) = authorized(&headers, &state.token_file) {
        return error(status, message);
    }
    let request: TargetRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "body must be {{\"vcores\":N,\"memoryMb\":M,\"deadlineSeconds\":S,\"reason\":\"...\"}}: {e}"
                ),
            );
        }
    };
    let outcome = lock(&state.guarder).set_target(state.clock.now().monotonic_ms, &request);
    (StatusCode::ACCEPTED, Json(outcome)).into_response()
}

async fn status(State(state): State<ApiState>) -> Response {
    Json(lock(&state.guarder).status()).into_response()
}

async fn metrics(State(state): State<ApiState>) -> Response {
    match render(&state.registry) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics",
        ),
    }
}

#[derive(Debug)]
struct GuarderCollector {
    guarder: SharedGuarder,
}

impl Collector for GuarderCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let guarder = lock(&self.guarder);
        let status = guarder.status();
        {
            let mut family = encoder.encode_descriptor(
                "elastic_yarn_guarder_signals",
                "Containers signalled, by signal and framework",
                None,
                MetricType::Counter,
            )?;
            for ((kind, framework), count) in guarder.signal_counts() {
                let labels = [("signal", kind.label()), ("framework", framework.label())];
                ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "elastic_yarn_guarder_force_kills",
                "Containers killed with SIGKILL after the grace period, by framework",
                None,
                MetricType::Counter,
            )?;
            for ((kind, framework), count) in guarder.signal_counts() {
                if *kind == SignalKind::Kill {
                    let labels = [("framework", framework.label())];
                    ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut gauges = vec![
            (
                "elastic_yarn_guarder_used_vcores",
                "Vcores YARN's containers use",
                status.used_vcores,
            ),
            (
                "elastic_yarn_guarder_used_memory_mb",
                "MiB YARN's containers use",
                status.used_memory_mb,
            ),
            (
                "elastic_yarn_guarder_containers",
                "YARN containers found",
                status.containers.len() as f64,
            ),
            (
                "elastic_yarn_guarder_leaving_containers",
                "Containers asked to leave",
                status.leaving.len() as f64,
            ),
        ];
        if let Some(target) = &status.target {
            gauges.push((
                "elastic_yarn_guarder_target_vcores",
                "Vcores the target allows",
                f64::from(target.vcores),
            ));
            gauges.push((
                "elastic_yarn_guarder_target_memory_mb",
                "MiB the target allows",
                target.memory_mb as f64,
            ));
        }
        for (name, help, value) in gauges {
            ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}
