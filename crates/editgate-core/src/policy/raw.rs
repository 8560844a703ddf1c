//! Raw serde structs: the policy files exactly as written. Unknown keys are rejected here;
//! meaning is checked in [`super::check`]. Values that need a did-you-mean hint (verdicts,
//! kinds, accounts) stay strings so the checker can name the closest valid value.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;
use toml::value::Datetime;

// Names that only exist for the JSON Schema (`editgate schema`), so editors can complete
// and check the values; the checker parses the strings itself to give did-you-mean hints.

/// A verdict.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum VerdictName {
    /// The edit goes through.
    Allow,
    /// The editor must log in first.
    RequireLogin,
    /// The edit is refused.
    Block,
}

/// An account kind.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum AccountName {
    /// Not logged in.
    Anonymous,
    /// A temporary account (IP masking).
    Temporary,
    /// A registered account.
    Registered,
}

/// A source kind.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum KindName {
    /// TorDNSEL, bulk or Onionoo exit list.
    TorExits,
    /// One IP or CIDR a line.
    IpList,
    /// GeoIP2 Anonymous IP database.
    MaxmindAnonymous,
    /// GeoLite2/GeoIP2 ASN database.
    MaxmindAsn,
    /// GeoLite2/GeoIP2 Country or City database.
    MaxmindCountry,
}

/// A rule mode.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ModeName {
    /// Decides when it matches.
    Enforce,
    /// Only reported when it matches.
    Shadow,
}

/// A GeoIP2 Anonymous IP flag.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, clippy::enum_variant_names)] // the names are the database's field names
enum FlagName {
    /// Any anonymizer.
    IsAnonymous,
    /// A commercial VPN.
    IsAnonymousVpn,
    /// A hosting provider.
    IsHostingProvider,
    /// An open proxy.
    IsPublicProxy,
    /// A residential proxy.
    IsResidentialProxy,
    /// A Tor exit.
    IsTorExitNode,
}

/// An RFC 3339 date-time (TOML offset date-time), or a date.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct DateTimeString(#[schemars(extend("format" = "date-time"))] String);

/// A list whose elements keep their own positions, so an error can point at one element.
pub type SpannedList<T> = Spanned<Vec<Spanned<T>>>;

/// The JSON Schema of the policy files, generated from the structs the checker parses, so the
/// schema and the parser cannot drift apart (`editgate schema`).
pub fn policy_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(RawFile);
    schema.insert("title".into(), "editgate policy file".into());
    schema.insert(
        "description".into(),
        "global.toml or wikis/<wiki>.toml of an editgate policy directory; `editgate validate` checks what a schema cannot (sources, CIDRs, durations, duplicate ids)".into(),
    );
    schema.to_value()
}

/// `global.toml` or `wikis/<wiki>.toml`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// `[settings]`
    #[schemars(with = "Option<RawSettings>")]
    pub settings: Option<Spanned<RawSettings>>,
    /// `[sources.<name>]`
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawSource>")]
    pub sources: BTreeMap<Spanned<String>, Spanned<RawSource>>,
    /// `[[rule]]`
    #[serde(default, rename = "rule")]
    #[schemars(with = "Vec<RawRule>")]
    pub rules: Vec<Spanned<RawRule>>,
}

/// `[settings]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// Verdict when no rule matches.
    #[schemars(with = "Option<VerdictName>")]
    pub default: Option<Spanned<String>>,
    /// Message shown when the default refuses an edit.
    pub default_message: Option<String>,
    /// Where to appeal a refusal, unless the rule says otherwise.
    pub appeal: Option<String>,
    /// The opt-in, privacy-safe decision log (global.toml only).
    #[schemars(with = "Option<RawDecisionLog>")]
    pub decision_log: Option<Spanned<RawDecisionLog>>,
}

/// `[settings.decision_log]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDecisionLog {
    /// JSON Lines file, relative to the policy directory or absolute.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// File holding the HMAC key for addresses.
    #[schemars(with = "String")]
    pub key_file: Spanned<String>,
    /// Fraction of decisions logged, 0 to 1.
    #[schemars(with = "Option<f64>")]
    pub sample_rate: Option<Spanned<f64>>,
    /// Rotate to `<path>.1` past this size.
    pub max_bytes: Option<u64>,
}

