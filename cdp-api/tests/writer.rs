//! The writer's promise that events are the source of truth, on the real backends: a crash
//! after events are committed and before their profiles are saved loses nothing, because the
//! next writer catches each profile up from the stored events; and `rebuild-profiles` walks
//! every visitor to the same profiles. Every test runs on SQLite (a temp dir) and on Postgres
//! (a schema of its own at `CDP_TEST_DATABASE_URL`, which must be set: it never skips).

mod support;

use cdp_adapters::{PostgresTarget, ProfileStore, Store, StoreTarget};
use cdp_api::rebuild::{self, Visitors};
use cdp_api::writer::{WriteStatus, WriterSettings, Writers};
use cdp_core::{apply, validate, AnonymousId, Config, Profile, ValidEvent};
use chrono::{SecondsFormat, Utc};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{on_every_backend, Backend};

on_every_backend!(
    a_crash_before_any_profile_save_loses_nothing,
    a_crash_after_a_profile_save_catches_up_from_it,
    rebuild_walks_every_visitor,
    a_cache_far_smaller_than_the_visitors_costs_no_correctness,
);

/// A migrated, empty store and what keeps it alive.
struct TestStore {
    store: Arc<Store>,
    _dir: tempfile::TempDir,
    _schema: Option<Schema>,
}

struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Dropped from a runtime thread: do it on a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok((c, conn)) =
                        tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                    {
                        tokio::spawn(conn);
                        let _ = c
                            .batch_execute(&format!("drop schema if exists {name} cascade"))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

async fn open(backend: Backend) -> TestStore {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (target, schema) = match backend {
        Backend::Sqlite => (
            StoreTarget::Sqlite {
                path: dir.path().join("cdp.sqlite3"),
            },
            None,
        ),
        Backend::Postgres => {
            let url = match std::env::var("CDP_TEST_DATABASE_URL") {
                Ok(u) if !u.trim().is_empty() => u,
                _ => panic!(
                    "CDP_TEST_DATABASE_URL must point at a reachable Postgres, such as \
                     postgres://postgres@127.0.0.1:5432/test (the Postgres tests never skip)"
                ),
            };
            let name = format!(
                "cdp_writer_test_{}_{}",
                std::process::id(),
                SCHEMAS.fetch_add(1, Ordering::Relaxed)
            );
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connect {url}: {e}"));
            tokio::spawn(conn);
            client
                .batch_execute(&format!("create schema {name}"))
                .await
                .unwrap_or_else(|e| panic!("create schema: {e}"));
            (
                StoreTarget::Postgres(PostgresTarget::new(url.clone()).with_schema(name.clone())),
                Some(Schema { url, name }),
            )
        }
    };
    let store = Store::open(&target)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("migrate: {e}"));
    TestStore {
        store: Arc::new(store),
        _dir: dir,
        _schema: schema,
    }
}

/// Profiles are never saved by the clock during a test: only at shutdown, or not at all.
fn settings() -> WriterSettings {
    WriterSettings {
        shards: 2,
        batch_events: 1000,
        linger: Duration::ZERO,
        profile_cache: 1000,
        profile_cache_bytes: 64 << 20,
        profile_flush: Duration::from_secs(3600),
    }
}

fn event(cfg: &Config, visitor: &str, i: usize) -> ValidEvent {
    let kind = ["page_view", "product_view", "search_performed"][i % 3];
    let raw = json!({
        "event": kind,
        "event_id": uuid::Uuid::new_v4().to_string(),
        "anonymous_id": visitor,
        "session_id": format!("{visitor}-s{}", i / 5),
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "page_url": format!("https://www.southlandorganics.com/p/{i}"),
        "properties": match kind {
            "product_view" => json!({"product_id": "hen-helper", "product_handle": "hen-helper"}),
            "search_performed" => json!({"query": format!("q{i}"), "results_count": 3}),
            _ => json!({}),
        },
    });
    validate(cfg, &raw, Utc::now()).unwrap_or_else(|r| panic!("invalid test event: {r:?}"))
}

/// Writes `n` events per visitor, concurrently (one request per event), all accepted.
async fn write(writers: &Writers, cfg: &Config, visitors: &[&str], from: usize, n: usize) {
    let mut tasks = Vec::new();
    for v in visitors {
        for i in from..from + n {
            let (w, e) = (writers.clone(), event(cfg, v, i));
            tasks.push(tokio::spawn(async move { w.write(vec![e]).await }));
        }
    }
    for t in tasks {
        let got = t.await.unwrap_or_else(|e| panic!("join: {e}"));
        assert_eq!(got, Ok(vec![WriteStatus::Accepted]));
    }
}

/// The profile made by applying every stored event of the visitor in processing order.
async fn rebuilt(store: &Store, cfg: &Config, visitor: &str) -> Profile {
    let rows = store
        .visitor_events(cfg.brand_id(), &AnonymousId::new(visitor), None)
        .await
        .unwrap_or_else(|e| panic!("visitor_events: {e}"));
    let mut profile = None;
    for row in rows {
        profile = Some(apply(cfg, profile, &row.to_valid_event(), row.processed_at).profile);
    }
    profile.unwrap_or_else(|| panic!("{visitor} has no events"))
}

/// Checks that each visitor's saved profile is exactly the rebuild from its events, and holds
/// `events` of them.
async fn check_saved_equal_rebuilt(store: &Store, cfg: &Config, visitors: &[&str], events: u32) {
    for v in visitors {
        let profile = saved(store, cfg, v).await;
        assert_eq!(profile.as_ref(), Some(&rebuilt(store, cfg, v).await), "{v}");
        let applied: u32 = profile.map_or(0, |p| p.event_counts.values().sum());
        assert_eq!(applied, events, "{v}: every event is in the profile once");
    }
}

