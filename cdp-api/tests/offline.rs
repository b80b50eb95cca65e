//! The store going out of reach under a running `cdp serve`, in each of the ways a real
//! deployment meets: a database not accepting connections, renamed away, out of connection
//! slots, a login refused, a server shutting down, nothing listening; on Supabase REST a
//! rotated key, a restricted project, every service down, a name that does not resolve.
//! Every one is a failure to reach the store, not a bad request, so the API answers
//! 503 `{"status":"offline","reason"}` (with `Retry-After`) on every `/api/cdp/*` route,
//! `/collect` answers 503 with `Retry-After` and stores nothing, and `/health` says
//! `degraded`. Never a 500. When the store comes back, so do the answers.
//!
//! Postgres failures are produced on the real test server wherever it can produce them (a
//! database and a role of the test's own, altered under the running server). Two it cannot
//! produce come from [`support::RefusingPostgres`], which answers the startup packet the way a
//! server does: 28P01 (the test cluster trusts every local login, so no password is ever
//! wrong) and 57P03 (shutting the shared cluster down would stop every other test). Supabase
//! cannot be reached from here: its REST API is the PostgREST stand-in of the adapter tests,
//! written from PostgREST's documented behaviour, on the real Postgres.

mod support;

#[allow(dead_code)]
#[path = "../../cdp-adapters/tests/support/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "../../cdp-adapters/tests/support/postgrest.rs"]
mod postgrest;

use cdp_adapters::rest::RetryPolicy;
use cdp_adapters::{EventSink, PostgresTarget, ServiceKey, Store, StoreTarget, SupabaseTarget};
use cdp_api::server::{self, Running};
use cdp_core::BrandId;
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{pg_client, pg_url, serve_settings, Proxy, RefusingPostgres};

/// How long a test waits for the server to notice the outage, or the recovery.
const NOTICE: Duration = Duration::from_secs(20);

fn page_view(anon: &str) -> Value {
    json!({
        "event": "page_view",
        "event_id": uuid::Uuid::now_v7().to_string(),
        "anonymous_id": anon,
        "session_id": "s-1",
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "page_url": "https://www.example.com/",
    })
}

/// A running server and an HTTP client for it.
struct Served {
    base: String,
    http: reqwest::Client,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

impl Served {
    async fn start(target: StoreTarget) -> Served {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut settings = serve_settings(dir.path(), &[]);
        settings.store.target = target;
        let running = server::start(&settings)
            .await
            .unwrap_or_else(|e| panic!("server start: {e}"));
        Served {
            base: format!("http://{}", running.addr),
            http: reqwest::Client::new(),
            running: Some(running),
            _dir: dir,
        }
    }

