//! Bearer tokens: the [`Admin`] and [`Monitor`] extractors.
//!
//! # Implementation notes
//! A presented token is compared with every configured token in constant
//! time (`subtle`), and the loop does not stop at a match, so the time taken
//! says nothing about which token matched or how much of one did. The caller
//! is identified by the index of its token: sessions remember it, so a
//! session is usable only with the token that created it; the token itself
//! is never stored with a session nor logged.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Who called: the index of the token presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller(pub(crate) usize);

/// Extracts an authenticated caller; rejects with 401 otherwise. Used by the
/// admin endpoints and sessions.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Caller);

/// Lets a monitoring request through: without a check unless
/// [`Settings::monitoring_requires_token`](crate::Settings) is set, then
/// like [`Admin`].
#[derive(Debug, Clone, Copy)]
pub struct Monitor;

fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let tokens = &state.inner.tokens;
    if tokens.is_empty() {
        return Err(ApiError::unauthorized(
            "unauthorized",
            "this endpoint needs a bearer token, and the server has none configured",
        ));
    }
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized(
            "unauthorized",
            "missing `Authorization: Bearer <token>` header",
        )
    })?;
    let presented = header
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
        })?;
    let mut found = None;
    for (i, token) in tokens.iter().enumerate() {
        let equal: bool = presented.as_bytes().ct_eq(token.as_bytes()).into();
        if equal && found.is_none() {
            found = Some(i);
        }
    }
    found
        .map(Caller)
        .ok_or_else(|| ApiError::unauthorized("unauthorized", "the bearer token is not valid"))
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).map(Admin)
    }
}

impl FromRequestParts<AppState> for Monitor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.inner.settings.monitoring_requires_token {
            authenticate(parts, state)?;
        }
        Ok(Monitor)
    }
}
