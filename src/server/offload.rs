//! Work that must never run on the request threads: `explain` (both ports) and the console's
//! pages. Each takes milliseconds of CPU on a large policy (every rule visited and described),
//! and on the runtime's few threads a few callers at once would hold `/v1/check` past the
//! wikis' timeout, so each kind of work has a pool of its own: a few dedicated threads at lowered
//! priority (as reloads run), a bounded queue in front of them, and a deadline on the wait.
//! A full queue is refused at once ([`RequestError::Busy`]: 503 / `RESOURCE_EXHAUSTED`), and
//! work whose caller has given up by the time a thread is free is skipped.
//!
//! tokio's blocking pool is not used: it grows to hundreds of threads on demand, which is
//! what bounding this work must prevent, and a priority set on one of its threads would stay
//! with it for unrelated work.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::RequestError;

type Job = Box<dyn FnOnce() + Send>;

/// A pool of threads for one kind of work; its threads end when it is dropped.
pub(crate) struct Offload {
    /// What the pool runs (`explain`, `console`), for errors and thread names.
    what: &'static str,
    jobs: SyncSender<Job>,
}

impl Offload {
    /// `threads` threads (at least 1) behind a queue of `queue` waiting jobs.
    pub(crate) fn new(what: &'static str, threads: usize, queue: usize) -> Self {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("editgate-{what}-{i}"))
                .spawn(move || work(&rx));
            if let Err(e) = spawned {
                // The pool runs with the threads it got; with none, every job times out.
                tracing::error!("cannot start a {what} thread: {e}");
            }
        }
        Self { what, jobs }
    }

    /// Runs `work` on the pool and waits at most `deadline` for its result; refuses at once
    /// when the queue is full.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        deadline: Duration,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RequestError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller gave up (its deadline passed, or its client left): nothing to do.
            if !tx.is_closed() {
                let _ = tx.send(work());
            }
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(RequestError::Busy(self.what)),
            Err(TrySendError::Disconnected(_)) => {
                return Err(RequestError::Internal(format!("the {} threads are gone", self.what)));
            }
        }
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(RequestError::Internal(format!("the {} work failed", self.what))),
            Err(_) => Err(RequestError::Deadline(deadline)),
        }
    }
}

/// A pool thread: runs jobs until the pool is dropped. A job that panics ends only itself
/// (its caller gets an error).
fn work(jobs: &Mutex<Receiver<Job>>) {
    super::reload::lower_priority();
    loop {
        let job = match super::lock(jobs).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_off_the_caller_and_refuses_past_its_queue() {
        let pool = Offload::new("test", 1, 1);
        let on = pool
            .run(Duration::from_secs(5), || {
                std::thread::current().name().map(str::to_owned)
            })
            .await
            .unwrap();
        assert_eq!(on.as_deref(), Some("editgate-test-0"));
        // One job running (held on a gate), one waiting: the third is refused at once.
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let held = {
            let gate = gate.clone();
            pool.run(Duration::from_secs(5), move || {
                let _ = super::super::lock(&gate).recv();
            })
        };
        // The first job reaches the thread, then the second the queue.
        let waiting = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            pool.run(Duration::from_secs(5), || 2).await
        };
        let (held, waiting, refused) = tokio::join!(held, waiting, async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let refused = pool.run(Duration::from_secs(5), || 3).await;
            open.send(()).unwrap();
            refused
        });
        assert!(matches!(refused, Err(RequestError::Busy("test"))), "{refused:?}");
        assert!(held.is_ok());
        assert_eq!(waiting.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_deadline_ends_the_wait_and_a_panic_only_its_job() {
        let pool = Offload::new("test", 1, 4);
        let slow = pool
            .run(Duration::from_millis(50), || {
                std::thread::sleep(Duration::from_millis(300))
            })
            .await;
        assert!(matches!(slow, Err(RequestError::Deadline(_))), "{slow:?}");
        let panicked = pool.run(Duration::from_secs(5), || panic!("a bug")).await;
        assert!(matches!(panicked, Err(RequestError::Internal(_))), "{panicked:?}");
        assert_eq!(
            pool.run(Duration::from_secs(5), || 7).await.unwrap(),
            7,
            "the thread lives on"
        );
    }
}
