//! Policy files: TOML → raw serde structs ([`raw`]) → a checked [`Policy`] ([`check()`]), plus
//! lint warnings ([`lint`]).
//!
//! Everything here is pure: callers hand in file names and contents ([`PolicyFile`]), and get
//! back either a policy with its warnings, or every error found, each with `file:line:col`.

pub mod check;
pub mod lint;
pub mod raw;

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;
use jiff::Timestamp;

use crate::attempt::AccountKind;
use crate::decision::Verdict;
use crate::sources::SourceKind;
use crate::sources::maxmind::AnonFlag;

pub use check::check;

/// One policy file handed to the checker.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// Path relative to the policy directory, with `/` separators (`wikis/enwiki.toml`).
    pub path: String,
    /// The file's text.
    pub text: String,
}

/// A position in a policy file, for errors, warnings and explain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// Path relative to the policy directory.
    pub file: String,
    /// 1-based line; 0 when not tied to a position.
    pub line: usize,
    /// 1-based column; 0 when not tied to a position.
    pub column: usize,
}

impl Location {
    /// The position of byte `offset` in `text`.
    pub fn at(file: &str, text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        Self {
            file: file.to_owned(),
            line,
            column,
        }
    }

    /// The position of byte `offset` of a file whose line starts are `lines`: what
    /// [`Location::at`] gives, without scanning the text before the offset (a file of
    /// 20,000 rules asks for 40,000 positions).
    pub fn in_lines(file: &str, lines: &LineIndex<'_>, offset: usize) -> Self {
        let text = lines.text;
        let offset = offset.min(text.len());
        let line = lines.starts.partition_point(|&start| start <= offset);
        let line_start = lines.starts[line - 1];
        let column = String::from_utf8_lossy(&text.as_bytes()[line_start..offset])
            .chars()
            .count()
            + 1;
        Self {
            file: file.to_owned(),
            line,
            column,
        }
    }

    /// A whole-file position (no line).
    pub fn file(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            line: 0,
            column: 0,
        }
    }
}

/// Where each line of a text starts, for [`Location::in_lines`].
#[derive(Debug, Clone)]
pub struct LineIndex<'t> {
    text: &'t str,
    /// Byte offsets of line starts; the first is 0.
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    /// Indexes `text`.
    pub fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        Self { text, starts }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// An error in the policy directory: a file, a position and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct PolicyError {
    /// Where.
    pub location: Location,
    /// What, lowercase, user input in backticks.
    pub message: String,
}

impl PolicyError {
    /// An error at `location`.
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Self {
            location,
            message: message.into(),
        }
    }
}

/// Every error found while loading a policy directory (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

/// Lint names; `validate` prints them so warnings can be searched for and discussed, and a
/// policy allows one by name (`allow_lints`, on a rule or in `[settings]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub enum Lint {
    /// A rule whose `expires` is in the past.
    ExpiredRule,
    /// A source no rule uses.
    UnusedSource,
    /// A rule an earlier enforced rule of the same stage always pre-empts.
    UnreachableRule,
    /// `xff = true` on a rule without IP conditions.
    UselessXff,
    /// `xff = true` on a rule whose `unless` tests the IP: it tests the client address only,
    /// never a forwarded-for address.
    XffUnless,
    /// A condition that can never hold (`min_edits` above `max_edits`, ...).
    ImpossibleCondition,
    /// `ip` networks that all lie inside a source the same table tests with `ip_in`.
    RedundantIpIn,
    /// `block` for anonymous/temporary editors only, where `require-login` may do.
    AnonymousBlock,
    /// A list source without `min_entries`: only an empty or badly shrunk copy is caught.
    MissingMinEntries,
    /// A secret file (the decision log key) a group other than the service's can read.
    SecretFileMode,
    /// Refusals that carry no appeal: no `appeal` on the rule, its wiki or the policy.
    AppealUnset,
    /// A wiki rule refuses attempts a later global `allow` rule exists to let through (an
    /// exemption by right, group or range): wiki rules run first, so it never applies there.
    ExemptionOverridden,
    /// A locked global rule refuses everything a wiki `allow` rule, or a rule's `unless`,
    /// would let through: locked rules run first, so that exemption never applies.
    ExemptionUnreachable,
    /// An entry of a source that a locked refusing rule tests covers a rule's `unless.ip`:
    /// the locked rule refuses those addresses first, so the exemption never applies.
    ExemptionListed,
    /// A `message` (or `default_message`) that is text, not a message key: every editor
    /// reads it as written, whatever their language.
    UntranslatableMessage,
    /// A value of a Spur reputation key (`tunnel_operators`, `risks`, …) that no record of
    /// the loaded feeds has: a typo (`NORDVPN` for `NORD_VPN`) never matches.
    UnknownReputationValue,
}

