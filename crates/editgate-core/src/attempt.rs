//! The edit attempt: who asks, from where, on which wiki, to do what.
//!
//! Every interface (gRPC, HTTP/JSON, CLI flags, policy test cases, replay) builds an
//! [`Attempt`] with [`Attempt::new`] and hands it to the engine, so checking and normalization
//! (IPv4-mapped IPv6, lower-cased names, the wiki id charset, anonymous means no account)
//! happen in one place.

use std::fmt;
use std::net::IpAddr;

use jiff::Timestamp;

/// The kind of account behind an edit attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(rename_all = "lowercase")]
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

    /// Account age in whole seconds at `now`. An anonymous editor, or an unknown creation time,
    /// counts as a brand-new account (age 0), so `min_age` conditions fail closed and
    /// `max_age` ones hold.
    pub fn age_secs(&self, now: Timestamp) -> i64 {
        match self.registered_at {
            Some(t) if self.kind != AccountKind::Anonymous => (now.as_second() - t.as_second()).max(0),
            _ => 0,
        }
    }
}

/// One edit attempt, checked and normalized by [`Attempt::new`], the only way to make one:
/// gRPC, HTTP/JSON, the CLI, policy test cases and replay all build their attempts through
/// it, so the same request gets the same decision whichever way it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    ip: IpAddr,
    forwarded_for: Vec<IpAddr>,
    wiki: String,
    action: String,
    account: Account,
}

/// Longest accepted wiki id.
pub const MAX_WIKI_ID: usize = 128;
/// Longest accepted action.
pub const MAX_ACTION: usize = 64;
/// Longest accepted group or right name.
pub const MAX_NAME: usize = 255;

impl Attempt {
    /// Checks and normalizes the parts of an attempt.
    ///
    /// - `ip` and `forwarded_for`: IPv4-mapped IPv6 becomes IPv4.
    /// - `wiki` and `action`: trimmed and ASCII-lowercased, then limited to `a-z`, `0-9`, `_`
    ///   and `-` ([`is_wiki_id`], [`is_action`]): an id that merely looks like a wiki's
    ///   (`officewiki\0`, a full-width `ｏfficewiki`) is refused rather than treated as a wiki
    ///   without local rules. An empty wiki is "no wiki"; an empty action is `edit`.
    /// - groups and rights: trimmed and lowercased, at most [`MAX_NAME`] bytes each.
    /// - an anonymous account has no account facts: age 0 (no creation time), no edits, no
    ///   confirmed e-mail, whatever the request carried.
    ///
    /// Errors name the field (`wiki`, `action`, `account.groups[2]`).
    pub fn new(
        ip: IpAddr,
        forwarded_for: Vec<IpAddr>,
        wiki: String,
        action: String,
        mut account: Account,
    ) -> Result<Self, FieldError> {
        let wiki = normalized(wiki);
        if !wiki.is_empty() && !is_wiki_id(&wiki) {
            return Err(FieldError::new(
                "wiki",
                format!(
                    "`{}` is not a wiki id: use letters, digits, `_` and `-`, at most {MAX_WIKI_ID} (like `enwiki`)",
                    snippet(&wiki)
                ),
            ));
        }
        let mut action = normalized(action);
        if action.is_empty() {
            action.push_str("edit");
        }
        if !is_action(&action) {
            return Err(FieldError::new(
                "action",
                format!(
                    "`{}` is not an action: use letters, digits, `_` and `-`, at most {MAX_ACTION} (like `edit`)",
                    snippet(&action)
                ),
            ));
        }
        for (field, names) in [
            ("account.groups", &mut account.groups),
            ("account.rights", &mut account.rights),
        ] {
            for (i, name) in names.iter_mut().enumerate() {
                if name.len() > MAX_NAME {
                    return Err(FieldError::new(
                        format!("{field}[{i}]"),
                        format!("longer than {MAX_NAME} bytes"),
                    ));
                }
                *name = normalized(std::mem::take(name));
            }
        }
        if account.kind == AccountKind::Anonymous {
            account.registered_at = None;
            account.edit_count = 0;
            account.email_confirmed = false;
        }
        Ok(Self {
            ip: normalize_ip(ip),
            forwarded_for: forwarded_for.into_iter().map(normalize_ip).collect(),
            wiki,
            action,
            account,
        })
    }

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

