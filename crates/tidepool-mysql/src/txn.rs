//! [`transaction`]: run an async closure inside a transaction on a pooled
//! connection.
//!
//! # Implementation notes
//!
//! The helper sends `START TRANSACTION`, runs the closure, then `COMMIT` (on
//! `Ok`) or `ROLLBACK` (on `Err`). Between the first statement and a
//! successful `COMMIT` or `ROLLBACK`, a drop guard holds the pooled
//! connection "armed". Whatever ends the future early — a panic in the
//! closure, the caller dropping the future (a timeout, a `select!` that
//! picked another branch, an aborted task), a failed `COMMIT` or
//! `ROLLBACK`, a connection error — drops the guard while it is still armed,
//! and it calls [`Pooled::mark_broken`]. The connection is then closed when
//! the guard is returned instead of going back to the pool, and the server
//! rolls back whatever the transaction had done when the connection closes.
//! Rolling back over the wire from `Drop` is impossible (it cannot await),
//! and a connection with a transaction in an unknown state must never be
//! handed to the next caller.
//!
//! The closure is an async closure taking `&mut Conn` for any lifetime
//! (`for<'c> AsyncFnOnce(&'c mut Conn) -> Result<T, E>`): it may borrow from
//! its environment, and the connection cannot escape it. Its error type only
//! has to absorb the driver's (`E: From<mysql_async::Error>`), so an
//! application error enum, `mysql_async::Error` itself or `anyhow::Error` all
//! work. The returned future is `Send` whenever the closure's is, so it can
//! run inside `tokio::spawn`.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tidepool::Pooled;

use crate::MySqlManager;

/// Runs `f` in a transaction on `conn`: `COMMIT` if it returns `Ok`,
/// `ROLLBACK` if it returns `Err`.
///
/// If the future is dropped before it finishes (a timeout, a `select!`, an
/// aborted task), or `f` panics, or `START TRANSACTION`, `COMMIT` or
/// `ROLLBACK` fails, `conn` is marked broken with
/// [`Pooled::mark_broken`]: it is closed when dropped instead of going back
/// to the pool, and the server rolls the transaction back as the connection
/// closes. A connection whose transaction is in an unknown state is never
/// handed to another caller.
///
/// `f` is an async closure that gets the connection for the duration of the
/// call; it may borrow from its surroundings. Its error type only has to
/// absorb the driver's (`E: From<mysql_async::Error>`): an application
/// error enum, `mysql_async::Error` itself or `anyhow::Error` all work. The
/// future is `Send` when the closure's is, so it can run in `tokio::spawn`.
///
/// Statements that commit implicitly in MySQL (DDL such as `CREATE TABLE`,
/// `LOCK TABLES`) end the transaction early; keep them out of `f`.
///
/// ```no_run
/// use tidepool_mysql::mysql_async::{self, prelude::Queryable};
///
/// # async fn run(pool: tidepool_mysql::MySqlPool) -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = pool.get().await?;
/// let moved = tidepool_mysql::transaction(&mut conn, async |tx| {
///     tx.query_drop("UPDATE accounts SET balance = balance - 10 WHERE id = 1").await?;
///     tx.query_drop("UPDATE accounts SET balance = balance + 10 WHERE id = 2").await?;
///     Ok::<_, mysql_async::Error>(10)
/// })
/// .await?;
/// # let _ = moved; Ok(()) }
/// ```
///
/// # Errors
/// The error returned by `f` (after the rollback), or the driver's error
/// from `START TRANSACTION` or `COMMIT`, converted into `E`.
pub async fn transaction<T, E, F>(conn: &mut Pooled<'_, MySqlManager>, f: F) -> Result<T, E>
where
    F: for<'c> AsyncFnOnce(&'c mut Conn) -> Result<T, E>,
    E: From<mysql_async::Error>,
{
    let mut open = Armed { conn, armed: true };
    open.conn.query_drop("START TRANSACTION").await?;
    match f(&mut **open.conn).await {
        Ok(value) => {
            open.conn.query_drop("COMMIT").await?;
            open.armed = false;
            Ok(value)
        }
        // The connection is gone, and the server rolled back with it; the
        // guard stays armed so the pool closes it.
        Err(e) if open.conn.is_disconnected() => Err(e),
        Err(e) => {
            match open.conn.query_drop("ROLLBACK").await {
                Ok(()) => open.armed = false,
                Err(rollback) => tracing::warn!(
                    connection = open.conn.info().id,
                    error = %rollback,
                    "rollback failed; closing the connection"
                ),
            }
            Err(e)
        }
    }
}

/// Marks the connection broken unless disarmed: dropped while armed means
/// the transaction's outcome is unknown.
struct Armed<'a, 'p> {
    conn: &'a mut Pooled<'p, MySqlManager>,
    armed: bool,
}

impl Drop for Armed<'_, '_> {
    fn drop(&mut self) {
        if self.armed {
            self.conn.mark_broken();
        }
    }
}
