//! Reading the counting role's rows back, the same for every SQL backend: each backend says
//! how to take text, an instant or an integer out of a column ([`Cells`]), and these turn
//! the columns into the core's types in the order `counting_sql` selects them.

use crate::counting_sql::JsonLayout;
use crate::StoreError;
use cdp_core::counting::{
    CountedEvent, Counter, CounterDelta, CounterGroup, CounterKey, EventGroup, Fact, FactGroup,
    FactKind, ReadAnswers, ReadPlan, PROPERTIES,
};
use chrono::{DateTime, Utc};
use rustc_hash::FxHasher;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// One result row's columns, by position.
pub trait Cells {
    /// A text column (`None` for SQL null).
    fn text(&self, i: usize) -> Result<Option<String>, StoreError>;
    /// An instant column.
    fn time(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// An integer column.
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError>;
}

fn corrupt(op: &'static str, message: String) -> StoreError {
    StoreError::Corrupt { op, message }
}

fn need<T>(op: &'static str, what: &str, v: Option<T>) -> Result<T, StoreError> {
    v.ok_or_else(|| corrupt(op, format!("{what} is null")))
}

fn count(n: Option<i64>) -> u64 {
    u64::try_from(n.unwrap_or(0)).unwrap_or(0)
}

/// The [`PROPERTIES`] columns from `from` on, parsed.
fn properties(
    op: &'static str,
    r: &impl Cells,
    from: usize,
) -> Result<Vec<Option<serde_json::Value>>, StoreError> {
    let mut properties = Vec::with_capacity(PROPERTIES.len());
    for (i, name) in PROPERTIES.iter().enumerate() {
        properties.push(match r.text(from + i)? {
            Some(json) => Some(
                serde_json::from_str(&json)
                    .map_err(|e| corrupt(op, format!("property {name}: {e}")))?,
            ),
            None => None,
        });
    }
    Ok(properties)
}

/// A counted event (columns of `Dialect::counted_columns`).
pub fn counted_event(op: &'static str, r: &impl Cells) -> Result<CountedEvent, StoreError> {
    Ok(CountedEvent {
        seq: need(op, "seq", r.int(0)?)?,
        brand_id: need(op, "brand_id", r.text(1)?)?,
        anonymous_id: need(op, "anonymous_id", r.text(2)?)?,
        customer_id: r.text(3)?,
        session_id: r.text(4)?.unwrap_or_default(),
        event_type: need(op, "event_type", r.text(5)?)?,
        timestamp: need(op, "timestamp", r.time(6)?)?,
        predicted_persona: r.text(7)?.unwrap_or_default(),
        explicit_persona: r.text(8)?,
        current_stage: r.text(9)?.unwrap_or_default(),
        properties: properties(op, r, 10)?,
    })
}

/// A group of events that count alike (columns of `counting_sql::event_groups_in`).
pub fn event_group(op: &'static str, r: &impl Cells) -> Result<EventGroup, StoreError> {
    Ok(EventGroup {
        event_type: need(op, "event_type", r.text(0)?)?,
        predicted_persona: r.text(1)?.unwrap_or_default(),
        properties: properties(op, r, 2)?,
        events: count(r.int(2 + PROPERTIES.len())?),
    })
}

/// A fact (columns of `FACT_COLUMNS`).
pub fn fact(op: &'static str, r: &impl Cells) -> Result<Fact, StoreError> {
    let kind = need(op, "kind", r.text(2)?)?;
    Ok(Fact {
        brand_id: need(op, "brand_id", r.text(0)?)?,
        entity: need(op, "entity", r.text(1)?)?,
        kind: FactKind::parse(&kind).ok_or_else(|| corrupt(op, format!("fact kind {kind:?}")))?,
        part: need(op, "part", r.text(3)?)?,
        at: r.time(4)?,
        times: [r.time(5)?, r.time(6)?, r.time(7)?],
        labels: [r.text(8)?, r.text(9)?, r.text(10)?],
    })
}

/// A counter row (columns of `COUNTER_COLUMNS`).
pub fn counter_row(op: &'static str, r: &impl Cells) -> Result<CounterDelta, StoreError> {
    let name = need(op, "counter", r.text(1)?)?;
    Ok(CounterDelta {
        key: CounterKey {
            brand_id: need(op, "brand_id", r.text(0)?)?,
            counter: Counter::parse(&name)
                .ok_or_else(|| corrupt(op, format!("counter {name:?}")))?,
            bucket: need(op, "bucket", r.time(2)?)?,
            dims: [
                need(op, "dim1", r.text(3)?)?,
                need(op, "dim2", r.text(4)?)?,
                need(op, "dim3", r.text(5)?)?,
            ],
        },
        delta: need(op, "value", r.int(6)?)?,
    })
}

/// A group of a counter sum (`bucket, dim1, dim2, dim3, sum`).
pub fn counter_group(r: &impl Cells, by_bucket: bool) -> Result<CounterGroup, StoreError> {
    Ok(CounterGroup {
        bucket: if by_bucket { r.time(0)? } else { None },
        dims: [r.text(1)?, r.text(2)?, r.text(3)?],
        sum: r.int(4)?.unwrap_or(0),
    })
}

/// A group of a fact count (`labels..., count, also`).
pub fn fact_group(r: &impl Cells, labels: usize) -> Result<FactGroup, StoreError> {
    let mut out = Vec::with_capacity(labels);
    for i in 0..labels {
        out.push(r.text(i)?);
    }
    Ok(FactGroup {
        labels: out,
        count: count(r.int(labels)?),
        also: count(r.int(labels + 1)?),
    })
}

/// A row of a [`counting_sql::plan_as_json`](crate::counting_sql::plan_as_json) answer: a
/// JSON array, text as strings, instants as Postgres writes them in JSON (RFC 3339),
/// integers as numbers.
pub struct JsonCells<'a>(pub &'static str, pub &'a [serde_json::Value]);

impl Cells for JsonCells<'_> {
    fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.1.get(i) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(corrupt(self.0, format!("column {i}: {v} is not text"))),
        }
    }
    fn time(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.text(i)? {
            None => Ok(None),
            Some(t) => DateTime::parse_from_rfc3339(&t)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| corrupt(self.0, format!("column {i}: {t:?}: {e}"))),
        }
    }
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.1.get(i) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| corrupt(self.0, format!("column {i}: {v} is not an integer"))),
        }
    }
}

