//! Decisions per rule over the last hour, minute by minute, for the console's charts. Only
//! counts are kept: no address, no account, nothing about who was decided.
//!
//! A rule's history is keyed by its id, so it survives reloads that keep the rule; the
//! totals since start are the Prometheus counters (`editgate_decisions_total`,
//! `editgate_shadow_matches_total`), which are keyed the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

/// Minutes of history kept.
pub const MINUTES: usize = 60;

/// The minute `t` falls in, counted from the Unix epoch (fits 32 bits until the year 10136).
pub fn minute_of(t: Timestamp) -> u32 {
    (t.as_second().max(0) / 60) as u32
}

/// Counts per minute over the last [`MINUTES`] minutes, lock-free. Each slot packs the minute
/// it counts (high 32 bits) with its count (low 32 bits), so a slot left from an hour ago is
/// told apart from the current one and restarted in the same compare-and-swap: a count is
/// never lost or carried over at a minute boundary, and no background task clears slots.
pub struct MinuteRing {
    slots: [AtomicU64; MINUTES],
}

impl Default for MinuteRing {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl std::fmt::Debug for MinuteRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinuteRing").finish_non_exhaustive()
    }
}

impl MinuteRing {
    /// Counts one event in `minute`. A count saturates at `u32::MAX` per minute.
    pub fn record(&self, minute: u32) {
        let slot = &self.slots[minute as usize % MINUTES];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let next = if (current >> 32) as u32 == minute {
                if current as u32 == u32::MAX {
                    return;
                }
                current + 1
            } else {
                (u64::from(minute) << 32) | 1
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// The counts of the [`MINUTES`] minutes up to and including `minute`, oldest first.
    /// Minutes with no event, and slots from longer ago (or from a clock that went back), read
    /// as 0.
    pub fn last_hour(&self, minute: u32) -> [u32; MINUTES] {
        std::array::from_fn(|i| {
            let Some(m) = minute.checked_sub((MINUTES - 1 - i) as u32) else {
                return 0;
            };
            let v = self.slots[m as usize % MINUTES].load(Ordering::Relaxed);
            if (v >> 32) as u32 == m { v as u32 } else { 0 }
        })
    }
}

/// One rule's history.
#[derive(Debug, Default)]
pub struct RuleActivity {
    /// Decisions the rule made.
    pub decided: MinuteRing,
    /// Times it would have decided, as a shadow rule.
    pub shadow: MinuteRing,
}

/// Every rule's history, by rule id, plus the decisions no rule made, by verdict.
#[derive(Debug, Default)]
pub struct Activity {
    rules: Mutex<HashMap<String, Arc<RuleActivity>>>,
    /// Decisions by a default, indexed by [`editgate_core::decision::Verdict`].
    pub defaults: [Arc<MinuteRing>; 3],
}

impl Activity {
    /// The history of rule `id`, created when new (at load and reload, never on the request
    /// path).
    pub fn rule(&self, id: &str) -> Arc<RuleActivity> {
        let mut rules = self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rules.entry(id.to_owned()).or_default().clone()
    }

    /// Forgets the rules not in `ids` (removed by a reload), so that the map does not grow
    /// with every id a policy ever had.
    pub fn retain<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let keep: std::collections::HashSet<&str> = ids.into_iter().collect();
        let mut rules = self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rules.retain(|id, _| keep.contains(id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_minute_and_read_oldest_first() {
        let ring = MinuteRing::default();
        let now = 1_000_000;
        for _ in 0..3 {
            ring.record(now);
        }
        ring.record(now - 1);
        ring.record(now - 59);
        let h = ring.last_hour(now);
        assert_eq!(h[59], 3);
        assert_eq!(h[58], 1);
        assert_eq!(h[0], 1);
        assert_eq!(h.iter().map(|&c| u64::from(c)).sum::<u64>(), 5);
    }

    #[test]
    fn a_slot_from_an_hour_ago_restarts_instead_of_adding() {
        let ring = MinuteRing::default();
        let then = 500_000;
        for _ in 0..7 {
            ring.record(then);
        }
        // Same slot, one hour later.
        let now = then + MINUTES as u32;
        assert_eq!(ring.last_hour(now)[0], 0, "an hour-old count is not in the last hour");
        ring.record(now);
        assert_eq!(ring.last_hour(now)[59], 1);
        // Reading an hour later still, everything is gone.
        assert_eq!(ring.last_hour(now + MINUTES as u32), [0; MINUTES]);
    }

    #[test]
    fn minutes_before_the_epoch_and_clocks_that_went_back_read_as_zero() {
        let ring = MinuteRing::default();
        ring.record(10);
        let h = ring.last_hour(10);
        assert_eq!(h[59], 1);
        assert_eq!(h[..50], [0; 50]);
        // Read as of an earlier minute than the one recorded: the slot is not that minute's.
        assert_eq!(ring.last_hour(9)[59], 0);
    }

    #[test]
    fn a_count_saturates_instead_of_spilling_into_the_minute() {
        let ring = MinuteRing::default();
        let m = 77;
        ring.slots[m as usize % MINUTES].store((u64::from(m) << 32) | u64::from(u32::MAX - 1), Ordering::Relaxed);
        ring.record(m);
        ring.record(m);
        assert_eq!(ring.last_hour(m)[59], u32::MAX);
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let ring = Arc::new(MinuteRing::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let ring = ring.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        ring.record(100 + i % 2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let h = ring.last_hour(101);
        assert_eq!((h[58], h[59]), (20_000, 20_000));
    }

    #[test]
    fn histories_follow_rule_ids_across_reloads() {
        let a = Activity::default();
        let first = a.rule("tor-anon");
        first.decided.record(5);
        assert_eq!(a.rule("tor-anon").decided.last_hour(5)[59], 1, "same id, same history");
        a.retain(["other"]);
        assert_eq!(
            a.rule("tor-anon").decided.last_hour(5)[59],
            0,
            "a removed rule's history goes"
        );
    }

    #[test]
    fn minute_of_counts_whole_minutes() {
        let t = Timestamp::from_second(3_599).unwrap();
        assert_eq!(minute_of(t), 59);
        assert_eq!(minute_of(Timestamp::from_second(-5).unwrap()), 0);
    }
}
