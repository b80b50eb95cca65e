//! Counting: every rule by which the dashboard's figures count stored events, as pure code.
//!
//! Stores keep two kinds of rows and know nothing of what they mean:
//! - **counters** ([`keep::Counter`]): sums per brand, counter, time bucket and up to three
//!   dimension values, only ever added to;
//! - **facts** ([`keep::Fact`]): per-entity state (a visitor's day, a session's start, a
//!   visitor's first identification, an A/B cohort membership), replaced whole.
//!
//! [`fold::fold`] turns stored events (and the facts already held for the visitors they touch)
//! into counter deltas and fact upserts; [`reads`] says which range sums and fact counts a
//! dashboard answer needs and assembles the answer from them; [`window`] splits a time window
//! into the whole days, whole hours and partial hours those reads cover. No event-type name,
//! property path or counting rule lives anywhere else.

pub mod counts;
pub mod fold;
pub mod keep;
pub mod reads;
pub mod window;

pub use counts::{
    AbCount, EventCounts, HourCount, MetricCounts, SearchCount, StateCount, TunnelCount, TypeCount,
    VisitorCounts,
};
pub use fold::{fold, Changes};
pub use keep::{
    CountedEvent, Counter, CounterDelta, CounterKey, Described, EventGroup, Fact, FactKind,
    PROPERTIES, PROPERTY_TYPES,
};
pub use reads::{
    Cond, CounterGroup, CounterSum, FactCount, FactGroup, LabelCol, ReadAnswers, ReadPlan, TimeCol,
};
pub use window::{day_span, floor_day, floor_hour, DaySplit, HourSplit, Resolution, Split, Window};
