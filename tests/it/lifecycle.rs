//! A server's life: reloads that apply good edits and refuse broken ones, a replaced
//! MaxMind database, shutdown with streams in flight (within the drain deadline, or cut at
//! it; a second signal), idle connections that must not exhaust descriptors, and the real
//! `editgate serve` binary (SIGHUP, SIGTERM, a broken policy at start).

use std::sync::Arc;
use std::time::Duration;

use editgate::proto::edit_gate_client::EditGateClient;
use editgate::proto::{AccountKind, CheckRequest, CheckResponse, Verdict};
use tonic::transport::Channel;

use crate::common::{TOR_EXIT, policy_dir, shipped_policies, write};
use crate::server::{Running, check, http_get, http_get_any, metric, req, until};

const RELOAD_V1: &str = "[[rule]]\nid = \"v1\"\nverdict = \"block\"\nwhen.ip = [\"192.0.2.0/24\"]\n";
const RELOAD_V2: &str = "[[rule]]\nid = \"v2\"\nverdict = \"require-login\"\nwhen.ip = [\"192.0.2.0/24\"]\n";

async fn wait_for_rule(c: &mut EditGateClient<Channel>, want: &str) -> CheckResponse {
    for _ in 0..200 {
        let r = check(c, req("192.0.2.1", "", AccountKind::Anonymous)).await;
        if r.rule_id == want {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("rule {want} never took effect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_valid_edits_and_rejects_broken_ones_without_failing_requests() {
    let dir = policy_dir(&[("global.toml", RELOAD_V1)]);
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    let first = check(&mut c, req("192.0.2.1", "", AccountKind::Anonymous)).await;
    assert_eq!(first.rule_id, "v1");

    // Hammer the service during all reloads below; no request may fail.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut hammer = Vec::new();
    for _ in 0..2 {
        let mut hc = c.clone();
        let stop = stop.clone();
        hammer.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = hc
                    .check(req("192.0.2.1", "", AccountKind::Anonymous))
                    .await
                    .expect("no request fails during reload");
                assert!(r.get_ref().rule_id == "v1" || r.get_ref().rule_id == "v2");
                n += 1;
            }
            n
        }));
    }

    // A valid edit takes effect through the file watcher, with a new policy version.
    write(dir.path(), "global.toml", RELOAD_V2);
    let second = wait_for_rule(&mut c, "v2").await;
    assert_ne!(second.policy_version, first.policy_version);

    // A broken edit is rejected; the v2 rules keep answering.
    let before = srv.state.metrics.reload_failures.get();
    write(dir.path(), "global.toml", "[[rule]]\nid = \"v3\"\nverdict = \"blok\"\n");
    for _ in 0..200 {
        if srv.state.metrics.reload_failures.get() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        srv.state.metrics.reload_failures.get() > before,
        "broken edit was not attempted"
    );
    let still = check(&mut c, req("192.0.2.1", "", AccountKind::Anonymous)).await;
    assert_eq!(
        (still.rule_id.as_str(), still.policy_version.as_str()),
        ("v2", second.policy_version.as_str())
    );

    // An explicit reload (what SIGHUP calls) reports the error with file:line:col.
    let err = srv.state.reload().await.expect_err("broken").to_string();
    assert!(err.contains("global.toml:3:11: unknown verdict `blok`"), "{err}");

    // Fixing the file applies again.
    write(dir.path(), "global.toml", RELOAD_V1);
    wait_for_rule(&mut c, "v1").await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for h in hammer {
        total += h.await.expect("hammer task");
    }
    assert!(total > 0);
    let m = http_get(srv.http, "/metrics").await;
    assert!(metric(&m, "editgate_reload_success_total") >= 2.0);
    assert!(metric(&m, "editgate_reload_failures_total") >= 2.0);
    assert!(metric(&m, "editgate_snapshot_generation") >= 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_shutdown_returns_cleanly() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    check(&mut c, req("9.9.9.9", "", AccountKind::Anonymous)).await;
    let grpc = srv.grpc;
    drop(c);
    tokio::time::timeout(Duration::from_secs(10), srv.shutdown())
        .await
        .expect("stops in time")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err(), "listener closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_stream_in_flight() {
    let mut srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<CheckRequest>(4);
    let mut stream = c
        .check_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(req("162.247.74.201", "", AccountKind::Anonymous))
        .await
        .unwrap();
    assert_eq!(stream.message().await.unwrap().unwrap().rule_id, "tor-anon");
    // Shut down while the stream is open: no new connections, but this one is finished.
    let grpc = srv.grpc;
    let _ = srv.stop.take().unwrap().send(());
    let task = srv.task.take().unwrap();
    // Stopping has begun once the listener is closed.
    until("the listener closes", async || {
        tokio::net::TcpStream::connect(grpc).await.is_err()
    })
    .await;
    assert!(!task.is_finished(), "server waits for the request in flight");
    tx.send(req("9.9.9.9", "", AccountKind::Anonymous)).await.unwrap();
    assert_eq!(stream.message().await.unwrap().unwrap().verdict(), Verdict::Allow);
    drop(tx);
    assert!(stream.message().await.unwrap().is_none());
    drop(stream);
    drop(c);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops once the stream ends")
        .unwrap()
        .unwrap();
}

