//! `editgate serve`'s settings, each defined once: [`ServeSettings`] is the flags (with their
//! environment variables) and the config file's keys alike, so a setting's name, flag,
//! variable and documentation sit on one field. [`ServeSettings::resolve`] layers them (a
//! flag or its variable beats the config file, which beats the default), checks every value's
//! range and makes the service's [`Config`], whose `new` holds the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{BoolishValueParser, TypedValueParser as _};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::server::{Config, TlsFiles};
use editgate_core::policy::parse_duration;

/// The gRPC port's default address.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50051);
/// The HTTP port's default address.
pub const DEFAULT_HTTP_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9090);
/// The Unix-domain socket's default file mode.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// `editgate serve`'s settings: the flags, and (the same names with `_`) the config file's
/// keys. Every one is optional; see the configuration reference in docs/operations.md.
#[derive(Debug, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    /// Config file (TOML); see the configuration reference in docs/operations.md.
    #[arg(long, env = "EDITGATE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
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
    #[arg(long, env = "EDITGATE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
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
    /// Do not watch the policy directory for changes (SIGHUP still reloads); in a config
    /// file, `watch = false`.
    #[arg(
        long = "no-watch",
        env = "EDITGATE_NO_WATCH",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        hide_possible_values = true,
        value_name = "BOOL",
        value_parser = BoolishValueParser::new().map(|no: bool| !no)
    )]
    pub watch: Option<bool>,
    /// Lint warnings count as errors, at start and on every reload.
    #[arg(
        long,
        env = "EDITGATE_DENY_WARNINGS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        hide_possible_values = true,
        value_name = "BOOL",
        value_parser = BoolishValueParser::new()
    )]
    pub deny_warnings: Option<bool>,
    /// Do not serve the admin console; in a config file, `console = false`.
    #[arg(
        long = "no-console",
        env = "EDITGATE_NO_CONSOLE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        hide_possible_values = true,
        value_name = "BOOL",
        value_parser = BoolishValueParser::new().map(|no: bool| !no)
    )]
    pub console: Option<bool>,
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
    pub allowed_hosts: Option<Vec<String>>,
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

/// The format of log lines on stderr: text (coloured on a terminal) or one JSON object a
/// line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)] // documented above: variant docs would turn `--help` into its long form
pub enum LogFormat {
    Text,
    Json,
}

/// Why the settings cannot be used; each names the setting or the file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The config file cannot be read or is not valid (its position when known).
    #[error("{0}")]
    File(String),
    /// A duration that does not parse.
    #[error("{name}: `{value}` is not a duration, like `5s`, `500ms` or `5m`")]
    NotADuration {
        /// The setting.
        name: &'static str,
        /// As written.
        value: String,
    },
    /// A value outside the setting's bounds.
    #[error("{name}: {value} is out of range: between {min} and {max}")]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// As written.
        value: String,
        /// The lowest accepted, as written in the settings.
        min: String,
        /// The highest accepted.
        max: String,
    },
    /// A value the setting cannot take, and why.
    #[error("{name}: {why}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        why: String,
    },
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
    pub log_format: LogFormat,
}

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

impl ServeSettings {
    /// The config file's settings (none without `--config`), paths in it made relative to it.
    fn file(&self) -> Result<ServeSettings, SettingsError> {
        let Some(path) = &self.config else {
            return Ok(ServeSettings::default());
        };
        let bytes = editgate_core::files::read_regular(path, editgate_core::files::MAX_POLICY_FILE_BYTES)
            .map_err(|e| SettingsError::File(format!("{}: {e}", path.display())))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| SettingsError::File(format!("{}: not valid UTF-8 text", path.display())))?;
        let mut file: ServeSettings = toml::from_str(&text).map_err(|e| {
            let f = editgate_core::policy::PolicyFile {
                path: path.display().to_string(),
                text: text.clone(),
            };
            SettingsError::File(editgate_core::policy::check::toml_error(&f, &e).to_string())
        })?;
        if let Some(base) = path.parent() {
            for p in [
                &mut file.policies,
                &mut file.tls_cert,
                &mut file.tls_key,
                &mut file.tls_client_ca,
            ]
            .into_iter()
            .flatten()
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        Ok(file)
    }

    /// These settings over `under`: each one given here, else `under`'s. Field by field
    /// through their common serialized form, so that a new setting needs no line here.
    fn over(&self, under: ServeSettings) -> Result<ServeSettings, SettingsError> {
        let table = |s: &ServeSettings| match toml::Value::try_from(s) {
            Ok(toml::Value::Table(t)) => Ok(t),
            Ok(_) => Err(SettingsError::File("the settings are not a table".to_owned())),
            Err(e) => Err(SettingsError::File(format!("the settings cannot be layered: {e}"))),
        };
        let mut merged = table(&under)?;
        merged.extend(table(self)?);
        toml::Value::Table(merged)
            .try_into()
            .map_err(|e| SettingsError::File(format!("the settings cannot be layered: {e}")))
    }

