//! Evaluation through the library API: the order of stages and the defaults, `xff`,
//! `unless`, the policy version, and the untraced hot path against the traced path.

use editgate_core::attempt::{AccountKind, parse_ip};
use editgate_core::decision::{Outcome, Verdict};
use editgate_core::engine::decide;
use editgate_core::load::load_dir;

use crate::common::{LISTS, attempt, built, fixtures, load, now, parts, policy_dir, shipped_policies};

const ORDER: &str = r#"
[settings]
default = "require-login"

[[rule]]
id = "global-anon"
verdict = "block"
when.account = ["anonymous"]
when.ip = ["203.0.113.0/24"]

[[rule]]
id = "locked-range"
verdict = "block"
locked = true
when.ip = ["198.51.100.0/24"]

[[rule]]
id = "shadow-all"
verdict = "block"
mode = "shadow"
when.ip = ["203.0.113.0/24", "198.51.100.0/24"]

[[rule]]
id = "expired"
verdict = "block"
expires = 2020-01-01T00:00:00Z

[[rule]]
id = "xff-range"
verdict = "block"
xff = true
when.ip = ["192.0.2.0/24"]
"#;

const ENWIKI: &str = r#"
[settings]
default = "allow"

[[rule]]
id = "enwiki-allow"
verdict = "allow"
when.ip = ["203.0.113.0/24", "198.51.100.0/24"]
"#;

#[test]
fn evaluation_order_locked_then_wiki_then_global_then_defaults() {
    let loaded = load(&[("global.toml", ORDER), ("wikis/enwiki.toml", ENWIKI)]).unwrap();
    let s = &loaded.snapshot;
    let t = now();
    // Wiki rule beats the global rule.
    let d = decide(s, &attempt("203.0.113.1", "enwiki", AccountKind::Anonymous), t);
    assert_eq!((d.verdict, d.rule_id), (Verdict::Allow, "enwiki-allow"));
    // Elsewhere the global rule decides; the shadow rule comes after it and is not reached.
    let d = decide(s, &attempt("203.0.113.1", "dewiki", AccountKind::Anonymous), t);
    assert_eq!((d.verdict, d.rule_id), (Verdict::Block, "global-anon"));
    assert!(d.shadow_rule_ids.is_empty());
    // The locked rule beats the wiki rule.
    let d = decide(s, &attempt("198.51.100.1", "enwiki", AccountKind::Registered), t);
    assert_eq!((d.verdict, d.rule_id), (Verdict::Block, "locked-range"));
    // No match: wiki default, then global default.
    let d = decide(s, &attempt("9.9.9.9", "enwiki", AccountKind::Registered), t);
    assert_eq!((d.verdict, d.rule_id), (Verdict::Allow, ""));
    assert!(d.reason.contains("enwiki"), "{}", d.reason);
    let d = decide(s, &attempt("9.9.9.9", "dewiki", AccountKind::Registered), t);
    assert_eq!((d.verdict, d.rule_id), (Verdict::RequireLogin, ""));
    // Shadow: reported, evaluation goes on to the default.
    let d = decide(s, &attempt("203.0.113.1", "dewiki", AccountKind::Registered), t);
    assert_eq!(
        (d.verdict, d.rule_id, d.shadow_rule_ids.clone()),
        (Verdict::RequireLogin, "", vec!["shadow-all"])
    );
    // The expired rule (no conditions) would match everything; it is skipped and traced.
    assert!(d.trace.iter().any(|st| st.outcome == Outcome::Expired));
    // Before its expiry it decides.
    let d = decide(
        s,
        &attempt("9.9.9.9", "dewiki", AccountKind::Registered),
        "2019-12-31T00:00:00Z".parse().unwrap(),
    );
    assert_eq!(d.rule_id, "expired");
}

#[test]
fn xff_rules_test_forwarded_addresses_others_do_not() {
    let loaded = load(&[("global.toml", ORDER)]).unwrap();
    let s = &loaded.snapshot;
    let mut a = parts("9.9.9.9", "dewiki", AccountKind::Registered);
    a.forwarded_for = vec!["203.0.113.9".parse().unwrap(), "192.0.2.5".parse().unwrap()];
    let d = decide(s, &built(&a), now());
    assert_eq!(d.rule_id, "xff-range");
    a.forwarded_for.pop();
    let d = decide(s, &built(&a), now());
    // `global-anon` has no xff, so 203.0.113.9 in the chain does not count (and the account
    // is registered anyway); the default decides.
    assert_eq!((d.verdict, d.rule_id), (Verdict::RequireLogin, ""));
}

