//! The pool's own clock: monotonic nanoseconds as a `u64`.
//!
//! # Implementation notes
//! Every `get()` and every return reads the clock once, for exact acquire
//! and hold histograms, so the clock is on the hot path. On a multi-thread
//! runtime it is the CPU's time-stamp counter, read through `quanta`
//! (calibrated once per process against the monotonic clock); why, with the
//! measurement, is in ARCHITECTURE.md ("The clock"). A `u64` of nanoseconds
//! subtracts and compares in one instruction.
//!
//! The counter can jump where the monotonic clock does not (a virtual
//! machine moved to another host). Two things keep a jump harmless: the
//! maintenance task [`recheck`](Clock::recheck)s the counter against the
//! monotonic clock every tick and shifts it back in step; and a connection
//! is retired for its lifetime only when the monotonic clock agrees (see
//! `State::expired`), so a forward jump retires nothing early, and a
//! backward one keeps a connection past its lifetime by at most one tick.
//!
//! tokio's clock can be paused (tests drive time with `advance`), and a
//! paused clock must be honoured. Pausing is only possible on a
//! current-thread runtime, so a pool built on one reads tokio's clock; a pool
//! built on a multi-thread runtime reads the counter. Either way the pool
//! keeps [`Stamp`]s, nanoseconds since the clock was made, and turns them
//! into tokio `Instant`s only where a timer needs one, measured back from a
//! fresh `Instant::now()` so that drift between the two clocks never shows.

use std::ops::Add;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::time::Instant;

