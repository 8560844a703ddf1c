//! Spur's anonymous-IP feeds (`anonymous`, `anonymous-residential`): newline-delimited JSON,
//! one IP context a line, gzipped or not, as Spur publishes them. Read as a stream: a feed of
//! millions of records is never whole in memory, only the table built from it.
//!
//! What a record says that rules can test is its *profile*: the tunnel operators and types,
//! the risks, the client behaviours, proxies and types, the infrastructure and the services;
//! and its client count. Many addresses share a profile, so each distinct profile is stored
//! once and an address holds its profile's number and its count. Records for the same address
//! are merged as Spur's own tools merge them: lists are joined, a later non-empty count or
//! infrastructure wins. Fields the schema does not know are ignored; a line that is not a
//! record, or a record without a valid address, is an error at its line.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;

use serde::Deserialize;

use super::{ParseError, snippet};
use crate::pace::Pacer;

/// The longest line read: a real record is a few hundred bytes to a few kilobytes.
pub const MAX_LINE: usize = 1 << 20;

/// What rules can test of a record, each a list of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `tunnels[].operator`: `NORD_VPN`, `OXYLABS_PROXY`, …
    TunnelOperators,
    /// `tunnels[].type`: `VPN`, `PROXY`, `TOR`, …
    TunnelTypes,
    /// `risks`: `CALLBACK_PROXY`, `GEO_MISMATCH`, `TUNNEL`, …
    Risks,
    /// `client.behaviors`: `FILE_SHARING`, `TOR_PROXY_USER`, …
    ClientBehaviors,
    /// `client.proxies`: the residential proxy networks the clients belong to.
    ClientProxies,
    /// `client.types`: `DESKTOP`, `MOBILE`, …
    ClientTypes,
    /// `infrastructure`: `DATACENTER`, `MOBILE`, …
    Infrastructure,
    /// `services`: `OPENVPN`, `IPSEC`, …
    Services,
}

impl Field {
    /// Every field, in the order profiles store them.
    pub const ALL: [Field; 8] = [
        Self::TunnelOperators,
        Self::TunnelTypes,
        Self::Risks,
        Self::ClientBehaviors,
        Self::ClientProxies,
        Self::ClientTypes,
        Self::Infrastructure,
        Self::Services,
    ];

    /// The condition key that tests it.
    pub fn key(self) -> &'static str {
        match self {
            Self::TunnelOperators => "tunnel_operators",
            Self::TunnelTypes => "tunnel_types",
            Self::Risks => "risks",
            Self::ClientBehaviors => "client_behaviors",
            Self::ClientProxies => "client_proxies",
            Self::ClientTypes => "client_types",
            Self::Infrastructure => "infrastructure",
            Self::Services => "services",
        }
    }
}

/// One distinct combination of names: per [`Field`], the interned names, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Profile([Box<[u32]>; 8]);

impl Profile {
    /// The interned names of `field`.
    pub fn names(&self, field: Field) -> &[u32] {
        &self.0[field as usize]
    }

    fn union(&self, other: &Profile) -> Profile {
        Profile(std::array::from_fn(|i| {
            let mut v: Vec<u32> = self.0[i].iter().chain(other.0[i].iter()).copied().collect();
            v.sort_unstable();
            v.dedup();
            v.into_boxed_slice()
        }))
    }
}

/// The names and profiles of a feed, each stored once.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    names: Vec<Box<str>>,
    name_ids: HashMap<Box<str>, u32>,
    list: Vec<Profile>,
    ids: HashMap<Profile, u32>,
}

impl Profiles {
    fn name(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.name_ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.name_ids.insert(s.into(), id);
        id
    }

    fn intern(&mut self, p: Profile) -> u32 {
        if let Some(&id) = self.ids.get(&p) {
            return id;
        }
        let id = self.list.len() as u32;
        self.list.push(p.clone());
        self.ids.insert(p, id);
        id
    }

    /// Profile `id`.
    pub fn get(&self, id: u32) -> &Profile {
        &self.list[id as usize]
    }

    /// Every profile, by id.
    pub fn all(&self) -> &[Profile] {
        &self.list
    }

