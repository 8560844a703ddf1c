//! editgate's integration tests, one binary.
//!
//! The core's own tests (the policy language, evaluation, parsers, the index) live in
//! `crates/editgate-core/tests/`; these drive the service and the CLI around it.
//!
//! - `request_prop`: any text in a JSON request's fields: refused naming a field, or normalized.
//! - `fuzz_regressions`: inputs the fuzz targets once found, replayed.
//! - `cli`: the real `editgate` binary (check, explain, validate, test, fetch; exit codes).
//! - `grpc`: the service through a real tonic client, and the HTTP/JSON API beside it.
//! - `http_port`: `Host` names, JSON bodies, probes, and a large policy's console beside the API.
//! - `lifecycle`: reloads, shutdown, and the real `editgate serve` binary under signals.
//! - `console`: the admin console over HTTP, and in headless Chromium.
//! - `decision_log`: hashes and prefixes, never a raw address; sampling and rotation.
//! - `live`: `url` sources fetched from a local origin that misbehaves on demand.
//! - `ops`: load shedding, deadlines, TLS and mutual TLS on both ports, systemd readiness.
//! - `production`: the production example: files, and its live sources awaiting a fetch.
//! - `forwarded_for`: the forwarded-for attacks through the CLI, gRPC, HTTP and the console.
//! - `fail_closed`: one test per way the service once failed open (see its index).
//! - `common`: temporary policy directories, fixture paths, the binary;
//!   `server`: an in-process server on `127.0.0.1:0` and loopback clients for it.

#![allow(clippy::unwrap_used)]

mod cli;
mod common;
mod console;
mod decision_log;
mod fail_closed;
mod forwarded_for;
mod fuzz_regressions;
mod grpc;
mod http_port;
mod lifecycle;
mod live;
mod ops;
mod production;
mod request_prop;
mod server;
