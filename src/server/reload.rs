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

/// A running watcher task; aborts the task when dropped.
pub struct WatchTask(JoinHandle<()>);

impl Drop for WatchTask {
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

/// Starts the watcher. Changes are debounced by `settings.debounce`, so an editor's
/// write-rename-chmod sequence or a `git pull` triggers one reload.
pub fn spawn_watcher(state: Arc<State>) -> anyhow::Result<WatchTask> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| match ev {
        Ok(ev) if matches!(ev.kind, EventKind::Access(_)) => {}
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
    Ok(WatchTask(task))
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
