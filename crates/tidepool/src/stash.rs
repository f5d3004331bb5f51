//! The per-thread stash: a get and a return that touch no shared lock.
//!
//! # Implementation notes
//! The pool's state sits behind one lock, and under contention that lock's
//! cache line, and every line the locked section touches, moves between cores
//! on every get and every return. The stash keeps one idle connection in each
//! of its shards (one shard per core, rounded up to a power of two; a thread
//! uses shard `n mod shards`, a mask, threads being numbered `n` in the
//! order they first reach any pool's stash): a return parks its connection
//! in its thread's shard, the next get on that thread takes it back, and
//! both touch only that shard's lock and lines, which stay in their core's
//! cache. (HikariCP's per-thread lists of recently used connections rest on
//! the same observation.)
//!
//! Gets and returns only ever *try* a shard's spin lock, and go to the state
//! when it is held (by a sweep, or by another thread on the same shard): no
//! one on the hot path waits for a shard, and taking and releasing one costs
//! one locked instruction and a plain store.
//!
//! From the state's point of view a stashed connection is still checked out:
//! `in_use` and `size` count it, so no capacity is created for it or lost.
//! Gauges count it as idle where it sits (each shard has a `parked` flag,
//! readable without its lock). The shard keeps what the state would have
//! recorded (hits, hold times, the rolling window); a snapshot
//! [`drain`](Stash::drain)s that before it reads, so statistics stay exact.
//! Reading moves no connection.
//!
//! Strict FIFO is kept by closing the stash: while anyone waits (or the pool
//! is paused, closed, shrinking, or tracking leaks) `open` is false, and
//! neither `take` nor `put` touches a shard. The state clears `open` under
//! its lock, and the same thread then *sweeps* every shard: it takes each
//! shard's lock in turn and hands what it finds back to the state. Each
//! shard's lock orders the two, so a return either parked its connection
//! before the sweep took that shard (and the sweep takes it to the waiter)
//! or locks the shard after the sweep and sees `open` false (and goes to the
//! state, which hands it to the waiter). The same holds for the generation
//! an [`evict`](crate::Pool::evict) bumps.
//!
//! Only a sweep or a drain waits for a shard, and neither runs under the
//! pool's lock: a get or a return preempted while it holds a shard delays
//! that one sweep, never every other caller. Under the pool's lock, shards
//! are only *tried* (a checkout that finds the idle queue empty, upkeep),
//! and a busy one is skipped.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use crate::clock::Stamp;
use crate::conn::Conn;
use crate::histogram::Histogram;
use crate::state::Drained;
use crate::stats::Window;
use crate::sync::{AtomicBool, AtomicU64, SpinMutex, SpinMutexGuard, yield_now};

/// Numbers threads in the order they first reach a stash.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

/// A thread not yet numbered.
const UNNUMBERED: usize = usize::MAX;

thread_local! {
    // Const-initialised: reading it is one load, with no lazy-init check.
    static THREAD: Cell<usize> = const { Cell::new(UNNUMBERED) };
}

/// This thread's number (a thread being torn down gets 0).
#[inline]
fn thread_number() -> usize {
    THREAD
        .try_with(|t| {
            let n = t.get();
            if n != UNNUMBERED {
                return n;
            }
            let n = NEXT_THREAD.fetch_add(1, Relaxed);
            t.set(n);
            n
        })
        .unwrap_or(0)
}

/// What a shard records in the state's place.
#[derive(Debug)]
struct Local<C> {
    conn: Option<Conn<C>>,
    /// Gets served from this shard (each a hit, a checkout and a reuse).
    hits: u64,
    hold: Histogram,
    window: Window,
}

