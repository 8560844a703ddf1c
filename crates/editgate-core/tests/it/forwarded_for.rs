//! A forwarded-for address only ever makes a decision stricter: the client writes
//! X-Forwarded-For, so it may satisfy the `when` of a refusing `xff` rule, never an `unless`
//! and never an `allow` rule, and the verdict is never less strict than the client address
//! alone would get. The attacks that once loosened a decision, the trace of each resolution,
//! and random policies checked on both decision paths.

use editgate_core::attempt::{AccountKind, Attempt};
use editgate_core::decision::{Outcome, Verdict};
use editgate_core::engine::{Snapshot, SourceContent, SourceData, Trace, decide, decide_with_facts};
use editgate_core::load::load_dir;
use editgate_core::policy::{Lint, PolicyFile, check};
use proptest::prelude::*;

use crate::common::{built, errors, load, now, parts, shipped_with};

const TOR_EXIT: &str = "162.247.74.201";
const CAMPUS: &str = "192.0.2.5";

/// The ids and outcomes of a decision's trace.
fn steps(snap: &Snapshot, d: &editgate_core::decision::Decision<'_>) -> Vec<(String, Outcome)> {
    d.trace
        .iter()
        .map(|s| (snap.rules()[s.rule as usize].id.clone(), s.outcome))
        .collect()
}

/// An anonymous edit on enwiki from `ip` with the forwarded-for chain `xff`.
fn anonymous(ip: &str, xff: &[&str]) -> Attempt {
    let mut a = parts(ip, "enwiki", AccountKind::Anonymous);
    a.forwarded_for = xff.iter().map(|x| x.parse().unwrap()).collect();
    built(&a)
}

#[test]
fn xff_on_an_allow_rule_does_not_load() {
    let e = errors(&[(
        "global.toml",
        "[[rule]]\nid = \"campus\"\nverdict = \"allow\"\nxff = true\nwhen.ip = [\"198.51.100.0/24\"]\n",
    )]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "global.toml:4:7: `xff = true` on the `allow` rule `campus`: the client writes X-Forwarded-For"
        ),
        "{}",
        e[0]
    );
    // `xff = false` on an allow rule is fine.
    assert!(
        load(&[(
            "global.toml",
            "[[rule]]\nid = \"campus\"\nverdict = \"allow\"\nxff = false\nwhen.ip = [\"198.51.100.0/24\"]\n",
        )])
        .is_ok()
    );
}

/// The first attack: an `allow` rule for a campus range with `xff = true` let an anonymous
/// Tor edit through with `X-Forwarded-For: <campus address>`. The checker refuses such a
/// rule; a policy built without the checker gets no loosening from it either.
#[test]
fn a_forwarded_address_never_makes_an_allow_rule_match() {
    let text = r#"
[[rule]]
id = "campus"
verdict = "allow"
when.ip = ["198.51.100.0/24"]

[[rule]]
id = "tor-like"
verdict = "require-login"
when.ip = ["162.247.74.0/24"]
when.account = ["anonymous"]
"#;
    let (mut policy, _) = check(
        &[PolicyFile {
            path: "global.toml".into(),
            text: text.into(),
        }],
        now(),
    )
    .unwrap();
    policy.rules[0].xff = true; // what the checker refuses
    let snap = Snapshot::build(policy, Vec::new(), "hand-built".into());
    assert!(!snap.has_xff_rules(), "an allow rule's xff is not compiled");
    let d = decide(&snap, &anonymous(TOR_EXIT, &[CAMPUS]), now());
    assert_eq!((d.verdict, d.rule_id), (Verdict::RequireLogin, "tor-like"));
    assert_eq!(
        steps(&snap, &d)[0],
        (
            "campus".to_owned(),
            Outcome::WhenFailed(editgate_core::decision::CondKey::Ip)
        )
    );
}

