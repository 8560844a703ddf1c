//! The compiled [`Snapshot`] and [`decide`]: pure, infallible, no I/O.
//!
//! A snapshot is built once per (re)load from a checked [`Policy`] and the parsed source data,
//! then shared read-only by every request until the next reload swaps in a new one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};

use ipnet::IpNet;
use jiff::Timestamp;

use crate::attempt::Attempt;
use crate::decision::{CondKey, DecidedBy, Decision, Outcome, Step, Verdict};
use crate::index::{Index, IndexBuilder, Label, LabelMask, SetId};
use crate::pace::Pacer;
use crate::policy::{Cond, Mode, Policy, Rule, Stage};
use crate::sources::SourceKind;
use crate::sources::maxmind::{AnonFlag, MaxmindDb};

/// The parsed content of one source, ready to compile.
#[derive(Debug)]
pub enum SourceContent {
    /// A network list (`tor-exits`, `ip-list`).
    Networks(Vec<IpNet>),
    /// A verified MaxMind database.
    Maxmind(MaxmindDb),
}

/// One source's data as handed to [`Snapshot::build`], in the order of `policy.sources`.
#[derive(Debug)]
pub struct SourceData {
    /// The parsed content.
    pub content: SourceContent,
    /// When the data was last written (file modification time), for staleness.
    pub modified: Option<Timestamp>,
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
    /// When its data was written; `None` for a `url` source not fetched yet.
    pub modified: Option<Timestamp>,
    /// When the origin of a `url` source last confirmed the data unchanged (updated in place
    /// by the fetcher, so a "not modified" answer needs no rebuild).
    pub confirmed: Confirmed,
    /// Stale after this many seconds.
    pub max_age_secs: Option<i64>,
    /// Whether the source is fetched from a `url`.
    pub remote: bool,
    /// MaxMind `database_type`, for databases.
    pub database_type: Option<String>,
}

/// A timestamp that can move forward in a shared snapshot: milliseconds since the epoch, 0 for
/// never.
#[derive(Debug, Default)]
pub struct Confirmed(AtomicI64);

impl Clone for Confirmed {
    fn clone(&self) -> Self {
        Self(AtomicI64::new(self.0.load(Ordering::Relaxed)))
    }
}

impl Confirmed {
    /// Records a confirmation at `at` (never moves backwards).
    pub fn mark(&self, at: Timestamp) {
        self.0.fetch_max(at.as_millisecond(), Ordering::Relaxed);
    }

    /// The latest confirmation.
    pub fn get(&self) -> Option<Timestamp> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ms => Timestamp::from_millisecond(ms).ok(),
        }
    }
}

impl SourceInfo {
    /// When the data was last known current: written, or confirmed by its origin.
    pub fn fresh_at(&self) -> Option<Timestamp> {
        self.modified.max(self.confirmed.get())
    }

    /// Seconds since the data was last known current, when known.
    pub fn data_age_secs(&self, now: Timestamp) -> Option<f64> {
        self.fresh_at()
            .map(|m| (now.as_millisecond() - m.as_millisecond()).max(0) as f64 / 1000.0)
    }

    /// Whether a `url` source is still waiting for its first good fetch (it matches nothing).
    pub fn awaiting_first_fetch(&self) -> bool {
        self.remote && self.fresh_at().is_none()
    }

    /// Whether the data is older than `max_age`, or a `url` source has no data yet (reported
    /// in metrics and health; the data is still used).
    pub fn is_stale(&self, now: Timestamp) -> bool {
        match (self.data_age_secs(now), self.max_age_secs) {
            (Some(age), Some(max)) => age > max as f64,
            _ => self.awaiting_first_fetch(),
        }
    }
}

/// Per-IP facts: everything the engine needs to know about an address, computed with one index
/// lookup plus one lookup per MaxMind database. Small and `Copy` so the server can cache it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// Labels of every list source and inline network containing the IP.
    pub set: SetId,
    /// One bit per `maxmind-anonymous` source whose flags the IP carries.
    pub anon: u64,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// ISO country code.
    pub country: Option<[u8; 2]>,
}

