//! The JSON the collector answers with, and the one place HTTP errors become responses: every
//! 4xx and 5xx body names each problem as `{"field", "rule"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cdp_core::Violation;
use serde::{Deserialize, Serialize};

/// Seconds a client is asked to wait when the store is down.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// One problem, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Dotted path of the field, or `body`, `content-type`, `origin`, `store`.
    pub field: String,
    /// The rule it breaks.
    pub rule: String,
}

impl Problem {
    /// A problem from its parts.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl From<Violation> for Problem {
    fn from(v: Violation) -> Self {
        Problem::new(v.field, v.rule)
    }
}

/// What happened to one event of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored durably and applied to the profile.
    Accepted,
    /// Already stored earlier; nothing changed.
    Duplicate,
    /// Broke the contract; nothing stored.
    Rejected,
}

/// The answer for one event, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventReply {
    /// The event id (the client's, or the one derived from content), when known.
    pub event_id: Option<String>,
    /// Outcome.
    pub status: Status,
    /// Why it was rejected; empty otherwise.
    pub problems: Vec<Problem>,
}

/// The body of a `/collect` answer that looked at the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectReply {
    /// Events stored now.
    pub accepted: usize,
    /// Events stored before.
    pub duplicate: usize,
    /// Events refused.
    pub rejected: usize,
    /// One entry per event, in request order.
    pub events: Vec<EventReply>,
}

impl CollectReply {
    /// Counts the statuses.
    pub fn new(events: Vec<EventReply>) -> Self {
        let count = |s: Status| events.iter().filter(|e| e.status == s).count();
        Self {
            accepted: count(Status::Accepted),
            duplicate: count(Status::Duplicate),
            rejected: count(Status::Rejected),
            events,
        }
    }
}

impl IntoResponse for CollectReply {
    fn into_response(self) -> Response {
        // 200 as soon as one event is durable: the client must not resend the good ones.
        let status = if self.accepted + self.duplicate > 0 {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        (status, Json(self)).into_response()
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code.
    pub error: String,
    /// Every problem.
    pub problems: Vec<Problem>,
}

/// Why a request failed as a whole. Mapped to a response here and only here.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body could not be split into events.
    #[error("malformed body")]
    MalformedBody(Vec<Problem>),
    /// The content type is not one the collector reads.
    #[error("unsupported content type")]
    UnsupportedMediaType(String),
    /// The body is larger than the cap.
    #[error("body too large")]
    TooLarge(usize),
    /// The browser origin is not on the allowlist.
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// The store cannot take writes now; the client should retry.
    #[error("store unavailable")]
    StoreUnavailable,
    /// Something broke on our side.
    #[error("internal error")]
    Internal,
    /// No such route or resource.
    #[error("not found")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
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
fn status_body(status: StatusCode, state: &str, reason: Option<String>) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("status".into(), state.into());
    if let Some(reason) = reason {
        body.insert("reason".into(), reason.into());
    }
    (status, Json(serde_json::Value::Object(body))).into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, error, problems) = match self {
            AppError::BadParameter(problem) => {
                (StatusCode::BAD_REQUEST, "bad_request", vec![problem])
            }
            AppError::Offline(reason) => {
                let mut response =
                    status_body(StatusCode::SERVICE_UNAVAILABLE, "offline", Some(reason));
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
                return response;
            }
            AppError::QueryFailed(reason) => {
                return status_body(StatusCode::INTERNAL_SERVER_ERROR, "error", Some(reason));
            }
            AppError::Unsupported(reason) => {
                return status_body(StatusCode::NOT_IMPLEMENTED, "unsupported", Some(reason));
            }
            AppError::ProfileNotFound => {
                return status_body(StatusCode::NOT_FOUND, "not_found", None);
            }
            AppError::Unauthorized => {
                let message = "sign in at /admin/login or send Authorization: Bearer <admin token>";
                let body = serde_json::json!({
                    "error": "unauthorized",
                    "message": message,
                    "problems": [Problem::new("authorization", message)],
                });
                return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
            }
            AppError::Forbidden(message) => {
                let body = serde_json::json!({
                    "error": "forbidden",
                    "message": message,
                    "problems": [Problem::new("client", message.as_str())],
                });
                return (StatusCode::FORBIDDEN, Json(body)).into_response();
            }
            AppError::MalformedBody(problems) => (StatusCode::BAD_REQUEST, "malformed_body", problems),
            AppError::UnsupportedMediaType(got) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                vec![Problem::new(
                    "content-type",
                    format!("must be application/json or text/plain, got `{got}`"),
                )],
            ),
            AppError::TooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                vec![Problem::new("body", format!("at most {max} bytes"))],
            ),
            AppError::OriginNotAllowed => (
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                vec![Problem::new("origin", "not in the allowed origins")],
            ),
            AppError::StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                vec![Problem::new(
                    "store",
                    format!("unavailable, nothing was stored; retry after {RETRY_AFTER_SECONDS} seconds"),
                )],
            ),
            AppError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                vec![Problem::new("server", "internal error, nothing was stored; retry later")],
            ),
            AppError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                vec![Problem::new("method", "not allowed on this route")],
            ),
            AppError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not_found",
                vec![Problem::new("path", format!("{what} not found"))],
            ),
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: error.to_owned(),
                problems,
            }),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}
