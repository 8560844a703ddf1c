//! Raw serde structs: the policy files exactly as written. Unknown keys are rejected here;
//! meaning is checked in [`super::check`]. Values that need a did-you-mean hint (verdicts,
//! kinds, accounts) stay strings so the checker can name the closest valid value.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;
use toml::value::Datetime;

/// A list whose elements keep their own positions, so an error can point at one element.
pub type SpannedList<T> = Spanned<Vec<Spanned<T>>>;

/// `global.toml` or `wikis/<wiki>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// `[settings]`
    pub settings: Option<Spanned<RawSettings>>,
    /// `[sources.<name>]`
    #[serde(default)]
    pub sources: BTreeMap<Spanned<String>, Spanned<RawSource>>,
    /// `[[rule]]`
    #[serde(default, rename = "rule")]
    pub rules: Vec<Spanned<RawRule>>,
}

/// `[settings]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// Verdict when no rule matches.
    pub default: Option<Spanned<String>>,
    /// Message shown when the default refuses an edit.
    pub default_message: Option<String>,
    /// Where to appeal a refusal, unless the rule says otherwise.
    pub appeal: Option<String>,
    /// The opt-in, privacy-safe decision log (global.toml only).
    pub decision_log: Option<Spanned<RawDecisionLog>>,
}

/// `[settings.decision_log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecisionLog {
    /// JSON Lines file, relative to the policy directory or absolute.
    pub path: Spanned<String>,
    /// File holding the HMAC key for addresses.
    pub key_file: Spanned<String>,
    /// Fraction of decisions logged, 0 to 1.
    pub sample_rate: Option<Spanned<f64>>,
    /// Rotate to `<path>.1` past this size.
    pub max_bytes: Option<u64>,
}

/// `[sources.<name>]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// `tor-exits`, `ip-list`, `maxmind-anonymous`, `maxmind-asn`, `maxmind-country`.
    pub kind: Spanned<String>,
    /// File path, relative to the policy directory.
    pub path: Option<Spanned<String>>,
    /// Remote location (not supported yet; rejected with a clear error).
    pub url: Option<Spanned<String>>,
    /// Refresh interval for `url`.
    pub refresh: Option<Spanned<String>>,
    /// Data older than this is reported as stale.
    pub max_age: Option<Spanned<String>>,
    /// For `maxmind-anonymous`: the flags that put an IP in this source.
    pub flags: Option<SpannedList<String>>,
}

/// `[[rule]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique id across all files.
    pub id: Spanned<String>,
    /// Human explanation: explain, logs, appeals.
    pub description: Option<String>,
    /// `allow`, `require-login`, `block`.
    pub verdict: Spanned<String>,
    /// Message key or text for the wiki to show.
    pub message: Option<String>,
    /// Appeal path for this rule's refusals.
    pub appeal: Option<String>,
    /// Conditions that must hold.
    pub when: Option<Spanned<RawCond>>,
    /// Conditions that exempt.
    pub unless: Option<Spanned<RawCond>>,
    /// After this time the rule is skipped.
    pub expires: Option<Spanned<Datetime>>,
    /// `enforce` (default) or `shadow`.
    pub mode: Option<Spanned<String>>,
    /// Global file only: evaluated before every wiki's rules.
    pub locked: Option<Spanned<bool>>,
    /// Also test forwarded-for addresses.
    pub xff: Option<bool>,
}

/// A `when` / `unless` condition table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCond {
    /// Source names.
    pub ip_in: Option<SpannedList<String>>,
    /// Networks or addresses.
    pub ip: Option<SpannedList<String>>,
    /// Autonomous system numbers.
    pub asn: Option<Spanned<Vec<u32>>>,
    /// ISO country codes.
    pub country: Option<SpannedList<String>>,
    /// Account kinds.
    pub account: Option<SpannedList<String>>,
    /// User groups.
    pub groups: Option<Spanned<Vec<String>>>,
    /// User rights.
    pub rights: Option<Spanned<Vec<String>>>,
    /// Edit count at least.
    pub min_edits: Option<Spanned<u64>>,
    /// Edit count at most.
    pub max_edits: Option<Spanned<u64>>,
    /// Account age at least.
    pub min_age: Option<Spanned<String>>,
    /// Account age at most.
    pub max_age: Option<Spanned<String>>,
    /// Confirmed e-mail.
    pub email_confirmed: Option<Spanned<bool>>,
    /// Actions.
    pub actions: Option<Spanned<Vec<String>>>,
    /// Wiki ids.
    pub wikis: Option<Spanned<Vec<String>>>,
}
