//! Decisions per rule over the last hour, minute by minute, for the console's charts, beside
//! the totals since start. Only counts are kept: no address, no account, nothing about who was
//! decided.
//!
//! Every count is keyed by rule id *and* verdict, as the Prometheus counters are
//! (`editgate_decisions_total{verdict, rule}`, `editgate_shadow_matches_total{verdict,
//! rule}`), and holds them: a rule's history survives reloads that keep the rule, and a rule
//! whose verdict a reload changed keeps what it decided before under its old verdict, so the
//! overview, the rules page, the charts and `/metrics` all agree. A rule a reload removes is
//! folded into its verdict's retired counts, so the overview's totals still add up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::striped::{self, Counter, STRIPES};
use editgate_core::decision::Verdict;
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
/// Striped like the counters ([`striped`]): each thread counts in a ring of its own, and a
/// read adds them up.
pub struct MinuteRing {
    stripes: Box<[Ring; STRIPES]>,
}

/// One stripe's slots, on cache lines of their own.
#[repr(align(64))]
struct Ring {
    slots: [AtomicU64; MINUTES],
}

impl Default for MinuteRing {
    fn default() -> Self {
        Self {
            stripes: Box::new(std::array::from_fn(|_| Ring {
                slots: std::array::from_fn(|_| AtomicU64::new(0)),
            })),
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
        self.add(minute, 1);
    }

    /// Counts `n` events in `minute`, on this thread's stripe.
    fn add(&self, minute: u32, n: u32) {
        self.stripes[striped::stripe()].add(minute, n);
    }

    /// The counts of the [`MINUTES`] minutes up to and including `minute`, oldest first.
    /// Minutes with no event, and slots from longer ago (or from a clock that went back), read
    /// as 0.
    pub fn last_hour(&self, minute: u32) -> [u32; MINUTES] {
        std::array::from_fn(|i| {
            let Some(m) = minute.checked_sub((MINUTES - 1 - i) as u32) else {
                return 0;
            };
            self.stripes
                .iter()
                .fold(0u32, |sum, ring| sum.saturating_add(ring.count(m)))
        })
    }
}

impl Ring {
    /// Counts `n` events in `minute`, saturating at `u32::MAX`.
    fn add(&self, minute: u32, n: u32) {
        let slot = &self.slots[minute as usize % MINUTES];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let next = if (current >> 32) as u32 == minute {
                if current as u32 == u32::MAX {
                    return;
                }
                (current & !0xffff_ffff) | u64::from((current as u32).saturating_add(n))
            } else {
                (u64::from(minute) << 32) | u64::from(n)
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// The count of `minute`, if its slot still holds that minute.
    fn count(&self, minute: u32) -> u32 {
        let v = self.slots[minute as usize % MINUTES].load(Ordering::Relaxed);
        if (v >> 32) as u32 == minute { v as u32 } else { 0 }
    }
}

impl MinuteRing {
    /// Adds `other`'s counts of the last hour up to `minute` into this ring (a removed rule's
    /// history folded into its verdict's retired counts).
    pub fn absorb(&self, other: &MinuteRing, minute: u32) {
        for (i, count) in other.last_hour(minute).into_iter().enumerate() {
            if let Some(m) = minute.checked_sub((MINUTES - 1 - i) as u32)
                && count > 0
            {
                self.add(m, count);
            }
        }
    }
}

/// What one rule did with one verdict: the totals since start (the Prometheus counters
/// themselves) and the last hour.
#[derive(Debug)]
pub struct RuleActivity {
    /// `editgate_decisions_total{verdict, rule}`.
    pub decided_total: Counter,
    /// Decisions the rule made, per minute.
    pub decided: MinuteRing,
    /// `editgate_shadow_matches_total{verdict, rule}`.
    pub shadow_total: Counter,
    /// Times it would have decided, as a shadow rule, per minute.
    pub shadow: MinuteRing,
}

impl RuleActivity {
    /// A history around the given counters.
    pub fn new(decided_total: Counter, shadow_total: Counter) -> Self {
        Self {
            decided_total,
            decided: MinuteRing::default(),
            shadow_total,
            shadow: MinuteRing::default(),
        }
    }
}

/// Every rule's history, by rule id and verdict (`""` for the defaults), and the counts of
/// rules since removed, by verdict.
#[derive(Debug, Default)]
pub struct Activity {
    rules: Mutex<HashMap<(String, Verdict), Arc<RuleActivity>>>,
    /// Removed rules' totals and last hours, by verdict.
    retired: [(AtomicU64, MinuteRing); 3],
}

impl Activity {
    /// The history of rule `id` deciding with `verdict` (`""`: a default), made with
    /// `counters` when new (at load and reload, never on the request path).
    pub fn rule(&self, id: &str, verdict: Verdict, counters: impl FnOnce() -> (Counter, Counter)) -> Arc<RuleActivity> {
        let mut rules = self.lock();
        rules
            .entry((id.to_owned(), verdict))
            .or_insert_with(|| {
                let (decided, shadow) = counters();
                Arc::new(RuleActivity::new(decided, shadow))
            })
            .clone()
    }

    /// What rule `id` decided with each verdict, while it exists, by verdict.
    pub fn of_rule(&self, id: &str) -> Vec<(Verdict, Arc<RuleActivity>)> {
        let mut out: Vec<(Verdict, Arc<RuleActivity>)> = self
            .lock()
            .iter()
            .filter(|((rule, _), _)| rule == id)
            .map(|((_, v), a)| (*v, a.clone()))
            .collect();
        out.sort_by_key(|(v, _)| *v);
        out
    }

    /// Decisions since start and over the last hour up to `minute`, per verdict: every rule
    /// (under every verdict it decided with), the defaults, and the rules since removed.
    pub fn totals(&self, minute: u32) -> [(u64, [u32; MINUTES]); 3] {
        let mut out = [(0u64, [0u32; MINUTES]); 3];
        let mut add = |v: Verdict, total: u64, hour: [u32; MINUTES]| {
            let (t, h) = &mut out[v as usize];
            *t += total;
            for (sum, c) in h.iter_mut().zip(hour) {
                *sum = sum.saturating_add(c);
            }
        };
        for ((_, v), a) in self.lock().iter() {
            add(*v, a.decided_total.get(), a.decided.last_hour(minute));
        }
        for v in Verdict::ALL {
            let (total, ring) = &self.retired[v as usize];
            add(v, total.load(Ordering::Relaxed), ring.last_hour(minute));
        }
        out
    }

    /// Forgets the rules not in `ids` (removed by a reload; the defaults stay), folding their
    /// counts into the retired ones, so that the map does not grow with every id a policy
    /// ever had and the totals still add up.
    pub fn retain<'a>(&self, ids: impl IntoIterator<Item = &'a str>, minute: u32) {
        let keep: std::collections::HashSet<&str> = ids.into_iter().chain([""]).collect();
        self.lock().retain(|(id, v), a| {
            let kept = keep.contains(id.as_str());
            if !kept {
                let (total, ring) = &self.retired[*v as usize];
                total.fetch_add(a.decided_total.get(), Ordering::Relaxed);
                ring.absorb(&a.decided, minute);
            }
            kept
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Verdict), Arc<RuleActivity>>> {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        ring.stripes[striped::stripe()].slots[m as usize % MINUTES]
            .store((u64::from(m) << 32) | u64::from(u32::MAX - 1), Ordering::Relaxed);
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

    fn counters() -> (Counter, Counter) {
        (Counter::default(), Counter::default())
    }

    #[test]
    fn histories_follow_rule_ids_and_verdicts_across_reloads() {
        let a = Activity::default();
        let first = a.rule("tor-anon", Verdict::Block, counters);
        first.decided.record(5);
        first.decided_total.inc();
        assert_eq!(
            a.rule("tor-anon", Verdict::Block, counters).decided.last_hour(5)[59],
            1,
            "same id and verdict, same history"
        );
        // The rule now decides with another verdict: a history of its own, the old one kept.
        let changed = a.rule("tor-anon", Verdict::RequireLogin, counters);
        changed.decided.record(5);
        changed.decided.record(5);
        changed.decided_total.inc_by(2);
        let kinds: Vec<Verdict> = a.of_rule("tor-anon").into_iter().map(|(v, _)| v).collect();
        assert_eq!(kinds, [Verdict::RequireLogin, Verdict::Block]);
        let totals = a.totals(5);
        assert_eq!(
            (totals[Verdict::Block as usize].0, totals[Verdict::Block as usize].1[59]),
            (1, 1)
        );
        assert_eq!(totals[Verdict::RequireLogin as usize].0, 2);
        // A removed rule's history goes, its counts stay in the totals.
        a.retain(["other"], 5);
        assert!(a.of_rule("tor-anon").is_empty());
        let after = a.totals(5);
        assert_eq!(after, totals, "retired counts still add up");
        assert_eq!(a.rule("tor-anon", Verdict::Block, counters).decided.last_hour(5)[59], 0);
    }

    #[test]
    fn minute_of_counts_whole_minutes() {
        let t = Timestamp::from_second(3_599).unwrap();
        assert_eq!(minute_of(t), 59);
        assert_eq!(minute_of(Timestamp::from_second(-5).unwrap()), 0);
    }
}
