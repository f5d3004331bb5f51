//! [`PgManager`]: how the pool opens, checks and recycles PostgreSQL sessions.

use std::fmt;
use std::future::poll_fn;
use std::task::{Poll, ready};

use serde::{Deserialize, Serialize};
use tidepool::{ConnectionInfo, Manager, Validation};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::connection::{DEFAULT_STATEMENT_CACHE_CAPACITY, PgConnection};
use crate::{PgConfig, PgError};

/// The statements [`RecyclePolicy::Clean`] runs on a returned connection:
/// everything `DISCARD ALL` does except `DEALLOCATE ALL` and `DISCARD PLANS`,
/// preceded by a `ROLLBACK` of any transaction left open.
pub const CLEAN_SQL: &str = "ROLLBACK; \
    CLOSE ALL; \
    SET SESSION AUTHORIZATION DEFAULT; \
    RESET ALL; \
    UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); \
    DISCARD TEMP; \
    DISCARD SEQUENCES;";

/// What happens to a connection between one user and the next.
///
/// Every policy closes a connection whose session has ended
/// ([`PgConnection::is_closed`]) when it comes back, and never hands one
/// out. The pool's own [`Validation`] setting applies on top of any policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecyclePolicy {
    /// Only the closed check on return: no round trip at all. A session that
    /// died while idle (server restart, killed backend, network cut) reaches
    /// the next caller unless the pool's [`Validation`] pings it first, and
    /// session state (`SET`, temporary tables, an open transaction left by
    /// code that bypassed [`transaction`](crate::transaction)) carries over.
    #[default]
    Fast,
    /// Pings (an empty query) every reused connection before handing it out:
    /// a dead session is replaced instead of failing the caller's first
    /// query, at the price of one round trip per checkout. Fresh connections
    /// are not pinged. It does the work of [`Validation::Always`];
    /// [`PgManager::pool_builder`] sets the pool's validation to
    /// [`Validation::Never`] so connections are not pinged twice. Session
    /// state still carries over.
    Verified,
    /// Resets session state in the background after every return, so nothing
    /// leaks to the next user: rolls back an open transaction, closes
    /// cursors, resets `SET`s and the session role, unlistens, releases
    /// advisory locks, drops temporary tables and sequence state (see
    /// [`CLEAN_SQL`]). Costs one round trip per return, off the caller's
    /// path; the connection is unavailable until it finishes, and a failed
    /// reset closes it.
    ///
    /// Prepared statements survive: unlike `DISCARD ALL` this keeps
    /// `DEALLOCATE ALL` out, because the driver caches statements of its own
    /// (for looking up custom types) that it cannot be told to forget — after
    /// a `DISCARD ALL`, queries involving an enum or composite type not seen
    /// before would fail. Statements made with SQL `PREPARE` therefore also
    /// survive.
    Clean,
}

/// The TLS connector a manager connects with.
#[derive(Clone)]
enum Tls {
    None,
    #[cfg(feature = "rustls")]
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// Makes and checks PostgreSQL connections for a [`tidepool::Pool`].
///
/// ```no_run
/// use tidepool_postgres::{PgManager, RecyclePolicy};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = PgManager::from_url("postgres://postgres@localhost/test")?
///     .recycle_policy(RecyclePolicy::Clean)
///     .pool_builder()
///     .max_size(8)
///     .build()?;
/// let conn = pool.get().await?;
/// let row = conn.query_one("SELECT 1 + 1", &[]).await?;
/// assert_eq!(row.get::<_, i32>(0), 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PgManager {
    config: PgConfig,
    driver: tokio_postgres::Config,
    tls: Tls,
    policy: RecyclePolicy,
    statement_cache_capacity: usize,
}

