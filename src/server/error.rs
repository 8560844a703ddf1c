//! The server's errors. Each names what failed and keeps its cause as
//! [`std::error::Error::source`]; the messages read well on their own in a log line.

use std::path::PathBuf;
use std::time::Duration;

use editgate_core::attempt::FieldError;
use editgate_core::load::LoadError;
use http::StatusCode;

/// Why a reload left the serving snapshot in place.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The policy directory or a data file is invalid or unreadable (or, with
    /// `deny_warnings`, has warnings). One error per line, with `file:line:col`.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The reload thread could not start.
    #[error("cannot start the reload thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The reload thread ended without a result (it panicked).
    #[error("the reload thread ended without a result")]
    Lost,
}

/// Why the TLS files cannot be used; `serve` refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read the TLS {what} `{}`: {source}", path.display())]
    Read {
        /// `certificate`, `key` or `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what it should be (not PEM, no certificate, no key, an unusable CA).
    #[error("`{}` {problem}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: &'static str,
        /// The parser's or rustls's reason, when it gave one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The certificate and key do not belong together.
    #[error("the TLS certificate and key do not match: {0}")]
    Mismatch(#[source] rustls::Error),
    /// tonic refused the configuration.
    #[error("gRPC TLS: {0}")]
    Grpc(#[source] tonic::transport::Error),
}

/// Why the server could not start, or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The TLS files.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The file watcher could not start.
    #[error("cannot watch the policy directory: {0}")]
    Watch(#[from] notify::Error),
    /// SIGHUP could not be handled.
    #[error("cannot handle SIGHUP: {0}")]
    Signal(#[source] std::io::Error),
    /// gRPC reflection could not be built from the descriptors.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// Why a request (`Check`, `CheckStream`, `Explain`, `POST /v1/check`, `POST /v1/explain`,
/// the console's explain) got no decision. One type for every transport:
/// [`RequestError::status`] is its gRPC status, its `IntoResponse` its HTTP
/// answer, and `Metrics::refused` counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A field is missing, malformed or out of range (`field: message`).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The body is larger than `max_message_bytes`.
    #[error("request body larger than `max_message_bytes`")]
    TooLarge,
    /// The body is not sent as editgate reads it (its `Content-Type` or `Content-Encoding`).
    #[error("{0}")]
    Unsupported(String),
    /// The `Host` is not one the port answers.
    #[error("{0}")]
    Forbidden(String),
    /// Starting: a `url` source awaits its first good fetch.
    #[error("{0}")]
    Starting(String),
    /// At `max_concurrent_requests`.
    #[error("editgate is at its concurrent request limit; retry shortly or fall back to your default")]
    Overloaded,
    /// The threads of an offloaded kind of work (`explain`, `console`) are busy and its queue
    /// is full.
    #[error("editgate is busy with other {0} requests; retry shortly")]
    Busy(&'static str),
    /// Not answered within `request_timeout`.
    #[error("request not answered within the {} ms deadline", .0.as_millis())]
    Deadline(Duration),
    /// The answer could not be written (a bug in editgate).
    #[error("cannot write the answer: {0}")]
    Internal(String),
}

impl RequestError {
    /// The gRPC code.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            Self::Invalid(_) | Self::Unsupported(_) => Code::InvalidArgument,
            Self::TooLarge => Code::OutOfRange,
            Self::Forbidden(_) => Code::PermissionDenied,
            Self::Starting(_) => Code::Unavailable,
            Self::Overloaded | Self::Busy(_) => Code::ResourceExhausted,
            Self::Deadline(_) => Code::DeadlineExceeded,
            Self::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status: 4xx for the client's mistakes, 503 when editgate cannot answer now.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Starting(_) | Self::Overloaded | Self::Busy(_) | Self::Deadline(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the request itself was at fault (counted as malformed).
    pub fn is_invalid(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::TooLarge | Self::Unsupported(_))
    }

    /// The gRPC status.
    pub fn status(&self) -> tonic::Status {
        tonic::Status::new(self.code(), self.to_string())
    }

    /// The gRPC status of the request at `position` in a `CheckStream`, which names it.
    pub fn stream_status(&self, position: u64, request_id: &str) -> tonic::Status {
        let id: String = request_id.chars().take(64).collect();
        tonic::Status::new(self.code(), format!("request {position} (request_id `{id}`): {self}"))
    }
}

impl axum::response::IntoResponse for RequestError {
    /// JSON `{"code", "message"}`, `code` being the gRPC code's name.
    fn into_response(self) -> axum::response::Response {
        let body = serde_json::json!({"code": format!("{:?}", self.code()), "message": self.to_string()});
        (
            self.http_status(),
            [(http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}
