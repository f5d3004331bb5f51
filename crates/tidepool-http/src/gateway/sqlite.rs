//! [`SqliteGateway`]: the [`Gateway`] over a [`tidepool_sqlite::SqlitePool`].
//!
//! # Implementation notes
//! Each request is one unit on its connection: `BEGIN` (`BEGIN IMMEDIATE`
//! for a read-write transaction of several statements, so it never has to
//! upgrade a read lock), the statements prepared under the authorizer of
//! [`sqlite_authorizer`](super::sqlite_authorizer), then `COMMIT` (read-write
//! mode, on success) or `ROLLBACK`. The authorizer refuses everything that
//! would outlive the request (TEMP objects, ATTACH, PRAGMAs that change
//! state, transaction control), so the connection is as clean afterwards as
//! before; a connection still inside a transaction when it comes back is
//! closed by the manager. `rows_affected` is read from the change counter
//! only when this statement moved the total, so it never reports an earlier
//! statement's count.
//!
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

use super::sqlite_authorizer::{Refusal, authorizer};
use super::{
    BoxFuture, ColumnInfo, Gateway, GatewayError, GatewayMode, QueryLimits, QueryOutput, Statement,
    TableInfo, TransactionError, hex, pool_error,
};

/// The gateway for a SQLite pool.
#[derive(Debug, Clone)]
pub struct SqliteGateway {
    pool: SqlitePool,
    mode: GatewayMode,
}

impl SqliteGateway {
    /// A gateway running its statements on `pool`, read-only (see
    /// [`mode`](Self::mode)).
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            mode: GatewayMode::ReadOnly,
        }
    }

    /// Sets what sessions may do. Default: [`GatewayMode::ReadOnly`].
    #[must_use]
    pub fn mode(mut self, mode: GatewayMode) -> Self {
        self.mode = mode;
        self
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

/// The error of a statement run under the authorizer: a refusal names what
/// was refused.
fn statement_error(e: rusqlite::Error, refusal: &Refusal) -> GatewayError {
    let refused = refusal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match (e.sqlite_error_code(), refused) {
        (Some(rusqlite::ErrorCode::AuthorizationForStatementDenied), Some(why)) => {
            GatewayError::NotAuthorized(why)
        }
        (Some(rusqlite::ErrorCode::AuthorizationForStatementDenied), None) => {
            GatewayError::NotAuthorized("the statement".to_owned())
        }
        _ => sql_error(e),
    }
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
    refusal: &Refusal,
) -> Result<QueryOutput, GatewayError> {
    let fail = |e| statement_error(e, refusal);
    let before = c.total_changes();
    let mut stmt = c.prepare(sql).map_err(fail)?;
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
    let mut rows = stmt.query(params_from_iter(params)).map_err(fail)?;
    while let Some(row) = rows.next().map_err(fail)? {
        if out.len() == max_rows {
            truncated = true;
            break;
        }
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(to_json(row.get_ref(i).map_err(fail)?));
        }
        out.push(values);
    }
    drop(rows);
    drop(stmt);
    // `changes()` keeps the count of the last statement that changed rows,
    // which may be an earlier one: count only if this one moved the total.
    let changed = c.total_changes() != before;
    let rows_affected = columns
        .is_empty()
        .then(|| if changed { c.changes() } else { 0 });
    Ok(QueryOutput {
        row_count: out.len(),
        columns,
        rows: out,
        truncated,
        rows_affected,
    })
}

/// Statements bound for SQLite.
type Bound = Vec<(String, Vec<SqlValue>)>;

fn bind(statements: &[Statement]) -> Result<Bound, TransactionError> {
    statements
        .iter()
        .enumerate()
        .map(|(index, st)| {
            let params = st
                .params
                .iter()
                .enumerate()
                .map(|(i, v)| to_sql(i, v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| TransactionError { index, error })?;
            Ok((st.sql.clone(), params))
        })
        .collect()
}

/// Runs `statements` as one unit: begin, each statement under the
/// authorizer, then commit (read-write, success) or roll back.
fn unit(
    c: &mut Connection,
    mode: GatewayMode,
    statements: &Bound,
    max_rows: usize,
) -> Result<Vec<QueryOutput>, TransactionError> {
    let last = statements.len().saturating_sub(1);
    let at = |index: usize| move |error: GatewayError| TransactionError { index, error };
    let write = mode == GatewayMode::ReadWrite;
    let begin = if write && statements.len() > 1 {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN"
    };
    c.execute_batch(begin).map_err(sql_error).map_err(at(0))?;
    let refusal = Refusal::default();
    let guarded = c
        .authorizer(Some(authorizer(mode, std::sync::Arc::clone(&refusal))))
        .map_err(sql_error)
        .map_err(at(0));
    let mut outputs = Vec::with_capacity(statements.len());
    let mut failed = guarded.err();
    if failed.is_none() {
        for (index, (sql, params)) in statements.iter().enumerate() {
            match execute(c, sql, params, max_rows, &refusal) {
                Ok(out) => outputs.push(out),
                Err(error) => {
                    failed = Some(TransactionError { index, error });
                    break;
                }
            }
        }
    }
    let unguarded = c.authorizer(None::<fn(rusqlite::hooks::AuthContext<'_>) -> _>);
    let end = if write && failed.is_none() && unguarded.is_ok() {
        c.execute_batch("COMMIT")
    } else {
        c.execute_batch("ROLLBACK")
    };
    if let Some(failed) = failed {
        // A failed rollback leaves the transaction open; the manager closes
        // such a connection when it is returned.
        return Err(failed);
    }
    unguarded.map_err(sql_error).map_err(at(last))?;
    if let Err(e) = end {
        let _ = c.execute_batch("ROLLBACK");
        return Err(at(last)(sql_error(e)));
    }
    Ok(outputs)
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

    fn mode(&self) -> GatewayMode {
        self.mode
    }

    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Value],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<QueryOutput, GatewayError>> {
        Box::pin(async move {
            let statements = bind(&[Statement {
                sql: sql.to_owned(),
                params: params.to_vec(),
            }])
            .map_err(|e| e.error)?;
            let mode = self.mode;
            self.run(limits, move |c| {
                unit(c, mode, &statements, limits.max_rows)
                    .map(|mut outs| outs.remove(0))
                    .map_err(|e| e.error)
            })
            .await
        })
    }

    fn transaction<'a>(
        &'a self,
        statements: &'a [Statement],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<Vec<QueryOutput>, TransactionError>> {
        Box::pin(async move {
            let bound = bind(statements)?;
            let mode = self.mode;
            let last = statements.len().saturating_sub(1);
            // The transaction's own error, or the unit's (timeout,
            // unavailable) on its last statement.
            let result = self
                .run(limits, move |c| Ok(unit(c, mode, &bound, limits.max_rows)))
                .await;
            match result {
                Ok(inner) => inner,
                Err(error) => Err(TransactionError { index: last, error }),
            }
        })
    }

    fn schema(&self, limits: QueryLimits) -> BoxFuture<'_, Result<Vec<TableInfo>, GatewayError>> {
        Box::pin(self.run(limits, read_schema))
    }
}
