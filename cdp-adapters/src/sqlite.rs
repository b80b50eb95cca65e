//! The embedded SQLite backend, the default store: one file under the data directory, WAL
//! journal with `synchronous=FULL` (a committed batch survives power loss), every operation on
//! one connection in one transaction, run on tokio's blocking pool so the async runtime never
//! waits on disk. The caller's batch is the group commit: one fsync per `write_events` call.
//!
//! The dashboard rollups live in a second file beside it (the rollup file, see
//! [`rollup_path`]), with a connection of their own that folds new events into them from a
//! read snapshot of the event file, so a fold never holds the event file's write connection.

use crate::codec::{
    self, EdgeColumns, EventColumns, ProfileColumns, SearchColumns, EDGE_COLUMNS, EVENT_COLUMNS,
    PROFILE_COLUMNS,
};
use crate::migrate::{self, SCHEMA_MIGRATIONS};
use crate::{
    erasing, EraseError, EraseStore, Erased, ErasureFigures, EventSink, IdentityStore,
    ProfileStore, StoreError, WriteOutcome,
};
use cdp_core::identity::{Edge, Erasure, IdKind, IdentityRules, PersonId};
use cdp_core::{AnonymousId, BrandId, Config, EventRow, Profile};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use uuid::Uuid;

/// Most events one fold transaction takes: a first fold after an upgrade recounts every
/// stored event, and this bounds the memory its work tables take.
const FOLD_EVENTS: usize = 100_000;

/// The rollup file of an event file: `cdp.sqlite3` keeps its rollups in `cdp.rollups.sqlite3`.
pub fn rollup_path(events: &Path) -> PathBuf {
    let stem = events
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cdp".to_owned());
    let name = match events.extension() {
        Some(ext) => format!("{stem}.rollups.{}", ext.to_string_lossy()),
        None => format!("{stem}.rollups"),
    };
    events.with_file_name(name)
}

/// How long a statement waits for another process holding the write lock.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// How often the checkpointer copies committed WAL frames back into the database file. A
/// checkpoint copies each page once, however many commits rewrote it since the last one, and
/// under load the same index pages are rewritten by every commit (each commit dirties a leaf
/// of the anonymous_id index for nearly every visitor in it): every second instead of every
/// 100 ms, with the fold every 500 ms (cdp-api/src/rollups.rs), took `cdp load
/// --sqlite-only` from 27,301/28,259 to 30,494/32,115 batched events/s in interleaved runs.
/// The WAL holds up to a second of commits (tens of MB under full load) in exchange.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(1000);
/// WAL pages after which the writer checkpoints by itself: only a backstop for when the
/// checkpointer cannot keep up, so the WAL stays bounded (256 MiB of 4 KiB pages). At 16,384
/// the writer reached it under load and checkpointed inside its commits (`cdp load` p99 21 ms;
/// 15 ms with this bound).
const WRITER_CHECKPOINT_PAGES: u32 = 65_536;
/// The writer's page cache, in KiB: the event table's several indexes take random inserts,
/// and pages found in memory are pages not read back.
const WRITER_CACHE_KIB: u32 = 64 * 1024;

/// A SQLite store. Cloning shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// The rollup file's connection, the only one that writes it, with the event file
    /// attached (read only in practice: it only reads `cdp_events`).
    folder: Arc<Mutex<Connection>>,
    /// A second, read-only connection for dashboard queries, opened on first use: in WAL mode
    /// it reads a consistent snapshot without holding up the writer's connection.
    pub(crate) reader: Arc<Mutex<Option<Connection>>>,
    /// Keeps the checkpointer running while any clone of the store is alive.
    _checkpointer: Arc<Checkpointer>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating the file and its directory when missing) and migrates: the embedded
    /// store has a single owner, so it is always at the latest schema once open.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let p = path.clone();
        let (conn, folder, checkpointer) = tokio::task::spawn_blocking(move || {
            let conn = open_blocking(&p)?;
            let folder = open_rollups_blocking(&p)?;
            Ok::<_, StoreError>((conn, folder, Checkpointer::spawn(&p)?))
        })
        .await
        .map_err(|e| unavailable("open", e.to_string()))??;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
            folder: Arc::new(Mutex::new(folder)),
            reader: Arc::default(),
            _checkpointer: Arc::new(checkpointer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rollup file beside it.
    pub fn rollup_path(&self) -> PathBuf {
        rollup_path(&self.path)
    }

    /// Applies pending migrations; running it again is a no-op.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        self.run("migrate", migrate_blocking).await
    }

    /// Folds the events stored since the last fold into the dashboard rollups and returns how
    /// many it folded (the core's fold, `analytics::sqlite::fold_next`). It runs on the rollup file's
    /// connection against a snapshot of the event file, so the writer's commits go on beside
    /// it; each transaction takes at most `FOLD_EVENTS` events, and it repeats until it has
    /// taken every event stored when it started.
    pub async fn flush_rollups(&self) -> Result<u64, StoreError> {
        let op = "flush_rollups";
        let folder = Arc::clone(&self.folder);
        tokio::task::spawn_blocking(move || {
            let mut c = folder
                .lock()
                .map_err(|_| unavailable(op, "fold connection lock poisoned by a panic".into()))?;
            let e = |err| sql_err(op, err);
            let last: i64 = c
                .query_row(
                    "select coalesce(max(seq), 0) from events.cdp_events",
                    [],
                    |r| r.get(0),
                )
                .map_err(e)?;
            let mut folded = 0u64;
            loop {
                // Deferred: `begin immediate` would take the write lock of every attached
                // file, the event file's too, and stop the writer for the whole fold. This
                // connection is the rollup file's only writer, so its first write there
                // never waits, and the event file is only read.
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Deferred)
                    .map_err(e)?;
                let mark: i64 = tx
                    .query_row("select folded_seq from cdp_rollup_mark", [], |r| r.get(0))
                    .map_err(e)?;
                if mark >= last {
                    return Ok(folded);
                }
                let n = crate::analytics::sqlite::fold_next(&tx, FOLD_EVENTS)?;
                tx.commit().map_err(e)?;
                folded += n;
                if n == 0 {
                    return Ok(folded);
                }
            }
        })
        .await
        .map_err(|e| unavailable(op, e.to_string()))?
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", |c| {
            c.query_row("select 1", [], |_| Ok(()))
                .map_err(|e| sql_err("ping", e))
        })
        .await
    }

    /// Runs `f` on the connection on the blocking pool.
    async fn run<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.start(op, f).await
    }

    /// Starts `f` on the connection at once (on a blocking thread) and returns its result as a
    /// future, so the caller can go on working while it runs.
    fn start<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl std::future::Future<Output = Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let task = tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| unavailable(op, "connection lock poisoned by a panic".into()))?;
            f(&mut guard)
        });
        async move { task.await.map_err(|e| unavailable(op, e.to_string()))? }
    }
}

