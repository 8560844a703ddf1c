//! Prometheus metrics. Per-rule counters are resolved once per snapshot (see
//! [`Metrics::rule_counters`]), so a decision increments an atomic and allocates nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use jiff::Timestamp;
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

use super::activity::{Activity, RuleActivity};
use super::cache::FactsCache;
use super::striped::{self, StripedCounter};
use editgate_core::decision::{DecidedBy, Decision, Verdict};
use editgate_core::engine::Snapshot;

/// The decision latency histogram. Observing is two relaxed adds on this thread's stripes, no
/// lock: prometheus-client's `Histogram` takes a mutex per observation, which threads deciding
/// at once would contend on.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Arc<LatencyInner>);

#[derive(Debug)]
struct LatencyInner {
    /// Upper bounds in nanoseconds; `buckets` has one more slot, for +Inf.
    bounds: Vec<u64>,
    buckets: Vec<StripedCounter>,
    sum_nanos: StripedCounter,
}

impl LatencyHistogram {
    /// Buckets from 1 µs doubling to about 0.5 s.
    pub fn new() -> Self {
        let bounds: Vec<u64> = exponential_buckets(1e-6, 2.0, 20)
            .map(|s| (s * 1e9).round() as u64)
            .collect();
        let buckets = (0..=bounds.len()).map(|_| StripedCounter::default()).collect();
        Self(Arc::new(LatencyInner {
            bounds,
            buckets,
            sum_nanos: StripedCounter::default(),
        }))
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = self.0.bounds.partition_point(|b| *b < n);
        if let Some(b) = self.0.buckets.get(i) {
            b.add(1);
        }
        self.0.sum_nanos.add(n);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.buckets.iter().map(StripedCounter::get).sum()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets: Vec<(f64, u64)> = self
            .0
            .bounds
            .iter()
            .zip(&self.0.buckets)
            .map(|(b, c)| (*b as f64 / 1e9, c.get()))
            .collect();
        buckets.push((f64::INFINITY, self.0.buckets.last().map_or(0, StripedCounter::get)));
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = self.0.sum_nanos.get() as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    verdict: String,
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceTimeLabels {
    source: String,
    from: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    source: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

/// Counters for one snapshot's rules, resolved when the snapshot is installed: for each rule
/// and each default, its history under the verdict it decides with now (the Prometheus
/// totals since start and the console's minute-by-minute counts, keyed alike by rule and
/// verdict).
#[derive(Debug, Clone)]
pub struct RuleCounters {
    /// Per rule index.
    pub decided: Vec<Arc<RuleActivity>>,
    /// Per verdict, for the decisions of a default.
    pub defaults: [Arc<RuleActivity>; 3],
    /// The shadow rules, by id.
    pub shadow: HashMap<String, Arc<RuleActivity>>,
}

impl RuleCounters {
    /// Counts one decision made in `minute` ([`super::activity::minute_of`]).
    pub fn record(&self, d: &Decision<'_>, minute: u32) {
        let counted = match d.decided_by {
            DecidedBy::Rule(i) => self.decided.get(i as usize),
            _ => Some(&self.defaults[d.verdict as usize]),
        };
        if let Some(a) = counted {
            a.decided_total.inc();
            a.decided.record(minute);
        }
        for id in &d.shadow_rule_ids {
            if let Some(a) = self.shadow.get(*id) {
                a.shadow_total.inc();
                a.shadow.record(minute);
            }
        }
    }
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    /// The console's per-rule history.
    pub activity: Activity,
    decisions: Family<DecisionLabels, striped::Counter>,
    shadow: Family<DecisionLabels, striped::Counter>,
    /// Decision latency, seconds (request parsed to response built).
    pub latency: LatencyHistogram,
    /// Requests rejected as malformed, by method.
    invalid: Family<MethodLabel, Counter>,
    /// Probes decided (views and permission tests, not attempts).
    pub probes: striped::Counter,
    cache_hits: Gauge<u64, AtomicU64>,
    cache_misses: Gauge<u64, AtomicU64>,
    cache_entries: Gauge<u64, AtomicU64>,
    /// Successful reloads.
    pub reload_success: Counter,
    /// Failed reloads (the old snapshot kept serving).
    pub reload_failures: Counter,
    generation: Gauge<u64, AtomicU64>,
    snapshot_age: Gauge<f64, AtomicU64>,
    source_entries: Family<SourceLabel, Gauge<u64, AtomicU64>>,
    source_age: Family<SourceLabel, Gauge<f64, AtomicU64>>,
    source_stale: Family<SourceLabel, Gauge<u64, AtomicU64>>,
    source_time: Family<SourceTimeLabels, Gauge<f64, AtomicU64>>,
    source_fetches: Family<FetchLabels, Counter>,
    shed: Family<MethodLabel, Counter>,
    log_written: Gauge<u64, AtomicU64>,
    log_dropped: Gauge<u64, AtomicU64>,
    log_errors: Gauge<u64, AtomicU64>,
    ready: Gauge<u64, AtomicU64>,
    degraded: Gauge<u64, AtomicU64>,
    problems: Gauge<u64, AtomicU64>,
    last_reload_ok: Gauge<u64, AtomicU64>,
    last_reload_time: Gauge<f64, AtomicU64>,
    /// Open connections, by port (`grpc`, `http`).
    pub connections: Family<PortLabel, Gauge<i64, std::sync::atomic::AtomicI64>>,
    /// Connections closed at once because the port was at its connection cap.
    pub connections_refused: Family<PortLabel, Counter>,
}

/// A port label: `grpc` or `http`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PortLabel {
    /// `grpc` or `http`.
    pub port: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `editgate_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("editgate");
        let m = Self {
            activity: Activity::default(),
            decisions: Family::default(),
            shadow: Family::default(),
            latency: LatencyHistogram::new(),
            invalid: Family::default(),
            probes: striped::Counter::default(),
            cache_hits: Gauge::default(),
            cache_misses: Gauge::default(),
            cache_entries: Gauge::default(),
            reload_success: Counter::default(),
            reload_failures: Counter::default(),
            generation: Gauge::default(),
            snapshot_age: Gauge::default(),
            source_entries: Family::default(),
            source_age: Family::default(),
            source_stale: Family::default(),
            source_time: Family::default(),
            source_fetches: Family::default(),
            shed: Family::default(),
            log_written: Gauge::default(),
            log_dropped: Gauge::default(),
            log_errors: Gauge::default(),
            ready: Gauge::default(),
            degraded: Gauge::default(),
            problems: Gauge::default(),
            last_reload_ok: Gauge::default(),
            last_reload_time: Gauge::default(),
            connections: Family::default(),
            connections_refused: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "decisions",
            "Decisions by verdict and deciding rule (rule=\"\" for a default)",
            m.decisions.clone(),
        );
        registry.register(
            "shadow_matches",
            "Shadow-mode rules that matched, by the verdict they would have given and rule",
            m.shadow.clone(),
        );
        registry.register(
            "probes",
            "Probes decided: an edit form shown or a permission test, nothing saved; not in editgate_decisions_total",
            m.probes.clone(),
        );
        registry.register(
            "decision_duration_seconds",
            "Time to decide one request, from parsed request to response (one decision in eight is timed)",
            m.latency.clone(),
        );
        registry.register(
            "invalid_requests",
            "Requests rejected with INVALID_ARGUMENT, by method",
            m.invalid.clone(),
        );
        registry.register(
            "facts_cache_hits",
            "Per-IP facts answered from the cache (total)",
            m.cache_hits.clone(),
        );
        registry.register(
            "facts_cache_misses",
            "Per-IP facts computed (total)",
            m.cache_misses.clone(),
        );
        registry.register(
            "facts_cache_entries",
            "Addresses in the facts cache",
            m.cache_entries.clone(),
        );
        registry.register(
            "reload_success",
            "Snapshot reloads that succeeded",
            m.reload_success.clone(),
        );
        registry.register(
            "reload_failures",
            "Snapshot reloads that failed; the previous snapshot kept serving",
            m.reload_failures.clone(),
        );
        registry.register(
            "snapshot_generation",
            "Generation of the serving snapshot (1 at start, +1 per successful reload)",
            m.generation.clone(),
        );
        registry.register(
            "snapshot_age_seconds",
            "Seconds since the serving snapshot was loaded",
            m.snapshot_age.clone(),
        );
        registry.register(
            "source_entries",
            "Networks loaded from each list source (0 for databases)",
            m.source_entries.clone(),
        );
        registry.register(
            "source_data_age_seconds",
            "Age of each source's data: since its own timestamps, else its url's last fetch or confirmation, else its file's modification (see editgate_source_data_timestamp_seconds)",
            m.source_age.clone(),
        );
        registry.register(
            "source_stale",
            "1 when a source's data is older than its max_age, or a url source has no data yet",
            m.source_stale.clone(),
        );
        registry.register(
            "source_data_timestamp_seconds",
            "When each source's data was current (Unix time), with where that comes from: data (its own timestamps), fetched (a url source's last fetch or confirmation) or file-modified",
            m.source_time.clone(),
        );
        registry.register(
            "source_fetches",
            "Fetches of url sources by result: updated, not_modified, rejected (bad or suspicious data), failed (network, timeout, HTTP error)",
            m.source_fetches.clone(),
        );
        registry.register(
            "requests_shed",
            "Requests refused with RESOURCE_EXHAUSTED / 503 because the concurrency limit was reached, by method",
            m.shed.clone(),
        );
        registry.register(
            "decision_log_lines",
            "Decision log lines written (total)",
            m.log_written.clone(),
        );
        registry.register(
            "decision_log_dropped",
            "Decision log records dropped because the writer fell behind (total)",
            m.log_dropped.clone(),
        );
        registry.register(
            "decision_log_errors",
            "Decision log lines lost to write errors, such as a full disk (total)",
            m.log_errors.clone(),
        );
        registry.register(
            "ready",
            "1 when deciding; 0 while starting (a url source awaits its first fetch: requests get UNAVAILABLE / 503)",
            m.ready.clone(),
        );
        registry.register(
            "degraded",
            "1 when the last good snapshot serves with problems (see /healthz `problems`): a failed reload, a stale, empty or failing source, a failing decision log",
            m.degraded.clone(),
        );
        registry.register("problems", "Problems /healthz lists now", m.problems.clone());
        registry.register(
            "last_reload_success",
            "1 when the last load or reload succeeded, 0 when it failed and the previous snapshot kept serving",
            m.last_reload_ok.clone(),
        );
        registry.register(
            "last_reload_timestamp_seconds",
            "When the last load or reload finished (Unix time)",
            m.last_reload_time.clone(),
        );
        registry.register("connections", "Open connections, by port", m.connections.clone());
        registry.register(
            "connections_refused",
            "Connections closed at once because the port was at its connection cap, by port",
            m.connections_refused.clone(),
        );
        Self { registry, ..m }
    }

    /// Resolves the counters for a snapshot's rules.
    pub fn rule_counters(&self, snap: &Snapshot) -> RuleCounters {
        self.activity.retain(
            snap.rules().iter().map(|r| r.id.as_str()),
            super::activity::minute_of(Timestamp::now()),
        );
        let history = |rule: &str, verdict: Verdict| {
            self.activity.rule(rule, verdict, || {
                let labels = DecisionLabels {
                    verdict: verdict.as_str().to_owned(),
                    rule: rule.to_owned(),
                };
                // A default never matches in shadow mode: no shadow series for it.
                let shadow = if rule.is_empty() {
                    striped::Counter::default()
                } else {
                    self.shadow.get_or_create(&labels).clone()
                };
                (self.decisions.get_or_create(&labels).clone(), shadow)
            })
        };
        let decided = snap.rules().iter().map(|r| history(&r.id, r.verdict)).collect();
        let defaults = Verdict::ALL.map(|v| history("", v));
        let shadow = snap
            .rules()
            .iter()
            .filter(|r| r.mode == editgate_core::policy::Mode::Shadow)
            .map(|r| (r.id.clone(), history(&r.id, r.verdict)))
            .collect();
        RuleCounters {
            decided,
            defaults,
            shadow,
        }
    }

    /// Counts one fetch of a url source by its result label.
    pub fn fetched(&self, source: &str, result: &'static str) {
        self.source_fetches
            .get_or_create(&FetchLabels {
                source: source.to_owned(),
                result,
            })
            .inc();
    }

    /// Counts a request to `method` that got no decision: a malformed one under
    /// `editgate_invalid_requests_total`, one refused at the concurrency limit under
    /// `editgate_requests_shed_total`, as is one refused because its offload queue is full
    /// (starting and deadlines show in health and latency).
    pub fn refused(&self, method: &str, e: &super::RequestError) {
        let family = match e {
            e if e.is_invalid() => &self.invalid,
            super::RequestError::Overloaded | super::RequestError::Busy(_) => &self.shed,
            _ => return,
        };
        family
            .get_or_create(&MethodLabel {
                method: method.to_owned(),
            })
            .inc();
    }

    /// Renders the text exposition, refreshing the gauges that depend on the time.
    pub fn render(&self, live: &super::Live, health: &super::health::Health, cache: &FactsCache) -> String {
        let now = Timestamp::now();
        let log = &health.decision_log;
        self.log_written.set(log.written);
        self.log_dropped.set(log.dropped);
        self.log_errors.set(log.errors);
        self.cache_hits.set(cache.hits());
        self.cache_misses.set(cache.misses());
        self.cache_entries.set(cache.len());
        self.generation.set(live.generation);
        self.snapshot_age.set(secs_between(live.loaded_at, now));
        use super::health::Status;
        self.ready.set(u64::from(health.status != Status::Starting));
        self.degraded.set(u64::from(health.status == Status::Degraded));
        self.problems.set(health.problems.len() as u64);
        if let Some(r) = &health.last_reload {
            self.last_reload_ok.set(u64::from(r.ok));
            self.last_reload_time.set(r.time.as_millisecond() as f64 / 1000.0);
        }
        // Rebuilt each time: a source's `from` can change with a reload.
        self.source_time.clear();
        for s in &health.sources {
            if let (Some(t), Some(from)) = (s.data_time, s.data_time_from) {
                self.source_time
                    .get_or_create(&SourceTimeLabels {
                        source: s.name.clone(),
                        from,
                    })
                    .set(t.as_millisecond() as f64 / 1000.0);
            }
            let l = SourceLabel { source: s.name.clone() };
            self.source_entries.get_or_create(&l).set(s.entries as u64);
            if let Some(age) = s.data_age_seconds {
                self.source_age.get_or_create(&l).set(age);
            }
            self.source_stale.get_or_create(&l).set(u64::from(s.stale));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn secs_between(a: Timestamp, b: Timestamp) -> f64 {
    (b.as_millisecond() - a.as_millisecond()).max(0) as f64 / 1000.0
}
