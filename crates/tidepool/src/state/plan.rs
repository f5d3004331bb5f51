//! Capacity planning: which connects to start, and what happens when one
//! ends.
//!
//! A connect is ordered only for a waiter that no connect in flight and no
//! connection coming back from a check will serve, or to keep `min_idle`,
//! and only while `size - overflow + pending < max_size` (or within
//! `max_overflow` for waiters). The retry gate ([`super::gate`]) holds
//! orders back after a failure.

use std::time::Duration;

use super::gate::{Allow, backoff};
use super::{CreateKind, State};
use crate::clock::Stamp;
use crate::conn::{Conn, Record};
use crate::error::ConnectError;
use crate::stats::CloseReason;

/// How warm-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Warmth {
    /// Enough connections are open.
    Warm,
    /// Still connecting.
    Warming,
    /// Connecting failed past `max_retries`, or with an error no retry can
    /// fix, after this many attempts.
    Failed(u32),
}

impl<C, E> State<C, E> {
    /// Idle connections, counting those parked in the stash and those out
    /// for a check, which come back.
    fn idle_or_returning(&self) -> usize {
        self.idle.len() + self.stash.parked() + self.counts.checking()
    }

    /// The idle connections to keep: `min_idle`, or more while warming up.
    fn floor(&self) -> usize {
        self.cfg.min_idle.max(self.warming)
    }

    /// Starts (or, with 0, ends) warm-up to `target` open connections.
    pub(crate) fn warm_up(&mut self, target: usize, now: Stamp) {
        self.warming = target.min(self.cfg.max_size);
        self.plan_creates(now);
    }

    /// Orders the connects the waiters and `min_idle` need, as far as
    /// capacity and the retry gate allow.
    pub(crate) fn plan_creates(&mut self, now: Stamp) {
        if self.closed {
            return;
        }
        let floor = self.floor();
        let covered = self.counts.connecting() + self.counts.checking();
        let for_waiters = if self.paused {
            0
        } else {
            self.waiters.len().saturating_sub(covered)
        };
        let for_idle = if floor > 0 {
            floor.saturating_sub(self.idle_or_returning() + self.counts.pending)
        } else {
            0
        };
        if for_waiters + for_idle == 0 {
            return;
        }
        let mut budget = match self.gate.allows(now) {
            Allow::Until(at) => {
                if self.gate.arm() {
                    self.out.wake = Some(at);
                }
                return;
            }
            Allow::One if self.counts.connecting() > 0 => return,
            Allow::One => 1,
            Allow::All => usize::MAX,
        };
        let retrying = self.gate.failures > 0;
        for _ in 0..for_waiters {
            let kind = if self.counts.regular() + self.counts.pending < self.cfg.max_size {
                CreateKind::Regular
            } else if self.counts.overflow + self.counts.pending_overflow < self.cfg.max_overflow {
                CreateKind::Overflow
            } else {
                break;
            };
            if !self.order(kind, &mut budget, retrying) {
                return;
            }
        }
        // What the waiters' connects did not already bring.
        let mut short = floor.saturating_sub(self.idle_or_returning() + self.counts.pending);
        while short > 0 && self.counts.regular() + self.counts.pending < self.cfg.max_size {
            if !self.order(CreateKind::Regular, &mut budget, retrying) {
                return;
            }
            short -= 1;
        }
    }

    /// Orders one connect if the budget allows; `false` when it is spent.
    fn order(&mut self, kind: CreateKind, budget: &mut usize, retrying: bool) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        self.counts.start_connect(kind);
        if retrying {
            self.counters.retries += 1;
        }
        self.out.orders.push(kind);
        true
    }

    /// A connect succeeded after `took`.
    pub(crate) fn created(&mut self, raw: C, kind: CreateKind, took: Duration, now: Stamp) {
        self.counts.end_connect(kind);
        self.out.connect_ended = true;
        self.counters.created += 1;
        self.hist.create.record(took);
        self.gate.succeeded();
        let overflow = kind == CreateKind::Overflow;
        if overflow {
            self.counters.overflow_created += 1;
            self.window.overflow(now);
        }
        let life = self.cfg.max_lifetime.map(|life| {
            let jitter = life.mul_f64(self.cfg.max_lifetime_jitter * fastrand::f64());
            life - jitter
        });
        let retire_at = life.map_or(Stamp::NEVER, |life| now + life);
        let retire_by = life.and_then(|life| tokio::time::Instant::now().checked_add(life));
        let conn = Conn::new(Record {
            raw,
            id: self.next_conn,
            created_at: now,
            last_used: now,
            times_used: 0,
            checked_at: now,
            retire_at,
            retire_by,
            generation: self.generation,
            overflow,
            checked_out_at: now,
            broken: false,
        });
        self.next_conn += 1;
        self.counts.opened(overflow);
        if self.closed {
            self.close(conn, CloseReason::PoolClosed);
        } else if !overflow && self.counts.regular() > self.cfg.max_size {
            // Ordered before a shrink.
            self.close(conn, CloseReason::Shrunk);
        } else {
            self.place(conn, now);
        }
        // A success reopens the gate fully: start what a probe held back.
        self.plan_creates(now);
    }

    /// A connect attempt failed; `permanent` when no retry can fix it.
    pub(crate) fn create_failed(
        &mut self,
        kind: CreateKind,
        error: ConnectError<E>,
        permanent: bool,
        now: Stamp,
    ) {
        self.counts.end_connect(kind);
        self.connect_failed(error, permanent, now);
    }

    /// Records a failed connect (or a new connection that could not be
    /// handed out). Closes the gate for a backoff delay, and tells the
    /// oldest waiter once `max_retries + 1` attempts in a row have failed
    /// (every waiter, for a permanent error).
    pub(super) fn connect_failed(&mut self, error: ConnectError<E>, permanent: bool, now: Stamp) {
        self.out.connect_ended = true;
        self.counters.create_errors += 1;
        self.window.error(now);
        let delay = backoff(
            self.cfg.retry_backoff,
            self.cfg.retry_backoff_max,
            self.gate.failures.saturating_add(1),
        );
        self.gate.failed(error, permanent, now, delay);
        let attempts = self.gate.unreported;
        if permanent {
            self.fail_waiters(attempts, None);
            self.gate.unreported = 0;
        } else if attempts > self.cfg.max_retries {
            self.fail_waiters(attempts, Some(1));
            self.gate.unreported = 0;
        }
        self.plan_creates(now);
    }

    /// A connect was dropped before it ended (its runtime shut down).
    /// `started` is false when it never ran at all: the runtime refused
    /// it, so another started now would be refused too.
    pub(crate) fn create_abandoned(&mut self, kind: CreateKind, started: bool, now: Stamp) {
        self.counts.end_connect(kind);
        self.out.connect_ended = true;
        if started {
            self.plan_creates(now);
        }
    }

    /// The gate timer fired: start what the gate held back.
    pub(crate) fn gate_opened(&mut self, now: Stamp) {
        self.gate.disarm();
        self.plan_creates(now);
    }

    /// The gate timer will never fire (its runtime went away): the next
    /// plan arms another.
    pub(crate) fn gate_timer_lost(&mut self) {
        self.gate.disarm();
    }

    /// How warm-up for `target` open connections stands.
    pub(crate) fn warmth(&self, target: usize) -> Warmth {
        if self.counts.size >= target {
            Warmth::Warm
        } else if self.gate.failures > 0
            && (self.gate.permanent || self.gate.failures > self.cfg.max_retries)
        {
            Warmth::Failed(self.gate.failures)
        } else {
            Warmth::Warming
        }
    }
}
