//! The counting role on Postgres: the fold (pending events through the core's fold into
//! `cdp_counters` and `cdp_facts`, one transaction per batch under the flusher lock) and the
//! dashboard reads (one pooled connection, one read-only repeatable-read transaction per
//! request, so one snapshot, and the whole plan as one statement answering JSON:
//! `counting_sql::plan_as_json`). Statements are unnamed and schema-qualified like the rest
//! of the backend, so they work through a transaction pooler.

use super::{AnalyticsError, RollupRows, StreamQuery, TextCell};
use crate::counting_rows::{self, Cells};
use crate::counting_sql::{self, Dialect, Param, Stmt, COUNTER_COLUMNS, FACT_COLUMNS};
use crate::fold_sql::PgFold;
use crate::postgres::{event_from_pg, pg_err, PostgresStore};
use crate::StoreError;
use cdp_core::counting::{fold, ReadAnswers, ReadPlan};
use cdp_core::{BrandId, EventRow};
use chrono::{DateTime, Utc};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{GenericClient, Row, Transaction};

/// Most events one fold transaction takes: a first fold after an upgrade recounts every
/// stored event, in transactions of this many.
const FOLD_EVENTS: i64 = 100_000;

pub(crate) struct PgCells<'a>(pub &'static str, pub &'a Row);

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
        prefix: counting_sql::schema_prefix(schema),
    }
}

/// Runs a generated statement.
pub(crate) async fn run(
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
            Param::Int(n) => (n as &(dyn ToSql + Sync), Type::INT8),
            Param::TextArray(v) => (v as &(dyn ToSql + Sync), Type::TEXT_ARRAY),
            Param::TimeArray(v) => (v as &(dyn ToSql + Sync), Type::TIMESTAMPTZ_ARRAY),
            Param::IntArray(v) => (v as &(dyn ToSql + Sync), Type::INT8_ARRAY),
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
        let stmt = counting_sql::recent_events(
            &counting_sql::schema_prefix(self.schema()),
            brand.as_str(),
            query,
        );
        Ok(self
            .read(op, async |tx| {
                run(tx, op, &stmt)
                    .await?
                    .iter()
                    .map(|r| event_from_pg(op, r))
                    .collect()
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

    pub(crate) async fn text_cells(&self) -> Result<Vec<TextCell>, StoreError> {
        let op = "text_cells";
        let schema = self.schema().to_owned();
        let prefix = counting_sql::schema_prefix(&schema);
        self.read(op, async |tx| {
            let cols = tx
                .query_typed(
                    "select table_name::text, column_name::text from information_schema.columns \
                     where table_schema = $1 and data_type in ('text', 'jsonb', 'json', \
                     'character varying', 'character') order by 1, 2",
                    &[(&schema, Type::TEXT)],
                )
                .await
                .map_err(|e| pg_err(op, e))?;
            let mut out = Vec::new();
            for r in cols {
                let (t, col): (String, String) = (r.get(0), r.get(1));
                let rows = tx
                    .query_typed(
                        &format!(
                            "select \"{col}\"::text from {prefix}\"{t}\" where \"{col}\" is not null"
                        ),
                        &[],
                    )
                    .await
                    .map_err(|e| pg_err(op, e))?;
                for x in rows {
                    out.push(TextCell {
                        table: t.clone(),
                        column: col.clone(),
                        value: x.try_get(0).map_err(|e| pg_err(op, e))?,
                    });
                }
            }
            Ok(out)
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
        let sql = PgFold::new(counting_sql::schema_prefix(self.schema()));
        let mut client = self.client(op).await?;
        let mut folded = 0u64;
        loop {
            let tx = client.transaction().await.map_err(e)?;
            // An empty queue takes no lock and writes nothing (every dashboard read folds).
            let any: bool = run(&*tx, op, &sql.any_pending())
                .await?
                .first()
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(e)?
                .unwrap_or(false);
            if !any {
                tx.commit().await.map_err(e)?;
                return Ok(folded);
            }
            run(&*tx, op, &sql.lock()).await?;
            let events = run(&*tx, op, &sql.take(FOLD_EVENTS))
                .await?
                .iter()
                .map(|r| counting_rows::counted_event(op, &PgCells(op, r)))
                .collect::<Result<Vec<_>, _>>()?;
            let n = events.len() as u64;
            if n > 0 {
                let held = run(&*tx, op, &sql.held(&events))
                    .await?
                    .iter()
                    .map(|r| counting_rows::fact(op, &PgCells(op, r)))
                    .collect::<Result<Vec<_>, _>>()?;
                for w in sql.writes(&fold::fold(&events, &held), n) {
                    run(&*tx, op, &w).await?;
                }
            }
            tx.commit().await.map_err(e)?;
            folded += n;
            if n == 0 || i64::try_from(n).unwrap_or(i64::MAX) < FOLD_EVENTS {
                return Ok(folded);
            }
        }
    }
}
