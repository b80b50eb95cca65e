//! The dashboard queries on the embedded SQLite store. They run on a second, read-only
//! connection inside one read transaction, so a metrics request sees one snapshot and never
//! waits for (or holds up) the writer's connection. Timestamps are the stored RFC 3339 text;
//! an hour key is its first 13 characters and a day key its first 10, as in migration 0002.

use super::{
    day_span, AbCount, AnalyticsError, DaySplit, EventCounts, HourCount, MetricCounts, Resolution,
    RollupDifference, SearchCount, Split, StateCount, StreamQuery, TunnelCount, TypeCount,
    VisitorCounts, Window, ROLLUP_TABLES,
};
use crate::codec::{self, EVENT_COLUMNS};
use crate::sqlite::{event_from_sql, quoted, sql_err, SqliteStore};
use crate::StoreError;
use cdp_core::{BrandId, EventRow};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::collections::HashMap;

/// How long a read waits on a lock (a checkpoint, a migration) before giving up.
const READ_BUSY_TIMEOUT_MS: u64 = 5_000;

fn hour_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

fn day_key(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn parse_hour(op: &'static str, key: &str) -> Result<DateTime<Utc>, StoreError> {
    codec::parse_ts(op, &format!("{key}:00:00Z"))
}

fn unavailable(op: &'static str, message: String) -> StoreError {
    StoreError::Unavailable { op, message }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
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
                // The rollups, in their own file: read by their plain names, which the
                // event file no longer has (its migration 0005).
                conn.execute(
                    "attach database ?1 as rollups",
                    [rollups.to_string_lossy().as_ref()],
                )
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

    pub(crate) async fn metric_counts(
        &self,
        brand: &BrandId,
        current: Window,
        previous: Window,
        resolution: Resolution,
    ) -> Result<MetricCounts, AnalyticsError> {
        let op = "metric_counts";
        let brand = brand.as_str().to_owned();
        // The rollups trail the event stream by up to one fold; fold what is queued first, so
        // the figures count every event stored before this request.
        self.flush_rollups().await?;
        Ok(self
            .read(op, move |c| {
                let states = visitor_states(c, &brand, current)?;
                // Each active visitor has exactly one latest row in the window, so the states
                // already count the current window's visitors.
                let visitors = VisitorCounts {
                    visitors: states.iter().map(|s| s.visitors).sum(),
                    ..distinct_counts(c, &brand, current, false)?
                };
                Ok(MetricCounts {
                    events: event_counts(c, &brand, Split::of(current, resolution))?,
                    previous_events: event_total(c, &brand, Split::of(previous, Resolution::Day))?,
                    visitors,
                    previous_visitors: distinct_counts(c, &brand, previous, true)?,
                    states,
                    ab: ab_counts(c, &brand, current)?,
                    last_event_at: last_event_at(c, &brand)?,
                })
            })
            .await?)
    }

    pub(crate) async fn search_counts(
        &self,
        brand: &BrandId,
        current: Window,
        previous: Window,
    ) -> Result<Vec<SearchCount>, AnalyticsError> {
        let op = "search_counts";
        let brand = brand.as_str().to_owned();
        Ok(self
            .read(op, move |c| {
                let e = |err| sql_err(op, err);
                let mut stmt = c
                    .prepare_cached(
                        "select query, \
                            count(case when searched_at >= ?3 then 1 end), \
                            count(case when searched_at < ?3 then 1 end), \
                            count(case when searched_at >= ?3 and results_count = 0 then 1 end) \
                         from cdp_searches \
                         where brand_id = ?1 and ((searched_at >= ?2 and searched_at < ?5) \
                            or (searched_at >= ?3 and searched_at < ?4)) \
                         group by query",
                    )
                    .map_err(e)?;
                let rows = stmt
                    .query_map(
                        params![
                            brand,
                            codec::ts_text(previous.start),
                            codec::ts_text(current.start),
                            codec::ts_text(current.end),
                            codec::ts_text(previous.end),
                        ],
                        |r| {
                            Ok(SearchCount {
                                query: r.get(0)?,
                                current: count(r.get(1)?),
                                previous: count(r.get(2)?),
                                zero_results: count(r.get(3)?),
                            })
                        },
                    )
                    .map_err(e)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(e)
            })
            .await?)
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

    pub(crate) async fn rollup_differences(&self) -> Result<Vec<RollupDifference>, AnalyticsError> {
        let op = "rollup_differences";
        self.flush_rollups().await?;
        Ok(self
            .read(op, move |c| {
                let mut out = Vec::new();
                for table in ROLLUP_TABLES {
                    let n = |sql: String| -> Result<u64, StoreError> {
                        c.query_row(&sql, [], |r| r.get::<_, i64>(0))
                            .map(count)
                            .map_err(|e| sql_err(op, e))
                    };
                    let extra = n(format!(
                        "select count(*) from (select * from {table} \
                         except select * from {table}_recount)"
                    ))?;
                    let missing = n(format!(
                        "select count(*) from (select * from {table}_recount \
                         except select * from {table})"
                    ))?;
                    if extra + missing > 0 {
                        out.push(RollupDifference {
                            table,
                            extra,
                            missing,
                        });
                    }
                }
                Ok(out)
            })
            .await?)
    }
}

/// The parts of a split as statement parameters ?2 to ?11: days, the two runs of whole hours
/// (as rollup keys), and the two partial hours (as stored timestamps).
fn split_params(split: &Split) -> [String; 10] {
    let keys = |w: &Window, key: fn(DateTime<Utc>) -> String| -> [String; 2] {
        if w.start < w.end {
            [key(w.start), key(w.end)]
        } else {
            [String::new(), String::new()]
        }
    };
    let [d0, d1] = keys(&split.days, day_key);
    let [h0, h1] = keys(&split.hours[0], hour_key);
    let [h2, h3] = keys(&split.hours[1], hour_key);
    [
        d0,
        d1,
        h0,
        h1,
        h2,
        h3,
        codec::ts_text(split.raw[0].start),
        codec::ts_text(split.raw[0].end),
        codec::ts_text(split.raw[1].start),
        codec::ts_text(split.raw[1].end),
    ]
}

/// The rows a split reads: whole days from the daily rollup (keyed at their midnight hour),
/// whole hours from the hourly rollup, partial hours from the events themselves.
const SPLIT_ROWS: &str = "\
    select day || 'T00' as at, event_type, persona, tunnel, events from cdp_rollup_daily \
    where brand_id = ?1 and day >= ?2 and day < ?3 \
    union all \
    select hour, event_type, persona, tunnel, events from cdp_rollup_hourly \
    where brand_id = ?1 and hour >= ?4 and hour < ?5 \
    union all \
    select hour, event_type, persona, tunnel, events from cdp_rollup_hourly \
    where brand_id = ?1 and hour >= ?6 and hour < ?7 \
    union all \
    select substr(\"timestamp\", 1, 13), event_type, coalesce(predicted_persona, ''), \
           case when event_type in ('tunnel_viewed', 'hero_cta_clicked') \
                then coalesce(cast(json_extract(properties, '$.tunnel') as text), '') \
                else '' end, 1 \
    from cdp_events where brand_id = ?1 and \"timestamp\" >= ?8 and \"timestamp\" < ?9 \
    union all \
    select substr(\"timestamp\", 1, 13), event_type, coalesce(predicted_persona, ''), \
           case when event_type in ('tunnel_viewed', 'hero_cta_clicked') \
                then coalesce(cast(json_extract(properties, '$.tunnel') as text), '') \
                else '' end, 1 \
    from cdp_events where brand_id = ?1 and \"timestamp\" >= ?10 and \"timestamp\" < ?11";

/// Events of a split, grouped three ways in one pass over its rows.
fn event_counts(c: &Connection, brand: &str, split: Split) -> Result<EventCounts, StoreError> {
    let op = "metric_counts";
    let e = |err| sql_err(op, err);
    let mut stmt = c
        .prepare_cached(&format!(
            "with c as materialized ({SPLIT_ROWS}) \
             select 'h', at, persona, sum(events) from c group by at, persona \
             union all select 't', event_type, '', sum(events) from c group by event_type \
             union all select 'u', tunnel, event_type, sum(events) from c where tunnel <> '' \
                group by tunnel, event_type"
        ))
        .map_err(e)?;
    let [p2, p3, p4, p5, p6, p7, p8, p9, p10, p11] = split_params(&split);
    let mut rows = stmt
        .query(params![brand, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11])
        .map_err(e)?;
    let mut out = EventCounts::default();
    while let Some(r) = rows.next().map_err(e)? {
        let kind: String = r.get(0).map_err(e)?;
        let a: String = r.get(1).map_err(e)?;
        let b: String = r.get(2).map_err(e)?;
        let events = count(r.get(3).map_err(e)?);
        match kind.as_str() {
            "h" => out.by_hour_persona.push(HourCount {
                hour: parse_hour(op, &a)?,
                persona: b,
                events,
            }),
            "t" => out.by_type.push(TypeCount {
                event_type: a,
                events,
            }),
            _ => out.by_tunnel.push(TunnelCount {
                tunnel: a,
                event_type: b,
                events,
            }),
        }
    }
    Ok(out)
}

/// Every event of a split.
fn event_total(c: &Connection, brand: &str, split: Split) -> Result<u64, StoreError> {
    let op = "metric_counts";
    let [p2, p3, p4, p5, p6, p7, p8, p9, p10, p11] = split_params(&split);
    c.prepare_cached(&format!(
        "select coalesce(sum(events), 0) from ({SPLIT_ROWS})"
    ))
    .and_then(|mut stmt| {
        stmt.query_row(
            params![brand, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11],
            |r| r.get::<_, i64>(0),
        )
    })
    .map(count)
    .map_err(|err| sql_err(op, err))
}

/// Distinct visitors when asked (a visitor-day row counts when it holds the visitor's first
/// event in the window), sessions started and visitors first identified in the window.
fn distinct_counts(
    c: &Connection,
    brand: &str,
    w: Window,
    with_visitors: bool,
) -> Result<VisitorCounts, StoreError> {
    let op = "metric_counts";
    let (day_start, day_end) = day_span(w);
    let (s, e) = (codec::ts_text(w.start), codec::ts_text(w.end));
    // Sessions: whole days from the per-day counts, the partial days from the sessions.
    let split = DaySplit::of(w);
    let (d0, d1) = if split.days.start < split.days.end {
        (day_key(split.days.start), day_key(split.days.end))
    } else {
        (String::new(), String::new())
    };
    c.prepare_cached(
        "select \
            (select count(*) from cdp_rollup_visitor_days \
             where ?6 and brand_id = ?1 and day >= ?2 and day < ?3 and first_at < ?5 \
               and last_at >= ?4 and (prev_at is null or prev_at < ?4 or first_at < ?4)), \
            (select coalesce(sum(sessions), 0) from cdp_rollup_session_days \
             where brand_id = ?1 and day >= ?7 and day < ?8) \
            + (select count(*) from cdp_rollup_sessions \
               where brand_id = ?1 and started_at >= ?9 and started_at < ?10) \
            + (select count(*) from cdp_rollup_sessions \
               where brand_id = ?1 and started_at >= ?11 and started_at < ?12), \
            (select count(*) from cdp_rollup_identities \
             where brand_id = ?1 and identified_at >= ?4 and identified_at < ?5)",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                brand,
                day_key(day_start),
                day_key(day_end),
                s,
                e,
                with_visitors,
                d0,
                d1,
                codec::ts_text(split.head.start),
                codec::ts_text(split.head.end),
                codec::ts_text(split.tail.start),
                codec::ts_text(split.tail.end),
            ],
            |r| {
                Ok(VisitorCounts {
                    visitors: count(r.get(0)?),
                    sessions: count(r.get(1)?),
                    identified: count(r.get(2)?),
                })
            },
        )
    })
    .map_err(|err| sql_err(op, err))
}

