//! The dashboard queries on Postgres: the pending events folded into the rollups first (see
//! `docs/schemas/cdp-rollup-maintenance.sql`), then one pooled connection, one read-only
//! repeatable-read transaction per request (one snapshot), the statements pipelined on it. Statements are
//! unnamed and schema-qualified like the rest of the backend, so they work through a
//! transaction pooler.

use super::{
    day_span, AbCount, AnalyticsError, DaySplit, EventCounts, HourCount, MetricCounts, Resolution,
    RollupDifference, SearchCount, Split, StateCount, StreamQuery, TunnelCount, TypeCount,
    VisitorCounts, Window, ROLLUP_TABLES,
};
use crate::codec::EVENT_COLUMNS;
use crate::postgres::{col_list, event_from_pg, ident, pg_err, PostgresStore};
use crate::StoreError;
use cdp_core::{BrandId, EventRow};
use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn date(t: DateTime<Utc>) -> NaiveDate {
    t.date_naive()
}

/// The statements, with table names qualified by the schema.
struct Sql {
    events: String,
    total: String,
    visitors: String,
    states: String,
    ab: String,
    last_event: String,
    searches: String,
    stream: String,
}

/// The rows a split reads: whole days from the daily rollup, whole hours from the hourly
/// rollup, partial hours from the events themselves. Parameters $2 to $11.
fn split_rows(s: &str) -> String {
    let raw = |a: &str, b: &str| {
        format!(
            "select date_trunc('hour', \"timestamp\", 'UTC'), event_type, \
                    coalesce(predicted_persona, ''), \
                    case when event_type in ('tunnel_viewed', 'hero_cta_clicked') \
                         then coalesce(properties ->> 'tunnel', '') else '' end, 1 \
             from {s}.cdp_events \
             where brand_id = $1 and \"timestamp\" >= {a} and \"timestamp\" < {b}"
        )
    };
    format!(
        "select day::timestamp at time zone 'UTC' as at, event_type, persona, tunnel, events \
         from {s}.cdp_rollup_daily where brand_id = $1 and day >= $2 and day < $3 \
         union all \
         select hour, event_type, persona, tunnel, events from {s}.cdp_rollup_hourly \
         where brand_id = $1 and hour >= $4 and hour < $5 \
         union all \
         select hour, event_type, persona, tunnel, events from {s}.cdp_rollup_hourly \
         where brand_id = $1 and hour >= $6 and hour < $7 \
         union all {} union all {}",
        raw("$8", "$9"),
        raw("$10", "$11")
    )
}

