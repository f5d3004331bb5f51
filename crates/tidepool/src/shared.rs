//! [`Shared`]: what one pool shares between its handles, guards and tasks,
//! and the glue between the state machine and the runtime: taking the
//! lock, carrying out what a locked section decided once it is released,
//! spawning background work, and running the manager's synchronous hooks
//! on a connection's way back.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::clock::{Clock, Stamp};
use crate::config::PoolConfig;
use crate::conn::{Conn, ValidationRule};
use crate::panic::{Panic, caught};
use crate::stash::{Put, Stash};
use crate::state::{Aftermath, State};
use crate::{Manager, tasks};

/// The pool's state behind its lock.
pub(crate) type Locked<M> = State<<M as Manager>::Connection, <M as Manager>::Error>;

/// What one pool shares between its handles, guards and tasks.
pub(crate) struct Shared<M: Manager> {
    pub(crate) name: String,
    pub(crate) manager: M,
    /// The settings as built; `max_size` and `min_idle` live on in `state`.
    pub(crate) cfg: PoolConfig,
    /// `cfg.validation`, ready for the get path.
    pub(crate) validation: ValidationRule,
    pub(crate) clock: Clock,
    state: parking_lot::Mutex<Locked<M>>,
    /// The state's per-thread stash, reached without its lock.
    pub(crate) stash: Arc<Stash<M::Connection>>,
    /// The runtime the pool was built in: background work started from
    /// outside any runtime goes there.
    home: Handle,
    /// Woken when the pool is closed and its last connection is gone.
    pub(crate) emptied: Notify,
    /// Woken whenever a connect ends, either way.
    pub(crate) connect_ended: Notify,
    maintenance: Mutex<Option<AbortHandle>>,
    /// The maintenance task is running (or spawned).
    maintaining: AtomicBool,
    /// Repeated warnings are written at most once a second.
    pub(crate) timeouts_log: Throttle,
    pub(crate) connects_log: Throttle,
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        let task = self
            .maintenance
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.take() {
            task.abort();
        }
    }
}

impl<M: Manager> Shared<M> {
    pub(crate) fn new(
        name: String,
        manager: M,
        cfg: PoolConfig,
        home: Handle,
        clock: Clock,
        now: Stamp,
    ) -> Self {
        let state = State::new(cfg.clone(), now);
        Self {
            name,
            manager,
            stash: state.stash(),
            state: parking_lot::Mutex::new(state),
            validation: ValidationRule::new(&cfg),
            cfg,
            clock,
            home,
            emptied: Notify::new(),
            connect_ended: Notify::new(),
            maintenance: Mutex::new(None),
            maintaining: AtomicBool::new(false),
            timeouts_log: Throttle::default(),
            connects_log: Throttle::default(),
        }
    }

    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, Locked<M>> {
        self.state.lock()
    }

    /// Runs `f` on the locked state, then carries out its aftermath.
    pub(crate) fn with_state<R>(self: &Arc<Self>, f: impl FnOnce(&mut Locked<M>) -> R) -> R {
        let (r, after) = {
            let mut st = self.lock();
            let r = f(&mut st);
            (r, st.take_aftermath())
        };
        self.finish(after);
        r
    }

    /// Carries out what a locked section decided, after the lock is gone.
    #[inline]
    pub(crate) fn finish(self: &Arc<Self>, after: Option<Aftermath<M::Connection>>) {
        if let Some(after) = after {
            self.finish_slow(after);
        }
    }

    #[cold]
    #[inline(never)]
    fn finish_slow(self: &Arc<Self>, after: Aftermath<M::Connection>) {
        for report in &after.reports {
            report.log(&self.name);
        }
        for (conn, reason) in after.dead {
            tracing::debug!(
                pool = %self.name,
                connection = conn.id,
                reason = reason.as_str(),
                "connection closed"
            );
            // A driver's `Drop` is user code too.
            if let Err(panic) = caught(move || drop(conn)) {
                self.hook_panicked(&panic, "drop");
            }
        }
        if after.sweep {
            self.sweep();
        }
        for kind in after.orders {
            self.spawn(tasks::create(Arc::clone(self), kind));
        }
        if let Some(at) = after.wake {
            let at = self.clock.instant_at(at);
            self.spawn(tasks::wake(Arc::downgrade(self), at));
        }
        if after.connect_ended {
            self.connect_ended.notify_waiters();
        }
        if after.emptied {
            self.emptied.notify_waiters();
        }
        self.ensure_maintenance();
    }

    /// Takes back every connection the stash holds, waiting for shards a
    /// get or a return holds, without the pool's lock.
    fn sweep(self: &Arc<Self>) {
        let mut conns = Vec::new();
        self.stash.take_all(&mut conns);
        if !conns.is_empty() {
            let now = self.clock.now();
            self.with_state(|st| {
                for conn in conns {
                    st.unstash(conn, now);
                }
            });
        }
    }

    /// Spawns background work on the runtime current at the time, or on
    /// the pool's home runtime when called from outside any. A task refused
    /// by a runtime that has shut down is dropped at once, and the guard it
    /// holds gives its capacity back.
    pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(&self, f: F) -> AbortHandle {
        match Handle::try_current() {
            Ok(current) => current.spawn(f).abort_handle(),
            Err(_) => self.home.spawn(f).abort_handle(),
        }
    }

