//! Serving gets: checkout from the idle queue, queueing, and handing a
//! connection to the oldest waiter.

use tokio::sync::oneshot;

use super::{Caller, Grant, Key, State, Waiter};
use crate::clock::Stamp;
use crate::conn::Conn;
use crate::error::TimeoutCause;
use crate::stats::CloseReason;

/// One locked attempt of a get, as the async layer describes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask {
    /// The time of this attempt.
    pub(crate) now: Stamp,
    /// When the get began.
    pub(crate) started: Stamp,
    /// No attempt of this get has been counted yet.
    pub(crate) first_attempt: bool,
    /// This get has not queued yet.
    pub(crate) first_wait: bool,
    /// The get was already served once and its connection was rejected
    /// before it had it: it goes ahead of every waiter (it was ahead of
    /// them when it was served).
    pub(crate) front: bool,
}

/// The result of trying to check out without waiting.
#[derive(Debug)]
pub(crate) enum Checkout<C> {
    /// An idle connection, checked out.
    Ready(Conn<C>),
    /// Nothing idle (or waiters ahead, or paused): queue up.
    Queue,
    /// The pool is closed.
    Closed,
}

impl<C, E> State<C, E> {
    /// Marks `conn` checked out and does the bookkeeping of a served get
    /// (but for its acquire time: see [`checkout`](Self::checkout)).
    fn mark_checked_out(&mut self, conn: &mut Conn<C>) {
        self.counts.check_out();
        self.counters.checkouts += 1;
        if conn.times_used > 0 {
            self.counters.reused += 1;
        }
        conn.times_used += 1;
    }

    /// Tries to serve a get from the idle connections, without waiting.
    /// `caller` is asked for only when leak detection tracks the checkout.
    pub(crate) fn checkout(
        &mut self,
        ask: &Ask,
        caller: impl FnOnce() -> Option<Caller>,
    ) -> Checkout<C> {
        let now = ask.now;
        if ask.first_attempt {
            self.counters.gets += 1;
            self.last_activity = now;
        }
        if self.closed {
            self.counters.rejected_closed += 1;
            return Checkout::Closed;
        }
        if self.paused || (!ask.front && !self.waiters.is_empty()) {
            return Checkout::Queue;
        }
        let mut retired = false;
        if self.idle.is_empty() && self.stash.is_open() {
            // Whatever other threads parked is idle too.
            self.sweep_free_shards(now);
        }
        while let Some(mut conn) = self.idle.pop() {
            if Self::expired(&conn, now) {
                self.close(conn, CloseReason::MaxLifetime);
                retired = true;
                continue;
            }
            if ask.first_attempt {
                // A hit waited zero: the acquire histogram gets its zeros
                // from `hits` when it is read, which keeps the stores out
                // of the lock on every hit.
                self.counters.hits += 1;
                self.window.get(now, false);
            } else {
                self.hist
                    .acquire
                    .record(now.saturating_duration_since(ask.started));
            }
            self.mark_checked_out(&mut conn);
            self.note_load(now);
            if let Some(leaks) = self.leaks.as_mut() {
                leaks.track(conn.id, caller(), now);
            }
            if retired {
                self.plan_creates(now);
            }
            return Checkout::Ready(conn);
        }
        if retired {
            self.plan_creates(now);
        }
        Checkout::Queue
    }

    /// Records the load now, for the window's high-water marks.
    pub(super) fn note_load(&mut self, now: Stamp) {
        self.window
            .load(now, self.counts.in_use, self.waiters.len());
    }

    /// Counts a `try_get` that found nothing.
    pub(crate) fn none_idle(&mut self) {
        self.counters.none_idle += 1;
    }

    /// Queues a waiter (first in line with `ask.front`) and orders a connect
    /// for it if there is room.
    pub(crate) fn enqueue(
        &mut self,
        tx: oneshot::Sender<Grant<C, E>>,
        ask: &Ask,
        caller: Option<Caller>,
    ) -> Key {
        if ask.first_wait {
            self.counters.waited += 1;
        }
        if ask.first_attempt {
            self.window.get(ask.now, true);
        }
        let waiter = Waiter {
            tx,
            started: ask.started,
            caller,
        };
        let key = if ask.front {
            self.waiters.push_front(waiter)
        } else {
            self.waiters.push_back(waiter)
        };
        self.note_load(ask.now);
        // From now on every return must pass the queue; what is parked
        // goes to it first.
        self.shut_stash();
        self.plan_creates(ask.now);
        key
    }

