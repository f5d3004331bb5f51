//! Sessions: `POST /api/v1/sessions`, `GET /api/v1/sessions/{id}/schema`,
//! `POST /api/v1/sessions/{id}/query`, `DELETE /api/v1/sessions/{id}`,
//! `GET /api/v1/sessions/stats`, and the [`SessionStore`] behind them.
//!
//! # Implementation notes
//! A session is a UUIDv4 naming a pool (configured, or made on demand for a
//! connection description) and the token that created it. Expiry slides:
//! each use pushes it `session_ttl` further. The store is one short mutex,
//! never held across an `.await`; expired sessions are dropped when met and
//! by the periodic clean-up. A session made from a description remembers
//! it, so if its on-demand pool was removed for idleness meanwhile, the next
//! use makes the pool again.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use uuid::Uuid;

use crate::ApiJson;
use crate::auth::{Admin, Caller};
use crate::error::ApiError;
use crate::gateway::{self, ConnectionSpec, Gateway, GatewayError, QueryLimits, TableInfo};
use crate::state::AppState;

struct Session {
    pool: String,
    caller: Caller,
    spec: Option<ConnectionSpec>,
    last_used: Instant,
    schema: Option<(Instant, Arc<Vec<TableInfo>>)>,
}

#[derive(Default)]
struct Counts {
    created: u64,
    expired: u64,
    deleted: u64,
    queries: u64,
    query_errors: u64,
}

/// The live sessions and their counters.
pub(crate) struct SessionStore {
    ttl: Duration,
    max: usize,
    hasher: RandomState,
    inner: Mutex<(HashMap<Uuid, Session>, Counts)>,
}

impl SessionStore {
    pub(crate) fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            hasher: RandomState::new(),
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (HashMap<Uuid, Session>, Counts)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sessions held (some may have expired since the last clean-up).
    pub(crate) fn len(&self) -> usize {
        self.lock().0.len()
    }

    /// Removes expired sessions; returns how many.
    pub(crate) fn remove_expired(&self) -> usize {
        let now = Instant::now();
        let mut guard = self.lock();
        let (sessions, counts) = &mut *guard;
        let before = sessions.len();
        sessions.retain(|_, s| now.duration_since(s.last_used) < self.ttl);
        let gone = before - sessions.len();
        counts.expired += gone as u64;
        gone
    }

    fn expires_at(&self) -> String {
        humantime::format_rfc3339_seconds(SystemTime::now() + self.ttl).to_string()
    }

    /// The session `id` for `caller`, touched; its pool, spec and cache.
    fn touch(&self, id: &str, caller: Caller) -> Result<Touched, ApiError> {
        let unknown = || {
            ApiError::unauthorized(
                "session_unknown",
                "unknown or expired session: create one with POST /api/v1/sessions",
            )
        };
        let id = Uuid::parse_str(id).map_err(|_| unknown())?;
        let now = Instant::now();
        let mut guard = self.lock();
        let (sessions, counts) = &mut *guard;
        let s = sessions.get_mut(&id).ok_or_else(unknown)?;
        if now.duration_since(s.last_used) >= self.ttl {
            sessions.remove(&id);
            counts.expired += 1;
            return Err(ApiError::unauthorized(
                "session_expired",
                "the session expired: create a new one with POST /api/v1/sessions",
            ));
        }
        if s.caller != caller {
            return Err(ApiError::forbidden(
                "this session was created with another token",
            ));
        }
        s.last_used = now;
        Ok(Touched {
            id,
            pool: s.pool.clone(),
            spec: s.spec.clone(),
            schema: s.schema.clone(),
        })
    }
}

struct Touched {
    id: Uuid,
    pool: String,
    spec: Option<ConnectionSpec>,
    schema: Option<(Instant, Arc<Vec<TableInfo>>)>,
}

/// `POST /api/v1/sessions` body: a configured pool, or a connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSession {
    pool: Option<String>,
    backend: Option<String>,
    url: Option<String>,
}