#[derive(Debug)]
struct CompiledCond {
    /// `ip_in`: index labels and the mask of anonymous-source bits.
    ip_in: Option<(Vec<Label>, u64)>,
    /// `ip`: this table's inline networks.
    ip: Option<Label>,
    /// `account`: mask of [`crate::attempt::AccountKind::bit`].
    account: Option<u8>,
    cond: Cond,
}

#[derive(Debug)]
struct CompiledRule {
    when: CompiledCond,
    unless: Option<CompiledCond>,
    appeal: String,
}

/// The hot-path view of one rule: the few fields that reject most requests, packed together
/// so that scanning a plan's rules stays in L1 cache. Only rules that pass these cheap IP
/// tests are checked in full with [`Snapshot::holds`].
#[derive(Debug)]
struct HotRule {
    rule: u32,
    /// Skipped from this time on (`Timestamp::MAX`: never).
    expires: Timestamp,
    xff: bool,
    /// `when.ip_in`: list labels and anonymous-source bits.
    ip_in: Option<(LabelMask, u64)>,
    /// `when.ip`: the rule's inline label.
    ip: Option<LabelMask>,
    /// `when` edit-count bounds, inclusive (`0..=u64::MAX` when absent).
    edits: (u64, u64),
    /// `when` account-age bounds in seconds, inclusive.
    age: (i64, i64),
    /// `when.asn`, checked inline for rules without `xff` (a forwarded address may carry
    /// another ASN).
    asn: Option<Box<[u32]>>,
}

/// A plan's rules for one account kind, with an inverted index from label to the rules that
/// need it, so that with thousands of IP rules a decision only visits the rules whose
/// networks contain the address (plus the rules without an IP requirement).
#[derive(Debug, Default)]
struct HotPlan {
    rules: Vec<HotRule>,
    /// Positions in `rules` that must always be visited: no `ip`/`ip_in` requirement, or
    /// `xff` (forwarded addresses have their own label sets).
    always: Vec<u32>,
    /// Label → positions of the rules that require it, indexed by label (labels are dense
    /// small integers; an array index beat a hash lookup per label on the hot path).
    by_label: Vec<Vec<u32>>,
    /// Positions of the rules whose `ip_in` names a MaxMind anonymous source.
    anon: Vec<u32>,
}

/// Below this many rules a linear scan of the packed records beats the candidate merge.
const INVERTED_MIN_RULES: usize = 48;

impl HotPlan {
    fn new(rules: Vec<HotRule>, compiled: &[CompiledRule]) -> Self {
        let mut plan = HotPlan {
            rules,
            ..HotPlan::default()
        };
        for (pos, h) in plan.rules.iter().enumerate() {
            let pos = pos as u32;
            let when = &compiled[h.rule as usize].when;
            // Key each rule by its most selective IP requirement: its own inline networks,
            // else the lists of `ip_in`.
            match (when.ip, &when.ip_in) {
                _ if h.xff => plan.always.push(pos),
                (Some(label), _) => key(&mut plan.by_label, label, pos),
                (None, Some((labels, anon))) => {
                    for l in labels {
                        key(&mut plan.by_label, *l, pos);
                    }
                    if *anon != 0 {
                        plan.anon.push(pos);
                    }
                }
                (None, None) => plan.always.push(pos),
            }
        }
        plan
    }

    /// The rules keyed by `label`.
    fn keyed(&self, label: Label) -> &[u32] {
        self.by_label.get(label as usize).map_or(&[], Vec::as_slice)
    }
}

fn key(by_label: &mut Vec<Vec<u32>>, label: Label, pos: u32) {
    let i = label as usize;
    if by_label.len() <= i {
        by_label.resize_with(i + 1, Vec::new);
    }
    by_label[i].push(pos);
}

/// Evaluation order and default for one wiki (or for every wiki without a file).
#[derive(Debug)]
struct WikiPlan {
    order: Vec<u32>,
    /// `order` without the rules whose `when.account` excludes the kind, per
    /// [`crate::attempt::AccountKind`]: what the untraced hot path scans.
    hot: [HotPlan; 3],
    default: Verdict,
    decided_by: DecidedBy,
    reason: String,
    message: String,
    appeal: String,
}

