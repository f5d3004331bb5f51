//! The health resource: `GET /health` (liveness) and `GET /health/db`
//! (every pool gets and validates a connection; 503 naming the failing ones).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::auth::Monitor;
use crate::state::AppState;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DbHealth {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    failing: Vec<String>,
    pools: BTreeMap<String, PoolCheck>,
}

/// `GET /health/db`
pub(crate) async fn db(State(state): State<AppState>, _: Monitor) -> (StatusCode, Json<DbHealth>) {
    let within = state.settings().health_check_timeout;
    let mut checks = JoinSet::new();
    for h in state.registry().handles() {
        checks.spawn(async move {
            let result = h.check(within).await;
            (h.name().to_owned(), result)
        });
    }
    let mut pools = BTreeMap::new();
    let mut failing = Vec::new();
    while let Some(joined) = checks.join_next().await {
        let Ok((name, result)) = joined else {
            continue;
        };
        let check = match result {
            Ok(()) => PoolCheck {
                ok: true,
                error: None,
            },
            Err(e) => {
                let e = state.redactor().clean(&e);
                tracing::warn!(pool = %name, error = %e, "database health check failed");
                failing.push(name.clone());
                PoolCheck {
                    ok: false,
                    error: Some(e),
                }
            }
        };
        pools.insert(name, check);
    }
    failing.sort();
    if failing.is_empty() {
        let report = DbHealth {
            status: "ok",
            error: None,
            detail: None,
            failing,
            pools,
        };
        (StatusCode::OK, Json(report))
    } else {
        let report = DbHealth {
            status: "failing",
            error: Some("database_unavailable"),
            detail: Some(format!("failing pools: {}", failing.join(", "))),
            failing,
            pools,
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(report))
    }
}
