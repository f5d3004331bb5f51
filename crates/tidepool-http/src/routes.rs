//! The route table: every endpoint once, with what the OpenAPI document says
//! about it. The router is built from this table and nothing else, so no
//! route can exist without its documentation.

use axum::routing::{MethodRouter, delete, get, post};

use crate::state::AppState;
use crate::{config, health, metrics, openapi, pools, sessions};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Open,
    /// Anyone, unless `monitoring_requires_token` is set.
    Monitor,
    /// A tenant with the admin role.
    Admin,
    /// A tenant with the query or admin role.
    Session,
    /// Any tenant.
    Tenant,
}

/// One endpoint: method, path (axum and OpenAPI share the `{param}` form),
/// access, and its documentation.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `get`, `post` or `delete`.
    pub method: &'static str,
    /// The path, with `{name}` / `{id}` parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line for the OpenAPI summary.
    pub summary: &'static str,
    /// Component schema of the JSON request body, if any.
    pub request: Option<&'static str>,
    /// Success status and component schema of its body (`None`: no body or
    /// not JSON).
    pub success: (u16, Option<&'static str>),
    /// Error statuses it may answer (always with the `Error` schema).
    pub errors: &'static [u16],
    pub(crate) handler: fn() -> MethodRouter<AppState>,
}

const ADMIN_ERRORS: &[u16] = &[401, 403, 404, 429];
const BODY_ERRORS: &[u16] = &[400, 401, 403, 404, 413, 415, 422, 429];
const SESSION_ERRORS: &[u16] = &[400, 401, 403, 408, 413, 415, 422, 429, 503];

