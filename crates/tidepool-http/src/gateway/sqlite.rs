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
//! The statement runs inside `interact`, on a blocking thread, in a task
//! of its own that holds the pooled connection: the connection goes back
//! to the pool (and its slot frees up) only when the closure has returned,
//! so a pool never has more SQLite work running than connections. When the
//! statement times out, or the request is dropped, the [`Stop`] is set:
//! `sqlite3_interrupt` stops the statement at its next step, a progress
//! handler checking the same flag catches a statement that started after
//! the interrupt (which SQLite would otherwise forget), a busy handler
//! standing in for `busy_timeout` ends a wait for another connection's
//! lock (which the interrupt does not reach), the loop reading rows checks
//! it between rows, and a closure that had not started returns at once.
//!
//! Results are bounded as they are read ([`Budget`]): no more than
//! `max_rows` rows and `max_result_bytes` bytes of JSON, each value's size
//! known before it is turned into JSON; stepping stops at the first row
//! that does not fit. `SQLITE_LIMIT_LENGTH` is set to the byte limit too,
//! so SQLite never makes a single value larger than that (`zeroblob`,
//! `randomblob`, string concatenation): such a statement fails with
//! [`GatewayError::ResultTooLarge`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tidepool_sqlite::SqlitePool;
use tidepool_sqlite::rusqlite::limits::Limit;
use tidepool_sqlite::rusqlite::types::{Value as SqlValue, ValueRef};
use tidepool_sqlite::rusqlite::{self, Connection, InterruptHandle, params_from_iter};

use super::budget::{Admit, Budget, json_str_len, row_size};
use super::sqlite_authorizer::{Refusal, authorizer};
use super::{
    BoxFuture, ColumnInfo, Gateway, GatewayError, GatewayMode, QueryLimits, QueryOutput, Statement,
    TableInfo, TransactionError, hex, hex_len, pool_error,
};

/// How many SQLite virtual-machine steps pass between two checks of the
/// stop flag.
const PROGRESS_STEPS: i32 = 1000;

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
        F: FnOnce(&mut Connection, &Stop) -> Result<R, GatewayError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self
            .pool
            .get()
            .await
            .map_err(|e| pool_error(&e))?
            .into_owned();
        let stop = Stop::default();
        let inside = stop.clone();
        let busy_timeout = self.pool.manager().config().pragmas.busy_timeout;
        // The task holds the connection until the closure has returned,
        // whatever happens to this request.
        let job = tokio::spawn(async move {
            let done = conn
                .interact(move |c| {
                    if inside.is_set() {
                        return Err(GatewayError::Timeout(Duration::ZERO));
                    }
                    let out = inside.arm(c, busy_timeout).and_then(|()| work(c, &inside));
                    inside.disarm(c, busy_timeout);
                    out
                })
                .await;
            drop(conn);
            done
        });
        let mut on_drop = StopOnDrop(Some(stop.clone()));
        match tokio::time::timeout(limits.statement_timeout, job).await {
            Ok(Ok(done)) => {
                on_drop.0 = None;
                done.map_err(|e| GatewayError::Unavailable(e.to_string()))?
            }
            Ok(Err(e)) => Err(GatewayError::Unavailable(format!(
                "the SQLite task failed: {e}"
            ))),
            Err(_) => {
                stop.set();
                Err(GatewayError::Timeout(limits.statement_timeout))
            }
        }
    }
}

/// Tells the SQLite work of one request to stop: a flag the closure, the
/// row loop and a progress handler read, and the connection's interrupt
/// handle once the closure has started.
#[derive(Clone, Default)]
struct Stop {
    flag: Arc<AtomicBool>,
    interrupt: Arc<Mutex<Option<InterruptHandle>>>,
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("set", &self.is_set())
            .finish_non_exhaustive()
    }
}

