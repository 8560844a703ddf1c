//! The trivial peers the benchmarks compare editgate with: servers that read the same
//! request and answer as many bytes, without deciding anything. Whatever editgate costs
//! beyond them is the cost of deciding and of what surrounds the decision.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;

use axum::body::Bytes;
use clap::Args;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::ExitCode;
use editgate::proto::edit_gate_server::{EditGate, EditGateServer};
use editgate::proto::{CheckRequest, CheckResponse, ExplainResponse};

/// A gRPC server answering every request with the same decision (the request's own
/// `request_id` put back in): the transport's ceiling.
#[derive(Clone, Default)]
pub(crate) struct Trivial {
    answer: CheckResponse,
}

impl Trivial {
    /// Answers `answer` to every request.
    pub(crate) fn new(answer: CheckResponse) -> Self {
        Self { answer }
    }

    fn answer(&self, request: CheckRequest) -> CheckResponse {
        CheckResponse {
            request_id: request.request_id,
            ..self.answer.clone()
        }
    }

    /// Serves on `listener` until `stop`.
    pub(crate) async fn serve(
        self,
        listener: TcpListener,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        tonic::transport::Server::builder()
            .add_service(EditGateServer::new(self))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                stop,
            )
            .await
    }
}

#[tonic::async_trait]
impl EditGate for Trivial {
    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        Ok(Response::new(self.answer(request.into_inner())))
    }

    type CheckStreamStream = Pin<Box<dyn Stream<Item = Result<CheckResponse, Status>> + Send>>;

    async fn check_stream(
        &self,
        request: Request<Streaming<CheckRequest>>,
    ) -> Result<Response<Self::CheckStreamStream>, Status> {
        let this = self.clone();
        Ok(Response::new(Box::pin(
            request.into_inner().map(move |r| r.map(|r| this.answer(r))),
        )))
    }

    async fn explain(&self, _: Request<CheckRequest>) -> Result<Response<ExplainResponse>, Status> {
        Err(Status::unimplemented("the trivial baseline does not explain"))
    }
}

/// An HTTP handler that parses the JSON body into a `serde_json::Value` and answers `body`.
fn http_router(body: Bytes) -> axum::Router {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let check = move |request: Bytes| {
        let body = body.clone();
        async move {
            match serde_json::from_slice::<serde_json::Value>(&request) {
                Ok(_) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            }
        }
    };
    axum::Router::new().route("/v1/check", axum::routing::post(check))
}

/// `cargo xtask trivial-server`: the trivial peers as a process of their own, so that their
/// CPU time can be read apart from the client's (`cpu` starts it).
#[derive(Debug, Args)]
pub struct TrivialArgs {
    /// The gRPC answer: an encoded `CheckResponse`.
    #[arg(long, value_name = "FILE")]
    answer: PathBuf,
    /// The HTTP answer's body.
    #[arg(long, value_name = "FILE")]
    http_body: PathBuf,
}

/// Runs `trivial-server` until killed; prints its addresses as `editgate serve` does.
pub fn run(a: &TrivialArgs) -> ExitCode {
    match crate::block_on(serve(a)) {
        Ok(()) => ExitCode::Ok,
        Err(code) => code,
    }
}

async fn serve(a: &TrivialArgs) -> anyhow::Result<()> {
    let answer = CheckResponse::decode(std::fs::read(&a.answer)?.as_slice())?;
    let body = Bytes::from(std::fs::read(&a.http_body)?);
    let grpc = TcpListener::bind("127.0.0.1:0").await?;
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let (g, h): (SocketAddr, SocketAddr) = (grpc.local_addr()?, http.local_addr()?);
    println!("trivial serving gRPC on {g} and HTTP on {h}");
    let grpc = tokio::spawn(Trivial::new(answer).serve(grpc, std::future::pending()));
    axum::serve(http, http_router(body)).await?;
    grpc.await??;
    Ok(())
}
