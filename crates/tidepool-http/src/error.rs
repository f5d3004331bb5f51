//! [`ApiError`]: the one error type of the HTTP layer, and [`Redactor`],
//! which keeps secrets out of every message it lets through.
//!
//! # Implementation notes
//! Every error a client sees is built here, as `{"error": code, "detail":
//! text}`. Texts that come from outside this crate (driver errors, pool
//! errors, serde messages about a request body) pass through
//! [`Redactor::clean`] first: it masks the password of any URL
//! (`scheme://user:pass@host` → `scheme://user:***@host`), any
//! `password=...` pair, and every secret registered with it (admin tokens,
//! passwords of configured and on-demand connections). Internal failures
//! never carry their text to the client: it goes to the log (redacted too).

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to a client as JSON `{"error": ..., "detail": ...}`.
///
/// `error` is a stable, machine-readable code (`not_found`, `bad_request`,
/// `unauthorized`, `sql_error`, ...); `detail` says what was wrong for a
/// person. Neither ever holds a secret: build details from text you own, or
/// pass foreign text through [`Redactor::clean`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    detail: &'a str,
}

impl ApiError {
    /// An error with any status, code and detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Adds a `Retry-After: seconds` header to the answer (for 429 and 503).
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400: the request is wrong (`bad_request`).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 401: missing or wrong credentials, or an unknown session.
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    /// 403: authenticated, but not allowed (`forbidden`).
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404: no such pool or route (`not_found`).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 404 for a pool name.
    pub fn unknown_pool(name: &str) -> Self {
        Self::not_found(format!("no pool named `{name}`"))
    }

    /// 503: the database (or the pool in front of it) cannot serve now.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            detail,
        )
    }

    /// 500 with a generic message; `cause` goes to the log only (redacted
    /// by the caller).
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; see its log",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The error for a JSON body the `Json` extractor refused: 400 for bad
    /// syntax, 413 for an oversize body, 415 for a missing content type, 422
    /// for wrong types or missing fields.
    pub fn from_json_rejection(rejection: &JsonRejection, redactor: &Redactor) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
            _ => "malformed_json",
        };
        Self::new(status, code, redactor.clean(&rejection.body_text()))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code,
            detail: &self.detail,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// The JSON error body for a status that was produced without an
/// [`ApiError`] (a tower-http limit or timeout, a method not allowed).
pub(crate) fn for_status(status: StatusCode) -> ApiError {
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long and was cancelled"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this path does not accept that method; see /api/v1/openapi.json",
        ),
        StatusCode::NOT_FOUND => ("not_found", "no such route; see /api/v1/openapi.json"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send the body as application/json",
        ),
        s if s.is_client_error() => ("bad_request", "the request was refused"),
        _ => (
            "internal",
            "the server failed to handle the request; see its log",
        ),
    };
    ApiError::new(status, code, detail)
}

/// Masks secrets in text: URL passwords, `password=` pairs, and every
/// registered secret. Cheap to clone; clones share the secret list.
///
/// The list holds the operator's secrets only (tokens, configured
/// passwords), registered while the server starts; it is never fed what a
/// tenant sends. A request's own secrets (a description's password) are
/// masked for that request alone with [`clean_with`](Self::clean_with).
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .secrets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Redactor").field("secrets", &n).finish()
    }
}

/// What replaces a secret.
pub const MASK: &str = "***";

