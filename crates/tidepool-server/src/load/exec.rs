//! How a request runs on a connection of each backend the server
//! configures (PostgreSQL, SQLite), and how each failure is named.
//!
//! A statement is prepared once per connection (the backend's statement
//! cache) and every row it returns is read, so a request costs what the same
//! call in an application would.

use std::future::Future;
use std::sync::Arc;

use tidepool::{Manager, PoolError};
use tidepool_postgres::tokio_postgres::types::{ToSql, Type};
use tidepool_postgres::{PgConnection, PgError, PgManager};
use tidepool_sqlite::rusqlite::{self, params_from_iter};
use tidepool_sqlite::{SqliteConnection, SqliteError, SqliteManager};

use super::workload::Value;

/// Why one request failed: a short kind to count by, and one example of
/// its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What the report counts by, e.g. `acquire timeout`, `sql 42P01`.
    pub kind: String,
    /// The message of the failure.
    pub detail: String,
}

impl Failure {
    /// A failure of kind `kind`.
    pub fn new(kind: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            detail: detail.into(),
        }
    }
}

/// A backend the load can run statements on.
pub trait Backend: Manager + Sized {
    /// The name in reports.
    const NAME: &'static str;

    /// Prepares `sql` on `conn` without running it; how many parameters it
    /// takes.
    fn check(
        conn: &Self::Connection,
        sql: &str,
    ) -> impl Future<Output = Result<usize, Failure>> + Send;

    /// Runs `sql` with `params` on `conn` and reads every row; rows read.
    fn run(
        conn: &Self::Connection,
        sql: Arc<str>,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<u64, Failure>> + Send;

    /// A failure to connect.
    fn connect_failure(e: &Self::Error) -> Failure {
        Failure::new("connect failed", e.to_string())
    }
}

/// The failure of a `get()`.
pub fn pool_failure<E: std::error::Error>(e: &PoolError<E>) -> Failure {
    let kind = match e {
        PoolError::Timeout { .. } => "acquire timeout",
        PoolError::Connect { .. } => "connect failed",
        PoolError::Closed => "pool closed",
        PoolError::NoneIdle => "none idle",
        _ => "pool error",
    };
    Failure::new(kind, e.to_string())
}

fn pg_failure(e: &PgError) -> Failure {
    let kind = match e.code() {
        Some(code) => format!("sql {}", code.code()),
        None if e.driver_error().is_closed() => "connection closed".to_owned(),
        None => "driver error".to_owned(),
    };
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    };
    Failure::new(kind, detail)
}

/// A value bound as the type the server inferred for its placeholder.
fn pg_param(v: &Value, ty: &Type) -> Result<Box<dyn ToSql + Send + Sync>, Failure> {
    let bad = || {
        Failure::new(
            "bad parameter",
            format!("cannot bind {v:?} as {ty}; cast the placeholder in SQL, e.g. $1::text"),
        )
    };
    let int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    };
    let float = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    };
    let null = matches!(v, Value::Null);
    Ok(match *ty {
        Type::BOOL => match v {
            Value::Bool(b) => Box::new(*b),
            Value::Null => Box::new(None::<bool>),
            _ => return Err(bad()),
        },
        Type::INT2 if null => Box::new(None::<i16>),
        Type::INT4 if null => Box::new(None::<i32>),
        Type::INT8 if null => Box::new(None::<i64>),
        Type::FLOAT4 if null => Box::new(None::<f32>),
        Type::FLOAT8 if null => Box::new(None::<f64>),
        Type::INT2 => Box::new(int(v).and_then(|i| i16::try_from(i).ok()).ok_or_else(bad)?),
        Type::INT4 => Box::new(int(v).and_then(|i| i32::try_from(i).ok()).ok_or_else(bad)?),
        Type::INT8 => Box::new(int(v).ok_or_else(bad)?),
        Type::FLOAT4 => Box::new(float(v).ok_or_else(bad)? as f32),
        Type::FLOAT8 => Box::new(float(v).ok_or_else(bad)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => match v {
            Value::Null => Box::new(None::<String>),
            Value::Text(s) => Box::new(s.clone()),
            Value::Int(i) => Box::new(i.to_string()),
            Value::Float(f) => Box::new(f.to_string()),
            Value::Bool(b) => Box::new(b.to_string()),
        },
        _ => return Err(bad()),
    })
}

