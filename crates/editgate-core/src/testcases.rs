//! Policy test cases (`tests/*.toml` in a policy directory) and their runner.
//!
//! ```toml
//! [[case]]
//! name = "anonymous Tor edit needs login"
//! now = 2026-01-01T00:00:00Z          # optional: evaluation time, for expiry and ages
//! request = { ip = "171.25.193.25", wiki = "enwiki", action = "edit", account = "anonymous" }
//! expect = { verdict = "require-login", rule = "tor-anon" }
//! ```

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use toml::Spanned;

use crate::attempt::{Account, AccountKind, Attempt, parse_ip};
use crate::decision::{Decision, Verdict};
use crate::engine::{Snapshot, decide};
use crate::policy::check::toml_error;
use crate::policy::{
    Location, PolicyError, PolicyErrors, PolicyFile, hint, parse_account_kind, parse_duration, parse_verdict,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaseFile {
    #[serde(default, rename = "case")]
    cases: Vec<Spanned<RawCase>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    now: Option<Spanned<toml::value::Datetime>>,
    request: Spanned<RawRequest>,
    expect: Spanned<RawExpect>,
}

/// The request of a case: the same facts as `editgate check` flags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    ip: Spanned<String>,
    #[serde(default)]
    forwarded_for: Vec<Spanned<String>>,
    #[serde(default)]
    wiki: String,
    action: Option<String>,
    account: Option<Spanned<String>>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    rights: Vec<String>,
    #[serde(default)]
    edits: u64,
    age: Option<Spanned<String>>,
    #[serde(default)]
    email_confirmed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    verdict: Spanned<String>,
    rule: Option<Spanned<String>>,
    shadow: Option<Vec<Spanned<String>>>,
    message: Option<String>,
}

/// One checked test case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case name.
    pub name: String,
    /// Where the case starts.
    pub location: Location,
    /// Evaluation time.
    pub now: Timestamp,
    /// The attempt.
    pub attempt: Attempt,
    /// Expected verdict.
    pub verdict: Verdict,
    /// Expected deciding rule (`""`: a default); `None`: not checked.
    pub rule: Option<String>,
    /// Expected shadow matches; `None`: not checked.
    pub shadow: Option<Vec<String>>,
    /// Expected message; `None`: not checked.
    pub message: Option<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// What differs from the expectation, one line each; empty when it passed.
    pub failures: Vec<String>,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Parses case files, checking their requests and that expected rule ids exist.
