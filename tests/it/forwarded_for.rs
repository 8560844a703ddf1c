//! The two forwarded-for attacks through every interface: the CLI (`check`, `explain`,
//! `validate`), gRPC (`Check`, `CheckStream`, `Explain`), HTTP/JSON and the console's
//! explain view. A forwarded-for address only ever makes a decision stricter.

use editgate::proto::{AccountKind, Verdict};
use predicates::prelude::*;
use tokio_stream::StreamExt as _;

use crate::common::{editgate, shipped_with};
use crate::server::{Running, check, http_get, http_post, req};

const TOR_EXIT: &str = "162.247.74.201";
const CAMPUS: &str = "192.0.2.5";

/// The first attack: an `allow` rule with `xff = true` for a campus range.
const ALLOW_XFF: &str = r#"
[[rule]]
id = "campus-allow"
verdict = "allow"
xff = true
when.ip = ["192.0.2.0/24"]
"#;

/// The second attack: a locked `block` with `xff = true` exempting the campus in `unless`.
const BLOCK_UNLESS: &str = r#"
[[rule]]
id = "steward-tor-block"
verdict = "block"
locked = true
xff = true
when.ip_in = ["tor"]
unless.ip = ["192.0.2.0/24"]
"#;

#[test]
fn an_allow_rule_with_xff_is_refused_by_validate_check_and_serve() {
    let dir = shipped_with(ALLOW_XFF);
    let error = "`xff = true` on the `allow` rule `campus-allow`";
    editgate()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("global.toml:").and(predicate::str::contains(error)));
    editgate()
        .args([
            "check",
            "--ip",
            TOR_EXIT,
            "--xff",
            CAMPUS,
            "--wiki",
            "enwiki",
            "--policies",
        ])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(error));
    editgate()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--policies",
        ])
        .arg(dir.path())
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .failure()
        .stderr(predicate::str::contains(error));
}

