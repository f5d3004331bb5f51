//! The async layer: `get()`, waiting, timeouts, and runtime control.

use std::backtrace::Backtrace;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout, timeout_at};

use crate::clock::{Clock, Stamp};
use crate::config::PoolConfig;
use crate::conn::Conn;
use crate::error::{ConfigError, ConnectError, PoolError};
use crate::guard::Pooled;
use crate::health::{Advice, Health};
use crate::stash::{Put, Stash, Take};
use crate::state::{Aftermath, Caller, Checkout, Grant, State};
use crate::stats::{CloseReason, Counters, Gauges, Stats};
use crate::{Builder, Manager, tasks};

/// A pool of connections made by a [`Manager`]. Cheap to clone: clones share
/// one pool.
///
/// ```
/// # use std::convert::Infallible;
/// # struct Numbers;
/// # impl tidepool::Manager for Numbers {
/// #     type Connection = u64;
/// #     type Error = Infallible;
/// #     async fn connect(&self) -> Result<u64, Infallible> { Ok(0) }
/// #     async fn validate(&self, _: &mut u64) -> Result<(), Infallible> { Ok(()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = tidepool::Pool::builder(Numbers).max_size(4).build()?;
/// let mut conn = pool.get().await?;
/// *conn += 1;
/// drop(conn); // back to the pool
/// assert_eq!(pool.stats().counters.created, 1);
/// # Ok(()) }
/// ```
pub struct Pool<M: Manager> {
    pub(crate) shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<M: Manager> fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.gauges();
        f.debug_struct("Pool")
            .field("name", &self.shared.name)
            .field("size", &g.size)
            .field("idle", &g.idle)
            .field("in_use", &g.in_use)
            .field("waiting", &g.waiting)
            .finish_non_exhaustive()
    }
}

/// What one pool shares between its handles, guards and tasks.
pub(crate) struct Shared<M: Manager> {
    pub(crate) name: String,
    pub(crate) manager: M,
    /// The settings as built; `max_size` and `min_idle` live on in `state`.
    pub(crate) cfg: PoolConfig,
    pub(crate) clock: Clock,
    state: parking_lot::Mutex<State<M::Connection, M::Error>>,
    /// The state's per-thread stash, reached without its lock.
    stash: Arc<Stash<M::Connection>>,
    handle: Handle,
    emptied: Notify,
    maintenance: Mutex<Option<AbortHandle>>,
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
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, State<M::Connection, M::Error>> {
        self.state.lock()
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
        for (conn, reason) in after.dead {
            tracing::debug!(
                pool = %self.name,
                connection = conn.id,
                reason = reason.as_str(),
                "connection closed"
            );
            drop(conn);
        }
        for order in after.orders {
            self.handle.spawn(tasks::create(Arc::clone(self), order));
        }
        if after.emptied {
            self.emptied.notify_waiters();
        }
    }

    /// Runs `f` on the locked state, then carries out its aftermath.
    pub(crate) fn with_state<R>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut State<M::Connection, M::Error>) -> R,
    ) -> R {
        let (r, after) = {
            let mut st = self.lock();
            let r = f(&mut st);
            (r, st.take_aftermath())
        };
        self.finish(after);
        r
    }

    pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(&self, f: F) {
        self.handle.spawn(f);
    }

    /// A guard gives its connection back.
    pub(crate) fn checkin(
        self: &Arc<Self>,
        mut conn: Conn<M::Connection>,
        since: Stamp,
        broken: bool,
    ) {
        let now = self.clock.now();
        let held = now.nanos_since(since);
        let broken = broken || self.manager.has_broken(&mut conn.raw);
        if !broken && self.manager.needs_reset(&mut conn.raw) {
            self.with_state(|st| st.returned_for_reset(&mut conn, held, now));
            self.spawn(tasks::reset(Arc::clone(self), conn));
            return;
        }
        if !broken {
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

/// Gives a connection back if its `get()` is dropped while it is being
/// validated or prepared.
struct Preparing<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    conn: Option<Conn<M::Connection>>,
}

impl<M: Manager> Drop for Preparing<'_, M> {
    // Inlined so that a get that handed its connection out (nearly all of
    // them) pays nothing for the guard: the compiler sees `conn` is `None`.
    #[inline]
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Interrupted mid-conversation: its protocol state is unknown.
            self.shared.with_state(|st| {
                st.cancelled();
                st.reject_checkout(conn, CloseReason::Error, self.shared.clock.now());
            });
        }
    }
}

