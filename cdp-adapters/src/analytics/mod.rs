//! The dashboard's read role: a store answers the core's reads as data
//! (`cdp_core::counting::reads`) over the rollups it keeps, and the core turns the answers
//! into counts. Stores only select, sum and count; windows, splits, which events count and
//! how, deltas, shares, significance and chart buckets are the core's and the API's business.
//!
//! The rollups are two generic tables (`cdp_counters`, `cdp_facts`; Postgres migration 0005,
//! SQLite rollup-file migration 0003) that the core's fold fills off the commit path. Windows
//! are exact to the microsecond: whole days and hours come from counters, the partial hours at
//! either edge from `cdp_events` itself, counted by the same rules.
//!
//! Supabase REST cannot run these reads (PostgREST exposes tables, not aggregates); it
//! answers [`AnalyticsError::Unsupported`]. Point the dashboard at the same database through
//! `postgres://` instead.

#[cfg(feature = "native")]
pub(crate) mod postgres;
#[cfg(feature = "native")]
pub(crate) mod sqlite;

use crate::StoreError;
pub use cdp_core::counting::{
    day_span, floor_day, floor_hour, AbCount, DaySplit, EventCounts, HourCount, HourSplit,
    MetricCounts, Resolution, SearchCount, Split, StateCount, TunnelCount, TypeCount,
    VisitorCounts, Window,
};
use cdp_core::counting::{
    reads::{MetricsPlan, SearchPlan},
    CountedEvent, CounterDelta, Fact, ReadAnswers, ReadPlan,
};
use cdp_core::{BrandId, EventRow};

/// Which events the live stream wants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamQuery {
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this predicted persona.
    pub persona: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// What a store's rollups hold, sorted: every counter row and every fact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupRows {
    /// Counter rows (as deltas from nothing).
    pub counters: Vec<CounterDelta>,
    /// Facts.
    pub facts: Vec<Fact>,
}

/// A rollup table that disagrees with the core's recount of every stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupDifference {
    /// The table, `cdp_counters` or `cdp_facts`.
    pub table: &'static str,
    /// Rows in the table that the recount does not have.
    pub extra: u64,
    /// Rows of the recount that the table does not have.
    pub missing: u64,
}

/// The rollup tables, the same on every SQL backend.
pub const ROLLUP_TABLES: [&str; 2] = ["cdp_counters", "cdp_facts"];

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

/// One text or JSON cell of a stored table (JSON as its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextCell {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// The value.
    pub value: String,
}

/// The dashboard's read role: a store answers the core's reads ([`ReadPlan`]) in one
/// consistent snapshot; what they mean, and how the answers make up the counts, is the core's.
#[allow(async_fn_in_trait)]
pub trait Analytics {
    /// The answers to `plan`, read in one snapshot, after folding every event stored before
    /// the call into the rollups.
    async fn answer(&self, brand: &BrandId, plan: &ReadPlan)
        -> Result<ReadAnswers, AnalyticsError>;

    /// The newest events, by timestamp then processing order.
    async fn recent_events(
        &self,
        brand: &BrandId,
        query: &StreamQuery,
    ) -> Result<Vec<EventRow>, AnalyticsError>;

    /// Every row the rollups hold, sorted (after a fold). Reads everything: for tests and
    /// audits, not for the request path.
    async fn rollup_rows(&self) -> Result<RollupRows, AnalyticsError>;

    /// Every stored event as counting reads it, in storage order. For tests and audits.
    async fn counted_events(&self) -> Result<Vec<CountedEvent>, AnalyticsError>;

    /// Every text and JSON cell of every table the store keeps, the tables and columns read
    /// from the database's own catalogue (so a table added later is included). Reads
    /// everything: for tests and audits, such as checking that an erasure left no trace.
    async fn text_cells(&self) -> Result<Vec<TextCell>, AnalyticsError>;

    /// Every rollup table that disagrees with the core's fold of every stored event, done
    /// here from nothing (empty when all agree). Reads everything: for tests and audits.
    async fn rollup_differences(&self) -> Result<Vec<RollupDifference>, AnalyticsError> {
        let held = self.rollup_rows().await?;
        let (counters, facts) = cdp_core::counting::fold::recount(&self.counted_events().await?);
        Ok([
            ("cdp_counters", differences(&held.counters, &counters)),
            ("cdp_facts", differences(&held.facts, &facts)),
        ]
        .into_iter()
        .filter(|(_, (extra, missing))| extra + missing > 0)
        .map(|(table, (extra, missing))| RollupDifference {
            table,
            extra,
            missing,
        })
        .collect())
    }

    /// Everything the metrics endpoint counts, for the current and the previous window, with
    /// events per bucket at `resolution`.
    async fn metric_counts(
        &self,
        brand: &BrandId,
        current: Window,
        previous: Window,
        resolution: Resolution,
    ) -> Result<MetricCounts, AnalyticsError> {
        let plan = MetricsPlan::new(current, previous, resolution);
        Ok(plan.assemble(&self.answer(brand, &plan.plan).await?))
    }

    /// Searches per stored query text in the two windows (queries with none in either are
    /// absent).
    async fn search_counts(
        &self,
        brand: &BrandId,
        current: Window,
        previous: Window,
    ) -> Result<Vec<SearchCount>, AnalyticsError> {
        let plan = SearchPlan::new(current, previous);
        Ok(plan.assemble(&self.answer(brand, &plan.plan).await?))
    }
}

#[cfg(feature = "native")]
impl Analytics for crate::Store {
    async fn answer(
        &self,
        brand: &BrandId,
        plan: &ReadPlan,
    ) -> Result<ReadAnswers, AnalyticsError> {
        match self {
            crate::Store::Sqlite(s) => Ok(s.answer(brand, plan).await?),
            crate::Store::Postgres(s) => Ok(s.answer(brand, plan).await?),
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

    async fn counted_events(&self) -> Result<Vec<CountedEvent>, AnalyticsError> {
        match self {
            crate::Store::Sqlite(s) => Ok(s.counted_events().await?),
            crate::Store::Postgres(s) => Ok(s.counted_events().await?),
            crate::Store::Supabase(_) => Err(unsupported()),
        }
    }

    async fn text_cells(&self) -> Result<Vec<TextCell>, AnalyticsError> {
        match self {
            crate::Store::Sqlite(s) => Ok(s.text_cells().await?),
            crate::Store::Postgres(s) => Ok(s.text_cells().await?),
            crate::Store::Supabase(_) => Err(unsupported()),
        }
    }

    async fn rollup_rows(&self) -> Result<RollupRows, AnalyticsError> {
        match self {
            crate::Store::Sqlite(s) => Ok(s.rollup_rows().await?),
            crate::Store::Postgres(s) => Ok(s.rollup_rows().await?),
            crate::Store::Supabase(_) => Err(unsupported()),
        }
    }
}

/// Rows of `held` not in `want`, and rows of `want` not in `held`.
fn differences<T: Ord>(held: &[T], want: &[T]) -> (u64, u64) {
    let held: std::collections::BTreeSet<&T> = held.iter().collect();
    let want: std::collections::BTreeSet<&T> = want.iter().collect();
    (
        held.difference(&want).count() as u64,
        want.difference(&held).count() as u64,
    )
}

#[cfg(feature = "native")]
fn unsupported() -> AnalyticsError {
    AnalyticsError::Unsupported {
        backend: "Supabase REST",
    }
}
