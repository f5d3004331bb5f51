//! The retry gate: after a failed connect, no connect starts until a backoff
//! delay has passed, and while connects keep failing only one is in flight
//! at a time. A timer reopens the gate (see `tasks::wake`), so recovery
//! follows the database's return by at most one backoff delay, whoever is
//! waiting and whatever the maintenance interval.

use std::time::Duration;

use crate::clock::Stamp;
use crate::error::ConnectError;

/// The delay before retry number `retry` (1-based): exponential from `base`,
/// capped at `max`, with "equal jitter" (between half and all of it) so that
/// failing pools do not retry in lockstep.
pub(crate) fn backoff(base: Duration, max: Duration, retry: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
        .min(max);
    exp.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// The state of connecting: failures in a row, and the gate they closed.
#[derive(Debug)]
pub(crate) struct Gate<E> {
    /// Failed connects since the last success.
    pub(crate) failures: u32,
    /// Failed connects since the oldest waiter was last told of one (it is
    /// told when this passes `max_retries`).
    pub(crate) unreported: u32,
    /// No connect starts before this.
    until: Option<Stamp>,
    /// A timer will call back at `until`.
    armed: bool,
    /// The last failure was one no retry can fix.
    pub(crate) permanent: bool,
    pub(crate) last_error: Option<ConnectError<E>>,
}

impl<E> Default for Gate<E> {
    fn default() -> Self {
        Self {
            failures: 0,
            unreported: 0,
            until: None,
            armed: false,
            permanent: false,
            last_error: None,
        }
    }
}

/// What the gate allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allow {
    /// Connect as needed.
    All,
    /// Connects are failing: one probe at a time.
    One,
    /// Closed until the given time.
    Until(Stamp),
}

impl<E> Gate<E> {
    pub(crate) fn allows(&mut self, now: Stamp) -> Allow {
        match self.until {
            Some(until) if until > now => Allow::Until(until),
            _ => {
                self.until = None;
                if self.failures > 0 {
                    Allow::One
                } else {
                    Allow::All
                }
            }
        }
    }

    /// A connect succeeded: the gate opens fully.
    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
        self.unreported = 0;
        self.until = None;
        self.permanent = false;
        self.last_error = None;
    }

    /// A connect failed: closes the gate for `delay`.
    pub(crate) fn failed(
        &mut self,
        error: ConnectError<E>,
        permanent: bool,
        now: Stamp,
        delay: Duration,
    ) {
        self.permanent = permanent;
        self.failures = self.failures.saturating_add(1);
        self.unreported = self.unreported.saturating_add(1);
        self.until = Some(now + delay);
        self.last_error = Some(error);
    }

    /// Whether a timer must be started to reopen the gate at `until`; true
    /// once per closing.
    pub(crate) fn arm(&mut self) -> bool {
        !std::mem::replace(&mut self.armed, true)
    }

    /// The timer fired, or will never fire (its runtime went away).
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for retry in 1..=6 {
            let full = (base * (1 << (retry - 1))).min(max);
            let d = backoff(base, max, retry);
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
        }
        assert!(backoff(base, max, 60) <= max);
    }

    #[test]
    fn a_failure_closes_the_gate_then_allows_one_probe() {
        let mut gate = Gate::<std::io::Error>::default();
        let t0 = Stamp::ZERO;
        assert_eq!(gate.allows(t0), Allow::All);
        gate.failed(
            ConnectError::TimedOut {
                after: Duration::ZERO,
            },
            false,
            t0,
            Duration::from_millis(50),
        );
        let until = t0 + Duration::from_millis(50);
        assert_eq!(gate.allows(t0), Allow::Until(until));
        assert!(gate.arm());
        assert!(!gate.arm(), "armed once per closing");
        assert_eq!(gate.allows(until), Allow::One);
        gate.succeeded();
        assert_eq!(gate.allows(until), Allow::All);
    }
}
