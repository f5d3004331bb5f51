//! [`PgGateway`]: the [`Gateway`] over a [`tidepool_postgres::PgPool`].
//!
//! # Implementation notes
//! The statement is prepared (cached per connection) so that its parameter
//! and column types are known: JSON parameters are converted to the type the
//! server inferred for each `$n`, and each column is read by its type into
//! JSON (numbers, booleans, text, json/jsonb, uuid, bytea as `\x..` hex,
//! numeric and timestamps as text; any other type as its text form when it
//! is UTF-8). Rows are streamed and the stream is dropped after `max_rows`.
//! On timeout the query is cancelled on the server (a cancel request over a
//! new connection) and the connection is closed rather than reused.
//!
//! Statements are prepared for the request and closed after it, never
//! cached on the connection: a cached statement's text would be readable by
//! the next tenant in `pg_prepared_statements`. How a request begins, ends
//! and resets its connection is in [`postgres_unit`](super::postgres_unit).

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, pin_mut};
use serde_json::Value;
use tidepool_postgres::PgPool;
use tokio_postgres::NoTls;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::postgres_unit::{
    PRIVILEGED_ROLES, RESET_SQL, ROLE_CHECK_SQL, UnitGuard, begin_sql, reset_clean, single_text,
    text_at,
};
use super::{
    BoxFuture, ColumnInfo, Gateway, GatewayError, GatewayMode, QueryLimits, QueryOutput, Statement,
    TableInfo, TransactionError, hex, pool_error,
};

/// The gateway for a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgGateway {
    pool: PgPool,
    mode: GatewayMode,
    allow_privileged_role: bool,
    /// The role check's verdict once made: `Some(reason)` when refused.
    verdict: Arc<tokio::sync::OnceCell<Option<String>>>,
}

/// What [`PgGateway::check_role`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCheck {
    /// The role the pool logs in as.
    pub role: String,
    /// What reaches outside the database: `superuser` and the
    /// [`PRIVILEGED_ROLES`] it is a member of. Empty for a plain role.
    pub privileges: Vec<String>,
    /// Why the gateway refuses to serve, when it does.
    pub refusal: Option<String>,
}

impl PgGateway {
    /// A read-only gateway running its statements on `pool`, serving only
    /// if the pool's role is not privileged (see
    /// [`allow_privileged_role`](Self::allow_privileged_role)).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            mode: GatewayMode::ReadOnly,
            allow_privileged_role: false,
            verdict: Arc::default(),
        }
    }

    /// Sets what sessions may do. Default: [`GatewayMode::ReadOnly`].
    #[must_use]
    pub fn mode(mut self, mode: GatewayMode) -> Self {
        self.mode = mode;
        self
    }

    /// Serves even when the pool's role is a superuser or a member of one
    /// of [`PRIVILEGED_ROLES`] (whose statements could read or write the
    /// server's files, run programs on it, or end other sessions). Default:
    /// `false`.
    #[must_use]
    pub fn allow_privileged_role(mut self, allow: bool) -> Self {
        self.allow_privileged_role = allow;
        self
    }

    /// Checks the pool's role now (getting a connection within `within`)
    /// and remembers the verdict; later calls return what was found. Each
    /// request checks first if nobody has yet.
    ///
    /// # Errors
    /// When no connection could be had or the check failed to run; nothing
    /// is remembered then.
    pub async fn check_role(&self, within: Duration) -> Result<RoleCheck, GatewayError> {
        let conn = self
            .pool
            .get_timeout(within)
            .await
            .map_err(|e| pool_error(&e))?;
        let found = self.read_role(&conn).await?;
        let _ = self.verdict.set(found.refusal.clone());
        Ok(found)
    }

    async fn read_role(&self, conn: &tokio_postgres::Client) -> Result<RoleCheck, GatewayError> {
        let wanted: Vec<&str> = PRIVILEGED_ROLES.to_vec();
        let row = conn
            .query_one(ROLE_CHECK_SQL, &[&wanted])
            .await
            .map_err(|e| sql_error(&e))?;
        let role: String = row.try_get(0).map_err(|e| sql_error(&e))?;
        let superuser: bool = row.try_get(1).map_err(|e| sql_error(&e))?;
        let members: Vec<String> = row.try_get(2).map_err(|e| sql_error(&e))?;
        let privileges: Vec<String> = superuser
            .then(|| "superuser".to_owned())
            .into_iter()
            .chain(members)
            .collect();
        let refusal = (!privileges.is_empty() && !self.allow_privileged_role).then(|| {
            format!(
                "the role `{role}` has privileges beyond its database ({}): set allow_privileged_role = true on the pool to serve it anyway",
                privileges.join(", ")
            )
        });
        Ok(RoleCheck {
            role,
            privileges,
            refusal,
        })
    }

    /// The verdict, made on `conn` if nobody made it yet.
    async fn verify(&self, conn: &tokio_postgres::Client) -> Result<(), GatewayError> {
        let verdict = self
            .verdict
            .get_or_try_init(|| async {
                let found = self.read_role(conn).await?;
                if let Some(why) = &found.refusal {
                    tracing::error!(pool = %self.pool.name(), "query gateway refused: {why}");
                }
                Ok::<_, GatewayError>(found.refusal)
            })
            .await?;
        match verdict {
            Some(_) => Err(refused(self.pool.name())),
            None => Ok(()),
        }
    }
}

