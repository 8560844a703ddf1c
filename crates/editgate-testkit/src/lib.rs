//! Test support for editgate, shared by the integration tests, the benches, the fuzzers and
//! `cargo xtask`; never part of the product.
//!
//! # Layout
//! - [`dirs`]: temporary policy directories, copies of the shipped policy, fixture paths.
//! - [`origin`]: a misbehaving HTTP origin on loopback for `url` sources (good lists, 304,
//!   errors, garbage, hangs, truncated bodies).
//! - [`synth`]: deterministic synthetic prefixes, addresses and policy directories.
//! - [`fuzzing`]: the properties the fuzz targets check, replayed by `cargo test` too.
//! - [`man`]: the man pages rendered from the CLI definition (for `cargo xtask man`).

pub mod dirs;
pub mod fuzzing;
pub mod man;
pub mod origin;
pub mod synth;
