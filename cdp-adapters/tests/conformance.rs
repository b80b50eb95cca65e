//! The one conformance suite: every backend runs the same `check_event_sink`,
//! `check_profile_store` (in `support/checks.rs`) and `check_analytics` (in
//! `support/analytics.rs`; Supabase REST must answer that it does not run dashboard queries).
//! Backends are the closed enum [`Backend`];
//! opening one is an exhaustive `match`, and `every_backend_runs_the_suite` fails if a variant
//! is missing from the `conformance!` list, so forgetting a backend is hard.
//!
//! - SQLite: a file in a temp dir.
//! - Postgres: the real server at `CDP_TEST_DATABASE_URL`, one fresh schema per test. Missing or
//!   unreachable is a failure, never a skip.
//! - Supabase REST: the adapter against `support/postgrest.rs`, a stand-in for PostgREST (which
//!   cannot run here) executing on the same real Postgres.
//! - PgBouncer: the Postgres adapter through a PgBouncer in transaction pooling mode, the mode
//!   of Supabase's pooler (no named prepared statements, no session state).
//! - Live Supabase: only when `SUPABASE_URL` and `SUPABASE_SERVICE_KEY` are set; otherwise the
//!   test prints why it skipped.

mod support;

use cdp_adapters::analytics::Analytics;
use cdp_adapters::supabase::RetryPolicy;
use cdp_adapters::{
    EventSink, PostgresTarget, ServiceKey, Store, StoreError, StoreTarget, SupabaseTarget,
    WriteOutcome,
};
use std::process::{Child, Command};
use std::time::Duration;
use support::analytics;
use support::checks::{self, Inspect};
use support::pg::{self, Schema};
use support::postgrest::{Fault, PostgRest};
use tokio_postgres::Client;

const TEST_KEY: &str = "test-service-key-never-logged";

/// Every backend the suite covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    SupabaseRest,
    PgBouncer,
}

impl Backend {
    const ALL: [Backend; 4] = [
        Backend::Sqlite,
        Backend::Postgres,
        Backend::SupabaseRest,
        Backend::PgBouncer,
    ];
}

/// An open, migrated, empty store plus what it needs to stay alive and be inspected.
struct Harness {
    store: Store,
    db: Db,
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

enum Db {
    Sqlite(std::path::PathBuf),
    Postgres { client: Client, schema: String },
}

impl Inspect for Harness {
    async fn searches(&self) -> Vec<(String, String, i64)> {
        let mut out: Vec<(String, String, i64)> = match &self.db {
            Db::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).expect("open sqlite");
                let mut stmt = c
                    .prepare("select event_id, query, results_count from cdp_searches")
                    .expect("prepare");
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .expect("query")
                    .collect::<Result<_, _>>()
                    .expect("rows")
            }
            Db::Postgres { client, schema } => client
                .query(
                    &format!(
                        "select event_id, query, results_count from \"{schema}\".cdp_searches"
                    ),
                    &[],
                )
                .await
                .expect("searches")
                .iter()
                .map(|r| (r.get(0), r.get(1), i64::from(r.get::<_, i32>(2))))
                .collect(),
        };
        out.sort();
        out
    }
}

/// Every Postgres migration's version, in order: what a fresh schema gets.
fn postgres_versions() -> Vec<i64> {
    cdp_adapters::migrate::POSTGRES
        .iter()
        .map(|m| m.version)
        .collect()
}

async fn postgres_store(url: &str, schema: &Schema) -> Store {
    let target = StoreTarget::Postgres(PostgresTarget::new(url).with_schema(&schema.name));
    let store = Store::open(&target).await.expect("open postgres");
    assert_eq!(store.migrate().await.expect("migrate"), postgres_versions());
    assert!(
        store.migrate().await.expect("migrate again").is_empty(),
        "migrate is idempotent"
    );
    store.ping().await.expect("ping");
    store
}

