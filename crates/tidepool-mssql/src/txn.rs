//! [`transaction`]: run an async closure inside a transaction on a pooled
//! connection.
//!
//! # Implementation notes
//! The transaction is begun, committed and rolled back with the driver's
//! Transaction Manager requests (`begin_transaction`, `commit_transaction`,
//! `rollback_transaction`; MS-TDS 2.2.6.8), so tiberius attaches the
//! transaction's descriptor to every request in between.
//!
//! Between `BEGIN` and a confirmed `COMMIT` or `ROLLBACK`, a drop guard holds
//! the pooled connection armed. Whatever ends the future early — a panic in
//! the closure, the caller dropping the future (a timeout, a `select!`, an
//! aborted task), a failed `COMMIT` or `ROLLBACK` — drops the guard armed,
//! and it calls [`Pooled::mark_broken`]: the pool closes the connection
//! instead of reusing it, and the server rolls the transaction back when the
//! session ends. Rolling back from `Drop` is impossible (it cannot await),
//! and the connection may be mid-reply to the interrupted request.

use tidepool::Pooled;

use crate::{MssqlConnection, MssqlManager};

/// Runs `f` in a transaction on `conn`: commits if it returns `Ok`, rolls
/// back if it returns `Err`.
///
/// If the future is dropped before it finishes, or `f` panics, or the
/// begin, commit or rollback fails, `conn` is marked broken
/// ([`Pooled::mark_broken`]): it is closed when dropped instead of going back
/// to the pool, and the server rolls the transaction back as the session
/// ends. A connection whose transaction is in an unknown state is never
/// handed to another caller.
///
/// `f` is an async closure that gets the connection for the duration of the
/// call; its error type only has to absorb the driver's (`E:
/// From<tiberius::error::Error>`).
///
/// ```no_run
/// use tidepool_mssql::tiberius;
///
/// # async fn run(pool: tidepool_mssql::MssqlPool) -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = pool.get().await?;
/// let moved = tidepool_mssql::transaction(&mut conn, async |tx| {
///     tx.execute("UPDATE accounts SET balance = balance - @P1 WHERE id = 1", &[&10i32]).await?;
///     tx.execute("UPDATE accounts SET balance = balance + @P1 WHERE id = 2", &[&10i32]).await?;
///     Ok::<_, tiberius::error::Error>(10)
/// })
/// .await?;
/// # let _ = moved; Ok(()) }
/// ```
///
/// # Errors
/// The error returned by `f` (after the rollback), or the driver's error
/// from the begin or commit, converted into `E`.
pub async fn transaction<T, E, F>(conn: &mut Pooled<'_, MssqlManager>, f: F) -> Result<T, E>
where
    F: for<'c> AsyncFnOnce(&'c mut MssqlConnection) -> Result<T, E>,
    E: From<tiberius::error::Error>,
{
    let mut open = Armed { conn, armed: true };
    open.conn.begin_transaction().await?;
    match f(&mut **open.conn).await {
        Ok(value) => {
            open.conn.commit_transaction().await?;
            open.armed = false;
            Ok(value)
        }
        // The connection is gone, and the server rolled back with it; the
        // guard stays armed so the pool closes it.
        Err(e) if open.conn.is_closed() => Err(e),
        Err(e) => {
            match open.conn.rollback_transaction().await {
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
    conn: &'a mut Pooled<'p, MssqlManager>,
    armed: bool,
}

impl Drop for Armed<'_, '_> {
    fn drop(&mut self) {
        if self.armed {
            tracing::debug!(
                connection = self.conn.info().id,
                "transaction interrupted; closing its connection"
            );
            self.conn.mark_broken();
        }
    }
}