impl PgManager {
    /// A manager connecting without TLS (a [`SslMode::Require`](crate::SslMode)
    /// setting then fails to connect; see `with_tls`), with [`RecyclePolicy::Fast`] and a
    /// statement cache of 256 per connection.
    pub fn new(config: PgConfig) -> Self {
        Self {
            driver: config.to_tokio_postgres(),
            config,
            tls: Tls::None,
            policy: RecyclePolicy::default(),
            statement_cache_capacity: DEFAULT_STATEMENT_CACHE_CAPACITY,
        }
    }

    /// [`new`](Self::new) with the settings of a URL (see
    /// [`PgConfig::from_url`]).
    ///
    /// # Errors
    /// When the URL does not parse; the error never contains the password.
    pub fn from_url(url: &str) -> Result<Self, tidepool::ConfigError> {
        Ok(Self::new(PgConfig::from_url(url)?))
    }

    /// A manager connecting with TLS through rustls, with `tls` as the
    /// client configuration (its root certificates decide which servers are
    /// trusted). Whether TLS is used follows `config.ssl_mode`.
    #[cfg(feature = "rustls")]
    pub fn with_rustls(config: PgConfig, tls: rustls::ClientConfig) -> Self {
        Self {
            tls: Tls::Rustls(tokio_postgres_rustls::MakeRustlsConnect::new(tls)),
            ..Self::new(config)
        }
    }

    /// A manager that speaks TLS through rustls as the configuration's
    /// `ssl_mode` and `ssl_root_cert` say, with libpq's meanings: `disable`
    /// never, `prefer` when the server offers it, `require` always
    /// (checking the certificate's chain only if root certificates are
    /// given), `verify-ca` always with the chain checked, `verify-full`
    /// always with the chain and the host name checked.
    ///
    /// # Errors
    /// A [`ConfigError`](tidepool::ConfigError) when the root certificates
    /// cannot be read, or `verify-ca`/`verify-full` has none.
    #[cfg(feature = "rustls")]
    pub fn with_tls(config: PgConfig) -> Result<Self, tidepool::ConfigError> {
        if config.ssl_mode == crate::SslMode::Disable {
            return Ok(Self::new(config));
        }
        let tls = crate::tls::client_config(&config)?;
        Ok(Self::with_rustls(config, tls))
    }

    /// Sets what happens between users. Default: [`RecyclePolicy::Fast`].
    #[must_use]
    pub fn recycle_policy(mut self, policy: RecyclePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how many prepared statements each connection caches for
    /// [`PgConnection::prepare_cached`] (0 turns caching off). Default: 256.
    #[must_use]
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.statement_cache_capacity = capacity;
        self
    }

    /// The connection settings.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// The recycle policy in force.
    pub fn policy(&self) -> RecyclePolicy {
        self.policy
    }

    /// Starts a pool over this manager, named after the database, with
    /// settings that suit the policy: [`RecyclePolicy::Verified`] already
    /// pings each reused connection, so the pool's own validation is set to
    /// [`Validation::Never`]. Every other setting keeps the pool's default.
    pub fn pool_builder(self) -> tidepool::Builder<Self> {
        let name = self
            .config
            .dbname
            .clone()
            .unwrap_or_else(|| self.config.user.clone());
        let verified = self.policy == RecyclePolicy::Verified;
        let builder = crate::PgPool::builder(self).name(name);
        if verified {
            builder.validation(Validation::Never)
        } else {
            builder
        }
    }
}

