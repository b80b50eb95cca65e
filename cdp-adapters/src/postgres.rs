//! The Postgres backend. Every statement is sent unnamed with its parameter types
//! (`query_typed`) or as a simple query, never as a named prepared statement, so it works
//! through Supabase's transaction pooler (and PgBouncer in transaction mode) as well as on a
//! direct connection. A batch of events is one statement, a call of the function
//! `cdp_write_events` (migration 0004, `docs/schemas/cdp-write-path.sql`) with one array per
//! column, which inserts the events and their searches and returns the key of each stored row:
//! one round trip and one commit per batch, not one per event or per table, and a plan that
//! each server session keeps instead of planning the insert for every batch. It is called
//! as a plain insert first; when a row of the batch is already stored, it is called again with
//! `deduplicate` (see `WRITE_EVENTS_ARGS`).
//!
//! Table names are qualified with the target's schema instead of relying on `search_path`,
//! which a transaction pooler does not keep between transactions.

use crate::analytics::postgres::{run, PgCells};
use crate::codec::{
    self, EdgeColumns, EventColumns, ProfileColumns, SearchColumns, EDGE_COLUMNS, EVENT_COLUMNS,
    PROFILE_COLUMNS,
};
use crate::counting_sql::{self, Dialect, Param, Stmt};
use crate::fold_sql::PgFold;
use crate::migrate::{self, POSTGRES_LOCK_KEY, SCHEMA_MIGRATIONS};
use crate::store::PostgresTarget;
use crate::{
    counting_rows, erasing, EraseError, EraseStore, Erased, ErasureFigures, EventSink,
    IdentityStore, ProfileStore, StoreError, WriteOutcome,
};
use cdp_core::identity::{Edge, Erasure, IdKind, IdentityRules, PersonId};
use cdp_core::{AnonymousId, BrandId, Config, EventRow, Profile};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// How long to wait for a connection before answering `Unavailable`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A Postgres store: a connection pool and the schema's table names. Cloning shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    sql: Arc<Statements>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.sql.schema)
            .finish()
    }
}

/// The statements, with table names qualified by the schema.
struct Statements {
    schema: String,
    /// The batch insert: a call of `cdp_write_events` (see [`WRITE_EVENTS_ARGS`]).
    write_events: String,
    /// The same with the batch's identity edges upserted first, in the same call (so the same
    /// transaction): `cdp_write_events_and_edges` (migration 0006), for the batches that make
    /// edges.
    write_events_and_edges: String,
    identity_edges: String,
    add_edges: String,
    upsert_profiles: String,
    load_profile: String,
    purge_expired: String,
    visitor_events: String,
    visitor_events_many: String,
    load_profiles: String,
    visitor_ids: String,
    last_processed_at: String,
    existing_ids: String,
    vacuum_rollup_queue: String,
    ping: String,
}

/// Columns of `cdp_searches` the collector writes, in the order they are sent.
const SEARCH_COLUMNS: [&str; 7] = [
    "brand_id",
    "event_id",
    "query",
    "anonymous_id",
    "results_count",
    "page_url",
    "searched_at",
];

/// Postgres types of the [`PROFILE_COLUMNS`], in order.
const PROFILE_TYPES: [&str; 18] = [
    "text",
    "text",
    "text",
    "text",
    "text",
    "real",
    "text",
    "jsonb",
    "text",
    "real",
    "timestamptz",
    "timestamptz",
    "integer",
    "integer",
    "boolean",
    "jsonb",
    "timestamptz",
    "timestamptz",
];

/// Arguments of `cdp_write_events`: `deduplicate`, the [`EVENT_COLUMNS`] and `id`, the
/// [`SEARCH_COLUMNS`]. With `deduplicate` false it is a plain insert: it assumes every row is new
/// and fails as a whole (unique violation) if one is not. With `deduplicate` true it skips
/// stored rows with `on conflict do nothing`, which costs Postgres a speculative insertion per
/// row (a check of the unique index, then the insert, then a confirmation record); a plain
/// insert of the same 20-row batches ran about a tenth faster (pgbench on the spec's schema).
/// Duplicates are rare (a client's retry), so a batch is tried plainly first and again with
/// `deduplicate` only when that fails on a duplicate.
const WRITE_EVENTS_ARGS: usize = 1 + EVENT_COLUMNS.len() + 1 + SEARCH_COLUMNS.len();

pub(crate) use crate::counting_sql::ident;

pub(crate) fn col_list(cols: &[&str]) -> String {
    cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
}

/// `insert into T (cols) select cols from unnest($1::t1[], ...) with ordinality ... order by
/// ord`: the ordinality keeps the rows in input order.
fn unnest_insert(table: &str, cols: &[&str], types: &[&str]) -> String {
    let args: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    format!(
        "insert into {table} ({cols}) select {cols} from unnest({args}) with ordinality \
         as input({cols}, ord) order by ord",
        cols = col_list(cols),
        args = args.join(", ")
    )
}

/// The upsert of [`EDGE_COLUMNS`] arrays (the admin's edges) that keeps, per pair, the
/// earliest edge (the log's rule, see [`crate::IdentityStore`]). A pair comes once per call
/// (the core's `batch_edges` and `add_edges` make sure), as an upsert may touch a row once.
fn upsert_edges_sql(table: &str) -> String {
    let args: Vec<String> = EDGE_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let t = if *c == "at" { "timestamptz" } else { "text" };
            format!("${}::{t}[]", i + 1)
        })
        .collect();
    format!(
        "insert into {table} as t ({cols}) select {cols} from unnest({args}) as i({cols}) \
         on conflict (brand_id, edge_kind, a_kind, a_value, b_kind, b_value) do update set \
         at = excluded.at, event_id = excluded.event_id, origin = excluded.origin \
         where (excluded.at, excluded.event_id) < (t.at, t.event_id)",
        cols = col_list(&EDGE_COLUMNS),
        args = args.join(", ")
    )
}

/// Edge columns as parameter arrays, `at` as timestamps.
struct EdgeParams {
    text: [Vec<String>; 8],
    at: Vec<DateTime<Utc>>,
}

