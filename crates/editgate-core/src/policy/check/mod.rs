//! Raw structs → checked [`Policy`]. Collects every error it can find in one pass, so an admin
//! fixes a file once, not once per error.

use std::collections::HashMap;
use std::ops::Range;

use jiff::Timestamp;
use toml::Spanned;

mod source;
mod toml_errors;

use toml_errors::parse_file;
pub use toml_errors::{describe_serde_message, toml_error};

use super::raw::{RawCond, RawRule, RawSettings, SpannedList};
use super::{
    Cond, DecisionLogSettings, LineIndex, Lint, Location, Mode, Policy, PolicyError, PolicyErrors, PolicyFile, Rule,
    Settings, SourceDef, Stage, Warning, WikiPolicy, hint, is_wiki_id, parse_account_kind, parse_duration,
    parse_verdict, unknown,
};
use crate::decision::Verdict;
use crate::sources::SourceKind;
use crate::sources::iplist::parse_net;

/// The most `maxmind-anonymous` sources one policy may define (one bit each in the facts).
pub const MAX_ANON_SOURCES: usize = 64;
/// The most `spur-feed` sources (an address's row keeps one bit per feed).
pub const MAX_SPUR_FEEDS: usize = 8;

/// Checks the policy files of one directory (`global.toml` and `wikis/*.toml`; other paths are
/// ignored). `now` decides which rules count as expired. Returns the policy and its warnings,
/// or every error found.
pub fn check(files: &[PolicyFile], now: Timestamp) -> Result<(Policy, Vec<Warning>), PolicyErrors> {
    let mut errors = Vec::new();
    let mut policy = Policy::default();
    let Some(global) = files.iter().find(|f| f.path == "global.toml") else {
        return Err(PolicyErrors(vec![PolicyError::new(
            Location::file("global.toml"),
            "missing: every policy directory needs a global.toml",
        )]));
    };

    let mut ids: HashMap<String, Location> = HashMap::new();
    // What global.toml declares, valid or not: a reference to a source whose definition has
    // its own error, or to any source when global.toml does not parse, is not reported again
    // as "unknown" (one root cause, one error).
    let mut declared: Option<Declared> = None;
    if let Some(raw) = parse_file(global, &mut errors) {
        declared = Some(Declared {
            names: raw.sources.keys().map(|n| n.get_ref().clone()).collect(),
            kinds: raw
                .sources
                .values()
                .map(|s| s.get_ref().kind.get_ref().clone())
                .collect(),
        });
        let mut cx = Cx::new(global, &mut errors);
        policy.settings = cx.settings(raw.settings.as_ref());
        for (name, src) in &raw.sources {
            if let Some(def) = cx.source(name, src) {
                policy.sources.push(def);
            }
        }
        let known = Known {
            defs: &policy.sources,
            declared: declared.as_ref(),
        };
        for r in &raw.rules {
            if let Some(rule) = cx.rule(r, None, &known, &mut ids) {
                policy.rules.push(rule);
            }
        }
        let anon = policy
            .sources
            .iter()
            .filter(|s| s.kind == SourceKind::MaxmindAnonymous)
            .count();
        if anon > MAX_ANON_SOURCES {
            cx.errors.push(PolicyError::new(
                Location::file(&global.path),
                format!("{anon} `maxmind-anonymous` sources; at most {MAX_ANON_SOURCES} are supported"),
            ));
        }
        let feeds = policy.sources.iter().filter(|s| s.kind == SourceKind::SpurFeed).count();
        if feeds > MAX_SPUR_FEEDS {
            cx.errors.push(PolicyError::new(
                Location::file(&global.path),
                format!("{feeds} `spur-feed` sources; at most {MAX_SPUR_FEEDS} are supported"),
            ));
        }
        for kind in [SourceKind::MaxmindAsn, SourceKind::MaxmindCountry] {
            let mut of_kind = policy.sources.iter().filter(|s| s.kind == kind);
            if let (Some(_), Some(second)) = (of_kind.next(), of_kind.next()) {
                cx.errors.push(PolicyError::new(
                    second.location.clone(),
                    format!("a second `{kind}` source `{}`; define at most one", second.name),
                ));
            }
        }
    }

    let mut wiki_files: Vec<&PolicyFile> = files.iter().filter(|f| f.path.starts_with("wikis/")).collect();
    wiki_files.sort_by(|a, b| a.path.cmp(&b.path));
    for file in wiki_files {
        let Some(stem) = file.path.strip_prefix("wikis/").and_then(|s| s.strip_suffix(".toml")) else {
            continue;
        };
        if !is_wiki_id(stem) {
            errors.push(PolicyError::new(
                Location::file(&file.path),
                format!(
                    "`{}` is not a valid wiki id: name wiki files `<wiki id>.toml`, the id in lower-case letters, digits, `_` and `-` (like `enwiki.toml`)",
                    crate::sources::snippet(stem)
                ),
            ));
            continue;
        }
        let Some(raw) = parse_file(file, &mut errors) else {
            continue;
        };
        let mut cx = Cx::new(file, &mut errors);
        for name in raw.sources.keys() {
            cx.err(name.span(), "sources belong in global.toml, not in a wiki file");
        }
        let settings = cx.settings(raw.settings.as_ref());
        for r in &raw.rules {
            let known = Known {
                defs: &policy.sources,
                declared: declared.as_ref(),
            };
            if let Some(rule) = cx.rule(r, Some(stem), &known, &mut ids) {
                policy.rules.push(rule);
            }
        }
        policy.wikis.insert(
            stem.to_owned(),
            WikiPolicy {
                settings,
                file: file.path.clone(),
            },
        );
    }

    if !errors.is_empty() {
        errors.sort_by(|a, b| {
            (&a.location.file, a.location.line, a.location.column).cmp(&(
                &b.location.file,
                b.location.line,
                b.location.column,
            ))
        });
        return Err(PolicyErrors(errors));
    }
    let mut warnings = super::lint::lint(&policy, now);
    policy.apply_allowances(&mut warnings);
    Ok((policy, warnings))
}