impl Lint {
    /// Every lint, in the order docs/policy.md lists them.
    pub const ALL: [Lint; 16] = [
        Self::ExpiredRule,
        Self::UnusedSource,
        Self::UnreachableRule,
        Self::UselessXff,
        Self::XffUnless,
        Self::SecretFileMode,
        Self::ImpossibleCondition,
        Self::RedundantIpIn,
        Self::AnonymousBlock,
        Self::MissingMinEntries,
        Self::AppealUnset,
        Self::ExemptionOverridden,
        Self::ExemptionUnreachable,
        Self::ExemptionListed,
        Self::UntranslatableMessage,
        Self::UnknownReputationValue,
    ];

    /// The lint's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExpiredRule => "expired-rule",
            Self::UnusedSource => "unused-source",
            Self::UnreachableRule => "unreachable-rule",
            Self::UselessXff => "useless-xff",
            Self::XffUnless => "xff-unless",
            Self::ImpossibleCondition => "impossible-condition",
            Self::RedundantIpIn => "redundant-ip-in",
            Self::AnonymousBlock => "anonymous-block",
            Self::MissingMinEntries => "missing-min-entries",
            Self::SecretFileMode => "secret-file-mode",
            Self::AppealUnset => "appeal-unset",
            Self::ExemptionOverridden => "exemption-overridden",
            Self::ExemptionUnreachable => "exemption-unreachable",
            Self::ExemptionListed => "exemption-listed",
            Self::UntranslatableMessage => "untranslatable-message",
            Self::UnknownReputationValue => "unknown-reputation-value",
        }
    }

    /// The lint named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

/// A warning: the policy loads, but something looks wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Which lint.
    pub lint: Lint,
    /// Where.
    pub location: Location,
    /// What, and why it matters.
    pub message: String,
    /// The rule it is about, when it is about one (its `allow_lints` can allow it).
    pub rule: Option<String>,
    /// Allowed by the policy (`allow_lints`): still reported, never fatal.
    pub allowed: bool,
}

impl Warning {
    /// A warning about no rule in particular.
    pub fn new(lint: Lint, location: Location, message: impl Into<String>) -> Self {
        Self {
            lint,
            location,
            message: message.into(),
            rule: None,
            allowed: false,
        }
    }

    /// Whether `--deny-warnings` refuses the policy for it: not when the policy allows it,
    /// and (for a server, `serving`) never `expired-rule`, so that a date passing never
    /// stops a start or a reload.
    pub fn denied(&self, serving: bool) -> bool {
        !(self.allowed || serving && self.lint == Lint::ExpiredRule)
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed = if self.allowed { " (allowed)" } else { "" };
        write!(
            f,
            "{}: warning[{}]{allowed}: {}",
            self.location,
            self.lint.as_str(),
            self.message
        )
    }
}

/// `[settings]` of `global.toml` or of a wiki file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Verdict when no rule matches.
    pub default: Option<Verdict>,
    /// Message when a default refuses the edit.
    pub default_message: Option<String>,
    /// Appeal path for refusals.
    pub appeal: Option<String>,
    /// The decision log, when enabled (global.toml only).
    pub decision_log: Option<DecisionLogSettings>,
    /// Lints allowed for the whole file's scope: every warning in `global.toml`, every
    /// warning about a wiki's file or rules in its own.
    pub allow_lints: Vec<Lint>,
}

/// `[settings.decision_log]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionLogSettings {
    /// JSON Lines file, relative to the policy directory or absolute.
    pub path: String,
    /// File holding the HMAC-SHA256 key (relative to the policy directory or absolute).
    pub key_file: String,
    /// Fraction of decisions logged, 0 to 1.
    pub sample_rate: f64,
    /// Rotate to `<path>.1` past this many bytes.
    pub max_bytes: Option<u64>,
    /// Where it is configured.
    pub location: Location,
}

