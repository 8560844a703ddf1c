//! The opt-in decision log: one JSON line per (sampled) decision, never a raw IP.
//!
//! Each line holds the time, wiki, action, account kind, verdict, deciding rule, shadow
//! rules, policy version, the address as a keyed hash (HMAC-SHA256, key from
//! `[settings.decision_log] key_file`) and its network prefix (/24 for IPv4, /48 for IPv6)
//! for aggregation.
//!
//! The request path only samples and hands a small record to a bounded channel
//! (`try_send`: never waits). A dedicated thread hashes, formats and writes. When the disk is
//! full or the file cannot be written, lines are dropped and counted; decisions never fail
//! and never wait for the log. The file is reopened on every reload (SIGHUP: what log
//! rotation tools send) and rotated to `<path>.1` past `max_bytes`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use hmac::{Hmac, KeyInit, Mac};
use ipnet::IpNet;
use jiff::Timestamp;
use sha2::Sha256;

use editgate_core::decision::Decision;
use editgate_core::load::DecisionLogConfig;

/// Records waiting for the writer before new ones are dropped.
const QUEUE: usize = 65_536;

/// One decision to log. The raw address only lives in memory until the writer hashes it.
pub struct Record {
    time: Timestamp,
    ip: IpAddr,
    wiki: String,
    action: String,
    account: &'static str,
    verdict: &'static str,
    rule_id: String,
    shadow: Vec<String>,
    policy_version: String,
    request_id: String,
}

/// The longest request id written: the wiki's id of the request (MediaWiki's is 24
/// characters), which an editor quotes in an appeal; a longer one is cut.
const MAX_REQUEST_ID: usize = 128;

enum Msg {
    /// Boxed: the queue holds [`QUEUE`] messages, each the size of the largest variant.
    Line(Box<Record>),
    /// Use this configuration (or stop logging) and reopen the file.
    Configure(Option<Arc<DecisionLogConfig>>),
}

/// Counters for the metrics, and whether writing works now (for `/healthz`).
#[derive(Debug, Default)]
pub struct LogStats {
    /// Lines written.
    pub written: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Lines lost to write or open errors (a full disk, a missing directory).
    pub errors: AtomicU64,
    /// The last write or open error, with its time.
    last_error: std::sync::Mutex<Option<(Timestamp, String)>>,
    /// When lines last reached the file (milliseconds since the epoch; 0: never).
    last_ok_ms: std::sync::atomic::AtomicI64,
}

impl LogStats {
    fn failed(&self, why: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Timestamp::now(), why));
    }

    fn succeeded(&self) {
        self.last_ok_ms
            .store(Timestamp::now().as_millisecond(), Ordering::Relaxed);
    }

    /// The error that stops writing now: the last error, when no line reached the file
    /// since it.
    pub fn failing(&self) -> Option<(Timestamp, String)> {
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        (last.0.as_millisecond() >= self.last_ok_ms.load(Ordering::Relaxed)).then_some(last)
    }
}

/// The request-side handle.
pub struct DecisionLog {
    config: ArcSwapOption<DecisionLogConfig>,
    /// Whether `config` holds one: read first on every decision, cheaper than loading it.
    enabled: AtomicBool,
    /// Set once, when logging is first enabled; the writer thread then lives as long as the
    /// process (it idles when logging is turned off).
    tx: OnceLock<SyncSender<Msg>>,
    /// Counters.
    pub stats: Arc<LogStats>,
}

impl DecisionLog {
    /// A handle with no writer yet; [`DecisionLog::configure`] starts one when logging is on.
    pub fn new() -> Self {
        Self {
            config: ArcSwapOption::empty(),
            enabled: AtomicBool::new(false),
            tx: OnceLock::new(),
            stats: Arc::new(LogStats::default()),
        }
    }

    /// Applies a (re)loaded configuration and reopens the file.
    pub fn configure(&self, config: Option<DecisionLogConfig>) {
        let config = config.map(Arc::new);
        self.config.store(config.clone());
        self.enabled.store(config.is_some(), Ordering::Relaxed);
        if self.tx.get().is_none() && config.is_some() {
            let (sender, receiver) = sync_channel(QUEUE);
            let stats = self.stats.clone();
            match std::thread::Builder::new()
                .name("editgate-decision-log".into())
                .spawn(move || writer(receiver, stats))
            {
                Ok(_) => {
                    let _ = self.tx.set(sender);
                }
                Err(e) => tracing::error!("decision log disabled: cannot start its thread: {e}"),
            }
        }
        if let Some(sender) = self.tx.get() {
            // Blocking is fine here: configuration happens on reload, not per request.
            let _ = sender.send(Msg::Configure(config));
        }
    }