#[derive(Debug)]
struct AnonDb {
    db: MaxmindDb,
    mask: u8,
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
    sources: Vec<SourceInfo>,
    version: String,
    has_xff: bool,
}

#[derive(Debug, Clone, Copy)]
enum LabelOwner {
    Source(usize),
    Rule(usize),
}

/// What `explain` says about an IP before any rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpFacts {
    /// The address.
    pub ip: Option<IpAddr>,
    /// Sources that contain it (lists and MaxMind anonymous sources), in definition order.
    pub sources: Vec<String>,
    /// Rules whose inline `ip` networks contain it.
    pub inline_rules: Vec<String>,
    /// ASN and organization.
    pub asn: Option<(u32, Option<String>)>,
    /// Country code.
    pub country: Option<String>,
    /// MaxMind Anonymous IP flags, per database source.
    pub maxmind_flags: Vec<(String, Vec<&'static str>)>,
}

impl Snapshot {
    /// Compiles a checked policy and its data. `data` follows `policy.sources`; a source whose
    /// content does not fit its kind is ignored (the loader never produces one). `version`
    /// identifies the inputs (see [`crate::load`]).
    pub fn build(policy: Policy, data: Vec<SourceData>, version: String) -> Self {
        Self::build_paced(policy, data, version, &mut Pacer::none())
    }

