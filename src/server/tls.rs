//! TLS and mutual TLS for both ports, from PEM files (rustls with the ring provider).
//!
//! gRPC uses tonic's own TLS support; the HTTP port completes each handshake on the
//! connection's own task (bounded by [`HANDSHAKE_TIMEOUT`]), so one slow or hostile client
//! cannot hold up the others.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsFiles;
use super::error::TlsError;

/// Longest a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    editgate_core::files::read_regular(path, 1 << 20).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn content<'a, E: std::error::Error + Send + Sync + 'static>(
    path: &'a Path,
    problem: &'static str,
) -> impl FnOnce(E) -> TlsError + 'a {
    move |e| TlsError::Content {
        path: path.to_owned(),
        problem,
        source: Some(Box::new(e)),
    }
}

/// What is wrong with who can read the private key, if anything: `Some((true, why))` when
/// every user on the host can (`serve` refuses to start), `Some((false, why))` when a group
/// other than the service's can (a warning, an error under `--deny-warnings`).
pub fn key_exposure(files: &TlsFiles) -> Result<Option<(bool, String)>, TlsError> {
    let access = editgate_core::files::secret_access(&files.key).map_err(|source| TlsError::Read {
        what: "key",
        path: files.key.clone(),
        source,
    })?;
    Ok(access.problem(
        "the TLS private key",
        &files.key,
        "impersonate this service to the wikis and read their requests",
    ))
}

/// tonic's TLS configuration for the gRPC port.
pub fn grpc_config(files: &TlsFiles) -> Result<tonic::transport::ServerTlsConfig, TlsError> {
    let identity = tonic::transport::Identity::from_pem(read(&files.cert, "certificate")?, read(&files.key, "key")?);
    let mut cfg = tonic::transport::ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &files.client_ca {
        cfg = cfg.client_ca_root(tonic::transport::Certificate::from_pem(read(ca, "client CA")?));
    }
    Ok(cfg)
}

/// The rustls configuration for the HTTP port. Also validates the files, so that `serve`
/// refuses to start on a bad certificate or key with a message naming the file.
pub fn rustls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&files.cert, "certificate")?)
        .collect::<Result<_, _>>()
        .map_err(content(&files.cert, "is not a PEM certificate chain"))?;
    if certs.is_empty() {
        return Err(TlsError::Content {
            path: files.cert.clone(),
            problem: "holds no PEM certificate",
            source: None,
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key, "key")?)
        .map_err(content(&files.key, "holds no PEM private key"))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&read(ca, "client CA")?) {
                let c = c.map_err(content(ca, "is not a PEM certificate"))?;
                roots.add(c).map_err(content(ca, "holds an unusable CA certificate"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(content(ca, "holds no usable client CA"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(TlsError::Mismatch)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
