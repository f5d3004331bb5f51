//! The pool's own clock: monotonic nanoseconds as a `u64`.
//!
//! # Implementation notes
//! Every `get()` and every return reads the clock once, for exact acquire and
//! hold histograms. `Instant::now()` goes through `clock_gettime` and costs
//! about 30 ns on the virtual machines pools usually run on; reading the
//! CPU's time-stamp counter (through `quanta`, calibrated once per process
//! against the monotonic clock) costs about 12 ns, and a `u64` of nanoseconds
//! subtracts and compares in one instruction where an `Instant` needs a
//! seconds-and-nanoseconds dance.
//!
//! tokio's clock can be paused (tests drive time with `advance`), and a
//! paused clock must be honoured. Pausing is only possible on a
//! current-thread runtime, so a pool built on one reads tokio's clock; a pool
//! built on a multi-thread runtime reads the counter. Either way the pool
//! keeps [`Stamp`]s, nanoseconds since the clock was made, and turns them
//! into tokio `Instant`s only where a timer needs one, measured back from a
//! fresh `Instant::now()` so that drift between the two clocks never shows.

use std::ops::Add;
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
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Stamp(self.0.saturating_add(nanos))
    }
}

/// Where a pool reads the time.
#[derive(Debug)]
pub(crate) enum Clock {
    /// The CPU's counter (or the monotonic clock where there is none).
    Counter { source: quanta::Clock, origin: u64 },
    /// tokio's clock, which tests may pause.
    Runtime { origin: Instant },
}

impl Clock {
    /// The clock for a pool whose tasks run on `handle`'s runtime.
    pub(crate) fn for_runtime(handle: &Handle) -> Self {
        match handle.runtime_flavor() {
            RuntimeFlavor::CurrentThread => Self::runtime(),
            _ => {
                let source = quanta::Clock::new();
                let origin = source.raw();
                Self::Counter { source, origin }
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
            Self::Counter { source, origin } => Stamp(source.delta_as_nanos(*origin, source.raw())),
            Self::Runtime { origin } => Stamp(
                u64::try_from(Instant::now().saturating_duration_since(*origin).as_nanos())
                    .unwrap_or(u64::MAX),
            ),
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
