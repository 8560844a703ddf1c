//! Spur's feeds as a source (`spur-feed`): the reputation conditions on the hand-written
//! fixture and on generated feeds, on both decision paths, and a feed refused whole when it is
//! cut short, corrupt or shrunk.

use std::io::Write as _;

use editgate_core::attempt::AccountKind;
use editgate_core::engine::{Trace, decide, decide_with_facts};
use editgate_core::load::{LoadOptions, load, load_dir};
use editgate_core::pace::Pacer;
use editgate_core::policy::Lint;
use editgate_core::sources::spur::Field;

use crate::common::{attempt, built, errors, fixture, now, parts, policy_dir};

const FEED: &str = "spur/anonymous-sample.json";

fn sample() -> String {
    std::fs::read_to_string(fixture(FEED)).unwrap()
}

/// A policy of `rules` over a `spur-feed` source `spur` reading `feed.json`.
fn with_feed(rules: &str, feed: &str) -> tempfile::TempDir {
    let global = format!(
        "[settings]\nappeal = \"[[Project:Appeals]]\"\n\n[sources.spur]\nkind = \"spur-feed\"\npath = \"feed.json\"\nmin_entries = 1\n\n{rules}"
    );
    policy_dir(&[("global.toml", &global), ("feed.json", feed)])
}

const RULES: &str = r#"
[[rule]]
id = "vpn"
verdict = "block"
when.tunnel_operators = ["nord_vpn", "PROTON_VPN"]
when.account = ["anonymous"]
allow_lints = ["anonymous-block"]

[[rule]]
id = "crowded"
verdict = "require-login"
when.min_clients = 1000
when.risks = ["CALLBACK_PROXY"]
when.account = ["anonymous"]

[[rule]]
id = "listed"
verdict = "require-login"
when.ip_in = ["spur"]
when.account = ["anonymous"]
"#;

#[test]
fn reputation_keys_decide_on_both_paths() {
    let dir = with_feed(RULES, &sample());
    let loaded = load_dir(dir.path(), now()).unwrap();
    let snap = &loaded.snapshot;
    assert_eq!(snap.sources()[0].entries, 6, "seven records, six addresses");
    for (ip, want) in [
        ("198.19.10.1", "vpn"),     // NORD_VPN, matched whatever the case
        ("198.19.10.3", "vpn"),     // PROTON_VPN in one of its two records
        ("198.19.10.2", "listed"),  // MULLVAD_VPN: not listed by `vpn`
        ("198.19.10.5", "crowded"), // 4,200 clients and a callback proxy
        ("198.19.10.4", "listed"),  // a callback proxy with 3 clients
        ("2001:db8:7a7::10", "listed"),
        ("9.9.9.9", ""),
    ] {
        let a = attempt(ip, "enwiki", AccountKind::Anonymous);
        let traced = decide(snap, &a, now());
        let f = snap.facts(a.ip());
        let hot = decide_with_facts(snap, &a, &f, &[], now(), Trace::Skip);
        assert_eq!(traced.rule_id, want, "{ip}");
        assert_eq!(
            (hot.verdict, hot.rule_id),
            (traced.verdict, traced.rule_id),
            "{ip}: the paths differ"
        );
    }
    let registered = attempt("198.19.10.1", "enwiki", AccountKind::Registered);
    assert_eq!(decide(snap, &registered, now()).rule_id, "");
    // The answer's summary and explain's report carry the reputation.
    let f = snap.facts("198.19.10.3".parse().unwrap());
    let summary = snap.address(&f);
    assert_eq!(summary.sources.to_vec(), ["spur"]);
    let rep = summary.reputation.unwrap();
    assert_eq!(rep.clients, 7, "the later record's count");
    let mut ops = rep.names(Field::TunnelOperators).to_vec();
    ops.sort();
    assert_eq!(ops, ["EXPRESS_VPN", "PROTON_VPN"]);
    let report = snap.report("198.19.10.5".parse().unwrap());
    assert_eq!(report.sources, ["spur"]);
    assert_eq!(report.reputation.unwrap().names(Field::Infrastructure), ["MOBILE"]);
    assert!(snap.report("9.9.9.9".parse().unwrap()).reputation.is_none());
}

#[test]
fn a_forwarded_for_address_in_a_feed_makes_an_xff_rule_hold() {
    let dir = with_feed(
        "[[rule]]\nid = \"vpn-chain\"\nverdict = \"require-login\"\nxff = true\nwhen.tunnel_types = [\"VPN\"]\n",
        &sample(),
    );
    let snap = load_dir(dir.path(), now()).unwrap().snapshot;
    let mut p = parts("9.9.9.9", "enwiki", AccountKind::Anonymous);
    p.forwarded_for = vec!["198.19.10.2".parse().unwrap()];
    let a = built(&p);
    let d = decide(&snap, &a, now());
    assert_eq!(d.rule_id, "vpn-chain");
    let xf = snap.forwarded_facts(&a, |ip| snap.facts(ip));
    let hot = decide_with_facts(&snap, &a, &snap.facts(a.ip()), &xf, now(), Trace::Skip);
    assert_eq!(hot.rule_id, "vpn-chain");
}

