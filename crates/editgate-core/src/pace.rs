//! Pacing for the long loops of a snapshot build: a parameter of the build, so that a reload
//! can give way to requests while every other load runs flat out.
//!
//! A reload rebuilds the whole snapshot on its own thread while requests are being answered.
//! On a saturated host the scheduler lets that thread run whole time slices (a few
//! milliseconds) while a request thread waits for the same core, which stretches the request
//! tail during a large reload. A lower priority alone only trades that for longer reloads. So
//! the build's long loops (list parsing, adding networks, the sort and sweep of the index,
//! hashing the inputs) call [`Pacer::tick`], and a reload passes
//! a pacer whose pause, [`Cooperative`], steps off the core after [`QUANTUM`] of work: a
//! request thread waiting for it runs at once, and the rebuild continues when its turn comes
//! back, with its fair share intact.
//!
//! The step off is a sleep, not `sched_yield`: since Linux's EEVDF scheduler, a yield gives up
//! the rest of the thread's share, and reloads paced with yields take seconds. The sleep asks
//! for 1 µs; the kernel's default timer slack makes it last about 55 µs or more. Without a
//! pause ([`Pacer::none`]) a tick is a bit test.

use std::time::{Duration, Instant};

/// The longest stretch of build work between two pauses: shorter keeps the request tail lower
/// but stretches a large reload past its target (`cargo xtask loadgen --reloads` measures
/// both).
pub const QUANTUM: Duration = Duration::from_micros(500);

/// The sleep asked for at each pause (see the module documentation for what it lasts).
const PAUSE: Duration = Duration::from_micros(1);

/// Where a build's long loops may give way.
pub struct Pacer<'a> {
    pause: Option<&'a mut dyn FnMut()>,
}

impl<'a> Pacer<'a> {
    /// No pauses: a tick is a bit test.
    pub fn none() -> Self {
        Self { pause: None }
    }

    /// Calls `pause` at every [`Pacer::point`]; it decides whether to give way.
    pub fn with(pause: &'a mut dyn FnMut()) -> Self {
        Self { pause: Some(pause) }
    }

    /// A point in a long loop, with the loop's item counter: one call in 1,024 goes on to
    /// [`Pacer::point`].
    #[inline]
    pub fn tick(&mut self, i: usize) {
        if i.is_multiple_of(1024) {
            self.point();
        }
    }

    /// A point where the build may give way.
    #[inline]
    pub fn point(&mut self) {
        if let Some(pause) = self.pause.as_mut() {
            pause();
        }
    }
}

/// The reload thread's pause: a sleep once [`QUANTUM`] of work has passed since the last one.
#[derive(Debug)]
pub struct Cooperative {
    last: Instant,
    pauses: u64,
}

impl Default for Cooperative {
    fn default() -> Self {
        Self {
            last: Instant::now(),
            pauses: 0,
        }
    }
}

impl Cooperative {
    /// Gives way if a quantum of work has passed.
    pub fn pause(&mut self) {
        if self.last.elapsed() >= QUANTUM {
            std::thread::sleep(PAUSE);
            self.pauses += 1;
            self.last = Instant::now();
        }
    }

    /// How many times it gave way.
    pub fn pauses(&self) -> u64 {
        self.pauses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_reaches_the_pause_once_in_1024() {
        let mut calls = 0;
        let mut count = || calls += 1;
        let mut pacer = Pacer::with(&mut count);
        for i in 0..4096 {
            pacer.tick(i);
        }
        pacer.point();
        assert_eq!(calls, 5);
        let mut none = Pacer::none();
        for i in 0..4096 {
            none.tick(i);
        }
    }

    #[test]
    fn cooperative_gives_way_only_after_a_quantum() {
        let mut c = Cooperative::default();
        c.pause();
        assert_eq!(c.pauses(), 0, "no work yet");
        std::thread::sleep(QUANTUM * 2);
        c.pause();
        assert_eq!(c.pauses(), 1);
        c.pause();
        assert_eq!(c.pauses(), 1, "the clock restarted at the pause");
    }
}