/// The sources and kinds `global.toml` declares, valid or not.
struct Declared {
    names: std::collections::HashSet<String>,
    kinds: std::collections::HashSet<String>,
}

/// The sources rules may refer to.
struct Known<'a> {
    /// The valid definitions.
    defs: &'a [SourceDef],
    /// What global.toml declares; `None` when it did not parse.
    declared: Option<&'a Declared>,
}

impl Known<'_> {
    /// Whether a reference to source `name`, not among the valid definitions, is an error of
    /// its own (not a consequence of an error already reported).
    fn unknown_name_is_an_error(&self, name: &str) -> bool {
        self.declared.is_some_and(|d| !d.names.contains(name))
    }

    /// Whether a condition needing a source of `kind`, none of which is valid, is an error of
    /// its own.
    fn missing_kind_is_an_error(&self, kind: SourceKind) -> bool {
        !self.defs.iter().any(|s| s.kind == kind) && self.declared.is_some_and(|d| !d.kinds.contains(kind.as_str()))
    }
}

/// Checking context for one file.
struct Cx<'a> {
    file: &'a PolicyFile,
    lines: LineIndex<'a>,
    errors: &'a mut Vec<PolicyError>,
}

impl<'a> Cx<'a> {
    fn new(file: &'a PolicyFile, errors: &'a mut Vec<PolicyError>) -> Self {
        Self {
            file,
            lines: LineIndex::new(&file.text),
            errors,
        }
    }

    fn location(&self, span: Range<usize>) -> Location {
        Location::in_lines(&self.file.path, &self.lines, span.start)
    }

    fn err(&mut self, span: Range<usize>, msg: impl Into<String>) {
        let location = self.location(span);
        self.errors.push(PolicyError::new(location, msg));
    }

    fn verdict(&mut self, v: &Spanned<String>) -> Option<Verdict> {
        parse_verdict(v.get_ref()).map_err(|msg| self.err(v.span(), msg)).ok()
    }

