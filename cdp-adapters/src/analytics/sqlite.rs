//! The counting role on the embedded SQLite store. Dashboard reads run on a second,
//! read-only connection inside one read transaction, so a request sees one snapshot and never
//! waits for (or holds up) the writer's connection. The fold runs on the rollup file's own
//! connection (`SqliteStore::flush_rollups`). Timestamps are the stored RFC 3339 text.

use super::{AnalyticsError, RollupRows, StreamQuery, TextCell};
use crate::codec::{self, EVENT_COLUMNS};
use crate::counting_rows::{self, Cells, FactGroups};
use crate::counting_sql::{self, Dialect, Param, Stmt, COUNTER_COLUMNS, FACT_COLUMNS};
use crate::sqlite::{event_from_sql, quoted, sql_err, SqliteStore};
use crate::StoreError;
use cdp_core::counting::{
    fold, CountedEvent, Counter, CounterGroup, Fact, ReadAnswers, ReadPlan, Window,
};
use cdp_core::{BrandId, EventRow};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, Row};

/// How long a read waits on a lock (a checkpoint, a migration) before giving up.
const READ_BUSY_TIMEOUT_MS: u64 = 5_000;

/// Prepared statements the reader keeps: every statement of the dashboard's plans.
const READ_STATEMENT_CACHE: usize = 128;

/// How much of each database file the reader maps into memory (address space, not memory:
/// the pages are the OS page cache's).
const READ_MMAP_BYTES: u64 = 1 << 30;

fn unavailable(op: &'static str, message: String) -> StoreError {
    StoreError::Unavailable { op, message }
}

struct LiteCells<'a, 'r>(&'static str, &'a Row<'r>);

impl<'a> LiteCells<'a, '_> {
    /// A text column, borrowed from the row (`None` for SQL null).
    fn text_ref(&self, i: usize) -> Result<Option<&'a str>, StoreError> {
        self.1
            .get_ref(i)
            .and_then(|v| v.as_str_or_null().map_err(Into::into))
            .map_err(|e| sql_err(self.0, e))
    }
}

impl Cells for LiteCells<'_, '_> {
    fn text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.1.get(i).map_err(|e| sql_err(self.0, e))
    }
    fn time(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.text(i)? {
            Some(t) => codec::parse_ts(self.0, &t).map(Some),
            None => Ok(None),
        }
    }
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.1.get(i).map_err(|e| sql_err(self.0, e))
    }
}

fn bound(p: &Param) -> rusqlite::types::Value {
    match p {
        Param::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Param::Time(t) => rusqlite::types::Value::Text(codec::ts_text(*t)),
        Param::Int(n) => rusqlite::types::Value::Integer(*n),
        // SQLite has no arrays; no SQLite statement binds one.
        p @ (Param::TextArray(_) | Param::TimeArray(_) | Param::IntArray(_)) => {
            rusqlite::types::Value::Text(p.text())
        }
    }
}

