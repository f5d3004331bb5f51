//! [`SqliteGateway`]: the [`Gateway`] over a [`tidepool_sqlite::SqlitePool`].
//!
//! # Implementation notes
//! The statement runs inside `interact`, on a blocking thread. The closure
//! first hands its connection's interrupt handle back to the async side; on
//! timeout that side calls `sqlite3_interrupt`, so the statement stops at its
//! next step instead of running on. A closure that had not started when the
//! timeout hit sees the `cancelled` flag and returns at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tidepool_sqlite::SqlitePool;
use tidepool_sqlite::rusqlite::types::{Value as SqlValue, ValueRef};
use tidepool_sqlite::rusqlite::{self, Connection, params_from_iter};

use super::{
    BoxFuture, ColumnInfo, Gateway, GatewayError, QueryLimits, QueryOutput, TableInfo, hex,
    pool_error,
};

/// The gateway for a SQLite pool.
#[derive(Debug, Clone)]
pub struct SqliteGateway {
    pool: SqlitePool,
}

impl SqliteGateway {
    /// A gateway running its statements on `pool`.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    async fn run<R, F>(&self, limits: QueryLimits, work: F) -> Result<R, GatewayError>
    where
        F: FnOnce(&mut Connection) -> Result<R, GatewayError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self
            .pool
            .get_timeout(limits.acquire_timeout)
            .await
            .map_err(|e| pool_error(&e))?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let flag = Arc::clone(&cancelled);
        let task = conn.interact(move |c| {
            if flag.load(Ordering::SeqCst) {
                return Err(GatewayError::Timeout(Duration::ZERO));
            }
            let _ = tx.send(c.get_interrupt_handle());
            work(c)
        });
        tokio::pin!(task);
        match tokio::time::timeout(limits.statement_timeout, &mut task).await {
            Ok(done) => done.map_err(|e| GatewayError::Unavailable(e.to_string()))?,
            Err(_) => {
                cancelled.store(true, Ordering::SeqCst);
                if let Ok(handle) = rx.try_recv() {
                    handle.interrupt();
                }
                // Let the interrupted statement unwind (briefly), so the
                // connection goes back idle rather than busy.
                let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
                Err(GatewayError::Timeout(limits.statement_timeout))
            }
        }
    }
}

fn sql_error(e: rusqlite::Error) -> GatewayError {
    GatewayError::Sql(e.to_string())
}

fn to_sql(i: usize, v: &Value) -> Result<SqlValue, GatewayError> {
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => SqlValue::Integer(i),
            (None, Some(f)) => SqlValue::Real(f),
            _ => {
                return Err(GatewayError::Param(format!(
                    "parameter {} is out of range",
                    i + 1
                )));
            }
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    })
}

fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(hex(b)),
    }
}

fn execute(
    c: &mut Connection,
    sql: &str,
    params: &[SqlValue],
    max_rows: usize,
) -> Result<QueryOutput, GatewayError> {
    let mut stmt = c.prepare(sql).map_err(sql_error)?;
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(GatewayError::Param(format!(
            "the statement takes {expected} parameter(s), {} given",
            params.len()
        )));
    }
    let columns: Vec<String> = stmt.column_names().map(String::from).collect();
    let mut out = Vec::new();
    let mut truncated = false;
    let mut rows = stmt.query(params_from_iter(params)).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        if out.len() == max_rows {
            truncated = true;
            break;
        }
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(to_json(row.get_ref(i).map_err(sql_error)?));
        }
        out.push(values);
    }
    drop(rows);
    drop(stmt);
    let rows_affected = columns.is_empty().then(|| c.changes());
    Ok(QueryOutput {
        row_count: out.len(),
        columns,
        rows: out,
        truncated,
        rows_affected,
    })
}

const SCHEMA_SQL: &str = "SELECT m.type, m.name, p.name, p.type, p.\"notnull\", p.pk \
     FROM sqlite_master m JOIN pragma_table_info(m.name) p \
     WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' \
     ORDER BY m.name, p.cid";

fn read_schema(c: &mut Connection) -> Result<Vec<TableInfo>, GatewayError> {
    let mut stmt = c.prepare(SCHEMA_SQL).map_err(sql_error)?;
    let mut rows = stmt.query([]).map_err(sql_error)?;
    let mut tables: Vec<TableInfo> = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let kind: String = row.get(0).map_err(sql_error)?;
        let table: String = row.get(1).map_err(sql_error)?;
        let column = ColumnInfo {
            name: row.get(2).map_err(sql_error)?,
            data_type: row.get(3).map_err(sql_error)?,
            nullable: row.get::<_, i64>(4).map_err(sql_error)? == 0,
            primary_key: row.get::<_, i64>(5).map_err(sql_error)? > 0,
        };
        match tables.last_mut() {
            Some(t) if t.name == table => t.columns.push(column),
            _ => tables.push(TableInfo {
                schema: "main".to_owned(),
                name: table,
                kind,
                columns: vec![column],
            }),
        }
    }
    Ok(tables)
}

impl Gateway for SqliteGateway {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Value],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<QueryOutput, GatewayError>> {
        Box::pin(async move {
            let params = params
                .iter()
                .enumerate()
                .map(|(i, v)| to_sql(i, v))
                .collect::<Result<Vec<_>, _>>()?;
            let sql = sql.to_owned();
            self.run(limits, move |c| execute(c, &sql, &params, limits.max_rows))
                .await
        })
    }

    fn schema(&self, limits: QueryLimits) -> BoxFuture<'_, Result<Vec<TableInfo>, GatewayError>> {
        Box::pin(self.run(limits, read_schema))
    }
}
