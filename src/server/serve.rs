//! Running both ports: gRPC (with health and reflection) and HTTP, admission, the watcher and
//! the fetcher, and a bounded drain at shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio_stream::StreamExt as _;

use super::error::{ServeError, TlsError};
use super::{BackgroundTask, State, admission, conn, http, service, tls, watch};
use crate::proto;

/// The listeners the service answers on.
pub struct Listeners {
    /// gRPC.
    pub grpc: TcpListener,
    /// HTTP: the JSON API, `/metrics`, `/healthz`, and the console unless it has its own.
    pub http: TcpListener,
    /// The console's own listener (`console_listen`), so that people reading it never share
    /// a port, threads or connection slots with the wikis' requests.
    pub console: Option<TcpListener>,
    /// The JSON API, `/metrics` and `/healthz` on a Unix-domain socket (`http_socket`), for a
    /// web server on the same host: no TCP connection to set up per request, and the socket
    /// file's mode says who may ask.
    pub http_socket: Option<UnixSocket>,
}

/// Serves `serves` on the connections of an HTTP listener (see [`http::serve`]); done at once
/// for one that is not configured.
async fn serve_if<IO>(
    state: &Arc<State>,
    conns: Option<tokio::sync::mpsc::Receiver<conn::Conn<IO>>>,
    serves: http::Serves,
    hosts: &Arc<http::AllowedHosts>,
    stop: &tokio::sync::watch::Receiver<bool>,
    encryption: http::Encryption,
) -> Result<(), TlsError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Some(conns) = conns else { return Ok(()) };
    let routes = http::router(state.clone(), serves, hosts.clone());
    http::serve(state.clone(), routes, conns, stop.clone(), encryption).await
}

/// A bound Unix-domain socket and its path, removed when the service stops (if it is still
/// this one's).
pub struct UnixSocket {
    /// The listener.
    pub listener: UnixListener,
    /// Its file.
    pub path: std::path::PathBuf,
    /// The file's device and inode when bound: at exit the path is removed only if it still
    /// names this socket, never one another instance bound there since.
    id: (u64, u64),
}

impl UnixSocket {
    /// Binds `path` with file mode `mode`.
    ///
    /// - A socket file at `path` that a live server answers on is left alone: this is an
    ///   error (another instance serves the wikis there, and taking the path over would cut
    ///   them off when this one stops). Only a dead socket left by an earlier run is replaced;
    ///   any other file is an error.
    /// - No other user can connect before the mode is set: the socket is bound in a private
    ///   directory (mode 0700) beside `path`, given its mode, then renamed into place, which
    ///   also replaces a dead socket atomically.
    pub fn bind(path: &std::path::Path, mode: u32) -> std::io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        format!(
                            "a server is answering on `{}` (another editgate?): stop it first, or give this one another `http_socket`",
                            path.display()
                        ),
                    ));
                }
            }
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("`{}` exists and is not a socket", path.display()),
                ));
            }
            Err(_) => {}
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => std::path::PathBuf::from("."),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let private = parent.join(format!(".editgate-socket-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&private)?;
        let bound = (|| {
            let staged = private.join("socket");
            let listener = std::os::unix::net::UnixListener::bind(&staged)?;
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))?;
            std::fs::rename(&staged, path)?;
            listener.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(listener)
        })();
        // Empty once the socket is renamed away; removed whatever happened.
        let _ = std::fs::remove_dir_all(&private);
        let listener = UnixListener::from_std(bound?)?;
        let meta = std::fs::symlink_metadata(path)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            id: (meta.dev(), meta.ino()),
        })
    }

    /// Removes the socket file if `path` still names the socket bound by [`UnixSocket::bind`].
    fn remove(path: &std::path::Path, id: (u64, u64)) {
        use std::os::unix::fs::MetadataExt as _;
        match std::fs::symlink_metadata(path) {
            Ok(m) if (m.dev(), m.ino()) == id => {
                let _ = std::fs::remove_file(path);
            }
            Ok(_) => tracing::warn!(
                path = %path.display(),
                "the socket path now names another file (another instance?): left in place"
            ),
            Err(_) => {}
        }
    }
}

/// Runs the gRPC server on `grpc` and the HTTP server (API, metrics, health, console) on
/// `http` until `shutdown` completes (see [`run_with`]).
pub async fn run(
    state: Arc<State>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    run_with(
        state,
        Listeners {
            grpc,
            http,
            console: None,
            http_socket: None,
        },
        shutdown,
    )
    .await
}