/// The real binary: serve on port 0, answer, reload on SIGHUP, exit 0 on SIGTERM.
#[test]
fn real_binary_serves_reloads_and_shuts_down() {
    use std::process::Command;

    let dir = policy_dir(&[("global.toml", RELOAD_V1)]);
    let (mut child, line) = crate::common::spawn_serve(dir.path(), &[]);
    let (grpc, _) = crate::common::serving_addrs(&line);
    let pid = child.id().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = EditGateClient::connect(format!("http://{grpc}")).await.unwrap();
        assert_eq!(
            check(&mut c, req("192.0.2.1", "", AccountKind::Anonymous))
                .await
                .rule_id,
            "v1"
        );
        write(dir.path(), "global.toml", RELOAD_V2);
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        wait_for_rule(&mut c, "v2").await;
    });
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("SIGHUP: reloading") && err.contains("SIGTERM: shutting down"),
        "{err}"
    );
    // Privacy: the address asked about never appears in the logs.
    assert!(!err.contains("192.0.2.1"), "{err}");
}

#[test]
fn real_binary_refuses_to_start_on_a_broken_policy() {
    let dir = policy_dir(&[("global.toml", "[[rule]]\nid = \"x\"\nverdict = \"nope\"\n")]);
    assert_cmd::Command::cargo_bin("editgate")
        .unwrap()
        .args(crate::common::SERVE_LOOPBACK)
        .args(["--policies"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "global.toml:3:11: error: unknown verdict `nope`",
        ));
}

