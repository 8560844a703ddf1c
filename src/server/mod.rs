//! The gRPC service (`editgate.v1.EditGate`), health, reflection, metrics and hot reload.
//!
//! This is the only async part of editgate. It calls the same pure engine as the CLI:
//! [`State::check`] turns a wire request into an [`editgate_core::attempt::Attempt`], looks up the IP
//! facts through the [`FactsCache`], and calls [`editgate_core::engine::decide_with_facts`].
//!
//! - [`proto`]: generated types and wire ↔ domain conversions;
//! - [`service`]: the tonic handlers;
//! - [`metrics`]: Prometheus metrics;
//! - [`http`]: the HTTP port (`/metrics`, `/healthz`);
//! - [`reload`]: SIGHUP and file watching, building snapshots off the request path.

pub mod admission;
pub mod conn;
pub mod decision_log;
pub mod fetcher;
pub mod health;
pub mod http;
pub mod metrics;
pub mod proto;
pub mod reload;
pub mod service;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tonic::Status;

use crate::cache::FactsCache;
use editgate_core::engine::{Snapshot, decide_with_facts};
use editgate_core::load::{LoadError, LoadOptions, Loaded, load_dir};
use metrics::{Metrics, RuleCounters};
use proto::{CheckRequest, CheckResponse, RequestLimits};

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
    /// from the file descriptor limit (see [`conn::connection_cap`]).
    pub max_connections: usize,
    /// TLS for both ports, when set.
    pub tls: Option<TlsFiles>,
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

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new snapshot is serving.
    Swapped {
        /// Its generation.
        generation: u64,
        /// Its policy version.
        version: String,
    },
    /// The inputs are unchanged (same version); nothing was swapped.
    Unchanged,
}

/// Why a reload was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The first load at start.
    Start,
    /// SIGHUP (`systemctl reload`).
    Signal,
    /// A change under the policy directory or to a source file.
    Watch,
    /// A `url` source saved a new copy.
    Fetch,
    /// A direct call ([`State::reload`]).
    Request,
}

/// One load or reload, kept for `/healthz` and the console.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadRecord {
    /// When it finished.
    pub time: Timestamp,
    /// What started it.
    pub trigger: Trigger,
    /// Whether the result serves (or was identical to what serves).
    pub ok: bool,
    /// Every error, one per line, when it failed (the last good snapshot kept serving).
    pub error: Option<String>,
    /// The policy version it produced (or, on failure, the one that kept serving).
    pub version: String,
    /// The generation serving afterwards.
    pub generation: u64,
    /// How long it took.
    pub elapsed_ms: u64,
}

/// Loads and reloads remembered.
const RELOAD_HISTORY: usize = 20;

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
    pub admission: Arc<admission::Admission>,
    /// Fetch results of `url` sources, by source name.
    fetch_status: std::sync::Mutex<std::collections::HashMap<String, fetcher::FetchStatus>>,
    /// `url` sources of a policy that could not load because they have no copy yet: the
    /// fetcher fetches them too, so that the reload can succeed.
    pending_fetch: std::sync::Mutex<Vec<editgate_core::policy::SourceDef>>,
    /// The last loads and reloads, oldest first.
    reloads: std::sync::Mutex<std::collections::VecDeque<ReloadRecord>>,
    /// When the origin of each `url` source last confirmed its copy unchanged, by source name:
    /// the snapshot stays as built, and a "not modified" answer moves freshness forward here.
    confirmations: std::sync::Mutex<std::collections::HashMap<String, Timestamp>>,
    /// The gRPC health service, once serving: NOT_SERVING while starting.
    health: std::sync::Mutex<Option<tonic_health::server::HealthReporter>>,
    /// Where to ask the watcher for a reload (it re-resolves the policy directory first).
    reload_requests: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<Trigger>>>,
    reload_lock: tokio::sync::Mutex<()>,
}

