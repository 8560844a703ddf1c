//! The core's integration tests, one binary, through the public API only (no service, no
//! network): `cargo test -p editgate-core` runs them.
//!
//! - `policy`: checker errors with positions, lints, loading, the decision log settings.
//! - `stages`: lints across stages (a rule that runs first takes away a later exemption),
//!   allowing a lint, and the appeal every refusal needs.
//! - `evaluation`: the evaluation order, `xff`, `unless`, the policy version, and the hot
//!   path against the traced path.
//! - `forwarded_for`: a forwarded-for address only ever makes a decision stricter: the
//!   attacks that once loosened one, and random policies checked on both paths.
//! - `sources`: the parsers on the real data in `tests/fixtures/` (Tor, X4BNet, MaxMind).
//! - `index_prop`, `parsers_prop`: property tests: the index agrees with a linear scan;
//!   parsers never panic, accepted lists round-trip.
//! - `common`: temporary policy directories, fixture paths, request helpers.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;
mod evaluation;
mod forwarded_for;
mod index_prop;
mod parsers_prop;
mod policy;
mod reputation;
mod sources;
mod stages;
