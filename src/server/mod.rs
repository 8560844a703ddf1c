//! The service: the gRPC and HTTP ports, admission, health, metrics, hot reload and live
//! sources. This is the only async part of editgate; it decides with the same pure engine as
//! the CLI: [`State::check`] turns a wire request ([`crate::proto`]) into an
//! [`editgate_core::attempt::Attempt`], looks up the IP facts through the facts cache, and
//! calls [`editgate_core::engine::decide_with_facts`].
//!
//! The map:
//! - this file: [`State`] (what the handlers share: the serving snapshot, its metrics, the
//!   facts cache, admission, the decision log, the fetch book and the reload history), its
//!   decisions ([`State::check`], [`State::explain`]) and [`Config`]; `reload` holds its
//!   reload (build, apply, reject, history) and `health` its health report;
//! - running: `serve` (both ports, the optional console and Unix-socket listeners, the
//!   drain at shutdown), `conn` (accepting under a connection cap, the first-bytes
//!   deadline), `tls`;
//! - the request path: `service` (the gRPC handlers), `http` (the HTTP port: the JSON
//!   API, `/metrics`, `/healthz`, the `Host` check), [`admission`] (concurrency limit and
//!   deadline for both ports), `error` (`RequestError`, one refusal type for every transport,
//!   and the server's other errors), `cache` (per-IP facts behind a bounded moka cache);
//! - what the server reports: `metrics` (Prometheus), `activity` (per-rule minute
//!   history), `health` (`/healthz` and gRPC health), [`decision_log`] (the opt-in log),
//!   [`console`] (the read-only admin console);
//! - keeping the snapshot current: `reload` (building a snapshot off the request path and
//!   swapping it in), `watch` (SIGHUP and file watching), `fetcher` (`url` sources on
//!   their schedule).

pub(crate) mod activity;
pub mod admission;
mod cache;
pub(crate) mod conn;
pub mod console;
pub mod decision_log;
mod error;
pub(crate) mod fetcher;
pub(crate) mod health;
pub(crate) mod http;
pub(crate) mod metrics;
mod offload;
mod reload;
mod serve;
pub(crate) mod service;
mod striped;
pub(crate) mod tls;
pub(crate) mod watch;

pub use error::{ReloadError, RequestError, ServeError, TlsError};
pub use reload::{ReloadOutcome, ReloadRecord, Trigger};
pub use serve::{Listeners, UnixSocket, run, run_with};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jiff::Timestamp;

use crate::proto::{self, CheckRequest, CheckResponse, RequestLimits};
use cache::FactsCache;
use editgate_core::engine::{Snapshot, Trace, decide_with_facts};
use editgate_core::load::{LoadError, Loaded, load_dir};
use metrics::{Metrics, RuleCounters};
use reload::deny_warnings;

/// Service settings (see the configuration reference in docs/operations.md).
#[derive(Debug, Clone)]
pub struct Config {
    /// The policy directory.
    pub policies: PathBuf,
    /// Facts cache capacity in addresses; 0 disables the cache.
    pub cache_capacity: u64,
    /// How long a cached entry lives.
    pub cache_ttl: Duration,
    /// Largest accepted gRPC message, bytes.
    pub max_message_bytes: usize,
    /// Request limits.
    pub limits: RequestLimits,
    /// Watch the policy directory and source files and reload on change.
    pub watch: bool,
    /// Quiet period before a watched change triggers a reload (and no file may still be
    /// open for writing).
    pub debounce: Duration,
    /// Lint warnings count as errors, at start and on every reload.
    pub deny_warnings: bool,
    /// Decisions in flight (both ports) beyond which requests are refused; 0 = no limit.
    pub max_concurrent_requests: usize,
    /// Deadline for one unary request, from arrival (body included) to answer.
    pub request_timeout: Duration,
    /// After SIGTERM, how long requests and streams in flight may take before they are cut.
    pub drain_timeout: Duration,
    /// How long an HTTP client may take to send a request's headers (also the longest idle
    /// keep-alive), and a gRPC client to send its first bytes.
    pub header_timeout: Duration,
    /// Open connections per port beyond which new ones are closed at once; 0 derives it
    /// from the file descriptor limit (see `conn::connection_cap`).
    pub max_connections: usize,
    /// TLS for both ports, when set.
    pub tls: Option<TlsFiles>,
    /// Serve the admin console (at `/` on the HTTP port, or on its own listener).
    pub console: bool,
    /// The `Host` names the API and the console answer (`*`: any); `None`: the loopback names
    /// and the listen addresses (see `http::AllowedHosts`).
    pub allowed_hosts: Option<Vec<String>>,
    /// Console pages rendered at once (off the request threads); more wait briefly, then get
    /// 503.
    pub console_concurrency: usize,
    /// `explain` requests (both ports) decided at once, off the request threads; a few more
    /// wait, within `request_timeout`, and the rest get 503 / `RESOURCE_EXHAUSTED`.
    pub explain_concurrency: usize,
}