    fn duration(&mut self, d: &Spanned<String>, key: &str) -> Option<i64> {
        let parsed = parse_duration(d.get_ref());
        if parsed.is_none() {
            self.err(
                d.span(),
                format!(
                    "`{key}`: `{}` is not a duration; write a number and a unit (s, m, h, d, w), like `90d` or `12h`",
                    d.get_ref()
                ),
            );
        }
        parsed
    }

    fn settings(&mut self, raw: Option<&Spanned<RawSettings>>) -> Settings {
        let Some(raw) = raw else {
            return Settings::default();
        };
        let raw = raw.get_ref();
        let decision_log = raw.decision_log.as_ref().and_then(|dl| {
            let d = dl.get_ref();
            if self.file.path != "global.toml" {
                self.err(dl.span(), "`decision_log` belongs in the [settings] of global.toml");
                return None;
            }
            let rate = d.sample_rate.as_ref().map_or(1.0, |r| *r.get_ref());
            if let Some(r) = &d.sample_rate
                && !(0.0..=1.0).contains(r.get_ref())
            {
                self.err(
                    r.span(),
                    format!("`sample_rate = {}` must be between 0 and 1", r.get_ref()),
                );
                return None;
            }
            for (key, v) in [("path", &d.path), ("key_file", &d.key_file)] {
                if v.get_ref().trim().is_empty() {
                    self.err(v.span(), format!("`{key}` is empty"));
                    return None;
                }
            }
            Some(DecisionLogSettings {
                path: d.path.get_ref().clone(),
                key_file: d.key_file.get_ref().clone(),
                sample_rate: rate,
                max_bytes: d.max_bytes,
                location: self.location(dl.span()),
            })
        });
        Settings {
            default: raw.default.as_ref().and_then(|d| self.verdict(d)),
            default_message: raw.default_message.clone(),
            appeal: raw.appeal.clone(),
            decision_log,
            allow_lints: self.lints(raw.allow_lints.as_ref()),
        }
    }

    /// `allow_lints`: known lint names; an unknown one is an error naming them all.
    fn lints(&mut self, raw: Option<&SpannedList<String>>) -> Vec<Lint> {
        let Some(list) = raw else { return Vec::new() };
        self.each(list, |cx, name| match Lint::parse(name.get_ref()) {
            Some(lint) => Some(lint),
            None => {
                cx.err(
                    name.span(),
                    unknown("lint", name.get_ref(), &Lint::ALL.map(Lint::as_str)),
                );
                None
            }
        })
    }

