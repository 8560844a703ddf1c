//! The editgate service and command line, around the pure decision core
//! ([`editgate_core`]).
//!
//! # Layout
//! - [`server`]: the gRPC service, the HTTP/JSON API, health, metrics, hot reload, live
//!   sources, limits (the only async part).
//! - [`proto`]: the wire (`editgate.v1`): the generated types, their one JSON mapping, and the
//!   conversions to and from the domain types, shared by the server and the CLI.
//! - [`fetch`]: one conditional fetch of a `url` source, validated as a reload would, saved
//!   atomically.
//! - [`cli`]: the `editgate` subcommands.
//!
//! Dependencies point toward the core: this crate calls `editgate_core` to parse, check,
//! load and decide, and the core depends on nothing here.

pub mod cli;
pub mod fetch;
pub mod proto;
pub mod server;
