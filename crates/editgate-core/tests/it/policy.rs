//! The policy checker and the evaluation order, through the library API.

use editgate_core::load::{LoadError, load_dir};
use editgate_core::policy::Lint;

use crate::common::{LISTS, copy_fixture, errors, load, now, policy_dir, shipped_policies};

#[test]
fn misspelt_key_names_file_line_column_and_suggests() {
    let e = errors(&[(
        "global.toml",
        "[[rule]]\nid = \"a\"\nverdict = \"allow\"\nverdcit = \"block\"\n",
    )]);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with(
            "global.toml:4:1: unknown key `verdcit` in [[rule]], expected one of: id, description, verdict"
        ),
        "{}",
        e[0]
    );
    assert!(e[0].ends_with("did you mean `verdict`?"), "{}", e[0]);
}

#[test]
fn every_semantic_error_is_reported_at_once() {
    let global = r#"
[sources.tor]
kind = "tor-exit"
path = "x.txt"

[[rule]]
id = "a"
verdict = "blok"
when.account = ["anonymus"]
when.min_age = "9y"
when.ip = ["10.0.0.0/33"]
when.asn = [64496]
when.country = ["IR"]
when.ip_in = ["nope"]
expires = 2027-01-01T00:00:00

[[rule]]
id = "b"
verdict = "allow"

[[rule]]
id = "b"
verdict = "allow"
mode = "shadw"
"#;
    let e = errors(&[
        ("global.toml", global),
        ("wikis/En-Wiki.toml", ""),
        (
            "wikis/dewiki.toml",
            "[[rule]]\nid = \"c\"\nverdict = \"allow\"\nlocked = true\n",
        ),
    ]);
    let want = [
        "global.toml:3:8: unknown source kind `tor-exit`",
        "did you mean `tor-exits`?",
        "global.toml:8:11: unknown verdict `blok`",
        "did you mean `block`?",
        "global.toml:9:17: unknown account kind `anonymus`",
        "global.toml:10:16: `min_age`: `9y` is not a duration",
        "global.toml:11:12: `10.0.0.0/33` is not an IP address or CIDR network",
        "global.toml:12:12: `asn` needs a `maxmind-asn` source",
        "global.toml:13:16: `country` needs a `maxmind-country` source",
        "global.toml:14:15: unknown source `nope` in `ip_in`",
        "global.toml:15:11: `expires = 2027-01-01T00:00:00` needs a date, or a date and time with an offset",
        "global.toml:22:6: duplicate rule id `b`, first defined at global.toml:18:6",
        "global.toml:24:8: unknown mode `shadw`",
        "wikis/En-Wiki.toml: `En-Wiki` is not a valid wiki id",
        "wikis/dewiki.toml:4:10: `locked` is only allowed in global.toml",
    ];
    let all = e.join("\n");
    for w in want {
        assert!(all.contains(w), "missing {w:?} in:\n{all}");
    }
}

#[test]
fn broken_list_file_names_the_list_with_line_and_column() {
    let e = errors(&[
        (
            "global.toml",
            &format!("{LISTS}\n[[rule]]\nid = \"r\"\nverdict = \"block\"\nwhen.ip_in = [\"bad\"]\n"),
        ),
        ("bad.txt", "192.0.2.1\n# ok\n  192.0.2.300\n"),
    ]);
    assert_eq!(
        e,
        vec!["bad.txt:3:3: source `bad` (ip-list): `192.0.2.300` is not an IP address or CIDR network".to_owned()]
    );
}

#[test]
fn missing_list_file_is_an_error_at_the_source() {
    let e = errors(&[("global.toml", LISTS)]);
    assert!(
        e[0].starts_with("global.toml:2:10: source `bad`: cannot read `bad.txt`"),
        "{}",
        e[0]
    );
}

