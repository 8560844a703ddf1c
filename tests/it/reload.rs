//! Half-written policy files, `--deny-warnings`, health that tells, a replaced policy directory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use editgate::proto::{AccountKind, Verdict};
use editgate::server::Config;

use crate::common::{copy_dir, editgate, policy_dir, write};
use crate::server::{Running, check, healthz, http_get, metric, req, until};

// --- Half-written policy files ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_written_in_parts_is_never_applied_half_written() {
    let full = "[settings]\ndefault = \"allow\"\n\n[sources.blocks]\nkind = \"ip-list\"\npath = \"blocks.txt\"\nmin_entries = 1\n\n[[rule]]\nid = \"hard-block\"\nverdict = \"block\"\nwhen.ip_in = [\"blocks\"]\n";
    let dir = policy_dir(&[("global.toml", full), ("blocks.txt", "192.0.2.0/24\n")]);
    let srv = Running::start_with(Config::new(dir.path().to_owned())).await;
    let c = srv.client().await;
    let stop = Arc::new(AtomicBool::new(false));
    let allowed = Arc::new(AtomicU64::new(0));
    let hammer = {
        let (mut c, stop, allowed) = (c.clone(), stop.clone(), allowed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if check(&mut c, req("192.0.2.1", "", AccountKind::Registered))
                    .await
                    .verdict()
                    == Verdict::Allow
                {
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // In place, in two parts, longer apart than the quiet period, the file held open.
    let (head, tail) = full.split_at(full.find("[[rule]]").unwrap());
    let path = dir.path().join("global.toml");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, head.as_bytes()).unwrap();
    std::io::Write::flush(&mut f).unwrap();
    tokio::time::sleep(Config::new(path.clone()).debounce * 2).await;
    std::io::Write::write_all(&mut f, tail.replace("hard-block", "hard-block-v2").as_bytes()).unwrap();
    drop(f);
    let mut c2 = c.clone();
    until("the finished file applies", async || {
        check(&mut c2, req("192.0.2.1", "", AccountKind::Registered))
            .await
            .rule_id
            == "hard-block-v2"
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    hammer.await.unwrap();
    assert_eq!(
        allowed.load(Ordering::Relaxed),
        0,
        "a half-written policy served `allow`"
    );
    assert_eq!(
        srv.state.reload_history().iter().filter(|r| !r.ok).count(),
        0,
        "the half file was never even tried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_warnings_refuses_a_policy_with_warnings_on_every_reload() {
    let good = "[settings]\nappeal = \"[[Project:Appeals]]\"\n\n[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip = [\"192.0.2.0/24\"]\n";
    let dir = policy_dir(&[("global.toml", good), ("x.txt", "192.0.2.1\n")]);
    let mut s = Config::new(dir.path().to_owned());
    s.watch = false;
    s.deny_warnings = true;
    let srv = Running::start_with(s).await;
    // Half a file: its sources are there, its rules not yet (an unused-source warning).
    write(
        dir.path(),
        "global.toml",
        "[settings]\nappeal = \"[[Project:Appeals]]\"\n\n[sources.x]\nkind = \"ip-list\"\npath = \"x.txt\"\nmin_entries = 1\n",
    );
    let err = srv.state.reload().await.expect_err("warnings are errors").to_string();
    assert!(
        err.contains("warning[unused-source] denied by --deny-warnings"),
        "{err}"
    );
    // The binary refuses to start on it.
    let out = editgate()
        .args(crate::common::SERVE_LOOPBACK)
        .args(["--deny-warnings", "--policies"])
        .arg(dir.path())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // A warning the policy allows never refuses it (a refusal without an appeal, here).
    write(
        dir.path(),
        "global.toml",
        "[settings]\nallow_lints = [\"appeal-unset\"]\n\n[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip = [\"192.0.2.0/24\"]\n",
    );
    srv.state.reload().await.expect("an allowed warning is not fatal");
    // A rule that merely expired never stops a start: time passing must not take it down.
    write(
        dir.path(),
        "global.toml",
        &good.replace("when.ip", "expires = 2020-01-01T00:00:00Z\nwhen.ip"),
    );
    let (mut child, line) = crate::common::spawn_serve(dir.path(), &[("EDITGATE_DENY_WARNINGS", Path::new("true"))]);
    assert!(line.contains("serving"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
}

// --- Health that tells -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_say_degraded_and_why() {
    let global = "[sources.empty]\nkind = \"ip-list\"\npath = \"empty.txt\"\nmin_entries = 0\n\n[settings.decision_log]\npath = \"no/such/dir/decisions.jsonl\"\nkey_file = \"key\"\n\n[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip_in = [\"empty\"]\n";
    let dir = policy_dir(&[
        ("global.toml", global),
        ("empty.txt", ""),
        ("key", "0123456789abcdef0123"),
    ]);
    let mut s = Config::new(dir.path().to_owned());
    s.watch = false;
    let srv = Running::start_with(s).await;
    let mut c = srv.client().await;
    check(&mut c, req("9.9.9.9", "", AccountKind::Anonymous)).await;
    let problems = |h: &serde_json::Value| h["problems"].to_string();
    until("the decision log reports its failure", async || {
        problems(&healthz(srv.http).await.1).contains("decision log: cannot open")
    })
    .await;
    let (code, h) = healthz(srv.http).await;
    assert_eq!((code, h["status"].as_str()), (200, Some("degraded")), "{h}");
    assert!(problems(&h).contains("source `empty`: holds no entries"), "{h}");
    assert_eq!(
        h["sources"][0]["problems"][0], "holds no entries: its rules match nothing",
        "{h}"
    );

    write(
        dir.path(),
        "global.toml",
        "[[rule]]\nid = \"broken\"\nverdict = \"blok\"\n",
    );
    assert!(srv.state.reload().await.is_err());
    let (_, h) = healthz(srv.http).await;
    assert_eq!(h["last_reload"]["ok"], false);
    assert!(
        h["last_reload"]["error"].as_str().unwrap().contains("global.toml:3:11"),
        "{h}"
    );
    assert!(problems(&h).contains("the last reload"), "{h}");
    let m = http_get(srv.http, "/metrics").await;
    assert_eq!(metric(&m, "editgate_degraded "), 1.0);
    assert_eq!(metric(&m, "editgate_last_reload_success "), 0.0);
    assert_eq!(metric(&m, "editgate_ready "), 1.0);

    write(
        dir.path(),
        "global.toml",
        "[[rule]]\nid = \"fine\"\nverdict = \"block\"\nwhen.ip = [\"192.0.2.0/24\"]\n",
    );
    srv.state.reload().await.unwrap();
    let (_, h) = healthz(srv.http).await;
    assert_eq!(h["status"], "serving", "{h}");
    assert_eq!(metric(&http_get(srv.http, "/metrics").await, "editgate_degraded "), 0.0);
}

// --- A replaced policy directory --------------------------------------------------------

const V1: &str = "[[rule]]\nid = \"v1\"\nverdict = \"block\"\nwhen.ip = [\"192.0.2.0/24\"]\n";

async fn rule_for(c: &mut editgate::proto::edit_gate_client::EditGateClient<tonic::transport::Channel>) -> String {
    check(c, req("192.0.2.1", "", AccountKind::Anonymous)).await.rule_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_directory_moved_and_copied_back_is_still_watched() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("policies");
    write(&dir, "global.toml", V1);
    let mut s = Config::new(dir.clone());
    s.debounce = Duration::from_millis(100);
    let srv = Running::start_with(s).await;
    let mut c = srv.client().await;
    assert_eq!(rule_for(&mut c).await, "v1");
    std::fs::rename(&dir, top.path().join("policies.old")).unwrap();
    copy_dir(&top.path().join("policies.old"), &dir);
    // Whenever the watcher notices the replacement, it watches the copy before reloading,
    // so an edit is seen either by that reload or by the new watch.
    write(&dir, "global.toml", &V1.replace("v1", "v2"));
    until("the edit to the copy applies", async || rule_for(&mut c).await == "v2").await;
    write(&dir, "global.toml", &V1.replace("v1", "v3"));
    until("later edits to the copy apply", async || rule_for(&mut c).await == "v3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_symlink_is_followed_and_watched() {
    let top = tempfile::tempdir().unwrap();
    write(&top.path().join("v1"), "global.toml", V1);
    write(&top.path().join("v2"), "global.toml", &V1.replace("v1", "v2"));
    let current = top.path().join("current");
    std::os::unix::fs::symlink("v1", &current).unwrap();
    let mut s = Config::new(current.clone());
    s.debounce = Duration::from_millis(100);
    let srv = Running::start_with(s).await;
    let mut c = srv.client().await;
    assert_eq!(rule_for(&mut c).await, "v1");
    // The usual deploy: a new link renamed over the old one (what `ln -sfn` amounts to).
    std::os::unix::fs::symlink("v2", top.path().join("current.new")).unwrap();
    std::fs::rename(top.path().join("current.new"), &current).unwrap();
    until("the swap applies", async || rule_for(&mut c).await == "v2").await;
    write(&top.path().join("v2"), "global.toml", &V1.replace("v1", "v3"));
    until("later edits to the new target apply", async || {
        rule_for(&mut c).await == "v3"
    })
    .await;
}
