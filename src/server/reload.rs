//! Hot reload triggers: SIGHUP, and a debounced watcher on the policy directory and on every
//! source file outside it. Each trigger calls [`State::reload`], which builds the new snapshot
//! on a dedicated low-priority thread and swaps it in atomically.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::State;

/// A running background task (watcher, fetcher); aborts the task when dropped.
pub struct BackgroundTask(JoinHandle<()>);

impl BackgroundTask {
    /// Owns `task`.
    pub fn new(task: JoinHandle<()>) -> Self {
        Self(task)
    }
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Directories to watch: the policy directory (recursively), plus the parent directory of
/// every input outside it. Directories rather than files, because tools replace files by
/// renaming a new one into place, which a watch on the old file would miss.
fn watch_set(state: &State) -> BTreeSet<(PathBuf, bool)> {
    let root = &state.settings.policies;
    let mut set = BTreeSet::from([(root.clone(), true)]);
    for input in &state.current().inputs {
        if !input.starts_with(root)
            && let Some(parent) = input.parent()
        {
            set.insert((parent.to_owned(), false));
        }
    }
    set
}

fn watch(watcher: &mut impl Watcher, dir: &std::path::Path, recursive: bool) {
    let mode = if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    if let Err(e) = watcher.watch(dir, mode) {
        tracing::warn!(dir = %dir.display(), "cannot watch for changes: {e}");
    }
}

/// Whether the fetcher writes `path`: a `url` source's copy, its sidecar, or a temporary file.
/// The fetcher reloads by itself after saving new data, and a sidecar update ("not modified")
/// needs no rebuild, so the watcher leaves these alone.
fn fetcher_owned(state: &State, path: &std::path::Path) -> bool {
    let dir = &state.settings.policies;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let live = state.current();
    live.snapshot
        .policy
        .sources
        .iter()
        .filter(|s| s.remote.is_some())
        .any(|s| {
            let data = dir.join(&s.path);
            let file = data.file_name().and_then(|n| n.to_str()).unwrap_or("");
            path == data
                || path == crate::fetch::meta_path(&data)
                || (path.parent() == data.parent() && name.starts_with(&format!(".{file}")) && name.contains(".tmp"))
        })
}

/// Starts the watcher. Changes are debounced by `settings.debounce`, so an editor's
/// write-rename-chmod sequence or a `git pull` triggers one reload.
pub fn spawn_watcher(state: Arc<State>) -> anyhow::Result<BackgroundTask> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let owner = state.clone();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| match ev {
        Ok(ev) if matches!(ev.kind, EventKind::Access(_)) => {}
        Ok(ev) if !ev.paths.is_empty() && ev.paths.iter().all(|p| fetcher_owned(&owner, p)) => {}
        _ => {
            let _ = tx.send(());
        }
    })?;
    let mut watched = watch_set(&state);
    for (dir, recursive) in &watched {
        watch(&mut watcher, dir, *recursive);
    }
    let debounce = state.settings.debounce;
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Wait for a quiet period.
            while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
            tracing::debug!("change detected, reloading");
            if state.reload().await.is_ok() {
                let now = watch_set(&state);
                for (dir, _) in watched.difference(&now) {
                    let _ = watcher.unwatch(dir);
                }
                for (dir, recursive) in now.difference(&watched) {
                    watch(&mut watcher, dir, *recursive);
                }
                watched = now;
            }
        }
    });
    Ok(BackgroundTask(task))
}

/// Reloads on every SIGHUP (what `systemctl reload` sends), for as long as the process runs.
#[cfg(unix)]
pub fn spawn_sighup(state: Arc<State>) -> anyhow::Result<JoinHandle<()>> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            let _ = state.reload().await;
        }
    }))
}
