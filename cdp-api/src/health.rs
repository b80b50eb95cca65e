//! `GET /health`: whether the collector can store events right now, and when it last did.
//! The store is pinged on every call (bounded by a timeout), so the answer is never stale.

use crate::server::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest a health check waits for the store.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The health answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, or `degraded` when the store is unreachable.
    pub status: String,
    /// `ok` or `unreachable`.
    pub store: String,
    /// Backend name: `sqlite`, `postgres` or `supabase`.
    pub backend: String,
    /// When this process last committed an event (RFC 3339), `null` before the first.
    pub last_event_at: Option<String>,
}

/// The handler: 200 when the store answers, 503 otherwise.
pub async fn health(State(app): State<AppState>) -> Response {
    let reachable = matches!(
        tokio::time::timeout(PING_TIMEOUT, app.store.ping()).await,
        Ok(Ok(()))
    );
    let body = Health {
        status: if reachable { "ok" } else { "degraded" }.to_owned(),
        store: if reachable { "ok" } else { "unreachable" }.to_owned(),
        backend: app.store.backend().to_owned(),
        last_event_at: app
            .writers
            .last_event_at()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    };
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