fn refused(pool: &str) -> GatewayError {
    GatewayError::NotAuthorized(format!(
        "the query gateway of pool `{pool}` is disabled by the server's checks; see its log"
    ))
}

/// The text of a driver error with its server message (never the
/// connection settings).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(&format!(" ({detail})"));
            }
            s
        }
        None => match e.source() {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

fn sql_error(e: &tokio_postgres::Error) -> GatewayError {
    if e.as_db_error().is_some() || e.is_closed() {
        if e.is_closed() {
            return GatewayError::Unavailable(describe(e));
        }
        GatewayError::Sql(describe(e))
    } else {
        GatewayError::Param(describe(e))
    }
}

/// A JSON parameter bound as whatever type the server expects.
#[derive(Debug)]
struct Param<'a>(&'a Value);

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        let v = self.0;
        if v.is_null() {
            return Ok(IsNull::Yes);
        }
        let bad = || -> BoxError { format!("cannot use this JSON value as {ty}").into() };
        match *ty {
            Type::BOOL => match v {
                Value::Bool(b) => b.to_sql(ty, out),
                _ => Err(bad()),
            },
            Type::INT2 => i16::try_from(int_of(v).ok_or_else(bad)?)?.to_sql(ty, out),
            Type::INT4 => i32::try_from(int_of(v).ok_or_else(bad)?)?.to_sql(ty, out),
            Type::INT8 => int_of(v).ok_or_else(bad)?.to_sql(ty, out),
            Type::OID => u32::try_from(int_of(v).ok_or_else(bad)?)?.to_sql(ty, out),
            Type::FLOAT4 => (float_of(v).ok_or_else(bad)? as f32).to_sql(ty, out),
            Type::FLOAT8 => float_of(v).ok_or_else(bad)?.to_sql(ty, out),
            Type::JSON | Type::JSONB => v.to_sql(ty, out),
            Type::UUID => uuid::Uuid::parse_str(&text_of(v))?.to_sql(ty, out),
            Type::BYTEA => text_of(v).into_bytes().to_sql(ty, out),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                text_of(v).to_sql(&Type::TEXT, out)
            }
            _ => Err(format!(
                "parameters of type {ty} are not supported by the gateway; cast it in SQL, e.g. $1::text::{ty}"
            )
            .into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// One result cell as JSON, read by its column type.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let v = match *ty {
            Type::BOOL => Value::from(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::from(i16::from_sql(ty, raw)?),
            Type::INT4 => Value::from(i32::from_sql(ty, raw)?),
            Type::INT8 => Value::from(i64::from_sql(ty, raw)?),
            Type::OID => Value::from(u32::from_sql(ty, raw)?),
            Type::FLOAT4 => float(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => float(f64::from_sql(ty, raw)?),
            Type::JSON | Type::JSONB => Value::from_sql(ty, raw)?,
            Type::UUID => Value::from(uuid::Uuid::from_sql(ty, raw)?.to_string()),
            Type::BYTEA => Value::from(hex(raw)),
            Type::NUMERIC => Value::from(super::pgtext::numeric(raw)?),
            Type::TIMESTAMP => Value::from(super::pgtext::timestamp(raw, false)?),
            Type::TIMESTAMPTZ => Value::from(super::pgtext::timestamp(raw, true)?),
            Type::DATE => Value::from(super::pgtext::date(raw)?),
            Type::CHAR => Value::from(i8::from_sql(ty, raw)?),
            _ => match std::str::from_utf8(raw) {
                Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
                    Value::from(s)
                }
                _ => Value::from(hex(raw)),
            },
        };
        Ok(Self(v))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Self(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(|| Value::from(f.to_string()), Value::Number)
}

const SCHEMA_SQL: &str = "SELECT c.table_schema::text, c.table_name::text, \
       CASE t.table_type WHEN 'VIEW' THEN 'view' ELSE 'table' END, \
       c.column_name::text, c.data_type::text, c.is_nullable = 'YES', \
       EXISTS (SELECT 1 FROM information_schema.table_constraints tc \
               JOIN information_schema.key_column_usage k \
                 ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema \
               WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema \
                 AND tc.table_name = c.table_name AND k.column_name = c.column_name) \
     FROM information_schema.columns c \
     JOIN information_schema.tables t \
       ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
     WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') \
       AND c.table_schema NOT LIKE 'pg_toast%' \
     ORDER BY 1, 2, c.ordinal_position";

/// Runs one prepared statement and reads its rows (up to `max_rows`).
async fn run_statement(
    conn: &tokio_postgres::Client,
    sql: &str,
    params: &[Value],
    max_rows: usize,
) -> Result<QueryOutput, GatewayError> {
    let stmt = conn.prepare(sql).await.map_err(|e| sql_error(&e))?;
    if stmt.params().len() != params.len() {
        return Err(GatewayError::Param(format!(
            "the statement takes {} parameter(s), {} given",
            stmt.params().len(),
            params.len()
        )));
    }
    let columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
    let stream = conn
        .query_raw(&stmt, bound.iter().map(|p| p as &(dyn ToSql + Sync)))
        .await
        .map_err(|e| sql_error(&e))?;
    pin_mut!(stream);
    let mut rows = Vec::new();
    let mut truncated = false;
    while let Some(row) = stream.next().await {
        let row = row.map_err(|e| sql_error(&e))?;
        if rows.len() == max_rows {
            truncated = true;
            break;
        }
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let cell: Cell = row.try_get(i).map_err(|e| sql_error(&e))?;
            values.push(cell.0);
        }
        rows.push(values);
    }
    let rows_affected = if truncated {
        None
    } else {
        stream.rows_affected()
    };
    let rows_affected = rows_affected.filter(|_| columns.is_empty());
    Ok(QueryOutput {
        row_count: rows.len(),
        columns,
        rows,
        truncated,
        rows_affected,
    })
}

