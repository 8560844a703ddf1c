//! Warnings: the policy loads, but something in it is probably a mistake.
//!
//! - this file: the lints of one rule or one source, and pre-emption within a stage;
//! - `stages`: a rule of an earlier stage that takes away a later rule's exemption.

mod stages;

use std::collections::{HashMap, HashSet};

use ipnet::IpNet;

use jiff::Timestamp;

use crate::attempt::AccountKind;
use crate::decision::Verdict;
use crate::sources::SourceKind;
use crate::sources::spur::Field;

use super::{Cond, Lint, Mode, Policy, Rule, Stage, Warning};

/// Every warning for a checked policy, in rule order.
pub fn lint(policy: &Policy, now: Timestamp) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut used: HashSet<&str> = HashSet::new();
    for rule in &policy.rules {
        for c in std::iter::once(&rule.when).chain(rule.unless.as_ref()) {
            used.extend(c.ip_in.iter().flatten().map(String::as_str));
        }
        if let Some(t) = rule.expires
            && t <= now
        {
            out.push(warn(
                Lint::ExpiredRule,
                rule,
                format!("rule `{}` expired at {t} and is skipped; delete it", rule.id),
            ));
        }
        let tests_ip = rule.when.tests_ip() || rule.unless.as_ref().is_some_and(Cond::tests_ip);
        if rule.xff && !tests_ip {
            out.push(warn(
                Lint::UselessXff,
                rule,
                format!(
                    "rule `{}` sets `xff = true` but tests no IP (`ip_in`, `ip`, `asn`, `country`)",
                    rule.id
                ),
            ));
        }
        if let Some(keys) = rule
            .unless
            .as_ref()
            .filter(|_| rule.xff)
            .map(ip_keys)
            .filter(|k| !k.is_empty())
        {
            out.push(warn(
                Lint::XffUnless,
                rule,
                format!(
                    "rule `{}` sets `xff = true`, but its `unless` ({}) tests the client address only: the client writes X-Forwarded-For, so a forwarded-for address never exempts from a rule; a request is exempted only when its client address (after the wiki's trusted proxies) holds",
                    rule.id,
                    keys.iter().map(|k| format!("`unless.{k}`")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let anon_only = rule
            .when
            .account
            .as_ref()
            .is_some_and(|k| !k.is_empty() && !k.contains(&AccountKind::Registered));
        if rule.verdict == Verdict::Block && anon_only && rule.mode == Mode::Enforce {
            out.push(warn(
                Lint::AnonymousBlock,
                rule,
                format!(
                    "rule `{}` blocks only anonymous and temporary editors, who may then log in and edit as this rule never matches a registered account: `require-login` refuses the same edits and tells them so, with a login link (a soft block, as MediaWiki's); `block` tells them only that they are refused. Keep `block` when the refusal must not invite logging in (an abused network whose account creations are refused too), and allow the lint on the rule: `allow_lints = [\"anonymous-block\"]`",
                    rule.id
                ),
            ));
        }
        let never = impossible(&rule.when).or_else(|| {
            rule.unless
                .as_ref()
                .filter(|u| u.is_empty())
                .map(|_| "an empty `unless` table always holds, so it exempts every request".to_owned())
        });
        if let Some(why) = never {
            out.push(warn(
                Lint::ImpossibleCondition,
                rule,
                format!("rule `{}` can never match: {why}", rule.id),
            ));
        }
    }
    out.extend(appeal_unset(policy));
    out.extend(untranslatable(policy));
    out.extend(stages::across_stages(policy));
    let preempting = Preempting::new(&policy.rules);
    for (i, rule) in policy.rules.iter().enumerate() {
        if let Some(earlier) = preempting.first_before(i, &policy.rules) {
            out.push(warn(
                Lint::UnreachableRule,
                rule,
                format!(
                    "rule `{}` can never decide or report: rule `{}` at {} matches every request it matches and comes first",
                    rule.id, earlier.id, earlier.location
                ),
            ));
        }
    }
    let uses_asn = policy
        .rules
        .iter()
        .any(|r| r.when.asn.is_some() || r.unless.as_ref().is_some_and(|u| u.asn.is_some()));
    let uses_country = policy
        .rules
        .iter()
        .any(|r| r.when.country.is_some() || r.unless.as_ref().is_some_and(|u| u.country.is_some()));
    let uses_reputation = policy
        .rules
        .iter()
        .any(|r| r.when.tests_reputation() || r.unless.as_ref().is_some_and(Cond::tests_reputation));
    for s in &policy.sources {
        if s.kind.has_entries() && s.min_entries.is_none() {
            out.push(Warning::new(
                Lint::MissingMinEntries,
                s.location.clone(),
                format!(
                    "source `{}` has no `min_entries`: a truncated or emptied copy is caught only when it is empty or lost more than `max_shrink` of the serving entries (and not at all at a first start); set `min_entries` to a count a good copy never falls below, like half its usual size",
                    s.name
                ),
            ));
        }
        let is_used = match s.kind {
            SourceKind::MaxmindAsn => uses_asn,
            SourceKind::MaxmindCountry => uses_country,
            SourceKind::SpurFeed => uses_reputation || used.contains(s.name.as_str()),
            SourceKind::TorExits | SourceKind::IpList | SourceKind::MaxmindAnonymous => used.contains(s.name.as_str()),
        };
        if !is_used {
            let how = match s.kind {
                SourceKind::MaxmindAsn => "no rule has an `asn` condition",
                SourceKind::MaxmindCountry => "no rule has a `country` condition",
                SourceKind::SpurFeed => "no rule names it in `ip_in` or has a reputation condition",
                _ => "no rule names it in `ip_in`",
            };
            out.push(Warning::new(
                Lint::UnusedSource,
                s.location.clone(),
                format!("source `{}` is loaded but {how}", s.name),
            ));
        }
    }
    out
}

/// `appeal-unset`: refusals that would carry no appeal at all (no `appeal` on the rule, in its
/// wiki's `[settings]`, or in global.toml's), so the refused editor is told nowhere to go.
fn appeal_unset(policy: &Policy) -> Option<Warning> {
    if policy.settings.appeal.is_some() {
        return None;
    }
    let wiki_appeal = |stage: &Stage| match stage {
        Stage::Wiki(w) => policy.wikis.get(w).is_some_and(|p| p.settings.appeal.is_some()),
        _ => false,
    };
    let refuses = |s: &super::Settings| s.default.is_some_and(|v| v != Verdict::Allow);
    let bare: Vec<String> = policy
        .rules
        .iter()
        .filter(|r| r.verdict != Verdict::Allow && r.appeal.is_empty() && !wiki_appeal(&r.stage))
        .map(|r| format!("rule `{}`", r.id))
        .chain(refuses(&policy.settings).then(|| "the global default".to_owned()))
        .chain(
            policy
                .wikis
                .iter()
                .filter(|(_, p)| refuses(&p.settings) && p.settings.appeal.is_none())
                .map(|(wiki, _)| format!("the default of `{wiki}`")),
        )
        .collect();
    let first = bare.first()?;
    let others = match bare.len() - 1 {
        0 => String::new(),
        1 => " and 1 more".to_owned(),
        n => format!(" and {n} more"),
    };
    Some(Warning::new(
        Lint::AppealUnset,
        crate::policy::Location::file("global.toml"),
        format!(
            "{first}{others} refuse{} with no appeal: refused editors are told nowhere to ask for a review; set `appeal` in the [settings] of global.toml (a URL, or a page of the wiki as `[[Project:Appeals]]`), or on the rules and wiki files",
            if bare.len() == 1 { "s" } else { "" },
        ),
    ))
}

/// `untranslatable-message`: a rule's `message`, or a `default_message`, that is text: the
/// wiki shows it as written to every editor, whatever their language.
fn untranslatable(policy: &Policy) -> Vec<Warning> {
    let fix = "use a message key (like `mywiki-vpn-refused`) and give it a text in each language on the wiki: the pages `MediaWiki:Mywiki-vpn-refused`, `MediaWiki:Mywiki-vpn-refused/de`, …";
    let text = |m: &str| !m.is_empty() && !super::is_message_key(m);
    let mut out: Vec<Warning> = policy
        .rules
        .iter()
        .filter(|r| r.verdict != Verdict::Allow && text(&r.message))
        .map(|r| {
            warn(
                Lint::UntranslatableMessage,
                r,
                format!(
                    "rule `{}` has a message that is text, shown as written to every editor whatever their language; {fix}",
                    r.id
                ),
            )
        })
        .collect();
    let settings = std::iter::once(("global.toml", &policy.settings))
        .chain(policy.wikis.values().map(|w| (w.file.as_str(), &w.settings)));
    for (file, s) in settings {
        if s.default_message.as_deref().is_some_and(text) {
            out.push(Warning::new(
                Lint::UntranslatableMessage,
                crate::policy::Location::file(file),
                format!("the `default_message` of {file} is text, shown as written to every editor whatever their language; {fix}"),
            ));
        }
    }
    out
}

/// The IP keys a table tests.
fn ip_keys(c: &Cond) -> Vec<&'static str> {
    [
        (c.ip_in.is_some(), "ip_in"),
        (c.ip.is_some(), "ip"),
        (c.asn.is_some(), "asn"),
        (c.country.is_some(), "country"),
        (c.min_clients.is_some(), "min_clients"),
    ]
    .into_iter()
    .filter(|(present, _)| *present)
    .map(|(_, k)| k)
    .chain(c.reputation.iter().map(|(f, _)| f.key()))
    .collect()
}

/// A warning about `rule`, at its `[[rule]]`.
fn warn(lint: Lint, rule: &Rule, message: String) -> Warning {
    Warning {
        rule: Some(rule.id.clone()),
        ..Warning::new(lint, rule.location.clone(), message)
    }
}

fn impossible(c: &Cond) -> Option<String> {
    if let (Some(lo), Some(hi)) = (c.min_edits, c.max_edits)
        && lo > hi
    {
        return Some(format!("`min_edits = {lo}` is above `max_edits = {hi}`"));
    }
    if let (Some(lo), Some(hi)) = (c.min_age, c.max_age)
        && lo > hi
    {
        return Some("`min_age` is above `max_age`".to_owned());
    }
    for (key, empty) in [
        ("ip_in", c.ip_in.as_ref().is_some_and(Vec::is_empty)),
        ("ip", c.ip.as_ref().is_some_and(Vec::is_empty)),
        ("account", c.account.as_ref().is_some_and(Vec::is_empty)),
        ("actions", c.actions.as_ref().is_some_and(Vec::is_empty)),
        ("wikis", c.wikis.as_ref().is_some_and(Vec::is_empty)),
        ("groups", c.groups.as_ref().is_some_and(Vec::is_empty)),
        ("rights", c.rights.as_ref().is_some_and(Vec::is_empty)),
        ("asn", c.asn.as_ref().is_some_and(Vec::is_empty)),
        ("country", c.country.as_ref().is_some_and(Vec::is_empty)),
    ] {
        if empty {
            return Some(format!("`{key} = []` holds for nothing"));
        }
    }
    if let Some((field, _)) = c.reputation.iter().find(|(_, v)| v.is_empty()) {
        return Some(format!("`{} = []` holds for nothing", field.key()));
    }
    None
}

/// The rules that can pre-empt a later one (enforced, never expiring, no `unless`), indexed
/// so that finding the one that pre-empts a rule does not compare it with every earlier rule:
/// a rule with `ip` networks can only be pre-empted by a rule whose networks contain them,
/// found by looking up the supernets of its first network. Comparing every pair made
/// validating (and reloading) a policy of 20,000 rules take 17 s.
struct Preempting {
    /// Network → the candidates listing it, in rule order.
    by_net: HashMap<IpNet, Vec<usize>>,
    /// Candidates without `ip`, in rule order.
    without_ip: Vec<usize>,
}

impl Preempting {
    fn new(rules: &[Rule]) -> Self {
        let mut by_net: HashMap<IpNet, Vec<usize>> = HashMap::new();
        let mut without_ip = Vec::new();
        for (i, e) in rules.iter().enumerate() {
            if e.mode != Mode::Enforce || e.expires.is_some() || e.unless.is_some() {
                continue;
            }
            match &e.when.ip {
                Some(nets) => {
                    for n in nets {
                        by_net.entry(n.trunc()).or_default().push(i);
                    }
                }
                None => without_ip.push(i),
            }
        }
        Self { by_net, without_ip }
    }

    /// The first rule before `i`, in its stage, that matches every request rule `i` matches.
    fn first_before<'r>(&self, i: usize, rules: &'r [Rule]) -> Option<&'r Rule> {
        let r = &rules[i];
        let earlier = |&&e: &&usize| e < i && rules[e].stage == r.stage && always_preempts(&rules[e], r);
        let mut found = self.without_ip.iter().take_while(|&&e| e < i).find(earlier).copied();
        // A candidate with `ip` pre-empts only a rule with `ip`, all of whose networks lie in
        // its own; it is enough to look among the candidates listing a supernet of the first.
        if let Some(first) = r.when.ip.as_ref().and_then(|n| n.first()) {
            for len in 0..=first.prefix_len() {
                let Ok(sup) = IpNet::new(first.addr(), len) else {
                    continue;
                };
                let hit = self
                    .by_net
                    .get(&sup.trunc())
                    .and_then(|es| es.iter().take_while(|&&e| e < i).find(earlier));
                if let Some(&e) = hit {
                    found = Some(found.map_or(e, |f| f.min(e)));
                }
            }
        }
        found.map(|e| &rules[e])
    }
}

/// Whether enforced rule `e` matches every request `r` matches, so `r` (later in the same
/// stage) never gets to decide or report. Conservative: `false` when unsure. The caller
/// passes only enforced, never-expiring rules without `unless` as `e`.
fn always_preempts(e: &Rule, r: &Rule) -> bool {
    // With xff, `r` can match through a forwarded address that `e` does not test.
    if r.xff && !e.xff && e.when.tests_ip() {
        return false;
    }
    implies(&r.when, &e.when)
}

/// Whether every request satisfying `a` satisfies `b`, judged key by key.
fn implies(a: &Cond, b: &Cond) -> bool {
    implies_all(&[a], b)
}

/// Whether every request satisfying all of `parts` satisfies `b`, judged key by key: each key
/// of `b` must be implied by the same key of one of the parts (conservative: `false` when
/// unsure).
fn implies_all(parts: &[&Cond], b: &Cond) -> bool {
    fn subset<T: PartialEq>(parts: &[&Cond], key: impl Fn(&Cond) -> &Option<Vec<T>>, b: &Option<Vec<T>>) -> bool {
        let Some(b) = b else { return true };
        parts
            .iter()
            .any(|a| key(a).as_ref().is_some_and(|a| a.iter().all(|x| b.contains(x))))
    }
    let any = |f: &dyn Fn(&Cond) -> bool| parts.iter().any(|a| f(a));
    let ip = match &b.ip {
        None => true,
        Some(b) => any(&|a| {
            a.ip.as_ref()
                .is_some_and(|a| a.iter().all(|n| b.iter().any(|m| m.contains(n))))
        }),
    };
    let at_least = |a: Option<u64>, b: Option<u64>| b.is_none_or(|b| a.is_some_and(|a| a >= b));
    let at_most = |a: Option<u64>, b: Option<u64>| b.is_none_or(|b| a.is_some_and(|a| a <= b));
    let age = |x: Option<i64>| x.map(|v| v.max(0) as u64);
    let bound =
        |key: &dyn Fn(&Cond) -> Option<u64>, b: Option<u64>, check: &dyn Fn(Option<u64>, Option<u64>) -> bool| {
            b.is_none() || any(&|a| check(key(a), b))
        };
    ip && subset(parts, |c| &c.ip_in, &b.ip_in)
        && subset(parts, |c| &c.asn, &b.asn)
        && subset(parts, |c| &c.country, &b.country)
        && subset(parts, |c| &c.account, &b.account)
        && subset(parts, |c| &c.groups, &b.groups)
        && subset(parts, |c| &c.rights, &b.rights)
        && subset(parts, |c| &c.actions, &b.actions)
        && subset(parts, |c| &c.wikis, &b.wikis)
        && bound(&|c| c.min_edits, b.min_edits, &at_least)
        && bound(&|c| c.max_edits, b.max_edits, &at_most)
        && bound(&|c| age(c.min_age), age(b.min_age), &at_least)
        && bound(&|c| age(c.max_age), age(b.max_age), &at_most)
        && b.email_confirmed.is_none_or(|v| any(&|a| a.email_confirmed == Some(v)))
        && bound(
            &|c| c.min_clients.map(u64::from),
            b.min_clients.map(u64::from),
            &at_least,
        )
        && b.reputation.iter().all(|(field, want)| {
            any(&|a| {
                a.reputation
                    .iter()
                    .any(|(f, have)| f == field && have.iter().all(|x| want.iter().any(|w| w.eq_ignore_ascii_case(x))))
            })
        })
}

/// The lints that need the sources' data, so [`crate::load`] runs them: `redundant-ip-in` and
/// `exemption-listed`. `networks(name)` gives a list source's networks, or `None` for a
/// MaxMind database (never judged).
pub fn with_data<'a>(policy: &Policy, networks: impl Fn(&str) -> Option<&'a [ipnet::IpNet]>) -> Vec<Warning> {
    let mut out = redundant_ip_in(policy, &networks);
    out.extend(stages::listed_exemptions(policy, &networks));
    out
}

