//! [`transaction`]: BEGIN, your code, then COMMIT or ROLLBACK — and never a
//! connection returned to the pool with a transaction still open.
//!
//! # Implementation notes
//! A drop guard holds the pooled connection from `BEGIN` until the server
//! has confirmed the `COMMIT` or `ROLLBACK`. If the future is dropped at any
//! await point in between (a timeout, a cancelled request, a `select!` that
//! went the other way) or the closure panics and the runtime drops the
//! future, the guard calls [`Pooled::mark_broken`]: the pool closes the
//! connection instead of reusing it, and the server rolls the transaction
//! back when the session ends. Sending a `ROLLBACK` from `Drop` instead
//! would need an async drop, and the connection could still be mid-reply to
//! the interrupted statement.
//!
//! The server notices a closed client only between statements: one that is
//! still running (a slow query, a lock wait) would hold the transaction's
//! locks until it finished. So the guard also sends a cancel request in the
//! background (a short extra connection to the server); the statement
//! fails, the server finds the client gone, and it rolls back at once.

use tidepool::Pooled;

use crate::{PgConnection, PgManager};

/// Runs `f` inside a transaction on `conn`: `BEGIN`, then `f`, then `COMMIT`
/// if it returned `Ok` or `ROLLBACK` if it returned `Err`.
///
/// `f` is an async closure that borrows the connection for as long as its
/// future runs (`F: AsyncFnOnce(&mut PgConnection) -> Result<T, E>`, so
/// `async |c| { ... }` works, queries and `prepare_cached` included). Its
/// error type `E` must absorb the driver's errors (`E:
/// From<tokio_postgres::Error>`); `tokio_postgres::Error` itself does, and
/// usually needs naming once, as in `Ok::<_, tokio_postgres::Error>(..)`.
///
/// If the returned future is dropped before it finishes, or `f` panics,
/// the connection is marked broken: the pool closes it rather than reuse it,
/// and the server rolls the transaction back (a statement still running is
/// cancelled first, so its locks are not held until it ends). A `BEGIN`, `COMMIT` or
/// `ROLLBACK` that fails does the same. Nested calls are not supported (use
/// `SAVEPOINT`).
///
/// ```no_run
/// use tidepool_postgres::tokio_postgres;
///
/// # async fn run(pool: tidepool_postgres::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = pool.get().await?;
/// let id: i64 = tidepool_postgres::transaction(&mut conn, async |c| {
///     let row = c
///         .query_one("INSERT INTO orders (total) VALUES ($1) RETURNING id", &[&42_i64])
///         .await?;
///     c.execute("UPDATE stats SET orders = orders + 1", &[]).await?;
///     Ok::<_, tokio_postgres::Error>(row.get(0))
/// })
/// .await?;
/// # let _ = id; Ok(()) }
/// ```
///
/// # Errors
/// The error of `BEGIN` or `COMMIT` (converted into `E`), or `f`'s own
/// error after a rollback. When the `ROLLBACK` itself fails, `f`'s error is
/// still the one returned (and the connection is closed).
pub async fn transaction<T, E, F>(conn: &mut Pooled<'_, PgManager>, f: F) -> Result<T, E>
where
    F: AsyncFnOnce(&mut PgConnection) -> Result<T, E>,
    E: From<tokio_postgres::Error>,
{
    let mut guard = Open { conn, open: true };
    guard.conn.batch_execute("BEGIN").await?;
    match f(&mut **guard.conn).await {
        Ok(value) => {
            guard.conn.batch_execute("COMMIT").await?;
            guard.open = false;
            Ok(value)
        }
        Err(e) => {
            if guard.conn.batch_execute("ROLLBACK").await.is_ok() {
                guard.open = false;
            }
            Err(e)
        }
    }
}

/// Marks the connection broken if dropped while a transaction may be open.
struct Open<'a, 'p> {
    conn: &'a mut Pooled<'p, PgManager>,
    open: bool,
}

impl Drop for Open<'_, '_> {
    fn drop(&mut self) {
        if self.open {
            tracing::debug!(
                connection = self.conn.info().id,
                "transaction interrupted; closing its connection"
            );
            self.conn.mark_broken();
            let manager = self.conn.pool().manager();
            manager.cancel_in_background(self.conn);
        }
    }
}