impl Sql {
    fn new(schema: &str) -> Sql {
        let s = ident(schema);
        Sql {
            events: format!(
                "with c as materialized ({rows}) \
                 select 'h', to_char(at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24'), persona, \
                        sum(events)::bigint from c group by at, persona \
                 union all select 't', event_type, '', sum(events)::bigint from c \
                    group by event_type \
                 union all select 'u', tunnel, event_type, sum(events)::bigint from c \
                    where tunnel <> '' group by tunnel, event_type",
                rows = split_rows(&s)
            ),
            total: format!(
                "select coalesce(sum(events), 0)::bigint from ({}) parts",
                split_rows(&s)
            ),
            visitors: format!(
                "select \
                    (select count(*) from {s}.cdp_rollup_visitor_days \
                     where $6 and brand_id = $1 and day >= $2 and day < $3 and first_at < $5 \
                       and last_at >= $4 and (prev_at is null or prev_at < $4 or first_at < $4)), \
                    (select coalesce(sum(sessions), 0)::bigint from {s}.cdp_rollup_session_days \
                     where brand_id = $1 and day >= $7 and day < $8) \
                    + (select count(*) from {s}.cdp_rollup_sessions \
                       where brand_id = $1 and started_at >= $9 and started_at < $10) \
                    + (select count(*) from {s}.cdp_rollup_sessions \
                       where brand_id = $1 and started_at >= $11 and started_at < $12), \
                    (select count(*) from {s}.cdp_rollup_identities \
                     where brand_id = $1 and identified_at >= $4 and identified_at < $5)"
            ),
            states: format!(
                "select predicted_persona, explicit_persona, current_stage, count(*) \
                 from {s}.cdp_rollup_visitor_days \
                 where brand_id = $1 and day >= $2 and day < $3 and first_at < $5 \
                   and last_at >= $4 and (next_at is null or next_at >= $5) \
                 group by 1, 2, 3"
            ),
            ab: format!(
                "select test_id, variant, count(*), count(*) filter (where converted_at < $3) \
                 from {s}.cdp_rollup_ab \
                 where brand_id = $1 and exposed_at >= $2 and exposed_at < $3 \
                 group by 1, 2 order by 1, 2"
            ),
            last_event: format!(
                "select max(\"timestamp\") from {s}.cdp_events where brand_id = $1"
            ),
            searches: format!(
                "select query, \
                    count(*) filter (where searched_at >= $3), \
                    count(*) filter (where searched_at < $3), \
                    count(*) filter (where searched_at >= $3 and results_count = 0) \
                 from {s}.cdp_searches \
                 where brand_id = $1 and ((searched_at >= $2 and searched_at < $5) \
                    or (searched_at >= $3 and searched_at < $4)) \
                 group by query"
            ),
            stream: format!(
                "select {} from {s}.cdp_events where brand_id = $1 \
                 and ($2::text is null or event_type = $2) \
                 and ($3::text is null or predicted_persona = $3) \
                 order by \"timestamp\" desc, seq desc limit $4",
                col_list(&EVENT_COLUMNS)
            ),
        }
    }
}

