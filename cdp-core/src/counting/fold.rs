//! The fold: stored events (in any order, in any batches) into counter deltas and fact
//! upserts. Folding a set of events once, or in batches one after another with each batch's
//! changes kept in between, leaves the same counters and facts, which is what the conformance
//! suite checks on every backend.

use super::keep::{
    prop, CountedEvent, Counter, CounterDelta, CounterKey, Described, Fact, FactKind,
};
use super::window::{floor_day, floor_hour};
use crate::EventType;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// What a fold asks the store to do, in key order (so concurrent writers lock in one order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Amounts to add (none is zero).
    pub counters: Vec<CounterDelta>,
    /// Facts to write whole (new or changed).
    pub facts: Vec<Fact>,
}

/// The visitors (brand, anonymous id) whose facts a fold of `events` needs: every fact of
/// theirs that the store holds.
pub fn entities(events: &[CountedEvent]) -> BTreeSet<(String, String)> {
    events
        .iter()
        .map(|e| (e.brand_id.clone(), e.anonymous_id.clone()))
        .collect()
}

/// The tunnel an event counts under: its `tunnel` property for tunnel views and hero CTA
/// clicks, `''` for everything else.
pub fn tunnel_of(e: &impl Described) -> String {
    let is_tunnel = [EventType::TunnelViewed, EventType::HeroCtaClicked]
        .iter()
        .any(|t| t.as_str() == e.event_type());
    if is_tunnel {
        e.text(prop::TUNNEL).unwrap_or_default()
    } else {
        String::new()
    }
}

/// The search an event counts as: the query (trimmed) and whether it showed no results, for
/// `search_performed` events with a text query (the same rule as `EventRow::search`).
pub fn search_of(e: &impl Described) -> Option<(String, bool)> {
    if e.event_type() != EventType::SearchPerformed.as_str() {
        return None;
    }
    let query = e.property(prop::QUERY)?.as_str()?.trim().to_owned();
    let results = e
        .property(prop::RESULTS_COUNT)
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    Some((query, results == 0))
}

/// Whether an event identifies its visitor: a customer id, or one of the identity events
/// (`cdp_core::identity::IDENTITY_EVENTS`).
fn identifies(e: &CountedEvent) -> bool {
    e.customer_id.is_some()
        || crate::identity::IDENTITY_EVENTS
            .iter()
            .any(|t| e.event_type == t.as_str())
}

/// The A/B test and variant an exposure or conversion counts in, and whether it converts.
fn ab_of(e: &CountedEvent) -> Option<(String, String, bool)> {
    let converts = if e.event_type == EventType::AbTestExposure.as_str() {
        false
    } else if e.event_type == EventType::AbTestConversion.as_str() {
        true
    } else {
        return None;
    };
    Some((e.text(prop::TEST_ID)?, e.text(prop::VARIANT)?, converts))
}

/// Counter rows for the additive event figures of one event (hour and day, events and
/// searches), each counting one.
pub fn event_counters(e: &CountedEvent) -> Vec<CounterKey> {
    let dims = [
        e.event_type.clone(),
        e.predicted_persona.clone(),
        tunnel_of(e),
    ];
    let mut out = vec![
        CounterKey {
            brand_id: e.brand_id.clone(),
            counter: Counter::EventsHour,
            bucket: floor_hour(e.timestamp),
            dims: dims.clone(),
        },
        CounterKey {
            brand_id: e.brand_id.clone(),
            counter: Counter::EventsDay,
            bucket: floor_day(e.timestamp),
            dims,
        },
    ];
    if let Some((query, zero)) = search_of(e) {
        let dims = [
            query,
            if zero { "zero".into() } else { String::new() },
            String::new(),
        ];
        out.push(CounterKey {
            brand_id: e.brand_id.clone(),
            counter: Counter::SearchesHour,
            bucket: floor_hour(e.timestamp),
            dims: dims.clone(),
        });
        out.push(CounterKey {
            brand_id: e.brand_id.clone(),
            counter: Counter::SearchesDay,
            bucket: floor_day(e.timestamp),
            dims,
        });
    }
    out
}

/// A visitor's day, as the fold works on it.
#[derive(Debug, Clone, PartialEq)]
struct Day {
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    prev: Option<DateTime<Utc>>,
    next: Option<DateTime<Utc>>,
    state: [Option<String>; 3],
}

impl Day {
    fn of_fact(f: &Fact) -> Option<Day> {
        Some(Day {
            first: f.at?,
            last: f.times[0]?,
            prev: f.times[1],
            next: f.times[2],
            state: f.labels.clone(),
        })
    }

    fn fact(&self, brand: &str, visitor: &str, day: &str) -> Fact {
        Fact {
            brand_id: brand.to_owned(),
            entity: visitor.to_owned(),
            kind: FactKind::VisitorDay,
            part: day.to_owned(),
            at: Some(self.first),
            times: [Some(self.last), self.prev, self.next],
            labels: self.state.clone(),
        }
    }
}

fn day_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

type Visitor = (String, String);