/// Certificate files for TLS (PEM).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these CAs (mTLS).
    pub client_ca: Option<PathBuf>,
}

impl Config {
    /// Defaults for a policy directory.
    pub fn new(policies: PathBuf) -> Self {
        Self {
            policies,
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(300),
            max_message_bytes: 64 * 1024,
            limits: RequestLimits::default(),
            watch: true,
            debounce: Duration::from_secs(1),
            deny_warnings: false,
            max_concurrent_requests: 1024,
            request_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            max_connections: 0,
            tls: None,
            console: true,
            allowed_hosts: None,
            console_concurrency: 1,
            explain_concurrency: 1,
        }
    }
}

/// The serving snapshot and what belongs to it.
pub struct Live {
    /// The compiled policy and data.
    pub snapshot: Snapshot,
    /// 1 for the first snapshot, +1 per swap.
    pub generation: u64,
    /// When it was loaded.
    pub loaded_at: Timestamp,
    /// Metric counters for its rules.
    pub counters: RuleCounters,
    /// The files it was built from (watched for changes).
    pub inputs: Vec<PathBuf>,
    /// Why the snapshot cannot decide yet: a `url` source awaits its first fetch (only at a
    /// first start; a reload never swaps in a source without data). `None`: ready.
    pub starting: Option<String>,
}

/// What the fetcher knows of the `url` sources, by source name; one lock, as the fetcher
/// updates these together.
#[derive(Default)]
struct FetchBook {
    /// The last fetch results.
    status: std::collections::HashMap<String, fetcher::FetchStatus>,
    /// When each origin last confirmed its copy unchanged: the snapshot stays as built, and a
    /// "not modified" answer moves freshness forward here.
    confirmed: std::collections::HashMap<String, Timestamp>,
    /// `url` sources of a policy that could not load because they have no copy yet: the
    /// fetcher fetches them too, so that the reload can succeed.
    pending: Vec<editgate_core::policy::SourceDef>,
}

/// Everything the handlers share.
pub struct State {
    live: ArcSwap<Live>,
    /// The facts cache.
    pub cache: FactsCache,
    /// The metrics.
    pub metrics: Metrics,
    /// The service configuration.
    pub config: Config,
    /// The opt-in decision log.
    pub decision_log: decision_log::DecisionLog,
    /// Admission control for both ports.
    pub admission: admission::Admission,
    /// What the fetcher knows of the `url` sources.
    fetches: std::sync::Mutex<FetchBook>,
    /// The last loads and reloads.
    reloads: reload::History,
    /// The gRPC health service, once serving: NOT_SERVING while starting.
    health: std::sync::Mutex<Option<tonic_health::server::HealthReporter>>,
    /// Where to ask the watcher for a reload (it re-resolves the policy directory first).
    reload_requests: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<Trigger>>>,
    reload_lock: tokio::sync::Mutex<()>,
    /// Where console pages render (see `console`).
    console_pool: offload::Offload,
    /// Where `explain` requests are decided.
    explain_pool: offload::Offload,
}

