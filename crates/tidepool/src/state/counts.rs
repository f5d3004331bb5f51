//! The capacity counts: how many connections are open, and where each is.
//!
//! Every open connection is in exactly one place: idle (in the idle queue or
//! parked in the stash, which the counts see as checked out), checked out by
//! a caller, out for a background check (a reset after return, a keepalive
//! ping), or being closed by its last holder, who keeps its slot until it is
//! gone ([`Pooled::retire`](crate::Pooled::retire)). Connects in flight are counted apart, as `pending`.
//! Each count only ever moves by one step at a time, through the methods
//! here, which refuse to go below zero: a debug build panics at the faulty
//! step, a release build saturates and logs it, rather than wrapping and
//! handing out capacity that does not exist.

/// Whether a connection counts against `max_size` or beyond it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateKind {
    /// Within `max_size`.
    Regular,
    /// Beyond `max_size`, within `max_overflow`.
    Overflow,
}

/// Why a connection is out of the idle queue without a caller holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upkeep {
    /// Resetting after its return.
    Reset,
    /// Pinged for keepalive while idle.
    Ping,
}

/// The counts behind the gauges and the capacity planning.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    /// Open connections, wherever they are.
    pub(crate) size: usize,
    /// Open connections beyond `max_size`.
    pub(crate) overflow: usize,
    /// Checked out by callers (or parked in the stash).
    pub(crate) in_use: usize,
    /// Regular connects in flight.
    pub(crate) pending: usize,
    /// Overflow connects in flight.
    pub(crate) pending_overflow: usize,
    /// Out for a reset after return.
    pub(crate) resetting: usize,
    /// Out for a keepalive ping.
    pub(crate) pinging: usize,
    /// Taken out of service and being closed by their holder; still open,
    /// so still counted in `size`.
    pub(crate) closing: usize,
}

/// Lowers `count` by one; `what` names it if it was already zero.
#[inline]
pub(crate) fn dec(count: &mut usize, what: &'static str) {
    debug_assert!(*count > 0, "tidepool: {what} would go below zero");
    match count.checked_sub(1) {
        Some(n) => *count = n,
        None => tracing::error!(count = what, "tidepool bug: a count would go below zero"),
    }
}

impl Counts {
    /// Regular connections open.
    pub(crate) fn regular(&self) -> usize {
        self.size.saturating_sub(self.overflow)
    }

    /// Connects in flight, of either kind.
    pub(crate) fn connecting(&self) -> usize {
        self.pending + self.pending_overflow
    }

    /// Connections out for a check, coming back on their own.
    pub(crate) fn checking(&self) -> usize {
        self.resetting + self.pinging
    }

    /// A connect of `kind` is ordered.
    pub(crate) fn start_connect(&mut self, kind: CreateKind) {
        match kind {
            CreateKind::Regular => self.pending += 1,
            CreateKind::Overflow => self.pending_overflow += 1,
        }
    }

    /// A connect of `kind` ended, with or without a connection.
    pub(crate) fn end_connect(&mut self, kind: CreateKind) {
        match kind {
            CreateKind::Regular => dec(&mut self.pending, "pending"),
            CreateKind::Overflow => dec(&mut self.pending_overflow, "pending_overflow"),
        }
    }

    /// A new connection opened.
    pub(crate) fn opened(&mut self, overflow: bool) {
        self.size += 1;
        self.overflow += usize::from(overflow);
    }

    /// An open connection closed (or was detached).
    pub(crate) fn closed(&mut self, overflow: bool) {
        dec(&mut self.size, "size");
        if overflow {
            dec(&mut self.overflow, "overflow");
        }
    }

    /// An overflow connection takes a regular slot that freed up.
    pub(crate) fn overflow_to_regular(&mut self) {
        dec(&mut self.overflow, "overflow");
    }

    pub(crate) fn check_out(&mut self) {
        self.in_use += 1;
    }

    pub(crate) fn check_in(&mut self) {
        dec(&mut self.in_use, "in_use");
    }

    pub(crate) fn start_check(&mut self, check: Upkeep) {
        match check {
            Upkeep::Reset => self.resetting += 1,
            Upkeep::Ping => self.pinging += 1,
        }
    }

    pub(crate) fn end_check(&mut self, check: Upkeep) {
        match check {
            Upkeep::Reset => dec(&mut self.resetting, "resetting"),
            Upkeep::Ping => dec(&mut self.pinging, "pinging"),
        }
    }

    /// A checked-out connection is being closed by its holder.
    pub(crate) fn start_close(&mut self) {
        dec(&mut self.in_use, "in_use");
        self.closing += 1;
    }

    /// A connection its holder was closing is gone.
    pub(crate) fn end_close(&mut self, overflow: bool) {
        dec(&mut self.closing, "closing");
        self.closed(overflow);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        debug_assertions,
        should_panic(expected = "in_use would go below zero")
    )]
    fn a_count_never_wraps() {
        let mut c = Counts::default();
        c.check_in();
        assert_eq!(c.in_use, 0, "saturated in release builds");
    }
}
