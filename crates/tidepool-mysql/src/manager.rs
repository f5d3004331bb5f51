//! [`MySqlManager`]: opens, checks and resets `mysql_async` connections.

use std::fmt;

use mysql_async::consts::StatusFlags;
use mysql_async::prelude::Queryable;
use mysql_async::{ChangeUserOpts, Conn, Opts};
use tidepool::Manager;

use tidepool::ConfigError;

use crate::MySqlConfig;

/// The [`Manager`] for MySQL and MariaDB: one `mysql_async` [`Conn`] per
/// pooled connection (the driver's own pool is not used).
///
/// - `connect` opens a connection and runs [`MySqlConfig::init`].
/// - `validate` sends `COM_PING`, the cheapest round trip.
/// - `has_broken` (on every return and before every checkout; no I/O: the
///   driver's own `Conn::is_disconnected` flag) is true when the driver saw the
///   connection fail (an I/O error, a server that went away, a call dropped
///   before its reply was read), and, with
///   [`reset_on_return`](MySqlConfig::reset_on_return) off, when the last
///   server reply said a transaction was still open.
/// - With `reset_on_return` on, every returned connection gets
///   `COM_RESET_CONNECTION` in the background (`COM_CHANGE_USER` on
///   servers too old for it) before anyone else can get it.
///
/// A connection the server closed while it sat idle (a `KILL`, a server
/// restart, `wait_timeout`) is caught by validation before checkout — with
/// the pool's default `Validation::IfIdle`, only if it was idle longer than
/// `validation_window`; choose `Validation::Always` to never hand one out.
/// One that fails while checked out is closed on return by `has_broken`.
/// `mysql_async` reads nothing while a connection is idle, so nothing else
/// can tell the pool of a kill sooner; with `reset_on_return` on, the
/// background reset after each return finds it before the next caller does.
pub struct MySqlManager {
    config: MySqlConfig,
    opts: Opts,
}

impl fmt::Debug for MySqlManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Opts` would print the password; the config's own Debug does not.
        f.debug_struct("MySqlManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MySqlManager {
    /// A manager connecting as `config` says.
    ///
    /// # Errors
    /// A [`ConfigError`] when the configuration is invalid (see
    /// [`MySqlConfig::validate`]). Nothing is connected yet.
    pub fn new(config: MySqlConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let opts = config.opts();
        Ok(Self { config, opts })
    }

    /// A manager for a `mysql://user:password@host:port/database` URL, with
    /// every other setting at its default.
    ///
    /// # Errors
    /// As [`MySqlConfig::from_url`].
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        Self::new(MySqlConfig::from_url(url)?)
    }

    /// The configuration this manager connects with.
    pub fn config(&self) -> &MySqlConfig {
        &self.config
    }
}

/// Whether the server's last OK packet on `conn` said a transaction is open.
/// Best effort: after an error reply the driver keeps no status, and this
/// says `false`.
fn in_transaction(conn: &Conn) -> bool {
    conn.last_ok_packet().is_some_and(|ok| {
        ok.status_flags()
            .contains(StatusFlags::SERVER_STATUS_IN_TRANS)
    })
}

impl Manager for MySqlManager {
    type Connection = Conn;
    type Error = mysql_async::Error;

    async fn connect(&self) -> Result<Conn, mysql_async::Error> {
        Conn::new(self.opts.clone()).await
    }

    async fn validate(&self, conn: &mut Conn) -> Result<(), mysql_async::Error> {
        conn.ping().await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.is_disconnected() || (!self.config.reset_on_return && in_transaction(conn))
    }

    fn needs_reset(&self, _conn: &mut Conn) -> bool {
        self.config.reset_on_return
    }

    async fn reset(&self, conn: &mut Conn) -> Result<(), mysql_async::Error> {
        if !conn.reset().await? {
            // MySQL before 5.7.3 and MariaDB before 10.2.4 lack
            // COM_RESET_CONNECTION; re-authenticating clears the session too.
            conn.change_user(ChangeUserOpts::default()).await?;
        }
        Ok(())
    }
}