fn open_blocking(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| unavailable("open", format!("creating {}: {e}", dir.display())))?;
    }
    let mut conn = open_wal(path)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // FULL syncs the WAL on every commit, which is what makes an acknowledged batch durable.
    // Never lower it.
    conn.execute_batch("pragma synchronous = full;")
        .map_err(|e| sql_err("open", e))?;
    // Checkpoints are the checkpointer's job, off the commit path; see [`Checkpointer`].
    // Statement journals (what undoes one failed statement inside a transaction, written for
    // every multi-row insert) and the fold's work tables stay in memory instead of temp
    // files: they never hold committed data, so durability does not depend on them.
    conn.execute_batch(&format!(
        "pragma wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}; \
         pragma cache_size = -{WRITER_CACHE_KIB}; \
         pragma temp_store = memory;"
    ))
    .map_err(|e| sql_err("open", e))?;
    migrate_blocking(&mut conn)?;
    Ok(conn)
}

/// Opens a SQLite file in WAL mode (readers run beside the writer), waiting up to
/// [`BUSY_TIMEOUT_MS`] for another process's lock.
fn open_wal(path: &Path) -> Result<Connection, StoreError> {
    let op = "open";
    let conn = Connection::open(path)
        .map_err(|e| unavailable(op, format!("opening {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
        .map_err(|e| sql_err(op, e))?;
    let mode: String = conn
        .query_row("pragma journal_mode = wal", [], |r| r.get(0))
        .map_err(|e| sql_err(op, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(unavailable(
            op,
            format!("{} cannot use WAL (journal_mode is {mode})", path.display()),
        ));
    }
    Ok(conn)
}

/// Opens (creating and migrating) the rollup file of the event file at `events`, and attaches
/// the event file as `events`, whose tables the fold reads by their plain names.
///
/// The rollup file syncs at `synchronous = NORMAL`: its contents can always be recounted from
/// the events, and a fold lost to a power cut only leaves the mark where the rollups are (both
/// are in the same transaction), so the next fold takes those events again.
fn open_rollups_blocking(events: &Path) -> Result<Connection, StoreError> {
    let op = "open";
    let mut conn = open_wal(&rollup_path(events))?;
    conn.execute_batch(&format!(
        "pragma synchronous = normal; pragma cache_size = -{WRITER_CACHE_KIB}; \
         pragma temp_store = memory;"
    ))
    .map_err(|e| sql_err(op, e))?;
    apply_migrations(&mut conn, migrate::SQLITE_ROLLUPS)?;
    conn.execute(
        "attach database ?1 as events",
        [events.to_string_lossy().as_ref()],
    )
    .map_err(|e| sql_err(op, e))?;
    recount_if_ahead(&mut conn)?;
    Ok(conn)
}

/// Empties the rollups and puts the mark back to 0 when it is past the last `seq` the event
/// file has handed out (`sqlite_sequence`, which an erasure's deletes do not lower): the event
/// file is older than the rollup file (restored from a backup without it), so the rollups
/// count events that file does not hold. The next fold recounts every stored event.
/// Checked at open, before the collector can store anything new with those `seq`s.
fn recount_if_ahead(conn: &mut Connection) -> Result<(), StoreError> {
    let op = "open";
    let e = |err| sql_err(op, err);
    let tx = conn.transaction().map_err(e)?;
    let (mark, last): (i64, i64) = tx
        .query_row(
            "select folded_seq, max((select coalesce(max(seq), 0) from events.cdp_events), \
               coalesce((select seq from events.sqlite_sequence where name = 'cdp_events'), 0)) \
             from cdp_rollup_mark",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(e)?;
    if mark > last {
        tracing::warn!(
            folded_through = mark,
            last_stored = last,
            "the rollup file is ahead of the event file (restored separately?); recounting"
        );
        for table in crate::analytics::ROLLUP_TABLES {
            tx.execute(&format!("delete from main.{table}"), [])
                .map_err(e)?;
        }
        tx.execute("update cdp_rollup_mark set folded_seq = 0", [])
            .map_err(e)?;
    }
    tx.commit().map_err(e)
}

/// Copies committed WAL frames back into the database file from its own connection and
/// thread, every [`CHECKPOINT_EVERY`]. Left to the writer, a checkpoint (with its fsync of the
/// database file) would run inside whichever commit crossed the threshold and hold up every
/// request in that batch. `PASSIVE` never blocks the writer, and durability does not depend on
/// it: a commit is durable once its WAL frames are synced, which the writer still does on
/// every commit. The thread ends when the last clone of the store is dropped.
struct Checkpointer {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    fn spawn(path: &Path) -> Result<Checkpointer, StoreError> {
        let op = "open";
        let conn = Connection::open(path)
            .map_err(|e| unavailable(op, format!("opening {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(|e| sql_err(op, e))?;
        conn.execute_batch("pragma synchronous = full;")
            .map_err(|e| sql_err(op, e))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("cdp-sqlite-wal".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(e) = conn.query_row("pragma wal_checkpoint(passive)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "sqlite checkpoint failed; will retry");
                    }
                }
            })
            .map_err(|e| unavailable(op, format!("starting the checkpointer: {e}")))?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn migrate_blocking(conn: &mut Connection) -> Result<Vec<i64>, StoreError> {
    apply_migrations(conn, migrate::SQLITE)
}

/// Applies the migrations of `list` not yet recorded in the file's `schema_migrations`.
fn apply_migrations(
    conn: &mut Connection,
    list: &[migrate::Migration],
) -> Result<Vec<i64>, StoreError> {
    let op = "migrate";
    // IMMEDIATE takes the write lock first, so two processes migrating at once serialise.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sql_err(op, e))?;
    tx.execute_batch(SCHEMA_MIGRATIONS)
        .map_err(|e| sql_err(op, e))?;
    let mut applied = Vec::new();
    for m in list {
        let done: Option<i64> = tx
            .query_row(
                "select version from schema_migrations where version = ?1",
                [m.version],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| sql_err(op, e))?;
        if done.is_none() {
            tx.execute_batch(m.sql).map_err(|e| sql_err(op, e))?;
            tx.execute(
                "insert into schema_migrations (version, name) values (?1, ?2)",
                params![m.version, m.name],
            )
            .map_err(|e| sql_err(op, e))?;
            applied.push(m.version);
        }
    }
    tx.commit().map_err(|e| sql_err(op, e))?;
    Ok(applied)
}

pub(crate) fn quoted(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Most events one insert statement carries (22 parameters each, far below SQLite's 32,766).
///
/// Why several rows per statement: it makes far fewer calls into SQLite, which counts while the
/// one write connection is the bottleneck. (While migration 0003's queue trigger fired on every
/// insert, SQLite also kept a statement journal per statement, copying every page a statement
/// changed before its first change; one statement per event paid that for every event.)
const EVENTS_PER_STATEMENT: usize = 256;

/// How many rows each insert statement of a batch of `n` carries: full statements of
/// [`EVENTS_PER_STATEMENT`], then the rest in powers of two, so a handful of statement shapes
/// (each prepared once and cached) cover every batch size.
fn statement_sizes(n: usize) -> Vec<usize> {
    let mut sizes = vec![EVENTS_PER_STATEMENT; n / EVENTS_PER_STATEMENT];
    let rest = n % EVENTS_PER_STATEMENT;
    let mut bit = EVENTS_PER_STATEMENT;
    while bit > 0 {
        bit /= 2;
        if rest & bit != 0 {
            sizes.push(bit);
        }
    }
    sizes
}

/// The insert of `rows` events, returning the key of each row it stored: a row that is
/// already stored, or that comes again later in the same statement, is skipped by
/// `do nothing` and not returned.
///
/// `or fail`: any other constraint a row breaks stops the statement where it is instead of
/// undoing the statement's earlier rows, and the write then rolls back its whole transaction
/// (see [`write_blocking`]), so nothing of the batch is stored either way. Undoing one
/// statement is what SQLite keeps a statement journal for: a copy of every page a multi-row
/// insert changes, taken before its first change, about a tenth of the writer's time.
fn build_insert_events_sql(rows: usize) -> String {
    let n = EVENT_COLUMNS.len() + 1;
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=n).map(|i| format!("?{}", r * n + i)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "insert or fail into cdp_events (id, {}) values {} \
         on conflict (brand_id, event_id) do nothing returning brand_id, event_id",
        quoted(&EVENT_COLUMNS),
        values.join(", ")
    )
}

/// The insert statement of each size [`statement_sizes`] uses (powers of two), built once.
static INSERT_EVENTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut all = Vec::new();
    let mut size = 1;
    while size <= EVENTS_PER_STATEMENT {
        all.push(build_insert_events_sql(size));
        size *= 2;
    }
    all
});

/// The insert of `rows` events; `rows` is a power of two up to [`EVENTS_PER_STATEMENT`].
fn insert_events_sql(rows: usize) -> &'static str {
    &INSERT_EVENTS[rows.trailing_zeros() as usize]
}

/// Prepared insert statements kept per connection: one per size [`statement_sizes`] uses,
/// plus the other statements of this module.
const STATEMENT_CACHE: usize = 32;

/// A search row, its id time-ordered like an event's (see [`row_id`]), so the primary key
/// grows at its right edge too.
const INSERT_SEARCH: &str = "insert into cdp_searches \
     (id, brand_id, event_id, query, anonymous_id, results_count, page_url, searched_at) \
     values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) on conflict (brand_id, event_id) do nothing";

/// A new row id: a version 7 UUID (time-ordered, like the ids the Postgres adapter sends) in
/// the form of the columns' default, 32 lower-case hex digits. New ids sort after old ones, so
/// a unique index on `id` grows at its right edge: a commit dirties a page or two of it
/// instead of one random page per row, each of which a commit writes to the WAL in full.
fn row_id() -> String {
    Uuid::now_v7().simple().to_string()
}

fn upsert_profile_sql() -> String {
    let updates: Vec<String> = PROFILE_COLUMNS[2..]
        .iter()
        .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
        .collect();
    format!(
        "insert into cdp_profiles ({}) values ({}) on conflict (brand_id, anonymous_id) do update set {}",
        quoted(&PROFILE_COLUMNS),
        placeholders(PROFILE_COLUMNS.len()),
        updates.join(", ")
    )
}

fn json_text(v: &Value) -> String {
    v.to_string()
}

/// A row in its stored form, with its search row when it has one: built before the write
/// takes the connection, so the one writer spends its time in SQLite, not in formatting
/// timestamps and JSON.
struct RowColumns {
    /// The row id, from [`row_id`].
    id: String,
    cols: EventColumns,
    /// `timestamp`, `properties`, `persona_scores` and `processed_at` as stored.
    texts: [String; 4],
    /// The search row: its id, its columns and `searched_at` as stored.
    search: Option<(String, SearchColumns, String)>,
}

impl RowColumns {
    fn new(row: &EventRow) -> RowColumns {
        let cols = EventColumns::from_row(row);
        let texts = [
            codec::ts_text(cols.timestamp),
            json_text(&cols.properties),
            json_text(&cols.persona_scores),
            codec::ts_text(cols.processed_at),
        ];
        let search = row.search().as_ref().map(|s| {
            let s = SearchColumns::from_row(s);
            let at = codec::ts_text(s.searched_at);
            (row_id(), s, at)
        });
        RowColumns {
            id: row_id(),
            cols,
            texts,
            search,
        }
    }

    /// The row's values: `id`, then the [`EVENT_COLUMNS`] in order.
    fn values(&self) -> [&dyn rusqlite::ToSql; EVENT_COLUMNS.len() + 1] {
        let c = &self.cols;
        let [timestamp, properties, scores, processed_at] = &self.texts;
        [
            &self.id,
            &c.brand_id,
            &c.event_id,
            &c.event_type,
            &c.anonymous_id,
            &c.customer_id,
            &c.session_id,
            timestamp,
            &c.page_url,
            &c.page_title,
            &c.referrer,
            &c.utm_source,
            &c.utm_medium,
            &c.utm_campaign,
            properties,
            &c.predicted_persona,
            &c.persona_confidence,
            &c.explicit_persona,
            &c.current_stage,
            &c.stage_confidence,
            scores,
            processed_at,
        ]
    }
}

/// Inserts a batch of `total` rows, its steps as they arrive, all in one transaction; the
/// outcome of each row, in order. It commits only once all `total` rows have come: if the
/// sender goes away before (its task was dropped), nothing of the batch is stored.
fn write_blocking(
    conn: &mut Connection,
    steps: std::sync::mpsc::Receiver<Vec<RowColumns>>,
    total: usize,
    edges: &[EdgeColumns],
) -> Result<Vec<WriteOutcome>, StoreError> {
    let op = "write_events";
    let e = |err| sql_err(op, err);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(e)?;
    let mut out = Vec::new();
    // Every step of the batch, in order, until the sender is done: one transaction.
    for rows in steps.iter() {
        let mut search = tx.prepare_cached(INSERT_SEARCH).map_err(e)?;
        let mut start = 0;
        for size in statement_sizes(rows.len()) {
            let chunk = &rows[start..start + size];
            start += size;
            let mut insert = tx.prepare_cached(insert_events_sql(size)).map_err(e)?;
            let values: Vec<&dyn rusqlite::ToSql> =
                chunk.iter().flat_map(RowColumns::values).collect();
            // The keys the statement stored: event id, then the brands stored under it.
            let mut stored: HashMap<String, Vec<String>> = HashMap::with_capacity(size);
            let mut returned = insert.query(values.as_slice()).map_err(e)?;
            while let Some(r) = returned.next().map_err(e)? {
                let (brand, event): (String, String) = (r.get(0).map_err(e)?, r.get(1).map_err(e)?);
                stored.entry(event).or_default().push(brand);
            }
            drop(returned);
            for row in chunk {
                let c = &row.cols;
                // The first row of a key claims it: SQLite inserts the rows in order.
                let brands = stored.get_mut(c.event_id.as_str());
                let claimed = brands.and_then(|b| {
                    let i = b.iter().position(|x| *x == c.brand_id)?;
                    Some(b.swap_remove(i))
                });
                out.push(if claimed.is_some() {
                    WriteOutcome::Inserted
                } else {
                    WriteOutcome::Duplicate
                });
                if let Some((id, s, searched_at)) = &row.search {
                    search
                        .execute(params![
                            id,
                            s.brand_id,
                            s.event_id,
                            s.query,
                            s.anonymous_id,
                            s.results_count,
                            s.page_url,
                            searched_at,
                        ])
                        .map_err(e)?;
                }
            }
        }
    }
    if out.len() != total {
        return Err(unavailable(
            op,
            format!("the batch ended after {} of its {total} rows", out.len()),
        ));
    }
    upsert_edges(op, &tx, edges)?;
    tx.commit().map_err(e)?;
    Ok(out)
}

/// The batch's edges in stored form.
fn edge_columns(edges: &[(BrandId, Edge)]) -> Vec<EdgeColumns> {
    edges
        .iter()
        .map(|(b, e)| EdgeColumns::from_edge(b, e))
        .collect()
}

/// Keeps each edge unless its pair already holds an earlier one (the log's rule, see
/// [`crate::IdentityStore`]).
const UPSERT_EDGE: &str = "insert into cdp_identity_edges (brand_id, edge_kind, a_kind, \
    a_value, b_kind, b_value, at, event_id, origin) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
    on conflict (brand_id, edge_kind, a_kind, a_value, b_kind, b_value) do update set \
    at = excluded.at, event_id = excluded.event_id, origin = excluded.origin \
    where (excluded.at, excluded.event_id) < (cdp_identity_edges.at, cdp_identity_edges.event_id)";

fn upsert_edges(
    op: &'static str,
    tx: &rusqlite::Transaction<'_>,
    edges: &[EdgeColumns],
) -> Result<(), StoreError> {
    if edges.is_empty() {
        return Ok(());
    }
    let e = |err| sql_err(op, err);
    let mut stmt = tx.prepare_cached(UPSERT_EDGE).map_err(e)?;
    for edge in edges {
        stmt.execute(rusqlite::params_from_iter(edge.values()))
            .map_err(e)?;
    }
    Ok(())
}

impl IdentityStore for SqliteStore {
    async fn identity_edges(&self, brand: &BrandId) -> Result<Vec<Edge>, StoreError> {
        let op = "identity_edges";
        let brand = brand.as_str().to_owned();
        self.run(op, move |c| {
            let e = |err| sql_err(op, err);
            let mut stmt = c
                .prepare_cached(&format!(
                    "select {} from cdp_identity_edges where brand_id = ?1",
                    quoted(&EDGE_COLUMNS)
                ))
                .map_err(e)?;
            let rows = stmt
                .query_map(params![brand], |r| {
                    Ok(EdgeColumns {
                        brand_id: r.get(0)?,
                        edge_kind: r.get(1)?,
                        a_kind: r.get(2)?,
                        a_value: r.get(3)?,
                        b_kind: r.get(4)?,
                        b_value: r.get(5)?,
                        at: r.get(6)?,
                        event_id: r.get(7)?,
                        origin: r.get(8)?,
                    })
                })
                .map_err(e)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(e)?.into_edge(op)?);
            }
            Ok(out)
        })
        .await
    }

    async fn add_edges(&self, brand: &BrandId, edges: &[Edge]) -> Result<(), StoreError> {
        let op = "add_edges";
        let cols: Vec<EdgeColumns> = edges
            .iter()
            .map(|e| EdgeColumns::from_edge(brand, e))
            .collect();
        self.run(op, move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|err| sql_err(op, err))?;
            upsert_edges(op, &tx, &cols)?;
            tx.commit().map_err(|err| sql_err(op, err))
        })
        .await
    }

    async fn stamp_people(
        &self,
        brand: &BrandId,
        people: &[(AnonymousId, PersonId)],
    ) -> Result<Option<u64>, StoreError> {
        let op = "stamp_people";
        let brand = brand.as_str().to_owned();
        let pairs = Value::from(
            people
                .iter()
                .map(|(b, p)| json!([b.as_str(), p.0.hyphenated().to_string()]))
                .collect::<Vec<_>>(),
        )
        .to_string();
        self.run(op, move |c| {
            let e = |err| sql_err(op, err);
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(e)?;
            let set = tx
                .execute(
                    "update cdp_profiles set person_id = v.p from (select \
                       json_extract(value, '$[0]') as b, json_extract(value, '$[1]') as p \
                       from json_each(?2)) v \
                     where brand_id = ?1 and anonymous_id = v.b and person_id is not v.p",
                    params![brand, pairs],
                )
                .map_err(e)?;
            let cleared = tx
                .execute(
                    "update cdp_profiles set person_id = null where brand_id = ?1 \
                     and person_id is not null and anonymous_id not in \
                     (select json_extract(value, '$[0]') from json_each(?2))",
                    params![brand, pairs],
                )
                .map_err(e)?;
            tx.commit().map_err(e)?;
            Ok(Some((set + cleared) as u64))
        })
        .await
    }

    async fn stamped_people(
        &self,
        brand: &BrandId,
    ) -> Result<Option<BTreeMap<AnonymousId, String>>, StoreError> {
        let op = "stamped_people";
        let brand = brand.as_str().to_owned();
        self.run(op, move |c| {
            let e = |err| sql_err(op, err);
            let mut stmt = c
                .prepare(
                    "select anonymous_id, person_id from cdp_profiles \
                     where brand_id = ?1 and person_id is not null",
                )
                .map_err(e)?;
            let rows = stmt
                .query_map(params![brand], |r| {
                    Ok((
                        AnonymousId::new(r.get::<_, String>(0)?),
                        r.get::<_, String>(1)?,
                    ))
                })
                .map_err(e)?;
            Ok(Some(
                rows.collect::<Result<BTreeMap<_, _>, _>>().map_err(e)?,
            ))
        })
        .await
    }
}

/// A JSON array of strings, for `json_each` (SQLite binds no arrays).
pub(crate) fn json_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    Value::from(
        items
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect::<Vec<_>>(),
    )
    .to_string()
}

/// The stored events an erasure may remove (see [`cdp_core::identity::Erasure`]), with their
/// `seq`: the candidate browsers' events, and any with one of its customer ids or, lower-cased,
/// emails.
fn erase_candidates(
    op: &'static str,
    c: &Connection,
    brand: &str,
    erasure: &Erasure,
) -> Result<Vec<(i64, EventRow)>, StoreError> {
    let e = |err| sql_err(op, err);
    let sql = format!(
        "select {}, seq from cdp_events where brand_id = ?1 and ( \
           anonymous_id in (select value from json_each(?2)) \
           or customer_id in (select value from json_each(?3)) \
           or lower(trim(json_extract(properties, '$.email'))) in (select value from json_each(?4)))",
        quoted(&EVENT_COLUMNS)
    );
    let mut stmt = c.prepare(&sql).map_err(e)?;
    let browsers = json_list(erasure.candidate_browsers.iter().map(|b| b.as_str()));
    let customers = json_list(erasure.values(IdKind::CustomerId));
    let emails = json_list(erasure.values(IdKind::Email));
    let mut rows = stmt
        .query(params![brand, browsers, customers, emails])
        .map_err(e)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(e)? {
        let seq: i64 = r.get(EVENT_COLUMNS.len()).map_err(e)?;
        out.push((seq, event_from_sql(op, r)?));
    }
    Ok(out)
}

/// The erasure in the caller's transaction on the rollup file's connection (the event file
/// attached): see [`EraseStore::erase`].
fn erase_blocking(
    c: &Connection,
    brand: &str,
    erasure: &Erasure,
    rules: &IdentityRules,
    erasure_id: &str,
    at: &str,
) -> Result<Erased, StoreError> {
    let op = "erase";
    let e = |err| sql_err(op, err);
    let removed = erasing::removed(erase_candidates(op, c, brand, erasure)?, erasure, rules);
    let before = crate::analytics::sqlite::folded_events_of(c, op, brand, &removed.visitors)?;
    crate::analytics::sqlite::take_out(c, op, removed.rollups(&before))?;
    let searches = c
        .execute(
            "delete from cdp_searches where brand_id = ?1 \
             and event_id in (select value from json_each(?2))",
            params![brand, json_list(&removed.event_ids)],
        )
        .map_err(e)?;
    let events = c
        .execute(
            "delete from cdp_events where seq in (select value from json_each(?1))",
            params![Value::from(removed.seqs.clone()).to_string()],
        )
        .map_err(e)?;
    let profiles = c
        .execute(
            "delete from cdp_profiles where brand_id = ?1 \
             and anonymous_id in (select value from json_each(?2))",
            params![brand, json_list(removed.profiles(erasure))],
        )
        .map_err(e)?;
    let mut edges = 0;
    {
        let mut gone = c
            .prepare_cached(
                "delete from cdp_identity_edges where brand_id = ?1 and edge_kind = ?2 \
                 and a_kind = ?3 and a_value = ?4 and b_kind = ?5 and b_value = ?6",
            )
            .map_err(e)?;
        for x in &erasure.edges {
            edges += gone
                .execute(params![
                    brand,
                    x.kind.as_str(),
                    x.a.kind.as_str(),
                    x.a.value,
                    x.b.kind.as_str(),
                    x.b.value
                ])
                .map_err(e)?;
        }
        let mut keep = c
            .prepare_cached(
                "insert into cdp_tombstones (brand_id, hash, id_kind, erasure_id, erased_at) \
                 values (?1, ?2, ?3, ?4, ?5) on conflict (brand_id, hash) do nothing",
            )
            .map_err(e)?;
        for t in &erasure.tombstones {
            keep.execute(params![brand, t.hash, t.kind.as_str(), erasure_id, at])
                .map_err(e)?;
        }
    }
    let erased = Erased {
        events: events as u64,
        searches: searches as u64,
        profiles: profiles as u64,
        edges: edges as u64,
        rebuild: removed.rebuild(erasure),
    };
    c.execute(
        "insert into cdp_erasures (brand_id, erasure_id, erased_at, identifiers, events, \
         searches, profiles, edges) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            brand,
            erasure_id,
            at,
            erasure.identifiers.len() as i64,
            erased.events as i64,
            erased.searches as i64,
            erased.profiles as i64,
            erased.edges as i64
        ],
    )
    .map_err(e)?;
    Ok(erased)
}

