//! Live `url` sources against a local origin on loopback that succeeds, fails, times out,
//! serves garbage and serves a shrunken list: the fetch function alone, then the server.

use std::path::Path;
use std::time::Duration;

use editgate::fetch::{FetchError, Fetched, ShrinkGuard, fetch, label};
use editgate::proto::{AccountKind, Verdict};
use editgate_core::load::load_dir;
use editgate_core::sidecar::read_meta;
use editgate_testkit::origin::{Behavior, FlakyOrigin};
use jiff::Timestamp;

use crate::common::{policy_dir, write};
use crate::server::{Running, check, http_get, metric, req};

/// Twelve real exit addresses (tests/fixtures/tor, 2018-10-11), as a bulk list.
fn tor_list(n: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(crate::common::fixture("tor/exit-addresses-2018-10-11.txt")).unwrap();
    let ips: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("ExitAddress "))
        .filter_map(|l| l.split(' ').next())
        .take(n)
        .collect();
    assert_eq!(ips.len(), n);
    (ips.join("\n") + "\n").into_bytes()
}

const TOR_IP: &str = "162.247.74.201";
const LATER_TOR_IP: &str = "199.249.223.62";

fn policy(url: &str) -> String {
    format!(
        r#"
[sources.tor]
kind = "tor-exits"
url = "{url}"
path = "cache/tor.txt"
refresh = "1s"
timeout = "1s"
min_entries = 5
max_age = "1h"

[[rule]]
id = "tor-anonymous"
verdict = "require-login"
message = "editgate-tor-login"
when = {{ ip_in = ["tor"], account = ["anonymous"] }}
"#
    )
}

fn serve_list(origin: &FlakyOrigin, body: Vec<u8>, etag: &str) {
    origin.set(Behavior::Serve {
        body,
        etag: format!("\"{etag}\""),
    });
}

fn def(dir: &Path) -> editgate_core::policy::SourceDef {
    load_dir(dir, Timestamp::now()).expect("loads").snapshot.policy.sources[0].clone()
}