impl Stop {
    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Makes `c` stoppable: its interrupt handle is kept, a progress
    /// handler ends any statement once the flag is set, and a busy handler
    /// that waits up to `busy_timeout` for a lock gives up once it is set.
    /// Runs on the blocking thread the work runs on.
    fn arm(&self, c: &mut Connection, busy_timeout: Duration) -> Result<(), GatewayError> {
        *self
            .interrupt
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(c.get_interrupt_handle());
        let flag = Arc::clone(&self.flag);
        c.progress_handler(PROGRESS_STEPS, Some(move || flag.load(Ordering::SeqCst)))
            .map_err(sql_error)?;
        c.busy_handler(Some(busy_wait(Arc::clone(&self.flag), busy_timeout)))
            .map_err(sql_error)
    }

    /// Puts back what [`arm`](Self::arm) changed: no progress handler, and
    /// SQLite's own wait of `busy_timeout`; and forgets the interrupt
    /// handle, so that a [`set`](Self::set) coming after the work ended
    /// (the request timed out or was dropped just as it finished) cannot
    /// interrupt whatever the connection runs next, for another request.
    /// `set` interrupts under the same lock, so none is in flight once
    /// this has taken the handle.
    fn disarm(&self, c: &mut Connection, busy_timeout: Duration) {
        self.interrupt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let _ = c.progress_handler(0, None::<fn() -> bool>);
        if let Err(e) = c.busy_timeout(busy_timeout) {
            tracing::warn!(error = %e, "could not restore a SQLite connection's busy_timeout");
        }
    }

    /// Stops the work: at once if a statement runs, at its next check
    /// otherwise.
    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Some(handle) = self
            .interrupt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            handle.interrupt();
        }
    }
}

/// SQLite's busy handler while gateway work runs: waits for the lock in
/// short sleeps, up to `timeout` as SQLite's own handler would, and gives
/// up at once when the work is stopped.
fn busy_wait(stop: Arc<AtomicBool>, timeout: Duration) -> impl FnMut(i32) -> bool + Send {
    const STEP: Duration = Duration::from_millis(5);
    let mut since = Instant::now();
    // `tries`: how many times SQLite has called it for this wait.
    move |tries| {
        if tries == 0 {
            since = Instant::now();
        }
        let waited = since.elapsed();
        if stop.load(Ordering::SeqCst) || waited >= timeout {
            return false;
        }
        std::thread::sleep(STEP.min(timeout - waited));
        true
    }
}

/// Stops the work when the request is dropped before it ended.
struct StopOnDrop(Option<Stop>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            stop.set();
        }
    }
}

fn sql_error(e: rusqlite::Error) -> GatewayError {
    GatewayError::Sql(e.to_string())
}

