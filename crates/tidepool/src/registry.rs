//! A registry of named pools of any manager, behind one object-safe handle.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use serde::Serialize;

use crate::config::PoolConfig;
use crate::error::{ConfigError, PoolError, TimeoutCause};
use crate::health::{Advice, Health};
use crate::stats::{Gauges, Stats};
use crate::{DrainOutcome, Manager, Pool};

/// The idle period after which [`Registry::with_idle_removal`] is usually
/// set: 30 minutes.
pub const DEFAULT_IDLE_REMOVAL: Duration = Duration::from_secs(30 * 60);

/// What every pool offers, whatever its manager: the object-safe face of a
/// [`Pool`] used by the registry and the HTTP layer.
pub trait PoolHandle: Send + Sync + fmt::Debug {
    /// The pool's name.
    fn name(&self) -> &str;
    /// A full statistics snapshot.
    fn stats(&self) -> Stats;
    /// Sizes only.
    fn gauges(&self) -> Gauges;
    /// Health with reasons.
    fn health(&self) -> Health;
    /// Recommendations and sizing.
    fn advice(&self) -> Advice;
    /// The settings in force.
    fn config(&self) -> PoolConfig;
    /// See [`Pool::evict`].
    fn evict(&self);
    /// See [`Pool::resize`].
    ///
    /// # Errors
    /// When `max_size` is zero.
    fn resize(&self, max_size: usize) -> Result<(), ConfigError>;
    /// See [`Pool::pause`].
    fn pause(&self);
    /// See [`Pool::resume`].
    fn resume(&self);
    /// See [`Pool::close`].
    fn close(&self);
    /// See [`Pool::drain`]: closes the pool and waits up to `deadline` for
    /// checked-out connections.
    fn drain(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = DrainOutcome> + Send + '_>>;
    /// Gets a connection within `within` and validates it: a database health
    /// check. The error says whether the pool was only busy or the database
    /// failed, with a message for people.
    fn check(
        &self,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<(), CheckError>> + Send + '_>>;
    /// The concrete pool, for downcasting to `Pool<M>`.
    fn as_any(&self) -> &dyn Any;
}

impl<M: Manager> PoolHandle for Pool<M> {
    fn name(&self) -> &str {
        Pool::name(self)
    }
    fn stats(&self) -> Stats {
        Pool::stats(self)
    }
    fn gauges(&self) -> Gauges {
        Pool::gauges(self)
    }
    fn health(&self) -> Health {
        Pool::health(self)
    }
    fn advice(&self) -> Advice {
        Pool::advice(self)
    }
    fn config(&self) -> PoolConfig {
        Pool::config(self)
    }
    fn evict(&self) {
        Pool::evict(self);
    }
    fn resize(&self, max_size: usize) -> Result<(), ConfigError> {
        Pool::resize(self, max_size)
    }
    fn pause(&self) {
        Pool::pause(self);
    }
    fn resume(&self) {
        Pool::resume(self);
    }
    fn close(&self) {
        Pool::close(self);
    }
    fn drain(&self, deadline: Duration) -> Pin<Box<dyn Future<Output = DrainOutcome> + Send + '_>> {
        Box::pin(Pool::drain(self, deadline))
    }
    fn check(
        &self,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<(), CheckError>> + Send + '_>> {
        Box::pin(async move {
            let mut conn = self.get_timeout(within).await.map_err(|e| match &e {
                PoolError::Timeout(t)
                    if t.last_error.is_none()
                        && matches!(t.cause, TimeoutCause::Busy { .. } | TimeoutCause::Paused) =>
                {
                    CheckError::Busy(e.to_string())
                }
                _ => CheckError::Down(e.to_string()),
            })?;
            let ping = self.manager().validate(&mut conn);
            match tokio::time::timeout(within, ping).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    conn.mark_broken();
                    Err(CheckError::Down(format!("validation failed: {e}")))
                }
                Err(_) => {
                    conn.mark_broken();
                    Err(CheckError::Down(format!(
                        "validation timed out after {within:?}"
                    )))
                }
            }
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Why [`PoolHandle::check`] failed. A pool whose connections are all in
/// use (or that an operator paused) is busy, not down: the database was not
/// seen failing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckError {
    /// No connection came free in time: every one the pool may open was
    /// checked out, or the pool is paused. The message says which.
    Busy(String),
    /// The database failed: no connection could be opened, or the one
    /// handed out failed validation; or the pool is closed.
    Down(String),
}

impl CheckError {
    /// Whether the pool was only busy (or paused), not failing.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Busy(_))
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        match self {
            Self::Busy(m) | Self::Down(m) => m,
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CheckError {}

/// An error from the registry.
#[derive(Debug)]
pub enum RegistryError<E> {
    /// A pool of that name exists with another manager type.
    TypeMismatch {
        /// The name asked for.
        name: String,
    },
    /// A pool of that name exists already.
    Duplicate {
        /// The name asked for.
        name: String,
    },
    /// Making the pool failed.
    Create(E),
}

impl<E: fmt::Display> fmt::Display for RegistryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TypeMismatch { name } => {
                write!(f, "pool `{name}` exists with a different connection type")
            }
            Self::Duplicate { name } => write!(f, "pool `{name}` already exists"),
            Self::Create(e) => write!(f, "could not create pool: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RegistryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Create(e) => Some(e),
            _ => None,
        }
    }
}

struct Entry {
    handle: Arc<dyn PoolHandle>,
    typed: Box<dyn Any + Send + Sync>,
    /// Made on demand, so it may be removed when unused.
    removable: bool,
}

/// Totals across every pool of a registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AggregateStats {
    /// Number of pools.
    pub pools: usize,
    /// Open connections.
    pub connections: usize,
    /// Connections in use.
    pub active: usize,
    /// Idle connections.
    pub idle: usize,
    /// Callers waiting.
    pub waiting: usize,
    /// Sum of `max_size`.
    pub capacity: usize,
    /// active / capacity.
    pub utilization: f64,
    /// Gets.
    pub gets: u64,
    /// Connections created.
    pub created: u64,
    /// Checkouts of a connection used before.
    pub reused: u64,
    /// Connections closed.
    pub closed: u64,
    /// Failed connects and timeouts.
    pub errors: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Leaks detected.
    pub leaks: u64,
    /// reused / created; `None` before any connection.
    pub reuse_ratio: Option<f64>,
}

/// Named pools of different managers.
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
/// use tidepool::{Pool, Registry};
///
/// let registry = Registry::new();
/// let pool = registry.get_or_create("numbers", |name| Pool::builder(Numbers).name(name).build())?;
/// drop(pool.get().await?);
/// assert_eq!(registry.aggregate().created, 1);
/// assert_eq!(registry.handle("numbers").unwrap().stats().counters.gets, 1);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Registry {
    pools: Mutex<BTreeMap<String, Entry>>,
    idle_removal: Option<Duration>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("pools", &self.names())
            .field("idle_removal", &self.idle_removal)
            .finish()
    }
}