    /// The name interned as `id`.
    pub fn name_of(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// The names of `field` in profile `id`, as written in the feed.
    pub fn names_of(&self, id: u32, field: Field) -> impl Iterator<Item = &str> {
        self.get(id).names(field).iter().map(|&n| self.name_of(n))
    }

    /// Every distinct name the feed uses for `field`.
    pub fn vocabulary(&self, field: Field) -> Vec<&str> {
        let mut ids: Vec<u32> = self.list.iter().flat_map(|p| p.names(field).iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|n| self.name_of(n)).collect()
    }

    /// `p` of `from`, in this table's names.
    fn adopt(&mut self, from: &Profiles, p: &Profile) -> Profile {
        Profile(std::array::from_fn(|i| {
            let mut v: Vec<u32> = p.0[i].iter().map(|&n| self.name(from.name_of(n))).collect();
            v.sort_unstable();
            v.dedup();
            v.into_boxed_slice()
        }))
    }
}

/// What one address has: its profile and client count, and (in a merged table) which feeds
/// hold it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Row {
    /// The profile's id.
    pub profile: u32,
    /// `client.count`.
    pub clients: u32,
    /// Bit `i`: feed `i` of a merged table holds the address (bit 0 in one feed's table).
    /// Never 0 in a row of the table: an empty slot is one with `feeds == 0`.
    pub feeds: u8,
}

/// The feeds' addresses with their rows, IPv4 and IPv6 apart, in exact-match tables (a
/// lookup is an exact address, never a prefix).
#[derive(Debug, Clone, Default)]
pub struct SpurTable {
    v4: Exact<u32>,
    v6: Exact<u128>,
    /// The names and profiles the rows refer to.
    pub profiles: Profiles,
}

impl SpurTable {
    /// Addresses in the table.
    pub fn len(&self) -> usize {
        self.v4.len + self.v6.len
    }

    /// Whether the table holds no address.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row of `ip`'s record, as a number from 1 (0: none): what [`crate::engine::Facts`]
    /// keeps. `ip` is normalized by the caller (IPv4-mapped IPv6 as IPv4).
    #[inline]
    pub fn find(&self, ip: IpAddr) -> u32 {
        // Both tables' slots together stay far below 2^32: a feed with billions of addresses
        // would need hundreds of gigabytes before it got here.
        match ip {
            IpAddr::V4(a) => self.v4.find(u32::from(a)).map_or(0, |i| i as u32 + 1),
            IpAddr::V6(a) => self
                .v6
                .find(u128::from(a))
                .map_or(0, |i| (self.v4.slots.len() + i) as u32 + 1),
        }
    }

    /// Row `n` (from [`SpurTable::find`]).
    #[inline]
    pub fn row(&self, n: u32) -> Option<&Row> {
        let i = (n as usize).checked_sub(1)?;
        let row = match i.checked_sub(self.v4.slots.len()) {
            None => &self.v4.slots[i].row,
            Some(j) => &self.v6.slots.get(j)?.row,
        };
        (row.feeds != 0).then_some(row)
    }

    /// Approximate heap bytes held by the table (not counting the profiles).
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }

    /// One table of several feeds' (bit `i` of a row's `feeds` for `feeds[i]`; at most 8): an
    /// address in several has the union of their profiles and the count of the last that
    /// gives one.
    pub fn merged(feeds: Vec<SpurTable>, pacer: &mut Pacer<'_>) -> SpurTable {
        let mut feeds = feeds.into_iter();
        let Some(first) = feeds.next() else {
            return SpurTable::default();
        };
        let mut out = first;
        for (i, next) in feeds.enumerate() {
            out = merge_two(out, next, 1u8 << (i + 1), pacer);
        }
        out
    }
}

/// An address of an [`Exact`] table.
trait Key: Copy + Ord + Default {
    /// The key mixed into 64 bits whose high bits depend on every bit of the key.
    fn spread(self) -> u64;
}

/// 2^64 divided by the golden ratio (Fibonacci hashing).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Key for u32 {
    #[inline]
    fn spread(self) -> u64 {
        u64::from(self).wrapping_mul(GOLDEN)
    }
}

impl Key for u128 {
    #[inline]
    fn spread(self) -> u64 {
        // The network half is rotated so that addresses differing in either half spread.
        ((self as u64) ^ ((self >> 64) as u64).rotate_left(32)).wrapping_mul(GOLDEN)
    }
}

/// One slot of an [`Exact`] table: an address and its row side by side.
#[derive(Debug, Clone, Copy, Default)]
struct Slot<K> {
    key: K,
    row: Row,
}

