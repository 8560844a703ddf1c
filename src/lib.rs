//! editgate decides, for every wiki edit attempt, `allow`, `require-login` or `block`.
//!
//! # Layout
//! - [`attempt`]: the edit attempt (IP, forwarded-for chain, account, wiki, action), normalized.
//! - [`decision`]: verdicts, the decision and its trace.
//! - [`policy`]: TOML policy files → raw serde structs → checked [`policy::Policy`], with
//!   `file:line:col` errors, did-you-mean hints and lint warnings.
//! - [`sources`]: pure parsers for Tor exit lists, IP lists and MaxMind databases (bytes in,
//!   data out).
//! - [`index`]: one sorted-range index over every list source and inline rule network.
//! - [`engine`]: the compiled [`engine::Snapshot`] and [`engine::decide`], pure and infallible.
//! - [`facts`]: per-IP facts behind a bounded moka cache (server side).
//! - [`load`]: reads a policy directory and its data files from disk into a snapshot.
//! - [`pace`]: lets the long loops of a snapshot build step off the core on a busy host.
//! - [`synth`]: deterministic synthetic prefixes, addresses and policies for benches and
//!   the load generator.
//! - [`testcases`]: the `tests/*.toml` policy test cases and their runner.
//! - [`server`]: the gRPC service, metrics, cache and hot reload (the only async part).
//! - [`cli`]: the `editgate` subcommands.
//!
//! Dependencies point toward the pure core: `policy`, `sources`, `index` and `engine` use no
//! tokio, tonic or moka, so the CLI, the server, the tests and the benches call the same code.

pub mod attempt;
pub mod cli;
pub mod decision;
pub mod engine;
pub mod facts;
pub mod fetch;
#[doc(hidden)]
pub mod fuzzing;
pub mod index;
pub mod load;
pub mod pace;
pub mod policy;
pub mod server;
pub mod sources;
pub mod synth;
pub mod testcases;