#[derive(Debug, Serialize)]
struct Created {
    session_id: Uuid,
    expires_at: String,
    pool: String,
    backend: &'static str,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(body): ApiJson<CreateSession>,
) -> Result<impl IntoResponse, ApiError> {
    let (pool, spec, gw) = match (body.pool, body.backend, body.url) {
        (Some(pool), None, None) => {
            if state.registry().handle(&pool).is_none() {
                return Err(ApiError::unknown_pool(&pool));
            }
            let gw = state.gateway(&pool).ok_or_else(|| {
                ApiError::bad_request(format!("pool `{pool}` cannot run queries (no gateway)"))
            })?;
            (pool, None, gw)
        }
        (None, Some(backend), Some(url)) => {
            let spec = ConnectionSpec { backend, url };
            let (name, gw) = open_spec(&state, &spec).await?;
            (name, Some(spec), gw)
        }
        _ => {
            return Err(ApiError::bad_request(
                "send either {\"pool\": NAME} or {\"backend\": \"sqlite\"|\"postgres\", \"url\": URL}",
            ));
        }
    };
    let store = &state.inner.sessions;
    let id = Uuid::new_v4();
    {
        let mut guard = store.lock();
        let (sessions, counts) = &mut *guard;
        if sessions.len() >= store.max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                format!(
                    "{} sessions are open, the most allowed; delete one first",
                    store.max
                ),
            ));
        }
        sessions.insert(
            id,
            Session {
                pool: pool.clone(),
                caller,
                spec,
                last_used: Instant::now(),
                schema: None,
            },
        );
        counts.created += 1;
    }
    tracing::info!(session = %id, pool = %pool, "session created");
    let created = Created {
        session_id: id,
        expires_at: store.expires_at(),
        pool,
        backend: gw.backend(),
    };
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Validates a connection description and gets or makes its pool.
async fn open_spec(
    state: &AppState,
    spec: &ConnectionSpec,
) -> Result<(String, Arc<dyn Gateway>), ApiError> {
    let settings = state.settings();
    if !settings.allow_connection_descriptions {
        return Err(ApiError::forbidden(
            "this server only opens sessions on configured pools: send {\"pool\": NAME}",
        ));
    }
    let redactor = state.redactor();
    redactor.add_url_password(&spec.url);
    if !settings.connection_allow_list.is_empty()
        && !settings
            .connection_allow_list
            .iter()
            .any(|p| spec.url.starts_with(p.as_str()))
    {
        return Err(ApiError::forbidden(
            "this connection is not on the server's allow-list",
        ));
    }
    let name = on_demand_name(state, spec);
    let existed = state.registry().handle(&name).is_some();
    let gw = gateway::open_on_demand(state.registry(), &name, spec, &settings.on_demand_pool)
        .map_err(|m| ApiError::bad_request(redactor.clean(&m)))?;
    state.add_gateway(name.clone(), Arc::clone(&gw));
    if !existed {
        let handle = state
            .registry()
            .handle(&name)
            .ok_or_else(|| ApiError::unavailable("the pool vanished while being made"))?;
        if let Err(e) = handle.check(settings.health_check_timeout).await {
            state.registry().remove(&name);
            state.remove_gateway(&name);
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "connection_failed",
                format!("could not connect: {}", redactor.clean(&e)),
            ));
        }
        tracing::info!(pool = %name, backend = %spec.backend, "on-demand pool created");
    }
    Ok((name, gw))
}

fn on_demand_name(state: &AppState, spec: &ConnectionSpec) -> String {
    let hash = state
        .inner
        .sessions
        .hasher
        .hash_one((&spec.backend, &spec.url));
    format!("session-{}-{hash:016x}", spec.backend)
}

/// The gateway of a touched session, remaking an on-demand pool if needed.
async fn gateway_for(state: &AppState, t: &Touched) -> Result<Arc<dyn Gateway>, ApiError> {
    if let Some(gw) = state.gateway(&t.pool) {
        return Ok(gw);
    }
    match &t.spec {
        Some(spec) => Ok(open_spec(state, spec).await?.1),
        None => Err(ApiError::unavailable(format!(
            "pool `{}` is no longer served",
            t.pool
        ))),
    }
}

fn limits(state: &AppState) -> QueryLimits {
    let s = state.settings();
    QueryLimits {
        max_rows: s.max_rows,
        statement_timeout: s.statement_timeout,
        acquire_timeout: s.acquire_timeout,
    }
}

