//! editgate's integration tests, one binary.
//!
//! - `sources`: the parsers on the real data in `tests/fixtures/` (Tor, X4BNet, MaxMind).
//! - `policy`: checker errors with positions, lints, and the evaluation order through the
//!   library API.
//! - `index_prop`: property test: the index agrees with a naive linear scan.
//! - `parsers_prop`: property tests: parsers never panic, accepted lists round-trip.
//! - `cli`: the real `editgate` binary (check, explain, validate, test; exit codes).
//! - `grpc`: the service over a real tonic client, in-process and as the real binary.
//! - `fail_closed`: issue 12: shrunken and emptied lists, half-written and replaced policy
//!   directories, health that says `degraded`, special files, shutdown with open streams,
//!   idle connections, odd wiki ids, host bits, error quality.
//! - `common`: helpers (temporary policy directories, fixture paths).

#![allow(clippy::unwrap_used)]

mod cli;
mod common;
mod fail_closed;
mod fuzz_regressions;
mod grpc;
mod index_prop;
mod live;
mod ops;
mod parsers_prop;
mod policy;
mod sources;
