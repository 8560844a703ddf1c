//! What a snapshot knows about an address: [`Facts`] for deciding (small and `Copy`, what
//! the server caches) and [`AddressReport`] in words, for `explain`.

use std::net::IpAddr;

use smallvec::SmallVec;

use super::Snapshot;
use super::compiled::LabelOwner;
use crate::index::SetId;
use crate::sources::maxmind::AnonFlag;
use crate::sources::spur::Field;

/// Per-IP facts: everything the engine needs to know about an address, computed with one index
/// lookup, one lookup per MaxMind database and one in the Spur feeds' table. Small and `Copy` so the server can cache it.
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
    /// The address's row in the Spur feeds' table, from 1 (0: no feed holds it).
    pub rep: u32,
}

/// What Spur's feeds say about an address, in words: the feeds that hold it, and per field
/// the names of the merged record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reputation {
    /// The feeds (`spur-feed` sources) holding it, in definition order.
    pub feeds: Vec<String>,
    /// Per field, the names, as the feed writes them.
    pub fields: Vec<(Field, Vec<String>)>,
    /// `client.count`.
    pub clients: u32,
}

impl Reputation {
    /// The names of `field`.
    pub fn names(&self, field: Field) -> &[String] {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map_or(&[], |(_, v)| v.as_slice())
    }
}

/// What `explain` says about an IP before any rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressReport {
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
    /// What Spur's feeds say about it.
    pub reputation: Option<Reputation>,
}

/// What the sources say about an address, answered with every decision: the sources that
/// hold it, the change tags they give attempts from it, and whether it is shared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressSummary<'s> {
    /// Sources holding the address (lists and MaxMind anonymous sources), in definition order.
    pub sources: SmallVec<[&'s str; 4]>,
    /// Their change tags, in definition order, each once.
    pub tags: SmallVec<[&'s str; 4]>,
    /// Whether any of them is `shared` (many people behind one address: no autoblocks).
    pub shared: bool,
    /// What Spur's feeds say about it, when one holds it.
    pub reputation: Option<Reputation>,
}

impl Snapshot {
    /// What Spur's feeds say about the address whose row is `rep` ([`Facts::rep`]).
    pub fn reputation_of(&self, rep: u32) -> Option<Reputation> {
        let row = self.reputation.row(rep)?;
        let profiles = &self.reputation.profiles;
        Some(Reputation {
            feeds: self
                .feed_owner
                .iter()
                .enumerate()
                .filter(|(bit, _)| row.feeds & (1 << bit) != 0)
                .map(|(_, &s)| self.sources[s].name.clone())
                .collect(),
            fields: Field::ALL
                .into_iter()
                .map(|f| (f, profiles.names_of(row.profile, f).map(str::to_owned).collect()))
                .collect(),
            clients: row.clients,
        })
    }

    /// What the sources say about the address whose facts are `f`: allocation-free for an
    /// address in up to four sources.
    pub fn address(&self, f: &Facts) -> AddressSummary<'_> {
        let labels = self.index.labels_of(f.set);
        if labels.is_empty() && f.anon == 0 && f.rep == 0 {
            return AddressSummary::default();
        }
        let feeds = self.reputation.row(f.rep).map_or(0, |r| r.feeds);
        let held = labels
            .iter()
            .filter_map(|&l| match self.label_owner.get(l as usize) {
                Some(LabelOwner::Source(s)) => Some(*s),
                _ => None,
            })
            .chain(
                self.anon_owner
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| f.anon & (1 << bit) != 0)
                    .map(|(_, &s)| s),
            )
            .chain(
                self.feed_owner
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| feeds & (1 << bit) != 0)
                    .map(|(_, &s)| s),
            );
        let mut out = AddressSummary {
            reputation: self.reputation_of(f.rep),
            ..AddressSummary::default()
        };
        let add = |s: usize| {
            let info = &self.sources[s];
            out.sources.push(info.name.as_str());
            if let Some(tag) = info.tag.as_deref()
                && !out.tags.contains(&tag)
            {
                out.tags.push(tag);
            }
            out.shared |= info.shared;
        };
        // In definition order, each once: through a bit set for the usual handful of sources
        // (no allocation of its own), a sorted list past 128 of them.
        if self.sources.len() <= 128 {
            let bits = held.fold(0u128, |bits, s| bits | 1 << s);
            (0..self.sources.len()).filter(|s| bits & 1 << s != 0).for_each(add);
        } else {
            let mut v: Vec<usize> = held.collect();
            v.sort_unstable();
            v.dedup();
            v.into_iter().for_each(add);
        }
        out
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
            rep: self.reputation.find(ip),
        }
    }

    /// Everything known about `ip`, in words, for `explain`.
    pub fn report(&self, ip: IpAddr) -> AddressReport {
        let mut out = AddressReport {
            ip: Some(ip),
            ..AddressReport::default()
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
        let rep = self.reputation.find(ip);
        if let Some(row) = self.reputation.row(rep) {
            for (bit, &owner) in self.feed_owner.iter().enumerate() {
                if row.feeds & (1 << bit) != 0 {
                    in_source[owner] = true;
                }
            }
        }
        out.reputation = self.reputation_of(rep);
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
}