impl Eq for DecisionLogSettings {}

/// A named source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDef {
    /// The name rules use in `ip_in`.
    pub name: String,
    /// What it is.
    pub kind: SourceKind,
    /// File path relative to the policy directory. For a [`Remote`] source, where the last
    /// good copy is kept (it may not exist yet).
    pub path: String,
    /// Where the data is fetched from, for `url` sources.
    pub remote: Option<Remote>,
    /// List sources: fewer entries than this is rejected. Unset, an empty list is rejected
    /// (see [`SourceDef::min_entries`]).
    pub min_entries: Option<u64>,
    /// List sources: the largest fraction of its entries a list may lose in one update
    /// before the update is rejected and the last good copy kept (0 to 1).
    pub max_shrink: f64,
    /// List sources: accept networks with host bits set (`192.0.2.7/24`) as the network
    /// they lie in, instead of rejecting the list.
    pub mask_host_bits: bool,
    /// The largest file (or fetched body) accepted, bytes.
    pub max_bytes: u64,
    /// Stale after this many seconds.
    pub max_age_secs: Option<i64>,
    /// For `maxmind-anonymous`: the flags that put an IP in the source.
    pub flags: Vec<AnonFlag>,
    /// The change tag for attempts from an address in this source.
    pub tag: Option<String>,
    /// Many people share its addresses: autoblocks skip them.
    pub shared: bool,
    /// Where it is defined.
    pub location: Location,
}

// `max_shrink` is checked to lie in 0..=1, so it is never NaN.
impl Eq for SourceDef {}

/// A source fetched over HTTP(S) by the server (`url = ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `http://` or `https://` address.
    pub url: String,
    /// Seconds between fetches.
    pub refresh_secs: i64,
    /// Seconds one fetch may take, connect to last byte.
    pub timeout_secs: i64,
    /// A header whose value is a secret kept in a file.
    pub auth: Option<Auth>,
}

/// `auth_header` and `auth_file` of a fetched source: the value is read at each fetch, so a
/// rotated token needs no reload, and never enters a log or an error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The header's name.
    pub header: String,
    /// The file holding its value, relative to the policy directory or absolute.
    pub file: String,
}

impl Remote {
    /// Default `refresh`.
    pub const DEFAULT_REFRESH_SECS: i64 = 30 * 60;
    /// Longest `refresh`: a source fetched less often than monthly is not live data.
    pub const MAX_REFRESH_SECS: i64 = 30 * 86_400;
    /// Default `timeout`.
    pub const DEFAULT_TIMEOUT_SECS: i64 = 30;
    /// Longest `timeout`.
    pub const MAX_TIMEOUT_SECS: i64 = 3_600;
}

impl SourceDef {
    /// Default `max_shrink`: a list may lose at most half its entries in one update.
    pub const DEFAULT_MAX_SHRINK: f64 = 0.5;
    /// Default `max_bytes` of a list source (a million-prefix list is about 16 MB).
    pub const DEFAULT_MAX_BYTES_LIST: u64 = 64 << 20;
    /// Default `max_bytes` of a MaxMind database (commercial databases reach a few hundred
    /// megabytes).
    pub const DEFAULT_MAX_BYTES_DATABASE: u64 = 1 << 30;
    /// Default `max_bytes` of a Spur feed (every daily feed together is a few gigabytes of
    /// JSON unpacked; a feed is read as a stream, never whole in memory).
    pub const DEFAULT_MAX_BYTES_FEED: u64 = 16 << 30;

    /// The flags as a mask of [`AnonFlag::bit`].
    pub fn flag_mask(&self) -> u8 {
        self.flags.iter().fold(0, |m, f| m | f.bit())
    }

    /// The fewest entries a list may hold: `min_entries`, else 1. An empty list is never
    /// taken unless the policy says `min_entries = 0`: a fresh deployment must not start
    /// with an empty Tor list, and an emptied file is a mistake far more often than news.
    pub fn min_entries(&self) -> u64 {
        self.min_entries.unwrap_or(1)
    }
}

/// Where a rule sits in the evaluation order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// `locked = true` in `global.toml`: first, for every wiki.
    Locked,
    /// `wikis/<wiki>.toml`: second, only for that wiki.
    Wiki(String),
    /// The rest of `global.toml`: third.
    Global,
}