/// An exact-match table: open addressing with linear probing over slots that hold the
/// address and its row together, at most 60% full.
///
/// Written by hand because a general hash map (hashbrown, std's) keeps its control bytes apart
/// from its entries: in a table of millions of addresses, far larger than any cache, a lookup
/// there costs a cache miss on the control bytes, one on the entry and one on the row it
/// points to (a p99 of 1.4 µs for an address in a 5M-record feed, as did a binary search);
/// here one on the slot, rarely two. The keys are the feed's, never a client's: a client
/// chooses only which probe run its address falls into, and at 60% load the longest run in a
/// table of millions is a few dozen slots.
#[derive(Debug, Clone, Default)]
struct Exact<K> {
    slots: Box<[Slot<K>]>,
    len: usize,
}

impl<K: Key> Exact<K> {
    /// A table of `entries` (distinct keys, each with a row whose `feeds` is not 0).
    fn build(entries: Vec<(K, Row)>, pacer: &mut Pacer<'_>) -> Self {
        if entries.is_empty() {
            return Self::default();
        }
        let n = entries.len() + entries.len() * 2 / 3 + 1;
        let mut slots = vec![Slot::default(); n].into_boxed_slice();
        for (i, (key, row)) in entries.iter().enumerate() {
            pacer.tick(i);
            debug_assert!(row.feeds != 0, "a row of the table has a feed");
            let mut at = Self::home(key.spread(), n);
            while slots[at].row.feeds != 0 {
                at = if at + 1 == n { 0 } else { at + 1 };
            }
            slots[at] = Slot { key: *key, row: *row };
        }
        Self {
            slots,
            len: entries.len(),
        }
    }

    /// The slot a probe starts at: the high bits of the spread key scaled to `n`.
    #[inline]
    fn home(spread: u64, n: usize) -> usize {
        ((u128::from(spread) * n as u128) >> 64) as usize
    }

    /// The slot holding `key`.
    #[inline]
    fn find(&self, key: K) -> Option<usize> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let mut at = Self::home(key.spread(), n);
        loop {
            let slot = &self.slots[at];
            if slot.row.feeds == 0 {
                return None;
            }
            if slot.key == key {
                return Some(at);
            }
            at = if at + 1 == n { 0 } else { at + 1 };
        }
    }

    /// The entries, sorted by key (to merge tables).
    fn sorted(&self) -> Vec<(K, Row)> {
        let mut v: Vec<(K, Row)> = self
            .slots
            .iter()
            .filter(|s| s.row.feeds != 0)
            .map(|s| (s.key, s.row))
            .collect();
        v.sort_unstable_by_key(|(k, _)| *k);
        v
    }

    fn heap_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot<K>>()
    }
}

fn merge_two(a: SpurTable, b: SpurTable, b_bit: u8, pacer: &mut Pacer<'_>) -> SpurTable {
    let mut profiles = Profiles::default();
    // Each side's profiles in the new table's names; a union interned once per pair.
    let adopt = |profiles: &mut Profiles, from: &Profiles| -> Vec<u32> {
        from.list
            .iter()
            .map(|p| {
                let q = profiles.adopt(from, p);
                profiles.intern(q)
            })
            .collect()
    };
    let ma = adopt(&mut profiles, &a.profiles);
    let mb = adopt(&mut profiles, &b.profiles);
    let mut unions: HashMap<(u32, u32), u32> = HashMap::new();
    let mut union = |profiles: &mut Profiles, x: u32, y: u32| -> u32 {
        if x == y {
            return x;
        }
        *unions.entry((x, y)).or_insert_with(|| {
            let p = profiles.get(x).union(profiles.get(y));
            profiles.intern(p)
        })
    };
    let mut combine = |ka: Option<Row>, kb: Option<Row>, profiles: &mut Profiles| match (ka, kb) {
        (Some(x), None) => Row {
            profile: ma[x.profile as usize],
            ..x
        },
        (None, Some(y)) => Row {
            profile: mb[y.profile as usize],
            clients: y.clients,
            feeds: b_bit,
        },
        (Some(x), Some(y)) => Row {
            profile: union(profiles, ma[x.profile as usize], mb[y.profile as usize]),
            clients: if y.clients != 0 { y.clients } else { x.clients },
            feeds: x.feeds | b_bit,
        },
        (None, None) => unreachable!("merge_keys gives each key a row on one side at least"),
    };
    let v4 = merge_keys(&a.v4.sorted(), &b.v4.sorted(), pacer, |x, y| {
        combine(x, y, &mut profiles)
    });
    let v6 = merge_keys(&a.v6.sorted(), &b.v6.sorted(), pacer, |x, y| {
        combine(x, y, &mut profiles)
    });
    finish(v4, v6, profiles, pacer)
}

