//! `editgate serve`: settings from flags, environment and an optional config file; logging;
//! signals; then [`crate::server::run`].
//!
//! Precedence: a flag beats its environment variable, which beats the config file, which
//! beats the built-in default.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;
use serde::Deserialize;

use super::ExitCode;
use crate::server::{self, Config, State};
use editgate_core::load::LoadError;
use editgate_core::policy::parse_duration;

/// `editgate serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML); see the configuration reference in docs/operations.md.
    #[arg(long, env = "EDITGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Policy directory [default: policies].
    #[arg(long, env = "EDITGATE_POLICIES", value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "EDITGATE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTP listen address for the JSON API, /metrics, /healthz and the console [default: 127.0.0.1:9090].
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
    #[arg(long, env = "EDITGATE_NO_WATCH", value_parser = BoolishValueParser::new())]
    pub no_watch: bool,
    /// Lint warnings count as errors, at start and on every reload.
    #[arg(long, env = "EDITGATE_DENY_WARNINGS", value_parser = BoolishValueParser::new())]
    pub deny_warnings: bool,
    /// Do not serve the admin console.
    #[arg(long, env = "EDITGATE_NO_CONSOLE", value_parser = BoolishValueParser::new())]
    pub no_console: bool,
    /// Serve the admin console on this address instead of the HTTP port (its own connections
    /// and threads) [default: on the HTTP port].
    #[arg(long, env = "EDITGATE_CONSOLE_LISTEN", value_name = "ADDR")]
    pub console_listen: Option<SocketAddr>,
    /// Console pages rendered at once, off the request threads [default: 1].
    #[arg(long, env = "EDITGATE_CONSOLE_CONCURRENCY", value_name = "N")]
    pub console_concurrency: Option<usize>,
    /// Explain requests (gRPC and HTTP) decided at once, off the request threads [default: 1].
    #[arg(long, env = "EDITGATE_EXPLAIN_CONCURRENCY", value_name = "N")]
    pub explain_concurrency: Option<usize>,
    /// Also serve the JSON API, /metrics and /healthz on this Unix-domain socket, for a web
    /// server on the same host (plain HTTP; the file's mode says who may connect).
    #[arg(long, env = "EDITGATE_HTTP_SOCKET", value_name = "PATH")]
    pub http_socket: Option<PathBuf>,
    /// File mode of the Unix-domain socket, octal [default: 0660].
    #[arg(long, env = "EDITGATE_HTTP_SOCKET_MODE", value_name = "MODE")]
    pub http_socket_mode: Option<String>,
    /// A `Host` name the JSON API and the console answer; repeat for several, `*` for any
    /// [default: localhost, 127.0.0.1, ::1 and the listen addresses].
    #[arg(
        long = "allowed-host",
        env = "EDITGATE_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub allowed_hosts: Vec<String>,
    /// Quiet period before a watched change is reloaded, like 1s [default: 1s].
    #[arg(long, env = "EDITGATE_RELOAD_DEBOUNCE", value_name = "DURATION")]
    pub reload_debounce: Option<String>,
    /// After SIGTERM, how long requests and streams in flight may take, like 10s [default: 10s].
    #[arg(long, env = "EDITGATE_DRAIN_TIMEOUT", value_name = "DURATION")]
    pub drain_timeout: Option<String>,
    /// How long a client may take to send its request headers (HTTP) or first bytes (gRPC);
    /// also the longest idle HTTP keep-alive [default: 10s].
    #[arg(long, env = "EDITGATE_HEADER_TIMEOUT", value_name = "DURATION")]
    pub header_timeout: Option<String>,
    /// Open connections per port beyond which new ones are closed at once; 0 derives it from
    /// the file descriptor limit [default: 0].
    #[arg(long, env = "EDITGATE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
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
    /// Warnings are errors.
    pub deny_warnings: Option<bool>,
    /// Serve the admin console (default true).
    pub console: Option<bool>,
    /// The console's own listen address.
    pub console_listen: Option<SocketAddr>,
    /// Console pages rendered at once.
    pub console_concurrency: Option<usize>,
    /// Explain requests decided at once.
    pub explain_concurrency: Option<usize>,
    /// The Unix-domain socket of the JSON API.
    pub http_socket: Option<PathBuf>,
    /// Its file mode, octal.
    pub http_socket_mode: Option<String>,
    /// `Host` names the API and the console answer.
    pub allowed_hosts: Option<Vec<String>>,
    /// Quiet period before a watched change is reloaded.
    pub reload_debounce: Option<String>,
    /// Drain deadline after SIGTERM.
    pub drain_timeout: Option<String>,
    /// Header (HTTP) and first-bytes (gRPC) deadline.
    pub header_timeout: Option<String>,
    /// Connection cap per port (0: from the descriptor limit).
    pub max_connections: Option<usize>,
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
    /// Service configuration.
    pub config: Config,
    /// gRPC address.
    pub listen: SocketAddr,
    /// HTTP address.
    pub http_listen: SocketAddr,
    /// The console's own address, when it has one.
    pub console_listen: Option<SocketAddr>,
    /// The JSON API's Unix-domain socket and its file mode, when set.
    pub http_socket: Option<(PathBuf, u32)>,
    /// Log format.
    pub json_logs: bool,
}