/// Runs a generated statement, each row through `f`.
fn run<T>(
    c: &Connection,
    op: &'static str,
    stmt: &Stmt,
    mut f: impl FnMut(&LiteCells<'_, '_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let e = |err| sql_err(op, err);
    let mut prepared = c.prepare_cached(&stmt.sql).map_err(e)?;
    let mut rows = prepared
        .query(rusqlite::params_from_iter(stmt.params.iter().map(bound)))
        .map_err(e)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(e)? {
        out.push(f(&LiteCells(op, r))?);
    }
    Ok(out)
}

/// Answers a plan on `c`, inside the caller's transaction.
fn answer_on(c: &Connection, brand: &str, plan: &ReadPlan) -> Result<ReadAnswers, StoreError> {
    let op = "dashboard_read";
    let d = Dialect::Sqlite;
    let mut out = ReadAnswers::default();
    // Sums over the same ranges (the metrics plan sums the current window's events three
    // ways) read the rows once and are grouped here: one index range scan instead of three,
    // and SQLite's GROUP BY sorts.
    type Read<'a> = (&'a [(Counter, Window)], Vec<CounterGroup>);
    let mut read: Vec<Read<'_>> = Vec::new();
    for q in &plan.counters {
        let at = match read.iter().position(|(r, _)| *r == q.ranges.as_slice()) {
            Some(at) => at,
            None => {
                let rows = match counting_sql::counter_rows(&d, brand, &q.ranges) {
                    None => Vec::new(),
                    Some(stmt) => run(c, op, &stmt, |r| counting_rows::counter_group(r, true))?,
                };
                read.push((&q.ranges, rows));
                read.len() - 1
            }
        };
        out.counters.push(q.group(&read[at].1));
    }
    for q in &plan.facts {
        out.facts.push(if q.group.is_empty() {
            match counting_sql::fact_count(&d, brand, q) {
                None => Vec::new(),
                Some(stmt) => run(c, op, &stmt, |r| counting_rows::fact_group(r, 0))?,
            }
        } else {
            // Grouped here, not by SQLite's sorting GROUP BY (see `counting_sql::fact_rows`).
            match counting_sql::fact_rows(&d, brand, q) {
                None => Vec::new(),
                Some(stmt) => {
                    let n = q.group.len();
                    let mut groups = FactGroups::new();
                    run(c, op, &stmt, |r| {
                        let mut labels = [None; 3];
                        for (i, l) in labels.iter_mut().enumerate().take(n) {
                            *l = r.text_ref(i)?;
                        }
                        groups.add(&labels[..n], r.int(n)? == Some(1));
                        Ok(())
                    })?;
                    groups.done()
                }
            }
        });
    }
    for w in &plan.events {
        out.events
            .push(match counting_sql::event_groups_in(&d, brand, *w) {
                None => Vec::new(),
                Some(stmt) => run(c, op, &stmt, |r| counting_rows::event_group(op, r))?,
            });
    }
    if plan.last_event {
        out.last_event = run(c, op, &counting_sql::last_event(&d, brand), |r| r.time(0))?
            .into_iter()
            .next()
            .flatten();
    }
    Ok(out)
}

/// Folds the next events after the mark (at most `limit`) in the caller's transaction on the
/// rollup file's connection, and moves the mark past them; returns how many it folded.
pub(crate) fn fold_next(c: &Connection, limit: usize) -> Result<u64, StoreError> {
    let op = "flush_rollups";
    let e = |err| sql_err(op, err);
    let d = Dialect::Sqlite;
    let events = run(
        c,
        op,
        &Stmt {
            sql: format!(
                "select {} from cdp_events where seq > (select folded_seq from cdp_rollup_mark) \
                 order by seq limit {limit}",
                d.counted_columns()
            ),
            params: vec![],
        },
        |r| counting_rows::counted_event(op, r),
    )?;
    let Some(last) = events.iter().map(|x| x.seq).max() else {
        return Ok(0);
    };
    let held = held_facts(c, &events)?;
    let changes = fold::fold(&events, &held);
    write_changes(c, op, &changes)?;
    c.execute("update cdp_rollup_mark set folded_seq = ?1", [last])
        .map_err(e)?;
    Ok(events.len() as u64)
}

