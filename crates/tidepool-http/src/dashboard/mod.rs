//! The live dashboard (feature `dashboard`): a page at `/` that shows every
//! pool at work, fed by one server-sent-event stream
//! (`GET /api/v1/stream`, see [`stream`](self::stream)).
//!
//! The page, its script and style, and the charting library (uPlot,
//! vendored from its npm package with its licence, see
//! `assets/vendor/uplot/README.md`) are compiled into the binary: no build
//! step, nothing fetched at run time. The page keeps a bearer token, when
//! one is entered, in the browser's `sessionStorage` only, and sends it as
//! an `Authorization` header — with `fetch`, which unlike `EventSource` can
//! send headers — never in a URL.

mod frames;
pub(crate) mod stream;

use axum::extract::Path;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub(crate) use stream::Streams;

/// What the page may load and where it may connect: only this server.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../../assets/dashboard/index.html");

/// The embedded files under `/dashboard/`: name, content type, bytes.
const ASSETS: [(&str, &str, &[u8]); 5] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/dashboard/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/dashboard/app.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/uplot/uPlot.min.css"),
    ),
    (
        "uPlot-LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../assets/vendor/uplot/LICENSE"),
    ),
];

fn with_headers(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

/// `GET /`
pub(crate) async fn page() -> Response {
    with_headers("text/html; charset=utf-8", INDEX)
}

/// `GET /dashboard/{asset}`
pub(crate) async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, content_type, bytes)| with_headers(content_type, *bytes))
        .ok_or_else(|| ApiError::not_found(format!("no dashboard file named `{name}`")))
}