fn read_config(path: &Path) -> Result<ConfigFile, String> {
    let bytes = editgate_core::files::read_regular(path, editgate_core::files::MAX_POLICY_FILE_BYTES)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{}: not valid UTF-8 text", path.display()))?;
    let mut cfg: ConfigFile = toml::from_str(&text).map_err(|e| {
        let file = editgate_core::policy::PolicyFile {
            path: path.display().to_string(),
            text: text.clone(),
        };
        editgate_core::policy::check::toml_error(&file, &e).to_string()
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

/// A duration setting: `500ms`, or a policy duration (`5s`, `1m`, `7d`), within bounds.
/// Out of bounds is an error naming the setting (the cache panics on a TTL of a thousand
/// years).
fn duration_setting(name: &str, value: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_millis(value)
        .ok_or_else(|| format!("{name}: `{value}` is not a duration, like `5s`, `500ms` or `5m`"))?;
    if d < min || d > max {
        return Err(format!(
            "{name}: `{value}` is out of range: between {} and {}",
            show(min),
            show(max)
        ));
    }
    Ok(d)
}

fn show(d: Duration) -> String {
    if d.subsec_millis() != 0 || d.is_zero() {
        format!("{}ms", d.as_millis())
    } else {
        editgate_core::policy::format_duration(d.as_secs() as i64)
    }
}

/// A number setting within bounds.
fn number_setting<T: PartialOrd + std::fmt::Display + Copy>(name: &str, value: T, min: T, max: T) -> Result<T, String> {
    if value < min || value > max {
        return Err(format!("{name}: {value} is out of range: between {min} and {max}"));
    }
    Ok(value)
}

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

impl ServeArgs {
    /// Merges flags, environment, config file and defaults, and checks every value's range.
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
        let mut config = Config::new(policies);
        if let Some(n) = self.cache_capacity.or(cfg.cache_capacity) {
            config.cache_capacity = n;
        }
        if let Some(t) = self.cache_ttl.clone().or(cfg.cache_ttl) {
            config.cache_ttl = duration_setting("cache_ttl", &t, SECOND, 7 * DAY)?;
        }
        if let Some(n) = self.max_message_bytes.or(cfg.max_message_bytes) {
            config.max_message_bytes = number_setting("max_message_bytes", n, 1024, 64 << 20)?;
        }
        if let Some(n) = self.max_forwarded_for.or(cfg.max_forwarded_for) {
            config.limits.max_forwarded_for = number_setting("max_forwarded_for", n, 0, 1024)?;
        }
        config.watch = !self.no_watch && cfg.watch.unwrap_or(true);
        config.deny_warnings = self.deny_warnings || cfg.deny_warnings.unwrap_or(false);
        config.console = !self.no_console && cfg.console.unwrap_or(true);
        if let Some(n) = self.console_concurrency.or(cfg.console_concurrency) {
            config.console_concurrency = number_setting("console_concurrency", n, 1, 64)?;
        }
        if let Some(n) = self.explain_concurrency.or(cfg.explain_concurrency) {
            config.explain_concurrency = number_setting("explain_concurrency", n, 1, 64)?;
        }
        let hosts = if self.allowed_hosts.is_empty() {
            cfg.allowed_hosts
        } else {
            Some(self.allowed_hosts.clone())
        };
        if let Some(bad) = hosts.iter().flatten().find(|h| h.trim().is_empty() || h.contains('/')) {
            return Err(format!(
                "allowed_hosts: `{bad}` is not a host name; give names or addresses (like `editgate.internal`), or `*`"
            ));
        }
        config.allowed_hosts = hosts;
        let console_listen = self.console_listen.or(cfg.console_listen);
        let socket_mode = match self.http_socket_mode.clone().or(cfg.http_socket_mode) {
            None => 0o660,
            Some(m) => u32::from_str_radix(m.trim(), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| format!("http_socket_mode: `{m}` is not an octal file mode like 0660"))?,
        };
        let http_socket = self.http_socket.clone().or(cfg.http_socket).map(|p| (p, socket_mode));
        if let Some(t) = self.reload_debounce.clone().or(cfg.reload_debounce) {
            config.debounce = duration_setting("reload_debounce", &t, Duration::ZERO, 60 * SECOND)?;
        }
        if let Some(n) = self.max_concurrent_requests.or(cfg.max_concurrent_requests) {
            config.max_concurrent_requests = n;
        }
        if let Some(t) = self.request_timeout.clone().or(cfg.request_timeout) {
            config.request_timeout = duration_setting("request_timeout", &t, Duration::from_millis(1), HOUR)?;
        }
        if let Some(t) = self.drain_timeout.clone().or(cfg.drain_timeout) {
            config.drain_timeout = duration_setting("drain_timeout", &t, Duration::ZERO, HOUR)?;
        }
        if let Some(t) = self.header_timeout.clone().or(cfg.header_timeout) {
            config.header_timeout = duration_setting("header_timeout", &t, Duration::from_millis(100), HOUR)?;
        }
        if let Some(n) = self.max_connections.or(cfg.max_connections) {
            config.max_connections = number_setting("max_connections", n, 0, 1_000_000)?;
        }
        let cert = self.tls_cert.clone().or(cfg.tls_cert);
        let key = self.tls_key.clone().or(cfg.tls_key);
        let client_ca = self.tls_client_ca.clone().or(cfg.tls_client_ca);
        config.tls = match (cert, key) {
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
        let config_console = config.console;
        Ok(Resolved {
            config,
            listen: self
                .listen
                .or(cfg.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051))),
            http_listen: self
                .http_listen
                .or(cfg.http_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090))),
            console_listen: console_listen.filter(|_| config_console),
            http_socket,
            json_logs: log_format == "json",
        })
    }
}

/// A deadline: `500ms`, or any policy duration (`5s`, `1m`); `0s` is zero.
fn parse_millis(s: &str) -> Option<Duration> {
    let ms = match s.trim().strip_suffix("ms") {
        Some(n) => n.trim().parse::<u64>().ok()?,
        None => (parse_duration(s)? as u64).checked_mul(1000)?,
    };
    Some(Duration::from_millis(ms))
}

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