/// Runs every listener until `shutdown` completes; then stops accepting and lets the
/// requests and streams in flight finish for at most [`super::Config::drain_timeout`] before cutting
/// them, and returns. With [`super::Config::watch`], a file watcher reloads on change.
pub async fn run_with(
    state: Arc<State>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let Listeners {
        grpc,
        http,
        console,
        http_socket,
    } = listeners;
    let listening: Vec<std::net::SocketAddr> = [Some(&http), console.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let hosts = Arc::new(http::AllowedHosts::new(
        state.config.allowed_hosts.as_deref(),
        &listening,
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let watcher = if state.config.watch {
        Some(watch::spawn_watcher(state.clone())?)
    } else {
        None
    };
    let fetcher = BackgroundTask::new(tokio::spawn(crate::fetch::schedule::run(state.clone())));

    state.sync_health().await;
    let health_service = state.health_service();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let edit_gate = proto::edit_gate_server::EditGateServer::new(service::EditGateService::new(state.clone()))
        .max_decoding_message_size(state.config.max_message_bytes);

    let (grpc_conns, grpc_accept) = conn::accept(grpc, "grpc", &state, stop_rx.clone());
    let (http_conns, http_accept) = conn::accept(http, "http", &state, stop_rx.clone());
    let console_conns = console.map(|l| conn::accept(l, "console", &state, stop_rx.clone()));
    let socket_file = http_socket.as_ref().map(|s| (s.path.clone(), s.id));
    let socket_conns = http_socket.map(|s| conn::accept(s.listener, "http-socket", &state, stop_rx.clone()));
    let incoming = tokio_stream::wrappers::ReceiverStream::new(grpc_conns).map(Ok::<_, std::io::Error>);
    let mut grpc_stop = stop_rx.clone();
    let mut builder = tonic::transport::Server::builder()
        // A peer that stops answering pings is gone: its connection does not hold a slot.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)));
    if let Some(files) = &state.config.tls {
        builder = builder.tls_config(tls::grpc_config(files)?).map_err(TlsError::Grpc)?;
    }
    let grpc_server = builder
        .layer(admission::GrpcLimitLayer::new(state.clone()))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(edit_gate)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = grpc_stop.wait_for(|s| *s).await;
        });
    let api = http::Serves::Api {
        console: state.config.console && console_conns.is_none(),
    };
    let http_server = serve_if(
        &state,
        Some(http_conns),
        api,
        &hosts,
        &stop_rx,
        http::Encryption::Configured,
    );
    let (socket_conns, socket_accept) = socket_conns.unzip();
    // The API only on the socket (no console: a person's browser does not reach a socket
    // file), and no TLS (the file's mode says who may connect).
    let socket_server = serve_if(
        &state,
        socket_conns,
        http::Serves::Api { console: false },
        &hosts,
        &stop_rx,
        http::Encryption::Plain,
    );
    let (console_conns, console_accept) = console_conns.unzip();
    let console_server = serve_if(
        &state,
        console_conns,
        http::Serves::Console,
        &hosts,
        &stop_rx,
        http::Encryption::Configured,
    );
    let servers = async {
        let (g, h, c, u) = tokio::join!(grpc_server, http_server, console_server, socket_server);
        g?;
        h?;
        c?;
        u?;
        Ok::<_, ServeError>(())
    };
    tokio::pin!(servers);
    let mut stopped = stop_rx.clone();
    let drained = tokio::select! {
        r = &mut servers => Some(r),
        _ = stopped.wait_for(|s| *s) => None,
    };
    let result = match drained {
        Some(r) => r,
        // Stopping: what is in flight gets `drain_timeout` to finish.
        None => match tokio::time::timeout(state.config.drain_timeout, &mut servers).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(
                    drain_timeout_ms = state.config.drain_timeout.as_millis() as u64,
                    "requests or streams still open at the drain deadline: closing them"
                );
                Ok(())
            }
        },
    };
    // Both listeners are closed when this returns.
    grpc_accept.close().await;
    http_accept.close().await;
    if let Some(c) = console_accept {
        c.close().await;
    }
    if let Some(c) = socket_accept {
        c.close().await;
    }
    if let Some((path, id)) = socket_file {
        UnixSocket::remove(&path, id);
    }
    drop(watcher);
    drop(fetcher);
    tracing::info!("servers stopped");
    result
}
