//! Sessions: `POST /api/v1/sessions`, `GET /api/v1/sessions/{id}/schema`,
//! `POST /api/v1/sessions/{id}/query`, `POST /api/v1/sessions/{id}/transaction`,
//! `DELETE /api/v1/sessions/{id}`, `GET /api/v1/sessions/stats`.
//!
//! # Implementation notes
//! A session is a UUIDv4 naming a pool and the tenant that made it; only
//! that tenant may use it. Sessions live in a [`SessionStore`] (in memory by
//! default). How a session is made — on a configured pool, or on a
//! connection description with a pool made on demand — is in
//! the `create` module. Each statement takes one of its tenant's
//! per-pool query permits first, and is a unit on its connection (see
//! [`gateway`](crate::gateway)).

mod create;
mod store;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub(crate) use create::create;
pub use store::{MemoryStore, SessionRecord, SessionStats, SessionStore, StoreError};

use crate::ApiJson;
use crate::auth::{Authed, SessionUser};
use crate::error::ApiError;
use crate::gateway::{
    Gateway, GatewayError, QueryLimits, QueryOutput, Statement, TableInfo, Truncation,
};
use crate::state::AppState;
use crate::tenants::{Caller, Role};

/// The error for a store's refusal.
pub(crate) fn store_error(e: &StoreError) -> ApiError {
    match e {
        StoreError::Unknown => ApiError::unauthorized(
            "session_unknown",
            "unknown or expired session: create one with POST /api/v1/sessions",
        ),
        StoreError::Expired => ApiError::unauthorized(
            "session_expired",
            "the session expired: create a new one with POST /api/v1/sessions",
        ),
        StoreError::ServerFull { max } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sessions",
            format!("{max} sessions are open, the most this server allows; retry later"),
        )
        .retry_after(1),
        StoreError::TenantFull { max } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_sessions",
            format!("this tenant holds {max} sessions, its quota; delete one first"),
        ),
        StoreError::NotOwner => ApiError::forbidden("this session belongs to another tenant"),
        StoreError::Unavailable(why) => {
            ApiError::unavailable(format!("the session store is unavailable: {why}"))
        }
    }
}

/// The session `id` of `caller`, touched.
async fn touch(
    state: &AppState,
    caller: Caller,
    id: &str,
) -> Result<(Uuid, SessionRecord), ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| store_error(&StoreError::Unknown))?;
    let record = state
        .inner
        .sessions
        .touch(id, &state.tenant(caller).name)
        .await
        .map_err(|e| store_error(&e))?;
    Ok((id, record))
}

/// The gateway of a session, remaking its on-demand pool if it was removed
/// for idleness.
async fn gateway_for(
    state: &AppState,
    caller: Caller,
    record: &SessionRecord,
) -> Result<Arc<dyn Gateway>, ApiError> {
    if let Some(gw) = state.gateway(&record.pool) {
        return Ok(gw);
    }
    match &record.description {
        Some(description) => create::open_on_demand(state, caller, description, &record.pool).await,
        None => Err(ApiError::unavailable(format!(
            "pool `{}` is no longer served",
            record.pool
        ))),
    }
}

fn limits(state: &AppState) -> QueryLimits {
    let s = state.settings();
    QueryLimits {
        max_rows: s.max_rows,
        max_result_bytes: s.max_result_bytes,
        statement_timeout: s.statement_timeout,
    }
}

pub(crate) fn gateway_error(state: &AppState, e: &GatewayError) -> ApiError {
    let detail = state.redactor().clean(&e.to_string());
    match e {
        GatewayError::Sql(_) => ApiError::new(StatusCode::BAD_REQUEST, "sql_error", detail),
        GatewayError::Param(_) => ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", detail),
        GatewayError::NotAuthorized(_) => {
            ApiError::new(StatusCode::FORBIDDEN, "not_authorized", detail)
        }
        GatewayError::Timeout(_) => ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", detail),
        GatewayError::ResultTooLarge(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "result_too_large", detail)
        }
        _ => ApiError::unavailable(detail),
    }
}

#[derive(Debug, Serialize)]
struct SchemaAnswer {
    session_id: Uuid,
    pool: String,
    cached: bool,
    tables: Vec<TableInfo>,
}

pub(crate) async fn schema(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (id, record) = touch(&state, caller, &id).await?;
    let store = &state.inner.sessions;
    if let Some(tables) = store.cached_schema(id, state.settings().schema_ttl).await {
        return Ok(axum::Json(SchemaAnswer {
            session_id: id,
            pool: record.pool,
            cached: true,
            tables: tables.as_ref().clone(),
        }));
    }
    let gw = gateway_for(&state, caller, &record).await?;
    let _permit = state.live(caller).query_permit(&record.pool)?;
    let tables = Arc::new(
        gw.schema(limits(&state))
            .await
            .map_err(|e| gateway_error(&state, &e))?,
    );
    store.cache_schema(id, Arc::clone(&tables)).await;
    Ok(axum::Json(SchemaAnswer {
        session_id: id,
        pool: record.pool,
        cached: false,
        tables: tables.as_ref().clone(),
    }))
}

