//! Every way a connection comes back: returned by its caller, rejected
//! before its caller had it, back from a reset or a ping, out of the stash,
//! detached for good, or retired (closed by its holder, who keeps its slot
//! until it is gone).

use super::{State, Upkeep};
use crate::clock::Stamp;
use crate::conn::Conn;
use crate::error::ConnectError;
use crate::stats::CloseReason;

impl<C, E> State<C, E> {
    /// Why a connection coming back must be closed, if it must.
    fn retire_reason(&self, conn: &Conn<C>, now: Stamp) -> Option<CloseReason> {
        if self.closed {
            Some(CloseReason::PoolClosed)
        } else if conn.generation < self.generation {
            Some(CloseReason::Evicted)
        } else if Self::expired(conn, now) {
            Some(CloseReason::MaxLifetime)
        } else if !conn.overflow && self.counts.regular() > self.cfg.max_size {
            Some(CloseReason::Shrunk)
        } else {
            None
        }
    }

    /// Closes `conn` for `reason` (and plans a replacement), or, with no
    /// reason, hands it on as [`place`](Self::place) does.
    fn close_or_place(&mut self, conn: Conn<C>, reason: Option<CloseReason>, now: Stamp) {
        match reason {
            Some(reason) => {
                self.close(conn, reason);
                self.plan_creates(now);
            }
            None => self.place(conn, now),
        }
    }

    /// Records the end of a checkout of connection `id` that lasted `held`
    /// nanoseconds.
    #[inline]
    fn end_hold(&mut self, id: u64, held: u64, now: Stamp) {
        self.hist.hold.record_nanos(held);
        self.window.hold(now, held);
        if let Some(leaks) = self.leaks.as_mut() {
            if let Some(report) = leaks.untrack(id, now) {
                self.out.reports.push(report);
            }
        }
    }

    /// A caller returns a connection. `held` is how long it had it, in
    /// nanoseconds; `broken` is set when the manager or the caller says it
    /// is unusable.
    pub(crate) fn checkin(&mut self, mut conn: Conn<C>, held: u64, now: Stamp, broken: bool) {
        self.counts.check_in();
        self.end_hold(conn.id, held, now);
        conn.last_used = now;
        let reason = if broken {
            Some(CloseReason::Broken)
        } else {
            self.retire_reason(&conn, now)
        };
        self.close_or_place(conn, reason, now);
    }

    /// A connection leaves the stash (displaced, stale, or swept): it was
    /// counted as in use.
    pub(crate) fn unstash(&mut self, conn: Conn<C>, now: Stamp) {
        self.counts.check_in();
        let reason = self.retire_reason(&conn, now);
        self.close_or_place(conn, reason, now);
    }

    /// Undoes a checkout: the connection was rejected (`reason`: it is
    /// closed), or the get was dropped before the caller had it (`None`: it
    /// is put back unless it must retire).
    pub(super) fn undo_checkout(
        &mut self,
        mut conn: Conn<C>,
        reason: Option<CloseReason>,
        now: Stamp,
    ) {
        self.counters.checkout_rejections += 1;
        self.counts.check_in();
        conn.times_used = conn.times_used.saturating_sub(1);
        if let Some(leaks) = self.leaks.as_mut() {
            // Its caller never had it: nothing leaked.
            let _ = leaks.untrack(conn.id, now);
        }
        let reason = reason.or_else(|| self.retire_reason(&conn, now));
        self.close_or_place(conn, reason, now);
    }

    /// A checkout was rejected before the caller had the connection: it
    /// failed validation, `before_checkout`, or the driver's own closed
    /// check, or a hook panicked (its state is unknown, so it is closed).
    /// `failure` says what went wrong; when the connection was new (never
    /// handed out), that counts as a failed connect, so that a check that
    /// refuses every connection closes the retry gate instead of making the
    /// pool open connection after connection.
    pub(crate) fn reject_checkout(
        &mut self,
        conn: Conn<C>,
        reason: CloseReason,
        failure: Option<ConnectError<E>>,
        now: Stamp,
    ) {
        if reason == CloseReason::FailedValidation {
            self.counters.validation_failures += 1;
        }
        let fresh = conn.times_used <= 1;
        self.undo_checkout(conn, Some(reason), now);
        if let (true, Some(error)) = (fresh, failure) {
            self.connect_failed(error, false, now);
        }
    }

    /// A caller returned a connection that must be reset first: the hold is
    /// over; the connection is out for its check until
    /// [`check_done`](Self::check_done).
    pub(crate) fn returned_for_reset(&mut self, conn: &mut Conn<C>, held: u64, now: Stamp) {
        self.counts.check_in();
        self.end_hold(conn.id, held, now);
        conn.last_used = now;
        self.counts.start_check(Upkeep::Reset);
    }

    /// A reset or a keepalive ping ended; `ok` is its outcome (a failed,
    /// timed-out, panicked or abandoned check closes the connection).
    pub(crate) fn check_done(&mut self, mut conn: Conn<C>, check: Upkeep, ok: bool, now: Stamp) {
        self.counts.end_check(check);
        let reason = match (check, ok) {
            (Upkeep::Ping, true) => {
                self.counters.keepalives += 1;
                conn.checked_at = now;
                self.retire_reason(&conn, now)
            }
            (Upkeep::Ping, false) => {
                self.counters.keepalives += 1;
                self.counters.validation_failures += 1;
                Some(CloseReason::FailedValidation)
            }
            (Upkeep::Reset, true) => self.retire_reason(&conn, now),
            (Upkeep::Reset, false) => Some(CloseReason::Error),
        };
        self.close_or_place(conn, reason, now);
    }

    /// The holder keeps the connection and it leaves the pool.
    pub(crate) fn detach(&mut self, conn: &Conn<C>, held: u64, now: Stamp) {
        self.counts.check_in();
        self.counts.closed(conn.overflow);
        self.end_hold(conn.id, held, now);
        self.counters.detached += 1;
        self.plan_creates(now);
    }

    /// The holder takes the connection out of service to close it; it stays
    /// counted in `size` (as closing) until [`retired`](Self::retired).
    pub(crate) fn retire(&mut self, id: u64, held: u64, now: Stamp) {
        self.counts.start_close();
        self.end_hold(id, held, now);
    }

    /// A connection its holder was closing is gone: its slot is free.
    pub(crate) fn retired(&mut self, overflow: bool, now: Stamp) {
        self.counts.end_close(overflow);
        self.counters.closed.bump(CloseReason::Broken);
        self.plan_creates(now);
    }
}