impl Redactor {
    /// A redactor that knows no secret yet (it still masks URL passwords).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret to mask wherever it appears. Secrets shorter than
    /// four characters are ignored (masking them would garble text).
    pub fn add(&self, secret: impl Into<String>) {
        let secret = secret.into();
        if secret.chars().count() < 4 {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(PoisonError::into_inner);
        if !secrets.contains(&secret) {
            secrets.push(secret);
            // Longest first, so a secret containing another is masked whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Registers the password of a connection URL, if it has one.
    pub fn add_url_password(&self, url: &str) {
        if let Some(password) = url_password(url) {
            self.add(password);
        }
    }

    /// `text` with every secret masked.
    pub fn clean(&self, text: &str) -> String {
        self.clean_with(text, &[])
    }

    /// `text` with every secret masked, and `request` too: the secrets of
    /// one request (a description's password), which are never kept.
    pub fn clean_with(&self, text: &str, request: &[&str]) -> String {
        let mut out = mask_url_passwords(text);
        out = mask_pairs(&out);
        let mut request: Vec<&str> = request
            .iter()
            .copied()
            .filter(|s| s.chars().count() >= 4)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        request.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in request {
            out = out.replace(s, MASK);
        }
        let secrets = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

/// The end of a URL's authority in `rest` (the text after `://`): where a
/// PostgreSQL URL's parser ends it (`/` or `?`; a `#` belongs to the
/// password), or at whitespace or a quote in running text.
fn authority_end(rest: &str) -> usize {
    rest.find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '"' | '\''))
        .unwrap_or(rest.len())
}

/// The password in `scheme://user:password@host...`, as written (not
/// percent-decoded; callers register what they parsed as well).
pub fn url_password(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..authority_end(rest)];
    let userinfo = &authority[..authority.rfind('@')?];
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// Replaces `user:password@` after every `://` with `user:***@`.
pub fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        // The last `@` in the authority ends the user info.
        let end = authority_end(rest);
        let authority = &rest[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon + 1]);
                out.push_str(MASK);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Masks the value of `password=...` / `password: ...` pairs (libpq
/// connection strings, driver messages).
fn mask_pairs(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(pos) = lower[from..].find("password") {
        let key_end = from + pos + "password".len();
        let after = &text[key_end..];
        let sep = after
            .char_indices()
            .take_while(|(_, c)| matches!(c, ' ' | '=' | ':'))
            .last()
            .map(|(i, c)| i + c.len_utf8());
        from = key_end;
        let Some(sep) = sep.filter(|_| after.starts_with(['=', ':', ' '])) else {
            continue;
        };
        if !after[..sep].contains(['=', ':']) {
            continue;
        }
        let value_start = key_end + sep;
        let value_end = text[value_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | ';' | ',' | '"' | '\''))
            .map_or(text.len(), |e| value_start + e);
        if value_end > value_start {
            out.push_str(&text[last..value_start]);
            out.push_str(MASK);
            last = value_end;
            from = value_end;
        }
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        let r = Redactor::new();
        assert_eq!(
            r.clean("cannot reach postgres://app:hunter2@db:5432/x today"),
            "cannot reach postgres://app:***@db:5432/x today"
        );
        assert_eq!(r.clean("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(r.clean("postgres://u:a@b@h/d"), "postgres://u:***@h/d");
        assert_eq!(url_password("postgres://u:a@b@h/d"), Some("a@b"));
        assert_eq!(url_password("postgres://u@h/d"), None);
        assert_eq!(
            r.clean("postgres://app:p#1@db:5432/x"),
            "postgres://app:***@db:5432/x",
            "a `#` is part of the password, as the PostgreSQL parser reads it"
        );
        assert_eq!(url_password("postgres://app:p#1@db/x"), Some("p#1"));
    }

    #[test]
    fn a_requests_secrets_are_masked_for_that_request_only() {
        let r = Redactor::new();
        assert_eq!(
            r.clean_with("role app-pw-1234 refused", &["app-pw-1234"]),
            "role *** refused"
        );
        assert_eq!(
            r.clean("role app-pw-1234 refused"),
            "role app-pw-1234 refused"
        );
        assert_eq!(format!("{r:?}"), "Redactor { secrets: 0 }");
    }

    #[test]
    fn password_pairs_and_registered_secrets_are_masked() {
        let r = Redactor::new();
        r.add("tok-3141592653");
        let text = r.clean("host=db password=hunter2 user=x; token tok-3141592653 seen");
        assert_eq!(text, "host=db password=*** user=x; token *** seen");
        assert_eq!(
            r.clean("password authentication failed"),
            "password authentication failed"
        );
        r.add("abc");
        assert_eq!(r.clean("abc"), "abc", "short secrets are ignored");
    }

    #[test]
    fn errors_render_as_json() {
        let e = ApiError::unknown_pool("x");
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert_eq!(e.code(), "not_found");
        assert_eq!(e.detail(), "no pool named `x`");
        assert_eq!(for_status(StatusCode::REQUEST_TIMEOUT).code(), "timeout");
    }
}
