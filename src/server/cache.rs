//! Per-IP facts behind a bounded moka cache, fronted by a small per-thread cache.
//!
//! The moka cache is shared, bounded and expires entries; but a moka lookup costs about as
//! much as computing the facts for a small policy. So each
//! worker thread first checks a small two-way set-associative array of recent answers (8,192
//! sets of two 48-byte slots), which costs a hash and two compares in one or two cache lines;
//! only its misses reach moka. Two ways rather than one: a direct-mapped array of the same
//! size loses many recurring addresses to collisions, and each of those goes to moka.
//!
//! The key is (snapshot generation, IP): facts from an old snapshot can never answer for a new
//! one, and the cache is also cleared when a snapshot is swapped in, so stale entries do not
//! hold memory. The account never enters the key: it changes from edit to edit, while the
//! facts about an address do not.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use super::striped::StripedCounter;

use editgate_core::engine::{Facts, Snapshot};

/// Sets in each thread's front cache (two slots each).
const FRONT_SETS: usize = 8_192;

/// One front-cache slot: the address as 128 bits, a stamp (0 = empty) holding the cache
/// instance, the snapshot generation and the address family, and the facts.
#[derive(Clone, Copy)]
struct Slot {
    ip: u128,
    stamp: u64,
    facts: Facts,
}

const EMPTY: Slot = Slot {
    ip: 0,
    stamp: 0,
    facts: Facts {
        set: editgate_core::index::SetId(0),
        anon: 0,
        asn: None,
        country: None,
        rep: 0,
    },
};

/// Cache instance (bits 40..63, never 0), generation (bits 0..39), IPv6 (bit 63). A
/// generation repeats its low 40 bits only after 10^12 reloads.
fn stamp(id: u64, generation: u64, ip: IpAddr) -> u64 {
    let v6 = u64::from(ip.is_ipv6()) << 63;
    v6 | ((id & 0x7F_FFFF) << 40) | (generation & 0xFF_FFFF_FFFF)
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

thread_local! {
    static FRONT: RefCell<Vec<[Slot; 2]>> = RefCell::new(vec![[EMPTY; 2]; FRONT_SETS]);
}

/// Distinguishes cache instances in the thread-local front cache (tests run several
/// servers in one process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn set_of(ip: u128) -> usize {
    let x = (ip >> 64) as u64 ^ ip as u64;
    // Fibonacci hashing: the top bits of a multiply spread nearby addresses.
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 51) as usize % FRONT_SETS
}

/// The facts cache with its hit and miss counts.
pub struct FactsCache {
    id: u64,
    cache: Option<Cache<(u64, IpAddr), Facts>>,
    hits: StripedCounter,
    misses: StripedCounter,
}

impl FactsCache {
    /// A cache of at most `capacity` addresses, each kept at most `ttl`. A capacity of 0
    /// disables caching (every lookup computes).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let cache = (capacity > 0).then(|| Cache::builder().max_capacity(capacity).time_to_live(ttl).build());
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cache,
            hits: StripedCounter::default(),
            misses: StripedCounter::default(),
        }
    }

    /// The facts about `ip` under `snapshot` (generation `generation`), from the cache or
    /// computed and stored.
    pub fn get(&self, snapshot: &Snapshot, generation: u64, ip: IpAddr) -> Facts {
        let Some(cache) = &self.cache else {
            self.misses.add(1);
            return snapshot.facts(ip);
        };
        let (key, st) = (bits(ip), stamp(self.id, generation, ip));
        let set = set_of(key);
        let front = FRONT.with(|f| {
            let f = f.borrow();
            let [a, b] = &f[set];
            [a, b]
                .into_iter()
                .find(|s| s.stamp == st && s.ip == key)
                .map(|s| s.facts)
        });
        if let Some(facts) = front {
            self.hits.add(1);
            return facts;
        }
        let f = match cache.get(&(generation, ip)) {
            Some(f) => {
                self.hits.add(1);
                f
            }
            None => {
                self.misses.add(1);
                let f = snapshot.facts(ip);
                cache.insert((generation, ip), f);
                f
            }
        };
        // The newer entry takes the first way; the first way's moves to the second.
        FRONT.with(|fr| {
            let mut fr = fr.borrow_mut();
            let ways = &mut fr[set];
            ways[1] = ways[0];
            ways[0] = Slot {
                ip: key,
                stamp: st,
                facts: f,
            };
        });
        f
    }

    /// Drops every entry (on snapshot swap).
    pub fn clear(&self) {
        if let Some(c) = &self.cache {
            c.invalidate_all();
        }
    }

    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.get()
    }

    /// Lookups that had to compute.
    pub fn misses(&self) -> u64 {
        self.misses.get()
    }

    /// Entries currently held (approximate).
    pub fn len(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.entry_count())
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