/// geoipupdate replaces a database by renaming a new file into place. A good replacement is
/// picked up; a truncated or corrupt one is rejected and the last good data keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxmind_database_replacement_is_picked_up_and_a_corrupt_one_rejected() {
    use crate::common::fixture;
    let global = "[sources.vpn]\nkind = \"maxmind-anonymous\"\npath = \"db/anon.mmdb\"\nflags = [\"is_anonymous_vpn\"]\n\n[[rule]]\nid = \"vpn\"\nverdict = \"require-login\"\nwhen.ip_in = [\"vpn\"]\n";
    let dir = policy_dir(&[("global.toml", global)]);
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::copy(
        fixture("maxmind/GeoIP2-Anonymous-IP-Test.mmdb"),
        dir.path().join("db/anon.mmdb"),
    )
    .unwrap();
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    // 1.2.0.1 is a VPN in the Anonymous IP test database; 55.0.0.4 is not listed there but is
    // a VPN in the Anonymous Plus one.
    assert_eq!(
        check(&mut c, req("1.2.0.1", "", AccountKind::Anonymous)).await.rule_id,
        "vpn"
    );
    assert_eq!(
        check(&mut c, req("55.0.0.4", "", AccountKind::Anonymous)).await.rule_id,
        ""
    );

    let replace = |from: std::path::PathBuf| {
        let tmp = dir.path().join("db/.anon.mmdb.tmp");
        std::fs::write(&tmp, std::fs::read(from).unwrap()).unwrap();
        std::fs::rename(&tmp, dir.path().join("db/anon.mmdb")).unwrap();
    };
    replace(fixture("maxmind/GeoIP-Anonymous-Plus-Test.mmdb"));
    let mut picked = false;
    for _ in 0..200 {
        if check(&mut c, req("55.0.0.4", "", AccountKind::Anonymous)).await.rule_id == "vpn" {
            picked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(picked, "the replaced database was not picked up");
    let version = check(&mut c, req("55.0.0.4", "", AccountKind::Anonymous))
        .await
        .policy_version;

    // A truncated file (a download cut short) and a corrupt one are both rejected.
    let failures = srv.state.metrics.reload_failures.get();
    let good = std::fs::read(fixture("maxmind/GeoIP-Anonymous-Plus-Test.mmdb")).unwrap();
    let truncated = dir.path().join("truncated.mmdb");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    replace(truncated);
    for _ in 0..200 {
        if srv.state.metrics.reload_failures.get() > failures {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        srv.state.metrics.reload_failures.get() > failures,
        "truncated database was not rejected"
    );
    replace(fixture("maxmind/broken/MaxMind-DB-test-broken-pointers-24.mmdb"));
    assert!(srv.state.reload().await.is_err());
    let r = check(&mut c, req("55.0.0.4", "", AccountKind::Anonymous)).await;
    assert_eq!(
        (r.rule_id.as_str(), r.policy_version.as_str()),
        ("vpn", version.as_str()),
        "last good data keeps serving"
    );
}

// --- Shutdown with open streams --------------------------------------------------------------

/// The real binary with a `CheckStream` held open; returns the child and the open stream's
/// sender (dropping it would end the stream).
async fn serve_with_open_stream(
    extra: &[&str],
) -> (
    std::process::Child,
    tokio::sync::mpsc::Sender<editgate::proto::CheckRequest>,
    tonic::Streaming<editgate::proto::CheckResponse>,
) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("editgate"))
        .args(crate::common::SERVE_LOOPBACK)
        .args(["--no-watch", "--policies"])
        .arg(shipped_policies())
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (grpc, _) = crate::common::serving_addrs(&crate::common::serving_line(&mut child));
    let mut c = editgate::proto::edit_gate_client::EditGateClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut stream = c
        .check_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    tx.send(req("9.9.9.9", "", AccountKind::Anonymous)).await.unwrap();
    assert!(stream.message().await.unwrap().is_some());
    (child, tx, stream)
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

fn signal(child: &std::process::Child, sig: &str) {
    assert!(
        std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_an_open_stream_exits_after_the_drain_deadline() {
    let (mut child, _tx, _stream) = serve_with_open_stream(&["--drain-timeout", "1s"]).await;
    signal(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(30)).expect("exits although the stream stays open");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once() {
    // A drain deadline far beyond the wait below: only the second signal can end it.
    let (mut child, _tx, _stream) = serve_with_open_stream(&["--drain-timeout", "1h"]).await;
    signal(&child, "-TERM");
    until("the first signal is taken", async || true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(child.try_wait().unwrap().is_none(), "still draining");
    signal(&child, "-INT");
    wait_exit(&mut child, Duration::from_secs(30)).expect("the second signal stops it");
}

// --- Idle connections -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_neither_exhaust_descriptors_nor_starve_health_and_grpc() {
    // The test opens 1,200 sockets of its own.
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    rlimit::setrlimit(rlimit::Resource::NOFILE, 4096.min(hard), hard).unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 512 && exec \"$0\" \"$@\"")
        .arg(assert_cmd::cargo::cargo_bin("editgate"))
        .args(crate::common::SERVE_LOOPBACK)
        .args(["--no-watch", "--header-timeout", "1s", "--policies"])
        .arg(shipped_policies())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (grpc, http) = crate::common::serving_addrs(&crate::common::serving_line(&mut child));
    let mut idle = Vec::new();
    for addr in [http, grpc] {
        for _ in 0..600 {
            if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
                idle.push(s);
            }
        }
    }
    // Past the header timeout the idle ones are gone; health and decisions answer.
    let mut c = None;
    until(
        "gRPC answers",
        async || match editgate::proto::edit_gate_client::EditGateClient::connect(format!("http://{grpc}")).await {
            Ok(mut client) => {
                let ok = client
                    .check(req(TOR_EXIT, "enwiki", AccountKind::Anonymous))
                    .await
                    .is_ok();
                c = Some(client);
                ok
            }
            Err(_) => false,
        },
    )
    .await;
    let r = c
        .unwrap()
        .check(req(TOR_EXIT, "enwiki", AccountKind::Anonymous))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.rule_id, "tor-anon");
    until("/healthz answers", async || {
        tokio::time::timeout(Duration::from_secs(2), http_get_any(http, "/healthz"))
            .await
            .is_ok_and(|(code, _)| code == 200)
    })
    .await;
    let m = http_get(http, "/metrics").await;
    assert!(
        metric(&m, "editgate_connections_refused_total{port=\"http\"}") > 0.0,
        "the cap took effect"
    );
    drop(idle);
    signal(&child, "-TERM");
    wait_exit(&mut child, Duration::from_secs(30)).expect("exits");
}

#[cfg(unix)]
#[test]
fn the_binary_tells_systemd_when_it_is_ready_and_when_it_stops() {
    use std::os::unix::net::UnixDatagram;
    use std::process::Command;

    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let (mut child, _) = crate::common::spawn_serve(&shipped_policies(), &[("NOTIFY_SOCKET", &sock_path)]);
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 from the service");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let n = sock.recv(&mut buf).expect("STOPPING=1 from the service");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert!(child.wait().unwrap().success());
}
