//! [`SnowflakeManager`]: how the pool opens, checks and retires Snowflake
//! sessions.

use std::fmt;

use snowflake_connector_rs::{Client, Error, ErrorKind};
use tidepool::{ConfigError, ConnectionInfo, Manager};

use crate::{SnowflakeConfig, SnowflakeConnection};

/// Makes and checks Snowflake sessions for a [`tidepool::Pool`].
///
/// A Snowflake "connection" is a session behind a token, not a socket:
///
/// - `connect` logs in (password or key pair) and opens a session.
/// - `validate` runs `SELECT 1`, which needs no warehouse; the pool's
///   keepalive (`keepalive_interval`, default 5 min) runs it on idle
///   sessions, so a dead one is found before a caller gets it.
/// - `before_checkout` refuses a session older than
///   [`session_lifetime`](SnowflakeConfig::session_lifetime) (the driver
///   does not renew the token, which expires an hour after login): the pool
///   closes it and opens another. [`pool_builder`](Self::pool_builder) also
///   sets the pool's `max_lifetime` to it, so idle ones retire in the
///   background.
/// - `has_broken` (on every return, no I/O) is true when a watched query
///   found the session dead.
/// - Nothing is reset between users: `USE`, `ALTER SESSION`, session
///   variables and temporary tables carry over.
/// - A retired session is dropped without a logout request: the driver has
///   none. Snowflake ends it when its token can no longer be renewed (see
///   the crate documentation).
/// - A refused login is not retried.
#[derive(Clone)]
pub struct SnowflakeManager {
    config: SnowflakeConfig,
    client: Client,
}

impl SnowflakeManager {
    /// A manager opening sessions as `config` says.
    ///
    /// # Errors
    /// A [`ConfigError`] when the settings are invalid. Nothing is
    /// connected yet.
    pub fn new(config: SnowflakeConfig) -> Result<Self, ConfigError> {
        let client = Client::new(config.to_driver()?)
            .map_err(|e| ConfigError::new("base_url", e.to_string()))?;
        Ok(Self { config, client })
    }

    /// The settings.
    pub fn config(&self) -> &SnowflakeConfig {
        &self.config
    }

    /// Starts a pool over this manager, named `"snowflake"`, whose
    /// `max_lifetime` is the session lifetime; every other setting keeps
    /// the pool's default.
    pub fn pool_builder(self) -> tidepool::Builder<Self> {
        let lifetime = self.config.session_lifetime;
        crate::SnowflakePool::builder(self)
            .name("snowflake")
            .max_lifetime(Some(lifetime))
    }
}

impl fmt::Debug for SnowflakeManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnowflakeManager")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Manager for SnowflakeManager {
    type Connection = SnowflakeConnection;
    type Error = Error;

    async fn connect(&self) -> Result<SnowflakeConnection, Error> {
        Ok(SnowflakeConnection::new(
            self.client.create_session().await?,
        ))
    }

    /// `SELECT 1`: a round trip that needs no warehouse.
    async fn validate(&self, conn: &mut SnowflakeConnection) -> Result<(), Error> {
        conn.query("SELECT 1").await?.collect_table().await?;
        Ok(())
    }

    fn has_broken(&self, conn: &mut SnowflakeConnection) -> bool {
        conn.is_broken()
    }

    /// Refuses a session older than `session_lifetime`: its token is about
    /// to expire.
    async fn before_checkout(
        &self,
        _conn: &mut SnowflakeConnection,
        info: &ConnectionInfo,
    ) -> Result<(), Error> {
        if info.age() >= self.config.session_lifetime {
            return Err(Error::other(format!(
                "session is {:?} old, past session_lifetime ({:?}); replacing it",
                info.age(),
                self.config.session_lifetime
            )));
        }
        Ok(())
    }

    fn is_retryable(&self, error: &Error) -> bool {
        !matches!(error.kind(), ErrorKind::Auth | ErrorKind::Config)
    }
}