    /// The parts of an attempt from `ip`, to fill in and [`AttemptBuilder::build`]: an
    /// anonymous `edit` on no wiki until told otherwise.
    pub fn builder(ip: IpAddr) -> AttemptBuilder {
        AttemptBuilder {
            ip,
            forwarded_for: Vec::new(),
            wiki: String::new(),
            action: String::new(),
            account: Account::anonymous(),
        }
    }

    /// The client IP address (IPv4-mapped IPv6 turned into IPv4).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The X-Forwarded-For chain, normalized like [`Attempt::ip`]; only tested by `xff = true`
    /// rules.
    pub fn forwarded_for(&self) -> &[IpAddr] {
        &self.forwarded_for
    }

    /// The wiki id (`enwiki`), or empty when the caller does not say.
    pub fn wiki(&self) -> &str {
        &self.wiki
    }

    /// The action (`edit`, `create`, `move`, `upload`, `createaccount`, ...).
    pub fn action(&self) -> &str {
        &self.action
    }

    /// Who makes the attempt.
    pub fn account(&self) -> &Account {
        &self.account
    }
}

/// The unchecked parts of an [`Attempt`]; [`AttemptBuilder::build`] checks them with
/// [`Attempt::new`].
#[derive(Debug, Clone)]
pub struct AttemptBuilder {
    /// The client IP address.
    pub ip: IpAddr,
    /// The X-Forwarded-For chain.
    pub forwarded_for: Vec<IpAddr>,
    /// The wiki id.
    pub wiki: String,
    /// The action; empty means `edit`.
    pub action: String,
    /// Who makes the attempt.
    pub account: Account,
}

impl AttemptBuilder {
    /// Sets the wiki id.
    pub fn wiki(mut self, wiki: impl Into<String>) -> Self {
        self.wiki = wiki.into();
        self
    }

    /// Sets the action.
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }

    /// Sets the forwarded-for chain.
    pub fn forwarded_for(mut self, chain: Vec<IpAddr>) -> Self {
        self.forwarded_for = chain;
        self
    }

    /// Sets the account kind (the other account facts stay).
    pub fn kind(mut self, kind: AccountKind) -> Self {
        self.account.kind = kind;
        self
    }

    /// Sets the account.
    pub fn account(mut self, account: Account) -> Self {
        self.account = account;
        self
    }

    /// The checked attempt (see [`Attempt::new`]).
    pub fn build(self) -> Result<Attempt, FieldError> {
        Attempt::new(self.ip, self.forwarded_for, self.wiki, self.action, self.account)
    }
}

/// Trimmed and ASCII-lowercased, in place unless there is whitespace to trim.
fn normalized(mut s: String) -> String {
    // What backends send is almost always normal already: one pass to see, and nothing to do
    // (anything not ASCII takes the long way: `trim` knows Unicode's spaces).
    if s.bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase() && !b.is_ascii_whitespace())
    {
        return s;
    }
    if s.trim().len() != s.len() {
        s = s.trim().to_owned();
    }
    s.make_ascii_lowercase();
    s
}

/// Whether `s` is a wiki id: 1 to [`MAX_WIKI_ID`] characters from `a-z`, `0-9`, `_` and `-`
/// (MediaWiki wiki ids: `enwiki`, `zh_min_nanwiki`, `wikidb-mw_` with a table prefix). The
/// same rule names wiki files (`wikis/<id>.toml`), `wikis = [...]` conditions and requests.
pub fn is_wiki_id(s: &str) -> bool {
    is_plain_word(s, MAX_WIKI_ID)
}

/// Whether `s` is an action: 1 to [`MAX_ACTION`] characters from `a-z`, `0-9`, `_` and `-`.
pub fn is_action(s: &str) -> bool {
    is_plain_word(s, MAX_ACTION)
}