/// The second attack: a locked `block` of Tor with `xff = true` and an exemption for a
/// campus range in `unless`; a Tor client claiming the campus in X-Forwarded-For escaped the
/// block. `unless` tests the client address only, and validate says so.
#[test]
fn a_forwarded_address_never_satisfies_unless() {
    let dir = shipped_with(
        r#"
[[rule]]
id = "steward-tor-block"
verdict = "block"
locked = true
xff = true
when.ip_in = ["tor"]
unless.ip = ["192.0.2.0/24"]
"#,
    );
    let loaded = load_dir(dir.path(), now()).unwrap();
    let snap = &loaded.snapshot;
    for xff in [&[][..], &[CAMPUS], &["10.1.1.1", CAMPUS]] {
        let d = decide(snap, &anonymous(TOR_EXIT, xff), now());
        assert_eq!((d.verdict, d.rule_id), (Verdict::Block, "steward-tor-block"), "{xff:?}");
    }
    // The campus itself is exempt (its client address holds `unless`), and a Tor exit in its
    // chain blocks it: the forwarded address satisfies `when`.
    let d = decide(snap, &anonymous(CAMPUS, &[]), now());
    assert_eq!((d.verdict, d.rule_id), (Verdict::Allow, ""));
    let d = decide(snap, &anonymous(CAMPUS, &[TOR_EXIT]), now());
    assert_eq!(
        (d.verdict, d.rule_id),
        (Verdict::Allow, ""),
        "unless holds for the client"
    );
    let d = decide(snap, &anonymous("8.8.4.4", &[TOR_EXIT]), now());
    assert_eq!((d.verdict, d.rule_id), (Verdict::Block, "steward-tor-block"));
    assert!(
        steps(snap, &d).contains(&("steward-tor-block".to_owned(), Outcome::ForwardedMatched)),
        "{:?}",
        steps(snap, &d)
    );
    let lint = loaded
        .warnings
        .iter()
        .find(|w| w.lint == Lint::XffUnless)
        .expect("xff-unless");
    assert!(
        lint.message.contains("`unless.ip`") && lint.message.contains("client address only"),
        "{lint}"
    );
}

const ORDERED: &str = r#"
[settings]
default = "allow"

[[rule]]
id = "proxy-login"
verdict = "require-login"
xff = true
when.ip = ["192.0.2.0/24"]

[[rule]]
id = "shadow-all"
verdict = "block"
mode = "shadow"

[[rule]]
id = "hard"
verdict = "block"
when.ip = ["203.0.113.0/24"]

[[rule]]
id = "soft"
verdict = "require-login"
when.ip = ["198.51.100.0/24"]

[[rule]]
id = "xff-hard"
verdict = "block"
xff = true
when.ip = ["233.252.0.0/24"]

[[rule]]
id = "shadow-soft"
verdict = "require-login"
mode = "shadow"
"#;

