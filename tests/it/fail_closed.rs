//! Issue 12, "fail closed, never open": every way an operator mistake or a hostile file once
//! let Tor and VPN edits through, made a panic or hung the service, each through the real
//! binary or a real server, as an operator or a client would meet it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use editgate::server::Config;
use editgate::server::proto::{AccountKind, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{editgate, policy_dir, shipped_policies, write};
use crate::grpc::{Running, check, http_get, http_post, metric, req};

/// A copy of the shipped policy directory.
fn shipped_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shipped_policies(), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn validate(dir: &Path) -> (i32, String) {
    let out = editgate()
        .arg("validate")
        .arg(dir)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A GET on loopback, whatever the status: (status, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
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

async fn healthz(addr: std::net::SocketAddr) -> (u16, serde_json::Value) {
    let (code, body) = get(addr, "/healthz").await;
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

/// Polls `f` until it is true (up to 20 s): real synchronization on an observable state,
/// never a sleep-then-assert.
async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

const TOR_EXIT: &str = "162.247.74.201";

// --- 1. Emptied and shrunken lists -------------------------------------------------------

#[test]
fn emptied_or_truncated_tor_lists_are_refused() {
    let tor = std::fs::read_to_string(shipped_policies().join("lists/tor-exit-addresses.txt")).unwrap();
    let first_185: String = tor.lines().take(185).map(|l| format!("{l}\n")).collect();
    for (what, text) in [
        ("empty", String::new()),
        ("comments only", "# nothing here\n# at all\n".to_owned()),
        ("a bare header", "@type tordnsel 1.0\n".to_owned()),
        ("Onionoo without relays", "{\"relays\":[]}".to_owned()),
        ("the first 185 lines", first_185),
    ] {
        let dir = shipped_copy();
        std::fs::write(dir.path().join("lists/tor-exit-addresses.txt"), &text).unwrap();
        let (code, out) = validate(dir.path());
        assert_eq!(code, 1, "{what}: {out}");
        assert!(
            out.contains("lists/tor-exit-addresses.txt") && out.contains("rejected as suspicious"),
            "{what}: {out}"
        );
    }
}

#[test]
fn a_list_without_min_entries_is_never_empty_and_validate_warns() {
    let global = "[sources.blocks]\nkind = \"ip-list\"\npath = \"blocks.txt\"\n\n[[rule]]\nid = \"b\"\nverdict = \"block\"\nwhen.ip_in = [\"blocks\"]\n";
    let dir = policy_dir(&[("global.toml", global), ("blocks.txt", "192.0.2.0/24\n")]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning[missing-min-entries]") && out.contains("`blocks`"),
        "{out}"
    );
    write(dir.path(), "blocks.txt", "# emptied\n");
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("blocks.txt") && out.contains("set `min_entries = 0`"),
        "{out}"
    );
    // Saying so makes an empty list acceptable.
    write(
        dir.path(),
        "global.toml",
        &global.replace("path = \"blocks.txt\"", "path = \"blocks.txt\"\nmin_entries = 0"),
    );
    assert_eq!(validate(dir.path()).0, 0);
}

#[test]
fn a_first_start_with_an_empty_list_is_refused() {
    let dir = shipped_copy();
    std::fs::write(dir.path().join("lists/tor-exit-addresses.txt"), "").unwrap();
    let out = editgate()
        .args(crate::common::SERVE_LOOPBACK)
        .arg("--policies")
        .arg(dir.path())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("lists/tor-exit-addresses.txt"));
}

fn blocks_policy(n: usize) -> String {
    (0..n).map(|i| format!("10.{}.{}.0/24\n", i / 256, i % 256)).collect()
}

const SHRINK_GLOBAL: &str = "[sources.blocks]\nkind = \"ip-list\"\npath = \"blocks.txt\"\nmin_entries = 1\n\n[[rule]]\nid = \"blocked-anon\"\nverdict = \"require-login\"\nwhen.ip_in = [\"blocks\"]\nwhen.account = [\"anonymous\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shrunken_list_keeps_the_serving_copy_until_confirmed() {
    let dir = policy_dir(&[("global.toml", SHRINK_GLOBAL), ("blocks.txt", &blocks_policy(100))]);
    let mut s = Config::new(dir.path().to_owned());
    s.watch = false;
    let srv = Running::start_with(s).await;
    let mut c = srv.client().await;
    // 10.0.80.1 is in entry 80, which the shrunken copy drops.
    let dropped = || req("10.0.80.1", "", AccountKind::Anonymous);
    assert_eq!(check(&mut c, dropped()).await.rule_id, "blocked-anon");

    write(dir.path(), "blocks.txt", &blocks_policy(40));
    let err = srv.state.reload().await.expect_err("a 60% shrink is refused");
    assert!(
        err.contains("40 entries, down from 100") && err.contains("editgate accept-shrink"),
        "{err}"
    );
    assert_eq!(
        check(&mut c, dropped()).await.rule_id,
        "blocked-anon",
        "the serving copy stays"
    );
    let (code, h) = healthz(srv.http).await;
    assert_eq!((code, h["status"].as_str()), (200, Some("degraded")), "{h}");
    assert_eq!(h["last_reload"]["ok"], false, "{h}");

    // The operator confirms this copy: the next reload takes it.
    let out = editgate()
        .args(["accept-shrink"])
        .arg(dir.path())
        .arg("blocks")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("blocks: confirmed `blocks.txt` (40 entries"));
    srv.state.reload().await.expect("confirmed");
    assert_eq!(check(&mut c, dropped()).await.verdict(), Verdict::Allow);
    assert_eq!(healthz(srv.http).await.1["status"], "serving");

    // A confirmation is for one copy only: the next large shrink is refused again, and an
    // empty list is refused even when any shrink is allowed.
    write(dir.path(), "blocks.txt", &blocks_policy(10));
    assert!(srv.state.reload().await.is_err());
    write(
        dir.path(),
        "global.toml",
        &SHRINK_GLOBAL.replace("min_entries = 1", "min_entries = 0\nmax_shrink = 1.0"),
    );
    write(dir.path(), "blocks.txt", "");
    let err = srv.state.reload().await.expect_err("empty");
    assert!(err.contains("0 entries, down from 40"), "{err}");
}