    /// Whether logging is on.
    pub fn enabled(&self) -> bool {
        self.config.load().is_some()
    }

    /// The log file, when logging is on.
    pub fn path(&self) -> Option<PathBuf> {
        self.config.load().as_ref().map(|c| c.path.clone())
    }

    /// Reopens the file with the current configuration (log rotation by rename + SIGHUP).
    pub fn reopen(&self) {
        if let Some(sender) = self.tx.get() {
            let _ = sender.send(Msg::Configure(self.config.load_full()));
        }
    }

    /// Logs a decision, with the wiki's id of the request it answers, when logging is on and
    /// the sample says so. Never blocks.
    pub fn record(
        &self,
        d: &Decision<'_>,
        attempt: &editgate_core::attempt::Attempt,
        request_id: &str,
        now: Timestamp,
    ) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let cfg = self.config.load();
        let Some(cfg) = cfg.as_ref() else { return };
        if cfg.sample_rate < 1.0 && !sampled(cfg.sample_rate) {
            return;
        }
        let Some(tx) = self.tx.get() else { return };
        let rec = Box::new(Record {
            time: now,
            ip: attempt.ip(),
            wiki: attempt.wiki().to_owned(),
            action: attempt.action().to_owned(),
            account: attempt.account().kind.as_str(),
            verdict: d.verdict.as_str(),
            rule_id: d.rule_id.to_owned(),
            shadow: d.shadow_rule_ids.iter().map(|s| (*s).to_owned()).collect(),
            policy_version: d.policy_version.to_owned(),
            request_id: request_id.chars().take(MAX_REQUEST_ID).collect(),
        });
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(Msg::Line(rec)) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Default for DecisionLog {
    fn default() -> Self {
        Self::new()
    }
}

/// A cheap per-thread coin flip with probability `rate`: splitmix64 over a per-thread
/// counter (sampling needs no cryptographic randomness, and no RNG crate on the hot path).
fn sampled(rate: f64) -> bool {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(0x2545_F491_4F6C_DD1D ^ (std::process::id() as u64));
    }
    STATE.with(|s| {
        let next = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 <= rate
    })
}

/// The address as HMAC-SHA256 under `key`, hex-encoded: stable for one key, so the same
/// address can be followed across lines, and unlinkable once the key is rotated.
pub fn ip_hmac(key: &[u8], ip: IpAddr) -> String {
    keyed(key).map(|mac| hmac_of(&mac, ip)).unwrap_or_default()
}

/// HMAC-SHA256 keyed with `key` (HMAC takes keys of any length; `None` cannot happen).
fn keyed(key: &[u8]) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(key).ok()
}

/// [`ip_hmac`] from a keyed MAC: keying hashes the key twice, so the writer keys once per
/// configuration and clones the keyed state per line.
fn hmac_of(keyed: &Hmac<Sha256>, ip: IpAddr) -> String {
    let mut mac = keyed.clone();
    match ip {
        IpAddr::V4(v4) => mac.update(&v4.octets()),
        IpAddr::V6(v6) => mac.update(&v6.octets()),
    }
    editgate_core::files::hex(&mac.finalize().into_bytes())
}

/// One line of the log, in the order docs/policy.md shows it.
#[derive(serde::Serialize)]
struct Line<'a> {
    time: Timestamp,
    wiki: &'a str,
    action: &'a str,
    account: &'a str,
    verdict: &'a str,
    rule_id: &'a str,
    shadow_rule_ids: &'a [String],
    policy_version: &'a str,
    request_id: &'a str,
    ip_hmac: String,
    ip_prefix: String,
}

/// The aggregation prefix: /24 for IPv4, /48 for IPv6.
pub fn ip_prefix(ip: IpAddr) -> String {
    let len = if ip.is_ipv4() { 24 } else { 48 };
    IpNet::new(ip, len).map(|n| n.trunc().to_string()).unwrap_or_default()
}

struct Sink {
    cfg: Arc<DecisionLogConfig>,
    /// The HMAC keyed with `cfg.key`.
    mac: Option<Hmac<Sha256>>,
    /// The line being written.
    line: Vec<u8>,
    out: Option<BufWriter<File>>,
    size: u64,
    /// After an open error, do not retry before this instant.
    retry_at: Option<Instant>,
    /// Lines written to the buffer since the last successful flush (lost if the disk fails).
    pending: u64,
}