impl EraseStore for SqliteStore {
    async fn erase(
        &self,
        brand: &BrandId,
        erasure: &Erasure,
        rules: &IdentityRules,
        erasure_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Erased, EraseError> {
        let op = "erase";
        let (brand, erasure, rules) = (brand.as_str().to_owned(), erasure.clone(), rules.clone());
        let (id, at) = (erasure_id.hyphenated().to_string(), codec::ts_text(at));
        let folder = Arc::clone(&self.folder);
        // On the rollup file's connection, with the event file attached: one transaction
        // over both (immediate: it takes the event file's write lock first, so nothing is
        // stored between the read of the candidates and their deletion).
        Ok(tokio::task::spawn_blocking(move || {
            let mut c = folder
                .lock()
                .map_err(|_| unavailable(op, "fold connection lock poisoned by a panic".into()))?;
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|err| sql_err(op, err))?;
            let erased = erase_blocking(&tx, &brand, &erasure, &rules, &id, &at)?;
            tx.commit().map_err(|err| sql_err(op, err))?;
            Ok::<_, StoreError>(erased)
        })
        .await
        .map_err(|err| unavailable(op, err.to_string()))??)
    }

    async fn tombstones(&self, brand: &BrandId) -> Result<Vec<String>, EraseError> {
        let op = "tombstones";
        let brand = brand.as_str().to_owned();
        Ok(self
            .run(op, move |c| {
                let e = |err| sql_err(op, err);
                let mut stmt = c
                    .prepare("select hash from cdp_tombstones where brand_id = ?1")
                    .map_err(e)?;
                let rows = stmt
                    .query_map(params![brand], |r| r.get::<_, String>(0))
                    .map_err(e)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(e)
            })
            .await?)
    }

