//! editgate's decision core: for every wiki edit attempt, `allow`, `require-login` or
//! `block`, from a policy directory and the data its sources name.
//!
//! Pure by construction: no async runtime, network, cache or HTTP crate is a dependency of
//! this crate, so the service, the CLI, the tests and the benches all call the same code, and
//! the compiler keeps it that way. It touches the file system only to read a policy
//! directory ([`load`]) and the files beside a source's data ([`sidecar`]).
//!
//! # Layout
//! - [`attempt`]: the edit attempt (IP, forwarded-for chain, account, wiki, action), checked
//!   and normalized by its one constructor.
//! - [`decision`]: verdicts, the decision and its trace.
//! - [`policy`]: TOML policy files → raw serde structs → checked [`policy::Policy`], with
//!   `file:line:col` errors, did-you-mean hints and lint warnings.
//! - [`sources`]: pure parsers for Tor exit lists, IP lists and MaxMind databases (bytes in,
//!   data out).
//! - [`index`]: one sorted-range index over every list source and inline rule network.
//! - [`engine`]: the compiled [`engine::Snapshot`] and [`engine::decide`], pure and infallible.
//! - [`load`]: reads a policy directory and its data files into a snapshot, refusing broken,
//!   emptied or shrunken data.
//! - [`shrink`]: shrink protection (a list that lost too much of what it serves is refused
//!   unless an operator confirmed that copy), and those confirmations.
//! - [`files`]: reading only regular files, of bounded size; the checks on secret files.
//! - [`sidecar`]: the fetch record kept beside a fetched data file (validators, confirmations
//!   by the origin).
//! - [`pace`]: lets the long loops of a snapshot build give way to requests on a busy host.
//! - [`testcases`]: the `tests/*.toml` policy test cases and their runner.

pub mod attempt;
pub mod decision;
pub mod engine;
pub mod files;
pub mod index;
pub mod load;
pub mod pace;
pub mod policy;
pub mod shrink;
pub mod sidecar;
pub mod sources;
pub mod testcases;