/// Walks two lists sorted by key together, calling `each` once per distinct key with its row
/// in each list (one of them at least); returns the keys with the rows `each` made.
fn merge_keys<T: Ord + Copy>(
    a: &[(T, Row)],
    b: &[(T, Row)],
    pacer: &mut Pacer<'_>,
    mut each: impl FnMut(Option<Row>, Option<Row>) -> Row,
) -> Vec<(T, Row)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    loop {
        pacer.tick(i + j);
        let (key, x, y) = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => (x.0, Some(x.1), Some(y.1)),
            (Some(x), Some(y)) if x.0 < y.0 => (x.0, Some(x.1), None),
            (Some(x), None) => (x.0, Some(x.1), None),
            (_, Some(y)) => (y.0, None, Some(y.1)),
            (None, None) => break,
        };
        i += usize::from(x.is_some());
        j += usize::from(y.is_some());
        out.push((key, each(x, y)));
    }
    out
}

fn finish(v4: Vec<(u32, Row)>, v6: Vec<(u128, Row)>, profiles: Profiles, pacer: &mut Pacer<'_>) -> SpurTable {
    SpurTable {
        v4: Exact::build(v4, pacer),
        v6: Exact::build(v6, pacer),
        profiles,
    }
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    ip: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    infrastructure: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tunnels: Option<Vec<Tunnel<'a>>>,
    #[serde(default, borrow)]
    services: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    risks: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    client: Option<Client<'a>>,
}

#[derive(Deserialize)]
struct Tunnel<'a> {
    #[serde(default, borrow)]
    operator: Option<Cow<'a, str>>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Client<'a> {
    #[serde(default, borrow)]
    behaviors: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    types: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    proxies: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    count: Option<i64>,
}

/// Reads a feed: plain NDJSON, or gzipped (one or several members), told apart by its first
/// bytes. `pacer` lets a reload give way between lines.
pub fn read(input: impl Read, pacer: &mut Pacer<'_>) -> Result<SpurTable, ParseError> {
    let mut buffered = BufReader::with_capacity(1 << 16, input);
    let gzipped = buffered
        .fill_buf()
        .map_err(|e| ParseError::at(0, 0, format!("cannot read the feed: {e}")))?
        .starts_with(&[0x1f, 0x8b]);
    if gzipped {
        let decoder = flate2::bufread::MultiGzDecoder::new(buffered);
        read_lines(BufReader::with_capacity(1 << 16, decoder), pacer)
    } else {
        read_lines(buffered, pacer)
    }
}

fn read_lines(mut input: impl BufRead, pacer: &mut Pacer<'_>) -> Result<SpurTable, ParseError> {
    let mut profiles = Profiles::default();
    let mut v4: Vec<(u32, Row)> = Vec::new();
    let mut v6: Vec<(u128, Row)> = Vec::new();
    let mut line = Vec::with_capacity(4096);
    let mut n = 0usize;
    loop {
        line.clear();
        n += 1;
        let read = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| ParseError::at(n, 0, format!("the feed is cut short or corrupt: {e}")))?;
        if read == 0 {
            break;
        }
        pacer.tick(n);
        if line.len() > MAX_LINE {
            return Err(ParseError::at(
                n,
                0,
                format!("a line longer than {MAX_LINE} bytes: not a record"),
            ));
        }
        let text = std::str::from_utf8(&line).map_err(|_| ParseError::at(n, 0, "not valid UTF-8: not a record"))?;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let (addr, row) = record(text, &mut profiles).map_err(|why| ParseError::at(n, 0, why))?;
        match addr {
            IpAddr::V4(a) => v4.push((u32::from(a), row)),
            IpAddr::V6(a) => v6.push((u128::from(a), row)),
        }
    }
    Ok(sorted(v4, v6, profiles, pacer))
}