    /// Layers flags, environment, config file and defaults, and checks every value's range.
    pub fn resolve(&self) -> Result<Resolved, SettingsError> {
        let s = self.over(self.file()?)?;
        let mut config = Config::new(s.policies.clone().unwrap_or_else(|| PathBuf::from("policies")));
        if let Some(n) = s.cache_capacity {
            config.cache_capacity = n;
        }
        if let Some(t) = &s.cache_ttl {
            config.cache_ttl = duration("cache_ttl", t, SECOND, 7 * DAY)?;
        }
        if let Some(n) = s.max_message_bytes {
            config.max_message_bytes = number("max_message_bytes", n, 1024, 64 << 20)?;
        }
        if let Some(n) = s.max_forwarded_for {
            config.limits.max_forwarded_for = number("max_forwarded_for", n, 0, 1024)?;
        }
        config.watch = s.watch.unwrap_or(config.watch);
        config.deny_warnings = s.deny_warnings.unwrap_or(config.deny_warnings);
        config.console = s.console.unwrap_or(config.console);
        if let Some(n) = s.console_concurrency {
            config.console_concurrency = number("console_concurrency", n, 1, 64)?;
        }
        if let Some(n) = s.explain_concurrency {
            config.explain_concurrency = number("explain_concurrency", n, 1, 64)?;
        }
        if let Some(bad) = s
            .allowed_hosts
            .iter()
            .flatten()
            .find(|h| h.trim().is_empty() || h.contains('/'))
        {
            return Err(SettingsError::Invalid {
                name: "allowed_hosts",
                why: format!("`{bad}` is not a host name; give names or addresses (like `editgate.internal`), or `*`"),
            });
        }
        config.allowed_hosts = s.allowed_hosts.clone();
        let socket_mode = match &s.http_socket_mode {
            None => DEFAULT_SOCKET_MODE,
            Some(m) => u32::from_str_radix(m.trim(), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| SettingsError::Invalid {
                    name: "http_socket_mode",
                    why: format!("`{m}` is not an octal file mode like 0660"),
                })?,
        };
        if let Some(t) = &s.reload_debounce {
            config.debounce = duration("reload_debounce", t, Duration::ZERO, 60 * SECOND)?;
        }
        if let Some(n) = s.max_concurrent_requests {
            config.max_concurrent_requests = n;
        }
        if let Some(t) = &s.request_timeout {
            config.request_timeout = duration("request_timeout", t, Duration::from_millis(1), HOUR)?;
        }
        if let Some(t) = &s.drain_timeout {
            config.drain_timeout = duration("drain_timeout", t, Duration::ZERO, HOUR)?;
        }
        if let Some(t) = &s.header_timeout {
            config.header_timeout = duration("header_timeout", t, Duration::from_millis(100), HOUR)?;
        }
        if let Some(n) = s.max_connections {
            config.max_connections = number("max_connections", n, 0, 1_000_000)?;
        }
        let needs = |name: &'static str, what: &str| SettingsError::Invalid {
            name,
            why: format!("needs {what}"),
        };
        config.tls = match (s.tls_cert.clone(), s.tls_key.clone()) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: s.tls_client_ca.clone(),
            }),
            (None, None) if s.tls_client_ca.is_none() => None,
            (None, None) => return Err(needs("tls_client_ca", "tls_cert and tls_key")),
            (Some(_), None) => return Err(needs("tls_cert", "tls_key")),
            (None, Some(_)) => return Err(needs("tls_key", "tls_cert")),
        };
        let console = config.console;
        Ok(Resolved {
            config,
            listen: s.listen.unwrap_or(DEFAULT_LISTEN),
            http_listen: s.http_listen.unwrap_or(DEFAULT_HTTP_LISTEN),
            console_listen: s.console_listen.filter(|_| console),
            http_socket: s.http_socket.clone().map(|p| (p, socket_mode)),
            log_format: s.log_format.unwrap_or(LogFormat::Text),
        })
    }
}

