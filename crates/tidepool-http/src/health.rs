//! The health resource: `GET /health` (liveness) and `GET /health/db`
//! (every configured pool gets and validates a connection, at most once per
//! `health_cache`; 503 naming the failing ones, 200 `degraded` naming the
//! busy ones).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tidepool::CheckError;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::auth::Monitor;
use crate::state::AppState;
use crate::tenants::Role;

#[derive(Debug, Serialize)]
pub(crate) struct Live {
    status: &'static str,
    version: &'static str,
}

/// `GET /health`: the process is up. Never needs a token.
pub(crate) async fn live() -> Json<Live> {
    Json(Live {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct PoolCheck {
    ok: bool,
    /// `ok`, `busy` (no connection came free in time: every one in use, or
    /// the pool paused — not down) or `down` (the database failed).
    state: &'static str,
    /// Why a busy pool is busy (the pool's own words, no driver text).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Why a pool is down (the driver's text, for admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DbHealth {
    /// `ok`, `degraded` (some pools busy, none down: 200) or `failing`
    /// (some pool down: 503).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    failing: Vec<String>,
    busy: Vec<String>,
    pools: BTreeMap<String, PoolCheck>,
    /// How old the checks are, in milliseconds.
    age_ms: u64,
}

/// The last checks of the configured pools and when they were made; one
/// check at a time (callers meanwhile wait for its result).
#[derive(Debug, Default)]
pub(crate) struct Cache {
    last: tokio::sync::Mutex<Option<(Instant, Arc<Checked>)>>,
}

/// Each configured pool's check; a down pool's message is redacted.
type Checked = BTreeMap<String, Result<(), CheckError>>;

impl Cache {
    /// The checks, made now if the last ones are older than `max_age`.
    async fn get(&self, state: &AppState) -> (Arc<Checked>, Duration) {
        let mut last = self.last.lock().await;
        if let Some((at, checked)) = last.as_ref()
            && at.elapsed() < state.settings().health_cache
        {
            return (Arc::clone(checked), at.elapsed());
        }
        let checked = Arc::new(check_configured(state).await);
        *last = Some((Instant::now(), Arc::clone(&checked)));
        (checked, Duration::ZERO)
    }
}

/// Gets and validates a connection of every configured pool (on-demand
/// pools are tenants' own: nobody else's request opens connections there).
async fn check_configured(state: &AppState) -> Checked {
    let within = state.settings().health_check_timeout;
    let mut checks = JoinSet::new();
    for h in state.registry().handles() {
        if state.owner_of(h.name()).is_some() {
            continue;
        }
        checks.spawn(async move {
            let result = h.check(within).await;
            (h.name().to_owned(), result)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = checks.join_next().await {
        let Ok((name, result)) = joined else {
            continue;
        };
        let result = result.map_err(|e| {
            if e.is_busy() {
                tracing::debug!(pool = %name, reason = %e, "database health check: the pool is busy, not down");
                e
            } else {
                let text = state.redactor().clean(e.message());
                tracing::warn!(pool = %name, error = %text, "database health check failed");
                CheckError::Down(text)
            }
        });
        out.insert(name, result);
    }
    out
}

/// `GET /health/db`: the configured pools' checks, at most one round every
/// `health_cache`. A pool whose connections are all in use is busy, not
/// down: 200 `degraded`; 503 only when a database fails. The database's
/// error texts (which name hosts, roles and databases) are shown to admins
/// only.
pub(crate) async fn db(
    State(state): State<AppState>,
    Monitor(caller): Monitor,
) -> (StatusCode, Json<DbHealth>) {
    let (checked, age) = state.inner.health.get(&state).await;
    let admin = caller.is_some_and(|c| state.tenant(c).role == Role::Admin);
    let mut pools = BTreeMap::new();
    let mut failing = Vec::new();
    let mut busy = Vec::new();
    for (name, result) in checked.iter() {
        let check = match result {
            Ok(()) => PoolCheck {
                ok: true,
                state: "ok",
                reason: None,
                error: None,
            },
            Err(e) if e.is_busy() => {
                busy.push(name.clone());
                PoolCheck {
                    ok: false,
                    state: "busy",
                    reason: Some(e.message().to_owned()),
                    error: None,
                }
            }
            Err(e) => {
                failing.push(name.clone());
                PoolCheck {
                    ok: false,
                    state: "down",
                    reason: None,
                    error: Some(if admin {
                        e.message().to_owned()
                    } else {
                        "unavailable".to_owned()
                    }),
                }
            }
        };
        pools.insert(name.clone(), check);
    }
    let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
    let (code, status, error, detail) = if !failing.is_empty() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "failing",
            Some("database_unavailable"),
            Some(format!("failing pools: {}", failing.join(", "))),
        )
    } else if !busy.is_empty() {
        (
            StatusCode::OK,
            "degraded",
            None,
            Some(format!(
                "busy pools (every connection in use, or paused; not down): {}",
                busy.join(", ")
            )),
        )
    } else {
        (StatusCode::OK, "ok", None, None)
    };
    let report = DbHealth {
        status,
        error,
        detail,
        failing,
        busy,
        pools,
        age_ms,
    };
    (code, Json(report))
}