async fn open(backend: Backend) -> Harness {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("data").join("cdp.sqlite3");
            let store = Store::open(&StoreTarget::Sqlite { path: path.clone() })
                .await
                .expect("open sqlite");
            assert!(
                store.migrate().await.expect("migrate").is_empty(),
                "open migrates"
            );
            store.ping().await.expect("ping");
            Harness {
                store,
                db: Db::Sqlite(path),
                _keep: vec![Box::new(dir)],
            }
        }
        Backend::Postgres => {
            let schema = Schema::create().await;
            let store = postgres_store(&schema.url, &schema).await;
            let client = pg::connect(&schema.url).await;
            let name = schema.name.clone();
            Harness {
                store,
                db: Db::Postgres {
                    client,
                    schema: name,
                },
                _keep: vec![Box::new(schema)],
            }
        }
        Backend::SupabaseRest => {
            let (h, _) = rest_harness().await;
            h
        }
        Backend::PgBouncer => {
            let schema = Schema::create().await;
            let bouncer = PgBouncer::start(&schema.url);
            let store = postgres_store(&bouncer.url, &schema).await;
            let client = pg::connect(&schema.url).await;
            let name = schema.name.clone();
            Harness {
                store,
                db: Db::Postgres {
                    client,
                    schema: name,
                },
                _keep: vec![Box::new(bouncer), Box::new(schema)],
            }
        }
    }
}

/// A Supabase REST store on the stand-in, its schema migrated through Postgres.
async fn rest_harness() -> (Harness, RestParts) {
    let schema = Schema::create().await;
    let pg_store = postgres_store(&schema.url, &schema).await;
    drop(pg_store);
    let server = PostgRest::start(&schema.url, TEST_KEY).await;
    let dead_letter = tempfile::tempdir().expect("tempdir");
    let target = SupabaseTarget {
        url: server.url.clone(),
        key: ServiceKey::new(TEST_KEY),
        dead_letter_dir: dead_letter.path().join("dead-letter"),
        schema: schema.name.clone(),
        retry: RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
        },
    };
    let store = Store::open(&StoreTarget::Supabase(target.clone()))
        .await
        .expect("open supabase");
    assert!(store
        .migrate()
        .await
        .expect("migrate checks tables")
        .is_empty());
    store.ping().await.expect("ping");
    let client = pg::connect(&schema.url).await;
    let name = schema.name.clone();
    let server = std::sync::Arc::new(server);
    let parts = RestParts {
        server: std::sync::Arc::clone(&server),
        target,
    };
    let h = Harness {
        store,
        db: Db::Postgres {
            client,
            schema: name,
        },
        _keep: vec![Box::new(server), Box::new(dead_letter), Box::new(schema)],
    };
    (h, parts)
}

struct RestParts {
    server: std::sync::Arc<PostgRest>,
    target: SupabaseTarget,
}