// --- 1 (first start) and url sources: no decisions without data --------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_fetched_url_source_decides_nothing_until_its_first_fetch() {
    use editgate_testkit::origin::{Behavior, FlakyOrigin};
    let origin = FlakyOrigin::start(Behavior::Status(503)).unwrap();
    let global = format!(
        "[sources.tor]\nkind = \"tor-exits\"\nurl = \"{}\"\npath = \"state/tor.txt\"\nrefresh = \"1s\"\nmin_entries = 2\n\n[[rule]]\nid = \"tor-anon\"\nverdict = \"require-login\"\nwhen.ip_in = [\"tor\"]\nwhen.account = [\"anonymous\"]\n",
        origin.url("tor")
    );
    let dir = policy_dir(&[("global.toml", &global)]);
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    let err = c.check(req(TOR_EXIT, "", AccountKind::Anonymous)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains("`tor`"), "{err:?}");
    let (code, h) = healthz(srv.http).await;
    assert_eq!((code, h["status"].as_str()), (503, Some("starting")), "{h}");
    let (code, body) = http_post(
        srv.http,
        "/v1/check",
        r#"{"ip":"9.9.9.9","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#,
    )
    .await;
    assert_eq!(code, 503, "{body}");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", srv.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = |h: &mut tonic_health::pb::health_client::HealthClient<tonic::transport::Channel>| {
        let mut h = h.clone();
        async move {
            h.check(tonic_health::pb::HealthCheckRequest {
                service: "editgate.v1.EditGate".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
        }
    };
    assert_eq!(status(&mut health).await, 2, "NOT_SERVING");

    origin.set(Behavior::Serve {
        body: format!("{TOR_EXIT}\n199.249.223.62\n").into_bytes(),
        etag: "\"v1\"".into(),
    });
    until("the first fetch makes it ready", async || {
        c.check(req(TOR_EXIT, "", AccountKind::Anonymous)).await.is_ok()
    })
    .await;
    assert_eq!(
        check(&mut c, req(TOR_EXIT, "", AccountKind::Anonymous)).await.rule_id,
        "tor-anon"
    );
    assert_eq!(status(&mut health).await, 1, "SERVING");
    assert_eq!(healthz(srv.http).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adding_a_url_source_waits_for_its_first_fetch() {
    use editgate_testkit::origin::{Behavior, FlakyOrigin};
    let origin = FlakyOrigin::start(Behavior::Status(503)).unwrap();
    let dir = policy_dir(&[(
        "global.toml",
        "[[rule]]\nid = \"old\"\nverdict = \"block\"\nwhen.ip = [\"192.0.2.0/24\"]\n",
    )]);
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    write(
        dir.path(),
        "global.toml",
        &format!(
            "[sources.tor]\nkind = \"tor-exits\"\nurl = \"{}\"\npath = \"state/tor.txt\"\nrefresh = \"1s\"\nmin_entries = 1\n\n[[rule]]\nid = \"new\"\nverdict = \"block\"\nwhen.ip_in = [\"tor\"]\n",
            origin.url("tor")
        ),
    );
    let err = srv.state.reload().await.expect_err("no copy yet");
    assert!(err.contains("no copy") && err.contains("never fetched"), "{err}");
    assert_eq!(
        check(&mut c, req("192.0.2.1", "", AccountKind::Anonymous))
            .await
            .rule_id,
        "old",
        "the old policy serves"
    );
    origin.set(Behavior::Serve {
        body: format!("{TOR_EXIT}\n").into_bytes(),
        etag: "\"v1\"".into(),
    });
    until("the fetched source loads", async || {
        check(&mut c, req(TOR_EXIT, "", AccountKind::Anonymous)).await.rule_id == "new"
    })
    .await;
}

// --- 2. Half-written policy files ----------------------------------------------------------

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
    let good = "[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip = [\"192.0.2.0/24\"]\n";
    let dir = policy_dir(&[("global.toml", good), ("x.txt", "192.0.2.1\n")]);
    let mut s = Config::new(dir.path().to_owned());
    s.watch = false;
    s.deny_warnings = true;
    let srv = Running::start_with(s).await;
    // Half a file: its sources are there, its rules not yet (an unused-source warning).
    write(
        dir.path(),
        "global.toml",
        "[sources.x]\nkind = \"ip-list\"\npath = \"x.txt\"\nmin_entries = 1\n",
    );
    let err = srv.state.reload().await.expect_err("warnings are errors");
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

// --- 3. Health that tells -------------------------------------------------------------------

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

// --- 4. A replaced policy directory --------------------------------------------------------

const V1: &str = "[[rule]]\nid = \"v1\"\nverdict = \"block\"\nwhen.ip = [\"192.0.2.0/24\"]\n";

async fn rule_for(
    c: &mut editgate::server::proto::edit_gate_client::EditGateClient<tonic::transport::Channel>,
) -> String {
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

// --- 5. Config out of range ----------------------------------------------------------------

#[test]
fn settings_out_of_range_are_refused_naming_the_setting() {
    let dir = shipped_policies();
    let config = tempfile::tempdir().unwrap();
    write(config.path(), "editgate.toml", "cache_ttl = \"366000d\"\n");
    /// Flags, environment, what stderr must say.
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--cache-ttl".into(), "366000d".into()],
            vec![],
            "cache_ttl: `366000d` is out of range",
        ),
        (vec![], vec![("EDITGATE_CACHE_TTL", "366000d")], "cache_ttl"),
        (
            vec![
                "--config".into(),
                config.path().join("editgate.toml").display().to_string(),
            ],
            vec![],
            "cache_ttl",
        ),
        (
            vec!["--max-message-bytes".into(), "0".into()],
            vec![],
            "max_message_bytes: 0 is out of range",
        ),
        (vec!["--request-timeout".into(), "2h".into()], vec![], "request_timeout"),
        (vec!["--drain-timeout".into(), "1y".into()], vec![], "drain_timeout"),
        (vec!["--header-timeout".into(), "0s".into()], vec![], "header_timeout"),
    ];
    for (args, env, want) in cases {
        let out = editgate()
            .args(crate::common::SERVE_LOOPBACK)
            .arg("--policies")
            .arg(&dir)
            .args(&args)
            .envs(env.iter().copied())
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}

// --- 7. Special and huge files ---------------------------------------------------------------

#[test]
fn a_fifo_or_a_device_in_place_of_a_list_is_refused_at_once() {
    for (what, make) in [
        (
            "a FIFO",
            (|p: &Path| {
                assert!(std::process::Command::new("mkfifo").arg(p).status().unwrap().success());
            }) as fn(&Path),
        ),
        ("a link to /dev/zero", |p: &Path| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
        ("a directory", |p: &Path| std::fs::create_dir(p).unwrap()),
    ] {
        let dir = shipped_copy();
        let list = dir.path().join("lists/vpn.txt");
        std::fs::remove_file(&list).unwrap();
        make(&list);
        let (code, out) = validate(dir.path());
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains("lists/vpn.txt"), "{what}: {out}");
    }
}

#[test]
fn a_list_larger_than_max_bytes_is_refused() {
    let dir = shipped_copy();
    let global = std::fs::read_to_string(dir.path().join("global.toml")).unwrap();
    write(
        dir.path(),
        "global.toml",
        &global.replace("path = \"lists/vpn.txt\"", "path = \"lists/vpn.txt\"\nmax_bytes = 1000"),
    );
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("larger than the 1000 bytes allowed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_does_not_wedge_reloads() {
    let dir = policy_dir(&[("global.toml", SHRINK_GLOBAL), ("blocks.txt", &blocks_policy(10))]);
    let mut s = Config::new(dir.path().to_owned());
    s.watch = false;
    let srv = Running::start_with(s).await;
    std::fs::remove_file(dir.path().join("blocks.txt")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(dir.path().join("blocks.txt"))
            .status()
            .unwrap()
            .success()
    );
    let err = tokio::time::timeout(Duration::from_secs(20), srv.state.reload())
        .await
        .expect("the reload returns")
        .expect_err("a FIFO is not a list");
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_file(dir.path().join("blocks.txt")).unwrap();
    write(dir.path(), "blocks.txt", &blocks_policy(11));
    srv.state.reload().await.expect("reloads work again");
}

// --- 8. Shutdown with open streams --------------------------------------------------------------

/// The real binary with a `CheckStream` held open; returns the child and the open stream's
/// sender (dropping it would end the stream).
async fn serve_with_open_stream(
    extra: &[&str],
) -> (
    std::process::Child,
    tokio::sync::mpsc::Sender<editgate::server::proto::CheckRequest>,
    tonic::Streaming<editgate::server::proto::CheckResponse>,
) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("editgate"))
        .args(crate::common::SERVE_LOOPBACK)
        .args(["--no-watch", "--policies"])
        .arg(shipped_policies())
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grpc = line.split_whitespace().nth(4).unwrap().to_owned();
    let mut c = editgate::server::proto::edit_gate_client::EditGateClient::connect(format!("http://{grpc}"))
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
    use std::io::{BufRead, BufReader};
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
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let (grpc, http): (std::net::SocketAddr, std::net::SocketAddr) =
        (words[4].parse().unwrap(), words[8].parse().unwrap());
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
        async || match editgate::server::proto::edit_gate_client::EditGateClient::connect(format!("http://{grpc}"))
            .await
        {
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
        tokio::time::timeout(Duration::from_secs(2), get(http, "/healthz"))
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

// --- 10, 11. One Attempt for every entry point; odd wiki ids ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_point_normalizes_wiki_ids_alike() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    // A registered, young account on Tor: enwiki's own rule decides, on enwiki only.
    let age = "2d";
    for wiki in ["enwiki", "EnWiki", " ENWIKI "] {
        let mut r = req(TOR_EXIT, wiki, AccountKind::Registered);
        r.account.as_mut().unwrap().registered_at = Some(prost_types::Timestamp {
            seconds: jiff::Timestamp::now().as_second() - 2 * 86_400,
            nanos: 0,
        });
        let grpc = check(&mut c, r).await.rule_id;
        let json = format!(
            r#"{{"ip":"{TOR_EXIT}","wiki":{wiki:?},"action":"EDIT","account":{{"kind":"ACCOUNT_KIND_REGISTERED","registeredAt":"{}"}}}}"#,
            jiff::Timestamp::now() - jiff::SignedDuration::from_hours(48)
        );
        let (_, body) = http_post(srv.http, "/v1/check", &json).await;
        let http: serde_json::Value = serde_json::from_str(&body).unwrap();
        let cli = editgate()
            .args([
                "check",
                "--json",
                "--ip",
                TOR_EXIT,
                "--account",
                "registered",
                "--age",
                age,
                "--action",
                "EDIT",
                "--wiki",
                wiki,
                "--policies",
            ])
            .arg(shipped_policies())
            .output()
            .unwrap();
        let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap_or_else(|_| panic!("{cli:?}"));
        let cases = tempfile::tempdir().unwrap();
        copy_dir(&shipped_policies(), cases.path());
        std::fs::remove_dir_all(cases.path().join("tests")).unwrap();
        write(
            cases.path(),
            "tests/t.toml",
            &format!(
                "[[case]]\nname = \"odd case\"\nrequest = {{ ip = \"{TOR_EXIT}\", wiki = {wiki:?}, action = \"EDIT\", account = \"registered\", age = \"{age}\" }}\nexpect = {{ verdict = \"block\", rule = \"enwiki-tor-young-account\" }}\n"
            ),
        );
        let test = editgate().arg("test").arg(cases.path()).output().unwrap();
        // Replay against the policy without enwiki's file: the attempt moves from enwiki's
        // rule to the global one, which shows the wiki id was read as enwiki.
        let replay_in = cases.path().join("attempts.jsonl");
        std::fs::write(&replay_in, &json).unwrap();
        std::fs::remove_file(cases.path().join("wikis/enwiki.toml")).unwrap();
        std::fs::remove_dir_all(cases.path().join("tests")).unwrap();
        let replay = editgate()
            .args(["replay", "--json", "--policies"])
            .arg(shipped_policies())
            .arg("--against")
            .arg(cases.path())
            .arg("--attempts")
            .arg(&replay_in)
            .output()
            .unwrap();
        let replay: serde_json::Value = serde_json::from_slice(&replay.stdout).unwrap_or_else(|_| panic!("{replay:?}"));
        let moved = replay["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule_id"] == "enwiki-tor-young-account" && r["old"] == 1 && r["new"] == 0);
        assert_eq!(grpc, "enwiki-tor-young-account", "{wiki:?}");
        assert_eq!(http["ruleId"], "enwiki-tor-young-account", "{wiki:?}: {body}");
        assert_eq!(cli["rule_id"], "enwiki-tor-young-account", "{wiki:?}");
        assert!(
            test.status.success(),
            "{wiki:?}: {}",
            String::from_utf8_lossy(&test.stdout)
        );
        assert!(moved, "{wiki:?}: {replay}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiki_id_outside_the_charset_is_refused_everywhere() {
    let srv = Running::start(&shipped_policies()).await;
    let odd = "ｏfficewiki";
    let (code, body) = http_post(
        srv.http,
        "/v1/check",
        &format!(r#"{{"ip":"9.9.9.9","wiki":"{odd}","account":{{"kind":"ACCOUNT_KIND_ANONYMOUS"}}}}"#),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("\"code\":\"InvalidArgument\"") && body.contains("wiki:"),
        "{body}"
    );
    let (code, body) = http_post(
        srv.http,
        "/v1/check",
        r#"{"ip":"9.9.9.9","wiki":"officewiki\u0000","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let cli = editgate()
        .args(["check", "--ip", "9.9.9.9", "--wiki", odd, "--policies"])
        .arg(shipped_policies())
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&cli.stderr).contains("--wiki: `ｏfficewiki` is not a wiki id"),
        "{cli:?}"
    );
    let cases = tempfile::tempdir().unwrap();
    copy_dir(&shipped_policies(), cases.path());
    write(
        cases.path(),
        "tests/odd.toml",
        &format!(
            "[[case]]\nname = \"odd\"\nrequest = {{ ip = \"9.9.9.9\", wiki = \"{odd}\" }}\nexpect = {{ verdict = \"block\" }}\n"
        ),
    );
    let test = editgate().arg("test").arg(cases.path()).output().unwrap();
    assert_eq!(test.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&test.stderr).contains("tests/odd.toml:3:11: error: request: wiki:"),
        "{test:?}"
    );
}

#[test]
fn wiki_files_with_odd_names_are_errors_not_skipped() {
    let dir = shipped_copy();
    std::fs::rename(
        dir.path().join("wikis/officewiki.toml"),
        dir.path().join("wikis/officewiki.TOML"),
    )
    .unwrap();
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("wikis/officewiki.TOML: error: not a wiki file"), "{out}");
    std::fs::rename(
        dir.path().join("wikis/officewiki.TOML"),
        dir.path().join("wikis/officewiki.toml"),
    )
    .unwrap();
    // Editors' swap and backup files are left alone.
    write(dir.path(), "wikis/.enwiki.toml.swp", "binary junk \u{1}");
    write(dir.path(), "wikis/enwiki.toml~", "old copy");
    assert_eq!(validate(dir.path()).0, 0);
    // A name that is not UTF-8.
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"de\xffwiki.toml");
    std::fs::write(dir.path().join("wikis").join(bad), "").unwrap();
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not valid UTF-8"), "{out}");
}

