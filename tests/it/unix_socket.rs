//! The JSON API on a Unix-domain socket (`http_socket`): the same answers and checks as the
//! TCP port, a mode set before anyone can connect, and a path that one instance never takes
//! from, or removes under, another.

use std::time::Duration;

use crate::common::shipped_policies;

const TOR_ANON: &str = r#"{"ip":"162.247.74.201","wiki":"enwiki","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#;

/// One HTTP/1.1 request over the Unix-domain socket at `path`; the status and the body.
fn unix_request(path: &std::path::Path, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect to the socket");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

fn unix_post(path: &std::path::Path, target: &str, body: &str) -> (u16, String) {
    unix_request(
        path,
        &format!(
            "POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn the_api_can_answer_on_a_unix_socket_of_its_own() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("editgate.sock");
    // A stale socket from an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let (child, line) = serve_on(&sock, &[]).unwrap();
    assert!(line.starts_with("editgate serving gRPC on 127.0.0.1:"), "{line}");
    assert!(
        line.trim_end()
            .ends_with(&format!("and HTTP on unix:{}", sock.display())),
        "{line}"
    );
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "the default mode");

    let (code, body) = unix_post(&sock, "/v1/check", TOR_ANON);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["verdict"], "VERDICT_REQUIRE_LOGIN", "{v}");
    let (code, body) = unix_post(&sock, "/v1/explain", TOR_ANON);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"steps\""), "{body}");
    // The same checks as on TCP: a malformed request names its field, a foreign Host is refused.
    let (code, body) = unix_post(
        &sock,
        "/v1/check",
        r#"{"ip":"192.0.2.1","account":{"kind":4294967299}}"#,
    );
    assert_eq!((code, body.contains("account.kind")), (400, true), "{body}");
    let (code, _) = unix_request(
        &sock,
        "POST /v1/check HTTP/1.1\r\nHost: attacker.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert_eq!(code, 403);
    // Health and metrics, but no console: a browser does not reach a socket file.
    let get = |target: &str| {
        unix_request(
            &sock,
            &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
    };
    assert_eq!(get("/healthz").0, 200);
    let (code, metrics) = get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("editgate_invalid_requests_total{method=\"http/check\"} 1"),
        "{metrics}"
    );
    assert_eq!(get("/").0, 404);

    // Stopping removes the socket file.
    stop(child);
    assert!(!sock.exists(), "the socket file is removed at exit");
}

#[test]
fn a_socket_path_that_is_not_a_socket_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |flags: &[&str], socket: &std::path::Path| {
        crate::common::editgate()
            .args(crate::common::SERVE_LOOPBACK)
            .arg("--no-watch")
            .args(flags)
            .arg("--http-socket")
            .arg(socket)
            .arg("--policies")
            .arg(shipped_policies())
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap()
    };
    let file = dir.path().join("important.txt");
    std::fs::write(&file, "keep me").unwrap();
    let out = serve(&[], &file);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exists and is not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    let out = serve(&["--http-socket-mode", "999"], &dir.path().join("s.sock"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http_socket_mode"));
}

/// `editgate serve` on the shipped policies with the API on the socket `sock` and `flags`;
/// the child (stdout piped) and its serving line, or its exit status and stderr when it did
/// not start.
fn serve_on(sock: &std::path::Path, flags: &[&str]) -> Result<(std::process::Child, String), (i32, String)> {
    use std::io::{BufRead, BufReader, Read};
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("editgate"))
        .args(crate::common::SERVE_LOOPBACK)
        .args(["--no-watch", "--http-socket"])
        .arg(sock)
        .args(flags)
        .arg("--policies")
        .arg(shipped_policies())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.starts_with("editgate serving") {
        return Ok((child, line));
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    Err((status.code().unwrap_or(-1), err))
}

fn stop(mut child: std::process::Child) {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// A second instance pointed at the socket a live one serves refuses to start and leaves it
/// alone; its exit cannot take the socket from the first.
#[test]
fn a_live_socket_is_never_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("editgate.sock");
    let (first, _) = serve_on(&sock, &[]).unwrap();
    let (code, err) = serve_on(&sock, &[]).expect_err("the second instance must not start");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a server is answering on"), "{err}");
    // The first still answers on its socket.
    let (code, body) = unix_post(&sock, "/v1/check", TOR_ANON);
    assert_eq!(code, 200, "{body}");
    stop(first);
    assert!(!sock.exists());
}

/// At exit the path is removed only if it still names this instance's socket: a socket
/// another instance bound there since (after this one's file was removed) stays.
#[test]
fn only_its_own_socket_is_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("editgate.sock");
    let (first, _) = serve_on(&sock, &[]).unwrap();
    std::fs::remove_file(&sock).unwrap();
    let other = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    stop(first);
    assert!(sock.exists(), "the other socket was removed");
    drop(other);
    // A dead socket left behind (nothing listens) is replaced by the next start.
    let (next, _) = serve_on(&sock, &[]).unwrap();
    assert_eq!(unix_post(&sock, "/v1/check", TOR_ANON).0, 200);
    stop(next);
}

/// The socket never exists at its path with a looser mode than asked, even under `umask 000`:
/// it is bound in a private directory, given its mode, then renamed into place.
#[test]
fn the_socket_has_its_mode_before_anyone_can_connect() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let sock = dir.path().join(format!("s{round}.sock"));
        let watched = sock.clone();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (seen, done) = (seen.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(m) = std::fs::symlink_metadata(&watched) {
                        seen.lock().unwrap().push(m.permissions().mode() & 0o777);
                    }
                }
            })
        };
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 000 && exec \"$0\" \"$@\"")
            .arg(assert_cmd::cargo::cargo_bin("editgate"))
            .args(crate::common::SERVE_LOOPBACK)
            .args(["--no-watch", "--http-socket-mode", "0600", "--http-socket"])
            .arg(&sock)
            .arg("--policies")
            .arg(shipped_policies())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        crate::common::serving_line(&mut child);
        // The socket is in place by now: let the watcher see it at least once.
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while seen.lock().unwrap().is_empty() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().unwrap();
        let modes = seen.lock().unwrap().clone();
        assert!(
            !modes.is_empty() && modes.iter().all(|m| *m == 0o600),
            "round {round}: modes seen {:?}",
            modes.iter().map(|m| format!("{m:o}")).collect::<Vec<_>>()
        );
        // Nothing is left of the private directory it was bound in.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".sock")), "{names:?}");
        stop(child);
    }
}
