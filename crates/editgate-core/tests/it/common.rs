//! Helpers shared by the core's integration tests.

use std::path::PathBuf;

use editgate_core::attempt::{AccountKind, Attempt, AttemptBuilder, parse_ip};
use editgate_core::load::{LoadError, Loaded, load_dir};
use jiff::Timestamp;

pub use editgate_testkit::dirs::{copy_fixture, fixture, policy_dir, shipped_policies, shipped_with};

/// The repository's `tests/fixtures/`.
pub fn fixtures() -> PathBuf {
    editgate_testkit::dirs::repo().join("tests/fixtures")
}

/// The time the tests evaluate at.
pub fn now() -> Timestamp {
    "2026-11-25T12:00:00Z".parse().unwrap()
}

/// Loads a temporary policy directory holding `files`.
pub fn load(files: &[(&str, &str)]) -> Result<Loaded, LoadError> {
    let dir = policy_dir(files);
    load_dir(dir.path(), now())
}

/// The errors of a policy directory that must not load, one line each.
pub fn errors(files: &[(&str, &str)]) -> Vec<String> {
    match load(files) {
        Err(LoadError::Invalid(e)) => e.0.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("expected errors"),
    }
}

/// The parts of an `edit` attempt, to adjust before [`built`].
pub fn parts(ip: &str, wiki: &str, kind: AccountKind) -> AttemptBuilder {
    Attempt::builder(parse_ip("ip", ip).unwrap()).wiki(wiki).kind(kind)
}

/// The checked attempt.
pub fn built(parts: &AttemptBuilder) -> Attempt {
    parts.clone().build().unwrap()
}

/// An `edit` attempt.
pub fn attempt(ip: &str, wiki: &str, kind: AccountKind) -> Attempt {
    built(&parts(ip, wiki, kind))
}

/// A one-source policy's `[sources]` part (`bad.txt` holds the list).
pub const LISTS: &str = r#"
[sources.bad]
kind = "ip-list"
path = "bad.txt"
"#;