impl<M: Manager> Preparing<'_, M> {
    /// Pings the connection: when it answered, or `None` if it failed (it
    /// is then closed).
    async fn validate(&mut self) -> Option<Stamp> {
        let shared = self.shared;
        let conn = self.conn.as_mut()?;
        let outcome = timeout(
            shared.cfg.validation_timeout,
            shared.manager.validate(&mut conn.raw),
        )
        .await;
        let now = shared.clock.now();
        match outcome {
            Ok(Ok(())) => {
                conn.checked_at = now;
                return Some(now);
            }
            Ok(Err(e)) => {
                tracing::info!(pool = %shared.name, connection = conn.id, error = %e, "validation failed");
            }
            Err(_) => {
                tracing::info!(pool = %shared.name, connection = conn.id, "validation timed out");
            }
        }
        self.reject(CloseReason::FailedValidation);
        None
    }

    /// Closes a connection that could not be handed out.
    fn reject(&mut self, reason: CloseReason) {
        if let Some(conn) = self.conn.take() {
            let shared = self.shared;
            shared.with_state(|st| st.reject_checkout(conn, reason, shared.clock.now()));
        }
    }
}

/// A queued `get()`; leaves the queue (or gives back what it was sent) when
/// dropped.
struct Waiting<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    id: u64,
    rx: oneshot::Receiver<Grant<M::Connection, M::Error>>,
    armed: bool,
}

impl<M: Manager> Drop for Waiting<'_, M> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let rx = &mut self.rx;
        let id = self.id;
        self.shared.with_state(|st| {
            if st.cancel_waiter(id) {
                st.cancelled();
            } else if let Ok(grant) = rx.try_recv() {
                st.release_grant(grant, self.shared.clock.now());
            }
        });
    }
}

/// One get, and where it stands between its attempts.
struct Attempt {
    /// How long it may wait in all, from `started`.
    wait: Duration,
    location: &'static Location<'static>,
    no_wait: bool,
    started: Stamp,
    /// No attempt has been counted yet.
    first: bool,
    /// It has not queued yet.
    first_wait: bool,
}

/// The outcome of one locked attempt.
enum Step<C, E> {
    /// A connection, checked out at the stamp given.
    Ready(Conn<C>, Stamp),
    Wait(u64, oneshot::Receiver<Grant<C, E>>, Instant),
    Failed(PoolError<E>),
}

