//! HTTP tests of the collector: a real server on an ephemeral port, over real HTTP, against the
//! real backends. Every test runs on SQLite (a temp dir) and on Postgres (a schema of its own
//! in the database at `CDP_TEST_DATABASE_URL`, which must be set and reachable: the Postgres
//! half fails loudly otherwise, it never skips).

mod support;

use cdp_adapters::{EventSink, IdentityStore, PostgresTarget, ProfileStore, Store, StoreTarget};
use cdp_api::server::{self, Running};
use cdp_api::settings::Settings;
use cdp_core::{AnonymousId, BrandId};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::{on_every_backend, pg_client, pg_url, serve_settings, Backend, Proxy, PG_HINT};
use uuid::Uuid;

on_every_backend!(
    accepts_one_json_event_and_stores_it,
    accepts_a_text_plain_beacon_body,
    bad_input_gets_json_problems_and_stores_nothing,
    garbage_never_gets_a_5xx,
    a_batch_answers_per_event,
    the_same_batch_twice_is_stored_once,
    concurrent_events_for_one_visitor_all_reach_the_profile,
    health_reports_the_store_and_the_last_event,
    cors_allows_only_listed_origins,
    unknown_routes_and_methods_answer_json,
    eager_writers_of_an_oversized_body_all_read_413,
    a_body_that_never_finishes_is_cut_off,
    two_browsers_of_one_person_sending_while_they_merge_lose_nothing,
    admin_splits_and_merges_are_edges_and_refusals_are_answered,
    an_erased_person_leaves_no_trace_and_comes_back_suppressed,
    erasing_needs_the_admin_and_a_tombstone_key,
);

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

/// A fresh schema in the test database, so concurrent runs and other users never collide.
async fn fresh_schema(url: &str) -> String {
    let schema = format!(
        "cdp_api_test_{}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::Relaxed),
        Utc::now().timestamp_millis() % 100_000
    );
    pg_client(url)
        .await
        .batch_execute(&format!("create schema {schema}"))
        .await
        .unwrap_or_else(|e| panic!("create schema {schema}: {e}"));
    schema
}