/// Each active visitor's latest visitor-day row in the window (the next day with events, if
/// any, starts after the window), grouped by that day's latest persona and stage. The rows are
/// grouped here rather than in SQL: with a hundred-odd groups a hash map is several times
/// faster than SQLite's sorting GROUP BY.
fn visitor_states(c: &Connection, brand: &str, w: Window) -> Result<Vec<StateCount>, StoreError> {
    let op = "metric_counts";
    let e = |err| sql_err(op, err);
    let (day_start, day_end) = day_span(w);
    let mut stmt = c
        .prepare_cached(
            "select predicted_persona, explicit_persona, current_stage \
             from cdp_rollup_visitor_days \
             where brand_id = ?1 and day >= ?2 and day < ?3 and first_at < ?5 and last_at >= ?4 \
               and (next_at is null or next_at >= ?5)",
        )
        .map_err(e)?;
    let mut rows = stmt
        .query(params![
            brand,
            day_key(day_start),
            day_key(day_end),
            codec::ts_text(w.start),
            codec::ts_text(w.end)
        ])
        .map_err(e)?;
    let mut groups: HashMap<(String, Option<String>, String), u64> = HashMap::new();
    while let Some(r) = rows.next().map_err(e)? {
        let key = (
            r.get::<_, String>(0).map_err(e)?,
            r.get::<_, Option<String>>(1).map_err(e)?,
            r.get::<_, String>(2).map_err(e)?,
        );
        *groups.entry(key).or_default() += 1;
    }
    Ok(groups
        .into_iter()
        .map(
            |((persona, explicit_persona, stage), visitors)| StateCount {
                persona,
                explicit_persona,
                stage,
                visitors,
            },
        )
        .collect())
}

fn ab_counts(c: &Connection, brand: &str, w: Window) -> Result<Vec<AbCount>, StoreError> {
    let op = "metric_counts";
    let e = |err| sql_err(op, err);
    let mut stmt = c
        .prepare_cached(
            "select test_id, variant, count(*), count(case when converted_at < ?3 then 1 end) \
             from cdp_rollup_ab where brand_id = ?1 and exposed_at >= ?2 and exposed_at < ?3 \
             group by 1, 2 order by 1, 2",
        )
        .map_err(e)?;
    let rows = stmt
        .query_map(
            params![brand, codec::ts_text(w.start), codec::ts_text(w.end)],
            |r| {
                Ok(AbCount {
                    test_id: r.get(0)?,
                    variant: r.get(1)?,
                    exposures: count(r.get(2)?),
                    conversions: count(r.get(3)?),
                })
            },
        )
        .map_err(e)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(e)
}

fn last_event_at(c: &Connection, brand: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let op = "metric_counts";
    let ts: Option<String> = c
        .query_row(
            "select max(\"timestamp\") from cdp_events where brand_id = ?1",
            [brand],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| sql_err(op, e))?
        .flatten();
    ts.map(|t| codec::parse_ts(op, &t)).transpose()
}