#[test]
fn corrupt_database_is_rejected_with_its_path() {
    let dir = policy_dir(&[(
        "global.toml",
        "[sources.vpn]\nkind = \"maxmind-anonymous\"\npath = \"db.mmdb\"\nflags = [\"is_anonymous_vpn\"]\n",
    )]);
    copy_fixture(
        dir.path(),
        "maxmind/broken/MaxMind-DB-test-broken-search-tree-24.mmdb",
        "db.mmdb",
    );
    let Err(LoadError::Invalid(e)) = load_dir(dir.path(), now()) else {
        panic!("expected an error")
    };
    assert!(
        e.0[0]
            .to_string()
            .starts_with("db.mmdb: source `vpn` (maxmind-anonymous): "),
        "{}",
        e
    );
}

#[test]
fn missing_global_toml_is_an_error() {
    let e = errors(&[("wikis/enwiki.toml", "")]);
    assert!(e[0].starts_with("global.toml: missing"), "{}", e[0]);
}

pub(crate) fn lints(files: &[(&str, &str)]) -> Vec<(Lint, String)> {
    load(files)
        .unwrap()
        .warnings
        .into_iter()
        .map(|w| (w.lint, w.to_string()))
        .collect()
}

#[test]
fn each_lint_fires_on_its_fixture() {
    let global = r#"
[sources.used]
kind = "ip-list"
path = "a.txt"

[sources.unused]
kind = "ip-list"
path = "a.txt"

[[rule]]
id = "old"
verdict = "block"
expires = 2020-01-01T00:00:00Z
when.ip_in = ["used"]

[[rule]]
id = "all-anon"
verdict = "require-login"
when.account = ["anonymous"]

[[rule]]
id = "anon-on-list"
verdict = "block"
when.account = ["anonymous"]
when.ip_in = ["used"]

[[rule]]
id = "pointless-xff"
verdict = "block"
xff = true
when.rights = ["x"]

[[rule]]
id = "campus-exempt"
verdict = "block"
xff = true
when.ip_in = ["used"]
unless.ip = ["198.51.100.0/24"]
unless.rights = ["x"]

[[rule]]
id = "never"
verdict = "allow"
when.min_edits = 10
when.max_edits = 5

[[rule]]
id = "inside-list"
verdict = "require-login"
when.ip_in = ["used"]
when.ip = ["192.0.2.0/25", "192.0.2.200"]
when.account = ["registered"]

[[rule]]
id = "partly-outside"
verdict = "require-login"
when.ip_in = ["used"]
when.ip = ["192.0.2.0/25", "198.51.100.1"]
when.account = ["temporary"]
"#;
    let w = lints(&[("global.toml", global), ("a.txt", "192.0.2.0/24\n")]);
    let has = |lint: Lint, text: &str| w.iter().any(|(l, s)| *l == lint && s.contains(text));
    assert!(has(Lint::ExpiredRule, "rule `old` expired"), "{w:?}");
    assert!(has(Lint::UnusedSource, "source `unused`"), "{w:?}");
    assert!(!has(Lint::UnusedSource, "source `used`"), "{w:?}");
    assert!(
        has(
            Lint::UnreachableRule,
            "rule `anon-on-list` can never decide or report: rule `all-anon`"
        ),
        "{w:?}"
    );
    assert!(has(Lint::UselessXff, "rule `pointless-xff`"), "{w:?}");
    assert!(
        has(
            Lint::XffUnless,
            "rule `campus-exempt` sets `xff = true`, but its `unless` (`unless.ip`) tests the client address only"
        ),
        "{w:?}"
    );
    assert!(!has(Lint::XffUnless, "pointless-xff"), "{w:?}");
    assert!(has(Lint::ImpossibleCondition, "rule `never` can never match"), "{w:?}");
    assert!(
        has(
            Lint::RedundantIpIn,
            "rule `inside-list`: every `when.ip` network lies inside source `used`"
        ),
        "{w:?}"
    );
    assert!(!has(Lint::RedundantIpIn, "partly-outside"), "{w:?}");
    assert!(
        has(
            Lint::AnonymousBlock,
            "rule `anon-on-list` blocks only anonymous and temporary editors, who may then log in"
        ),
        "{w:?}"
    );
    assert!(
        !has(Lint::AnonymousBlock, "rule `all-anon`"),
        "require-login is not flagged: {w:?}"
    );
    assert!(w.iter().all(|(_, s)| s.starts_with("global.toml:")), "{w:?}");
}

