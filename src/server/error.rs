//! The server's errors. Each names what failed and keeps its cause as
//! [`std::error::Error::source`]; the messages read well on their own in a log line.

use std::path::PathBuf;

use editgate_core::load::LoadError;

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
