//! The [`Manager`] trait: how the pool makes, checks and resets connections.

use std::future::Future;

use crate::ConnectionInfo;

/// Makes and checks the connections of one pool.
///
/// A backend crate implements this once for its driver; the pool does the rest.
/// Only [`connect`](Manager::connect) and [`validate`](Manager::validate) are
/// required. The hooks have default bodies that do nothing, so a manager pays
/// only for what it overrides.
///
/// ```
/// use std::convert::Infallible;
/// use tidepool::Manager;
///
/// struct Numbers;
///
/// impl Manager for Numbers {
///     type Connection = u64;
///     type Error = Infallible;
///
///     async fn connect(&self) -> Result<u64, Infallible> {
///         Ok(42)
///     }
///
///     async fn validate(&self, _conn: &mut u64) -> Result<(), Infallible> {
///         Ok(())
///     }
/// }
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The connection type handed out by the pool.
    type Connection: Send + 'static;
    /// The error the backend reports when connecting or checking fails.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Checks that a connection still works, with the backend's cheapest round
    /// trip (an empty query, `COM_PING`, `PING`). The pool bounds it with
    /// `validation_timeout`.
    fn validate(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// A cheap, synchronous "has it broken?" check, run on every return and
    /// before every checkout: a connection whose driver already knows it is
    /// closed (a server-side kill it has read) is never handed out.
    /// Returning `true` closes the connection. It must cost no more than
    /// reading a flag: no round trip, no lock another caller may hold.
    ///
    /// Default: `false`.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Whether a failed connect is worth retrying. Return `false` for errors
    /// that another attempt cannot fix (wrong password, unknown database), so
    /// the caller hears of them at once instead of after every retry.
    ///
    /// Default: `true`.
    fn is_retryable(&self, error: &Self::Error) -> bool {
        let _ = error;
        true
    }

    /// Runs once on every new connection before it is used, for example to set
    /// session options. An error counts as a failed connect.
    ///
    /// Default: does nothing.
    fn after_create(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = conn;
        async { Ok(()) }
    }

    /// Runs before a connection is handed to a caller, bounded by
    /// `validation_timeout`. An error, a timeout or a panic closes the
    /// connection and the caller is served by another one.
    ///
    /// Default: does nothing.
    fn before_checkout(
        &self,
        conn: &mut Self::Connection,
        info: &ConnectionInfo,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = (conn, info);
        async { Ok(()) }
    }

    /// Asked on every return (after [`has_broken`](Manager::has_broken)):
    /// should the connection be [`reset`](Manager::reset) before reuse?
    /// A reset runs in the background, so the caller returning the connection
    /// never waits for it; the connection is unavailable until it finishes.
    ///
    /// Default: `false`.
    fn needs_reset(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Resets session state (for example `DISCARD ALL` or
    /// `COM_RESET_CONNECTION`) so nothing leaks to the next user. Bounded by
    /// `validation_timeout`; an error closes the connection.
    ///
    /// Default: does nothing.
    fn reset(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = conn;
        async { Ok(()) }
    }
}
