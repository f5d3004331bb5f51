#![doc = include_str!("../README.md")]
// Built without a gateway backend (monitoring and admin only), the gateway
// and description code is there but never reached.
#![cfg_attr(
    not(any(feature = "postgres", feature = "sqlite")),
    allow(dead_code, unused_variables, unreachable_code)
)]
#![recursion_limit = "256"]
//!
//! # Modules at a glance
//! - [`router`] and [`AppState`]: the axum router over an injected state.
//! - [`ApiError`] and [`Redactor`]: the one error type, and secret masking.
//! - [`Tenant`], [`Role`] and [`Quotas`]: who may call, what it may do, how
//!   much.
//! - [`gateway`]: the backend-agnostic query [`Gateway`], for SQLite and
//!   PostgreSQL; each request a unit on its connection, in a
//!   [`GatewayMode`].
//! - [`descriptions`]: sessions on a client's own connection, held to an
//!   allow-list.
//! - [`sessions`]: the session handlers and the [`SessionStore`] interface.
//! - [`routes::ROUTES`] and [`openapi::document`]: every endpoint, and the
//!   OpenAPI document generated from the same table.
//! - [`metrics::render`]: the Prometheus exposition.
//! - With the `dashboard` feature: the live dashboard at `/`, its embedded
//!   assets under `/dashboard/`, and its server-sent-event stream
//!   `/api/v1/stream`, all reading the same pool snapshots as the JSON API
//!   and Prometheus.

mod auth;
mod config;
#[cfg(feature = "dashboard")]
mod dashboard;
pub mod descriptions;
mod error;
pub mod gateway;
mod health;
pub mod metrics;
pub mod openapi;
mod pools;
pub mod routes;
pub mod sessions;
mod snapshot;
mod state;
mod tenants;

use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use auth::{Admin, Authed, Monitor, SessionUser};
pub use descriptions::{AllowEntry, Descriptions};
pub use error::{ApiError, MASK, Redactor, mask_url_passwords, url_password};
pub use gateway::{
    Gateway, GatewayError, GatewayMode, QueryLimits, QueryOutput, Statement, TableInfo,
    TransactionError, Truncation,
};
pub use sessions::{MemoryStore, SessionRecord, SessionStats, SessionStore, StoreError};
pub use state::{AppState, AppStateBuilder, Settings};
pub use tenants::{Caller, Quotas, Role, Tenant};

/// The router: every endpoint of [`routes::ROUTES`] over `state`, with the
/// body limit and request timeout of its [`Settings`], and JSON
/// `{error, detail}` bodies on every error (including the limit's 413, the
/// timeout's 408, 404 and 405).
///
/// Mount it in any axum app: `app.merge(tidepool_http::router(state))`.
pub fn router(state: AppState) -> Router {
    let settings = state.settings().clone();
    let mut router = Router::new();
    for r in routes::ROUTES {
        router = router.route(r.path, (r.handler)());
    }
    router
        .fallback(no_route)
        .layer(axum::extract::DefaultBodyLimit::max(
            settings.max_body_bytes,
        ))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such route; see /api/v1/openapi.json",
    )
}

/// Gives every error response without a JSON body (from tower-http layers
/// or axum's method routing) the `{error, detail}` body.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v == HeaderValue::from_static("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let mut fixed = error::for_status(status).into_response();
        if let Some(allow) = response.headers().get(axum::http::header::ALLOW) {
            fixed
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow.clone());
        }
        return fixed;
    }
    response
}

/// `Json<T>` whose rejections are [`ApiError`]s (400 malformed, 413 too
/// large, 415 wrong content type, 422 wrong types), redacted.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::from_json_rejection(&rejection, state.redactor())),
        }
    }
}