#[test]
fn a_forwarded_campus_address_does_not_exempt_a_tor_client_in_the_cli() {
    let dir = shipped_with(BLOCK_UNLESS);
    for cmd in ["check", "explain"] {
        let out = editgate()
            .args([
                cmd,
                "--ip",
                TOR_EXIT,
                "--xff",
                CAMPUS,
                "--wiki",
                "enwiki",
                "--json",
                "--policies",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (v["verdict"].as_str(), v["rule_id"].as_str()),
            (Some("block"), Some("steward-tor-block")),
            "{cmd}: {v}"
        );
    }
    // A clean client with a Tor exit in its chain: the forwarded address satisfies `when`,
    // and the text trace says so.
    editgate()
        .args(["explain", "--ip", "8.8.4.4", "--xff", TOR_EXIT, "--policies"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(
            predicate::str::contains("steward-tor-block [block]")
                .and(predicate::str::contains(
                    "matched through a forwarded-for address: decides",
                ))
                .and(predicate::str::contains("verdict: block")),
        );
    // validate warns that `unless` tests the client address only.
    editgate()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning[xff-unless]: rule `steward-tor-block`",
        ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_campus_address_does_not_exempt_a_tor_client_over_grpc_and_http() {
    let dir = shipped_with(BLOCK_UNLESS);
    let server = Running::start(dir.path()).await;
    let mut c = server.client().await;
    let mut r = req(TOR_EXIT, "enwiki", AccountKind::Anonymous);
    r.forwarded_for = vec![CAMPUS.into()];

    let d = check(&mut c, r.clone()).await;
    assert_eq!((d.verdict(), d.rule_id.as_str()), (Verdict::Block, "steward-tor-block"));

    let e = c.explain(r.clone()).await.unwrap().into_inner();
    let decision = e.decision.unwrap();
    assert_eq!(decision.rule_id, "steward-tor-block");
    let step = e.steps.iter().find(|s| s.rule_id == "steward-tor-block").unwrap();
    assert_eq!(step.outcome, "matched", "{step:?}");

    let stream = c
        .check_stream(tokio_stream::iter(vec![r.clone(), r.clone()]))
        .await
        .unwrap()
        .into_inner();
    let answers: Vec<_> = stream.collect::<Vec<_>>().await;
    assert_eq!(answers.len(), 2);
    for a in answers {
        assert_eq!(a.unwrap().rule_id, "steward-tor-block");
    }

    let body = format!(
        r#"{{"ip":"{TOR_EXIT}","forwardedFor":["{CAMPUS}"],"wiki":"enwiki","account":{{"kind":"ACCOUNT_KIND_ANONYMOUS"}}}}"#
    );
    let (code, answer) = http_post(server.http, "/v1/check", &body).await;
    assert_eq!(code, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (v["verdict"].as_str(), v["ruleId"].as_str()),
        (Some("VERDICT_BLOCK"), Some("steward-tor-block"))
    );

    // A clean client with the Tor exit forwarded: the trace names the forwarded-for match,
    // in the JSON explain and in the console.
    let body = format!(
        r#"{{"ip":"8.8.4.4","forwardedFor":["{TOR_EXIT}"],"wiki":"enwiki","account":{{"kind":"ACCOUNT_KIND_ANONYMOUS"}}}}"#
    );
    let (code, answer) = http_post(server.http, "/v1/explain", &body).await;
    assert_eq!(code, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["decision"]["ruleId"], "steward-tor-block");
    assert!(
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["ruleId"] == "steward-tor-block" && s["outcome"] == "forwarded-matched"),
        "{v}"
    );
    let page = http_get(server.http, &format!("/explain?ip=8.8.4.4&xff={TOR_EXIT}&wiki=enwiki")).await;
    assert!(page.contains("matched through a forwarded-for address"), "{page}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_adds_an_allow_rule_with_xff_is_refused_and_the_old_policy_serves() {
    let dir = shipped_with(BLOCK_UNLESS);
    let server = Running::start(dir.path()).await;
    let mut c = server.client().await;
    let global = dir.path().join("global.toml");
    let text = std::fs::read_to_string(&global).unwrap();
    std::fs::write(&global, text + ALLOW_XFF).unwrap();
    let outcome = server.state.reload().await;
    let err = outcome.expect_err("the reload is refused").to_string();
    assert!(err.contains("`xff = true` on the `allow` rule `campus-allow`"), "{err}");
    let mut r = req(TOR_EXIT, "enwiki", AccountKind::Anonymous);
    r.forwarded_for = vec![CAMPUS.into()];
    assert_eq!(check(&mut c, r).await.rule_id, "steward-tor-block");
    server.shutdown().await.unwrap();
}

#[test]
fn replay_and_policy_tests_apply_the_same_rule() {
    let dir = shipped_with(BLOCK_UNLESS);
    let attempts = tempfile::NamedTempFile::new().unwrap();
    let line = |ip: &str, xff: &str| {
        format!(
            "{{\"ip\":\"{ip}\",\"forwardedFor\":[\"{xff}\"],\"wiki\":\"enwiki\",\"account\":{{\"kind\":\"ACCOUNT_KIND_ANONYMOUS\"}}}}\n"
        )
    };
    // The attack, the campus with a Tor exit in its chain, and a clean client with one.
    let text = line(TOR_EXIT, CAMPUS) + &line(CAMPUS, TOR_EXIT) + &line("8.8.4.4", TOR_EXIT);
    std::fs::write(attempts.path(), text).unwrap();
    let out = editgate()
        .args(["replay", "--json", "--policies"])
        .arg(crate::common::shipped_policies())
        .arg("--against")
        .arg(dir.path())
        .arg("--attempts")
        .arg(attempts.path())
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    // Under the shipped policy the Tor client needs to log in; the new rule blocks it and the
    // clean client with the Tor exit forwarded; the campus client is exempt, as before.
    assert_eq!(v["new"]["verdicts"]["block"], 2, "{v}");
    assert_eq!(v["changed"], 2, "{v}");

    // Policy test cases with a forwarded-for chain run the same engine (the shipped cases
    // expect the shipped policy, without the new rule).
    std::fs::remove_dir_all(dir.path().join("tests")).unwrap();
    crate::common::write(
        dir.path(),
        "tests/xff.toml",
        &format!(
            "[[case]]\nname = \"campus in the chain does not exempt\"\nrequest = {{ ip = \"{TOR_EXIT}\", forwarded_for = [\"{CAMPUS}\"], wiki = \"enwiki\" }}\nexpect = {{ verdict = \"block\", rule = \"steward-tor-block\" }}\n"
        ),
    );
    editgate()
        .arg("test")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("1 passed, 0 failed"));
}
