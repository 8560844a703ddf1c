//! editgate's integration tests, one binary.
//!
//! The core's own tests (the policy language, evaluation, parsers, the index) live in
//! `crates/editgate-core/tests/`; these drive the service and the CLI around it.
//!
//! - `request_prop`: any text in a JSON request's fields: refused naming a field, or normalized.
//! - `fuzz_regressions`: inputs the fuzz targets once found, replayed.
//! - `cli`: the real `editgate` binary (check, explain, validate, test, fetch; exit codes).
//! - `grpc`: the service through a real tonic client, and the HTTP/JSON API beside it.
//! - `http_port`: `Host` names, JSON bodies, probes, and a large policy's console and explain
//!   calls beside the API.
//! - `lifecycle`: reloads, shutdown and draining, idle connections, and the real `editgate
//!   serve` binary under signals.
//! - `reload`: half-written policy files, `--deny-warnings`, health that says why, a
//!   replaced policy directory or symbolic link.
//! - `sources`: lists that empty or shrink, `url` sources never fetched (no decisions
//!   without data).
//! - `files`: policy and data files the loader refuses (special and huge files, host bits,
//!   empty tables) and `serve` settings out of range.
//! - `requests`: the request boundary: every entry point checks and normalizes alike, odd
//!   wiki ids, error quality on both ports, anonymous means no account.
//! - `console`: the admin console over HTTP, and in headless Chromium.
//! - `decision_log`: hashes and prefixes, never a raw address; sampling and rotation.
//! - `live`: `url` sources fetched from a local origin that misbehaves on demand.
//! - `admission`: load shedding, deadlines, size and chain limits.
//! - `tls`: TLS and mutual TLS on both ports, unusable or exposed TLS files.
//! - `unix_socket`: the API on a Unix-domain socket: its mode, and one instance never taking
//!   the socket of another.
//! - `production`: the production example: files, and its live sources awaiting a fetch.
//! - `forwarded_for`: the forwarded-for attacks through the CLI, gRPC, HTTP and the console.
//! - `common`: temporary policy directories, fixture paths, the binary;
//!   `server`: an in-process server on `127.0.0.1:0` and loopback clients for it.
//!
//! What each fail-closed protection is and where its test is: docs/development.md.

#![allow(clippy::unwrap_used)]

mod admission;
mod cli;
mod common;
mod console;
mod decision_log;
mod files;
mod forwarded_for;
mod fuzz_regressions;
mod grpc;
mod http_port;
mod lifecycle;
mod live;
mod production;
mod reload;
mod reputation;
mod request_prop;
mod requests;
mod server;
mod sources;
mod tls;
mod torblock_example;
mod unix_socket;

/// The table of fail-closed protections in docs/development.md names tests that exist.
#[test]
fn the_fail_closed_table_names_existing_tests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/development.md")).unwrap();
    let table = doc
        .split("## Fail-closed protections and their tests")
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
        .expect("the table's section");
    let mut checked = 0;
    for cell in table.split('`').skip(1).step_by(2) {
        let Some((module, test)) = cell.split_once("::") else {
            continue;
        };
        if module == "editgate_core" {
            continue; // the core's unit tests
        }
        let file = root.join("tests/it").join(format!("{module}.rs"));
        assert!(
            file.is_file(),
            "docs/development.md names {cell}: there is no tests/it/{module}.rs"
        );
        let source = std::fs::read_to_string(&file).unwrap();
        assert!(
            source.contains(&format!("fn {test}(")),
            "docs/development.md names {module}::{test}, which does not exist"
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} tests named");
}