/// A point in time: nanoseconds since the pool's clock was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// Later than any stamp a pool will ever see ("never").
    pub(crate) const NEVER: Stamp = Stamp(u64::MAX);

    #[cfg(test)]
    pub(crate) const ZERO: Stamp = Stamp(0);

    /// How long after `earlier` this is; zero if it is not later.
    #[inline]
    pub(crate) fn saturating_duration_since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.nanos_since(earlier))
    }

    /// `nanos` nanoseconds later; saturates at [`Stamp::NEVER`].
    #[inline]
    pub(crate) fn add_nanos(self, nanos: u64) -> Stamp {
        Stamp(self.0.saturating_add(nanos))
    }

    /// The same in nanoseconds, for statistics (no `Duration` round trip).
    #[inline]
    pub(crate) fn nanos_since(self, earlier: Stamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Stamp {
    type Output = Stamp;

    /// Saturates at [`Stamp::NEVER`].
    #[inline]
    fn add(self, d: Duration) -> Stamp {
        self.add_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Where a pool reads the time.
#[derive(Debug)]
pub(crate) enum Clock {
    /// The CPU's counter (or the monotonic clock where there is none),
    /// kept in step with the monotonic clock by [`Clock::recheck`].
    Counter {
        source: quanta::Clock,
        origin: u64,
        /// Added to every reading: the corrections for the jumps seen.
        offset: AtomicI64,
        /// A reading of both clocks at the last recheck.
        anchor: Mutex<(Stamp, Instant)>,
    },
    /// tokio's clock, which tests may pause.
    Runtime { origin: Instant },
}

/// A reading of the counter with a negative offset (see [`Clock::now`]).
#[cold]
#[inline(never)]
fn behind(nanos: u64, offset: i64) -> u64 {
    nanos.saturating_add_signed(offset)
}

/// Where the counter's stamps start (about 146 years), so that a backward
/// jump, however large, leaves room below to be seen and taken back.
const COUNTER_BASE: i64 = 1 << 62;

/// A gap between the counter and the monotonic clock beyond this (plus 1 %
/// of the time between two rechecks) is a jump, not drift.
const JUMP: Duration = Duration::from_millis(50);

impl Clock {
    /// The clock for a pool whose tasks run on `handle`'s runtime.
    pub(crate) fn for_runtime(handle: &Handle) -> Self {
        match handle.runtime_flavor() {
            RuntimeFlavor::CurrentThread => Self::runtime(),
            _ => {
                let source = quanta::Clock::new();
                let origin = source.raw();
                let clock = Self::Counter {
                    source,
                    origin,
                    offset: AtomicI64::new(COUNTER_BASE),
                    anchor: Mutex::new((Stamp(0), Instant::now())),
                };
                if let Self::Counter { anchor, .. } = &clock {
                    let now = clock.now();
                    anchor.lock().unwrap_or_else(PoisonError::into_inner).0 = now;
                }
                clock
            }
        }
    }

    /// tokio's clock.
    pub(crate) fn runtime() -> Self {
        Self::Runtime {
            origin: Instant::now(),
        }
    }

    /// Now.
    #[inline]
    pub(crate) fn now(&self) -> Stamp {
        match self {
            Self::Counter {
                source,
                origin,
                offset,
                ..
            } => {
                let nanos = source.delta_as_nanos(*origin, source.raw());
                let offset = offset.load(Ordering::Relaxed);
                // The offset stays positive unless the counter has run
                // ahead by more than `COUNTER_BASE` (over a century): one
                // unsigned add, where a signed one takes a dozen
                // instructions on every get and every return.
                Stamp(if offset >= 0 {
                    nanos.saturating_add(offset.unsigned_abs())
                } else {
                    behind(nanos, offset)
                })
            }
            Self::Runtime { origin } => Stamp(
                u64::try_from(Instant::now().saturating_duration_since(*origin).as_nanos())
                    .unwrap_or(u64::MAX),
            ),
        }
    }

    /// Compares the counter with the monotonic clock since the last call
    /// (the maintenance task calls it every tick) and, if the counter jumped
    /// (a virtual machine moved to another host, say), shifts it back in
    /// step. Returns the jump corrected, in nanoseconds (positive: the
    /// counter had run ahead).
    pub(crate) fn recheck(&self) -> Option<i64> {
        let Self::Counter { offset, anchor, .. } = self else {
            return None;
        };
        let mut anchor = anchor.lock().unwrap_or_else(PoisonError::into_inner);
        let (stamp, instant) = *anchor;
        let now = self.now();
        let real_now = Instant::now();
        let counted = i128::from(now.0) - i128::from(stamp.0);
        let real = real_now.saturating_duration_since(instant);
        let drift = counted - real.as_nanos() as i128;
        let tolerance = (JUMP + real / 100).as_nanos() as i128;
        if drift.abs() <= tolerance {
            *anchor = (now, real_now);
            return None;
        }
        let drift = i64::try_from(drift).unwrap_or(if drift > 0 { i64::MAX } else { i64::MIN });
        offset.fetch_sub(drift, Ordering::Relaxed);
        *anchor = (self.now(), real_now);
        Some(drift)
    }

    /// Moves the counter by `nanos`, as a jump of the CPU's counter would
    /// (for tests).
    #[cfg(test)]
    pub(crate) fn jump(&self, nanos: i64) {
        if let Self::Counter { offset, .. } = self {
            offset.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// The tokio `Instant` of stamp `at`, for timers.
    pub(crate) fn instant_at(&self, at: Stamp) -> Instant {
        let ahead = at.saturating_duration_since(self.now());
        let now = Instant::now();
        now.checked_add(ahead)
            .unwrap_or(now + Duration::from_secs(86_400 * 365))
    }

    /// The tokio `Instant` at which `elapsed` will have passed since `from`,
    /// for timers.
    pub(crate) fn instant_after(&self, from: Stamp, elapsed: Duration) -> Instant {
        let spent = self.now().saturating_duration_since(from);
        let now = Instant::now();
        now.checked_add(elapsed.saturating_sub(spent))
            .unwrap_or(now + Duration::from_secs(86_400 * 365))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_subtract_and_saturate() {
        let a = Stamp::ZERO + Duration::from_millis(5);
        let b = a + Duration::from_micros(250);
        assert_eq!(b.saturating_duration_since(a), Duration::from_micros(250));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(a + Duration::MAX, Stamp::NEVER);
        assert!(Stamp::NEVER > b);
    }

    #[test]
    fn the_counter_clock_follows_real_time() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let clock = Clock::for_runtime(rt.handle());
        assert!(matches!(clock, Clock::Counter { .. }));
        let wall = std::time::Instant::now();
        let t0 = clock.now();
        std::thread::sleep(Duration::from_millis(30));
        let measured = clock.now().saturating_duration_since(t0);
        let real = wall.elapsed();
        // Calibrated against the monotonic clock: within 1 % of it. `real`
        // brackets `measured`, so a preemption can only widen the margin.
        assert!(measured >= Duration::from_micros(29_700), "{measured:?}");
        assert!(
            measured <= real + real / 100 + Duration::from_micros(50),
            "{measured:?} vs {real:?}"
        );
    }

    #[test]
    fn a_jump_of_the_counter_is_found_and_taken_back() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let clock = Clock::for_runtime(rt.handle());
        assert_eq!(clock.recheck(), None, "no jump yet");
        let before = clock.now();
        let hour = 3_600_000_000_000;
        clock.jump(hour);
        assert!(clock.now().saturating_duration_since(before) >= Duration::from_secs(3600));
        let found = clock.recheck().expect("the jump is found");
        assert!((found - hour).abs() < 1_000_000_000, "{found}");
        let after = clock.now();
        assert!(after.saturating_duration_since(before) < Duration::from_secs(1));
        // Backwards too.
        clock.jump(-hour);
        let found = clock.recheck().expect("the jump is found");
        assert!((found + hour).abs() < 1_000_000_000, "{found}");
        assert!(clock.now() >= after);
    }

    #[tokio::test(start_paused = true)]
    async fn a_current_thread_pool_follows_the_paused_clock() {
        let clock = Clock::for_runtime(&Handle::current());
        assert!(matches!(clock, Clock::Runtime { .. }));
        let t0 = clock.now();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(
            clock.now().saturating_duration_since(t0),
            Duration::from_secs(3)
        );
        let at = clock.instant_after(t0, Duration::from_secs(5));
        assert_eq!(at, Instant::now() + Duration::from_secs(2));
    }
}