fn is_plain_word(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A request field that cannot be used; names the field (or flag) it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field or flag (`ip`, `forwarded_for[2]`, `wiki`, `--ip`).
    pub field: String,
    /// What is wrong, with the value in backticks, truncated for display.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// User input shortened for an error message, control characters escaped.
fn snippet(s: &str) -> String {
    crate::sources::snippet(s)
}

/// Parses an IP address from a request field, accepting surrounding whitespace and a bracketed
/// IPv6 form (`[2001:db8::1]`), and normalizing IPv4-mapped IPv6 to IPv4.
pub fn parse_ip(field: &str, value: &str) -> Result<IpAddr, FieldError> {
    let v = value.trim();
    let v = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(v);
    v.parse::<IpAddr>()
        .map(normalize_ip)
        .map_err(|_| FieldError::new(field, format!("`{}` is not a valid IP address", snippet(value))))
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
        a.kind = AccountKind::Registered;
        a.registered_at = Some("2025-12-31T00:00:00Z".parse().unwrap());
        assert_eq!(a.age_secs(now), 86_400);
    }

    fn registered_at(when: &str) -> Account {
        Account {
            kind: AccountKind::Registered,
            groups: vec![" Sysop ".into()],
            rights: vec!["IPBlock-Exempt".into()],
            edit_count: 500,
            registered_at: Some(when.parse().unwrap()),
            email_confirmed: true,
        }
    }

    /// An anonymous request's account facts never count.
    #[test]
    fn an_anonymous_attempt_has_no_age_edits_or_email_whatever_it_carries() {
        let now: Timestamp = "2026-11-26T00:00:00Z".parse().unwrap();
        let mut account = registered_at("2026-11-01T00:00:00Z");
        account.kind = AccountKind::Anonymous;
        assert_eq!(account.age_secs(now), 0, "age_secs alone already ignores it");
        let a = Attempt::new([9, 9, 9, 9].into(), vec![], String::new(), String::new(), account).unwrap();
        assert_eq!(a.account().registered_at, None);
        assert_eq!((a.account().edit_count, a.account().email_confirmed), (0, false));
        assert_eq!(a.account().age_secs(now), 0);
    }

    #[test]
    fn wiki_action_groups_and_rights_are_normalized() {
        let ip: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let a = Attempt::new(
            ip,
            vec!["::ffff:198.51.100.7".parse().unwrap()],
            " EnWiki ".into(),
            "Edit".into(),
            registered_at("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(a.ip(), IpAddr::from([192, 0, 2, 1]));
        assert_eq!(a.forwarded_for(), [IpAddr::from([198, 51, 100, 7])]);
        assert_eq!((a.wiki(), a.action()), ("enwiki", "edit"));
        assert_eq!(a.account().groups, ["sysop"]);
        assert_eq!(a.account().rights, ["ipblock-exempt"]);
        let empty = Attempt::new(ip, vec![], String::new(), "  ".into(), Account::anonymous()).unwrap();
        assert_eq!((empty.wiki(), empty.action()), ("", "edit"));
    }

    /// Ids that only look like a wiki's are refused, not treated as a
    /// wiki without local rules (whose default would then not apply).
    #[test]
    fn odd_wiki_ids_and_actions_are_refused_naming_the_field() {
        for wiki in [
            "officewiki\0",
            "ｏfficewiki",
            "office wiki",
            "office.wiki",
            "enwiki/../x",
            &"w".repeat(129),
        ] {
            let err = Attempt::new(
                [192, 0, 2, 1].into(),
                vec![],
                wiki.into(),
                String::new(),
                Account::anonymous(),
            )
            .unwrap_err();
            assert_eq!(err.field, "wiki", "{wiki:?}");
        }
        for action in ["ed\nit", "édit", "move page", &"a".repeat(65)] {
            let err = Attempt::new(
                [192, 0, 2, 1].into(),
                vec![],
                String::new(),
                action.into(),
                Account::anonymous(),
            )
            .unwrap_err();
            assert_eq!(err.field, "action", "{action:?}");
        }
        let mut acct = Account::anonymous();
        acct.rights = vec!["ok".into(), "x".repeat(256)];
        let err = Attempt::new([192, 0, 2, 1].into(), vec![], String::new(), String::new(), acct).unwrap_err();
        assert_eq!(err.to_string(), "account.rights[1]: longer than 255 bytes");
        for ok in ["enwiki", "zh_min_nanwiki", "wikidb-mw_", "1wiki"] {
            assert!(is_wiki_id(ok), "{ok}");
        }
    }
}
