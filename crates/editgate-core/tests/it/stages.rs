//! Lints across stages, allowing lints, `appeal-unset` and `untranslatable-message`: the
//! mistakes a policy author makes when the rule that cancels theirs is in another file, or
//! the editor reading the refusal speaks another language.

use editgate_core::load::LoadError;
use editgate_core::policy::Lint;

use crate::common::{errors, load};
use crate::policy::lints;

/// A global.toml with the shipped policy's shape: a locked hard-block list, an exemption by
/// right for Tor and VPNs, an appeal.
const GLOBAL: &str = r#"
[settings]
appeal = "[[Project:Appeals]]"

[sources.tor]
kind = "ip-list"
path = "tor.txt"
min_entries = 1

[sources.hosting]
kind = "ip-list"
path = "hosting.txt"
min_entries = 1

[sources.hard-blocks]
kind = "ip-list"
path = "hard-blocks.txt"
min_entries = 1

[[rule]]
id = "global-hard-block"
verdict = "block"
locked = true
when.ip_in = ["hard-blocks"]

[[rule]]
id = "proxy-exempt"
verdict = "allow"
when.ip_in = ["tor", "hosting"]
when.rights = ["ipblock-exempt", "torunblocked"]
"#;

fn files(wiki: &str) -> Vec<(&str, &str)> {
    vec![
        ("global.toml", GLOBAL),
        ("wikis/mywiki.toml", wiki),
        ("tor.txt", "198.18.0.0/24\n"),
        ("hosting.txt", "198.18.5.0/24\n"),
        ("hard-blocks.txt", "# the stewards' list\n192.0.2.0/24\n"),
    ]
}

/// The policy the issue's operator wrote: on mywiki, trusted accounts edit over Tor, everyone
/// else on Tor logs in, anonymous edits from hosting networks are blocked, a university range
/// is exempt. Each cross-stage mistake in it is named, with both rules and both files.
#[test]
fn a_wiki_rule_that_cancels_a_global_exemption_is_named() {
    let wiki = r#"
[[rule]]
id = "mywiki-tor-trusted"
verdict = "allow"
when.ip_in = ["tor"]
when.account = ["registered"]
when.min_edits = 500

[[rule]]
id = "mywiki-tor-login"
verdict = "require-login"
when.ip_in = ["tor"]
"#;
    let w = lints(&files(wiki));
    let overridden: Vec<&String> = w
        .iter()
        .filter(|(l, _)| *l == Lint::ExemptionOverridden)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(overridden.len(), 1, "{w:?}");
    let text = overridden[0];
    assert!(
        text.starts_with("wikis/mywiki.toml:")
            && text.contains("rule `mywiki-tor-login` (wikis/mywiki.toml) refuses attempts that the global rule `proxy-exempt` (global.toml) exists to allow (accounts with `ipblock-exempt` or `torunblocked`)")
            && text.contains("`unless.rights = [\"ipblock-exempt\", \"torunblocked\"]`"),
        "{text}"
    );
    // Repeating the exemption in the rule's `unless` is the fix.
    let fixed = format!("{wiki}unless.rights = [\"ipblock-exempt\", \"torunblocked\"]\n");
    let w = lints(&files(&fixed));
    assert!(w.iter().all(|(l, _)| *l != Lint::ExemptionOverridden), "{w:?}");
    // A wiki rule that cannot meet the exemption (another source, anonymous editors only
    // where the exemption needs an account right nobody anonymous has) is not flagged.
    let other = "[[rule]]\nid = \"mywiki-hosting-anon\"\nverdict = \"require-login\"\nwhen.ip_in = [\"hard-blocks\"]\n";
    let w = lints(&files(other));
    assert!(w.iter().all(|(l, _)| *l != Lint::ExemptionOverridden), "{w:?}");
}

