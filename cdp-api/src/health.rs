//! `GET /health`: whether the collector can store events right now, and when one was last
//! stored. One bounded query answers both: the latest stored processing time, which also
//! survives restarts, merged with what this process committed itself. It also shows how full
//! the profile cache is and how often it is hit, since its bound is what keeps memory flat.

use crate::profile_cache::CacheReport;
use crate::server::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cdp_adapters::EventSink;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest a health check waits for the store.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The health answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Health {
    /// `ok`, or `degraded` when the store is unreachable.
    #[cfg_attr(test, ts(type = "'ok' | 'degraded'"))]
    pub status: String,
    /// `ok` or `unreachable`.
    #[cfg_attr(test, ts(type = "'ok' | 'unreachable'"))]
    pub store: String,
    /// Backend name: `sqlite`, `postgres` or `supabase`.
    pub backend: String,
    /// When an event was last stored (RFC 3339), `null` before the first. Read from the
    /// store, so it survives restarts; while the store is unreachable, the last commit of
    /// this process.
    pub last_event_at: Option<String>,
    /// The writers' profile cache: entries, estimated bytes against the bound, hit rate.
    pub profile_cache: CacheReport,
    /// Events dropped since start-up because they carry an erased person's identifier
    /// (`null` when erasing is off: no `--tombstone-key`).
    pub suppressed_events: Option<u64>,
}

/// The handler: 200 when the store answers, 503 otherwise.
pub async fn health(State(app): State<AppState>) -> Response {
    let stored = tokio::time::timeout(
        PING_TIMEOUT,
        app.store.last_processed_at(app.cfg.brand_id()),
    )
    .await;
    let (reachable, stored) = match stored {
        Ok(Ok(at)) => (true, at),
        _ => (false, None),
    };
    let body = Health {
        status: if reachable { "ok" } else { "degraded" }.to_owned(),
        store: if reachable { "ok" } else { "unreachable" }.to_owned(),
        backend: app.store.backend().to_owned(),
        last_event_at: stored
            .max(app.writers.last_event_at())
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        profile_cache: app.writers.cache_report(),
        suppressed_events: app.suppression.as_ref().map(|s| s.suppressed()),
    };
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
