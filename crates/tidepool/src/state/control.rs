//! Runtime control (close, evict, resize, pause) and periodic upkeep.

use std::collections::VecDeque;

use super::{Grant, State, Upkeep};
use crate::clock::Stamp;
use crate::conn::Conn;
use crate::stats::CloseReason;

impl<C, E> State<C, E> {
    /// Closes the pool: idle connections now, busy ones on return; every
    /// waiter is told.
    pub(crate) fn close_pool(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.shut_stash();
        for conn in self.idle.take_all() {
            self.close(conn, CloseReason::PoolClosed);
        }
        while let Some(w) = self.waiters.pop_front() {
            if w.tx.send(Grant::Closed).is_ok() {
                self.counters.rejected_closed += 1;
            }
        }
    }

    /// Retires every connection: idle ones now (parked ones by the sweep
    /// this asks for), busy ones on return.
    pub(crate) fn evict(&mut self, now: Stamp) {
        self.generation += 1;
        self.stash.set_generation(self.generation);
        self.out.sweep = true;
        for conn in self.idle.take_all() {
            self.close(conn, CloseReason::Evicted);
        }
        self.plan_creates(now);
    }

    /// Changes `max_size`; surplus idle connections close now, busy ones on
    /// return.
    pub(crate) fn resize(&mut self, max_size: usize, now: Stamp) {
        self.cfg.max_size = max_size;
        self.cfg.min_idle = self.cfg.min_idle.min(max_size);
        if self.counts.regular() > max_size {
            self.shut_stash();
        }
        let mut keep = VecDeque::new();
        // Most recently returned last: the stalest close first.
        let mut all = self.idle.take_all();
        while let Some(conn) = all.pop_front() {
            if !conn.overflow && self.counts.regular() > max_size {
                self.close(conn, CloseReason::Shrunk);
            } else {
                keep.push_back(conn);
            }
        }
        self.idle.restore(keep);
        self.plan_creates(now);
    }

    pub(crate) fn set_paused(&mut self, paused: bool, now: Stamp) {
        if self.paused == paused {
            return;
        }
        self.paused = paused;
        if paused {
            self.shut_stash();
            return;
        }
        while !self.waiters.is_empty() {
            let Some(conn) = self.idle.pop() else { break };
            if Self::expired(&conn, now) {
                self.close(conn, CloseReason::MaxLifetime);
            } else {
                self.place(conn, now);
            }
        }
        self.plan_creates(now);
    }

    /// Periodic upkeep: retires expired and idle-timed-out connections,
    /// reports leaks, refills `min_idle`, and takes out the connections due
    /// for a keepalive ping (out for their check until
    /// [`check_done`](Self::check_done)).
    pub(crate) fn maintain(&mut self, now: Stamp) -> Vec<Conn<C>> {
        self.sweep_free_shards(now);
        let mut all = self.idle.take_all();
        let mut keep = VecDeque::with_capacity(all.len());
        let mut ping = Vec::new();
        // Oldest-returned first, so the idle timeout closes the stalest.
        while let Some(conn) = all.pop_front() {
            let idle_for = now.saturating_duration_since(conn.last_used);
            let unchecked_for = now.saturating_duration_since(conn.last_used.max(conn.checked_at));
            // Connections out for a ping are idle too, and come back.
            let others = all.len() + keep.len() + ping.len() + self.counts.pinging;
            let spare = others >= self.cfg.min_idle;
            if Self::expired(&conn, now) {
                self.close(conn, CloseReason::MaxLifetime);
            } else if spare && self.cfg.idle_timeout.is_some_and(|t| idle_for >= t) {
                self.close(conn, CloseReason::IdleTimeout);
            } else if self
                .cfg
                .keepalive_interval
                .is_some_and(|k| unchecked_for >= k)
            {
                ping.push(conn);
            } else {
                keep.push_back(conn);
            }
        }
        self.idle.restore(keep);
        for _ in &ping {
            self.counts.start_check(Upkeep::Ping);
        }
        if let Some(leaks) = self.leaks.as_mut() {
            self.counters.leaks += leaks.scan(now, &mut self.out.reports);
        }
        self.plan_creates(now);
        ping
    }
}
