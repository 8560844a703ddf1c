//! Admission control shared by both ports: at most `max_concurrent_requests` decisions in
//! flight (queued or running), and a deadline per request.
//!
//! Under overload editgate refuses at once, with `RESOURCE_EXHAUSTED` (gRPC) or 503 (HTTP),
//! rather than queueing without bound: a wiki backend can then fall back to its own
//! default in microseconds instead of holding an edit while a queue drains. Health checks,
//! reflection, `/metrics` and `/healthz` are never refused, so an overloaded instance still
//! reports itself. A `CheckStream` holds one slot for its whole life.
//!
//! The slots are a [`Semaphore`], the primitive `conn` uses for connections, and the deadline
//! is tokio's timer. tower's `ConcurrencyLimit` + `LoadShed` + `Timeout` would do the same, but
//! they apply to a whole service, and this must spare health, reflection and `CheckStream`'s
//! deadline; a path test in front of one semaphore is simpler than three layers per route.
//! Admission costs about 0.1 µs of CPU per request (`cargo xtask cpu`, BENCHMARKS.md).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{RequestError, State};

/// Requests in flight against a limit.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    max: usize,
}

/// One admitted request; frees its slot when dropped.
pub type Permit = OwnedSemaphorePermit;

impl Admission {
    /// A limit of `max` concurrent requests (0 = no limit).
    pub fn new(max: usize) -> Self {
        let max = if max == 0 {
            Semaphore::MAX_PERMITS
        } else {
            max.min(Semaphore::MAX_PERMITS)
        };
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Requests in flight now.
    pub fn inflight(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// A slot, or [`RequestError::Overloaded`] when all are in use.
    pub fn try_enter(&self) -> Result<Permit, RequestError> {
        self.slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| RequestError::Overloaded)
    }
}

/// Runs `fut` within the request deadline.
pub(super) async fn within<T>(state: &State, fut: impl Future<Output = T>) -> Result<T, RequestError> {
    let deadline = state.config.request_timeout;
    tokio::time::timeout(deadline, fut)
        .await
        .map_err(|_| RequestError::Deadline(deadline))
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
        let method = path.strip_prefix(SERVICE_PREFIX).unwrap_or(path);
        let permit = match self.state.admission.try_enter() {
            Ok(p) => p,
            Err(e) => {
                self.state.metrics.refused(method, &e);
                return Box::pin(std::future::ready(Ok(e.status().into_http())));
            }
        };
        let state = self.state.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let _permit = permit;
            within(&state, fut).await.unwrap_or_else(|e| Ok(e.status().into_http()))
        })
    }
}
