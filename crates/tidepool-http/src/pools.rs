//! The pools resource: statistics, health, aggregates and advice (read), and
//! evict, resize, pause and resume (admin, logged with the tenant's name;
//! resize bounded by `resize_ceiling`). Every caller sees the configured
//! pools; an on-demand pool only its owner and admins.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use tidepool::{Advice, AggregateStats, Health, HealthStatus, PoolHandle, Stats};

use crate::ApiJson;
use crate::auth::{Admin, Monitor};
use crate::error::ApiError;
use crate::snapshot::{self, PoolSnapshot};
use crate::state::AppState;
use crate::tenants::Caller;

/// The pool `name` if `caller` may see it (another tenant's on-demand pool
/// is as good as absent).
fn pool(
    state: &AppState,
    caller: Option<Caller>,
    name: &str,
) -> Result<Arc<dyn PoolHandle>, ApiError> {
    state
        .registry()
        .handle(name)
        .filter(|_| state.visible(caller, name))
        .ok_or_else(|| ApiError::unknown_pool(name))
}

/// One pool as listed: its statistics, health and whether it can be queried.
#[derive(Debug, Serialize)]
pub(crate) struct PoolView {
    #[serde(flatten)]
    stats: Stats,
    status: HealthStatus,
    backend: Option<&'static str>,
}

impl From<PoolSnapshot> for PoolView {
    fn from(s: PoolSnapshot) -> Self {
        Self {
            status: s.health.status,
            backend: s.backend,
            stats: s.stats,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct PoolList {
    count: usize,
    pools: Vec<PoolView>,
}

/// `GET /api/v1/pools`
pub(crate) async fn list(
    State(state): State<AppState>,
    Monitor(caller): Monitor,
) -> Json<PoolList> {
    let pools: Vec<PoolView> = snapshot::visible(&state, caller)
        .into_iter()
        .map(PoolView::from)
        .collect();
    Json(PoolList {
        count: pools.len(),
        pools,
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct PoolDetail {
    #[serde(flatten)]
    view: PoolView,
    health: Health,
}

/// `GET /api/v1/pools/{name}`
pub(crate) async fn one(
    State(state): State<AppState>,
    Monitor(caller): Monitor,
    Path(name): Path<String>,
) -> Result<Json<PoolDetail>, ApiError> {
    let h = pool(&state, caller, &name)?;
    let snap = PoolSnapshot::of(&state, h.as_ref());
    Ok(Json(PoolDetail {
        health: snap.health.clone(),
        view: snap.into(),
    }))
}

#[derive(Debug, Serialize)]
pub(crate) struct PoolHealth {
    name: String,
    #[serde(flatten)]
    health: Health,
}

#[derive(Debug, Serialize)]
pub(crate) struct HealthReport {
    status: HealthStatus,
    pools: Vec<PoolHealth>,
}

/// `GET /api/v1/pools/health`
pub(crate) async fn health(
    State(state): State<AppState>,
    Monitor(caller): Monitor,
) -> Json<HealthReport> {
    let pools: Vec<PoolHealth> = snapshot::visible(&state, caller)
        .into_iter()
        .map(|s| PoolHealth {
            name: s.stats.name,
            health: s.health,
        })
        .collect();
    let status = pools
        .iter()
        .map(|p| p.health.status)
        .max()
        .unwrap_or(HealthStatus::Healthy);
    Json(HealthReport { status, pools })
}

/// `GET /api/v1/pools/metrics`
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Monitor(caller): Monitor,
) -> Json<AggregateStats> {
    Json(AggregateStats::sum(
        snapshot::visible(&state, caller)
            .into_iter()
            .map(|s| s.stats),
    ))
}

#[derive(Debug, Serialize)]
pub(crate) struct AdviceView {
    pool: String,
    #[serde(flatten)]
    advice: Advice,
}

/// `GET /api/v1/pools/{name}/advice`
pub(crate) async fn advice(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<Json<AdviceView>, ApiError> {
    let h = pool(&state, Some(caller), &name)?;
    Ok(Json(AdviceView {
        pool: name,
        advice: PoolSnapshot::of(&state, h.as_ref()).advice(),
    }))
}

#[derive(Debug, Serialize)]
pub(crate) struct Done {
    pool: String,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_size: Option<usize>,
}

fn act(
    state: &AppState,
    caller: Caller,
    name: String,
    action: &'static str,
    f: impl FnOnce(&dyn PoolHandle),
) -> Result<Json<Done>, ApiError> {
    let h = pool(state, Some(caller), &name)?;
    f(h.as_ref());
    tracing::info!(tenant = %state.tenant(caller).name, pool = %name, action, "admin action");
    Ok(Json(Done {
        pool: name,
        action,
        max_size: None,
    }))
}

/// `POST /api/v1/pools/{name}/evict`
pub(crate) async fn evict(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<Json<Done>, ApiError> {
    act(&state, caller, name, "evicted", |h| h.evict())
}

/// `POST /api/v1/pools/{name}/pause`
pub(crate) async fn pause(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<Json<Done>, ApiError> {
    act(&state, caller, name, "paused", |h| h.pause())
}

/// `POST /api/v1/pools/{name}/resume`
pub(crate) async fn resume(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<Json<Done>, ApiError> {
    act(&state, caller, name, "resumed", |h| h.resume())
}

#[derive(Debug, Serialize)]
pub(crate) struct EvictedAll {
    evicted: Vec<String>,
}

/// `POST /api/v1/pools/evict-all`
pub(crate) async fn evict_all(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Json<EvictedAll> {
    let mut evicted = Vec::new();
    for h in state.registry().handles() {
        h.evict();
        evicted.push(h.name().to_owned());
    }
    tracing::info!(
        tenant = %state.tenant(caller).name,
        pools = evicted.len(),
        action = "evicted all",
        "admin action"
    );
    Json(EvictedAll { evicted })
}

/// `POST /api/v1/pools/{name}/resize` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Resize {
    max_size: usize,
}

/// `POST /api/v1/pools/{name}/resize`
pub(crate) async fn resize(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Resize>,
) -> Result<Json<Done>, ApiError> {
    let h = pool(&state, Some(caller), &name)?;
    let ceiling = state.settings().resize_ceiling;
    if body.max_size > ceiling {
        return Err(ApiError::bad_request(format!(
            "max_size {} is above this server's resize ceiling of {ceiling}",
            body.max_size
        )));
    }
    h.resize(body.max_size)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::info!(
        tenant = %state.tenant(caller).name,
        pool = %name,
        action = "resize",
        max_size = body.max_size,
        "admin action"
    );
    Ok(Json(Done {
        pool: name,
        action: "resized",
        max_size: Some(body.max_size),
    }))
}