impl<M: Manager> Pool<M> {
    /// Starts building a pool over `manager`.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    pub(crate) fn start(manager: M, cfg: PoolConfig, name: String) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let handle = Handle::try_current().map_err(|_| {
            ConfigError::new("runtime", "the pool must be built inside a tokio runtime")
        })?;
        let clock = Clock::for_runtime(&handle);
        let now = clock.now();
        let state = State::new(cfg.clone(), now);
        let shared = Arc::new(Shared {
            name,
            manager,
            stash: state.stash(),
            state: parking_lot::Mutex::new(state),
            cfg,
            clock,
            handle,
            emptied: Notify::new(),
            maintenance: Mutex::new(None),
        });
        let task = shared.handle.spawn(tasks::maintain(
            Arc::downgrade(&shared),
            shared.cfg.maintenance_interval,
        ));
        *shared
            .maintenance
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        shared.with_state(|st| st.plan_creates(now));
        Ok(Self { shared })
    }

    /// Gets a connection, waiting up to `acquire_timeout` for one.
    ///
    /// Callers are served strictly in arrival order. Dropping the returned
    /// future at any point loses neither a connection nor capacity.
    ///
    /// # Errors
    /// [`PoolError::Timeout`] (with the last connect error, if connecting kept
    /// failing), [`PoolError::Connect`] when connecting for this caller failed
    /// on every attempt, [`PoolError::Closed`].
    #[track_caller]
    pub fn get(
        &self,
    ) -> impl Future<Output = Result<Pooled<'_, M>, PoolError<M::Error>>> + Send + '_ {
        let location = Location::caller();
        self.acquire(self.shared.cfg.acquire_timeout, location, false)
    }

    /// Like [`get`](Self::get) with this call's own timeout.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Pooled<'_, M>, PoolError<M::Error>>> + Send + '_ {
        let location = Location::caller();
        self.acquire(timeout, location, false)
    }

    /// Like [`get`](Self::get), for a guard that holds its own handle to the
    /// pool (to move into a spawned task, or keep beyond this handle).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_owned(
        &self,
    ) -> impl Future<Output = Result<Pooled<'static, M>, PoolError<M::Error>>> + Send + '_ {
        let location = Location::caller();
        let acquire = self.acquire(self.shared.cfg.acquire_timeout, location, false);
        async move { acquire.await.map(Pooled::into_owned) }
    }

    /// Gets an idle connection if there is one, without queueing or
    /// connecting. It may still validate the connection it found.
    ///
    /// # Errors
    /// [`PoolError::NoneIdle`] when nothing is idle (or callers are already
    /// waiting), [`PoolError::Closed`].
    #[track_caller]
    pub fn try_get(
        &self,
    ) -> impl Future<Output = Result<Pooled<'_, M>, PoolError<M::Error>>> + Send + '_ {
        let location = Location::caller();
        self.acquire(self.shared.cfg.acquire_timeout, location, true)
    }

    async fn acquire(
        &self,
        wait: Duration,
        location: &'static Location<'static>,
        no_wait: bool,
    ) -> Result<Pooled<'_, M>, PoolError<M::Error>> {
        let shared = &self.shared;
        let started = shared.clock.now();
        let mut attempt = Attempt {
            wait,
            location,
            no_wait,
            started,
            first: true,
            first_wait: true,
        };
        // What this thread parked on its last return comes first.
        let mut parked = match shared.stash.take(started) {
            Take::Hit(conn) => {
                attempt.first = false;
                Some(conn)
            }
            Take::Stale(conn) => {
                shared.with_state(|st| st.unstash(conn, started));
                None
            }
            Take::Empty => None,
        };
        loop {
            let (conn, since) = match parked.take() {
                Some(conn) => (conn, started),
                None => match self.checkout(&mut attempt) {
                    Step::Ready(conn, now) => (conn, now),
                    Step::Failed(e) => return Err(e),
                    Step::Wait(id, rx, deadline) => {
                        // Boxed: the waiting future (a timer, a channel) is
                        // the largest part of a get's state, and a hit never
                        // needs it; unboxed it would grow every get() future,
                        // and every task awaiting one, by its size.
                        match Box::pin(self.wait(id, rx, started, deadline)).await? {
                            Grant::Conn(conn) => (conn, shared.clock.now()),
                            Grant::Failed { attempts, error } => {
                                return Err(PoolError::Connect { attempts, error });
                            }
                            Grant::Closed => return Err(PoolError::Closed),
                        }
                    }
                },
            };
            // Prepared in this body, not in a nested future that hands the
            // connection back: on a hit that hand-back (a store-forwarding
            // stall) and the nested future's setup and teardown took a
            // seventh of a get + return.
            let validate = conn.needs_validation(&shared.cfg, since);
            let mut held = Preparing {
                shared,
                conn: Some(conn),
            };
            let mut since = since;
            if validate {
                // Boxed for the same reason as the wait: most gets skip it.
                match Box::pin(held.validate()).await {
                    Some(checked) => since = checked,
                    None => continue,
                }
            }
            let Some(conn) = held.conn.as_mut() else {
                continue;
            };
            let info = conn.info(since, since);
            match shared.manager.before_checkout(&mut conn.raw, &info).await {
                Ok(()) => {
                    if let Some(conn) = held.conn.take() {
                        return Ok(Pooled::new(self, conn, since));
                    }
                }
                Err(e) => {
                    tracing::info!(pool = %shared.name, connection = info.id, error = %e, "before_checkout failed");
                    held.reject(CloseReason::Error);
                }
            }
        }
    }

    /// One locked attempt at a connection: an idle one, or a place in the
    /// queue (or an error).
    fn checkout(&self, attempt: &mut Attempt) -> Step<M::Connection, M::Error> {
        let shared = &self.shared;
        let now = if attempt.first {
            attempt.started
        } else {
            shared.clock.now()
        };
        let mut caller = shared
            .cfg
            .leak_detection_threshold
            .is_some()
            .then(|| Caller {
                location: attempt.location,
                backtrace: Some(Box::new(Backtrace::force_capture())),
            });
        let (step, after) = {
            let mut st = shared.lock();
            let step = match st.checkout(now, attempt.started, attempt.first, || caller.take()) {
                Checkout::Ready(conn) => Step::Ready(conn, now),
                Checkout::Closed => Step::Failed(PoolError::Closed),
                Checkout::Queue if attempt.no_wait => {
                    st.none_idle();
                    Step::Failed(PoolError::NoneIdle)
                }
                Checkout::Queue => {
                    // Worked out afresh at each queuing rather than kept
                    // (it comes out the same, to within the two clocks'
                    // readings): every byte a get keeps is copied with
                    // every task that spawns one.
                    let deadline = shared.clock.instant_after(attempt.started, attempt.wait);
                    let (tx, rx) = oneshot::channel();
                    let id = st.enqueue(
                        tx,
                        now,
                        attempt.started,
                        Some(deadline),
                        attempt.first_wait,
                        attempt.first,
                        caller.take(),
                    );
                    attempt.first_wait = false;
                    Step::Wait(id, rx, deadline)
                }
            };
            (step, st.take_aftermath())
        };
        shared.finish(after);
        attempt.first = false;
        step
    }

    async fn wait(
        &self,
        id: u64,
        rx: oneshot::Receiver<Grant<M::Connection, M::Error>>,
        started: Stamp,
        deadline: Instant,
    ) -> Result<Grant<M::Connection, M::Error>, PoolError<M::Error>> {
        let shared = &self.shared;
        let mut waiting = Waiting {
            shared,
            id,
            rx,
            armed: true,
        };
        if let Ok(received) = timeout_at(deadline, &mut waiting.rx).await {
            waiting.armed = false;
            return Ok(received.unwrap_or(Grant::Closed));
        }
        waiting.armed = false;
        let now = shared.clock.now();
        let rx = &mut waiting.rx;
        shared.with_state(|st| {
            if st.cancel_waiter(id) {
                st.timed_out(now);
                let waited = now.saturating_duration_since(started);
                tracing::warn!(pool = %shared.name, waited_ms = waited.as_millis() as u64, "get timed out");
                Err(PoolError::Timeout {
                    waited,
                    last_error: st.last_error(),
                })
            } else {
                // Served just as the timer fired.
                Ok(rx.try_recv().unwrap_or(Grant::Closed))
            }
        })
    }

    /// Opens a connection through the manager that bypasses the pool: it is
    /// not counted, limited or reused. For the rare caller that must not hold
    /// a pooled connection (a `LISTEN` loop, a long migration).
    ///
    /// # Errors
    /// The connect error, or a timeout after `create_timeout`.
    pub async fn connect_direct(&self) -> Result<M::Connection, ConnectError<M::Error>> {
        tasks::connect_once(&self.shared, self.shared.cfg.create_timeout).await
    }

    /// The pool's name (for logs, metrics and the registry).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The manager that makes this pool's connections.
    pub fn manager(&self) -> &M {
        &self.shared.manager
    }

    /// The settings in force (after any [`resize`](Self::resize)).
    pub fn config(&self) -> PoolConfig {
        self.shared.lock().cfg.clone()
    }

    /// Current sizes, without copying histograms.
    pub fn gauges(&self) -> Gauges {
        self.snapshot(|st, _| st.gauges())
    }

    /// Counters since start, without copying histograms.
    pub fn counters(&self) -> Counters {
        self.snapshot(|st, _| st.counters())
    }

    /// A consistent snapshot of every statistic.
    pub fn stats(&self) -> Stats {
        self.snapshot(|st, now| st.stats(&self.shared.name, now))
    }

    /// Reads the state, as of now, once the stash has been swept into it.
    fn snapshot<R>(&self, read: impl FnOnce(&mut State<M::Connection, M::Error>, Stamp) -> R) -> R {
        let now = self.shared.clock.now();
        self.shared.with_state(|st| {
            st.sweep(now);
            read(st, now)
        })
    }

    /// Healthy, degraded or unhealthy, with reasons.
    pub fn health(&self) -> Health {
        Health::classify(&self.stats(), &self.shared.cfg.health)
    }

    /// Recommendations and a Little's-law sizing estimate.
    pub fn advice(&self) -> Advice {
        Advice::from_stats(&self.stats(), &self.shared.cfg.health)
    }

    /// Changes `max_size` at run time. Shrinking closes surplus idle
    /// connections now and busy ones when they come back; growing serves
    /// waiters at once. `min_idle` is lowered to fit if needed.
    ///
    /// # Errors
    /// When `max_size` is zero.
    pub fn resize(&self, max_size: usize) -> Result<(), ConfigError> {
        if max_size == 0 {
            return Err(ConfigError::new("max_size", "must be at least 1"));
        }
        self.shared
            .with_state(|st| st.resize(max_size, self.shared.clock.now()));
        tracing::info!(pool = %self.shared.name, max_size, "pool resized");
        Ok(())
    }

    /// Pauses the pool: `get()` waits (up to its timeout) until
    /// [`resume`](Self::resume). Connections in use are unaffected.
    pub fn pause(&self) {
        let now = self.shared.clock.now();
        self.shared.with_state(|st| st.set_paused(true, now));
        tracing::info!(pool = %self.shared.name, "pool paused");
    }

    /// Resumes a paused pool and serves the callers that waited.
    pub fn resume(&self) {
        let now = self.shared.clock.now();
        self.shared.with_state(|st| st.set_paused(false, now));
        tracing::info!(pool = %self.shared.name, "pool resumed");
    }

    /// Closes idle connections now and retires busy ones when they come back
    /// ("close all connections for maintenance"); new gets get new
    /// connections.
    pub fn evict(&self) {
        self.shared
            .with_state(|st| st.evict(self.shared.clock.now()));
        tracing::info!(pool = %self.shared.name, "pool evicted");
    }

    /// Closes the pool: new gets fail with [`PoolError::Closed`], waiters are
    /// woken with it, idle connections close now, busy ones on return.
    pub fn close(&self) {
        let was_open = self.shared.with_state(|st| {
            let was_open = !st.is_closed();
            st.close_pool(self.shared.clock.now());
            was_open
        });
        if was_open {
            tracing::info!(pool = %self.shared.name, "pool closed");
        }
    }

    /// Whether [`close`](Self::close) (or [`drain`](Self::drain)) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().is_closed()
    }

    /// Closes the pool and waits, up to `deadline`, for checked-out
    /// connections to come back and close.
    pub async fn drain(&self, deadline: Duration) -> DrainOutcome {
        self.close();
        let until = Instant::now() + deadline;
        loop {
            let emptied = self.shared.emptied.notified();
            tokio::pin!(emptied);
            emptied.as_mut().enable();
            let in_use = self.shared.lock().size();
            if in_use == 0 {
                return DrainOutcome { still_in_use: 0 };
            }
            if timeout_at(until, emptied).await.is_err() {
                let still_in_use = self.shared.lock().size();
                tracing::warn!(pool = %self.shared.name, still_in_use, "drain deadline passed");
                return DrainOutcome { still_in_use };
            }
        }
    }
}

/// The result of [`Pool::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct DrainOutcome {
    /// Connections still checked out when the deadline passed (0: drained).
    pub still_in_use: usize,
}

impl DrainOutcome {
    /// Whether every connection came back in time.
    pub fn is_complete(&self) -> bool {
        self.still_in_use == 0
    }
}
