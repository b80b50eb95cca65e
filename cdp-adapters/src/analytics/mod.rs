//! The dashboard's read side: what the API asks a store to count ([`Analytics`]) and the plain
//! counts it gets back. Stores only count; windows, deltas, shares, significance and chart
//! buckets are the API's business.
//!
//! The counts come from rollup tables that triggers keep current inside the event insert's
//! own transaction (migration 0002 on both SQL backends), so a dashboard query reads a few
//! thousand small rows instead of aggregating millions of events. Windows are exact to the
//! microsecond: whole hours come from the hourly rollup and the partial hours at either edge
//! from `cdp_events` itself ([`HourSplit`]); distinct visitors come from per-visitor-day rows
//! that know each visitor's neighbouring events, so "visitors active in the window" is a
//! filtered count rather than a `count(distinct ...)`.
//!
//! Supabase REST cannot run these queries (PostgREST exposes tables, not aggregates); it
//! answers [`AnalyticsError::Unsupported`]. Point the dashboard at the same database through
//! `postgres://` instead.

#[cfg(feature = "native")]
pub(crate) mod postgres;
#[cfg(feature = "native")]
pub(crate) mod sqlite;

use crate::StoreError;
use cdp_core::{BrandId, EventRow};
use chrono::{DateTime, Duration, DurationRound, Utc};

/// A half-open time range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant inside.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
}

/// Events in one time bucket with one predicted persona.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    /// Start of the bucket: an hour, or with [`Resolution::Day`] a whole UTC day inside the
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
    /// [`Resolution::Day`].
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

/// Which events the live stream wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamQuery {
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this predicted persona.
    pub persona: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// A rollup table that disagrees with its recount from `cdp_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupDifference {
    /// The table, such as `cdp_rollup_hourly`.
    pub table: &'static str,
    /// Rows in the table that the recount does not have.
    pub extra: u64,
    /// Rows of the recount that the table does not have.
    pub missing: u64,
}

/// The rollup tables, each with a `<table>_recount` view.
pub const ROLLUP_TABLES: [&str; 7] = [
    "cdp_rollup_hourly",
    "cdp_rollup_daily",
    "cdp_rollup_visitor_days",
    "cdp_rollup_sessions",
    "cdp_rollup_session_days",
    "cdp_rollup_identities",
    "cdp_rollup_ab",
];

/// Why a dashboard query failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The store failed (unreachable, refused, corrupt).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backend cannot run dashboard queries.
    #[error(
        "{backend} is not supported for dashboard queries; use Postgres (the same database, \
         through a postgres:// URL)"
    )]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
    },
}

/// The dashboard's read role. Every method reads one consistent snapshot.
#[allow(async_fn_in_trait)]
pub trait Analytics {
    /// Everything the metrics endpoint counts, for the current and the previous window, with
    /// events per bucket at `resolution`.
    async fn metric_counts(
        &self,
        brand: &BrandId,
        current: Window,
        previous: Window,
        resolution: Resolution,
    ) -> Result<MetricCounts, AnalyticsError>;

    /// Searches per stored query text in the two windows (queries with none in either are
    /// absent).
    async fn search_counts(
        &self,
        brand: &BrandId,
        current: Window,
        previous: Window,
    ) -> Result<Vec<SearchCount>, AnalyticsError>;

    /// The newest events, by timestamp then processing order.
    async fn recent_events(
        &self,
        brand: &BrandId,
        query: &StreamQuery,
    ) -> Result<Vec<EventRow>, AnalyticsError>;

    /// Every rollup table that disagrees with its recount from `cdp_events` (empty when all
    /// agree). Reads every event: for tests and audits, not for the request path.
    async fn rollup_differences(&self) -> Result<Vec<RollupDifference>, AnalyticsError>;
}

#[cfg(feature = "native")]
impl Analytics for crate::Store {
    async fn metric_counts(
        &self,
        brand: &BrandId,
        current: Window,
        previous: Window,
        resolution: Resolution,
    ) -> Result<MetricCounts, AnalyticsError> {
        match self {
            crate::Store::Sqlite(s) => s.metric_counts(brand, current, previous, resolution).await,
            crate::Store::Postgres(s) => {
                s.metric_counts(brand, current, previous, resolution).await
            }
            crate::Store::Supabase(_) => Err(unsupported()),
        }
    }

    async fn search_counts(
        &self,
        brand: &BrandId,
        current: Window,
        previous: Window,
    ) -> Result<Vec<SearchCount>, AnalyticsError> {
        match self {
            crate::Store::Sqlite(s) => s.search_counts(brand, current, previous).await,
            crate::Store::Postgres(s) => s.search_counts(brand, current, previous).await,
            crate::Store::Supabase(_) => Err(unsupported()),
        }
    }

