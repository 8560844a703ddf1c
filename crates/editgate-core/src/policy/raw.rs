//! Raw serde structs: the policy files exactly as written. Unknown keys are rejected here;
//! meaning is checked in [`super::check()`]. Values that need a did-you-mean hint (verdicts,
//! kinds, accounts) stay strings so the checker can name the closest valid value.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;
use toml::value::Datetime;

// The schema names the values of verdicts, kinds, accounts, modes and flags from the
// checker's own types (their `JsonSchema`), so editors can complete and check them; the raw
// structs keep strings so the checker can give did-you-mean hints.

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
    #[schemars(with = "Option<crate::decision::Verdict>")]
    pub default: Option<Spanned<String>>,
    /// Message shown when the default refuses an edit.
    pub default_message: Option<String>,
    /// Where to appeal a refusal, unless the rule says otherwise.
    pub appeal: Option<String>,
    /// The opt-in, privacy-safe decision log (global.toml only).
    #[schemars(with = "Option<RawDecisionLog>")]
    pub decision_log: Option<Spanned<RawDecisionLog>>,
    /// Lints allowed in this file's scope: still reported by `validate`, never fatal.
    #[schemars(with = "Option<Vec<super::Lint>>")]
    pub allow_lints: Option<SpannedList<String>>,
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
    #[schemars(with = "crate::sources::SourceKind")]
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
    /// A header sent with each fetch of `url` (`Token` for Spur's feeds, `Authorization` for
    /// most others); its value is read from `auth_file` at each fetch.
    #[schemars(with = "Option<String>")]
    pub auth_header: Option<Spanned<String>>,
    /// The file holding the value of `auth_header` (a token: kept out of the policy, which is
    /// often in version control), relative to the policy directory or absolute.
    #[schemars(with = "Option<String>")]
    pub auth_file: Option<Spanned<String>>,
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
    #[schemars(with = "Option<Vec<crate::sources::maxmind::AnonFlag>>")]
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
    #[schemars(with = "crate::decision::Verdict")]
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
    #[schemars(with = "Option<super::Mode>")]
    pub mode: Option<Spanned<String>>,
    /// Global file only: evaluated before every wiki's rules.
    #[schemars(with = "Option<bool>")]
    pub locked: Option<Spanned<bool>>,
    /// Also test forwarded-for addresses in `when` (refusing rules only: they may only
    /// make a decision stricter).
    #[schemars(with = "Option<bool>")]
    pub xff: Option<Spanned<bool>>,
    /// Lints allowed for this rule: still reported by `validate`, never fatal.
    #[schemars(with = "Option<Vec<super::Lint>>")]
    pub allow_lints: Option<SpannedList<String>>,
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
    #[schemars(with = "Option<Vec<crate::attempt::AccountKind>>")]
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
    /// Spur: operators of the tunnels through the address (`NORD_VPN`, …).
    #[schemars(with = "Option<Vec<String>>")]
    pub tunnel_operators: Option<SpannedList<String>>,
    /// Spur: types of those tunnels (`VPN`, `PROXY`, `TOR`, …).
    #[schemars(with = "Option<Vec<String>>")]
    pub tunnel_types: Option<SpannedList<String>>,
    /// Spur: risks (`CALLBACK_PROXY`, `GEO_MISMATCH`, `TUNNEL`, …).
    #[schemars(with = "Option<Vec<String>>")]
    pub risks: Option<SpannedList<String>>,
    /// Spur: what the address's clients do (`FILE_SHARING`, …).
    #[schemars(with = "Option<Vec<String>>")]
    pub client_behaviors: Option<SpannedList<String>>,
    /// Spur: the proxy networks its clients belong to.
    #[schemars(with = "Option<Vec<String>>")]
    pub client_proxies: Option<SpannedList<String>>,
    /// Spur: its clients' device types (`DESKTOP`, `MOBILE`, …).
    #[schemars(with = "Option<Vec<String>>")]
    pub client_types: Option<SpannedList<String>>,
    /// Spur: its infrastructure (`DATACENTER`, `MOBILE`, …).
    #[schemars(with = "Option<Vec<String>>")]
    pub infrastructure: Option<SpannedList<String>>,
    /// Spur: services it runs (`OPENVPN`, …).
    #[schemars(with = "Option<Vec<String>>")]
    pub services: Option<SpannedList<String>>,
    /// Spur: at least this many clients use the address.
    #[schemars(with = "Option<u32>")]
    pub min_clients: Option<Spanned<u32>>,
}

impl RawCond {
    /// The Spur reputation lists of the table, by field.
    pub fn reputation(&self) -> [(crate::sources::spur::Field, &Option<SpannedList<String>>); 8] {
        use crate::sources::spur::Field;
        [
            (Field::TunnelOperators, &self.tunnel_operators),
            (Field::TunnelTypes, &self.tunnel_types),
            (Field::Risks, &self.risks),
            (Field::ClientBehaviors, &self.client_behaviors),
            (Field::ClientProxies, &self.client_proxies),
            (Field::ClientTypes, &self.client_types),
            (Field::Infrastructure, &self.infrastructure),
            (Field::Services, &self.services),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values the schema offers are the names the checker parses, since both come from
    /// the same types.
    #[test]
    fn the_schema_offers_exactly_the_names_the_checker_parses() {
        let schema = policy_schema();
        let offered = |def: &str| -> Vec<String> {
            let mut v: Vec<String> = schema["$defs"][def]["oneOf"]
                .as_array()
                .unwrap_or_else(|| panic!("no {def} in the schema"))
                .iter()
                .map(|x| x["const"].as_str().unwrap_or_default().to_owned())
                .collect();
            v.sort();
            v
        };
        let sorted = |names: &[&str]| {
            let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
            v.sort();
            v
        };
        use crate::decision::Verdict;
        use crate::sources::SourceKind;
        use crate::sources::maxmind::AnonFlag;
        assert_eq!(offered("Verdict"), sorted(&Verdict::ALL.map(Verdict::as_str)));
        assert_eq!(offered("SourceKind"), sorted(&SourceKind::ALL.map(SourceKind::as_str)));
        assert_eq!(offered("AnonFlag"), sorted(&AnonFlag::ALL.map(AnonFlag::as_str)));
        let kinds = crate::attempt::AccountKind::ALL.map(crate::attempt::AccountKind::as_str);
        assert_eq!(offered("AccountKind"), sorted(&kinds));
        assert_eq!(offered("Mode"), sorted(&["enforce", "shadow"]));
        assert_eq!(
            offered("Lint"),
            sorted(&super::super::Lint::ALL.map(super::super::Lint::as_str))
        );
    }
}
