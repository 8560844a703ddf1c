//! The compiled form of a policy: what a [`Snapshot`](super::Snapshot) holds besides its index
//! and data, the rules compiled against the index labels, one evaluation plan per wiki, and
//! the packed hot-path records. `compile` builds these types; `evaluate`, `hot` and `facts`
//! read them, and none of those depends on another for them.

use jiff::Timestamp;

use crate::decision::{DecidedBy, Verdict};
use crate::index::{Label, LabelMask};
use crate::policy::Cond;
use crate::sources::maxmind::MaxmindDb;

#[derive(Debug)]
pub(super) struct CompiledCond {
    /// `ip_in`: index labels and the masks of anonymous-source and feed bits.
    pub(super) ip_in: Option<IpIn>,
    /// `ip`: this table's inline networks.
    pub(super) ip: Option<Label>,
    /// `account`: mask of [`crate::attempt::AccountKind::bit`].
    pub(super) account: Option<u8>,
    /// The Spur reputation keys.
    pub(super) reputation: Option<ReputationCond>,
    pub(super) cond: Cond,
}

/// What `ip_in` names, compiled: list labels, MaxMind anonymous-source bits, Spur feed bits.
#[derive(Debug, Clone, Default)]
pub(super) struct IpIn {
    pub(super) labels: Vec<Label>,
    pub(super) anon: u64,
    pub(super) feeds: u8,
}

/// The Spur keys of a condition table, compiled against the snapshot's profiles: per list
/// key, one bit per profile that has a listed name (so a test is a bit lookup), and
/// `min_clients`.
#[derive(Debug, Default)]
pub(super) struct ReputationCond {
    pub(super) fields: Vec<(crate::sources::spur::Field, Vec<u64>)>,
    pub(super) min_clients: Option<u32>,
}

impl ReputationCond {
    /// The first key the row fails, if any.
    pub(super) fn fails(&self, row: &crate::sources::spur::Row) -> Option<crate::decision::CondKey> {
        use crate::decision::CondKey;
        let p = row.profile as usize;
        if let Some((field, _)) = self
            .fields
            .iter()
            .find(|(_, bits)| bits.get(p / 64).is_none_or(|w| w >> (p % 64) & 1 == 0))
        {
            return Some(CondKey::Reputation(*field));
        }
        self.min_clients
            .filter(|n| row.clients < *n)
            .map(|_| CondKey::MinClients)
    }

    /// The key named first, for an address the feeds do not hold.
    pub(super) fn first_key(&self) -> crate::decision::CondKey {
        use crate::decision::CondKey;
        self.fields
            .first()
            .map_or(CondKey::MinClients, |(f, _)| CondKey::Reputation(*f))
    }
}

#[derive(Debug)]
pub(super) struct CompiledRule {
    pub(super) when: CompiledCond,
    pub(super) unless: Option<CompiledCond>,
    pub(super) appeal: String,
    /// Forwarded-for addresses may satisfy `when`: `xff = true` on a refusing rule (the
    /// checker refuses it on an `allow` rule; this keeps a hand-built policy from loosening
    /// anything either).
    pub(super) xff: bool,
}

/// Evaluation order and default for one wiki (or for every wiki without a file).
#[derive(Debug)]
pub(super) struct WikiPlan {
    pub(super) order: Vec<u32>,
    /// `order` without the rules whose `when.account` excludes the kind, per
    /// [`crate::attempt::AccountKind`]: what the untraced hot path scans.
    pub(super) hot: [HotPlan; 3],
    pub(super) default: Verdict,
    pub(super) decided_by: DecidedBy,
    pub(super) reason: String,
    pub(super) message: String,
    pub(super) appeal: String,
}

#[derive(Debug)]
pub(super) struct AnonDb {
    pub(super) db: MaxmindDb,
    pub(super) mask: u8,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum LabelOwner {
    Source(usize),
    Rule(usize),
}

/// The hot-path view of one rule: the few fields that reject most requests, packed together
/// so that scanning a plan's rules stays in L1 cache. Only rules that pass these cheap IP
/// tests are checked in full with [`Snapshot::holds`].
#[derive(Debug)]
pub(super) struct HotRule {
    pub(super) rule: u32,
    /// Skipped from this time on (`Timestamp::MAX`: never).
    pub(super) expires: Timestamp,
    /// Forwarded-for addresses may satisfy `when` (see [`super::resolve`]).
    pub(super) xff: bool,
    /// `when.ip_in`: list labels, anonymous-source bits and feed bits.
    pub(super) ip_in: Option<(LabelMask, u64, u8)>,
    /// `when` tests Spur's reputation: only an address a feed holds can pass.
    pub(super) reputation: bool,
    /// `when.ip`: the rule's inline label.
    pub(super) ip: Option<LabelMask>,
    /// `when` edit-count bounds, inclusive (`0..=u64::MAX` when absent).
    pub(super) edits: (u64, u64),
    /// `when` account-age bounds in seconds, inclusive.
    pub(super) age: (i64, i64),
    /// `when.asn`, checked inline for rules without `xff` (a forwarded address may carry
    /// another ASN).
    pub(super) asn: Option<Box<[u32]>>,
}

/// A plan's rules for one account kind, with an inverted index from label to the rules that
/// need it, so that with thousands of IP rules a decision only visits the rules whose
/// networks contain the address (plus the rules without an IP requirement).
#[derive(Debug, Default)]
pub(super) struct HotPlan {
    pub(super) rules: Vec<HotRule>,
    /// Positions in `rules` that must always be visited: no `ip`/`ip_in` requirement, or
    /// `xff` (forwarded addresses have their own label sets).
    pub(super) always: Vec<u32>,
    /// Label → positions of the rules that require it, indexed by label (labels are dense
    /// small integers; an array index beat a hash lookup per label on the hot path).
    pub(super) by_label: Vec<Vec<u32>>,
    /// Positions of the rules whose `ip_in` names a MaxMind anonymous source.
    pub(super) anon: Vec<u32>,
    /// Positions of the rules that need an address a Spur feed holds (`ip_in` naming a feed,
    /// or a reputation key) and have no list or network to key them by.
    pub(super) feeds: Vec<u32>,
}

impl HotPlan {
    pub(super) fn new(rules: Vec<HotRule>, compiled: &[CompiledRule]) -> Self {
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
                (None, Some(ip_in)) => {
                    for l in &ip_in.labels {
                        key(&mut plan.by_label, *l, pos);
                    }
                    if ip_in.anon != 0 {
                        plan.anon.push(pos);
                    }
                    if ip_in.feeds != 0 {
                        plan.feeds.push(pos);
                    }
                }
                (None, None) if h.reputation => plan.feeds.push(pos),
                (None, None) => plan.always.push(pos),
            }
        }
        plan
    }

    /// The rules keyed by `label`.
    pub(super) fn keyed(&self, label: Label) -> &[u32] {
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
