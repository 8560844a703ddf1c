//! The real `editgate` binary: flags, output and exit codes.

use predicates::prelude::*;
use serde_json::Value;

use crate::common::{editgate, policy_dir, shipped_policies};

fn check_json(args: &[&str]) -> Value {
    let out = editgate()
        .arg("check")
        .arg("--policies")
        .arg(shipped_policies())
        .args(args)
        .arg("--json")
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).expect("json")
}

#[test]
fn check_json_has_the_contract_fields_for_each_verdict() {
    let v = check_json(&["--ip", "162.247.74.201", "--wiki", "enwiki"]);
    assert_eq!(v["verdict"], "require-login");
    assert_eq!(v["rule_id"], "tor-anon");
    assert_eq!(v["message"], "editgate-tor-login");
    assert!(v["reason"].as_str().unwrap().contains("Tor"));
    assert_eq!(v["shadow_rule_ids"], Value::Array(vec![]));
    assert_eq!(v["policy_version"].as_str().unwrap().len(), 16);

    let v = check_json(&[
        "--ip",
        "162.247.74.201",
        "--account",
        "registered",
        "--edits",
        "3",
        "--age",
        "400d",
    ]);
    assert_eq!(
        (v["verdict"].as_str(), v["rule_id"].as_str()),
        (Some("block"), Some("tor-few-edits"))
    );
    assert_eq!(v["message"], "editgate-tor-account-threshold");

    let v = check_json(&["--ip", "9.9.9.9"]);
    assert_eq!(
        (v["verdict"].as_str(), v["rule_id"].as_str()),
        (Some("allow"), Some(""))
    );

    let v = check_json(&[
        "--ip",
        "2.26.157.10",
        "--account",
        "registered",
        "--edits",
        "1",
        "--age",
        "1d",
    ]);
    assert_eq!(v["shadow_rule_ids"], serde_json::json!(["vpn-new-account-trial"]));

    let v = check_json(&["--ip", "9.9.9.9", "--xff", "203.0.113.4", "--account", "registered"]);
    assert_eq!(v["rule_id"], "global-hard-block");

    let v = check_json(&[
        "--ip",
        "162.247.74.201",
        "--account",
        "registered",
        "--right",
        "torunblocked",
    ]);
    assert_eq!(v["rule_id"], "proxy-exempt");
}