/// A duration setting: `500ms`, or a policy duration (`5s`, `1m`, `7d`), within bounds.
/// Out of bounds is an error naming the setting (the cache panics on a TTL of a thousand
/// years).
fn duration(name: &'static str, value: &str, min: Duration, max: Duration) -> Result<Duration, SettingsError> {
    let d = parse_millis(value).ok_or_else(|| SettingsError::NotADuration {
        name,
        value: value.to_owned(),
    })?;
    if d < min || d > max {
        return Err(SettingsError::OutOfRange {
            name,
            value: format!("`{value}`"),
            min: show(min),
            max: show(max),
        });
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
fn number<T: PartialOrd + std::fmt::Display + Copy>(
    name: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<T, SettingsError> {
    if value < min || value > max {
        return Err(SettingsError::OutOfRange {
            name,
            value: value.to_string(),
            min: min.to_string(),
            max: max.to_string(),
        });
    }
    Ok(value)
}

/// A deadline: `500ms`, or any policy duration (`5s`, `1m`); `0s` is zero.
fn parse_millis(s: &str) -> Option<Duration> {
    let ms = match s.trim().strip_suffix("ms") {
        Some(n) => n.trim().parse::<u64>().ok()?,
        None => (parse_duration(s)? as u64).checked_mul(1000)?,
    };
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: ServeSettings,
    }

    fn parsed(args: &[&str]) -> ServeSettings {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap()
            .settings
    }

    #[test]
    fn negative_flags_and_config_keys_are_one_setting() {
        assert_eq!(parsed(&["--no-watch"]).watch, Some(false));
        assert_eq!(parsed(&["--no-watch=false"]).watch, Some(true));
        assert_eq!(parsed(&[]).watch, None);
        assert_eq!(parsed(&["--no-console"]).console, Some(false));
        assert_eq!(parsed(&["--deny-warnings"]).deny_warnings, Some(true));
        let file: ServeSettings = toml::from_str("watch = false\nconsole = false\n").unwrap();
        assert_eq!((file.watch, file.console), (Some(false), Some(false)));
        // A flag beats the file; what the flags leave unset comes from the file.
        let flags = parsed(&["--cache-capacity", "5"]);
        let file: ServeSettings = toml::from_str("cache_capacity = 7\nwatch = false\n").unwrap();
        let both = flags.over(file).unwrap();
        assert_eq!((both.cache_capacity, both.watch), (Some(5), Some(false)));
    }

    #[test]
    fn the_defaults_the_help_states_are_the_defaults() {
        let help = Cli::command().render_long_help().to_string();
        let r = ServeSettings::default().resolve().unwrap();
        let c = &r.config;
        for (flag, default) in [
            ("--listen", r.listen.to_string()),
            ("--http-listen", r.http_listen.to_string()),
            ("--cache-capacity", c.cache_capacity.to_string()),
            ("--cache-ttl", show(c.cache_ttl)),
            ("--max-message-bytes", c.max_message_bytes.to_string()),
            ("--max-forwarded-for", c.limits.max_forwarded_for.to_string()),
            ("--console-concurrency", c.console_concurrency.to_string()),
            ("--explain-concurrency", c.explain_concurrency.to_string()),
            ("--reload-debounce", show(c.debounce)),
            ("--drain-timeout", show(c.drain_timeout)),
            ("--header-timeout", show(c.header_timeout)),
            ("--max-connections", c.max_connections.to_string()),
            ("--max-concurrent-requests", c.max_concurrent_requests.to_string()),
            ("--request-timeout", show(c.request_timeout)),
            ("--http-socket-mode", format!("0{DEFAULT_SOCKET_MODE:o}")),
        ] {
            let at = help
                .find(&format!("{flag} "))
                .unwrap_or_else(|| panic!("{flag} not in the help"));
            let entry = &help[at..];
            let entry = &entry[..entry[2..].find("\n  -").map_or(entry.len(), |e| e + 2)];
            assert!(
                entry.contains(&format!("[default: {default}]")),
                "{flag}: the help does not say [default: {default}]:\n{entry}"
            );
        }
        assert_eq!(r.config.policies, PathBuf::from("policies"));
        assert_eq!(r.log_format, LogFormat::Text);
        assert!(c.watch && c.console && !c.deny_warnings);
    }

    #[test]
    fn errors_name_the_setting() {
        let e = parsed(&["--cache-ttl", "366000d"]).resolve().unwrap_err();
        assert!(matches!(e, SettingsError::OutOfRange { name: "cache_ttl", .. }), "{e}");
        assert_eq!(e.to_string(), "cache_ttl: `366000d` is out of range: between 1s and 1w");
        let e = parsed(&["--request-timeout", "soon"]).resolve().unwrap_err();
        assert_eq!(
            e.to_string(),
            "request_timeout: `soon` is not a duration, like `5s`, `500ms` or `5m`"
        );
        let e = parsed(&["--tls-key", "k.pem"]).resolve().unwrap_err();
        assert_eq!(e.to_string(), "tls_key: needs tls_cert");
        let e = parsed(&["--max-message-bytes", "10"]).resolve().unwrap_err();
        assert_eq!(
            e.to_string(),
            "max_message_bytes: 10 is out of range: between 1024 and 67108864"
        );
    }
}
