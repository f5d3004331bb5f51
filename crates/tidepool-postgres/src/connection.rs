//! [`PgConnection`]: a driver client plus its prepared-statement cache.

use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use tokio::task::JoinHandle;
use tokio_postgres::error::Severity;
use tokio_postgres::{Client, Error, Statement};

/// The statements a connection keeps prepared unless told otherwise.
pub const DEFAULT_STATEMENT_CACHE_CAPACITY: usize = 256;

/// One pooled PostgreSQL connection: a [`tokio_postgres::Client`] (it derefs
/// to it, so every driver method is at hand) with a bounded cache of prepared
/// statements.
///
/// The driver's connection task runs in the background from connect until
/// this value is dropped; dropping it closes the session.
///
/// The client's calls that run a statement (`query`, `query_one`,
/// `query_opt`, `query_raw`, `execute`, `execute_raw`, `prepare`,
/// `prepare_typed`, `simple_query`, `batch_execute`) are also methods of
/// this type, with the same signatures, which method calls find first: each
/// notes an error that ends the session, so that [`is_closed`](Self::is_closed)
/// says so at once (see there).
pub struct PgConnection {
    client: Client,
    statements: StatementCache,
    /// A call on this connection failed with an error that ends the session.
    ended: AtomicBool,
    /// The driver's connection task: it ends when the session has.
    driver: JoinHandle<()>,
}

impl PgConnection {
    pub(crate) fn new(client: Client, driver: JoinHandle<()>, cache_capacity: usize) -> Self {
        Self {
            client,
            statements: StatementCache::new(cache_capacity),
            ended: AtomicBool::new(false),
            driver,
        }
    }

    /// Closes the session and waits until it has ended.
    ///
    /// The driver says goodbye (`Terminate`) only once every statement sent
    /// has been answered, so a statement still running — one whose cancel
    /// has not reached it yet, or one that catches the cancel — runs to its
    /// end first, and the server's process for this session lives until
    /// then. This waits for all of that: when it returns, the driver's
    /// connection task has stopped. Dropping the connection instead closes
    /// it the same way without waiting; dropping the future this returns
    /// before it is done stops the driver's task, which closes the socket
    /// at once, whatever the server is still doing.
    pub async fn close(self) {
        let Self {
            client,
            statements,
            driver,
            ..
        } = self;
        drop(statements);
        drop(client);
        let mut driver = AbortOnDrop(Some(driver));
        if let Some(task) = driver.0.as_mut() {
            // The task only ends (a panic in it is the driver's); either
            // way the session is over.
            let _ = task.await;
        }
        driver.0 = None;
    }

    /// Whether the session has ended: the driver's connection task has
    /// stopped ([`Client::is_closed`]), or a call on this connection failed
    /// with an error that ends the session (a `FATAL` or `PANIC` from the
    /// server, such as `57P01` after `pg_terminate_backend`). Reads two
    /// flags; no round trip.
    ///
    /// The second case matters because of an order inside the driver: a
    /// server that ends a session while a statement runs sends that
    /// statement a `FATAL` error, then closes the socket once its process
    /// has cleaned up. The caller gets the error at once; the driver marks
    /// the client closed only when it reads the end of the stream, up to a
    /// millisecond later, and a pool asking in between would hand the dead
    /// connection to the next caller.
    pub fn is_closed(&self) -> bool {
        self.ended.load(Ordering::Relaxed) || self.client.is_closed()
    }

    /// Passes `result` through, noting an error that ends the session.
    pub(crate) fn watch<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result {
            if ends_session(e) {
                self.ended.store(true, Ordering::Relaxed);
            }
        }
        result
    }

    /// Prepares `sql` once per connection: the first call prepares it on the
    /// server, later calls return the cached [`Statement`] without a round
    /// trip. The cache holds at most the manager's
    /// [`statement_cache_capacity`](crate::PgManager::statement_cache_capacity)
    /// statements; past that the least recently used one is evicted (and
    /// closed on the server once no caller still holds it).
    ///
    /// # Errors
    /// The driver's error when preparing fails (a syntax error, an unknown
    /// table, a closed connection). Failures are not cached.
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement);
        }
        let statement = self.prepare(sql).await?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Forgets every cached statement (each is closed on the server once no
    /// caller still holds it). Needed only after something dropped them on
    /// the server, such as a `DEALLOCATE ALL` or `DISCARD ALL` run by hand.
    pub fn clear_statement_cache(&self) {
        self.statements.clear();
    }

    /// How many statements are cached now.
    pub fn cached_statements(&self) -> usize {
        self.statements.len()
    }

    /// The driver client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Gives up the statement cache and returns the driver client, for
    /// example after [`Pooled::detach`](tidepool::Pooled::detach).
    pub fn into_client(self) -> Client {
        self.client
    }
}

/// Stops the driver's task when a [`PgConnection::close`] is given up.
struct AbortOnDrop(Option<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl fmt::Debug for PgConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConnection")
            .field("closed", &self.is_closed())
            .field("cached_statements", &self.statements.len())
            .finish_non_exhaustive()
    }
}

/// Whether `e` means the session is over: the client is closed, or the
/// server sent a `FATAL` or `PANIC` error (after which it closes the session).
fn ends_session(e: &Error) -> bool {
    e.is_closed()
        || e.as_db_error().is_some_and(|db| {
            matches!(
                db.parsed_severity(),
                Some(Severity::Fatal | Severity::Panic)
            )
        })
}

/// A bounded map from SQL text to its prepared statement, evicting the least
/// recently used entry when full. The lock is never held across an `.await`.
struct StatementCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<String, Entry>,
    /// Bumped on every use; an entry's stamp says when it was last used.
    clock: u64,
}

struct Entry {
    statement: Statement,
    used: u64,
}

impl StatementCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, sql: &str) -> Option<Statement> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.map.get_mut(sql)?;
        entry.used = now;
        Some(entry.statement.clone())
    }

    fn insert(&self, sql: &str, statement: Statement) {
        if self.capacity == 0 {
            return;
        }
        // Dropped after the lock is released: dropping a statement queues a
        // `Close` message to the server.
        let evicted;
        {
            let mut inner = self.lock();
            inner.clock += 1;
            let now = inner.clock;
            evicted = if inner.map.len() >= self.capacity && !inner.map.contains_key(sql) {
                let oldest = inner
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.used)
                    .map(|(k, _)| k.clone());
                oldest.and_then(|k| inner.map.remove(&k))
            } else {
                None
            };
            inner.map.insert(
                sql.to_owned(),
                Entry {
                    statement,
                    used: now,
                },
            );
        }
        drop(evicted);
    }

    fn clear(&self) {
        let old = std::mem::take(&mut self.lock().map);
        drop(old);
    }

    fn len(&self) -> usize {
        self.lock().map.len()
    }
}
