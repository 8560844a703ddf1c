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
//! is tokio's `Timeout`. tower's `ConcurrencyLimit` + `LoadShed` + `Timeout` would do the same,
//! but they wrap a whole service, and this must spare health, reflection and `CheckStream`'s
//! deadline; a path test in front of one semaphore is simpler than three layers per route.
//! Taking and returning a slot is two atomic operations; the deadline's timer, registered and
//! dropped per request, is most of what admission costs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

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

/// Runs `fut` within the request deadline (the HTTP API's; [`Limited`] is gRPC's).
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

impl<S, B> tower::Service<http::Request<B>> for GrpcLimit<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Limited<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        if !path.starts_with(SERVICE_PREFIX) || path == STREAM_PATH {
            return Limited::Free {
                inner: self.inner.call(req),
            };
        }
        let method = path.strip_prefix(SERVICE_PREFIX).unwrap_or(path);
        match self.state.admission.try_enter() {
            Ok(permit) => {
                let deadline = self.state.config.request_timeout;
                Limited::Admitted {
                    inner: tokio::time::timeout(deadline, self.inner.call(req)),
                    deadline,
                    _permit: permit,
                }
            }
            Err(e) => {
                self.state.metrics.refused(method, &e);
                Limited::Refused {
                    answer: Some(e.status().into_http()),
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`GrpcLimit`]: a request that needs no slot, one admitted (holding its
    /// slot until it is answered, cut at the deadline), or one refused. A concrete type
    /// rather than a boxed future, which would move tonic's large routing future to the heap
    /// on every call. (pin-project-lite takes no documentation on variant fields.)
    #[project = Projected]
    #[allow(missing_docs)]
    pub enum Limited<F> {
        /// Health, reflection, `CheckStream`.
        Free { #[pin] inner: F },
        /// Within the deadline (kept for the answer past it), holding a slot.
        Admitted { #[pin] inner: tokio::time::Timeout<F>, deadline: Duration, _permit: Permit },
        /// Over the limit: the refusal, until it is returned.
        Refused { answer: Option<http::Response<tonic::body::Body>> },
    }
}

impl<F, E> Future for Limited<F>
where
    F: Future<Output = Result<http::Response<tonic::body::Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Free { inner } => inner.poll(cx),
            Projected::Admitted { inner, deadline, .. } => match inner.poll(cx) {
                Poll::Ready(Ok(answer)) => Poll::Ready(answer),
                Poll::Ready(Err(_)) => Poll::Ready(Ok(RequestError::Deadline(*deadline).status().into_http())),
                Poll::Pending => Poll::Pending,
            },
            Projected::Refused { answer } => Poll::Ready(Ok(answer.take().unwrap_or_default())),
        }
    }
}