    fn rule(
        &mut self,
        raw: &Spanned<RawRule>,
        wiki: Option<&str>,
        sources: &Known<'_>,
        ids: &mut HashMap<String, Location>,
    ) -> Option<Rule> {
        let r: &RawRule = raw.get_ref();
        let location = self.location(raw.span());
        let id = r.id.get_ref().clone();
        let mut ok = true;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
            self.err(
                r.id.span(),
                format!("rule id `{id}` may only hold letters, digits, `-`, `_`, `.` and `:`"),
            );
            ok = false;
        } else if let Some(first) = ids.get(&id) {
            self.err(
                r.id.span(),
                format!("duplicate rule id `{id}`, first defined at {first}"),
            );
            ok = false;
        } else {
            ids.insert(id.clone(), self.location(r.id.span()));
        }
        let verdict = self.verdict(&r.verdict);
        let mode = match &r.mode {
            None => Mode::Enforce,
            Some(m) => match m.get_ref().as_str() {
                "enforce" => Mode::Enforce,
                "shadow" => Mode::Shadow,
                other => {
                    let msg = format!(
                        "unknown mode `{other}`, expected `enforce` or `shadow`{}",
                        hint(other, ["enforce", "shadow"])
                    );
                    self.err(m.span(), msg);
                    ok = false;
                    Mode::Enforce
                }
            },
        };
        let locked = r.locked.as_ref().is_some_and(|l| *l.get_ref());
        if let (Some(l), Some(_)) = (&r.locked, wiki) {
            self.err(
                l.span(),
                "`locked` is only allowed in global.toml: a wiki cannot lock the universal floor",
            );
            ok = false;
        }
        let stage = match wiki {
            Some(w) => Stage::Wiki(w.to_owned()),
            None if locked => Stage::Locked,
            None => Stage::Global,
        };
        let expires = r.expires.as_ref().and_then(|e| self.timestamp(e));
        let when = match &r.when {
            Some(c) => self.cond(c, sources),
            None => Some(Cond::default()),
        };
        let unless = match &r.unless {
            Some(c) => self.cond(c, sources).map(Some),
            None => Some(None),
        };
        let verdict = verdict?;
        let errors_before = self.errors.len();
        let allow_lints = self.lints(r.allow_lints.as_ref());
        if self.errors.len() > errors_before {
            ok = false;
        }
        let xff = r.xff.as_ref().is_some_and(|x| *x.get_ref());
        if let Some(x) = r.xff.as_ref().filter(|_| xff && verdict == Verdict::Allow) {
            self.err(
                x.span(),
                format!(
                    "`xff = true` on the `allow` rule `{id}`: the client writes X-Forwarded-For, so a forwarded-for address may only make a decision stricter and never lets an edit through; remove `xff` (the rule then tests the client address)"
                ),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let default_message = match verdict {
            Verdict::Allow => "",
            Verdict::RequireLogin => "editgate-require-login",
            Verdict::Block => "editgate-block",
        };
        Some(Rule {
            description: r.description.clone().unwrap_or_else(|| id.clone()),
            id,
            verdict,
            message: r.message.clone().unwrap_or_else(|| default_message.to_owned()),
            appeal: r.appeal.clone().unwrap_or_default(),
            mode,
            stage,
            xff,
            expires: if r.expires.is_some() { Some(expires?) } else { None },
            when: when?,
            unless: unless?,
            allow_lints,
            location,
        })
    }

    fn timestamp(&mut self, d: &Spanned<toml::value::Datetime>) -> Option<Timestamp> {
        let dt = d.get_ref();
        let text = match (dt.date, dt.time, dt.offset) {
            (Some(_), Some(_), Some(_)) => dt.to_string(),
            (Some(date), None, None) => format!("{date}T00:00:00Z"),
            _ => {
                self.err(
                    d.span(),
                    format!(
                        "`expires = {dt}` needs a date, or a date and time with an offset, like 2027-01-01T00:00:00Z"
                    ),
                );
                return None;
            }
        };
        match text.parse::<Timestamp>() {
            Ok(t) => Some(t),
            Err(_) => {
                // TOML has checked the calendar; what jiff refuses is out of its range (its
                // own message names internal second counts).
                self.err(
                    d.span(),
                    format!(
                        "`expires = {dt}` is outside the times editgate handles ({} to {}); for a rule that never expires, leave `expires` out",
                        Timestamp::MIN.strftime("%Y-%m-%d"),
                        Timestamp::MAX.strftime("%Y-%m-%d")
                    ),
                );
                None
            }
        }
    }

    fn strings(list: &Option<Spanned<Vec<String>>>) -> Option<Vec<String>> {
        list.as_ref()
            .map(|l| l.get_ref().iter().map(|s| s.trim().to_lowercase()).collect())
    }

    fn cond(&mut self, raw: &Spanned<RawCond>, known: &Known<'_>) -> Option<Cond> {
        let c: &RawCond = raw.get_ref();
        let before = self.errors.len();
        let sources = known.defs;
        let ip_in = c.ip_in.as_ref().map(|list| {
            self.each(list, |cx, name| {
                match sources.iter().find(|s| s.name == *name.get_ref()) {
                    Some(_) => Some(name.get_ref().clone()),
                    None if !known.unknown_name_is_an_error(name.get_ref()) => None,
                    None => {
                        let msg = format!(
                            "unknown source `{}` in `ip_in`{}",
                            name.get_ref(),
                            if sources.is_empty() {
                                "; define it under [sources] in global.toml".to_owned()
                            } else {
                                format!(
                                    ", defined sources: {}{}",
                                    sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                                    hint(name.get_ref(), sources.iter().map(|s| s.name.as_str()))
                                )
                            }
                        );
                        cx.err(name.span(), msg);
                        None
                    }
                }
            })
        });
        let ip = c.ip.as_ref().map(|list| {
            self.each(list, |cx, s| {
                let text = s.get_ref().trim();
                parse_net(text).map_err(|why| cx.err(s.span(), why.describe(text))).ok()
            })
        });
        let asn = c.asn.as_ref().map(|a| {
            if known.missing_kind_is_an_error(SourceKind::MaxmindAsn) {
                self.err(a.span(), "`asn` needs a `maxmind-asn` source in global.toml");
            }
            a.get_ref().clone()
        });
        let country = c.country.as_ref().map(|list| {
            if known.missing_kind_is_an_error(SourceKind::MaxmindCountry) {
                self.err(list.span(), "`country` needs a `maxmind-country` source in global.toml");
            }
            self.each(list, |cx, s| {
                let code = s.get_ref().trim().to_ascii_uppercase();
                match code.as_bytes() {
                    [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some([*a, *b]),
                    _ => {
                        cx.err(
                            s.span(),
                            format!("`{}` is not a two-letter ISO 3166-1 country code", s.get_ref()),
                        );
                        None
                    }
                }
            })
        });
        let account = c.account.as_ref().map(|list| {
            self.each(list, |cx, s| {
                parse_account_kind(s.get_ref())
                    .map_err(|msg| cx.err(s.span(), msg))
                    .ok()
            })
        });
        let min_age = c.min_age.as_ref().and_then(|d| self.duration(d, "min_age"));
        let max_age = c.max_age.as_ref().and_then(|d| self.duration(d, "max_age"));
        if let Some(w) = &c.wikis {
            for id in w.get_ref() {
                if !is_wiki_id(id) {
                    self.err(w.span(), format!("`{id}` in `wikis` is not a valid wiki id"));
                }
            }
        }
        let mut reputation = Vec::new();
        for (field, list) in c.reputation() {
            let Some(list) = list else { continue };
            if known.missing_kind_is_an_error(SourceKind::SpurFeed) {
                self.err(
                    list.span(),
                    format!("`{}` needs a `spur-feed` source in global.toml", field.key()),
                );
            }
            let values = self.each(list, |cx, v| {
                let text = v.get_ref().trim();
                if text.is_empty() {
                    cx.err(v.span(), format!("an empty value in `{}`", field.key()));
                    return None;
                }
                Some(text.to_owned())
            });
            reputation.push((field, values));
        }
        if let Some(m) = &c.min_clients
            && known.missing_kind_is_an_error(SourceKind::SpurFeed)
        {
            self.err(m.span(), "`min_clients` needs a `spur-feed` source in global.toml");
        }
        if self.errors.len() > before {
            return None;
        }
        Some(Cond {
            ip_in,
            ip,
            asn,
            country,
            account,
            groups: Self::strings(&c.groups),
            rights: Self::strings(&c.rights),
            min_edits: c.min_edits.as_ref().map(|v| *v.get_ref()),
            max_edits: c.max_edits.as_ref().map(|v| *v.get_ref()),
            min_age,
            max_age,
            email_confirmed: c.email_confirmed.as_ref().map(|v| *v.get_ref()),
            actions: Self::strings(&c.actions),
            wikis: c.wikis.as_ref().map(|w| w.get_ref().clone()),
            reputation,
            min_clients: c.min_clients.as_ref().map(|m| *m.get_ref()),
        })
    }

    /// Maps each element, keeping the ones that check out (errors are recorded by `f`).
    fn each<T, U>(&mut self, list: &SpannedList<T>, mut f: impl FnMut(&mut Self, &Spanned<T>) -> Option<U>) -> Vec<U> {
        list.get_ref().iter().filter_map(|x| f(self, x)).collect()
    }
}
