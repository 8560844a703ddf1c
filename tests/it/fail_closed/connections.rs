//! Shutdown with open streams; idle connections.

use std::time::Duration;

use editgate::proto::AccountKind;

use super::TOR_EXIT;
use crate::common::shipped_policies;
use crate::server::{http_get, http_get_any, metric, req, until};

// --- 8. Shutdown with open streams --------------------------------------------------------------

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

// --- 9. Idle connections -------------------------------------------------------------------------

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
