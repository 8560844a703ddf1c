//! The opt-in decision log: hashes and prefixes, never a raw address; sampling, rotation,
//! key rotation, and a full disk that never fails a decision.

use std::path::Path;
use std::time::Duration;

use editgate::proto::AccountKind;

use crate::common::policy_dir;
use crate::server::{Running, check, http_get, metric, req};

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
    for (i, ip) in sent.iter().enumerate() {
        let mut r = req(ip, "enwiki", AccountKind::Anonymous);
        r.request_id = format!("reference-{i}");
        check(&mut c, r).await;
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
    // The wiki's request id: what an appeal quotes, to find its decision here.
    assert_eq!(lines[0]["request_id"], "reference-0");
    assert_eq!(lines[4]["request_id"], "reference-4");
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
    // Then log everything, and decide a marker: it is the first line, so none of the 50
    // above was logged (the log keeps the order of decisions).
    let everything = log_policy("decisions.jsonl", "1.0");
    std::fs::copy(everything.path().join("global.toml"), dir.path().join("global.toml")).unwrap();
    srv.state.reload().await.unwrap();
    check(&mut c, req("198.51.100.9", "", AccountKind::Anonymous)).await;
    let lines = wait_lines(&dir.path().join("decisions.jsonl"), 1).await;
    assert_eq!(lines[0]["ip_prefix"], "198.51.100.0/24", "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
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