    /// [`Snapshot::build`], giving way at `pacer`'s points (see [`crate::pace`]).
    pub fn build_paced(policy: Policy, data: Vec<SourceData>, version: String, pacer: &mut Pacer<'_>) -> Self {
        let mut builder = IndexBuilder::new();
        let mut label_owner = Vec::new();
        let mut source_label: HashMap<&str, Label> = HashMap::new();
        let mut anon_bit: HashMap<&str, u64> = HashMap::new();
        let mut anon = Vec::new();
        let mut anon_owner = Vec::new();
        let mut asn = None;
        let mut country = None;
        let mut sources = Vec::new();
        for (i, (def, d)) in policy.sources.iter().zip(data).enumerate() {
            let mut info = SourceInfo {
                name: def.name.clone(),
                kind: def.kind,
                entries: 0,
                modified: d.modified,
                confirmed: Confirmed::default(),
                max_age_secs: def.max_age_secs,
                remote: def.remote.is_some(),
                database_type: None,
            };
            match (def.kind, d.content) {
                (SourceKind::TorExits | SourceKind::IpList, SourceContent::Networks(nets)) => {
                    let label = label_owner.len() as Label;
                    label_owner.push(LabelOwner::Source(i));
                    builder.reserve_label(label);
                    info.entries = nets.len();
                    for (j, n) in nets.into_iter().enumerate() {
                        pacer.tick(j);
                        builder.add(n, label);
                    }
                    source_label.insert(&def.name, label);
                }
                (kind, SourceContent::Maxmind(db)) => {
                    info.database_type = Some(db.database_type().to_owned());
                    match kind {
                        SourceKind::MaxmindAnonymous => {
                            anon_bit.insert(&def.name, 1u64 << anon.len());
                            anon.push(AnonDb {
                                db,
                                mask: def.flag_mask(),
                            });
                            anon_owner.push(i);
                        }
                        SourceKind::MaxmindAsn => asn = Some(db),
                        SourceKind::MaxmindCountry => country = Some(db),
                        SourceKind::TorExits | SourceKind::IpList => {}
                    }
                }
                (_, SourceContent::Networks(_)) => {}
            }
            sources.push(info);
        }

        let mut compile = |c: &Cond, rule: usize| -> CompiledCond {
            let ip_in = c.ip_in.as_ref().map(|names| {
                let labels = names
                    .iter()
                    .filter_map(|n| source_label.get(n.as_str()).copied())
                    .collect();
                let mask = names
                    .iter()
                    .filter_map(|n| anon_bit.get(n.as_str()))
                    .fold(0, |m, b| m | b);
                (labels, mask)
            });
            let ip = c.ip.as_ref().map(|nets| {
                let label = label_owner.len() as Label;
                label_owner.push(LabelOwner::Rule(rule));
                builder.reserve_label(label);
                for n in nets {
                    builder.add(*n, label);
                }
                label
            });
            CompiledCond {
                ip_in,
                ip,
                account: c.account.as_ref().map(|ks| ks.iter().fold(0, |m, k| m | k.bit())),
                cond: c.clone(),
            }
        };
        let global_appeal = policy.settings.appeal.clone().unwrap_or_default();
        let mut compiled = Vec::with_capacity(policy.rules.len());
        for (i, r) in policy.rules.iter().enumerate() {
            let wiki_appeal = match &r.stage {
                Stage::Wiki(w) => policy.wikis.get(w).and_then(|p| p.settings.appeal.clone()),
                _ => None,
            };
            let appeal = if r.verdict == Verdict::Allow {
                String::new()
            } else if !r.appeal.is_empty() {
                r.appeal.clone()
            } else {
                wiki_appeal.unwrap_or_else(|| global_appeal.clone())
            };
            compiled.push(CompiledRule {
                when: compile(&r.when, i),
                unless: r.unless.as_ref().map(|u| compile(u, i)),
                appeal,
            });
        }

        let stage_rules = |stage: &Stage| -> Vec<u32> {
            policy
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.stage == *stage)
                .map(|(i, _)| i as u32)
                .collect()
        };
        let locked = stage_rules(&Stage::Locked);
        let global = stage_rules(&Stage::Global);
        let global_default = policy.settings.default;
        let plan = |wiki: Option<&str>| -> WikiPlan {
            let mut order = locked.clone();
            let wiki_settings = wiki.and_then(|w| policy.wikis.get(w)).map(|p| &p.settings);
            if let Some(w) = wiki {
                order.extend(stage_rules(&Stage::Wiki(w.to_owned())));
            }
            order.extend(&global);
            let (default, decided_by, reason) = match (wiki_settings.and_then(|s| s.default), global_default) {
                (Some(v), _) => (
                    v,
                    DecidedBy::WikiDefault,
                    format!(
                        "no rule matched; the default of wiki `{}` applies",
                        wiki.unwrap_or_default()
                    ),
                ),
                (None, Some(v)) => (
                    v,
                    DecidedBy::GlobalDefault,
                    "no rule matched; the global default applies".to_owned(),
                ),
                (None, None) => (Verdict::Allow, DecidedBy::BuiltinDefault, "no rule matched".to_owned()),
            };
            let message = wiki_settings
                .and_then(|s| s.default_message.clone())
                .or_else(|| policy.settings.default_message.clone())
                .unwrap_or_default();
            let appeal = if default == Verdict::Allow {
                String::new()
            } else {
                wiki_settings
                    .and_then(|s| s.appeal.clone())
                    .unwrap_or_else(|| global_appeal.clone())
            };
            let hot = crate::attempt::AccountKind::ALL.map(|kind| {
                let rules = order
                    .iter()
                    .filter(|&&i| compiled[i as usize].when.account.is_none_or(|m| m & kind.bit() != 0))
                    .map(|&i| {
                        let (r, c) = (&policy.rules[i as usize], &compiled[i as usize].when);
                        HotRule {
                            rule: i,
                            expires: r.expires.unwrap_or(Timestamp::MAX),
                            xff: r.xff,
                            ip_in: c.ip_in.as_ref().map(|(labels, anon)| (LabelMask::new(labels), *anon)),
                            ip: c.ip.map(|l| LabelMask::new(&[l])),
                            edits: (c.cond.min_edits.unwrap_or(0), c.cond.max_edits.unwrap_or(u64::MAX)),
                            age: (c.cond.min_age.unwrap_or(i64::MIN), c.cond.max_age.unwrap_or(i64::MAX)),
                            asn: c
                                .cond
                                .asn
                                .as_ref()
                                .filter(|_| !r.xff)
                                .map(|a| a.clone().into_boxed_slice()),
                        }
                    })
                    .collect();
                HotPlan::new(rules, &compiled)
            });
            WikiPlan {
                order,
                hot,
                default,
                decided_by,
                reason,
                message,
                appeal,
            }
        };
        let plans = policy.wikis.keys().map(|w| (w.clone(), plan(Some(w)))).collect();
        let fallback = plan(None);
        let has_xff = policy.rules.iter().any(|r| r.xff);
        Self {
            index: builder.build_paced(pacer),
            policy,
            compiled,
            plans,
            fallback,
            label_owner,
            anon,
            anon_owner,
            asn,
            country,
            sources,
            version,
            has_xff,
        }
    }

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

    /// The prefix index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Whether any rule tests forwarded-for addresses (callers skip their facts otherwise).
    pub fn has_xff_rules(&self) -> bool {
        self.has_xff
    }

    /// The facts about `ip` (normalized by the caller, see [`crate::attempt::normalize_ip`]).
    pub fn facts(&self, ip: IpAddr) -> Facts {
        let mut anon = 0u64;
        for (bit, a) in self.anon.iter().enumerate() {
            if a.db.anon_flags(ip) & a.mask != 0 {
                anon |= 1 << bit;
            }
        }
        Facts {
            set: self.index.lookup(ip),
            anon,
            asn: self.asn.as_ref().and_then(|db| db.asn(ip)).map(|(n, _)| n),
            country: self.country.as_ref().and_then(|db| db.country(ip)),
        }
    }

    /// Everything known about `ip`, in words, for `explain`.
    pub fn ip_facts(&self, ip: IpAddr) -> IpFacts {
        let mut out = IpFacts {
            ip: Some(ip),
            ..IpFacts::default()
        };
        let mut in_source = vec![false; self.sources.len()];
        for &label in self.index.labels_of(self.index.lookup(ip)) {
            match self.label_owner.get(label as usize) {
                Some(LabelOwner::Source(s)) => in_source[*s] = true,
                Some(LabelOwner::Rule(r)) => {
                    let id = &self.policy.rules[*r].id;
                    if !out.inline_rules.contains(id) {
                        out.inline_rules.push(id.clone());
                    }
                }
                None => {}
            }
        }
        // One lookup per database: membership follows from the flags, as in `facts`.
        for (bit, a) in self.anon.iter().enumerate() {
            let flags = a.db.anon_flags(ip);
            let owner = self.anon_owner[bit];
            if flags & a.mask != 0 {
                in_source[owner] = true;
            }
            out.maxmind_flags
                .push((self.sources[owner].name.clone(), AnonFlag::names(flags)));
        }
        out.sources = self
            .sources
            .iter()
            .zip(in_source)
            .filter(|(_, hit)| *hit)
            .map(|(s, _)| s.name.clone())
            .collect();
        out.asn = self.asn.as_ref().and_then(|db| db.asn(ip));
        out.country = self
            .country
            .as_ref()
            .and_then(|db| db.country(ip))
            .map(|c| String::from_utf8_lossy(&c).into_owned());
        out
    }

    fn plan(&self, wiki: &str) -> &WikiPlan {
        self.plans.get(wiki).unwrap_or(&self.fallback)
    }

    fn ip_keys(&self, c: &CompiledCond, f: &Facts) -> Result<(), CondKey> {
        if let Some((labels, mask)) = &c.ip_in
            && f.anon & mask == 0
            && !labels.iter().any(|l| self.index.contains(f.set, *l))
        {
            return Err(CondKey::IpIn);
        }
        if let Some(l) = c.ip
            && !self.index.contains(f.set, l)
        {
            return Err(CondKey::Ip);
        }
        if let Some(asns) = &c.cond.asn
            && !f.asn.is_some_and(|a| asns.contains(&a))
        {
            return Err(CondKey::Asn);
        }
        if let Some(cs) = &c.cond.country
            && !f.country.is_some_and(|x| cs.contains(&x))
        {
            return Err(CondKey::Country);
        }
        Ok(())
    }

    /// Evaluates a condition table; `Err` names the first key that failed.
    fn holds(
        &self,
        c: &CompiledCond,
        xff: bool,
        a: &Attempt,
        f: &Facts,
        xf: &[Facts],
        age: i64,
    ) -> Result<(), CondKey> {
        let k = &c.cond;
        let acct = a.account();
        let any = |want: &Option<Vec<String>>, have: &[String]| {
            want.as_ref()
                .is_none_or(|w| w.iter().any(|x| have.iter().any(|h| h.eq_ignore_ascii_case(x))))
        };
        if c.account.is_some_and(|m| m & acct.kind.bit() == 0) {
            return Err(CondKey::Account);
        }
        if k.actions.as_ref().is_some_and(|w| !w.iter().any(|x| x == a.action())) {
            return Err(CondKey::Actions);
        }
        if k.wikis.as_ref().is_some_and(|w| !w.iter().any(|x| x == a.wiki())) {
            return Err(CondKey::Wikis);
        }
        if k.min_edits.is_some_and(|n| acct.edit_count < n) {
            return Err(CondKey::MinEdits);
        }
        if k.max_edits.is_some_and(|n| acct.edit_count > n) {
            return Err(CondKey::MaxEdits);
        }
        if k.min_age.is_some_and(|s| age < s) {
            return Err(CondKey::MinAge);
        }
        if k.max_age.is_some_and(|s| age > s) {
            return Err(CondKey::MaxAge);
        }
        if k.email_confirmed.is_some_and(|e| acct.email_confirmed != e) {
            return Err(CondKey::EmailConfirmed);
        }
        if !any(&k.groups, &acct.groups) {
            return Err(CondKey::Groups);
        }
        if !any(&k.rights, &acct.rights) {
            return Err(CondKey::Rights);
        }
        let first = self.ip_keys(c, f);
        if first.is_ok() || !xff {
            return first;
        }
        if xf.iter().any(|x| self.ip_keys(c, x).is_ok()) {
            Ok(())
        } else {
            first
        }
    }
}