/// Folds `events` given `held`, the facts the store holds for [`entities`]`(events)` (more
/// facts are ignored; fewer give wrong distinct counts).
pub fn fold(events: &[CountedEvent], held: &[Fact]) -> Changes {
    let mut counters: BTreeMap<CounterKey, i64> = BTreeMap::new();
    let mut facts: BTreeMap<(Visitor, FactKind, String), Fact> = BTreeMap::new();
    let held: BTreeMap<(Visitor, FactKind, String), &Fact> = held
        .iter()
        .map(|f| {
            (
                (
                    (f.brand_id.clone(), f.entity.clone()),
                    f.kind,
                    f.part.clone(),
                ),
                f,
            )
        })
        .collect();

    // The batch's own view of each visitor-day, session, identity and cohort.
    // Each day with the (timestamp, seq) of the event its state comes from.
    type Latest = (DateTime<Utc>, i64);
    let mut days: BTreeMap<(Visitor, String), (Day, Latest)> = BTreeMap::new();
    let mut sessions: BTreeMap<(Visitor, String), DateTime<Utc>> = BTreeMap::new();
    let mut identities: BTreeMap<Visitor, DateTime<Utc>> = BTreeMap::new();
    type Cohort = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let mut cohorts: BTreeMap<(Visitor, String, String), Cohort> = BTreeMap::new();
    for e in events {
        for key in event_counters(e) {
            *counters.entry(key).or_default() += 1;
        }
        let v = (e.brand_id.clone(), e.anonymous_id.clone());
        let state = [
            Some(e.predicted_persona.clone()),
            e.explicit_persona.clone(),
            Some(e.current_stage.clone()),
        ];
        let latest = (e.timestamp, e.seq);
        days.entry((v.clone(), day_key(e.timestamp)))
            .and_modify(|(d, at)| {
                d.first = d.first.min(e.timestamp);
                d.last = d.last.max(e.timestamp);
                if latest > *at {
                    *at = latest;
                    d.state = state.clone();
                }
            })
            .or_insert_with(|| {
                (
                    Day {
                        first: e.timestamp,
                        last: e.timestamp,
                        prev: None,
                        next: None,
                        state: state.clone(),
                    },
                    latest,
                )
            });
        sessions
            .entry((v.clone(), e.session_id.clone()))
            .and_modify(|t| *t = (*t).min(e.timestamp))
            .or_insert(e.timestamp);
        if identifies(e) {
            identities
                .entry(v.clone())
                .and_modify(|t| *t = (*t).min(e.timestamp))
                .or_insert(e.timestamp);
        }
        if let Some((test, variant, converts)) = ab_of(e) {
            let c = cohorts.entry((v, test, variant)).or_default();
            if converts {
                c.1 = earliest(c.1, Some(e.timestamp));
            } else {
                c.0 = earliest(c.0, Some(e.timestamp));
            }
        }
    }

    // Visitor days: each batch day widens the held one (the later last event sets the state;
    // a tie goes to the batch, stored later), then every day of a touched visitor gets its
    // neighbours again, and the days that changed are written.
    let mut merged: BTreeMap<Visitor, BTreeMap<String, Day>> = BTreeMap::new();
    for ((v, part), f) in held
        .iter()
        .filter(|((_, k, _), _)| *k == FactKind::VisitorDay)
        .map(|((v, _, p), f)| ((v, p), f))
    {
        if let Some(d) = Day::of_fact(f) {
            merged.entry(v.clone()).or_default().insert(part.clone(), d);
        }
    }
    let touched: BTreeSet<Visitor> = days.keys().map(|(v, _)| v.clone()).collect();
    for ((v, part), (new, _)) in days {
        let slot = merged.entry(v).or_default();
        match slot.get_mut(&part) {
            Some(old) => {
                let state = if new.last >= old.last {
                    new.state
                } else {
                    old.state.clone()
                };
                old.first = old.first.min(new.first);
                old.last = old.last.max(new.last);
                old.state = state;
            }
            None => {
                slot.insert(part, new);
            }
        }
    }
    for v in &touched {
        let Some(all) = merged.get_mut(v) else {
            continue;
        };
        let spans: Vec<(DateTime<Utc>, DateTime<Utc>)> =
            all.values().map(|d| (d.first, d.last)).collect();
        for (i, (part, d)) in all.iter_mut().enumerate() {
            d.prev = i.checked_sub(1).map(|j| spans[j].1);
            d.next = spans.get(i + 1).map(|s| s.0);
            let fact = d.fact(&v.0, &v.1, part);
            let key = (v.clone(), FactKind::VisitorDay, part.clone());
            if held.get(&key).is_none_or(|h| **h != fact) {
                facts.insert(key, fact);
            }
        }
    }

    // Sessions: a session the batch starts, or starts earlier, counts on its new day and no
    // longer on its old one.
    for ((v, session), start) in sessions {
        let key = (v.clone(), FactKind::Session, session.clone());
        let old = held.get(&key).and_then(|f| f.at);
        if old.is_some_and(|o| o <= start) {
            continue;
        }
        let day = |t| CounterKey {
            brand_id: v.0.clone(),
            counter: Counter::SessionsDay,
            bucket: floor_day(t),
            dims: Default::default(),
        };
        *counters.entry(day(start)).or_default() += 1;
        if let Some(o) = old {
            *counters.entry(day(o)).or_default() -= 1;
        }
        facts.insert(
            key,
            Fact {
                brand_id: v.0,
                entity: v.1,
                kind: FactKind::Session,
                part: session,
                at: Some(start),
                times: Default::default(),
                labels: Default::default(),
            },
        );
    }

    for (v, at) in identities {
        let key = (v.clone(), FactKind::Identity, String::new());
        if held
            .get(&key)
            .and_then(|f| f.at)
            .is_some_and(|old| old <= at)
        {
            continue;
        }
        facts.insert(
            key,
            Fact {
                brand_id: v.0,
                entity: v.1,
                kind: FactKind::Identity,
                part: String::new(),
                at: Some(at),
                times: Default::default(),
                labels: Default::default(),
            },
        );
    }

    for ((v, test, variant), (exposed, converted)) in cohorts {
        let part = serde_json::json!([test, variant]).to_string();
        let key = (v.clone(), FactKind::AbCohort, part.clone());
        let old = held.get(&key);
        let fact = Fact {
            brand_id: v.0.clone(),
            entity: v.1.clone(),
            kind: FactKind::AbCohort,
            part,
            at: earliest(old.and_then(|f| f.at), exposed),
            times: [
                earliest(old.and_then(|f| f.times[0]), converted),
                None,
                None,
            ],
            labels: [Some(test), Some(variant), None],
        };
        if old.is_none_or(|h| **h != fact) {
            facts.insert(key, fact);
        }
    }

    Changes {
        counters: counters
            .into_iter()
            .filter(|(_, d)| *d != 0)
            .map(|(key, delta)| CounterDelta { key, delta })
            .collect(),
        facts: facts.into_values().collect(),
    }
}