/// Writes a fold's changes on the rollup file's connection: counter deltas added (rows that
/// reach zero deleted), facts written whole.
pub(crate) fn write_changes(
    c: &Connection,
    op: &'static str,
    changes: &fold::Changes,
) -> Result<(), StoreError> {
    let e = |err| sql_err(op, err);
    {
        let mut add = c
            .prepare_cached(&format!(
                "insert into cdp_counters ({COUNTER_COLUMNS}) values (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 on conflict (brand_id, counter, bucket, dim1, dim2, dim3) \
                 do update set value = value + excluded.value"
            ))
            .map_err(e)?;
        let mut zero = c
            .prepare_cached(
                "delete from cdp_counters where brand_id = ?1 and counter = ?2 and bucket = ?3 \
                 and dim1 = ?4 and dim2 = ?5 and dim3 = ?6 and value = 0",
            )
            .map_err(e)?;
        for x in &changes.counters {
            let k = &x.key;
            let bucket = codec::ts_text(k.bucket);
            add.execute(params![
                k.brand_id,
                k.counter.name(),
                bucket,
                k.dims[0],
                k.dims[1],
                k.dims[2],
                x.delta
            ])
            .map_err(e)?;
            if x.delta < 0 {
                zero.execute(params![
                    k.brand_id,
                    k.counter.name(),
                    bucket,
                    k.dims[0],
                    k.dims[1],
                    k.dims[2]
                ])
                .map_err(e)?;
            }
        }
        let mut put = c
            .prepare_cached(&format!(
                "insert or replace into cdp_facts ({FACT_COLUMNS}) \
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ))
            .map_err(e)?;
        let ts = |t: Option<DateTime<Utc>>| t.map(codec::ts_text);
        for f in &changes.facts {
            put.execute(params![
                f.brand_id,
                f.entity,
                f.kind.name(),
                f.part,
                ts(f.at),
                ts(f.times[0]),
                ts(f.times[1]),
                ts(f.times[2]),
                f.labels[0],
                f.labels[1],
                f.labels[2]
            ])
            .map_err(e)?;
        }
    }
    Ok(())
}

/// The folded events (at or below the mark) of `visitors`, on the rollup file's connection:
/// what the rollups hold of them.
pub(crate) fn folded_events_of(
    c: &Connection,
    op: &'static str,
    brand: &str,
    visitors: &[String],
) -> Result<Vec<CountedEvent>, StoreError> {
    let stmt = Stmt {
        sql: format!(
            "select {} from cdp_events where brand_id = ?1 \
             and anonymous_id in (select value from json_each(?2)) \
             and seq <= (select folded_seq from cdp_rollup_mark) order by seq",
            Dialect::Sqlite.counted_columns()
        ),
        params: vec![
            Param::Text(brand.to_owned()),
            Param::Text(crate::sqlite::json_list(visitors)),
        ],
    };
    run(c, op, &stmt, |r| counting_rows::counted_event(op, r))
}

/// Takes events out of the rollups ([`fold::without`]): the visitors' facts deleted, then the
/// counter amounts added and their facts written.
pub(crate) fn take_out(
    c: &Connection,
    op: &'static str,
    removal: fold::Removal,
) -> Result<(), StoreError> {
    let mut gone = c
        .prepare_cached("delete from cdp_facts where brand_id = ?1 and entity = ?2")
        .map_err(|e| sql_err(op, e))?;
    for (brand, visitor) in &removal.visitors {
        gone.execute(params![brand, visitor])
            .map_err(|e| sql_err(op, e))?;
    }
    write_changes(
        c,
        op,
        &fold::Changes {
            counters: removal.counters,
            facts: removal.facts,
        },
    )
}

/// Every fact the rollup file holds for the visitors of `events`.
fn held_facts(c: &Connection, events: &[CountedEvent]) -> Result<Vec<Fact>, StoreError> {
    let op = "flush_rollups";
    let stmt = |brand: &str, entity: &str| Stmt {
        sql: format!("select {FACT_COLUMNS} from cdp_facts where brand_id = ?1 and entity = ?2"),
        params: vec![
            Param::Text(brand.to_owned()),
            Param::Text(entity.to_owned()),
        ],
    };
    let mut out = Vec::new();
    for (brand, entity) in fold::entities(events) {
        out.extend(run(c, op, &stmt(&brand, &entity), |r| {
            counting_rows::fact(op, r)
        })?);
    }
    Ok(out)
}

impl SqliteStore {
    /// Runs `f` in a read transaction on the reader connection (opened on first use).
    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let reader = std::sync::Arc::clone(&self.reader);
        let path = self.path().to_path_buf();
        let rollups = self.rollup_path();
        tokio::task::spawn_blocking(move || {
            let mut guard = reader
                .lock()
                .map_err(|_| unavailable(op, "reader lock poisoned by a panic".into()))?;
            if guard.is_none() {
                let conn = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| unavailable(op, format!("opening {}: {e}", path.display())))?;
                conn.busy_timeout(std::time::Duration::from_millis(READ_BUSY_TIMEOUT_MS))
                    .map_err(|e| sql_err(op, e))?;
                // A dashboard answer runs a score of distinct statements; keep them all
                // prepared (rusqlite's default cache holds 16).
                conn.set_prepared_statement_cache_capacity(READ_STATEMENT_CACHE);
                // The rollups, in their own file: read by their plain names, which the
                // event file no longer has (its migration 0005).
                conn.execute(
                    "attach database ?1 as rollups",
                    [rollups.to_string_lossy().as_ref()],
                )
                .map_err(|e| sql_err(op, e))?;
                // Dashboard reads scan tens of thousands of rollup rows: read both files
                // through the OS page cache mapped in, not a page at a time into SQLite's
                // small private cache.
                conn.execute_batch(&format!(
                    "pragma main.mmap_size = {READ_MMAP_BYTES}; \
                     pragma rollups.mmap_size = {READ_MMAP_BYTES};"
                ))
                .map_err(|e| sql_err(op, e))?;
                *guard = Some(conn);
            }
            let conn = guard
                .as_mut()
                .ok_or_else(|| unavailable(op, "no reader connection".into()))?;
            let tx = conn.transaction().map_err(|e| sql_err(op, e))?;
            let out = f(&tx);
            // A failed read leaves nothing to keep; dropping the transaction rolls it back.
            drop(tx);
            if matches!(&out, Err(e) if e.is_unavailable()) {
                // The file may have gone away; reopen next time.
                *guard = None;
            }
            out
        })
        .await
        .map_err(|e| unavailable(op, e.to_string()))?
    }

    pub(crate) async fn answer(
        &self,
        brand: &BrandId,
        plan: &ReadPlan,
    ) -> Result<ReadAnswers, StoreError> {
        let op = "dashboard_read";
        let brand = brand.as_str().to_owned();
        let plan = plan.clone();
        // The rollups trail the event stream by up to one fold; fold what is queued first, so
        // the answers count every event stored before this request.
        self.flush_rollups().await?;
        self.read(op, move |c| answer_on(c, &brand, &plan)).await
    }

    pub(crate) async fn recent_events(
        &self,
        brand: &BrandId,
        query: &StreamQuery,
    ) -> Result<Vec<EventRow>, AnalyticsError> {
        let op = "recent_events";
        let brand = brand.as_str().to_owned();
        let q = query.clone();
        Ok(self
            .read(op, move |c| {
                let e = |err| sql_err(op, err);
                let sql = format!(
                    "select {} from cdp_events where brand_id = ?1 \
                     and (?2 is null or event_type = ?2) \
                     and (?3 is null or predicted_persona = ?3) \
                     order by \"timestamp\" desc, seq desc limit ?4",
                    quoted(&EVENT_COLUMNS)
                );
                let mut stmt = c.prepare_cached(&sql).map_err(e)?;
                let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
                let mut rows = stmt
                    .query(params![brand, q.event_type, q.persona, limit])
                    .map_err(e)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(e)? {
                    out.push(event_from_sql(op, r)?);
                }
                Ok(out)
            })
            .await?)
    }

    pub(crate) async fn counted_events(&self) -> Result<Vec<CountedEvent>, StoreError> {
        let op = "counted_events";
        self.read(op, move |c| {
            let stmt = Stmt {
                sql: format!(
                    "select {} from cdp_events order by seq",
                    Dialect::Sqlite.counted_columns()
                ),
                params: vec![],
            };
            run(c, op, &stmt, |r| counting_rows::counted_event(op, r))
        })
        .await
    }

    pub(crate) async fn text_cells(&self) -> Result<Vec<TextCell>, StoreError> {
        let op = "text_cells";
        self.read(op, move |c| {
            let e = |err| sql_err(op, err);
            let mut out = Vec::new();
            // The event file and the rollup file (attached as `rollups`).
            for db in ["main", "rollups"] {
                let tables: Vec<String> = c
                    .prepare(&format!(
                        "select name from {db}.sqlite_master where type = 'table'"
                    ))
                    .map_err(e)?
                    .query_map([], |r| r.get(0))
                    .map_err(e)?
                    .collect::<Result<_, _>>()
                    .map_err(e)?;
                for t in tables {
                    let cols: Vec<String> = c
                        .prepare("select name from pragma_table_info(?1, ?2)")
                        .map_err(e)?
                        .query_map(params![t, db], |r| r.get(0))
                        .map_err(e)?
                        .collect::<Result<_, _>>()
                        .map_err(e)?;
                    for col in cols {
                        let sql = format!(
                            "select \"{col}\" from {db}.\"{t}\" where typeof(\"{col}\") = 'text'"
                        );
                        let mut stmt = c.prepare(&sql).map_err(e)?;
                        let values = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(e)?;
                        for v in values {
                            out.push(TextCell {
                                table: t.clone(),
                                column: col.clone(),
                                value: v.map_err(e)?,
                            });
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn rollup_rows(&self) -> Result<RollupRows, StoreError> {
        let op = "rollup_rows";
        self.flush_rollups().await?;
        self.read(op, move |c| {
            let all = |sql: String| Stmt {
                sql,
                params: vec![],
            };
            let mut out = RollupRows {
                counters: run(
                    c,
                    op,
                    &all(format!("select {COUNTER_COLUMNS} from cdp_counters")),
                    |r| counting_rows::counter_row(op, r),
                )?,
                facts: run(
                    c,
                    op,
                    &all(format!("select {FACT_COLUMNS} from cdp_facts")),
                    |r| counting_rows::fact(op, r),
                )?,
            };
            out.counters.sort();
            out.facts.sort();
            Ok(out)
        })
        .await
    }
}
