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

/// Whether a listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// TLS when the service has certificates (`tls_cert`), as on the TCP ports.
    Configured,
    /// Never: a Unix-domain socket, whose file mode says who may connect.
    Plain,
}

/// Serves `routes` on the connections `conns` admits (see [`super::conn::accept`]), encrypted
/// as `encryption` says, until `stop`; then stops taking connections and waits for those in
/// flight (the caller bounds the wait with `drain_timeout`).
pub async fn serve<IO>(
    state: Arc<State>,
    routes: Router,
    mut conns: tokio::sync::mpsc::Receiver<super::conn::Conn<IO>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    encryption: Encryption,
) -> Result<(), super::TlsError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let tls = match state
        .config
        .tls
        .as_ref()
        .filter(|_| encryption == Encryption::Configured)
    {
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
                        api(&state, &check_hosts, Method::Check, req).await
                    }),
                )
                .route(
                    "/v1/explain",
                    post(move |AxState(state): AxState<Arc<State>>, req: Request| async move {
                        api(&state, &explain_hosts, Method::Explain, req).await
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
        let mut names: Vec<String> = match configured {
            Some(list) => list.iter().filter_map(|h| configured_name(h)).collect(),
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
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        Self {
            any: configured.is_some_and(|l| l.iter().any(|h| h.trim() == "*")),
            names,
        }
    }

    /// The accepted names, for error messages and logs.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `req`'s `Host` (and, in absolute form, its target's authority, which must agree
    /// with it) is accepted.
    fn check(&self, req: &Request) -> Result<(), RequestError> {
        let header = req.headers().get(header::HOST);
        let target = req.uri().authority().map(|a| a.as_str());
        let shown = |v: &[u8]| -> String { String::from_utf8_lossy(v).chars().take(64).collect() };
        let refuse = |why: String| {
            Err(RequestError::Forbidden(format!(
                "{why}; this port answers {} (set `allowed_hosts` to the names clients use)",
                self.names().join(", ")
            )))
        };
        // Each authority given, parsed, or why not, naming where it came from.
        let parse = |what: &str, raw: Option<&[u8]>| match raw {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(Authority::parse)
                .map(Some)
                .ok_or_else(|| format!("{what} `{}` is not a host name with an optional port", shown(bytes))),
        };
        let from_header = match parse("Host", header.map(|v| v.as_bytes())) {
            Ok(a) => a,
            Err(why) => return refuse(why),
        };
        let from_target = match parse("the request target's authority", target.map(str::as_bytes)) {
            Ok(a) => a,
            Err(why) => return refuse(why),
        };
        let authority = match (from_header, from_target) {
            (Some(h), Some(t)) if h != t => {
                return refuse(format!(
                    "Host `{}` and the request target's `{}` disagree",
                    h.host, t.host
                ));
            }
            (h, t) => t.or(h),
        };
        match authority {
            Some(a) if self.any || self.names.contains(&a.host) => Ok(()),
            Some(a) => refuse(format!(
                "Host `{}` is not one this port answers",
                shown(a.host.as_bytes())
            )),
            None => refuse("a request without a Host is not answered".to_owned()),
        }
    }
}

/// The `Host` of a request, as RFC 9110 (§7.2) and RFC 3986 (§3.2.2) write it: `uri-host [
/// ":" port ]`, the host being a bracketed IPv6 literal or a name (an IPv4 address is one),
/// the port digits.
///
/// Hand-written because `http::uri::Authority` takes userinfo, percent-encoding and any
/// byte a URI allows, and leaves comparing names to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    /// Lower-cased, one trailing dot removed; an IPv6 literal without its brackets.
    host: String,
    /// The port, when given.
    port: Option<u16>,
}

impl Authority {
    /// The authority `value` names; `None` when it is not one: anything but visible ASCII, a
    /// bracketed literal that is no IPv6 address or has text after it, a name with an empty
    /// label or a character no DNS name has (`_` allowed, as hosts use it), a port that is not
    /// a number.
    fn parse(value: &str) -> Option<Self> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let (host, port) = match value.strip_prefix('[') {
            Some(rest) => {
                let (literal, after) = rest.split_once(']')?;
                let ip: std::net::Ipv6Addr = literal.parse().ok()?;
                let port = match after {
                    "" => None,
                    p => Some(p.strip_prefix(':')?),
                };
                (ip.to_string(), port)
            }
            None => {
                let (name, port) = match value.split_once(':') {
                    Some((n, p)) => (n, Some(p)),
                    None => (value, None),
                };
                let name = name.strip_suffix('.').unwrap_or(name);
                let valid = !name.split('.').any(str::is_empty)
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
                if !valid {
                    return None;
                }
                (name.to_ascii_lowercase(), port)
            }
        };
        let port = match port {
            None | Some("") => None,
            Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
            Some(_) => return None,
        };
        Some(Self { host, port })
    }
}