/// PgBouncer in transaction pooling mode in front of the test database.
struct PgBouncer {
    url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl PgBouncer {
    fn start(database_url: &str) -> PgBouncer {
        let bin = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!("pgbouncer is not installed; install it with `apt-get install -y pgbouncer`")
            });
        let cfg: tokio_postgres::Config = database_url.parse().expect("database url");
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let db = cfg.get_dbname().unwrap_or("postgres").to_owned();
        let user = cfg.get_user().unwrap_or("postgres").to_owned();
        let listen = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        let bport = listen.local_addr().expect("addr").port();
        drop(listen);
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ini = format!(
            "[databases]\n{db} = host={host} port={port} dbname={db}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {bport}\nauth_type = trust\n\
             auth_file = {af}\npool_mode = transaction\nmax_client_conn = 100\n\
             default_pool_size = 4\nunix_socket_dir =\nlogfile = {lf}\n\
             ignore_startup_parameters = extra_float_digits,options\n",
            af = d.join("users.txt").display(),
            lf = d.join("pgbouncer.log").display(),
        );
        std::fs::write(d.join("pgbouncer.ini"), ini).expect("ini");
        std::fs::write(d.join("users.txt"), format!("\"{user}\" \"\"\n")).expect("users");
        // PgBouncer refuses to run as root; when we are root, let it drop to `nobody`.
        let mut cmd = Command::new(bin);
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        if is_root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
            for f in ["pgbouncer.ini", "users.txt"] {
                std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644))
                    .expect("chmod");
            }
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .arg("-q")
            .arg(d.join("pgbouncer.ini"))
            .spawn()
            .expect("start pgbouncer");
        // Wait until it accepts connections.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", bport)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "pgbouncer did not start; log: {}",
                std::fs::read_to_string(d.join("pgbouncer.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        PgBouncer {
            url: format!("postgres://{user}@127.0.0.1:{bport}/{db}"),
            child,
            _dir: dir,
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One module per backend, each running every check.
macro_rules! conformance {
    ($($name:ident => $backend:expr),* $(,)?) => {
        const COVERED: &[Backend] = &[$($backend),*];
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn event_sink() {
                    let h = open($backend).await;
                    checks::check_event_sink(&h.store, &h).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn profile_store() {
                    let h = open($backend).await;
                    checks::check_profile_store(&h.store).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn identity_store() {
                    let h = open($backend).await;
                    let keeps_earliest = $backend != Backend::SupabaseRest;
                    support::identity::check_identity_store(&h.store, keeps_earliest).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn erase_store() {
                    let h = open($backend).await;
                    match $backend {
                        Backend::SupabaseRest => {
                            support::erasure::check_erase_unsupported(&h.store).await
                        }
                        Backend::Sqlite | Backend::Postgres | Backend::PgBouncer => {
                            support::erasure::check_erase_store(&h.store).await
                        }
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn analytics() {
                    let h = open($backend).await;
                    match $backend {
                        Backend::SupabaseRest => {
                            analytics::check_analytics_unsupported(&h.store).await
                        }
                        Backend::Sqlite | Backend::Postgres | Backend::PgBouncer => {
                            analytics::check_analytics(&h.store).await
                        }
                    }
                }
            }
        )*
    };
}

conformance! {
    sqlite => Backend::Sqlite,
    postgres => Backend::Postgres,
    supabase_rest => Backend::SupabaseRest,
    pgbouncer => Backend::PgBouncer,
}

#[test]
fn every_backend_runs_the_suite() {
    for b in Backend::ALL {
        assert!(
            COVERED.contains(&b),
            "{b:?} is missing from conformance!{{}}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_migrations_apply_once() {
    let schema = Schema::create().await;
    let target = StoreTarget::Postgres(PostgresTarget::new(&schema.url).with_schema(&schema.name));
    let a = Store::open(&target).await.expect("open a");
    let b = Store::open(&target).await.expect("open b");
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    let mut applied = ra.expect("migrate a");
    applied.extend(rb.expect("migrate b"));
    applied.sort_unstable();
    assert_eq!(
        applied,
        postgres_versions(),
        "exactly one run applies each migration"
    );
}

/// Many visitors' events over several days: the fixture journeys, copied for `copies`
/// visitors each (own ids, own visitor, shifted by whole days), in time order.
fn many_visitors(copies: u32) -> Vec<cdp_core::EventRow> {
    let base = support::data::fixtures().rows;
    let mut rows = Vec::new();
    for c in 0..copies {
        for (i, r) in base.iter().enumerate() {
            let mut r = r.clone();
            r.event_id = uuid::Uuid::from_u128((u128::from(c) << 32) | i as u128 | (1 << 100));
            r.anonymous_id = cdp_core::AnonymousId::new(format!("{}-{c}", r.anonymous_id));
            r.timestamp += chrono::Duration::days(i64::from(c % 5));
            rows.push(r);
        }
    }
    rows.sort_by_key(|r| r.timestamp);
    rows
}

/// Postgres keeps its rollups behind the writes (migrations 0003 and 0005): a write only queues its
/// events, a fold takes each queued event exactly once even while writers and other folds run
/// beside it, and what the folds built equals the recount from the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rollups_fold_each_event_once_beside_writers() {
    let schema = Schema::create().await;
    let store = postgres_store(&schema.url, &schema).await;
    let client = pg::connect(&schema.url).await;
    let count = |table: &'static str| {
        let (client, name) = (&client, schema.name.clone());
        async move {
            let n: i64 = client
                .query_one(&format!("select count(*) from \"{name}\".{table}"), &[])
                .await
                .expect("count")
                .get(0);
            n
        }
    };
    let rows = many_visitors(12);
    let (first, rest) = rows.split_at(40);
    store.write_events(first).await.expect("write");
    assert_eq!(
        count("cdp_rollup_pending").await,
        40,
        "a write queues its events"
    );
    assert_eq!(count("cdp_counters").await, 0, "and folds nothing itself");
    assert_eq!(store.flush_rollups().await.expect("fold"), 40);
    assert_eq!(
        count("cdp_rollup_pending").await,
        0,
        "a fold empties the queue"
    );
    assert!(count("cdp_counters").await > 0, "and fills the rollups");

    folds_beside_writers_take_each_event_once(&store, rest).await;
}

/// SQLite folds from its own connection into the rollup file while the writer commits to the
/// event file: each event is still folded exactly once, and the rollups equal the recount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rollups_fold_each_event_once_beside_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&StoreTarget::Sqlite {
        path: dir.path().join("cdp.sqlite3"),
    })
    .await
    .expect("open sqlite");
    folds_beside_writers_take_each_event_once(&store, &many_visitors(12)).await;
}

/// Two writers (the second half also re-sends some of the first: duplicates are folded
/// nothing) and two folders at once, then a last fold: every stored event is folded exactly
/// once and the rollups equal the recount.
async fn folds_beside_writers_take_each_event_once(store: &Store, rows: &[cdp_core::EventRow]) {
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (a, b) = rows.split_at(rows.len() / 2);
    let mut b = b.to_vec();
    b.extend_from_slice(&a[..30]);
    let write = |part: Vec<cdp_core::EventRow>| {
        let store = store.clone();
        tokio::spawn(async move {
            for chunk in part.chunks(17) {
                store.write_events(chunk).await.expect("write");
            }
        })
    };
    let fold = || {
        let (store, writing) = (store.clone(), writing.clone());
        tokio::spawn(async move {
            let mut folded = 0;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                folded += store.flush_rollups().await.expect("fold");
            }
            folded
        })
    };
    let folders = [fold(), fold()];
    let (wa, wb) = tokio::join!(write(a.to_vec()), write(b));
    wa.expect("writer a");
    wb.expect("writer b");
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut folded = 0;
    for f in folders {
        folded += f.await.expect("folder");
    }
    folded += store.flush_rollups().await.expect("last fold");
    assert_eq!(
        folded,
        rows.len() as u64,
        "every stored event is folded exactly once"
    );
    let diffs = store.rollup_differences().await.expect("recount");
    assert!(
        diffs.is_empty(),
        "rollups disagree with the recount: {diffs:?}"
    );
}

/// The server's functions are the server's: a role that is not the schema's owner may not
/// execute them, even with every table privilege (what Supabase grants its anon and
/// authenticated roles on new tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fold_functions_refuse_other_roles() {
    let schema = Schema::create().await;
    let _store = postgres_store(&schema.url, &schema).await;
    let client = pg::connect(&schema.url).await;
    let (s, role) = (&schema.name, format!("{}_api", schema.name));
    client
        .batch_execute(&format!(
            "create role \"{role}\" nologin; grant usage on schema \"{s}\" to \"{role}\"; \
             grant all on all tables in schema \"{s}\" to \"{role}\""
        ))
        .await
        .expect("create role");
    // The fold is the server's own code now (cdp-core); the functions left in the database
    // are the write path and the queue's trigger function, and neither is the role's to run.
    let rows = client
        .query(
            "select p.proname::text, has_function_privilege($1::text, p.oid, 'execute') \
             from pg_proc p where p.pronamespace = $2::text::regnamespace \
               and p.proname in ('cdp_write_events', 'cdp_write_events_and_edges', 'cdp_rollup_enqueue') order by 1",
            &[&role, &format!("\"{s}\"")],
        )
        .await
        .expect("privileges");
    let seen: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    client
        .batch_execute(&format!(
            "reset role; drop owned by \"{role}\"; drop role \"{role}\""
        ))
        .await
        .expect("drop role");
    assert_eq!(
        seen,
        [
            ("cdp_rollup_enqueue".to_owned(), false),
            ("cdp_write_events".to_owned(), false),
            ("cdp_write_events_and_edges".to_owned(), false),
        ]
    );
}

