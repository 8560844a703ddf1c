//! The tonic handlers for `editgate.v1.EditGate`.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{RequestError, State};
use crate::proto::{CheckRequest, CheckResponse, ExplainResponse, edit_gate_server::EditGate};

/// The service; cheap to clone.
#[derive(Clone)]
pub struct EditGateService {
    state: Arc<State>,
}

impl EditGateService {
    /// A service over shared state.
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

type CheckStream = Pin<Box<dyn Stream<Item = Result<CheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EditGate for EditGateService {
    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        self.state
            .check(&mut request.into_inner())
            .map(Response::new)
            .map_err(|e| self.refused("Check", e))
    }

    type CheckStreamStream = CheckStream;

    async fn check_stream(
        &self,
        request: Request<Streaming<CheckRequest>>,
    ) -> Result<Response<Self::CheckStreamStream>, Status> {
        let permit = self
            .state
            .admission
            .try_enter()
            .map_err(|e| self.refused("CheckStream", e))?;
        let state = self.state.clone();
        let mut index = 0u64;
        let mut failed = false;
        // Decisions are synchronous and microseconds long, so they run inline in stream order;
        // the first malformed request ends the stream with an error naming its position.
        let out = request.into_inner().map_while(move |item| {
            // The slot is held for as long as the stream lives.
            let _slot = &permit;
            if failed {
                return None;
            }
            let position = index;
            index += 1;
            let result = item.and_then(|mut req| {
                state.check(&mut req).map_err(|e| {
                    state.metrics.refused("CheckStream", &e);
                    e.stream_status(position, &req.request_id)
                })
            });
            failed = result.is_err();
            Some(result)
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn explain(&self, request: Request<CheckRequest>) -> Result<Response<ExplainResponse>, Status> {
        self.state
            .explain_offloaded(request.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| self.refused("Explain", e))
    }
}

impl EditGateService {
    /// Counts a request to `method` that got no decision; its gRPC status.
    fn refused(&self, method: &str, e: RequestError) -> Status {
        self.state.metrics.refused(method, &e);
        e.status()
    }
}