/// `POST /api/v1/sessions/{id}/query` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryBody {
    sql: String,
    #[serde(default)]
    params: Vec<Value>,
}

#[derive(Debug, Serialize)]
struct QueryAnswer {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
    row_count: usize,
    truncated: bool,
    /// `max_rows` or `max_result_bytes`, when the result was cut short.
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated_by: Option<Truncation>,
    rows_affected: Option<u64>,
    elapsed_ms: f64,
}

impl QueryAnswer {
    fn new(out: QueryOutput, elapsed_ms: f64) -> Self {
        Self {
            columns: out.columns,
            rows: out.rows,
            row_count: out.row_count,
            truncated: out.truncated,
            truncated_by: out.truncated_by,
            rows_affected: out.rows_affected,
            elapsed_ms,
        }
    }
}

fn elapsed_ms(since: std::time::Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

pub(crate) async fn query(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, record) = touch(&state, caller, &id).await?;
    if body.sql.trim().is_empty() {
        return Err(ApiError::bad_request("`sql` is empty"));
    }
    let gw = gateway_for(&state, caller, &record).await?;
    let _permit = state.live(caller).query_permit(&record.pool)?;
    let started = std::time::Instant::now();
    let result = gw.query(&body.sql, &body.params, limits(&state)).await;
    let elapsed_ms = elapsed_ms(started);
    state
        .inner
        .sessions
        .count_query(&record.tenant, result.is_ok())
        .await;
    let out = result.map_err(|e| gateway_error(&state, &e))?;
    Ok(axum::Json(QueryAnswer::new(out, elapsed_ms)))
}

/// One statement of a transaction body: `{"sql": ..., "params": [...]}` or
/// `[sql, [params]]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum StatementBody {
    Object {
        sql: String,
        #[serde(default)]
        params: Vec<Value>,
    },
    Pair(String, Vec<Value>),
}

/// `POST /api/v1/sessions/{id}/transaction` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransactionBody {
    statements: Vec<StatementBody>,
}

#[derive(Debug, Serialize)]
struct TransactionAnswer {
    committed: bool,
    results: Vec<QueryAnswer>,
    elapsed_ms: f64,
}

pub(crate) async fn transaction(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TransactionBody>,
) -> Result<impl IntoResponse, ApiError> {
    let (_, record) = touch(&state, caller, &id).await?;
    let max = state.settings().max_transaction_statements;
    let count = body.statements.len();
    if count == 0 {
        return Err(ApiError::bad_request("`statements` is empty"));
    }
    if count > max {
        return Err(ApiError::bad_request(format!(
            "{count} statements sent; a transaction takes at most {max}"
        )));
    }
    let statements: Vec<Statement> = body
        .statements
        .into_iter()
        .map(|s| match s {
            StatementBody::Object { sql, params } | StatementBody::Pair(sql, params) => {
                Statement { sql, params }
            }
        })
        .collect();
    if let Some(i) = statements.iter().position(|s| s.sql.trim().is_empty()) {
        return Err(ApiError::bad_request(format!(
            "statement {} is empty",
            i + 1
        )));
    }
    let gw = gateway_for(&state, caller, &record).await?;
    let _permit = state.live(caller).query_permit(&record.pool)?;
    let started = std::time::Instant::now();
    let result = gw.transaction(&statements, limits(&state)).await;
    let elapsed = elapsed_ms(started);
    state
        .inner
        .sessions
        .count_query(&record.tenant, result.is_ok())
        .await;
    match result {
        Ok(outputs) => Ok(axum::Json(TransactionAnswer {
            committed: gw.mode() == crate::gateway::GatewayMode::ReadWrite,
            results: outputs
                .into_iter()
                .map(|o| QueryAnswer::new(o, elapsed))
                .collect(),
            elapsed_ms: elapsed,
        })),
        Err(failed) => {
            let e = gateway_error(&state, &failed.error);
            Err(ApiError::new(
                e.status(),
                e.code(),
                format!(
                    "statement {} of {count} failed and nothing was committed: {}",
                    failed.index + 1,
                    e.detail()
                ),
            ))
        }
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (id, record) = touch(&state, caller, &id).await?;
    state
        .inner
        .sessions
        .remove(id)
        .await
        .map_err(|e| store_error(&e))?;
    tracing::info!(session = %id, tenant = %record.tenant, "session deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/sessions/stats`: the caller's own sessions; an admin's
/// answer counts every tenant's.
pub(crate) async fn stats(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> axum::Json<SessionStats> {
    let tenant = state.tenant(caller);
    let scope = (tenant.role != Role::Admin).then_some(tenant.name.as_str());
    axum::Json(state.inner.sessions.stats(scope).await)
}