impl PostgresStore {
    /// Runs `f` in a read-only repeatable-read transaction on a pooled connection.
    async fn read<T>(
        &self,
        op: &'static str,
        f: impl AsyncFnOnce(&Transaction<'_>, &Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.client(op).await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| pg_err(op, e))?;
        let sql = Sql::new(self.schema());
        let out = f(&tx, &sql).await?;
        tx.commit().await.map_err(|e| pg_err(op, e))?;
        Ok(out)
    }

    pub(crate) async fn metric_counts(
        &self,
        brand: &BrandId,
        current: Window,
        previous: Window,
        resolution: Resolution,
    ) -> Result<MetricCounts, AnalyticsError> {
        let op = "metric_counts";
        let brand = brand.as_str();
        // The rollups trail the event stream by up to one flush; fold what is pending first,
        // so the figures count every event stored before this request.
        self.flush_rollups().await?;
        Ok(self
            .read(op, async |tx, sql| {
                // Pipelined: the statements go out together and the answers come back in order.
                let (events, previous_events, distinct, previous_visitors, states, ab, last) = tokio::try_join!(
                    event_counts(tx, sql, brand, Split::of(current, resolution)),
                    event_total(tx, sql, brand, Split::of(previous, Resolution::Day)),
                    distinct_counts(tx, sql, brand, current, false),
                    distinct_counts(tx, sql, brand, previous, true),
                    visitor_states(tx, sql, brand, current),
                    ab_counts(tx, sql, brand, current),
                    last_event_at(tx, sql, brand),
                )?;
                // Each active visitor has exactly one latest row in the window, so the states
                // already count the current window's visitors.
                let visitors = VisitorCounts {
                    visitors: states.iter().map(|s| s.visitors).sum(),
                    ..distinct
                };
                Ok(MetricCounts {
                    events,
                    previous_events,
                    visitors,
                    previous_visitors,
                    states,
                    ab,
                    last_event_at: last,
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
        let brand = brand.as_str();
        Ok(self
            .read(op, async |tx, sql| {
                let rows = tx
                    .query_typed(
                        &sql.searches,
                        &[
                            (&brand, Type::TEXT),
                            (&previous.start, Type::TIMESTAMPTZ),
                            (&current.start, Type::TIMESTAMPTZ),
                            (&current.end, Type::TIMESTAMPTZ),
                            (&previous.end, Type::TIMESTAMPTZ),
                        ],
                    )
                    .await
                    .map_err(|e| pg_err(op, e))?;
                rows.iter()
                    .map(|r| {
                        Ok(SearchCount {
                            query: r.try_get(0)?,
                            current: count(r.try_get(1)?),
                            previous: count(r.try_get(2)?),
                            zero_results: count(r.try_get(3)?),
                        })
                    })
                    .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                    .map_err(|e| pg_err(op, e))
            })
            .await?)
    }

    pub(crate) async fn recent_events(
        &self,
        brand: &BrandId,
        query: &StreamQuery,
    ) -> Result<Vec<EventRow>, AnalyticsError> {
        let op = "recent_events";
        let brand = brand.as_str();
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        Ok(self
            .read(op, async |tx, sql| {
                let rows = tx
                    .query_typed(
                        &sql.stream,
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

    pub(crate) async fn rollup_differences(&self) -> Result<Vec<RollupDifference>, AnalyticsError> {
        let op = "rollup_differences";
        let s = ident(self.schema());
        self.flush_rollups().await?;
        Ok(self
            .read(op, async |tx, _| {
                let mut out = Vec::new();
                for table in ROLLUP_TABLES {
                    let row = tx
                        .query_one(
                            &format!(
                                "select \
                                   (select count(*) from (select * from {s}.{table} \
                                    except select * from {s}.{table}_recount) x), \
                                   (select count(*) from (select * from {s}.{table}_recount \
                                    except select * from {s}.{table}) y)"
                            ),
                            &[],
                        )
                        .await
                        .map_err(|e| pg_err(op, e))?;
                    let extra = count(row.try_get(0).map_err(|e| pg_err(op, e))?);
                    let missing = count(row.try_get(1).map_err(|e| pg_err(op, e))?);
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

/// A split's parameters $2 to $11.
struct SplitParams {
    days: [NaiveDate; 2],
    at: [DateTime<Utc>; 8],
}

impl SplitParams {
    fn of(split: &Split) -> SplitParams {
        SplitParams {
            days: [date(split.days.start), date(split.days.end)],
            at: [
                split.hours[0].start,
                split.hours[0].end,
                split.hours[1].start,
                split.hours[1].end,
                split.raw[0].start,
                split.raw[0].end,
                split.raw[1].start,
                split.raw[1].end,
            ],
        }
    }

    fn with<'a>(&'a self, brand: &'a &str) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
        let mut out: Vec<(&(dyn ToSql + Sync), Type)> = vec![
            (brand, Type::TEXT),
            (&self.days[0], Type::DATE),
            (&self.days[1], Type::DATE),
        ];
        out.extend(
            self.at
                .iter()
                .map(|t| (t as &(dyn ToSql + Sync), Type::TIMESTAMPTZ)),
        );
        out
    }
}

async fn event_counts(
    tx: &Transaction<'_>,
    sql: &Sql,
    brand: &str,
    split: Split,
) -> Result<EventCounts, StoreError> {
    let op = "metric_counts";
    let e = |err| pg_err(op, err);
    let params = SplitParams::of(&split);
    let rows = tx
        .query_typed(&sql.events, &params.with(&brand))
        .await
        .map_err(e)?;
    let mut out = EventCounts::default();
    for r in &rows {
        let kind: String = r.try_get(0).map_err(e)?;
        let a: String = r.try_get(1).map_err(e)?;
        let b: String = r.try_get(2).map_err(e)?;
        let events = count(r.try_get(3).map_err(e)?);
        match kind.as_str() {
            "h" => out.by_hour_persona.push(HourCount {
                hour: crate::codec::parse_ts(op, &format!("{a}:00:00Z"))?,
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

async fn event_total(
    tx: &Transaction<'_>,
    sql: &Sql,
    brand: &str,
    split: Split,
) -> Result<u64, StoreError> {
    let op = "metric_counts";
    let params = SplitParams::of(&split);
    let rows = tx
        .query_typed(&sql.total, &params.with(&brand))
        .await
        .map_err(|e| pg_err(op, e))?;
    match rows.first() {
        Some(r) => Ok(count(r.try_get(0).map_err(|e| pg_err(op, e))?)),
        None => Ok(0),
    }
}

/// Distinct visitors when asked, sessions started and visitors first identified in a window.
async fn distinct_counts(
    tx: &Transaction<'_>,
    sql: &Sql,
    brand: &str,
    w: Window,
    with_visitors: bool,
) -> Result<VisitorCounts, StoreError> {
    let op = "metric_counts";
    let e = |err| pg_err(op, err);
    let (day_start, day_end) = day_span(w);
    let (day_start, day_end) = (date(day_start), date(day_end));
    // Sessions: whole days from the per-day counts, the partial days from the sessions.
    let split = DaySplit::of(w);
    let days = (date(split.days.start), date(split.days.end));
    let row = tx
        .query_typed(
            &sql.visitors,
            &[
                (&brand, Type::TEXT),
                (&day_start, Type::DATE),
                (&day_end, Type::DATE),
                (&w.start, Type::TIMESTAMPTZ),
                (&w.end, Type::TIMESTAMPTZ),
                (&with_visitors, Type::BOOL),
                (&days.0, Type::DATE),
                (&days.1, Type::DATE),
                (&split.head.start, Type::TIMESTAMPTZ),
                (&split.head.end, Type::TIMESTAMPTZ),
                (&split.tail.start, Type::TIMESTAMPTZ),
                (&split.tail.end, Type::TIMESTAMPTZ),
            ],
        )
        .await
        .map_err(e)?;
    let row = row.first().ok_or_else(|| StoreError::Corrupt {
        op,
        message: "visitor counts returned no row".into(),
    })?;
    Ok(VisitorCounts {
        visitors: count(row.try_get(0).map_err(e)?),
        sessions: count(row.try_get(1).map_err(e)?),
        identified: count(row.try_get(2).map_err(e)?),
    })
}

async fn visitor_states(
    tx: &Transaction<'_>,
    sql: &Sql,
    brand: &str,
    w: Window,
) -> Result<Vec<StateCount>, StoreError> {
    let op = "metric_counts";
    let (day_start, day_end) = day_span(w);
    let (day_start, day_end) = (date(day_start), date(day_end));
    let rows = tx
        .query_typed(
            &sql.states,
            &[
                (&brand, Type::TEXT),
                (&day_start, Type::DATE),
                (&day_end, Type::DATE),
                (&w.start, Type::TIMESTAMPTZ),
                (&w.end, Type::TIMESTAMPTZ),
            ],
        )
        .await
        .map_err(|e| pg_err(op, e))?;
    rows.iter()
        .map(|r| {
            Ok(StateCount {
                persona: r.try_get(0)?,
                explicit_persona: r.try_get(1)?,
                stage: r.try_get(2)?,
                visitors: count(r.try_get(3)?),
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(|e| pg_err(op, e))
}

async fn ab_counts(
    tx: &Transaction<'_>,
    sql: &Sql,
    brand: &str,
    w: Window,
) -> Result<Vec<AbCount>, StoreError> {
    let op = "metric_counts";
    let rows = tx
        .query_typed(
            &sql.ab,
            &[
                (&brand, Type::TEXT),
                (&w.start, Type::TIMESTAMPTZ),
                (&w.end, Type::TIMESTAMPTZ),
            ],
        )
        .await
        .map_err(|e| pg_err(op, e))?;
    rows.iter()
        .map(|r| {
            Ok(AbCount {
                test_id: r.try_get(0)?,
                variant: r.try_get(1)?,
                exposures: count(r.try_get(2)?),
                conversions: count(r.try_get(3)?),
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(|e| pg_err(op, e))
}

async fn last_event_at(
    tx: &Transaction<'_>,
    sql: &Sql,
    brand: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let op = "metric_counts";
    let rows = tx
        .query_typed(&sql.last_event, &[(&brand, Type::TEXT)])
        .await
        .map_err(|e| pg_err(op, e))?;
    match rows.first() {
        Some(r) => r.try_get(0).map_err(|e| pg_err(op, e)),
        None => Ok(None),
    }
}
