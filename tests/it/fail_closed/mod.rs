//! "Fail closed, never open": every way an operator mistake or a hostile file once
//! let Tor and VPN edits through, made a panic or hung the service, each through the real
//! binary or a real server, as an operator or a client would meet it.
//!
//! - `lists`: emptied and shrunken lists; `url` sources that were never fetched;
//! - `reloads`: half-written files, `--deny-warnings`, health that says `degraded`, a
//!   replaced policy directory;
//! - `inputs`: settings out of range, special and huge files, host bits, lints;
//! - `connections`: shutdown with open streams, idle connections;
//! - `requests`: one `Attempt` for every entry point, odd wiki ids, error quality, anonymous
//!   means no account.

mod connections;
mod inputs;
mod lists;
mod reloads;
mod requests;

use std::path::Path;
use std::time::Duration;

use crate::common::editgate;
pub(super) use crate::common::{copy_dir, shipped_copy};

pub(super) fn validate(dir: &Path) -> (i32, String) {
    let out = editgate()
        .arg("validate")
        .arg(dir)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

pub(super) const TOR_EXIT: &str = "162.247.74.201";
