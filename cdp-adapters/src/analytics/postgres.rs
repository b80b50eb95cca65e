//! The counting role on Postgres: the fold (pending events through the core's fold into
//! `cdp_counters` and `cdp_facts`, one transaction per batch under the flusher lock) and the
//! dashboard reads (one pooled connection, one read-only repeatable-read transaction per
//! request, so one snapshot, and the whole plan as one statement answering JSON:
//! `counting_sql::plan_as_json`). Statements are unnamed and schema-qualified like the rest
//! of the backend, so they work through a transaction pooler.

use super::{AnalyticsError, RollupRows, StreamQuery};
use crate::codec::EVENT_COLUMNS;
use crate::counting_rows::{self, Cells};
use crate::counting_sql::{self, Dialect, Param, Stmt, COUNTER_COLUMNS, FACT_COLUMNS};
use crate::postgres::{col_list, event_from_pg, ident, pg_err, PostgresStore};
use crate::StoreError;
use cdp_core::counting::{fold, CounterDelta, Fact, ReadAnswers, ReadPlan};
use cdp_core::{BrandId, EventRow};
use chrono::{DateTime, Utc};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row, Transaction};

/// Most events one fold transaction takes: a first fold after an upgrade recounts every
/// stored event, in transactions of this many.
const FOLD_EVENTS: i64 = 100_000;

struct PgCells<'a>(&'static str, &'a Row);

impl Cells for PgCells<'_> {
    fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.1.try_get(i).map_err(|e| pg_err(self.0, e))
    }
    fn time(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.1.try_get(i).map_err(|e| pg_err(self.0, e))
    }
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.1.try_get(i).map_err(|e| pg_err(self.0, e))
    }
}

fn dialect(schema: &str) -> Dialect {
    Dialect::Postgres {
        prefix: format!("{}.", ident(schema)),
    }
}

/// Runs a generated statement.
async fn run(
    c: &impl GenericClient,
    op: &'static str,
    stmt: &Stmt,
) -> Result<Vec<Row>, StoreError> {
    let params: Vec<(&(dyn ToSql + Sync), Type)> = stmt
        .params
        .iter()
        .map(|p| match p {
            Param::Text(s) => (s as &(dyn ToSql + Sync), Type::TEXT),
            Param::Time(t) => (t as &(dyn ToSql + Sync), Type::TIMESTAMPTZ),
        })
        .collect();
    c.query_typed(&stmt.sql, &params)
        .await
        .map_err(|e| pg_err(op, e))
}