/// What the stores should hold after `events` (every stored event, any order): the counters
/// and facts of one fold from nothing, sorted. The conformance suite compares each backend's
/// rollups with it.
pub fn recount(events: &[CountedEvent]) -> (Vec<CounterDelta>, Vec<Fact>) {
    let c = fold(events, &[]);
    (c.counters, c.facts)
}

/// Applies `changes` to held rows the way a store does (counters added, zeros removed; facts
/// replaced), for tests and for checking a store against [`recount`].
pub fn apply(counters: &mut BTreeMap<CounterKey, i64>, facts: &mut Vec<Fact>, changes: Changes) {
    for d in changes.counters {
        let v = counters.entry(d.key.clone()).or_default();
        *v += d.delta;
        if *v == 0 {
            counters.remove(&d.key);
        }
    }
    for f in changes.facts {
        match facts.iter_mut().find(|h| h.key() == f.key()) {
            Some(h) => *h = f,
            None => facts.push(f),
        }
    }
    facts.sort();
}

/// What removing some stored events takes out of the rollups (an erasure): counter amounts
/// to add, the visitors whose facts all go, and the facts written back for them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Removal {
    /// Amounts to add (none is zero).
    pub counters: Vec<CounterDelta>,
    /// Visitors (brand, anonymous id) whose every fact is deleted before `facts` are written.
    pub visitors: Vec<(String, String)>,
    /// Their facts afterwards.
    pub facts: Vec<Fact>,
}

/// The rollup changes that take some events out: `before` is every folded event of the
/// visitors concerned (all of each visitor's, since facts are per visitor), `kept` the ones of
/// them that stay. Every counter and fact a visitor holds comes from that visitor's events
/// alone, so subtracting the fold of `before` and adding the fold of `kept` leaves exactly
/// what a fold from nothing of the remaining events gives.
pub fn without(before: &[CountedEvent], kept: &[CountedEvent]) -> Removal {
    let (old, _) = recount(before);
    let (new, facts) = recount(kept);
    let mut sums: BTreeMap<CounterKey, i64> = BTreeMap::new();
    for d in old {
        *sums.entry(d.key).or_default() -= d.delta;
    }
    for d in new {
        *sums.entry(d.key).or_default() += d.delta;
    }
    Removal {
        counters: sums
            .into_iter()
            .filter(|(_, d)| *d != 0)
            .map(|(key, delta)| CounterDelta { key, delta })
            .collect(),
        visitors: entities(before).into_iter().collect(),
        facts,
    }
}

/// Applies a [`Removal`] to held rows the way a store does (counters added, zeros removed; the
/// visitors' facts deleted, then theirs written), for tests.
pub fn apply_removal(
    counters: &mut BTreeMap<CounterKey, i64>,
    facts: &mut Vec<Fact>,
    removal: Removal,
) {
    let gone: BTreeSet<(String, String)> = removal.visitors.into_iter().collect();
    facts.retain(|f| !gone.contains(&(f.brand_id.clone(), f.entity.clone())));
    apply(
        counters,
        facts,
        Changes {
            counters: removal.counters,
            facts: removal.facts,
        },
    );
}