impl Registry {
    /// An empty registry that never removes pools by itself.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry whose on-demand pools (made by
    /// [`get_or_create`](Self::get_or_create)) are removed and closed by
    /// [`remove_idle`](Self::remove_idle) once unused for `period`
    /// (typically [`DEFAULT_IDLE_REMOVAL`]). Pools added with
    /// [`insert`](Self::insert) stay.
    pub fn with_idle_removal(period: Duration) -> Self {
        Self {
            pools: Mutex::default(),
            idle_removal: Some(period),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a pool under its own name; it is never removed for idleness.
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`] if the name is taken.
    pub fn insert<M: Manager>(&self, pool: Pool<M>) -> Result<(), RegistryError<ConfigError>> {
        let mut pools = self.lock();
        let name = pool.name().to_owned();
        if pools.contains_key(&name) {
            return Err(RegistryError::Duplicate { name });
        }
        pools.insert(name, entry(pool, false));
        Ok(())
    }

    /// The pool called `name`, made by `make` (given the name) if there is
    /// none yet. `make` runs at most once per name, under the registry lock.
    ///
    /// # Errors
    /// [`RegistryError::TypeMismatch`] when the existing pool has another
    /// manager type, [`RegistryError::Create`] when `make` fails.
    pub fn get_or_create<M, E>(
        &self,
        name: &str,
        make: impl FnOnce(&str) -> Result<Pool<M>, E>,
    ) -> Result<Pool<M>, RegistryError<E>>
    where
        M: Manager,
    {
        let mut pools = self.lock();
        if let Some(e) = pools.get(name) {
            return e.typed.downcast_ref::<Pool<M>>().cloned().ok_or_else(|| {
                RegistryError::TypeMismatch {
                    name: name.to_owned(),
                }
            });
        }
        let pool = make(name).map_err(RegistryError::Create)?;
        pools.insert(name.to_owned(), entry(pool.clone(), true));
        Ok(pool)
    }

    /// The pool called `name`, if it exists with manager `M`.
    pub fn get<M: Manager>(&self, name: &str) -> Option<Pool<M>> {
        self.lock()
            .get(name)?
            .typed
            .downcast_ref::<Pool<M>>()
            .cloned()
    }

    /// The pool called `name`, whatever its manager.
    pub fn handle(&self, name: &str) -> Option<Arc<dyn PoolHandle>> {
        self.lock().get(name).map(|e| Arc::clone(&e.handle))
    }

    /// Every pool, in name order.
    pub fn handles(&self) -> Vec<Arc<dyn PoolHandle>> {
        self.lock()
            .values()
            .map(|e| Arc::clone(&e.handle))
            .collect()
    }

    /// Every pool's name, in order.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Removes and closes the pool called `name`; `false` if there was none.
    pub fn remove(&self, name: &str) -> bool {
        let removed = self.lock().remove(name);
        match removed {
            Some(e) => {
                e.handle.close();
                true
            }
            None => false,
        }
    }

    /// Closes every pool (they stay registered, and report closed).
    pub fn close_all(&self) {
        for h in self.handles() {
            h.close();
        }
    }

    /// Removes and closes on-demand pools unused (no get, nothing checked
    /// out or waiting) for the idle-removal period; returns their names.
    /// Does nothing without [`with_idle_removal`](Self::with_idle_removal).
    pub fn remove_idle(&self) -> Vec<String> {
        let Some(period) = self.idle_removal else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        let removed: Vec<Entry> = {
            let mut pools = self.lock();
            let names: Vec<String> = pools
                .iter()
                .filter(|(_, e)| e.removable)
                .filter(|(_, e)| {
                    let s = e.handle.stats();
                    s.derived.idle_for >= period && s.gauges.in_use == 0 && s.gauges.waiting == 0
                })
                .map(|(n, _)| n.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|n| {
                    let e = pools.remove(&n)?;
                    gone.push(n);
                    Some(e)
                })
                .collect()
        };
        for e in removed {
            tracing::info!(pool = %e.handle.name(), "removing idle pool");
            e.handle.close();
        }
        gone
    }

    /// Runs [`remove_idle`](Self::remove_idle) every `every` until the
    /// registry is dropped.
    pub fn spawn_idle_reaper(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(registry) = weak.upgrade() else {
                    return;
                };
                registry.remove_idle();
            }
        })
    }

    /// Totals across every pool.
    pub fn aggregate(&self) -> AggregateStats {
        AggregateStats::sum(self.handles().iter().map(|h| h.stats()))
    }
}

impl AggregateStats {
    /// Totals across the pools whose snapshots are given (every pool of a
    /// registry, or the ones a caller may see).
    pub fn sum(pools: impl IntoIterator<Item = Stats>) -> Self {
        let mut a = Self::default();
        for s in pools {
            let (g, c) = (s.gauges, s.counters);
            a.pools += 1;
            a.connections += g.size;
            a.active += g.in_use;
            a.idle += g.idle;
            a.waiting += g.waiting;
            a.capacity += g.max_size;
            a.gets += c.gets;
            a.created += c.created;
            a.reused += c.reused;
            a.closed += c.closed.total();
            a.errors += c.create_errors + c.timeouts;
            a.timeouts += c.timeouts;
            a.leaks += c.leaks;
        }
        if a.capacity > 0 {
            a.utilization = a.active as f64 / a.capacity as f64;
        }
        if a.created > 0 {
            a.reuse_ratio = Some(a.reused as f64 / a.created as f64);
        }
        a
    }
}

fn entry<M: Manager>(pool: Pool<M>, removable: bool) -> Entry {
    Entry {
        handle: Arc::new(pool.clone()),
        typed: Box::new(pool),
        removable,
    }
}
