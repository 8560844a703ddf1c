//! Spur's feeds through the service and the CLI: the worked policy of docs/policy.md
//! (`examples/spur`) on the fixture, the reputation in every answer (gRPC, HTTP/JSON, explain,
//! the console), a feed fetched to disk as a stream and refused when cut short, and a feed
//! that breaks on reload leaving the last good one serving.

use std::path::Path;

use editgate::fetch::{FetchError, Fetched, ShrinkGuard, fetch};
use editgate::proto::AccountKind;
use editgate::server::Config;
use editgate_core::load::load_dir;
use editgate_testkit::origin::{Behavior, FlakyOrigin};
use jiff::Timestamp;

use crate::common::{editgate, fixture, policy_dir, repo};
use crate::server::{Running, check, healthz, http_request, req};

const FEED: &str = "spur/anonymous-sample.json";

fn sample() -> String {
    std::fs::read_to_string(fixture(FEED)).unwrap()
}

/// The worked policy with its feed at `feed.json` (and `min_entries` the fixture meets).
fn worked_policy(feed: &str) -> tempfile::TempDir {
    let global = std::fs::read_to_string(repo().join("examples/spur/policies/global.toml"))
        .unwrap()
        .replace("/var/lib/editgate/sources/spur-anonymous.json.gz", "feed.json");
    let cases = std::fs::read_to_string(repo().join("examples/spur/policies/tests/spur.toml")).unwrap();
    policy_dir(&[
        ("global.toml", &global),
        ("tests/spur.toml", &cases),
        ("feed.json", feed),
    ])
}

#[test]
fn the_worked_policy_validates_and_passes_its_cases() {
    let stdout = crate::common::validate_files(&repo().join("examples/spur/policies"));
    assert!(stdout.contains("4 rules, 1 source"), "{stdout}");
    let dir = worked_policy(&sample());
    editgate()
        .args(["validate", "--deny-warnings"])
        .arg(dir.path())
        .assert()
        .success();
    let out = editgate().arg("test").arg(dir.path()).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("7 passed, 0 failed"), "{stdout}");
    // docs/policy.md shows the same rules.
    let docs = std::fs::read_to_string(repo().join("docs/policy.md")).unwrap();
    let example = std::fs::read_to_string(repo().join("examples/spur/policies/global.toml")).unwrap();
    for line in example
        .lines()
        .filter(|l| l.starts_with("when.") || l.starts_with("unless.") || l.starts_with("id ="))
    {
        assert!(docs.contains(line), "docs/policy.md lacks `{line}` of examples/spur");
    }
}

