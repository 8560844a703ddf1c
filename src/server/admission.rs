//! Admission control shared by both ports: at most `max_concurrent_requests` decisions in
//! flight (queued or running), and a deadline per request.
//!
//! Under overload editgate refuses at once, with `RESOURCE_EXHAUSTED` (gRPC) or 503 (HTTP),
//! rather than queueing without bound: a wiki backend can then fall back to its own
//! default in microseconds instead of holding an edit while a queue drains. Health checks,
//! reflection, `/metrics` and `/healthz` are never refused, so an overloaded instance still
//! reports itself. A `CheckStream` holds one slot for its whole life.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State as AxState};
use axum::middleware::Next;
use axum::response::Response;
use tonic::Status;

use super::State;

/// Counts requests in flight against a limit.
#[derive(Debug)]
pub struct Admission {
    inflight: AtomicUsize,
    max: usize,
}

impl Admission {
    /// A limit of `max` concurrent requests (0 = no limit).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            inflight: AtomicUsize::new(0),
            max: if max == 0 { usize::MAX } else { max },
        })
    }

    /// A slot, or `None` when `max` are in use.
    pub fn try_enter(self: &Arc<Self>) -> Option<Permit> {
        let mut n = self.inflight.load(Ordering::Relaxed);
        loop {
            if n >= self.max {
                return None;
            }
            match self
                .inflight
                .compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Some(Permit(self.clone())),
                Err(now) => n = now,
            }
        }
    }

    /// Requests in flight now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }
}

/// One admitted request; frees its slot when dropped.
#[derive(Debug)]
pub struct Permit(Arc<Admission>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The gRPC status for a refused request.
pub fn overloaded() -> Status {
    Status::resource_exhausted(
        "editgate is at its concurrent request limit; retry shortly or fall back to your default",
    )
}

fn deadline_exceeded(d: Duration) -> Status {
    Status::deadline_exceeded(format!("request not answered within the {} ms deadline", d.as_millis()))
}

const SERVICE_PREFIX: &str = "/editgate.v1.EditGate/";
const STREAM_PATH: &str = "/editgate.v1.EditGate/CheckStream";

/// Tower layer applying admission and the deadline to the unary `editgate.v1.EditGate`
/// methods (`CheckStream` takes its slot in its handler, for the stream's whole life).
#[derive(Clone)]
pub struct GrpcLimitLayer {
    state: Arc<State>,
}

impl GrpcLimitLayer {
    /// A layer over the shared state.
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

impl<S> tower::Layer<S> for GrpcLimitLayer {
    type Service = GrpcLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcLimit {
            inner,
            state: self.state.clone(),
        }
    }
}

/// See [`GrpcLimitLayer`].
#[derive(Clone)]
pub struct GrpcLimit<S> {
    inner: S,
    state: Arc<State>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for GrpcLimit<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        if !path.starts_with(SERVICE_PREFIX) || path == STREAM_PATH {
            return Box::pin(self.inner.call(req));
        }
        let Some(permit) = self.state.admission.try_enter() else {
            self.state
                .metrics
                .shed(path.strip_prefix(SERVICE_PREFIX).unwrap_or(path));
            return Box::pin(std::future::ready(Ok(overloaded().into_http())));
        };
        let deadline = self.state.config.request_timeout;
        let fut = self.inner.call(req);
        Box::pin(async move {
            let _permit = permit;
            match tokio::time::timeout(deadline, fut).await {
                Ok(r) => r,
                Err(_) => Ok(deadline_exceeded(deadline).into_http()),
            }
        })
    }
}

/// The same for the HTTP/JSON API (`/v1/...`): 503 when full, 503 past the deadline (which
/// also bounds how long a client may take to send its body).
pub async fn http_limit(AxState(state): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    let Some(_permit) = state.admission.try_enter() else {
        state
            .metrics
            .shed(&format!("http{}", req.uri().path().trim_start_matches("/v1")));
        return super::http::error_response(&overloaded());
    };
    let deadline = state.config.request_timeout;
    match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(r) => r,
        Err(_) => super::http::error_response(&deadline_exceeded(deadline)),
    }
}
