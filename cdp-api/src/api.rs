//! The dashboard API (`/api/cdp/*`): metrics, the event stream, searches and one visitor's
//! golden profile with its explanation. Each handler is the same three steps: check the query
//! parameters (a bad one is a 400 naming it), ask the store to count, and let [`figures`]
//! turn the counts into the answer. An unreachable store is a 503 with `status: "offline"`,
//! which the dashboard shows as such; no events is a 200 with `status: "empty"`.

use crate::reply::{AppError, Refusal};
use crate::server::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use cdp_adapters::analytics::{Analytics, AnalyticsError, Resolution, StreamQuery};
use cdp_adapters::ProfileStore;
pub use cdp_answers::bodies::{
    events_body, live_profile, metrics_body, profile_body, searches_body, EventsBody, MetricsBody,
    ProfileBody, SearchesBody, StageBody, StreamEvent, WindowBody,
};
use cdp_answers::figures::{self, Range};
use cdp_core::{AnonymousId, Config};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

pub use cdp_answers::api::{shown, DEFAULT_LIMIT, DEFAULT_RANGE, MAX_LIMIT};
/// The longest a dashboard query may take before the store counts as offline.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

type Params = Query<HashMap<String, String>>;

fn range_param(params: &HashMap<String, String>) -> Result<Range, AppError> {
    cdp_answers::api::range_param(params.get("range").map(String::as_str))
        .map_err(AppError::BadParameter)
}

/// Runs a store call under [`QUERY_TIMEOUT`], mapping failures to answers.
pub async fn ask<T, E>(call: impl Future<Output = Result<T, E>>) -> Result<T, AppError>
where
    AnalyticsError: From<E>,
{
    match tokio::time::timeout(QUERY_TIMEOUT, call).await {
        Ok(result) => result.map_err(|e| AppError::from(AnalyticsError::from(e))),
        Err(_) => Err(AppError::Offline(format!(
            "the store did not answer within {} seconds",
            QUERY_TIMEOUT.as_secs()
        ))),
    }
}

/// `GET /api/cdp/metrics?range=`.
pub async fn metrics(
    State(app): State<AppState>,
    Query(params): Params,
) -> Result<Json<MetricsBody>, AppError> {
    let range = range_param(&params)?;
    let now = app.clock.now();
    let w = figures::windows(range, now);
    let resolution = match range.bucket() {
        figures::Bucket::Hour => Resolution::Hour,
        figures::Bucket::Day => Resolution::Day,
    };
    let counts =
        ask(app
            .store
            .metric_counts(app.cfg.brand_id(), w.current, w.previous, resolution))
        .await?;
    Ok(Json(metrics_body(&app.cfg, &w, now, &counts)))
}

/// The stream's filters from the query string, or the first bad one.
pub fn stream_query(
    cfg: &Config,
    params: &HashMap<String, String>,
) -> Result<StreamQuery, AppError> {
    let get = |k: &str| params.get(k).map(String::as_str);
    cdp_answers::api::stream_query(cfg, get("limit"), get("type"), get("persona"))
        .map_err(AppError::BadParameter)
}

/// `GET /api/cdp/events?limit=&type=&persona=`.
pub async fn events(
    State(app): State<AppState>,
    Query(params): Params,
) -> Result<Json<EventsBody>, AppError> {
    let query = stream_query(&app.cfg, &params)?;
    let rows = ask(app.store.recent_events(app.cfg.brand_id(), &query)).await?;
    Ok(Json(events_body(&app.cfg, &rows)))
}

/// `GET /api/cdp/searches?range=`.
pub async fn searches(
    State(app): State<AppState>,
    Query(params): Params,
) -> Result<Json<SearchesBody>, AppError> {
    let range = range_param(&params)?;
    let w = figures::windows(range, app.clock.now());
    let counts = ask(app
        .store
        .search_counts(app.cfg.brand_id(), w.current, w.previous))
    .await?;
    Ok(Json(searches_body(range, &counts)))
}

/// `GET /api/cdp/profiles/{anonymous_id}`. The stored profile can trail the events (profiles
/// are saved behind them), so it is read with the visitor's events processed since it was
/// saved, and shown as [`live_profile`] makes it.
pub async fn profile(
    State(app): State<AppState>,
    Path(anonymous_id): Path<String>,
) -> Result<Json<ProfileBody>, AppError> {
    let now = app.clock.now();
    let id = AnonymousId::new(anonymous_id.as_str());
    let brand = app.cfg.brand_id();
    let load = async {
        let stored = app.store.load_profile(brand, &id, now).await?;
        let after = stored.as_ref().map(|p| p.last_updated);
        let rows = app.store.visitor_events(brand, &id, after).await?;
        Ok::<_, cdp_adapters::StoreError>(live_profile(&app.cfg, stored, &rows))
    };
    match ask(load).await? {
        Some(p) => Ok(Json(
            profile_body(&app.cfg, &p, now).map_err(|_| Refusal::Internal)?,
        )),
        None => Err(AppError::ProfileNotFound),
    }
}

/// `GET /api/cdp/openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