/// A reader that went away (`editgate check … | head -2`) ends a command quietly: no panic
/// on the broken pipe, status 0. The pipe's reading end is closed before the command writes.
#[test]
fn a_closed_output_pipe_ends_a_command_quietly() {
    for args in [
        &["check", "--ip", "162.247.74.201", "--wiki", "enwiki"][..],
        &["explain", "--ip", "162.247.74.201", "--wiki", "enwiki"][..],
        &["test"][..],
        &["validate"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("editgate"));
        cmd.args(args);
        if matches!(args[0], "test" | "validate") {
            cmd.arg(shipped_policies());
        } else {
            cmd.arg("--policies").arg(shipped_policies());
        }
        let out = cmd
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[test]
fn check_at_evaluates_expiry_at_that_time() {
    let before = check_json(&["--ip", "198.51.100.1", "--at", "2027-01-01T00:00:00Z"]);
    assert_eq!(before["rule_id"], "campaign-range-2026");
    let after = check_json(&["--ip", "198.51.100.1", "--at", "2027-07-01T00:00:00Z"]);
    assert_eq!(after["rule_id"], "");
}

#[test]
fn malformed_ip_is_exit_2_and_names_the_flag() {
    editgate().args(["check", "--ip", "300.1.2.3"]).assert().code(2).stderr(
        predicate::str::contains("--ip").and(predicate::str::contains("`300.1.2.3` is not a valid IP address")),
    );
    editgate()
        .args(["check", "--ip", "192.0.2.1", "--xff", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--xff"));
    editgate()
        .args(["check", "--ip", "192.0.2.1", "--account", "anon"])
        .assert()
        .code(2);
    editgate()
        .args(["check", "--ip", "192.0.2.1", "--age", "3 days"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--age"));
}

#[test]
fn missing_policy_directory_is_exit_2() {
    editgate()
        .args(["check", "--ip", "192.0.2.1", "--policies", "/nonexistent/editgate"])
        .assert()
        .code(2);
    editgate().args(["validate", "/nonexistent/editgate"]).assert().code(2);
}

#[test]
fn invalid_policy_directory_is_exit_1_with_positions() {
    let dir = policy_dir(&[("global.toml", "[[rule]]\nid = \"a\"\nverdict = \"alow\"\n")]);
    editgate()
        .args(["check", "--ip", "192.0.2.1", "--policies"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("global.toml:3:11: error: unknown verdict `alow`")
                .and(predicate::str::contains("did you mean `allow`?")),
        );
    editgate()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("global.toml:3:11:"));
}

#[test]
fn validate_prints_warnings_and_deny_warnings_fails() {
    let dir = policy_dir(&[
        (
            "global.toml",
            "[sources.x]\nkind = \"ip-list\"\npath = \"x.txt\"\n\n[[rule]]\nid = \"a\"\nverdict = \"allow\"\n",
        ),
        ("x.txt", "192.0.2.0/24\n"),
    ]);
    editgate()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("valid: 1 rule, 1 source"))
        .stderr(predicate::str::contains(
            "global.toml:1:10: warning[unused-source]: source `x`",
        ));
    editgate()
        .arg("validate")
        .arg("--deny-warnings")
        .arg(dir.path())
        .assert()
        .code(1);
}

#[test]
fn validate_accepts_the_shipped_policies() {
    editgate()
        .arg("validate")
        .arg(shipped_policies())
        .arg("--deny-warnings")
        .assert()
        .success()
        .stdout(predicate::str::contains("valid:"))
        .stderr(predicate::str::is_empty());
}

/// A wiki's first rules (examples/mywiki, which docs/install.md walks through) added to the
/// shipped policy: its one warning is allowed on its rule, so `validate --deny-warnings`
/// (and the package's `serve --deny-warnings`) accepts it, and still shows the warning.
#[test]
fn a_sound_wiki_policy_with_an_allowed_warning_passes_deny_warnings() {
    let dir = crate::common::shipped_copy();
    std::fs::copy(
        crate::common::repo().join("examples/mywiki/mywiki.toml"),
        dir.path().join("wikis/mywiki.toml"),
    )
    .unwrap();
    editgate()
        .arg("validate")
        .arg("--deny-warnings")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("1 warning (1 allowed)"))
        .stderr(predicate::str::contains(
            "warning[anonymous-block] (allowed): rule `mywiki-vpn-anon`",
        ));
    // Without the allowance, the same policy is refused.
    let file = dir.path().join("wikis/mywiki.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("allow_lints = [\"anonymous-block\"]\n", "")).unwrap();
    editgate()
        .arg("validate")
        .arg("--deny-warnings")
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("1 warning;"));
}

#[test]
fn test_command_passes_on_shipped_policies() {
    editgate()
        .arg("test")
        .arg(shipped_policies())
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"^\d+ passed, 0 failed\n$").unwrap());
}

const CASE_POLICY: &str =
    "[[rule]]\nid = \"range\"\nverdict = \"block\"\nmessage = \"blocked-range\"\nwhen.ip = [\"192.0.2.0/24\"]\n";

#[test]
fn test_command_reports_expected_and_actual_with_trace() {
    let cases = r#"
[[case]]
name = "passes"
request = { ip = "192.0.2.1" }
expect = { verdict = "block", rule = "range", message = "blocked-range", shadow = [] }

[[case]]
name = "fails on purpose"
request = { ip = "192.0.2.1" }
expect = { verdict = "allow", rule = "" }
"#;
    let dir = policy_dir(&[("global.toml", CASE_POLICY), ("tests/t.toml", cases)]);
    editgate().arg("test").arg(dir.path()).assert().code(1).stdout(
        predicate::str::contains("FAIL fails on purpose (tests/t.toml:7:1)")
            .and(predicate::str::contains("verdict: expected `allow`, got `block`"))
            .and(predicate::str::contains("rule: expected ``, got `range`"))
            .and(predicate::str::contains(
                "range [block] global.toml:1:1: matched: decides",
            ))
            .and(predicate::str::contains("1 passed, 1 failed")),
    );
    editgate()
        .arg("test")
        .arg(dir.path())
        .args(["--filter", "passes"])
        .assert()
        .success()
        .stdout("1 passed, 0 failed\n");
}

#[test]
fn test_case_errors_have_positions() {
    let cases = "[[case]]\nname = \"x\"\nrequest = { ip = \"192.0.2.1\", acount = \"registered\" }\nexpect = { verdict = \"block\" }\n\n";
    let dir = policy_dir(&[("global.toml", CASE_POLICY), ("tests/t.toml", cases)]);
    editgate()
        .arg("test")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("tests/t.toml:3:").and(predicate::str::contains("did you mean `account`?")));
    let cases = "[[case]]\nname = \"x\"\nrequest = { ip = \"192.0.2.1\" }\nexpect = { verdict = \"block\", rule = \"rnage\" }\n";
    let dir = policy_dir(&[("global.toml", CASE_POLICY), ("tests/t.toml", cases)]);
    editgate()
        .arg("test")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "tests/t.toml:4:38: error: unknown rule `rnage`; did you mean `range`?",
        ));
}