impl PostgresStore {
    /// Runs `f` in a read-only repeatable-read transaction on a pooled connection, without
    /// parallel plans.
    async fn read<T>(
        &self,
        op: &'static str,
        f: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.client(op).await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| pg_err(op, e))?;
        // Dashboard reads are short index range scans over the rollups: a parallel plan
        // (which the planner picks for a union of a few hundred counter rows) spends more
        // starting its workers (15 ms on two cores) than the whole read takes without.
        tx.batch_execute("set local max_parallel_workers_per_gather = 0")
            .await
            .map_err(|e| pg_err(op, e))?;
        let out = f(&tx).await?;
        tx.commit().await.map_err(|e| pg_err(op, e))?;
        Ok(out)
    }

    pub(crate) async fn answer(
        &self,
        brand: &BrandId,
        plan: &ReadPlan,
    ) -> Result<ReadAnswers, StoreError> {
        let op = "dashboard_read";
        let brand = brand.as_str();
        // The rollups trail the event stream by up to one fold; fold what is pending first,
        // so the answers count every event stored before this request.
        self.flush_rollups().await?;
        let d = dialect(self.schema());
        let (stmt, layout) = counting_sql::plan_as_json(&d, brand, plan);
        self.read(op, async |tx| {
            let rows = run(tx, op, &stmt).await?;
            let row = rows.first().ok_or_else(|| StoreError::Corrupt {
                op,
                message: "the read answered no row".into(),
            })?;
            let cols = (0..row.len())
                .map(|i| row.try_get::<_, serde_json::Value>(i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| pg_err(op, e))?;
            counting_rows::answers_from_json(op, plan, &layout, &cols)
        })
        .await
    }

    pub(crate) async fn recent_events(
        &self,
        brand: &BrandId,
        query: &StreamQuery,
    ) -> Result<Vec<EventRow>, AnalyticsError> {
        let op = "recent_events";
        let brand = brand.as_str();
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let stream = format!(
            "select {} from {}.cdp_events where brand_id = $1 \
             and ($2::text is null or event_type = $2) \
             and ($3::text is null or predicted_persona = $3) \
             order by \"timestamp\" desc, seq desc limit $4",
            col_list(&EVENT_COLUMNS),
            ident(self.schema())
        );
        Ok(self
            .read(op, async |tx| {
                let rows = tx
                    .query_typed(
                        &stream,
                        &[
                            (&brand, Type::TEXT),
                            (&query.event_type, Type::TEXT),
                            (&query.persona, Type::TEXT),
                            (&limit, Type::INT8),
                        ],
                    )
                    .await
                    .map_err(|e| pg_err(op, e))?;
                rows.iter().map(|r| event_from_pg(op, r)).collect()
            })
            .await?)
    }

    pub(crate) async fn counted_events(
        &self,
    ) -> Result<Vec<cdp_core::counting::CountedEvent>, StoreError> {
        let op = "counted_events";
        let d = dialect(self.schema());
        self.read(op, async |tx| {
            let sql = format!(
                "select {} from {} order by seq",
                d.counted_columns(),
                d.table("cdp_events")
            );
            let rows = tx.query_typed(&sql, &[]).await.map_err(|e| pg_err(op, e))?;
            rows.iter()
                .map(|r| counting_rows::counted_event(op, &PgCells(op, r)))
                .collect()
        })
        .await
    }

    pub(crate) async fn rollup_rows(&self) -> Result<RollupRows, StoreError> {
        let op = "rollup_rows";
        self.flush_rollups().await?;
        let d = dialect(self.schema());
        self.read(op, async |tx| {
            let counters = tx
                .query_typed(
                    &format!(
                        "select {COUNTER_COLUMNS} from {} order by 1, 2, 3, 4, 5, 6",
                        d.table("cdp_counters")
                    ),
                    &[],
                )
                .await
                .map_err(|e| pg_err(op, e))?;
            let facts = tx
                .query_typed(
                    &format!("select {FACT_COLUMNS} from {}", d.table("cdp_facts")),
                    &[],
                )
                .await
                .map_err(|e| pg_err(op, e))?;
            let mut out = RollupRows {
                counters: counters
                    .iter()
                    .map(|r| counting_rows::counter_row(op, &PgCells(op, r)))
                    .collect::<Result<_, _>>()?,
                facts: facts
                    .iter()
                    .map(|r| counting_rows::fact(op, &PgCells(op, r)))
                    .collect::<Result<_, _>>()?,
            };
            out.counters.sort();
            out.facts.sort();
            Ok(out)
        })
        .await
    }

    /// Folds the pending events into the rollups, a batch of at most [`FOLD_EVENTS`] per
    /// transaction, until none is pending; returns how many it folded. Folds are serialised by
    /// the flusher row's lock, so any number of callers may fold at any time.
    pub(crate) async fn fold_pending(&self) -> Result<u64, StoreError> {
        let op = "flush_rollups";
        let e = |err| pg_err(op, err);
        let d = dialect(self.schema());
        let (pending, flusher) = (d.table("cdp_rollup_pending"), d.table("cdp_rollup_flusher"));
        let mut client = self.client(op).await?;
        let mut folded = 0u64;
        loop {
            let tx = client.transaction().await.map_err(e)?;
            // An empty queue takes no lock and writes nothing (every dashboard read folds).
            let any: bool = tx
                .query_typed_one(&format!("select exists (select 1 from {pending})"), &[])
                .await
                .map_err(e)?
                .try_get(0)
                .map_err(e)?;
            if !any {
                tx.commit().await.map_err(e)?;
                return Ok(folded);
            }
            tx.query_typed(&format!("select 1 from {flusher} for update"), &[])
                .await
                .map_err(e)?;
            // Exactly the rows this statement deletes are folded: an event committed
            // meanwhile stays pending for the next fold.
            let rows = tx
                .query_typed(
                    &format!(
                        "with taken as (delete from {pending} where ctid = any(array( \
                            select ctid from {pending} limit $1)) returning seq) \
                         select {} from {} where seq in (select seq from taken)",
                        d.counted_columns(),
                        d.table("cdp_events")
                    ),
                    &[(&FOLD_EVENTS, Type::INT8)],
                )
                .await
                .map_err(e)?;
            let events = rows
                .iter()
                .map(|r| counting_rows::counted_event(op, &PgCells(op, r)))
                .collect::<Result<Vec<_>, _>>()?;
            let n = events.len() as u64;
            if n > 0 {
                let held = held_facts(&tx, &d, &events).await?;
                write_changes(&tx, &d, fold::fold(&events, &held)).await?;
                tx.query_typed(
                    &format!(
                        "update {flusher} set flushed_at = now(), \
                         flushed_rows = flushed_rows + $1"
                    ),
                    &[(&i64::try_from(n).unwrap_or(i64::MAX), Type::INT8)],
                )
                .await
                .map_err(e)?;
            }
            tx.commit().await.map_err(e)?;
            folded += n;
            if n == 0 || i64::try_from(n).unwrap_or(i64::MAX) < FOLD_EVENTS {
                return Ok(folded);
            }
        }
    }
}

