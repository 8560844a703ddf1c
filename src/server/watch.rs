//! What triggers a reload: SIGHUP, and a watcher on the policy directory and on every source
//! file outside it. Each trigger calls [`State::reload_for`], which builds the new snapshot
//! on a dedicated low-priority thread and swaps it in atomically.
//!
//! The watcher waits until the files are quiet ([`super::Config::debounce`] without an
//! event) and until no file is still open for writing: a file written in place in several
//! parts is never read half-written (the atomic way, a rename into place, needs neither).
//! It watches the policy directory's path, not only the directory it found at start: when
//! the directory is replaced (`mv` and copy back, or `ln -sfn v2 current`), the next event
//! or SIGHUP finds the new one and watches it.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{BackgroundTask, ServeError, State, Trigger};

/// How long a file may stay open for writing before the watcher reloads anyway (a writer
/// that never closes must not stop reloads for good).
const MAX_WRITER_WAIT: Duration = Duration::from_secs(30);

/// The policy directory as configured, made absolute, and what it resolves to now.
struct Root {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl Root {
    fn new(configured: &Path) -> Self {
        let path = std::path::absolute(configured).unwrap_or_else(|_| configured.to_owned());
        let identity = identity(&path);
        Self { path, identity }
    }
}

/// Device and inode of what `path` resolves to (symbolic links followed).
fn identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::canonicalize(path)
            .ok()
            .map(|p| (0, p.as_os_str().len() as u64))
    }
}

/// Directories to watch besides the policy directory: the parent of every input outside it.
/// Directories rather than files, because tools replace files by renaming a new one into
/// place, which a watch on the old file would miss.
fn outside_dirs(state: &State, root: &Path) -> BTreeSet<PathBuf> {
    state
        .current()
        .inputs
        .iter()
        .filter_map(|input| {
            let input = std::path::absolute(input).unwrap_or_else(|_| input.clone());
            (!input.starts_with(root))
                .then(|| input.parent().map(Path::to_owned))
                .flatten()
        })
        .collect()
}

fn watch(watcher: &mut impl Watcher, dir: &Path, mode: RecursiveMode) {
    if let Err(e) = watcher.watch(dir, mode) {
        tracing::warn!(dir = %dir.display(), "cannot watch for changes: {e}");
    }
}

/// Whether an event is one of editgate's own writes: a `url` source's copy, its sidecar or
/// a temporary file (the fetcher reloads by itself after saving new data, and a sidecar
/// update needs no rebuild), or the decision log.
fn own_write(state: &State, root: &Path, path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(log) = state.decision_log.path() {
        let log = std::path::absolute(&log).unwrap_or(log);
        let log_name = log.file_name().and_then(|n| n.to_str()).unwrap_or("\0");
        // The log and its rotated `.1`.
        if path == log || (path.parent() == log.parent() && name.starts_with(log_name)) {
            return true;
        }
    }
    let live = state.current();
    live.snapshot
        .policy
        .sources
        .iter()
        .filter(|s| s.remote.is_some())
        .any(|s| {
            let data = root.join(&s.path);
            let file = data.file_name().and_then(|n| n.to_str()).unwrap_or("");
            path == data
                || path == editgate_core::sidecar::meta_path(&data)
                || (path.parent() == data.parent() && name.starts_with(&format!(".{file}")) && name.contains(".tmp"))
        })
}

/// What the watcher thread passes on.
enum Seen {
    /// A file is being written (its data changed, and it was not closed yet).
    Writing(PathBuf),
    /// A file opened for writing was closed.
    Closed(PathBuf),
    /// Anything else that may change a load.
    Changed,
}

