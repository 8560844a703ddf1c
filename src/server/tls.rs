//! TLS and mutual TLS for both ports, from PEM files (rustls with the ring provider).
//!
//! gRPC uses tonic's own TLS support; the HTTP port completes each handshake on the
//! connection's own task (bounded by [`HANDSHAKE_TIMEOUT`]), so one slow or hostile client
//! cannot hold up the others.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsFiles;

/// Longest a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn read(path: &std::path::Path, what: &str) -> anyhow::Result<Vec<u8>> {
    editgate_core::files::read_regular(path, 1 << 20)
        .with_context(|| format!("cannot read the TLS {what} `{}`", path.display()))
}

/// tonic's TLS configuration for the gRPC port.
pub fn grpc_config(files: &TlsFiles) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    let identity = tonic::transport::Identity::from_pem(read(&files.cert, "certificate")?, read(&files.key, "key")?);
    let mut cfg = tonic::transport::ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &files.client_ca {
        cfg = cfg.client_ca_root(tonic::transport::Certificate::from_pem(read(ca, "client CA")?));
    }
    Ok(cfg)
}

/// The rustls configuration for the HTTP port. Also validates the files, so that `serve`
/// refuses to start on a bad certificate or key with a message naming the file.
pub fn rustls_config(files: &TlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&files.cert, "certificate")?)
        .collect::<Result<_, _>>()
        .with_context(|| format!("`{}` is not a PEM certificate chain", files.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("`{}` holds no PEM certificate", files.cert.display());
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key, "key")?)
        .with_context(|| format!("`{}` holds no PEM private key", files.key.display()))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&read(ca, "client CA")?) {
                let c = c.with_context(|| format!("`{}` is not a PEM certificate", ca.display()))?;
                roots
                    .add(c)
                    .with_context(|| format!("`{}`: unusable CA certificate", ca.display()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .with_context(|| format!("`{}`: no usable client CA", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not match")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
