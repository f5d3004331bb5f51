//! The query gateway: one backend-agnostic [`Gateway`] per pool — run SQL
//! (one statement, or several in one transaction) with JSON parameters, get
//! columns and rows as JSON; list tables and columns. Implemented for SQLite
//! and PostgreSQL (cargo features `sqlite` and `postgres`, both on by
//! default). Each call is a unit that leaves its connection clean; what a
//! session may do is its pool's [`GatewayMode`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

mod budget;
#[cfg(feature = "postgres")]
mod pgtext;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_rows;
#[cfg(feature = "postgres")]
mod postgres_unit;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_authorizer;

#[cfg(feature = "postgres")]
pub use postgres::{PgGateway, RoleCheck};
#[cfg(feature = "postgres")]
pub use postgres_unit::PRIVILEGED_ROLES;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteGateway;

/// Bytes of JSON a statement's rows may take unless configured otherwise:
/// 16 MiB.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Bounds on one query. How long to wait for a connection is the pool's
/// own `acquire_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Most rows returned.
    pub max_rows: usize,
    /// Most bytes of JSON the rows of one request may take, all its
    /// statements together; the rows that do not fit are never read from
    /// the database.
    pub max_result_bytes: usize,
    /// Longest the statement may run; it is cancelled after that.
    pub statement_timeout: Duration,
}

/// Which limit cut a result short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    /// [`QueryLimits::max_rows`].
    MaxRows,
    /// [`QueryLimits::max_result_bytes`].
    MaxResultBytes,
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
    /// Whether the result had more rows than were returned.
    pub truncated: bool,
    /// Which limit cut it short, when it was.
    pub truncated_by: Option<Truncation>,
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

/// What a gateway lets its sessions do. Read-only is enforced by the
/// database (PostgreSQL read-only transactions, a SQLite authorizer), never
/// by reading the SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayMode {
    /// Statements may read, never write; every request is rolled back. The
    /// default.
    #[default]
    ReadOnly,
    /// Statements may read and write; a request that succeeds is committed.
    ReadWrite,
    /// No sessions on this pool: it is monitored, not queried.
    Off,
}

impl GatewayMode {
    /// The mode's name as configured (`read_only`, `read_write`, `off`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read_only",
            Self::ReadWrite => "read_write",
            Self::Off => "off",
        }
    }
}

/// Why a query or schema read failed. Messages may quote the database's
/// error text; the HTTP layer redacts them before answering.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayError {
    /// The database refused the statement (syntax, unknown table, type
    /// mismatch, constraint, a write in a read-only transaction): the
    /// client's fault, 400.
    Sql(String),
    /// A parameter could not be bound: 400.
    Param(String),
    /// The gateway does not allow what the statement does (ATTACH, a TEMP
    /// object, a PRAGMA that changes state, transaction control, a write on
    /// a read-only SQLite gateway): 403.
    NotAuthorized(String),
    /// The statement ran past its timeout and was cancelled: 408.
    Timeout(Duration),
    /// No connection could be had (pool timeout, database down, pool
    /// closed), or the session ended under the statement (the server ended
    /// it, the connection was cut): 503.
    Unavailable(String),
    /// A single row (or, on SQLite, a single value the statement made) is
    /// larger than the result byte limit (this many bytes): 422.
    ResultTooLarge(usize),
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sql(m) => write!(f, "the database refused the statement: {m}"),
            Self::Param(m) => write!(f, "bad parameter: {m}"),
            Self::NotAuthorized(m) => write!(f, "the gateway does not allow this: {m}"),
            Self::Timeout(d) => write!(f, "the statement ran longer than {d:?} and was cancelled"),
            Self::Unavailable(m) => write!(f, "no database connection: {m}"),
            Self::ResultTooLarge(limit) => write!(
                f,
                "a row of the result is larger than the result limit of {limit} bytes (max_result_bytes)"
            ),
        }
    }
}

impl std::error::Error for GatewayError {}

/// One statement of a transaction: SQL and its positional parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL text (one statement).
    pub sql: String,
    /// Positional parameters (`?1` / `$1` ...).
    pub params: Vec<Value>,
}

/// A failed transaction: which statement (0-based) failed, and why. A
/// failure to commit is reported on the last statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionError {
    /// The statement at fault, 0-based.
    pub index: usize,
    /// What went wrong.
    pub error: GatewayError,
}

/// Runs SQL on one pool, whatever its database. Object safe: the HTTP layer
/// holds an `Arc<dyn Gateway>` per pool.
///
/// Every call is a unit: it runs in a transaction of its own that is always
/// ended (committed in [`GatewayMode::ReadWrite`] when it succeeds, rolled
/// back otherwise), and leaves the connection as clean as it found it, or
/// closes it.
pub trait Gateway: Send + Sync + fmt::Debug {
    /// The backend's name (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;

    /// What sessions may do.
    fn mode(&self) -> GatewayMode;

    /// Why this gateway serves nothing, when a check found it unsafe (say,
    /// a PostgreSQL role with superuser rights); `None` when it serves.
    fn refusal(&self) -> Option<String> {
        None
    }

    /// Runs one statement with positional parameters on a pooled connection.
    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Value],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<QueryOutput, GatewayError>>;

    /// Runs `statements` in order in one transaction: all of them take
    /// effect (read-write mode) or none does.
    fn transaction<'a>(
        &'a self,
        statements: &'a [Statement],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<Vec<QueryOutput>, TransactionError>>;

    /// Lists the user tables and views with their columns.
    fn schema(&self, limits: QueryLimits) -> BoxFuture<'_, Result<Vec<TableInfo>, GatewayError>>;
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

/// Maps a pool error to a gateway error.
pub(crate) fn pool_error<E: std::error::Error>(e: &tidepool::PoolError<E>) -> GatewayError {
    GatewayError::Unavailable(e.to_string())
}

/// Lower-case hex of bytes (for BLOB / bytea values).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(hex_len(bytes.len()));
    s.push_str("\\x");
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The length of [`hex`] of `n` bytes.
pub(crate) fn hex_len(n: usize) -> usize {
    n.saturating_mul(2).saturating_add(2)
}