async fn drop_schema(url: &str, schema: &str) {
    if let Ok((client, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        tokio::spawn(conn);
        let _ = client
            .batch_execute(&format!("drop schema if exists {schema} cascade"))
            .await;
    }
}

struct TestServer {
    base: String,
    http: reqwest::Client,
    /// A second handle on the same store, to look at what was stored.
    store: Store,
    running: Option<Running>,
    brand: BrandId,
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

fn default_settings(dir: &std::path::Path, extra: &[&str]) -> Settings {
    serve_settings(dir, extra)
}

async fn start(backend: Backend) -> TestServer {
    start_with(backend, &[]).await
}

async fn start_with(backend: Backend, extra: &[&str]) -> TestServer {
    start_at(backend, extra, None).await
}

/// Starts a server; `pg_override` replaces the Postgres URL (the store-down test goes through
/// a proxy it can cut).
async fn start_at(backend: Backend, extra: &[&str], pg_override: Option<String>) -> TestServer {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut settings = default_settings(dir.path(), extra);
    let mut pg = None;
    if let Backend::Postgres = backend {
        let url = pg_url();
        let schema = fresh_schema(&url).await;
        let server_url = pg_override.unwrap_or_else(|| url.clone());
        settings.store.target =
            StoreTarget::Postgres(PostgresTarget::new(server_url).with_schema(schema.clone()));
        pg = Some((url, schema));
    }
    let running = server::start(&settings)
        .await
        .unwrap_or_else(|e| panic!("server start: {e}"));
    // The inspection handle always goes direct, never through a proxy.
    let inspect_target = match &pg {
        Some((url, schema)) => {
            StoreTarget::Postgres(PostgresTarget::new(url.clone()).with_schema(schema.clone()))
        }
        None => settings.store.target.clone(),
    };
    let store = Store::open(&inspect_target)
        .await
        .unwrap_or_else(|e| panic!("inspect store: {e}"));
    TestServer {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::new(),
        store,
        running: Some(running),
        brand: settings.store.config.brand_id().clone(),
        pg,
        _dir: dir,
    }
}

impl TestServer {
    async fn post(
        &self,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.post(format!("{}/collect", self.base)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("post: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
        (status, body, headers)
    }

    async fn post_json(&self, body: &Value) -> (u16, Value) {
        let (s, b, _) = self.post(Some("application/json"), body.to_string()).await;
        (s, b)
    }

    async fn stored_for(&self, anon: &str) -> usize {
        self.store
            .visitor_events(&self.brand, &AnonymousId::new(anon), None)
            .await
            .unwrap_or_else(|e| panic!("visitor_events: {e}"))
            .len()
    }

    async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    async fn finish(mut self) {
        self.stop().await;
        if let Some((url, schema)) = &self.pg {
            drop_schema(url, schema).await;
        }
    }
}

fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn visitor() -> String {
    format!("v-{}", Uuid::new_v4().simple())
}

fn event(anon: &str, kind: &str, props: Value) -> Value {
    json!({
        "v": 1,
        "event": kind,
        "event_id": Uuid::new_v4().to_string(),
        "anonymous_id": anon,
        "session_id": "s-1",
        "timestamp": now_iso(),
        "page_url": "https://www.southlandorganics.com/backyard",
        "properties": props,
    })
}

fn page_view(anon: &str) -> Value {
    event(anon, "page_view", json!({}))
}

fn statuses(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["status"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every problem in an error or per-event body names a field and a rule.
fn problems_of(body: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut take = |list: &Value| {
        for p in list.as_array().into_iter().flatten() {
            let field = p["field"].as_str().unwrap_or("").to_owned();
            let rule = p["rule"].as_str().unwrap_or("").to_owned();
            assert!(
                !field.is_empty() && !rule.is_empty(),
                "bad problem entry: {p}"
            );
            out.push((field, rule));
        }
    };
    take(&body["problems"]);
    for e in body["events"].as_array().into_iter().flatten() {
        take(&e["problems"]);
    }
    out
}

async fn accepts_one_json_event_and_stores_it(b: Backend) {
    let s = start(b).await;
    let anon = visitor();
    let e = event(
        &anon,
        "search_performed",
        json!({"query": "hens not laying", "results_count": 3}),
    );
    let (status, body) = s.post_json(&e).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(statuses(&body), ["accepted"]);
    assert_eq!(body["event_id"], Value::Null);
    assert_eq!(body["events"][0]["event_id"], e["event_id"]);
    assert_eq!(s.stored_for(&anon).await, 1);
    s.finish().await;
}

async fn accepts_a_text_plain_beacon_body(b: Backend) {
    let s = start(b).await;
    let anon = visitor();
    let batch = json!([page_view(&anon), page_view(&anon)]);
    let (status, body, _) = s
        .post(Some("text/plain;charset=UTF-8"), batch.to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(s.stored_for(&anon).await, 2);
    s.finish().await;
}

/// A bad-input case: name, content type, body, expected status, a field the answer must name.
type BadCase = (
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

async fn bad_input_gets_json_problems_and_stores_nothing(b: Backend) {
    let s = start_with(b, &["--max-body-bytes", "4096"]).await;
    let anon = visitor();
    let ok = page_view(&anon);
    let with = |k: &str, v: Value| {
        let mut e = ok.clone();
        e[k] = v;
        e.to_string().into_bytes()
    };
    let without = |k: &str| {
        let mut e = ok.clone();
        if let Some(o) = e.as_object_mut() {
            o.remove(k);
        }
        e.to_string().into_bytes()
    };
    let deep_props = {
        let mut v = json!("leaf");
        for _ in 0..10 {
            v = json!({ "n": v });
        }
        with("properties", v)
    };
    let json = Some("application/json");
    // (case, content type, body, status, a field that must be named)
    let cases: Vec<BadCase> = vec![
        (
            "malformed JSON",
            json,
            b"{\"event\": ".to_vec(),
            400,
            "body",
        ),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            ok.to_string().into_bytes(),
            415,
            "content-type",
        ),
        (
            "no content type",
            None,
            ok.to_string().into_bytes(),
            415,
            "content-type",
        ),
        ("oversized body", json, vec![b' '; 5000], 413, "body"),
        (
            "unknown event type",
            json,
            with("event", json!("page_viewed")),
            400,
            "event",
        ),
        (
            "missing anonymous_id",
            json,
            without("anonymous_id"),
            400,
            "anonymous_id",
        ),
        (
            "missing timestamp",
            json,
            without("timestamp"),
            400,
            "timestamp",
        ),
        (
            "missing page_url",
            json,
            without("page_url"),
            400,
            "page_url",
        ),
        (
            "NUL in title",
            json,
            with("page_title", json!("a\u{0}b")),
            400,
            "page_title",
        ),
        (
            "NUL in a property",
            json,
            with("properties", json!({"x": "a\u{0}b"})),
            400,
            "properties",
        ),
        (
            "script as page_url",
            json,
            with("page_url", json!("javascript:alert(1)")),
            400,
            "page_url",
        ),
        (
            "spaces in the visitor id",
            json,
            with("anonymous_id", json!("a b")),
            400,
            "anonymous_id",
        ),
        (
            "long visitor id",
            json,
            with("anonymous_id", json!("x".repeat(500))),
            400,
            "anonymous_id",
        ),
        (
            "unknown field",
            json,
            with("pwned", json!(true)),
            400,
            "pwned",
        ),
        ("deep properties", json, deep_props, 400, "properties"),
        (
            "huge number",
            json,
            format!("{{\"event\":\"page_view\",\"v\":1e400,\"anonymous_id\":\"{anon}\"}}")
                .into_bytes(),
            400,
            "body",
        ),
        (
            "deep nesting",
            json,
            format!("{}{}", "[".repeat(1000), "]".repeat(1000)).into_bytes(),
            400,
            "body",
        ),
        (
            "invalid UTF-8",
            json,
            vec![b'"', 0xff, 0xfe, b'"'],
            400,
            "body",
        ),
        (
            "garbage bytes",
            Some("text/plain"),
            vec![0, 159, 146, 150, 1, 2, 255],
            400,
            "body",
        ),
        ("empty body", json, Vec::new(), 400, "body"),
        ("empty batch", json, b"[]".to_vec(), 400, "body"),
        ("a bare number", json, b"42".to_vec(), 400, "body"),
        (
            "batch of 101",
            json,
            Value::Array(vec![ok.clone(); 101]).to_string().into_bytes(),
            413,
            "body",
        ),
        (
            "search without query",
            json,
            {
                let mut e = ok.clone();
                e["event"] = json!("search_performed");
                e.to_string().into_bytes()
            },
            400,
            "properties.query",
        ),
        (
            "old timestamp",
            json,
            with("timestamp", json!("2001-01-01T00:00:00Z")),
            400,
            "timestamp",
        ),
    ];
    let mut failures = Vec::new();
    for (case, ct, body, want_status, want_field) in cases {
        let (status, reply, _) = s.post(ct, body).await;
        let problems = problems_of(&reply);
        // A batch of 101 is under the body cap here only when small; accept 400 or 413.
        let status_ok = status == want_status || (case == "batch of 101" && status == 400);
        if !status_ok || !problems.iter().any(|(f, _)| f == want_field) {
            failures.push(format!("{case}: got {status} {reply}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(s.stored_for(&anon).await, 0, "nothing may be stored");
    s.finish().await;
}

async fn garbage_never_gets_a_5xx(b: Backend) {
    let s = start(b).await;
    let anon = visitor();
    let valid = page_view(&anon).to_string().into_bytes();
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..150 {
        let mut body = valid.clone();
        // Flip, drop or insert a few bytes of a valid event, or send pure noise.
        if round % 5 == 0 {
            body = (0..(next() % 300)).map(|_| next() as u8).collect();
        } else {
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % body.len().max(1);
                match next() % 3 {
                    0 => body[i] = next() as u8,
                    1 => {
                        body.remove(i);
                    }
                    _ => body.insert(i, next() as u8),
                }
            }
        }
        let ct = if round % 2 == 0 {
            "application/json"
        } else {
            "text/plain"
        };
        let (status, reply, _) = s.post(Some(ct), body.clone()).await;
        assert!(
            status < 500,
            "5xx for {:?}: {reply}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 {
            assert!(
                !problems_of(&reply).is_empty(),
                "no problems named: {reply}"
            );
        }
    }
    s.finish().await;
}

async fn a_batch_answers_per_event(b: Backend) {
    let s = start(b).await;
    let anon = visitor();
    let good = page_view(&anon);
    let mut bad = page_view(&anon);
    bad["event"] = json!("nope");
    bad["session_id"] = json!("");
    let (status, body) = s.post_json(&json!([good, bad])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(statuses(&body), ["accepted", "rejected"]);
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    let fields: Vec<String> = body["events"][1]["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["field"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(fields, ["event", "session_id"], "{body}");
    assert_eq!(body["events"][1]["event_id"], bad["event_id"]);
    assert_eq!(s.stored_for(&anon).await, 1);

    let (status, body) = s.post_json(&json!([bad, bad])).await;
    assert_eq!(status, 400, "all rejected is a 400: {body}");
    s.finish().await;
}

async fn the_same_batch_twice_is_stored_once(b: Backend) {
    let s = start(b).await;
    let anon = visitor();
    let batch: Vec<Value> = (0..5).map(|_| page_view(&anon)).collect();
    let batch = Value::Array(batch);
    let (status, first) = s.post_json(&batch).await;
    assert_eq!(
        (status, first["accepted"].as_u64()),
        (200, Some(5)),
        "{first}"
    );
    let (status, second) = s.post_json(&batch).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(statuses(&second), vec!["duplicate"; 5]);
    assert_eq!(s.stored_for(&anon).await, 5);

    // Two copies of one event inside one batch: one accepted, one duplicate.
    let e = page_view(&anon);
    let (_, body) = s.post_json(&json!([e, e])).await;
    assert_eq!(statuses(&body), ["accepted", "duplicate"]);

    // Without an event_id the collector derives one from the content, so a retry dedups too.
    let mut no_id = page_view(&anon);
    if let Some(o) = no_id.as_object_mut() {
        o.remove("event_id");
    }
    let (_, a) = s.post_json(&no_id).await;
    let (_, b2) = s.post_json(&no_id).await;
    assert_eq!(
        (statuses(&a), statuses(&b2)),
        (vec!["accepted".to_owned()], vec!["duplicate".to_owned()])
    );
    assert_eq!(a["events"][0]["event_id"], b2["events"][0]["event_id"]);
    assert_eq!(s.stored_for(&anon).await, 7);
    s.finish().await;
}

async fn concurrent_events_for_one_visitor_all_reach_the_profile(b: Backend) {
    let mut s = start(b).await;
    let anon = visitor();
    let base = Arc::new(s.base.clone());
    let http = s.http.clone();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (base, http, e) = (base.clone(), http.clone(), page_view(&anon));
        tasks.push(tokio::spawn(async move {
            let resp = http
                .post(format!("{base}/collect"))
                .header("content-type", "application/json")
                .body(e.to_string())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<u16, String>(resp.status().as_u16())
        }));
    }
    for t in tasks {
        let status = t.await.map_err(|e| e.to_string()).and_then(|r| r);
        assert_eq!(status, Ok(200));
    }
    // Stopping flushes the write-behind profile cache.
    s.stop().await;
    let profile = s
        .store
        .load_profile(&s.brand, &AnonymousId::new(anon.as_str()), Utc::now())
        .await
        .unwrap_or_else(|e| panic!("load_profile: {e}"))
        .unwrap_or_else(|| panic!("no profile saved"));
    let applied: u32 = profile.event_counts.values().sum();
    assert_eq!(applied, 200);
    assert_eq!(s.stored_for(&anon).await, 200);
    s.finish().await;
}

async fn health_reports_the_store_and_the_last_event(b: Backend) {
    let s = start(b).await;
    let get = || async {
        let r = s
            .http
            .get(format!("{}/health", s.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (
            r.status().as_u16(),
            r.json::<Value>().await.unwrap_or_default(),
        )
    };
    let (status, body) = get().await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["status"].as_str(), body["store"].as_str()),
        (Some("ok"), Some("ok"))
    );
    assert_eq!(body["last_event_at"], Value::Null);
    let cache = &body["profile_cache"];
    assert_eq!(cache["entries"], 0, "{body}");
    assert_eq!(
        cache["max_bytes"],
        64 * 1024 * 1024,
        "the default bound: {body}"
    );
    assert_eq!(cache["hit_rate"], Value::Null, "{body}");
    let anon = visitor();
    let _ = s.post_json(&page_view(&anon)).await;
    let _ = s.post_json(&page_view(&anon)).await;
    let (_, body) = get().await;
    assert!(body["last_event_at"].is_string(), "{body}");
    let cache = &body["profile_cache"];
    assert_eq!(cache["entries"], 1, "{body}");
    assert!(cache["bytes"].as_u64().is_some_and(|b| b > 500), "{body}");
    assert_eq!(
        (cache["hits"].as_u64(), cache["misses"].as_u64()),
        (Some(1), Some(1)),
        "{body}"
    );
    assert_eq!(cache["hit_rate"], 0.5, "{body}");
    s.finish().await;
}

async fn cors_allows_only_listed_origins(b: Backend) {
    let s = start_with(
        b,
        &["--allowed-origins", "https://www.southlandorganics.com"],
    )
    .await;
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, format!("{}/collect", s.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://www.southlandorganics.com")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://www.southlandorganics.com")
    );
    let evil = preflight("https://evil.example")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(evil.headers().get("access-control-allow-origin").is_none());

    let anon = visitor();
    let post = |origin: &'static str| {
        s.http
            .post(format!("{}/collect", s.base))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(page_view(&anon).to_string())
            .send()
    };
    let r = post("https://evil.example")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap_or_default();
    assert_eq!(body["problems"][0]["field"], "origin");
    let r = post("https://www.southlandorganics.com")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_some());
    assert_eq!(s.stored_for(&anon).await, 1);
    s.finish().await;
}

async fn unknown_routes_and_methods_answer_json(b: Backend) {
    let s = start(b).await;
    let r = s
        .http
        .get(format!("{}/nope", s.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.json::<Value>().await.is_ok());
    let r = s
        .http
        .get(format!("{}/collect", s.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.json::<Value>().await.is_ok());
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_gives_503_with_retry_after_and_degraded_health() {
    let (proxy, via) = Proxy::before_test_postgres().await;
    let s = start_at(Backend::Postgres, &[], Some(via)).await;

    let anon = visitor();
    let (status, _) = s.post_json(&page_view(&anon)).await;
    assert_eq!(status, 200);

    proxy.cut().await;
    let e = page_view(&anon);
    let (status, body, headers) = s.post(Some("application/json"), e.to_string()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    assert_eq!(body["problems"][0]["field"], "store");
    let r = s
        .http
        .get(format!("{}/health", s.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 503);
    let h: Value = r.json().await.unwrap_or_default();
    assert_eq!(
        (h["status"].as_str(), h["store"].as_str()),
        (Some("degraded"), Some("unreachable"))
    );
    // The refused event was not stored, and the earlier one still is.
    assert_eq!(s.stored_for(&anon).await, 1);
    let stored = s
        .store
        .existing_event_ids(
            &s.brand,
            &[e["event_id"]
                .as_str()
                .and_then(|i| Uuid::parse_str(i).ok())
                .unwrap_or_default()],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(stored.is_empty());
    s.finish().await;
}

/// On Postgres the collector's commits only queue events for the dashboard rollups; the server
/// folds the queue on its own, without any dashboard read asking it to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_folds_the_rollups_behind_the_events() {
    let s = start(Backend::Postgres).await;
    let anon = visitor();
    let batch: Vec<Value> = (0..20).map(|_| page_view(&anon)).collect();
    let (status, body) = s.post_json(&Value::Array(batch)).await;
    assert_eq!(status, 200, "{body}");
    let Some((url, schema)) = s.pg.clone() else {
        panic!("a Postgres server has a schema")
    };
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{PG_HINT}: {e}"));
    tokio::spawn(conn);
    let scalar = |sql: String| {
        let client = &client;
        async move {
            let n: i64 = client
                .query_one(&sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0);
            n
        }
    };
    let folded = |counter: cdp_core::counting::Counter| {
        scalar(format!(
            "select coalesce(sum(value), 0)::bigint from {schema}.cdp_counters \
             where counter = '{}'",
            counter.name()
        ))
    };
    // Allow the fold ten rounds.
    let every = cdp_api::rollups::fold_every(&s.store);
    let deadline = std::time::Instant::now() + every * 10;
    while folded(cdp_core::counting::Counter::EventsHour).await < 20
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(every / 5).await;
    }
    assert_eq!(
        folded(cdp_core::counting::Counter::EventsHour).await,
        20,
        "the hourly counts took every event"
    );
    assert_eq!(folded(cdp_core::counting::Counter::EventsDay).await, 20);
    let pending = scalar(format!("select count(*) from {schema}.cdp_rollup_pending")).await;
    assert_eq!(pending, 0, "nothing is left queued");
    s.finish().await;
}

/// A client that writes its whole request before it reads a byte of the answer, as Python's
/// `http.client` and most server SDKs do (no `Expect: 100-continue`), over a raw socket so
/// nothing in between reads early.
struct EagerClient {
    stream: tokio::net::TcpStream,
    read: Vec<u8>,
}

/// An HTTP answer as read off the socket.
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    head: String,
    body: String,
}

impl EagerClient {
    async fn connect(base: &str) -> EagerClient {
        let addr = base.trim_start_matches("http://");
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        EagerClient {
            stream,
            read: Vec::new(),
        }
    }

    /// Writes a `POST /collect` with these extra header lines and this body, all of it.
    async fn write_post(&mut self, headers: &[&str], body: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut head = String::from("POST /collect HTTP/1.1\r\nhost: localhost\r\n");
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).await?;
        self.stream.write_all(body).await?;
        self.stream.flush().await
    }

    /// Reads one answer (its `content-length` body); an error if the connection ends first.
    async fn read_answer(&mut self) -> std::io::Result<RawAnswer> {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 8192];
        loop {
            if let Some(end) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.read[..end]).into_owned();
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if self.read.len() >= end + 4 + length {
                    let body =
                        String::from_utf8_lossy(&self.read[end + 4..end + 4 + length]).into_owned();
                    self.read.drain(..end + 4 + length);
                    let status = head
                        .split(' ')
                        .nth(1)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    return Ok(RawAnswer { status, head, body });
                }
            }
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed before a whole answer",
                ));
            }
            self.read.extend_from_slice(&buf[..n]);
        }
    }

    /// Whether the server closes the connection (reads to EOF) within `limit`.
    async fn closed_within(&mut self, limit: std::time::Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 8192];
        tokio::time::timeout(limit, async {
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }
}

/// Two MiB of JSON-looking bytes, eight times the default body cap.
fn two_mib_body() -> Vec<u8> {
    let mut body = b"[".to_vec();
    body.resize(2 * 1024 * 1024 - 1, b' ');
    body.push(b']');
    body
}

async fn eager_writers_of_an_oversized_body_all_read_413(b: Backend) {
    let s = start(b).await;
    let body = Arc::new(two_mib_body());
    let length = format!("content-length: {}", body.len());
    // Ten at once, as a retrying SDK would send them.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (base, body, length) = (s.base.clone(), body.clone(), length.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = EagerClient::connect(&base).await;
            c.write_post(&["content-type: application/json", &length], &body)
                .await
                .map_err(|e| format!("writing the body: {e}"))?;
            c.read_answer()
                .await
                .map_err(|e| format!("reading the answer: {e}"))
        }));
    }
    let mut read_413 = 0;
    for t in tasks {
        match t.await.unwrap_or_else(|e| panic!("{e}")) {
            Ok(a) if a.status == 413 => {
                assert!(a.body.contains("at most 262144 bytes"), "{a:?}");
                read_413 += 1;
            }
            other => panic!("an eager writer did not read a 413: {other:?}"),
        }
    }
    assert_eq!(read_413, 10);

    // The discarded body ended where it said, so the connection carries on; the same holds
    // for a chunked body, and for a refusal that comes before the size is known (the wrong
    // content type).
    let mut c = EagerClient::connect(&s.base).await;
    c.write_post(&["content-type: application/json", &length], &body)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.read_answer().await.map(|a| a.status).ok(), Some(413));
    let chunked = {
        let mut out = Vec::new();
        for part in body.chunks(64 * 1024) {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    };
    c.write_post(
        &[
            "content-type: application/json",
            "transfer-encoding: chunked",
        ],
        &chunked,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let a = c.read_answer().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.status, 413, "{a:?}");
    c.write_post(&["content-type: application/xml", &length], &body)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let a = c.read_answer().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.status, 415, "{a:?}");
    let anon = visitor();
    let ok = page_view(&anon).to_string();
    c.write_post(
        &[
            "content-type: application/json",
            &format!("content-length: {}", ok.len()),
        ],
        ok.as_bytes(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let a = c.read_answer().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        a.status, 200,
        "the same connection, after three refusals: {a:?}"
    );
    assert!(
        !a.head.to_ascii_lowercase().contains("connection: close"),
        "{a:?}"
    );
    s.finish().await;
}

async fn a_body_that_never_finishes_is_cut_off(b: Backend) {
    let s = start_with(b, &["--body-timeout-secs", "1"]).await;
    let limit = std::time::Duration::from_secs(6);
    // Within the cap: 10 bytes of a declared 1000, then nothing.
    let mut c = EagerClient::connect(&s.base).await;
    let started = std::time::Instant::now();
    c.write_post(
        &["content-type: application/json", "content-length: 1000"],
        b"[{\"event\":",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let a = c.read_answer().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.status, 408, "{a:?}");
    assert!(
        a.body.contains("must arrive whole within 1 seconds"),
        "{a:?}"
    );
    assert!(c.closed_within(limit).await, "the connection is closed");
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());

    // Over the cap: the discarding stops at the same deadline.
    let mut c = EagerClient::connect(&s.base).await;
    let started = std::time::Instant::now();
    c.write_post(
        &["content-type: application/json", "content-length: 2097152"],
        &two_mib_body()[..64 * 1024],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let a = c.read_answer().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.status, 413, "{a:?}");
    assert!(
        a.head.to_ascii_lowercase().contains("connection: close"),
        "{a:?}"
    );
    assert!(c.closed_within(limit).await, "the connection is closed");
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());

    // Nothing was stored, and everyone else is served meanwhile.
    let anon = visitor();
    let (status, body) = s.post_json(&page_view(&anon)).await;
    assert_eq!(status, 200, "{body}");
    s.finish().await;
}