/// On Supabase, new functions are granted to `anon` and `authenticated` by name (its default
/// privileges), not through PUBLIC, and PostgREST offers each one they may execute as an RPC.
/// The migrations must take those grants back from the server's functions. The roles are made
/// here when the cluster lacks them, and the schema gets Supabase's default privileges before
/// it is migrated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_functions_are_not_granted_to_supabase_api_roles() {
    let schema = Schema::create().await;
    let client = pg::connect(&schema.url).await;
    let s = &schema.name;
    client
        .batch_execute(&format!(
            "do $$ declare r text; begin
                 foreach r in array array['anon', 'authenticated'] loop
                     begin execute format('create role %I nologin', r);
                     exception when duplicate_object or unique_violation then null; end;
                 end loop;
             end $$;
             grant usage on schema \"{s}\" to anon, authenticated;
             alter default privileges in schema \"{s}\"
                 grant all on tables to anon, authenticated;
             alter default privileges in schema \"{s}\"
                 grant execute on functions to anon, authenticated;"
        ))
        .await
        .expect("Supabase's roles and default privileges");
    let _store = postgres_store(&schema.url, &schema).await;
    let rows = client
        .query(
            "select p.proname::text, r.rolname::text, \
                    has_function_privilege(r.oid, p.oid, 'execute') \
             from pg_proc p cross join pg_roles r \
             where p.pronamespace = $1::text::regnamespace \
               and p.proname in ('cdp_write_events', 'cdp_write_events_and_edges', 'cdp_rollup_enqueue') \
               and r.rolname in ('anon', 'authenticated', current_user) \
             order by 1, 2",
            &[&format!("\"{s}\"")],
        )
        .await
        .expect("privileges");
    let seen: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let owner: String = client
        .query_one("select current_user::text", &[])
        .await
        .expect("current user")
        .get(0);
    let mut expected = Vec::new();
    for f in [
        "cdp_rollup_enqueue",
        "cdp_write_events",
        "cdp_write_events_and_edges",
    ] {
        let mut roles = vec!["anon".to_owned(), "authenticated".to_owned(), owner.clone()];
        roles.sort();
        for r in roles {
            let allowed = r == owner;
            expected.push((f.to_owned(), r, allowed));
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_is_unavailable() {
    // Port 1 on loopback refuses connections.
    let target = StoreTarget::Postgres(PostgresTarget::new("postgres://postgres:pw@127.0.0.1:1/x"));
    let store = Store::open(&target).await.expect("open is lazy");
    let err = store.ping().await.expect_err("nothing listens on port 1");
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("ping"), "{err}");
    assert!(!err.to_string().contains("pw@"), "{err}");
}

/// A Postgres batch is first inserted as if every row were new; one stored row makes that
/// fail as a whole, and the deduplicating insert then stores exactly the new rows. Each row
/// gets a time-ordered (v7) id, ascending with `seq`, so the primary key grows at its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_batches_with_a_stored_row_keep_the_new_ones_and_ids_ascend() {
    let schema = Schema::create().await;
    let store = postgres_store(&schema.url, &schema).await;
    let client = pg::connect(&schema.url).await;
    let rows = support::data::page_views("v-ids", 6, "2026-03-04T10:00:00Z").rows;
    let first = store.write_events(&rows[..2]).await.expect("first write");
    assert_eq!(first, vec![WriteOutcome::Inserted; 2]);
    // Stored, new, new, stored, new, new (plus a search-free repeat of the first row).
    let mut batch = rows.clone();
    batch.push(rows[0].clone());
    let outcomes = store.write_events(&batch).await.expect("mixed write");
    let mut want = vec![WriteOutcome::Duplicate; 2];
    want.extend([WriteOutcome::Inserted; 4]);
    want.push(WriteOutcome::Duplicate);
    assert_eq!(outcomes, want);
    let ids: Vec<uuid::Uuid> = client
        .query(
            &format!("select id from \"{}\".cdp_events order by seq", schema.name),
            &[],
        )
        .await
        .expect("ids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 6, "each event stored once");
    assert!(
        ids.iter().all(|id| id.get_version_num() == 7),
        "time-ordered ids: {ids:?}"
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending: {ids:?}");
}

/// A SQLite store on a file in a new temporary directory (kept while the first value lives),
/// and the file's path, for tests that also read the file themselves.
async fn sqlite_in_tempdir() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cdp.sqlite3");
    let store = Store::open(&StoreTarget::Sqlite { path: path.clone() })
        .await
        .expect("open sqlite");
    (dir, path, store)
}

/// SQLite's row ids are time-ordered (v7) too, in the columns' 32-hex-digit form, so each
/// table's `id` index grows at its end: ascending with `seq` across batches, searches included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ids_are_time_ordered_and_ascend() {
    let (_dir, path, store) = sqlite_in_tempdir().await;
    // Every third event is a search.
    let rows = support::data::page_views("v-sqlite-ids", 300, "2026-03-04T10:00:00Z").rows;
    for batch in [&rows[..100], &rows[100..]] {
        store.write_events(batch).await.expect("write");
    }
    let c = rusqlite::Connection::open(&path).expect("open");
    for (table, order, n) in [("cdp_events", "seq", 300), ("cdp_searches", "rowid", 100)] {
        let mut stmt = c
            .prepare(&format!("select id from {table} order by {order}"))
            .expect("prepare");
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("ids")
            .map(|r| r.expect("id"))
            .collect();
        assert_eq!(ids.len(), n, "{table}");
        for id in &ids {
            let parsed = uuid::Uuid::try_parse(id).expect("a uuid");
            assert_eq!(parsed.simple().to_string(), *id, "{table}: stored form");
            assert_eq!(parsed.get_version_num(), 7, "{table}: {id}");
        }
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{table} ascending: {ids:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rejections_carry_the_sqlstate() {
    let schema = Schema::create().await;
    let target = StoreTarget::Postgres(PostgresTarget::new(&schema.url).with_schema(&schema.name));
    let store = Store::open(&target).await.expect("open");
    // Not migrated: the write function is missing (42883, undefined_function).
    let rows = support::data::page_views("v-err", 1, "2026-03-04T10:00:00Z").rows;
    let err = store.write_events(&rows).await.expect_err("no tables");
    match err {
        StoreError::Rejected { op, status, .. } => {
            assert_eq!((op, status.as_str()), ("write_events", "42883"));
        }
        other => panic!("expected Rejected, got {other}"),
    }
}

/// SQLite inserts a large batch in steps, each converted while the one before is inserted,
/// with `insert or fail` statements, which stop at a refused row and keep the rows before it;
/// the steps are still one transaction, rolled back whole. A row refused in the middle of a
/// statement of the last step (here by a trigger raising FAIL, which stands in for any
/// failure SQLite can report) leaves nothing of the batch stored, and the same batch is stored
/// whole once the refusal is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_batch_refused_in_its_last_step_stores_nothing() {
    let (_dir, path, store) = sqlite_in_tempdir().await;
    let rows = support::data::page_views("v-refused-late", 600, "2026-03-04T10:00:00Z").rows;
    let c = rusqlite::Connection::open(&path).expect("open");
    c.execute_batch(&format!(
        "create trigger refuse_one before insert on cdp_events \
         when new.event_id = '{}' begin select raise(fail, 'refused'); end;",
        rows[590].event_id.hyphenated()
    ))
    .expect("trigger");
    let count = |c: &rusqlite::Connection| -> i64 {
        c.query_row("select count(*) from cdp_events", [], |r| r.get(0))
            .expect("count")
    };
    store
        .write_events(&rows)
        .await
        .expect_err("a row of the last step is refused");
    assert_eq!(count(&c), 0, "nothing of the refused batch is stored");

    c.execute_batch("drop trigger refuse_one")
        .expect("drop trigger");
    let again = store.write_events(&rows).await.expect("write again");
    assert!(again.iter().all(|o| *o == WriteOutcome::Inserted));
    assert_eq!(count(&c), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_reopen_and_is_durable_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cdp.sqlite3");
    let rows = support::data::page_views("v-reopen", 3, "2026-03-04T10:00:00Z").rows;
    {
        let store = Store::open(&StoreTarget::Sqlite { path: path.clone() })
            .await
            .expect("open");
        store.write_events(&rows).await.expect("write");
    }
    let store = Store::open(&StoreTarget::Sqlite { path: path.clone() })
        .await
        .expect("reopen");
    let again = store.write_events(&rows).await.expect("write again");
    assert!(again.iter().all(|o| *o == WriteOutcome::Duplicate));
    let c = rusqlite::Connection::open(&path).expect("open");
    let mode: String = c
        .query_row("pragma journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
}

/// A refused key (401 after a rotation, 403) or a restricted project (402) is the store out of
/// reach, not a bad request: `Unavailable` at the first answer, with no retries that could not
/// help, and nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_refused_key_or_project_is_unavailable_without_retries() {
    let (h, parts) = rest_harness().await;
    let rows = support::data::page_views("v-refused-key", 3, "2026-03-04T10:00:00Z").rows;
    let brand = rows[0].brand_id.clone();
    parts.server.rotate_key("a-key-the-adapter-does-not-have");
    for status in [None, Some(403), Some(402)] {
        parts.server.set_down(status);
        let before = parts.server.requests();
        let err = h.store.write_events(&rows).await.expect_err("refused");
        assert!(err.is_unavailable(), "{status:?}: {err}");
        assert_eq!(
            parts.server.requests() - before,
            1,
            "{status:?}: not retried"
        );
        let err = h
            .store
            .last_processed_at(&brand)
            .await
            .expect_err("refused");
        assert!(err.is_unavailable(), "{status:?}: {err}");
        assert!(!format!("{err} {err:?}").contains(TEST_KEY));
    }
    parts.server.set_down(None);
    parts.server.rotate_key(TEST_KEY);
    let got = h
        .store
        .write_events(&rows)
        .await
        .expect("the key is right again");
    assert_eq!(
        got,
        vec![WriteOutcome::Inserted; 3],
        "nothing was stored while refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_retries_503_and_429_then_succeeds() {
    let (h, parts) = rest_harness().await;
    let rows = support::data::page_views("v-retry", 4, "2026-03-04T10:00:00Z").rows;
    parts
        .server
        .fail_next(&[Fault::Status(503), Fault::Status(502)]);
    let got = h.store.write_events(&rows).await.expect("retried write");
    assert_eq!(got, vec![WriteOutcome::Inserted; 4]);

    parts.server.fail_next(&[Fault::TooMany {
        retry_after_secs: 1,
    }]);
    let started = std::time::Instant::now();
    let got = h.store.write_events(&rows).await.expect("after 429");
    assert_eq!(got, vec![WriteOutcome::Duplicate; 4]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );

    let before = parts.server.requests();
    parts.server.fail_next(&[Fault::Status(503); 4]);
    let err = h
        .store
        .write_events(&rows)
        .await
        .expect_err("retries exhausted");
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(
        parts.server.requests() - before,
        4,
        "exactly the configured attempts"
    );
    assert!(!format!("{err} {err:?} {:?}", h.store).contains(TEST_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_400_splits_the_batch_and_dead_letters_the_bad_row() {
    let (h, parts) = rest_harness().await;
    let rows = support::data::page_views("v-bisect", 9, "2026-03-04T10:00:00Z").rows;
    let bad = rows[5].event_id.to_string();
    parts.server.poison(&bad);
    let got = h
        .store
        .write_events(&rows)
        .await
        .expect("write with a bad row");
    let mut want = vec![WriteOutcome::Inserted; 9];
    want[5] = WriteOutcome::DeadLettered;
    assert_eq!(got, want);
    let stored = cdp_adapters::ProfileStore::visitor_events(
        &h.store,
        &rows[0].brand_id,
        &rows[0].anonymous_id,
        None,
    )
    .await
    .expect("read");
    let good: Vec<_> = rows
        .iter()
        .filter(|r| r.event_id.to_string() != bad)
        .cloned()
        .collect();
    assert_eq!(stored, good, "the good rows are stored, in order");
    let files: Vec<_> = std::fs::read_dir(&parts.target.dead_letter_dir)
        .expect("dead-letter dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(
        name.starts_with("cdp_events-") && name.ends_with(".ndjson"),
        "{name}"
    );
    let text = std::fs::read_to_string(&files[0]).expect("dead letter");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status"], 400);
    assert_eq!(lines[0]["row"]["event_id"], bad.as_str());
    assert!(
        lines[0]["error"].as_str().unwrap_or("").contains("23514"),
        "{}",
        lines[0]
    );
    assert!(!text.contains(TEST_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_wrong_key_is_unavailable_without_echoing_it() {
    let (_h, parts) = rest_harness().await;
    let mut target = parts.target.clone();
    target.key = ServiceKey::new("wrong-key-do-not-print");
    let store = Store::open(&StoreTarget::Supabase(target))
        .await
        .expect("open");
    let err = store.ping().await.expect_err("wrong key");
    assert!(err.is_unavailable(), "{err}");
    let shown = format!("{err} {err:?} {store:?}");
    assert!(shown.contains("HTTP 401"), "{shown}");
    assert!(!shown.contains("wrong-key-do-not-print"), "{shown}");
}

/// Runs the suite against a real Supabase project when `SUPABASE_URL` and
/// `SUPABASE_SERVICE_KEY` are set (the tables must exist: run docs/schemas/cdp-events.sql).
/// It writes rows under brand `southland` with fixture ids, so point it at a test project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_supabase() {
    let (url, key) = match (
        std::env::var("SUPABASE_URL"),
        std::env::var("SUPABASE_SERVICE_KEY"),
    ) {
        (Ok(u), Ok(k)) if !u.is_empty() && !k.is_empty() => (u, k),
        _ => {
            println!(
                "live_supabase SKIPPED: set SUPABASE_URL and SUPABASE_SERVICE_KEY to run the \
                 conformance suite against a real Supabase project"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let target = StoreTarget::parse(Some(&url), dir.path(), Some(ServiceKey::new(key)))
        .expect("supabase target");
    let store = Store::open(&target).await.expect("open");
    store.migrate().await.expect("tables exist");
    let profiles_only = checks::check_profile_store(&store);
    profiles_only.await;
    println!(
        "live_supabase: profile store checks passed against {}",
        target.describe()
    );
}

/// The server runs store calls on a multi-threaded runtime, so their futures must be `Send`.
#[test]
fn store_futures_are_send() {
    fn require_send<T: Send>(_: &T) {}
    let target = StoreTarget::Postgres(PostgresTarget::new("postgres://127.0.0.1:1/x"));
    let open = Store::open(&target);
    require_send(&open);
}