    async fn recent_events(
        &self,
        brand: &BrandId,
        query: &StreamQuery,
    ) -> Result<Vec<EventRow>, AnalyticsError> {
        match self {
            crate::Store::Sqlite(s) => s.recent_events(brand, query).await,
            crate::Store::Postgres(s) => s.recent_events(brand, query).await,
            crate::Store::Supabase(_) => Err(unsupported()),
        }
    }

    async fn rollup_differences(&self) -> Result<Vec<RollupDifference>, AnalyticsError> {
        match self {
            crate::Store::Sqlite(s) => s.rollup_differences().await,
            crate::Store::Postgres(s) => s.rollup_differences().await,
            crate::Store::Supabase(_) => Err(unsupported()),
        }
    }
}

#[cfg(feature = "native")]
fn unsupported() -> AnalyticsError {
    AnalyticsError::Unsupported {
        backend: "Supabase REST",
    }
}

/// How a window is read from the hourly rollup: whole hours from the rollup, the partial hours
/// at the edges from `cdp_events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourSplit {
    /// Whole hours `[start, end)` read from the rollup (empty when `start == end`).
    pub rollup: Window,
    /// The partial hour before them, read from events (may be empty).
    pub head: Window,
    /// The partial hour after them, read from events (may be empty).
    pub tail: Window,
}

/// The start of the hour holding `t`.
pub fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

/// The start of the UTC day holding `t`.
pub fn floor_day(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::days(1)).unwrap_or(t)
}

impl HourSplit {
    /// Splits `w` at whole hours.
    pub fn of(w: Window) -> HourSplit {
        let first = floor_hour(w.start);
        let first = if first < w.start {
            first + Duration::hours(1)
        } else {
            first
        };
        let last = floor_hour(w.end);
        if first >= last {
            // No whole hour inside: read it all from events.
            return HourSplit {
                rollup: Window {
                    start: w.end,
                    end: w.end,
                },
                head: w,
                tail: Window {
                    start: w.end,
                    end: w.end,
                },
            };
        }
        HourSplit {
            rollup: Window {
                start: first,
                end: last,
            },
            head: Window {
                start: w.start,
                end: first,
            },
            tail: Window {
                start: last,
                end: w.end,
            },
        }
    }
}

/// The finest time bucket a caller needs from [`Analytics::metric_counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Hours (a chart of the last 24 hours).
    Hour,
    /// Days: whole days inside the window may come as one count each, read from the daily
    /// rollup.
    Day,
}

/// How a window is read: whole days from the daily rollup (at [`Resolution::Day`]), whole
/// hours from the hourly rollup, partial hours from `cdp_events`. The parts are disjoint and
/// cover the window exactly; empty ones have `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Whole days.
    pub days: Window,
    /// Whole hours before and after the days.
    pub hours: [Window; 2],
    /// Partial hours at the window's edges.
    pub raw: [Window; 2],
}

impl Split {
    /// Splits `w` for `resolution`.
    pub fn of(w: Window, resolution: Resolution) -> Split {
        let h = HourSplit::of(w);
        let none = Window {
            start: h.rollup.end,
            end: h.rollup.end,
        };
        let mut first_day = floor_day(h.rollup.start);
        if first_day < h.rollup.start {
            first_day += Duration::days(1);
        }
        let last_day = floor_day(h.rollup.end);
        if resolution == Resolution::Hour || first_day >= last_day {
            return Split {
                days: none,
                hours: [h.rollup, none],
                raw: [h.head, h.tail],
            };
        }
        Split {
            days: Window {
                start: first_day,
                end: last_day,
            },
            hours: [
                Window {
                    start: h.rollup.start,
                    end: first_day,
                },
                Window {
                    start: last_day,
                    end: h.rollup.end,
                },
            ],
            raw: [h.head, h.tail],
        }
    }
}

/// A window as whole UTC days plus the partial days before and after them (when no whole day
/// fits, all of it is the head).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySplit {
    /// Whole days (empty when `start == end`).
    pub days: Window,
    /// The partial day before them.
    pub head: Window,
    /// The partial day after them.
    pub tail: Window,
}

impl DaySplit {
    /// Splits `w` at UTC midnights.
    pub fn of(w: Window) -> DaySplit {
        let mut first = floor_day(w.start);
        if first < w.start {
            first += Duration::days(1);
        }
        let last = floor_day(w.end);
        let none = Window {
            start: w.end,
            end: w.end,
        };
        if first >= last {
            return DaySplit {
                days: none,
                head: w,
                tail: none,
            };
        }
        DaySplit {
            days: Window {
                start: first,
                end: last,
            },
            head: Window {
                start: w.start,
                end: first,
            },
            tail: Window {
                start: last,
                end: w.end,
            },
        }
    }
}