/// Starts the watcher. SIGHUP reaches it through [`State::request_reload`].
pub fn spawn_watcher(state: Arc<State>) -> Result<BackgroundTask, ServeError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    let mut requests = state.reload_requests();
    let mut root = Root::new(&state.config.policies);
    let owner = state.clone();
    let root_path = root.path.clone();
    let root_name = root_path.file_name().map(|n| n.to_owned());
    let root_parent = root_path.parent().map(Path::to_owned);
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<Event>| {
        let ev = match ev {
            Ok(ev) => ev,
            Err(_) => {
                let _ = tx.send(Seen::Changed);
                return;
            }
        };
        let relevant: Vec<&PathBuf> = ev
            .paths
            .iter()
            .filter(|p| {
                // In the parent directory only the policy directory's own entry matters.
                p.parent() != root_parent.as_deref() || p.file_name() == root_name.as_deref()
            })
            .filter(|p| !own_write(&owner, &root_path, p))
            .collect();
        if relevant.is_empty() && !ev.paths.is_empty() {
            return;
        }
        match ev.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                for p in relevant {
                    let _ = tx.send(Seen::Closed(p.clone()));
                }
            }
            // Reads (ours included) change nothing.
            EventKind::Access(_) => {}
            EventKind::Modify(ModifyKind::Data(_)) => {
                for p in relevant {
                    let _ = tx.send(Seen::Writing(p.clone()));
                }
            }
            _ => {
                let _ = tx.send(Seen::Changed);
            }
        }
    })?;
    watch(&mut watcher, &root.path, RecursiveMode::Recursive);
    if let Some(parent) = root.path.parent() {
        watch(&mut watcher, parent, RecursiveMode::NonRecursive);
    }
    let mut outside = outside_dirs(&state, &root.path);
    for dir in &outside {
        watch(&mut watcher, dir, RecursiveMode::NonRecursive);
    }
    let debounce = state.config.debounce;
    let task = tokio::spawn(async move {
        loop {
            let trigger = tokio::select! {
                seen = rx.recv() => match seen {
                    Some(seen) => {
                        let mut writing = HashSet::new();
                        note(&mut writing, seen);
                        settle(&mut rx, &mut writing, debounce).await;
                        Trigger::Watch
                    }
                    None => return,
                },
                asked = requests.changed() => match asked {
                    Ok(()) => *requests.borrow_and_update(),
                    Err(_) => return,
                },
            };
            let now = Root::new(&state.config.policies);
            if now.identity != root.identity {
                tracing::info!(dir = %now.path.display(), "the policy directory was replaced: watching the new one");
                let _ = watcher.unwatch(&root.path);
                watch(&mut watcher, &now.path, RecursiveMode::Recursive);
                root = now;
            }
            tracing::debug!(?trigger, "reloading");
            let _ = state.reload_for(trigger).await;
            let dirs = outside_dirs(&state, &root.path);
            for dir in outside.difference(&dirs) {
                let _ = watcher.unwatch(dir);
            }
            for dir in dirs.difference(&outside) {
                watch(&mut watcher, dir, RecursiveMode::NonRecursive);
            }
            outside = dirs;
        }
    });
    Ok(BackgroundTask::new(task))
}

fn note(writing: &mut HashSet<PathBuf>, seen: Seen) {
    match seen {
        Seen::Writing(p) => {
            writing.insert(p);
        }
        Seen::Closed(p) => {
            writing.remove(&p);
        }
        Seen::Changed => {}
    }
}

/// Waits until nothing happened for `debounce` and no file is still open for writing (at
/// most [`MAX_WRITER_WAIT`] for the latter), so an editor's write-rename-chmod sequence, a
/// `git pull` or a file written in several parts triggers one reload of the finished files.
async fn settle(rx: &mut mpsc::UnboundedReceiver<Seen>, writing: &mut HashSet<PathBuf>, debounce: Duration) {
    let started = Instant::now();
    loop {
        match tokio::time::timeout(debounce, rx.recv()).await {
            Ok(Some(seen)) => note(writing, seen),
            Ok(None) => return,
            Err(_) if writing.is_empty() => return,
            Err(_) if started.elapsed() >= MAX_WRITER_WAIT => {
                tracing::warn!(
                    files = ?writing,
                    "files still open for writing after {}s: reloading anyway",
                    MAX_WRITER_WAIT.as_secs()
                );
                return;
            }
            Err(_) => tracing::debug!(files = ?writing, "waiting for files still open for writing"),
        }
    }
}

/// Reloads on every SIGHUP (what `systemctl reload` sends), for as long as the process runs:
/// through the watcher when there is one (it looks for a replaced policy directory first),
/// else directly.
#[cfg(unix)]
pub fn spawn_sighup(state: Arc<State>) -> Result<JoinHandle<()>, ServeError> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(ServeError::Signal)?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            if !state.request_reload(Trigger::Signal) {
                let _ = state.reload_for(Trigger::Signal).await;
            }
        }
    }))
}
