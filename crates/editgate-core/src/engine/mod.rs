//! The compiled [`Snapshot`] and [`decide`]: pure, infallible, no I/O.
//!
//! A snapshot is built once per (re)load from a checked [`Policy`] and the parsed source data,
//! then shared read-only by every request until the next reload swaps in a new one. Nothing in
//! it changes after it is built: what changes while it serves (a `url` source confirmed "not
//! modified") is the server's to keep, and is passed in where it matters
//! ([`SourceInfo::data_age_secs`]).
//!
//! - [`compile`](self): building a snapshot (the module `compile`);
//! - `evaluate`: one rule against one attempt, the evaluation both decision paths share;
//! - `hot`: the untraced path over packed per-wiki, per-account-kind rule records;
//! - `resolve`: which rule decides, first match with the forwarded-for rule (a
//!   forwarded-for address only ever makes a decision stricter), for both paths;
//! - `facts`: what a snapshot knows about an address ([`Facts`], [`AddressReport`]).

mod compile;
mod compiled;
mod evaluate;
mod facts;
mod hot;
mod resolve;

use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;

use crate::attempt::Attempt;
use crate::decision::{DecidedBy, Decision, Step, Verdict};
use crate::index::Index;
use crate::policy::{Policy, Rule};
use crate::sources::SourceKind;
use crate::sources::maxmind::MaxmindDb;

pub use facts::{AddressReport, AddressSummary, Facts, Reputation};

use compiled::{AnonDb, CompiledRule, LabelOwner, WikiPlan};
use hot::decide_hot;
use resolve::Resolver;

/// The parsed content of one source, ready to compile.
#[derive(Debug)]
pub enum SourceContent {
    /// A network list (`tor-exits`, `ip-list`).
    Networks(Vec<IpNet>),
    /// A verified MaxMind database.
    Maxmind(MaxmindDb),
    /// A Spur feed's table (`spur-feed`).
    Feed(crate::sources::spur::SpurTable),
}

/// One source's data as handed to [`Snapshot::build`], in the order of `policy.sources`.
#[derive(Debug)]
pub struct SourceData {
    /// The parsed content.
    pub content: SourceContent,
    /// When the data was current, and how that is known; `None` for a `url` source never
    /// fetched.
    pub time: Option<DataTime>,
}

/// When a source's data was current, and how that is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataTime {
    /// The time.
    pub at: Timestamp,
    /// Where it comes from.
    pub from: AgeFrom,
}

/// Where a source's data time comes from, best first: the data's own timestamps where its
/// format has them, else when a `url` source's origin last confirmed it, else the file's
/// modification time (which a copy or a fresh clone resets, so it is the last resort).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeFrom {
    /// The data's own timestamp; the field it came from (`TorDNSEL Downloaded`, `TorDNSEL
    /// LastStatus`, `Onionoo relays_published`, `MaxMind build_epoch`).
    Data(&'static str),
    /// When the origin of a `url` source last sent or confirmed the copy.
    Fetched,
    /// The data file's modification time.
    FileModified,
}

impl AgeFrom {
    /// `data`, `fetched` or `file-modified`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Data(_) => "data",
            Self::Fetched => "fetched",
            Self::FileModified => "file-modified",
        }
    }

    /// In words, for health and explain: `the data's own time (MaxMind build_epoch)`.
    pub fn describe(self) -> String {
        match self {
            Self::Data(field) => format!("the data's own time ({field})"),
            Self::Fetched => "the last fetch or confirmation of its url".to_owned(),
            Self::FileModified => "the file's modification time".to_owned(),
        }
    }
}

/// What a snapshot knows about each loaded source (for metrics, health and explain).
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// The source name.
    pub name: String,
    /// Its kind.
    pub kind: SourceKind,
    /// Networks for lists; 0 for databases.
    pub entries: usize,
    /// When its data was current as loaded; `None` for a `url` source not fetched yet.
    pub time: Option<DataTime>,
    /// Stale after this many seconds.
    pub max_age_secs: Option<i64>,
    /// Whether the source is fetched from a `url`.
    pub remote: bool,
    /// MaxMind `database_type`, for databases.
    pub database_type: Option<String>,
    /// The change tag for attempts from an address in this source.
    pub tag: Option<String>,
    /// Many people share its addresses (autoblocks skip them).
    pub shared: bool,
}

