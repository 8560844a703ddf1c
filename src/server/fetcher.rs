//! Keeps `url` sources current: fetches each one every `refresh` (sooner after a failure,
//! with backoff), on a blocking thread so a slow origin never touches the request path, and
//! reloads when a new copy was saved. A "not modified" answer only marks the serving data as
//! confirmed; no rebuild. Failures and rejected data leave the last good copy serving.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

use super::State;
use crate::fetch::{FetchError, Fetched, ShrinkGuard, fetch, label};

/// What the health endpoint shows of a `url` source's fetching.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FetchStatus {
    /// When the last fetch finished.
    pub last_attempt: Option<Timestamp>,
    /// When a fetch last succeeded (updated or not modified).
    pub last_success: Option<Timestamp>,
    /// `updated`, `not_modified`, `rejected` or `failed`.
    pub last_result: Option<&'static str>,
    /// Why the last fetch failed or was rejected.
    pub last_error: Option<String>,
    /// Failed or rejected fetches in a row.
    pub consecutive_failures: u32,
}

/// First retry after a failure; doubles per failure up to `MAX_BACKOFF` (or `refresh`).
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

fn backoff(failures: u32, refresh: Duration) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(10));
    exp.min(MAX_BACKOFF).min(refresh)
}

/// Runs until the returned task is dropped.
pub fn spawn(state: Arc<State>) -> super::BackgroundTask {
    super::BackgroundTask::new(tokio::spawn(run(state)))
}

async fn run(state: Arc<State>) {
    // Next fetch per (source name, url).
    let mut due: HashMap<(String, String), Instant> = HashMap::new();
    loop {
        let live = state.current();
        let now = Instant::now();
        let mut updated = false;
        // The serving sources, then those a policy waiting to load needs first.
        let pending = state.pending_fetch();
        let serving = live
            .snapshot
            .policy
            .sources
            .iter()
            .enumerate()
            .map(|(i, d)| (Some(i), d));
        let waiting = pending
            .iter()
            .filter(|p| {
                !live
                    .snapshot
                    .policy
                    .sources
                    .iter()
                    .any(|s| s.name == p.name && s.remote == p.remote)
            })
            .map(|d| (None, d));
        for (i, def) in serving.chain(waiting) {
            let Some(remote) = &def.remote else { continue };
            let refresh = Duration::from_secs(remote.refresh_secs as u64);
            let key = (def.name.clone(), remote.url.clone());
            let next = *due.entry(key.clone()).or_insert_with(|| {
                // After a restart, a copy younger than `refresh` waits out the rest.
                let age = i
                    .and_then(|i| live.snapshot.sources().get(i))
                    .and_then(|s| s.data_age_secs(Timestamp::now(), state.confirmed(&s.name)));
                match age {
                    Some(age) if age < refresh.as_secs_f64() => now + (refresh - Duration::from_secs_f64(age)),
                    _ => now,
                }
            });
            if next > now {
                continue;
            }
            let dir = state.config.policies.clone();
            let d = def.clone();
            let guard = ShrinkGuard {
                // A source the serving snapshot has: its copy is the baseline (a pending one
                // has none yet).
                serving: i.and_then(|_| editgate_core::shrink::baseline(&live.snapshot, def)),
                accept: false,
            };
            let outcome = tokio::task::spawn_blocking(move || fetch(&dir, &d, Timestamp::now(), guard))
                .await
                .unwrap_or_else(|e| Err(FetchError::Lost(e.to_string())));
            let finished = Timestamp::now();
            state.metrics.fetched(&def.name, label(&outcome));
            let failures = state.record_fetch(&def.name, &outcome, finished);
            let wait = match &outcome {
                Ok(Fetched::Updated { entries, bytes }) => {
                    tracing::info!(source = %def.name, entries, bytes, "fetch: new data saved");
                    updated = true;
                    refresh
                }
                Ok(Fetched::NotModified) => {
                    state.confirm(&def.name, finished);
                    tracing::debug!(source = %def.name, "fetch: not modified");
                    refresh
                }
                Err(why) => {
                    let wait = backoff(failures, refresh);
                    tracing::warn!(
                        source = %def.name,
                        result = label(&outcome),
                        failures,
                        retry_in_secs = wait.as_secs(),
                        "fetch: keeping the last good copy: {why}"
                    );
                    wait
                }
            };
            due.insert(key, Instant::now() + wait);
        }
        if updated {
            let _ = state.reload_for(super::Trigger::Fetch).await;
        }
        // Forget sources that left the policy (serving or waiting).
        let current = state.current();
        let pending = state.pending_fetch();
        due.retain(|(name, url), _| {
            current
                .snapshot
                .policy
                .sources
                .iter()
                .chain(&pending)
                .any(|s| &s.name == name && s.remote.as_ref().is_some_and(|r| &r.url == url))
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_by_refresh_and_maximum() {
        let hour = Duration::from_secs(3600);
        assert_eq!(backoff(1, hour), Duration::from_secs(5));
        assert_eq!(backoff(2, hour), Duration::from_secs(10));
        assert_eq!(backoff(4, hour), Duration::from_secs(40));
        assert_eq!(backoff(30, hour), MAX_BACKOFF);
        assert_eq!(backoff(3, Duration::from_secs(7)), Duration::from_secs(7));
    }
}
