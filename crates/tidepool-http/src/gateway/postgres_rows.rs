//! How the PostgreSQL gateway sends JSON parameters, reads result cells
//! into JSON, reads a statement's rows within the request's limits, and
//! classifies the driver's errors.
//!
//! # Implementation notes
//! A statement's rows are read through a portal in batches (`Execute` with
//! a row count), never all at once: each batch is sized to what the
//! [`Budget`] still allows (rows, and bytes at the average row size seen so
//! far), and each row is measured before its cells are turned into JSON.
//! When a row does not fit, reading stops; the portal is left suspended
//! and closed with the transaction, so the rest of the result is never
//! computed or sent by the server (at most the rest of the current batch
//! is, and the driver drops it).

use std::error::Error as StdError;

use futures_util::{StreamExt, pin_mut};
use serde_json::Value;
use tokio_postgres::error::{Severity, SqlState};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::budget::{Admit, Budget, json_size, json_str_len, row_size};
use super::{GatewayError, QueryOutput, hex, hex_len};

/// Rows asked for in the first batch of a statement, before any row size
/// is known.
const FIRST_BATCH: usize = 16;
/// Most rows asked for in one batch.
const MAX_BATCH: usize = 1000;

/// The text of a driver error with its server message (never the
/// connection settings).
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
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

/// Whether `e` means the session is over or unusable, through no fault of
/// the statement: the connection closed or failed, or the server ended
/// the session (`FATAL`/`PANIC`, such as `57P01` after
/// `pg_terminate_backend`, or a connection exception, class `08`).
pub(super) fn session_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        Some(db) => {
            matches!(
                db.parsed_severity(),
                Some(Severity::Fatal | Severity::Panic)
            ) || db.code().code().starts_with("08")
                || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN].contains(db.code())
        }
        None => e
            .source()
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some()),
    }
}

/// The gateway's error for a driver error: the session lost is the
/// server's trouble (503), a refused statement the client's (400), and a
/// value that could not be sent or read a bad parameter (400).
pub(super) fn sql_error(e: &tokio_postgres::Error) -> GatewayError {
    if session_lost(e) {
        GatewayError::Unavailable(format!(
            "the database session ended during the request: {}",
            describe(e)
        ))
    } else if e.as_db_error().is_some() {
        GatewayError::Sql(describe(e))
    } else {
        GatewayError::Param(describe(e))
    }
}

