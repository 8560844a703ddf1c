//! `editgate serve`: its settings ([`super::settings`]), logging, signals; then
//! [`crate::server::run_with`].

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::ExitCode;
use super::settings::{LogFormat, Resolved, ServeSettings};
use crate::server::{self, State};

/// Logs to stderr: JSON lines, or text with colours only on a terminal (a file, a pipe or the
/// journal gets plain text) and only without `NO_COLOR` (<https://no-color.org>).
fn init_logging(json: bool) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs `serve` until SIGTERM or SIGINT.
pub fn run(args: &ServeSettings) -> ExitCode {
    let resolved = match args.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    init_logging(resolved.log_format == LogFormat::Json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::Usage;
        }
    };
    let code = runtime.block_on(serve(resolved));
    // A fetch in flight on a blocking thread must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(r: Resolved) -> ExitCode {
    if let Some(files) = &r.config.tls {
        // Refuse to start on unusable certificate files, naming them, and on a private key
        // others can read.
        match crate::server::tls::key_exposure(files) {
            Ok(None) => {}
            Ok(Some((refused, why))) if refused || r.config.deny_warnings => {
                eprintln!("error: {why}");
                return ExitCode::Usage;
            }
            Ok(Some((_, why))) => tracing::warn!(lint = "secret-file-mode", "{why}"),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::Usage;
            }
        }
        if let Err(e) = crate::server::tls::rustls_config(files) {
            eprintln!("error: {e:#}");
            return ExitCode::Usage;
        }
    }
    let policies = r.config.policies.clone();
    let state = match State::load(r.config) {
        Ok(s) => s,
        Err(e) => {
            let code = super::report_load_error(&policies, &e);
            eprintln!("error: not starting");
            return code;
        }
    };
    let (grpc, http) = match (bind(r.listen).await, bind(r.http_listen).await) {
        (Ok(g), Ok(h)) => (g, h),
        _ => return ExitCode::Usage,
    };
    let console = match r.console_listen {
        Some(addr) => match bind(addr).await {
            Ok(l) => Some(l),
            Err(()) => return ExitCode::Usage,
        },
        None => None,
    };
    let http_socket = match &r.http_socket {
        Some((path, mode)) => match server::UnixSocket::bind(path, *mode) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: cannot listen on the socket `{}`: {e}", path.display());
                return ExitCode::Usage;
            }
        },
        None => None,
    };
    let shutdown = shutdown_signal();
    let (ga, ha) = (grpc.local_addr().ok(), http.local_addr().ok());
    let ca = console.as_ref().and_then(|l| l.local_addr().ok());
    let live = state.current();
    tracing::info!(
        policies = %policies.display(),
        version = live.snapshot.version(),
        rules = live.snapshot.rules().len(),
        "snapshot loaded"
    );
    // One line on stdout with the bound addresses, so scripts (and tests using port 0) can
    // find the service. A closed stdout does not stop the service.
    let _ = writeln!(
        std::io::stdout(),
        "editgate serving gRPC on {} and HTTP on {}{}{}",
        ga.map_or_else(|| r.listen.to_string(), |a| a.to_string()),
        ha.map_or_else(|| r.http_listen.to_string(), |a| a.to_string()),
        ca.map(|a| format!(" and the console on {a}")).unwrap_or_default(),
        r.http_socket
            .as_ref()
            .map(|(p, _)| format!(" and HTTP on unix:{}", p.display()))
            .unwrap_or_default()
    );
    if state.config.console {
        let scheme = if state.config.tls.is_some() { "https" } else { "http" };
        let at = ca.or(ha).map_or_else(|| r.http_listen.to_string(), |a| a.to_string());
        tracing::info!("admin console on {scheme}://{at}/ (read-only; --no-console turns it off)");
    }
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    #[cfg(unix)]
    let _hup = match server::watch::spawn_sighup(state.clone()) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!("cannot handle SIGHUP: {e}");
            None
        }
    };
    let stopping = async {
        shutdown.await;
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
        // A second SIGTERM or SIGINT while draining stops at once.
        let again = shutdown_signal();
        tokio::spawn(async move {
            again.await;
            tracing::warn!("second signal: stopping now, without waiting for what is in flight");
            std::process::exit(0);
        });
    };
    let listeners = server::Listeners {
        grpc,
        http,
        console,
        http_socket,
    };
    match server::run_with(state, listeners, stopping).await {
        Ok(()) => ExitCode::Ok,
        Err(e) => {
            tracing::error!("server error: {e}");
            ExitCode::Usage
        }
    }
}

/// Tells systemd (`Type=notify`) about the service's state; does nothing outside systemd
/// (no `NOTIFY_SOCKET`).
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!("sd_notify: {e}");
    }
}

/// Binds `addr`, saying why on stderr when it cannot.
async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ()> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| eprintln!("error: cannot listen on {addr}: {e}"))
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled, so a signal sent right after the "serving" line (or READY=1)
/// is already a graceful shutdown.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