/// One line's record: its address and row.
fn record(text: &str, profiles: &mut Profiles) -> Result<(IpAddr, Row), String> {
    let r: Record<'_> = serde_json::from_str(text).map_err(|e| {
        if text.starts_with('{') {
            format!("not a Spur record: {e}")
        } else {
            format!("not a Spur record (a JSON object a line): `{}`", snippet(text))
        }
    })?;
    let ip = r.ip.ok_or("a record without `ip`")?;
    // IPv4-mapped IPv6 is read as IPv4, as in lists and requests.
    let addr = crate::attempt::parse_ip("ip", &ip).map_err(|_| format!("`{}` is not an IP address", snippet(&ip)))?;
    // The names given, trimmed, empty ones left out.
    fn names<'s>(profiles: &mut Profiles, list: impl IntoIterator<Item = &'s str>) -> Vec<u32> {
        list.into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| profiles.name(s))
            .collect()
    }
    fn listed<'s>(list: &'s Option<Vec<Cow<'_, str>>>) -> impl Iterator<Item = &'s str> {
        list.iter().flatten().map(AsRef::as_ref)
    }
    let tunnels = r.tunnels.unwrap_or_default();
    let client = r.client;
    let mut fields: [Vec<u32>; 8] = Default::default();
    fields[Field::TunnelOperators as usize] = names(profiles, tunnels.iter().filter_map(|t| t.operator.as_deref()));
    fields[Field::TunnelTypes as usize] = names(profiles, tunnels.iter().filter_map(|t| t.kind.as_deref()));
    fields[Field::Risks as usize] = names(profiles, listed(&r.risks));
    fields[Field::Services as usize] = names(profiles, listed(&r.services));
    fields[Field::Infrastructure as usize] = names(profiles, r.infrastructure.as_deref());
    let mut clients = 0;
    if let Some(c) = client {
        fields[Field::ClientBehaviors as usize] = names(profiles, listed(&c.behaviors));
        fields[Field::ClientTypes as usize] = names(profiles, listed(&c.types));
        fields[Field::ClientProxies as usize] = names(profiles, listed(&c.proxies));
        clients = c.count.unwrap_or(0).clamp(0, u32::MAX as i64) as u32;
    }
    let profile = Profile(fields.map(|mut v| {
        v.sort_unstable();
        v.dedup();
        v.into_boxed_slice()
    }));
    let profile = profiles.intern(profile);
    Ok((
        addr,
        Row {
            profile,
            clients,
            feeds: 1,
        },
    ))
}

/// The table of records in file order: sorted by address, records of one address merged (a
/// later one's count and infrastructure win when not empty; lists are joined).
fn sorted(
    mut v4: Vec<(u32, Row)>,
    mut v6: Vec<(u128, Row)>,
    mut profiles: Profiles,
    pacer: &mut Pacer<'_>,
) -> SpurTable {
    // Stable: a later record of an address stays after an earlier one.
    v4.sort_by_key(|(k, _)| *k);
    v6.sort_by_key(|(k, _)| *k);
    pacer.point();
    let v4 = dedup(v4, &mut profiles, pacer);
    let v6 = dedup(v6, &mut profiles, pacer);
    finish(v4, v6, profiles, pacer)
}