pub(crate) fn gateway_error(state: &AppState, e: &GatewayError) -> ApiError {
    let detail = state.redactor().clean(&e.to_string());
    match e {
        GatewayError::Sql(_) => ApiError::new(StatusCode::BAD_REQUEST, "sql_error", detail),
        GatewayError::Param(_) => ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", detail),
        GatewayError::Timeout(_) => ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", detail),
        GatewayError::Unavailable(_) => ApiError::unavailable(detail),
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
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let t = state.inner.sessions.touch(&id, caller)?;
    if let Some((at, tables)) = &t.schema
        && at.elapsed() < state.settings().schema_ttl
    {
        return Ok(axum::Json(SchemaAnswer {
            session_id: t.id,
            pool: t.pool,
            cached: true,
            tables: tables.as_ref().clone(),
        }));
    }
    let gw = gateway_for(&state, &t).await?;
    let tables = Arc::new(
        gw.schema(limits(&state))
            .await
            .map_err(|e| gateway_error(&state, &e))?,
    );
    if let Some(s) = state.inner.sessions.lock().0.get_mut(&t.id) {
        s.schema = Some((Instant::now(), Arc::clone(&tables)));
    }
    Ok(axum::Json(SchemaAnswer {
        session_id: t.id,
        pool: t.pool,
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
    rows_affected: Option<u64>,
    elapsed_ms: f64,
}

pub(crate) async fn query(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<QueryBody>,
) -> Result<impl IntoResponse, ApiError> {
    let t = state.inner.sessions.touch(&id, caller)?;
    if body.sql.trim().is_empty() {
        return Err(ApiError::bad_request("`sql` is empty"));
    }
    let gw = gateway_for(&state, &t).await?;
    let started = std::time::Instant::now();
    let result = gw.query(&body.sql, &body.params, limits(&state)).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    {
        let mut guard = state.inner.sessions.lock();
        guard.1.queries += 1;
        guard.1.query_errors += u64::from(result.is_err());
    }
    let out = result.map_err(|e| gateway_error(&state, &e))?;
    Ok(axum::Json(QueryAnswer {
        columns: out.columns,
        rows: out.rows,
        row_count: out.row_count,
        truncated: out.truncated,
        rows_affected: out.rows_affected,
        elapsed_ms,
    }))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let t = state.inner.sessions.touch(&id, caller)?;
    let mut guard = state.inner.sessions.lock();
    if guard.0.remove(&t.id).is_some() {
        guard.1.deleted += 1;
    }
    drop(guard);
    tracing::info!(session = %t.id, "session deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
struct Stats {
    active: usize,
    by_pool: BTreeMap<String, usize>,
    created: u64,
    expired: u64,
    deleted: u64,
    queries: u64,
    query_errors: u64,
    ttl_seconds: u64,
}

pub(crate) async fn stats(State(state): State<AppState>, Admin(_): Admin) -> impl IntoResponse {
    let store = &state.inner.sessions;
    let now = Instant::now();
    let guard = store.lock();
    let (sessions, counts) = &*guard;
    let mut by_pool = BTreeMap::new();
    let mut active = 0;
    for s in sessions.values() {
        if now.duration_since(s.last_used) < store.ttl {
            active += 1;
            *by_pool.entry(s.pool.clone()).or_insert(0) += 1;
        }
    }
    axum::Json(Stats {
        active,
        by_pool,
        created: counts.created,
        expired: counts.expired,
        deleted: counts.deleted,
        queries: counts.queries,
        query_errors: counts.query_errors,
        ttl_seconds: store.ttl.as_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(store: &SessionStore, caller: Caller) -> Uuid {
        let id = Uuid::new_v4();
        store.lock().0.insert(
            id,
            Session {
                pool: "p".into(),
                caller,
                spec: None,
                last_used: Instant::now(),
                schema: None,
            },
        );
        id
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_slides_with_each_use() {
        let store = SessionStore::new(Duration::from_secs(60), 10);
        let id = insert(&store, Caller(0)).to_string();
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(store.touch(&id, Caller(0)).is_ok());
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(
            store.touch(&id, Caller(0)).is_ok(),
            "100 s after creation, 50 s after use"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        let err = store.touch(&id, Caller(0)).err().unwrap();
        assert_eq!(err.code(), "session_expired");
        let err = store.touch(&id, Caller(0)).err().unwrap();
        assert_eq!(err.code(), "session_unknown");
    }

    #[tokio::test(start_paused = true)]
    async fn clean_up_counts_expired_sessions() {
        let store = SessionStore::new(Duration::from_secs(10), 10);
        insert(&store, Caller(0));
        insert(&store, Caller(1));
        assert_eq!(store.remove_expired(), 0);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(store.remove_expired(), 2);
        assert_eq!(store.len(), 0);
        assert_eq!(store.lock().1.expired, 2);
    }
}
