//! Keeps `url` sources current in a running service: fetches each one every `refresh`
//! (sooner after a failure, with backoff), on a blocking thread so a slow origin never touches
//! the request path, and reloads when a new copy was saved. A "not modified" answer only marks
//! the serving data as confirmed; no rebuild. Failures and rejected data leave the last good
//! copy serving. The service is a [`Host`]: this module knows nothing else of it.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use editgate_core::engine::Snapshot;

use super::{FetchBook, FetchError, Fetched, ShrinkGuard, fetch, label};

/// What the schedule needs from the service whose sources it keeps current.
pub trait Host: Send + Sync + 'static {
    /// A hold on the serving snapshot.
    type Serving: Deref<Target = Snapshot> + Send + Sync;
    /// The serving snapshot.
    fn serving(&self) -> Self::Serving;
    /// The policy directory (a source's `path` is relative to it).
    fn policies(&self) -> &Path;
    /// Where fetch results and confirmations are kept.
    fn book(&self) -> &FetchBook;
    /// Counts a fetch of `source` with its result's label.
    fn counted(&self, source: &str, result: &'static str);
    /// Reloads after a new copy was saved.
    fn reload(self: &Arc<Self>) -> impl Future<Output = ()> + Send;
}

/// First retry after a failure; doubles per failure up to `MAX_BACKOFF` (or `refresh`).
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

fn backoff(failures: u32, refresh: Duration) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(10));
    exp.min(MAX_BACKOFF).min(refresh)
}

/// Fetches the sources of `host` when each is due, until the task is dropped.
pub async fn run<H: Host>(host: Arc<H>) {
    // Next fetch per (source name, url).
    let mut due: HashMap<(String, String), Instant> = HashMap::new();
    loop {
        let serving = host.serving();
        let now = Instant::now();
        let mut updated = false;
        // The serving sources, then those a policy waiting to load needs first.
        let pending = host.book().pending();
        let fetched_now = serving.policy.sources.iter().enumerate().map(|(i, d)| (Some(i), d));
        let waiting = pending
            .iter()
            .filter(|p| {
                !serving
                    .policy
                    .sources
                    .iter()
                    .any(|s| s.name == p.name && s.remote == p.remote)
            })
            .map(|d| (None, d));
        for (i, def) in fetched_now.chain(waiting) {
            let Some(remote) = &def.remote else { continue };
            let refresh = Duration::from_secs(remote.refresh_secs as u64);
            let key = (def.name.clone(), remote.url.clone());
            let next = *due.entry(key.clone()).or_insert_with(|| {
                // After a restart, a copy younger than `refresh` waits out the rest.
                let age = i
                    .and_then(|i| serving.sources().get(i))
                    .and_then(|s| s.data_age_secs(Timestamp::now(), host.book().confirmed(&s.name)));
                match age {
                    Some(age) if age < refresh.as_secs_f64() => now + (refresh - Duration::from_secs_f64(age)),
                    _ => now,
                }
            });
            if next > now {
                continue;
            }
            let dir = host.policies().to_path_buf();
            let d = def.clone();
            let guard = ShrinkGuard {
                // A source the serving snapshot has: its copy is the baseline (a pending one
                // has none yet).
                serving: i.and_then(|_| editgate_core::shrink::baseline(&serving, def)),
                accept: false,
            };
            let outcome = tokio::task::spawn_blocking(move || fetch(&dir, &d, Timestamp::now(), guard))
                .await
                .unwrap_or_else(|e| Err(FetchError::Lost(e.to_string())));
            host.counted(&def.name, label(&outcome));
            let failures = host.book().record(&def.name, &outcome, Timestamp::now());
            let wait = match &outcome {
                Ok(Fetched::Updated { entries, bytes }) => {
                    tracing::info!(source = %def.name, entries, bytes, "fetch: new data saved");
                    updated = true;
                    refresh
                }
                Ok(Fetched::NotModified) => {
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
        drop(serving);
        if updated {
            host.reload().await;
        }
        // Forget sources that left the policy (serving or waiting).
        let serving = host.serving();
        let pending = host.book().pending();
        due.retain(|(name, url), _| {
            serving
                .policy
                .sources
                .iter()
                .chain(&pending)
                .any(|s| &s.name == name && s.remote.as_ref().is_some_and(|r| &r.url == url))
        });
        drop(serving);
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
