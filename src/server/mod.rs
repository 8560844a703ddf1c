//! The service: the gRPC and HTTP ports, admission, health, metrics, hot reload and live
//! sources. This is the only async part of editgate; it decides with the same pure engine as
//! the CLI: [`State::check`] turns a wire request ([`crate::proto`]) into an
//! [`editgate_core::attempt::Attempt`], looks up the IP facts through the facts cache, and
//! calls [`editgate_core::engine::decide_with_facts`].
//!
//! The map:
//! - `state`: [`State`], what the tasks share (the serving snapshot, its metrics, the facts
//!   cache, admission, the decision log, the fetch book, the reload history and requests,
//!   the gRPC health statuses), each part made when the state is and handed to the tasks
//!   that use it; its decisions ([`State::check`], [`State::explain`]) and [`Config`];
//!   `reload` holds its reload (build, apply, reject, history) and `health` its health report;
//! - running: `serve` (both ports, the optional console and Unix-socket listeners, the
//!   drain at shutdown), `conn` (accepting under a connection cap, the first-bytes
//!   deadline), `tls`;
//! - the request path: `service` (the gRPC handlers), `http` (the HTTP port: the JSON
//!   API, `/metrics`, `/healthz`, the `Host` check), [`admission`] (concurrency limit and
//!   deadline for both ports), `error` (`RequestError`, one refusal type for every transport,
//!   and the server's other errors), `cache` (per-IP facts behind a bounded moka cache),
//!   `offload` (the pools that keep `explain` and console pages off the request threads);
//! - what the server reports: `metrics` (Prometheus), `activity` (per-rule minute
//!   history), `striped` (counters threads update without contention), `health` (`/healthz`
//!   and gRPC health), [`decision_log`] (the opt-in log), [`console`] (the read-only admin
//!   console);
//! - keeping the snapshot current: `reload` (building a snapshot off the request path and
//!   swapping it in), `watch` (SIGHUP and file watching); `url` sources are fetched on their
//!   schedule by [`crate::fetch::schedule`], for which the state is the host.

pub(crate) mod activity;
pub mod admission;
mod cache;
pub(crate) mod conn;
pub mod console;
pub mod decision_log;
mod error;
pub(crate) mod health;
pub(crate) mod http;
pub(crate) mod metrics;
mod offload;
mod reload;
mod serve;
pub(crate) mod service;
mod state;
mod striped;
pub(crate) mod tls;
pub(crate) mod watch;

pub use error::{ReloadError, RequestError, ServeError, TlsError};
pub use reload::{ReloadOutcome, ReloadRecord, Trigger};
pub use serve::{Listeners, UnixSocket, run, run_with};
pub use state::{BackgroundTask, Config, Live, State, TlsFiles, coarse_now};

/// Locks a mutex of plain data, whatever a panicking holder left behind.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