/// The UTC days `[first, end)` whose rows can hold events of `w`: from the day of its start to
/// the day after its end.
pub fn day_span(w: Window) -> (DateTime<Utc>, DateTime<Utc>) {
    (floor_day(w.start), floor_day(w.end) + Duration::days(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn w(a: &str, b: &str) -> Window {
        Window {
            start: at(a),
            end: at(b),
        }
    }

    #[test]
    fn hour_splits() {
        let cases = [
            // Unaligned: a partial hour at each end.
            (
                w("2026-03-01T12:30:00Z", "2026-03-08T12:30:00Z"),
                w("2026-03-01T13:00:00Z", "2026-03-08T12:00:00Z"),
                w("2026-03-01T12:30:00Z", "2026-03-01T13:00:00Z"),
                w("2026-03-08T12:00:00Z", "2026-03-08T12:30:00Z"),
            ),
            // Aligned: empty edges.
            (
                w("2026-03-01T12:00:00Z", "2026-03-02T12:00:00Z"),
                w("2026-03-01T12:00:00Z", "2026-03-02T12:00:00Z"),
                w("2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z"),
                w("2026-03-02T12:00:00Z", "2026-03-02T12:00:00Z"),
            ),
            // Inside one hour: all from events.
            (
                w("2026-03-01T12:10:00Z", "2026-03-01T12:50:00Z"),
                w("2026-03-01T12:50:00Z", "2026-03-01T12:50:00Z"),
                w("2026-03-01T12:10:00Z", "2026-03-01T12:50:00Z"),
                w("2026-03-01T12:50:00Z", "2026-03-01T12:50:00Z"),
            ),
            // Across one hour boundary without a whole hour.
            (
                w("2026-03-01T12:10:00Z", "2026-03-01T13:50:00Z"),
                w("2026-03-01T13:50:00Z", "2026-03-01T13:50:00Z"),
                w("2026-03-01T12:10:00Z", "2026-03-01T13:50:00Z"),
                w("2026-03-01T13:50:00Z", "2026-03-01T13:50:00Z"),
            ),
        ];
        for (window, rollup, head, tail) in cases {
            assert_eq!(
                HourSplit::of(window),
                HourSplit { rollup, head, tail },
                "{window:?}"
            );
        }
    }

    #[test]
    fn splits_by_resolution() {
        let window = w("2026-03-01T12:30:00Z", "2026-03-08T12:30:00Z");
        let by_day = Split::of(window, Resolution::Day);
        assert_eq!(
            by_day.days,
            w("2026-03-02T00:00:00Z", "2026-03-08T00:00:00Z")
        );
        assert_eq!(
            by_day.hours,
            [
                w("2026-03-01T13:00:00Z", "2026-03-02T00:00:00Z"),
                w("2026-03-08T00:00:00Z", "2026-03-08T12:00:00Z")
            ]
        );
        assert_eq!(
            by_day.raw,
            [
                w("2026-03-01T12:30:00Z", "2026-03-01T13:00:00Z"),
                w("2026-03-08T12:00:00Z", "2026-03-08T12:30:00Z")
            ]
        );
        let by_hour = Split::of(window, Resolution::Hour);
        assert_eq!(by_hour.days.start, by_hour.days.end);
        assert_eq!(
            by_hour.hours[0],
            w("2026-03-01T13:00:00Z", "2026-03-08T12:00:00Z")
        );
        // Less than a whole day inside: hours only.
        let short = Split::of(
            w("2026-03-01T12:30:00Z", "2026-03-02T12:30:00Z"),
            Resolution::Day,
        );
        assert_eq!(short.days.start, short.days.end);
        assert_eq!(
            short.hours[0],
            w("2026-03-01T13:00:00Z", "2026-03-02T12:00:00Z")
        );
        // Aligned to midnight: days only.
        let aligned = Split::of(
            w("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z"),
            Resolution::Day,
        );
        assert_eq!(
            aligned.days,
            w("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z")
        );
        assert!(aligned
            .hours
            .iter()
            .chain(&aligned.raw)
            .all(|p| p.start == p.end));
    }

    #[test]
    fn day_splits() {
        let s = DaySplit::of(w("2026-03-01T12:30:00Z", "2026-03-08T12:30:00Z"));
        assert_eq!(s.days, w("2026-03-02T00:00:00Z", "2026-03-08T00:00:00Z"));
        assert_eq!(s.head, w("2026-03-01T12:30:00Z", "2026-03-02T00:00:00Z"));
        assert_eq!(s.tail, w("2026-03-08T00:00:00Z", "2026-03-08T12:30:00Z"));
        let short = DaySplit::of(w("2026-03-01T12:30:00Z", "2026-03-02T12:30:00Z"));
        assert_eq!(
            short.head,
            w("2026-03-01T12:30:00Z", "2026-03-02T12:30:00Z")
        );
        assert_eq!(
            (
                short.days.start == short.days.end,
                short.tail.start == short.tail.end
            ),
            (true, true)
        );
    }

    #[test]
    fn day_spans_cover_both_edges() {
        let (a, b) = day_span(w("2026-03-01T12:30:00Z", "2026-03-08T12:30:00Z"));
        assert_eq!(
            (a, b),
            (at("2026-03-01T00:00:00Z"), at("2026-03-09T00:00:00Z"))
        );
    }
}
