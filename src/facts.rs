//! Per-IP facts behind a bounded moka cache, fronted by a small per-thread cache.
//!
//! The moka cache is shared, bounded and expires entries; but a moka lookup costs about as
//! much as computing the facts for a small policy (measured: see BENCHMARKS.md). So each
//! worker thread first checks a 16,384-slot direct-mapped array of recent answers, which
//! costs a hash and a compare; only its misses reach moka.
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

use crate::engine::{Facts, Snapshot};

/// Slots in each thread's front cache.
const FRONT_SLOTS: usize = 16_384;

/// One front-cache slot: (cache instance, generation, address) → facts.
type FrontSlot = Option<(u64, u64, IpAddr, Facts)>;

thread_local! {
    static FRONT: RefCell<Vec<FrontSlot>> = RefCell::new(vec![None; FRONT_SLOTS]);
}

/// Distinguishes cache instances in the thread-local front cache (tests run several
/// servers in one process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn slot(ip: IpAddr) -> usize {
    let x = match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let b = u128::from(v6);
            (b >> 64) as u64 ^ b as u64
        }
    };
    // Fibonacci hashing: the top bits of a multiply spread nearby addresses.
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 50) as usize % FRONT_SLOTS
}

/// A counter striped over cache lines, so threads counting at once do not bounce one line
/// between cores (at ~1M decisions/s on two cores a shared counter costs more than the
/// lookup it counts). Reads sum the stripes.
#[derive(Debug, Default)]
pub struct StripedCounter([Padded; STRIPES]);

/// Stripes per counter.
const STRIPES: usize = 8;

#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

static NEXT_STRIPE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) as usize % STRIPES;
}

impl StripedCounter {
    /// Adds `n` on this thread's stripe.
    #[inline]
    pub fn add(&self, n: u64) {
        let i = STRIPE.with(|s| *s);
        self.0[i].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
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
        let i = slot(ip);
        let front = FRONT.with(|f| f.borrow()[i]);
        if let Some((id, g, a, facts)) = front
            && id == self.id
            && g == generation
            && a == ip
        {
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
        FRONT.with(|fr| fr.borrow_mut()[i] = Some((self.id, generation, ip, f)));
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