// --- 12. Host bits ---------------------------------------------------------------------------------

#[test]
fn host_bits_are_errors_in_rules_and_lists_unless_masking_is_asked_for() {
    let dir = policy_dir(&[(
        "global.toml",
        "[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip = [\"198.51.100.0/24\", \"203.0.113.4/24\"]\n",
    )]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("global.toml:4:31: error: `203.0.113.4/24` has host bits set: as a network it is `203.0.113.0/24` (256 addresses)"), "{out}");

    let dir = shipped_copy();
    std::fs::write(
        dir.path().join("lists/hard-blocks.txt"),
        "192.0.2.0/24\n203.0.113.4/24\n",
    )
    .unwrap();
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("lists/hard-blocks.txt:2:1:") && out.contains("mask_host_bits"),
        "{out}"
    );
    let global = std::fs::read_to_string(dir.path().join("global.toml")).unwrap();
    write(
        dir.path(),
        "global.toml",
        &global.replace(
            "path = \"lists/hard-blocks.txt\"",
            "path = \"lists/hard-blocks.txt\"\nmask_host_bits = true",
        ),
    );
    assert_eq!(validate(dir.path()).0, 0);

    let dir = policy_dir(&[(
        "global.toml",
        "[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip = [\"010.0.0.0/8\"]\n",
    )]);
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("`010.0.0.0/8` is not an IP address or CIDR network"),
        "{out}"
    );
}

