//! Emptied and shrunken lists; `url` sources that were never fetched.

use std::time::Duration;

use editgate::proto::{AccountKind, Verdict};
use editgate::server::Config;

use crate::common::{TOR_EXIT, editgate, policy_dir, shipped_copy, shipped_policies, validate, write};
use crate::server::{Running, check, healthz, http_post, req, until};

// --- Emptied and shrunken lists -------------------------------------------------------

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

pub(crate) fn blocks_policy(n: usize) -> String {
    (0..n).map(|i| format!("10.{}.{}.0/24\n", i / 256, i % 256)).collect()
}

pub(crate) const SHRINK_GLOBAL: &str = "[sources.blocks]\nkind = \"ip-list\"\npath = \"blocks.txt\"\nmin_entries = 1\n\n[[rule]]\nid = \"blocked-anon\"\nverdict = \"require-login\"\nwhen.ip_in = [\"blocks\"]\nwhen.account = [\"anonymous\"]\n";

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
    let err = srv
        .state
        .reload()
        .await
        .expect_err("a 60% shrink is refused")
        .to_string();
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
    let err = srv.state.reload().await.expect_err("empty").to_string();
    assert!(err.contains("0 entries, down from 40"), "{err}");
}

// --- A first start, and url sources: no decisions without data ---------------------------

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
    let err = srv.state.reload().await.expect_err("no copy yet").to_string();
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
