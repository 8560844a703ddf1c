//! Hot reload: a new snapshot is built off the request path, on a dedicated low-priority
//! thread, and swapped in atomically when it is valid and different. On any error the last
//! good snapshot keeps serving. What triggers a reload (SIGHUP, the file watcher, a fetch)
//! lives in [`super::watch`] and [`super::fetcher`].

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;

use editgate_core::load::{LoadError, LoadOptions, Loaded};

use super::state::set_health;
use super::{Live, ReloadError, State, lock};

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
pub(super) const RELOAD_HISTORY: usize = 20;

/// A load result with its warnings turned into errors when the settings deny them. Except
/// `expired-rule`: a date passing must never stop a server from starting or reloading (the
/// rule is skipped anyway); `validate --deny-warnings` still fails on it.
pub(super) fn deny_warnings(loaded: Result<Loaded, LoadError>, deny: bool) -> Result<Loaded, LoadError> {
    let denied = |w: &&editgate_core::policy::Warning| w.denied(true);
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
    /// Builds a new snapshot and swaps it in when it is valid and different (see
    /// [`State::reload_for`]); for callers outside the server's own triggers.
    pub async fn reload(&self) -> Result<ReloadOutcome, ReloadError> {
        self.reload_for(Trigger::Request).await
    }

    /// Builds a new snapshot on a dedicated low-priority thread and swaps it in when it is
    /// valid and different. A list that shrank past its `max_shrink` against the serving
    /// snapshot is invalid (see [`editgate_core::load::load`]). On error the old snapshot keeps
    /// serving, the errors are logged with their `file:line:col`,
    /// `editgate_reload_failures_total` goes up, and `/healthz` says `degraded` until a
    /// reload succeeds. Every attempt goes into the reload history.
    pub async fn reload_for(&self, trigger: Trigger) -> Result<ReloadOutcome, ReloadError> {
        let _serial = self.reload_lock.lock().await;
        let started = Instant::now();
        let old = self.current();
        let outcome = match self.build(old.clone()).await {
            Ok(loaded) => Ok(self.apply(loaded, &old, started).await),
            Err(e) => Err(self.reject(e)),
        };
        let current = self.current();
        self.reloads.push(ReloadRecord {
            time: Timestamp::now(),
            trigger,
            ok: outcome.is_ok(),
            error: outcome.as_ref().err().map(ToString::to_string),
            version: current.snapshot.version().to_owned(),
            generation: current.generation,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
        drop_in_background(old);
        outcome
    }

    /// Loads the policy directory against `previous` on a dedicated thread at a lower
    /// priority, paced (`editgate_core::pace`): rebuilding a large snapshot takes hundreds of
    /// milliseconds of CPU, and on a small host it must not hold a core for long while
    /// requests wait for it.
    async fn build(&self, previous: Arc<Live>) -> Result<Loaded, ReloadError> {
        let dir = self.config.policies.clone();
        let deny = self.config.deny_warnings;
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
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
            })
            .map_err(ReloadError::Spawn)?;
        rx.await.map_err(|_| ReloadError::Lost)?.map_err(ReloadError::from)
    }

    /// Swaps in a valid snapshot unless it is the serving one again (same version); the
    /// decision log takes its settings either way (its key file is not part of the version).
    async fn apply(&self, loaded: Loaded, old: &Live, started: Instant) -> ReloadOutcome {
        self.fetches.set_pending(Vec::new());
        self.decision_log.configure(loaded.decision_log.clone());
        self.metrics.reload_success.inc();
        if loaded.snapshot.version() == old.snapshot.version() {
            tracing::info!(version = old.snapshot.version(), "reload: inputs unchanged");
            drop_in_background(loaded);
            return ReloadOutcome::Unchanged;
        }
        for w in &loaded.warnings {
            tracing::warn!(lint = w.lint.as_str(), "{w}");
        }
        let generation = old.generation + 1;
        let live = Self::make_live(&self.metrics, loaded, generation);
        let version = live.snapshot.version().to_owned();
        let ready = live.starting.is_none();
        self.live.store(Arc::new(live));
        self.cache.clear();
        tracing::info!(
            generation,
            version = %version,
            previous = old.snapshot.version(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "reload: new snapshot serving"
        );
        set_health(&self.health, ready).await;
        ReloadOutcome::Swapped { generation, version }
    }

    /// Keeps the serving snapshot after a failed reload, says why, and notes the `url`
    /// sources the policy on disk waits for.
    fn reject(&self, e: ReloadError) -> ReloadError {
        self.decision_log.reopen();
        self.metrics.reload_failures.inc();
        for line in e.to_string().lines() {
            tracing::error!("reload rejected, previous snapshot keeps serving: {line}");
        }
        self.fetches.set_pending(unfetched_url_sources(&self.config.policies));
        e
    }
}

/// The last [`RELOAD_HISTORY`] loads and reloads, oldest first.
#[derive(Default)]
pub(super) struct History(std::sync::Mutex<std::collections::VecDeque<ReloadRecord>>);

impl History {
    /// Adds a record, forgetting the oldest past [`RELOAD_HISTORY`].
    pub(super) fn push(&self, record: ReloadRecord) {
        let mut history = lock(&self.0);
        if history.len() == RELOAD_HISTORY {
            history.pop_front();
        }
        history.push_back(record);
    }

    /// The records, oldest first.
    pub(super) fn records(&self) -> Vec<ReloadRecord> {
        lock(&self.0).iter().cloned().collect()
    }
}

/// The `url` sources of the policy on disk that have no copy yet: a reload that failed
/// because of them waits for the fetcher to save them. Reading and checking the policy
/// files (not the data) is cheap, and happens only after a failed reload.
pub(super) fn unfetched_url_sources(dir: &std::path::Path) -> Vec<editgate_core::policy::SourceDef> {
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

/// Frees a replaced snapshot on a low-priority thread. Freeing a 1M-prefix snapshot takes
/// milliseconds; on a request thread (where the reload's async task runs) that showed as a
/// latency spike right after every swap. A request still holding the old snapshot frees
/// nothing: the last holder does.
pub(super) fn drop_in_background<T: Send + 'static>(value: T) {
    let spawned = std::thread::Builder::new().name("editgate-free".into()).spawn(move || {
        lower_priority();
        drop(value);
    });
    if let Err(e) = spawned {
        tracing::debug!("freeing the old snapshot inline: {e}");
    }
}

/// Lowers the current thread's scheduling priority: `SCHED_BATCH` at nice 5 on Linux, so that
/// under full load the rebuild gives way to request threads without starving: normal priority
/// lets it hold a core while requests wait, `SCHED_IDLE` or a higher nice value stretch a
/// reload far past a second, and together with the paced rebuild (`editgate_core::pace`) nice
/// 5 keeps both the reload and the request tail short. `SCHED_BATCH` also keeps the rebuild
/// from preempting a request thread when it wakes from a pause. Lowering a priority needs no
/// privilege; on failure the thread keeps its priority.
pub(super) fn lower_priority() {
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
