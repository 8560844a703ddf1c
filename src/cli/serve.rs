//! `editgate serve`: settings from flags, environment and an optional config file; logging;
//! signals; then [`crate::server::run`].
//!
//! Precedence: a flag beats its environment variable, which beats the config file, which
//! beats the built-in default.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::ExitCode;
use crate::load::LoadError;
use crate::policy::parse_duration;
use crate::server::{self, Settings, State};

/// `editgate serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML); see the README's configuration reference.
    #[arg(long, env = "EDITGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Policy directory [default: policies].
    #[arg(long, env = "EDITGATE_POLICIES", value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "EDITGATE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTP listen address for /metrics and /healthz [default: 127.0.0.1:9090].
    #[arg(long, env = "EDITGATE_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "EDITGATE_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// Facts cache capacity, in addresses; 0 disables the cache [default: 100000].
    #[arg(long, env = "EDITGATE_CACHE_CAPACITY", value_name = "N")]
    pub cache_capacity: Option<u64>,
    /// Facts cache entry lifetime, like 5m [default: 5m].
    #[arg(long, env = "EDITGATE_CACHE_TTL", value_name = "DURATION")]
    pub cache_ttl: Option<String>,
    /// Largest accepted gRPC request, bytes [default: 65536].
    #[arg(long, env = "EDITGATE_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Most forwarded_for entries per request [default: 32].
    #[arg(long, env = "EDITGATE_MAX_FORWARDED_FOR", value_name = "N")]
    pub max_forwarded_for: Option<usize>,
    /// Do not watch the policy directory for changes (SIGHUP still reloads).
    #[arg(long, env = "EDITGATE_NO_WATCH")]
    pub no_watch: bool,
    /// Requests in flight (both ports) beyond which new ones are refused with
    /// RESOURCE_EXHAUSTED / 503; 0 = no limit [default: 1024].
    #[arg(long, env = "EDITGATE_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    pub max_concurrent_requests: Option<usize>,
    /// Deadline for one request, body included, like 5s or 500ms [default: 5s].
    #[arg(long, env = "EDITGATE_REQUEST_TIMEOUT", value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// TLS certificate chain (PEM) for both ports; needs --tls-key.
    #[arg(long, env = "EDITGATE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "EDITGATE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to: turns on mutual TLS.
    #[arg(long, env = "EDITGATE_TLS_CLIENT_CA", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
}

/// The config file: every key optional, same names as the flags with `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Policy directory; relative paths are relative to the config file.
    pub policies: Option<PathBuf>,
    /// gRPC listen address.
    pub listen: Option<SocketAddr>,
    /// HTTP listen address.
    pub http_listen: Option<SocketAddr>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Facts cache capacity.
    pub cache_capacity: Option<u64>,
    /// Facts cache TTL, like `5m`.
    pub cache_ttl: Option<String>,
    /// Largest accepted gRPC request, bytes.
    pub max_message_bytes: Option<usize>,
    /// Most forwarded_for entries.
    pub max_forwarded_for: Option<usize>,
    /// Watch for changes (default true).
    pub watch: Option<bool>,
    /// Concurrent request limit.
    pub max_concurrent_requests: Option<usize>,
    /// Per-request deadline, like `5s`.
    pub request_timeout: Option<String>,
    /// TLS certificate chain; relative paths are relative to the config file.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key.
    pub tls_key: Option<PathBuf>,
    /// Client CA for mutual TLS.
    pub tls_client_ca: Option<PathBuf>,
}

/// Fully resolved serve settings.
#[derive(Debug)]
pub struct Resolved {
    /// Service settings.
    pub settings: Settings,
    /// gRPC address.
    pub listen: SocketAddr,
    /// HTTP address.
    pub http_listen: SocketAddr,
    /// Log format.
    pub json_logs: bool,
}

