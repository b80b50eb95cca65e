//! The reads behind each dashboard answer, as data: which counter ranges to sum, which facts
//! to count, which events to take whole (the partial hours at a window's edges), and how the
//! answers make up [`MetricCounts`] and [`SearchCount`]s. A store runs a [`ReadPlan`] in one
//! snapshot and hands back [`ReadAnswers`] in the plan's order.

use super::counts::{
    AbCount, EventCounts, HourCount, MetricCounts, SearchCount, StateCount, TunnelCount, TypeCount,
    VisitorCounts,
};
use super::fold::{search_of, tunnel_of};
use super::keep::{Counter, EventGroup, FactKind};
use super::window::{floor_day, floor_hour, DaySplit, Resolution, Split, Window};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// A fact's instant columns: `at` and the three `times`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeCol {
    /// `at`.
    At,
    /// `times[0]`.
    T1,
    /// `times[1]`.
    T2,
    /// `times[2]`.
    T3,
}

/// A fact's label columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelCol {
    /// `labels[0]`.
    G1,
    /// `labels[1]`.
    G2,
    /// `labels[2]`.
    G3,
}

/// A condition on a fact's instants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// The column is set and before the instant.
    Lt(TimeCol, DateTime<Utc>),
    /// The column is set and not before the instant.
    Ge(TimeCol, DateTime<Utc>),
    /// The column is not set.
    IsNull(TimeCol),
    /// At least one holds.
    Any(Vec<Cond>),
}

/// Count the facts of a kind whose `at` is in a window and that meet every condition,
/// grouped by some labels; `also` counts, per group, those that also meet one more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactCount {
    /// The kind.
    pub kind: FactKind,
    /// `at` in `[start, end)`.
    pub at: Window,
    /// All must hold.
    pub filter: Vec<Cond>,
    /// Group by these labels, in this order.
    pub group: Vec<LabelCol>,
    /// A second count per group.
    pub also: Option<Cond>,
}

/// One group of a [`FactCount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactGroup {
    /// The group's labels, in the order asked.
    pub labels: Vec<Option<String>>,
    /// Facts in the group.
    pub count: u64,
    /// Of those, facts meeting `also`.
    pub also: u64,
}

/// Sum counter rows whose bucket is in one of the ranges, grouped by the bucket if asked and
/// by the dimensions marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSum {
    /// Counter and bucket range pairs (empty ranges may be left out by the store).
    pub ranges: Vec<(Counter, Window)>,
    /// Group by bucket.
    pub by_bucket: bool,
    /// Group by each dimension.
    pub by_dims: [bool; 3],
}

impl CounterSum {
    /// Sums counter rows (each with its bucket and every dimension, as stored) into this
    /// sum's groups: for a store that reads the rows of several sums over the same ranges
    /// once and groups them itself.
    pub fn group(&self, rows: &[CounterGroup]) -> Vec<CounterGroup> {
        type Key<'a> = (Option<DateTime<Utc>>, [Option<&'a str>; 3]);
        let mut out: BTreeMap<Key<'_>, i64> = BTreeMap::new();
        for r in rows {
            let bucket = if self.by_bucket { r.bucket } else { None };
            let mut dims = [None; 3];
            for (i, d) in dims.iter_mut().enumerate() {
                if self.by_dims[i] {
                    *d = r.dims[i].as_deref();
                }
            }
            *out.entry((bucket, dims)).or_default() += r.sum;
        }
        out.into_iter()
            .map(|((bucket, dims), sum)| CounterGroup {
                bucket,
                dims: dims.map(|d| d.map(str::to_owned)),
                sum,
            })
            .collect()
    }
}

/// One group of a [`CounterSum`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterGroup {
    /// The bucket, when grouped by it.
    pub bucket: Option<DateTime<Utc>>,
    /// The dimensions grouped by (`None` for the others).
    pub dims: [Option<String>; 3],
    /// The sum.
    pub sum: i64,
}

/// Everything one answer reads, in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPlan {
    /// Counter sums.
    pub counters: Vec<CounterSum>,
    /// Fact counts.
    pub facts: Vec<FactCount>,
    /// Events whose timestamp is in each window, as [`EventGroup`]s (empty windows may be
    /// skipped). Each window lies inside one hour.
    pub events: Vec<Window>,
    /// The newest stored event's timestamp.
    pub last_event: bool,
}