impl Sink {
    fn open(&mut self, stats: &LogStats) {
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        match OpenOptions::new().create(true).append(true).open(&self.cfg.path) {
            Ok(f) => {
                self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.out = Some(BufWriter::new(f));
                self.retry_at = None;
            }
            Err(e) => {
                tracing::error!(path = %self.cfg.path.display(), "decision log: cannot open: {e}");
                stats.failed(format!("cannot open `{}`: {e}", self.cfg.path.display()));
                self.retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    fn rotate(&mut self, stats: &LogStats) {
        self.flush(stats);
        self.out = None;
        let mut rotated = self.cfg.path.clone().into_os_string();
        rotated.push(".1");
        if let Err(e) = std::fs::rename(&self.cfg.path, PathBuf::from(rotated)) {
            tracing::error!("decision log: cannot rotate: {e}");
        }
        self.open(stats);
    }

    fn write(&mut self, rec: &Record, stats: &LogStats) {
        if self.out.is_none() {
            self.open(stats);
        }
        let Some(out) = self.out.as_mut() else {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let line = Line {
            time: rec.time,
            wiki: &rec.wiki,
            action: &rec.action,
            account: rec.account,
            verdict: rec.verdict,
            rule_id: &rec.rule_id,
            shadow_rule_ids: &rec.shadow,
            policy_version: &rec.policy_version,
            request_id: &rec.request_id,
            ip_hmac: self.mac.as_ref().map(|m| hmac_of(m, rec.ip)).unwrap_or_default(),
            ip_prefix: ip_prefix(rec.ip),
        };
        self.line.clear();
        // Into memory: fails only if a field does not serialize, which strings cannot.
        if serde_json::to_writer(&mut self.line, &line).is_err() {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.line.push(b'\n');
        match out.write_all(&self.line) {
            Ok(()) => {
                self.pending += 1;
                self.size += self.line.len() as u64;
            }
            Err(e) => self.fail(stats, &e),
        }
        if self.cfg.max_bytes.is_some_and(|m| self.size >= m) {
            self.rotate(stats);
        }
    }

    fn flush(&mut self, stats: &LogStats) {
        let Some(out) = self.out.as_mut() else { return };
        match out.flush() {
            Err(e) => self.fail(stats, &e),
            Ok(()) => {
                stats.written.fetch_add(self.pending, Ordering::Relaxed);
                if self.pending > 0 {
                    stats.succeeded();
                }
                self.pending = 0;
            }
        }
    }

    /// A write failed (a full disk): drop the buffered lines, count them, reopen later.
    fn fail(&mut self, stats: &LogStats, e: &std::io::Error) {
        stats.failed(format!("cannot write `{}`: {e}", self.cfg.path.display()));
        stats.errors.fetch_add(self.pending.max(1), Ordering::Relaxed);
        self.pending = 0;
        if let Some(out) = self.out.take() {
            // into_parts hands the file back without writing the buffer again.
            let _ = out.into_parts();
        }
        self.retry_at = Some(Instant::now() + Duration::from_secs(1));
    }
}

/// How long the writer lets records gather after the first one wakes it: requests then hand
/// their records over without waking it (a wake-up and a `write` per line would cost more
/// than the decision), and a line reaches the file within a few milliseconds.
const GATHER: Duration = Duration::from_millis(5);

fn writer(rx: Receiver<Msg>, stats: Arc<LogStats>) {
    let mut sink: Option<Sink> = None;
    while let Ok(msg) = rx.recv() {
        std::thread::sleep(GATHER);
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Configure(cfg) => {
                    if let Some(s) = sink.as_mut() {
                        s.flush(&stats);
                    }
                    sink = cfg.map(|cfg| {
                        let mut s = Sink {
                            mac: keyed(&cfg.key),
                            line: Vec::with_capacity(512),
                            cfg,
                            out: None,
                            size: 0,
                            retry_at: None,
                            pending: 0,
                        };
                        s.open(&stats);
                        s
                    });
                }
                Msg::Line(rec) => match sink.as_mut() {
                    Some(s) => s.write(&rec, &stats),
                    None => {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                },
            }
            next = rx.try_recv().ok();
        }
        if let Some(s) = sink.as_mut() {
            s.flush(&stats);
        }
    }
}