/// One shard, on cache lines of its own.
///
/// Its lock is a spin lock, which a release leaves with a plain store where
/// a parking mutex pays a second locked instruction. Gets and returns only
/// try it; only a sweep or a drain waits, for a section a few instructions
/// long.
#[derive(Debug)]
#[repr(align(128))]
struct Shard<C> {
    local: SpinMutex<Local<C>>,
    /// Whether `local.conn` is set: written under the lock (a plain store,
    /// on the line the lock already holds), read without it by gauges.
    parked: AtomicBool,
}

impl<C> Shard<C> {
    /// Takes the parked connection, if any, under the lock held.
    fn take_conn(&self, local: &mut Local<C>) -> Option<Conn<C>> {
        let conn = local.conn.take();
        if conn.is_some() {
            self.parked.store(false, Relaxed);
        }
        conn
    }

    /// Locks the shard for a sweep or a drain, waiting out the get or return
    /// that holds it (yielding the core, in case its thread was preempted
    /// mid-section).
    fn wait_lock(&self) -> SpinMutexGuard<'_, Local<C>> {
        loop {
            if let Some(local) = self.local.try_lock() {
                return local;
            }
            for _ in 0..32 {
                std::hint::spin_loop();
            }
            yield_now();
        }
    }
}

/// The result of a get from the stash.
#[derive(Debug)]
pub(crate) enum Take<C> {
    /// A connection, counted as a hit and checked out.
    Hit(Conn<C>),
    /// A connection past its lifetime or evicted: the state must close it.
    Stale(Conn<C>),
    /// Nothing here (or the stash is closed).
    Empty,
}

/// The result of a return to the stash.
#[derive(Debug)]
pub(crate) enum Put<C> {
    /// Parked; its hold is recorded.
    Stashed,
    /// Parked; its hold is recorded; the connection it displaced goes back
    /// to the state (as an unstash).
    Displaced(Conn<C>),
    /// Not taken: the state must check it in.
    Refused(Conn<C>),
}

/// The shards, and the two facts they must check under their locks.
#[derive(Debug)]
pub(crate) struct Stash<C> {
    open: AtomicBool,
    /// The windows' start and length, for drained windows to match.
    epoch: Stamp,
    window: Duration,
    generation: AtomicU64,
    shards: Box<[Shard<C>]>,
    /// `shards.len() - 1`; the length is a power of two, so that picking a
    /// shard is a mask, not a division.
    mask: usize,
}

impl<C> Stash<C> {
    /// A closed stash with `shards` shards (rounded up to a power of two),
    /// whose windows start at `epoch`.
    pub(crate) fn new(shards: usize, epoch: Stamp, window: Duration) -> Self {
        let shards = shards.max(1).next_power_of_two();
        Self {
            open: AtomicBool::new(false),
            epoch,
            window,
            generation: AtomicU64::new(0),
            mask: shards - 1,
            shards: (0..shards)
                .map(|_| Shard {
                    local: SpinMutex::new(Local {
                        conn: None,
                        hits: 0,
                        hold: Histogram::default(),
                        window: Window::new(epoch, window),
                    }),
                    parked: AtomicBool::new(false),
                })
                .collect(),
        }
    }

