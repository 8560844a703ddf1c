//! Per-IP facts behind a bounded moka cache.
//!
//! The key is (snapshot generation, IP): facts from an old snapshot can never answer for a new
//! one, and the cache is also cleared when a snapshot is swapped in, so stale entries do not
//! hold memory. The account never enters the key: it changes from edit to edit, while the
//! facts about an address do not.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use crate::engine::{Facts, Snapshot};

/// The facts cache with its hit and miss counts.
pub struct FactsCache {
    cache: Option<Cache<(u64, IpAddr), Facts>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl FactsCache {
    /// A cache of at most `capacity` addresses, each kept at most `ttl`. A capacity of 0
    /// disables caching (every lookup computes).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let cache = (capacity > 0).then(|| Cache::builder().max_capacity(capacity).time_to_live(ttl).build());
        Self {
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The facts about `ip` under `snapshot` (generation `generation`), from the cache or
    /// computed and stored.
    pub fn get(&self, snapshot: &Snapshot, generation: u64, ip: IpAddr) -> Facts {
        let Some(cache) = &self.cache else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return snapshot.facts(ip);
        };
        if let Some(f) = cache.get(&(generation, ip)) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return f;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let f = snapshot.facts(ip);
        cache.insert((generation, ip), f);
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
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that had to compute.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
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
