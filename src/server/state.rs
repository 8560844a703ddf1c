//! [`State`]: what the service's tasks share, each part owned here and handed to the tasks
//! that use it when they are spawned: the serving snapshot, its metrics, the facts cache,
//! admission, the decision log, the fetch book, the reload history and its requests, the gRPC
//! health reporter, and the pools that keep slow work off the request threads. Its decisions
//! ([`State::check`], [`State::explain`]) are here; its reload is in `reload`, its health
//! report in `health`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jiff::Timestamp;

use super::cache::FactsCache;
use super::metrics::{Metrics, RuleCounters};
use super::reload::{self, ReloadRecord, Trigger, deny_warnings};
use super::{RequestError, activity, admission, decision_log, offload};
use crate::fetch::FetchBook;
use crate::proto::{self, CheckRequest, CheckResponse, RequestLimits};
use editgate_core::engine::{Snapshot, Trace, decide_with_facts};
use editgate_core::load::{LoadError, Loaded, load_dir};

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

/// Everything the handlers share.
pub struct State {
    pub(super) live: ArcSwap<Live>,
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
    /// What the fetch schedule knows of the `url` sources.
    pub fetches: FetchBook,
    /// The last loads and reloads.
    pub(super) reloads: reload::History,
    /// The gRPC health statuses: NOT_SERVING while starting; kept in step with readiness.
    pub(super) health: tonic_health::server::HealthReporter,
    /// Reloads asked of the watcher (it re-resolves the policy directory first); it
    /// subscribes when it starts.
    reload_requests: tokio::sync::watch::Sender<Trigger>,
    pub(super) reload_lock: tokio::sync::Mutex<()>,
    /// Where console pages render (see `console`).
    pub(super) console_pool: offload::Offload,
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
            fetches: FetchBook::default(),
            reloads,
            health: tonic_health::server::HealthReporter::new(),
            reload_requests: tokio::sync::watch::channel(Trigger::Start).0,
            reload_lock: tokio::sync::Mutex::new(()),
            console_pool,
            explain_pool,
        }))
    }

    pub(super) fn make_live(metrics: &Metrics, loaded: Loaded, generation: u64) -> Live {
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

    /// The last loads and reloads, oldest first (at most 20).
    pub fn reload_history(&self) -> Vec<ReloadRecord> {
        self.reloads.records()
    }

    /// The serving snapshot.
    pub fn current(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Sets the gRPC health statuses to what the serving snapshot says (serving, or
    /// NOT_SERVING while a `url` source awaits its first fetch).
    pub async fn sync_health(&self) {
        set_health(&self.health, self.current().starting.is_none()).await;
    }

    /// The gRPC health service, answering from this state's statuses.
    pub fn health_service(&self) -> tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService> {
        tonic_health::pb::health_server::HealthServer::new(tonic_health::server::HealthService::from_health_reporter(
            self.health.clone(),
        ))
    }

    /// Asks the watcher to reload (after checking whether the policy directory was
    /// replaced); `false` when no watcher runs.
    pub fn request_reload(&self, trigger: Trigger) -> bool {
        if self.reload_requests.receiver_count() == 0 {
            return false;
        }
        self.reload_requests.send_replace(trigger);
        true
    }

    /// Where the watcher hears of reloads asked with [`State::request_reload`].
    pub(super) fn reload_requests(&self) -> tokio::sync::watch::Receiver<Trigger> {
        self.reload_requests.subscribe()
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
            &|name| self.fetches.confirmed(name),
            request_id,
        ))
    }
}

/// Sets both gRPC health names (`""` and `editgate.v1.EditGate`) to SERVING or NOT_SERVING.
pub(super) async fn set_health(reporter: &tonic_health::server::HealthReporter, ready: bool) {
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

/// The fetch schedule keeps this state's `url` sources current.
impl crate::fetch::schedule::Host for State {
    type Serving = Serving;

    fn serving(&self) -> Serving {
        Serving(self.current())
    }

    fn policies(&self) -> &std::path::Path {
        &self.config.policies
    }

    fn book(&self) -> &FetchBook {
        &self.fetches
    }

    fn counted(&self, source: &str, result: &'static str) {
        self.metrics.fetched(source, result);
    }

    async fn reload(self: &Arc<Self>) {
        let _ = self.reload_for(Trigger::Fetch).await;
    }
}

/// A hold on the serving snapshot, for the fetch schedule.
pub struct Serving(Arc<Live>);

impl std::ops::Deref for Serving {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        &self.0.snapshot
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
