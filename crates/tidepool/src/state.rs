//! The pool's state machine: plain synchronous code behind one short lock.
//!
//! # Implementation notes
//! Nothing here awaits, spawns or sleeps, so it can be driven and checked
//! without a runtime. Every operation takes the current time as an argument
//! and leaves its side effects in an [`Aftermath`]: connections to close and
//! connections to open. The async layer ([`crate::pool`]) takes the aftermath
//! out of the lock and carries it out after unlocking, so no connection is
//! ever dropped, and no task ever spawned, while the lock is held.
//!
//! Waiters are a FIFO queue of one-shot senders. A connection that comes back
//! (returned, created, or un-paused) goes straight to the oldest waiter through
//! its sender, under the lock, so no later caller can overtake it. A waiter
//! that gives up removes itself from the queue under the same lock; if it is
//! no longer there, the grant was already sent and the waiter takes it from
//! its receiver and gives it back ([`State::release_grant`]). Either way no
//! connection and no unit of capacity is lost, whatever the point at which a
//! `get()` future is dropped.
//!
//! Capacity is counted, not held: `size` counts open connections (idle and in
//! use), `pending` counts connects in flight. A create order is issued only
//! while `size - overflow + pending < max_size` (or within `max_overflow`),
//! and only for waiters that no pending connect will already serve.

use std::backtrace::Backtrace;
use std::collections::{HashMap, VecDeque};
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::clock::Stamp;
use crate::config::{IdleOrder, PoolConfig};
use crate::conn::{Conn, Record};
use crate::error::ConnectError;
use crate::stash::Stash;
use crate::stats::{CloseReason, Counters, Derived, Gauges, Histograms, Stats, Window};

/// What a waiter receives.
#[derive(Debug)]
pub(crate) enum Grant<C, E> {
    /// A connection, already counted as checked out.
    Conn(Conn<C>),
    /// Connecting for this waiter failed on every attempt.
    Failed {
        attempts: u32,
        error: ConnectError<E>,
    },
    /// The pool closed.
    Closed,
}

/// Who checked a connection out, for leak reports.
#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) location: &'static Location<'static>,
    pub(crate) backtrace: Option<Box<Backtrace>>,
}

#[derive(Debug)]
struct Waiter<C, E> {
    id: u64,
    tx: oneshot::Sender<Grant<C, E>>,
    started: Stamp,
    deadline: Option<Instant>,
    caller: Option<Caller>,
}

#[derive(Debug)]
struct LeakRecord {
    since: Stamp,
    caller: Caller,
    reported: bool,
}

/// A regular connection, or one beyond `max_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateKind {
    Regular,
    Overflow,
}

/// A connect the async layer must start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CreateOrder {
    pub(crate) kind: CreateKind,
    /// The deadline of the waiter it was ordered for; `None` for refills.
    pub(crate) deadline: Option<Instant>,
}

/// Side effects to carry out once the lock is released.
#[derive(Debug)]
pub(crate) struct Aftermath<C> {
    pub(crate) dead: Vec<(Conn<C>, CloseReason)>,
    pub(crate) orders: Vec<CreateOrder>,
    /// The pool is closed and every connection is gone.
    pub(crate) emptied: bool,
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

/// Everything behind the pool's lock.
#[derive(Debug)]
pub(crate) struct State<C, E> {
    pub(crate) cfg: PoolConfig,
    idle: VecDeque<Conn<C>>,
    waiters: VecDeque<Waiter<C, E>>,
    next_waiter: u64,
    next_conn: u64,
    size: usize,
    overflow: usize,
    in_use: usize,
    pending: usize,
    pending_overflow: usize,
    /// Connections out for a reset or a keepalive ping: counted in use, but
    /// coming back, so waiters need no connect for them.
    returning: usize,
    paused: bool,
    closed: bool,
    generation: u64,
    last_error: Option<ConnectError<E>>,
    /// After a failed connect, no new connect starts before this instant
    /// (the retry delay), so failing connects never spin.
    create_gate: Option<Stamp>,
    last_activity: Stamp,
    counters: Counters,
    hist: Histograms,
    window: Window,
    leaks: Option<HashMap<u64, LeakRecord>>,
    dead: Vec<(Conn<C>, CloseReason)>,
    orders: Vec<CreateOrder>,
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
            idle: VecDeque::with_capacity(cfg.max_size + cfg.max_overflow),
            waiters: VecDeque::new(),
            next_waiter: 0,
            next_conn: 1,
            size: 0,
            overflow: 0,
            in_use: 0,
            pending: 0,
            pending_overflow: 0,
            returning: 0,
            paused: false,
            closed: false,
            generation: 0,
            last_error: None,
            create_gate: None,
            last_activity: now,
            counters: Counters::default(),
            hist: Histograms::default(),
            window: Window::new(now, cfg.stats_window),
            leaks: cfg.leak_detection_threshold.map(|_| HashMap::new()),
            dead: Vec::new(),
            orders: Vec::new(),
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
            && self.regular_open() <= self.cfg.max_size
    }