/// `[sources.<name>]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// `tor-exits`, `ip-list`, `maxmind-anonymous`, `maxmind-asn`, `maxmind-country`.
    #[schemars(with = "KindName")]
    pub kind: Spanned<String>,
    /// File path, relative to the policy directory.
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// Remote location (`http://` or `https://`), fetched by `editgate serve` every `refresh`;
    /// the last good copy is kept at `path`.
    #[schemars(with = "Option<String>")]
    pub url: Option<Spanned<String>>,
    /// Refresh interval for `url` (default `30m`).
    #[schemars(with = "Option<String>")]
    pub refresh: Option<Spanned<String>>,
    /// Timeout of one fetch of `url`, connect to last byte (default `30s`).
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Largest accepted file or body of `url`, bytes (default 64 MiB for lists, 1 GiB for
    /// MaxMind databases).
    #[schemars(with = "Option<u64>")]
    pub max_bytes: Option<Spanned<u64>>,
    /// List sources: fewer entries than this is rejected as suspicious (a fetch, or a file on
    /// reload); the last good data keeps serving. Unset, an empty list is rejected; `0`
    /// accepts one.
    #[schemars(with = "Option<u64>")]
    pub min_entries: Option<Spanned<u64>>,
    /// List sources: the largest fraction of its entries a list may lose in one update (a
    /// reload or a fetch), 0 to 1 (default 0.5); a larger shrink is rejected until confirmed
    /// with `editgate accept-shrink`.
    #[schemars(with = "Option<f64>", range(min = 0.0, max = 1.0))]
    pub max_shrink: Option<Spanned<f64>>,
    /// List sources: read `192.0.2.7/24` as `192.0.2.0/24` instead of rejecting the list
    /// (for third-party lists written that way).
    pub mask_host_bits: Option<bool>,
    /// Data older than this is reported as stale.
    #[schemars(with = "Option<String>")]
    pub max_age: Option<Spanned<String>>,
    /// For `maxmind-anonymous`: the flags that put an IP in this source.
    #[schemars(with = "Option<Vec<FlagName>>")]
    pub flags: Option<SpannedList<String>>,
    /// A change tag for every attempt whose client address is in this source, answered with
    /// every decision (the wiki tags the edit, as TorBlock tags Tor edits `tor`).
    #[schemars(with = "Option<String>")]
    pub tag: Option<Spanned<String>>,
    /// Many people share these addresses (Tor exits, VPN egresses): the wiki skips
    /// autoblocks on them.
    pub shared: Option<bool>,
}

/// `[[rule]]`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique id across all files.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// Human explanation: explain, logs, appeals.
    pub description: Option<String>,
    /// `allow`, `require-login`, `block`.
    #[schemars(with = "VerdictName")]
    pub verdict: Spanned<String>,
    /// Message key or text for the wiki to show.
    pub message: Option<String>,
    /// Appeal path for this rule's refusals.
    pub appeal: Option<String>,
    /// Conditions that must hold.
    #[schemars(with = "Option<RawCond>")]
    pub when: Option<Spanned<RawCond>>,
    /// Conditions that exempt.
    #[schemars(with = "Option<RawCond>")]
    pub unless: Option<Spanned<RawCond>>,
    /// After this time the rule is skipped.
    #[schemars(with = "Option<DateTimeString>")]
    pub expires: Option<Spanned<Datetime>>,
    /// `enforce` (default) or `shadow`.
    #[schemars(with = "Option<ModeName>")]
    pub mode: Option<Spanned<String>>,
    /// Global file only: evaluated before every wiki's rules.
    #[schemars(with = "Option<bool>")]
    pub locked: Option<Spanned<bool>>,
    /// Also test forwarded-for addresses in `when` (refusing rules only: they may only
    /// make a decision stricter).
    #[schemars(with = "Option<bool>")]
    pub xff: Option<Spanned<bool>>,
}

/// A `when` / `unless` condition table.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCond {
    /// Source names.
    #[schemars(with = "Option<Vec<String>>")]
    pub ip_in: Option<SpannedList<String>>,
    /// Networks or addresses.
    #[schemars(with = "Option<Vec<String>>")]
    pub ip: Option<SpannedList<String>>,
    /// Autonomous system numbers.
    #[schemars(with = "Option<Vec<u32>>")]
    pub asn: Option<Spanned<Vec<u32>>>,
    /// ISO country codes.
    #[schemars(with = "Option<Vec<String>>")]
    pub country: Option<SpannedList<String>>,
    /// Account kinds.
    #[schemars(with = "Option<Vec<AccountName>>")]
    pub account: Option<SpannedList<String>>,
    /// User groups.
    #[schemars(with = "Option<Vec<String>>")]
    pub groups: Option<Spanned<Vec<String>>>,
    /// User rights.
    #[schemars(with = "Option<Vec<String>>")]
    pub rights: Option<Spanned<Vec<String>>>,
    /// Edit count at least.
    #[schemars(with = "Option<u64>")]
    pub min_edits: Option<Spanned<u64>>,
    /// Edit count at most.
    #[schemars(with = "Option<u64>")]
    pub max_edits: Option<Spanned<u64>>,
    /// Account age at least.
    #[schemars(with = "Option<String>")]
    pub min_age: Option<Spanned<String>>,
    /// Account age at most.
    #[schemars(with = "Option<String>")]
    pub max_age: Option<Spanned<String>>,
    /// Confirmed e-mail.
    #[schemars(with = "Option<bool>")]
    pub email_confirmed: Option<Spanned<bool>>,
    /// Actions.
    #[schemars(with = "Option<Vec<String>>")]
    pub actions: Option<Spanned<Vec<String>>>,
    /// Wiki ids.
    #[schemars(with = "Option<Vec<String>>")]
    pub wikis: Option<Spanned<Vec<String>>>,
}