/// Every endpoint of the router.
pub const ROUTES: &[Route] = &[
    #[cfg(feature = "dashboard")]
    Route {
        method: "get",
        path: "/",
        access: Access::Open,
        summary: "The live dashboard (HTML): every pool at work, fed by /api/v1/stream",
        request: None,
        success: (200, None),
        errors: &[],
        handler: || get(crate::dashboard::page),
    },
    #[cfg(feature = "dashboard")]
    Route {
        method: "get",
        path: "/dashboard/{asset}",
        access: Access::Open,
        summary: "The dashboard's embedded script, style and charting library",
        request: None,
        success: (200, None),
        errors: &[404],
        handler: || get(crate::dashboard::asset),
    },
    #[cfg(feature = "dashboard")]
    Route {
        method: "get",
        path: "/api/v1/stream",
        access: Access::Monitor,
        summary: "Server-sent events: a `snapshot` of every pool the caller may see per stream_interval (statistics, health, rates over the interval, recent errors; advice for admins; the caller's sessions); a client that falls stream_buffer snapshots behind is dropped",
        request: None,
        success: (200, None),
        errors: &[401, 429, 503],
        handler: || get(crate::dashboard::stream::stream),
    },
    Route {
        method: "get",
        path: "/health",
        access: Access::Open,
        summary: "Liveness: the process is up",
        request: None,
        success: (200, Some("Live")),
        errors: &[],
        handler: || get(health::live),
    },
    Route {
        method: "get",
        path: "/health/db",
        access: Access::Monitor,
        summary: "Database health: every pool gets and validates a connection; 503 names the failing pools, 200 `degraded` the busy ones (busy is not down)",
        request: None,
        success: (200, Some("DbHealth")),
        errors: &[401, 429, 503],
        handler: || get(health::db),
    },
    Route {
        method: "get",
        path: "/metrics",
        access: Access::Monitor,
        summary: "Prometheus / OpenMetrics text exposition with a `pool` label",
        request: None,
        success: (200, None),
        errors: &[401, 429],
        handler: || get(metrics::scrape),
    },
    Route {
        method: "get",
        path: "/api/v1/openapi.json",
        access: Access::Open,
        summary: "This document",
        request: None,
        success: (200, Some("Object")),
        errors: &[],
        handler: || get(openapi::serve),
    },
    Route {
        method: "get",
        path: "/api/v1/pools",
        access: Access::Monitor,
        summary: "Every pool's statistics: gauges, counters, latency percentiles, utilization, hit and reuse ratios",
        request: None,
        success: (200, Some("PoolList")),
        errors: &[401, 429],
        handler: || get(pools::list),
    },
    Route {
        method: "get",
        path: "/api/v1/pools/health",
        access: Access::Monitor,
        summary: "Overall status and each pool's status, reasons and warnings",
        request: None,
        success: (200, Some("HealthReport")),
        errors: &[401, 429],
        handler: || get(pools::health),
    },
    Route {
        method: "get",
        path: "/api/v1/pools/metrics",
        access: Access::Monitor,
        summary: "Aggregates across pools: connections, active, idle, capacity, utilization, created, reused, closed, errors, reuse ratio",
        request: None,
        success: (200, Some("Aggregate")),
        errors: &[401, 429],
        handler: || get(pools::metrics),
    },
    Route {
        method: "post",
        path: "/api/v1/pools/evict-all",
        access: Access::Admin,
        summary: "Evict every pool's connections (maintenance)",
        request: None,
        success: (200, Some("EvictedAll")),
        errors: &[401, 403, 429],
        handler: || post(pools::evict_all),
    },
    Route {
        method: "get",
        path: "/api/v1/pools/{name}",
        access: Access::Monitor,
        summary: "One pool's statistics and health",
        request: None,
        success: (200, Some("PoolDetail")),
        errors: &[401, 404, 429],
        handler: || get(pools::one),
    },
    Route {
        method: "get",
        path: "/api/v1/pools/{name}/advice",
        access: Access::Admin,
        summary: "Recommendations and the Little's-law sizing estimate",
        request: None,
        success: (200, Some("Advice")),
        errors: ADMIN_ERRORS,
        handler: || get(pools::advice),
    },
    Route {
        method: "post",
        path: "/api/v1/pools/{name}/evict",
        access: Access::Admin,
        summary: "Close idle connections now and busy ones on return",
        request: None,
        success: (200, Some("Action")),
        errors: ADMIN_ERRORS,
        handler: || post(pools::evict),
    },
    Route {
        method: "post",
        path: "/api/v1/pools/{name}/resize",
        access: Access::Admin,
        summary: "Change max_size at run time",
        request: Some("Resize"),
        success: (200, Some("Action")),
        errors: BODY_ERRORS,
        handler: || post(pools::resize),
    },
    Route {
        method: "post",
        path: "/api/v1/pools/{name}/pause",
        access: Access::Admin,
        summary: "Pause: gets wait until resumed",
        request: None,
        success: (200, Some("Action")),
        errors: ADMIN_ERRORS,
        handler: || post(pools::pause),
    },
    Route {
        method: "post",
        path: "/api/v1/pools/{name}/resume",
        access: Access::Admin,
        summary: "Resume a paused pool",
        request: None,
        success: (200, Some("Action")),
        errors: ADMIN_ERRORS,
        handler: || post(pools::resume),
    },
    Route {
        method: "get",
        path: "/api/v1/config",
        access: Access::Admin,
        summary: "The effective configuration, every secret redacted",
        request: None,
        success: (200, Some("Object")),
        errors: &[401, 403, 429],
        handler: || get(config::show),
    },
    Route {
        method: "post",
        path: "/api/v1/sessions",
        access: Access::Session,
        summary: "Open a session on a configured pool, or on a connection description (pool made on demand)",
        request: Some("CreateSession"),
        success: (201, Some("SessionCreated")),
        errors: &[400, 401, 403, 404, 413, 415, 422, 429, 503],
        handler: || post(sessions::create),
    },
    Route {
        method: "get",
        path: "/api/v1/sessions/stats",
        access: Access::Tenant,
        summary: "Session counts: the caller's own sessions; an admin's answer counts every tenant's",
        request: None,
        success: (200, Some("SessionStats")),
        errors: &[401, 429],
        handler: || get(sessions::stats),
    },
    Route {
        method: "get",
        path: "/api/v1/sessions/{id}/schema",
        access: Access::Session,
        summary: "Tables and columns, cached per session",
        request: None,
        success: (200, Some("Schema")),
        errors: &[401, 403, 408, 429, 503],
        handler: || get(sessions::schema),
    },
    Route {
        method: "post",
        path: "/api/v1/sessions/{id}/query",
        access: Access::Session,
        summary: "Run one statement with positional parameters in a transaction of its own (committed on a read_write pool, rolled back otherwise), with a row limit and a statement timeout",
        request: Some("QueryRequest"),
        success: (200, Some("QueryResult")),
        errors: SESSION_ERRORS,
        handler: || post(sessions::query),
    },
    Route {
        method: "post",
        path: "/api/v1/sessions/{id}/transaction",
        access: Access::Session,
        summary: "Run several statements with parameters atomically in one transaction: committed as a whole on a read_write pool, rolled back as a whole if any fails",
        request: Some("TransactionRequest"),
        success: (200, Some("TransactionResult")),
        errors: SESSION_ERRORS,
        handler: || post(sessions::transaction),
    },
    Route {
        method: "delete",
        path: "/api/v1/sessions/{id}",
        access: Access::Session,
        summary: "Close a session",
        request: None,
        success: (204, None),
        errors: &[401, 403, 429],
        handler: || delete(sessions::delete),
    },
];