/// A locked rule that refuses everything a wiki `allow` rule allows, or a rule's `unless`
/// exempts, makes that exemption unreachable; an entry of the locked rule's list that covers
/// `unless.ip` does the same, and the warning names the list.
#[test]
fn an_exemption_the_locked_floor_refuses_first_is_named() {
    let wiki = r#"
[[rule]]
id = "mywiki-campus"
verdict = "allow"
when.ip = ["192.0.2.0/25"]

[[rule]]
id = "mywiki-hosting-anon"
verdict = "require-login"
when.ip_in = ["hosting"]
unless.ip = ["192.0.2.0/24"]
"#;
    let global = GLOBAL.replace(
        "when.ip_in = [\"hard-blocks\"]\n",
        "when.ip_in = [\"hard-blocks\"]\n\n[[rule]]\nid = \"steward-range\"\nverdict = \"block\"\nlocked = true\nwhen.ip = [\"192.0.2.0/24\"]\n",
    );
    let mut f = files(wiki);
    f[0].1 = &global;
    let w = lints(&f);
    let has = |lint: Lint, text: &str| w.iter().any(|(l, s)| *l == lint && s.contains(text));
    assert!(
        has(
            Lint::ExemptionUnreachable,
            "the locked rule `steward-range` (global.toml) refuses every attempt that rule `mywiki-campus` (wikis/mywiki.toml) allows"
        ),
        "{w:?}"
    );
    assert!(
        has(
            Lint::ExemptionUnreachable,
            "rule `mywiki-hosting-anon` (wikis/mywiki.toml) exempts in its `unless`"
        ),
        "{w:?}"
    );
    // The list: no inline network of the locked rule, only its source's entry.
    let w = lints(&files(wiki));
    let listed: Vec<&String> = w
        .iter()
        .filter(|(l, _)| *l == Lint::ExemptionListed)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(listed.len(), 1, "{w:?}");
    assert!(
        listed[0].contains("the exemption `unless.ip = \"192.0.2.0/24\"` of rule `mywiki-hosting-anon` (wikis/mywiki.toml) can never apply: source `hard-blocks` (hard-blocks.txt) holds `192.0.2.0/24`, which the locked rule `global-hard-block` (global.toml) refuses first"),
        "{}",
        listed[0]
    );
    // An exemption outside every listed entry is fine.
    let elsewhere = wiki.replace("unless.ip = [\"192.0.2.0/24\"]", "unless.ip = [\"203.0.113.0/24\"]");
    let w = lints(&files(&elsewhere));
    assert!(w.iter().all(|(l, _)| *l != Lint::ExemptionListed), "{w:?}");
}

/// A lint allowed on its rule, in the wiki's or the global settings, is still reported but
/// never fatal; an unknown lint name is an error at its position.
#[test]
fn allowed_lints_are_reported_and_never_fatal() {
    let wiki = r#"
[[rule]]
id = "mywiki-hosting-anon"
description = "Anonymous edits from hosting networks are refused outright: account creation from there is refused too"
verdict = "block"
when.ip_in = ["hosting"]
when.account = ["anonymous", "temporary"]
allow_lints = ["anonymous-block"]
"#;
    let loaded = load(&files(wiki)).unwrap();
    let w: Vec<_> = loaded
        .warnings
        .iter()
        .filter(|w| w.lint == Lint::AnonymousBlock)
        .collect();
    assert_eq!(w.len(), 1, "{:?}", loaded.warnings);
    assert!(w[0].allowed && !w[0].denied(true) && !w[0].denied(false));
    assert!(
        w[0].to_string()
            .contains("warning[anonymous-block] (allowed): rule `mywiki-hosting-anon`"),
        "{}",
        w[0]
    );
    // Without the allowance it is denied; the wiki's [settings] allow it for its rules only.
    let bare = wiki.replace("allow_lints = [\"anonymous-block\"]\n", "");
    let loaded = load(&files(&bare)).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.lint == Lint::AnonymousBlock && w.denied(true))
    );
    let in_settings = format!("[settings]\nallow_lints = [\"anonymous-block\"]\n{bare}");
    let loaded = load(&files(&in_settings)).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.lint != Lint::AnonymousBlock || w.allowed)
    );
    // An unknown name is an error with its position and the closest lint.
    let typo = wiki.replace("\"anonymous-block\"", "\"anonymous-blocks\"");
    let e = errors(&files(&typo));
    assert!(
        e.iter().any(
            |e| e.starts_with("wikis/mywiki.toml:8:16: unknown lint `anonymous-blocks`")
                && e.contains("did you mean `anonymous-block`?")
        ),
        "{e:?}"
    );
    let typo = GLOBAL.replace("[settings]\n", "[settings]\nallow_lints = [\"nope\"]\n");
    let mut f = files("");
    f[0].1 = &typo;
    assert!(matches!(load(&f), Err(LoadError::Invalid(_))));
}