impl SourceInfo {
    /// When the data was last known current: its time as loaded, moved forward by
    /// `confirmed`, a later "not modified" from the origin of a `url` source, when the data
    /// has no timestamps of its own (a confirmation does not make timestamped data newer).
    pub fn current(&self, confirmed: Option<Timestamp>) -> Option<DataTime> {
        match (self.time, confirmed) {
            (Some(t), _) if matches!(t.from, AgeFrom::Data(_)) => Some(t),
            (Some(t), Some(c)) if c > t.at => Some(DataTime {
                at: c,
                from: AgeFrom::Fetched,
            }),
            (None, Some(c)) if self.remote => Some(DataTime {
                at: c,
                from: AgeFrom::Fetched,
            }),
            (t, _) => t,
        }
    }

    /// Seconds since the data was last known current (see [`SourceInfo::current`]).
    pub fn data_age_secs(&self, now: Timestamp, confirmed: Option<Timestamp>) -> Option<f64> {
        self.current(confirmed)
            .map(|t| (now.as_millisecond() - t.at.as_millisecond()).max(0) as f64 / 1000.0)
    }

    /// Whether a `url` source is still waiting for its first good fetch (it matches nothing).
    pub fn awaiting_first_fetch(&self) -> bool {
        self.remote && self.time.is_none()
    }

    /// Whether the data is older than `max_age`, or a `url` source has no data yet (reported
    /// in metrics and health; the data is still used).
    pub fn is_stale(&self, now: Timestamp, confirmed: Option<Timestamp>) -> bool {
        match (self.data_age_secs(now, confirmed), self.max_age_secs) {
            (Some(age), Some(max)) => age > max as f64,
            _ => self.awaiting_first_fetch(),
        }
    }
}

/// A compiled, immutable policy with its data: what every decision reads.
#[derive(Debug)]
pub struct Snapshot {
    /// The checked policy (rules in [`Snapshot::rules`] order).
    pub policy: Policy,
    compiled: Vec<CompiledRule>,
    /// Plans by wiki id. FxHash: the key is a short string hashed once per decision, and
    /// SipHash's DoS resistance buys nothing for keys that come from the policy files.
    plans: rustc_hash::FxHashMap<String, WikiPlan>,
    fallback: WikiPlan,
    index: Index,
    /// Label → source index (for list sources) or rule index (for inline networks).
    label_owner: Vec<LabelOwner>,
    anon: Vec<AnonDb>,
    /// Anonymous-source bit → source index.
    anon_owner: Vec<usize>,
    asn: Option<MaxmindDb>,
    country: Option<MaxmindDb>,
    /// Every Spur feed's records in one table (bit `i` of a row: `feed_owner[i]` holds it).
    reputation: crate::sources::spur::SpurTable,
    /// Feed bit → source index.
    feed_owner: Vec<usize>,
    sources: Vec<SourceInfo>,
    version: String,
    has_xff: bool,
}

impl Snapshot {
    /// The rules, in definition order; [`Step::rule`] indexes this.
    pub fn rules(&self) -> &[Rule] {
        &self.policy.rules
    }

    /// A hash of the loaded files and data.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Loaded sources, in definition order.
    pub fn sources(&self) -> &[SourceInfo] {
        &self.sources
    }

    /// Whether any rule tests forwarded-for addresses (callers skip their facts otherwise).
    pub fn has_xff_rules(&self) -> bool {
        self.has_xff
    }

    /// Every Spur feed's records, merged (empty without a `spur-feed` source).
    pub fn reputation(&self) -> &crate::sources::spur::SpurTable {
        &self.reputation
    }

    fn plan(&self, wiki: &str) -> &WikiPlan {
        self.plans.get(wiki).unwrap_or(&self.fallback)
    }

    /// How an attempt on `wiki` is decided: the rules in evaluation order (locked, the wiki's
    /// file, the other global rules), then the default. A wiki without a file gets the
    /// locked and global rules and the global default.
    pub fn evaluation_order(&self, wiki: &str) -> EvaluationOrder<'_> {
        let plan = self.plan(wiki);
        EvaluationOrder {
            rules: plan.order.iter().map(|&i| i as usize).collect(),
            default: plan.default,
            default_from: plan.decided_by,
            default_message: &plan.message,
            default_appeal: &plan.appeal,
        }
    }
}