/// Whether a rule decides or only reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(rename_all = "lowercase")]
pub enum Mode {
    /// Decides when it matches.
    Enforce,
    /// Reported when it matches; never decides.
    Shadow,
}

/// A condition table, checked. `None` keys are absent (they always hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cond {
    /// Source names (all defined).
    pub ip_in: Option<Vec<String>>,
    /// Networks.
    pub ip: Option<Vec<IpNet>>,
    /// ASNs.
    pub asn: Option<Vec<u32>>,
    /// Upper-case ISO country codes.
    pub country: Option<Vec<[u8; 2]>>,
    /// Account kinds.
    pub account: Option<Vec<AccountKind>>,
    /// Groups, lower-case.
    pub groups: Option<Vec<String>>,
    /// Rights, lower-case.
    pub rights: Option<Vec<String>>,
    /// Edit count ≥.
    pub min_edits: Option<u64>,
    /// Edit count ≤.
    pub max_edits: Option<u64>,
    /// Age ≥, seconds.
    pub min_age: Option<i64>,
    /// Age ≤, seconds.
    pub max_age: Option<i64>,
    /// Confirmed e-mail equals.
    pub email_confirmed: Option<bool>,
    /// Actions, lower-case.
    pub actions: Option<Vec<String>>,
    /// Wiki ids.
    pub wikis: Option<Vec<String>>,
    /// Spur reputation lists, by field, values as written (compared case-insensitively);
    /// empty when the table has none.
    pub reputation: Vec<(crate::sources::spur::Field, Vec<String>)>,
    /// Spur: `client.count` ≥.
    pub min_clients: Option<u32>,
}

impl Cond {
    /// Whether the table has no keys (it always holds).
    pub fn is_empty(&self) -> bool {
        *self == Cond::default()
    }

    /// Whether the table tests the IP (`ip_in`, `ip`, `asn`, `country`, the reputation keys).
    pub fn tests_ip(&self) -> bool {
        self.ip_in.is_some()
            || self.ip.is_some()
            || self.asn.is_some()
            || self.country.is_some()
            || self.tests_reputation()
    }

    /// Whether the table tests Spur's reputation of the address.
    pub fn tests_reputation(&self) -> bool {
        !self.reputation.is_empty() || self.min_clients.is_some()
    }
}

/// A rule, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// Human explanation.
    pub description: String,
    /// Verdict when it decides.
    pub verdict: Verdict,
    /// Message key or text.
    pub message: String,
    /// Appeal path (falls back to `[settings] appeal`).
    pub appeal: String,
    /// Enforce or shadow.
    pub mode: Mode,
    /// Where it sits in the evaluation order.
    pub stage: Stage,
    /// Forwarded-for addresses may also satisfy `when` (never on an `allow` rule, never
    /// `unless`; see `engine::resolve`).
    pub xff: bool,
    /// Skipped from this time on.
    pub expires: Option<Timestamp>,
    /// Must hold.
    pub when: Cond,
    /// Exempts when it holds (`None`: no `unless`).
    pub unless: Option<Cond>,
    /// Lints allowed for this rule.
    pub allow_lints: Vec<Lint>,
    /// Where the `[[rule]]` starts.
    pub location: Location,
}

/// A wiki with its own file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WikiPolicy {
    /// `[settings]` of the wiki file.
    pub settings: Settings,
    /// The file.
    pub file: String,
}

/// A checked policy directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// `[settings]` of `global.toml`.
    pub settings: Settings,
    /// Sources, in file order.
    pub sources: Vec<SourceDef>,
    /// Wikis with a file, by id.
    pub wikis: BTreeMap<String, WikiPolicy>,
    /// Every rule: `global.toml` in file order, then each wiki file in name order.
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Marks the warnings the policy allows (`allow_lints` in `[settings]` of `global.toml`,
    /// of the wiki file a warning is in or about, or on the rule it is about): they are still
    /// reported, never fatal.
    pub fn apply_allowances(&self, warnings: &mut [Warning]) {
        let rules: std::collections::HashMap<&str, &Rule> = self.rules.iter().map(|r| (r.id.as_str(), r)).collect();
        for w in warnings {
            let rule = w.rule.as_deref().and_then(|id| rules.get(id));
            let wiki = match rule.map(|r| &r.stage) {
                Some(Stage::Wiki(wiki)) => self.wikis.get(wiki),
                _ => self.wikis.values().find(|p| p.file == w.location.file),
            };
            w.allowed = self.settings.allow_lints.contains(&w.lint)
                || wiki.is_some_and(|p| p.settings.allow_lints.contains(&w.lint))
                || rule.is_some_and(|r| r.allow_lints.contains(&w.lint));
        }
    }
}

