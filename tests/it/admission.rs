//! Admission: a full server refuses at once and keeps reporting health, a request past its
//! deadline gets a clear error, and messages and chains over their limits are refused.

use std::time::Duration;

use editgate::proto::{AccountKind, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

use crate::common::{settings, shipped_policies};
use crate::server::{Running, check, http_get, http_post, metric, req};

const CHECK_JSON: &str =
    r#"{"ip":"203.0.113.1","wiki":"enwiki","action":"edit","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_refuses_at_once_and_keeps_reporting_health() {
    let mut s = settings(&shipped_policies());
    s.max_concurrent_requests = 1;
    let r = Running::start_with(s).await;
    let mut c = r.client().await;

    // An open CheckStream holds the only slot for as long as it lives.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut stream = c
        .check_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("stream admitted")
        .into_inner();
    tx.send(req("203.0.113.1", "enwiki", AccountKind::Anonymous))
        .await
        .unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    assert_eq!(r.state.admission.inflight(), 1);

    let err = c
        .check(req("203.0.113.1", "enwiki", AccountKind::Anonymous))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let (code, body) = http_post(r.http, "/v1/check", CHECK_JSON).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("ResourceExhausted"), "{body}");

    // Health and metrics still answer, and count what was shed.
    let channel = Channel::from_shared(format!("http://{}", r.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap();
    assert_eq!(status.into_inner().status, 1, "SERVING");
    let metrics = http_get(r.http, "/metrics").await;
    assert_eq!(metric(&metrics, "editgate_requests_shed_total{method=\"Check\"}"), 1.0);
    assert_eq!(
        metric(&metrics, "editgate_requests_shed_total{method=\"http/check\"}"),
        1.0
    );

    // Closing the stream frees the slot.
    drop(tx);
    assert!(stream.next().await.is_none());
    drop(stream);
    for _ in 0..200 {
        if r.state.admission.inflight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ok = check(&mut c, req("192.0.2.9", "enwiki", AccountKind::Anonymous)).await;
    assert_eq!(Verdict::try_from(ok.verdict).unwrap(), Verdict::Allow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_slower_than_the_deadline_gets_a_clear_error() {
    let mut s = settings(&shipped_policies());
    s.request_timeout = Duration::from_millis(200);
    let r = Running::start_with(s).await;
    // Promise a body and send only part of it: the deadline ends the wait.
    let mut conn = tokio::net::TcpStream::connect(r.http).await.unwrap();
    conn.write_all(
        b"POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ip\":",
    )
    .await
    .unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut out)).await;
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(out.contains("DeadlineExceeded") && out.contains("200 ms"), "{out}");
    assert_eq!(r.state.admission.inflight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_forwarded_for_chains_are_refused_by_limit() {
    let mut s = settings(&shipped_policies());
    s.max_message_bytes = 1024;
    s.limits.max_forwarded_for = 2;
    let r = Running::start_with(s).await;
    let mut c = r.client().await;
    let mut big = req("192.0.2.9", "enwiki", AccountKind::Anonymous);
    big.request_id = "x".repeat(2048);
    let err = c.check(big).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    let mut chain = req("192.0.2.9", "enwiki", AccountKind::Anonymous);
    chain.forwarded_for = vec!["203.0.113.1".into(), "203.0.113.2".into(), "203.0.113.3".into()];
    let err = c.check(chain).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("forwarded_for"), "{err:?}");
    // The server is unharmed.
    let ok = check(&mut c, req("192.0.2.9", "enwiki", AccountKind::Anonymous)).await;
    assert_eq!(Verdict::try_from(ok.verdict).unwrap(), Verdict::Allow);
}
