//! The dashboard API (`/api/cdp/*`): metrics, the event stream, searches and one visitor's
//! golden profile with its explanation. Each handler is the same three steps: check the query
//! parameters (a bad one is a 400 naming it), ask the store to count, and let [`figures`]
//! turn the counts into the answer. An unreachable store is a 503 with `status: "offline"`,
//! which the dashboard shows as such; no events is a 200 with `status: "empty"`.

use crate::figures::{self, iso, Kpis, Range, Windows};
use crate::reply::{AppError, Problem, Refusal};
use crate::server::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use cdp_adapters::analytics::{Analytics, AnalyticsError, Resolution, StreamQuery};
use cdp_adapters::ProfileStore;
use cdp_core::{AnonymousId, Config, EventRow, EventType, Profile};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

/// The default range of metrics and searches.
pub const DEFAULT_RANGE: Range = Range::Week;
/// Events the stream returns when no limit is given.
pub const DEFAULT_LIMIT: usize = 50;
/// The most events the stream returns.
pub const MAX_LIMIT: usize = 100;
/// The longest a dashboard query may take before the store counts as offline.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

type Params = Query<HashMap<String, String>>;

/// `window` in the metrics answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "MetricsWindow"))]
pub struct WindowBody {
    /// Start of the current window.
    pub start: String,
    /// End of the current window (now).
    pub end: String,
    /// Start of the previous window (which ends at `start`).
    pub previous_start: String,
    /// Chart bucket size.
    pub bucket: figures::Bucket,
}

/// The metrics answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "Metrics"))]
pub struct MetricsBody {
    /// `ok`, or `empty` when the window holds no events.
    #[cfg_attr(test, ts(type = "'ok' | 'empty'"))]
    pub status: &'static str,
    /// The range asked for.
    pub range: Range,
    /// When this answer was computed.
    pub generated_at: String,
    /// The newest stored event's timestamp, `null` when nothing was ever stored.
    pub last_event_at: Option<String>,
    /// The windows compared.
    pub window: WindowBody,
    /// Headline figures with deltas.
    pub kpis: Kpis,
    /// Visitors by predicted persona.
    pub personas: Vec<figures::PersonaShare>,
    /// The journey funnel.
    pub funnel: Vec<figures::FunnelStage>,
    /// Tunnel views and CTA clicks.
    pub tunnels: Vec<figures::TunnelRow>,
    /// A/B test cohorts.
    pub ab_tests: Vec<figures::AbTest>,
    /// Event types by count.
    pub top_events: Vec<figures::EventTypeCount>,
    /// Events per bucket and persona label.
    #[serde(rename = "chartData")]
    #[cfg_attr(
        test,
        ts(type = "Array<{ date: string } & Record<string, number | string>>")
    )]
    pub chart_data: Vec<Map<String, Value>>,
    /// Revenue, not connected yet.
    #[cfg_attr(test, ts(type = "{ status: string; reason?: string }"))]
    pub revenue: Value,
}

fn range_param(params: &HashMap<String, String>) -> Result<Range, AppError> {
    match params.get("range") {
        None => Ok(DEFAULT_RANGE),
        Some(r) => Range::parse(r.trim()).ok_or_else(|| {
            AppError::BadParameter(Problem::new(
                "range",
                format!("must be one of {}, got `{}`", Range::known_list(), shown(r)),
            ))
        }),
    }
}

/// A caller's value, shortened for an error message.
fn shown(value: &str) -> String {
    value.chars().take(60).collect()
}