/// `unknown-reputation-value`: values of the reputation keys (`tunnel_operators`, `risks`,
/// …) that no record of the loaded feeds has, compared case-insensitively, with the closest
/// the feeds use. `vocabulary` gives every name the feeds use for a field.
pub fn reputation_values(policy: &Policy, vocabulary: impl Fn(Field) -> Vec<String>) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut known: HashMap<Field, Vec<String>> = HashMap::new();
    for rule in &policy.rules {
        for (table, c) in std::iter::once(("when", &rule.when)).chain(rule.unless.as_ref().map(|u| ("unless", u))) {
            for (field, values) in &c.reputation {
                let names = known.entry(*field).or_insert_with(|| vocabulary(*field));
                for v in values {
                    if names.iter().any(|n| n.eq_ignore_ascii_case(v)) {
                        continue;
                    }
                    out.push(warn(
                        Lint::UnknownReputationValue,
                        rule,
                        format!(
                            "rule `{}`: no record of the loaded feeds has `{v}` in `{}` ({table}), so it never matches{}",
                            rule.id,
                            field.key(),
                            super::hint(&v.to_ascii_uppercase(), names.iter().map(String::as_str))
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// Warns about tables whose `ip` networks all lie inside one network of a source the same
/// table tests with `ip_in`: the `ip_in` key then adds nothing.
fn redundant_ip_in<'a>(policy: &Policy, networks: &impl Fn(&str) -> Option<&'a [ipnet::IpNet]>) -> Vec<Warning> {
    let mut out = Vec::new();
    for rule in &policy.rules {
        for (table, c) in std::iter::once(("when", &rule.when)).chain(rule.unless.as_ref().map(|u| ("unless", u))) {
            let (Some(ips), Some(names)) = (&c.ip, &c.ip_in) else {
                continue;
            };
            if ips.is_empty() {
                continue;
            }
            for name in names {
                let Some(nets) = networks(name) else { continue };
                if ips.iter().all(|n| nets.iter().any(|m| m.contains(n))) {
                    out.push(warn(
                        Lint::RedundantIpIn,
                        rule,
                        format!(
                            "rule `{}`: every `{table}.ip` network lies inside source `{name}`, which `{table}.ip_in` already tests; the `ip` networks alone decide",
                            rule.id
                        ),
                    ));
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicyFile, check};

    /// The indexed search finds the same pre-empting rule as comparing every earlier rule.
    #[test]
    fn the_index_finds_what_comparing_every_pair_finds() {
        let nets = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "10.2.0.0/16",
            "2001:db8::/32",
            "2001:db8:1::/48",
        ];
        let mut text = String::new();
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for i in 0..300 {
            text += &format!("[[rule]]\nid = \"r{i}\"\nverdict = \"block\"\n");
            if next(5) == 0 {
                text += "mode = \"shadow\"\n";
            }
            if next(6) == 0 {
                text += "unless.rights = [\"x\"]\n";
            }
            match next(4) {
                0 => {}
                k => {
                    let picks: Vec<String> = (0..k).map(|_| format!("\"{}\"", nets[next(6) as usize])).collect();
                    text += &format!("when.ip = [{}]\n", picks.join(", "));
                }
            }
            if next(3) == 0 {
                text += &format!(
                    "when.account = [\"{}\"]\n",
                    ["anonymous", "registered"][next(2) as usize]
                );
            }
            text += "\n";
        }
        let files = [PolicyFile {
            path: "global.toml".into(),
            text,
        }];
        let (policy, _) = check(&files, Timestamp::UNIX_EPOCH).unwrap();
        let index = Preempting::new(&policy.rules);
        let mut found = 0;
        for (i, r) in policy.rules.iter().enumerate() {
            let brute = policy.rules[..i].iter().find(|e| {
                e.stage == r.stage
                    && e.mode == Mode::Enforce
                    && e.expires.is_none()
                    && e.unless.is_none()
                    && always_preempts(e, r)
            });
            let indexed = index.first_before(i, &policy.rules);
            assert_eq!(brute.map(|e| &e.id), indexed.map(|e| &e.id), "rule {i}");
            found += usize::from(brute.is_some());
        }
        assert!(found > 50, "the sample has pre-empted rules: {found}");
    }
}