impl TestServer {
    /// An API call (no body: a GET) and its status and JSON body.
    async fn call(&self, path: &str, body: Option<&str>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let req = match body {
            None => self.http.get(url),
            Some(b) => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(b.to_owned()),
        };
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        self.call(path, None).await
    }

    async fn admin_post(&self, path: &str, body: &str) -> (u16, Value) {
        self.call(path, Some(body)).await
    }
}

fn applied_events(person: &Value) -> u64 {
    person["profile"]["profile"]["event_counts"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// Two browsers of one person each send 100 page views at once while one identifies with the
/// email the other signs up with: the person holds both browsers and every event, one
/// browser's lookup finds the same person, and a junk address on a third browser links nobody
/// and is counted.
async fn two_browsers_of_one_person_sending_while_they_merge_lose_nothing(b: Backend) {
    let mut s = start(b).await;
    let (laptop, phone, kiosk) = (visitor(), visitor(), visitor());
    let email = format!("{}@example.org", Uuid::new_v4().simple());
    let base = Arc::new(s.base.clone());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let anon = if i % 2 == 0 { &laptop } else { &phone };
        let e = match i {
            101 => event(anon, "email_signup", json!({"email": email.to_uppercase()})),
            100 => {
                let mut e = event(anon, "identify", json!({"email": email}));
                e["customer_id"] = json!("cust-42");
                e
            }
            _ => page_view(anon),
        };
        let (base, http) = (base.clone(), s.http.clone());
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/collect"))
                .header("content-type", "application/json")
                .body(e.to_string())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.map_err(|e| e.to_string()).and_then(|r| r), Ok(200));
    }
    let (st, _) = s
        .post_json(&event(
            &kiosk,
            "email_signup",
            json!({"email": "test@test.com"}),
        ))
        .await;
    assert_eq!(st, 200);

    let (st, person) = s.get_json(&format!("/api/cdp/people/{email}")).await;
    assert_eq!(st, 200, "{person}");
    let mut browsers: Vec<String> = person["browsers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    browsers.sort();
    let mut both = vec![laptop.clone(), phone.clone()];
    both.sort();
    assert_eq!(browsers, both);
    assert_eq!(applied_events(&person), 200, "every event of both browsers");
    assert_eq!(person["email"], json!(email));
    assert_eq!(person["customer_id"], json!("cust-42"));
    for id in person["identifiers"].as_array().into_iter().flatten() {
        assert_eq!(id["attached_by"]["kind"], "link", "{id}");
        assert_eq!(id["attached_by"]["origin"], "event", "{id}");
    }
    for key in [&phone, &laptop, &"cust-42".to_owned()] {
        let (st, other) = s.get_json(&format!("/api/cdp/people/{key}")).await;
        assert_eq!(st, 200);
        assert_eq!(other["person_id"], person["person_id"], "{key}");
    }
    let (st, kiosk_person) = s.get_json(&format!("/api/cdp/people/{kiosk}")).await;
    assert_eq!(st, 200);
    assert_eq!(kiosk_person["browsers"], json!([kiosk]));
    assert_eq!(kiosk_person["rejected"][0]["reason"], "test_email");
    let (st, figures) = s.get_json("/api/cdp/identity").await;
    assert_eq!(st, 200);
    assert_eq!(figures["linked_people"], 1);
    assert_eq!(figures["cross_device_people"], 1);
    assert_eq!(figures["linked_browsers"], 2);
    assert_eq!(figures["rejections"]["test_email"], 1);
    assert_eq!(figures["rejections"]["second_customer_id"], 0);
    let (st, missing) = s.get_json("/api/cdp/people/never-seen").await;
    assert_eq!(st, 404, "{missing}");
    let (st, junk) = s.get_json("/api/cdp/people/undefined").await;
    assert_eq!(st, 400);
    assert_eq!(problems_of(&junk)[0].0, "key");
    s.stop().await;
    s.finish().await;
}

/// A split is an exclusion: each side is its own events again; a merge the guards forbid is
/// a 409 naming the reason and is counted; a bad body is a 400 naming the field.
async fn admin_splits_and_merges_are_edges_and_refusals_are_answered(b: Backend) {
    let mut s = start(b).await;
    let (laptop, phone, tablet) = (visitor(), visitor(), visitor());
    let email = format!("{}@example.org", Uuid::new_v4().simple());
    // The laptop's identify comes first (a second before the rest), so its link is the one
    // that forms the person and the phone's is the one a split leaves out.
    let mut first = event(&laptop, "identify", json!({"email": email}));
    first["timestamp"] =
        json!((Utc::now() - chrono::Duration::seconds(1))
            .to_rfc3339_opts(SecondsFormat::Millis, true));
    let mut sent = vec![
        first,
        event(&phone, "email_signup", json!({"email": email})),
        page_view(&laptop),
        page_view(&phone),
        page_view(&phone),
    ];
    let mut t = event(&tablet, "identify", json!({}));
    t["customer_id"] = json!("cust-2");
    sent.push(t);
    for e in &sent {
        assert_eq!(s.post_json(e).await.0, 200);
    }
    let (_, before) = s.get_json(&format!("/api/cdp/people/{laptop}")).await;
    assert_eq!(applied_events(&before), 5);

    let side = |kind: &str, v: &str| json!({"kind": kind, "value": v});
    let body = json!({"a": side("anonymous_id", &laptop), "b": side("anonymous_id", &phone)});
    let (st, split) = s
        .admin_post("/api/cdp/people/split", &body.to_string())
        .await;
    assert_eq!(st, 200, "{split}");
    assert_eq!(split["edge"]["origin"], "admin");
    assert_ne!(split["a_person"], split["b_person"]);
    let (_, l) = s.get_json(&format!("/api/cdp/people/{laptop}")).await;
    let (_, p) = s.get_json(&format!("/api/cdp/people/{phone}")).await;
    assert_eq!(
        (applied_events(&l), applied_events(&p)),
        (2, 3),
        "each side its own"
    );
    assert_eq!(l["exclusions"].as_array().map(Vec::len), Some(1));
    assert_eq!(l["email"], json!(email));
    assert_eq!(p["email"], Value::Null, "the phone is on its own");
    assert_eq!(p["rejected"][0]["reason"], "excluded");

    // Merging the split pair again is refused while the exclusion stands.
    let (st, refused) = s
        .admin_post("/api/cdp/people/merge", &body.to_string())
        .await;
    assert_eq!(st, 409, "{refused}");
    assert_eq!(refused["reason"], "excluded");
    // The tablet's customer and bill's email merge; a second customer id is refused.
    let ok = json!({"a": side("email", &email.to_uppercase()), "b": side("anonymous_id", &tablet)});
    let (st, merged) = s.admin_post("/api/cdp/people/merge", &ok.to_string()).await;
    assert_eq!(st, 200, "{merged}");
    assert_eq!(merged["a_person"], merged["b_person"]);
    let (_, l) = s.get_json(&format!("/api/cdp/people/{laptop}")).await;
    assert_eq!(l["customer_id"], "cust-2");
    assert_eq!(applied_events(&l), 3);
    let second = json!({"a": side("customer_id", "cust-3"), "b": side("anonymous_id", &laptop)});
    let (st, refused) = s
        .admin_post("/api/cdp/people/merge", &second.to_string())
        .await;
    assert_eq!(
        (st, refused["reason"].as_str()),
        (409, Some("second_customer_id"))
    );
    let (_, figures) = s.get_json("/api/cdp/identity").await;
    assert_eq!(figures["rejections"]["second_customer_id"], 1);

    for (bad, field) in [
        ("not json", "body"),
        (r#"{"b": {}}"#, "a"),
        (
            r#"{"a": {"kind": "phone", "value": "1"}, "b": {}}"#,
            "a.kind",
        ),
        (
            r#"{"a": {"kind": "email", "value": "null"}, "b": {}}"#,
            "a.value",
        ),
        (
            r#"{"a": {"kind": "email", "value": "x@y.org"}, "b": {"kind": "email", "value": "X@y.org"}}"#,
            "b",
        ),
    ] {
        let (st, body) = s.admin_post("/api/cdp/people/merge", bad).await;
        assert_eq!(st, 400, "{bad}: {body}");
        assert_eq!(problems_of(&body)[0].0, field, "{bad}");
    }
    // cdp_profiles.person_id: once the profiles are saved (at shutdown here), the partition
    // stamps the laptop and the tablet with the merged person, and the phone with none.
    s.stop().await;
    let cfg = cdp_core::Config::southland();
    cdp_api::people::stamp(&s.store, &cfg).await;
    let stamped = s
        .store
        .stamped_people(&s.brand)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_default();
    let person = merged["a_person"].as_str().unwrap_or("?").to_owned();
    let want: std::collections::BTreeMap<AnonymousId, String> = [&laptop, &tablet]
        .into_iter()
        .map(|b| (AnonymousId::new(b.as_str()), person.clone()))
        .collect();
    assert_eq!(stamped, want);
    s.finish().await;
}

const TOMBSTONE_KEY: &str = "http-test tombstone key, at least thirty-two bytes";

impl TestServer {
    async fn delete(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .delete(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Cells of any text or JSON column of any table that contain one of `needles`.
    async fn cells_naming(&self, needles: &[&str]) -> Vec<String> {
        use cdp_adapters::analytics::Analytics;
        self.store
            .text_cells()
            .await
            .unwrap_or_else(|e| panic!("text cells: {e}"))
            .iter()
            .filter(|c| {
                let v = c.value.to_lowercase();
                needles.iter().any(|n| v.contains(&n.to_lowercase()))
            })
            .map(|c| format!("{}.{} = {:.80}", c.table, c.column, c.value))
            .collect()
    }
}

/// Betty browses on a phone and a laptop and once logs in on Bill's family computer; she is
/// exported, then erased while Bill keeps browsing. Afterwards nothing stored names her (every
/// text and JSON cell of every table, read after the server has stopped and saved its
/// profiles), Bill lost none of his events and his profile holds only them, and when she
/// comes back her events are suppressed and counted while a stranger's are stored.
async fn an_erased_person_leaves_no_trace_and_comes_back_suppressed(b: Backend) {
    let mut s = start_with(b, &["--tombstone-key", TOMBSTONE_KEY]).await;
    let tag = Uuid::new_v4().simple().to_string();
    let (phone, laptop, pc) = (
        format!("phone-{tag}"),
        format!("laptop-{tag}"),
        format!("pc-{tag}"),
    );
    let email = format!("betty-{tag}@example.org");
    let (betty_customer, bill_customer) = (format!("betty-c-{tag}"), format!("bill-c-{tag}"));
    let with_customer = |mut e: Value, c: &str| {
        e["customer_id"] = json!(c);
        e
    };
    let sends = [
        with_customer(page_view(&pc), &bill_customer),
        page_view(&phone),
        with_customer(
            event(&phone, "identify", json!({"email": email})),
            &betty_customer,
        ),
        event(
            &phone,
            "search_performed",
            json!({"query": "fly spray", "results_count": 2}),
        ),
        event(
            &laptop,
            "email_signup",
            json!({"email": email.to_uppercase()}),
        ),
        page_view(&laptop),
        with_customer(
            event(&pc, "identify", json!({"email": email})),
            &betty_customer,
        ),
        with_customer(page_view(&pc), &bill_customer),
    ];
    // In this order: the links are applied by event time, so Bill's computer is his first.
    let first = Utc::now() - chrono::Duration::minutes(10);
    for (i, e) in sends.iter().enumerate() {
        let mut e = e.clone();
        e["timestamp"] = json!((first + chrono::Duration::seconds(i as i64))
            .to_rfc3339_opts(SecondsFormat::Millis, true));
        let (st, body) = s.post_json(&e).await;
        assert_eq!(st, 200, "{body}");
    }

    let (st, export) = s.get_json(&format!("/api/cdp/people/{email}/export")).await;
    assert_eq!(st, 200, "{export}");
    assert_eq!(
        export["events"].as_array().map(Vec::len),
        Some(6),
        "{export}"
    );
    assert_eq!(export["stage_history"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        export["person"]["browsers"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        export["audit"].as_array().map(Vec::len),
        Some(5),
        "{}",
        export["audit"]
    );
    assert!(export["person"]["profile"]["explanation"].is_object());

    // Bill keeps browsing while Betty is erased.
    let (base, http) = (Arc::new(s.base.clone()), s.http.clone());
    let bill = {
        let (pc, bill_customer) = (pc.clone(), bill_customer.clone());
        tokio::spawn(async move {
            let mut ok = 0;
            for _ in 0..40 {
                let e = with_customer(page_view(&pc), &bill_customer);
                let r = http
                    .post(format!("{base}/collect"))
                    .header("content-type", "application/json")
                    .body(e.to_string())
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status().as_u16() == 200) {
                    ok += 1;
                }
            }
            ok
        })
    };
    let (st, erased) = s.delete(&format!("/api/cdp/people/{email}")).await;
    assert_eq!(st, 200, "{erased}");
    assert_eq!(erased["status"], "erased");
    assert_eq!(erased["events"], 6, "{erased}");
    assert_eq!(erased["identifiers"], 4, "{erased}");
    assert_eq!(erased["rebuilt_profiles"], 1, "{erased}");
    assert_eq!(
        bill.await.unwrap_or(0),
        40,
        "every one of Bill's events was accepted"
    );

    let (st, _) = s.get_json(&format!("/api/cdp/people/{email}")).await;
    assert_eq!(st, 404);
    let (st, _) = s.get_json(&format!("/api/cdp/people/{phone}")).await;
    assert_eq!(st, 404);
    assert_eq!(
        s.stored_for(&pc).await,
        42,
        "Bill's two first events and the 40 since"
    );
    let (st, profile) = s.get_json(&format!("/api/cdp/profiles/{pc}")).await;
    assert_eq!(st, 200, "{profile}");
    let counts = &profile["profile"]["event_counts"];
    assert_eq!(counts["page_view"], 42, "{counts}");
    assert!(
        counts.get("identify").is_none(),
        "Betty's login is gone: {counts}"
    );

    // She comes back: her old phone, and her email on a new browser. A stranger is stored.
    let newcomer = visitor();
    let (st, back) = s.post_json(&page_view(&phone)).await;
    assert_eq!(
        (st, statuses(&back)),
        (200, vec!["suppressed".to_owned()]),
        "{back}"
    );
    assert_eq!(back["suppressed"], 1);
    assert_eq!(problems_of(&back).len(), 1);
    let (st, back) = s
        .post_json(&event(&newcomer, "identify", json!({"email": email})))
        .await;
    assert_eq!(
        (st, statuses(&back)),
        (200, vec!["suppressed".to_owned()]),
        "{back}"
    );
    let stranger = visitor();
    let (st, ok) = s.post_json(&page_view(&stranger)).await;
    assert_eq!(
        (st, statuses(&ok)),
        (200, vec!["accepted".to_owned()]),
        "{ok}"
    );
    assert_eq!(s.stored_for(&newcomer).await, 0);

    let (_, health) = s.get_json("/health").await;
    assert_eq!(health["suppressed_events"], 2, "{health}");
    let mut figures = Value::Null;
    for _ in 0..50 {
        // The tombstones' counts are written in the background.
        figures = s.get_json("/api/cdp/identity").await.1;
        if figures["erasures"]["suppressed"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(figures["erasures"]["erasures"], 1, "{figures}");
    assert_eq!(figures["erasures"]["tombstones"], 4, "{figures}");
    assert_eq!(figures["erasures"]["suppressed"], 2, "{figures}");

    // Nothing stored names her, also after the server saved its profiles at shutdown.
    s.stop().await;
    let needles = [
        phone.as_str(),
        laptop.as_str(),
        email.as_str(),
        betty_customer.as_str(),
    ];
    let left = s.cells_naming(&needles).await;
    assert!(left.is_empty(), "cells still naming Betty: {left:#?}");
    assert!(
        !s.cells_naming(&[pc.as_str()]).await.is_empty(),
        "Bill is still there"
    );
    s.finish().await;
}

/// Erasing needs the admin's rights and a tombstone key, and names what is wrong.
async fn erasing_needs_the_admin_and_a_tombstone_key(b: Backend) {
    let s = start(b).await;
    let anon = visitor();
    assert_eq!(s.post_json(&page_view(&anon)).await.0, 200);
    let (st, body) = s.delete(&format!("/api/cdp/people/{anon}")).await;
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["error"], "erase_not_configured");
    assert_eq!(
        problems_of(&body)[0].0,
        "--tombstone-key / CDP_TOMBSTONE_KEY"
    );
    assert_eq!(s.stored_for(&anon).await, 1, "nothing was erased");
    s.finish().await;

    let token = "an admin token of some length";
    let s = start_with(
        b,
        &["--tombstone-key", TOMBSTONE_KEY, "--admin-token", token],
    )
    .await;
    assert_eq!(s.post_json(&page_view(&anon)).await.0, 200);
    let (st, _) = s.delete(&format!("/api/cdp/people/{anon}")).await;
    assert_eq!(st, 401, "no token");
    let (st, _) = s.get_json(&format!("/api/cdp/people/{anon}/export")).await;
    assert_eq!(st, 401, "no token");
    let authed = |r: reqwest::RequestBuilder| r.bearer_auth(token);
    let r = authed(
        s.http
            .get(format!("{}/api/cdp/people/{anon}/export", s.base)),
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 200);
    let r = authed(
        s.http
            .delete(format!("{}/api/cdp/people/never-seen-{anon}", s.base)),
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 404, "an unknown browser is not erased");
    let r = authed(
        s.http
            .delete(format!("{}/api/cdp/people/undefined", s.base)),
    )
    .send()
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 400, "junk is no key");
    let r = authed(s.http.delete(format!("{}/api/cdp/people/{anon}", s.base)))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(s.stored_for(&anon).await, 0);
    s.finish().await;
}