/// The error of a statement under a byte limit of `max_bytes`: a value too
/// big for it is [`GatewayError::ResultTooLarge`]; an interrupt is the
/// request's timeout.
fn limited_error(
    e: GatewayError,
    code: Option<rusqlite::ErrorCode>,
    max_bytes: usize,
) -> GatewayError {
    match code {
        Some(rusqlite::ErrorCode::TooBig) => GatewayError::ResultTooLarge(max_bytes),
        Some(rusqlite::ErrorCode::OperationInterrupted) => GatewayError::Timeout(Duration::ZERO),
        _ => e,
    }
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

/// The size of `v` as JSON, known before it is turned into JSON.
fn value_size(v: ValueRef<'_>) -> usize {
    match v {
        ValueRef::Null => 4,
        ValueRef::Integer(_) | ValueRef::Real(_) => 24,
        ValueRef::Text(t) => text_size(t),
        ValueRef::Blob(b) => hex_len(b.len()).saturating_add(2),
    }
}

/// The size of SQLite text as the JSON string [`to_json`] makes of it:
/// escapes counted, and each sequence that is not UTF-8 as the U+FFFD (3
/// bytes) it becomes.
fn text_size(t: &[u8]) -> usize {
    t.utf8_chunks().fold(2_usize, |n, chunk| {
        let invalid = if chunk.invalid().is_empty() { 0 } else { 3 };
        n.saturating_add(json_str_len(chunk.valid()) - 2)
            .saturating_add(invalid)
    })
}

fn execute(
    c: &mut Connection,
    sql: &str,
    params: &[SqlValue],
    budget: &mut Budget,
    refusal: &Refusal,
    stop: &Stop,
) -> Result<QueryOutput, GatewayError> {
    let max_bytes = budget.max_bytes();
    let fail = |e: rusqlite::Error| {
        let code = e.sqlite_error_code();
        limited_error(statement_error(e, refusal), code, max_bytes)
    };
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
    budget.next_statement();
    let mut rows = stmt.query(params_from_iter(params)).map_err(fail)?;
    while let Some(row) = rows.next().map_err(fail)? {
        if stop.is_set() {
            return Err(GatewayError::Timeout(Duration::ZERO));
        }
        let size = row_size((0..columns.len()).map(|i| row.get_ref(i).map_or(4, value_size)));
        if budget.admit(size)? == Admit::Cut {
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
        truncated: budget.cut.is_some(),
        truncated_by: budget.cut,
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
    limits: &QueryLimits,
    stop: &Stop,
) -> Result<Vec<QueryOutput>, TransactionError> {
    let last = statements.len().saturating_sub(1);
    let at = |index: usize| move |error: GatewayError| TransactionError { index, error };
    let write = mode == GatewayMode::ReadWrite;
    let begin = if write && statements.len() > 1 {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN"
    };
    // No value larger than the byte limit is ever made.
    let length = i32::try_from(limits.max_result_bytes).unwrap_or(i32::MAX);
    c.set_limit(Limit::SQLITE_LIMIT_LENGTH, length)
        .map_err(sql_error)
        .map_err(at(0))?;
    c.execute_batch(begin).map_err(sql_error).map_err(at(0))?;
    let refusal = Refusal::default();
    let guarded = c
        .authorizer(Some(authorizer(mode, std::sync::Arc::clone(&refusal))))
        .map_err(sql_error)
        .map_err(at(0));
    let mut outputs = Vec::with_capacity(statements.len());
    let mut failed = guarded.err();
    let mut budget = Budget::new(limits);
    if failed.is_none() {
        for (index, (sql, params)) in statements.iter().enumerate() {
            match execute(c, sql, params, &mut budget, &refusal, stop) {
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
            self.run(limits, move |c, stop| {
                unit(c, mode, &statements, &limits, stop)
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
                .run(limits, move |c, stop| {
                    Ok(unit(c, mode, &bound, &limits, stop))
                })
                .await;
            match result {
                Ok(inner) => inner,
                Err(error) => Err(TransactionError { index: last, error }),
            }
        })
    }

    fn schema(&self, limits: QueryLimits) -> BoxFuture<'_, Result<Vec<TableInfo>, GatewayError>> {
        Box::pin(self.run(limits, |c, _| read_schema(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request whose stop comes late — its work already ended and the
    /// connection went on to another request — must not interrupt that
    /// other request's statement.
    #[test]
    fn a_stop_set_after_its_work_ended_leaves_the_next_work_alone() {
        let mut c = Connection::open_in_memory().unwrap();
        let wait = Duration::from_secs(1);
        let late = Stop::default();
        late.arm(&mut c, wait).unwrap();
        late.disarm(&mut c, wait);

        let next = Stop::default();
        next.arm(&mut c, wait).unwrap();
        {
            let mut stmt = c
                .prepare("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT x FROM n")
                .unwrap();
            let mut rows = stmt.query([]).unwrap();
            assert!(rows.next().unwrap().is_some());
            late.set();
            for _ in 0..10 {
                let row = rows.next().map_err(|e| e.sqlite_error_code());
                assert!(
                    matches!(row, Ok(Some(_))),
                    "the next request's statement was interrupted: {row:?}"
                );
            }
        }
        next.disarm(&mut c, wait);
    }
}