    /// Starts the maintenance task if it is not running: at build, and
    /// again on the runtime current at the time if the one it ran on shut
    /// down.
    pub(crate) fn ensure_maintenance(self: &Arc<Self>) {
        if self.maintaining.swap(true, Ordering::AcqRel) {
            return;
        }
        let task = self.spawn(tasks::maintain(
            Arc::downgrade(self),
            self.cfg.maintenance_interval,
        ));
        let mut slot = self
            .maintenance
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = slot.replace(task) {
            old.abort();
        }
    }

    /// The maintenance task ended without the pool being dropped (its
    /// runtime shut down).
    pub(crate) fn maintenance_stopped(&self) {
        self.maintaining.store(false, Ordering::Release);
    }

    /// Counts and logs a panic of `hook`.
    pub(crate) fn hook_panicked(self: &Arc<Self>, panic: &Panic, hook: &'static str) {
        panic.log(&self.name, hook);
        self.lock().panicked();
    }

    /// Whether the driver already knows `conn` is closed (`has_broken`,
    /// which must be free); a panic counts as broken.
    pub(crate) fn is_broken(self: &Arc<Self>, conn: &mut Conn<M::Connection>) -> bool {
        match caught(|| self.manager.has_broken(&mut conn.raw)) {
            Ok(broken) => broken,
            Err(panic) => {
                self.hook_panicked(&panic, "has_broken");
                true
            }
        }
    }

    /// Whether a failed connect is worth retrying; a panic counts as yes.
    pub(crate) fn is_retryable(self: &Arc<Self>, error: &M::Error) -> bool {
        caught(|| self.manager.is_retryable(error)).unwrap_or_else(|panic| {
            self.hook_panicked(&panic, "is_retryable");
            true
        })
    }

    /// A guard gives its connection back.
    pub(crate) fn checkin(self: &Arc<Self>, mut conn: Conn<M::Connection>) {
        let now = self.clock.now();
        let held = now.nanos_since(conn.checked_out_at);
        let broken = conn.broken || self.is_broken(&mut conn);
        if !broken {
            match caught(|| self.manager.needs_reset(&mut conn.raw)) {
                Ok(false) => {}
                Ok(true) => {
                    self.with_state(|st| st.returned_for_reset(&mut conn, held, now));
                    self.spawn(tasks::reset(Arc::clone(self), conn));
                    return;
                }
                Err(panic) => {
                    self.hook_panicked(&panic, "needs_reset");
                    self.with_state(|st| st.checkin(conn, held, now, true));
                    return;
                }
            }
            match self.stash.put(conn, held, now) {
                Put::Stashed => return,
                Put::Displaced(old) => {
                    self.with_state(|st| st.unstash(old, now));
                    return;
                }
                Put::Refused(back) => conn = back,
            }
        }
        self.with_state(|st| st.checkin(conn, held, now, broken));
    }
}

/// Lets a warning through when it says something new, a repeat of the
/// last one at most once every [`REPEAT_GAP`], and anything at most once a
/// second; says how many were held back in between. "The same" is the same
/// key (the hash of what the warning says), so a database that stays down
/// is reported once a minute, not at every retry.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// When the last one was let through, in the pool's clock (+1, so that
    /// zero means never).
    last: AtomicU64,
    /// The key of the last one let through.
    key: AtomicU64,
    held_back: AtomicU64,
}

/// The least time between two warnings that say the same thing.
pub(crate) const REPEAT_GAP: std::time::Duration = std::time::Duration::from_secs(60);

impl Throttle {
    /// `Some(n)` to write this one, `n` having been held back since the
    /// last; `None` to hold it back. `what` is what the warning says.
    pub(crate) fn allow(&self, now: Stamp, what: &dyn std::fmt::Display) -> Option<u64> {
        const GAP: u64 = 1_000_000_000;
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            what.to_string().hash(&mut h);
            h.finish()
        };
        let now = now.nanos_since(Stamp::default()).saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        let gap = if self.key.load(Ordering::Relaxed) == key {
            u64::try_from(REPEAT_GAP.as_nanos()).unwrap_or(u64::MAX)
        } else {
            GAP
        };
        if last != 0 && now.saturating_sub(last) < gap
            || self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.key.store(key, Ordering::Relaxed);
        Some(self.held_back.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_throttle_lets_news_through_once_a_second_and_repeats_once_a_minute() {
        let t = Throttle::default();
        let at = |ms| Stamp::default() + Duration::from_millis(ms);
        assert_eq!(t.allow(at(0), &"refused"), Some(0));
        assert_eq!(t.allow(at(10), &"refused"), None);
        assert_eq!(t.allow(at(999), &"timed out"), None, "one a second at most");
        assert_eq!(t.allow(at(1000), &"timed out"), Some(2), "news");
        assert_eq!(t.allow(at(1500), &"timed out"), None);
        assert_eq!(t.allow(at(30_000), &"timed out"), None, "a repeat");
        assert_eq!(t.allow(at(61_000), &"timed out"), Some(2), "a minute on");
        assert_eq!(t.allow(at(62_000), &"refused"), Some(0));
    }
}
