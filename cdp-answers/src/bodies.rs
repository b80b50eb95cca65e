//! The bodies of the dashboard API's answers (`/api/cdp/metrics`, `/events`, `/searches`,
//! `/profiles/{id}`), assembled from the store's counts and rows by the [`figures`]. The
//! server and the Worker both answer with these, so the JSON is the same wherever it is
//! served.

use crate::figures::{self, iso, Kpis, Range, Windows};
use cdp_core::counting::MetricCounts;
use cdp_core::{Config, EventRow, Profile};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `window` in the metrics answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "MetricsWindow"))]
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "Metrics"))]
pub struct MetricsBody {
    /// `ok`, or `empty` when the window holds no events.
    #[cfg_attr(feature = "ts", ts(type = "'ok' | 'empty'"))]
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
        feature = "ts",
        ts(type = "Array<{ date: string } & Record<string, number | string>>")
    )]
    pub chart_data: Vec<Map<String, Value>>,
    /// Revenue, not connected yet.
    #[cfg_attr(feature = "ts", ts(type = "{ status: string; reason?: string }"))]
    pub revenue: Value,
}

/// Assembles the metrics answer from the counts.
pub fn metrics_body(
    cfg: &Config,
    w: &Windows,
    now: chrono::DateTime<chrono::Utc>,
    counts: &MetricCounts,
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    /// The stream's view of a stored event.
    pub fn of(cfg: &Config, r: &EventRow) -> StreamEvent {
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
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "EventStream"))]
pub struct EventsBody {
    /// `ok`, or `empty` when no event matches.
    #[cfg_attr(feature = "ts", ts(type = "'ok' | 'empty'"))]
    pub status: &'static str,
    /// Newest first.
    pub events: Vec<StreamEvent>,
}

/// The searches answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "Searches"))]
pub struct SearchesBody {
    /// `ok`, or `empty` when the window holds no searches.
    #[cfg_attr(feature = "ts", ts(type = "'ok' | 'empty'"))]
    pub status: &'static str,
    /// The range asked for.
    pub range: Range,
    /// The figures.
    #[serde(flatten)]
    pub figures: figures::SearchFigures,
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

/// The visitor's profile as the dashboard shows it: the stored one (if any) with the events
/// processed since it was saved applied to it, each at the time it was processed, as a rebuild
/// would, so the view is never older than the event stream that links to it. `rows` are the
/// visitor's events in store order; one already applied is a duplicate to the core and
/// changes nothing.
pub fn live_profile(cfg: &Config, stored: Option<Profile>, rows: &[EventRow]) -> Option<Profile> {
    cdp_core::replay(cfg, stored, rows)
}

/// Assembles the profile answer as of `now`.
pub fn profile_body(
    cfg: &Config,
    profile: &Profile,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<ProfileBody, serde_json::Error> {
    let (explanation, stage) = profile.explain(cfg, now);
    let mut view = serde_json::to_value(profile)?;
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

/// Assembles the searches answer from the counts.
pub fn searches_body(range: Range, counts: &[cdp_core::counting::SearchCount]) -> SearchesBody {
    let figures = figures::searches(counts);
    SearchesBody {
        status: if figures.total.value == 0 {
            "empty"
        } else {
            "ok"
        },
        range,
        figures,
    }
}

/// Assembles the stream answer from the rows, newest first.
pub fn events_body(cfg: &Config, rows: &[EventRow]) -> EventsBody {
    let events: Vec<StreamEvent> = rows.iter().map(|r| StreamEvent::of(cfg, r)).collect();
    EventsBody {
        status: if events.is_empty() { "empty" } else { "ok" },
        events,
    }
}