impl State {
    /// Loads the policy directory for the first time. Fails when it is invalid (or, with
    /// [`Config::deny_warnings`], has warnings): a server never starts on a broken policy.
    pub fn load(config: Config) -> Result<Arc<Self>, LoadError> {
        let started = Instant::now();
        let loaded = deny_warnings(load_dir(&config.policies, Timestamp::now()), config.deny_warnings)?;
        for w in &loaded.warnings {
            tracing::warn!(lint = w.lint.as_str(), "{w}");
        }
        let metrics = Metrics::new();
        let log = decision_log::DecisionLog::new();
        log.configure(loaded.decision_log.clone());
        let live = Self::make_live(&metrics, loaded, 1);
        let reloads = reload::History::default();
        reloads.push(ReloadRecord {
            time: live.loaded_at,
            trigger: Trigger::Start,
            ok: true,
            error: None,
            version: live.snapshot.version().to_owned(),
            generation: 1,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        if let Some(why) = &live.starting {
            tracing::warn!("not answering yet: {why}");
        }
        let console_pool = offload::Offload::new("console", config.console_concurrency, CONSOLE_QUEUE);
        let explain_pool = offload::Offload::new("explain", config.explain_concurrency, EXPLAIN_QUEUE);
        Ok(Arc::new(Self {
            live: ArcSwap::from_pointee(live),
            admission: admission::Admission::new(config.max_concurrent_requests),
            cache: FactsCache::new(config.cache_capacity, config.cache_ttl),
            metrics,
            config,
            decision_log: log,
            fetches: Default::default(),
            reloads,
            health: Default::default(),
            reload_requests: Default::default(),
            reload_lock: tokio::sync::Mutex::new(()),
            console_pool,
            explain_pool,
        }))
    }

    fn make_live(metrics: &Metrics, loaded: Loaded, generation: u64) -> Live {
        let awaiting: Vec<&str> = loaded
            .snapshot
            .sources()
            .iter()
            .filter(|s| s.awaiting_first_fetch())
            .map(|s| s.name.as_str())
            .collect();
        let starting = (!awaiting.is_empty()).then(|| {
            format!(
                "editgate is starting: `url` source{} {} {} no data yet (awaiting the first good fetch); it decides nothing until then",
                if awaiting.len() == 1 { "" } else { "s" },
                awaiting.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                if awaiting.len() == 1 { "has" } else { "have" },
            )
        });
        Live {
            counters: metrics.rule_counters(&loaded.snapshot),
            snapshot: loaded.snapshot,
            generation,
            loaded_at: Timestamp::now(),
            inputs: loaded.inputs,
            starting,
        }
    }

    /// Records a fetch result; returns the failures in a row (0 after a success).
    pub fn record_fetch(&self, source: &str, outcome: &crate::fetch::FetchOutcome, at: Timestamp) -> u32 {
        let mut book = lock(&self.fetches);
        let st = book.status.entry(source.to_owned()).or_default();
        st.last_attempt = Some(at);
        st.last_result = Some(crate::fetch::label(outcome));
        match outcome {
            Ok(_) => {
                st.last_success = Some(at);
                st.last_error = None;
                st.consecutive_failures = 0;
            }
            Err(why) => {
                st.last_error = Some(why.to_string());
                st.consecutive_failures += 1;
            }
        }
        st.consecutive_failures
    }

    /// The fetch status of a `url` source, if it was fetched since start.
    pub fn fetch_status(&self, source: &str) -> Option<fetcher::FetchStatus> {
        lock(&self.fetches).status.get(source).cloned()
    }

    /// Records that the origin of `url` source `name` confirmed its copy unchanged at `at`.
    pub fn confirm(&self, name: &str, at: Timestamp) {
        let mut book = lock(&self.fetches);
        let t = book.confirmed.entry(name.to_owned()).or_insert(at);
        *t = (*t).max(at);
    }

    /// The last confirmation of `url` source `name` since start, if any.
    pub fn confirmed(&self, name: &str) -> Option<Timestamp> {
        lock(&self.fetches).confirmed.get(name).copied()
    }

    /// `url` sources that a policy waiting to load needs fetched first.
    pub fn pending_fetch(&self) -> Vec<editgate_core::policy::SourceDef> {
        lock(&self.fetches).pending.clone()
    }

    /// Sets the `url` sources a waiting policy needs fetched first (none once it loaded).
    fn set_pending_fetch(&self, pending: Vec<editgate_core::policy::SourceDef>) {
        lock(&self.fetches).pending = pending;
    }

    /// The last loads and reloads, oldest first (at most 20).
    pub fn reload_history(&self) -> Vec<ReloadRecord> {
        self.reloads.records()
    }

    /// The serving snapshot.
    pub fn current(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Hands the gRPC health service to the state, which keeps it in step with readiness.
    pub async fn attach_health(&self, reporter: tonic_health::server::HealthReporter) {
        let ready = self.current().starting.is_none();
        set_health(&reporter, ready).await;
        *lock(&self.health) = Some(reporter);
    }

    /// Asks the watcher to reload (after checking whether the policy directory was
    /// replaced); `false` when no watcher runs.
    pub fn request_reload(&self, trigger: Trigger) -> bool {
        lock(&self.reload_requests)
            .as_ref()
            .is_some_and(|tx| tx.send(trigger).is_ok())
    }

    /// Decides one wire request; an invalid one is refused naming the field. The request's
    /// strings are moved into the attempt and the response (see [`proto::to_attempt`]); on
    /// error it is left as it was.
    pub fn check(&self, req: &mut CheckRequest) -> Result<CheckResponse, RequestError> {
        let started = timed().then(Instant::now);
        let now = coarse_now();
        let live = self.live.load();
        if let Some(why) = &live.starting {
            return Err(RequestError::Starting(why.clone()));
        }
        let attempt = proto::to_attempt(req, now, self.config.limits)?;
        let snap = &live.snapshot;
        let facts = self.cache.get(snap, live.generation, attempt.ip());
        let xff = snap.forwarded_facts(&attempt, |ip| self.cache.get(snap, live.generation, ip));
        let d = decide_with_facts(snap, &attempt, &facts, &xff, now, Trace::Skip);
        if req.probe {
            self.metrics.probes.inc();
        } else {
            live.counters.record(&d, activity::minute_of(now));
            self.decision_log.record(&d, &attempt, &req.request_id, now);
        }
        let resp = proto::to_response(&d, &snap.address(&facts), std::mem::take(&mut req.request_id));
        if let Some(t) = started {
            self.metrics.latency.observe(t.elapsed());
        }
        Ok(resp)
    }
}

/// Console pages that may wait for a console thread.
const CONSOLE_QUEUE: usize = 64;
/// `explain` requests that may wait for an explain thread.
const EXPLAIN_QUEUE: usize = 16;

impl State {
    /// [`State::explain`] on the explain threads, never the request threads: a large policy's
    /// explain takes milliseconds of CPU. Waits at most `request_timeout`; a full queue is
    /// refused at once ([`RequestError::Busy`]).
    pub async fn explain_offloaded(
        self: &Arc<Self>,
        mut req: CheckRequest,
    ) -> Result<proto::ExplainResponse, RequestError> {
        let state = self.clone();
        self.explain_pool
            .run(self.config.request_timeout, move || state.explain(&mut req))
            .await?
    }

    /// Decides one wire request with the full trace and the IP facts (on the caller's thread:
    /// what [`State::explain_offloaded`] and the console's pages run).
    pub fn explain(&self, req: &mut CheckRequest) -> Result<proto::ExplainResponse, RequestError> {
        let now = Timestamp::now();
        let live = self.current();
        if let Some(why) = &live.starting {
            return Err(RequestError::Starting(why.clone()));
        }
        let attempt = proto::to_attempt(req, now, self.config.limits)?;
        let snap = &live.snapshot;
        let d = editgate_core::engine::decide(snap, &attempt, now);
        let request_id = std::mem::take(&mut req.request_id);
        Ok(proto::to_explain(
            snap,
            &attempt,
            &d,
            now,
            &|name| self.confirmed(name),
            request_id,
        ))
    }
}

/// Locks a mutex of plain data, whatever a panicking holder left behind.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sets both gRPC health names (`""` and `editgate.v1.EditGate`) to SERVING or NOT_SERVING.
async fn set_health(reporter: &tonic_health::server::HealthReporter, ready: bool) {
    use tonic_health::ServingStatus;
    let status = if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    reporter.set_service_status("editgate.v1.EditGate", status).await;
}

/// One decision in this many is timed for `editgate_decision_duration_seconds`: reading the
/// clock twice per decision is a visible share of a streamed decision's cost, and a sample
/// gives the same distribution.
const LATENCY_SAMPLE: u32 = 8;

/// Whether this thread's next decision is one of the timed sample.
fn timed() -> bool {
    use std::cell::Cell;
    thread_local! {
        static COUNT: Cell<u32> = const { Cell::new(0) };
    }
    COUNT.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n % LATENCY_SAMPLE == 0
    })
}

/// Wall-clock time for decisions: `CLOCK_REALTIME_COARSE`, which the kernel updates every
/// tick (1-4 ms) and the vDSO reads without a system call, in a few nanoseconds. Rule expiry
/// and account ages count in seconds, and `registered_at` tolerates minutes of skew, so a few
/// milliseconds of lag change nothing. (A thread refreshing a shared value instead would cost
/// CPU every few milliseconds, idle or not.)
pub fn coarse_now() -> Timestamp {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    Timestamp::new(t.tv_sec, t.tv_nsec as i32).unwrap_or_else(|_| Timestamp::now())
}

/// A running background task (watcher, fetcher, accept loop); aborts the task when dropped.
pub struct BackgroundTask(tokio::task::JoinHandle<()>);

impl BackgroundTask {
    /// Owns `task`.
    pub fn new(task: tokio::task::JoinHandle<()>) -> Self {
        Self(task)
    }
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_follows_the_system_clock() {
        let first = coarse_now();
        for _ in 0..200 {
            let before = Timestamp::now();
            let t = coarse_now();
            let after = Timestamp::now();
            // The coarse clock lags by at most a tick (a few ms).
            assert!(t >= before - jiff::SignedDuration::from_millis(50), "{t} < {before}");
            assert!(t <= after, "{t} > {after}");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(coarse_now() > first, "the clock moves");
    }

    #[test]
    fn one_decision_in_eight_is_timed() {
        let timed: usize = (0..800).filter(|_| timed()).count();
        assert_eq!(timed, 100);
    }
}