impl PgManager {
    /// Asks the server, in the background, to cancel whatever statement
    /// `conn` is running: a session whose client went away is only noticed
    /// by the server once its current statement ends, and until then it
    /// keeps its transaction's locks. Does nothing outside a tokio runtime.
    pub(crate) fn cancel_in_background(&self, conn: &PgConnection) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let token = conn.cancel_token();
        let manager = self.clone();
        runtime.spawn(async move {
            if let Err(e) = manager.cancel(&token).await {
                tracing::info!(error = %e, "postgres cancel request failed");
            }
        });
    }

    /// Asks the server to cancel the statement that the session of `token`
    /// ([`Client::cancel_token`](tokio_postgres::Client::cancel_token)) is
    /// running, over a new connection made as this manager connects (the
    /// same TLS). Returns once the request is sent; the server may still
    /// finish the statement, and a statement that catches the cancel keeps
    /// running.
    ///
    /// # Errors
    /// When the cancel request could not be sent.
    pub async fn cancel(&self, token: &tokio_postgres::CancelToken) -> Result<(), PgError> {
        match &self.tls {
            Tls::None => token.cancel_query(NoTls).await?,
            #[cfg(feature = "rustls")]
            Tls::Rustls(tls) => token.cancel_query(tls.clone()).await?,
        }
        Ok(())
    }
}

impl fmt::Debug for PgManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = match self.tls {
            Tls::None => "none",
            #[cfg(feature = "rustls")]
            Tls::Rustls(_) => "rustls",
        };
        f.debug_struct("PgManager")
            .field("config", &self.config)
            .field("tls", &tls)
            .field("policy", &self.policy)
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .finish()
    }
}

/// Runs a session's connection task until the client is dropped or the
/// session ends. Server notices (such as the warning a [`CLEAN_SQL`]
/// `ROLLBACK` gives outside a transaction) go to `tracing` at debug level;
/// `LISTEN` notifications cannot reach a pooled connection's user and are
/// dropped (use a connection of your own for `LISTEN`). The session's errors
/// have no caller, so they are logged too; callers see them as failed
/// queries, and the pool as a closed connection.
fn spawn_driver<S, T>(mut connection: tokio_postgres::Connection<S, T>) -> JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let ended = poll_fn(|cx| {
            loop {
                match ready!(connection.poll_message(cx)) {
                    Some(Ok(AsyncMessage::Notice(notice))) => tracing::debug!(
                        severity = notice.severity(),
                        code = notice.code().code(),
                        "postgres notice: {}",
                        notice.message()
                    ),
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        tracing::debug!(channel = n.channel(), "postgres notification dropped");
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Poll::Ready(Err(e)),
                    None => return Poll::Ready(Ok(())),
                }
            }
        })
        .await;
        if let Err(e) = ended {
            tracing::info!(error = %e, "postgres connection ended with an error");
        }
    })
}

impl Manager for PgManager {
    type Connection = PgConnection;
    type Error = PgError;

    async fn connect(&self) -> Result<PgConnection, PgError> {
        let (client, driver) = match &self.tls {
            Tls::None => {
                let (client, connection) = self.driver.connect(NoTls).await?;
                (client, spawn_driver(connection))
            }
            #[cfg(feature = "rustls")]
            Tls::Rustls(tls) => {
                let (client, connection) = self.driver.connect(tls.clone()).await?;
                (client, spawn_driver(connection))
            }
        };
        Ok(PgConnection::new(
            client,
            driver,
            self.statement_cache_capacity,
        ))
    }

    /// An empty query: the cheapest full round trip.
    async fn validate(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        conn.simple_query("").await?;
        Ok(())
    }

    /// The session has ended: the server closed it, the connection task
    /// failed, or a call on it got an error that ends the session
    /// ([`PgConnection::is_closed`]; two flags, no round trip).
    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.is_closed()
    }

    /// [`RecyclePolicy::Verified`]: ping a reused connection.
    async fn before_checkout(
        &self,
        conn: &mut PgConnection,
        info: &ConnectionInfo,
    ) -> Result<(), PgError> {
        if self.policy == RecyclePolicy::Verified && info.times_used > 1 {
            self.validate(conn).await?;
        }
        Ok(())
    }

    /// [`RecyclePolicy::Clean`]: reset every returned connection.
    fn needs_reset(&self, _conn: &mut PgConnection) -> bool {
        self.policy == RecyclePolicy::Clean
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), PgError> {
        conn.batch_execute(CLEAN_SQL).await?;
        Ok(())
    }
}
