//! The TorBlock migration policy (`examples/torblock/policies`): its files validate as CI
//! checks them, and on Onionoo's answer as its data its own cases pass (what TorBlock does
//! with its defaults). The e2e test compares it with TorBlock itself in a real wiki.

use std::path::PathBuf;

use crate::common::{editgate, fixture, policy_dir};

fn torblock() -> PathBuf {
    crate::common::repo().join("examples/torblock/policies")
}

#[test]
fn the_torblock_policy_files_validate_without_their_data() {
    let stdout = crate::common::validate_files(&torblock());
    assert!(
        stdout.contains("policy files valid (data not read): 2 rules, 1 source, 0 wiki files, 0 warnings"),
        "{stdout}"
    );
}

#[test]
fn the_torblock_policy_does_what_torblock_does() {
    // Onionoo's answer as the last good copy (one exit: enough here), in a temporary root.
    let root = tempfile::tempdir().unwrap();
    let global = std::fs::read_to_string(torblock().join("global.toml")).unwrap();
    let copy = root.path().join("tor-onionoo.json");
    std::fs::copy(fixture("tor/onionoo-details-2021-10-09.json"), &copy).unwrap();
    let global = global
        .replace(
            "/var/lib/editgate/sources/tor-onionoo.json",
            &copy.display().to_string(),
        )
        .replace("min_entries = 500", "min_entries = 1");
    let cases = std::fs::read_to_string(torblock().join("tests/torblock.toml")).unwrap();
    let dir = policy_dir(&[("global.toml", &global), ("tests/torblock.toml", &cases)]);
    let out = editgate().arg("test").arg(dir.path()).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("11 passed, 0 failed"), "{stdout}");
}