/// A store's answers to a [`ReadPlan`], each list in the plan's order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadAnswers {
    /// One list of groups per counter sum.
    pub counters: Vec<Vec<CounterGroup>>,
    /// One list of groups per fact count.
    pub facts: Vec<Vec<FactGroup>>,
    /// The events of each window, grouped.
    pub events: Vec<Vec<EventGroup>>,
    /// The newest stored event's timestamp, when asked.
    pub last_event: Option<DateTime<Utc>>,
}

impl ReadAnswers {
    fn counters(&self, i: usize) -> &[CounterGroup] {
        self.counters.get(i).map_or(&[], Vec::as_slice)
    }
    fn facts(&self, i: usize) -> &[FactGroup] {
        self.facts.get(i).map_or(&[], Vec::as_slice)
    }
    fn events(&self, i: usize) -> &[EventGroup] {
        self.events.get(i).map_or(&[], Vec::as_slice)
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn label(g: &FactGroup, i: usize) -> Option<String> {
    g.labels.get(i).cloned().flatten()
}

/// The counter ranges of a split: whole days from the day counter, whole hours from the hour
/// counter.
fn split_ranges(s: &Split, day: Counter, hour: Counter) -> Vec<(Counter, Window)> {
    [(day, s.days), (hour, s.hours[0]), (hour, s.hours[1])]
        .into_iter()
        .filter(|(_, w)| !w.is_empty())
        .collect()
}

fn by(bucket: bool, dims: [bool; 3], ranges: &[(Counter, Window)]) -> CounterSum {
    CounterSum {
        ranges: ranges.to_vec(),
        by_bucket: bucket,
        by_dims: dims,
    }
}

/// Visitors with events in `w`, each counted once (at their first day in it).
fn visitors_in(w: Window) -> FactCount {
    FactCount {
        kind: FactKind::VisitorDay,
        at: Window {
            start: floor_day(w.start),
            end: w.end,
        },
        filter: vec![
            Cond::Ge(TimeCol::T1, w.start),
            Cond::Any(vec![
                Cond::IsNull(TimeCol::T2),
                Cond::Lt(TimeCol::T2, w.start),
                Cond::Lt(TimeCol::At, w.start),
            ]),
        ],
        group: vec![],
        also: None,
    }
}

/// Visitors active in `w` at their latest day in it, by persona, explicit persona and stage.
fn states_in(w: Window) -> FactCount {
    FactCount {
        kind: FactKind::VisitorDay,
        at: Window {
            start: floor_day(w.start),
            end: w.end,
        },
        filter: vec![
            Cond::Ge(TimeCol::T1, w.start),
            Cond::Any(vec![
                Cond::IsNull(TimeCol::T3),
                Cond::Ge(TimeCol::T3, w.end),
            ]),
        ],
        group: vec![LabelCol::G1, LabelCol::G2, LabelCol::G3],
        also: None,
    }
}

fn facts_at(kind: FactKind, w: Window) -> FactCount {
    FactCount {
        kind,
        at: w,
        filter: vec![],
        group: vec![],
        also: None,
    }
}

/// The plan's parts for the distinct counts of one window: indexes into the plan.
#[derive(Debug, Clone)]
struct DistinctParts {
    sessions_days: usize,
    sessions_edges: [usize; 2],
    identified: usize,
}

fn plan_distinct(plan: &mut ReadPlan, w: Window) -> DistinctParts {
    let split = DaySplit::of(w);
    plan.counters.push(by(
        false,
        [false; 3],
        &[(Counter::SessionsDay, split.days)]
            .into_iter()
            .filter(|(_, w)| !w.is_empty())
            .collect::<Vec<_>>(),
    ));
    let sessions_days = plan.counters.len() - 1;
    plan.facts.push(facts_at(FactKind::Session, split.head));
    plan.facts.push(facts_at(FactKind::Session, split.tail));
    plan.facts.push(facts_at(FactKind::Identity, w));
    let n = plan.facts.len();
    DistinctParts {
        sessions_days,
        sessions_edges: [n - 3, n - 2],
        identified: n - 1,
    }
}

fn fact_total(a: &ReadAnswers, i: usize) -> u64 {
    a.facts(i).iter().map(|g| g.count).sum()
}

fn counter_total(a: &ReadAnswers, i: usize) -> u64 {
    count(a.counters(i).iter().map(|g| g.sum).sum())
}

impl DistinctParts {
    fn counts(&self, a: &ReadAnswers, visitors: u64) -> VisitorCounts {
        VisitorCounts {
            visitors,
            sessions: counter_total(a, self.sessions_days)
                + self
                    .sessions_edges
                    .iter()
                    .map(|i| fact_total(a, *i))
                    .sum::<u64>(),
            identified: fact_total(a, self.identified),
        }
    }
}

/// What `/api/cdp/metrics` reads: the current window with events per bucket at `resolution`,
/// the previous window's totals.
#[derive(Debug, Clone)]
pub struct MetricsPlan {
    /// The reads.
    pub plan: ReadPlan,
    current: DistinctParts,
    previous: DistinctParts,
}

const EV_BY_BUCKET_PERSONA: usize = 0;
const EV_BY_TYPE: usize = 1;
const EV_BY_TUNNEL: usize = 2;
const EV_PREVIOUS: usize = 3;
const F_STATES: usize = 0;
const F_PREVIOUS_VISITORS: usize = 1;
const F_AB: usize = 2;

impl MetricsPlan {
    /// Plans the reads.
    pub fn new(current: Window, previous: Window, resolution: Resolution) -> MetricsPlan {
        let cur = Split::of(current, resolution);
        let prev = Split::of(previous, Resolution::Day);
        let cur_ranges = split_ranges(&cur, Counter::EventsDay, Counter::EventsHour);
        let mut plan = ReadPlan {
            counters: vec![
                by(true, [false, true, false], &cur_ranges),
                by(false, [true, false, false], &cur_ranges),
                by(false, [true, false, true], &cur_ranges),
                by(
                    false,
                    [false; 3],
                    &split_ranges(&prev, Counter::EventsDay, Counter::EventsHour),
                ),
            ],
            facts: vec![
                states_in(current),
                visitors_in(previous),
                FactCount {
                    kind: FactKind::AbCohort,
                    at: current,
                    filter: vec![],
                    group: vec![LabelCol::G1, LabelCol::G2],
                    also: Some(Cond::Lt(TimeCol::T1, current.end)),
                },
            ],
            events: vec![cur.raw[0], cur.raw[1], prev.raw[0], prev.raw[1]],
            last_event: true,
        };
        // The distinct counts' parts follow the fixed ones.
        let current = plan_distinct(&mut plan, current);
        let previous = plan_distinct(&mut plan, previous);
        MetricsPlan {
            plan,
            current,
            previous,
        }
    }

    /// The counts from the store's answers.
    pub fn assemble(&self, a: &ReadAnswers) -> MetricCounts {
        // Events: counters, then the raw edge hours counted here by the same rules.
        let mut by_bucket: BTreeMap<(DateTime<Utc>, String), u64> = BTreeMap::new();
        let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_tunnel: BTreeMap<(String, String), u64> = BTreeMap::new();
        for g in a.counters(EV_BY_BUCKET_PERSONA) {
            if let Some(b) = g.bucket {
                *by_bucket
                    .entry((b, g.dims[1].clone().unwrap_or_default()))
                    .or_default() += count(g.sum);
            }
        }
        for g in a.counters(EV_BY_TYPE) {
            *by_type
                .entry(g.dims[0].clone().unwrap_or_default())
                .or_default() += count(g.sum);
        }
        for g in a.counters(EV_BY_TUNNEL) {
            let tunnel = g.dims[2].clone().unwrap_or_default();
            if !tunnel.is_empty() {
                *by_tunnel
                    .entry((tunnel, g.dims[0].clone().unwrap_or_default()))
                    .or_default() += count(g.sum);
            }
        }
        for i in [0, 1] {
            // Each edge window lies inside one hour.
            let Some(hour) = self.plan.events.get(i).map(|w| floor_hour(w.start)) else {
                continue;
            };
            for g in a.events(i) {
                *by_bucket
                    .entry((hour, g.predicted_persona.clone()))
                    .or_default() += g.events;
                *by_type.entry(g.event_type.clone()).or_default() += g.events;
                let tunnel = tunnel_of(g);
                if !tunnel.is_empty() {
                    *by_tunnel.entry((tunnel, g.event_type.clone())).or_default() += g.events;
                }
            }
        }
        let previous_events = counter_total(a, EV_PREVIOUS)
            + a.events(2)
                .iter()
                .chain(a.events(3))
                .map(|g| g.events)
                .sum::<u64>();

        let mut states: BTreeMap<(String, Option<String>, String), u64> = BTreeMap::new();
        for g in a.facts(F_STATES) {
            *states
                .entry((
                    label(g, 0).unwrap_or_default(),
                    label(g, 1),
                    label(g, 2).unwrap_or_default(),
                ))
                .or_default() += g.count;
        }
        let states: Vec<StateCount> = states
            .into_iter()
            .map(
                |((persona, explicit_persona, stage), visitors)| StateCount {
                    persona,
                    explicit_persona,
                    stage,
                    visitors,
                },
            )
            .collect();
        let mut ab: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for g in a.facts(F_AB) {
            let slot = ab
                .entry((
                    label(g, 0).unwrap_or_default(),
                    label(g, 1).unwrap_or_default(),
                ))
                .or_default();
            slot.0 += g.count;
            slot.1 += g.also;
        }
        // Each active visitor has exactly one latest day in the window, so the states
        // already count the current window's visitors.
        let visitors = states.iter().map(|s| s.visitors).sum();
        MetricCounts {
            events: EventCounts {
                by_hour_persona: by_bucket
                    .into_iter()
                    .map(|((hour, persona), events)| HourCount {
                        hour,
                        persona,
                        events,
                    })
                    .collect(),
                by_type: by_type
                    .into_iter()
                    .map(|(event_type, events)| TypeCount { event_type, events })
                    .collect(),
                by_tunnel: by_tunnel
                    .into_iter()
                    .map(|((tunnel, event_type), events)| TunnelCount {
                        tunnel,
                        event_type,
                        events,
                    })
                    .collect(),
            },
            previous_events,
            visitors: self.current.counts(a, visitors),
            previous_visitors: self.previous.counts(a, fact_total(a, F_PREVIOUS_VISITORS)),
            states,
            ab: ab
                .into_iter()
                .map(|((test_id, variant), (exposures, conversions))| AbCount {
                    test_id,
                    variant,
                    exposures,
                    conversions,
                })
                .collect(),
            last_event_at: a.last_event,
        }
    }
}

/// What `/api/cdp/searches` reads: searches per query in two windows.
#[derive(Debug, Clone)]
pub struct SearchPlan {
    /// The reads.
    pub plan: ReadPlan,
}

impl SearchPlan {
    /// Plans the reads.
    pub fn new(current: Window, previous: Window) -> SearchPlan {
        let cur = Split::of(current, Resolution::Day);
        let prev = Split::of(previous, Resolution::Day);
        let grouped = |s: &Split| {
            by(
                false,
                [true, true, false],
                &split_ranges(s, Counter::SearchesDay, Counter::SearchesHour),
            )
        };
        SearchPlan {
            plan: ReadPlan {
                counters: vec![grouped(&cur), grouped(&prev)],
                facts: vec![],
                events: vec![cur.raw[0], cur.raw[1], prev.raw[0], prev.raw[1]],
                last_event: false,
            },
        }
    }

    /// The counts per query (queries with none in either window are absent).
    pub fn assemble(&self, a: &ReadAnswers) -> Vec<SearchCount> {
        // (current, previous, zero in current) per query.
        let mut out: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        let mut add = |query: String, zero: bool, current: bool, n: u64| {
            let slot = out.entry(query).or_default();
            if current {
                slot.0 += n;
                if zero {
                    slot.2 += n;
                }
            } else {
                slot.1 += n;
            }
        };
        for (i, current) in [(0, true), (1, false)] {
            for g in a.counters(i) {
                add(
                    g.dims[0].clone().unwrap_or_default(),
                    g.dims[1].as_deref() == Some("zero"),
                    current,
                    count(g.sum),
                );
            }
        }
        for (i, current) in [(0, true), (1, true), (2, false), (3, false)] {
            for g in a.events(i) {
                if let Some((query, zero)) = search_of(g) {
                    add(query, zero, current, g.events);
                }
            }
        }
        out.into_iter()
            .filter(|(_, (c, p, _))| c + p > 0)
            .map(|(query, (current, previous, zero_results))| SearchCount {
                query,
                current,
                previous,
                zero_results,
            })
            .collect()
    }
}
