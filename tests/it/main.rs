//! editgate's integration tests, one binary.
//!
//! - `sources`: the parsers on the real data in `tests/fixtures/` (Tor, X4BNet, MaxMind).
//! - `policy`: checker errors with positions, lints, loading, the decision log settings.
//! - `evaluation`: the evaluation order, `xff`, `unless`, the policy version, and the hot
//!   path against the traced path, through the library API.
//! - `index_prop`, `parsers_prop`: property tests: the index agrees with a linear scan;
//!   parsers never panic, accepted lists round-trip.
//! - `fuzz_regressions`: inputs the fuzz targets once found, replayed.
//! - `cli`: the real `editgate` binary (check, explain, validate, test, fetch; exit codes).
//! - `grpc`: the service through a real tonic client, and the HTTP/JSON API beside it.
//! - `lifecycle`: reloads, shutdown, and the real `editgate serve` binary under signals.
//! - `console`: the admin console over HTTP, and in headless Chromium.
//! - `decision_log`: hashes and prefixes, never a raw address; sampling and rotation.
//! - `live`: `url` sources fetched from a local origin that misbehaves on demand.
//! - `ops`: load shedding, deadlines, TLS and mutual TLS on both ports, systemd readiness.
//! - `production`: the production example: files, and its live sources awaiting a fetch.
//! - `fail_closed`: issue 12, one test per way the service once failed open (see its index).
//! - `common`: temporary policy directories, fixture paths, the binary;
//!   `server`: an in-process server on `127.0.0.1:0` and loopback clients for it.

#![allow(clippy::unwrap_used)]

mod cli;
mod common;
mod console;
mod decision_log;
mod evaluation;
mod fail_closed;
mod fuzz_regressions;
mod grpc;
mod index_prop;
mod lifecycle;
mod live;
mod ops;
mod parsers_prop;
mod policy;
mod production;
mod server;
mod sources;