/// Whether a `message` is a message key the wiki looks up in the editor's language
/// (`editgate-tor-login`, `MediaWiki:`-page names), not text to show as written: a letter or
/// digit, then letters, digits, `_`, `.`, `:` and `-` (text has spaces).
pub fn is_message_key(message: &str) -> bool {
    let mut chars = message.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

/// Closest candidate to `word`, when close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1) + usize::from(c.len() > 6))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"; did you mean `x`?"` or nothing.
pub(crate) fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates).map_or(String::new(), |c| format!("; did you mean `{c}`?"))
}

/// The error for a word that is not one of `valid`: names them all and suggests the closest.
pub(crate) fn unknown(what: &str, word: &str, valid: &[&str]) -> String {
    format!(
        "unknown {what} `{word}`, expected one of: {}{}",
        valid.join(", "),
        hint(word, valid.iter().copied())
    )
}

/// Parses a verdict name, or explains what is wrong with it.
pub(crate) fn parse_verdict(word: &str) -> Result<Verdict, String> {
    Verdict::parse(word).ok_or_else(|| unknown("verdict", word, &Verdict::ALL.map(Verdict::as_str)))
}

/// Parses an account kind, or explains what is wrong with it.
pub(crate) fn parse_account_kind(word: &str) -> Result<AccountKind, String> {
    AccountKind::parse(word).ok_or_else(|| unknown("account kind", word, &AccountKind::ALL.map(AccountKind::as_str)))
}

/// Parses a duration: one or more `<number><unit>` parts, units `s`, `m`, `h`, `d`, `w`
/// (`90d`, `1d12h`). Returns seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        let n: i64 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        num.clear();
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

/// Seconds written the way policy files write durations: the largest unit that divides
/// them (`30d`, `90m`, `45s`).
pub fn format_duration(secs: i64) -> String {
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs != 0 && secs % n == 0 {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

pub use crate::attempt::is_wiki_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d"), Some(90 * 86_400));
        assert_eq!(parse_duration("1d12h"), Some(86_400 + 12 * 3_600));
        assert_eq!(parse_duration("30s"), Some(30));
        assert_eq!(parse_duration("2w"), Some(14 * 86_400));
        for bad in ["", "90", "d", "9x", "-1d", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_print_in_their_largest_unit() {
        assert_eq!(format_duration(30 * 86_400), "30d");
        assert_eq!(format_duration(3_600), "1h");
        assert_eq!(format_duration(14 * 86_400), "2w");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(0), "0s");
    }

    #[test]
    fn origin_counts_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(Location::at("f", text, 0).to_string(), "f:1:1");
        let o = Location::at("f", text, text.find('=').unwrap());
        assert_eq!((o.line, o.column), (1, 3));
        let o = Location::at("f", text, text.rfind('=').unwrap());
        assert_eq!((o.line, o.column), (2, 4));
        let lines = LineIndex::new(text);
        for offset in 0..=text.len() + 3 {
            if text.is_char_boundary(offset.min(text.len())) {
                assert_eq!(
                    Location::in_lines("f", &lines, offset),
                    Location::at("f", text, offset),
                    "{offset}"
                );
            }
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("verdcit", ["id", "verdict", "message"]), Some("verdict"));
        assert_eq!(did_you_mean("blok", ["allow", "block"]), Some("block"));
        assert_eq!(did_you_mean("zzzzzz", ["allow", "block"]), None);
    }

    #[test]
    fn wiki_ids() {
        assert!(is_wiki_id("enwiki"));
        assert!(is_wiki_id("zh_min_nanwiki"));
        assert!(is_wiki_id("wikidb-mw_"));
        assert!(!is_wiki_id("EnWiki"));
        assert!(!is_wiki_id("en.wiki"));
        assert!(!is_wiki_id(""));
    }
}