pub fn parse_cases(files: &[PolicyFile], snapshot: &Snapshot, now: Timestamp) -> Result<Vec<Case>, PolicyErrors> {
    let ids: HashSet<&str> = snapshot.rules().iter().map(|r| r.id.as_str()).collect();
    let mut errors = Vec::new();
    let mut cases = Vec::new();
    for file in files {
        let raw: RawCaseFile = match toml::from_str(&file.text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(toml_error(file, &e));
                continue;
            }
        };
        let lines = crate::policy::LineIndex::new(&file.text);
        let at = |span: std::ops::Range<usize>| Location::in_lines(&file.path, &lines, span.start);
        for rc in &raw.cases {
            let location = at(rc.span());
            let c = rc.get_ref();
            let before = errors.len();
            let case_now = match &c.now {
                None => now,
                Some(d) => match d.get_ref().to_string().parse::<Timestamp>() {
                    Ok(t) => t,
                    Err(_) => {
                        errors.push(PolicyError::new(
                            at(d.span()),
                            "`now` needs a date and time with an offset, like 2027-01-01T00:00:00Z",
                        ));
                        now
                    }
                },
            };
            let r = c.request.get_ref();
            let ip = parse_ip("ip", r.ip.get_ref()).map_err(|e| PolicyError::new(at(r.ip.span()), e.to_string()));
            let mut forwarded_for = Vec::new();
            for (i, x) in r.forwarded_for.iter().enumerate() {
                match parse_ip(&format!("forwarded_for[{i}]"), x.get_ref()) {
                    Ok(ip) => forwarded_for.push(ip),
                    Err(e) => errors.push(PolicyError::new(at(x.span()), e.to_string())),
                }
            }
            let kind = match &r.account {
                None => AccountKind::Anonymous,
                Some(k) => parse_account_kind(k.get_ref()).unwrap_or_else(|msg| {
                    errors.push(PolicyError::new(at(k.span()), msg));
                    AccountKind::Anonymous
                }),
            };
            let registered_at = match &r.age {
                None => None,
                Some(a) => match parse_duration(a.get_ref()) {
                    Some(secs) => case_now.checked_sub(SignedDuration::from_secs(secs)).ok(),
                    None => {
                        errors.push(PolicyError::new(
                            at(a.span()),
                            format!("`age`: `{}` is not a duration, like `30d`", a.get_ref()),
                        ));
                        None
                    }
                },
            };
            let e = c.expect.get_ref();
            let verdict = parse_verdict(e.verdict.get_ref())
                .map_err(|msg| errors.push(PolicyError::new(at(e.verdict.span()), msg)))
                .ok();
            for id in e.rule.iter().chain(e.shadow.iter().flatten()) {
                if !id.get_ref().is_empty() && !ids.contains(id.get_ref().as_str()) {
                    errors.push(PolicyError::new(
                        at(id.span()),
                        format!(
                            "unknown rule `{}`{}",
                            id.get_ref(),
                            hint(id.get_ref(), ids.iter().copied())
                        ),
                    ));
                }
            }
            let ip = match ip {
                Ok(ip) => ip,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            let account = Account {
                kind,
                groups: r.groups.clone(),
                rights: r.rights.clone(),
                edit_count: r.edits,
                registered_at,
                email_confirmed: r.email_confirmed,
            };
            let action = r.action.clone().unwrap_or_default();
            let attempt = match Attempt::new(ip, forwarded_for, r.wiki.clone(), action, account) {
                Ok(a) => a,
                Err(e) => {
                    errors.push(PolicyError::new(at(c.request.span()), format!("request: {e}")));
                    continue;
                }
            };
            let (Some(verdict), true) = (verdict, errors.len() == before) else {
                continue;
            };
            cases.push(Case {
                name: c.name.clone(),
                location,
                now: case_now,
                attempt,
                verdict,
                rule: e.rule.as_ref().map(|r| r.get_ref().clone()),
                shadow: e
                    .shadow
                    .as_ref()
                    .map(|s| s.iter().map(|x| x.get_ref().clone()).collect()),
                message: e.message.clone(),
            });
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(PolicyErrors(errors))
    }
}

/// Runs one case.
pub fn run_case<'s>(snapshot: &'s Snapshot, case: &Case) -> (CaseResult, Decision<'s>) {
    let d = decide(snapshot, &case.attempt, case.now);
    let mut failures = Vec::new();
    if d.verdict != case.verdict {
        failures.push(format!("verdict: expected `{}`, got `{}`", case.verdict, d.verdict));
    }
    if let Some(rule) = &case.rule
        && rule != d.rule_id
    {
        failures.push(format!("rule: expected `{rule}`, got `{}`", d.rule_id));
    }
    if let Some(shadow) = &case.shadow
        && shadow.iter().map(String::as_str).ne(d.shadow_rule_ids.iter().copied())
    {
        failures.push(format!("shadow: expected {shadow:?}, got {:?}", d.shadow_rule_ids));
    }
    if let Some(message) = &case.message
        && message != d.message
    {
        failures.push(format!("message: expected `{message}`, got `{}`", d.message));
    }
    (
        CaseResult {
            case: case.clone(),
            failures,
        },
        d,
    )
}

/// Reads `tests/*.toml` of a policy directory, sorted by name.
pub fn read_case_files(dir: &std::path::Path) -> std::io::Result<Vec<PolicyFile>> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir.join("tests")) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    for n in names {
        let bytes = std::fs::read(dir.join("tests").join(&n))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("tests/{n}: not valid UTF-8")))?;
        files.push(PolicyFile {
            path: format!("tests/{n}"),
            text,
        });
    }
    Ok(files)
}