impl Snapshot {
    /// What rule `i` does with an attempt: the one evaluation both decision paths share
    /// (the hot path only calls it for rules its packed pre-checks did not reject).
    fn evaluate(&self, i: u32, attempt: &Attempt, facts: &Facts, xff: &[Facts], age: i64, now: Timestamp) -> Outcome {
        let rule = &self.policy.rules[i as usize];
        let c = &self.compiled[i as usize];
        if rule.expires.is_some_and(|t| t <= now) {
            return Outcome::Expired;
        }
        match self.holds(&c.when, rule.xff, attempt, facts, xff, age) {
            Err(key) => Outcome::WhenFailed(key),
            Ok(()) => match &c.unless {
                Some(u) if self.holds(u, rule.xff, attempt, facts, xff, age).is_ok() => {
                    Outcome::Unless(first_key(&u.cond))
                }
                _ if rule.mode == Mode::Shadow => Outcome::ShadowMatched,
                _ => Outcome::Matched,
            },
        }
    }
}

/// The first key present in a table, to say which part of an `unless` exempted.
fn first_key(c: &Cond) -> Option<CondKey> {
    [
        (c.account.is_some(), CondKey::Account),
        (c.actions.is_some(), CondKey::Actions),
        (c.wikis.is_some(), CondKey::Wikis),
        (c.min_edits.is_some(), CondKey::MinEdits),
        (c.max_edits.is_some(), CondKey::MaxEdits),
        (c.min_age.is_some(), CondKey::MinAge),
        (c.max_age.is_some(), CondKey::MaxAge),
        (c.email_confirmed.is_some(), CondKey::EmailConfirmed),
        (c.groups.is_some(), CondKey::Groups),
        (c.rights.is_some(), CondKey::Rights),
        (c.ip_in.is_some(), CondKey::IpIn),
        (c.ip.is_some(), CondKey::Ip),
        (c.asn.is_some(), CondKey::Asn),
        (c.country.is_some(), CondKey::Country),
    ]
    .into_iter()
    .find(|(present, _)| *present)
    .map(|(_, k)| k)
}

