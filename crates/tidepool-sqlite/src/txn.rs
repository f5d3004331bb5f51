//! [`transaction`]: run a closure inside a SQLite transaction on a pooled
//! connection.
//!
//! # Implementation notes
//!
//! The whole transaction — `BEGIN`, the closure, `COMMIT` or `ROLLBACK` —
//! runs in one [`interact`](crate::SqliteConnection::interact) call, with a
//! rusqlite [`Transaction`]: the closure is synchronous, like all SQLite
//! work, and no lock is ever held across an `.await` or a hop between
//! threads. This differs from an async-closure design (as in the MySQL
//! backend) on purpose: a SQLite transaction is a lock on the database file,
//! and keeping it inside one blocking call bounds how long it is held by the
//! work itself, not by the scheduling of other tasks.
//!
//! - `Ok` commits, `Err` rolls back.
//! - A panic in the closure unwinds on the blocking thread, dropping the
//!   `Transaction`, which rolls back; the caller gets
//!   [`InteractError::Panicked`] (as `E`) and the connection is marked broken.
//! - If the caller drops the future, the closure still runs to its end on
//!   its blocking thread (it cannot be interrupted), but a shared flag tells
//!   the helper to roll back instead of committing, and a drop guard marks
//!   the connection broken: the pool closes it instead of handing a busy
//!   connection to the next caller. A drop that happens after the closure
//!   has returned may race with the `COMMIT`; the transaction is then either
//!   committed or rolled back, never left open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Transaction, TransactionBehavior};
use tidepool::Pooled;

use crate::{InteractError, SqliteManager};

/// Runs `f` in an immediate transaction (`BEGIN IMMEDIATE`) on a blocking
/// thread: `COMMIT` if it returns `Ok`, `ROLLBACK` if it returns `Err` or
/// panics, or if this future is dropped before `f` returns.
///
/// `BEGIN IMMEDIATE` takes the write lock at the start, waiting up to
/// `busy_timeout` for it, so a transaction never fails half-way with
/// `SQLITE_BUSY` when it first writes (a deferred transaction that started
/// reading cannot wait for the lock, and fails instead). For read-only work
/// under WAL no transaction is needed — each statement reads a consistent
/// snapshot; [`transaction_with`] picks another behaviour.
///
/// `E` must absorb SQLite's errors and the pool's [`InteractError`];
/// [`SqliteError`](crate::SqliteError) does, as does `anyhow::Error`.
///
/// ```
/// use tidepool_sqlite::{SqliteConfig, SqliteError, SqliteManager, transaction};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = tidepool::Pool::builder(SqliteManager::new(SqliteConfig::memory("tx-doc"))?)
///     .build()?;
/// let mut conn = pool.get().await?;
/// let id = transaction(&mut conn, |tx| {
///     tx.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)", [])?;
///     tx.execute("INSERT INTO notes (body) VALUES (?1)", ["hello"])?;
///     Ok::<_, SqliteError>(tx.last_insert_rowid())
/// })
/// .await?;
/// assert_eq!(id, 1);
/// # Ok(()) }
/// ```
///
/// # Errors
/// The error returned by `f` (after the rollback); SQLite's error from
/// `BEGIN` or `COMMIT`; or an [`InteractError`] (a panic in `f`), all as
/// `E`.
pub async fn transaction<T, E, F>(conn: &mut Pooled<'_, SqliteManager>, f: F) -> Result<T, E>
where
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<rusqlite::Error> + From<InteractError> + Send + 'static,
{
    transaction_with(conn, TransactionBehavior::Immediate, f).await
}

/// [`transaction`] with another `BEGIN` behaviour: `Deferred` takes locks on
/// first use (fine for read-only transactions), `Exclusive` also keeps
/// readers out in rollback-journal modes (same as `Immediate` under WAL).
///
/// # Errors
/// As [`transaction`].
pub async fn transaction_with<T, E, F>(
    conn: &mut Pooled<'_, SqliteManager>,
    behavior: TransactionBehavior,
    f: F,
) -> Result<T, E>
where
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<rusqlite::Error> + From<InteractError> + Send + 'static,
{
    let abandoned = Arc::new(AtomicBool::new(false));
    let mut guard = Armed {
        conn,
        abandoned: Arc::clone(&abandoned),
        armed: true,
    };
    let outcome = guard
        .conn
        .interact(move |c| {
            let tx = c.transaction_with_behavior(behavior)?;
            match f(&tx) {
                Ok(value) if !abandoned.load(Ordering::Acquire) => {
                    tx.commit()?;
                    Ok(value)
                }
                Ok(value) => {
                    // Nobody waits for this result any more.
                    tx.rollback()?;
                    Ok(value)
                }
                Err(e) => {
                    if let Err(rollback) = tx.rollback() {
                        tracing::warn!(error = %rollback, "SQLite rollback failed");
                    }
                    Err(e)
                }
            }
        })
        .await;
    match outcome {
        Ok(result) => {
            guard.armed = false;
            result
        }
        // A panic: the guard stays armed and marks the connection broken.
        Err(e) => Err(E::from(e)),
    }
}

/// Until disarmed: on drop, tells the blocking closure not to commit and
/// marks the connection broken.
struct Armed<'a, 'p> {
    conn: &'a mut Pooled<'p, SqliteManager>,
    abandoned: Arc<AtomicBool>,
    armed: bool,
}

impl Drop for Armed<'_, '_> {
    fn drop(&mut self) {
        if self.armed {
            self.abandoned.store(true, Ordering::Release);
            self.conn.mark_broken();
        }
    }
}