/// Every fact the store holds for the visitors of `events`.
async fn held_facts(
    tx: &Transaction<'_>,
    d: &Dialect,
    events: &[cdp_core::counting::CountedEvent],
) -> Result<Vec<Fact>, StoreError> {
    let op = "flush_rollups";
    let (brands, visitors): (Vec<String>, Vec<String>) = fold::entities(events).into_iter().unzip();
    let rows = tx
        .query_typed(
            &format!(
                "select {FACT_COLUMNS} from {} where (brand_id, entity) in \
                 (select * from unnest($1::text[], $2::text[]))",
                d.table("cdp_facts")
            ),
            &[(&brands, Type::TEXT_ARRAY), (&visitors, Type::TEXT_ARRAY)],
        )
        .await
        .map_err(|e| pg_err(op, e))?;
    rows.iter()
        .map(|r| counting_rows::fact(op, &PgCells(op, r)))
        .collect()
}

/// Counter deltas as the arrays of one `unnest`.
#[derive(Default)]
struct CounterColumns<'a> {
    brands: Vec<&'a str>,
    counters: Vec<&'static str>,
    buckets: Vec<DateTime<Utc>>,
    dims: [Vec<&'a str>; 3],
    values: Vec<i64>,
}

impl<'a> CounterColumns<'a> {
    fn of(c: &'a [CounterDelta]) -> CounterColumns<'a> {
        let mut cols = CounterColumns::default();
        for x in c {
            cols.brands.push(&x.key.brand_id);
            cols.counters.push(x.key.counter.name());
            cols.buckets.push(x.key.bucket);
            for (i, dim) in x.key.dims.iter().enumerate() {
                cols.dims[i].push(dim);
            }
            cols.values.push(x.delta);
        }
        cols
    }

    fn params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        vec![
            (&self.brands, Type::TEXT_ARRAY),
            (&self.counters, Type::TEXT_ARRAY),
            (&self.buckets, Type::TIMESTAMPTZ_ARRAY),
            (&self.dims[0], Type::TEXT_ARRAY),
            (&self.dims[1], Type::TEXT_ARRAY),
            (&self.dims[2], Type::TEXT_ARRAY),
            (&self.values, Type::INT8_ARRAY),
        ]
    }
}

