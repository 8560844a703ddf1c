//! One prefix index over every list source and every inline rule network.
//!
//! Each network carries a *label* (a source, or the `ip` list of one rule). A single lookup
//! returns the set of labels whose networks contain the address.
//!
//! # Why a sorted-range structure and not a trie crate
//! Prefix-trie crates (`prefix-trie`, `ip_network_table`, `treebitmap`) answer *longest-prefix
//! match*: one value per address. Here one address can sit in a Tor list, a VPN list and three
//! rules' inline ranges at once, and every one of them matters. A trie would need either a walk
//! over all covering prefixes per lookup or per-node label unions. Instead the build step
//! flattens all networks into disjoint address ranges, each tagged with the interned set of
//! labels that cover it. A lookup is then one binary search over a flat, sorted array of range
//! starts (narrowed first by a 65,536-entry table on the top 16 bits), independent of how many
//! labels overlap, and the memory is two flat arrays plus the few distinct label sets.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::pace::Pacer;

/// A label: a list source or one rule's inline networks.
pub type Label = u32;

/// An interned label set; `SetId(0)` is always the empty set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SetId(pub u32);

/// A set of labels as (word index, bits) pairs, for [`Index::intersects`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMask(Box<[(u32, u64)]>);

impl LabelMask {
    /// The mask of `labels`.
    pub fn new(labels: &[Label]) -> Self {
        let mut words: Vec<(u32, u64)> = Vec::new();
        for &l in labels {
            let (w, bit) = (l / 64, 1u64 << (l % 64));
            match words.iter_mut().find(|(x, _)| *x == w) {
                Some((_, bits)) => *bits |= bit,
                None => words.push((w, bit)),
            }
        }
        Self(words.into_boxed_slice())
    }
}

/// Collects networks with their labels; [`IndexBuilder::build`] compiles them.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    v4: Vec<(u64, u64, Label)>,
    v6: Vec<(u128, u128, Label)>,
    labels: u32,
}

impl IndexBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `net` under `label`.
    pub fn add(&mut self, net: IpNet, label: Label) {
        debug_assert!(label < 1 << 30, "label {label} does not fit a sweep event");
        self.labels = self.labels.max(label + 1);
        match net {
            IpNet::V4(n) => {
                let start = u32::from(n.network()) as u64;
                let end = u32::from(n.broadcast()) as u64;
                self.v4.push((start, end, label));
            }
            IpNet::V6(n) => {
                self.v6
                    .push((u128::from(n.network()), u128::from(n.broadcast()), label));
            }
        }
    }

    /// Reserves room for `label` even if no network carries it, so label sets are sized for it.
    pub fn reserve_label(&mut self, label: Label) {
        self.labels = self.labels.max(label + 1);
    }

    /// Number of networks added so far.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether no network was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Compiles the ranges: O(n log n) in the number of networks.
    pub fn build(self) -> Index {
        self.build_paced(&mut Pacer::none())
    }

    /// [`IndexBuilder::build`], giving way at `pacer`'s points (see [`crate::pace`]).
    pub fn build_paced(self, pacer: &mut Pacer<'_>) -> Index {
        let stride = (self.labels as usize).div_ceil(64).max(1);
        let mut sets = SetTable::new(stride);
        let (v4_starts, v4_sets) = sweep(self.v4, u32::MAX as u64, &mut sets, self.labels, pacer);
        let v4_starts: Vec<u32> = v4_starts.into_iter().map(|s| s as u32).collect();
        let (v6_starts, v6_sets) = sweep(self.v6, u128::MAX, &mut sets, self.labels, pacer);
        let v4_top = top_table(&v4_starts, |s| (s >> 16) as usize);
        let v6_top = top_table(&v6_starts, |s| (s >> 112) as usize);
        Index {
            v4_starts,
            v4_sets,
            v4_top,
            v6_starts,
            v6_sets,
            v6_top,
            stride,
            words: sets.words,
            offsets: sets.offsets,
            label_data: sets.label_data,
        }
    }
}

