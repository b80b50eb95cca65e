//! The PostgREST stand-in from the conformance tests (`tests/support/postgrest.rs`) as a
//! process, for test suites outside Rust: the Cloudflare Worker's miniflare tests point their
//! Supabase sink at it. It runs on the real Postgres at `CDP_TEST_DATABASE_URL` (missing or
//! unreachable is a failure), and prints one JSON line with its URLs once ready.
//!
//! A second, control server lets the caller create migrated schemas (one per test run, dropped
//! on exit), queue failures and poison event ids, as the Rust tests do in process. The process
//! exits, dropping its schemas, when its standard input closes.
//!
//! ```text
//! CDP_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run -p cdp-adapters --example postgrest_standin -- SERVICE_KEY
//! {"rest_url":"http://127.0.0.1:PORT","control_url":"http://127.0.0.1:PORT"}
//! ```

// At the crate root, so the stand-in's `super::pg` resolves as it does in the test binary.
#[allow(dead_code)]
#[path = "../tests/support/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "../tests/support/postgrest.rs"]
mod postgrest;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use cdp_adapters::{PostgresTarget, Store, StoreTarget};
use pg::Schema;
use postgrest::{Fault, PostgRest};
use serde_json::{json, Value};
use std::io::Read;
use std::sync::{Arc, Mutex};

struct Control {
    rest: PostgRest,
    schemas: Mutex<Vec<Schema>>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let key = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "test-service-key".to_owned());
    let url = pg::database_url();
    let rest = PostgRest::start(&url, &key).await;
    let control = Arc::new(Control {
        rest,
        schemas: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/schema", post(new_schema))
        .route("/fail", post(fail))
        .route("/poison", post(poison))
        .route("/requests", get(requests))
        .with_state(Arc::clone(&control));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind control server");
    let addr = listener.local_addr().expect("control address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    println!(
        "{}",
        json!({ "rest_url": control.rest.url, "control_url": format!("http://{addr}") })
    );
    // Runs until the parent closes stdin (or dies), then drops the schemas it created.
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::stdin().read_to_end(&mut sink)
    })
    .await;
    let schemas = std::mem::take(&mut *control.schemas.lock().expect("schemas"));
    drop(schemas);
}

/// Creates a fresh schema with the CDP tables (migrated through the Postgres adapter).
async fn new_schema(State(c): State<Arc<Control>>) -> Json<Value> {
    let schema = Schema::create().await;
    let target = StoreTarget::Postgres(PostgresTarget::new(&schema.url).with_schema(&schema.name));
    let store = Store::open(&target).await.expect("open postgres");
    store.migrate().await.expect("migrate");
    drop(store);
    let name = schema.name.clone();
    c.schemas.lock().expect("schemas").push(schema);
    Json(json!({ "schema": name }))
}

/// `{"status": 503, "count": 5}` or `{"retry_after": 1, "count": 1}` (a 429).
async fn fail(State(c): State<Arc<Control>>, Json(v): Json<Value>) -> Json<Value> {
    let count = v["count"].as_u64().unwrap_or(1) as usize;
    let fault = match v["retry_after"].as_u64() {
        Some(secs) => Fault::TooMany {
            retry_after_secs: secs,
        },
        None => Fault::Status(v["status"].as_u64().unwrap_or(503) as u16),
    };
    c.rest.fail_next(&vec![fault; count]);
    Json(json!({ "queued": count }))
}

/// `{"event_id": "..."}`: any POST containing it answers 400.
async fn poison(State(c): State<Arc<Control>>, Json(v): Json<Value>) -> Json<Value> {
    let id = v["event_id"].as_str().unwrap_or_default();
    c.rest.poison(id);
    Json(json!({ "poisoned": id }))
}

async fn requests(State(c): State<Arc<Control>>) -> Json<Value> {
    Json(json!({ "requests": c.rest.requests() }))
}