/// First match decides; a forwarded-for match decides only when the client address alone
/// gets no stricter verdict. Each resolution, on both paths, with its trace.
#[test]
fn a_forwarded_match_decides_only_when_the_client_alone_is_not_stricter() {
    let loaded = load(&[("global.toml", ORDERED)]).unwrap();
    let snap = &loaded.snapshot;
    let both = |ip: &str, xff: &[&str]| {
        let a = anonymous(ip, xff);
        let traced = decide(snap, &a, now());
        let xf: Vec<_> = a.forwarded_for().iter().map(|x| snap.facts(*x)).collect();
        let hot = decide_with_facts(snap, &a, &snap.facts(a.ip()), &xf, now(), Trace::Skip);
        assert_eq!(
            (traced.verdict, traced.rule_id, &traced.shadow_rule_ids),
            (hot.verdict, hot.rule_id, &hot.shadow_rule_ids),
            "{ip} {xff:?}"
        );
        traced
    };
    use Outcome::*;
    let ids = |d: &editgate_core::decision::Decision<'_>| steps(snap, d);

    // The client alone would be blocked: the forwarded-for match cannot lower it.
    let d = both("203.0.113.1", &["192.0.2.1"]);
    assert_eq!((d.verdict, d.rule_id), (Verdict::Block, "hard"));
    assert_eq!(ids(&d)[0], ("proxy-login".to_owned(), ForwardedOutranked));
    assert_eq!(ids(&d)[2], ("hard".to_owned(), Matched));
    assert_eq!(d.shadow_rule_ids, ["shadow-all"]);

    // The client alone would be allowed by default: the forwarded-for match decides. A shadow
    // rule reached on the client address alone is reported when, enforced, it would have
    // decided (stricter than the forwarded-for match), and not otherwise; the answer and the
    // trace say the same.
    let d = both("8.8.4.4", &["192.0.2.1"]);
    assert_eq!((d.verdict, d.rule_id), (Verdict::RequireLogin, "proxy-login"));
    assert_eq!(ids(&d)[0], ("proxy-login".to_owned(), ForwardedMatched));
    assert_eq!(ids(&d)[1], ("shadow-all".to_owned(), ShadowMatched));
    assert_eq!(ids(&d).last().unwrap(), &("shadow-soft".to_owned(), ShadowNotStricter));
    assert_eq!(d.shadow_rule_ids, ["shadow-all"]);

    // A tie: the forwarded-for match is first in order and decides; the client's own match
    // is shown as not stricter.
    let d = both("198.51.100.1", &["192.0.2.1"]);
    assert_eq!((d.verdict, d.rule_id), (Verdict::RequireLogin, "proxy-login"));
    assert_eq!(ids(&d)[3], ("soft".to_owned(), NotStricter));

    // A forwarded-for `block` decides at once.
    let d = both("8.8.4.4", &["233.252.0.9"]);
    assert_eq!((d.verdict, d.rule_id), (Verdict::Block, "xff-hard"));
    assert_eq!(ids(&d).last().unwrap(), &("xff-hard".to_owned(), ForwardedMatched));
    // First match still decides: a rule matching the client address before an `xff` rule
    // decides before it, and so does the first forwarded-for match before a later one.
    let d = both("198.51.100.1", &["233.252.0.9"]);
    assert_eq!((d.verdict, d.rule_id), (Verdict::RequireLogin, "soft"));
    let d = both("8.8.4.4", &["10.0.0.1", "233.252.0.9", "192.0.2.1"]);
    assert_eq!(
        (d.verdict, d.rule_id),
        (Verdict::RequireLogin, "proxy-login"),
        "first in order"
    );

    // No forwarded-for match: exactly the client's decision.
    let d = both("198.51.100.1", &["10.0.0.1"]);
    assert_eq!((d.verdict, d.rule_id), (Verdict::RequireLogin, "soft"));

    // A default stricter than the forwarded-for match wins over it.
    let strict = ORDERED.replace("default = \"allow\"", "default = \"block\"");
    let loaded = load(&[("global.toml", &strict)]).unwrap();
    let d = decide(&loaded.snapshot, &anonymous("8.8.4.4", &["192.0.2.1"]), now());
    assert_eq!((d.verdict, d.rule_id), (Verdict::Block, ""));
    assert_eq!(d.trace[0].outcome, ForwardedOutranked);
}

/// Random policies (stages, shadow rules, `xff`, `unless`, allow rules, list and inline
/// networks, defaults) and attempts: the untraced path agrees with the traced one, and a
/// forwarded-for chain never makes a verdict less strict than the client address alone.
mod random {
    use super::*;

    const NETS: [&str; 5] = [
        "10.0.0.0/24",
        "10.0.1.0/24",
        "10.0.0.0/16",
        "2001:db8::/48",
        "10.0.0.128/25",
    ];
    const ADDRS: [&str; 7] = [
        "10.0.0.5",
        "10.0.0.200",
        "10.0.1.9",
        "10.0.2.1",
        "2001:db8::7",
        "203.0.113.1",
        "::ffff:10.0.1.10",
    ];
    const VERDICTS: [&str; 3] = ["allow", "require-login", "block"];

