//! Running both ports: gRPC (with health and reflection) and HTTP, admission, the watcher and
//! the fetcher, and a bounded drain at shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio_stream::StreamExt as _;

use super::error::{ServeError, TlsError};
use super::{State, admission, conn, fetcher, http, proto, service, tls, watch};

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
    tls: bool,
) -> Result<(), TlsError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Some(conns) = conns else { return Ok(()) };
    let routes = http::router(state.clone(), serves, hosts.clone());
    http::serve(state.clone(), routes, conns, stop.clone(), tls).await
}

/// A bound Unix-domain socket and its path, removed when the service stops.
pub struct UnixSocket {
    /// The listener.
    pub listener: UnixListener,
    /// Its file.
    pub path: std::path::PathBuf,
}

impl UnixSocket {
    /// Binds `path` with file mode `mode`: a stale socket file left by an earlier run is
    /// replaced, any other file is an error. The mode is set before the first connection
    /// can be accepted.
    pub fn bind(path: &std::path::Path, mode: u32) -> std::io::Result<Self> {
        use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("`{}` exists and is not a socket", path.display()),
                ));
            }
            Err(_) => {}
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(Self {
            listener,
            path: path.to_owned(),
        })
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
    let fetcher = fetcher::spawn(state.clone());

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    state.attach_health(health_reporter).await;
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
    let socket_path = http_socket.as_ref().map(|s| s.path.clone());
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
    let http_server = serve_if(&state, Some(http_conns), api, &hosts, &stop_rx, true);
    let (socket_conns, socket_accept) = socket_conns.unzip();
    // The API only on the socket (no console: a person's browser does not reach a socket
    // file), and no TLS (the file's mode says who may connect).
    let socket_server = serve_if(
        &state,
        socket_conns,
        http::Serves::Api { console: false },
        &hosts,
        &stop_rx,
        false,
    );
    let (console_conns, console_accept) = console_conns.unzip();
    let console_server = serve_if(&state, console_conns, http::Serves::Console, &hosts, &stop_rx, true);
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
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
    drop(watcher);
    drop(fetcher);
    tracing::info!("servers stopped");
    result
}
