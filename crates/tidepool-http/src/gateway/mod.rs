//! The query gateway: one backend-agnostic [`Gateway`] per pool — run SQL
//! with JSON parameters, get columns and rows as JSON; list tables and
//! columns. Implemented for SQLite and PostgreSQL (cargo features `sqlite`
//! and `postgres`, both on by default).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

#[cfg(feature = "postgres")]
mod pgtext;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PgGateway;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteGateway;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Bounds on one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Most rows returned.
    pub max_rows: usize,
    /// Longest the statement may run; it is cancelled after that.
    pub statement_timeout: Duration,
    /// Longest to wait for a pooled connection.
    pub acquire_timeout: Duration,
}

/// The result of one statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryOutput {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each an array of JSON values in column order.
    pub rows: Vec<Vec<Value>>,
    /// Rows returned (`rows.len()`).
    pub row_count: usize,
    /// Whether more rows were available than `max_rows`.
    pub truncated: bool,
    /// Rows changed by an `INSERT`, `UPDATE` or `DELETE`, when known.
    pub rows_affected: Option<u64>,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Declared type, as the database spells it.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether it accepts NULL.
    pub nullable: bool,
    /// Whether it is part of the primary key (when known).
    pub primary_key: bool,
}

/// One table or view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    /// Schema (PostgreSQL) or `main` (SQLite).
    pub schema: String,
    /// Table name.
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    /// Columns, in order.
    pub columns: Vec<ColumnInfo>,
}

/// Why a query or schema read failed. Messages may quote the database's
/// error text; the HTTP layer redacts them before answering.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayError {
    /// The database refused the statement (syntax, unknown table, type
    /// mismatch, constraint): the client's fault, 400.
    Sql(String),
    /// A parameter could not be bound: 400.
    Param(String),
    /// The statement ran past its timeout and was cancelled: 408.
    Timeout(Duration),
    /// No connection could be had (pool timeout, database down, pool
    /// closed): 503.
    Unavailable(String),
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sql(m) => write!(f, "the database refused the statement: {m}"),
            Self::Param(m) => write!(f, "bad parameter: {m}"),
            Self::Timeout(d) => write!(f, "the statement ran longer than {d:?} and was cancelled"),
            Self::Unavailable(m) => write!(f, "no database connection: {m}"),
        }
    }
}

impl std::error::Error for GatewayError {}

/// Runs SQL on one pool, whatever its database. Object safe: the HTTP layer
/// holds an `Arc<dyn Gateway>` per pool.
pub trait Gateway: Send + Sync + fmt::Debug {
    /// The backend's name (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// Runs one statement with positional parameters on a pooled connection.
    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Value],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<QueryOutput, GatewayError>>;

    /// Lists the user tables and views with their columns.
    fn schema(&self, limits: QueryLimits) -> BoxFuture<'_, Result<Vec<TableInfo>, GatewayError>>;
}

/// A database to connect to, described by a client: a backend and a URL
/// (`postgres://...`, or for SQLite a file path).
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The URL or path; may hold a password, so `Debug` hides it.
    pub url: String,
}

impl fmt::Debug for ConnectionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSpec")
            .field("backend", &self.backend)
            .field("url", &crate::error::mask_url_passwords(&self.url))
            .finish()
    }
}

/// The backends this build can open on demand.
pub fn backends() -> &'static [&'static str] {
    &[
        #[cfg(feature = "sqlite")]
        "sqlite",
        #[cfg(feature = "postgres")]
        "postgres",
    ]
}

/// Gets or creates, in `registry`, the pool `name` for `spec` (with
/// settings `cfg`), and returns its gateway. The pool is made with
/// [`Registry::get_or_create`](tidepool::Registry::get_or_create), so it is
/// removable once idle.
///
/// # Errors
/// A message for the client (already free of the URL's password) when the
/// backend is unknown, the URL does not parse, or the settings are invalid.
pub fn open_on_demand(
    registry: &tidepool::Registry,
    name: &str,
    spec: &ConnectionSpec,
    cfg: &tidepool::PoolConfig,
) -> Result<Arc<dyn Gateway>, String> {
    match spec.backend.as_str() {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            let manager =
                tidepool_postgres::PgManager::from_url(&spec.url).map_err(|e| e.to_string())?;
            let pool = registry
                .get_or_create(name, |n| {
                    tidepool::Pool::builder(manager)
                        .config(cfg.clone())
                        .name(n)
                        .build()
                })
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(PgGateway::new(pool)))
        }
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let path = spec
                .url
                .strip_prefix("sqlite://")
                .or_else(|| spec.url.strip_prefix("sqlite:"))
                .unwrap_or(&spec.url);
            let manager =
                tidepool_sqlite::SqliteManager::new(tidepool_sqlite::SqliteConfig::file(path))
                    .map_err(|e| e.to_string())?;
            let pool = registry
                .get_or_create(name, |n| {
                    tidepool::Pool::builder(manager)
                        .config(cfg.clone())
                        .name(n)
                        .build()
                })
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(SqliteGateway::new(pool)))
        }
        other => Err(format!(
            "unknown backend `{other}` (this server supports: {})",
            backends().join(", ")
        )),
    }
}

/// Maps a pool error to a gateway error.
pub(crate) fn pool_error<E: std::error::Error>(e: &tidepool::PoolError<E>) -> GatewayError {
    GatewayError::Unavailable(e.to_string())
}

/// Lower-case hex of bytes (for BLOB / bytea values).
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("\\x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