#[test]
fn gzipped_feeds_load_alike() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(sample().as_bytes()).unwrap();
    let bytes = gz.finish().unwrap();
    let dir = with_feed(RULES, "");
    std::fs::write(dir.path().join("feed.json"), &bytes).unwrap();
    let snap = load_dir(dir.path(), now()).unwrap().snapshot;
    let a = attempt("198.19.10.1", "enwiki", AccountKind::Anonymous);
    assert_eq!(decide(&snap, &a, now()).rule_id, "vpn");
    // Cut short: refused, with the file named.
    std::fs::write(dir.path().join("feed.json"), &bytes[..bytes.len() / 2]).unwrap();
    let e = load_dir(dir.path(), now()).unwrap_err().to_string();
    assert!(e.contains("feed.json") && e.contains("cut short or corrupt"), "{e}");
}

#[test]
fn a_bad_record_is_an_error_at_its_line() {
    let feed = format!("{}{{\"ip\":\"198.19.10.999\"}}\n", sample());
    let dir = with_feed(RULES, &feed);
    let e = load_dir(dir.path(), now()).unwrap_err().to_string();
    assert!(
        e.contains("feed.json:8:") && e.contains("`198.19.10.999` is not an IP address"),
        "{e}"
    );
    let dir = with_feed(RULES, "<html>captive portal</html>\n");
    let e = load_dir(dir.path(), now()).unwrap_err().to_string();
    assert!(e.contains("feed.json:1:") && e.contains("a JSON object a line"), "{e}");
    let dir = with_feed(RULES, "");
    let e = load_dir(dir.path(), now()).unwrap_err().to_string();
    assert!(e.contains("0 entries"), "{e}");
}

#[test]
fn the_keys_need_a_feed_and_values() {
    let e = errors(&[(
        "global.toml",
        "[[rule]]\nid = \"x\"\nverdict = \"block\"\nwhen.risks = [\"TUNNEL\"]\nwhen.min_clients = 3\n",
    )]);
    assert!(
        e.iter()
            .any(|l| l.contains("global.toml:4:") && l.contains("`risks` needs a `spur-feed` source")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|l| l.contains("`min_clients` needs a `spur-feed` source")),
        "{e:?}"
    );
    let e = errors(&[(
        "global.toml",
        "[sources.s]\nkind = \"spur-feed\"\npath = \"f\"\n\n[[rule]]\nid = \"x\"\nverdict = \"block\"\nwhen.services = [\"  \"]\n",
    )]);
    assert!(e.iter().any(|l| l.contains("an empty value in `services`")), "{e:?}");
}

#[test]
fn a_value_no_record_has_is_a_warning_with_the_closest() {
    let dir = with_feed(
        "[[rule]]\nid = \"typo\"\nverdict = \"require-login\"\nwhen.tunnel_operators = [\"NORDVPN\", \"mullvad_vpn\"]\n",
        &sample(),
    );
    let loaded = load_dir(dir.path(), now()).unwrap();
    let w: Vec<String> = loaded
        .warnings
        .iter()
        .filter(|w| w.lint == Lint::UnknownReputationValue)
        .map(ToString::to_string)
        .collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("`NORDVPN`") && w[0].contains("did you mean `NORD_VPN`?"),
        "{w:?}"
    );
}

#[test]
fn a_shrunk_feed_is_refused_on_reload_and_the_serving_one_stays() {
    let dir = with_feed(RULES, &sample());
    let first = load_dir(dir.path(), now()).unwrap();
    let one_line = sample().lines().next().unwrap().to_owned() + "\n";
    let feed = dir.path().join("feed.json");
    std::fs::write(&feed, &one_line).unwrap();
    let reload = || {
        load(
            dir.path(),
            LoadOptions {
                now: now(),
                previous: Some(&first.snapshot),
                pacer: Pacer::none(),
            },
        )
    };
    let e = reload().unwrap_err().to_string();
    assert!(e.contains("1 entries, down from 6"), "{e}");
    assert!(e.contains("editgate accept-shrink <policy dir> spur"), "{e}");
    // Confirmed (as `editgate accept-shrink` writes it), the same copy loads.
    let sha = editgate_core::sidecar::sha256_hex(one_line.as_bytes());
    std::fs::write(
        editgate_core::shrink::acceptance_path(&feed),
        editgate_core::shrink::acceptance_of_sha(&sha, 1, now()),
    )
    .unwrap();
    assert_eq!(reload().unwrap().snapshot.reputation().len(), 1);
}

#[test]
fn a_generated_feed_of_a_hundred_thousand_records_stores_each_profile_once() {
    let mut text = Vec::new();
    let ips = editgate_testkit::synth::write_spur_feed(&mut text, 100_000, 7).unwrap();
    let table = editgate_core::sources::spur::read(text.as_slice(), &mut Pacer::none()).unwrap();
    assert_eq!(table.len(), 100_000);
    assert!(
        table.profiles.all().len() < table.len() / 2,
        "{} profiles for {} addresses",
        table.profiles.all().len(),
        table.len()
    );
    for ip in ips.iter().step_by(997) {
        assert_ne!(table.find(*ip), 0, "{ip}");
    }
    assert_eq!(table.find("9.9.9.9".parse().unwrap()), 0);
    assert!(table.profiles.vocabulary(Field::TunnelOperators).len() > 100);
}