    async fn answer(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.unwrap_or_else(|e| panic!("request: {e}"));
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("status {status}: not JSON: {text:?}"));
        Answer {
            status,
            retry_after,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.answer(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn collect(&self, event: &Value) -> Answer {
        self.answer(
            self.http
                .post(format!("{}/collect", self.base))
                .header("content-type", "application/json")
                .body(event.to_string()),
        )
        .await
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// The dashboard's routes, each of which must say `offline` while the store is out of reach.
fn dashboard_routes(anon: &str) -> Vec<String> {
    vec![
        "/api/cdp/metrics?range=24h".to_owned(),
        "/api/cdp/metrics?range=7d".to_owned(),
        "/api/cdp/metrics?range=30d".to_owned(),
        "/api/cdp/events".to_owned(),
        "/api/cdp/searches".to_owned(),
        format!("/api/cdp/profiles/{anon}"),
    ]
}

/// Waits until `/api/cdp/metrics` names `expect` in its offline reason; every answer on the
/// way must already be an offline 503 (never a 500, never figures).
async fn until_offline_says(s: &Served, expect: &str) -> String {
    let deadline = tokio::time::Instant::now() + NOTICE;
    loop {
        let a = s.get("/api/cdp/metrics?range=7d").await;
        assert_eq!(
            a.status, 503,
            "metrics while the store is out of reach: {}",
            a.body
        );
        assert_eq!(a.body["status"], "offline", "{}", a.body);
        let reason = a.body["reason"].as_str().unwrap_or("").to_owned();
        assert!(!reason.is_empty(), "{}", a.body);
        if reason.contains(expect) {
            return reason;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reason never named {expect}; last: {reason}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every route as the outage must show it.
async fn check_every_route_is_offline(s: &Served, anon: &str) {
    for path in dashboard_routes(anon) {
        let a = s.get(&path).await;
        assert_eq!(a.status, 503, "{path}: {}", a.body);
        assert_eq!(a.body["status"], "offline", "{path}: {}", a.body);
        assert!(
            a.body["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{path}: {}",
            a.body
        );
        assert_eq!(a.retry_after.as_deref(), Some("5"), "{path}");
    }
    check_collect_and_health_are_offline(s).await;
}

async fn check_collect_and_health_are_offline(s: &Served) {
    for anon in ["a-cached-visitor", &format!("new-{}", uuid::Uuid::now_v7())] {
        let a = s.collect(&page_view(anon)).await;
        assert_eq!(a.status, 503, "/collect: {}", a.body);
        assert_eq!(a.body["error"], "store_unavailable", "{}", a.body);
        assert_eq!(a.retry_after.as_deref(), Some("5"), "/collect");
    }
    let h = s.get("/health").await;
    assert_eq!(h.status, 503, "{}", h.body);
    assert_eq!(h.body["status"], "degraded", "{}", h.body);
    assert_eq!(h.body["store"], "unreachable", "{}", h.body);
}

/// How a test takes Postgres away, and how it gives it back.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// `alter database ... allow_connections false`: 55000.
    NotAcceptingConnections,
    /// The database renamed away: 3D000.
    NoSuchDatabase,
    /// `alter role ... connection limit 0`: 53300.
    TooManyConnections,
    /// `alter role ... nologin`: 28000.
    LoginNotPermitted,
    /// A server answering the startup with this SQLSTATE (28P01, 57P03).
    Answers(&'static str, &'static str),
    /// Nothing listens where the database was: no SQLSTATE at all.
    NothingListening,
}

static N: AtomicUsize = AtomicUsize::new(0);

/// A database and a login role of the test's own on the test server, so the test can alter
/// both under the running server without touching anyone else's.
struct OwnDatabase {
    admin: tokio_postgres::Client,
    name: String,
}

impl OwnDatabase {
    async fn create() -> OwnDatabase {
        let name = format!(
            "cdp_offline_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_millis() % 100_000
        );
        let admin = pg_client(&pg_url()).await;
        admin
            .batch_execute(&format!("create role {name} login"))
            .await
            .unwrap_or_else(|e| panic!("create role: {e}"));
        admin
            .batch_execute(&format!("create database {name} owner {name}"))
            .await
            .unwrap_or_else(|e| panic!("create database: {e}"));
        OwnDatabase { admin, name }
    }

    async fn sql(&self, sql: &str) {
        self.admin
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Ends every session of the test's role, so the server must connect again.
    async fn end_sessions(&self) {
        self.sql(&format!(
            "select pg_terminate_backend(pid) from pg_stat_activity \
             where (usename = '{0}' or datname = '{0}') and pid <> pg_backend_pid()",
            self.name
        ))
        .await;
    }

    async fn drop_all(self) {
        let n = &self.name;
        self.sql(&format!("alter database {n} allow_connections true"))
            .await;
        self.end_sessions().await;
        self.sql(&format!("drop database if exists {n} with (force)"))
            .await;
        self.sql(&format!("drop role if exists {n}")).await;
    }
}

async fn take_away(
    db: &OwnDatabase,
    proxy: &Proxy,
    outage: Outage,
    hold: &mut Option<RefusingPostgres>,
) {
    let n = &db.name;
    match outage {
        Outage::NotAcceptingConnections => {
            db.sql(&format!("alter database {n} allow_connections false"))
                .await;
            db.end_sessions().await;
        }
        Outage::NoSuchDatabase => {
            db.sql(&format!("alter database {n} allow_connections false"))
                .await;
            db.end_sessions().await;
            db.sql(&format!("alter database {n} rename to {n}_away"))
                .await;
            db.sql(&format!("alter database {n}_away allow_connections true"))
                .await;
        }
        Outage::TooManyConnections => {
            db.sql(&format!("alter role {n} connection limit 0")).await;
            db.end_sessions().await;
        }
        Outage::LoginNotPermitted => {
            db.sql(&format!("alter role {n} nologin")).await;
            db.end_sessions().await;
        }
        Outage::Answers(code, message) => {
            let refusing = RefusingPostgres::start(code, message).await;
            proxy.point_at(refusing.addr.to_string()).await;
            *hold = Some(refusing);
            db.end_sessions().await;
        }
        Outage::NothingListening => {
            // Bound and dropped: a port on which nothing listens.
            let closed = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap_or_else(|e| panic!("{e}"));
            proxy.point_at(closed.to_string()).await;
            db.end_sessions().await;
        }
    }
}

async fn give_back(db: &OwnDatabase, proxy: &Proxy, upstream: &str, outage: Outage) {
    let n = &db.name;
    match outage {
        Outage::NotAcceptingConnections => {
            db.sql(&format!("alter database {n} allow_connections true"))
                .await;
        }
        Outage::NoSuchDatabase => {
            db.sql(&format!("alter database {n}_away rename to {n}"))
                .await;
        }
        Outage::TooManyConnections => {
            db.sql(&format!("alter role {n} connection limit -1")).await;
        }
        Outage::LoginNotPermitted => db.sql(&format!("alter role {n} login")).await,
        Outage::Answers(..) | Outage::NothingListening => {
            proxy.point_at(upstream.to_owned()).await;
        }
    }
}

/// Starts a server on a database of the test's own (through a proxy), stores an event, takes
/// the database away as `outage` says, checks every route says offline naming `expect`, gives
/// it back and checks the server recovers with nothing half-written.
async fn postgres_outage(outage: Outage, expect: &str) {
    let db = OwnDatabase::create().await;
    let admin_url = pg_url();
    let (proxy, _) = Proxy::before(&admin_url).await;
    let cfg: tokio_postgres::Config = admin_url.parse().unwrap_or_else(|e| panic!("{e}"));
    let upstream = match (cfg.get_hosts().first(), cfg.get_ports().first()) {
        (Some(tokio_postgres::config::Host::Tcp(h)), Some(p)) => format!("{h}:{p}"),
        _ => "127.0.0.1:5432".to_owned(),
    };
    let url = format!("postgres://{0}@{1}/{0}", db.name, proxy.addr);
    let s = Served::start(StoreTarget::Postgres(PostgresTarget::new(url.clone()))).await;

    let before = s.collect(&page_view("a-cached-visitor")).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(s.get("/api/cdp/metrics?range=7d").await.status, 200);

    let mut hold = None;
    take_away(&db, &proxy, outage, &mut hold).await;
    until_offline_says(&s, expect).await;
    check_every_route_is_offline(&s, "a-cached-visitor").await;

    give_back(&db, &proxy, &upstream, outage).await;
    let deadline = tokio::time::Instant::now() + NOTICE;
    loop {
        let a = s.get("/api/cdp/metrics?range=7d").await;
        if a.status == 200 {
            // Only the event sent before the outage was stored.
            assert_eq!(a.body["kpis"]["events"]["value"], 1, "{}", a.body);
            break;
        }
        assert_eq!(a.status, 503, "{}", a.body);
        assert!(
            tokio::time::Instant::now() < deadline,
            "never recovered: {}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(s.collect(&page_view("a-cached-visitor")).await.status, 200);
    assert_eq!(s.get("/health").await.status, 200);
    s.stop().await;
    drop(hold);
    db.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_not_accepting_connections_55000_is_offline() {
    postgres_outage(Outage::NotAcceptingConnections, "SQLSTATE 55000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database_gone_3d000_is_offline() {
    postgres_outage(Outage::NoSuchDatabase, "SQLSTATE 3D000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_too_many_connections_53300_is_offline() {
    postgres_outage(Outage::TooManyConnections, "SQLSTATE 53300").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_login_not_permitted_28000_is_offline() {
    postgres_outage(Outage::LoginNotPermitted, "SQLSTATE 28000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_password_refused_28p01_is_offline() {
    postgres_outage(
        Outage::Answers("28P01", "password authentication failed for user"),
        "SQLSTATE 28P01",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shutting_down_57p03_is_offline() {
    postgres_outage(
        Outage::Answers("57P03", "the database system is shutting down"),
        "SQLSTATE 57P03",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nothing_listening_is_offline() {
    postgres_outage(Outage::NothingListening, "cannot connect").await;
}

/// A store that insists on TLS the build does not speak: the first use is `Unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tls_required_is_unavailable() {
    let url = format!(
        "{}?sslmode=require",
        pg_url().split('?').next().unwrap_or("")
    );
    let store = Store::open(&StoreTarget::Postgres(PostgresTarget::new(url)))
        .await
        .unwrap_or_else(|e| panic!("open makes no connection: {e}"));
    let err = store
        .last_processed_at(&BrandId::new("southland"))
        .await
        .err()
        .unwrap_or_else(|| panic!("a TLS-only URL over a client without TLS connected"));
    assert!(err.is_unavailable(), "{err}");
}

const KEY: &str = "test-service-key-0123456789";

/// A server on Supabase REST (the stand-in over a migrated schema of the real Postgres).
async fn on_supabase() -> (Served, postgrest::PostgRest, pg::Schema) {
    let schema = pg::Schema::create().await;
    let pg_target =
        StoreTarget::Postgres(PostgresTarget::new(schema.url.clone()).with_schema(&schema.name));
    let pg_store = Store::open(&pg_target)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    pg_store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    drop(pg_store);
    let rest = postgrest::PostgRest::start(&schema.url, KEY).await;
    let dead_letter = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = StoreTarget::Supabase(SupabaseTarget {
        url: rest.url.clone(),
        key: ServiceKey::new(KEY),
        dead_letter_dir: dead_letter.path().join("dead-letter"),
        schema: schema.name.clone(),
        retry: RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        },
    });
    let s = Served::start(target).await;
    let ok = s.collect(&page_view("a-cached-visitor")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(s.get("/health").await.status, 200);
    (s, rest, schema)
}

/// On Supabase REST the dashboard queries are unsupported whatever the store's state: they
/// stay a 501 that says so, never a 500.
async fn check_supabase_outage(s: &Served) {
    check_collect_and_health_are_offline(s).await;
    let a = s.get("/api/cdp/metrics?range=7d").await;
    assert_eq!(a.status, 501, "{}", a.body);
    assert_eq!(a.body["status"], "unsupported", "{}", a.body);
}

async fn check_supabase_recovers(s: &Served) {
    let a = s.collect(&page_view("a-cached-visitor")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(s.get("/health").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supabase_rotated_key_401_is_offline() {
    let (s, rest, _schema) = on_supabase().await;
    rest.rotate_key("a-new-key-the-server-does-not-have");
    check_supabase_outage(&s).await;
    rest.rotate_key(KEY);
    check_supabase_recovers(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supabase_forbidden_403_and_restricted_402_are_offline() {
    let (s, rest, _schema) = on_supabase().await;
    for status in [403, 402] {
        rest.set_down(Some(status));
        check_supabase_outage(&s).await;
        rest.set_down(None);
        check_supabase_recovers(&s).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supabase_services_down_5xx_is_offline() {
    let (s, rest, _schema) = on_supabase().await;
    for status in [503, 500, 540] {
        rest.set_down(Some(status));
        check_supabase_outage(&s).await;
        rest.set_down(None);
        check_supabase_recovers(&s).await;
    }
    s.stop().await;
}

/// A project URL whose name does not resolve (`.invalid` never does, RFC 2606): the adapter's
/// every call is `Unavailable`. The server is not started on it, since start-up checks the
/// tables and refuses a store it cannot reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supabase_name_that_does_not_resolve_is_unavailable() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&StoreTarget::Supabase(SupabaseTarget {
        url: "https://cdp-offline-test.invalid".to_owned(),
        key: ServiceKey::new(KEY),
        dead_letter_dir: dir.path().join("dead-letter"),
        schema: "public".to_owned(),
        retry: RetryPolicy {
            attempts: 2,
            base: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
    }))
    .await
    .unwrap_or_else(|e| panic!("open makes no request: {e}"));
    let err = store
        .last_processed_at(&BrandId::new("southland"))
        .await
        .err()
        .unwrap_or_else(|| panic!("an unresolvable name answered"));
    assert!(err.is_unavailable(), "{err}");
}
