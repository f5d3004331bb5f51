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

use std::error::Error as StdError;

use futures_util::{StreamExt, pin_mut};
use serde_json::Value;
use tidepool_postgres::PgPool;
use tokio_postgres::NoTls;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::{
    BoxFuture, ColumnInfo, Gateway, GatewayError, QueryLimits, QueryOutput, TableInfo, hex,
    pool_error,
};

/// The gateway for a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgGateway {
    pool: PgPool,
}

impl PgGateway {
    /// A gateway running its statements on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
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

impl PgGateway {
    async fn run(
        &self,
        sql: &str,
        params: &[Value],
        limits: QueryLimits,
    ) -> Result<QueryOutput, GatewayError> {
        let conn = self
            .pool
            .get_timeout(limits.acquire_timeout)
            .await
            .map_err(|e| pool_error(&e))?;
        let cancel = conn.cancel_token();
        let work = async {
            let stmt = conn.prepare_cached(sql).await.map_err(|e| sql_error(&e))?;
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
                if rows.len() == limits.max_rows {
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
        };
        match tokio::time::timeout(limits.statement_timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                if let Err(e) = cancel.cancel_query(NoTls).await {
                    tracing::warn!(error = %describe(&e), "could not cancel a timed-out query");
                }
                let mut conn = conn;
                conn.mark_broken();
                Err(GatewayError::Timeout(limits.statement_timeout))
            }
        }
    }
}

impl Gateway for PgGateway {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [Value],
        limits: QueryLimits,
    ) -> BoxFuture<'a, Result<QueryOutput, GatewayError>> {
        Box::pin(self.run(sql, params, limits))
    }

    fn schema(&self, limits: QueryLimits) -> BoxFuture<'_, Result<Vec<TableInfo>, GatewayError>> {
        Box::pin(async move {
            let limits = QueryLimits {
                max_rows: usize::MAX,
                ..limits
            };
            let out = self.run(SCHEMA_SQL, &[], limits).await?;
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
