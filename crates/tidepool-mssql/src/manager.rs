//! [`MssqlManager`]: how the pool opens, checks and resets SQL Server
//! sessions.

use tidepool::Manager;
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

use crate::session::{INITIAL_STATE_SQL, InitialState};
use crate::stream::MssqlStream;
use crate::{MssqlConfig, MssqlConnection, MssqlError};

/// Makes, checks and resets SQL Server connections for a
/// [`tidepool::Pool`].
///
/// - `connect` opens TCP (following one Azure SQL gateway redirect), runs
///   the TLS handshake the config asks for and logs in; with
///   [`reset_on_return`](MssqlConfig::reset_on_return) on it also reads the
///   session's initial settings, to restore them later.
/// - `validate` sends an empty batch: one round trip, no statement to run.
/// - `has_broken` (on every return, no I/O) is true once the TCP connection
///   has ended or failed.
/// - With `reset_on_return` on (the default), every returned connection gets
///   the reset batch in the background before anyone else can get it; a
///   failed reset closes the connection.
/// - A refused login is not retried ([`MssqlError::is_login_failure`]).
///
/// A connection the server closed while it sat idle is caught by
/// validation before checkout — with the pool's default
/// `Validation::IfIdle`, only if it was idle longer than
/// `validation_window`; choose `Validation::Always` to never hand one out.
///
/// ```no_run
/// use tidepool_mssql::MssqlManager;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = MssqlManager::from_ado_string(
///     "Server=tcp:127.0.0.1,1433;User Id=sa;Password=...;TrustServerCertificate=true",
/// )?
/// .pool_builder()
/// .max_size(8)
/// .build()?;
/// let mut conn = pool.get().await?;
/// let row = conn.query("SELECT 1 + 1", &[]).await?.into_row().await?;
/// assert_eq!(row.and_then(|r| r.get::<i32, _>(0)), Some(2));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MssqlManager {
    config: MssqlConfig,
}

impl MssqlManager {
    /// A manager connecting as `config` says.
    pub fn new(config: MssqlConfig) -> Self {
        Self { config }
    }

    /// A manager for an ADO.NET connection string (see
    /// [`MssqlConfig::from_ado_string`]).
    ///
    /// # Errors
    /// As [`MssqlConfig::from_ado_string`]; never quotes the string.
    pub fn from_ado_string(connection_string: &str) -> Result<Self, tidepool::ConfigError> {
        Ok(Self::new(MssqlConfig::from_ado_string(connection_string)?))
    }

    /// The connection settings.
    pub fn config(&self) -> &MssqlConfig {
        &self.config
    }

    /// Starts a pool over this manager, named `"mssql"`; every setting keeps
    /// the pool's default.
    pub fn pool_builder(self) -> tidepool::Builder<Self> {
        crate::MssqlPool::builder(self).name("mssql")
    }

    async fn open(&self, driver: tiberius::Config) -> Result<MssqlConnection, MssqlError> {
        let addr = driver.get_addr();
        let tcp = TcpStream::connect(&addr)
            .await
            .map_err(|source| MssqlError::Connect {
                addr: addr.clone(),
                source,
            })?;
        // Small requests go out at once instead of waiting for more bytes.
        let _ = tcp.set_nodelay(true);
        let (stream, closed) = MssqlStream::new(tcp);
        let client = tiberius::Client::connect(driver, stream.compat_write()).await?;
        Ok(MssqlConnection::new(client, closed))
    }
}

impl Manager for MssqlManager {
    type Connection = MssqlConnection;
    type Error = MssqlError;

    async fn connect(&self) -> Result<MssqlConnection, MssqlError> {
        let driver = self.config.to_tiberius();
        let mut conn = match self.open(driver.clone()).await {
            // Azure SQL's gateway may send the client to the node that
            // serves the database; follow it once.
            Err(MssqlError::Driver(tiberius::error::Error::Routing { host, port })) => {
                let mut routed = driver;
                routed.host(&host);
                routed.port(port);
                self.open(routed).await?
            }
            other => other?,
        };
        if self.config.reset_on_return() {
            let row = conn
                .simple_query(INITIAL_STATE_SQL)
                .await?
                .into_row()
                .await?
                .ok_or(MssqlError::NoInitialState)?;
            let int = |i: usize| -> Result<i32, MssqlError> {
                Ok(row.try_get::<i32, _>(i)?.unwrap_or(0))
            };
            let state = InitialState {
                options: int(0)?,
                language_id: int(1)?,
                date_first: int(2)?,
                lock_timeout: int(3)?,
                text_size: int(4)?,
                isolation_level: int(5)?,
                deadlock_priority: int(6)?,
                database_id: int(7)?,
            };
            conn.set_reset_sql(state.reset_sql());
        }
        Ok(conn)
    }

    /// An empty batch: the cheapest full round trip.
    async fn validate(&self, conn: &mut MssqlConnection) -> Result<(), MssqlError> {
        conn.simple_query("").await?.into_results().await?;
        Ok(())
    }

    /// The TCP connection has ended or failed.
    fn has_broken(&self, conn: &mut MssqlConnection) -> bool {
        conn.is_closed()
    }

    fn is_retryable(&self, error: &MssqlError) -> bool {
        !error.is_login_failure()
    }

    fn needs_reset(&self, conn: &mut MssqlConnection) -> bool {
        conn.resets()
    }

    /// Runs the reset batch (see the crate documentation).
    async fn reset(&self, conn: &mut MssqlConnection) -> Result<(), MssqlError> {
        if let Some(sql) = conn.reset_sql() {
            conn.simple_query(&*sql).await?.into_results().await?;
        }
        Ok(())
    }
}