    async fn count_suppressed(
        &self,
        brand: &BrandId,
        hits: &[(String, u64)],
        at: DateTime<Utc>,
    ) -> Result<(), EraseError> {
        let op = "count_suppressed";
        let (brand, hits, at) = (brand.as_str().to_owned(), hits.to_vec(), codec::ts_text(at));
        Ok(self
            .run(op, move |c| {
                let e = |err| sql_err(op, err);
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(e)?;
                {
                    let mut add = tx
                        .prepare_cached(
                            "update cdp_tombstones set suppressed = suppressed + ?3, \
                             last_suppressed_at = ?4 where brand_id = ?1 and hash = ?2",
                        )
                        .map_err(e)?;
                    for (hash, n) in &hits {
                        add.execute(params![brand, hash, *n as i64, at])
                            .map_err(e)?;
                    }
                }
                tx.commit().map_err(e)
            })
            .await?)
    }

    async fn erasure_figures(&self, brand: &BrandId) -> Result<ErasureFigures, EraseError> {
        let op = "erasure_figures";
        let brand = brand.as_str().to_owned();
        Ok(self
            .run(op, move |c| {
                c.query_row(
                    "select (select count(*) from cdp_erasures where brand_id = ?1), \
                       (select count(*) from cdp_tombstones where brand_id = ?1), \
                       (select coalesce(sum(suppressed), 0) from cdp_tombstones where brand_id = ?1)",
                    params![brand],
                    |r| {
                        Ok(ErasureFigures {
                            erasures: r.get::<_, i64>(0)? as u64,
                            tombstones: r.get::<_, i64>(1)? as u64,
                            suppressed: r.get::<_, i64>(2)? as u64,
                        })
                    },
                )
                .map_err(|err| sql_err(op, err))
            })
            .await?)
    }
}