    #[derive(Debug, Clone)]
    struct RuleSpec {
        verdict: usize,
        xff: bool,
        shadow: bool,
        stage: usize,
        when_ip: Option<Vec<usize>>,
        when_ip_in: Option<Vec<usize>>,
        when_account: Option<Vec<usize>>,
        when_min_edits: Option<u64>,
        unless_ip: Option<Vec<usize>>,
        unless_ip_in: Option<Vec<usize>>,
        unless_rights: bool,
    }

    fn rule() -> impl Strategy<Value = RuleSpec> {
        let picks = |n: usize| prop::option::of(prop::collection::vec(0..n, 1..3));
        (
            (0..3usize, any::<bool>(), prop::bool::weighted(0.2), 0..3usize),
            (picks(NETS.len()), picks(2), picks(3), prop::option::of(0..20u64)),
            (picks(NETS.len()), picks(2), prop::bool::weighted(0.3)),
        )
            .prop_map(
                |((verdict, xff, shadow, stage), (wi, wl, wa, me), (ui, ul, ur))| RuleSpec {
                    verdict,
                    xff: xff && verdict != 0,
                    shadow,
                    stage,
                    when_ip: wi,
                    when_ip_in: wl,
                    when_account: wa,
                    when_min_edits: me,
                    unless_ip: ui,
                    unless_ip_in: ul,
                    unless_rights: ur,
                },
            )
    }