/// The answers to a plan from the columns of its
/// [`plan_as_json`](crate::counting_sql::plan_as_json) statement's one row.
pub fn answers_from_json(
    op: &'static str,
    plan: &ReadPlan,
    layout: &JsonLayout,
    cols: &[serde_json::Value],
) -> Result<ReadAnswers, StoreError> {
    fn rows<T>(
        op: &'static str,
        cols: &[serde_json::Value],
        at: Option<usize>,
        mut each: impl FnMut(&JsonCells<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let Some(at) = at else {
            return Ok(Vec::new());
        };
        let list = cols
            .get(at)
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| corrupt(op, format!("answer column {at} is not an array")))?;
        list.iter()
            .map(|r| match r.as_array() {
                Some(r) => each(&JsonCells(op, r)),
                None => Err(corrupt(
                    op,
                    format!("answer column {at}: a row is not an array"),
                )),
            })
            .collect()
    }
    let mut out = ReadAnswers::default();
    for (q, at) in plan.counters.iter().zip(&layout.counters) {
        out.counters
            .push(rows(op, cols, *at, |r| counter_group(r, q.by_bucket))?);
    }
    for (q, at) in plan.facts.iter().zip(&layout.facts) {
        out.facts
            .push(rows(op, cols, *at, |r| fact_group(r, q.group.len()))?);
    }
    for at in &layout.events {
        out.events
            .push(rows(op, cols, *at, |r| event_group(op, r))?);
    }
    out.last_event = rows(op, cols, layout.last_event, |r| r.time(0))?
        .into_iter()
        .next()
        .flatten();
    Ok(out)
}

/// Fact groups summed from the rows of `counting_sql::fact_rows` (`labels..., also flag`).
/// Rows are looked up by their borrowed labels, so a row whose group exists allocates
/// nothing (the 90-day states read sums some 120,000 rows into about a hundred groups).
#[derive(Debug, Default)]
pub struct FactGroups {
    groups: Vec<FactGroup>,
    /// Hash of the labels to the positions of the groups with that hash.
    index: HashMap<u64, Vec<usize>, BuildHasherDefault<FxHasher>>,
}

impl FactGroups {
    /// No groups yet.
    pub fn new() -> FactGroups {
        FactGroups::default()
    }

    /// Counts one row with these labels, meeting `also` or not.
    pub fn add(&mut self, labels: &[Option<&str>], also: bool) {
        let mut h = FxHasher::default();
        labels.hash(&mut h);
        let slots = self.index.entry(h.finish()).or_default();
        let same = |g: &FactGroup| {
            g.labels.len() == labels.len()
                && g.labels.iter().zip(labels).all(|(a, b)| a.as_deref() == *b)
        };
        let at = match slots.iter().copied().find(|i| same(&self.groups[*i])) {
            Some(i) => i,
            None => {
                self.groups.push(FactGroup {
                    labels: labels.iter().map(|l| l.map(str::to_owned)).collect(),
                    count: 0,
                    also: 0,
                });
                slots.push(self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[at];
        g.count += 1;
        g.also += u64::from(also);
    }

    /// The groups, in the order first seen.
    pub fn done(self) -> Vec<FactGroup> {
        self.groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fact_groups_count_rows_by_their_labels() {
        let mut g = FactGroups::new();
        g.add(&[Some("lawn"), None], true);
        g.add(&[Some("lawn"), Some("")], false);
        g.add(&[Some("lawn"), None], false);
        g.add(&[None, Some("lawn")], true);
        let got: Vec<(Vec<Option<String>>, u64, u64)> = g
            .done()
            .into_iter()
            .map(|g| (g.labels, g.count, g.also))
            .collect();
        let l = |s: &str| Some(s.to_owned());
        assert_eq!(
            got,
            vec![
                (vec![l("lawn"), None], 2, 1),
                (vec![l("lawn"), l("")], 1, 0),
                (vec![None, l("lawn")], 1, 1),
            ]
        );
    }
}
