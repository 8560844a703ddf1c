//! The HTTP port: `/metrics` (Prometheus text) and `/healthz` (JSON).

use std::sync::Arc;

use axum::Router;
use axum::extract::State as AxState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use jiff::Timestamp;

use super::State;

/// The HTTP routes.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
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
