//! Lints across stages: a rule that runs earlier takes away an exemption meant to apply later.
//! The evaluation order (locked rules, the wiki's file, the other global rules) is documented,
//! but a wiki author writing one rule rarely has the global file open: these name both rules
//! and both files, so the one who reads the warning can see what cancels what.

use ipnet::IpNet;

use super::{implies, implies_all, warn};
use crate::decision::Verdict;
use crate::policy::{Cond, Lint, Mode, Policy, Rule, Stage, Warning};

/// `exemption-overridden` and `exemption-unreachable`, from the policy alone.
pub(super) fn across_stages(policy: &Policy) -> Vec<Warning> {
    let mut out = Vec::new();
    let live = |r: &&Rule| r.mode == Mode::Enforce && r.expires.is_none();
    let exemptions: Vec<&Rule> = policy
        .rules
        .iter()
        .filter(live)
        .filter(|r| r.stage == Stage::Global && r.verdict == Verdict::Allow)
        .collect();
    let floor: Vec<&Rule> = policy
        .rules
        .iter()
        .filter(live)
        .filter(|r| r.stage == Stage::Locked && r.verdict != Verdict::Allow && r.unless.is_none())
        .collect();
    for rule in policy.rules.iter().filter(live) {
        if let Stage::Wiki(wiki) = &rule.stage
            && rule.verdict != Verdict::Allow
            && let Some(allow) = exemptions.iter().find(|a| {
                may_overlap(&rule.when, &a.when)
                    && !(by_account(&a.when) && logged_out_only(&rule.when))
                    && !rule.unless.as_ref().is_some_and(|u| implies(&a.when, u))
            })
        {
            out.push(warn(
                Lint::ExemptionOverridden,
                rule,
                format!(
                    "rule `{}` ({}) refuses attempts that the global rule `{}` ({}) exists to allow{}: a wiki's rules run before the other global rules, so on `{wiki}` that exemption never applies; repeat it in this rule's `unless`{}, or allow the lint on this rule if the wiki means it",
                    rule.id,
                    rule.location.file,
                    allow.id,
                    allow.location.file,
                    exempted(&allow.when),
                    suggestion(&allow.when),
                ),
            ));
        }
        if rule.stage == Stage::Locked {
            continue;
        }
        // What the rule lets through: everything it matches (an `allow` rule), or what its
        // `unless` exempts from it.
        let (what, let_through): (&str, Vec<&Cond>) = match (&rule.unless, rule.verdict) {
            (_, Verdict::Allow) => ("allows", vec![&rule.when]),
            (Some(u), _) => ("exempts in its `unless`", vec![&rule.when, u]),
            (None, _) => continue,
        };
        if let Some(locked) = floor.iter().find(|l| implies_all(&let_through, &l.when)) {
            out.push(warn(
                Lint::ExemptionUnreachable,
                rule,
                format!(
                    "the locked rule `{}` ({}) refuses every attempt that rule `{}` ({}) {what}: locked rules run first on every wiki, so that exemption never applies; narrow the locked rule (its `unless`), or drop the exemption",
                    locked.id, locked.location.file, rule.id, rule.location.file,
                ),
            ));
        }
    }
    out
}

/// `exemption-listed`: an entry of a list source that a locked refusing rule tests covers a
/// network of a rule's `unless.ip`. Needs the data: `networks(name)` gives a list source's
/// networks, `None` for a database.
pub(super) fn listed_exemptions<'a>(policy: &Policy, networks: &impl Fn(&str) -> Option<&'a [IpNet]>) -> Vec<Warning> {
    let mut out = Vec::new();
    let floor: Vec<&Rule> = policy
        .rules
        .iter()
        .filter(|r| {
            r.stage == Stage::Locked
                && r.mode == Mode::Enforce
                && r.expires.is_none()
                && r.verdict != Verdict::Allow
                && r.unless.is_none()
        })
        .collect();
    for rule in policy.rules.iter().filter(|r| r.stage != Stage::Locked) {
        let Some(unless) = &rule.unless else { continue };
        let Some(exempt) = &unless.ip else { continue };
        'found: for locked in &floor {
            let Some(names) = &locked.when.ip_in else { continue };
            // The locked rule's other keys must hold for every exempted attempt.
            let rest = Cond {
                ip_in: None,
                ..locked.when.clone()
            };
            if !implies_all(&[&rule.when, unless], &rest) {
                continue;
            }
            for name in names {
                let Some(list) = networks(name) else { continue };
                for net in exempt {
                    if let Some(entry) = list.iter().find(|e| e.contains(net)) {
                        let file = policy
                            .sources
                            .iter()
                            .find(|s| &s.name == name)
                            .map_or(String::new(), |s| format!(" ({})", s.path));
                        out.push(warn(
                            Lint::ExemptionListed,
                            rule,
                            format!(
                                "the exemption `unless.ip = \"{net}\"` of rule `{}` ({}) can never apply: source `{name}`{file} holds `{entry}`, which the locked rule `{}` ({}) refuses first, on every wiki; take the range out of the list, or the exemption out of the rule",
                                rule.id, rule.location.file, locked.id, locked.location.file,
                            ),
                        ));
                        break 'found;
                    }
                }
            }
        }
    }
    out
}

