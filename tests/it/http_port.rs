//! The HTTP port against what a browser, a misconfiguration or a busy admin can do to it:
//! `Host` names it does not answer (DNS rebinding), bodies that are not declared JSON
//! (cross-site forms), probes that must not count as attempts, and console pages of a large
//! policy that must not starve `/v1/check`.

use std::time::Duration;

use editgate::server::Config;

use crate::common::{policy_dir, shipped_policies};
use crate::server::{Running, http_get, http_raw as raw, metric, until};

const TOR_ANON: &str = r#"{"ip":"162.247.74.201","wiki":"enwiki","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#;

fn settings() -> Config {
    let mut c = Config::new(shipped_policies());
    c.watch = false;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_accepted_host_names_reach_the_api_and_the_console() {
    let srv = Running::start_with(settings()).await;
    let post = |host: &str| format!("POST /v1/check HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json");
    for host in ["localhost", "LOCALHOST.", "127.0.0.1:9090", "[::1]:9090", "[::1]"] {
        let (code, body) = raw(srv.http, &post(host), TOR_ANON).await;
        assert_eq!(code, 200, "{host}: {body}");
    }
    // A rebinding page: its name resolves to loopback, its requests carry that name. And
    // what no browser sends but a loose parser once read as an accepted name.
    for host in [
        "attacker.example",
        "attacker.example:9090",
        "127.0.0.1.attacker.example",
        "",
        "[127.0.0.1]evil.example",
        "localhost:evil",
        "localhost....",
        "[::1]evil",
        "::1",
    ] {
        let (code, body) = raw(srv.http, &post(host), TOR_ANON).await;
        assert_eq!(code, 403, "{host}: {body}");
        assert!(body.contains("allowed_hosts"), "{body}");
        let (code, _) = raw(
            srv.http,
            &format!("GET /explain?ip=1.2.3.4 HTTP/1.1\r\nHost: {host}"),
            "",
        )
        .await;
        assert_eq!(code, 403, "console for {host}");
    }
    // An absolute-form target whose authority disagrees with Host is refused, whichever of
    // the two names an accepted host; one that agrees is answered.
    for (target, host, want) in [
        ("http://attacker.example/v1/check", "localhost", 403),
        ("http://localhost/v1/check", "attacker.example", 403),
        ("http://localhost:9090/v1/check", "localhost:9091", 403),
        ("http://localhost:9090/v1/check", "LOCALHOST.:9090", 200),
    ] {
        let head = format!("POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json");
        let (code, body) = raw(srv.http, &head, TOR_ANON).await;
        assert_eq!(code, want, "{target} with Host {host}: {body}");
    }
    // Health and metrics answer any name: load balancers reach the port by address.
    let (code, _) = raw(srv.http, "GET /healthz HTTP/1.1\r\nHost: 10.1.2.3:9090", "").await;
    assert_eq!(code, 200);
    let (code, _) = raw(srv.http, "GET /metrics HTTP/1.1\r\nHost: scraper.internal", "").await;
    assert_eq!(code, 200);
    drop(srv);

    // Configured names replace the defaults; `*` accepts any.
    let mut c = settings();
    c.allowed_hosts = Some(vec!["editgate.internal".into()]);
    let srv = Running::start_with(c).await;
    assert_eq!(raw(srv.http, &post("editgate.internal:9090"), TOR_ANON).await.0, 200);
    assert_eq!(raw(srv.http, &post("localhost"), TOR_ANON).await.0, 403);
    drop(srv);
    let mut c = settings();
    c.allowed_hosts = Some(vec!["*".into()]);
    let srv = Running::start_with(c).await;
    assert_eq!(raw(srv.http, &post("anything.example"), TOR_ANON).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_posts_must_be_declared_json() {
    let srv = Running::start_with(settings()).await;
    for (ctype, want) in [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/json", 200),
        ("Application/JSON; charset=utf-8", 200),
    ] {
        let head = format!("POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ctype}");
        let (code, body) = raw(srv.http, &head, TOR_ANON).await;
        assert_eq!(code, want, "{ctype}: {body}");
    }
    // An enum number out of range is refused naming the field (4294967299 once wrapped to 3,
    // a registered account).
    let head = "POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json";
    let (code, body) = raw(
        srv.http,
        head,
        r#"{"ip":"162.247.74.201","wiki":"enwiki","account":{"kind":4294967299,"editCount":"5000"}}"#,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("account.kind"), "{body}");
    let (code, body) = raw(srv.http, "POST /v1/explain HTTP/1.1\r\nHost: localhost", TOR_ANON).await;
    assert_eq!(code, 415, "{body}");
    assert!(body.contains("application/json"), "{body}");
    // Nothing refused here was decided or counted as one.
    let m = http_get(srv.http, "/metrics").await;
    assert_eq!(
        metric(
            &m,
            "editgate_decisions_total{verdict=\"require-login\",rule=\"tor-anon\"}"
        ),
        2.0
    );
}

/// A probe (an edit form shown, a permission test) is decided on the same facts as the attempt
/// it stands for, its forwarded-for chain included, and leaves no trace in the decision
/// metrics, the per-rule counts or the decision log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_decided_like_attempts_but_not_counted() {
    let global = "[settings]\ndefault = \"allow\"\n\n[settings.decision_log]\npath = \"decisions.jsonl\"\nkey_file = \"log.key\"\n\n[[rule]]\nid = \"range\"\nverdict = \"block\"\nxff = true\nwhen.ip = [\"192.0.2.0/24\"]\n";
    let dir = policy_dir(&[("global.toml", global), ("log.key", "0123456789abcdef0123456789abcdef")]);
    let mut c = Config::new(dir.path().to_owned());
    c.watch = false;
    let srv = Running::start_with(c).await;
    let head = "POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json";
    let probe = |ip: &str, xff: &str| {
        format!(
            r#"{{"ip":"{ip}","forwardedFor":["{xff}"],"probe":true,"account":{{"kind":"ACCOUNT_KIND_ANONYMOUS"}}}}"#
        )
    };
    // The client address decides a probe as it would an attempt.
    let (code, body) = raw(srv.http, head, &probe("192.0.2.1", "8.8.8.8")).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"ruleId\":\"range\""), "{body}");
    // So does a forwarded-for address: a probe is never more lenient than the save would be
    // (a save sent as a probe once skipped the forwarded-for rules).
    let (_, body) = raw(srv.http, head, &probe("8.8.8.8", "192.0.2.1")).await;
    assert!(
        body.contains("\"ruleId\":\"range\"") && body.contains("VERDICT_BLOCK"),
        "{body}"
    );
    // The same as an attempt is decided, counted and logged.
    let attempt = r#"{"ip":"8.8.8.8","forwardedFor":["192.0.2.1"],"account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#;
    let (_, body) = raw(srv.http, head, attempt).await;
    assert!(body.contains("\"ruleId\":\"range\""), "{body}");
    let m = http_get(srv.http, "/metrics").await;
    assert_eq!(metric(&m, "editgate_probes_total"), 2.0);
    assert_eq!(
        metric(&m, "editgate_decisions_total{verdict=\"block\",rule=\"range\"}"),
        1.0
    );
    let log = dir.path().join("decisions.jsonl");
    until("the attempt is in the decision log", async || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() == 1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        1,
        "probes are not logged"
    );
    let rules = http_get(srv.http, "/rules?refresh=0").await;
    let row = rules.split("id=\"rule-range\"").nth(1).unwrap();
    let decisions = row.split("<td class=\"num\">").nth(1).unwrap();
    assert!(decisions.starts_with("1<"), "per-rule count: {decisions}");
}

/// A server on a policy of 20,000 block rules, `r0` to `r19999`, one on each /24 of 10.0.0.0/9
/// (described `range N`), watching nothing.
async fn twenty_thousand_rules() -> (tempfile::TempDir, Running) {
    let mut global = String::from("[settings]\ndefault = \"allow\"\n\n");
    for i in 0..20_000u32 {
        global += &format!(
            "[[rule]]\nid = \"r{i}\"\ndescription = \"range {i}\"\nverdict = \"block\"\nwhen.ip = [\"10.{}.{}.0/24\"]\n\n",
            i / 256,
            i % 256
        );
    }
    let dir = policy_dir(&[("global.toml", &global)]);
    let mut c = Config::new(dir.path().to_owned());
    c.watch = false;
    let srv = Running::start_with(c).await;
    (dir, srv)
}

/// A policy of 20,000 rules: the console pages are paged and bounded, rendered off the request
/// threads, and `/v1/check` keeps answering while many people read them; the console can also
/// have a listener of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_policys_console_is_paged_and_never_starves_the_api() {
    let (_dir, srv) = twenty_thousand_rules().await;
    let rules = http_get(srv.http, "/rules?refresh=0").await;
    assert!(rules.contains("Rules 1–100 of 20000"), "a pager");
    assert!(rules.contains("id=\"rule-r99\"") && !rules.contains("id=\"rule-r100\""));
    assert!(rules.len() < 400_000, "one page: {} bytes", rules.len());
    let last = http_get(srv.http, "/rules?page=200&refresh=0").await;
    assert!(last.contains("id=\"rule-r19999\"") && last.contains("no rule matched"));
    let overview = http_get(srv.http, "/?refresh=0").await;
    assert!(overview.len() < 400_000, "overview: {} bytes", overview.len());
    assert!(overview.contains("href=\"/rules?page=2#rule-r150\"") || !overview.contains("rule-r150"));
    let explain = http_get(srv.http, "/explain?ip=10.78.31.1").await;
    assert!(explain.contains("<code>r19999</code>"), "the deciding rule is shown");
    assert!(explain.len() < 200_000, "explain: {} bytes", explain.len());

    // 48 readers at once, and the wikis' requests beside them: every check is answered.
    let readers: Vec<_> = (0..48)
        .map(|i| {
            let addr = srv.http;
            tokio::spawn(async move {
                let path = format!("/rules?page={}&refresh=0", i % 200 + 1);
                raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: localhost"), "")
                    .await
                    .0
            })
        })
        .collect();
    let head = "POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json";
    for i in 0..50u32 {
        let body = format!(
            r#"{{"ip":"10.{}.{}.9","account":{{"kind":"ACCOUNT_KIND_ANONYMOUS"}}}}"#,
            i / 256,
            i % 256
        );
        let (code, answer) = raw(srv.http, head, &body).await;
        assert_eq!(code, 200, "{answer}");
        assert!(answer.contains(&format!("\"ruleId\":\"r{i}\"")), "{answer}");
    }
    for r in readers {
        let code = r.await.unwrap();
        assert!(code == 200 || code == 503, "a reader got {code}");
    }
}