/// Runs a store call under [`QUERY_TIMEOUT`], mapping failures to answers.
async fn ask<T>(call: impl Future<Output = Result<T, AnalyticsError>>) -> Result<T, AppError> {
    match tokio::time::timeout(QUERY_TIMEOUT, call).await {
        Ok(result) => result.map_err(AppError::from),
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

/// Assembles the metrics answer from the counts.
pub fn metrics_body(
    cfg: &Config,
    w: &Windows,
    now: chrono::DateTime<chrono::Utc>,
    counts: &cdp_adapters::analytics::MetricCounts,
) -> MetricsBody {
    let (v, pv) = (counts.visitors, counts.previous_visitors);
    let events = counts.events.total();
    MetricsBody {
        status: if events == 0 { "empty" } else { "ok" },
        range: w.range,
        generated_at: iso(now),
        last_event_at: counts.last_event_at.map(iso),
        window: WindowBody {
            start: iso(w.current.start),
            end: iso(w.current.end),
            previous_start: iso(w.previous.start),
            bucket: w.range.bucket(),
        },
        kpis: Kpis {
            events: figures::kpi(events, counts.previous_events),
            unique_visitors: figures::kpi(v.visitors, pv.visitors),
            sessions: figures::kpi(v.sessions, pv.sessions),
            identified_profiles: figures::kpi(v.identified, pv.identified),
        },
        personas: figures::personas(cfg, &counts.states),
        funnel: figures::funnel(&counts.states),
        tunnels: figures::tunnels(&counts.events.by_tunnel),
        ab_tests: figures::ab_tests(&counts.ab),
        top_events: figures::top_events(counts),
        chart_data: figures::chart(cfg, w, &counts.events.by_hour_persona),
        revenue: serde_json::json!({
            "status": "unavailable",
            "reason": "no order data connected",
        }),
    }
}

/// One event of the stream.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct StreamEvent {
    /// Event id.
    pub event_id: String,
    /// Type.
    pub event_type: String,
    /// Visitor (link to `/api/cdp/profiles/{anonymous_id}`).
    pub anonymous_id: String,
    /// When it happened.
    pub timestamp: String,
    /// Page.
    pub page_url: String,
    /// Page title.
    pub page_title: Option<String>,
    /// Predicted persona after this event.
    pub predicted_persona: String,
    /// Its label.
    pub persona_label: String,
    /// Its confidence.
    pub persona_confidence: f64,
    /// Explicit persona, if chosen.
    pub explicit_persona: Option<String>,
    /// Stage after this event.
    pub current_stage: String,
}

impl StreamEvent {
    fn of(cfg: &Config, r: &EventRow) -> StreamEvent {
        StreamEvent {
            event_id: r.event_id.hyphenated().to_string(),
            event_type: r.event_type.as_str().to_owned(),
            anonymous_id: r.anonymous_id.as_str().to_owned(),
            timestamp: iso(r.timestamp),
            page_url: r.page_url.clone(),
            page_title: r.page_title.clone(),
            predicted_persona: r.predicted_persona.as_str().to_owned(),
            persona_label: cfg.persona_label(&r.predicted_persona).to_owned(),
            persona_confidence: r.persona_confidence,
            explicit_persona: r.explicit_persona.as_ref().map(|p| p.as_str().to_owned()),
            current_stage: r.current_stage.as_str().to_owned(),
        }
    }
}

/// The stream answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "EventStream"))]
pub struct EventsBody {
    /// `ok`, or `empty` when no event matches.
    #[cfg_attr(test, ts(type = "'ok' | 'empty'"))]
    pub status: &'static str,
    /// Newest first.
    pub events: Vec<StreamEvent>,
}

/// The stream's filters from the query string, or the first bad one.
pub fn stream_query(
    cfg: &Config,
    params: &HashMap<String, String>,
) -> Result<StreamQuery, AppError> {
    let bad = |field: &str, rule: String| AppError::BadParameter(Problem::new(field, rule));
    let limit = match params.get("limit").map(|l| l.trim()) {
        None | Some("") => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u64>() {
            Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
            _ => {
                return Err(bad(
                    "limit",
                    format!(
                    "must be a whole number from 1 (at most {MAX_LIMIT} are returned), got `{}`",
                    shown(l)
                ),
                ))
            }
        },
    };
    let event_type = match params
        .get("type")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
    {
        None => None,
        Some(t) => match EventType::parse(t) {
            Some(t) => Some(t.as_str().to_owned()),
            None => {
                return Err(bad(
                    "type",
                    format!(
                        "must be an event type of the contract ({}), got `{}`",
                        EventType::known_list(),
                        shown(t)
                    ),
                ))
            }
        },
    };
    let persona = match params
        .get("persona")
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) if cfg.has_persona(p) => Some(p.to_owned()),
        Some(p) => {
            let known: Vec<&str> = cfg.personas().iter().map(|x| x.id.as_str()).collect();
            return Err(bad(
                "persona",
                format!(
                    "must be a persona id ({}), got `{}`",
                    known.join(", "),
                    shown(p)
                ),
            ));
        }
    };
    Ok(StreamQuery {
        event_type,
        persona,
        limit,
    })
}

