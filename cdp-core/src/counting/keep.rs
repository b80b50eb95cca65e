//! The rows stores keep for counting, and the slice of a stored event the fold reads. Stores
//! run table definitions, keyed upserts and range sums over these; what each counter and fact
//! means is said here and nowhere else.

use crate::profile::EventRow;
use crate::EventType;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// The event properties counting reads, by name. Stores hand them over as the JSON value at
/// that key of `properties` (absent: `None`), in this order, and only for the event types
/// [`PROPERTY_TYPES`] reads each one for (for any other event, `None`): most events carry
/// nothing counting reads, and a store need not parse their properties.
pub const PROPERTIES: [&str; 5] = ["tunnel", "test_id", "variant", "query", "results_count"];

/// For each of [`PROPERTIES`], the event types counting reads it for.
pub const PROPERTY_TYPES: [&[EventType]; 5] = [
    &[EventType::TunnelViewed, EventType::HeroCtaClicked],
    &[EventType::AbTestExposure, EventType::AbTestConversion],
    &[EventType::AbTestExposure, EventType::AbTestConversion],
    &[EventType::SearchPerformed],
    &[EventType::SearchPerformed],
];

/// Where each of [`PROPERTIES`] sits in [`CountedEvent::properties`].
pub(crate) mod prop {
    pub const TUNNEL: usize = 0;
    pub const TEST_ID: usize = 1;
    pub const VARIANT: usize = 2;
    pub const QUERY: usize = 3;
    pub const RESULTS_COUNT: usize = 4;
}

/// What counting reads of one stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct CountedEvent {
    /// Storage order (`cdp_events.seq`): breaks timestamp ties, latest stored wins.
    pub seq: i64,
    /// Tenant.
    pub brand_id: String,
    /// Visitor.
    pub anonymous_id: String,
    /// Customer id, if the event carried one.
    pub customer_id: Option<String>,
    /// Session (`''` when none was stored).
    pub session_id: String,
    /// Event type name as stored.
    pub event_type: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// Predicted persona after it (`''` when none).
    pub predicted_persona: String,
    /// Explicit persona, if any.
    pub explicit_persona: Option<String>,
    /// Stage after it (`''` when none).
    pub current_stage: String,
    /// The values of [`PROPERTIES`], in that order.
    pub properties: Vec<Option<Value>>,
}

impl CountedEvent {
    /// The counted slice of a stored row (`seq` is its storage order).
    pub fn of_row(seq: i64, row: &EventRow) -> CountedEvent {
        CountedEvent {
            seq,
            brand_id: row.brand_id.as_str().to_owned(),
            anonymous_id: row.anonymous_id.as_str().to_owned(),
            customer_id: row.customer_id.clone(),
            session_id: row.session_id.as_str().to_owned(),
            event_type: row.event_type.as_str().to_owned(),
            timestamp: row.timestamp,
            predicted_persona: row.predicted_persona.as_str().to_owned(),
            explicit_persona: row.explicit_persona.as_ref().map(|p| p.as_str().to_owned()),
            current_stage: row.current_stage.as_str().to_owned(),
            properties: PROPERTIES
                .iter()
                .zip(PROPERTY_TYPES)
                .map(|(k, types)| {
                    types
                        .contains(&row.event_type)
                        .then(|| row.properties.get(*k).cloned())
                        .flatten()
                })
                .collect(),
        }
    }
}

impl Described for CountedEvent {
    fn event_type(&self) -> &str {
        &self.event_type
    }
    fn properties(&self) -> &[Option<Value>] {
        &self.properties
    }
}

/// What the per-event rules (an event's tunnel, search, A/B cohort) read: its type and the
/// values of [`PROPERTIES`]. A whole [`CountedEvent`] has them, and so does an [`EventGroup`]
/// of events that count alike.
pub trait Described {
    /// Event type name as stored.
    fn event_type(&self) -> &str;
    /// The values of [`PROPERTIES`], in that order.
    fn properties(&self) -> &[Option<Value>];

    /// One of [`PROPERTIES`] by its place.
    fn property(&self, i: usize) -> Option<&Value> {
        self.properties().get(i).and_then(Option::as_ref)
    }