/// Distinct label sets, stored twice: as flat bit words (`stride` words per set) for
/// membership tests, and as label lists (for enumerating a set's labels without scanning
/// `stride` words).
struct SetTable {
    stride: usize,
    words: Vec<u64>,
    /// FxHash: interning hashes a key per range of a million-prefix build, and SipHash was
    /// 7.5% of a 1M-prefix load; the keys come from the policy's own data.
    ids: rustc_hash::FxHashMap<Vec<u64>, u32>,
    /// `label_data[offsets[i]..offsets[i + 1]]` are the labels of set `i`.
    offsets: Vec<u32>,
    label_data: Vec<Label>,
}

impl SetTable {
    fn new(stride: usize) -> Self {
        let empty = vec![0; stride];
        let mut ids = rustc_hash::FxHashMap::default();
        ids.insert(empty.clone(), 0);
        Self {
            stride,
            words: empty,
            ids,
            offsets: vec![0, 0],
            label_data: Vec::new(),
        }
    }

    fn intern(&mut self, set: &[u64]) -> u32 {
        if let Some(id) = self.ids.get(set) {
            return *id;
        }
        let id = (self.words.len() / self.stride) as u32;
        self.words.extend_from_slice(set);
        self.ids.insert(set.to_vec(), id);
        for (w, &bits) in set.iter().enumerate() {
            let mut b = bits;
            while b != 0 {
                self.label_data.push(w as u32 * 64 + b.trailing_zeros());
                b &= b - 1;
            }
        }
        self.offsets.push(self.label_data.len() as u32);
        id
    }
}

/// Integer types the sweep works on (u64 holding IPv4, and u128), with how their sweep
/// events are stored. An event's tag is `label << 1`, plus 1 if a range opens.
trait Point: Copy + Ord {
    const ZERO: Self;
    /// Significant bits of a position.
    const BITS: u32;
    type Event: Copy + Default;
    fn succ(self) -> Self;
    fn event(self, tag: u32) -> Self::Event;
    fn unpack(e: Self::Event) -> (Self, u32);
    /// `RADIX_BITS` bits of the position from bit `shift` up.
    fn digit(self, shift: u32) -> usize;
}
/// IPv4: a position needs 33 bits (an end + 1 can be 2^32) and a tag 31, so an event packs
/// into one u64, half the memory a sort moves for a (position, tag) pair. (Labels are one per
/// source or rule; 2^30 of them would take a policy of tens of gigabytes.)
impl Point for u64 {
    const ZERO: Self = 0;
    const BITS: u32 = 33;
    type Event = u64;
    fn succ(self) -> Self {
        self + 1
    }
    fn event(self, tag: u32) -> u64 {
        self << 31 | u64::from(tag & 0x7fff_ffff)
    }
    fn unpack(e: u64) -> (u64, u32) {
        (e >> 31, (e & 0x7fff_ffff) as u32)
    }
    fn digit(self, shift: u32) -> usize {
        (self >> shift) as usize & RADIX_MASK
    }
}
impl Point for u128 {
    const ZERO: Self = 0;
    const BITS: u32 = 128;
    type Event = (u128, u32);
    fn succ(self) -> Self {
        self.wrapping_add(1)
    }
    fn event(self, tag: u32) -> (u128, u32) {
        (self, tag)
    }
    fn unpack(e: (u128, u32)) -> (u128, u32) {
        e
    }
    fn digit(self, shift: u32) -> usize {
        (self >> shift) as usize & RADIX_MASK
    }
}

const RADIX_BITS: u32 = 11;
const RADIX_MASK: usize = (1 << RADIX_BITS) - 1;

