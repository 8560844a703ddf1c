//! Cooperative pacing for the long loops of a snapshot build.
//!
//! A reload rebuilds the whole snapshot on its own thread while requests are being answered.
//! On a saturated two-core host the scheduler let that thread run whole time slices (a few
//! milliseconds) while a request thread waited for the same core: the p99 during 1M-prefix
//! reloads was twice the steady p99. A lower priority alone only traded that for longer
//! reloads (see BENCHMARKS.md). So the build's long loops call [`tick`], and on a thread that
//! opted in with [`cooperatively`], a tick after [`QUANTUM`] of work steps off the core for a
//! moment: a request thread waiting for it runs at once, and the rebuild continues when its
//! turn comes back, with its fair share intact.
//!
//! The step off is a sleep, not `sched_yield`: since Linux's EEVDF scheduler, a yield gives up
//! the rest of the thread's share, and reloads paced with yields took up to 5 s. The sleep asks
//! for 1 µs; the kernel's default timer slack makes it last about 55 µs or more. On an idle
//! host that costs a 1M-prefix load 17% (`cargo bench --bench decide -- load`: 205 → 241 ms).
//!
//! Elsewhere (CLI, tests, benches, the first load at start) a tick is a bit test and, one call
//! in 1,024, a thread-local read. Plain std: the pure core stays free of any runtime.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The longest stretch of build work between two pauses. Measured with `editgate loadgen
/// --synth-prefixes 1000000 --reloads 10`: 250 µs kept the p99 lower but stretched reloads
/// past 1 s; 500 µs kept both targets.
pub const QUANTUM: Duration = Duration::from_micros(500);

/// The sleep asked for at each pause (see the module documentation for what it lasts).
const PAUSE: Duration = Duration::from_micros(1);

thread_local! {
    /// When this thread last paused, while it runs [`cooperatively`].
    static LAST_PAUSE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with pacing on: a [`tick`] inside it may pause the thread. Pacing is off again
/// when `f` returns or unwinds, and a nested call leaves it on.
pub fn cooperatively<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LAST_PAUSE.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(LAST_PAUSE.with(|l| l.replace(Some(Instant::now()))));
    f()
}

/// Whether this thread runs inside [`cooperatively`].
pub fn is_on() -> bool {
    LAST_PAUSE.with(|l| l.get().is_some())
}

/// A point where a long loop may pause: call it with the loop's item counter. One call in
/// 1,024 goes on to [`point`].
#[inline]
pub fn tick(i: usize) {
    if i.is_multiple_of(1024) {
        point();
    }
}

/// Pauses the thread if pacing is on and [`QUANTUM`] has passed since the last pause.
#[inline(never)]
pub fn point() {
    LAST_PAUSE.with(|l| {
        if let Some(last) = l.get()
            && last.elapsed() >= QUANTUM
        {
            std::thread::sleep(PAUSE);
            l.set(Some(Instant::now()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_is_on_only_inside_cooperatively() {
        assert!(!is_on());
        let inside = cooperatively(|| {
            let nested = cooperatively(is_on);
            (is_on(), nested, is_on())
        });
        assert_eq!(inside, (true, true, true));
        assert!(!is_on());
    }

    #[test]
    fn pacing_is_off_after_a_panic_inside() {
        let caught = std::panic::catch_unwind(|| cooperatively(|| panic!("boom")));
        assert!(caught.is_err());
        assert!(!is_on());
    }

    #[test]
    fn a_point_after_the_quantum_pauses_and_restarts_the_clock() {
        cooperatively(|| {
            let before = LAST_PAUSE.with(Cell::get);
            std::thread::sleep(QUANTUM * 2);
            point();
            let after = LAST_PAUSE.with(Cell::get);
            assert!(after > before, "{before:?} → {after:?}");
        });
    }

    /// Pausing changes when the build runs, never what it builds: the shipped policy (60,000
    /// list networks, long enough to pause many times) gives the same facts either way.
    #[test]
    fn a_paced_load_builds_the_same_snapshot() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let now = jiff::Timestamp::now();
        let plain = crate::load::load_dir(&dir, now).unwrap();
        let paced = cooperatively(|| crate::load::load_dir(&dir, now)).unwrap();
        let mut rng = crate::synth::Rng::new(3);
        let mut probes: Vec<std::net::IpAddr> = (0..2000).map(|_| rng.ip()).collect();
        let tor = std::fs::read(dir.join("lists/tor-exit-addresses.txt")).unwrap();
        probes.extend(crate::sources::tor::parse_bytes(&tor).unwrap().1);
        let vpn = std::fs::read(dir.join("lists/vpn.txt")).unwrap();
        let vpn = crate::sources::iplist::parse_bytes(&vpn, false).unwrap();
        probes.extend(vpn.iter().step_by(97).map(|n| rng.ip_in(n)));
        let listed = probes
            .iter()
            .filter(|ip| plain.snapshot.facts(**ip) != crate::engine::Facts::default())
            .count();
        assert!(listed > 500, "only {listed} of {} probes are in a list", probes.len());
        for ip in probes {
            assert_eq!(plain.snapshot.facts(ip), paced.snapshot.facts(ip), "{ip}");
        }
    }

    #[test]
    fn ticks_outside_pacing_do_nothing() {
        for i in 0..4096 {
            tick(i);
        }
        assert!(!is_on());
    }
}