/// A configured `allowed_hosts` name as the accepted list holds it: lower-cased, one trailing
/// dot and any IPv6 brackets removed (a bare IPv6 address is taken as written); `None` when
/// empty.
fn configured_name(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(v);
    if let Ok(ip) = v.parse::<std::net::Ipv6Addr>() {
        return Some(ip.to_string());
    }
    let v = v.strip_suffix('.').unwrap_or(v).to_ascii_lowercase();
    (!v.is_empty()).then_some(v)
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

/// The API's two methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// `POST /v1/check`: decided inline, in microseconds.
    Check,
    /// `POST /v1/explain`: decided on the explain threads ([`State::explain_offloaded`]).
    Explain,
}

impl Method {
    /// The label a request that gets no decision is counted under.
    fn label(self) -> &'static str {
        match self {
            Self::Check => "http/check",
            Self::Explain => "http/explain",
        }
    }
}

/// The whole request path of `POST /v1/check` and `POST /v1/explain`: the `Host` and body
/// checks, admission, then within the deadline the body, the JSON request, the decision and
/// the JSON answer. A request that gets no decision is counted under its method's label, as
/// gRPC counts it.
///
/// One function rather than a middleware per step: each `from_fn` layer costs a boxed future
/// and a clone of the inner service per request.
async fn api(state: &Arc<State>, hosts: &AllowedHosts, method: Method, req: Request) -> Response {
    let answered = async {
        hosts.check(&req)?;
        json_body(&req)?;
        let _slot = state.admission.try_enter()?;
        super::admission::within(state, async {
            let body = read_body(req.into_body(), state.config.max_message_bytes).await?;
            let mut wire = proto::request_from_json(&body)?;
            let json = match method {
                Method::Check => proto::to_json(&state.check(&mut wire)?),
                Method::Explain => proto::to_json(&state.explain_offloaded(wire).await?),
            };
            json.map_err(|e| RequestError::Internal(e.to_string()))
        })
        .await?
    };
    match answered.await {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => {
            state.metrics.refused(method.label(), &e);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> Option<(String, Option<u16>)> {
        Authority::parse(s).map(|a| (a.host, a.port))
    }

    #[test]
    fn a_host_is_a_name_or_an_address_with_an_optional_port() {
        let some = |h: &str, p: Option<u16>| Some((h.to_owned(), p));
        assert_eq!(host("localhost"), some("localhost", None));
        assert_eq!(host("LocalHost.:9090"), some("localhost", Some(9090)));
        assert_eq!(host("127.0.0.1:80"), some("127.0.0.1", Some(80)));
        assert_eq!(host("[::1]"), some("::1", None));
        assert_eq!(host("[0:0::1]:9090"), some("::1", Some(9090)));
        assert_eq!(host("editgate_1.internal"), some("editgate_1.internal", None));
        assert_eq!(
            host("localhost:"),
            some("localhost", None),
            "RFC 3986 allows an empty port"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "[127.0.0.1]evil.example",
            "[::1]evil",
            "[::1]:x",
            "[not-v6]",
            "localhost:evil",
            "localhost:99999",
            "localhost:123456",
            "localhost..",
            "localhost....",
            "::1",
            "user@localhost",
            "local%68ost",
            "localhost /x",
            "l\u{f6}calhost",
            ".",
            ":80",
        ] {
            assert_eq!(host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn configured_names_are_compared_exactly() {
        let hosts = AllowedHosts::new(Some(&["Editgate.Internal.".into(), "[::1]".into(), "::2".into()]), &[]);
        assert_eq!(hosts.names(), ["editgate.internal", "::1", "::2"]);
        let allowed = |h: &str| Authority::parse(h).is_some_and(|a| hosts.names.contains(&a.host));
        assert!(allowed("editgate.internal:9090") && allowed("EDITGATE.internal.") && allowed("[::2]"));
        assert!(!allowed("editgate.internal..") && !allowed("editgate.internal.evil") && !allowed("internal"));
    }
}
