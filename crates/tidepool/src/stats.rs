//! Exact statistics: gauges, counters, latency histograms and a rolling window.
//!
//! Gauges and counters are updated under the pool's lock, in the same
//! critical section that changes the pool, except for what the per-thread
//! stash records on its hit path (hits, hold times, the rolling window): each
//! shard keeps those under its own lock, and a snapshot adds them in before
//! it reads. So a [`Stats`] snapshot is consistent:
//! `idle + in_use + checking + closing == size` holds in every snapshot, not
//! just on average.

use std::time::Duration;

use crate::clock::Stamp;
use serde::Serialize;

use crate::histogram::{Histogram, LatencySummary, ms};

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Manager::has_broken`](crate::Manager::has_broken) said so on return,
    /// or the caller marked it broken.
    Broken,
    /// Validation before checkout or a keepalive ping failed.
    FailedValidation,
    /// It reached its (jittered) maximum lifetime.
    MaxLifetime,
    /// It sat idle longer than the idle timeout.
    IdleTimeout,
    /// [`Pool::evict`](crate::Pool::evict) retired it.
    Evicted,
    /// An overflow connection came back with nobody waiting.
    OverflowReturned,
    /// Its protocol state is unknown: a hook (`before_checkout`, `reset`)
    /// failed or panicked on it, or a `get()` was dropped while the
    /// connection was being validated or prepared for it.
    Error,
    /// The pool was resized below its current size.
    Shrunk,
    /// The pool was closed or drained.
    PoolClosed,
}

impl CloseReason {
    /// Every reason, in a stable order.
    pub const ALL: [CloseReason; 9] = [
        Self::Broken,
        Self::FailedValidation,
        Self::MaxLifetime,
        Self::IdleTimeout,
        Self::Evicted,
        Self::OverflowReturned,
        Self::Error,
        Self::Shrunk,
        Self::PoolClosed,
    ];

    /// The reason in snake case, as used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Broken => "broken",
            Self::FailedValidation => "failed_validation",
            Self::MaxLifetime => "max_lifetime",
            Self::IdleTimeout => "idle_timeout",
            Self::Evicted => "evicted",
            Self::OverflowReturned => "overflow_returned",
            Self::Error => "error",
            Self::Shrunk => "shrunk",
            Self::PoolClosed => "pool_closed",
        }
    }
}

/// Connections closed, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClosedCounts {
    /// See [`CloseReason::Broken`].
    pub broken: u64,
    /// See [`CloseReason::FailedValidation`].
    pub failed_validation: u64,
    /// See [`CloseReason::MaxLifetime`].
    pub max_lifetime: u64,
    /// See [`CloseReason::IdleTimeout`].
    pub idle_timeout: u64,
    /// See [`CloseReason::Evicted`].
    pub evicted: u64,
    /// See [`CloseReason::OverflowReturned`].
    pub overflow_returned: u64,
    /// See [`CloseReason::Error`].
    pub error: u64,
    /// See [`CloseReason::Shrunk`].
    pub shrunk: u64,
    /// See [`CloseReason::PoolClosed`].
    pub pool_closed: u64,
}

impl ClosedCounts {
    /// The counter for one reason.
    pub fn get(&self, reason: CloseReason) -> u64 {
        match reason {
            CloseReason::Broken => self.broken,
            CloseReason::FailedValidation => self.failed_validation,
            CloseReason::MaxLifetime => self.max_lifetime,
            CloseReason::IdleTimeout => self.idle_timeout,
            CloseReason::Evicted => self.evicted,
            CloseReason::OverflowReturned => self.overflow_returned,
            CloseReason::Error => self.error,
            CloseReason::Shrunk => self.shrunk,
            CloseReason::PoolClosed => self.pool_closed,
        }
    }

    pub(crate) fn bump(&mut self, reason: CloseReason) {
        let slot = match reason {
            CloseReason::Broken => &mut self.broken,
            CloseReason::FailedValidation => &mut self.failed_validation,
            CloseReason::MaxLifetime => &mut self.max_lifetime,
            CloseReason::IdleTimeout => &mut self.idle_timeout,
            CloseReason::Evicted => &mut self.evicted,
            CloseReason::OverflowReturned => &mut self.overflow_returned,
            CloseReason::Error => &mut self.error,
            CloseReason::Shrunk => &mut self.shrunk,
            CloseReason::PoolClosed => &mut self.pool_closed,
        };
        *slot += 1;
    }

    /// All closes, whatever the reason.
    pub fn total(&self) -> u64 {
        CloseReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

/// Monotonic counters since the pool was built.
///
/// Once no `get()` is in flight, every call is accounted for exactly once:
/// `gets == served + timeouts + connect_failures + rejected_closed + none_idle + cancelled`,
/// where `served = checkouts - checkout_rejections`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Counters {
    /// Calls to `get`, `get_timeout` and `try_get`.
    pub gets: u64,
    /// Gets served at once by an idle connection.
    pub hits: u64,
    /// Gets served by a connection created for them.
    pub misses: u64,
    /// Gets that had to queue.
    pub waited: u64,
    /// Connections handed out (including ones then rejected by validation).
    pub checkouts: u64,
    /// Checkouts of a connection that had been used before.
    pub reused: u64,
    /// Checkouts undone because validation or `before_checkout` failed.
    pub checkout_rejections: u64,
    /// Gets that timed out.
    pub timeouts: u64,
    /// Gets that failed because connecting failed on every attempt.
    pub connect_failures: u64,
    /// Gets refused because the pool was closed.
    pub rejected_closed: u64,
    /// `try_get` calls that found nothing idle.
    pub none_idle: u64,
    /// Gets dropped by their caller before they completed.
    pub cancelled: u64,
    /// Connections opened.
    pub created: u64,
    /// Overflow connections opened (included in `created`).
    pub overflow_created: u64,
    /// Failed connect attempts (each retry counts).
    pub create_errors: u64,
    /// Connect attempts that were retries.
    pub retries: u64,
    /// Failed validations (before checkout or keepalive).
    pub validation_failures: u64,
    /// Keepalive pings sent.
    pub keepalives: u64,
    /// Connections detached from the pool by their holder.
    pub detached: u64,
    /// Connections held past the leak detection threshold.
    pub leaks: u64,
    /// Panics caught in manager hooks or the pool's background work; each
    /// is logged, and the connection it concerned is closed.
    pub panics: u64,
    /// Connections closed, by reason.
    pub closed: ClosedCounts,
}

impl Counters {
    /// Gets that returned a connection.
    pub fn served(&self) -> u64 {
        self.checkouts - self.checkout_rejections
    }
}

/// Point-in-time sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Gauges {
    /// Open connections (idle + in use + checking + closing), overflow
    /// included.
    pub size: usize,
    /// Connections ready in the pool.
    pub idle: usize,
    /// Connections checked out by callers (or being validated for one).
    pub in_use: usize,
    /// Connections out for a background check: a reset after return, or a
    /// keepalive ping.
    pub checking: usize,
    /// Connections their last holder is closing
    /// ([`Pooled::retire`](crate::Pooled::retire)): still open, so they keep
    /// their slot. `idle + in_use + checking + closing == size`.
    pub closing: usize,
    /// Callers queued for a connection.
    pub waiting: usize,
    /// Connections being opened.
    pub pending: usize,
    /// Open overflow connections.
    pub overflow: usize,
    /// Overflow connections checked out.
    pub overflow_in_use: usize,
    /// Configured maximum (regular connections).
    pub max_size: usize,
    /// Configured minimum idle.
    pub min_idle: usize,
    /// Configured overflow allowance.
    pub max_overflow: usize,
    /// Whether gets are paused.
    pub paused: bool,
    /// Whether the pool is closed.
    pub closed: bool,
}

/// Values derived from the counters and the recent window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Derived {
    /// In use / max size, as a fraction (above 1.0 when overflow is in use).
    pub utilization: f64,
    /// Hits / (hits + misses); `None` before any get.
    pub hit_ratio: Option<f64>,
    /// Reuses per created connection; `None` before any connection.
    pub reuse_ratio: Option<f64>,
    /// Gets per second over the part of the recent window in which gets
    /// arrived (from the first to the last get in it, at least 1 s): a
    /// burst is measured over the burst, not over the idle time around it.
    pub arrival_rate: f64,
    /// Mean time a connection was held, over the recent window.
    #[serde(serialize_with = "ms")]
    pub mean_hold: Duration,
    /// Mean connections in use while gets arrived in the recent window
    /// (total hold time / that span), i.e. the load Little's law sees.
    pub mean_in_use: f64,
    /// The most connections checked out at once in the recent window (its
    /// high-water mark), counting those parked for reuse by the thread that
    /// last returned them, which it may take back at any moment.
    pub peak_in_use: usize,
    /// The most callers waiting at once in the recent window.
    pub peak_waiting: usize,
    /// The most connections in use plus callers waiting at one moment in
    /// the recent window: the concurrency the load asked for at its peak.
    pub peak_demand: usize,
    /// Failed connects and timeouts in the recent window.
    pub recent_errors: u64,
    /// Gets that had to queue in the recent window.
    pub recent_waits: u64,
    /// Overflow connections opened in the recent window.
    pub recent_overflow: u64,
    /// How much history the window holds (up to `stats_window`).
    #[serde(serialize_with = "ms")]
    pub window: Duration,
    /// The span of the window in which gets arrived (first to last get).
    #[serde(serialize_with = "ms")]
    pub active: Duration,
    /// Time since the last get.
    #[serde(serialize_with = "ms")]
    pub idle_for: Duration,
}

/// The pool's latency histograms, in full.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Histograms {
    /// Time from `get()` to a connection in hand (zero for hits).
    pub acquire: Histogram,
    /// Time a connection was held by its caller.
    pub hold: Histogram,
    /// Time to open a connection (successful attempts).
    pub create: Histogram,
}

/// A consistent snapshot of one pool's statistics.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// The pool's name.
    pub name: String,
    /// Sizes now.
    pub gauges: Gauges,
    /// Counters since start.
    pub counters: Counters,
    /// Acquire-wait percentiles.
    pub acquire: LatencySummary,
    /// Hold-time percentiles.
    pub hold: LatencySummary,
    /// Create-time percentiles.
    pub create: LatencySummary,
    /// Ratios and recent rates.
    pub derived: Derived,
    /// The histograms behind the summaries (for exporters).
    #[serde(skip)]
    pub histograms: Histograms,
}

const SLOTS: usize = 6;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    gets: u64,
    waits: u64,
    returns: u64,
    hold_ns: u128,
    errors: u64,
    overflow: u64,
    /// The first and last get in the slot (valid when `gets > 0`).
    first_get: Stamp,
    last_get: Stamp,
    peak_in_use: usize,
    peak_waiting: usize,
    peak_demand: usize,
}

impl Slot {
    fn add(&mut self, other: &Slot) {
        if other.gets > 0 {
            self.first_get = if self.gets > 0 {
                self.first_get.min(other.first_get)
            } else {
                other.first_get
            };
            self.last_get = self.last_get.max(other.last_get);
        }
        self.gets += other.gets;
        self.waits += other.waits;
        self.returns += other.returns;
        self.hold_ns += other.hold_ns;
        self.errors += other.errors;
        self.overflow += other.overflow;
        self.peak_in_use = self.peak_in_use.max(other.peak_in_use);
        self.peak_waiting = self.peak_waiting.max(other.peak_waiting);
        self.peak_demand = self.peak_demand.max(other.peak_demand);
    }
}

/// Counts over the recent `stats_window`, kept in six rotating slots.
#[derive(Debug)]
pub(crate) struct Window {
    epoch: Stamp,
    slot_ns: u128,
    current: u64,
    /// `current % SLOTS`, kept so that the hot path does no division.
    current_slot: usize,
    /// When the current slot ends: until then no division is needed.
    current_end: Stamp,
    slots: [Slot; SLOTS],
}

impl Window {
    pub(crate) fn new(epoch: Stamp, window: Duration) -> Self {
        let slot_ns = (window.as_nanos() / SLOTS as u128).max(1);
        Self {
            epoch,
            slot_ns,
            current: 0,
            current_slot: 0,
            current_end: epoch + Duration::from_nanos(slot_ns as u64),
            slots: [Slot::default(); SLOTS],
        }
    }

    #[inline]
    fn slot(&mut self, now: Stamp) -> &mut Slot {
        if now >= self.current_end {
            self.rotate(now);
        }
        &mut self.slots[self.current_slot]
    }

    /// When the current slot began.
    fn slot_start(&self) -> Stamp {
        self.epoch + Duration::from_nanos((u128::from(self.current) * self.slot_ns) as u64)
    }

    /// Moves to the slot `now` falls in, clearing the slots skipped.
    #[cold]
    #[inline(never)]
    fn rotate(&mut self, now: Stamp) {
        let idx = (now.saturating_duration_since(self.epoch).as_nanos() / self.slot_ns) as u64;
        self.current_end =
            self.epoch + Duration::from_nanos(((u128::from(idx) + 1) * self.slot_ns) as u64);
        if idx != self.current {
            let stale = (idx - self.current).min(SLOTS as u64);
            for k in 0..stale {
                self.slots[((idx - k) % SLOTS as u64) as usize] = Slot::default();
            }
            self.current = idx;
            self.current_slot = (idx % SLOTS as u64) as usize;
        }
    }

    #[inline]
    pub(crate) fn get(&mut self, now: Stamp, waited: bool) {
        let s = self.slot(now);
        if s.gets == 0 {
            s.first_get = now;
        }
        s.last_get = now;
        s.gets += 1;
        s.waits += u64::from(waited);
    }

    /// The last get recorded in the window, if any.
    pub(crate) fn last_get(&self) -> Option<Stamp> {
        self.slots
            .iter()
            .filter(|s| s.gets > 0)
            .map(|s| s.last_get)
            .max()
    }

    /// Records how many connections are checked out and how many callers
    /// wait right now, for the window's high-water marks.
    pub(crate) fn load(&mut self, now: Stamp, in_use: usize, waiting: usize) {
        let s = self.slot(now);
        s.peak_in_use = s.peak_in_use.max(in_use);
        s.peak_waiting = s.peak_waiting.max(waiting);
        s.peak_demand = s.peak_demand.max(in_use + waiting);
    }

    /// A return after a hold of `held_ns` nanoseconds.
    #[inline]
    pub(crate) fn hold(&mut self, now: Stamp, held_ns: u64) {
        let s = self.slot(now);
        s.returns += 1;
        s.hold_ns += u128::from(held_ns);
    }

    pub(crate) fn error(&mut self, now: Stamp) {
        self.slot(now).errors += 1;
    }

    pub(crate) fn overflow(&mut self, now: Stamp) {
        self.slot(now).overflow += 1;
    }

    /// Adds this window's counts into `dst` (a window with the same epoch
    /// and length) and clears them.
    pub(crate) fn drain_into(&mut self, dst: &mut Window, now: Stamp) {
        debug_assert!(self.epoch == dst.epoch && self.slot_ns == dst.slot_ns);
        // Either window may already be in a later slot than `now` (stamped
        // by a thread that read the clock later): bring both to the latest,
        // so that slot `i` means the same interval in each.
        let at = now.max(self.slot_start()).max(dst.slot_start());
        self.slot(at);
        dst.slot(at);
        for (d, s) in dst.slots.iter_mut().zip(&mut self.slots) {
            d.add(&std::mem::take(s));
        }
    }

    /// Sums the window and fills the windowed fields of `d`.
    pub(crate) fn derive(&mut self, now: Stamp, d: &mut Derived) {
        self.slot(now);
        let mut total = Slot::default();
        for s in &self.slots {
            total.add(s);
        }
        let full = Duration::from_nanos((self.slot_ns * SLOTS as u128) as u64);
        let span = now.saturating_duration_since(self.epoch).min(full);
        d.window = span;
        d.recent_errors = total.errors;
        d.recent_waits = total.waits;
        d.recent_overflow = total.overflow;
        d.peak_in_use = total.peak_in_use;
        d.peak_waiting = total.peak_waiting;
        d.peak_demand = total.peak_demand;
        if total.gets > 0 {
            d.active = total.last_get.saturating_duration_since(total.first_get);
            // Rates over the span in which gets arrived, never over less
            // than a second (nor more than the window).
            let second = Duration::from_secs(1);
            let secs = d.active.max(second).min(span.max(second)).as_secs_f64();
            d.arrival_rate = total.gets as f64 / secs;
            d.mean_in_use = total.hold_ns as f64 / 1e9 / secs;
        }
        if total.returns > 0 {
            d.mean_hold = Duration::from_nanos((total.hold_ns / u128::from(total.returns)) as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_old_slots() {
        let t0 = Stamp::ZERO;
        let mut w = Window::new(t0, Duration::from_secs(60));
        w.get(t0, false);
        w.error(t0);
        w.hold(t0 + Duration::from_secs(5), 2_000_000_000);
        let mut d = Derived::default();
        w.derive(t0 + Duration::from_secs(30), &mut d);
        assert_eq!(d.recent_errors, 1);
        assert_eq!(d.mean_hold, Duration::from_secs(2));
        // One get: its rate is measured over no less than a second.
        assert!((d.arrival_rate - 1.0).abs() < 1e-9);
        let mut d = Derived::default();
        w.derive(t0 + Duration::from_secs(200), &mut d);
        assert_eq!(d.recent_errors, 0);
        assert_eq!(d.arrival_rate, 0.0);
    }

    /// The window's arrival rate as of `at`.
    fn arrival_rate(w: &mut Window, at: Stamp) -> f64 {
        let mut d = Derived::default();
        w.derive(at, &mut d);
        d.arrival_rate
    }

    #[test]
    fn a_drained_window_adds_into_the_same_intervals() {
        let t0 = Stamp::ZERO;
        let at = |s| t0 + Duration::from_secs(s);
        let mut shard = Window::new(t0, Duration::from_secs(60));
        let mut pool = Window::new(t0, Duration::from_secs(60));
        // The shard has moved one slot (10 s) further than the pool.
        pool.get(at(5), false);
        shard.get(at(15), false);
        shard.drain_into(&mut pool, at(6));
        // Two gets, 10 s apart: 2 over the 10 s in which gets arrived.
        let rate = arrival_rate(&mut pool, at(19));
        assert!((rate - 2.0 / 10.0).abs() < 1e-9, "{rate}");
        // Each leaves the window when its own slot does: the pool's at
        // 60 s, the shard's at 70 s.
        let rate = arrival_rate(&mut pool, at(65));
        assert!((rate - 1.0).abs() < 1e-9, "{rate}");
        assert_eq!(arrival_rate(&mut pool, at(75)), 0.0);
    }

    #[test]
    fn a_burst_is_measured_over_the_burst_with_its_peaks() {
        let t0 = Stamp::ZERO;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut w = Window::new(t0, Duration::from_secs(60));
        // 15 s of load at 28.8 gets/s, 23 s into a 38 s window.
        for k in 0..432 {
            w.get(at(23_000 + k * 15_000 / 432), false);
        }
        w.load(at(30_000), 4, 3);
        w.load(at(31_000), 2, 5);
        let mut d = Derived::default();
        w.derive(at(38_000), &mut d);
        assert!((d.arrival_rate - 28.8).abs() < 0.2, "{}", d.arrival_rate);
        assert_eq!((d.peak_in_use, d.peak_waiting, d.peak_demand), (4, 5, 7));
    }

    #[test]
    fn closed_counts_total_every_reason() {
        let mut c = ClosedCounts::default();
        for r in CloseReason::ALL {
            c.bump(r);
            assert_eq!(c.get(r), 1, "{}", r.as_str());
        }
        assert_eq!(c.total(), CloseReason::ALL.len() as u64);
    }
}
