//! The pool's state machine: plain synchronous code behind one short lock.
//!
//! # Implementation notes
//! Nothing here awaits, spawns, sleeps or logs, so it can be driven and
//! checked without a runtime. Every operation takes the current time as an
//! argument and leaves its side effects in an [`Aftermath`]: connections to
//! close, connects to start, reports to log, a stash to sweep, a gate timer
//! to set. The async layer ([`crate::shared`]) takes the aftermath out of
//! the lock and carries it out after unlocking, so no connection is ever
//! dropped, no task spawned and no user code run while the lock is held.
//!
//! Waiters are a FIFO queue ([`queue`]) of one-shot senders. A connection
//! that comes back (returned, created, or un-paused) goes straight to the
//! oldest waiter through its sender, under the lock, so no later caller can
//! overtake it. A caller whose connection is rejected before it gets it
//! (validation, `before_checkout`, a broken driver) asks again *at the front*:
//! it keeps its place until it is served or gives up. A waiter that gives up
//! removes itself from the queue under the same lock, in O(1); if it is no
//! longer there, the grant was already sent and the waiter takes it from its
//! receiver and gives it back ([`State::release_grant`]). Either way no
//! connection and no unit of capacity is lost, whatever the point at which a
//! `get()` future is dropped.
//!
//! The parts, by concern: [`counts`] (where each connection is), [`idle`]
//! (the idle queue), [`queue`] (the waiters), [`gate`] (connect failures and
//! backoff), [`leaks`] (who holds what); and the operations on them:
//! `serve` (checkout, queueing, handing out), `returns` (every way a
//! connection comes back), `plan` (which connects to start), `control`
//! (pause, resize, evict, close, maintenance) and `snapshot` (gauges and
//! statistics).

mod control;
pub(crate) mod counts;
mod gate;
mod idle;
pub(crate) mod leaks;
mod plan;
mod queue;
mod returns;
mod serve;
mod snapshot;

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::clock::Stamp;
use crate::config::{IdleOrder, PoolConfig};
use crate::conn::Conn;
use crate::error::ConnectError;
use crate::stash::Stash;
use crate::stats::{CloseReason, Counters, Histograms, Window};

pub(crate) use counts::{CreateKind, Upkeep};
pub(crate) use leaks::{Caller, Report};
pub(crate) use plan::Warmth;
pub(crate) use queue::Key;
pub(crate) use serve::{Ask, Checkout};
pub(crate) use snapshot::Drained;

use counts::Counts;
use gate::Gate;
use idle::Idle;
use leaks::Leaks;
use queue::Queue;

/// What a waiter receives.
#[derive(Debug)]
pub(crate) enum Grant<C, E> {
    /// A connection, already counted as checked out.
    Conn(Conn<C>),
    /// Connecting failed for this waiter (`max_retries` times over, or with
    /// an error no retry can fix).
    Failed {
        attempts: u32,
        error: ConnectError<E>,
    },
    /// The pool closed.
    Closed,
}

#[derive(Debug)]
struct Waiter<C, E> {
    tx: oneshot::Sender<Grant<C, E>>,
    started: Stamp,
    caller: Option<Caller>,
}

/// Side effects to carry out once the lock is released.
#[derive(Debug)]
pub(crate) struct Aftermath<C> {
    /// Connections to drop, and why.
    pub(crate) dead: Vec<(Conn<C>, CloseReason)>,
    /// Connects to start.
    pub(crate) orders: Vec<CreateKind>,
    /// Reports to log.
    pub(crate) reports: Vec<Report>,
    /// The stash was closed: take back what it holds (outside the lock,
    /// where waiting for a shard blocks nobody else).
    pub(crate) sweep: bool,
    /// Start a timer that reopens the connect gate at this time.
    pub(crate) wake: Option<Stamp>,
    /// A connect ended (for warm-up, which waits on it).
    pub(crate) connect_ended: bool,
    /// The pool is closed and every connection is gone.
    pub(crate) emptied: bool,
}

impl<C> Default for Aftermath<C> {
    fn default() -> Self {
        Self {
            dead: Vec::new(),
            orders: Vec::new(),
            reports: Vec::new(),
            sweep: false,
            wake: None,
            connect_ended: false,
            emptied: false,
        }
    }
}

impl<C> Aftermath<C> {
    fn is_empty(&self) -> bool {
        self.dead.is_empty()
            && self.orders.is_empty()
            && self.reports.is_empty()
            && !self.sweep
            && self.wake.is_none()
            && !self.connect_ended
    }
}