    fn list<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
        items.map(|x| format!("\"{x}\"")).collect::<Vec<_>>().join(", ")
    }

    fn render(n: usize, r: &RuleSpec) -> String {
        let mut s = format!("[[rule]]\nid = \"r{n}\"\nverdict = \"{}\"\n", VERDICTS[r.verdict]);
        if r.stage == 0 {
            s += "locked = true\n";
        }
        if r.xff {
            s += "xff = true\n";
        }
        if r.shadow {
            s += "mode = \"shadow\"\n";
        }
        if let Some(v) = &r.when_ip {
            s += &format!("when.ip = [{}]\n", list(v.iter().map(|&i| NETS[i])));
        }
        if let Some(v) = &r.when_ip_in {
            s += &format!("when.ip_in = [{}]\n", list(v.iter().map(|i| format!("s{i}"))));
        }
        if let Some(v) = &r.when_account {
            let kinds = ["anonymous", "temporary", "registered"];
            s += &format!("when.account = [{}]\n", list(v.iter().map(|&i| kinds[i])));
        }
        if let Some(n) = r.when_min_edits {
            s += &format!("when.min_edits = {n}\n");
        }
        if let Some(v) = &r.unless_ip {
            s += &format!("unless.ip = [{}]\n", list(v.iter().map(|&i| NETS[i])));
        }
        if let Some(v) = &r.unless_ip_in {
            s += &format!("unless.ip_in = [{}]\n", list(v.iter().map(|i| format!("s{i}"))));
        }
        if r.unless_rights {
            s += "unless.rights = [\"exempt\"]\n";
        }
        s + "\n"
    }

    fn snapshot(rules: &[RuleSpec], default: usize, wiki_default: Option<usize>) -> Snapshot {
        let mut global = format!(
            "[settings]\ndefault = \"{}\"\n\n[sources.s0]\nkind = \"ip-list\"\npath = \"s0.txt\"\n\n[sources.s1]\nkind = \"ip-list\"\npath = \"s1.txt\"\n\n",
            VERDICTS[default]
        );
        let mut wiki = match wiki_default {
            Some(v) => format!("[settings]\ndefault = \"{}\"\n\n", VERDICTS[v]),
            None => String::new(),
        };
        for (n, r) in rules.iter().enumerate() {
            if r.stage == 1 {
                wiki += &render(n, r);
            } else {
                global += &render(n, r);
            }
        }
        let files = [
            PolicyFile {
                path: "global.toml".into(),
                text: global,
            },
            PolicyFile {
                path: "wikis/enwiki.toml".into(),
                text: wiki,
            },
        ];
        let (policy, _) = check(&files, now()).unwrap_or_else(|e| panic!("{e}"));
        let nets = |v: &[&str]| SourceData {
            content: SourceContent::Networks(v.iter().map(|n| n.parse().unwrap()).collect()),
            time: None,
        };
        let data = vec![
            nets(&["10.0.0.0/24", "2001:db8::/48"]),
            nets(&["10.0.1.0/24", "10.0.0.128/25", "203.0.113.0/24"]),
        ];
        Snapshot::build(policy, data, "random".into())
    }

    #[derive(Debug, Clone)]
    struct AttemptSpec {
        ip: usize,
        chain: Vec<usize>,
        kind: usize,
        edits: u64,
        exempt: bool,
        wiki: bool,
    }

    fn attempt_spec() -> impl Strategy<Value = AttemptSpec> {
        (
            0..ADDRS.len(),
            prop::collection::vec(0..ADDRS.len(), 1..4),
            0..3usize,
            0..25u64,
            prop::bool::weighted(0.2),
            any::<bool>(),
        )
            .prop_map(|(ip, chain, kind, edits, exempt, wiki)| AttemptSpec {
                ip,
                chain,
                kind,
                edits,
                exempt,
                wiki,
            })
    }

    fn build(a: &AttemptSpec, with_chain: bool) -> Attempt {
        let kind = [AccountKind::Anonymous, AccountKind::Temporary, AccountKind::Registered][a.kind];
        let mut p = parts(ADDRS[a.ip], if a.wiki { "enwiki" } else { "dewiki" }, kind);
        p.account.edit_count = a.edits;
        if a.exempt {
            p.account.rights = vec!["exempt".into()];
        }
        if with_chain {
            p.forwarded_for = a.chain.iter().map(|&i| ADDRS[i].parse().unwrap()).collect();
        }
        built(&p)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(192))]

        #[test]
        fn a_chain_never_loosens_and_both_paths_agree(
            rules in prop::collection::vec(rule(), 1..64),
            default in 0..3usize,
            wiki_default in prop::option::of(0..3usize),
            attempts in prop::collection::vec(attempt_spec(), 24),
        ) {
            let snap = snapshot(&rules, default, wiki_default);
            for a in &attempts {
                let (with, without) = (build(a, true), build(a, false));
                let decided = |at: &Attempt| {
                    let traced = decide(&snap, at, now());
                    let xf: Vec<_> = at.forwarded_for().iter().map(|x| snap.facts(*x)).collect();
                    let hot = decide_with_facts(&snap, at, &snap.facts(at.ip()), &xf, now(), Trace::Skip);
                    prop_assert_eq!(
                        (traced.verdict, traced.rule_id, &traced.shadow_rule_ids),
                        (hot.verdict, hot.rule_id, &hot.shadow_rule_ids),
                        "{:?}", at
                    );
                    // The answer reports exactly the shadow rules explain shows as reported.
                    let reported: Vec<&str> = traced
                        .trace
                        .iter()
                        .filter(|s| s.outcome == Outcome::ShadowMatched)
                        .map(|s| snap.rules()[s.rule as usize].id.as_str())
                        .collect();
                    prop_assert_eq!(&reported, &traced.shadow_rule_ids, "{:?}", at);
                    Ok((traced.verdict, traced.rule_id.to_owned()))
                };
                let (v_with, rule_with) = decided(&with)?;
                let (v_without, rule_without) = decided(&without)?;
                prop_assert!(v_with >= v_without, "{a:?}: {v_with:?} by {rule_with} < {v_without:?} by {rule_without}");
                if rule_with != rule_without {
                    // Only a refusing xff rule matched through the chain decides instead,
                    // and never with a verdict below the client's own.
                    let r = snap.rules().iter().find(|r| r.id == rule_with).expect("a rule decided");
                    prop_assert!(r.xff && r.verdict != Verdict::Allow, "{a:?}: {rule_with}");
                }
            }
        }
    }
}