/// Decides one attempt, computing the IP facts and recording the full trace. This is what the
/// CLI, `explain` and the policy tests call; the server calls [`decide_with_facts`] with cached
/// facts and no trace.
pub fn decide<'s>(snapshot: &'s Snapshot, attempt: &Attempt, now: Timestamp) -> Decision<'s> {
    decide_computing_facts(snapshot, attempt, now, true)
}

/// Like [`decide`] without the trace: the fast path, for callers that decide many attempts
/// without a cache (`editgate replay`).
pub fn decide_untraced<'s>(snapshot: &'s Snapshot, attempt: &Attempt, now: Timestamp) -> Decision<'s> {
    decide_computing_facts(snapshot, attempt, now, false)
}

fn decide_computing_facts<'s>(snapshot: &'s Snapshot, attempt: &Attempt, now: Timestamp, trace: bool) -> Decision<'s> {
    let facts = snapshot.facts(attempt.ip());
    let xff: Vec<Facts> = if snapshot.has_xff_rules() {
        attempt.forwarded_for().iter().map(|ip| snapshot.facts(*ip)).collect()
    } else {
        Vec::new()
    };
    decide_with_facts(snapshot, attempt, &facts, &xff, now, trace)
}

/// Decides one attempt from precomputed facts: `facts` for the client IP and `xff_facts` for
/// the forwarded-for chain (may be empty when [`Snapshot::has_xff_rules`] is false). With
/// `trace`, every rule visited is recorded in [`Decision::trace`].
pub fn decide_with_facts<'s>(
    snapshot: &'s Snapshot,
    attempt: &Attempt,
    facts: &Facts,
    xff_facts: &[Facts],
    now: Timestamp,
    trace: bool,
) -> Decision<'s> {
    let plan = snapshot.plan(attempt.wiki());
    let age = attempt.account().age_secs(now);
    if !trace {
        return decide_hot(snapshot, plan, attempt, facts, xff_facts, now, age);
    }
    let mut steps = Vec::new();
    let mut shadow = Vec::new();
    for &i in &plan.order {
        let outcome = snapshot.evaluate(i, attempt, facts, xff_facts, age, now);
        steps.push(Step { rule: i, outcome });
        match outcome {
            Outcome::ShadowMatched => shadow.push(snapshot.policy.rules[i as usize].id.as_str()),
            Outcome::Matched => return rule_decision(snapshot, i, shadow, steps),
            _ => {}
        }
    }
    default_decision(snapshot, plan, shadow, steps)
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