#[test]
fn narrower_unless_keeps_a_later_rule_reachable() {
    let global = "[[rule]]\nid = \"a\"\nverdict = \"block\"\nwhen.account = [\"anonymous\"]\nunless.rights = [\"x\"]\n\n[[rule]]\nid = \"b\"\nverdict = \"block\"\nwhen.account = [\"anonymous\"]\n";
    let w = lints(&[("global.toml", global)]);
    assert!(w.iter().all(|(l, _)| *l != Lint::UnreachableRule), "{w:?}");
}

#[test]
fn shipped_policies_load_without_warnings() {
    let loaded = load_dir(&shipped_policies(), now()).unwrap();
    assert_eq!(loaded.warnings, vec![]);
    assert!(loaded.snapshot.rules().len() >= 10);
}

#[test]
fn decision_log_settings_are_checked() {
    let key = ("log.key", "0123456789abcdef0123456789abcdef");
    let e = errors(&[
        (
            "global.toml",
            "[settings.decision_log]\npath = \"d.jsonl\"\nkey_file = \"log.key\"\nsample_rate = 2.0\n",
        ),
        key,
    ]);
    assert!(
        e[0].starts_with("global.toml:4:15: `sample_rate = 2` must be between 0 and 1"),
        "{e:?}"
    );
    let e = errors(&[
        (
            "global.toml",
            "[settings.decision_log]\npath = \"d.jsonl\"\nkey_file = \"log.key\"\n",
        ),
        ("log.key", "short\n"),
    ]);
    assert!(
        e[0].contains("decision_log: key file `log.key` holds 5 bytes; use at least 16"),
        "{e:?}"
    );
    let e = errors(&[(
        "global.toml",
        "[settings.decision_log]\npath = \"d.jsonl\"\nkey_file = \"missing.key\"\n",
    )]);
    assert!(e[0].contains("cannot read key file `missing.key`"), "{e:?}");
    let e = errors(&[
        ("global.toml", ""),
        (
            "wikis/enwiki.toml",
            "[settings.decision_log]\npath = \"d\"\nkey_file = \"k\"\n",
        ),
        key,
    ]);
    assert!(
        e[0].contains("`decision_log` belongs in the [settings] of global.toml"),
        "{e:?}"
    );
    let e = errors(&[
        (
            "global.toml",
            "[settings.decision_log]\npath = \"d\"\nkey_file = \"log.key\"\nsample = 1\n",
        ),
        key,
    ]);
    assert!(e[0].contains("unknown key `sample`"), "{e:?}");
}

/// The decision log key makes its hashed addresses reversible: a key file every user can
/// read is refused; one a foreign group can read is a `secret-file-mode` warning.
#[test]
fn a_decision_log_key_others_can_read_is_refused_or_flagged() {
    use std::os::unix::fs::PermissionsExt as _;
    let global = "[settings.decision_log]\npath = \"d.jsonl\"\nkey_file = \"log.key\"\n";
    let dir = policy_dir(&[("global.toml", global), ("log.key", "0123456789abcdef0123456789abcdef")]);
    let key = dir.path().join("log.key");
    for mode in [0o644, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let Err(LoadError::Invalid(e)) = load_dir(dir.path(), now()) else {
            panic!("a key readable by everyone must be refused")
        };
        let text = e.to_string();
        assert!(
            text.starts_with("global.toml:1:1: decision_log: the key file")
                && text.contains(&format!("can be read by every user on this host (mode {mode:04o})")),
            "{text}"
        );
    }
    for mode in [0o600, 0o640, 0o400] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let loaded = load_dir(dir.path(), now()).unwrap();
        assert!(loaded.warnings.is_empty(), "{mode:o}: {:?}", loaded.warnings);
    }
    // A symbolic link to a directory (or anything not a regular file) is no key.
    std::fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(dir.path(), &key).unwrap();
    assert!(matches!(load_dir(dir.path(), now()), Err(LoadError::Invalid(_))));
    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, "0123456789abcdef0123456789abcdef").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    if std::os::unix::fs::chown(&key, None, Some(65_534)).is_err() {
        eprintln!("skipped the foreign-group case: only root can give a file a group it is not in");
        return;
    }
    let loaded = load_dir(dir.path(), now()).unwrap();
    let w: Vec<_> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(loaded.warnings.len(), 1, "{w:?}");
    assert_eq!(loaded.warnings[0].lint, Lint::SecretFileMode);
    assert!(
        w[0].contains("warning[secret-file-mode]") && w[0].contains("group 65534"),
        "{w:?}"
    );
}