/// Refusals that carry no appeal at all are named, with the fix; an appeal in the global
/// settings, the wiki's or the rule's silences it.
#[test]
fn a_refusal_without_an_appeal_is_flagged() {
    let global = GLOBAL.replace("appeal = \"[[Project:Appeals]]\"\n", "");
    let wiki = "[settings]\ndefault = \"block\"\n";
    let mut f = files(wiki);
    f[0].1 = &global;
    let w = lints(&f);
    let unset: Vec<&String> = w
        .iter()
        .filter(|(l, _)| *l == Lint::AppealUnset)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(unset.len(), 1, "{w:?}");
    assert!(
        unset[0].starts_with(
            "global.toml: warning[appeal-unset]: rule `global-hard-block` and 1 more refuse with no appeal"
        ) && unset[0].contains("`[[Project:Appeals]]`"),
        "{}",
        unset[0]
    );
    let wiki = "[settings]\ndefault = \"block\"\nappeal = \"https://wiki.example/Appeals\"\n";
    let global = global.replace(
        "locked = true\n",
        "locked = true\nappeal = \"https://wiki.example/Stewards\"\n",
    );
    let mut f = files(wiki);
    f[0].1 = &global;
    assert!(lints(&f).iter().all(|(l, _)| *l != Lint::AppealUnset));
}

/// A refusal's message that is text cannot be translated: it is flagged (and can be allowed
/// on its rule); a message key, as the shipped policies use, is not.
#[test]
fn a_message_that_is_text_is_flagged_as_untranslatable() {
    let wiki = r#"
[settings]
default_message = "Only staff edit here."

[[rule]]
id = "mywiki-text"
verdict = "block"
message = "No edits from here, see https://wiki.example/Policy"
when.ip_in = ["hosting"]

[[rule]]
id = "mywiki-key"
verdict = "block"
message = "mywiki-vpn-refused"
when.ip_in = ["tor"]
"#;
    let w = lints(&files(wiki));
    let flagged: Vec<&String> = w
        .iter()
        .filter(|(l, _)| *l == Lint::UntranslatableMessage)
        .map(|(_, s)| s)
        .collect();
    assert_eq!(flagged.len(), 2, "{w:?}");
    assert!(
        flagged
            .iter()
            .any(|s| s.contains("rule `mywiki-text` has a message that is text") && s.contains("MediaWiki:"))
    );
    assert!(
        flagged
            .iter()
            .any(|s| s.contains("the `default_message` of wikis/mywiki.toml is text"))
    );
    assert!(flagged.iter().all(|s| !s.contains("mywiki-key")), "{flagged:?}");
    let allowed = wiki.replace(
        "when.ip_in = [\"hosting\"]\n",
        "when.ip_in = [\"hosting\"]\nallow_lints = [\"untranslatable-message\"]\n",
    );
    let loaded = load(&files(&allowed)).unwrap();
    let text = loaded
        .warnings
        .iter()
        .find(|w| w.rule.as_deref() == Some("mywiki-text"))
        .unwrap();
    assert!(text.allowed);
}