/// Everything behind the pool's lock.
#[derive(Debug)]
pub(crate) struct State<C, E> {
    pub(crate) cfg: PoolConfig,
    idle: Idle<C>,
    waiters: Queue<Waiter<C, E>>,
    counts: Counts,
    gate: Gate<E>,
    leaks: Option<Leaks>,
    next_conn: u64,
    /// While `build_warm` waits: the open connections it waits for.
    warming: usize,
    paused: bool,
    closed: bool,
    generation: u64,
    last_activity: Stamp,
    counters: Counters,
    hist: Histograms,
    window: Window,
    out: Aftermath<C>,
    /// Connections parked per thread; counted here as in use.
    stash: Arc<Stash<C>>,
}

impl<C, E> State<C, E> {
    pub(crate) fn new(cfg: PoolConfig, now: Stamp) -> Self {
        Self::with_shards(cfg, now, Stash::<C>::default_shards())
    }

    /// A state whose stash has `shards` shards.
    pub(crate) fn with_shards(cfg: PoolConfig, now: Stamp, shards: usize) -> Self {
        Self {
            idle: Idle::new(cfg.idle_order, cfg.max_size + cfg.max_overflow),
            waiters: Queue::default(),
            counts: Counts::default(),
            gate: Gate::default(),
            leaks: cfg.leak_detection_threshold.map(Leaks::new),
            next_conn: 1,
            warming: 0,
            paused: false,
            closed: false,
            generation: 0,
            last_activity: now,
            counters: Counters::default(),
            hist: Histograms::default(),
            window: Window::new(now, cfg.stats_window),
            out: Aftermath::default(),
            stash: Arc::new(Stash::new(shards, now, cfg.stats_window)),
            cfg,
        }
    }

    /// The stash, for the hit path outside the lock.
    pub(crate) fn stash(&self) -> Arc<Stash<C>> {
        Arc::clone(&self.stash)
    }

    /// Whether gets and returns may use the stash now: nobody waits, and
    /// nothing (pause, close, a shrink, leak tracking, FIFO idle order)
    /// needs every return to pass through here.
    fn stash_wanted(&self) -> bool {
        !self.closed
            && !self.paused
            && self.waiters.is_empty()
            && self.leaks.is_none()
            && self.cfg.idle_order == IdleOrder::Lifo
            && self.counts.regular() <= self.cfg.max_size
    }

    /// Closes the stash; what it holds is taken back by the sweep the
    /// aftermath asks for.
    fn shut_stash(&mut self) {
        if self.stash.is_open() {
            self.stash.set_open(false);
            self.out.sweep = true;
        }
    }

    /// Takes the stashed connections whose shards are free right now back
    /// into the pool. Never waits: a shard held by a get or a return in
    /// progress is skipped.
    fn sweep_free_shards(&mut self, now: Stamp) {
        let mut conns = Vec::new();
        self.stash.try_take_all(&mut conns);
        for conn in conns {
            self.unstash(conn, now);
        }
    }

    /// Takes the side effects accumulated so far; `None` when there are
    /// none (nearly always, and then nothing is moved).
    #[inline]
    pub(crate) fn take_aftermath(&mut self) -> Option<Aftermath<C>> {
        if !self.stash.is_open() && self.stash_wanted() {
            self.stash.set_open(true);
        }
        let emptied = self.closed && self.counts.size == 0;
        if !emptied && self.out.is_empty() {
            return None;
        }
        let mut after = std::mem::take(&mut self.out);
        after.emptied = emptied;
        Some(after)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn size(&self) -> usize {
        self.counts.size
    }

    pub(crate) fn last_error(&self) -> Option<ConnectError<E>> {
        self.gate.last_error.clone()
    }

    /// Counts a panic in a manager hook or the pool's own background work
    /// (caught and logged by the caller).
    pub(crate) fn panicked(&mut self) {
        self.counters.panics += 1;
    }

    /// Whether `conn` must retire now (past its lifetime): the pool's clock
    /// says so, and the monotonic clock agrees (a jump of the pool's clock
    /// must not retire connections early).
    fn expired(conn: &Conn<C>, now: Stamp) -> bool {
        conn.retire_at <= now
            && conn
                .retire_by
                .is_some_and(|by| tokio::time::Instant::now() >= by)
    }

    /// Closes a connection that is not checked out.
    fn close(&mut self, conn: Conn<C>, reason: CloseReason) {
        self.counts.closed(conn.overflow);
        self.counters.closed.bump(reason);
        self.out.dead.push((conn, reason));
    }
}

#[cfg(test)]
mod tests;