#[test]
fn explain_prints_facts_then_rules_then_decision() {
    let out = editgate()
        .args(["explain", "--ip", "1.2.0.1", "--wiki", "enwiki", "--policies"])
        .arg(shipped_policies())
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let facts = text.find("facts:").unwrap();
    let rules = text.find("rules for `enwiki`").unwrap();
    let decision = text.find("decision:").unwrap();
    assert!(facts < rules && rules < decision, "{text}");
    assert!(text.contains("in sources: anonymizers"), "{text}");
    assert!(
        text.contains("maxmind anonymizers: is_anonymous, is_anonymous_vpn"),
        "{text}"
    );
    assert!(text.contains("global-hard-block [block] global.toml:"), "{text}");
    assert!(
        text.contains("enwiki-tor-young-account [block] wikis/enwiki.toml:"),
        "{text}"
    );
    assert!(
        text.contains("vpn-anon [require-login] global.toml:") && text.contains("matched: decides"),
        "{text}"
    );
}

#[test]
fn explain_json_and_check_explain_agree() {
    let run = |sub: &[&str]| -> Value {
        let out = editgate()
            .args(sub)
            .args([
                "--ip",
                "162.247.74.201",
                "--account",
                "registered",
                "--edits",
                "500",
                "--age",
                "10d",
                "--json",
                // One evaluation time for both, so the data ages agree too.
                "--at",
                "2026-11-01T00:00:00Z",
                "--policies",
            ])
            .arg(shipped_policies())
            .assert()
            .success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    let a = run(&["explain"]);
    let b = run(&["check", "--explain"]);
    assert_eq!(a, b);
    assert_eq!(a["facts"]["sources"], serde_json::json!(["tor"]));
    // The Tor list's age comes from its own record times (2018), not from the file.
    let data = &a["facts"]["source_data"][0];
    assert_eq!(
        (data["source"].as_str(), data["from"].as_str()),
        (Some("tor"), Some("data")),
        "{data}"
    );
    assert_eq!(data["data_time"], "2018-10-11T21:03:42Z");
    assert_eq!(data["stale"], true);
    let trace = a["trace"].as_array().unwrap();
    assert_eq!(trace.last().unwrap()["rule_id"], "tor-young-account");
    assert_eq!(trace.last().unwrap()["outcome"], "matched");
    assert_eq!(trace[0]["outcome"], "when-failed");
    assert_eq!(trace[0]["key"], "ip_in");
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["check", "explain", "validate", "test"] {
        editgate()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage: editgate"));
    }
}

#[test]
fn serve_settings_come_from_env_and_config_file() {
    let broken = policy_dir(&[("global.toml", "[[rule]]\nid = \"x\"\nverdict = \"nope\"\n")]);
    // Environment variable.
    editgate()
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env("EDITGATE_POLICIES", broken.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(broken.path().display().to_string()));
    // Config file, with a path relative to the file.
    let cfg = policy_dir(&[(
        "editgate.toml",
        "policies = \"p\"\nlisten = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n",
    )]);
    let p = cfg.path().join("p");
    crate::common::write(&p, "global.toml", "[[rule]]\nid = \"x\"\nverdict = \"nope\"\n");
    editgate()
        .args(["serve", "--config"])
        .arg(cfg.path().join("editgate.toml"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "global.toml:3:11: error: unknown verdict `nope`",
        ));
    std::fs::remove_dir_all(&p).unwrap();
    // A flag beats the config file.
    editgate()
        .args(["serve", "--config"])
        .arg(cfg.path().join("editgate.toml"))
        .arg("--policies")
        .arg(broken.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(broken.path().display().to_string()));
    // A misspelt config key is a usage error with its position.
    let bad = policy_dir(&[("editgate.toml", "listen = \"127.0.0.1:0\"\npolicy = \"x\"\n")]);
    editgate()
        .args(["serve", "--config"])
        .arg(bad.path().join("editgate.toml"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("editgate.toml:2:1: unknown key `policy`")
                .and(predicate::str::contains("did you mean `policies`?")),
        );
}

#[test]
fn replay_counts_add_up_and_transitions_follow_the_change() {
    use editgate_testkit::synth::Rng;
    // NEW: tor-anon blocks instead of requiring login; vpn-anon is gone.
    let new = tempfile::tempdir().unwrap();
    crate::common::copy_dir(&shipped_policies(), new.path());
    let global = std::fs::read_to_string(new.path().join("global.toml")).unwrap();
    let global = global.replacen(
        "verdict = \"require-login\"\nmessage = \"editgate-tor-login\"",
        "verdict = \"block\"\nmessage = \"editgate-tor-login\"",
        1,
    );
    let start = global.find("[[rule]]\nid = \"vpn-anon\"").unwrap();
    let end = start + global[start..].find("\n\n[[rule]]").unwrap();
    let global = format!("{}{}", &global[..start], &global[end + 2..]);
    assert!(!global.contains("vpn-anon"));
    std::fs::write(new.path().join("global.toml"), global).unwrap();

    // 100k attempts: Tor exits, VPN networks, anywhere; all account kinds; both JSON styles.
    let tor: Vec<String> = ["162.247.74.201", "199.249.223.62", "178.19.111.147"]
        .map(String::from)
        .to_vec();
    let vpn = ["2.26.157.", "2.26.164."];
    let mut rng = Rng::new(4);
    let mut text = String::new();
    let kinds = [
        "ACCOUNT_KIND_ANONYMOUS",
        "ACCOUNT_KIND_TEMPORARY",
        "ACCOUNT_KIND_REGISTERED",
    ];
    for i in 0..100_000u64 {
        let ip = match rng.below(10) {
            0..=1 => tor[rng.below(3) as usize].clone(),
            2..=3 => format!("{}{}", vpn[rng.below(2) as usize], rng.below(256)),
            _ => rng.ip().to_string(),
        };
        let kind = kinds[rng.below(3) as usize];
        let wiki = ["enwiki", "dewiki", ""][rng.below(3) as usize];
        if i % 2 == 0 {
            text += &format!(
                "{{\"ip\":\"{ip}\",\"wiki\":\"{wiki}\",\"action\":\"edit\",\"requestId\":\"r{i}\",\"account\":{{\"kind\":\"{kind}\",\"editCount\":\"{}\",\"registeredAt\":\"2026-01-01T00:00:00Z\"}}}}\n",
                rng.below(300)
            );
        } else {
            text += &format!(
                "{{\"ip\":\"{ip}\",\"wiki\":\"{wiki}\",\"request_id\":\"r{i}\",\"account\":{{\"kind\":{},\"edit_count\":{}}}}}\n",
                1 + rng.below(3),
                rng.below(300)
            );
        }
    }
    text += "{\"ip\":\"300.1.1.1\",\"account\":{\"kind\":\"ACCOUNT_KIND_ANONYMOUS\"}}\nnot json\n{\"ip\":\"192.0.2.1\"}\n\n";
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();

    let out = editgate()
        .args(["replay", "--json", "--at", "2026-11-25T00:00:00Z", "--policies"])
        .arg(shipped_policies())
        .arg("--against")
        .arg(new.path())
        .arg("--attempts")
        .arg(file.path())
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains(":100001: ip: `300.1.1.1`") && stderr.contains(":100003: account: required"),
        "{stderr}"
    );
    assert_eq!(v["lines"], 100_003);
    assert_eq!(v["invalid"], 3);
    let sum = |side: &str| {
        ["allow", "require-login", "block"]
            .iter()
            .map(|k| v[side]["verdicts"][k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("old"), 100_000);
    assert_eq!(sum("new"), 100_000);

    // Replay the old policy alone to learn how many decisions each rule made.
    let same = editgate()
        .args(["replay", "--json", "--at", "2026-11-25T00:00:00Z", "--policies"])
        .arg(shipped_policies())
        .arg("--against")
        .arg(shipped_policies())
        .arg("--attempts")
        .arg(file.path())
        .assert()
        .success();
    let same: Value = serde_json::from_slice(&same.get_output().stdout).unwrap();
    assert_eq!(same["changed"], 0);
    assert_eq!(same["transitions"], serde_json::json!([]));

    let transitions: Vec<(String, String, u64)> = v["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["from"].as_str().unwrap().into(),
                t["to"].as_str().unwrap().into(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let rules = v["rules"].as_array().unwrap();
    let vpn_lost = rules.iter().find(|r| r["rule_id"] == "vpn-anon").unwrap();
    let n_vpn = vpn_lost["old"].as_u64().unwrap();
    assert!(n_vpn > 1_000, "{vpn_lost}");
    assert_eq!(vpn_lost["new"], 0);
    let default = rules.iter().find(|r| r["rule_id"] == "").unwrap();
    assert_eq!(default["delta"].as_i64().unwrap(), n_vpn as i64);
    // tor-anon decides the same attempts, now with block.
    assert!(rules.iter().all(|r| r["rule_id"] != "tor-anon"));
    let n_tor = transitions
        .iter()
        .find(|t| t.0 == "require-login" && t.1 == "block")
        .unwrap()
        .2;
    assert!(n_tor > 1_000);
    assert_eq!(
        transitions
            .iter()
            .find(|t| t.0 == "require-login" && t.1 == "allow")
            .unwrap()
            .2,
        n_vpn
    );
    assert_eq!(transitions.len(), 2, "{transitions:?}");
    assert_eq!(v["changed"].as_u64().unwrap(), n_tor + n_vpn);
    // The full matrix: the diagonal plus the two changes account for every attempt.
    let m = &v["matrix"];
    let total: u64 = ["allow", "require-login", "block"]
        .iter()
        .flat_map(|f| ["allow", "require-login", "block"].map(|t| m[f][t].as_u64().unwrap()))
        .sum();
    assert_eq!(total, 100_000);
    assert_eq!(m["require-login"]["block"].as_u64().unwrap(), n_tor);
    assert_eq!(
        m["allow"]["allow"].as_u64().unwrap(),
        v["old"]["verdicts"]["allow"].as_u64().unwrap()
    );
    assert_eq!(v["samples"].as_array().unwrap().len(), 20);
    let s0 = &v["samples"][0];
    assert!(s0["line"].as_u64().unwrap() >= 1 && s0["before"]["rule_id"].is_string());
    assert!(
        !String::from_utf8(out.get_output().stdout.clone())
            .unwrap()
            .contains("162.247.74.201"),
        "no raw IPs in the report"
    );

    // The human table, from standard input.
    editgate()
        .args([
            "replay",
            "--at",
            "2026-11-25T00:00:00Z",
            "--attempts",
            "-",
            "--policies",
        ])
        .arg(shipped_policies())
        .arg("--against")
        .arg(new.path())
        .write_stdin(text.lines().take(2_000).collect::<Vec<_>>().join("\n"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("replayed 2000 attempts")
                .and(predicate::str::contains("require-login → block"))
                .and(predicate::str::contains("transition matrix"))
                .and(predicate::str::contains("vpn-anon"))
                .and(predicate::str::contains("sample of changed attempts")),
        );
}

/// A change that keeps every verdict but moves decisions to another rule (a rename) counts
/// as changed, and the report says which kind each change is, so its numbers add up.
#[test]
fn replay_tells_changed_verdicts_from_changed_rules() {
    let renamed = crate::common::shipped_copy();
    let global = renamed.path().join("global.toml");
    let text = std::fs::read_to_string(&global).unwrap();
    std::fs::write(&global, text.replace("id = \"tor-anon\"", "id = \"tor-anonymous\"")).unwrap();
    let attempts = "{\"ip\":\"162.247.74.201\",\"account\":{\"kind\":\"ACCOUNT_KIND_ANONYMOUS\"}}\n".repeat(3)
        + "{\"ip\":\"9.9.9.9\",\"account\":{\"kind\":\"ACCOUNT_KIND_ANONYMOUS\"}}\n";
    let run = |json: bool| {
        let mut cmd = editgate();
        cmd.args(["replay", "--attempts", "-", "--policies"])
            .arg(shipped_policies())
            .arg("--against")
            .arg(renamed.path());
        if json {
            cmd.arg("--json");
        }
        let out = cmd.write_stdin(attempts.clone()).assert().success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let v: Value = serde_json::from_str(&run(true)).unwrap();
    assert_eq!(
        (&v["changed"], &v["changed_verdict"], &v["changed_rule_only"]),
        (&serde_json::json!(3), &serde_json::json!(0), &serde_json::json!(3)),
        "{v}"
    );
    let text = run(false);
    assert!(
        text.contains("3 changed (0 verdicts, 3 only the deciding rule)") && text.contains("changed verdicts (0)"),
        "{text}"
    );
}

/// TOML → JSON as an editor's TOML language server sees it (date-times become strings).
fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect()),
    }
}

#[test]
fn schema_accepts_the_shipped_policies_and_rejects_a_misspelt_key() {
    let out = editgate().arg("schema").assert().success();
    let schema: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let dir = shipped_policies();
    let mut files = vec![dir.join("global.toml")];
    files.extend(std::fs::read_dir(dir.join("wikis")).unwrap().map(|e| e.unwrap().path()));
    assert!(files.len() >= 3);
    for f in &files {
        let doc = toml_to_json(toml::from_str(&std::fs::read_to_string(f).unwrap()).unwrap());
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", f.display());
    }
    for bad in [
        "[[rule]]\nid = \"a\"\nverdcit = \"block\"\n",
        "[[rule]]\nid = \"a\"\nverdict = \"blok\"\n",
        "[[rule]]\nid = \"a\"\nverdict = \"block\"\nwhen.acount = [\"anonymous\"]\n",
        "[sources.x]\nkind = \"ip-lists\"\npath = \"x\"\n",
    ] {
        let doc = toml_to_json(toml::from_str(bad).unwrap());
        assert!(!validator.is_valid(&doc), "accepted: {bad}");
    }
}

#[test]
fn committed_schema_is_up_to_date() {
    let out = editgate().arg("schema").assert().success();
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/editgate-policy.schema.json"),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out.get_output().stdout.clone()).unwrap(),
        committed,
        "run `cargo run -- schema > schema/editgate-policy.schema.json`"
    );
}

#[test]
fn committed_man_pages_are_up_to_date() {
    use clap::CommandFactory as _;
    let pages = editgate_testkit::man::pages(editgate::cli::Cli::command()).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .collect();
    committed.sort();
    let mut expected: Vec<String> = pages.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(committed, expected, "run `cargo xtask man`");
    assert!(expected.contains(&"editgate-serve.1".to_owned()));
    for (name, text) in &pages {
        let on_disk = std::fs::read(dir.join(name)).unwrap();
        assert!(
            on_disk == *text,
            "docs/man/{name} is out of date: run `cargo xtask man`"
        );
    }
    // The product's subcommands only: no development tool has a page.
    assert!(!expected.iter().any(|n| n.contains("loadgen") || n.contains("soak")));
}