/// A key others can read through an ACL, a key another user owns, and a key in a directory
/// others can write to are refused, naming the file and the fix.
#[test]
fn a_decision_log_key_others_can_reach_another_way_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let global = "[settings.decision_log]\npath = \"d.jsonl\"\nkey_file = \"keys/log.key\"\n";
    let dir = policy_dir(&[
        ("global.toml", global),
        ("keys/log.key", "0123456789abcdef0123456789abcdef"),
    ]);
    let key = dir.path().join("keys/log.key");
    let refused = |want: &str| {
        let Err(LoadError::Invalid(e)) = load_dir(dir.path(), now()) else {
            panic!("{want}: the key must be refused")
        };
        let text = e.to_string();
        assert!(
            text.starts_with("global.toml:1:1: decision_log: the key file") && text.contains(want),
            "{text}"
        );
    };
    std::fs::set_permissions(dir.path().join("keys"), std::fs::Permissions::from_mode(0o777)).unwrap();
    refused("which others can write to (mode 0777, no sticky bit)");
    std::fs::set_permissions(dir.path().join("keys"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(load_dir(dir.path(), now()).is_ok());
    if editgate_testkit::dirs::grant_acl(&key, 65_534, None, 4) {
        refused("through its ACL entry `user:65534:r--`");
    } else {
        eprintln!("skipped the ACL case: this file system has no ACLs");
    }
    std::fs::remove_file(&key).unwrap();
    editgate_testkit::dirs::write(dir.path(), "keys/log.key", "0123456789abcdef0123456789abcdef");
    if std::os::unix::fs::chown(&key, Some(65_534), None).is_ok() {
        refused("is owned by user 65534");
    } else {
        eprintln!("skipped the owner case: only root can give a file to another user");
    }
}

/// Pacing changes when a build runs, never what it builds: the shipped policy (60,000 list
/// networks, long enough to pause many times) gives the same facts with the reload thread's
/// pacer as without.
#[test]
fn a_paced_load_builds_the_same_snapshot() {
    use editgate_core::load::{LoadOptions, load};
    use editgate_core::pace::{Cooperative, Pacer};
    let dir = shipped_policies();
    let now = jiff::Timestamp::now();
    let plain = load_dir(&dir, now).unwrap();
    let mut cooperative = Cooperative::default();
    let mut pause = || {
        // Make every point a pause, as on a busy host.
        std::thread::sleep(editgate_core::pace::QUANTUM);
        cooperative.pause()
    };
    let paced = load(
        &dir,
        LoadOptions {
            now,
            previous: None,
            pacer: Pacer::with(&mut pause),
        },
    )
    .unwrap();
    assert!(cooperative.pauses() > 10, "paused {} times", cooperative.pauses());
    let mut rng = editgate_testkit::synth::Rng::new(3);
    let mut probes: Vec<std::net::IpAddr> = (0..2000).map(|_| rng.ip()).collect();
    let tor = std::fs::read(dir.join("lists/tor-exit-addresses.txt")).unwrap();
    probes.extend(editgate_core::sources::tor::parse_bytes(&tor).unwrap().1);
    let vpn = std::fs::read(dir.join("lists/vpn.txt")).unwrap();
    let vpn = editgate_core::sources::iplist::parse_bytes(&vpn, false).unwrap();
    probes.extend(vpn.iter().step_by(97).map(|n| rng.ip_in(n)));
    let listed = probes
        .iter()
        .filter(|ip| plain.snapshot.facts(**ip) != editgate_core::engine::Facts::default())
        .count();
    assert!(listed > 500, "only {listed} of {} probes are in a list", probes.len());
    for ip in probes {
        assert_eq!(plain.snapshot.facts(ip), paced.snapshot.facts(ip), "{ip}");
    }
}