impl Backend for PgManager {
    const NAME: &'static str = "postgres";

    async fn check(conn: &PgConnection, sql: &str) -> Result<usize, Failure> {
        let stmt = conn.prepare(sql).await.map_err(|e| pg_failure(&e.into()))?;
        Ok(stmt.params().len())
    }

    async fn run(conn: &PgConnection, sql: Arc<str>, params: Vec<Value>) -> Result<u64, Failure> {
        let stmt = conn
            .prepare_cached(&sql)
            .await
            .map_err(|e| pg_failure(&e.into()))?;
        let bound = stmt
            .params()
            .iter()
            .zip(&params)
            .map(|(ty, v)| pg_param(v, ty))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&(dyn ToSql + Sync)> = bound
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = conn
            .query(&stmt, &refs)
            .await
            .map_err(|e| pg_failure(&e.into()))?;
        Ok(rows.len() as u64)
    }
}

fn sqlite_failure(e: &rusqlite::Error) -> Failure {
    let kind = match e.sqlite_error_code() {
        // SQLITE_ERROR: the generic "SQL error or missing database".
        Some(rusqlite::ErrorCode::Unknown) => "sql error".to_owned(),
        Some(code) => format!("sql {code:?}"),
        None => "sqlite error".to_owned(),
    };
    Failure::new(kind, e.to_string())
}

fn interact_failure(e: &tidepool_sqlite::InteractError) -> Failure {
    Failure::new("interact failed", e.to_string())
}

fn sqlite_value(v: Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Integer(i64::from(b)),
        Value::Int(i) => V::Integer(i),
        Value::Float(f) => V::Real(f),
        Value::Text(s) => V::Text(s),
    }
}

impl Backend for SqliteManager {
    const NAME: &'static str = "sqlite";

    async fn check(conn: &SqliteConnection, sql: &str) -> Result<usize, Failure> {
        let sql = sql.to_owned();
        conn.interact(move |c| {
            c.prepare(&sql)
                .map(|s| s.parameter_count())
                .map_err(|e| sqlite_failure(&e))
        })
        .await
        .map_err(|e| interact_failure(&e))?
    }

    async fn run(
        conn: &SqliteConnection,
        sql: Arc<str>,
        params: Vec<Value>,
    ) -> Result<u64, Failure> {
        let values: Vec<_> = params.into_iter().map(sqlite_value).collect();
        conn.interact(move |c| {
            let mut stmt = c.prepare_cached(&sql).map_err(|e| sqlite_failure(&e))?;
            let mut rows = stmt
                .query(params_from_iter(values))
                .map_err(|e| sqlite_failure(&e))?;
            let mut n = 0;
            while rows.next().map_err(|e| sqlite_failure(&e))?.is_some() {
                n += 1;
            }
            Ok(n)
        })
        .await
        .map_err(|e| interact_failure(&e))?
    }

    fn connect_failure(e: &SqliteError) -> Failure {
        Failure::new("connect failed", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_bind_as_the_placeholder_type_or_say_how_to_cast() {
        assert!(pg_param(&Value::Int(7), &Type::INT4).is_ok());
        assert!(pg_param(&Value::Text("7".into()), &Type::INT8).is_ok());
        assert!(pg_param(&Value::Int(1 << 40), &Type::INT4).is_err());
        assert!(pg_param(&Value::Float(0.5), &Type::FLOAT8).is_ok());
        assert!(pg_param(&Value::Int(3), &Type::TEXT).is_ok());
        assert!(pg_param(&Value::Null, &Type::INT2).is_ok());
        let e = pg_param(&Value::Bool(true), &Type::DATE).err().unwrap();
        assert_eq!(e.kind, "bad parameter");
        assert!(e.detail.contains("cast"), "{}", e.detail);
    }
}
