//! [`SqliteConnection`]: a rusqlite connection that is only ever used on
//! tokio's blocking threads.
//!
//! # Implementation notes
//!
//! The `rusqlite::Connection` lives in an `Arc<Mutex<_>>`. [`interact`]
//! clones the `Arc` into a `spawn_blocking` task, which locks the mutex and
//! runs the closure there; the runtime's worker threads only await the
//! task. So:
//!
//! - If the caller drops the future while the closure runs, the closure still
//!   finishes on its blocking thread, and the mutex serializes it with
//!   whatever runs next on the connection. Nothing is lost or torn. The pool
//!   closes such a connection when it is returned (the still-held lock is
//!   the cheap "has it broken?" signal), so nobody queues behind an
//!   abandoned closure; the connection really closes when the closure ends.
//! - If the closure panics, the panic stays on the blocking thread: the
//!   caller gets [`InteractError::Panicked`], the unwinding rolls back any
//!   rusqlite `Transaction` the closure held, and the mutex is poisoned. A
//!   poisoned connection refuses further closures
//!   ([`InteractError::Poisoned`]) and is closed when returned.
//! - The mutex is only ever locked on blocking threads, never across an
//!   `.await`; the pool's on-return check uses `try_lock`, which never
//!   blocks.
//! - Closing a connection can write (the last connection to a WAL database
//!   checkpoints it), so dropping a [`SqliteConnection`] inside a runtime
//!   hands the final drop to a blocking thread too.
//!
//! [`interact`]: SqliteConnection::interact

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, TryLockError};

use rusqlite::Connection;
use tokio::runtime::Handle;
use tokio::task::JoinError;

/// A pooled SQLite connection. All work on it goes through
/// [`interact`](Self::interact), which runs on a blocking thread.
pub struct SqliteConnection {
    /// `None` only while being dropped.
    inner: Option<Arc<Mutex<Connection>>>,
}

impl fmt::Debug for SqliteConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConnection")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// What the pool's on-return check sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Ready for reuse.
    Ready,
    /// A transaction is still open.
    InTransaction,
    /// A closure is still running (its caller gave up on it).
    Busy,
    /// A closure panicked on it.
    Poisoned,
}

impl SqliteConnection {
    pub(crate) fn new(conn: Connection) -> Self {
        Self {
            inner: Some(Arc::new(Mutex::new(conn))),
        }
    }

    fn shared(&self) -> &Arc<Mutex<Connection>> {
        self.inner
            .as_ref()
            .expect("a connection is only taken when dropped")
    }

    /// Runs `f` with the connection on one of tokio's blocking threads and
    /// returns its result; the runtime's workers never touch SQLite.
    ///
    /// Closures on one connection run one at a time. The future does not
    /// borrow the connection, so it can be spawned. Nothing runs until the
    /// future is first polled; once started, the closure runs to its end even
    /// if the future is dropped (the pool then closes the connection rather
    /// than reuse it while it may still be busy). It must be polled inside a
    /// tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let pool = tidepool::Pool::builder(tidepool_sqlite::SqliteManager::new(
    /// #     tidepool_sqlite::SqliteConfig::memory("interact-doc"))?).build()?;
    /// let conn = pool.get().await?;
    /// let answer: i64 = conn
    ///     .interact(|c| c.query_row("SELECT 6 * 7", [], |row| row.get(0)))
    ///     .await??;
    /// assert_eq!(answer, 42);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`InteractError::Panicked`] if `f` panicked (the connection is then
    /// closed when returned to the pool), [`InteractError::Poisoned`] if an
    /// earlier closure on this connection panicked, or
    /// [`InteractError::Aborted`] if the runtime shut down first. Errors of
    /// `f` itself are in `R`.
    pub fn interact<F, R>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<R, InteractError>> + Send + use<F, R>
    where
        F: FnOnce(&mut Connection) -> R + Send + 'static,
        R: Send + 'static,
    {
        let shared = Arc::clone(self.shared());
        async move {
            let task = tokio::task::spawn_blocking(move || {
                let mut conn = shared.lock().map_err(|_| InteractError::Poisoned)?;
                Ok(f(&mut conn))
            });
            task.await.unwrap_or_else(|e| Err(InteractError::from(e)))
        }
    }

    /// The cheap, non-blocking on-return check.
    pub(crate) fn state(&self) -> State {
        let Some(shared) = &self.inner else {
            return State::Busy;
        };
        match shared.try_lock() {
            Ok(conn) if conn.is_autocommit() => State::Ready,
            Ok(_) => State::InTransaction,
            Err(TryLockError::WouldBlock) => State::Busy,
            Err(TryLockError::Poisoned(_)) => State::Poisoned,
        }
    }
}

impl Drop for SqliteConnection {
    fn drop(&mut self) {
        // Closing may checkpoint the WAL: keep that off the runtime's
        // workers. Outside a runtime it happens here.
        if let (Some(shared), Ok(handle)) = (self.inner.take(), Handle::try_current()) {
            drop(handle.spawn_blocking(move || drop(shared)));
        }
    }
}

/// Why [`SqliteConnection::interact`] could not return the closure's result.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InteractError {
    /// The closure panicked, with this message. Any rusqlite `Transaction` it
    /// held was rolled back as the panic unwound; the connection is closed
    /// when returned to the pool.
    Panicked(String),
    /// An earlier closure panicked on this connection, which is no longer
    /// used; it is closed when returned to the pool.
    Poisoned,
    /// The blocking task was cancelled before it ran, because the runtime is
    /// shutting down.
    Aborted,
}

impl fmt::Display for InteractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(msg) => write!(f, "the SQLite closure panicked: {msg}"),
            Self::Poisoned => f.write_str(
                "an earlier closure panicked on this SQLite connection; it is no longer used",
            ),
            Self::Aborted => f.write_str("the SQLite task was cancelled (runtime shutting down)"),
        }
    }
}

impl StdError for InteractError {}

impl From<JoinError> for InteractError {
    fn from(e: JoinError) -> Self {
        match e.try_into_panic() {
            Ok(payload) => Self::Panicked(panic_message(payload.as_ref())),
            Err(_) => Self::Aborted,
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    }
}
