//! The async layer: `get()`, waiting, timeouts, and runtime control.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::{Instant, timeout_at};

use crate::clock::{Clock, Stamp};
use crate::config::PoolConfig;
use crate::error::{ConfigError, ConnectError, PoolError};
use crate::guard::Pooled;
use crate::health::{Advice, Health};
use crate::shared::{Locked, Shared};
use crate::stats::{Counters, Gauges, Stats};
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

impl<M: Manager> Pool<M> {
    /// Starts building a pool over `manager`.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }

    pub(crate) fn start(manager: M, cfg: PoolConfig, name: String) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let home = Handle::try_current().map_err(|_| {
            ConfigError::new("runtime", "the pool must be built inside a tokio runtime")
        })?;
        let clock = Clock::for_runtime(&home);
        let now = clock.now();
        let shared = Arc::new(Shared::new(name, manager, cfg, home, clock, now));
        shared.ensure_maintenance();
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

    /// Current sizes, without copying histograms. Reads without waiting
    /// for any get or return.
    pub fn gauges(&self) -> Gauges {
        self.shared.lock().gauges()
    }

    /// Counters since start, without copying histograms.
    pub fn counters(&self) -> Counters {
        self.snapshot(|st, _| st.counters())
    }

    /// A consistent snapshot of every statistic.
    pub fn stats(&self) -> Stats {
        self.snapshot(|st, now| st.stats(&self.shared.name, now))
    }

    /// Reads the state, as of now, with what the stash recorded added in.
    /// Moves no connection.
    fn snapshot<R>(&self, read: impl FnOnce(&mut Locked<M>, Stamp) -> R) -> R {
        let now = self.shared.clock.now();
        // Taken out of the shards before the lock, so that waiting for a
        // shard held by a get or a return never holds up the pool.
        let drained = self.shared.stash.drain(now);
        let mut st = self.shared.lock();
        st.absorb(drained, now);
        read(&mut st, now)
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
            st.close_pool();
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

#[cfg(test)]
mod clock_jumps {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use crate::{Manager, Pool};

    /// Connections numbered in the order they were opened.
    #[derive(Default)]
    struct Numbered(AtomicU64);

    impl Manager for Numbered {
        type Connection = u64;
        type Error = Infallible;
        async fn connect(&self) -> Result<u64, Infallible> {
            Ok(self.0.fetch_add(1, Ordering::SeqCst))
        }
        async fn validate(&self, _: &mut u64) -> Result<(), Infallible> {
            Ok(())
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// An hour's jump forward of the CPU's counter retires nothing: every
    /// connection is still within its 30-minute lifetime.
    #[test]
    fn a_forward_jump_retires_nothing_early() {
        runtime().block_on(async {
            let pool = Pool::builder(Numbered::default())
                .max_size(4)
                .max_lifetime(Some(Duration::from_secs(1800)))
                .build()
                .unwrap();
            let held: Vec<_> = futures_all(&pool, 4).await;
            drop(held);
            pool.shared.clock.jump(3_600_000_000_000);
            let held: Vec<_> = futures_all(&pool, 4).await;
            let mut ids: Vec<u64> = held.iter().map(|c| **c).collect();
            ids.sort_unstable();
            assert_eq!(ids, [0, 1, 2, 3], "the same connections");
            drop(held);
            assert_eq!(pool.counters().closed.max_lifetime, 0);
        });
    }

    /// An hour's jump backward keeps no connection past its lifetime by
    /// more than a maintenance tick.
    #[test]
    fn a_backward_jump_keeps_no_connection_past_its_lifetime() {
        runtime().block_on(async {
            let pool = Pool::builder(Numbered::default())
                .max_size(1)
                .max_lifetime(Some(Duration::from_millis(200)))
                .maintenance_interval(Duration::from_millis(50))
                .build()
                .unwrap();
            drop(pool.get().await.unwrap());
            pool.shared.clock.jump(-3_600_000_000_000);
            tokio::time::sleep(Duration::from_millis(400)).await;
            let conn = pool.get().await.unwrap();
            assert_eq!(*conn, 1, "the first connection was retired");
            assert_eq!(pool.counters().closed.max_lifetime, 1);
        });
    }

    async fn futures_all(pool: &Pool<Numbered>, n: usize) -> Vec<crate::Pooled<'_, Numbered>> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(pool.get().await.unwrap());
        }
        out
    }
}
