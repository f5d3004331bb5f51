//! [`RedisManager`]: how the pool opens and checks Redis connections.

use std::fmt;

use redis::aio::ConnectionLike;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError};
use tidepool::Manager;

use crate::RedisConnection;

/// Makes and checks Redis connections for a [`tidepool::Pool`].
///
/// Each pooled connection is a [`redis::aio::MultiplexedConnection`] used by
/// one holder at a time. A multiplexed connection can already serve many
/// tasks at once; pooling them still gives each holder a connection of its
/// own for what must not be shared (`MULTI`/`EXEC`, `WATCH`, blocking
/// commands, `SELECT`), bounds the connections a service opens, and brings
/// the pool's validation, lifetimes and statistics.
///
/// Session state a holder changes (`SELECT`, `CLIENT SETNAME`, a `MULTI`
/// left open) is not reset on return.
///
/// ```no_run
/// use tidepool_redis::RedisManager;
/// use tidepool_redis::redis::AsyncCommands;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = RedisManager::new("redis://127.0.0.1:6379")?
///     .pool_builder()
///     .max_size(8)
///     .build()?;
/// let mut conn = pool.get().await?;
/// let () = conn.set("greeting", "hello").await?;
/// let greeting: String = conn.get("greeting").await?;
/// assert_eq!(greeting, "hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisManager {
    client: Client,
    config: AsyncConnectionConfig,
}

impl RedisManager {
    /// A manager for the server at `url`: `redis://[[user]:password@]host[:port][/db]`
    /// (or `rediss://` when the `redis` crate's TLS features are enabled,
    /// `redis+unix:///path`), with the driver's default connection settings
    /// (a 1 s connect timeout and a 500 ms response timeout in `redis` 1.x).
    ///
    /// # Errors
    /// When the URL does not parse. The driver's messages name what is wrong
    /// without quoting the URL, so they never contain the password.
    pub fn new(url: &str) -> Result<Self, RedisError> {
        Ok(Self::from_client(Client::open(url)?))
    }

    /// A manager over a client built by hand (for TLS parameters, a custom
    /// protocol version, ...).
    pub fn from_client(client: Client) -> Self {
        Self {
            client,
            config: AsyncConnectionConfig::new(),
        }
    }

    /// Sets the driver's per-connection settings (connect and response
    /// timeouts, ...). Default: [`AsyncConnectionConfig::new`].
    #[must_use]
    pub fn connection_config(mut self, config: AsyncConnectionConfig) -> Self {
        self.config = config;
        self
    }

    /// The driver client connections are opened with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts a pool over this manager, named `"redis"`; every setting keeps
    /// the pool's default.
    pub fn pool_builder(self) -> tidepool::Builder<Self> {
        crate::RedisPool::builder(self).name("redis")
    }
}

impl fmt::Debug for RedisManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.client.get_connection_info();
        let settings = info.redis_settings();
        f.debug_struct("RedisManager")
            .field("addr", &info.addr().to_string())
            .field("db", &settings.db())
            .field("username", &settings.username())
            .field("password", &settings.password().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl Manager for RedisManager {
    type Connection = RedisConnection;
    type Error = RedisError;

    async fn connect(&self) -> Result<RedisConnection, RedisError> {
        let inner = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        Ok(RedisConnection::new(inner))
    }

    /// `PING`, expecting `PONG`.
    async fn validate(&self, conn: &mut RedisConnection) -> Result<(), RedisError> {
        let reply = conn.req_packed_command(&redis::cmd("PING")).await?;
        match reply {
            redis::Value::SimpleString(s) if s == "PONG" => Ok(()),
            other => Err(RedisError::from((
                ErrorKind::UnexpectedReturnType,
                "PING did not answer PONG",
                format!("{other:?}"),
            ))),
        }
    }

    /// A command failed in a way that needs a new connection
    /// ([`RedisConnection::is_broken`], a flag). The driver's multiplexed
    /// connection keeps no closed flag of its own (its async connections
    /// have no `is_open`; the disconnect notice it pushes is for RESP3
    /// connections with a push sender only), so a connection the server
    /// closed while idle is found by the first command on it, which fails,
    /// or by validation.
    fn has_broken(&self, conn: &mut RedisConnection) -> bool {
        conn.is_broken()
    }
}