#[test]
fn unless_exempts_only_when_all_its_keys_hold() {
    let global = r#"
[[rule]]
id = "r"
verdict = "block"
unless.rights = ["ipblock-exempt"]
unless.min_edits = 10
"#;
    let loaded = load(&[("global.toml", global)]).unwrap();
    let s = &loaded.snapshot;
    let mut a = parts("9.9.9.9", "", AccountKind::Registered);
    a.account.rights = vec!["IPBlock-Exempt".into()];
    a.account.edit_count = 5;
    assert_eq!(decide(s, &built(&a), now()).rule_id, "r");
    a.account.edit_count = 10;
    let d = decide(s, &built(&a), now());
    assert_eq!((d.verdict, d.rule_id), (Verdict::Allow, ""));
    assert!(matches!(d.trace[0].outcome, Outcome::Unless(Some(_))));
}

#[test]
fn policy_version_changes_with_data() {
    let a = load(&[("global.toml", LISTS), ("bad.txt", "203.0.113.1\n")]).unwrap();
    let b = load(&[("global.toml", LISTS), ("bad.txt", "203.0.113.2\n")]).unwrap();
    let c = load(&[("global.toml", LISTS), ("bad.txt", "203.0.113.1\n")]).unwrap();
    assert_ne!(a.snapshot.version(), b.snapshot.version());
    assert_eq!(a.snapshot.version(), c.snapshot.version());
    assert_eq!(a.snapshot.version().len(), 16);
}

/// The untraced hot path must decide exactly like the traced path, on every combination.
#[test]
fn hot_path_agrees_with_traced_path() {
    use editgate_core::engine::{Trace, decide_with_facts};
    let loaded = load_dir(&shipped_policies(), now()).unwrap();
    let s = &loaded.snapshot;
    let ips = [
        "162.247.74.201",
        "2.26.157.10",
        "2001:550:1d05::1",
        "1.2.0.1",
        "186.30.236.5",
        "71.160.223.5",
        "9.9.9.9",
        "203.0.113.9",
        "198.51.100.3",
        "2001:db8:5a::1",
        "::ffff:162.247.74.201",
    ];
    let mut compared = 0;
    for (n, ip) in ips.iter().enumerate() {
        for wiki in ["", "enwiki", "officewiki", "dewiki"] {
            for kind in [AccountKind::Anonymous, AccountKind::Temporary, AccountKind::Registered] {
                for (edits, age_days, rights, groups) in [
                    (0u64, 0i64, vec![], vec![]),
                    (9, 3, vec![], vec!["staff".to_owned()]),
                    (150, 200, vec![], vec![]),
                    (5, 1, vec!["torunblocked".to_owned()], vec![]),
                ] {
                    for at in [now(), "2027-07-01T00:00:00Z".parse().unwrap()] {
                        let mut a = parts(ip, wiki, kind);
                        a.account.edit_count = edits;
                        a.account.registered_at = Some(at - jiff::SignedDuration::from_hours(24 * age_days));
                        a.account.rights = rights.clone();
                        a.account.groups = groups.clone();
                        if n % 3 == 0 {
                            a.forwarded_for = vec![parse_ip("xff", ips[(n + 4) % ips.len()]).unwrap()];
                        }
                        let traced = decide(s, &built(&a), at);
                        let f = s.facts(a.ip);
                        let xf: Vec<_> = a.forwarded_for.iter().map(|ip| s.facts(*ip)).collect();
                        let hot = decide_with_facts(s, &built(&a), &f, &xf, at, Trace::Skip);
                        assert_eq!(
                            (traced.verdict, traced.rule_id, &traced.shadow_rule_ids),
                            (hot.verdict, hot.rule_id, &hot.shadow_rule_ids),
                            "{a:?}"
                        );
                        assert!(hot.trace.is_empty());
                        compared += 1;
                    }
                }
            }
        }
    }
    assert_eq!(compared, ips.len() * 4 * 3 * 4 * 2);
}