fn read_config(path: &Path) -> Result<ConfigFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cfg: ConfigFile = toml::from_str(&text).map_err(|e| {
        let file = crate::policy::PolicyFile {
            path: path.display().to_string(),
            text: text.clone(),
        };
        crate::policy::check::toml_error(&file, &e).to_string()
    })?;
    if let Some(base) = path.parent() {
        for p in [
            &mut cfg.policies,
            &mut cfg.tls_cert,
            &mut cfg.tls_key,
            &mut cfg.tls_client_ca,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
    Ok(cfg)
}

impl ServeArgs {
    /// Merges flags, environment, config file and defaults.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let cfg = match &self.config {
            Some(p) => read_config(p)?,
            None => ConfigFile::default(),
        };
        let policies = self
            .policies
            .clone()
            .or(cfg.policies)
            .unwrap_or_else(|| PathBuf::from("policies"));
        let mut settings = Settings::new(policies);
        if let Some(n) = self.cache_capacity.or(cfg.cache_capacity) {
            settings.cache_capacity = n;
        }
        if let Some(t) = self.cache_ttl.clone().or(cfg.cache_ttl) {
            let secs = parse_duration(&t).ok_or_else(|| format!("cache_ttl: `{t}` is not a duration, like `5m`"))?;
            settings.cache_ttl = Duration::from_secs(secs.max(1) as u64);
        }
        if let Some(n) = self.max_message_bytes.or(cfg.max_message_bytes) {
            settings.max_message_bytes = n;
        }
        if let Some(n) = self.max_forwarded_for.or(cfg.max_forwarded_for) {
            settings.limits.max_forwarded_for = n;
        }
        settings.watch = !self.no_watch && cfg.watch.unwrap_or(true);
        if let Some(n) = self.max_concurrent_requests.or(cfg.max_concurrent_requests) {
            settings.max_concurrent_requests = n;
        }
        if let Some(t) = self.request_timeout.clone().or(cfg.request_timeout) {
            settings.request_timeout = parse_millis(&t)
                .ok_or_else(|| format!("request_timeout: `{t}` is not a duration, like `5s` or `500ms`"))?;
        }
        let cert = self.tls_cert.clone().or(cfg.tls_cert);
        let key = self.tls_key.clone().or(cfg.tls_key);
        let client_ca = self.tls_client_ca.clone().or(cfg.tls_client_ca);
        settings.tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(crate::server::TlsFiles { cert, key, client_ca }),
            (None, None) if client_ca.is_none() => None,
            (None, None) => return Err("tls_client_ca needs tls_cert and tls_key".to_owned()),
            (Some(_), None) => return Err("tls_cert needs tls_key".to_owned()),
            (None, Some(_)) => return Err("tls_key needs tls_cert".to_owned()),
        };
        let log_format = self
            .log_format
            .clone()
            .or(cfg.log_format)
            .unwrap_or_else(|| "text".to_owned());
        if log_format != "text" && log_format != "json" {
            return Err(format!("log_format: `{log_format}`, expected `text` or `json`"));
        }
        Ok(Resolved {
            settings,
            listen: self
                .listen
                .or(cfg.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051))),
            http_listen: self
                .http_listen
                .or(cfg.http_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090))),
            json_logs: log_format == "json",
        })
    }
}

/// A deadline: `500ms`, or any policy duration (`5s`, `1m`); at least 1 ms.
fn parse_millis(s: &str) -> Option<Duration> {
    let ms = match s.trim().strip_suffix("ms") {
        Some(n) => n.trim().parse::<u64>().ok()?,
        None => (parse_duration(s)? as u64).checked_mul(1000)?,
    };
    (ms > 0).then(|| Duration::from_millis(ms))
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs `serve` until SIGTERM or SIGINT.
pub fn run(args: &ServeArgs) -> ExitCode {
    let resolved = match args.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    init_logging(resolved.json_logs);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::Usage;
        }
    };
    runtime.block_on(serve(resolved))
}

async fn serve(r: Resolved) -> ExitCode {
    if let Some(files) = &r.settings.tls {
        // Refuse to start on unusable certificate files, naming them.
        if let Err(e) = crate::server::tls::rustls_config(files) {
            eprintln!("error: {e:#}");
            return ExitCode::Usage;
        }
    }
    let policies = r.settings.policies.clone();
    let state = match State::load(r.settings) {
        Ok(s) => s,
        Err(LoadError::Invalid(errors)) => {
            for e in &errors.0 {
                eprintln!("{}", e.to_string().replacen(": ", ": error: ", 1));
            }
            eprintln!(
                "error: policy directory `{}` is invalid; not starting",
                policies.display()
            );
            return ExitCode::Failure;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    let (grpc, http) = match (bind(r.listen).await, bind(r.http_listen).await) {
        (Ok(g), Ok(h)) => (g, h),
        _ => return ExitCode::Usage,
    };
    let shutdown = shutdown_signal();
    let (ga, ha) = (grpc.local_addr().ok(), http.local_addr().ok());
    let live = state.current();
    tracing::info!(
        policies = %policies.display(),
        version = live.snapshot.version(),
        rules = live.snapshot.rules().len(),
        "snapshot loaded"
    );
    // One line on stdout with the bound addresses, so scripts (and tests using port 0) can
    // find the service.
    println!(
        "editgate serving gRPC on {} and HTTP on {}",
        ga.map_or_else(|| r.listen.to_string(), |a| a.to_string()),
        ha.map_or_else(|| r.http_listen.to_string(), |a| a.to_string())
    );
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    #[cfg(unix)]
    let _hup = match server::reload::spawn_sighup(state.clone()) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!("cannot handle SIGHUP: {e}");
            None
        }
    };
    let stopping = async {
        shutdown.await;
        notify_systemd(&[sd_notify::NotifyState::Stopping]);
    };
    match server::run(state, grpc, http, stopping).await {
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