async fn saved(store: &Store, cfg: &Config, visitor: &str) -> Option<Profile> {
    store
        .load_profile(cfg.brand_id(), &AnonymousId::new(visitor), Utc::now())
        .await
        .unwrap_or_else(|e| panic!("load_profile: {e}"))
}

async fn a_crash_before_any_profile_save_loses_nothing(backend: Backend) {
    let t = open(backend).await;
    let cfg = Arc::new(Config::southland());
    let visitors = ["v-crash-a", "v-crash-b", "v-crash-c"];

    let (writers, stop) = Writers::spawn(t.store.clone(), cfg.clone(), settings());
    write(&writers, &cfg, &visitors, 0, 40).await;
    stop.abort();
    for v in visitors {
        assert_eq!(
            saved(&t.store, &cfg, v).await,
            None,
            "{v}: nothing was saved"
        );
    }

    // The restarted writer misses every visitor, loads nothing and catches up from events.
    let (writers, stop) = Writers::spawn(t.store.clone(), cfg.clone(), settings());
    write(&writers, &cfg, &visitors, 40, 1).await;
    stop.shutdown().await;
    check_saved_equal_rebuilt(&t.store, &cfg, &visitors, 41).await;
}

async fn a_crash_after_a_profile_save_catches_up_from_it(backend: Backend) {
    let t = open(backend).await;
    let cfg = Arc::new(Config::southland());
    let visitors = ["v-resume-a", "v-resume-b"];

    // A clean stop saves the profiles as of 10 events each.
    let (writers, stop) = Writers::spawn(t.store.clone(), cfg.clone(), settings());
    write(&writers, &cfg, &visitors, 0, 10).await;
    stop.shutdown().await;
    // Then 25 more each, and a crash before they reach a saved profile.
    let (writers, stop) = Writers::spawn(t.store.clone(), cfg.clone(), settings());
    write(&writers, &cfg, &visitors, 10, 25).await;
    stop.abort();
    for v in visitors {
        let stale: u32 = saved(&t.store, &cfg, v)
            .await
            .map_or(0, |p| p.event_counts.values().sum());
        assert_eq!(stale, 10, "{v}: the saved profile predates the crash");
    }

    // The next writer loads the saved profile and applies only the events after it.
    let (writers, stop) = Writers::spawn(t.store.clone(), cfg.clone(), settings());
    write(&writers, &cfg, &visitors, 35, 1).await;
    stop.shutdown().await;
    check_saved_equal_rebuilt(&t.store, &cfg, &visitors, 36).await;
}

async fn rebuild_walks_every_visitor(backend: Backend) {
    let t = open(backend).await;
    let cfg = Arc::new(Config::southland());
    let names: Vec<String> = (0..23).map(|i| format!("v-rebuild-{i:02}")).collect();
    let visitors: Vec<&str> = names.iter().map(String::as_str).collect();

    let (writers, stop) = Writers::spawn(t.store.clone(), cfg.clone(), settings());
    write(&writers, &cfg, &visitors, 0, 3).await;
    stop.abort();

    let n = rebuild::run(&t.store, &cfg, &Visitors::All)
        .await
        .unwrap_or_else(|e| panic!("rebuild: {e}"));
    assert_eq!(n, visitors.len());
    for v in &visitors {
        let profile = saved(&t.store, &cfg, v).await;
        assert_eq!(
            profile.as_ref(),
            Some(&rebuilt(&t.store, &cfg, v).await),
            "{v}"
        );
    }
    let only = rebuild::run(
        &t.store,
        &cfg,
        &Visitors::Only(vec![
            AnonymousId::new("v-rebuild-00"),
            AnonymousId::new("nobody"),
        ]),
    )
    .await
    .unwrap_or_else(|e| panic!("rebuild one: {e}"));
    assert_eq!(only, 1, "only visitors with events are rebuilt");
}

/// 150 visitors through a cache that holds a fraction of them: profiles leave and come back
/// from the store many times, the cache never passes its bound, and every saved profile is
/// exactly what its events make.
async fn a_cache_far_smaller_than_the_visitors_costs_no_correctness(backend: Backend) {
    let t = open(backend).await;
    let cfg = Arc::new(Config::southland());
    let names: Vec<String> = (0..150).map(|i| format!("v-small-cache-{i:03}")).collect();
    let visitors: Vec<&str> = names.iter().map(String::as_str).collect();
    // Profiles pushed out wait in memory until their next save; saving often sends them to
    // the store, so their visitors' next events load them back.
    let small = WriterSettings {
        profile_cache_bytes: 96 * 1024,
        profile_flush: Duration::from_millis(20),
        ..settings()
    };
    let (writers, stop) = Writers::spawn(t.store.clone(), cfg.clone(), small);
    for round in 0..4 {
        write(&writers, &cfg, &visitors, round * 3, 3).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cache = writers.cache_report();
        assert!(cache.bytes <= 96 * 1024, "{cache:?}");
        assert!(cache.entries < 150, "only some visitors fit: {cache:?}");
    }
    let cache = writers.cache_report();
    assert!(cache.evictions > 150, "{cache:?}");
    assert!(
        cache.misses > 150,
        "visitors came back from the store: {cache:?}"
    );
    assert_eq!(cache.max_bytes, 96 * 1024);
    stop.shutdown().await;
    check_saved_equal_rebuilt(&t.store, &cfg, &visitors, 12).await;
}