/// With many rules the hot path visits candidates from an inverted label index; it must still
/// decide exactly like the traced path, which visits every rule.
#[test]
fn inverted_hot_path_agrees_with_traced_path_on_a_large_policy() {
    use editgate_core::engine::{Trace, decide_with_facts};
    use editgate_testkit::synth::{Rng, write_policy};
    let dir = tempfile::tempdir().unwrap();
    write_policy(dir.path(), &fixtures(), 4_000, 120, 9).unwrap();
    // Add xff and shadow rules so every candidate list is exercised.
    let mut global = std::fs::read_to_string(dir.path().join("global.toml")).unwrap();
    global += "\n[[rule]]\nid = \"xff-10\"\nverdict = \"block\"\nxff = true\nwhen.ip = [\"10.200.0.0/16\"]\n";
    global +=
        "\n[[rule]]\nid = \"shadow-dc\"\nverdict = \"block\"\nmode = \"shadow\"\nwhen.ip_in = [\"dc4\", \"anon\"]\n";
    std::fs::write(dir.path().join("global.toml"), global).unwrap();
    let loaded = load_dir(dir.path(), now()).unwrap();
    let s = &loaded.snapshot;
    assert!(s.rules().len() > 100);
    let mut rng = Rng::new(77);
    let special: Vec<std::net::IpAddr> = [
        "162.247.74.201",
        "1.2.0.1",
        "186.30.236.5",
        "81.2.69.160",
        "1.0.0.1",
        "10.7.1.1",
        "10.200.3.3",
        "2001:db8:7::1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let (mut compared, mut decided_by_rule) = (0, 0);
    for i in 0..6_000u64 {
        let ip = if i % 3 == 0 {
            special[(i / 3) as usize % special.len()]
        } else {
            rng.ip()
        };
        let kind = [AccountKind::Anonymous, AccountKind::Temporary, AccountKind::Registered][(i % 3) as usize];
        let mut a = parts(&ip.to_string(), "enwiki", kind);
        a.account.edit_count = rng.below(150);
        if i % 7 == 0 {
            a.account.rights = vec!["ipblock-exempt".into()];
        }
        if i % 5 == 0 {
            a.forwarded_for = vec!["10.200.9.9".parse().unwrap()];
        }
        let traced = decide(s, &built(&a), now());
        let f = s.facts(a.ip);
        let xf: Vec<_> = a.forwarded_for.iter().map(|ip| s.facts(*ip)).collect();
        let hot = decide_with_facts(s, &built(&a), &f, &xf, now(), Trace::Skip);
        assert_eq!(
            (traced.verdict, traced.rule_id, &traced.shadow_rule_ids),
            (hot.verdict, hot.rule_id, &hot.shadow_rule_ids),
            "{a:?}"
        );
        compared += 1;
        decided_by_rule += usize::from(!hot.rule_id.is_empty());
    }
    assert_eq!(compared, 6_000);
    assert!(decided_by_rule > 1_000, "the sample exercises rules: {decided_by_rule}");
}

#[test]
fn hot_path_agrees_with_traced_path_for_an_address_in_many_lists() {
    use editgate_core::engine::{Trace, decide_with_facts};
    // Twelve sources hold the same network: more candidate lists than the hot path merges on
    // the fly, so it takes its buffer path; 60 rules put the plan on the inverted index.
    let mut files = vec![("global.toml".to_owned(), String::new())];
    let mut global = String::new();
    for s in 0..12 {
        global += &format!("[sources.s{s}]\nkind = \"ip-list\"\npath = \"l{s}.txt\"\n\n");
        files.push((format!("l{s}.txt"), format!("198.51.100.0/24\n10.{s}.0.0/16\n")));
    }
    for j in 0..60 {
        let mode = if j % 7 == 3 { "mode = \"shadow\"\n" } else { "" };
        global += &format!(
            "[[rule]]\nid = \"r{j}\"\nverdict = \"{}\"\n{mode}when = {{ ip_in = [\"s{}\"], min_edits = {j}, max_edits = {j} }}\n\n",
            ["block", "require-login", "allow"][j % 3],
            j % 12
        );
    }
    files[0].1 = global;
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let dir = policy_dir(&refs);
    let loaded = load_dir(dir.path(), now()).unwrap();
    let s = &loaded.snapshot;
    for ip in ["198.51.100.7", "10.3.1.1", "203.0.113.1"] {
        for edits in 0..70u64 {
            let mut a = parts(ip, "enwiki", AccountKind::Registered);
            a.account.edit_count = edits;
            let traced = decide(s, &built(&a), now());
            let f = s.facts(a.ip);
            let hot = decide_with_facts(s, &built(&a), &f, &[], now(), Trace::Skip);
            assert_eq!(
                (traced.verdict, traced.rule_id, &traced.shadow_rule_ids),
                (hot.verdict, hot.rule_id, &hot.shadow_rule_ids),
                "{ip} with {edits} edits"
            );
            let expected = match (ip, edits) {
                ("198.51.100.7", e) if e < 60 && e % 7 != 3 => format!("r{e}"),
                ("10.3.1.1", e) if e < 60 && e % 12 == 3 && e % 7 != 3 => format!("r{e}"),
                _ => String::new(),
            };
            assert_eq!(hot.rule_id, expected, "{ip} with {edits} edits");
        }
    }
}

#[test]
fn snapshot_evaluation_order_lists_what_decisions_visit() {
    let global = "[settings]\ndefault = \"allow\"\n\n[[rule]]\nid = \"g1\"\nverdict = \"block\"\nwhen.ip = [\"203.0.113.0/24\"]\n\n[[rule]]\nid = \"locked\"\nlocked = true\nverdict = \"block\"\nwhen.ip = [\"198.51.100.0/24\"]\n\n[[rule]]\nid = \"g2\"\nverdict = \"allow\"\nwhen.account = [\"registered\"]\n";
    let wiki = "[settings]\ndefault = \"require-login\"\ndefault_message = \"w-default\"\n\n[[rule]]\nid = \"w1\"\nverdict = \"allow\"\nwhen.groups = [\"staff\"]\n";
    let l = load(&[("global.toml", global), ("wikis/xwiki.toml", wiki)]).unwrap();
    let snap = &l.snapshot;
    let ids = |wiki: &str| -> Vec<&str> {
        snap.evaluation_order(wiki)
            .rules
            .iter()
            .map(|&i| snap.rules()[i].id.as_str())
            .collect()
    };
    assert_eq!(ids("xwiki"), ["locked", "w1", "g1", "g2"]);
    assert_eq!(ids("otherwiki"), ["locked", "g1", "g2"]);
    assert_eq!(ids(""), ["locked", "g1", "g2"]);
    let x = snap.evaluation_order("xwiki");
    assert_eq!(x.default, Verdict::RequireLogin);
    assert_eq!(x.default_from, editgate_core::decision::DecidedBy::WikiDefault);
    assert_eq!(x.default_message, "w-default");
    let other = snap.evaluation_order("otherwiki");
    assert_eq!(
        (other.default, other.default_from),
        (Verdict::Allow, editgate_core::decision::DecidedBy::GlobalDefault)
    );
    // The order is the one decisions follow: the trace visits the same rules.
    let d = decide(snap, &attempt("192.0.2.9", "xwiki", AccountKind::Anonymous), now());
    let visited: Vec<&str> = d
        .trace
        .iter()
        .map(|s| snap.rules()[s.rule as usize].id.as_str())
        .collect();
    assert_eq!(visited, ids("xwiki"));
}

/// What the sources say about an address comes with every decision: the sources that hold
/// it, their change tags (once each) and whether one is shared, whatever the verdict.
#[test]
fn sources_tags_and_shared_addresses() {
    let loaded = load_dir(&shipped_policies(), now()).unwrap();
    let s = &loaded.snapshot;
    let at = |ip: &str| s.address(&s.facts(ip.parse().unwrap()));
    let tor = at("162.247.74.201");
    assert_eq!(
        (tor.sources.to_vec(), tor.tags.to_vec(), tor.shared),
        (vec!["tor"], vec!["tor"], true)
    );
    // In MaxMind's test database as a VPN: tagged like the VPN list, once.
    let vpn = at("1.2.0.1");
    assert_eq!(
        (vpn.sources.to_vec(), vpn.tags.to_vec(), vpn.shared),
        (vec!["anonymizers"], vec!["vpn"], true)
    );
    let hard = at("203.0.113.1");
    assert_eq!(
        (hard.sources.to_vec(), hard.tags.to_vec(), hard.shared),
        (vec!["hard-blocks"], Vec::<&str>::new(), false)
    );
    assert_eq!(at("9.9.9.9"), editgate_core::engine::AddressSummary::default());
}

#[test]
fn tags_and_shared_are_checked() {
    let e = crate::common::errors(&[
        (
            "global.toml",
            "[sources.a]\nkind = \"ip-list\"\npath = \"a.txt\"\ntag = \"Tor Exits\"\n\n[sources.asn]\nkind = \"maxmind-asn\"\npath = \"asn.mmdb\"\ntag = \"x\"\nshared = true\n",
        ),
        ("a.txt", "203.0.113.0/24\n"),
    ]);
    assert!(
        e.iter()
            .any(|l| l.starts_with("global.toml:4:7: `tag = \"Tor Exits\"`: a change tag is")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|l| l.contains("`tag` only applies to sources that hold addresses")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|l| l.contains("`shared` only applies to sources that hold addresses")),
        "{e:?}"
    );
}
