//! The Postgres fold's statements, as data: take the pending events under the flusher lock,
//! read the facts held for their visitors, write the core's changes. The native Postgres store
//! (`analytics/postgres.rs`) and the Worker (`cdp-wasm/src/fold.rs`, over Hyperdrive) run the
//! same statements in the same order, one transaction per batch; only how parameters travel
//! differs (typed natively, as Postgres text input at the edge: [`Param::text`]).

use crate::counting_sql::{json_rows, Dialect, Param, Stmt, COUNTER_COLUMNS, FACT_COLUMNS};
use cdp_core::counting::{fold, CountedEvent, CounterDelta};

/// The fold's statements for one schema.
#[derive(Debug, Clone)]
pub struct PgFold {
    d: Dialect,
}

fn stmt(sql: String, params: Vec<Param>) -> Stmt {
    Stmt { sql, params }
}

/// Counter deltas as the arrays of one `unnest`, in `COUNTER_COLUMNS` order.
fn counter_arrays(c: &[&CounterDelta]) -> Vec<Param> {
    let text = |f: &dyn Fn(&CounterDelta) -> String| {
        Param::TextArray(c.iter().map(|x| Some(f(x))).collect())
    };
    vec![
        text(&|x| x.key.brand_id.clone()),
        text(&|x| x.key.counter.name().to_owned()),
        Param::TimeArray(c.iter().map(|x| Some(x.key.bucket)).collect()),
        text(&|x| x.key.dims[0].clone()),
        text(&|x| x.key.dims[1].clone()),
        text(&|x| x.key.dims[2].clone()),
        Param::IntArray(c.iter().map(|x| x.delta).collect()),
    ]
}

const COUNTER_UNNEST: &str = "unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], \
                              $5::text[], $6::text[], $7::int8[])";

impl PgFold {
    /// The statements for tables under `prefix` (`"schema".`).
    pub fn new(prefix: String) -> PgFold {
        PgFold {
            d: Dialect::Postgres { prefix },
        }
    }

    /// Whether any event waits to be folded (one boolean; an empty queue takes no lock).
    pub fn any_pending(&self) -> Stmt {
        stmt(
            format!(
                "select exists (select 1 from {})",
                self.d.table("cdp_rollup_pending")
            ),
            vec![],
        )
    }

    /// Takes the flusher lock: folds are serialised, so any number of callers may fold.
    pub fn lock(&self) -> Stmt {
        stmt(
            format!(
                "select 1 from {} for update",
                self.d.table("cdp_rollup_flusher")
            ),
            vec![],
        )
    }

    /// Takes at most `limit` pending events off the queue and reads them (columns of
    /// `Dialect::counted_columns`). Exactly the rows it deletes are folded: an event
    /// committed meanwhile stays pending for the next fold.
    pub fn take(&self, limit: i64) -> Stmt {
        let (with, select) = self.take_parts();
        stmt(format!("{with} {select}"), vec![Param::Int(limit)])
    }

    /// The take's data-modifying `with` (which must stay at the top level) and its select.
    fn take_parts(&self) -> (String, String) {
        let pending = self.d.table("cdp_rollup_pending");
        (
            format!(
                "with taken as (delete from {pending} where ctid = any(array( \
                    select ctid from {pending} limit $1::int8)) returning seq)"
            ),
            format!(
                "select {} from {} where seq in (select seq from taken)",
                self.d.counted_columns(),
                self.d.table("cdp_events")
            ),
        )
    }

    /// [`PgFold::take`] answering one JSON value (see `counting_sql::json_rows`).
    pub fn take_json(&self, limit: i64) -> Stmt {
        let (with, select) = self.take_parts();
        let rows = json_rows(&select, self.d.counted_column_list().len());
        stmt(format!("{with} {rows}"), vec![Param::Int(limit)])
    }

    /// [`PgFold::held`] answering one JSON value.
    pub fn held_json(&self, events: &[CountedEvent]) -> Stmt {
        let s = self.held(events);
        stmt(json_rows(&s.sql, FACT_COLUMNS.split(',').count()), s.params)
    }