/// The untraced path: scans the plan's packed rules for this account kind, rejecting on the
/// cheap IP tests first, and checks survivors in full. Gives the same decision as the traced
/// path (a test compares them), which reports every rule in evaluation order.
fn decide_hot<'s>(
    snapshot: &'s Snapshot,
    plan: &'s WikiPlan,
    attempt: &Attempt,
    facts: &Facts,
    xff_facts: &[Facts],
    now: Timestamp,
    age: i64,
) -> Decision<'s> {
    let index = &snapshot.index;
    let ip_ok = |h: &HotRule, f: &Facts| {
        h.ip_in
            .as_ref()
            .is_none_or(|(m, anon)| f.anon & anon != 0 || index.intersects(f.set, m))
            && h.ip.as_ref().is_none_or(|m| index.intersects(f.set, m))
    };
    let hot = &plan.hot[attempt.account().kind as usize];
    let mut shadow = Vec::new();
    let edits = attempt.account().edit_count;
    let visit = |h: &HotRule, shadow: &mut Vec<&'s str>| -> Option<u32> {
        // Cheap rejections first, from the packed record; survivors are checked in full.
        if edits < h.edits.0
            || edits > h.edits.1
            || age < h.age.0
            || age > h.age.1
            || h.asn
                .as_ref()
                .is_some_and(|a| !facts.asn.is_some_and(|x| a.contains(&x)))
            || h.expires <= now
            || !(ip_ok(h, facts) || h.xff && xff_facts.iter().any(|x| ip_ok(h, x)))
        {
            return None;
        }
        match snapshot.evaluate(h.rule, attempt, facts, xff_facts, age, now) {
            Outcome::Matched => Some(h.rule),
            Outcome::ShadowMatched => {
                shadow.push(snapshot.policy.rules[h.rule as usize].id.as_str());
                None
            }
            _ => None,
        }
    };
    if hot.rules.len() < INVERTED_MIN_RULES {
        for h in &hot.rules {
            if let Some(i) = visit(h, &mut shadow) {
                return rule_decision(snapshot, i, shadow, Vec::new());
            }
        }
        return default_decision(snapshot, plan, shadow, Vec::new());
    }
    // Candidates in evaluation order: the rules without an IP requirement, plus those keyed
    // by a label the address carries (or by an anonymous source it is in).
    let labels = index.labels_of(facts.set);
    if labels.is_empty() && facts.anon == 0 {
        for &pos in &hot.always {
            if let Some(i) = visit(&hot.rules[pos as usize], &mut shadow) {
                return rule_decision(snapshot, i, shadow, Vec::new());
            }
        }
        return default_decision(snapshot, plan, shadow, Vec::new());
    }
    // The candidate lists (each sorted by position) are merged on the fly, smallest head
    // first, so nothing is copied or sorted and the first match stops the walk. Copying
    // `always` into a sorted buffer per decision cost more than the rule checks themselves on
    // the 1M-prefix bench (hit: 107 → 69 ns mean). An address in more lists than fit here
    // (many overlapping sources) takes a per-thread buffer instead.
    const MAX_LISTS: usize = 8;
    let mut lists: [&[u32]; MAX_LISTS] = [&[]; MAX_LISTS];
    let mut k = 0;
    let mut extra = [&hot.always[..], if facts.anon != 0 { &hot.anon[..] } else { &[] }]
        .into_iter()
        .chain(labels.iter().map(|l| hot.keyed(*l)))
        .filter(|l| !l.is_empty());
    for l in extra.by_ref() {
        if k == MAX_LISTS {
            return decide_from_buffer(snapshot, plan, hot, labels, facts, shadow, visit);
        }
        lists[k] = l;
        k += 1;
    }
    let mut last = u32::MAX;
    loop {
        let mut best: Option<usize> = None;
        for (j, l) in lists[..k].iter().enumerate() {
            if let Some(&v) = l.first()
                && best.is_none_or(|b| v < lists[b][0])
            {
                best = Some(j);
            }
        }
        let Some(j) = best else { break };
        let pos = lists[j][0];
        lists[j] = &lists[j][1..];
        if pos == last {
            continue;
        }
        last = pos;
        if let Some(i) = visit(&hot.rules[pos as usize], &mut shadow) {
            return rule_decision(snapshot, i, shadow, Vec::new());
        }
    }
    default_decision(snapshot, plan, shadow, Vec::new())
}

/// [`decide_hot`] for an address in more candidate lists than its merge holds: the lists are
/// concatenated in a per-thread buffer, sorted and deduplicated.
fn decide_from_buffer<'s>(
    snapshot: &'s Snapshot,
    plan: &'s WikiPlan,
    hot: &HotPlan,
    labels: &[Label],
    facts: &Facts,
    mut shadow: Vec<&'s str>,
    visit: impl Fn(&HotRule, &mut Vec<&'s str>) -> Option<u32>,
) -> Decision<'s> {
    thread_local! {
        static CANDIDATES: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let decided = CANDIDATES.with(|buf| {
        let mut candidates = buf.borrow_mut();
        candidates.clear();
        candidates.extend_from_slice(&hot.always);
        for l in labels {
            candidates.extend_from_slice(hot.keyed(*l));
        }
        if facts.anon != 0 {
            candidates.extend_from_slice(&hot.anon);
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .iter()
            .find_map(|&pos| visit(&hot.rules[pos as usize], &mut shadow))
    });
    match decided {
        Some(i) => rule_decision(snapshot, i, shadow, Vec::new()),
        None => default_decision(snapshot, plan, shadow, Vec::new()),
    }
}
