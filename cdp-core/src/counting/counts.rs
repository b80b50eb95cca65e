//! What the dashboard's answers are made of: plain counts, assembled by [`super::reads`].
//! Windows, deltas, shares and significance are the figures' business, not these.

use chrono::{DateTime, Utc};

/// Events in one time bucket with one predicted persona.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    /// Start of the bucket: an hour, or with [`super::Resolution::Day`] a whole UTC day inside the
    /// window (counted as one entry at its midnight).
    pub hour: DateTime<Utc>,
    /// Predicted persona id of the events.
    pub persona: String,
    /// How many.
    pub events: u64,
}

/// Events of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeCount {
    /// Event type name.
    pub event_type: String,
    /// How many.
    pub events: u64,
}

/// `tunnel_viewed` or `hero_cta_clicked` events for one tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelCount {
    /// The `tunnel` property.
    pub tunnel: String,
    /// `tunnel_viewed` or `hero_cta_clicked`.
    pub event_type: String,
    /// How many.
    pub events: u64,
}

/// Additive event counts in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Per bucket and persona (buckets with no events are absent): hours, and whole days at
    /// [`super::Resolution::Day`].
    pub by_hour_persona: Vec<HourCount>,
    /// Per event type.
    pub by_type: Vec<TypeCount>,
    /// Per tunnel and event type.
    pub by_tunnel: Vec<TunnelCount>,
}

impl EventCounts {
    /// Every event in the window.
    pub fn total(&self) -> u64 {
        self.by_type.iter().map(|t| t.events).sum()
    }
}

/// Distinct counts in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VisitorCounts {
    /// Visitors with at least one event in the window.
    pub visitors: u64,
    /// Sessions whose first event is in the window.
    pub sessions: u64,
    /// Visitors first identified in the window (their first event with a customer id, an
    /// `email_signup` or an `identify`).
    pub identified: u64,
}

/// Visitors active in a window, grouped by the persona and stage of their latest event in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    /// Predicted persona id.
    pub persona: String,
    /// Explicit persona id, if the visitor chose one.
    pub explicit_persona: Option<String>,
    /// Journey stage name.
    pub stage: String,
    /// How many visitors.
    pub visitors: u64,
}

/// One A/B test variant's cohort: visitors first exposed in the window, and how many of them
/// converted in the same variant before the window ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbCount {
    /// Test id.
    pub test_id: String,
    /// Variant.
    pub variant: String,
    /// Visitors first exposed in the window.
    pub exposures: u64,
    /// Of those, visitors who converted before the window's end.
    pub conversions: u64,
}

/// Everything `/api/cdp/metrics` counts, read in one snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricCounts {
    /// Events in the current window.
    pub events: EventCounts,
    /// Events in the previous window.
    pub previous_events: u64,
    /// Distinct counts in the current window.
    pub visitors: VisitorCounts,
    /// Distinct counts in the previous window.
    pub previous_visitors: VisitorCounts,
    /// Visitor states in the current window.
    pub states: Vec<StateCount>,
    /// A/B cohorts entering in the current window.
    pub ab: Vec<AbCount>,
    /// The newest stored event's timestamp, whatever the window.
    pub last_event_at: Option<DateTime<Utc>>,
}

/// Searches for one query text (exactly as stored, trimmed) in the two windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCount {
    /// The query.
    pub query: String,
    /// Searches in the current window.
    pub current: u64,
    /// Searches in the previous window.
    pub previous: u64,
    /// Searches in the current window that showed no results.
    pub zero_results: u64,
}