pub(crate) fn event_from_sql(
    op: &'static str,
    r: &rusqlite::Row<'_>,
) -> Result<EventRow, StoreError> {
    let e = |err| sql_err(op, err);
    let text = |i: usize| -> Result<String, StoreError> { r.get::<_, String>(i).map_err(e) };
    let opt = |i: usize| -> Result<Option<String>, StoreError> { r.get(i).map_err(e) };
    let json = |i: usize| -> Result<Value, StoreError> {
        let s: Option<String> = r.get(i).map_err(e)?;
        match s {
            None => Ok(Value::Null),
            Some(s) => serde_json::from_str(&s).map_err(|err| StoreError::Corrupt {
                op,
                message: format!("{}: {err}", EVENT_COLUMNS[i]),
            }),
        }
    };
    let cols = EventColumns {
        brand_id: text(0)?,
        event_id: text(1)?,
        event_type: text(2)?,
        anonymous_id: text(3)?,
        customer_id: opt(4)?,
        session_id: text(5)?,
        timestamp: codec::parse_ts(op, &text(6)?)?,
        page_url: text(7)?,
        page_title: opt(8)?,
        referrer: opt(9)?,
        utm_source: opt(10)?,
        utm_medium: opt(11)?,
        utm_campaign: opt(12)?,
        properties: json(13)?,
        predicted_persona: text(14)?,
        persona_confidence: r.get(15).map_err(e)?,
        explicit_persona: opt(16)?,
        current_stage: text(17)?,
        stage_confidence: r.get(18).map_err(e)?,
        persona_scores: json(19)?,
        processed_at: codec::parse_ts(op, &text(20)?)?,
    };
    cols.into_row(op)
}

