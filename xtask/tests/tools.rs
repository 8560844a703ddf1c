//! The development tools run briefly, end to end: the load generator against the real
//! service and a trivial baseline, reloads under load, the footprint of the real binary, and
//! a short soak. They saturate the machine for seconds, so they are not part of `cargo test`
//! at the root; CI runs them as a step of their own (`cargo test -p xtask`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The debug `editgate` binary, built once for these tests (the tools run whatever
/// `EDITGATE_BIN` names).
fn editgate_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--package", "editgate", "--bin", "editgate"])
            .current_dir(workspace())
            .status()
            .unwrap();
        assert!(status.success());
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
        target.join("debug").join("editgate")
    })
}

fn xtask() -> Command {
    let mut c = Command::cargo_bin("xtask").unwrap();
    c.env("EDITGATE_BIN", editgate_bin()).timeout(Duration::from_secs(120));
    c
}

#[test]
fn loadgen_measures_editgate_and_the_baseline_on_loopback() {
    let out = xtask()
        .args([
            "loadgen",
            "--seconds",
            "1",
            "--rounds",
            "1",
            "--connections",
            "1",
            "--concurrency",
            "2",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for want in [
        "unary editgate",
        "unary trivial baseline",
        "unary ratio editgate/trivial:",
        "stream editgate",
        "stream ratio",
        "failed 0",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn loadgen_reloads_under_load_and_measures_footprint() {
    let out = xtask()
        .args([
            "loadgen",
            "--synth-prefixes",
            "2000",
            "--mode",
            "unary",
            "--no-baseline",
        ])
        .args([
            "--seconds",
            "2",
            "--rounds",
            "1",
            "--connections",
            "1",
            "--concurrency",
            "2",
            "--reloads",
            "2",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("reloads: 2 done (0 failed)")
            && text.contains("failed requests 0")
            && text.contains("generation 3"),
        "{text}"
    );
    xtask()
        .args(["loadgen", "--synth-prefixes", "2000", "--footprint"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"first answer \d+ ms after start; RSS \d+ kB").unwrap());
}

#[test]
fn loadgen_refuses_non_loopback_targets() {
    xtask()
        .args(["loadgen", "--target", "192.0.2.1:50051", "--seconds", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("only targets loopback"));
}

#[test]
fn a_short_soak_through_the_real_binary_fails_no_request() {
    let out = xtask()
        .args([
            "soak",
            "--seconds",
            "10",
            "--reload-every",
            "2",
            "--refresh",
            "1",
            "--window",
            "4",
            "--rate",
            "200",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let summary = out.lines().find(|l| l.starts_with("summary:")).expect(&out);
    assert!(summary.contains(" 0 failed;"), "{out}");
    // The run did what it claims: reloads happened, and the origin was asked repeatedly.
    let number_before = |word: &str| -> f64 {
        let i = summary.find(word).unwrap_or_else(|| panic!("`{word}` in {summary}"));
        summary[..i].split_whitespace().last().unwrap().parse().unwrap()
    };
    assert!(number_before(" reloads ok") >= 3.0, "{summary}");
    assert!(number_before(" updated") >= 1.0, "{summary}");
    assert!(number_before(" failed; origin") >= 1.0, "{summary}");
}

#[test]
fn cpu_measures_every_transport_against_the_trivial_peers() {
    if std::process::Command::new("h2load").arg("--version").output().is_err() {
        // .ci/run installs Debian's nghttp2-client before this step.
        eprintln!("skipped: no h2load (apt-get install -y --no-install-recommends nghttp2-client)");
        return;
    }
    let out = xtask()
        .args([
            "cpu",
            "--requests",
            "5000",
            "--rounds",
            "1",
            "--connections",
            "2",
            "--batch",
            "100",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for transport in ["HTTP/JSON /v1/check", "gRPC Check", "gRPC CheckStream"] {
        let row = text
            .lines()
            .rfind(|l| l.starts_with(transport))
            .unwrap_or_else(|| panic!("no {transport} row:\n{text}"));
        let figures: Vec<f64> = row[transport.len()..]
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        // editgate µs, trivial µs, ratio, then the two rates: all measured, none zero.
        assert!(figures.len() >= 5 && figures.iter().all(|f| *f > 0.0), "{row}");
    }
}