/// Runs a simple-query batch that belongs to the unit's bookkeeping.
async fn bookkeeping(
    conn: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<tokio_postgres::SimpleQueryMessage>, GatewayError> {
    conn.simple_query(sql).await.map_err(|e| sql_error(&e))
}

impl PgGateway {
    /// Runs `statements` as one unit (see the module notes); the outputs,
    /// or the failing statement and its error.
    async fn unit(
        &self,
        mode: GatewayMode,
        statements: &[(&str, &[Value])],
        limits: QueryLimits,
    ) -> Result<Vec<QueryOutput>, TransactionError> {
        let at = |index: usize| move |error: GatewayError| TransactionError { index, error };
        let last = statements.len().saturating_sub(1);
        let conn = self
            .pool
            .get_timeout(limits.acquire_timeout)
            .await
            .map_err(|e| at(0)(pool_error(&e)))?;
        let guard = UnitGuard::new(conn);
        let client: &tokio_postgres::Client = guard.conn();
        self.verify(client).await.map_err(at(0))?;
        let cancel = client.cancel_token();
        let work = async {
            let begun = bookkeeping(client, &begin_sql(mode)).await.map_err(at(0))?;
            let marker = single_text(&begun);
            let driver_before = text_at(&begun, 1).and_then(|t| t.parse::<u64>().ok());
            let mut outputs = Vec::with_capacity(statements.len());
            let mut failed = None;
            for (index, (sql, params)) in statements.iter().enumerate() {
                match run_statement(client, sql, params, limits.max_rows).await {
                    Ok(out) => outputs.push(out),
                    Err(error) => {
                        failed = Some(TransactionError { index, error });
                        break;
                    }
                }
                if index < last {
                    let now = bookkeeping(client, "SELECT transaction_timestamp()::text")
                        .await
                        .map_err(at(index))?;
                    if single_text(&now) != marker {
                        failed = Some(at(index)(GatewayError::NotAuthorized(format!(
                            "statement {} ended the request's transaction; each request is one transaction, so leave out transaction control",
                            index + 1
                        ))));
                        break;
                    }
                }
            }
            let commit = failed.is_none() && mode == GatewayMode::ReadWrite;
            let ended = bookkeeping(client, if commit { "COMMIT" } else { "ROLLBACK" }).await;
            let mut clean = true;
            if let Err(error) = ended {
                clean = false;
                failed.get_or_insert(at(last)(error));
            }
            if clean {
                match bookkeeping(client, RESET_SQL).await {
                    Ok(reply) => clean = reset_clean(&reply, driver_before),
                    Err(e) => {
                        tracing::warn!(pool = %self.pool.name(), error = %e, "resetting a gateway connection failed; it is closed");
                        clean = false;
                    }
                }
            }
            Ok::<_, TransactionError>((outputs, failed, clean))
        };
        match tokio::time::timeout(limits.statement_timeout, work).await {
            Ok(Ok((outputs, failed, clean))) => {
                if clean && !client.is_closed() {
                    guard.finish();
                }
                match failed {
                    Some(e) => Err(e),
                    None => Ok(outputs),
                }
            }
            // The guard closes the connection: its state is unknown.
            Ok(Err(e)) => Err(e),
            Err(_) => {
                if let Err(e) = cancel.cancel_query(NoTls).await {
                    tracing::warn!(error = %describe(&e), "could not cancel a timed-out query");
                }
                Err(at(last)(GatewayError::Timeout(limits.statement_timeout)))
            }
        }
    }
}

impl Gateway for PgGateway {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn mode(&self) -> GatewayMode {
        self.mode
    }

    fn refusal(&self) -> Option<String> {
        self.verdict.get().cloned().flatten()
    }

    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Value],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<QueryOutput, GatewayError>> {
        Box::pin(async move {
            self.unit(self.mode, &[(sql, params)], limits)
                .await
                .map(|mut outs| outs.remove(0))
                .map_err(|e| e.error)
        })
    }

    fn transaction<'a>(
        &'a self,
        statements: &'a [Statement],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<Vec<QueryOutput>, TransactionError>> {
        Box::pin(async move {
            let list: Vec<(&str, &[Value])> = statements
                .iter()
                .map(|s| (s.sql.as_str(), s.params.as_slice()))
                .collect();
            self.unit(self.mode, &list, limits).await
        })
    }

    fn schema(&self, limits: QueryLimits) -> BoxFuture<'_, Result<Vec<TableInfo>, GatewayError>> {
        Box::pin(async move {
            let limits = QueryLimits {
                max_rows: usize::MAX,
                ..limits
            };
            let out = self
                .unit(GatewayMode::ReadOnly, &[(SCHEMA_SQL, &[])], limits)
                .await
                .map(|mut outs| outs.remove(0))
                .map_err(|e| e.error)?;
            let mut tables: Vec<TableInfo> = Vec::new();
            for row in out.rows {
                let text = |i: usize| row[i].as_str().unwrap_or_default().to_owned();
                let column = ColumnInfo {
                    name: text(3),
                    data_type: text(4),
                    nullable: row[5].as_bool().unwrap_or(true),
                    primary_key: row[6].as_bool().unwrap_or(false),
                };
                let (schema, name) = (text(0), text(1));
                match tables.last_mut() {
                    Some(t) if t.schema == schema && t.name == name => t.columns.push(column),
                    _ => tables.push(TableInfo {
                        schema,
                        name,
                        kind: text(2),
                        columns: vec![column],
                    }),
                }
            }
            Ok(tables)
        })
    }
}