/// `POST /v1/explain` runs on the explain threads, one at a time behind a bounded queue: many
/// callers at once never take the request threads (every check is answered beside them), and
/// those past the queue are refused at once with 503, counted as shed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_calls_are_bounded_and_run_off_the_request_threads() {
    let (_dir, srv) = twenty_thousand_rules().await;
    let head = "POST /v1/explain HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json";
    let explain = r#"{"ip":"10.78.31.9","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#;
    let callers: Vec<_> = (0..60)
        .map(|_| {
            let addr = srv.http;
            tokio::spawn(async move { raw(addr, head, explain).await })
        })
        .collect();
    let check = "POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json";
    for i in 0..50u32 {
        let body = format!(r#"{{"ip":"10.0.{i}.9","account":{{"kind":"ACCOUNT_KIND_ANONYMOUS"}}}}"#);
        let (code, answer) = raw(srv.http, check, &body).await;
        assert_eq!(code, 200, "{answer}");
        assert!(answer.contains(&format!("\"ruleId\":\"r{i}\"")), "{answer}");
    }
    let (mut answered, mut busy) = (0, 0);
    for c in callers {
        let (code, body) = c.await.unwrap();
        match code {
            200 => {
                assert!(
                    body.contains("\"ruleId\":\"r19999\""),
                    "{}",
                    &body[..body.len().min(300)]
                );
                answered += 1;
            }
            503 => {
                assert!(body.contains("busy with other explain requests"), "{body}");
                busy += 1;
            }
            other => panic!("an explain got {other}: {body}"),
        }
    }
    assert!(answered >= 1 && busy >= 1, "answered {answered}, refused {busy}");
    let m = http_get(srv.http, "/metrics").await;
    assert_eq!(
        metric(&m, "editgate_requests_shed_total{method=\"http/explain\"}"),
        f64::from(busy)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_can_have_a_listener_of_its_own() {
    let state = editgate::server::State::load(settings()).unwrap();
    let bind = || async { tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap() };
    let (grpc, http, console) = (bind().await, bind().await, bind().await);
    let (h, c) = (http.local_addr().unwrap(), console.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(editgate::server::run_with(
        state,
        editgate::server::Listeners {
            grpc,
            http,
            console: Some(console),
            http_socket: None,
        },
        async move {
            let _ = rx.await;
        },
    ));
    until("the console listener answers", async || {
        tokio::net::TcpStream::connect(c).await.is_ok()
    })
    .await;
    let get = |addr, path: &str| {
        let head = format!("GET {path} HTTP/1.1\r\nHost: localhost");
        async move { raw(addr, &head, "").await.0 }
    };
    assert_eq!(get(c, "/").await, 200, "the console on its own port");
    assert_eq!(get(c, "/healthz").await, 200);
    assert_eq!(get(h, "/").await, 404, "not on the API port");
    assert_eq!(get(h, "/healthz").await, 200);
    let (code, _) = raw(
        c,
        "POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json",
        TOR_ANON,
    )
    .await;
    assert_eq!(code, 404, "no API on the console's port");
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

/// Every answer carries the tags, sources and sharedness of the client address, also when it
/// allows: an established account on Tor edits, and the wiki still tags the edit `tor`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_the_tags_of_the_client_address_whatever_the_verdict() {
    let srv = Running::start_with(settings()).await;
    let head = "POST /v1/check HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json";
    let body = r#"{"ip":"162.247.74.201","forwardedFor":["1.2.0.1"],"wiki":"enwiki","account":{"kind":"ACCOUNT_KIND_REGISTERED","editCount":"50","registeredAt":"2020-01-01T00:00:00Z"}}"#;
    let (code, answer) = raw(srv.http, head, body).await;
    assert_eq!(code, 200, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["verdict"], "VERDICT_ALLOW");
    // The client address's, never a forwarded one's (a header cannot tag an edit).
    assert_eq!(v["tags"], serde_json::json!(["tor"]));
    assert_eq!(v["sources"], serde_json::json!(["tor"]));
    assert_eq!(v["sharedAddress"], true);
    let (_, answer) = raw(
        srv.http,
        head,
        r#"{"ip":"9.9.9.9","account":{"kind":"ACCOUNT_KIND_ANONYMOUS"}}"#,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (v["tags"].clone(), v["sharedAddress"].clone()),
        (serde_json::json!([]), serde_json::json!(false))
    );
}