// --- 13. Error quality -------------------------------------------------------------------------------

#[test]
fn a_broken_global_toml_is_reported_once_not_as_unknown_sources_in_wiki_files() {
    let dir = shipped_copy();
    let global = std::fs::read_to_string(dir.path().join("global.toml")).unwrap();
    write(
        dir.path(),
        "global.toml",
        &format!("{global}\n[[rule]\nid = \"oops\"\n"),
    );
    let (code, out) = validate(dir.path());
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.matches(": error:").count(), 1, "{out}");
    assert!(!out.contains("unknown source"), "{out}");
}

#[test]
fn positions_and_words_for_hard_inputs() {
    let deep = format!("[settings]\n{}b = 1\n", "a.".repeat(100));
    let dir = policy_dir(&[("global.toml", &deep)]);
    let (_, out) = validate(dir.path());
    assert!(
        out.contains("global.toml:2:1: error: a dotted key of 80 or more parts"),
        "{out}"
    );

    let dir = policy_dir(&[(
        "global.toml",
        "[[rule]]\nid = \"r\"\nverdict = \"allow\"\nexpires = 9999-12-31T23:59:59Z\n",
    )]);
    let (_, out) = validate(dir.path());
    assert!(
        out.contains("is outside the times editgate handles") && !out.contains("253402"),
        "{out}"
    );

    let dir = shipped_copy();
    std::fs::write(
        dir.path().join("lists/hard-blocks.txt"),
        b"192.0.2.0/24\n2001:db8:\xff::/48\n",
    )
    .unwrap();
    let (_, out) = validate(dir.path());
    assert!(
        out.contains("lists/hard-blocks.txt:2:10:") && out.contains("not a text file"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_json_and_malformed_protobuf_is_invalid_argument() {
    let mut s = Config::new(shipped_policies());
    s.watch = false;
    s.max_message_bytes = 2048;
    let srv = Running::start_with(s).await;
    let big = format!(r#"{{"ip":"9.9.9.9","requestId":"{}"}}"#, "x".repeat(5000));
    let (code, body) = http_post(srv.http, "/v1/check", &big).await;
    assert_eq!(code, 413, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"],
        "OutOfRange"
    );

    let mut conn = tokio::net::TcpStream::connect(srv.http).await.unwrap();
    conn.write_all(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .await
        .unwrap();
    let mut out = String::new();
    conn.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 415"), "{out}");
    assert!(
        out.contains("application/json") && out.contains("Content-Encoding `gzip`"),
        "{out}"
    );

    // Bytes that are no CheckRequest, through a real gRPC client.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", srv.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let err = grpc
        .unary::<Vec<u8>, Vec<u8>, RawCodec>(
            tonic::Request::new(vec![0x0a, 0xff, 0xff, 0xff]),
            http::uri::PathAndQuery::from_static("/editgate.v1.EditGate/Check"),
            RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("malformed protobuf"), "{err:?}");
}

/// A gRPC codec that sends and receives raw bytes, to send what no generated client would.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

// --- 14. Anonymous means no account ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_requests_registration_time_never_counts() {
    let global = "[[rule]]\nid = \"young\"\nverdict = \"block\"\nwhen.max_age = \"1d\"\n";
    let dir = policy_dir(&[("global.toml", global)]);
    let mut s = Config::new(dir.path().to_owned());
    s.watch = false;
    let srv = Running::start_with(s).await;
    let (_, body) = http_post(
        srv.http,
        "/v1/check",
        r#"{"ip":"9.9.9.9","account":{"kind":"ACCOUNT_KIND_ANONYMOUS","registeredAt":"2026-11-01T00:00:00Z","editCount":"500"}}"#,
    )
    .await;
    assert!(body.contains("\"ruleId\":\"young\""), "{body}");
    let cli = editgate()
        .args([
            "check",
            "--json",
            "--ip",
            "9.9.9.9",
            "--account",
            "anonymous",
            "--age",
            "10d",
            "--policies",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&cli.stdout).contains("\"rule_id\":\"young\""),
        "{cli:?}"
    );
}

// --- 15. Lints -----------------------------------------------------------------------------------

#[test]
fn empty_groups_rights_and_unless_tables_are_flagged() {
    for (table, want) in [
        ("when.groups = []", "`groups = []` holds for nothing"),
        ("when.rights = []", "`rights = []` holds for nothing"),
        ("unless = {}", "an empty `unless` table always holds"),
    ] {
        let dir = policy_dir(&[(
            "global.toml",
            &format!("[[rule]]\nid = \"r\"\nverdict = \"block\"\n{table}\n"),
        )]);
        let (code, out) = validate(dir.path());
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("warning[impossible-condition]") && out.contains(want),
            "{table}: {out}"
        );
    }
}
