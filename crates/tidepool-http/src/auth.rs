//! Bearer tokens and roles: the extractors every handler takes.
//!
//! # Implementation notes
//! A presented token is compared with every configured token in constant
//! time (`subtle`), and the loop does not stop at a match, so the time taken
//! says nothing about which token matched or how much of one did (see
//! the `tenants` module). The caller is its tenant; sessions and
//! on-demand pools remember the tenant's name, never the token, and nothing
//! logs a token. Each authenticated request counts against its tenant's rate
//! limit before the handler runs; a request over it answers 429 with
//! `Retry-After`.
//!
//! | extractor | who passes |
//! |---|---|
//! | [`Admin`] | tenants with [`Role::Admin`] |
//! | [`SessionUser`] | [`Role::Admin`] and [`Role::Query`] |
//! | [`Authed`] | any tenant |
//! | [`Monitor`] | anyone unless `monitoring_requires_token`; a token, when sent, must be valid |

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;
use crate::tenants::{Caller, Role};

/// An authenticated tenant with [`Role::Admin`]; 401 without a valid
/// token, 403 for another role.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Caller);

/// An authenticated tenant that may use sessions ([`Role::Admin`] or
/// [`Role::Query`]); 403 for a monitor.
#[derive(Debug, Clone, Copy)]
pub struct SessionUser(pub Caller);

/// Any authenticated tenant.
#[derive(Debug, Clone, Copy)]
pub struct Authed(pub Caller);

/// A monitoring request: anonymous (`None`) unless
/// [`Settings::monitoring_requires_token`](crate::Settings) is set or a
/// token is sent, which must then be valid.
#[derive(Debug, Clone, Copy)]
pub struct Monitor(pub Option<Caller>);

fn presented(parts: &Parts) -> Option<Result<&str, ApiError>> {
    let header = parts.headers.get(AUTHORIZATION)?;
    Some(
        header
            .to_str()
            .ok()
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "unauthorized",
                    "the Authorization header must read `Bearer <token>`",
                )
            }),
    )
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let tenants = &state.inner.tenants;
    if tenants.is_empty() {
        return Err(ApiError::unauthorized(
            "unauthorized",
            "this endpoint needs a bearer token, and the server has none configured",
        ));
    }
    let token = presented(parts).ok_or_else(|| {
        ApiError::unauthorized(
            "unauthorized",
            "missing `Authorization: Bearer <token>` header",
        )
    })??;
    let caller = tenants
        .find(token)
        .ok_or_else(|| ApiError::unauthorized("unauthorized", "the bearer token is not valid"))?;
    tenants.get(caller).admit()?;
    Ok(caller)
}

fn with_role(
    parts: &Parts,
    state: &AppState,
    allowed: &[Role],
    what: &str,
) -> Result<Caller, ApiError> {
    let caller = authenticate(parts, state)?;
    let tenant = &state.inner.tenants.get(caller).tenant;
    if allowed.contains(&tenant.role) {
        Ok(caller)
    } else {
        Err(ApiError::forbidden(format!(
            "tenant `{}` has the {:?} role; {what}",
            tenant.name, tenant.role
        )))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        with_role(parts, state, &[Role::Admin], "this needs the admin role").map(Admin)
    }
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        with_role(
            parts,
            state,
            &[Role::Admin, Role::Query],
            "sessions need the query or admin role",
        )
        .map(SessionUser)
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).map(Authed)
    }
}

impl FromRequestParts<AppState> for Monitor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.inner.settings.monitoring_requires_token || presented(parts).is_some() {
            authenticate(parts, state).map(|c| Monitor(Some(c)))
        } else {
            Ok(Monitor(None))
        }
    }
}