fn dedup<T: Eq + Copy>(entries: Vec<(T, Row)>, profiles: &mut Profiles, pacer: &mut Pacer<'_>) -> Vec<(T, Row)> {
    let mut out: Vec<(T, Row)> = Vec::with_capacity(entries.len());
    for (i, (k, row)) in entries.into_iter().enumerate() {
        pacer.tick(i);
        match out.last_mut() {
            Some((last_key, last)) if *last_key == k => {
                let p = profiles.get(last.profile).union(profiles.get(row.profile));
                let earlier_infra = profiles.get(last.profile).names(Field::Infrastructure).to_vec();
                let later_infra = profiles.get(row.profile).names(Field::Infrastructure).to_vec();
                let mut p = p;
                // Infrastructure is one value: the later record's, when it gives one.
                if !later_infra.is_empty() && later_infra != earlier_infra {
                    p.0[Field::Infrastructure as usize] = later_infra.into_boxed_slice();
                }
                last.profile = profiles.intern(p);
                if row.clients != 0 {
                    last.clients = row.clients;
                }
            }
            _ => out.push((k, row)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> SpurTable {
        read(text.as_bytes(), &mut Pacer::none()).unwrap()
    }

    const TWO: &str = r#"{"ip":"192.0.2.7","infrastructure":"DATACENTER","tunnels":[{"operator":"NORD_VPN","type":"VPN","anonymous":true,"entries":["192.0.2.1"]}],"risks":["TUNNEL"],"client":{"behaviors":["FILE_SHARING"],"types":["DESKTOP"],"count":12,"countries":3},"services":["OPENVPN"],"location":{"country":"NL"},"as":{"number":64500,"organization":"Example"},"extra":{"new":"field"}}
{"ip":"2001:db8::9","tunnels":[{"operator":"OXYLABS_PROXY","type":"PROXY"}],"risks":["CALLBACK_PROXY"],"client":{"proxies":["OXYLABS_PROXY"],"count":3}}
"#;

    #[test]
    fn records_are_read_into_profiles_and_counts() {
        let t = table(TWO);
        assert_eq!(t.len(), 2);
        let row = *t.row(t.find("192.0.2.7".parse().unwrap())).unwrap();
        assert_eq!(row.clients, 12);
        let names = |f| t.profiles.names_of(row.profile, f).collect::<Vec<_>>();
        assert_eq!(names(Field::TunnelOperators), ["NORD_VPN"]);
        assert_eq!(names(Field::TunnelTypes), ["VPN"]);
        assert_eq!(names(Field::Risks), ["TUNNEL"]);
        assert_eq!(names(Field::ClientBehaviors), ["FILE_SHARING"]);
        assert_eq!(names(Field::ClientTypes), ["DESKTOP"]);
        assert_eq!(names(Field::Infrastructure), ["DATACENTER"]);
        assert_eq!(names(Field::Services), ["OPENVPN"]);
        let six = *t.row(t.find("2001:db8::9".parse().unwrap())).unwrap();
        assert_eq!(
            t.profiles
                .names_of(six.profile, Field::ClientProxies)
                .collect::<Vec<_>>(),
            ["OXYLABS_PROXY"]
        );
        assert_eq!(t.find("192.0.2.8".parse().unwrap()), 0);
        let mapped = crate::attempt::normalize_ip("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(t.find(mapped), t.find("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn one_profile_is_stored_once() {
        let mut text = String::new();
        for i in 0..1000 {
            text += &format!(
                "{{\"ip\":\"10.0.{}.{}\",\"tunnels\":[{{\"operator\":\"NORD_VPN\",\"type\":\"VPN\"}}],\"client\":{{\"count\":{i}}}}}\n",
                i / 256,
                i % 256
            );
        }
        let t = table(&text);
        assert_eq!((t.len(), t.profiles.all().len()), (1000, 1));
    }

    #[test]
    fn records_of_one_address_are_merged_the_later_count_winning() {
        let t = table(concat!(
            "{\"ip\":\"198.51.100.1\",\"risks\":[\"TUNNEL\"],\"infrastructure\":\"DATACENTER\",\"client\":{\"count\":5}}\n",
            "\n",
            "{\"ip\":\"198.51.100.1\",\"risks\":[\"GEO_MISMATCH\"],\"client\":{\"count\":0}}\n",
            "{\"ip\":\"198.51.100.1\",\"tunnels\":[{\"operator\":\"MULLVAD_VPN\"}],\"client\":{\"count\":9}}\n",
        ));
        assert_eq!(t.len(), 1);
        let row = *t.row(t.find("198.51.100.1".parse().unwrap())).unwrap();
        assert_eq!(row.clients, 9);
        let risks: Vec<_> = t.profiles.names_of(row.profile, Field::Risks).collect();
        assert_eq!(risks.len(), 2);
        assert!(risks.contains(&"TUNNEL") && risks.contains(&"GEO_MISMATCH"));
        assert_eq!(
            t.profiles
                .names_of(row.profile, Field::Infrastructure)
                .collect::<Vec<_>>(),
            ["DATACENTER"]
        );
    }

    #[test]
    fn gzipped_feeds_read_alike_and_a_truncated_one_is_refused() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(TWO.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let t = read(bytes.as_slice(), &mut Pacer::none()).unwrap();
        assert_eq!(t.len(), 2);
        let cut = &bytes[..bytes.len() - 10];
        let e = read(cut, &mut Pacer::none()).unwrap_err();
        assert!(e.message.contains("cut short or corrupt"), "{e:?}");
    }

    #[test]
    fn bad_lines_are_errors_at_their_line() {
        let e = read(
            format!("{TWO}{{\"ip\":\"300.1.1.1\"}}\n").as_bytes(),
            &mut Pacer::none(),
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("`300.1.1.1` is not an IP address"), "{e:?}");
        let e = read(&b"{\"ip\":\"192.0.2.1\"}\nnot json\n"[..], &mut Pacer::none()).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("a JSON object a line"), "{e:?}");
        let e = read(&b"{\"ip\":\"192.0.2.1\", \"risks\": [\"X\"\n"[..], &mut Pacer::none()).unwrap_err();
        assert_eq!(e.line, 1);
        let e = read(&b"{\"risks\":[]}\n"[..], &mut Pacer::none()).unwrap_err();
        assert!(e.message.contains("without `ip`"), "{e:?}");
        let e = read(
            &b"{\"ip\":\"192.0.2.1\",\"client\":{\"count\":\"many\"}}\n"[..],
            &mut Pacer::none(),
        )
        .unwrap_err();
        assert!(e.message.contains("not a Spur record"), "{e:?}");
    }

    proptest::proptest! {
        /// The exact-match table finds each of its keys with its row, and nothing else;
        /// sorted back out, it is what went in.
        #[test]
        fn exact_tables_find_what_they_hold(
            keys in proptest::collection::btree_set(proptest::prelude::any::<u32>(), 0..400),
            near in proptest::collection::btree_set(0u32..512, 0..64),
            probes in proptest::collection::vec(proptest::prelude::any::<u32>(), 0..200),
        ) {
            // Dense keys (0 among them) crowd neighbouring slots as much as sparse ones spread.
            let keys: std::collections::BTreeSet<u32> = keys.into_iter().chain(near).collect();
            let entries: Vec<(u32, Row)> = keys
                .iter()
                .map(|&k| (k, Row { profile: k, clients: !k, feeds: 1 }))
                .collect();
            let t = Exact::build(entries.clone(), &mut Pacer::none());
            for &(k, row) in &entries {
                let at = t.find(k);
                proptest::prop_assert!(at.is_some_and(|i| t.slots[i].row == row), "{k}");
            }
            for p in probes {
                proptest::prop_assert_eq!(t.find(p).is_some(), keys.contains(&p));
            }
            proptest::prop_assert_eq!(t.sorted(), entries);
        }
    }

    #[test]
    fn row_numbers_cover_both_families_and_nothing_else() {
        let t = table(TWO);
        let (four, six) = (
            t.find("192.0.2.7".parse().unwrap()),
            t.find("2001:db8::9".parse().unwrap()),
        );
        assert!(four != 0 && six != 0 && four != six);
        assert!(t.row(0).is_none());
        let all = (1..=u32::try_from(t.v4.slots.len() + t.v6.slots.len()).unwrap() + 2)
            .filter(|&n| t.row(n).is_some())
            .collect::<Vec<_>>();
        let mut expected = vec![four, six];
        expected.sort_unstable();
        assert_eq!(all, expected, "the empty slots and past the end are no row");
    }

    #[test]
    fn feeds_merge_with_their_bits() {
        let a =
            table("{\"ip\":\"192.0.2.1\",\"risks\":[\"TUNNEL\"],\"client\":{\"count\":2}}\n{\"ip\":\"192.0.2.2\"}\n");
        let b = table(
            "{\"ip\":\"192.0.2.2\",\"risks\":[\"CALLBACK_PROXY\"],\"client\":{\"count\":7}}\n{\"ip\":\"2001:db8::1\"}\n",
        );
        let m = SpurTable::merged(vec![a, b], &mut Pacer::none());
        assert_eq!(m.len(), 3);
        let at = |s: &str| *m.row(m.find(s.parse().unwrap())).unwrap();
        assert_eq!(at("192.0.2.1").feeds, 0b01);
        assert_eq!(at("192.0.2.2").feeds, 0b11);
        assert_eq!(at("192.0.2.2").clients, 7);
        assert_eq!(at("2001:db8::1").feeds, 0b10);
        assert_eq!(
            m.profiles
                .names_of(at("192.0.2.2").profile, Field::Risks)
                .collect::<Vec<_>>(),
            ["CALLBACK_PROXY"]
        );
        assert_eq!(
            m.profiles
                .names_of(at("192.0.2.1").profile, Field::Risks)
                .collect::<Vec<_>>(),
            ["TUNNEL"]
        );
    }
}