    /// Removes a waiter that gives up. `false` means it was already served:
    /// its grant is in its receiver and must be taken and released.
    pub(crate) fn cancel_waiter(&mut self, key: Key) -> bool {
        self.waiters.remove(key).is_some()
    }

    /// Counts a waiter that gave up at its deadline, and says why nothing
    /// reached it.
    pub(crate) fn timed_out(&mut self, now: Stamp) -> TimeoutCause {
        self.counters.timeouts += 1;
        self.window.error(now);
        if self.paused {
            TimeoutCause::Paused
        } else if self.counts.size == 0 {
            TimeoutCause::NoConnection {
                connecting: u32::try_from(self.counts.connecting()).unwrap_or(u32::MAX),
            }
        } else {
            TimeoutCause::Busy {
                in_use: u32::try_from(self.counts.in_use).unwrap_or(u32::MAX),
                max_size: u32::try_from(self.cfg.max_size).unwrap_or(u32::MAX),
            }
        }
    }

    /// Counts a get future dropped while it waited.
    pub(crate) fn cancelled(&mut self) {
        self.counters.cancelled += 1;
    }

    /// Gives back a grant whose waiter is gone.
    pub(crate) fn release_grant(&mut self, grant: Grant<C, E>, now: Stamp) {
        match grant {
            Grant::Conn(conn) => {
                self.counters.cancelled += 1;
                self.undo_checkout(conn, None, now);
            }
            // Already counted as a failed get when it was sent.
            Grant::Failed { .. } | Grant::Closed => {}
        }
    }

    /// Hands `conn` to the oldest waiter or puts it in the idle queue.
    /// `conn` is counted in `size`, not in `in_use`.
    pub(super) fn place(&mut self, mut conn: Conn<C>, now: Stamp) {
        if !self.paused {
            while let Some(w) = self.waiters.pop_front() {
                match self.hand(w, conn, now) {
                    Ok(()) => return,
                    Err(back) => conn = back,
                }
            }
        }
        if conn.overflow {
            if self.counts.regular() + self.counts.pending < self.cfg.max_size {
                conn.overflow = false;
                self.counts.overflow_to_regular();
            } else {
                self.close(conn, CloseReason::OverflowReturned);
                return;
            }
        }
        self.idle.push(conn);
    }

    /// Sends `conn` to waiter `w`; gives it back if the waiter is gone.
    fn hand(&mut self, w: Waiter<C, E>, mut conn: Conn<C>, now: Stamp) -> Result<(), Conn<C>> {
        let fresh = conn.times_used == 0;
        let id = conn.id;
        conn.times_used += 1;
        match w.tx.send(Grant::Conn(conn)) {
            Ok(()) => {
                self.counts.check_out();
                self.counters.checkouts += 1;
                if fresh {
                    self.counters.misses += 1;
                } else {
                    self.counters.reused += 1;
                }
                self.hist
                    .acquire
                    .record(now.saturating_duration_since(w.started));
                self.note_load(now);
                if let Some(leaks) = self.leaks.as_mut() {
                    leaks.track(id, w.caller, now);
                }
                Ok(())
            }
            Err(Grant::Conn(mut conn)) => {
                conn.times_used -= 1;
                Err(conn)
            }
            Err(_) => unreachable!("send returns the value it was given"),
        }
    }

    /// Tells waiters, oldest first, that connecting failed; at most `limit`
    /// of them (all with `None`).
    pub(super) fn fail_waiters(&mut self, attempts: u32, limit: Option<usize>) {
        let Some(error) = self.gate.last_error.clone() else {
            return;
        };
        let mut told = 0;
        while limit.is_none_or(|n| told < n) {
            let Some(w) = self.waiters.pop_front() else {
                break;
            };
            let grant = Grant::Failed {
                attempts,
                error: error.clone(),
            };
            if w.tx.send(grant).is_ok() {
                self.counters.connect_failures += 1;
                told += 1;
            }
        }
    }
}
