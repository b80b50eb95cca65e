//! `GET /cdp.js`: serves the browser tracker embedded at build time (see `build.rs`), or a JSON
//! 404 when the tracker was not built before the server.

use crate::reply::{AppError, Refusal};
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The tracker script, empty when `tracker/dist/cdp.js` did not exist at build time.
pub const SCRIPT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cdp.js"));

/// The handler.
pub async fn script() -> Response {
    if SCRIPT.is_empty() {
        return AppError::from(Refusal::NotFound(
            "cdp.js (build the tracker with `npm run build` in tracker/, then rebuild cdp)".into(),
        ))
        .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        SCRIPT,
    )
        .into_response()
}