/// Adds the counter deltas (deleting rows that reach zero) and writes the facts whole.
async fn write_changes(
    tx: &Transaction<'_>,
    d: &Dialect,
    changes: fold::Changes,
) -> Result<(), StoreError> {
    let op = "flush_rollups";
    let e = |err| pg_err(op, err);
    let counters = d.table("cdp_counters");
    let all = CounterColumns::of(&changes.counters);
    let unnest = "unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], \
                  $6::text[], $7::int8[])";
    if !changes.counters.is_empty() {
        tx.query_typed(
            &format!(
                "insert into {counters} as c ({COUNTER_COLUMNS}) select * from {unnest} \
                 on conflict (brand_id, counter, bucket, dim1, dim2, dim3) \
                 do update set value = c.value + excluded.value"
            ),
            &all.params(),
        )
        .await
        .map_err(e)?;
    }
    let lowered: Vec<CounterDelta> = changes
        .counters
        .iter()
        .filter(|c| c.delta < 0)
        .cloned()
        .collect();
    if !lowered.is_empty() {
        let low = CounterColumns::of(&lowered);
        tx.query_typed(
            &format!(
                "delete from {counters} c using {unnest} \
                   as k(brand_id, counter, bucket, dim1, dim2, dim3, value) \
                 where c.brand_id = k.brand_id and c.counter = k.counter \
                   and c.bucket = k.bucket and c.dim1 = k.dim1 and c.dim2 = k.dim2 \
                   and c.dim3 = k.dim3 and c.value = 0"
            ),
            &low.params(),
        )
        .await
        .map_err(e)?;
    }
    if !changes.facts.is_empty() {
        let f = &changes.facts;
        let text = |g: fn(&Fact) -> &str| f.iter().map(g).collect::<Vec<&str>>();
        let time = |i: usize| {
            f.iter()
                .map(|x| if i == 0 { x.at } else { x.times[i - 1] })
                .collect::<Vec<_>>()
        };
        let label = |i: usize| f.iter().map(|x| x.labels[i].as_deref()).collect::<Vec<_>>();
        let (brands, entities, kinds, parts) = (
            text(|x| &x.brand_id),
            text(|x| &x.entity),
            text(|x| x.kind.name()),
            text(|x| &x.part),
        );
        let times = [time(0), time(1), time(2), time(3)];
        let labels = [label(0), label(1), label(2)];
        tx.query_typed(
            &format!(
                "insert into {} as f ({FACT_COLUMNS}) select * from unnest($1::text[], \
                   $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], \
                   $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::text[]) \
                 on conflict (brand_id, entity, kind, part) do update set at = excluded.at, \
                   t1 = excluded.t1, t2 = excluded.t2, t3 = excluded.t3, g1 = excluded.g1, \
                   g2 = excluded.g2, g3 = excluded.g3",
                d.table("cdp_facts")
            ),
            &[
                (&brands, Type::TEXT_ARRAY),
                (&entities, Type::TEXT_ARRAY),
                (&kinds, Type::TEXT_ARRAY),
                (&parts, Type::TEXT_ARRAY),
                (&times[0], Type::TIMESTAMPTZ_ARRAY),
                (&times[1], Type::TIMESTAMPTZ_ARRAY),
                (&times[2], Type::TIMESTAMPTZ_ARRAY),
                (&times[3], Type::TIMESTAMPTZ_ARRAY),
                (&labels[0], Type::TEXT_ARRAY),
                (&labels[1], Type::TEXT_ARRAY),
                (&labels[2], Type::TEXT_ARRAY),
            ],
        )
        .await
        .map_err(e)?;
    }
    Ok(())
}
