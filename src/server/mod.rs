//! The gRPC service (`editgate.v1.EditGate`), health, reflection, metrics and hot reload.
//!
//! This is the only async part of editgate. It calls the same pure engine as the CLI:
//! [`State::check`] turns a wire request into an [`crate::attempt::Attempt`], looks up the IP
//! facts through the [`FactsCache`], and calls [`crate::engine::decide_with_facts`].
//!
//! - [`proto`]: generated types and wire ↔ domain conversions;
//! - [`service`]: the tonic handlers;
//! - [`metrics`]: Prometheus metrics;
//! - [`http`]: the HTTP port (`/metrics`, `/healthz`);
//! - [`reload`]: SIGHUP and file watching, building snapshots off the request path.

pub mod decision_log;
pub mod fetcher;
pub mod http;
pub mod limits;
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
use tokio_stream::wrappers::TcpListenerStream;
use tonic::Status;

use crate::engine::{Snapshot, decide_with_facts};
use crate::facts::FactsCache;
use crate::load::{LoadError, Loaded, load_dir};
use metrics::{Metrics, RuleCounters};
use proto::{CheckRequest, CheckResponse, Limits};

/// Service settings (see the README's configuration reference).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The policy directory.
    pub policies: PathBuf,
    /// Facts cache capacity in addresses; 0 disables the cache.
    pub cache_capacity: u64,
    /// How long a cached entry lives.
    pub cache_ttl: Duration,
    /// Largest accepted gRPC message, bytes.
    pub max_message_bytes: usize,
    /// Request limits.
    pub limits: Limits,
    /// Watch the policy directory and source files and reload on change.
    pub watch: bool,
    /// Quiet period before a watched change triggers a reload.
    pub debounce: Duration,
    /// Decisions in flight (both ports) beyond which requests are refused; 0 = no limit.
    pub max_concurrent_requests: usize,
    /// Deadline for one unary request, from arrival (body included) to answer.
    pub request_timeout: Duration,
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

