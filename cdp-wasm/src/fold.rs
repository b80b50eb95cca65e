//! The rollup fold at the edge: the Postgres store's fold (`cdp_adapters::fold_sql`, the same
//! statements in the same order, the core's `fold` in between) as a state machine the Worker
//! drives over Hyperdrive inside one transaction per batch: [`Fold::next_statement`] gives the next
//! statement, [`Fold::answer`] takes its rows. The queue consumer runs it after each delivered
//! batch and a Cron Trigger runs it as a safety net; folds are serialised by the flusher lock,
//! so any number may run at once.

use crate::js_err;
use cdp_adapters::counting_rows::{counted_event, fact, JsonCells};
use cdp_adapters::counting_sql::{schema_prefix, Param, Stmt};
use cdp_adapters::fold_sql::PgFold;
use cdp_core::counting::{fold, CountedEvent, Fact};
use serde_json::{json, Value};
use std::collections::VecDeque;
use wasm_bindgen::prelude::*;

enum Step {
    Start,
    Asked,
    Locking,
    Taking,
    Holding(Vec<CountedEvent>),
    Writing(VecDeque<Stmt>),
    Done,
}

/// One batch of the fold (one transaction).
#[wasm_bindgen]
pub struct Fold {
    sql: PgFold,
    limit: i64,
    step: Step,
    folded: u32,
}

fn statement(s: &Stmt) -> String {
    let params: Vec<String> = s.params.iter().map(Param::text).collect();
    json!({ "sql": s.sql, "params": params }).to_string()
}

/// The one JSON value a `json_rows` statement answers, as rows.
fn json_value_rows(rows: &Value) -> Result<Vec<Vec<Value>>, JsError> {
    let list = rows
        .get(0)
        .and_then(|r| r.get(0))
        .and_then(Value::as_array)
        .ok_or_else(|| js_err("the fold's read answered no JSON array"))?;
    list.iter()
        .map(|r| {
            r.as_array()
                .cloned()
                .ok_or_else(|| js_err("a row of the fold's read is not an array"))
        })
        .collect()
}

#[wasm_bindgen]
impl Fold {
    /// A batch of at most `limit` events for the tables in `schema`.
    #[wasm_bindgen(constructor)]
    pub fn new(schema: &str, limit: u32) -> Fold {
        Fold {
            sql: PgFold::new(schema_prefix(schema)),
            limit: i64::from(limit.max(1)),
            step: Step::Start,
            folded: 0,
        }
    }

    /// The next statement to run (`{"sql", "params": [text...]}`), or nothing when the batch
    /// is done and the transaction may commit.
    pub fn next_statement(&mut self) -> Option<String> {
        let s = match &mut self.step {
            Step::Start => {
                self.step = Step::Asked;
                self.sql.any_pending()
            }
            Step::Locking => self.sql.lock(),
            Step::Taking => self.sql.take_json(self.limit),
            Step::Holding(events) => self.sql.held_json(events),
            Step::Writing(left) => left.pop_front()?,
            Step::Asked | Step::Done => return None,
        };
        Some(statement(&s))
    }

    /// The rows the last statement answered: a JSON array of rows, each an array of values.
    pub fn answer(&mut self, rows_json: &str) -> Result<(), JsError> {
        let op = "flush_rollups";
        let rows: Value = serde_json::from_str(rows_json).map_err(js_err)?;
        self.step = match std::mem::replace(&mut self.step, Step::Done) {
            Step::Asked => {
                let any = rows.get(0).and_then(|r| r.get(0)).and_then(Value::as_bool);
                if any == Some(true) {
                    Step::Locking
                } else {
                    Step::Done
                }
            }
            Step::Locking => Step::Taking,
            Step::Taking => {
                let events = json_value_rows(&rows)?
                    .iter()
                    .map(|r| counted_event(op, &JsonCells(op, r)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(js_err)?;
                if events.is_empty() {
                    Step::Done
                } else {
                    Step::Holding(events)
                }
            }
            Step::Holding(events) => {
                let held = json_value_rows(&rows)?
                    .iter()
                    .map(|r| fact(op, &JsonCells(op, r)))
                    .collect::<Result<Vec<Fact>, _>>()
                    .map_err(js_err)?;
                let n = events.len() as u64;
                self.folded = u32::try_from(n).unwrap_or(u32::MAX);
                Step::Writing(self.sql.writes(&fold::fold(&events, &held), n).into())
            }
            other => other,
        };
        Ok(())
    }

    /// Events this batch folded (at the limit: another batch may be pending).
    pub fn folded(&self) -> u32 {
        self.folded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_queue_ends_the_batch_after_one_statement_without_a_lock() {
        let mut f = Fold::new("s", 10);
        let first = f.next_statement().expect("the pending check");
        assert!(first.contains("select exists (select 1 from \\\"s\\\".cdp_rollup_pending)"));
        f.answer("[[false]]").expect("answer");
        assert_eq!(f.next_statement(), None);
        assert_eq!(f.folded(), 0);
    }

    #[test]
    fn a_pending_queue_locks_then_takes_and_nothing_taken_ends_the_batch() {
        let mut f = Fold::new("s", 10);
        f.next_statement();
        f.answer("[[true]]").expect("answer");
        assert!(f.next_statement().expect("lock").contains("for update"));
        f.answer("[[1]]").expect("answer");
        let take = f.next_statement().expect("take");
        assert!(take.starts_with("{\"params\":[\"10\"]") || take.contains("\"params\":[\"10\"]"));
        assert!(take.contains("with taken as (delete from"));
        f.answer("[[[]]]").expect("answer");
        assert_eq!(f.next_statement(), None);
        assert!(
            f.answer("[[1]]").is_ok(),
            "an answer after the end changes nothing"
        );
    }
}
