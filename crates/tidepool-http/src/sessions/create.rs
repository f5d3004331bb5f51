//! `POST /api/v1/sessions`: a session on a configured pool, or on a
//! connection description whose pool is made on demand.
//!
//! # Implementation notes
//! A tenant's creations run one at a time (its own mutex; other tenants are
//! not held up), so its quotas are read and used without a race. For a
//! description, every limit is checked before anything is opened: the
//! description is parsed and matched against the allow-list, then the
//! server's and the tenant's session limits, then the tenant's on-demand
//! pool quota; only then is a pool made and a connection tried. A pool made
//! for a session that could not be stored is removed again. On-demand pools
//! are keyed by tenant and description, owned by their tenant, and visible
//! to it and to admins only.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{SessionRecord, StoreError, store_error};
use crate::ApiJson;
use crate::auth::SessionUser;
use crate::descriptions::{Description, Requested};
use crate::error::ApiError;
use crate::gateway::{Gateway, GatewayMode};
use crate::state::AppState;
use crate::tenants::Caller;

/// `POST /api/v1/sessions` body: a configured pool, or a connection (a URL,
/// or PostgreSQL's fields).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSession {
    pool: Option<String>,
    backend: Option<String>,
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    database: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Serialize)]
struct Created {
    session_id: Uuid,
    expires_at: String,
    pool: String,
    backend: &'static str,
    mode: &'static str,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    SessionUser(caller): SessionUser,
    ApiJson(body): ApiJson<CreateSession>,
) -> Result<impl IntoResponse, ApiError> {
    let live = state.live(caller);
    let _one_at_a_time = live.creating.lock().await;
    let tenant = &live.tenant;
    let described = body.backend.is_some()
        || body.url.is_some()
        || body.host.is_some()
        || body.port.is_some()
        || body.database.is_some()
        || body.username.is_some()
        || body.password.is_some();
    let (record, gw, made) = match (body.pool, described) {
        (Some(pool), false) => {
            let gw = configured(&state, caller, &pool)?;
            (SessionRecord::new(tenant.name.clone(), pool), gw, false)
        }
        (None, true) => {
            let requested = Requested {
                backend: body.backend.ok_or_else(|| {
                    ApiError::bad_request("a connection description needs `backend`")
                })?,
                url: body.url,
                host: body.host,
                port: body.port,
                database: body.database,
                username: body.username,
                password: body.password,
            };
            let description = Description::parse(&requested, &state.settings().descriptions)?;
            let name = description.pool_name(&tenant.name, &state.inner.hasher);
            // Every limit before anything is opened.
            check_session_room(&state, caller).await?;
            let made = state.registry().handle(&name).is_none();
            let gw = open_on_demand(&state, caller, &description, &name).await?;
            let mut record = SessionRecord::new(tenant.name.clone(), name);
            record.description = Some(description);
            (record, gw, made)
        }
        _ => {
            return Err(ApiError::bad_request(
                "send either {\"pool\": NAME} or a connection: {\"backend\": \"sqlite\"|\"postgres\", \"url\": URL} (postgres also takes host, port, database, username, password)",
            ));
        }
    };
    let settings = state.settings();
    let pool = record.pool.clone();
    let stored = state
        .inner
        .sessions
        .create(record, settings.max_sessions, tenant.quotas.max_sessions)
        .await;
    let id = match stored {
        Ok(id) => id,
        Err(e) => {
            if made {
                state.remove_on_demand(&pool);
            }
            return Err(store_error(&e));
        }
    };
    tracing::info!(session = %id, tenant = %tenant.name, pool = %pool, "session created");
    let expires_at =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + settings.session_ttl)
            .to_string();
    let created = Created {
        session_id: id,
        expires_at,
        pool,
        backend: gw.backend(),
        mode: gw.mode().as_str(),
    };
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// The gateway of configured (or the caller's own on-demand) pool `pool`,
/// if the caller may open a session on it.
fn configured(state: &AppState, caller: Caller, pool: &str) -> Result<Arc<dyn Gateway>, ApiError> {
    let tenant = state.tenant(caller);
    match state.owner_of(pool) {
        Some(owner) if owner == tenant.name => {}
        // Another tenant's on-demand pool does not exist for this caller.
        Some(_) => return Err(ApiError::unknown_pool(pool)),
        None => {
            if state.registry().handle(pool).is_none() {
                return Err(ApiError::unknown_pool(pool));
            }
            if !tenant.may_query(pool) {
                return Err(ApiError::forbidden(format!(
                    "tenant `{}` is not granted pool `{pool}`",
                    tenant.name
                )));
            }
        }
    }
    let gw = state.gateway(pool).ok_or_else(|| {
        ApiError::bad_request(format!("pool `{pool}` cannot run queries (no gateway)"))
    })?;
    if gw.mode() == GatewayMode::Off {
        return Err(ApiError::forbidden(format!(
            "the query gateway of pool `{pool}` is off"
        )));
    }
    if gw.refusal().is_some() {
        return Err(ApiError::forbidden(format!(
            "the query gateway of pool `{pool}` is disabled by the server's checks; see its log"
        )));
    }
    Ok(gw)
}

/// 429 unless the server and the caller's tenant have room for a session.
async fn check_session_room(state: &AppState, caller: Caller) -> Result<(), ApiError> {
    let tenant = state.tenant(caller);
    let store = &state.inner.sessions;
    if store.stats(Some(&tenant.name)).await.active >= tenant.quotas.max_sessions {
        return Err(store_error(&StoreError::TenantFull {
            max: tenant.quotas.max_sessions,
        }));
    }
    let max = state.settings().max_sessions;
    if store.stats(None).await.active >= max {
        return Err(store_error(&StoreError::ServerFull { max }));
    }
    Ok(())
}

/// Gets or makes the caller's on-demand pool `name` for `description`:
/// within its tenant's pool quota, tried with one connection when new.
pub(super) async fn open_on_demand(
    state: &AppState,
    caller: Caller,
    description: &Description,
    name: &str,
) -> Result<Arc<dyn Gateway>, ApiError> {
    let tenant = state.tenant(caller);
    let settings = state.settings();
    let exists = state.registry().handle(name).is_some();
    if !exists && state.on_demand_count(&tenant.name) >= tenant.quotas.max_on_demand_pools {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_pools",
            format!(
                "tenant `{}` has {} on-demand pool(s) open, its quota; close sessions or wait until one is removed for idleness",
                tenant.name, tenant.quotas.max_on_demand_pools
            ),
        ));
    }
    let redactor = state.redactor();
    let gw = description
        .open(
            state.registry(),
            name,
            &settings.descriptions.pool,
            settings.descriptions.mode,
        )
        .map_err(|m| ApiError::bad_request(redactor.clean(&m)))?;
    state.add_on_demand(name, &tenant.name, Arc::clone(&gw));
    if !exists {
        let handle = state
            .registry()
            .handle(name)
            .ok_or_else(|| ApiError::unavailable("the pool vanished while being made"))?;
        if let Err(e) = handle.check(settings.health_check_timeout).await {
            state.remove_on_demand(name);
            let own: Vec<&str> = description.password().into_iter().collect();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "connection_failed",
                format!(
                    "could not connect: {}",
                    redactor.clean_with(e.message(), &own)
                ),
            ));
        }
        tracing::info!(pool = %name, tenant = %tenant.name, backend = description.backend(), "on-demand pool created");
    }
    Ok(gw)
}