impl Settings {
    /// Defaults for a policy directory.
    pub fn new(policies: PathBuf) -> Self {
        Self {
            policies,
            cache_capacity: 100_000,
            cache_ttl: Duration::from_secs(300),
            max_message_bytes: 64 * 1024,
            limits: Limits::default(),
            watch: true,
            debounce: Duration::from_millis(250),
            max_concurrent_requests: 1024,
            request_timeout: Duration::from_secs(5),
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

/// Everything the handlers share.
pub struct State {
    live: ArcSwap<Live>,
    /// The facts cache.
    pub cache: FactsCache,
    /// The metrics.
    pub metrics: Metrics,
    /// The settings.
    pub settings: Settings,
    /// The opt-in decision log.
    pub decision_log: decision_log::DecisionLog,
    /// Admission control for both ports.
    pub admission: Arc<limits::Admission>,
    /// Fetch results of `url` sources, by source name.
    fetch_status: std::sync::Mutex<std::collections::HashMap<String, fetcher::FetchStatus>>,
    reload_lock: tokio::sync::Mutex<()>,
}

impl State {
    /// Loads the policy directory for the first time. Fails when it is invalid: a server
    /// never starts on a broken policy.
    pub fn load(settings: Settings) -> Result<Arc<Self>, LoadError> {
        let loaded = load_dir(&settings.policies, Timestamp::now())?;
        for w in &loaded.warnings {
            tracing::warn!(lint = w.lint.as_str(), "{w}");
        }
        let metrics = Metrics::new();
        let log = decision_log::DecisionLog::new();
        log.configure(loaded.decision_log.clone());
        let live = Self::make_live(&metrics, loaded, 1);
        Ok(Arc::new(Self {
            live: ArcSwap::from_pointee(live),
            admission: limits::Admission::new(settings.max_concurrent_requests),
            cache: FactsCache::new(settings.cache_capacity, settings.cache_ttl),
            metrics,
            settings,
            decision_log: log,
            fetch_status: Default::default(),

            reload_lock: tokio::sync::Mutex::new(()),
        }))
    }

    fn make_live(metrics: &Metrics, loaded: Loaded, generation: u64) -> Live {
        Live {
            counters: metrics.rule_counters(&loaded.snapshot),
            snapshot: loaded.snapshot,
            generation,
            loaded_at: Timestamp::now(),
            inputs: loaded.inputs,
        }
    }

    /// Records a fetch result; returns the failures in a row (0 after a success).
    pub fn record_fetch(&self, source: &str, outcome: &crate::fetch::FetchOutcome, at: Timestamp) -> u32 {
        use crate::fetch::FetchOutcome;
        let mut map = self
            .fetch_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let map = self
            .fetch_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(source).cloned()
    }

    /// The serving snapshot.
    pub fn current(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Builds a new snapshot on a dedicated low-priority thread and swaps it in when it is valid and
    /// different. On error the old snapshot keeps serving, the errors are logged with their
    /// `file:line:col`, and `editgate_reload_failures_total` goes up.
    pub async fn reload(&self) -> Result<ReloadOutcome, String> {
        let _serial = self.reload_lock.lock().await;
        let dir = self.settings.policies.clone();
        let started = Instant::now();
        // A dedicated thread at a lower priority, paced (`crate::pace`): rebuilding a large
        // snapshot takes hundreds of milliseconds of CPU, and on a small host it must not hold
        // a core for long while requests wait for it.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("editgate-reload".into())
            .spawn(move || {
                lower_priority();
                let _ = tx.send(crate::pace::cooperatively(|| load_dir(&dir, Timestamp::now())));
            });
        let result = match spawned {
            Ok(_) => rx
                .await
                .map_err(|e| format!("reload thread failed: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(format!("cannot start the reload thread: {e}")),
        };
        match result {
            Ok(loaded) => {
                // The key file is not part of the policy version, so apply the log settings
                // (and reopen the file) even when nothing else changed.
                self.decision_log.configure(loaded.decision_log.clone());
                let old = self.current();
                if loaded.snapshot.version() == old.snapshot.version() {
                    self.metrics.reload_success.inc();
                    tracing::info!(version = old.snapshot.version(), "reload: inputs unchanged");
                    drop_in_background(loaded);
                    return Ok(ReloadOutcome::Unchanged);
                }
                for w in &loaded.warnings {
                    tracing::warn!(lint = w.lint.as_str(), "{w}");
                }
                let generation = old.generation + 1;
                let live = Self::make_live(&self.metrics, loaded, generation);
                let version = live.snapshot.version().to_owned();
                self.live.store(Arc::new(live));
                self.cache.clear();
                self.metrics.reload_success.inc();
                tracing::info!(
                    generation,
                    version = %version,
                    previous = old.snapshot.version(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "reload: new snapshot serving"
                );
                drop_in_background(old);
                Ok(ReloadOutcome::Swapped { generation, version })
            }
            Err(e) => {
                self.decision_log.reopen();
                self.metrics.reload_failures.inc();
                for line in e.lines() {
                    tracing::error!("reload rejected, previous snapshot keeps serving: {line}");
                }
                Err(e)
            }
        }
    }

    /// Decides one wire request. `INVALID_ARGUMENT` errors name the field. The request's
    /// strings are moved into the attempt and the response (see [`proto::to_attempt`]); on
    /// error it is left as it was.
    pub fn check(&self, req: &mut CheckRequest) -> Result<CheckResponse, Status> {
        let started = timed().then(Instant::now);
        let now = coarse_now();
        let attempt = proto::to_attempt(req, now, self.settings.limits)?;
        let live = self.live.load();
        let snap = &live.snapshot;
        let facts = self.cache.get(snap, live.generation, attempt.ip);
        let xff: Vec<_> = if snap.has_xff_rules() {
            attempt
                .forwarded_for
                .iter()
                .map(|ip| self.cache.get(snap, live.generation, *ip))
                .collect()
        } else {
            Vec::new()
        };
        let d = decide_with_facts(snap, &attempt, &facts, &xff, now, false);
        match d.decided_by {
            crate::decision::DecidedBy::Rule(i) => {
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
        let attempt = proto::to_attempt(req, now, self.settings.limits)?;
        let live = self.current();
        let snap = &live.snapshot;
        let d = crate::engine::decide(snap, &attempt, now);
        Ok(proto::ExplainResponse {
            decision: Some(proto::to_response(&d, std::mem::take(&mut req.request_id))),
            facts: Some(proto::to_facts(&snap.ip_facts(attempt.ip))),
            steps: proto::to_steps(snap, &d.trace),
        })
    }
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
/// paced (`crate::pace`) 1.4–1.7× with reloads under 1 s. `SCHED_BATCH` also keeps the
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

/// Accepted gRPC connections with `TCP_NODELAY`: one small answer per request must leave at
/// once. (tonic sets it only on listeners it binds itself; without it, a backend sending a
/// few requests a second waited ~40 ms per answer on Nagle and delayed ACKs, as the soak run
/// showed.)
pub fn incoming(listener: TcpListener) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        if let Err(e) = conn.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        Ok(conn)
    })
}

/// Runs the gRPC server on `grpc` and the HTTP server (metrics, health) on `http` until
/// `shutdown` completes; then stops accepting, finishes the requests in flight and returns.
/// With [`Settings::watch`], a file watcher reloads on change.
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
    let watcher = if state.settings.watch {
        Some(reload::spawn_watcher(state.clone())?)
    } else {
        None
    };
    let fetcher = fetcher::spawn(state.clone());

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<proto::edit_gate_server::EditGateServer<service::EditGateService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let edit_gate = proto::edit_gate_server::EditGateServer::new(service::EditGateService::new(state.clone()))
        .max_decoding_message_size(state.settings.max_message_bytes);

    let mut grpc_stop = stop_rx.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(files) = &state.settings.tls {
        builder = builder.tls_config(tls::grpc_config(files)?)?;
    }
    let grpc_server = builder
        .layer(limits::GrpcLimitLayer::new(state.clone()))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(edit_gate)
        .serve_with_incoming_shutdown(incoming(grpc), async move {
            let _ = grpc_stop.wait_for(|s| *s).await;
        });
    let mut http_stop = stop_rx.clone();
    let http_stopped = async move {
        let _ = http_stop.wait_for(|s| *s).await;
    };
    let router = http::router(state.clone());
    let http_server = async {
        match &state.settings.tls {
            Some(files) => {
                let listener = tls::TlsListener::new(http, tls::rustls_config(files)?)?;
                axum::serve(listener, router)
                    .with_graceful_shutdown(http_stopped)
                    .await?;
            }
            None => {
                use axum::serve::ListenerExt;
                let http = http.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(http, router).with_graceful_shutdown(http_stopped).await?;
            }
        }
        anyhow::Ok(())
    };
    let (g, h) = tokio::join!(grpc_server, http_server);
    drop(watcher);
    drop(fetcher);
    tracing::info!("servers stopped");
    g?;
    h?;
    Ok(())
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
