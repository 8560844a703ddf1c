//! The gRPC service through a real tonic client: in-process on `127.0.0.1:0`, and as the
//! real `editgate serve` binary.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use editgate::server::proto::edit_gate_client::EditGateClient;
use editgate::server::proto::{Account, AccountKind, CheckRequest, CheckResponse, Verdict};
use editgate::server::{self, Config, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::Code;
use tonic::transport::Channel;

use crate::common::{policy_dir, shipped_policies, write};

/// An in-process server; stops when dropped.
pub(crate) struct Running {
    pub(crate) grpc: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    pub(crate) async fn start(dir: &Path) -> Self {
        let mut settings = Config::new(dir.to_owned());
        settings.debounce = Duration::from_millis(50);
        Self::start_with(settings).await
    }

    pub(crate) async fn start_with(settings: Config) -> Self {
        let state = State::load(settings).expect("policy loads");
        let g = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc, http) = (g.local_addr().unwrap(), h.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server::run(state.clone(), g, h, async move {
            let _ = rx.await;
        }));
        Self {
            grpc,
            http,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub(crate) async fn client(&self) -> EditGateClient<Channel> {
        for _ in 0..50 {
            if let Ok(c) = EditGateClient::connect(format!("http://{}", self.grpc)).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server did not come up");
    }

    async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub(crate) fn req(ip: &str, wiki: &str, kind: AccountKind) -> CheckRequest {
    CheckRequest {
        ip: ip.into(),
        wiki: wiki.into(),
        action: "edit".into(),
        account: Some(Account {
            kind: kind as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn registered(ip: &str, wiki: &str, edits: u64, age_days: i64) -> CheckRequest {
    let mut r = req(ip, wiki, AccountKind::Registered);
    let acct = r.account.as_mut().unwrap();
    acct.edit_count = edits;
    let secs = jiff::Timestamp::now().as_second() - age_days * 86_400;
    acct.registered_at = Some(prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    });
    r
}

pub(crate) async fn check(c: &mut EditGateClient<Channel>, r: CheckRequest) -> CheckResponse {
    c.check(r).await.expect("check").into_inner()
}

/// A plain HTTP GET on loopback (the tests need no HTTP client crate for two endpoints).
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

pub(crate) fn metric(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric line starting with {line_prefix}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verdict_path_over_grpc() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    let r = check(&mut c, req("162.247.74.201", "enwiki", AccountKind::Anonymous)).await;
    assert_eq!((r.verdict(), r.rule_id.as_str()), (Verdict::RequireLogin, "tor-anon"));
    assert_eq!(r.policy_version.len(), 16);
    // Locked global floor, even for an exempt account on a wiki with its own rules.
    let mut locked = registered("192.0.2.7", "enwiki", 10_000, 4000);
    locked.account.as_mut().unwrap().rights = vec!["ipblock-exempt".into()];
    let r = check(&mut c, locked).await;
    assert_eq!((r.verdict(), r.rule_id.as_str()), (Verdict::Block, "global-hard-block"));
    assert!(!r.appeal.is_empty());
    // Per-wiki thresholds: enwiki allows a 5-day account with 10 edits; elsewhere blocked.
    let r = check(&mut c, registered("162.247.74.201", "enwiki", 10, 5)).await;
    assert_eq!(
        (r.verdict(), r.rule_id.as_str()),
        (Verdict::Allow, "enwiki-tor-established")
    );
    let r = check(&mut c, registered("162.247.74.201", "dewiki", 10, 5)).await;
    assert_eq!((r.verdict(), r.rule_id.as_str()), (Verdict::Block, "tor-young-account"));
    assert!(r.message.contains("ipblock-exempt"));
    // Shadow: reported, not deciding.
    let r = check(&mut c, registered("2.26.157.10", "", 2, 1)).await;
    assert_eq!((r.verdict(), r.rule_id.as_str()), (Verdict::Allow, ""));
    assert_eq!(r.shadow_rule_ids, vec!["vpn-new-account-trial"]);
    // XFF: a hard-blocked address in the chain.
    let mut x = registered("9.9.9.9", "", 100, 100);
    x.forwarded_for = vec!["10.0.0.1".into(), "2001:db8:bad::5".into()];
    let r = check(&mut c, x).await;
    assert_eq!(r.rule_id, "global-hard-block");
    // Wiki default.
    let r = check(&mut c, registered("9.9.9.9", "officewiki", 100, 100)).await;
    assert_eq!(
        (r.verdict(), r.rule_id.as_str(), r.message.as_str()),
        (Verdict::Block, "", "editgate-private-wiki")
    );
    // Request id echoed; wiki and action are case-insensitive.
    let mut r = req("162.247.74.201", "ENWIKI", AccountKind::Temporary);
    r.request_id = "abc-1".into();
    r.action = "EDIT".into();
    let resp = check(&mut c, r).await;
    assert_eq!((resp.rule_id.as_str(), resp.request_id.as_str()), ("tor-anon", "abc-1"));
    srv.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_over_grpc() {
    let global = "[[rule]]\nid = \"old\"\nverdict = \"block\"\nexpires = 2020-01-01T00:00:00Z\n\n[[rule]]\nid = \"current\"\nverdict = \"require-login\"\nexpires = 2999-01-01T00:00:00Z\nwhen.account = [\"anonymous\"]\n";
    let dir = policy_dir(&[("global.toml", global)]);
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    let r = check(&mut c, req("192.0.2.1", "", AccountKind::Anonymous)).await;
    assert_eq!(r.rule_id, "current");
    let r = check(&mut c, registered("192.0.2.1", "", 1, 1)).await;
    assert_eq!((r.verdict(), r.rule_id.as_str()), (Verdict::Allow, ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    let cases: Vec<(CheckRequest, &str)> = vec![
        (req("", "", AccountKind::Anonymous), "ip: required"),
        (
            req("1.2.3", "", AccountKind::Anonymous),
            "ip: `1.2.3` is not a valid IP address",
        ),
        (
            CheckRequest {
                forwarded_for: vec!["10.0.0.1".into(), "x".into()],
                ..req("192.0.2.1", "", AccountKind::Anonymous)
            },
            "forwarded_for[1]: `x`",
        ),
        (
            CheckRequest {
                forwarded_for: vec!["10.0.0.1".into(); 33],
                ..req("192.0.2.1", "", AccountKind::Anonymous)
            },
            "forwarded_for: 33 entries, at most 32",
        ),
        (
            req("192.0.2.1", "", AccountKind::Unspecified),
            "account.kind: unspecified",
        ),
        (
            CheckRequest {
                account: None,
                ..req("192.0.2.1", "", AccountKind::Anonymous)
            },
            "account: required",
        ),
        (
            registered("192.0.2.1", "", 1, -2),
            "account.registered_at: in the future",
        ),
        (
            CheckRequest {
                account: Some(Account {
                    kind: 17,
                    ..Default::default()
                }),
                ..req("192.0.2.1", "", AccountKind::Anonymous)
            },
            "account.kind: unknown value 17",
        ),
        (
            CheckRequest {
                wiki: "w".repeat(300),
                ..req("192.0.2.1", "", AccountKind::Anonymous)
            },
            "wiki: `wwww",
        ),
        // Issue 12, item 11: ids that only look like a wiki's are refused, not taken as a
        // wiki without local rules (officewiki's default `block` must not be skipped).
        (
            CheckRequest {
                wiki: "officewiki\0".into(),
                ..req("192.0.2.1", "", AccountKind::Anonymous)
            },
            "wiki: `officewiki\\0` is not a wiki id",
        ),
        (
            CheckRequest {
                wiki: "ｏfficewiki".into(),
                ..req("192.0.2.1", "", AccountKind::Anonymous)
            },
            "is not a wiki id",
        ),
        (
            CheckRequest {
                action: "edit page".into(),
                ..req("192.0.2.1", "", AccountKind::Anonymous)
            },
            "action: `edit page` is not an action",
        ),
        (
            CheckRequest {
                account: Some(Account {
                    kind: AccountKind::Registered as i32,
                    registered_at: Some(prost_types::Timestamp { seconds: 1, nanos: -1 }),
                    ..Default::default()
                }),
                ..req("192.0.2.1", "", AccountKind::Anonymous)
            },
            "account.registered_at.nanos: -1",
        ),
    ];
    for (r, want) in cases {
        let err = c.check(r.clone()).await.expect_err(want);
        assert_eq!(err.code(), Code::InvalidArgument, "{want}: {err:?}");
        assert!(err.message().contains(want), "want {want:?}, got {:?}", err.message());
        let err = c.explain(r).await.expect_err(want);
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    // Oversized message: rejected by the size limit, and the server keeps answering.
    let huge = CheckRequest {
        action: "x".repeat(100_000),
        ..req("192.0.2.1", "", AccountKind::Anonymous)
    };
    let err = c.check(huge).await.expect_err("too big");
    assert_ne!(err.code(), Code::Ok);
    let r = check(&mut c, req("9.9.9.9", "", AccountKind::Anonymous)).await;
    assert_eq!(r.verdict(), Verdict::Allow);
    let metrics = http_get(srv.http, "/metrics").await;
    assert!(metric(&metrics, "editgate_invalid_requests_total{method=\"Check\"}") >= 9.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_stream_keeps_order_over_thousands() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    let ips = [
        "162.247.74.201",
        "9.9.9.9",
        "2.26.157.10",
        "192.0.2.1",
        "2001:550:1d05::1",
    ];
    let want = ["tor-anon", "", "vpn-anon", "global-hard-block", "vpn-anon"];
    let n = 5000;
    let reqs: Vec<CheckRequest> = (0..n)
        .map(|i| CheckRequest {
            request_id: format!("r{i}"),
            ..req(ips[i % ips.len()], "enwiki", AccountKind::Anonymous)
        })
        .collect();
    let mut stream = c.check_stream(tokio_stream::iter(reqs)).await.unwrap().into_inner();
    let mut i = 0;
    while let Some(r) = stream.message().await.unwrap() {
        assert_eq!(r.request_id, format!("r{i}"));
        assert_eq!(r.rule_id, want[i % want.len()], "response {i}");
        i += 1;
    }
    assert_eq!(i, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_stream_ends_with_an_error_at_the_bad_request() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    let mut reqs: Vec<CheckRequest> = (0..10).map(|_| req("9.9.9.9", "", AccountKind::Anonymous)).collect();
    reqs[3].ip = "bogus".into();
    reqs[3].request_id = "bad-one".into();
    let mut stream = c.check_stream(tokio_stream::iter(reqs)).await.unwrap().into_inner();
    for _ in 0..3 {
        assert!(stream.message().await.unwrap().is_some());
    }
    let err = stream.message().await.expect_err("fourth fails");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("request 3 (request_id `bad-one`): ip: `bogus`"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_returns_facts_then_steps() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    let r = c
        .explain(registered("1.2.0.1", "enwiki", 3, 2))
        .await
        .unwrap()
        .into_inner();
    let facts = r.facts.unwrap();
    assert_eq!(facts.ip, "1.2.0.1");
    assert_eq!(facts.sources, vec!["anonymizers"]);
    assert_eq!(facts.maxmind_flags[0].flags, vec!["is_anonymous", "is_anonymous_vpn"]);
    let d = r.decision.unwrap();
    assert_eq!(d.shadow_rule_ids, vec!["vpn-new-account-trial"]);
    assert_eq!(r.steps.first().unwrap().rule_id, "global-hard-block");
    assert_eq!(r.steps.first().unwrap().outcome, "when-failed");
    assert_eq!(r.steps.first().unwrap().key, "ip_in");
    assert!(
        r.steps
            .iter()
            .any(|s| s.rule_id == "vpn-new-account-trial" && s.outcome == "shadow-matched")
    );
    assert!(r.steps.iter().any(|s| s.origin.starts_with("wikis/enwiki.toml:")));
    // Explain and Check agree.
    let plain = check(&mut c, registered("1.2.0.1", "enwiki", 3, 2)).await;
    assert_eq!(plain, d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_serving_and_reflection_lists_both_services() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let srv = Running::start(&shipped_policies()).await;
    let _ = srv.client().await;
    let ch = Channel::from_shared(format!("http://{}", srv.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(ch.clone());
    for service in ["", "editgate.v1.EditGate"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
    }
    let mut refl = ServerReflectionClient::new(ch);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected {resp:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["editgate.v1.EditGate", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{names:?}");
    }
    // The EditGate file is served, so tools can build requests.
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol("editgate.v1.EditGate".into())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    assert!(
        matches!(resp.message_response, Some(MessageResponse::FileDescriptorResponse(_))),
        "{resp:?}"
    );
}

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
    let err = srv.state.reload().await.expect_err("broken");
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
async fn metrics_count_correctly() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    for _ in 0..3 {
        check(&mut c, req("162.247.74.201", "", AccountKind::Anonymous)).await;
    }
    check(&mut c, registered("2.26.157.10", "", 1, 1)).await;
    check(&mut c, req("9.9.9.9", "", AccountKind::Anonymous)).await;
    let m = http_get(srv.http, "/metrics").await;
    assert_eq!(
        metric(
            &m,
            "editgate_decisions_total{verdict=\"require-login\",rule=\"tor-anon\"}"
        ),
        3.0
    );
    assert_eq!(metric(&m, "editgate_decisions_total{verdict=\"allow\",rule=\"\"}"), 2.0);
    assert_eq!(
        metric(&m, "editgate_shadow_matches_total{rule=\"vpn-new-account-trial\"}"),
        1.0
    );
    // One decision in eight is timed, counted per worker thread.
    assert!(metric(&m, "editgate_decision_duration_seconds_count") <= 5.0);
    // 3 Tor requests from one IP: 1 miss then 2 hits; two other IPs: 2 misses.
    assert_eq!(metric(&m, "editgate_facts_cache_hits"), 2.0);
    assert_eq!(metric(&m, "editgate_facts_cache_misses"), 3.0);
    assert_eq!(metric(&m, "editgate_snapshot_generation"), 1.0);
    assert!(metric(&m, "editgate_snapshot_age_seconds") >= 0.0);
    for _ in 0..64 {
        check(&mut c, req("9.9.9.9", "", AccountKind::Anonymous)).await;
    }
    let timed = metric(
        &http_get(srv.http, "/metrics").await,
        "editgate_decision_duration_seconds_count",
    );
    assert!(
        (1.0..=69.0 / 8.0 + 2.0).contains(&timed),
        "{timed} of 69 decisions timed"
    );
    assert_eq!(metric(&m, "editgate_source_entries{source=\"tor\"}"), 859.0);
    assert_eq!(metric(&m, "editgate_source_entries{source=\"vpn\"}"), 11_360.0);
    assert!(metric(&m, "editgate_source_data_age_seconds{source=\"tor\"}") >= 0.0);
    for family in [
        "editgate_reload_success_total",
        "editgate_reload_failures_total",
        "editgate_source_stale{source=\"tor\"}",
    ] {
        metric(&m, family);
    }
    let health = http_get(srv.http, "/healthz").await;
    let v: serde_json::Value = serde_json::from_str(&health).unwrap();
    // The shipped snapshots are honestly old (a 2018 Tor list, MaxMind's test database):
    // degraded for stale data, and for nothing else.
    assert_eq!(v["status"], "degraded", "{v}");
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        !problems.is_empty()
            && problems
                .iter()
                .all(|p| p.contains(": data is ") && p.contains("past `max_age")),
        "{problems:?}"
    );
    assert_eq!(v["generation"], 1);
    assert_eq!(metric(&m, "editgate_degraded "), 1.0);
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
    let _ = srv.stop.take().unwrap().send(());
    let task = srv.task.take().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
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
    let grpc = line.split_whitespace().nth(4).unwrap().to_owned();
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

const LOG_KEY: &str = "0123456789abcdef0123456789abcdef";

fn log_policy(path: &str, rate: &str) -> tempfile::TempDir {
    let global = format!(
        "[settings]\ndefault = \"allow\"\n\n[settings.decision_log]\npath = \"{path}\"\nkey_file = \"log.key\"\nsample_rate = {rate}\n\n[[rule]]\nid = \"range\"\nverdict = \"require-login\"\nwhen.ip = [\"192.0.2.0/24\", \"2001:db8::/32\"]\nwhen.account = [\"anonymous\"]\n"
    );
    policy_dir(&[("global.toml", &global), ("log.key", &format!("{LOG_KEY}\n"))])
}

async fn wait_lines(path: &Path, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= n {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("decision log never reached {n} lines");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_log_holds_hashes_and_prefixes_never_raw_ips() {
    use editgate::server::decision_log::ip_hmac;
    let dir = log_policy("decisions.jsonl", "1.0");
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    let sent = [
        "192.0.2.77",
        "198.51.100.23",
        "2001:db8:abcd:12::99",
        "::ffff:203.0.113.5",
        "9.9.9.9",
    ];
    for ip in sent {
        check(&mut c, req(ip, "enwiki", AccountKind::Anonymous)).await;
    }
    let path = dir.path().join("decisions.jsonl");
    let lines = wait_lines(&path, sent.len()).await;
    let text = std::fs::read_to_string(&path).unwrap();
    for ip in sent.iter().chain(&["203.0.113.5", "2001:db8:abcd:12::99"]) {
        assert!(!text.contains(ip), "raw address {ip} in the log:\n{text}");
    }
    assert_eq!(lines[0]["verdict"], "require-login");
    assert_eq!(lines[0]["rule_id"], "range");
    assert_eq!(lines[0]["wiki"], "enwiki");
    assert_eq!(lines[0]["account"], "anonymous");
    assert_eq!(lines[0]["ip_prefix"], "192.0.2.0/24");
    assert_eq!(
        lines[0]["ip_hmac"],
        ip_hmac(LOG_KEY.as_bytes(), "192.0.2.77".parse().unwrap())
    );
    assert_eq!(lines[0]["policy_version"].as_str().unwrap().len(), 16);
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lines[2]["ip_prefix"], "2001:db8:abcd::/48");
    assert_eq!(lines[3]["ip_prefix"], "203.0.113.0/24", "mapped IPv6 is logged as IPv4");
    assert_eq!(lines[4]["verdict"], "allow");

    // Rotation: move the file away, reload (what SIGHUP does), and the log reopens.
    std::fs::rename(&path, dir.path().join("decisions.jsonl.old")).unwrap();
    srv.state.reload().await.unwrap();
    check(&mut c, req("192.0.2.1", "", AccountKind::Anonymous)).await;
    assert_eq!(wait_lines(&path, 1).await.len(), 1);

    // Key rotation: a new key gives new hashes for the same address.
    std::fs::write(dir.path().join("log.key"), "fedcba9876543210fedcba9876543210").unwrap();
    srv.state.reload().await.unwrap();
    check(&mut c, req("192.0.2.77", "", AccountKind::Anonymous)).await;
    let lines = wait_lines(&path, 2).await;
    assert_ne!(
        lines[1]["ip_hmac"],
        ip_hmac(LOG_KEY.as_bytes(), "192.0.2.77".parse().unwrap())
    );
    assert_eq!(
        lines[1]["ip_hmac"],
        ip_hmac(b"fedcba9876543210fedcba9876543210", "192.0.2.77".parse().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_log_sample_rate_zero_logs_nothing() {
    let dir = log_policy("decisions.jsonl", "0.0");
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    for _ in 0..50 {
        check(&mut c, req("192.0.2.1", "", AccountKind::Anonymous)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap_or_default();
    assert_eq!(text, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_never_fails_a_decision() {
    // /dev/full accepts the open and fails every write with ENOSPC.
    let dir = log_policy("/dev/full", "1.0");
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    for i in 0..300 {
        let r = check(&mut c, req(&format!("192.0.2.{}", i % 250), "", AccountKind::Anonymous)).await;
        assert_eq!(r.rule_id, "range");
    }
    for _ in 0..200 {
        if srv
            .state
            .decision_log
            .stats
            .errors
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let m = http_get(srv.http, "/metrics").await;
    assert!(metric(&m, "editgate_decision_log_errors") > 0.0, "{m}");
    assert_eq!(metric(&m, "editgate_decision_log_lines"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_log_rotates_by_size() {
    let dir = log_policy("decisions.jsonl", "1.0");
    let global = std::fs::read_to_string(dir.path().join("global.toml")).unwrap();
    std::fs::write(
        dir.path().join("global.toml"),
        global.replace("sample_rate = 1.0", "sample_rate = 1.0\nmax_bytes = 1000"),
    )
    .unwrap();
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    for i in 0..20 {
        check(&mut c, req(&format!("192.0.2.{i}"), "", AccountKind::Anonymous)).await;
    }
    let rotated = dir.path().join("decisions.jsonl.1");
    for _ in 0..200 {
        if rotated.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(rotated.exists(), "no rotation");
    assert!(std::fs::metadata(&rotated).unwrap().len() >= 1000);
}

/// `editgate explain --json` (CLI) and gRPC `Explain` give the same trace for one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_and_grpc_explain_agree() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    let r = c
        .explain(registered("162.247.74.201", "enwiki", 3, 30))
        .await
        .unwrap()
        .into_inner();
    let out = assert_cmd::Command::cargo_bin("editgate")
        .unwrap()
        .args([
            "explain",
            "--json",
            "--ip",
            "162.247.74.201",
            "--wiki",
            "enwiki",
            "--account",
            "registered",
            "--edits",
            "3",
            "--age",
            "30d",
            "--policies",
        ])
        .arg(shipped_policies())
        .assert()
        .success();
    let cli: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let cli_steps: Vec<(String, String, String, String)> = cli["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["rule_id"].as_str().unwrap().to_owned(),
                s["outcome"].as_str().unwrap().to_owned(),
                s["key"].as_str().unwrap_or("").to_owned(),
                s["origin"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let grpc_steps: Vec<(String, String, String, String)> = r
        .steps
        .iter()
        .map(|s| (s.rule_id.clone(), s.outcome.clone(), s.key.clone(), s.origin.clone()))
        .collect();
    assert_eq!(cli_steps, grpc_steps);
    assert_eq!(cli["rule_id"], r.decision.as_ref().unwrap().rule_id.as_str());
    assert_eq!(
        cli["facts"]["sources"],
        serde_json::json!(r.facts.as_ref().unwrap().sources)
    );
}

/// A plain HTTP POST on loopback; returns the status code and the body.
pub(crate) async fn http_post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (
        code,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_gives_the_same_decisions_as_grpc() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    let cases = [
        (
            r#"{"ip":"162.247.74.201","wiki":"enwiki","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"},"requestId":"a1"}"#,
            req("162.247.74.201", "enwiki", AccountKind::Anonymous),
        ),
        (
            r#"{"ip":"192.0.2.9","account":{"kind":"ACCOUNT_KIND_REGISTERED","editCount":"5000"}}"#,
            {
                let mut r = req("192.0.2.9", "", AccountKind::Registered);
                r.account.as_mut().unwrap().edit_count = 5000;
                r
            },
        ),
        (
            r#"{"ip":"9.9.9.9","wiki":"officewiki","account":{"kind":"ACCOUNT_KIND_REGISTERED"}}"#,
            req("9.9.9.9", "officewiki", AccountKind::Registered),
        ),
    ];
    for (json, mut grpc_req) in cases {
        let (code, body) = http_post(srv.http, "/v1/check", json).await;
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if json.contains("a1") {
            grpc_req.request_id = "a1".into();
        }
        let g = check(&mut c, grpc_req).await;
        assert_eq!(v["verdict"], g.verdict().as_str_name());
        assert_eq!(v["ruleId"], g.rule_id.as_str());
        assert_eq!(v["message"], g.message.as_str());
        assert_eq!(v["policyVersion"], g.policy_version.as_str());
        assert_eq!(v["requestId"], g.request_id.as_str());
        assert_eq!(v["shadowRuleIds"], serde_json::json!(g.shadow_rule_ids));
    }
    let (code, body) = http_post(
        srv.http,
        "/v1/check",
        r#"{"ip":"1.2.3","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#,
    )
    .await;
    assert_eq!(code, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "InvalidArgument");
    assert!(v["message"].as_str().unwrap().starts_with("ip: `1.2.3`"), "{body}");
    let (code, body) = http_post(srv.http, "/v1/check", r#"{"ip":"192.0.2.1","acount":{}}"#).await;
    assert_eq!(code, 400);
    assert!(body.contains("unknown field `acount`"), "{body}");
    let (code, body) = http_post(
        srv.http,
        "/v1/check",
        r#"{"ip":"192.0.2.1","account":{"kind":"ACCOUNT_KIND_UNSPECIFIED"}}"#,
    )
    .await;
    assert_eq!(code, 400);
    assert!(body.contains("account.kind"), "{body}");
    let (code, _) = http_post(
        srv.http,
        "/v1/check",
        &format!("{{\"ip\":\"192.0.2.1\",\"wiki\":\"{}\"}}", "x".repeat(100_000)),
    )
    .await;
    assert_eq!(code, 413, "bodies over max_message_bytes are refused");
    let (code, body) = http_post(
        srv.http,
        "/v1/explain",
        r#"{"ip":"1.2.0.1","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["decision"]["ruleId"], "vpn-anon");
    assert_eq!(v["facts"]["sources"], serde_json::json!(["anonymizers"]));
    assert_eq!(v["steps"][0]["ruleId"], "global-hard-block");
    assert_eq!(v["steps"][0]["outcome"], "when-failed");
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
