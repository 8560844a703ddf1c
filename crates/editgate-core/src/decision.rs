//! Verdicts and decisions: what the engine answers, and why.

use std::fmt;

/// What happens to the edit attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, schemars::JsonSchema)]
#[schemars(rename_all = "kebab-case")]
pub enum Verdict {
    /// The edit goes through.
    Allow,
    /// The editor must log in to a registered account first (a soft block).
    RequireLogin,
    /// The edit is refused.
    Block,
}

impl Verdict {
    /// Every verdict, in display order.
    pub const ALL: [Verdict; 3] = [Self::Allow, Self::RequireLogin, Self::Block];

    /// The name used in policy files, flags and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::RequireLogin => "require-login",
            Self::Block => "block",
        }
    }

    /// Parses the policy-file name of a verdict.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition key, as named in policy files; the trace says which one decided a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CondKey {
    /// `ip_in = [sources]`
    IpIn,
    /// `ip = [networks]`
    Ip,
    /// `asn = [numbers]`
    Asn,
    /// `country = [codes]`
    Country,
    /// `account = [kinds]`
    Account,
    /// `groups = [...]`
    Groups,
    /// `rights = [...]`
    Rights,
    /// `min_edits = N`
    MinEdits,
    /// `max_edits = N`
    MaxEdits,
    /// `min_age = "90d"`
    MinAge,
    /// `max_age = "7d"`
    MaxAge,
    /// `email_confirmed = bool`
    EmailConfirmed,
    /// `actions = [...]`
    Actions,
    /// `wikis = [...]`
    Wikis,
    /// A Spur reputation list (`tunnel_operators`, `risks`, …).
    Reputation(crate::sources::spur::Field),
    /// `min_clients = N`
    MinClients,
}

impl CondKey {
    /// The key as written in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IpIn => "ip_in",
            Self::Ip => "ip",
            Self::Asn => "asn",
            Self::Country => "country",
            Self::Account => "account",
            Self::Groups => "groups",
            Self::Rights => "rights",
            Self::MinEdits => "min_edits",
            Self::MaxEdits => "max_edits",
            Self::MinAge => "min_age",
            Self::MaxAge => "max_age",
            Self::EmailConfirmed => "email_confirmed",
            Self::Actions => "actions",
            Self::Wikis => "wikis",
            Self::Reputation(f) => f.key(),
            Self::MinClients => "min_clients",
        }
    }
}

/// What happened when evaluation reached a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The rule matched and decided.
    Matched,
    /// An `xff` rule's `when` held for a forwarded-for address (not for the client address)
    /// and it decided: the client address alone gets no stricter verdict.
    ForwardedMatched,
    /// An `xff` rule's `when` held for a forwarded-for address, but the client address alone
    /// gets a stricter verdict, which decides: a forwarded-for address never makes a
    /// decision less strict.
    ForwardedOutranked,
    /// The rule matched the client address after a forwarded-for match, and its verdict is
    /// not stricter than that match's, so the forwarded-for match decides.
    NotStricter,
    /// A shadow rule matched; it is reported and evaluation went on.
    ShadowMatched,
    /// A shadow rule matched the client address after a forwarded-for match, but enforced it
    /// would not be stricter than that match, so it would not have decided: not reported
    /// (a shadow rule is reported only where enforcing it would change the decision's rule).
    ShadowNotStricter,
    /// `when` failed on this key.
    WhenFailed(CondKey),
    /// `when` held but `unless` held too (every key of it); this names its first key, or
    /// `None` for an empty `unless` table.
    Unless(Option<CondKey>),
    /// Skipped: the rule is past its `expires` time.
    Expired,
}

impl Outcome {
    /// A machine name: `matched`, `forwarded-matched`, `forwarded-outranked`,
    /// `not-stricter`, `shadow-matched`, `shadow-not-stricter`, `when-failed`,
    /// `unless-held`, `expired`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::ForwardedMatched => "forwarded-matched",
            Self::ForwardedOutranked => "forwarded-outranked",
            Self::NotStricter => "not-stricter",
            Self::ShadowMatched => "shadow-matched",
            Self::ShadowNotStricter => "shadow-not-stricter",
            Self::WhenFailed(_) => "when-failed",
            Self::Unless(_) => "unless-held",
            Self::Expired => "expired",
        }
    }

    /// The condition key that decided the outcome, when there is one.
    pub fn key(self) -> Option<CondKey> {
        match self {
            Self::WhenFailed(k) => Some(k),
            Self::Unless(k) => k,
            _ => None,
        }
    }

    /// The outcome in words, for explain and test failures.
    pub fn describe(self) -> String {
        match self {
            Self::Matched => "matched: decides".to_owned(),
            Self::ForwardedMatched => {
                "matched through a forwarded-for address: decides (the client address alone gets no stricter verdict)"
                    .to_owned()
            }
            Self::ForwardedOutranked => {
                "matched through a forwarded-for address, but the client address alone gets a stricter verdict, which decides"
                    .to_owned()
            }
            Self::NotStricter => {
                "matches the client address, but is not stricter than the forwarded-for match before it, which decides"
                    .to_owned()
            }
            Self::ShadowMatched => "matched in shadow mode: reported, evaluation goes on".to_owned(),
            Self::ShadowNotStricter => {
                "matched in shadow mode, but enforced it would not be stricter than the forwarded-for match before it, so it would not decide: not reported"
                    .to_owned()
            }
            Self::WhenFailed(k) => format!("skipped: `when.{}` does not hold", k.as_str()),
            Self::Unless(Some(k)) => format!("skipped: exempted by `unless` (`unless.{}` holds)", k.as_str()),
            Self::Unless(None) => "skipped: exempted by an empty `unless`".to_owned(),
            Self::Expired => "skipped: expired".to_owned(),
        }
    }
}

/// One rule visited during evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Index of the rule in [`crate::engine::Snapshot::rules`].
    pub rule: u32,
    /// What happened.
    pub outcome: Outcome,
}

/// Where the verdict came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// A rule matched (its index in [`crate::engine::Snapshot::rules`]).
    Rule(u32),
    /// No rule matched; the wiki's `default` decided.
    WikiDefault,
    /// No rule matched; the global `[settings] default` decided.
    GlobalDefault,
    /// No rule matched and no default is set: `allow`.
    BuiltinDefault,
}

/// The answer for one attempt. It borrows names and messages from the snapshot that made it,
/// so deciding allocates nothing beyond the shadow list and the optional trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'s> {
    /// The verdict.
    pub verdict: Verdict,
    /// What decided it.
    pub decided_by: DecidedBy,
    /// The deciding rule id; empty when a default decided.
    pub rule_id: &'s str,
    /// The message key (or text) the wiki shows.
    pub message: &'s str,
    /// Why, in words: the deciding rule's description, or which default applied.
    pub reason: &'s str,
    /// Where to appeal a refusal (from the rule or `[settings] appeal`); empty for `allow`.
    pub appeal: &'s str,
    /// Ids of the shadow rules that matched, in evaluation order.
    pub shadow_rule_ids: Vec<&'s str>,
    /// A hash of the loaded policy files and data.
    pub policy_version: &'s str,
    /// Every rule visited and why it matched or failed; empty unless tracing was asked for.
    pub trace: Vec<Step>,
}
