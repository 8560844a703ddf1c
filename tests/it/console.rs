//! The admin console: its pages over HTTP from an in-process server, and in a real browser
//! (headless Chromium) against the real `editgate serve` on the shipped policies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use editgate::proto::AccountKind;
use editgate::server::Config;
use jiff::Timestamp;

use crate::common::{policy_dir, serving_addrs, shipped_policies, spawn_serve, write};
use crate::server::{Running, check, http_post, http_request, metric, req};

/// Rule ids and source names of the shipped policy, read through the library.
fn shipped_names() -> (Vec<String>, Vec<String>) {
    let loaded = editgate_core::load::load_dir(&shipped_policies(), Timestamp::now()).unwrap();
    let rules = loaded.snapshot.rules().iter().map(|r| r.id.clone()).collect();
    let sources = loaded.snapshot.sources().iter().map(|s| s.name.clone()).collect();
    (rules, sources)
}

const EXPLAIN_TOR: &str = "/explain?ip=162.247.74.201&wiki=enwiki&account=anonymous";

/// The cells of the `<tr>` with `id`, as text between tags.
fn row<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<tr id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row {id}"));
    let end = page[start..].find("</tr>").unwrap() + start;
    &page[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_html_under_a_strict_content_security_policy() {
    let srv = Running::start(&shipped_policies()).await;
    for path in ["/", "/rules", "/rules?wiki=enwiki", "/explain", EXPLAIN_TOR, "/reloads"] {
        let r = http_request(srv.http, path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"), "{path}");
        assert_eq!(
            r.header("content-security-policy"),
            Some(editgate::server::console::CSP),
            "{path}"
        );
        let csp = editgate::server::console::CSP;
        assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe"), "{csp}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert!(r.body.starts_with("<!DOCTYPE html>"), "{path}");
        // Nothing external, nothing inline.
        assert!(!r.body.contains("http://") || path.starts_with("/explain"), "{path}");
        assert!(!r.body.contains("<script>") && !r.body.contains("style="), "{path}");
    }
    for (path, kind) in [("/console.css", "text/css"), ("/console.js", "text/javascript")] {
        let r = http_request(srv.http, path).await;
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with(kind), "{path}");
        assert!(r.body.len() > 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_and_rules_show_the_policy_its_sources_and_live_counts() {
    let srv = Running::start(&shipped_policies()).await;
    let mut c = srv.client().await;
    for _ in 0..3 {
        let r = check(&mut c, req("162.247.74.201", "enwiki", AccountKind::Anonymous)).await;
        assert_eq!(r.rule_id, "tor-anon");
    }
    let (rules, sources) = shipped_names();
    let overview = http_request(srv.http, "/").await.body;
    for id in &rules {
        assert!(overview.contains(&format!("<code>{id}</code>")), "rule {id} missing");
    }
    for name in &sources {
        assert!(
            overview.contains(&format!("<code>{name}</code>")),
            "source {name} missing"
        );
    }
    // The shipped snapshot is old data, and the console says so.
    assert!(overview.contains("s-degraded"), "{overview}");
    assert!(overview.contains("TorDNSEL"), "the age says where it comes from");

    let page = http_request(srv.http, "/rules?wiki=enwiki").await.body;
    let tor = row(&page, "rule-tor-anon");
    let metrics = http_request(srv.http, "/metrics").await.body;
    let counted = metric(
        &metrics,
        "editgate_decisions_total{verdict=\"require-login\",rule=\"tor-anon\"}",
    );
    assert_eq!(counted, 3.0);
    assert!(tor.contains("<td class=\"num\">3</td>"), "{tor}");
    assert!(tor.contains("3 decisions in the last hour"), "{tor}");
    // Evaluation order: the locked rule first, the wiki's own rules before the global ones.
    let at = |id: &str| page.find(&format!("id=\"rule-{id}\"")).unwrap();
    assert!(at("global-hard-block") < at("enwiki-tor-young-account"));
    assert!(at("enwiki-tor-established") < at("tor-anon"));
    assert!(page.contains("wikis/enwiki.toml:"), "file:line of each rule");
    // The table fits a 1280-pixel screen with its Shadow column: eight columns, each rule's
    // file:line under its id rather than a column of its own.
    let head = &page[page.find("<table class=\"rules\">").unwrap()..page.find("</thead>").unwrap()];
    assert_eq!(head.matches("</th>").count(), 8, "{head}");
    assert!(tor.contains("<div class=\"where\"><code>global.toml:"), "{tor}");
    // A MaxMind source is a database, not a list of 0 entries.
    let anonymizers = &overview[overview.find("<code>anonymizers</code>").unwrap()..];
    let cells = &anonymizers[..anonymizers.find("</tr>").unwrap()];
    assert!(
        cells.contains(">database</span>") && !cells.contains("<td class=\"num\">0</td>"),
        "{cells}"
    );
    // A wiki without a file gets no enwiki rules.
    let other = http_request(srv.http, "/rules?wiki=dewiki").await.body;
    assert!(!other.contains("rule-enwiki-tor-young-account") && other.contains("rule-tor-anon"));
    assert!(other.contains("No file"), "{other}");
}

/// A rule whose verdict a reload changes keeps what it decided under its old verdict: the
/// overview, the rules page, its charts and `/metrics` all count by rule and verdict, and
/// agree after the change (the overview once said "block 0 since start" beside a metric of 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_agree_after_a_rule_changes_its_verdict() {
    let policy = |verdict: &str| {
        format!(
            "[settings]\nappeal = \"[[Project:Appeals]]\"\n\n[[rule]]\nid = \"mywiki-hosting-anon\"\nverdict = \"{verdict}\"\nwhen.ip = [\"198.18.0.0/24\"]\nwhen.account = [\"anonymous\"]\nallow_lints = [\"anonymous-block\"]\n"
        )
    };
    let dir = policy_dir(&[("global.toml", &policy("block"))]);
    let srv = Running::start(dir.path()).await;
    let mut c = srv.client().await;
    let decide = async |c: &mut _, n| {
        for _ in 0..n {
            check(c, req("198.18.0.9", "mywiki", AccountKind::Anonymous)).await;
        }
    };
    decide(&mut c, 3).await;
    write(dir.path(), "global.toml", &policy("require-login"));
    srv.state.reload().await.unwrap();
    decide(&mut c, 2).await;

    let metrics = http_request(srv.http, "/metrics").await.body;
    let series = |v: &str| {
        metric(
            &metrics,
            &format!("editgate_decisions_total{{verdict=\"{v}\",rule=\"mywiki-hosting-anon\"}}"),
        )
    };
    assert_eq!((series("block"), series("require-login")), (3.0, 2.0));
    let overview = http_request(srv.http, "/?refresh=0").await.body;
    for (verdict, n) in [("block", 3), ("require-login", 2)] {
        let at = overview
            .find(&format!("v-{verdict}\""))
            .unwrap_or_else(|| panic!("no {verdict} total"));
        let total = &overview[at..at + 400];
        assert!(
            total.contains(&format!("<strong>{n}</strong> since start")),
            "{verdict}: {total}"
        );
        assert!(
            total.contains(&format!("{n} {verdict} decisions in the last hour")),
            "{verdict}: {total}"
        );
    }
    let page = http_request(srv.http, "/rules?wiki=mywiki&refresh=0").await.body;
    let rule = row(&page, "rule-mywiki-hosting-anon");
    assert!(rule.contains("<td class=\"num\">2<div class=\"earlier\""), "{rule}");
    assert!(
        rule.contains("+ 3 as") && rule.contains("3 decisions as block in the last hour"),
        "{rule}"
    );
    assert!(rule.contains("2 decisions in the last hour"), "{rule}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_renders_the_same_trace_as_v1_explain() {
    let srv = Running::start(&shipped_policies()).await;
    let page = http_request(srv.http, EXPLAIN_TOR).await.body;
    let (code, json) = http_post(
        srv.http,
        "/v1/explain",
        r#"{"ip":"162.247.74.201","wiki":"enwiki","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#,
    )
    .await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["decision"]["ruleId"], "tor-anon");
    assert!(page.contains("v-require-login"), "the verdict");
    assert!(page.contains("<code>tor</code>"), "the source");
    // Every step of the API's trace, in the same order, with its outcome.
    let mut from = 0;
    for step in json["steps"].as_array().unwrap() {
        let id = step["ruleId"].as_str().unwrap();
        let at = page[from..]
            .find(&format!("<code>{id}</code>"))
            .unwrap_or_else(|| panic!("step {id} missing or out of order"))
            + from;
        let outcome = step["outcome"].as_str().unwrap();
        assert!(page[at..].contains(outcome), "{id}: {outcome}");
        from = at + 1;
    }
    // The link to share reproduces the inputs.
    assert!(
        page.contains("href=\"/explain?ip=162.247.74.201&amp;wiki=enwiki&amp;account=anonymous\""),
        "{page}"
    );
    assert!(page.contains("href=\"/rules?wiki=enwiki#rule-tor-anon\""), "{page}");

    // A registered, established account through Tor on enwiki is allowed by enwiki's rule.
    let page = http_request(
        srv.http,
        "/explain?ip=162.247.74.201&wiki=enwiki&account=registered&edits=50&age=30d",
    )
    .await
    .body;
    assert!(
        page.contains("v-allow") && page.contains("rule <a href=\"/rules?wiki=enwiki#rule-enwiki-tor-established\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_explain_inputs_are_refused_naming_the_field() {
    let srv = Running::start(&shipped_policies()).await;
    for (query, field) in [
        ("ip=not-an-ip", "ip"),
        ("ip=1.2.3.4&xff=5.6.7.8,nope", "xff"),
        ("ip=1.2.3.4&wiki=En%20Wiki", "wiki"),
        ("ip=1.2.3.4&account=admin", "account"),
        ("ip=1.2.3.4&edits=many", "edits"),
        ("ip=1.2.3.4&age=forever", "age"),
        ("wiki=enwiki", "ip"),
    ] {
        let r = http_request(srv.http, &format!("/explain?{query}")).await;
        assert_eq!(r.status, 400, "{query}");
        assert!(
            r.body.contains(&format!("role=\"alert\"><code>{field}</code>: ")),
            "{query}: {}",
            r.body
        );
        assert!(r.body.contains(&format!("id=\"{field}\"")), "the form comes back");
    }
    // Hostile input comes back escaped, in the form and in the error.
    let r = http_request(srv.http, "/explain?ip=%22%3E%3Cscript%3Ealert(1)%3C/script%3E").await;
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("<script>alert(1)"), "{}", r.body);
    assert!(r.body.contains("&quot;&gt;&lt;script&gt;"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_text_is_escaped_everywhere() {
    let global = r#"[settings]
default = "allow"
default_message = "<i>default</i>"

[[rule]]
id = "xss"
description = "<script>alert('rule')</script> & more"
verdict = "block"
message = "<b>no</b>"
appeal = "javascript:alert(1)"
when.ip = ["192.0.2.0/24"]
"#;
    let dir = policy_dir(&[("global.toml", global)]);
    let srv = Running::start(dir.path()).await;
    let rules = http_request(srv.http, "/rules").await.body;
    assert!(!rules.contains("<script>alert"), "{rules}");
    assert!(
        rules.contains("&lt;script&gt;alert('rule')&lt;/script&gt; &amp; more"),
        "{rules}"
    );
    assert!(rules.contains("&lt;i&gt;default&lt;/i&gt;"), "{rules}");
    let explain = http_request(srv.http, "/explain?ip=192.0.2.9").await.body;
    assert!(explain.contains("&lt;b&gt;no&lt;/b&gt;"), "{explain}");
    assert!(
        !explain.contains("href=\"javascript:"),
        "an appeal that is not a web address is not a link"
    );

    // A failed reload's error quotes the file: escaped on the reloads page.
    write(
        dir.path(),
        "global.toml",
        "[[rule]]\nid = \"x\"\nverdict = \"<blink>\"\n",
    );
    assert!(srv.state.reload().await.is_err());
    let reloads = http_request(srv.http, "/reloads").await.body;
    assert!(
        reloads.contains("failed") && reloads.contains("&lt;blink&gt;"),
        "{reloads}"
    );
    assert!(!reloads.contains("<blink>"), "{reloads}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_can_be_turned_off() {
    let mut config = Config::new(shipped_policies());
    config.console = false;
    let srv = Running::start_with(config).await;
    for path in ["/", "/rules", EXPLAIN_TOR, "/reloads", "/console.css"] {
        assert_eq!(http_request(srv.http, path).await.status, 404, "{path}");
    }
    assert_eq!(http_request(srv.http, "/healthz").await.status, 200);
}

#[test]
fn the_real_binary_serves_the_console_unless_told_not_to_and_logs_no_address() {
    use std::process::Command;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut child, line) = spawn_serve(&shipped_policies(), &[]);
    let (_, addr) = serving_addrs(&line);
    let r = rt.block_on(http_request(addr, "/explain?ip=198.51.100.77&wiki=enwiki"));
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("198.51.100.77"),
        "the page shows the address asked about"
    );
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains("198.51.100.77"), "{err}");
    // Written to a pipe (a file, the journal), the text log has no terminal colour codes.
    assert!(err.contains("snapshot loaded") && !err.contains('\u{1b}'), "{err:?}");

    let (mut child, line) = spawn_serve(&shipped_policies(), &[("EDITGATE_NO_CONSOLE", Path::new("1"))]);
    let (_, addr) = serving_addrs(&line);
    assert_eq!(rt.block_on(http_request(addr, "/")).status, 404);
    child.kill().unwrap();
    child.wait().unwrap();
}

// --- In a real browser ------------------------------------------------------------------------

/// Chromium, if installed (`EDITGATE_CHROMIUM` names another binary).
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EDITGATE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser", "google-chrome"].map(|b| dir.join(b)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `args`; returns stdout and stderr. Killed after 60 s.
fn browse(browser: &Path, args: &[&str], url: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The console's browser test: `/` and an explain URL from the real binary on the shipped
/// policies, rendered by Chromium, checked in the DOM it built. Skips with a message when
/// Chromium is not installed, unless `EDITGATE_REQUIRE_BROWSER` is set (as
/// `tests/browser/run`, which installs it, does). With `EDITGATE_SCREENSHOTS=DIR` it also
/// saves the screenshots shown in the README.
#[test]
fn the_console_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("EDITGATE_REQUIRE_BROWSER").is_none(),
            "EDITGATE_REQUIRE_BROWSER is set but no Chromium was found"
        );
        eprintln!("skipped: no Chromium (install Debian's `chromium`, or run tests/browser/run, which does)");
        return;
    };
    let (mut child, line) = spawn_serve(&shipped_policies(), &[]);
    let base = format!("http://{}", serving_addrs(&line).1);
    let (rules, sources) = shipped_names();

    let (dom, log) = browse(&browser, &["--dump-dom"], &format!("{base}/"));
    assert!(dom.contains("<h1>Overview</h1>"), "{dom}\n{log}");
    for id in &rules {
        assert!(dom.contains(&format!("<code>{id}</code>")), "rule {id} not on /");
    }
    for name in &sources {
        assert!(dom.contains(&format!("<code>{name}</code>")), "source {name} not on /");
    }
    // The page loaded its own stylesheet and script without a CSP violation.
    assert!(!log.contains("Content Security Policy"), "{log}");

    let (dom, log) = browse(&browser, &["--dump-dom"], &format!("{base}{EXPLAIN_TOR}"));
    assert!(dom.contains("<code>tor-anon</code>"), "{dom}");
    assert!(dom.contains("<code>tor</code>"), "{dom}");
    assert!(
        dom.contains("Verdict: <span class=\"verdict v-require-login\">require-login</span>"),
        "{dom}"
    );
    assert!(!log.contains("Content Security Policy"), "{log}");

    if let Some(dir) = std::env::var_os("EDITGATE_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        // Some traffic, so that the counts and charts show something.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (_, addr) = serving_addrs(&line);
        for (n, body) in [
            (
                20,
                r#"{"ip":"162.247.74.201","wiki":"enwiki","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#,
            ),
            (
                7,
                r#"{"ip":"162.247.74.201","wiki":"enwiki","account":{"kind":"ACCOUNT_KIND_REGISTERED","editCount":50,"registeredAt":"2025-01-01T00:00:00Z"}}"#,
            ),
            (
                31,
                r#"{"ip":"9.9.9.9","wiki":"dewiki","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#,
            ),
        ] {
            for _ in 0..n {
                assert_eq!(rt.block_on(http_post(addr, "/v1/check", body)).0, 200);
            }
        }
        for (file, path, size) in [
            ("console-overview.png", "/?refresh=0", "1280,1500"),
            ("console-explain.png", EXPLAIN_TOR, "1280,1150"),
        ] {
            let shot = dir.join(file);
            let (_, log) = browse(
                &browser,
                &[
                    &format!("--window-size={size}"),
                    &format!("--screenshot={}", shot.display()),
                ],
                &format!("{base}{path}"),
            );
            assert!(shot.is_file(), "{log}");
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
