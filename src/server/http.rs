//! The HTTP port: `/metrics` (Prometheus text), `/healthz` (JSON), and the HTTP/JSON API
//! for backends without gRPC (PHP): `POST /v1/check` and `POST /v1/explain` take a
//! `CheckRequest` and answer a `CheckResponse` / `ExplainResponse`, in the proto3 JSON
//! mapping, decided by the same code as gRPC. Every error is JSON `{"code","message"}`.
//!
//! Served by hyper directly (not `axum::serve`) for its HTTP/1 header read timeout: a client
//! that trickles its headers, or keeps an idle connection open, is cut after
//! `header_timeout`. The API and the console answer only the accepted `Host` names
//! ([`AllowedHosts`]), and API `POST`s only `application/json` bodies.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use editgate_core::attempt::FieldError;
use jiff::Timestamp;

use super::{RequestError, State};
use crate::proto;

/// Serves `routes` on the connections `conns` admits (see [`super::conn::accept`]), with TLS
/// when configured and `tls` (not on a Unix-domain socket, which its file mode protects),
/// until `stop`; then stops taking connections and waits for those in flight (the caller
/// bounds the wait with `drain_timeout`).
pub async fn serve<IO>(
    state: Arc<State>,
    routes: Router,
    mut conns: tokio::sync::mpsc::Receiver<super::conn::Conn<IO>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    tls: bool,
) -> Result<(), super::TlsError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let tls = match state.config.tls.as_ref().filter(|_| tls) {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(super::tls::rustls_config(files)?)),
        None => None,
    };
    let service = TowerToHyperService::new(routes);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.config.header_timeout);
    loop {
        let conn = tokio::select! {
            c = conns.recv() => match c {
                Some(c) => c,
                None => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let (http, service, watcher) = (http.clone(), service.clone(), graceful.watcher());
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => watcher.watch(http.serve_connection(TokioIo::new(conn), service)).await,
                Some(acceptor) => {
                    // Each handshake on the connection's own task, bounded: a slow or
                    // hostile client holds up no one else.
                    match tokio::time::timeout(super::tls::HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(http.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        // The peer's address is not logged (privacy); the reason is enough.
                        Ok(Err(e)) => return tracing::debug!("http TLS handshake failed: {e}"),
                        Err(_) => return tracing::debug!("http TLS handshake timed out"),
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!("http connection ended: {e}");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// What an HTTP listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// The HTTP port: the JSON API, `/metrics`, `/healthz`, and the console unless it has a
    /// listener of its own (or is off).
    Api {
        /// Whether the console is served here too.
        console: bool,
    },
    /// A listener of the console's own (`console_listen`), with `/healthz` and `/metrics`.
    Console,
}

/// The routes of one HTTP listener. The console behind the `guard` layer; the API's routes
/// make the same checks inline, in `api`, which is the whole of their request path.
pub fn router(state: Arc<State>, serves: Serves, hosts: Arc<AllowedHosts>) -> Router {
    let base = match serves {
        Serves::Api { console: true } | Serves::Console => super::console::router(),
        Serves::Api { console: false } => Router::new(),
    };
    let guarded = base
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(axum::middleware::from_fn_with_state(hosts.clone(), guard));
    let routes = match serves {
        Serves::Api { .. } => {
            let (check_hosts, explain_hosts) = (hosts.clone(), hosts);
            guarded
                .route(
                    "/v1/check",
                    post(move |AxState(state): AxState<Arc<State>>, req: Request| async move {
                        api(&state, &check_hosts, "http/check", req, State::check).await
                    }),
                )
                .route(
                    "/v1/explain",
                    post(move |AxState(state): AxState<Arc<State>>, req: Request| async move {
                        api(&state, &explain_hosts, "http/explain", req, State::explain).await
                    }),
                )
        }
        Serves::Console => guarded,
    };
    routes.with_state(state)
}

/// The `Host` values the HTTP port answers on its API and console, against DNS rebinding: a
/// web page on `attacker.example` that re-resolves its name to `127.0.0.1` is same-origin
/// with editgate in the browser, but its requests still carry `Host: attacker.example`.
/// `/healthz` and `/metrics` answer any host (load balancers and scrapers name the port by
/// whatever address they reach it at, and neither shows a request or an address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    any: bool,
    names: Vec<String>,
}

impl AllowedHosts {
    /// The configured names (`*` accepts any host), or by default the loopback names and the
    /// specific addresses in `listening` (not `0.0.0.0` or `::`, which no client names).
    pub fn new(configured: Option<&[String]>, listening: &[std::net::SocketAddr]) -> Self {
        let names: Vec<String> = match configured {
            Some(list) => list.iter().filter_map(|h| host_name(h)).collect(),
            None => ["localhost", "127.0.0.1", "::1"]
                .iter()
                .map(|s| (*s).to_owned())
                .chain(
                    listening
                        .iter()
                        .filter(|a| !a.ip().is_unspecified())
                        .map(|a| a.ip().to_string()),
                )
                .collect(),
        };
        Self {
            any: configured.is_some_and(|l| l.iter().any(|h| h.trim() == "*")),
            names,
        }
    }

    /// Whether a request with this `Host` header (with or without a port) is answered.
    pub fn allows(&self, host: &str) -> bool {
        self.any || host_name(host).is_some_and(|h| self.names.contains(&h))
    }

    /// The accepted names, for error messages and logs.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `req`'s `Host` header (or its URI's authority) is accepted.
    fn check(&self, req: &Request) -> Result<(), RequestError> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        if host.is_some_and(|h| self.allows(h)) {
            return Ok(());
        }
        let shown: String = host.unwrap_or_default().chars().take(64).collect();
        Err(RequestError::Forbidden(format!(
            "Host `{shown}` is not one this port answers ({}); set `allowed_hosts` to the names clients use",
            self.names().join(", ")
        )))
    }
}

/// The host of a `Host` value: without its port or IPv6 brackets, lower-cased, without a
/// trailing dot; `None` when empty.
fn host_name(value: &str) -> Option<String> {
    let v = value.trim();
    let host = match v.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        // One colon: a name or IPv4 address with a port. More: a bare IPv6 address.
        None if v.matches(':').count() == 1 => v.split(':').next().unwrap_or_default(),
        None => v,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Refuses a console request whose `Host` is not accepted (403); `/healthz` and `/metrics`
/// pass.
async fn guard(AxState(hosts): AxState<Arc<AllowedHosts>>, req: Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path();
    if path == "/healthz" || path == "/metrics" {
        return next.run(req).await;
    }
    match hosts.check(&req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Refuses a body editgate does not read: one not declared `application/json` (a cross-site
/// form can send `text/plain` without a CORS preflight, a JSON body cannot), or one with a
/// `Content-Encoding` editgate does not decode.
fn json_body(req: &Request) -> Result<(), RequestError> {
    let headers = req.headers();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(RequestError::Unsupported(
            "Content-Type: send the request as `application/json`".into(),
        ));
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_ascii_lowercase());
    match encoding.filter(|e| !e.is_empty() && e != "identity") {
        Some(enc) => Err(RequestError::Unsupported(format!(
            "Content-Encoding `{}` is not supported: send the JSON body as it is",
            enc.chars().take(32).collect::<String>()
        ))),
        None => Ok(()),
    }
}

/// The request body, at most `limit` bytes.
async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, RequestError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            RequestError::TooLarge
        } else {
            FieldError::new("body", format!("cannot read the request body: {e}")).into()
        }
    })
}

/// The whole request path of `POST /v1/check` and `POST /v1/explain`: the `Host` and body
/// checks, admission, then within the deadline the body, the JSON request, `decide` and the
/// JSON answer. A request that gets no decision is counted under `method`, as gRPC counts it.
///
/// One function rather than a middleware per step: each `from_fn` layer costs a boxed future
/// and a clone of the inner service per request, which was measurable at this rate.
async fn api<T: serde::Serialize>(
    state: &State,
    hosts: &AllowedHosts,
    method: &str,
    req: Request,
    decide: fn(&State, &mut proto::CheckRequest) -> Result<T, RequestError>,
) -> Response {
    let answered = async {
        hosts.check(&req)?;
        json_body(&req)?;
        let _slot = state.admission.try_enter()?;
        super::admission::within(state, async {
            let body = read_body(req.into_body(), state.config.max_message_bytes).await?;
            let mut wire = proto::request_from_json(&body)?;
            let answer = decide(state, &mut wire)?;
            proto::to_json(&answer).map_err(|e| RequestError::Internal(e.to_string()))
        })
        .await?
    };
    match answered.await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => {
            state.metrics.refused(method, &e);
            e.into_response()
        }
    }
}

async fn metrics(AxState(state): AxState<Arc<State>>) -> impl IntoResponse {
    let live = state.current();
    let health = state.health(Timestamp::now());
    let body = state.metrics.render(&live, &health, &state.cache);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

/// `/healthz`: the health report as JSON; 200 while deciding (serving or degraded), 503
/// while starting.
async fn healthz(AxState(state): AxState<Arc<State>>) -> Response {
    let health = state.health(Timestamp::now());
    let status = match health.status {
        super::health::Status::Starting => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let body = serde_json::to_vec(&health).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