#[test]
fn explain_shows_the_reputation() {
    let dir = worked_policy(&sample());
    let out = editgate()
        .args(["explain", "--policies"])
        .arg(dir.path())
        .args(["--ip", "198.19.10.4"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("spur (spur): 3 clients"), "{stdout}");
    assert!(stdout.contains("risks: CALLBACK_PROXY, GEO_MISMATCH"), "{stdout}");
    assert!(stdout.contains("tunnel_operators: OXYLABS_PROXY"), "{stdout}");
    assert!(stdout.contains("rule: spur-callback-proxy"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_reputation() {
    let dir = worked_policy(&sample());
    let r = Running::start(dir.path()).await;
    let mut c = r.client().await;
    let a = check(&mut c, req("198.19.10.1", "enwiki", AccountKind::Anonymous)).await;
    assert_eq!(a.rule_id, "spur-commercial-vpn");
    assert_eq!(a.sources, ["spur"]);
    let rep = a.reputation.expect("a reputation");
    assert_eq!(rep.sources, ["spur"]);
    assert_eq!(rep.tunnel_operators, ["NORD_VPN"]);
    assert_eq!(rep.tunnel_types, ["VPN"]);
    assert_eq!(rep.client_count, 27);
    assert_eq!(rep.infrastructure, ["DATACENTER"]);
    let clean = check(&mut c, req("9.9.9.9", "enwiki", AccountKind::Anonymous)).await;
    assert!(clean.reputation.is_none() && clean.sources.is_empty(), "{clean:?}");
    // HTTP/JSON: the same, in the proto3 JSON mapping.
    let body = r#"{"ip":"198.19.10.5","wiki":"enwiki","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#;
    let (status, reply) = crate::server::http_post(r.http, "/v1/check", body).await;
    assert_eq!(status, 200, "{reply}");
    let json: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(json["ruleId"], "spur-shared-carrier");
    assert_eq!(json["reputation"]["clientCount"], 4200);
    assert_eq!(json["reputation"]["risks"], serde_json::json!(["CALLBACK_PROXY"]));
    assert_eq!(
        json["reputation"]["clientProxies"],
        serde_json::json!(["BRIGHTDATA_PROXY"])
    );
    // Explain over HTTP and the console's explain page.
    let (_, reply) = crate::server::http_post(r.http, "/v1/explain", body).await;
    let json: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        json["facts"]["reputation"]["infrastructure"],
        serde_json::json!(["MOBILE"])
    );
    let page = http_request(r.http, "/explain?ip=198.19.10.3&wiki=enwiki").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("PROTON_VPN") && page.body.contains("EXPRESS_VPN"),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_broken_on_reload_leaves_the_last_good_one_serving() {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(sample().as_bytes()).unwrap();
    let good = gz.finish().unwrap();
    let dir = worked_policy("");
    std::fs::write(dir.path().join("feed.json"), &good).unwrap();
    let mut config = Config::new(dir.path().to_owned());
    config.watch = false;
    let r = Running::start_with(config).await;
    let mut c = r.client().await;
    let before = r.state.current().generation;
    // Cut short, as an interrupted copy would be.
    std::fs::write(dir.path().join("feed.json"), &good[..good.len() - 40]).unwrap();
    let err = r.state.reload().await.expect_err("a cut-short feed loaded");
    assert!(err.to_string().contains("cut short"), "{err}");
    assert_eq!(r.state.current().generation, before, "a broken feed was swapped in");
    let a = check(&mut c, req("198.19.10.1", "enwiki", AccountKind::Anonymous)).await;
    assert_eq!(a.rule_id, "spur-commercial-vpn", "the last good feed stopped serving");
    let (code, health) = healthz(r.http).await;
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["status"], "degraded");
    let problems = health["problems"].to_string();
    assert!(
        problems.contains("feed.json") && problems.contains("cut short"),
        "{problems}"
    );
}

fn feed_policy(dir: &Path, url: &str) -> editgate_core::policy::SourceDef {
    let text = format!(
        "[sources.spur]\nkind = \"spur-feed\"\nurl = \"{url}\"\npath = \"cache/spur.json.gz\"\nmin_entries = 3\n"
    );
    crate::common::write(dir, "global.toml", &text);
    load_dir(dir, Timestamp::now()).unwrap().snapshot.policy.sources[0].clone()
}

#[test]
fn a_feed_is_fetched_to_disk_and_refused_when_cut_short() {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(sample().as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    let origin = FlakyOrigin::start(Behavior::Serve {
        body: body.clone(),
        etag: "\"v1\"".into(),
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let def = feed_policy(dir.path(), &origin.url("latest.json.gz"));
    let out = fetch(dir.path(), &def, Timestamp::now(), ShrinkGuard::default());
    assert!(matches!(out, Ok(Fetched::Updated { entries: 6, .. })), "{out:?}");
    assert_eq!(std::fs::read(dir.path().join("cache/spur.json.gz")).unwrap(), body);
    // The same bytes again: confirmed, not rewritten.
    let out = fetch(dir.path(), &def, Timestamp::now(), ShrinkGuard::default());
    assert!(matches!(out, Ok(Fetched::NotModified)), "{out:?}");
    // A connection closed halfway, then a body that is not a feed: the copy stays.
    origin.set(Behavior::Truncate(body.clone()));
    let out = fetch(dir.path(), &def, Timestamp::now(), ShrinkGuard::default());
    assert!(out.is_err(), "{out:?}");
    origin.set(Behavior::Serve {
        body: b"<html>maintenance</html>".to_vec(),
        etag: "\"v2\"".into(),
    });
    let out = fetch(dir.path(), &def, Timestamp::now(), ShrinkGuard::default());
    assert!(matches!(&out, Err(FetchError::Invalid(e)) if e.line == 1), "{out:?}");
    assert_eq!(std::fs::read(dir.path().join("cache/spur.json.gz")).unwrap(), body);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}