/// Sorts sweep events by position: a least-significant-digit radix sort, 11 bits a pass, that
/// skips the digits every event shares (the low half of most IPv6 prefixes) and lets a paced
/// reload pause as it goes ([`Pacer::tick`]). Written by hand because the sort is the
/// largest single step of a 1M-prefix build (25 ms), and neither std's sorts nor the radix
/// sort crates can pause inside: under load the whole sort ran as one stretch while request
/// threads waited for the core.
fn sort_events<P: Point>(events: Vec<P::Event>, pacer: &mut Pacer<'_>) -> Vec<P::Event> {
    let passes = P::BITS.div_ceil(RADIX_BITS) as usize;
    let mut histograms = vec![[0usize; RADIX_MASK + 1]; passes];
    for (i, &e) in events.iter().enumerate() {
        pacer.tick(i);
        let pos = P::unpack(e).0;
        for (pass, h) in histograms.iter_mut().enumerate() {
            h[pos.digit(pass as u32 * RADIX_BITS)] += 1;
        }
    }
    let n = events.len();
    let mut src = events;
    let mut dst = vec![P::Event::default(); n];
    for (pass, h) in histograms.iter().enumerate() {
        if h.contains(&n) {
            continue;
        }
        let mut next = [0usize; RADIX_MASK + 1];
        let mut sum = 0;
        for (slot, &count) in next.iter_mut().zip(h) {
            *slot = sum;
            sum += count;
        }
        for (i, &e) in src.iter().enumerate() {
            pacer.tick(i);
            let d = P::unpack(e).0.digit(pass as u32 * RADIX_BITS);
            dst[next[d]] = e;
            next[d] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
    }
    src
}

/// Turns possibly overlapping `[start, end]` ranges into sorted disjoint range starts, each
/// with the interned set of labels covering it. Adjacent ranges with equal sets are merged.
fn sweep<P: Point>(
    ranges: Vec<(P, P, Label)>,
    max: P,
    sets: &mut SetTable,
    labels: u32,
    pacer: &mut Pacer<'_>,
) -> (Vec<P>, Vec<u32>) {
    // A range ending at the top of the address space never closes.
    let mut events = Vec::with_capacity(ranges.len() * 2);
    for (i, (s, e, l)) in ranges.into_iter().enumerate() {
        pacer.tick(i);
        events.push(s.event(l << 1 | 1));
        if e != max {
            events.push(e.succ().event(l << 1));
        }
    }
    let events = sort_events::<P>(events, pacer);
    let mut counts = vec![0u32; labels as usize];
    let mut cur = vec![0u64; sets.stride];
    let mut starts = vec![P::ZERO];
    let mut ids = vec![0u32];
    // Labels with an open range here: between ranges there are none, and the empty set needs
    // no interning (half of all positions in a large list).
    let mut covering = 0usize;
    let (mut i, mut group) = (0, 0);
    while i < events.len() {
        pacer.tick(group);
        group += 1;
        let pos = P::unpack(events[i]).0;
        while let Some((p, tag)) = events.get(i).map(|&e| P::unpack(e))
            && p == pos
        {
            let (l, open) = (tag >> 1, tag & 1 == 1);
            let c = &mut counts[l as usize];
            if open {
                *c += 1;
                if *c == 1 {
                    cur[l as usize / 64] |= 1 << (l % 64);
                    covering += 1;
                }
            } else {
                *c -= 1;
                if *c == 0 {
                    cur[l as usize / 64] &= !(1 << (l % 64));
                    covering -= 1;
                }
            }
            i += 1;
        }
        let id = if covering == 0 { 0 } else { sets.intern(&cur) };
        if pos == P::ZERO {
            ids[0] = id;
        } else if ids.last() != Some(&id) {
            starts.push(pos);
            ids.push(id);
        }
    }
    (starts, ids)
}

/// For each value of the top 16 bits, the first index in `starts` whose top bits are ≥ it:
/// a lookup then binary-searches only the ranges that share its top 16 bits.
fn top_table<P: Copy>(starts: &[P], top: impl Fn(P) -> usize) -> Vec<u32> {
    let mut table = vec![0u32; 65_537];
    let mut j = 0usize;
    for (bucket, slot) in table.iter_mut().enumerate() {
        while j < starts.len() && top(starts[j]) < bucket {
            j += 1;
        }
        *slot = j as u32;
    }
    table
}

/// The compiled index. Immutable and `Sync`: shared by every request of a snapshot.
#[derive(Debug, Clone)]
pub struct Index {
    v4_starts: Vec<u32>,
    v4_sets: Vec<u32>,
    v4_top: Vec<u32>,
    v6_starts: Vec<u128>,
    v6_sets: Vec<u32>,
    v6_top: Vec<u32>,
    stride: usize,
    words: Vec<u64>,
    offsets: Vec<u32>,
    label_data: Vec<Label>,
}

impl Index {
    /// The label set of every network containing `ip`, in one lookup.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> SetId {
        match ip {
            IpAddr::V4(v4) => {
                let x = u32::from(v4);
                SetId(find(
                    &self.v4_starts,
                    &self.v4_sets,
                    &self.v4_top,
                    x,
                    (x >> 16) as usize,
                ))
            }
            IpAddr::V6(v6) => {
                let x = u128::from(v6);
                SetId(find(
                    &self.v6_starts,
                    &self.v6_sets,
                    &self.v6_top,
                    x,
                    (x >> 112) as usize,
                ))
            }
        }
    }

    /// Whether set `set` holds `label`.
    #[inline]
    pub fn contains(&self, set: SetId, label: Label) -> bool {
        let w = set.0 as usize * self.stride + label as usize / 64;
        self.words.get(w).is_some_and(|w| w >> (label % 64) & 1 == 1)
    }

    /// Whether set `set` holds any label of `mask` (built by [`LabelMask::new`]): one AND per
    /// word that `mask` touches, instead of one lookup per label.
    #[inline]
    pub fn intersects(&self, set: SetId, mask: &LabelMask) -> bool {
        let base = set.0 as usize * self.stride;
        mask.0
            .iter()
            .any(|&(w, bits)| self.words.get(base + w as usize).is_some_and(|x| x & bits != 0))
    }

    /// The labels in `set`, ascending.
    #[inline]
    pub fn labels_of(&self, set: SetId) -> &[Label] {
        let i = set.0 as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => self.label_data.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The labels in `set`, ascending, owned.
    pub fn labels(&self, set: SetId) -> Vec<Label> {
        self.labels_of(set).to_vec()
    }

    /// Number of disjoint ranges (IPv4 + IPv6); a measure of the index's size.
    pub fn ranges(&self) -> usize {
        self.v4_starts.len() + self.v6_starts.len()
    }

    /// Approximate heap bytes held by the index.
    pub fn heap_bytes(&self) -> usize {
        self.v4_starts.len() * 4
            + self.v4_sets.len() * 4
            + self.v6_starts.len() * 16
            + self.v6_sets.len() * 4
            + (self.v4_top.len() + self.v6_top.len()) * 4
            + self.words.len() * 8
            + (self.offsets.len() + self.label_data.len()) * 4
    }
}

#[inline]
fn find<P: Copy + Ord>(starts: &[P], sets: &[u32], top: &[u32], x: P, bucket: usize) -> u32 {
    // The range holding x starts at or before x. Its index is at least top[bucket] - 1 (the
    // last range starting before this bucket) and below top[bucket + 1].
    let lo = (top[bucket] as usize).saturating_sub(1);
    let hi = (top[bucket + 1] as usize).max(lo + 1).min(starts.len());
    let i = lo + starts[lo..hi].partition_point(|&s| s <= x);
    // starts[0] == 0, so at least one start is <= x and i >= 1.
    sets[i.saturating_sub(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(nets: &[(&str, Label)]) -> Index {
        let mut b = IndexBuilder::new();
        for (n, l) in nets {
            b.add(n.parse().unwrap(), *l);
        }
        b.build()
    }

    fn labels_of(idx: &Index, ip: &str) -> Vec<Label> {
        idx.labels(idx.lookup(ip.parse().unwrap()))
    }

    proptest::proptest! {
        /// The radix sort orders events by position and keeps every event (tags included).
        #[test]
        fn events_sort_by_position(
            v4 in proptest::collection::vec((0u64..=1 << 32, 0u32..1 << 31), 0..3000),
            // Positions that share their low and middle digits, as IPv6 prefixes do.
            v6 in proptest::collection::vec((proptest::prelude::any::<u64>(), 0u32..4, 0u32..1000), 0..3000),
        ) {
            let events: Vec<u64> = v4.iter().map(|&(p, t)| p.event(t)).collect();
            let mut want = events.clone();
            want.sort_unstable_by_key(|&e| (u64::unpack(e).0, e));
            let mut got = sort_events::<u64>(events, &mut Pacer::none());
            proptest::prop_assert!(got.windows(2).all(|w| u64::unpack(w[0]).0 <= u64::unpack(w[1]).0));
            got.sort_unstable_by_key(|&e| (u64::unpack(e).0, e));
            proptest::prop_assert_eq!(got, want);

            let events: Vec<(u128, u32)> =
                v6.iter().map(|&(hi, mid, t)| ((u128::from(hi) << 64 | u128::from(mid) << 40), t)).collect();
            let mut want = events.clone();
            want.sort_unstable();
            let mut got = sort_events::<u128>(events, &mut Pacer::none());
            proptest::prop_assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
            got.sort_unstable();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn overlapping_networks_report_every_label() {
        let idx = build(&[
            ("10.0.0.0/8", 0),
            ("10.1.0.0/16", 1),
            ("10.1.2.3/32", 2),
            ("2001:db8::/32", 1),
        ]);
        assert_eq!(labels_of(&idx, "10.1.2.3"), vec![0, 1, 2]);
        assert_eq!(labels_of(&idx, "10.1.2.4"), vec![0, 1]);
        assert_eq!(labels_of(&idx, "10.2.0.0"), vec![0]);
        assert_eq!(labels_of(&idx, "11.0.0.0"), Vec::<Label>::new());
        assert_eq!(labels_of(&idx, "9.255.255.255"), Vec::<Label>::new());
        assert_eq!(labels_of(&idx, "2001:db8:ffff::1"), vec![1]);
        assert_eq!(labels_of(&idx, "2001:db9::"), Vec::<Label>::new());
    }

    #[test]
    fn edges_of_the_address_space() {
        let idx = build(&[
            ("0.0.0.0/0", 0),
            ("255.255.255.255/32", 1),
            ("::/0", 2),
            ("0.0.0.0/32", 3),
        ]);
        assert_eq!(labels_of(&idx, "0.0.0.0"), vec![0, 3]);
        assert_eq!(labels_of(&idx, "0.0.0.1"), vec![0]);
        assert_eq!(labels_of(&idx, "255.255.255.255"), vec![0, 1]);
        assert_eq!(labels_of(&idx, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), vec![2]);
    }

    #[test]
    fn duplicates_of_one_label_count_once() {
        let idx = build(&[("192.0.2.0/24", 5), ("192.0.2.0/25", 5)]);
        assert_eq!(labels_of(&idx, "192.0.2.200"), vec![5]);
        assert_eq!(labels_of(&idx, "192.0.3.0"), Vec::<Label>::new());
    }

    #[test]
    fn many_labels_span_several_words() {
        let idx = build(&[("192.0.2.0/24", 3), ("192.0.2.0/24", 130)]);
        assert_eq!(labels_of(&idx, "192.0.2.1"), vec![3, 130]);
    }

    #[test]
    fn empty_index_answers_empty() {
        let idx = IndexBuilder::new().build();
        assert_eq!(idx.lookup("192.0.2.1".parse().unwrap()), SetId(0));
        assert_eq!(idx.lookup("::1".parse().unwrap()), SetId(0));
    }
}