/// A JSON parameter bound as whatever type the server expects.
#[derive(Debug)]
pub(super) struct Param<'a>(pub(super) &'a Value);

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
            _ => match as_text(raw) {
                Some(s) => Value::from(s),
                None => Value::from(hex(raw)),
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

/// A cell of another type as text, when it is UTF-8 with no control
/// characters but newlines and tabs; otherwise it is sent as hex.
fn as_text(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw)
        .ok()
        .filter(|s| !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(|| Value::from(f.to_string()), Value::Number)
}

/// The size a cell will take as JSON, known from its raw bytes before it
/// is converted (exact for `bytea` and text, an upper bound for fixed-size
/// types; for `json`/`jsonb` the memory it takes, see [`json_cost`]).
struct RawSize(usize);

impl<'a> FromSql<'a> for RawSize {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self(match *ty {
            Type::BYTEA => hex_len(raw.len()).saturating_add(2),
            Type::BOOL | Type::INT2 | Type::INT4 | Type::INT8 | Type::OID | Type::CHAR => 24,
            Type::FLOAT4 | Type::FLOAT8 | Type::UUID | Type::DATE => 40,
            Type::TIMESTAMP | Type::TIMESTAMPTZ => 40,
            Type::NUMERIC => numeric_size(raw),
            Type::JSON | Type::JSONB => json_cost(raw),
            // Text and the rest: as [`Cell`] sends them, as escaped text
            // or as hex.
            _ => match as_text(raw) {
                Some(s) => json_str_len(s),
                None => hex_len(raw.len()).saturating_add(2),
            },
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Self(4))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The length of a `numeric` as the JSON string [`Cell`] makes of it,
/// from its header: a sign, four digits for each base-10000 digit of its
/// integer part (`weight` + 1 of them, however few are sent: `1e131071` is
/// 10 bytes on the wire and 131072 digits), a point and `dscale` digits.
fn numeric_size(raw: &[u8]) -> usize {
    let Some(&[_, _, w0, w1, _, _, s0, s1]) = raw.get(..8) else {
        // Too short to be read as a numeric: it fails as a cell.
        return 4;
    };
    let whole = usize::try_from(i16::from_be_bytes([w0, w1])).map_or(1, |w| 4 * (w + 1));
    let scale = usize::from(u16::from_be_bytes([s0, s1]));
    // Quotes, a sign, a point; at least `-Infinity`.
    (whole + scale + 4).max(11)
}

/// What a `json`/`jsonb` value of text `raw` counts toward the byte limit:
/// its text, plus an upper bound of the memory of the tree of [`Value`]s
/// it is read into, which is far larger than the text (a number of an
/// array takes 2 bytes of text and 32 to 64 of memory, a small object 8 and
/// about 700). Counted from the text, before anything is allocated.
fn json_cost(raw: &[u8]) -> usize {
    const VALUE: usize = std::mem::size_of::<Value>();
    // A value in an array, and as much again of the vector's spare room.
    const ELEMENT: usize = 2 * VALUE;
    // An object's map: its first B-tree node, room for 11 entries.
    const OBJECT: usize = 11 * (std::mem::size_of::<String>() + VALUE) + 64;
    // An entry: its share of further nodes (5 entries or more each), its
    // key's allocation.
    const ENTRY: usize = OBJECT / 5 + 32;
    // A string's allocation, beyond its text.
    const STRING: usize = 32;
    let (mut in_string, mut escaped) = (false, false);
    let mut cost = raw.len().saturating_add(2 + ELEMENT);
    for &b in raw {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        cost = cost.saturating_add(match b {
            b'"' => {
                in_string = true;
                STRING
            }
            b',' | b'[' => ELEMENT,
            b'{' => OBJECT,
            b':' => ENTRY,
            _ => 0,
        });
    }
    cost
}

/// How many rows to ask for next: what the budget still wants, and, once a
/// row size is known, about what its bytes still hold.
fn next_batch(budget: &Budget, bytes_read: usize) -> usize {
    let wanted = budget.rows_wanted();
    let by_bytes = match budget.rows() {
        0 => FIRST_BATCH,
        rows => {
            let average = (bytes_read / rows).max(1);
            budget.bytes_left() / average + 1
        }
    };
    wanted.min(by_bytes).clamp(1, MAX_BATCH)
}

/// Runs one statement in `txn` and reads its rows through a portal, within
/// what the request's `budget` still allows (see the module notes).
pub(super) async fn run_statement(
    txn: &tokio_postgres::Transaction<'_>,
    sql: &str,
    params: &[Value],
    budget: &mut Budget,
) -> Result<QueryOutput, GatewayError> {
    let stmt = txn.prepare(sql).await.map_err(|e| sql_error(&e))?;
    if stmt.params().len() != params.len() {
        return Err(GatewayError::Param(format!(
            "the statement takes {} parameter(s), {} given",
            stmt.params().len(),
            params.len()
        )));
    }
    let columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    let bound: Vec<Param<'_>> = params.iter().map(Param).collect();
    let portal = txn
        .bind_raw(&stmt, bound.iter().map(|p| p as &(dyn ToSql + Sync)))
        .await
        .map_err(|e| sql_error(&e))?;
    budget.next_statement();
    let mut rows = Vec::new();
    let mut bytes_read = 0_usize;
    let rows_affected = 'batches: loop {
        let batch = next_batch(budget, bytes_read);
        let max = i32::try_from(batch).unwrap_or(i32::MAX);
        let stream = txn
            .query_portal_raw(&portal, max)
            .await
            .map_err(|e| sql_error(&e))?;
        pin_mut!(stream);
        let mut got = 0;
        while let Some(row) = stream.next().await {
            let row = row.map_err(|e| sql_error(&e))?;
            got += 1;
            let mut sizes = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let size: RawSize = row.try_get(i).map_err(|e| sql_error(&e))?;
                sizes.push(size.0);
            }
            if budget.admit(row_size(sizes))? == Admit::Cut {
                // The portal stays suspended: the rest is never read.
                break 'batches None;
            }
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                let cell: Cell = row.try_get(i).map_err(|e| sql_error(&e))?;
                values.push(cell.0);
            }
            bytes_read = bytes_read.saturating_add(row_size(values.iter().map(json_size)));
            rows.push(values);
        }
        // The statement finished (rather than the batch filling up).
        if let Some(n) = stream.rows_affected() {
            break Some(n);
        }
        if got < batch {
            break None;
        }
    };
    let rows_affected = rows_affected.filter(|_| columns.is_empty());
    Ok(QueryOutput {
        row_count: rows.len(),
        columns,
        rows,
        truncated: budget.cut.is_some(),
        truncated_by: budget.cut,
        rows_affected,
    })
}

#[cfg(test)]
mod tests {
    use super::{json_cost, numeric_size};

    #[test]
    fn a_numeric_counts_as_its_text_however_few_digits_are_sent() {
        // 1e131071: one base-10000 digit (1000), weight 32767, scale 0.
        let wide = [0, 1, 0x7f, 0xff, 0, 0, 0, 0, 0x03, 0xe8];
        assert!(numeric_size(&wide) >= 131_072 + 2);
        // 1 at scale 16000: one digit, weight 0, scale 16000.
        let scaled = [0, 1, 0, 0, 0, 0, 0x3e, 0x80, 0, 1];
        assert!(numeric_size(&scaled) >= 1 + 1 + 16_000 + 2);
        assert_eq!(numeric_size(&[0, 0]), 4);
    }

    #[test]
    fn json_structure_inside_strings_costs_only_its_text() {
        let plain: &[u8] = br#"["a"]"#;
        let tricky: &[u8] = br#"["{[,:\"{"]"#;
        assert_eq!(
            json_cost(tricky) - json_cost(plain),
            tricky.len() - plain.len()
        );
        assert!(json_cost(br#"[{"a":0},{"a":0}]"#) > 2 * 700);
    }
}