    /// Every fact the store holds for the visitors of `events` (columns of `FACT_COLUMNS`).
    pub fn held(&self, events: &[CountedEvent]) -> Stmt {
        let (brands, visitors): (Vec<Option<String>>, Vec<Option<String>>) = fold::entities(events)
            .into_iter()
            .map(|(b, v)| (Some(b), Some(v)))
            .unzip();
        stmt(
            format!(
                "select {FACT_COLUMNS} from {} where (brand_id, entity) in \
                 (select * from unnest($1::text[], $2::text[]))",
                self.d.table("cdp_facts")
            ),
            vec![Param::TextArray(brands), Param::TextArray(visitors)],
        )
    }

    /// The writes of a fold of `folded` events: counter deltas added (rows that reach zero
    /// deleted), facts written whole, the flusher's tally moved. Statements with nothing to
    /// write are left out.
    pub fn writes(&self, changes: &fold::Changes, folded: u64) -> Vec<Stmt> {
        let counters = self.d.table("cdp_counters");
        let mut out = Vec::new();
        let all: Vec<&CounterDelta> = changes.counters.iter().collect();
        if !all.is_empty() {
            out.push(stmt(
                format!(
                    "insert into {counters} as c ({COUNTER_COLUMNS}) select * from {COUNTER_UNNEST} \
                     on conflict (brand_id, counter, bucket, dim1, dim2, dim3) \
                     do update set value = c.value + excluded.value"
                ),
                counter_arrays(&all),
            ));
        }
        let lowered: Vec<&CounterDelta> = all.iter().copied().filter(|c| c.delta < 0).collect();
        if !lowered.is_empty() {
            out.push(stmt(
                format!(
                    "delete from {counters} c using {COUNTER_UNNEST} \
                       as k(brand_id, counter, bucket, dim1, dim2, dim3, value) \
                     where c.brand_id = k.brand_id and c.counter = k.counter \
                       and c.bucket = k.bucket and c.dim1 = k.dim1 and c.dim2 = k.dim2 \
                       and c.dim3 = k.dim3 and c.value = 0"
                ),
                counter_arrays(&lowered),
            ));
        }
        let f = &changes.facts;
        if !f.is_empty() {
            let text = |g: &dyn Fn(&cdp_core::counting::Fact) -> Option<String>| {
                Param::TextArray(f.iter().map(g).collect())
            };
            let time = |i: usize| {
                Param::TimeArray(
                    f.iter()
                        .map(|x| if i == 0 { x.at } else { x.times[i - 1] })
                        .collect(),
                )
            };
            let label =
                |i: usize| Param::TextArray(f.iter().map(|x| x.labels[i].clone()).collect());
            out.push(stmt(
                format!(
                    "insert into {} as f ({FACT_COLUMNS}) select * from unnest($1::text[], \
                       $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], \
                       $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::text[]) \
                     on conflict (brand_id, entity, kind, part) do update set at = excluded.at, \
                       t1 = excluded.t1, t2 = excluded.t2, t3 = excluded.t3, g1 = excluded.g1, \
                       g2 = excluded.g2, g3 = excluded.g3",
                    self.d.table("cdp_facts")
                ),
                vec![
                    text(&|x| Some(x.brand_id.clone())),
                    text(&|x| Some(x.entity.clone())),
                    text(&|x| Some(x.kind.name().to_owned())),
                    text(&|x| Some(x.part.clone())),
                    time(0),
                    time(1),
                    time(2),
                    time(3),
                    label(0),
                    label(1),
                    label(2),
                ],
            ));
        }
        if folded > 0 {
            out.push(stmt(
                format!(
                    "update {} set flushed_at = now(), flushed_rows = flushed_rows + $1::int8",
                    self.d.table("cdp_rollup_flusher")
                ),
                vec![Param::Int(i64::try_from(folded).unwrap_or(i64::MAX))],
            ));
        }
        out
    }
}
