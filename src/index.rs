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
        let stride = (self.labels as usize).div_ceil(64).max(1);
        let mut sets = SetTable::new(stride);
        let (v4_starts, v4_sets) = sweep(self.v4, u32::MAX as u64, &mut sets, self.labels);
        let v4_starts: Vec<u32> = v4_starts.into_iter().map(|s| s as u32).collect();
        let (v6_starts, v6_sets) = sweep(self.v6, u128::MAX, &mut sets, self.labels);
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

/// Integer types the sweep works on (u64 holding IPv4, and u128).
trait Point: Copy + Ord {
    const ZERO: Self;
    fn succ(self) -> Self;
}
impl Point for u64 {
    const ZERO: Self = 0;
    fn succ(self) -> Self {
        self + 1
    }
}
impl Point for u128 {
    const ZERO: Self = 0;
    fn succ(self) -> Self {
        self.wrapping_add(1)
    }
}

/// Turns possibly overlapping `[start, end]` ranges into sorted disjoint range starts, each
/// with the interned set of labels covering it. Adjacent ranges with equal sets are merged.
fn sweep<P: Point>(ranges: Vec<(P, P, Label)>, max: P, sets: &mut SetTable, labels: u32) -> (Vec<P>, Vec<u32>) {
    // Events: (position, label, +1 open / -1 close). A range ending at the top of the address
    // space never closes.
    let mut events: Vec<(P, Label, i8)> = Vec::with_capacity(ranges.len() * 2);
    for (s, e, l) in ranges {
        events.push((s, l, 1));
        if e != max {
            events.push((e.succ(), l, -1));
        }
    }
    events.sort_unstable_by_key(|&(p, _, _)| p);
    let mut counts = vec![0u32; labels as usize];
    let mut cur = vec![0u64; sets.stride];
    let mut starts = vec![P::ZERO];
    let mut ids = vec![0u32];
    let mut i = 0;
    while i < events.len() {
        let pos = events[i].0;
        while i < events.len() && events[i].0 == pos {
            let (_, l, d) = events[i];
            let c = &mut counts[l as usize];
            if d > 0 {
                *c += 1;
                if *c == 1 {
                    cur[l as usize / 64] |= 1 << (l % 64);
                }
            } else {
                *c -= 1;
                if *c == 0 {
                    cur[l as usize / 64] &= !(1 << (l % 64));
                }
            }
            i += 1;
        }
        let id = sets.intern(&cur);
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