#[test]
fn fetch_saves_good_copies_and_keeps_them_through_every_failure() {
    let origin = FlakyOrigin::start(Behavior::Status(503)).unwrap();
    let dir = policy_dir(&[("global.toml", &policy(&origin.url("tor")))]);
    let cache = dir.path().join("cache/tor.txt");

    // Never fetched: the policy loads, the source is empty and stale.
    let loaded = load_dir(dir.path(), Timestamp::now()).unwrap();
    let info = &loaded.snapshot.sources()[0];
    assert!(info.awaiting_first_fetch() && info.is_stale(Timestamp::now(), None));
    let d = def(dir.path());

    // An error status: nothing written.
    let out = fetch(dir.path(), &d, Timestamp::now(), ShrinkGuard::default());
    assert!(
        matches!(&out, Err(FetchError::Status(s)) if s.as_u16() == 503),
        "{out:?}"
    );
    assert_eq!(label(&out), "failed");
    assert!(!cache.exists());

    // Success: saved with its validators.
    serve_list(&origin, tor_list(12), "v1");
    let out = fetch(dir.path(), &d, Timestamp::now(), ShrinkGuard::default());
    assert!(matches!(out, Ok(Fetched::Updated { entries: 12, .. })), "{out:?}");
    let good = std::fs::read(&cache).unwrap();
    assert_eq!(good, tor_list(12));
    assert_eq!(read_meta(&cache).unwrap().etag.as_deref(), Some("\"v1\""));
    let loaded = load_dir(dir.path(), Timestamp::now()).unwrap();
    assert_eq!(loaded.snapshot.sources()[0].entries, 12);
    assert!(!loaded.snapshot.sources()[0].is_stale(Timestamp::now(), None));

    // A conditional request: 304, the copy is confirmed, not rewritten.
    let later = Timestamp::now() + jiff::SignedDuration::from_secs(60);
    let out = fetch(dir.path(), &d, later, ShrinkGuard::default());
    assert!(matches!(out, Ok(Fetched::NotModified)), "{out:?}");
    assert_eq!(origin.seen().last().unwrap().if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!(read_meta(&cache).unwrap().confirmed_at, Some(later));

    // Garbage, a shrunken list, a hang past the timeout, a truncated body: all leave the
    // good copy in place.
    origin.set(Behavior::Serve {
        body: b"<html>captive portal</html>\n".to_vec(),
        etag: "\"g\"".into(),
    });
    let out = fetch(dir.path(), &d, Timestamp::now(), ShrinkGuard::default());
    assert!(
        matches!(&out, Err(e @ FetchError::Invalid(p)) if p.line == 1 && e.to_string().contains("line 1")),
        "{out:?}"
    );
    assert_eq!(label(&out), "rejected");

    serve_list(&origin, tor_list(3), "small");
    let out = fetch(dir.path(), &d, Timestamp::now(), ShrinkGuard::default());
    assert!(
        matches!(&out, Err(FetchError::Invalid(p)) if p.message.contains("3 entries") && p.message.contains("min_entries = 5")),
        "{out:?}"
    );

    origin.set(Behavior::Hang(Duration::from_secs(3)));
    let out = fetch(dir.path(), &d, Timestamp::now(), ShrinkGuard::default());
    assert!(
        matches!(&out, Err(e @ FetchError::Request(_)) if e.to_string().to_lowercase().contains("timeout") || e.to_string().to_lowercase().contains("timed out")),
        "{out:?}"
    );

    origin.set(Behavior::Truncate(tor_list(12)));
    let out = fetch(dir.path(), &d, Timestamp::now(), ShrinkGuard::default());
    assert!(matches!(out, Err(FetchError::Request(_))), "{out:?}");

    assert_eq!(std::fs::read(&cache).unwrap(), good, "the last good copy must survive");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

#[test]
fn a_body_over_max_bytes_is_refused() {
    let origin = FlakyOrigin::start(Behavior::Status(200)).unwrap();
    let text = policy(&origin.url("tor")).replace("min_entries = 5", "min_entries = 5\nmax_bytes = 64");
    let dir = policy_dir(&[("global.toml", &text)]);
    serve_list(&origin, tor_list(12), "big");
    let out = fetch(dir.path(), &def(dir.path()), Timestamp::now(), ShrinkGuard::default());
    assert!(
        matches!(&out, Err(e @ FetchError::TooLarge(64)) if e.to_string().contains("max_bytes = 64")),
        "{out:?}"
    );
    assert_eq!(label(&out), "rejected");
    assert!(!dir.path().join("cache/tor.txt").exists());
}

#[test]
fn a_hand_edited_copy_below_min_entries_fails_the_load() {
    let dir = policy_dir(&[("global.toml", &policy("http://127.0.0.1:9/never"))]);
    write(dir.path(), "cache/tor.txt", "192.0.2.1\n");
    let err = load_dir(dir.path(), Timestamp::now()).unwrap_err().to_string();
    assert!(
        err.contains("cache/tor.txt") && err.contains("min_entries = 5"),
        "{err}"
    );
}

async fn verdict(r: &Running, ip: &str) -> Verdict {
    let mut c = r.client().await;
    let resp = check(&mut c, req(ip, "enwiki", AccountKind::Anonymous)).await;
    Verdict::try_from(resp.verdict).unwrap()
}

/// Waits until the origin has answered `n` more requests and the server has recorded the
/// result, so the next check sees whatever the fetch did.
async fn wait_fetches(origin: &FlakyOrigin, r: &Running, n: u64, result: &str) {
    let start = origin.requests();
    for _ in 0..400 {
        let st = r.state.fetches.status("tor");
        if origin.requests() >= start + n && st.as_ref().and_then(|s| s.last_result) == Some(result) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no `{result}` fetch after {n} requests: {:?}",
        r.state.fetches.status("tor")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refreshes_and_keeps_serving_its_last_good_list() {
    let origin = FlakyOrigin::start(Behavior::Status(200)).unwrap();
    serve_list(&origin, tor_list(12), "v1");
    let dir = policy_dir(&[("global.toml", &policy(&origin.url("tor")))]);

    let r = Running::start(dir.path()).await;
    // The first fetch happens at start; the server reloads when it lands.
    for _ in 0..400 {
        if r.state.current().snapshot.sources()[0].entries == 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(verdict(&r, TOR_IP).await, Verdict::RequireLogin);
    let generation = r.state.current().generation;

    // 304s: confirmed, no rebuild.
    wait_fetches(&origin, &r, 2, "not_modified").await;
    assert_eq!(r.state.current().generation, generation);

    // Every failure keeps the list serving.
    for (behavior, result) in [
        (Behavior::Status(500), "failed"),
        (
            Behavior::Serve {
                body: b"\x00\x01garbage".to_vec(),
                etag: "\"x\"".into(),
            },
            "rejected",
        ),
        (
            Behavior::Serve {
                body: tor_list(2),
                etag: "\"tiny\"".into(),
            },
            "rejected",
        ),
        (Behavior::Hang(Duration::from_secs(2)), "failed"),
    ] {
        origin.set(behavior);
        wait_fetches(&origin, &r, 1, result).await;
        assert_eq!(
            verdict(&r, TOR_IP).await,
            Verdict::RequireLogin,
            "after a `{result}` fetch"
        );
    }
    assert_eq!(r.state.current().generation, generation);
    let health: serde_json::Value = serde_json::from_str(&http_get(r.http, "/healthz").await).unwrap();
    let tor = &health["sources"][0];
    assert_eq!(tor["stale"], false);
    assert_eq!(tor["fetch"]["last_result"], "failed");
    assert!(tor["fetch"]["consecutive_failures"].as_u64().unwrap() >= 4, "{health}");
    let metrics = http_get(r.http, "/metrics").await;
    assert!(
        metric(
            &metrics,
            "editgate_source_fetches_total{source=\"tor\",result=\"rejected\"}"
        ) >= 2.0
    );
    assert!(
        metric(
            &metrics,
            "editgate_source_fetches_total{source=\"tor\",result=\"updated\"}"
        ) >= 1.0
    );

    // A new list (without the first address, with a later one) replaces the old.
    let mut newer = tor_list(12);
    newer.drain(..TOR_IP.len() + 1);
    serve_list(&origin, newer, "v2");
    for _ in 0..400 {
        if r.state.current().generation > generation {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(verdict(&r, TOR_IP).await, Verdict::Allow);
    assert_eq!(verdict(&r, LATER_TOR_IP).await, Verdict::RequireLogin);
    drop(r);

    // A restart without the network serves the saved copy.
    drop(origin);
    let r = Running::start(dir.path()).await;
    assert_eq!(r.state.current().snapshot.sources()[0].entries, 11);
    assert_eq!(verdict(&r, LATER_TOR_IP).await, Verdict::RequireLogin);
}

#[test]
fn the_fetch_command_primes_the_copy() {
    let origin = FlakyOrigin::start(Behavior::Status(200)).unwrap();
    serve_list(&origin, tor_list(12), "v1");
    let dir = policy_dir(&[("global.toml", &policy(&origin.url("tor")))]);
    assert_cmd::Command::cargo_bin("editgate")
        .unwrap()
        .args(["fetch"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicates::str::contains("tor: updated: 12 entries"));
    origin.set(Behavior::Status(404));
    assert_cmd::Command::cargo_bin("editgate")
        .unwrap()
        .args(["fetch"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicates::str::contains("tor: failed: HTTP 404"));
    assert_eq!(std::fs::read(dir.path().join("cache/tor.txt")).unwrap(), tor_list(12));
}

#[test]
fn url_settings_are_checked_with_positions() {
    for (text, want) in [
        (
            "[sources.t]\nkind = \"tor-exits\"\nurl = \"https://example.org/x\"\n",
            "also needs a `path`",
        ),
        (
            "[sources.t]\nkind = \"ip-list\"\npath = \"x\"\nurl = \"ftp://example.org/x\"\n",
            "4:7: source `t`: `url` must be an `http://` or `https://` address",
        ),
        (
            "[sources.t]\nkind = \"ip-list\"\npath = \"x\"\nrefresh = \"5m\"\n",
            "4:11: `refresh` only applies to sources with a `url`",
        ),
        (
            "[sources.t]\nkind = \"ip-list\"\npath = \"x\"\nurl = \"http://h/x\"\nrefresh = \"0s\"\n",
            "5:11: `refresh = \"0s\"` must be between 1s and 30d",
        ),
        // A refresh too long to schedule is an error, not a panic later.
        (
            "[sources.t]\nkind = \"ip-list\"\npath = \"x\"\nurl = \"http://h/x\"\nrefresh = \"99999999w\"\n",
            "`refresh = \"99999999w\"` must be between 1s and 30d",
        ),
        (
            "[sources.t]\nkind = \"ip-list\"\npath = \"x\"\nurl = \"http://h/x\"\ntimeout = \"2h\"\n",
            "`timeout = \"2h\"` must be between 1s and 1h",
        ),
        (
            "[sources.t]\nkind = \"ip-list\"\npath = \"x\"\nauth_file = \"token\"\n",
            "4:13: `auth_file` only applies to sources with a `url`",
        ),
        (
            "[sources.t]\nkind = \"ip-list\"\npath = \"x\"\nurl = \"http://h/x\"\nauth_header = \"Token\"\n",
            "5:15: `auth_header` needs `auth_file` too",
        ),
        (
            "[sources.t]\nkind = \"ip-list\"\npath = \"x\"\nurl = \"http://h/x\"\nauth_header = \"Token: x\"\nauth_file = \"t\"\n",
            "`auth_header = \"Token: x\"` is not an HTTP header name",
        ),
        (
            "[sources.t]\nkind = \"maxmind-asn\"\npath = \"x\"\nmin_entries = 3\n",
            "`min_entries` only applies to sources that count entries",
        ),
    ] {
        let dir = policy_dir(&[("global.toml", text)]);
        let err = load_dir(dir.path(), Timestamp::now()).unwrap_err().to_string();
        assert!(err.contains(want), "{text}\n→ {err}");
    }
}

/// A list behind a token: the header goes to the origin with the value from `auth_file`,
/// never to the host a redirect points to, and a missing or empty file fails the fetch
/// without showing what it holds.
#[test]
fn a_secret_header_goes_to_the_origin_only() {
    let storage = FlakyOrigin::start(Behavior::Status(200)).unwrap();
    serve_list(&storage, tor_list(12), "v1");
    let origin = FlakyOrigin::start(Behavior::Redirect(storage.url("signed/tor?sig=abc"))).unwrap();
    let text = policy(&origin.url("tor")).replace(
        "max_age = \"1h\"\n",
        "max_age = \"1h\"\nauth_header = \"Token\"\nauth_file = \"secrets/token\"\n",
    );
    let dir = policy_dir(&[("global.toml", &text), ("secrets/token", "s3cret-value\n")]);
    let got = fetch(dir.path(), &def(dir.path()), Timestamp::now(), ShrinkGuard::default());
    assert!(matches!(got, Ok(Fetched::Updated { entries: 12, .. })), "{got:?}");
    let token = |seen: &[editgate_testkit::origin::Seen]| {
        seen.iter()
            .flat_map(|s| &s.headers)
            .filter(|(k, _)| k.eq_ignore_ascii_case("token"))
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(token(&origin.seen()), ["s3cret-value"]);
    assert!(
        token(&storage.seen()).is_empty(),
        "the token followed the redirect to another host"
    );
    assert_eq!(storage.seen()[0].path, "/signed/tor?sig=abc");

    // Same origin, no redirect: the header is there too; then the file goes missing.
    serve_list(&origin, tor_list(12), "v2");
    let text = text.replace(&origin.url("tor"), &origin.url("tor2"));
    write(dir.path(), "global.toml", &text);
    assert!(fetch(dir.path(), &def(dir.path()), Timestamp::now(), ShrinkGuard::default()).is_ok());
    assert_eq!(token(&origin.seen()[1..]), ["s3cret-value"]);
    for (content, want) in [
        (None, "secrets/token"),
        (Some("  \n"), "empty"),
        (Some("a\nb"), "line break"),
    ] {
        let path = dir.path().join("secrets/token");
        match content {
            None => std::fs::remove_file(&path).unwrap(),
            Some(c) => std::fs::write(&path, c).unwrap(),
        }
        let requests = origin.requests();
        let err = fetch(dir.path(), &def(dir.path()), Timestamp::now(), ShrinkGuard::default()).unwrap_err();
        assert!(matches!(err, FetchError::Auth(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("auth_file") && msg.contains(want), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
        assert_eq!(origin.requests(), requests, "a request went out without its header");
    }
}
