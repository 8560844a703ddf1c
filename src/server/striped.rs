//! Counters striped over cache lines, so that threads counting at once do not bounce one
//! line between cores: at a million decisions a second on two cores, a shared counter costs
//! more than the lookup it counts. Each thread writes its own stripe; reads sum them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Stripes per counter.
pub const STRIPES: usize = 8;

static NEXT_STRIPE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) as usize % STRIPES;
}

/// This thread's stripe, in `0..STRIPES`.
#[inline]
pub fn stripe() -> usize {
    STRIPE.with(|s| *s)
}

/// A `u64` count striped over [`STRIPES`] cache lines.
#[derive(Debug, Default)]
pub struct StripedCounter([Padded; STRIPES]);

#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

impl StripedCounter {
    /// Adds `n` on this thread's stripe.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
}

/// As the value of a Prometheus counter (`Counter<u64, StripedCounter>`). `inc` and `inc_by`
/// return this thread's stripe before the addition, not the total: nothing reads it.
impl prometheus_client::metrics::counter::Atomic<u64> for StripedCounter {
    fn inc(&self) -> u64 {
        self.inc_by(1)
    }

    fn inc_by(&self, v: u64) -> u64 {
        self.0[stripe()].0.fetch_add(v, Ordering::Relaxed)
    }

    fn get(&self) -> u64 {
        StripedCounter::get(self)
    }
}

/// A Prometheus counter striped over cache lines.
pub type Counter = prometheus_client::metrics::counter::Counter<u64, StripedCounter>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn every_threads_counts_add_up() {
        let c = Arc::new(Counter::default());
        let threads: Vec<_> = (0..2 * STRIPES)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        c.inc();
                    }
                    c.inc_by(5);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(), 2 * STRIPES as u64 * 1_005);
    }
}
