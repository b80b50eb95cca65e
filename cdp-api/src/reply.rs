//! The JSON the collector answers with, and the one place HTTP errors become responses: every
//! 4xx and 5xx body names each problem as `{"field", "rule"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cdp_answers::api::Failure;
pub use cdp_core::intake::{
    CollectReply, ErrorBody, EventReply, Problem, Refusal, Status, RETRY_AFTER_SECONDS,
};

/// A `/collect` answer as an HTTP response: 200 once one event is durable, 400 when every event
/// was refused (the shapes and the rule are `cdp_core::intake`, shared with the Worker).
#[derive(Debug, Clone, PartialEq)]
pub struct Collected(pub CollectReply);

impl From<CollectReply> for Collected {
    fn from(reply: CollectReply) -> Self {
        Collected(reply)
    }
}

impl IntoResponse for Collected {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(self.0)).into_response()
    }
}

/// Why a request failed as a whole. Mapped to a response here and only here.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The collector refused the request as a whole (shared with the Worker).
    #[error("{0}")]
    Refused(Refusal),
    /// A query parameter is invalid; names the parameter and the rule.
    #[error("bad parameter")]
    BadParameter(Problem),
    /// The store cannot be reached: the dashboard shows "offline", never stale figures.
    #[error("store offline")]
    Offline(String),
    /// The store answered a dashboard query with an error.
    #[error("store query failed")]
    QueryFailed(String),
    /// The backend does not run dashboard queries.
    #[error("not supported")]
    Unsupported(String),
    /// No live profile for this visitor.
    #[error("profile not found")]
    ProfileNotFound,
    /// An admin merge that a guard refused: the edge is kept in the log as refused, with
    /// this reason, and counted.
    #[error("merge refused")]
    MergeRefused(String),
    /// An erasure asked of a collector without a tombstone key.
    #[error("erasing is not configured")]
    EraseUnconfigured,
    /// An admin route without a valid token or session.
    #[error("unauthorized")]
    Unauthorized,
    /// An admin route from a client that may not use it (no token configured and the client
    /// is not on this machine).
    #[error("forbidden")]
    Forbidden(String),
}

impl From<cdp_adapters::analytics::AnalyticsError> for AppError {
    fn from(e: cdp_adapters::analytics::AnalyticsError) -> Self {
        use cdp_adapters::analytics::AnalyticsError as E;
        match e {
            E::Store(s) if s.is_unavailable() => AppError::Offline(s.to_string()),
            E::Store(s) => AppError::QueryFailed(s.to_string()),
            E::Unsupported { .. } => AppError::Unsupported(e.to_string()),
        }
    }
}

/// The dashboard's status bodies (`{"status": ..., "reason": ...}`), which the dashboard tells
/// apart from figures by `status`.
/// A dashboard API failure as a response (its status and body are `cdp_answers::api`'s,
/// shared with the Worker).
fn failure(f: Failure) -> Response {
    let status = StatusCode::from_u16(f.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(f.body())).into_response();
    if let Some(seconds) = f.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::BadParameter(problem) => failure(Failure::BadParameter(problem)),
            AppError::Offline(reason) => failure(Failure::Offline(reason)),
            AppError::QueryFailed(reason) => failure(Failure::QueryFailed(reason)),
            AppError::Unsupported(reason) => failure(Failure::Unsupported(reason)),
            AppError::ProfileNotFound => failure(Failure::NotFound),
            AppError::Unauthorized => failure(Failure::Unauthorized),
            AppError::MergeRefused(reason) => {
                let rule = format!(
                    "cannot be merged: the identity guards refuse it ({reason}); the refused link \
                     is kept and counted"
                );
                let body = serde_json::json!({
                    "error": "merge_refused",
                    "reason": reason,
                    "problems": [Problem::new("b", rule)],
                });
                (StatusCode::CONFLICT, Json(body)).into_response()
            }
            AppError::EraseUnconfigured => {
                let rule = "must be set (at least 32 bytes) for erasures: an erased identifier \
                            is kept only as a keyed hash, so that its later events are suppressed";
                let body = serde_json::json!({
                    "error": "erase_not_configured",
                    "problems": [Problem::new("--tombstone-key / CDP_TOMBSTONE_KEY", rule)],
                });
                (StatusCode::CONFLICT, Json(body)).into_response()
            }
            AppError::Forbidden(message) => {
                let body = serde_json::json!({
                    "error": "forbidden",
                    "message": message,
                    "problems": [Problem::new("client", message.as_str())],
                });
                (StatusCode::FORBIDDEN, Json(body)).into_response()
            }
            AppError::Refused(refusal) => {
                let status = StatusCode::from_u16(refusal.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut response = (status, Json(refusal.body())).into_response();
                if let Some(seconds) = refusal.retry_after_seconds() {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
        }
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        AppError::Refused(r)
    }
}