impl EdgeParams {
    fn new(op: &'static str, edges: &[EdgeColumns]) -> Result<EdgeParams, StoreError> {
        let mut text: [Vec<String>; 8] = Default::default();
        let mut at = Vec::with_capacity(edges.len());
        for e in edges {
            let mut slot = 0;
            for (i, v) in e.values().into_iter().enumerate() {
                if EDGE_COLUMNS[i] == "at" {
                    at.push(codec::parse_ts(op, v)?);
                } else {
                    text[slot].push(v.to_owned());
                    slot += 1;
                }
            }
        }
        Ok(EdgeParams { text, at })
    }

    /// The parameters in [`EDGE_COLUMNS`] order.
    fn params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        let mut text = self.text.iter();
        EDGE_COLUMNS
            .iter()
            .filter_map(|c| {
                if *c == "at" {
                    Some((&self.at as &(dyn ToSql + Sync), Type::TIMESTAMPTZ_ARRAY))
                } else {
                    text.next()
                        .map(|v| (v as &(dyn ToSql + Sync), Type::TEXT_ARRAY))
                }
            })
            .collect()
    }
}

impl Statements {
    fn new(schema: &str) -> Statements {
        let s = ident(schema);
        let events = format!("{s}.cdp_events");
        let profiles = format!("{s}.cdp_profiles");
        let updates: Vec<String> = PROFILE_COLUMNS[2..]
            .iter()
            .map(|c| format!("{0} = excluded.{0}", ident(c)))
            .collect();
        let write_events = format!(
            "select stored_brand_id, stored_event_id from {s}.cdp_write_events({})",
            (1..=WRITE_EVENTS_ARGS)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let edges = format!("{s}.cdp_identity_edges");
        Statements {
            schema: schema.to_owned(),
            write_events_and_edges: format!(
                "select stored_brand_id, stored_event_id from {s}.cdp_write_events_and_edges({})",
                (1..=WRITE_EVENTS_ARGS + EDGE_COLUMNS.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            write_events,
            identity_edges: format!(
                "select {} from {edges} where brand_id = $1",
                col_list(&EDGE_COLUMNS)
            ),
            add_edges: upsert_edges_sql(&edges),
            upsert_profiles: format!(
                "{} on conflict (brand_id, anonymous_id) do update set {}",
                unnest_insert(&profiles, &PROFILE_COLUMNS, &PROFILE_TYPES),
                updates.join(", ")
            ),
            load_profile: format!(
                "select profile from {profiles} where brand_id = $1 and anonymous_id = $2 \
                 and expires_at >= $3"
            ),
            purge_expired: format!(
                "with gone as (delete from {profiles} where expires_at < $1 returning 1) \
                 select count(*) from gone"
            ),
            visitor_events: format!(
                "select {} from {events} where brand_id = $1 and anonymous_id = $2 \
                 and ($3::timestamptz is null or processed_at >= $3) order by seq",
                col_list(&EVENT_COLUMNS)
            ),
            // One statement for a whole batch of cache misses: each visitor's events after its
            // own bound, through the anonymous_id index.
            visitor_events_many: format!(
                "select {} from {events} e join unnest($2::text[], $3::timestamptz[]) \
                 as k(anonymous_id, after) on e.anonymous_id = k.anonymous_id \
                 where e.brand_id = $1 and (k.after is null or e.processed_at >= k.after) \
                 order by e.seq",
                EVENT_COLUMNS
                    .iter()
                    .map(|c| format!("e.{}", ident(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            load_profiles: format!(
                "select anonymous_id, profile from {profiles} where brand_id = $1 \
                 and anonymous_id = any($2) and expires_at >= $3"
            ),
            visitor_ids: format!(
                "select distinct anonymous_id from {events} where brand_id = $1 \
                 and ($2::text is null or anonymous_id > $2) order by anonymous_id limit $3"
            ),
            last_processed_at: crate::counting_sql::last_processed_at(
                &crate::counting_sql::schema_prefix(schema),
                "",
            )
            .sql,
            existing_ids: format!(
                "select event_id from {events} where brand_id = $1 and event_id = any($2)"
            ),
            vacuum_rollup_queue: format!("vacuum {s}.cdp_rollup_pending"),
            ping: format!("select 1 from {events} limit 1"),
        }
    }
}

impl PostgresStore {
    /// Builds the pool. No connection is made until the first operation, so a database that
    /// is down at start-up gives `Unavailable` errors (503s), not a crash.
    pub async fn open(target: &PostgresTarget) -> Result<PostgresStore, StoreError> {
        let mut pg: tokio_postgres::Config =
            target.url().parse().map_err(|e| StoreError::Rejected {
                op: "open",
                status: "url".into(),
                message: format!("invalid Postgres URL: {e}"),
            })?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(target.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(CONNECT_TIMEOUT * 2))
            .build()
            .map_err(|e| unavailable("open", e.to_string()))?;
        Ok(PostgresStore {
            pool,
            sql: Arc::new(Statements::new(&target.schema)),
        })
    }

    /// The schema holding the tables.
    pub(crate) fn schema(&self) -> &str {
        &self.sql.schema
    }

    /// A connection from the pool. Every failure here is `Unavailable`, whatever the server
    /// said: it happened before any statement of ours ran, while connecting or logging in
    /// (a database not accepting connections, 55000; shutting down, 57P03; too many
    /// connections, 53300; a wrong password, 28P01; no such database, 3D000; TLS refused; a
    /// pool that timed out), so the request was not wrong, the store is out of reach.
    pub(crate) async fn client(
        &self,
        op: &'static str,
    ) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| checkout_failed(op, e))
    }

    /// Applies pending migrations inside one transaction holding an advisory lock, so
    /// concurrent runs apply each migration once; returns the versions applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let op = "migrate";
        let mut client = self.client(op).await?;
        let tx = client.transaction().await.map_err(|e| pg_err(op, e))?;
        tx.batch_execute(&format!(
            "select pg_advisory_xact_lock({POSTGRES_LOCK_KEY}); set local search_path to {};\n{SCHEMA_MIGRATIONS}",
            ident(&self.sql.schema)
        ))
        .await
        .map_err(|e| pg_err(op, e))?;
        let done: HashSet<i64> = tx
            .query_typed("select version from schema_migrations", &[])
            .await
            .map_err(|e| pg_err(op, e))?
            .iter()
            .map(|r| r.try_get::<_, i64>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| pg_err(op, e))?;
        let mut applied = Vec::new();
        for m in migrate::POSTGRES
            .iter()
            .filter(|m| !done.contains(&m.version))
        {
            tx.batch_execute(m.sql).await.map_err(|e| pg_err(op, e))?;
            tx.query_typed(
                "insert into schema_migrations (version, name) values ($1, $2)",
                &[(&m.version, Type::INT8), (&m.name, Type::TEXT)],
            )
            .await
            .map_err(|e| pg_err(op, e))?;
            applied.push(m.version);
        }
        tx.commit().await.map_err(|e| pg_err(op, e))?;
        Ok(applied)
    }

    /// Folds the events stored since the last flush into the dashboard rollups with the
    /// core's fold and returns how many it folded. Folds are serialised in the database, so
    /// any number of callers may flush at any time.
    pub async fn flush_rollups(&self) -> Result<u64, StoreError> {
        self.fold_pending().await
    }

    /// Vacuums the rollup queue: every event is inserted into it and deleted from it, and a
    /// fold reads past the dead rows until they are vacuumed.
    pub async fn vacuum_rollup_queue(&self) -> Result<(), StoreError> {
        let op = "vacuum_rollup_queue";
        let client = self.client(op).await?;
        client
            .simple_query(&self.sql.vacuum_rollup_queue)
            .await
            .map(drop)
            .map_err(|e| pg_err(op, e))
    }

    /// Whether the server answers and the tables exist.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client("ping").await?;
        client
            .simple_query(&self.sql.ping)
            .await
            .map(drop)
            .map_err(|e| pg_err("ping", e))
    }
}

/// Parameter vectors for the events statement, one per column.
#[derive(Default)]
struct EventParams {
    text: [Vec<Option<String>>; 15],
    ts: [Vec<DateTime<Utc>>; 2],
    json: [Vec<Value>; 2],
    real: [Vec<f32>; 2],
    /// The rows' `id`s, UUID v7: the column's default (`gen_random_uuid()`) would put each new
    /// row on a random page of the primary key index; time-ordered ids land at its right edge,
    /// as the `seq` and event-id keys do. About 8% more rows per second in 20-row batches
    /// (pgbench on the spec's schema). The id is not an event's identity (`event_id` is), so a
    /// retried batch may draw new ones: only the rows it stores keep theirs.
    ids: Vec<Uuid>,
}

impl EventParams {
    fn push(&mut self, c: EventColumns) {
        let texts = [
            Some(c.brand_id),
            Some(c.event_id),
            Some(c.event_type),
            Some(c.anonymous_id),
            c.customer_id,
            Some(c.session_id),
            Some(c.page_url),
            c.page_title,
            c.referrer,
            c.utm_source,
            c.utm_medium,
            c.utm_campaign,
            Some(c.predicted_persona),
            c.explicit_persona,
            Some(c.current_stage),
        ];
        for (v, t) in self.text.iter_mut().zip(texts) {
            v.push(t);
        }
        self.ts[0].push(c.timestamp);
        self.ts[1].push(c.processed_at);
        self.json[0].push(c.properties);
        self.json[1].push(c.persona_scores);
        self.real[0].push(c.persona_confidence as f32);
        self.real[1].push(c.stage_confidence as f32);
        self.ids.push(Uuid::now_v7());
    }

    /// The parameters in [`EVENT_COLUMNS`] order, then the ids.
    fn params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        let t = |i: usize| (&self.text[i] as &(dyn ToSql + Sync), Type::TEXT_ARRAY);
        vec![
            t(0),
            t(1),
            t(2),
            t(3),
            t(4),
            t(5),
            (&self.ts[0], Type::TIMESTAMPTZ_ARRAY),
            t(6),
            t(7),
            t(8),
            t(9),
            t(10),
            t(11),
            (&self.json[0], Type::JSONB_ARRAY),
            t(12),
            (&self.real[0], Type::FLOAT4_ARRAY),
            t(13),
            t(14),
            (&self.real[1], Type::FLOAT4_ARRAY),
            (&self.json[1], Type::JSONB_ARRAY),
            (&self.ts[1], Type::TIMESTAMPTZ_ARRAY),
            (&self.ids, Type::UUID_ARRAY),
        ]
    }
}

pub(crate) fn event_from_pg(
    op: &'static str,
    r: &tokio_postgres::Row,
) -> Result<EventRow, StoreError> {
    let e = |err| pg_err(op, err);
    let real = |i: usize| -> Result<f64, StoreError> {
        Ok(r.try_get::<_, Option<f32>>(i)
            .map_err(e)?
            .map_or(0.0, f64::from))
    };
    let json = |i: usize| -> Result<Value, StoreError> {
        Ok(r.try_get::<_, Option<Value>>(i)
            .map_err(e)?
            .unwrap_or(Value::Null))
    };
    let cols = EventColumns {
        brand_id: r.try_get(0).map_err(e)?,
        event_id: r.try_get(1).map_err(e)?,
        event_type: r.try_get(2).map_err(e)?,
        anonymous_id: r.try_get(3).map_err(e)?,
        customer_id: r.try_get(4).map_err(e)?,
        session_id: r.try_get(5).map_err(e)?,
        timestamp: r.try_get(6).map_err(e)?,
        page_url: r.try_get(7).map_err(e)?,
        page_title: r.try_get(8).map_err(e)?,
        referrer: r.try_get(9).map_err(e)?,
        utm_source: r.try_get(10).map_err(e)?,
        utm_medium: r.try_get(11).map_err(e)?,
        utm_campaign: r.try_get(12).map_err(e)?,
        properties: json(13)?,
        predicted_persona: r.try_get(14).map_err(e)?,
        persona_confidence: real(15)?,
        explicit_persona: r.try_get(16).map_err(e)?,
        current_stage: r.try_get(17).map_err(e)?,
        stage_confidence: real(18)?,
        persona_scores: json(19)?,
        processed_at: r.try_get(20).map_err(e)?,
    };
    cols.into_row(op)
}

impl IdentityStore for PostgresStore {
    async fn identity_edges(&self, brand: &BrandId) -> Result<Vec<Edge>, StoreError> {
        let op = "identity_edges";
        let brand = brand.as_str();
        let client = self.client(op).await?;
        let rows = client
            .query_typed(&self.sql.identity_edges, &[(&brand, Type::TEXT)])
            .await
            .map_err(|e| pg_err(op, e))?;
        rows.iter()
            .map(|r| {
                let t = |i: usize| r.try_get::<_, String>(i).map_err(|e| pg_err(op, e));
                EdgeColumns {
                    brand_id: t(0)?,
                    edge_kind: t(1)?,
                    a_kind: t(2)?,
                    a_value: t(3)?,
                    b_kind: t(4)?,
                    b_value: t(5)?,
                    at: codec::ts_text(
                        r.try_get::<_, DateTime<Utc>>(6)
                            .map_err(|e| pg_err(op, e))?,
                    ),
                    event_id: t(7)?,
                    origin: t(8)?,
                }
                .into_edge(op)
            })
            .collect()
    }

    async fn add_edges(&self, brand: &BrandId, edges: &[Edge]) -> Result<(), StoreError> {
        let op = "add_edges";
        // One row per pair in a statement: the earliest of repeated pairs.
        let cols: Vec<EdgeColumns> =
            cdp_core::identity::earliest_per_pair(edges.iter().map(|e| (brand.clone(), e.clone())))
                .iter()
                .map(|(b, e)| EdgeColumns::from_edge(b, e))
                .collect();
        if cols.is_empty() {
            return Ok(());
        }
        let params = EdgeParams::new(op, &cols)?;
        let client = self.client(op).await?;
        client
            .query_typed(&self.sql.add_edges, &params.params())
            .await
            .map_err(|e| pg_err(op, e))?;
        Ok(())
    }

    async fn stamp_people(
        &self,
        brand: &BrandId,
        people: &[(AnonymousId, PersonId)],
    ) -> Result<Option<u64>, StoreError> {
        let op = "stamp_people";
        let rows = self
            .run_statement(
                op,
                "with v(b, p) as (select * from unnest($2::text[], $3::text[])), \
                 s as (update {p}cdp_profiles t set person_id = v.p from v \
                   where t.brand_id = $1 and t.anonymous_id = v.b \
                   and t.person_id is distinct from v.p returning 1), \
                 c as (update {p}cdp_profiles t set person_id = null where t.brand_id = $1 \
                   and t.person_id is not null \
                   and not exists (select 1 from v where v.b = t.anonymous_id) returning 1) \
                 select (select count(*) from s) + (select count(*) from c)",
                vec![
                    Param::Text(brand.as_str().to_owned()),
                    texts(people.iter().map(|(b, _)| b.as_str().to_owned())),
                    texts(people.iter().map(|(_, p)| p.0.hyphenated().to_string())),
                ],
            )
            .await?;
        let n: i64 = match rows.first() {
            Some(r) => r.try_get(0).map_err(|e| pg_err(op, e))?,
            None => 0,
        };
        Ok(Some(n as u64))
    }

    async fn stamped_people(
        &self,
        brand: &BrandId,
    ) -> Result<Option<BTreeMap<AnonymousId, String>>, StoreError> {
        let op = "stamped_people";
        let rows = self
            .run_statement(
                op,
                "select anonymous_id, person_id from {p}cdp_profiles \
                 where brand_id = $1 and person_id is not null",
                vec![Param::Text(brand.as_str().to_owned())],
            )
            .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let b: String = r.try_get(0).map_err(|e| pg_err(op, e))?;
            out.insert(
                AnonymousId::new(b),
                r.try_get(1).map_err(|e| pg_err(op, e))?,
            );
        }
        Ok(Some(out))
    }
}

/// How many rows a `with d as (delete ... returning 1) select count(*) from d` deleted.
async fn deleted(
    tx: &tokio_postgres::Transaction<'_>,
    op: &'static str,
    sql: String,
    params: Vec<Param>,
) -> Result<u64, StoreError> {
    let rows = run(tx, op, &Stmt { sql, params }).await?;
    let n: i64 = match rows.first() {
        Some(r) => r.try_get(0).map_err(|e| pg_err(op, e))?,
        None => 0,
    };
    Ok(n as u64)
}

fn texts(items: impl IntoIterator<Item = String>) -> Param {
    Param::TextArray(items.into_iter().map(Some).collect())
}

impl PostgresStore {
    /// Runs one statement on a pooled connection: `sql` with `{p}` standing for the schema
    /// prefix.
    async fn run_statement(
        &self,
        op: &'static str,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client(op).await?;
        let sql = sql.replace("{p}", &counting_sql::schema_prefix(self.schema()));
        run(&**client, op, &Stmt { sql, params }).await
    }
}

impl EraseStore for PostgresStore {
    async fn erase(
        &self,
        brand: &BrandId,
        erasure: &Erasure,
        rules: &IdentityRules,
        erasure_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Erased, EraseError> {
        let op = "erase";
        let e = |err| pg_err(op, err);
        let d = Dialect::Postgres {
            prefix: counting_sql::schema_prefix(self.schema()),
        };
        let t = |name: &str| d.table(name);
        let b = || Param::Text(brand.as_str().to_owned());
        let mut client = self.client(op).await?;
        let tx = client.transaction().await.map_err(e)?;
        // Folds are serialised by this lock: none runs between the read of what the rollups
        // hold and their correction.
        let fold = PgFold::new(counting_sql::schema_prefix(self.schema()));
        run(&*tx, op, &fold.lock()).await?;
        let candidates = run(
            &*tx,
            op,
            &Stmt {
                sql: format!(
                    "select {}, seq from {} where brand_id = $1 and (anonymous_id = any($2::text[]) \
                     or customer_id = any($3::text[]) \
                     or lower(btrim(properties->>'email')) = any($4::text[]))",
                    col_list(&EVENT_COLUMNS),
                    t("cdp_events")
                ),
                params: vec![
                    b(),
                    texts(erasure.candidate_browsers.iter().map(|x| x.as_str().to_owned())),
                    texts(erasure.values(IdKind::CustomerId)),
                    texts(erasure.values(IdKind::Email)),
                ],
            },
        )
        .await?
        .iter()
        .map(|r| {
            let seq: i64 = r.try_get(EVENT_COLUMNS.len()).map_err(e)?;
            Ok((seq, event_from_pg(op, r)?))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let removed = erasing::removed(candidates, erasure, rules);
        // What the rollups hold of the visitors: their events not waiting in the fold's queue.
        let before = run(
            &*tx,
            op,
            &Stmt {
                sql: format!(
                    "select {} from {} where brand_id = $1 and anonymous_id = any($2::text[]) \
                     and seq not in (select seq from {})",
                    d.counted_columns(),
                    t("cdp_events"),
                    t("cdp_rollup_pending")
                ),
                params: vec![b(), texts(removed.visitors.clone())],
            },
        )
        .await?
        .iter()
        .map(|r| counting_rows::counted_event(op, &PgCells(op, r)))
        .collect::<Result<Vec<_>, _>>()?;
        let removal = removed.rollups(&before);
        if !removal.visitors.is_empty() {
            let (brands, visitors): (Vec<_>, Vec<_>) = removal
                .visitors
                .iter()
                .map(|(b, v)| (Some(b.clone()), Some(v.clone())))
                .unzip();
            run(
                &*tx,
                op,
                &Stmt {
                    sql: format!(
                        "delete from {} where (brand_id, entity) in \
                         (select * from unnest($1::text[], $2::text[]))",
                        t("cdp_facts")
                    ),
                    params: vec![Param::TextArray(brands), Param::TextArray(visitors)],
                },
            )
            .await?;
        }
        let changes = cdp_core::counting::Changes {
            counters: removal.counters,
            facts: removal.facts,
        };
        for w in fold.writes(&changes, 0) {
            run(&*tx, op, &w).await?;
        }
        let seqs = Param::IntArray(removed.seqs.clone());
        run(
            &*tx,
            op,
            &Stmt {
                sql: format!(
                    "delete from {} where seq = any($1::int8[])",
                    t("cdp_rollup_pending")
                ),
                params: vec![seqs.clone()],
            },
        )
        .await?;
        let searches = deleted(
            &tx,
            op,
            format!(
                "with d as (delete from {} where brand_id = $1 and event_id = any($2::text[]) \
                 returning 1) select count(*) from d",
                t("cdp_searches")
            ),
            vec![b(), texts(removed.event_ids.clone())],
        )
        .await?;
        let events = deleted(
            &tx,
            op,
            format!(
                "with d as (delete from {} where seq = any($1::int8[]) returning 1) \
                 select count(*) from d",
                t("cdp_events")
            ),
            vec![seqs],
        )
        .await?;
        let profiles = deleted(
            &tx,
            op,
            format!(
                "with d as (delete from {} where brand_id = $1 and anonymous_id = any($2::text[]) \
                 returning 1) select count(*) from d",
                t("cdp_profiles")
            ),
            vec![b(), texts(removed.profiles(erasure))],
        )
        .await?;
        let edge = |f: &dyn Fn(&Edge) -> String| texts(erasure.edges.iter().map(f));
        let edges = deleted(
            &tx,
            op,
            format!(
                "with d as (delete from {} where (brand_id, edge_kind, a_kind, a_value, b_kind, b_value) \
                 in (select $1, * from unnest($2::text[], $3::text[], $4::text[], $5::text[], \
                 $6::text[])) returning 1) select count(*) from d",
                t("cdp_identity_edges")
            ),
            vec![
                b(),
                edge(&|x| x.kind.as_str().to_owned()),
                edge(&|x| x.a.kind.as_str().to_owned()),
                edge(&|x| x.a.value.clone()),
                edge(&|x| x.b.kind.as_str().to_owned()),
                edge(&|x| x.b.value.clone()),
            ],
        )
        .await?;
        let id = erasure_id.hyphenated().to_string();
        run(
            &*tx,
            op,
            &Stmt {
                sql: format!(
                    "insert into {} (brand_id, hash, id_kind, erasure_id, erased_at) \
                     select $1, h, k, $4::uuid, $5 from unnest($2::text[], $3::text[]) as t(h, k) \
                     on conflict (brand_id, hash) do nothing",
                    t("cdp_tombstones")
                ),
                params: vec![
                    b(),
                    texts(erasure.tombstones.iter().map(|x| x.hash.clone())),
                    texts(
                        erasure
                            .tombstones
                            .iter()
                            .map(|x| x.kind.as_str().to_owned()),
                    ),
                    Param::Text(id.clone()),
                    Param::Time(at),
                ],
            },
        )
        .await?;
        let erased = Erased {
            events,
            searches,
            profiles,
            edges,
            rebuild: removed.rebuild(erasure),
        };
        let n = |x: u64| Param::Int(x as i64);
        run(
            &*tx,
            op,
            &Stmt {
                sql: format!(
                    "insert into {} (brand_id, erasure_id, erased_at, identifiers, events, \
                     searches, profiles, edges) values ($1, $2::uuid, $3, $4::int8, $5, $6, $7, $8)",
                    t("cdp_erasures")
                ),
                params: vec![
                    b(),
                    Param::Text(id),
                    Param::Time(at),
                    n(erasure.identifiers.len() as u64),
                    n(erased.events),
                    n(erased.searches),
                    n(erased.profiles),
                    n(erased.edges),
                ],
            },
        )
        .await?;
        tx.commit().await.map_err(e)?;
        Ok(erased)
    }

    async fn tombstones(&self, brand: &BrandId) -> Result<Vec<String>, EraseError> {
        let op = "tombstones";
        let rows = self
            .run_statement(
                op,
                "select hash from {p}cdp_tombstones where brand_id = $1",
                vec![Param::Text(brand.as_str().to_owned())],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(|e| pg_err(op, e)))
            .collect::<Result<_, _>>()?)
    }

    async fn count_suppressed(
        &self,
        brand: &BrandId,
        hits: &[(String, u64)],
        at: DateTime<Utc>,
    ) -> Result<(), EraseError> {
        let op = "count_suppressed";
        if hits.is_empty() {
            return Ok(());
        }
        self.run_statement(
            op,
            "update {p}cdp_tombstones t set suppressed = t.suppressed + h.n, \
             last_suppressed_at = $4 from unnest($2::text[], $3::int8[]) as h(hash, n) \
             where t.brand_id = $1 and t.hash = h.hash",
            vec![
                Param::Text(brand.as_str().to_owned()),
                texts(hits.iter().map(|(h, _)| h.clone())),
                Param::IntArray(hits.iter().map(|(_, n)| *n as i64).collect()),
                Param::Time(at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn erasure_figures(&self, brand: &BrandId) -> Result<ErasureFigures, EraseError> {
        let op = "erasure_figures";
        let rows = self
            .run_statement(
                op,
                "select (select count(*) from {p}cdp_erasures where brand_id = $1), \
                   (select count(*) from {p}cdp_tombstones where brand_id = $1), \
                   (select coalesce(sum(suppressed), 0)::int8 from {p}cdp_tombstones \
                    where brand_id = $1)",
                vec![Param::Text(brand.as_str().to_owned())],
            )
            .await?;
        let get = |i: usize| -> Result<u64, StoreError> {
            match rows.first() {
                Some(r) => Ok(r.try_get::<_, i64>(i).map_err(|e| pg_err(op, e))? as u64),
                None => Ok(0),
            }
        };
        Ok(ErasureFigures {
            erasures: get(0)?,
            tombstones: get(1)?,
            suppressed: get(2)?,
        })
    }
}

impl EventSink for PostgresStore {
    async fn write_events(&self, rows: &[EventRow]) -> Result<Vec<WriteOutcome>, StoreError> {
        let op = "write_events";
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = Vec::with_capacity(rows.len());
        let mut params = EventParams::default();
        for c in rows.iter().map(EventColumns::from_row) {
            keys.push((c.brand_id.clone(), c.event_id.clone()));
            params.push(c);
        }
        let searches: Vec<SearchColumns> = rows
            .iter()
            .filter_map(|r| r.search())
            .map(|s| SearchColumns::from_row(&s))
            .collect();

        let text =
            |f: fn(&SearchColumns) -> String| -> Vec<String> { searches.iter().map(f).collect() };
        let brand = text(|s| s.brand_id.clone());
        let event = text(|s| s.event_id.clone());
        let query = text(|s| s.query.clone());
        let anon = text(|s| s.anonymous_id.clone());
        let count: Vec<i32> = searches.iter().map(|s| s.results_count).collect();
        let page = text(|s| s.page_url.clone());
        let at: Vec<DateTime<Utc>> = searches.iter().map(|s| s.searched_at).collect();
        let mut all: Vec<(&(dyn ToSql + Sync), Type)> = vec![(&false, Type::BOOL)];
        all.extend(params.params());
        all.extend([
            (&brand as &(dyn ToSql + Sync), Type::TEXT_ARRAY),
            (&event, Type::TEXT_ARRAY),
            (&query, Type::TEXT_ARRAY),
            (&anon, Type::TEXT_ARRAY),
            (&count, Type::INT4_ARRAY),
            (&page, Type::TEXT_ARRAY),
            (&at, Type::TIMESTAMPTZ_ARRAY),
        ]);

        // One statement, so one round trip and one implicit transaction (committed, and
        // durable, when it returns): no BEGIN and COMMIT round trips around it. A plain insert
        // first; if a row of the batch is already stored (or comes twice), the whole call
        // fails and stores nothing, and it runs again with `deduplicate`.
        let edges: Vec<EdgeColumns> = cdp_core::identity::batch_edges(rows)
            .iter()
            .map(|(b, e)| EdgeColumns::from_edge(b, e))
            .collect();
        let edge_params = EdgeParams::new(op, &edges)?;
        let statement = if edges.is_empty() {
            &self.sql.write_events
        } else {
            all.extend(edge_params.params());
            &self.sql.write_events_and_edges
        };
        let client = self.client(op).await?;
        let inserted = match client.query_typed(statement, &all).await {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                all[0] = (&true, Type::BOOL);
                client.query_typed(statement, &all).await
            }
            other => other,
        };
        let inserted: HashSet<(String, String)> = inserted
            .map_err(|e| pg_err(op, e))?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| pg_err(op, e))?;
        Ok(codec::outcomes(&keys, &inserted))
    }

    async fn existing_event_ids(
        &self,
        brand: &BrandId,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, StoreError> {
        let op = "existing_event_ids";
        let list: Vec<String> = ids.iter().map(|i| codec::uuid_text(*i)).collect();
        let brand = brand.as_str();
        let client = self.client(op).await?;
        let rows = client
            .query_typed(
                &self.sql.existing_ids,
                &[(&brand, Type::TEXT), (&list, Type::TEXT_ARRAY)],
            )
            .await
            .map_err(|e| pg_err(op, e))?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(|e| pg_err(op, e))?;
                codec::parse_uuid(op, &id)
            })
            .collect()
    }
    async fn last_processed_at(
        &self,
        brand: &BrandId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let op = "last_processed_at";
        let brand = brand.as_str();
        let client = self.client(op).await?;
        let row = client
            .query_typed_opt(&self.sql.last_processed_at, &[(&brand, Type::TEXT)])
            .await
            .map_err(|e| pg_err(op, e))?;
        match row {
            Some(r) => r.try_get(0).map_err(|e| pg_err(op, e)),
            None => Ok(None),
        }
    }
}

impl ProfileStore for PostgresStore {
    async fn load_profile(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, StoreError> {
        let op = "load_profile";
        let (brand, id) = (brand.as_str(), id.as_str());
        let client = self.client(op).await?;
        let rows = client
            .query_typed(
                &self.sql.load_profile,
                &[
                    (&brand, Type::TEXT),
                    (&id, Type::TEXT),
                    (&now, Type::TIMESTAMPTZ),
                ],
            )
            .await
            .map_err(|e| pg_err(op, e))?;
        match rows.first() {
            None => Ok(None),
            Some(r) => {
                let v: Value = r.try_get(0).map_err(|e| pg_err(op, e))?;
                codec::profile_from_json(op, v).map(Some)
            }
        }
    }

    async fn save_profiles(&self, cfg: &Config, profiles: &[Profile]) -> Result<(), StoreError> {
        let op = "save_profiles";
        let cols = codec::latest_per_visitor(profiles)
            .into_iter()
            .map(|p| ProfileColumns::from_profile(cfg, p))
            .collect::<Result<Vec<_>, _>>()?;
        if cols.is_empty() {
            return Ok(());
        }
        let text = |f: fn(&ProfileColumns) -> Option<String>| -> Vec<Option<String>> {
            cols.iter().map(f).collect()
        };
        let ts = |f: fn(&ProfileColumns) -> DateTime<Utc>| -> Vec<DateTime<Utc>> {
            cols.iter().map(f).collect()
        };
        let json = |f: fn(&ProfileColumns) -> Value| -> Vec<Value> { cols.iter().map(f).collect() };
        let real = |f: fn(&ProfileColumns) -> f64| -> Vec<f32> {
            cols.iter().map(|c| f(c) as f32).collect()
        };
        let int = |f: fn(&ProfileColumns) -> i32| -> Vec<i32> { cols.iter().map(f).collect() };
        let brand = text(|c| Some(c.brand_id.clone()));
        let anon = text(|c| Some(c.anonymous_id.clone()));
        let customer = text(|c| c.customer_id.clone());
        let email = text(|c| c.email.clone());
        let predicted = text(|c| Some(c.predicted_persona.clone()));
        let pconf = real(|c| c.persona_confidence);
        let explicit = text(|c| c.explicit_persona.clone());
        let scores = json(|c| c.persona_scores.clone());
        let stage = text(|c| Some(c.current_stage.clone()));
        let sconf = real(|c| c.stage_confidence);
        let first = ts(|c| c.first_seen);
        let last = ts(|c| c.last_seen);
        let sessions = int(|c| c.session_count);
        let signals = int(|c| c.total_signals);
        let stitched: Vec<bool> = cols.iter().map(|c| c.identity_stitched).collect();
        let profile = json(|c| c.profile.clone());
        let expires = ts(|c| c.expires_at);
        let updated = ts(|c| c.updated_at);
        let params: [(&(dyn ToSql + Sync), Type); 18] = [
            (&brand, Type::TEXT_ARRAY),
            (&anon, Type::TEXT_ARRAY),
            (&customer, Type::TEXT_ARRAY),
            (&email, Type::TEXT_ARRAY),
            (&predicted, Type::TEXT_ARRAY),
            (&pconf, Type::FLOAT4_ARRAY),
            (&explicit, Type::TEXT_ARRAY),
            (&scores, Type::JSONB_ARRAY),
            (&stage, Type::TEXT_ARRAY),
            (&sconf, Type::FLOAT4_ARRAY),
            (&first, Type::TIMESTAMPTZ_ARRAY),
            (&last, Type::TIMESTAMPTZ_ARRAY),
            (&sessions, Type::INT4_ARRAY),
            (&signals, Type::INT4_ARRAY),
            (&stitched, Type::BOOL_ARRAY),
            (&profile, Type::JSONB_ARRAY),
            (&expires, Type::TIMESTAMPTZ_ARRAY),
            (&updated, Type::TIMESTAMPTZ_ARRAY),
        ];
        let mut client = self.client(op).await?;
        let tx = client.transaction().await.map_err(|e| pg_err(op, e))?;
        tx.query_typed(&self.sql.upsert_profiles, &params)
            .await
            .map_err(|e| pg_err(op, e))?;
        tx.commit().await.map_err(|e| pg_err(op, e))
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let op = "purge_expired";
        let client = self.client(op).await?;
        let rows = client
            .query_typed(&self.sql.purge_expired, &[(&now, Type::TIMESTAMPTZ)])
            .await
            .map_err(|e| pg_err(op, e))?;
        let n: i64 = match rows.first() {
            Some(r) => r.try_get(0).map_err(|e| pg_err(op, e))?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn visitor_events(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<EventRow>, StoreError> {
        let op = "visitor_events";
        let (brand, id) = (brand.as_str(), id.as_str());
        let client = self.client(op).await?;
        let rows = client
            .query_typed(
                &self.sql.visitor_events,
                &[
                    (&brand, Type::TEXT),
                    (&id, Type::TEXT),
                    (&after, Type::TIMESTAMPTZ),
                ],
            )
            .await
            .map_err(|e| pg_err(op, e))?;
        rows.iter().map(|r| event_from_pg(op, r)).collect()
    }
    async fn load_profiles(
        &self,
        brand: &BrandId,
        ids: &[AnonymousId],
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<AnonymousId, Profile>, StoreError> {
        let op = "load_profiles";
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let brand = brand.as_str();
        let list: Vec<&str> = ids.iter().map(AnonymousId::as_str).collect();
        let client = self.client(op).await?;
        let rows = client
            .query_typed(
                &self.sql.load_profiles,
                &[
                    (&brand, Type::TEXT),
                    (&list, Type::TEXT_ARRAY),
                    (&now, Type::TIMESTAMPTZ),
                ],
            )
            .await
            .map_err(|e| pg_err(op, e))?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(|e| pg_err(op, e))?;
                let v: Value = r.try_get(1).map_err(|e| pg_err(op, e))?;
                Ok((AnonymousId::new(id), codec::profile_from_json(op, v)?))
            })
            .collect()
    }

    async fn visitor_events_many(
        &self,
        brand: &BrandId,
        since: &[(AnonymousId, Option<DateTime<Utc>>)],
    ) -> Result<BTreeMap<AnonymousId, Vec<EventRow>>, StoreError> {
        let op = "visitor_events_many";
        if since.is_empty() {
            return Ok(BTreeMap::new());
        }
        let brand = brand.as_str();
        let ids: Vec<&str> = since.iter().map(|(id, _)| id.as_str()).collect();
        let afters: Vec<Option<DateTime<Utc>>> = since.iter().map(|(_, a)| *a).collect();
        let client = self.client(op).await?;
        let rows = client
            .query_typed(
                &self.sql.visitor_events_many,
                &[
                    (&brand, Type::TEXT),
                    (&ids, Type::TEXT_ARRAY),
                    (&afters, Type::TIMESTAMPTZ_ARRAY),
                ],
            )
            .await
            .map_err(|e| pg_err(op, e))?;
        let mut out: BTreeMap<AnonymousId, Vec<EventRow>> = BTreeMap::new();
        for r in &rows {
            let row = event_from_pg(op, r)?;
            out.entry(row.anonymous_id.clone()).or_default().push(row);
        }
        Ok(out)
    }

    async fn visitor_ids(
        &self,
        brand: &BrandId,
        after: Option<&AnonymousId>,
        limit: usize,
    ) -> Result<Vec<AnonymousId>, StoreError> {
        let op = "visitor_ids";
        let brand = brand.as_str();
        let after = after.map(AnonymousId::as_str);
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let client = self.client(op).await?;
        let rows = client
            .query_typed(
                &self.sql.visitor_ids,
                &[
                    (&brand, Type::TEXT),
                    (&after, Type::TEXT),
                    (&limit, Type::INT8),
                ],
            )
            .await
            .map_err(|e| pg_err(op, e))?;
        rows.iter()
            .map(|r| {
                r.try_get::<_, String>(0)
                    .map(AnonymousId::new)
                    .map_err(|e| pg_err(op, e))
            })
            .collect()
    }
}

fn unavailable(op: &'static str, message: String) -> StoreError {
    StoreError::Unavailable { op, message }
}

/// A failure to check a connection out of the pool, as `Unavailable` with the server's
/// SQLSTATE and message when it sent one.
fn checkout_failed(op: &'static str, e: deadpool_postgres::PoolError) -> StoreError {
    let message = match &e {
        deadpool_postgres::PoolError::Backend(e) => match (e.code(), e.as_db_error()) {
            (Some(code), Some(db)) => {
                format!(
                    "cannot connect (SQLSTATE {}): {}",
                    code.code(),
                    db.message()
                )
            }
            _ => format!("cannot connect: {e}"),
        },
        other => format!("no connection: {other}"),
    };
    unavailable(op, message)
}

/// Maps the error of a statement on a checked-out connection. The connection going away under
/// it is `Unavailable`: no SQLSTATE (I/O, a closed socket), class 08 (connection exception) or
/// 57P0x (the server ended the session: an operator, a crash, a shutdown). Any other SQLSTATE
/// is the server refusing this statement, `Rejected` with that code.
pub(crate) fn pg_err(op: &'static str, e: tokio_postgres::Error) -> StoreError {
    let message = match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_owned(),
        },
        None => e.to_string(),
    };
    crate::postgres_failure(op, e.code().map(|c| c.code()), false, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Postgres types of the [`EVENT_COLUMNS`], in order.
    const EVENT_TYPES: [&str; 21] = [
        "text",
        "text",
        "text",
        "text",
        "text",
        "text",
        "timestamptz",
        "text",
        "text",
        "text",
        "text",
        "text",
        "text",
        "jsonb",
        "text",
        "real",
        "text",
        "text",
        "real",
        "jsonb",
        "timestamptz",
    ];

    /// Postgres types of the [`SEARCH_COLUMNS`], in order.
    const SEARCH_TYPES: [&str; 7] = [
        "text",
        "text",
        "text",
        "text",
        "integer",
        "text",
        "timestamptz",
    ];

    /// `cdp_write_events`' arguments as its migration declares them: `(name, type)` pairs.
    fn declared_write_events_args() -> Vec<(String, String)> {
        let sql = migrate::POSTGRES
            .iter()
            .find(|m| m.name == "write-path")
            .expect("the write-path migration")
            .sql;
        let start = sql
            .find("create or replace function cdp_write_events(")
            .expect("the function");
        let rest = &sql[start..];
        let args = &rest[rest.find('(').unwrap_or(0) + 1..rest.find(")\nreturns").unwrap_or(0)];
        args.split(',')
            .map(|a| {
                let mut words = a.split_whitespace();
                let name = words.next().unwrap_or_default().to_owned();
                let ty = words.collect::<Vec<_>>().join(" ");
                (name, ty)
            })
            .collect()
    }

    #[test]
    fn the_write_function_takes_the_columns_in_the_order_they_are_sent() {
        let mut expected = vec![("deduplicate".to_owned(), "boolean".to_owned())];
        let events = EVENT_COLUMNS
            .iter()
            .chain(&["id"])
            .zip(EVENT_TYPES.iter().chain(&["uuid"]));
        expected.extend(events.map(|(c, t)| (format!("e_{c}"), format!("{t}[]"))));
        let searches = SEARCH_COLUMNS.iter().zip(SEARCH_TYPES);
        expected.extend(searches.map(|(c, t)| (format!("s_{c}"), format!("{t}[]"))));
        assert_eq!(declared_write_events_args(), expected);
        assert_eq!(expected.len(), WRITE_EVENTS_ARGS);

        // And the Rust side binds each event column with that column's array type.
        let params = EventParams::default();
        let sent: Vec<String> = params
            .params()
            .iter()
            .map(|(_, t)| t.name().to_owned())
            .collect();
        let wanted: Vec<String> = EVENT_TYPES
            .iter()
            .chain(&["uuid"])
            .map(|t| match *t {
                "real" => "_float4".to_owned(),
                "integer" => "_int4".to_owned(),
                t => format!("_{t}"),
            })
            .collect();
        assert_eq!(sent, wanted);
    }
}
