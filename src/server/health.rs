//! Whether the instance serves, and how well: one report that `/healthz`, the metrics and
//! the console all read, so they can never disagree.
//!
//! - `starting`: a `url` source has no data yet (first start only): nothing is decided, and
//!   `/healthz` answers 503, gRPC health NOT_SERVING.
//! - `degraded`: the last good snapshot serves (HTTP 200, SERVING), but something needs an
//!   operator: the last reload failed, a source is stale, empty or failing to fetch, or the
//!   decision log cannot write. Each problem is named in `problems`.
//! - `serving`: none of that.

use editgate_core::sources::human_secs;
use jiff::Timestamp;
use serde::Serialize;

use super::{ReloadRecord, State};
use crate::fetch::FetchStatus;

/// The instance's state, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not deciding yet.
    Starting,
    /// Deciding from the last good snapshot, with problems.
    Degraded,
    /// Deciding, no problems.
    Serving,
}

impl Status {
    /// `starting`, `degraded` or `serving`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Degraded => "degraded",
            Self::Serving => "serving",
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Overall.
    pub status: Status,
    /// Every problem, in words (never an address).
    pub problems: Vec<String>,
    /// The serving policy version.
    pub policy_version: String,
    /// The serving generation.
    pub generation: u64,
    /// When the serving snapshot was loaded.
    pub loaded_at: Timestamp,
    /// The last load or reload, failed or not.
    pub last_reload: Option<ReloadRecord>,
    /// Names of the stale sources.
    pub stale_sources: Vec<String>,
    /// Every source.
    pub sources: Vec<SourceHealth>,
    /// The decision log.
    pub decision_log: LogHealth,
}

/// One source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: &'static str,
    /// Networks, for lists.
    pub entries: usize,
    /// Seconds since the data was current, when known.
    pub data_age_seconds: Option<f64>,
    /// When the data was current (RFC 3339), when known.
    pub data_time: Option<jiff::Timestamp>,
    /// Where that time comes from: `data` (the data's own timestamps), `fetched` (a `url`
    /// source's last fetch or confirmation) or `file-modified`.
    pub data_time_from: Option<&'static str>,
    /// The same in words: `the data's own time (MaxMind build_epoch)`.
    pub data_time_detail: Option<String>,
    /// Older than `max_age` (or no data yet).
    pub stale: bool,
    /// What is wrong with it.
    pub problems: Vec<String>,
    /// For `url` sources: no good fetch yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaiting_first_fetch: Option<bool>,
    /// For `url` sources: the fetches since start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch: Option<FetchStatus>,
}

/// The decision log.
#[derive(Debug, Clone, Serialize)]
pub struct LogHealth {
    /// Whether `[settings.decision_log]` is on.
    pub enabled: bool,
    /// Lines written.
    pub written: u64,
    /// Lines dropped because the writer fell behind.
    pub dropped: u64,
    /// Lines lost to write errors.
    pub errors: u64,
    /// The error that stops writing now, if any.
    pub failing: Option<String>,
}

impl State {
    /// The report as of `now`.
    pub fn health(&self, now: Timestamp) -> Health {
        use std::sync::atomic::Ordering::Relaxed;
        let live = self.current();
        let mut problems = Vec::new();
        if let Some(why) = &live.starting {
            problems.push(why.clone());
        }
        let last_reload = self.reload_history().pop();
        if let Some(r) = last_reload.as_ref().filter(|r| !r.ok) {
            let first = r.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("");
            problems.push(format!(
                "the last reload ({:?} at {}) failed, so the snapshot loaded at {} keeps serving: {first}",
                r.trigger,
                r.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                live.loaded_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ));
        }
        let mut sources = Vec::new();
        let mut stale_sources = Vec::new();
        for s in live.snapshot.sources() {
            let confirmed = self.fetches.confirmed(&s.name);
            let current = s.current(confirmed);
            let age = s.data_age_secs(now, confirmed);
            let stale = s.is_stale(now, confirmed);
            let fetch = s.remote.then(|| self.fetches.status(&s.name)).flatten();
            let mut mine = Vec::new();
            if stale && !s.awaiting_first_fetch() {
                mine.push(format!(
                    "data is {} old, past `max_age = {}`",
                    human_secs(age.unwrap_or_default()),
                    editgate_core::policy::format_duration(s.max_age_secs.unwrap_or_default())
                ));
            }
            if s.kind.has_entries() && s.entries == 0 && !s.awaiting_first_fetch() {
                mine.push("holds no entries: its rules match nothing".to_owned());
            }
            if let Some(f) = fetch.as_ref().filter(|f| f.consecutive_failures > 0) {
                mine.push(format!(
                    "the last {} fetch{} failed: {}",
                    f.consecutive_failures,
                    if f.consecutive_failures == 1 { "" } else { "es" },
                    f.last_error.as_deref().unwrap_or("")
                ));
            }
            problems.extend(mine.iter().map(|p| format!("source `{}`: {p}", s.name)));
            if stale {
                stale_sources.push(s.name.clone());
            }
            sources.push(SourceHealth {
                name: s.name.clone(),
                kind: s.kind.as_str(),
                entries: s.entries,
                data_age_seconds: age,
                data_time: current.map(|t| t.at),
                data_time_from: current.map(|t| t.from.as_str()),
                data_time_detail: current.map(|t| t.from.describe()),
                stale,
                problems: mine,
                awaiting_first_fetch: s.remote.then(|| s.awaiting_first_fetch()),
                fetch,
            });
        }
        let stats = &self.decision_log.stats;
        // Only while logging is on: turning it off ends the problem.
        let enabled = self.decision_log.enabled();
        let failing = stats
            .failing()
            .filter(|_| enabled)
            .map(|(t, why)| format!("{why} (since {})", t.strftime("%Y-%m-%dT%H:%M:%SZ")));
        if let Some(why) = &failing {
            problems.push(format!("decision log: {why}"));
        }
        let status = if live.starting.is_some() {
            Status::Starting
        } else if problems.is_empty() {
            Status::Serving
        } else {
            Status::Degraded
        };
        Health {
            status,
            problems,
            policy_version: live.snapshot.version().to_owned(),
            generation: live.generation,
            loaded_at: live.loaded_at,
            last_reload,
            stale_sources,
            sources,
            decision_log: LogHealth {
                enabled,
                written: stats.written.load(Relaxed),
                dropped: stats.dropped.load(Relaxed),
                errors: stats.errors.load(Relaxed),
                failing,
            },
        }
    }
}
