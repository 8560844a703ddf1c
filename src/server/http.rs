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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::limits::http_limit,
        ))
        .with_state(state)
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A gRPC status as an HTTP error: 400 for bad input, 503 when the service cannot answer.
pub(crate) fn error_response(s: &tonic::Status) -> Response {
    let status = match s.code() {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::ResourceExhausted | tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
            StatusCode::SERVICE_UNAVAILABLE
        }
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

/// Parses a JSON request, decides it with `decide`, and answers JSON; malformed requests
/// that reach `decide` are counted under `method`, as gRPC counts them.
fn answer<T>(
    state: &State,
    method: &str,
    body: &str,
    decide: impl FnOnce(&State, &mut proto::CheckRequest) -> Result<T, tonic::Status>,
    to_json: impl FnOnce(&T) -> serde_json::Value,
) -> Response {
    let result = parse(body).and_then(|mut req| decide(state, &mut req).inspect_err(|_| state.metrics.invalid(method)));
    match result {
        Ok(r) => json_response(StatusCode::OK, to_json(&r)),
        Err(s) => error_response(&s),
    }
}

async fn check(AxState(state): AxState<Arc<State>>, body: String) -> Response {
    answer(&state, "http/check", &body, State::check, proto::response_json)
}

async fn explain(AxState(state): AxState<Arc<State>>, body: String) -> Response {
    answer(&state, "http/explain", &body, State::explain, proto::explain_json)
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
    let sources = live.snapshot.sources();
    let stale: Vec<&str> = sources
        .iter()
        .filter(|s| s.is_stale(now))
        .map(|s| s.name.as_str())
        .collect();
    let details: Vec<serde_json::Value> = sources
        .iter()
        .map(|s| {
            let mut d = serde_json::json!({
                "name": s.name,
                "kind": s.kind.as_str(),
                "entries": s.entries,
                "data_age_seconds": s.data_age_secs(now),
                "stale": s.is_stale(now),
            });
            if s.remote {
                d["awaiting_first_fetch"] = s.awaiting_first_fetch().into();
                d["fetch"] = serde_json::to_value(state.fetch_status(&s.name)).unwrap_or_default();
            }
            d
        })
        .collect();
    let body = serde_json::json!({
        "status": "serving",
        "policy_version": live.snapshot.version(),
        "generation": live.generation,
        "stale_sources": stale,
        "sources": details,
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string())
}
