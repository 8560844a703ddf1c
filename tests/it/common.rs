//! Helpers shared by the integration tests.

use std::path::Path;
use std::time::Duration;

pub use editgate_testkit::dirs::{
    copy_dir, fixture, policy_dir, repo, shipped_copy, shipped_policies, shipped_with, write,
};

/// The real `editgate` binary, to run with arguments.
pub fn editgate() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("editgate").expect("binary")
}

/// `editgate serve` on loopback ports chosen by the OS; append `--policies DIR` and flags.
pub const SERVE_LOOPBACK: [&str; 5] = ["serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"];

/// Starts the real `editgate serve --no-watch` on `policies` (stderr piped), with `env` set,
/// and returns it with its first stdout line: `editgate serving gRPC on ADDR and HTTP on ADDR`.
pub fn spawn_serve(policies: &Path, env: &[(&str, &Path)]) -> (std::process::Child, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("editgate"))
        .args(SERVE_LOOPBACK)
        .args(["--no-watch", "--policies"])
        .arg(policies)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("editgate serve starts");
    let line = serving_line(&mut child);
    (child, line)
}

/// Reads the first stdout line of a spawned `editgate serve` (stdout piped):
/// `editgate serving gRPC on ADDR and HTTP on ADDR`.
pub fn serving_line(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    assert!(line.starts_with("editgate serving gRPC on 127.0.0.1:"), "{line}");
    line
}

/// The gRPC and HTTP addresses of a [`serving_line`].
pub fn serving_addrs(line: &str) -> (std::net::SocketAddr, std::net::SocketAddr) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let addr = |i: usize| {
        words[i]
            .parse()
            .unwrap_or_else(|_| panic!("no address at word {i}: {line}"))
    };
    (addr(4), addr(8))
}

/// `editgate validate --no-data --deny-warnings DIR`, which must pass as CI runs it on an
/// example's files: its standard output.
pub fn validate_files(dir: &Path) -> String {
    let out = editgate()
        .args(["validate", "--no-data", "--deny-warnings"])
        .arg(dir)
        .assert()
        .success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

/// `editgate validate DIR`: its exit code and its output.
pub fn validate(dir: &Path) -> (i32, String) {
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

/// A Tor exit in the shipped list.
pub const TOR_EXIT: &str = "162.247.74.201";

/// Service settings for `dir`, without the file watcher (tests reload explicitly).
pub fn settings(dir: &Path) -> editgate::server::Config {
    let mut s = editgate::server::Config::new(dir.to_owned());
    s.watch = false;
    s
}