impl EventSink for SqliteStore {
    async fn write_events(&self, rows: &[EventRow]) -> Result<Vec<WriteOutcome>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // The writer inserts each step's rows while the next step is put in stored form here
        // (timestamps and JSON as text: about a sixth of the time the insert takes), so the
        // one write connection does not wait for the whole batch to be converted first.
        let mut steps = rows
            .chunks(EVENTS_PER_STATEMENT)
            .map(|step| step.iter().map(RowColumns::new).collect::<Vec<_>>());
        let (send, to_write) = std::sync::mpsc::channel();
        // The first step is ready before the writer starts, and a batch of one step (all that
        // single-event traffic makes) is complete, so the writer never waits on it.
        if let Some(first) = steps.next() {
            // Cannot fail: the receiver is still here.
            let _ = send.send(first);
        }
        let send = (steps.len() > 0).then_some(send);
        let total = rows.len();
        let edges = edge_columns(&cdp_core::identity::batch_edges(rows));
        let written = self.start("write_events", move |c| {
            write_blocking(c, to_write, total, &edges)
        });
        if let Some(send) = send {
            for step in steps {
                if send.send(step).is_err() {
                    // The write failed and rolled back; its error is the answer.
                    break;
                }
            }
        }
        written.await
    }

    async fn existing_event_ids(
        &self,
        brand: &BrandId,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, StoreError> {
        let op = "existing_event_ids";
        let brand = brand.as_str().to_owned();
        let list = json_list(ids.iter().map(|i| codec::uuid_text(*i)));
        self.run(op, move |c| {
            let e = |err| sql_err(op, err);
            let mut stmt = c
                .prepare_cached(
                    "select event_id from cdp_events where brand_id = ?1 \
                     and event_id in (select value from json_each(?2))",
                )
                .map_err(e)?;
            let found = stmt
                .query_map(params![brand, list], |r| r.get::<_, String>(0))
                .map_err(e)?;
            let mut out = HashSet::new();
            for id in found {
                out.insert(codec::parse_uuid(op, &id.map_err(e)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn last_processed_at(
        &self,
        brand: &BrandId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let op = "last_processed_at";
        let brand = brand.as_str().to_owned();
        self.run(op, move |c| {
            let latest: Option<String> = c
                .query_row(LAST_PROCESSED_AT, params![brand], |r| r.get(0))
                .map_err(|e| sql_err(op, e))?;
            latest.map(|t| codec::parse_ts(op, &t)).transpose()
        })
        .await
    }
}

/// The latest `processed_at` among the brand's newest rows by `seq` (the rowid): a backwards
/// walk of the table's own b-tree, never a scan.
const LAST_PROCESSED_AT: &str = "select max(processed_at) from (select processed_at \
    from cdp_events where brand_id = ?1 order by seq desc limit 100)";

const LOAD_PROFILE: &str = "select profile from cdp_profiles \
    where brand_id = ?1 and anonymous_id = ?2 and expires_at >= ?3";

fn visitor_events_sql() -> String {
    format!(
        "select {} from cdp_events where brand_id = ?1 and anonymous_id = ?2 \
         and (?3 is null or processed_at >= ?3) order by seq",
        quoted(&EVENT_COLUMNS)
    )
}

fn load_profile_blocking(
    op: &'static str,
    c: &Connection,
    brand: &str,
    id: &str,
    now: &str,
) -> Result<Option<Profile>, StoreError> {
    let mut stmt = c.prepare_cached(LOAD_PROFILE).map_err(|e| sql_err(op, e))?;
    let json: Option<String> = stmt
        .query_row(params![brand, id, now], |r| r.get(0))
        .optional()
        .map_err(|e| sql_err(op, e))?;
    json.map(|s| {
        let v = serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
            op,
            message: format!("profile JSON: {e}"),
        })?;
        codec::profile_from_json(op, v)
    })
    .transpose()
}

fn visitor_events_blocking(
    op: &'static str,
    c: &Connection,
    brand: &str,
    id: &str,
    after: Option<&str>,
) -> Result<Vec<EventRow>, StoreError> {
    let e = |err| sql_err(op, err);
    let mut stmt = c.prepare_cached(&visitor_events_sql()).map_err(e)?;
    let mut rows = stmt.query(params![brand, id, after]).map_err(e)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(e)? {
        out.push(event_from_sql(op, r)?);
    }
    Ok(out)
}

impl ProfileStore for SqliteStore {
    async fn load_profile(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, StoreError> {
        let op = "load_profile";
        let (brand, id) = (brand.as_str().to_owned(), id.as_str().to_owned());
        self.run(op, move |c| {
            load_profile_blocking(op, c, &brand, &id, &codec::ts_text(now))
        })
        .await
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
        self.run(op, move |c| {
            let e = |err| sql_err(op, err);
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(e)?;
            {
                let mut stmt = tx.prepare_cached(&upsert_profile_sql()).map_err(e)?;
                for p in &cols {
                    stmt.execute(params![
                        p.brand_id,
                        p.anonymous_id,
                        p.customer_id,
                        p.email,
                        p.predicted_persona,
                        p.persona_confidence,
                        p.explicit_persona,
                        json_text(&p.persona_scores),
                        p.current_stage,
                        p.stage_confidence,
                        codec::ts_text(p.first_seen),
                        codec::ts_text(p.last_seen),
                        p.session_count,
                        p.total_signals,
                        p.identity_stitched,
                        json_text(&p.profile),
                        codec::ts_text(p.expires_at),
                        codec::ts_text(p.updated_at),
                    ])
                    .map_err(e)?;
                }
            }
            tx.commit().map_err(e)
        })
        .await
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let op = "purge_expired";
        self.run(op, move |c| {
            c.execute(
                "delete from cdp_profiles where expires_at < ?1",
                [codec::ts_text(now)],
            )
            .map(|n| n as u64)
            .map_err(|e| sql_err(op, e))
        })
        .await
    }

    async fn visitor_events(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<EventRow>, StoreError> {
        let op = "visitor_events";
        let (brand, id) = (brand.as_str().to_owned(), id.as_str().to_owned());
        let after = after.map(codec::ts_text);
        self.run(op, move |c| {
            visitor_events_blocking(op, c, &brand, &id, after.as_deref())
        })
        .await
    }

    // In-process SQLite has no round trips to save: one call on the blocking pool, running
    // the single-visitor statement (cached, indexed) per id, is the cheapest batch.
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
        let brand = brand.as_str().to_owned();
        let ids = ids.to_vec();
        let now = codec::ts_text(now);
        self.run(op, move |c| {
            let mut out = BTreeMap::new();
            for id in ids {
                if let Some(p) = load_profile_blocking(op, c, &brand, id.as_str(), &now)? {
                    out.insert(id, p);
                }
            }
            Ok(out)
        })
        .await
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
        let brand = brand.as_str().to_owned();
        let since: Vec<(AnonymousId, Option<String>)> = since
            .iter()
            .map(|(id, after)| (id.clone(), after.map(codec::ts_text)))
            .collect();
        self.run(op, move |c| {
            let mut out = BTreeMap::new();
            for (id, after) in since {
                let rows = visitor_events_blocking(op, c, &brand, id.as_str(), after.as_deref())?;
                if !rows.is_empty() {
                    out.insert(id, rows);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn visitor_ids(
        &self,
        brand: &BrandId,
        after: Option<&AnonymousId>,
        limit: usize,
    ) -> Result<Vec<AnonymousId>, StoreError> {
        let op = "visitor_ids";
        let brand = brand.as_str().to_owned();
        let after = after.map(|a| a.as_str().to_owned());
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.run(op, move |c| {
            let e = |err| sql_err(op, err);
            let mut stmt = c
                .prepare_cached(
                    "select distinct anonymous_id from cdp_events where brand_id = ?1 \
                     and (?2 is null or anonymous_id > ?2) order by anonymous_id limit ?3",
                )
                .map_err(e)?;
            let ids = stmt
                .query_map(params![brand, after, limit], |r| r.get::<_, String>(0))
                .map_err(e)?;
            ids.map(|id| id.map(AnonymousId::new).map_err(e)).collect()
        })
        .await
    }
}

fn unavailable(op: &'static str, message: String) -> StoreError {
    StoreError::Unavailable { op, message }
}

/// Maps a SQLite error: a busy, locked, unopenable or full database is `Unavailable` (the
/// caller may retry later); anything else is `Rejected` with SQLite's error code.
pub(crate) fn sql_err(op: &'static str, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => {
            let status = format!("SQLITE_{:?} ({})", f.code, f.extended_code);
            match f.code {
                C::DatabaseBusy
                | C::DatabaseLocked
                | C::CannotOpen
                | C::DiskFull
                | C::SystemIoFailure
                | C::ReadOnly => StoreError::Unavailable {
                    op,
                    message: format!("{status}: {e}"),
                },
                _ => StoreError::Rejected {
                    op,
                    status,
                    message: e.to_string(),
                },
            }
        }
        _ => StoreError::Rejected {
            op,
            status: "SQLITE".into(),
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn statement_sizes_cover_a_batch_with_few_shapes() {
        for n in 0..=3 * EVENTS_PER_STATEMENT + 7 {
            let sizes = statement_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n, "batch of {n}: {sizes:?}");
            assert!(
                sizes
                    .iter()
                    .all(|s| s.is_power_of_two() && *s <= EVENTS_PER_STATEMENT),
                "batch of {n}: {sizes:?}"
            );
            assert!(
                sizes.windows(2).all(|w| w[0] >= w[1]),
                "largest first: {sizes:?}"
            );
            // Full statements, then at most one of each smaller size.
            let rest: Vec<_> = sizes
                .iter()
                .filter(|s| **s < EVENTS_PER_STATEMENT)
                .collect();
            let distinct: HashSet<_> = rest.iter().collect();
            assert_eq!(rest.len(), distinct.len(), "batch of {n}: {sizes:?}");
        }
    }

    /// Rows of `n` page views of one visitor, as the writer makes them.
    fn page_view_rows(n: usize) -> Vec<EventRow> {
        let cfg = cdp_core::Config::southland();
        let now: DateTime<Utc> = "2026-03-04T10:00:00Z".parse().expect("time");
        (0..n)
            .map(|i| {
                let raw = serde_json::json!({
                    "v": 1, "event": "page_view", "anonymous_id": "v-steps", "session_id": "s-1",
                    "event_id": format!("00000000-0000-4000-8000-{i:012x}"),
                    "timestamp": "2026-03-04T09:59:00Z", "page_url": "https://example.com/",
                });
                let event = cdp_core::validate(&cfg, &raw, now).expect("a valid event");
                cdp_core::apply(&cfg, None, &event, now).row
            })
            .collect()
    }

    #[test]
    fn a_batch_whose_sender_goes_away_early_stores_nothing() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate_blocking(&mut conn).expect("migrate");
        let rows: Vec<RowColumns> = page_view_rows(3).iter().map(RowColumns::new).collect();
        let (send, steps) = std::sync::mpsc::channel();
        send.send(rows).expect("send");
        drop(send);
        let err = write_blocking(&mut conn, steps, 5, &[]).expect_err("2 rows never came");
        assert!(err.to_string().contains("3 of its 5 rows"), "{err}");
        let stored: i64 = conn
            .query_row("select count(*) from cdp_events", [], |r| r.get(0))
            .expect("count");
        assert_eq!(stored, 0);

        // Whole, the same rows are stored.
        let rows: Vec<RowColumns> = page_view_rows(3).iter().map(RowColumns::new).collect();
        let (send, steps) = std::sync::mpsc::channel();
        send.send(rows).expect("send");
        drop(send);
        let outcomes = write_blocking(&mut conn, steps, 3, &[]).expect("write");
        assert_eq!(outcomes, vec![WriteOutcome::Inserted; 3]);
    }

    #[test]
    fn every_statement_size_has_its_insert() {
        for size in statement_sizes(2 * EVENTS_PER_STATEMENT - 1) {
            let sql = insert_events_sql(size);
            let rows = sql.matches("), (").count() + 1;
            assert_eq!(rows, size, "the insert of {size} rows");
            let last = size * (EVENT_COLUMNS.len() + 1);
            assert!(sql.contains(&format!("?{last})")));
            assert!(!sql.contains(&format!("?{}", last + 1)));
        }
    }

    fn migrated_to(conn: &Connection, version: i64) {
        conn.execute_batch(SCHEMA_MIGRATIONS).expect("bookkeeping");
        for m in migrate::SQLITE.iter().filter(|m| m.version <= version) {
            conn.execute_batch(m.sql).expect(m.name);
        }
    }

    fn store_events(conn: &Connection, n: usize) {
        for i in 0..n {
            conn.execute(
                "insert into cdp_events (event_id, event_type, anonymous_id, \"timestamp\") \
                 values (?1, 'page_viewed', 'a', '2026-11-01T10:00:00.000000Z')",
                [format!("e{i}")],
            )
            .expect("insert");
        }
    }

    #[test]
    fn migration_4_puts_the_mark_below_what_the_queue_still_held() {
        // (events stored under 0003, how many of them a fold had taken, the mark after 0004)
        for (stored, folded, mark) in [(0, 0, 0), (5, 5, 5), (5, 2, 2), (5, 0, 0)] {
            let conn = Connection::open_in_memory().expect("open");
            migrated_to(&conn, 3);
            store_events(&conn, stored);
            // What a fold of the first `folded` events left of the queue.
            conn.execute("delete from cdp_rollup_pending where seq <= ?1", [folded])
                .expect("fold");
            migrated_to(&conn, 4);
            let got: i64 = conn
                .query_row("select folded_seq from cdp_rollup_mark", [], |r| r.get(0))
                .expect("mark");
            assert_eq!(got, mark, "{stored} stored, {folded} folded");
            let left: i64 = conn
                .query_row(
                    "select count(*) from sqlite_master \
                     where name in ('cdp_rollup_pending', 'cdp_events_rollup_enqueue')",
                    [],
                    |r| r.get(0),
                )
                .expect("schema");
            assert_eq!(left, 0, "the queue and its trigger are gone");
        }
    }

    #[tokio::test]
    async fn a_fold_takes_each_stored_event_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("cdp.db"))
            .await
            .expect("open");
        assert_eq!(store.flush_rollups().await.expect("fold"), 0);
        let write = |n| {
            let store = store.clone();
            async move {
                store
                    .run("test", move |c| {
                        store_events(c, n);
                        Ok(())
                    })
                    .await
            }
        };
        write(3).await.expect("write");
        assert_eq!(store.flush_rollups().await.expect("fold"), 3);
        assert_eq!(store.flush_rollups().await.expect("fold"), 0, "nothing new");
        store
            .run("test", |c| {
                c.execute(
                    "insert into cdp_events (event_id, event_type, anonymous_id, \"timestamp\") \
                     values ('late', 'page_viewed', 'b', '2026-11-01T11:00:00.000000Z')",
                    [],
                )
                .map_err(|e| sql_err("test", e))
            })
            .await
            .expect("write");
        assert_eq!(store.flush_rollups().await.expect("fold"), 1);
        let hourly: i64 = store
            .folder
            .lock()
            .expect("fold connection")
            .query_row(
                "select sum(value) from cdp_counters where counter = ?1",
                [cdp_core::counting::Counter::EventsHour.name()],
                |r| r.get(0),
            )
            .expect("hourly");
        assert_eq!(hourly, 4, "each event counted once");
    }

    #[tokio::test]
    async fn after_migration_5_the_rollup_file_recounts_every_stored_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cdp.sqlite3");
        {
            // A file as migration 0004 left it, its five events already folded there.
            let conn = Connection::open(&path).expect("open");
            migrated_to(&conn, 4);
            store_events(&conn, 5);
            conn.execute_batch(
                "update cdp_rollup_mark set folded_seq = 5; \
                 insert into schema_migrations (version, name) \
                 values (1, 'init'), (2, 'rollups'), (3, 'rollup-queue'), (4, 'rollup-mark');",
            )
            .expect("mark");
        }
        let store = SqliteStore::open(&path).await.expect("open");
        let left: i64 = store
            .run("test", |c| {
                c.query_row(
                    "select count(*) from sqlite_master where type = 'table' \
                     and name like 'cdp_rollup_%'",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| sql_err("test", e))
            })
            .await
            .expect("schema");
        assert_eq!(left, 0, "the event file keeps no rollup table");
        assert_eq!(rollup_path(&path), dir.path().join("cdp.rollups.sqlite3"));
        assert!(store.rollup_path().exists());
        assert_eq!(
            store.flush_rollups().await.expect("fold"),
            5,
            "all recounted"
        );
        let diffs = crate::analytics::Analytics::rollup_differences(&Store::Sqlite(store.clone()))
            .await
            .expect("recount");
        assert!(diffs.is_empty(), "{diffs:?}");
    }

    #[tokio::test]
    async fn an_event_file_older_than_its_rollups_is_recounted_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cdp.sqlite3");
        {
            let store = SqliteStore::open(&path).await.expect("open");
            store
                .run("test", |c| {
                    store_events(c, 5);
                    Ok(())
                })
                .await
                .expect("write");
            assert_eq!(store.flush_rollups().await.expect("fold"), 5);
        }
        {
            // What restoring the event file from a copy taken after its second event does.
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "delete from cdp_events where seq > 2; \
                 update sqlite_sequence set seq = 2 where name = 'cdp_events';",
            )
            .expect("restore");
        }
        let store = SqliteStore::open(&path).await.expect("reopen");
        assert_eq!(store.flush_rollups().await.expect("fold"), 2, "recounted");
        let diffs = crate::analytics::Analytics::rollup_differences(&Store::Sqlite(store.clone()))
            .await
            .expect("recount");
        assert!(diffs.is_empty(), "{diffs:?}");
    }
}