    /// Closes the stash and takes back what it holds.
    fn shut_stash(&mut self, now: Stamp) {
        if self.stash.is_open() {
            self.stash.set_open(false);
            self.sweep_conns(now);
        }
    }

    /// Takes the stashed connections back into the pool (to waiters, the
    /// idle queue, or closed).
    fn sweep_conns(&mut self, now: Stamp) {
        let mut conns = Vec::new();
        self.stash.take_all(&mut conns);
        for conn in conns {
            self.unstash(conn, now);
        }
    }

    /// Takes back the stashed connections and adds in what the stash
    /// recorded, so that gauges and statistics read exact.
    pub(crate) fn sweep(&mut self, now: Stamp) {
        self.sweep_conns(now);
        self.stash.drain_stats(
            &mut self.counters,
            &mut self.hist.hold,
            &mut self.window,
            &mut self.last_activity,
            now,
        );
    }

    /// A connection leaves the stash (displaced, stale, or swept): it was
    /// counted as in use.
    pub(crate) fn unstash(&mut self, conn: Conn<C>, now: Stamp) {
        self.in_use -= 1;
        let reason = self.retire_reason(&conn, now);
        self.close_or_place(conn, reason, now);
    }

    /// Takes the side effects accumulated so far; `None` when there are
    /// none (nearly always, and then nothing is moved).
    #[inline]
    pub(crate) fn take_aftermath(&mut self) -> Option<Aftermath<C>> {
        if !self.stash.is_open() && self.stash_wanted() {
            self.stash.set_open(true);
        }
        let emptied = self.closed && self.size == 0;
        if self.dead.is_empty() && self.orders.is_empty() && !emptied {
            return None;
        }
        Some(Aftermath {
            dead: std::mem::take(&mut self.dead),
            orders: std::mem::take(&mut self.orders),
            emptied,
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn last_error(&self) -> Option<ConnectError<E>> {
        self.last_error.clone()
    }

    fn regular_open(&self) -> usize {
        self.size - self.overflow
    }

    fn pop_idle(&mut self) -> Option<Conn<C>> {
        match self.cfg.idle_order {
            IdleOrder::Lifo => self.idle.pop_back(),
            IdleOrder::Fifo => self.idle.pop_front(),
        }
    }

    fn expired(&self, conn: &Conn<C>, now: Stamp) -> bool {
        conn.retire_at <= now
    }

    /// Closes a connection that is not checked out.
    fn close(&mut self, conn: Conn<C>, reason: CloseReason) {
        self.size -= 1;
        if conn.overflow {
            self.overflow -= 1;
        }
        self.counters.closed.bump(reason);
        self.dead.push((conn, reason));
    }

    /// Marks `conn` checked out and does the bookkeeping of a served get
    /// (but for its acquire time: see [`checkout`](Self::checkout)).
    fn mark_checked_out(&mut self, conn: &mut Conn<C>) {
        self.in_use += 1;
        self.counters.checkouts += 1;
        if conn.times_used > 0 {
            self.counters.reused += 1;
        }
        conn.times_used += 1;
    }

    fn track_leak(&mut self, id: u64, caller: Option<Caller>, now: Stamp) {
        if let (Some(table), Some(caller)) = (self.leaks.as_mut(), caller) {
            table.insert(
                id,
                LeakRecord {
                    since: now,
                    caller,
                    reported: false,
                },
            );
        }
    }

    fn untrack_leak(&mut self, id: u64, now: Stamp) {
        if let Some(rec) = self.leaks.as_mut().and_then(|t| t.remove(&id)) {
            if rec.reported {
                tracing::warn!(
                    connection = id,
                    held_ms = now.saturating_duration_since(rec.since).as_millis() as u64,
                    checked_out_at = %rec.caller.location,
                    "leaked connection returned"
                );
            }
        }
    }

    /// Tries to serve a get from the idle connections, without waiting.
    ///
    /// `first` is true on a get's first attempt (it is then counted);
    /// `started` is when the get began.
    pub(crate) fn checkout(
        &mut self,
        now: Stamp,
        started: Stamp,
        first: bool,
        caller: impl FnOnce() -> Option<Caller>,
    ) -> Checkout<C> {
        if first {
            self.counters.gets += 1;
            self.last_activity = now;
        }
        if self.closed {
            self.counters.rejected_closed += 1;
            return Checkout::Closed;
        }
        if self.paused || !self.waiters.is_empty() {
            return Checkout::Queue;
        }
        let mut retired = false;
        if self.idle.is_empty() && self.stash.is_open() {
            // Whatever other threads parked is idle too.
            self.sweep_conns(now);
        }
        while let Some(mut conn) = self.pop_idle() {
            if self.expired(&conn, now) {
                self.close(conn, CloseReason::MaxLifetime);
                retired = true;
                continue;
            }
            if first {
                // A hit waited zero: the acquire histogram gets its zeros
                // from `hits` when it is read, which keeps five stores and
                // two cache lines out of the lock on every hit.
                self.counters.hits += 1;
                self.window.get(now, false);
            } else {
                self.hist
                    .acquire
                    .record(now.saturating_duration_since(started));
            }
            self.mark_checked_out(&mut conn);
            if self.leaks.is_some() {
                self.track_leak(conn.id, caller(), now);
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

    /// Counts a `try_get` that found nothing.
    pub(crate) fn none_idle(&mut self) {
        self.counters.none_idle += 1;
    }

    /// Queues a waiter and orders a connect for it if there is room.
    /// `first_wait` is true the first time this get queues.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn enqueue(
        &mut self,
        tx: oneshot::Sender<Grant<C, E>>,
        now: Stamp,
        started: Stamp,
        deadline: Option<Instant>,
        first_wait: bool,
        first_attempt: bool,
        caller: Option<Caller>,
    ) -> u64 {
        let id = self.next_waiter;
        self.next_waiter += 1;
        if first_wait {
            self.counters.waited += 1;
        }
        if first_attempt {
            self.window.get(now, true);
        }
        self.waiters.push_back(Waiter {
            id,
            tx,
            started,
            deadline,
            caller,
        });
        // From now on every return must pass the queue; what is parked
        // goes to it first.
        self.shut_stash(now);
        self.plan_creates(now);
        id
    }

    /// Removes a waiter that gives up. `false` means it was already served:
    /// its grant is in its receiver and must be taken and released.
    pub(crate) fn cancel_waiter(&mut self, id: u64) -> bool {
        match self.waiters.binary_search_by_key(&id, |w| w.id) {
            Ok(i) => {
                self.waiters.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// Counts a waiter that gave up.
    pub(crate) fn timed_out(&mut self, now: Stamp) {
        self.counters.timeouts += 1;
        self.window.error(now);
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

    /// Undoes a checkout: validation or a hook failed (`reason`: the
    /// connection is closed), or the get was dropped before the caller had
    /// the connection (`None`: it is put back unless it must retire).
    fn undo_checkout(&mut self, mut conn: Conn<C>, reason: Option<CloseReason>, now: Stamp) {
        self.counters.checkout_rejections += 1;
        self.in_use -= 1;
        conn.times_used -= 1;
        if self.leaks.is_some() {
            self.untrack_leak(conn.id, now);
        }
        let reason = reason.or_else(|| self.retire_reason(&conn, now));
        self.close_or_place(conn, reason, now);
    }

    /// A checkout failed validation or `before_checkout`, or was dropped
    /// mid-way (its connection may be in an unknown state, so it is closed).
    pub(crate) fn reject_checkout(&mut self, conn: Conn<C>, reason: CloseReason, now: Stamp) {
        if reason == CloseReason::FailedValidation {
            self.counters.validation_failures += 1;
        }
        self.undo_checkout(conn, Some(reason), now);
    }

    /// Why a connection coming back must be closed, if it must.
    fn retire_reason(&self, conn: &Conn<C>, now: Stamp) -> Option<CloseReason> {
        if self.closed {
            Some(CloseReason::PoolClosed)
        } else if conn.generation < self.generation {
            Some(CloseReason::Evicted)
        } else if self.expired(conn, now) {
            Some(CloseReason::MaxLifetime)
        } else if !conn.overflow && self.regular_open() > self.cfg.max_size {
            Some(CloseReason::Shrunk)
        } else {
            None
        }
    }

    /// Records the end of a checkout of connection `id` that lasted `held`
    /// nanoseconds.
    #[inline]
    fn end_hold(&mut self, id: u64, held: u64, now: Stamp) {
        self.hist.hold.record_nanos(held);
        self.window.hold(now, held);
        if self.leaks.is_some() {
            self.untrack_leak(id, now);
        }
    }

    /// A caller returns a connection. `held` is how long it had it, in
    /// nanoseconds;
    /// `broken` is set when the manager or the caller says it is unusable.
    pub(crate) fn checkin(&mut self, mut conn: Conn<C>, held: u64, now: Stamp, broken: bool) {
        self.in_use -= 1;
        self.end_hold(conn.id, held, now);
        conn.last_used = now;
        let reason = if broken {
            Some(CloseReason::Broken)
        } else {
            self.retire_reason(&conn, now)
        };
        self.close_or_place(conn, reason, now);
    }

    /// A reset that ran after a return finished; `ok` is its outcome.
    pub(crate) fn reset_done(&mut self, conn: Conn<C>, ok: bool, now: Stamp) {
        // The connection was left counted as in use while it reset.
        self.in_use -= 1;
        self.returning -= 1;
        let reason = if ok {
            self.retire_reason(&conn, now)
        } else {
            Some(CloseReason::Error)
        };
        self.close_or_place(conn, reason, now);
    }

    /// Records a return whose connection must be reset first: the hold is
    /// over, the connection stays counted as in use until
    /// [`reset_done`](Self::reset_done).
    pub(crate) fn returned_for_reset(&mut self, conn: &mut Conn<C>, held: u64, now: Stamp) {
        self.end_hold(conn.id, held, now);
        conn.last_used = now;
        self.returning += 1;
    }

    /// The holder keeps the connection and it leaves the pool.
    pub(crate) fn detach(&mut self, conn: &Conn<C>, held: u64, now: Stamp) {
        self.in_use -= 1;
        self.size -= 1;
        if conn.overflow {
            self.overflow -= 1;
        }
        self.end_hold(conn.id, held, now);
        self.counters.detached += 1;
        self.plan_creates(now);
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

    /// Hands `conn` to the oldest waiter or puts it in the idle queue.
    /// `conn` is counted in `size`, not in `in_use`.
    fn place(&mut self, mut conn: Conn<C>, now: Stamp) {
        if !self.paused {
            while let Some(w) = self.waiters.pop_front() {
                match self.hand(w, conn, now) {
                    Ok(()) => return,
                    Err(back) => conn = back,
                }
            }
        }
        if conn.overflow {
            if self.regular_open() + self.pending < self.cfg.max_size {
                conn.overflow = false;
                self.overflow -= 1;
            } else {
                self.close(conn, CloseReason::OverflowReturned);
                return;
            }
        }
        self.idle.push_back(conn);
    }

    /// Sends `conn` to waiter `w`; gives it back if the waiter is gone.
    fn hand(&mut self, w: Waiter<C, E>, mut conn: Conn<C>, now: Stamp) -> Result<(), Conn<C>> {
        let fresh = conn.times_used == 0;
        let id = conn.id;
        conn.times_used += 1;
        match w.tx.send(Grant::Conn(conn)) {
            Ok(()) => {
                self.in_use += 1;
                self.counters.checkouts += 1;
                if fresh {
                    self.counters.misses += 1;
                } else {
                    self.counters.reused += 1;
                }
                self.hist
                    .acquire
                    .record(now.saturating_duration_since(w.started));
                self.track_leak(id, w.caller, now);
                Ok(())
            }
            Err(Grant::Conn(mut conn)) => {
                conn.times_used -= 1;
                Err(conn)
            }
            Err(_) => unreachable!("send returns the value it was given"),
        }
    }

    /// Issues create orders for waiters no pending connect will serve, then
    /// for `min_idle`, as far as capacity allows.
    pub(crate) fn plan_creates(&mut self, now: Stamp) {
        if self.closed || self.create_gate.is_some_and(|gate| gate > now) {
            return;
        }
        if !self.paused {
            let mut next = self.pending + self.pending_overflow + self.returning;
            while next < self.waiters.len() {
                let deadline = self.waiters[next].deadline;
                let kind = if self.regular_open() + self.pending < self.cfg.max_size {
                    self.pending += 1;
                    CreateKind::Regular
                } else if self.overflow + self.pending_overflow < self.cfg.max_overflow {
                    self.pending_overflow += 1;
                    CreateKind::Overflow
                } else {
                    break;
                };
                self.orders.push(CreateOrder { kind, deadline });
                next += 1;
            }
        }
        if self.stash.is_open() && self.idle.len() + self.pending < self.cfg.min_idle {
            // Parked connections are idle: count them before opening more.
            self.sweep_conns(now);
        }
        while self.idle.len() + self.pending < self.cfg.min_idle
            && self.regular_open() + self.pending < self.cfg.max_size
        {
            self.pending += 1;
            self.orders.push(CreateOrder {
                kind: CreateKind::Regular,
                deadline: None,
            });
        }
    }

    fn finish_pending(&mut self, kind: CreateKind) {
        match kind {
            CreateKind::Regular => self.pending -= 1,
            CreateKind::Overflow => self.pending_overflow -= 1,
        }
    }

    /// Reserves room for one regular connection opened outside the create
    /// orders (eager warm-up); `false` when the pool is full.
    pub(crate) fn reserve(&mut self) -> bool {
        let room = !self.closed && self.regular_open() + self.pending < self.cfg.max_size;
        if room {
            self.pending += 1;
        }
        room
    }

    /// A connect succeeded after `took`.
    pub(crate) fn created(&mut self, raw: C, kind: CreateKind, took: Duration, now: Stamp) {
        self.finish_pending(kind);
        self.counters.created += 1;
        self.hist.create.record(took);
        self.last_error = None;
        self.create_gate = None;
        let overflow = kind == CreateKind::Overflow;
        if overflow {
            self.counters.overflow_created += 1;
            self.window.overflow(now);
        }
        let retire_at = self.cfg.max_lifetime.map_or(Stamp::NEVER, |life| {
            let jitter = life.mul_f64(self.cfg.max_lifetime_jitter * fastrand::f64());
            now + (life - jitter)
        });
        let conn = Conn::new(Record {
            raw,
            id: self.next_conn,
            created_at: now,
            last_used: now,
            times_used: 0,
            checked_at: now,
            retire_at,
            generation: self.generation,
            overflow,
        });
        self.next_conn += 1;
        self.size += 1;
        if overflow {
            self.overflow += 1;
        }
        if self.closed {
            self.close(conn, CloseReason::PoolClosed);
            return;
        }
        if !overflow && self.regular_open() > self.cfg.max_size {
            // Ordered before a shrink.
            self.close(conn, CloseReason::Shrunk);
            return;
        }
        self.place(conn, now);
    }

    /// One connect attempt failed.
    pub(crate) fn create_failed(&mut self, error: ConnectError<E>, now: Stamp, retry_in: Duration) {
        self.counters.create_errors += 1;
        self.create_gate = Some(now + retry_in);
        self.window.error(now);
        self.last_error = Some(error);
    }

    /// A connect is about to be retried.
    pub(crate) fn retrying(&mut self) {
        self.counters.retries += 1;
    }

    /// A create order ended without a connection. When it used up its
    /// retries (`exhausted`), the oldest waiter learns why at once instead of
    /// waiting out its timeout.
    pub(crate) fn create_gave_up(
        &mut self,
        kind: CreateKind,
        attempts: u32,
        exhausted: bool,
        now: Stamp,
    ) {
        self.finish_pending(kind);
        if exhausted {
            if let Some(error) = self.last_error.clone() {
                while let Some(w) = self.waiters.pop_front() {
                    let grant = Grant::Failed {
                        attempts,
                        error: error.clone(),
                    };
                    if w.tx.send(grant).is_ok() {
                        self.counters.connect_failures += 1;
                        break;
                    }
                }
            }
        }
        self.plan_creates(now);
    }

    /// Whether anyone still needs a new connection: a waiter, or `min_idle`.
    pub(crate) fn wants_connections(&self) -> bool {
        !self.closed && (!self.waiters.is_empty() || self.idle.len() < self.cfg.min_idle)
    }

    /// Closes the pool: idle connections now, busy ones on return; every
    /// waiter is told.
    pub(crate) fn close_pool(&mut self, now: Stamp) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.shut_stash(now);
        while let Some(conn) = self.idle.pop_front() {
            self.close(conn, CloseReason::PoolClosed);
        }
        while let Some(w) = self.waiters.pop_front() {
            if w.tx.send(Grant::Closed).is_ok() {
                self.counters.rejected_closed += 1;
            }
        }
    }

    /// Retires every connection: idle ones now, busy ones on return.
    pub(crate) fn evict(&mut self, now: Stamp) {
        self.generation += 1;
        self.stash.set_generation(self.generation);
        self.sweep_conns(now);
        while let Some(conn) = self.idle.pop_front() {
            self.close(conn, CloseReason::Evicted);
        }
        self.plan_creates(now);
    }

    /// Changes `max_size`; surplus idle connections close now, busy ones on
    /// return.
    pub(crate) fn resize(&mut self, max_size: usize, now: Stamp) {
        self.cfg.max_size = max_size;
        self.cfg.min_idle = self.cfg.min_idle.min(max_size);
        if self.regular_open() > max_size {
            self.shut_stash(now);
        }
        let mut keep = VecDeque::with_capacity(self.idle.len());
        while let Some(conn) = self.idle.pop_back() {
            if !conn.overflow && self.regular_open() > max_size {
                self.close(conn, CloseReason::Shrunk);
            } else {
                keep.push_front(conn);
            }
        }
        self.idle = keep;
        self.plan_creates(now);
    }

    pub(crate) fn set_paused(&mut self, paused: bool, now: Stamp) {
        if self.paused == paused {
            return;
        }
        self.paused = paused;
        if paused {
            self.shut_stash(now);
        } else {
            while !self.waiters.is_empty() {
                let Some(conn) = self.pop_idle() else { break };
                if self.expired(&conn, now) {
                    self.close(conn, CloseReason::MaxLifetime);
                } else {
                    self.place(conn, now);
                }
            }
            self.plan_creates(now);
        }
    }

    /// Periodic upkeep: retires expired and idle-timed-out connections,
    /// reports leaks, refills `min_idle`, and takes out the connections due
    /// for a keepalive ping (counted as in use until
    /// [`keepalive_done`](Self::keepalive_done)).
    pub(crate) fn maintain(&mut self, now: Stamp) -> Vec<Conn<C>> {
        self.sweep_conns(now);
        let mut keep = VecDeque::with_capacity(self.idle.len());
        let mut ping = Vec::new();
        // Oldest-returned first, so the idle timeout closes the stalest.
        while let Some(conn) = self.idle.pop_front() {
            let idle_for = now.saturating_duration_since(conn.last_used);
            let unchecked_for = now.saturating_duration_since(conn.last_used.max(conn.checked_at));
            let spare = self.idle.len() + keep.len() + ping.len() >= self.cfg.min_idle;
            if self.expired(&conn, now) {
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
        self.idle = keep;
        self.in_use += ping.len();
        self.returning += ping.len();
        self.report_leaks(now);
        self.plan_creates(now);
        ping
    }

    fn report_leaks(&mut self, now: Stamp) {
        let (Some(threshold), Some(table)) =
            (self.cfg.leak_detection_threshold, self.leaks.as_mut())
        else {
            return;
        };
        for (id, rec) in table.iter_mut() {
            let held = now.saturating_duration_since(rec.since);
            if !rec.reported && held >= threshold {
                rec.reported = true;
                self.counters.leaks += 1;
                match &rec.caller.backtrace {
                    Some(bt) => tracing::warn!(
                        connection = id,
                        held_ms = held.as_millis() as u64,
                        checked_out_at = %rec.caller.location,
                        backtrace = %bt,
                        "possible connection leak"
                    ),
                    None => tracing::warn!(
                        connection = id,
                        held_ms = held.as_millis() as u64,
                        checked_out_at = %rec.caller.location,
                        "possible connection leak"
                    ),
                }
            }
        }
    }

    /// A keepalive ping finished.
    pub(crate) fn keepalive_done(&mut self, mut conn: Conn<C>, ok: bool, now: Stamp) {
        self.in_use -= 1;
        self.returning -= 1;
        self.counters.keepalives += 1;
        if !ok {
            self.counters.validation_failures += 1;
            self.close(conn, CloseReason::FailedValidation);
            self.plan_creates(now);
            return;
        }
        conn.checked_at = now;
        let reason = self.retire_reason(&conn, now);
        self.close_or_place(conn, reason, now);
    }

    pub(crate) fn gauges(&self) -> Gauges {
        Gauges {
            size: self.size,
            idle: self.idle.len(),
            in_use: self.in_use,
            waiting: self.waiters.len(),
            pending: self.pending + self.pending_overflow,
            overflow: self.overflow,
            // Overflow connections are never idle: open means checked out.
            overflow_in_use: self.overflow,
            max_size: self.cfg.max_size,
            min_idle: self.cfg.min_idle,
            max_overflow: self.cfg.max_overflow,
            paused: self.paused,
            closed: self.closed,
        }
    }

    /// A consistent snapshot.
    pub(crate) fn stats(&mut self, name: &str, now: Stamp) -> Stats {
        let gauges = self.gauges();
        let c = self.counters;
        let mut derived = Derived {
            utilization: gauges.in_use as f64 / gauges.max_size as f64,
            hit_ratio: ratio(c.hits, c.hits + c.misses),
            reuse_ratio: ratio(c.reused, c.created),
            idle_for: now.saturating_duration_since(self.last_activity),
            ..Derived::default()
        };
        self.window.derive(now, &mut derived);
        let mut histograms = self.hist.clone();
        histograms.acquire.record_zeros(c.hits);
        Stats {
            name: name.to_owned(),
            gauges,
            counters: c,
            acquire: histograms.acquire.summary(),
            hold: histograms.hold.summary(),
            create: histograms.create.summary(),
            derived,
            histograms,
        }
    }

    /// Gauges and counters only, without copying the histograms.
    pub(crate) fn counters(&self) -> Counters {
        self.counters
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    type St = State<u32, std::io::Error>;

    fn state(cfg: PoolConfig) -> (St, Stamp) {
        let now = Stamp::ZERO;
        (State::new(cfg, now), now)
    }

    fn cfg(max: usize) -> PoolConfig {
        PoolConfig {
            max_size: max,
            ..PoolConfig::default()
        }
    }

    fn grant_conn(rx: &mut oneshot::Receiver<Grant<u32, std::io::Error>>) -> Conn<u32> {
        match rx.try_recv().expect("granted") {
            Grant::Conn(c) => c,
            other => panic!("expected a connection, got {other:?}"),
        }
    }

    #[test]
    fn a_waiter_orders_one_connect_and_receives_it() {
        let (mut st, now) = state(cfg(2));
        assert!(matches!(
            st.checkout(now, now, true, || None),
            Checkout::Queue
        ));
        let (tx, mut rx) = oneshot::channel();
        st.enqueue(tx, now, now, None, true, true, None);
        let after = st.take_aftermath().expect("a connect was ordered");
        assert_eq!(after.orders.len(), 1);
        st.created(7, CreateKind::Regular, Duration::from_millis(3), now);
        let conn = grant_conn(&mut rx);
        assert_eq!(conn.raw, 7);
        let g = st.gauges();
        assert_eq!(
            (g.size, g.in_use, g.idle, g.waiting, g.pending),
            (1, 1, 0, 0, 0)
        );
        assert_eq!(st.counters.misses, 1);
        st.checkin(conn, 1_000_000, now, false);
        let g = st.gauges();
        assert_eq!((g.size, g.in_use, g.idle), (1, 0, 1));
        assert!(matches!(
            st.checkout(now, now, true, || None),
            Checkout::Ready { .. }
        ));
        assert_eq!(st.counters.hits, 1);
    }

    #[test]
    fn returns_go_to_the_oldest_waiter() {
        let (mut st, now) = state(cfg(1));
        let (tx, mut first) = oneshot::channel();
        st.enqueue(tx, now, now, None, true, true, None);
        st.created(1, CreateKind::Regular, Duration::ZERO, now);
        let mut rxs = Vec::new();
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel();
            st.enqueue(tx, now, now, None, true, true, None);
            rxs.push(rx);
        }
        // Pool is full: nobody else gets a connect ordered.
        assert_eq!(st.take_aftermath().expect("one order").orders.len(), 1);
        let conn = grant_conn(&mut first);
        st.checkin(conn, 0, now, false);
        assert!(rxs[0].try_recv().is_ok());
        assert!(rxs[1].try_recv().is_err());
    }

    #[test]
    fn a_cancelled_grant_goes_to_the_next_waiter() {
        let (mut st, now) = state(cfg(1));
        let (tx1, mut rx1) = oneshot::channel();
        let w1 = st.enqueue(tx1, now, now, None, true, true, None);
        let (tx2, mut rx2) = oneshot::channel();
        st.enqueue(tx2, now, now, None, true, true, None);
        st.created(1, CreateKind::Regular, Duration::ZERO, now);
        // Waiter 1 was served before it noticed it was dropped.
        assert!(!st.cancel_waiter(w1));
        let grant = rx1.try_recv().unwrap();
        st.release_grant(grant, now);
        assert_eq!(grant_conn(&mut rx2).raw, 1);
        assert_eq!(st.gauges().in_use, 1);
        assert_eq!(st.counters.cancelled, 1);
    }

    #[test]
    fn overflow_is_used_only_when_full_and_closed_on_return() {
        let (mut st, now) = state(PoolConfig {
            max_size: 1,
            max_overflow: 1,
            ..PoolConfig::default()
        });
        let (tx, mut rx) = oneshot::channel();
        st.enqueue(tx, now, now, None, true, true, None);
        st.created(1, CreateKind::Regular, Duration::ZERO, now);
        let regular = grant_conn(&mut rx);
        let (tx, mut rx) = oneshot::channel();
        st.enqueue(tx, now, now, None, true, true, None);
        let orders = st.take_aftermath().expect("orders").orders;
        assert_eq!(orders.last().unwrap().kind, CreateKind::Overflow);
        st.created(2, CreateKind::Overflow, Duration::ZERO, now);
        let extra = grant_conn(&mut rx);
        assert_eq!(st.gauges().overflow_in_use, 1);
        st.checkin(extra, 0, now, false);
        assert_eq!(st.counters.closed.overflow_returned, 1);
        st.checkin(regular, 0, now, false);
        let g = st.gauges();
        assert_eq!((g.size, g.idle, g.overflow), (1, 1, 0));
    }

    #[test]
    fn evicted_busy_connections_close_on_return() {
        let (mut st, now) = state(cfg(2));
        for raw in [1, 2] {
            st.pending += 1;
            st.created(raw, CreateKind::Regular, Duration::ZERO, now);
        }
        let Checkout::Ready(conn) = st.checkout(now, now, true, || None) else {
            panic!("idle connection expected")
        };
        st.evict(now);
        assert_eq!(st.gauges().idle, 0);
        st.checkin(conn, 0, now, false);
        assert_eq!(st.counters.closed.evicted, 2);
        assert_eq!(st.gauges().size, 0);
    }

    #[test]
    fn closing_tells_every_waiter() {
        let (mut st, now) = state(cfg(1));
        let (tx, mut rx) = oneshot::channel();
        st.enqueue(tx, now, now, None, true, true, None);
        st.close_pool(now);
        assert!(matches!(rx.try_recv(), Ok(Grant::Closed)));
        assert!(matches!(
            st.checkout(now, now, true, || None),
            Checkout::Closed
        ));
    }
}