/// `GET /api/cdp/events?limit=&type=&persona=`.
pub async fn events(
    State(app): State<AppState>,
    Query(params): Params,
) -> Result<Json<EventsBody>, AppError> {
    let query = stream_query(&app.cfg, &params)?;
    let rows = ask(app.store.recent_events(app.cfg.brand_id(), &query)).await?;
    let events: Vec<StreamEvent> = rows.iter().map(|r| StreamEvent::of(&app.cfg, r)).collect();
    Ok(Json(EventsBody {
        status: if events.is_empty() { "empty" } else { "ok" },
        events,
    }))
}

/// The searches answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[cfg_attr(test, ts(rename = "Searches"))]
pub struct SearchesBody {
    /// `ok`, or `empty` when the window holds no searches.
    #[cfg_attr(test, ts(type = "'ok' | 'empty'"))]
    pub status: &'static str,
    /// The range asked for.
    pub range: Range,
    /// The figures.
    #[serde(flatten)]
    pub figures: figures::SearchFigures,
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
    let figures = figures::searches(&counts);
    Ok(Json(SearchesBody {
        status: if figures.total.value == 0 {
            "empty"
        } else {
            "ok"
        },
        range,
        figures,
    }))
}

/// The rule that set the visitor's stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageBody {
    /// Stage name.
    pub stage: String,
    /// Confidence in [0.5, 1].
    pub confidence: f64,
    /// The rule, in words.
    pub rule: String,
    /// Which clause matched; `null` for the default stage.
    pub clause: Option<usize>,
}

/// The profile answer.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileBody {
    /// Always `ok`.
    pub status: &'static str,
    /// The golden profile, without its replay-protection bookkeeping.
    pub profile: Value,
    /// Every persona id's label.
    pub persona_labels: BTreeMap<String, String>,
    /// Which signals, with what weight and decay, make the prediction.
    pub explanation: cdp_core::Explanation,
    /// Which rule set the stage.
    pub stage: StageBody,
}

/// Assembles the profile answer as of `now`.
pub fn profile_body(
    cfg: &Config,
    profile: &Profile,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ProfileBody, AppError> {
    let (explanation, stage) = profile.explain(cfg, now);
    let mut view = serde_json::to_value(profile).map_err(|_| Refusal::Internal)?;
    if let Value::Object(map) = &mut view {
        map.remove("recent_event_ids");
        map.remove("recent_sessions");
    }
    Ok(ProfileBody {
        status: "ok",
        profile: view,
        persona_labels: cfg
            .personas()
            .iter()
            .map(|p| (p.id.as_str().to_owned(), p.label.clone()))
            .collect(),
        explanation,
        stage: StageBody {
            stage: stage.stage.as_str().to_owned(),
            confidence: cdp_core::persona::round6(stage.confidence),
            rule: stage.why(cfg).to_owned(),
            clause: stage.clause,
        },
    })
}

/// `GET /api/cdp/profiles/{anonymous_id}`. The stored profile can trail the events (profiles
/// are saved behind them), so the visitor's events processed since it was saved are applied
/// to it first, each at the time it was processed, as a rebuild would: the view is never
/// older than the event stream that links to it.
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
        Ok::<_, cdp_adapters::StoreError>(rows.iter().fold(stored, |p, row| {
            Some(cdp_core::apply(&app.cfg, p, &row.to_valid_event(), row.processed_at).profile)
        }))
    };
    match ask(async { load.await.map_err(AnalyticsError::from) }).await? {
        Some(p) => Ok(Json(profile_body(&app.cfg, &p, now)?)),
        None => Err(AppError::ProfileNotFound),
    }
}

/// `GET /api/cdp/openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