/// A load result with its warnings turned into errors when the settings deny them. Except
/// `expired-rule`: a date passing must never stop a server from starting or reloading (the
/// rule is skipped anyway); `validate --deny-warnings` still fails on it.
fn deny_warnings(loaded: Result<Loaded, LoadError>, deny: bool) -> Result<Loaded, LoadError> {
    let denied = |w: &&editgate_core::policy::Warning| w.lint != editgate_core::policy::Lint::ExpiredRule;
    match loaded {
        Ok(l) if deny && l.warnings.iter().any(|w| denied(&w)) => {
            Err(LoadError::Invalid(editgate_core::policy::PolicyErrors(
                l.warnings
                    .iter()
                    .filter(denied)
                    .map(|w| {
                        editgate_core::policy::PolicyError::new(
                            w.location.clone(),
                            format!("warning[{}] denied by --deny-warnings: {}", w.lint.as_str(), w.message),
                        )
                    })
                    .collect(),
            )))
        }
        other => other,
    }
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
        let first = ReloadRecord {
            time: live.loaded_at,
            trigger: Trigger::Start,
            ok: true,
            error: None,
            version: live.snapshot.version().to_owned(),
            generation: 1,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        if let Some(why) = &live.starting {
            tracing::warn!("not answering yet: {why}");
        }
        Ok(Arc::new(Self {
            live: ArcSwap::from_pointee(live),
            admission: admission::Admission::new(config.max_concurrent_requests),
            cache: FactsCache::new(config.cache_capacity, config.cache_ttl),
            metrics,
            config,
            decision_log: log,
            fetch_status: Default::default(),
            pending_fetch: Default::default(),
            confirmations: Default::default(),
            reloads: std::sync::Mutex::new(std::collections::VecDeque::from([first])),
            health: Default::default(),
            reload_requests: Default::default(),
            reload_lock: tokio::sync::Mutex::new(()),
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
        use crate::fetch::FetchOutcome;
        let mut map = lock(&self.fetch_status);
        let st = map.entry(source.to_owned()).or_default();
        st.last_attempt = Some(at);
        st.last_result = Some(outcome.label());
        match outcome {
            FetchOutcome::Updated { .. } | FetchOutcome::NotModified => {
                st.last_success = Some(at);
                st.last_error = None;
                st.consecutive_failures = 0;
            }
            FetchOutcome::Rejected(why) | FetchOutcome::Failed(why) => {
                st.last_error = Some(why.clone());
                st.consecutive_failures += 1;
            }
        }
        st.consecutive_failures
    }

    /// The fetch status of a `url` source, if it was fetched since start.
    pub fn fetch_status(&self, source: &str) -> Option<fetcher::FetchStatus> {
        lock(&self.fetch_status).get(source).cloned()
    }

    /// Records that the origin of `url` source `name` confirmed its copy unchanged at `at`.
    pub fn confirm(&self, name: &str, at: Timestamp) {
        let mut map = lock(&self.confirmations);
        let t = map.entry(name.to_owned()).or_insert(at);
        *t = (*t).max(at);
    }

    /// The last confirmation of `url` source `name` since start, if any.
    pub fn confirmed(&self, name: &str) -> Option<Timestamp> {
        lock(&self.confirmations).get(name).copied()
    }

    /// `url` sources that a policy waiting to load needs fetched first.
    pub fn pending_fetch(&self) -> Vec<editgate_core::policy::SourceDef> {
        lock(&self.pending_fetch).clone()
    }

    /// The last loads and reloads, oldest first (at most 20).
    pub fn reload_history(&self) -> Vec<ReloadRecord> {
        lock(&self.reloads).iter().cloned().collect()
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

    /// Builds a new snapshot and swaps it in when it is valid and different (see
    /// [`State::reload_for`]); for callers outside the server's own triggers.
    pub async fn reload(&self) -> Result<ReloadOutcome, String> {
        self.reload_for(Trigger::Request).await
    }

    /// Builds a new snapshot on a dedicated low-priority thread and swaps it in when it is
    /// valid and different. A list that shrank past its `max_shrink` against the serving
    /// snapshot is invalid (see [`editgate_core::load::reload_dir`]). On error the old snapshot keeps
    /// serving, the errors are logged with their `file:line:col`,
    /// `editgate_reload_failures_total` goes up, and `/healthz` says `degraded` until a
    /// reload succeeds.
    pub async fn reload_for(&self, trigger: Trigger) -> Result<ReloadOutcome, String> {
        let _serial = self.reload_lock.lock().await;
        let dir = self.config.policies.clone();
        let started = Instant::now();
        let old = self.current();
        let previous = old.clone();
        let deny = self.config.deny_warnings;
        // A dedicated thread at a lower priority, paced (`editgate_core::pace`): rebuilding a large
        // snapshot takes hundreds of milliseconds of CPU, and on a small host it must not hold
        // a core for long while requests wait for it.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("editgate-reload".into())
            .spawn(move || {
                lower_priority();
                let mut cooperative = editgate_core::pace::Cooperative::default();
                let mut pause = || cooperative.pause();
                let loaded = editgate_core::load::load(
                    &dir,
                    LoadOptions {
                        now: Timestamp::now(),
                        previous: Some(&previous.snapshot),
                        pacer: editgate_core::pace::Pacer::with(&mut pause),
                    },
                );
                drop(previous);
                let _ = tx.send(deny_warnings(loaded, deny));
            });
        let result = match spawned {
            Ok(_) => rx
                .await
                .map_err(|e| format!("reload thread failed: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(format!("cannot start the reload thread: {e}")),
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let outcome = match result {
            Ok(loaded) => {
                lock(&self.pending_fetch).clear();
                // The key file is not part of the policy version, so apply the log settings
                // (and reopen the file) even when nothing else changed.
                self.decision_log.configure(loaded.decision_log.clone());
                if loaded.snapshot.version() == old.snapshot.version() {
                    self.metrics.reload_success.inc();
                    tracing::info!(version = old.snapshot.version(), "reload: inputs unchanged");
                    drop_in_background(loaded);
                    Ok(ReloadOutcome::Unchanged)
                } else {
                    for w in &loaded.warnings {
                        tracing::warn!(lint = w.lint.as_str(), "{w}");
                    }
                    let generation = old.generation + 1;
                    let live = Self::make_live(&self.metrics, loaded, generation);
                    let version = live.snapshot.version().to_owned();
                    let ready = live.starting.is_none();
                    self.live.store(Arc::new(live));
                    self.cache.clear();
                    self.metrics.reload_success.inc();
                    tracing::info!(
                        generation,
                        version = %version,
                        previous = old.snapshot.version(),
                        elapsed_ms,
                        "reload: new snapshot serving"
                    );
                    let reporter = lock(&self.health).clone();
                    if let Some(reporter) = reporter {
                        set_health(&reporter, ready).await;
                    }
                    Ok(ReloadOutcome::Swapped { generation, version })
                }
            }
            Err(e) => {
                self.decision_log.reopen();
                self.metrics.reload_failures.inc();
                for line in e.lines() {
                    tracing::error!("reload rejected, previous snapshot keeps serving: {line}");
                }
                *lock(&self.pending_fetch) = unfetched_url_sources(&self.config.policies);
                Err(e)
            }
        };
        let current = self.current();
        let record = ReloadRecord {
            time: Timestamp::now(),
            trigger,
            ok: outcome.is_ok(),
            error: outcome.as_ref().err().cloned(),
            version: current.snapshot.version().to_owned(),
            generation: current.generation,
            elapsed_ms,
        };
        let mut history = lock(&self.reloads);
        if history.len() == RELOAD_HISTORY {
            history.pop_front();
        }
        history.push_back(record);
        drop(history);
        drop_in_background(old);
        outcome
    }

    /// Decides one wire request. `INVALID_ARGUMENT` errors name the field. The request's
    /// strings are moved into the attempt and the response (see [`proto::to_attempt`]); on
    /// error it is left as it was.
    pub fn check(&self, req: &mut CheckRequest) -> Result<CheckResponse, Status> {
        let started = timed().then(Instant::now);
        let now = coarse_now();
        let live = self.live.load();
        if let Some(why) = &live.starting {
            return Err(Status::unavailable(why.clone()));
        }
        let attempt = proto::to_attempt(req, now, self.config.limits)?;
        let snap = &live.snapshot;
        let facts = self.cache.get(snap, live.generation, attempt.ip());
        let xff: Vec<_> = if snap.has_xff_rules() {
            attempt
                .forwarded_for()
                .iter()
                .map(|ip| self.cache.get(snap, live.generation, *ip))
                .collect()
        } else {
            Vec::new()
        };
        let d = decide_with_facts(snap, &attempt, &facts, &xff, now, false);
        match d.decided_by {
            editgate_core::decision::DecidedBy::Rule(i) => {
                if let Some(c) = live.counters.decided.get(i as usize) {
                    c.inc();
                }
            }
            _ => {
                live.counters.defaults[d.verdict as usize].inc();
            }
        }
        for id in &d.shadow_rule_ids {
            if let Some(c) = live.counters.shadow.get(*id) {
                c.inc();
            }
        }
        self.decision_log.record(&d, &attempt, now);
        let resp = proto::to_response(&d, std::mem::take(&mut req.request_id));
        if let Some(t) = started {
            self.metrics.latency.observe(t.elapsed());
        }
        Ok(resp)
    }
}

impl State {
    /// Decides one wire request with the full trace and the IP facts.
    pub fn explain(&self, req: &mut CheckRequest) -> Result<proto::ExplainResponse, Status> {
        let now = Timestamp::now();
        let live = self.current();
        if let Some(why) = &live.starting {
            return Err(Status::unavailable(why.clone()));
        }
        let attempt = proto::to_attempt(req, now, self.config.limits)?;
        let snap = &live.snapshot;
        let d = editgate_core::engine::decide(snap, &attempt, now);
        Ok(proto::ExplainResponse {
            decision: Some(proto::to_response(&d, std::mem::take(&mut req.request_id))),
            facts: Some({
                let facts = snap.ip_facts(attempt.ip());
                let data = proto::source_data(&facts, snap, now, &|name| self.confirmed(name));
                proto::to_facts(&facts, data)
            }),
            steps: proto::to_steps(snap, &d.trace),
        })
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

/// The `url` sources of the policy on disk that have no copy yet: a reload that failed
/// because of them waits for the fetcher to save them. Reading and checking the policy
/// files (not the data) is cheap, and happens only after a failed reload.
fn unfetched_url_sources(dir: &std::path::Path) -> Vec<editgate_core::policy::SourceDef> {
    let Ok(files) = editgate_core::load::read_policy_files(dir) else {
        return Vec::new();
    };
    let Ok((policy, _)) = editgate_core::policy::check(&files, Timestamp::now()) else {
        return Vec::new();
    };
    policy
        .sources
        .into_iter()
        .filter(|s| s.remote.is_some() && !dir.join(&s.path).exists())
        .collect()
}

/// One decision in this many is timed for `editgate_decision_duration_seconds`. Reading the
/// clock twice per decision was 5% of the server's time on the `CheckStream` path; a sample
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

/// Wall-clock time for decisions, read from a value a background thread refreshes every 2 ms,
/// so a decision reads no clock at all. Rule expiry and account ages count in seconds, and
/// `registered_at` tolerates minutes of skew, so a few milliseconds of lag change nothing.
/// Falls back to the system clock if the thread cannot start.
pub fn coarse_now() -> Timestamp {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicI64, Ordering};
    static NOW_MS: AtomicI64 = AtomicI64::new(0);
    static TICKER: OnceLock<bool> = OnceLock::new();
    let running = *TICKER.get_or_init(|| {
        NOW_MS.store(Timestamp::now().as_millisecond(), Ordering::Relaxed);
        std::thread::Builder::new()
            .name("editgate-clock".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(Duration::from_millis(2));
                    NOW_MS.store(Timestamp::now().as_millisecond(), Ordering::Relaxed);
                }
            })
            .is_ok()
    });
    if running {
        Timestamp::from_millisecond(NOW_MS.load(Ordering::Relaxed)).unwrap_or_else(|_| Timestamp::now())
    } else {
        Timestamp::now()
    }
}

/// Frees a replaced snapshot on a low-priority thread. Freeing a 1M-prefix snapshot takes
/// milliseconds; on a request thread (where the reload's async task runs) that showed as a
/// latency spike right after every swap. A request still holding the old snapshot frees
/// nothing: the last holder does.
fn drop_in_background<T: Send + 'static>(value: T) {
    let spawned = std::thread::Builder::new().name("editgate-free".into()).spawn(move || {
        lower_priority();
        drop(value);
    });
    if let Err(e) = spawned {
        tracing::debug!("freeing the old snapshot inline: {e}");
    }
}

/// Lowers the current thread's scheduling priority: `SCHED_BATCH` at nice 5 on Linux, so that
/// under full load the rebuild gives way to request threads without starving. Measured with
/// `editgate loadgen --synth-prefixes 1000000 --reloads 10` on 2 cores (see BENCHMARKS.md):
/// normal priority gave p99 2.5× steady during reloads; `SCHED_IDLE` kept p99 flat but
/// stretched a reload to 7 s; nice 10 to 2.5 s; nice 5 gave 1.8–2.0×, and with the rebuild
/// paced (`editgate_core::pace`) 1.4–1.7× with reloads under 1 s. `SCHED_BATCH` also keeps the
/// rebuild from preempting a request thread when it wakes from a pause. Lowering a priority
/// needs no privilege; on failure the thread keeps its priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        use thread_priority::{ThreadPriority, ThreadPriorityValue};
        // Cross-platform 37 of 0..=99 maps to nice 5.
        let Ok(value) = ThreadPriorityValue::try_from(37u8) else {
            return;
        };
        let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        if let Err(e) = set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Crossplatform(value), policy)
        {
            tracing::debug!("reload thread keeps normal priority: {e:?}");
        }
    }
}

/// Runs the gRPC server on `grpc` and the HTTP server (API, metrics, health) on `http` until
/// `shutdown` completes; then stops accepting and lets the requests and streams in flight
/// finish for at most [`Config::drain_timeout`] before cutting them, and returns. With
/// [`Config::watch`], a file watcher reloads on change.
pub async fn run(
    state: Arc<State>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let watcher = if state.config.watch {
        Some(reload::spawn_watcher(state.clone())?)
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
    let incoming = tokio_stream::wrappers::ReceiverStream::new(grpc_conns).map(Ok::<_, std::io::Error>);
    let mut grpc_stop = stop_rx.clone();
    let mut builder = tonic::transport::Server::builder()
        // A peer that stops answering pings is gone: its connection does not hold a slot.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)));
    if let Some(files) = &state.config.tls {
        builder = builder.tls_config(tls::grpc_config(files)?)?;
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
    let http_server = http::serve(state.clone(), http_conns, stop_rx.clone());
    let servers = async {
        let (g, h) = tokio::join!(grpc_server, http_server);
        g?;
        h
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
    drop(watcher);
    drop(fetcher);
    tracing::info!("servers stopped");
    result
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
            // Refreshed every 2 ms; allow a busy test machine to delay the refresh.
            assert!(t >= before - jiff::SignedDuration::from_secs(2), "{t} < {before}");
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
