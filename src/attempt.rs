//! The edit attempt: who asks, from where, on which wiki, to do what.
//!
//! Every interface (CLI flags, gRPC, policy test cases) builds an [`Attempt`] and hands it to
//! the engine, so normalization (IPv4-mapped IPv6, lower-cased names) happens in one place.

use std::fmt;
use std::net::IpAddr;

use jiff::Timestamp;

/// The kind of account behind an edit attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// Not logged in; the IP address is public (or masked by the wiki).
    Anonymous,
    /// A temporary account created automatically for a logged-out editor (IP masking).
    Temporary,
    /// A registered account.
    Registered,
}

impl AccountKind {
    /// Every kind, in the order used by bit masks and listings.
    pub const ALL: [AccountKind; 3] = [Self::Anonymous, Self::Temporary, Self::Registered];

    /// The name used in policy files, flags and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Temporary => "temporary",
            Self::Registered => "registered",
        }
    }

    /// Parses the policy-file name of a kind.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// One bit per kind, for compiled `account = [...]` conditions.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The account making the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Anonymous, temporary or registered.
    pub kind: AccountKind,
    /// User groups (`sysop`, `autoconfirmed`, ...), lower-cased.
    pub groups: Vec<String>,
    /// User rights (`ipblock-exempt`, `torunblocked`, ...), lower-cased.
    pub rights: Vec<String>,
    /// Number of edits the account has made.
    pub edit_count: u64,
    /// When the account was created; `None` for anonymous editors or when unknown.
    pub registered_at: Option<Timestamp>,
    /// Whether the account has a confirmed e-mail address.
    pub email_confirmed: bool,
}

impl Account {
    /// An anonymous editor: no groups, no rights, no edits.
    pub fn anonymous() -> Self {
        Self {
            kind: AccountKind::Anonymous,
            groups: Vec::new(),
            rights: Vec::new(),
            edit_count: 0,
            registered_at: None,
            email_confirmed: false,
        }
    }

    /// Account age in whole seconds at `now`. An unknown creation time counts as a brand-new
    /// account (age 0), so `min_age` conditions fail closed and `max_age` ones hold.
    pub fn age_secs(&self, now: Timestamp) -> i64 {
        match self.registered_at {
            Some(t) => (now.as_second() - t.as_second()).max(0),
            None => 0,
        }
    }
}

/// One edit attempt, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The client IP address (IPv4-mapped IPv6 is turned into IPv4).
    pub ip: IpAddr,
    /// The X-Forwarded-For chain, normalized like `ip`; only tested by `xff = true` rules.
    pub forwarded_for: Vec<IpAddr>,
    /// The wiki id (`enwiki`), or empty when the caller does not say.
    pub wiki: String,
    /// The action (`edit`, `create`, `move`, `upload`, `createaccount`, ...).
    pub action: String,
    /// Who makes the attempt.
    pub account: Account,
}

impl Attempt {
    /// An anonymous `edit` from `ip` on no particular wiki.
    pub fn anonymous_edit(ip: IpAddr) -> Self {
        Self {
            ip: normalize_ip(ip),
            forwarded_for: Vec::new(),
            wiki: String::new(),
            action: "edit".to_owned(),
            account: Account::anonymous(),
        }
    }
}

/// Error for a malformed address; names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: `{value}` is not a valid IP address")]
pub struct IpParseError {
    /// The field or flag the value came from (`ip`, `forwarded_for[2]`, `--ip`).
    pub field: String,
    /// The rejected value, truncated for display.
    pub value: String,
}

/// Parses an IP address from a request field, accepting surrounding whitespace and a bracketed
/// IPv6 form (`[2001:db8::1]`), and normalizing IPv4-mapped IPv6 to IPv4.
pub fn parse_ip(field: &str, value: &str) -> Result<IpAddr, IpParseError> {
    let v = value.trim();
    let v = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(v);
    v.parse::<IpAddr>().map(normalize_ip).map_err(|_| IpParseError {
        field: field.to_owned(),
        value: value.chars().take(64).collect(),
    })
}

/// Turns an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) into the IPv4 address it carries, so
/// that IPv4 lists match whichever form the web server reported.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv6_becomes_ipv4() {
        let ip = parse_ip("ip", "::ffff:192.0.2.7").unwrap();
        assert_eq!(ip, "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bracketed_ipv6_is_accepted() {
        assert_eq!(
            parse_ip("ip", " [2001:db8::1] ").unwrap(),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn malformed_ip_names_the_field() {
        let err = parse_ip("forwarded_for[1]", "300.1.1.1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "forwarded_for[1]: `300.1.1.1` is not a valid IP address"
        );
    }

    #[test]
    fn unknown_registration_counts_as_new() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(Account::anonymous().age_secs(now), 0);
        let mut a = Account::anonymous();
        a.registered_at = Some("2025-12-31T00:00:00Z".parse().unwrap());
        assert_eq!(a.age_secs(now), 86_400);
    }
}