/// What [`Snapshot::evaluation_order`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationOrder<'s> {
    /// Indices into [`Snapshot::rules`], first evaluated first.
    pub rules: Vec<usize>,
    /// The verdict when no rule matches.
    pub default: Verdict,
    /// Whose default it is: [`DecidedBy::WikiDefault`], [`DecidedBy::GlobalDefault`] or
    /// [`DecidedBy::BuiltinDefault`].
    pub default_from: DecidedBy,
    /// The default's message key or text.
    pub default_message: &'s str,
    /// The default's appeal path (empty for `allow`).
    pub default_appeal: &'s str,
}

/// Decides one attempt, computing the IP facts and recording the full trace. This is what the
/// CLI, `explain` and the policy tests call; the server calls [`decide_with_facts`] with cached
/// facts and no trace.
pub fn decide<'s>(snapshot: &'s Snapshot, attempt: &Attempt, now: Timestamp) -> Decision<'s> {
    decide_computing_facts(snapshot, attempt, now, Trace::Record)
}

/// Like [`decide`] without the trace: the fast path, for callers that decide many attempts
/// without a cache (`editgate replay`).
pub fn decide_untraced<'s>(snapshot: &'s Snapshot, attempt: &Attempt, now: Timestamp) -> Decision<'s> {
    decide_computing_facts(snapshot, attempt, now, Trace::Skip)
}

fn decide_computing_facts<'s>(snapshot: &'s Snapshot, attempt: &Attempt, now: Timestamp, trace: Trace) -> Decision<'s> {
    let facts = snapshot.facts(attempt.ip());
    let xff = snapshot.forwarded_facts(attempt, |ip| snapshot.facts(ip));
    decide_with_facts(snapshot, attempt, &facts, &xff, now, trace)
}

/// Whether a decision records every rule it visits ([`Decision::trace`], for `explain`), or
/// takes the fast path that does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trace {
    /// Record the trace.
    Record,
    /// The fast path: no trace.
    Skip,
}

impl Snapshot {
    /// The facts of `attempt`'s forwarded-for chain, from `facts_of` (the snapshot's, or a
    /// cache's): none when no rule tests the chain ([`Snapshot::has_xff_rules`]), which is
    /// what [`decide_with_facts`] expects then.
    pub fn forwarded_facts(&self, attempt: &Attempt, facts_of: impl FnMut(IpAddr) -> Facts) -> Vec<Facts> {
        if !self.has_xff_rules() {
            return Vec::new();
        }
        attempt.forwarded_for().iter().copied().map(facts_of).collect()
    }
}

/// Decides one attempt from precomputed facts: `facts` for the client IP and `xff_facts` for
/// the forwarded-for chain ([`Snapshot::forwarded_facts`]). With [`Trace::Record`], every rule
/// visited is recorded in [`Decision::trace`].
pub fn decide_with_facts<'s>(
    snapshot: &'s Snapshot,
    attempt: &Attempt,
    facts: &Facts,
    xff_facts: &[Facts],
    now: Timestamp,
    trace: Trace,
) -> Decision<'s> {
    let plan = snapshot.plan(attempt.wiki());
    let age = attempt.account().age_secs(now);
    if trace == Trace::Skip {
        return decide_hot(snapshot, plan, attempt, facts, xff_facts, now, age);
    }
    let mut walk = Resolver::new(snapshot, true);
    for &i in &plan.order {
        let outcome = snapshot.evaluate(i, attempt, facts, xff_facts, age, now, walk.forwarded());
        if let Some(d) = walk.visit(i, outcome) {
            return d;
        }
    }
    walk.finish(plan)
}

fn default_decision<'s>(
    snapshot: &'s Snapshot,
    plan: &'s WikiPlan,
    shadow: Vec<&'s str>,
    trace: Vec<Step>,
) -> Decision<'s> {
    Decision {
        verdict: plan.default,
        decided_by: plan.decided_by,
        rule_id: "",
        message: &plan.message,
        reason: &plan.reason,
        appeal: &plan.appeal,
        shadow_rule_ids: shadow,
        policy_version: &snapshot.version,
        trace,
    }
}

fn rule_decision<'s>(snapshot: &'s Snapshot, i: u32, shadow: Vec<&'s str>, trace: Vec<Step>) -> Decision<'s> {
    let rule = &snapshot.policy.rules[i as usize];
    Decision {
        verdict: rule.verdict,
        decided_by: DecidedBy::Rule(i),
        rule_id: &rule.id,
        message: &rule.message,
        reason: &rule.description,
        appeal: &snapshot.compiled[i as usize].appeal,
        shadow_rule_ids: shadow,
        policy_version: &snapshot.version,
        trace,
    }
}