    /// A property as text, the way SQL's `->>` reads it: a string as itself, JSON `null` or an
    /// absent key as `None`, any other value as its JSON text.
    fn text(&self, i: usize) -> Option<String> {
        match self.property(i)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// Stored events of one window that count alike for the dashboard: the same type, predicted
/// persona and [`PROPERTIES`] (read as for a [`CountedEvent`]), and how many there are. A
/// store hands over the partial hours at a window's edges this way, counted, instead of
/// event by event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventGroup {
    /// Event type name as stored.
    pub event_type: String,
    /// Predicted persona (`''` when none).
    pub predicted_persona: String,
    /// The values of [`PROPERTIES`], in that order.
    pub properties: Vec<Option<Value>>,
    /// Events in the group.
    pub events: u64,
}

impl Described for EventGroup {
    fn event_type(&self) -> &str {
        &self.event_type
    }
    fn properties(&self) -> &[Option<Value>] {
        &self.properties
    }
}

/// A named running sum per time bucket and dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Counter {
    /// Events per hour; dimensions: event type, predicted persona, tunnel.
    EventsHour,
    /// The same per UTC day.
    EventsDay,
    /// Sessions started per UTC day (a late event that moves a session's start moves it).
    SessionsDay,
    /// Searches per hour; dimensions: the query as stored (trimmed), `zero` when it showed no
    /// results.
    SearchesHour,
    /// The same per UTC day.
    SearchesDay,
}

impl Counter {
    /// Every counter.
    pub const ALL: [Counter; 5] = [
        Counter::EventsHour,
        Counter::EventsDay,
        Counter::SessionsDay,
        Counter::SearchesHour,
        Counter::SearchesDay,
    ];

    /// Its name in storage.
    pub fn name(self) -> &'static str {
        match self {
            Counter::EventsHour => "events_hour",
            Counter::EventsDay => "events_day",
            Counter::SessionsDay => "sessions_day",
            Counter::SearchesHour => "searches_hour",
            Counter::SearchesDay => "searches_day",
        }
    }

    /// The counter a stored name means.
    pub fn parse(name: &str) -> Option<Counter> {
        Counter::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Which counter row a delta goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CounterKey {
    /// Tenant.
    pub brand_id: String,
    /// The counter.
    pub counter: Counter,
    /// Start of its hour or day.
    pub bucket: DateTime<Utc>,
    /// Dimension values (`''` where the counter has fewer).
    pub dims: [String; 3],
}

/// An amount to add to a counter row. A row that reaches zero is no row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CounterDelta {
    /// The row.
    pub key: CounterKey,
    /// What to add (negative when a session's start moves to an earlier day).
    pub delta: i64,
}

/// What a fact is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// A visitor's UTC day with events. `part`: the day (`YYYY-MM-DD`); `at`: its first
    /// event; times: its last event, the visitor's last event before this day, their first
    /// event after it; labels: the predicted persona, explicit persona and stage of the day's
    /// latest event (by timestamp, then storage order).
    VisitorDay,
    /// A session. `part`: the session id; `at`: its first event.
    Session,
    /// A visitor's identification. `at`: their first event with a customer id, an
    /// `email_signup` or an `identify`.
    Identity,
    /// A visitor in an A/B test variant. `part`: `[test, variant]` as JSON; `at`: first
    /// exposure (if any); times: first conversion (if any); labels: test id, variant.
    AbCohort,
}

impl FactKind {
    /// Every kind.
    pub const ALL: [FactKind; 4] = [
        FactKind::VisitorDay,
        FactKind::Session,
        FactKind::Identity,
        FactKind::AbCohort,
    ];

    /// Its name in storage.
    pub fn name(self) -> &'static str {
        match self {
            FactKind::VisitorDay => "visitor_day",
            FactKind::Session => "session",
            FactKind::Identity => "identity",
            FactKind::AbCohort => "ab_cohort",
        }
    }

    /// The kind a stored name means.
    pub fn parse(name: &str) -> Option<FactKind> {
        FactKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Per-entity state kept for distinct counts, keyed by brand, entity (the visitor), kind and
/// part. The columns mean what [`FactKind`] says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Fact {
    /// Tenant.
    pub brand_id: String,
    /// The visitor it belongs to.
    pub entity: String,
    /// What it is.
    pub kind: FactKind,
    /// Which one of the entity's facts of this kind (`''` when there is one).
    pub part: String,
    /// The instant range reads select on.
    pub at: Option<DateTime<Utc>>,
    /// Further instants.
    pub times: [Option<DateTime<Utc>>; 3],
    /// Labels counts group by.
    pub labels: [Option<String>; 3],
}

impl Fact {
    /// Its key within a brand.
    pub fn key(&self) -> (&str, &str, FactKind, &str) {
        (&self.brand_id, &self.entity, self.kind, &self.part)
    }
}
