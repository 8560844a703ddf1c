//! The gRPC service through a real tonic client, and the HTTP/JSON API beside it: every
//! verdict path, request errors that name the field, streams, explain, health and
//! reflection, metrics; the CLI, gRPC and HTTP/JSON agree.

use editgate::proto::{Account, AccountKind, CheckRequest, Verdict};
use tonic::Code;
use tonic::transport::Channel;

use crate::common::{policy_dir, shipped_policies};
use crate::server::{Running, check, http_get, http_post, metric, registered, req};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verdict_path_over_grpc() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    let r = check(&mut c, req("162.247.74.201", "enwiki", AccountKind::Anonymous)).await;
    assert_eq!((r.verdict(), r.rule_id.as_str()), (Verdict::RequireLogin, "tor-anon"));
    assert_eq!(r.policy_version.len(), 16);
    // Locked global floor, even for an exempt account on a wiki with its own rules.
    let mut locked = registered("203.0.113.7", "enwiki", 10_000, 4000);
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
    assert_eq!(r.message, "editgate-tor-account-threshold");
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
    let r = check(&mut c, req("203.0.113.1", "", AccountKind::Anonymous)).await;
    assert_eq!(r.rule_id, "current");
    let r = check(&mut c, registered("203.0.113.1", "", 1, 1)).await;
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
                ..req("203.0.113.1", "", AccountKind::Anonymous)
            },
            "forwarded_for[1]: `x`",
        ),
        (
            CheckRequest {
                forwarded_for: vec!["10.0.0.1".into(); 33],
                ..req("203.0.113.1", "", AccountKind::Anonymous)
            },
            "forwarded_for: 33 entries, at most 32",
        ),
        (
            req("203.0.113.1", "", AccountKind::Unspecified),
            "account.kind: unspecified",
        ),
        (
            CheckRequest {
                account: None,
                ..req("203.0.113.1", "", AccountKind::Anonymous)
            },
            "account: required",
        ),
        (
            registered("203.0.113.1", "", 1, -2),
            "account.registered_at: in the future",
        ),
        (
            CheckRequest {
                account: Some(Account {
                    kind: 17,
                    ..Default::default()
                }),
                ..req("203.0.113.1", "", AccountKind::Anonymous)
            },
            "account.kind: unknown value 17",
        ),
        (
            CheckRequest {
                wiki: "w".repeat(300),
                ..req("203.0.113.1", "", AccountKind::Anonymous)
            },
            "wiki: `wwww",
        ),
        // Ids that only look like a wiki's are refused, not taken as a
        // wiki without local rules (officewiki's default `block` must not be skipped).
        (
            CheckRequest {
                wiki: "officewiki\0".into(),
                ..req("203.0.113.1", "", AccountKind::Anonymous)
            },
            "wiki: `officewiki\\0` is not a wiki id",
        ),
        (
            CheckRequest {
                wiki: "ｏfficewiki".into(),
                ..req("203.0.113.1", "", AccountKind::Anonymous)
            },
            "is not a wiki id",
        ),
        (
            CheckRequest {
                action: "edit page".into(),
                ..req("203.0.113.1", "", AccountKind::Anonymous)
            },
            "action: `edit page` is not an action",
        ),
        (
            CheckRequest {
                account: Some(Account {
                    kind: AccountKind::Registered as i32,
                    registered_at: Some(pbjson_types::Timestamp { seconds: 1, nanos: -1 }),
                    ..Default::default()
                }),
                ..req("203.0.113.1", "", AccountKind::Anonymous)
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
        ..req("203.0.113.1", "", AccountKind::Anonymous)
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
        "203.0.113.1",
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
        metric(
            &m,
            "editgate_shadow_matches_total{verdict=\"block\",rule=\"vpn-new-account-trial\"}"
        ),
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
            r#"{"ip":"203.0.113.9","account":{"kind":"ACCOUNT_KIND_REGISTERED","editCount":"5000"}}"#,
            {
                let mut r = req("203.0.113.9", "", AccountKind::Registered);
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
    let (code, body) = http_post(srv.http, "/v1/check", r#"{"ip":"203.0.113.1","acount":{}}"#).await;
    assert_eq!(code, 400);
    assert!(body.contains("unknown field `acount`"), "{body}");
    let (code, body) = http_post(
        srv.http,
        "/v1/check",
        r#"{"ip":"203.0.113.1","account":{"kind":"ACCOUNT_KIND_UNSPECIFIED"}}"#,
    )
    .await;
    assert_eq!(code, 400);
    assert!(body.contains("account.kind"), "{body}");
    let (code, _) = http_post(
        srv.http,
        "/v1/check",
        &format!("{{\"ip\":\"203.0.113.1\",\"wiki\":\"{}\"}}", "x".repeat(100_000)),
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
