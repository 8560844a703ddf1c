//! The HTTP port: `/metrics` (Prometheus text), `/healthz` (JSON), and the HTTP/JSON API
//! for backends without gRPC (PHP): `POST /v1/check` and `POST /v1/explain` take a
//! `CheckRequest` and answer a `CheckResponse` / `ExplainResponse`, in the proto3 JSON
//! mapping, decided by the same code as gRPC.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;

use super::{State, proto};

/// The HTTP routes.
pub fn router(state: Arc<State>) -> Router {
    let limit = state.settings.max_message_bytes;
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/v1/check", post(check))
        .route("/v1/explain", post(explain))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A gRPC status as an HTTP error: 400 for bad input, 503 when the service cannot answer.
fn error_response(s: &tonic::Status) -> Response {
    let status = match s.code() {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::ResourceExhausted | tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_response(
        status,
        serde_json::json!({"code": format!("{:?}", s.code()), "message": s.message()}),
    )
}

fn parse(body: &str) -> Result<proto::CheckRequest, tonic::Status> {
    proto::request_from_json(body).map_err(tonic::Status::invalid_argument)
}

async fn check(AxState(state): AxState<Arc<State>>, body: String) -> Response {
    let req = match parse(&body) {
        Ok(r) => r,
        Err(s) => return error_response(&s),
    };
    match state.check(&req) {
        Ok(r) => json_response(StatusCode::OK, proto::response_json(&r)),
        Err(s) => {
            state.metrics.invalid("http/check");
            error_response(&s)
        }
    }
}

async fn explain(AxState(state): AxState<Arc<State>>, body: String) -> Response {
    let req = match parse(&body) {
        Ok(r) => r,
        Err(s) => return error_response(&s),
    };
    match state.explain(&req) {
        Ok(r) => json_response(StatusCode::OK, proto::explain_json(&r)),
        Err(s) => {
            state.metrics.invalid("http/explain");
            error_response(&s)
        }
    }
}

async fn metrics(AxState(state): AxState<Arc<State>>) -> impl IntoResponse {
    let live = state.current();
    let body = state.metrics.render(
        &live.snapshot,
        live.generation,
        live.loaded_at,
        &state.cache,
        &state.decision_log.stats,
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

async fn healthz(AxState(state): AxState<Arc<State>>) -> impl IntoResponse {
    let live = state.current();
    let now = Timestamp::now();
    let stale: Vec<&str> = live
        .snapshot
        .sources()
        .iter()
        .filter(|s| match (s.modified, s.max_age_secs) {
            (Some(m), Some(max)) => now.as_second() - m.as_second() > max,
            _ => false,
        })
        .map(|s| s.name.as_str())
        .collect();
    let body = serde_json::json!({
        "status": "serving",
        "policy_version": live.snapshot.version(),
        "generation": live.generation,
        "stale_sources": stale,
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string())
}