    /// One shard per core the process may run on.
    pub(crate) fn default_shards() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(64))
    }

    /// This thread's shard.
    #[inline]
    fn mine(&self) -> usize {
        thread_number() & self.mask
    }

    /// Whether gets and returns may use the stash (written only under the
    /// state's lock).
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Relaxed)
    }

    /// Opens or closes the stash. Called under the state's lock; a caller
    /// that closes it must sweep it afterwards.
    pub(crate) fn set_open(&self, open: bool) {
        self.open.store(open, Relaxed);
    }

    /// Called under the state's lock, before the sweep that follows.
    pub(crate) fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Relaxed);
    }

    /// Takes this thread's stashed connection, if the stash is open.
    #[inline]
    pub(crate) fn take(&self, now: Stamp) -> Take<C> {
        self.take_at(self.mine(), now)
    }

    #[inline]
    fn take_at(&self, shard: usize, now: Stamp) -> Take<C> {
        let shard = &self.shards[shard];
        let Some(mut local) = shard.local.try_lock() else {
            return Take::Empty;
        };
        if !self.open.load(Relaxed) {
            return Take::Empty;
        }
        let Some(mut conn) = shard.take_conn(&mut local) else {
            return Take::Empty;
        };
        if conn.retire_at <= now || conn.generation != self.generation.load(Relaxed) {
            return Take::Stale(conn);
        }
        local.hits += 1;
        local.window.get(now, false);
        conn.times_used += 1;
        Take::Hit(conn)
    }

    /// Parks a returned connection, held for `held` nanoseconds, in this
    /// thread's shard, if the stash is open and the connection may be
    /// reused as it is.
    #[inline]
    pub(crate) fn put(&self, conn: Conn<C>, held: u64, now: Stamp) -> Put<C> {
        self.put_at(self.mine(), conn, held, now)
    }

    #[inline]
    fn put_at(&self, shard: usize, mut conn: Conn<C>, held: u64, now: Stamp) -> Put<C> {
        let shard = &self.shards[shard];
        let Some(mut local) = shard.local.try_lock() else {
            return Put::Refused(conn);
        };
        if !self.open.load(Relaxed)
            || conn.overflow
            || conn.retire_at <= now
            || conn.generation != self.generation.load(Relaxed)
        {
            return Put::Refused(conn);
        }
        local.hold.record_nanos(held);
        local.window.hold(now, held);
        conn.last_used = now;
        match local.conn.replace(conn) {
            None => {
                shard.parked.store(true, Relaxed);
                Put::Stashed
            }
            Some(old) => Put::Displaced(old),
        }
    }

    /// Takes every stashed connection out, into `out`, waiting for shards
    /// that a get or a return holds. Never called under the pool's lock.
    pub(crate) fn take_all(&self, out: &mut Vec<Conn<C>>) {
        for shard in &self.shards {
            if let Some(conn) = shard.take_conn(&mut shard.wait_lock()) {
                out.push(conn);
            }
        }
    }

    /// Takes the stashed connections of every shard that is free now, into
    /// `out`; skips, without waiting, a shard that a get or a return holds.
    pub(crate) fn try_take_all(&self, out: &mut Vec<Conn<C>>) {
        for shard in &self.shards {
            if let Some(mut local) = shard.local.try_lock() {
                if let Some(conn) = shard.take_conn(&mut local) {
                    out.push(conn);
                }
            }
        }
    }

    /// Holds shard `shard`'s lock while `f` runs (for tests of what waits
    /// for it).
    #[cfg(test)]
    pub(crate) fn hold_shard_for_test(&self, shard: usize, f: impl FnOnce()) {
        let _held = self.shards[shard].wait_lock();
        f();
    }

    /// How many shards hold a connection (read without their locks).
    pub(crate) fn parked(&self) -> usize {
        self.shards
            .iter()
            .filter(|s| s.parked.load(Relaxed))
            .count()
    }

    /// Takes out what the shards recorded since the last drain, waiting for
    /// shards a get or a return holds. Never called under the pool's lock.
    pub(crate) fn drain(&self, now: Stamp) -> Drained {
        let mut drained = Drained {
            hits: 0,
            last_get: None,
            hold: Histogram::default(),
            window: Window::new(self.epoch, self.window),
        };
        for shard in &self.shards {
            let mut local = shard.wait_lock();
            drained.hits += std::mem::take(&mut local.hits);
            if local.hold.count() > 0 {
                drained.hold.merge(&local.hold);
                local.hold.clear();
            }
            local.window.drain_into(&mut drained.window, now);
        }
        drained.last_get = drained.window.last_get();
        drained
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: u64) -> Conn<u32> {
        Conn::new(crate::conn::Record {
            raw: 0,
            id,
            created_at: Stamp::ZERO,
            last_used: Stamp::ZERO,
            times_used: 1,
            checked_at: Stamp::ZERO,
            retire_at: Stamp::ZERO + Duration::from_secs(60),
            retire_by: None,
            generation: 0,
            overflow: false,
            checked_out_at: Stamp::ZERO,
            broken: false,
        })
    }

    fn stash() -> Stash<u32> {
        let s = Stash::new(1, Stamp::ZERO, Duration::from_secs(60));
        s.set_open(true);
        s
    }

    #[test]
    fn a_closed_stash_takes_and_gives_nothing() {
        let s = Stash::new(1, Stamp::ZERO, Duration::from_secs(60));
        assert!(matches!(s.put(conn(1), 5, Stamp::ZERO), Put::Refused(_)));
        s.set_open(true);
        assert!(matches!(s.put(conn(1), 5, Stamp::ZERO), Put::Stashed));
        s.set_open(false);
        assert!(matches!(s.take(Stamp::ZERO), Take::Empty));
        let mut out = Vec::new();
        s.take_all(&mut out);
        assert_eq!(out.len(), 1, "a sweep still finds what was parked");
    }

    #[test]
    fn the_last_returned_is_taken_first() {
        let s = stash();
        assert!(matches!(s.put(conn(1), 5, Stamp::ZERO), Put::Stashed));
        match s.put(conn(2), 5, Stamp::ZERO) {
            Put::Displaced(old) => assert_eq!(old.id, 1),
            other => panic!("expected the first to be displaced, got {other:?}"),
        }
        match s.take(Stamp::ZERO) {
            Take::Hit(c) => assert_eq!((c.id, c.times_used), (2, 2)),
            other => panic!("expected a hit, got {other:?}"),
        }
        assert!(matches!(s.take(Stamp::ZERO), Take::Empty));
    }

    #[test]
    fn stale_connections_are_refused_or_handed_back() {
        let s = stash();
        let late = Stamp::ZERO + Duration::from_secs(61);
        assert!(matches!(s.put(conn(1), 5, late), Put::Refused(_)));
        assert!(matches!(s.put(conn(1), 5, Stamp::ZERO), Put::Stashed));
        assert!(matches!(s.take(late), Take::Stale(_)));
        assert!(matches!(s.put(conn(2), 5, Stamp::ZERO), Put::Stashed));
        s.set_generation(1);
        assert!(matches!(s.take(Stamp::ZERO), Take::Stale(_)));
        assert!(matches!(s.put(conn(3), 5, Stamp::ZERO), Put::Refused(_)));
    }

    #[test]
    fn a_locked_shard_sends_gets_and_returns_to_the_state() {
        let s = stash();
        assert!(matches!(s.put_at(0, conn(1), 5, Stamp::ZERO), Put::Stashed));
        {
            // A sweep holds the shard: neither side waits for it.
            let _sweeping = s.shards[0].wait_lock();
            let mut out = Vec::new();
            s.try_take_all(&mut out);
            assert!(out.is_empty(), "a tried sweep skips a held shard");
            assert!(matches!(s.take_at(0, Stamp::ZERO), Take::Empty));
            match s.put_at(0, conn(2), 5, Stamp::ZERO) {
                Put::Refused(c) => assert_eq!(c.id, 2),
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        assert!(matches!(s.take_at(0, Stamp::ZERO), Take::Hit(c) if c.id == 1));
    }

    #[test]
    fn shards_round_up_to_a_power_of_two() {
        for (asked, made) in [(0, 1), (1, 1), (2, 2), (3, 4), (6, 8), (64, 64)] {
            let s = Stash::<u32>::new(asked, Stamp::ZERO, Duration::from_secs(60));
            assert_eq!((s.shards.len(), s.mask), (made, made - 1), "{asked} shards");
            assert!(s.mine() < made);
        }
    }

    #[test]
    fn drained_statistics_count_each_hit_and_hold_once() {
        let s = stash();
        let t = Stamp::ZERO + Duration::from_secs(1);
        assert!(matches!(s.put(conn(1), 1_000, t), Put::Stashed));
        assert!(matches!(s.take(t), Take::Hit(_)));
        let first = s.drain(t);
        assert_eq!((first.hits, first.hold.count()), (1, 1));
        assert_eq!(first.hold.sum(), Duration::from_micros(1));
        assert_eq!(first.last_get, Some(t));
        let second = s.drain(t);
        assert_eq!((second.hits, second.hold.count()), (0, 0));
    }

    #[test]
    fn the_parked_count_follows_puts_takes_and_sweeps() {
        let s = stash();
        assert_eq!(s.parked(), 0);
        assert!(matches!(s.put(conn(1), 5, Stamp::ZERO), Put::Stashed));
        assert_eq!(s.parked(), 1);
        assert!(matches!(s.put(conn(2), 5, Stamp::ZERO), Put::Displaced(_)));
        assert_eq!(s.parked(), 1);
        assert!(matches!(s.take(Stamp::ZERO), Take::Hit(_)));
        assert_eq!(s.parked(), 0);
        assert!(matches!(s.put(conn(3), 5, Stamp::ZERO), Put::Stashed));
        let mut out = Vec::new();
        s.try_take_all(&mut out);
        assert_eq!((out.len(), s.parked()), (1, 0));
    }

    /// The stash inside the state: what the sweep, the queue and the
    /// controls do with parked connections.
    mod in_the_state {
        use super::*;
        use crate::config::PoolConfig;
        use crate::state::{Ask, Checkout, Grant, State};
        use crate::stats::CloseReason;
        use std::sync::Arc;
        use tokio::sync::oneshot;

        type St = State<u32, std::io::Error>;
        const T0: Stamp = Stamp::ZERO;

        const ASK: Ask = Ask {
            now: T0,
            started: T0,
            first_attempt: true,
            first_wait: true,
            front: false,
        };

        /// A state with two shards and `n` idle connections, its stash open.
        fn state(n: usize) -> (St, Arc<Stash<u32>>) {
            let cfg = PoolConfig {
                max_size: n,
                min_idle: n,
                ..PoolConfig::default()
            };
            let mut st = St::with_shards(cfg, T0, 2);
            st.plan_creates(T0);
            for (raw, kind) in st.take_aftermath().unwrap().orders.into_iter().enumerate() {
                st.created(raw as u32, kind, Duration::ZERO, T0);
            }
            let _ = st.take_aftermath();
            let stash = st.stash();
            (st, stash)
        }

        /// Carries out the aftermath's sweep, as the pool does after the
        /// lock; returns what was closed.
        fn settle(st: &mut St) -> Vec<CloseReason> {
            let mut closed = Vec::new();
            while let Some(after) = st.take_aftermath() {
                closed.extend(after.dead.iter().map(|(_, r)| *r));
                if !after.sweep {
                    break;
                }
                let mut conns = Vec::new();
                st.stash().take_all(&mut conns);
                for conn in conns {
                    st.unstash(conn, T0);
                }
            }
            closed
        }

        fn out(st: &mut St) -> Conn<u32> {
            match st.checkout(&ASK, || None) {
                Checkout::Ready(conn) => conn,
                other => panic!("expected a connection, got {other:?}"),
            }
        }

        fn enqueue(st: &mut St) -> oneshot::Receiver<Grant<u32, std::io::Error>> {
            let (tx, rx) = oneshot::channel();
            st.enqueue(tx, &ASK, None);
            rx
        }

        #[test]
        fn a_get_takes_what_another_thread_parked() {
            let (mut st, stash) = state(1);
            let conn = out(&mut st);
            let id = conn.id;
            assert!(matches!(stash.put_at(1, conn, 10, T0), Put::Stashed));
            assert!(matches!(stash.take_at(0, T0), Take::Empty));
            assert_eq!(out(&mut st).id, id, "the empty idle queue sweeps the stash");
            let g = st.gauges();
            assert_eq!((g.size, g.in_use, g.idle), (1, 1, 0));
        }

        #[test]
        fn a_waiter_closes_the_stash_and_gets_what_was_parked() {
            let (mut st, stash) = state(2);
            let (a, b) = (out(&mut st), out(&mut st));
            let a_id = a.id;
            assert!(matches!(stash.put_at(1, a, 10, T0), Put::Stashed));
            // Parked after this get's checkout found nothing, before it queued.
            let mut rx = enqueue(&mut st);
            settle(&mut st);
            let a = out_of(&mut rx);
            assert_eq!(a.id, a_id);
            // While anyone waits, returns pass the queue.
            let mut rx = enqueue(&mut st);
            let b = match stash.put_at(0, b, 10, T0) {
                Put::Refused(b) => b,
                other => panic!("a closed stash took a return: {other:?}"),
            };
            let b_id = b.id;
            st.checkin(b, 10, T0, false);
            assert!(matches!(rx.try_recv(), Ok(Grant::Conn(c)) if c.id == b_id));
            // Nobody waits any more: the stash opens again.
            settle(&mut st);
            assert!(matches!(stash.put_at(0, a, 10, T0), Put::Stashed));
        }

        fn out_of(rx: &mut oneshot::Receiver<Grant<u32, std::io::Error>>) -> Conn<u32> {
            match rx.try_recv() {
                Ok(Grant::Conn(c)) => c,
                other => panic!("expected a connection, got {other:?}"),
            }
        }

        #[test]
        fn statistics_count_what_the_shards_served() {
            let (mut st, stash) = state(1);
            let conn = out(&mut st);
            assert!(matches!(stash.put_at(1, conn, 1_000, T0), Put::Stashed));
            let conn = match stash.take_at(1, T0) {
                Take::Hit(c) => c,
                other => panic!("expected a hit, got {other:?}"),
            };
            assert!(matches!(stash.put_at(1, conn, 3_000, T0), Put::Stashed));
            st.absorb(stash.drain(T0), T0);
            let s = st.stats("t", T0);
            assert_eq!((s.counters.gets, s.counters.hits), (2, 2));
            assert_eq!((s.counters.checkouts, s.counters.reused), (2, 1));
            assert_eq!(s.histograms.hold.count(), 2);
            assert_eq!(s.histograms.hold.sum(), Duration::from_micros(4));
            assert_eq!(s.histograms.acquire.count(), 2);
            assert_eq!((s.gauges.in_use, s.gauges.idle), (0, 1));
            st.absorb(stash.drain(T0), T0);
            assert_eq!(st.counters().hits, 2, "each hit is counted once");
        }

        #[test]
        fn evict_pause_and_close_reach_parked_connections() {
            let (mut st, stash) = state(2);
            let conn = out(&mut st);
            assert!(matches!(stash.put_at(1, conn, 10, T0), Put::Stashed));
            st.evict(T0);
            let closed = settle(&mut st);
            assert_eq!(closed.len(), 2, "the idle one and the parked one");
            assert_eq!(st.gauges().size, 0);

            let (mut st, stash) = state(1);
            let conn = out(&mut st);
            assert!(matches!(stash.put_at(1, conn, 10, T0), Put::Stashed));
            st.set_paused(true, T0);
            settle(&mut st);
            assert_eq!(st.gauges().idle, 1, "pausing takes parked connections back");
            let conn = match st.checkout(&ASK, || None) {
                Checkout::Queue => {
                    st.set_paused(false, T0);
                    settle(&mut st);
                    out(&mut st)
                }
                other => panic!("a paused pool served a get: {other:?}"),
            };
            assert!(matches!(stash.put_at(0, conn, 10, T0), Put::Stashed));
            st.close_pool();
            assert_eq!(settle(&mut st), [CloseReason::PoolClosed]);
        }
    }
}