/// Whether some attempt can satisfy both tables, judged key by key without the sources' data:
/// keys present in both must have a value in common (two `ip_in` a source, two `ip` an
/// overlapping network); `ip_in` against `ip` cannot be judged without data, and counts as
/// no overlap, so that the lint never warns on a guess. Groups and rights never exclude each
/// other (an account has many).
fn may_overlap(a: &Cond, b: &Cond) -> bool {
    fn common<T: PartialEq>(a: &Option<Vec<T>>, b: &Option<Vec<T>>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => a.iter().any(|x| b.contains(x)),
            _ => true,
        }
    }
    let ranges = |lo: Option<u64>, hi: Option<u64>, lo2: Option<u64>, hi2: Option<u64>| {
        lo.max(lo2).unwrap_or(0) <= hi.unwrap_or(u64::MAX).min(hi2.unwrap_or(u64::MAX))
    };
    let age = |x: Option<i64>| x.map(|v| v.max(0) as u64);
    let ip = match (&a.ip, &b.ip) {
        (Some(a), Some(b)) => a.iter().any(|n| b.iter().any(|m| n.contains(m) || m.contains(n))),
        _ => true,
    };
    let mixed = (a.ip_in.is_some() && a.ip.is_none() && b.ip.is_some() && b.ip_in.is_none())
        || (b.ip_in.is_some() && b.ip.is_none() && a.ip.is_some() && a.ip_in.is_none());
    ip && !mixed
        && common(&a.ip_in, &b.ip_in)
        && common(&a.asn, &b.asn)
        && common(&a.country, &b.country)
        && common(&a.account, &b.account)
        && common(&a.actions, &b.actions)
        && common(&a.wikis, &b.wikis)
        && ranges(a.min_edits, a.max_edits, b.min_edits, b.max_edits)
        && ranges(age(a.min_age), age(a.max_age), age(b.min_age), age(b.max_age))
        && (a.email_confirmed.is_none() || b.email_confirmed.is_none() || a.email_confirmed == b.email_confirmed)
        && a.reputation.iter().all(|(field, x)| {
            b.reputation
                .iter()
                .filter(|(f, _)| f == field)
                .all(|(_, y)| x.iter().any(|v| y.iter().any(|w| w.eq_ignore_ascii_case(v))))
        })
}

/// Whether a table exempts by a right or a group: something only a registered account has.
fn by_account(c: &Cond) -> bool {
    c.rights.is_some() || c.groups.is_some()
}

/// Whether a table matches anonymous and temporary editors only, who hold no right or group
/// an exemption names.
fn logged_out_only(c: &Cond) -> bool {
    c.account
        .as_ref()
        .is_some_and(|k| !k.contains(&crate::attempt::AccountKind::Registered))
}

/// What an exemption names: each of its keys (`rights`, `groups`, `ip`) that is set, with who
/// it lets through in words and its values.
fn exemption_keys(c: &Cond) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let mut keys = Vec::new();
    if let Some(r) = &c.rights {
        keys.push(("rights", "accounts with", r.clone()));
    }
    if let Some(g) = &c.groups {
        keys.push(("groups", "members of", g.clone()));
    }
    if let Some(n) = &c.ip {
        keys.push(("ip", "addresses in", n.iter().map(ToString::to_string).collect()));
    }
    keys
}

/// ` (a; b)` of `parts` joined by `separator`, or nothing when there are none.
fn in_parentheses(parts: Vec<String>, separator: &str) -> String {
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(separator))
    }
}

/// Who an `allow` rule lets through, in words: ` (accounts with `ipblock-exempt` or
/// `torunblocked`)`, or nothing when it names no right, group or range.
fn exempted(c: &Cond) -> String {
    let parts = exemption_keys(c)
        .into_iter()
        .map(|(_, who, values)| {
            let quoted: Vec<String> = values.iter().map(|x| format!("`{x}`")).collect();
            format!("{who} {}", quoted.join(" or "))
        })
        .collect();
    in_parentheses(parts, "; ")
}

/// The `unless` keys that repeat an `allow` rule's exemption: ` (`unless.rights = [...]`)`.
fn suggestion(c: &Cond) -> String {
    let keys = exemption_keys(c)
        .into_iter()
        .map(|(key, _, values)| {
            let listed: Vec<String> = values.iter().map(|x| format!("\"{x}\"")).collect();
            format!("`unless.{key} = [{}]`", listed.join(", "))
        })
        .collect();
    in_parentheses(keys, ", ")
}
