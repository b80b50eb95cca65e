//! `cdp bench-metrics`: how fast `/api/cdp/metrics` answers over a large store. A command that
//! prints figures, not a test with a time limit.
//!
//! It bulk-loads synthetic events (the demo's journeys, validated and enriched by `cdp_core`
//! exactly as the collector would, then replayed by many visitors) in timestamp order, as live
//! traffic arrives, straight through the store adapter's `write_events` in large batches: the
//! same insert statements and the same rollup maintenance as ingest, without HTTP in the way. Then it starts a server in this process on a loopback port and times
//! sequential `GET /api/cdp/metrics?range=...` requests, printing p50 and p95. SQLite lives in
//! `--data-dir` (a temp dir by default); Postgres in schema `cdp_bench` of `--postgres-url`,
//! kept afterwards so `--reuse` can measure again without reloading. Traffic stays on
//! 127.0.0.1 and every loop is bounded.

use crate::demo::{self, Rng};
use cdp_adapters::analytics::Analytics;
use cdp_adapters::{EventSink, PostgresTarget, Store, StoreTarget};
use cdp_api::server::{self, StartError};
use cdp_api::settings::{BenchMetricsArgs, ServeArgs, Settings, SettingsError};
use cdp_core::{apply, validate, AnonymousId, Config, EventRow, Outcome, SessionId};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::fmt;
use std::time::Instant;

/// Rows per `write_events` call while loading.
const LOAD_BATCH: usize = 10_000;
/// The Postgres schema the benchmark loads into.
pub const POSTGRES_SCHEMA: &str = "cdp_bench";

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Settings for the in-process server were invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The server or the store did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Loading or measuring failed.
    #[error("{0}")]
    Failed(String),
    /// A temp dir could not be made.
    #[error("temp dir: {0}")]
    Io(#[from] std::io::Error),
}

/// One backend's figures.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Backend and where.
    pub backend: String,
    /// Events stored.
    pub events: u64,
    /// Rows per second while loading (`None` when reused).
    pub load_rows_per_sec: Option<f64>,
    /// Per range: (range, p50 ms, p95 ms, max ms, requests).
    pub ranges: Vec<(String, f64, f64, f64, usize)>,
}

impl fmt::Display for Measured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} events stored{}",
            self.backend,
            self.events,
            self.load_rows_per_sec
                .map_or(" (reused)".to_owned(), |r| format!(
                    ", loaded at {r:.0} rows/s through write_events and the rollup maintenance"
                ))
        )?;
        writeln!(
            f,
            "  {:<28} {:>9} {:>9} {:>9} {:>9}",
            "request", "p50 ms", "p95 ms", "max ms", "requests"
        )?;
        for (range, p50, p95, max, n) in &self.ranges {
            writeln!(
                f,
                "  {:<28} {p50:>9.1} {p95:>9.1} {max:>9.1} {n:>9}",
                format!("/api/cdp/metrics?range={range}")
            )?;
        }
        Ok(())
    }
}

/// Runs the benchmark on each backend asked for and returns the figures.
pub async fn run(args: &BenchMetricsArgs) -> Result<Vec<Measured>, BenchError> {
    let cfg = Config::southland();
    let mut out = Vec::new();
    let temp = tempfile::tempdir()?;
    if !args.postgres_only {
        let dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| temp.path().to_path_buf());
        let target = StoreTarget::Sqlite {
            path: dir.join(cdp_adapters::store::SQLITE_FILE),
        };
        out.push(measure("sqlite", target, &dir.display().to_string(), &cfg, args).await?);
    }
    if !args.sqlite_only {
        if !args.reuse {
            let (client, conn) = tokio_postgres::connect(&args.postgres_url, tokio_postgres::NoTls)
                .await
                .map_err(|e| BenchError::Failed(format!("postgres: {e}")))?;
            tokio::spawn(conn);
            client
                .batch_execute(&format!(
                    "drop schema if exists {POSTGRES_SCHEMA} cascade; create schema {POSTGRES_SCHEMA}"
                ))
                .await
                .map_err(|e| BenchError::Failed(format!("postgres: {e}")))?;
        }
        let target = StoreTarget::Postgres(
            PostgresTarget::new(args.postgres_url.clone()).with_schema(POSTGRES_SCHEMA),
        );
        out.push(
            measure(
                "postgres",
                target,
                &temp.path().display().to_string(),
                &cfg,
                args,
            )
            .await?,
        );
    }
    Ok(out)
}

async fn measure(
    backend: &str,
    target: StoreTarget,
    data_dir: &str,
    cfg: &Config,
    args: &BenchMetricsArgs,
) -> Result<Measured, BenchError> {
    let mut settings = serve_settings(data_dir)?;
    settings.store.target = target;
    let store = server::open_store(&settings.store).await?;
    let now = Utc::now();
    let stored = stored_events(&store, cfg, now).await?;
    let load_rows_per_sec = if args.reuse && stored > 0 {
        eprintln!("{backend}: reusing {stored} stored events");
        None
    } else {
        Some(load(backend, &store, cfg, args, now).await?)
    };
    if let Store::Postgres(_) = &store {
        // What autovacuum would have done by now on a live database.
        eprintln!("{backend}: vacuum analyze");
        vacuum(&args.postgres_url).await?;
    }
    let events = stored_events(&store, cfg, now).await?;
    drop(store);

    let running = server::start(&settings).await?;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let mut ranges = Vec::new();
    for (i, range) in args.ranges.iter().enumerate() {
        let url = format!("{base}/api/cdp/metrics?range={range}");
        // The first range is the one measured in earnest; the others give a rough idea.
        let n = if i == 0 {
            args.requests
        } else {
            args.requests.min(20)
        };
        for _ in 0..3 {
            get(&http, &url).await?;
        }
        let mut took = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            let t = Instant::now();
            get(&http, &url).await?;
            took.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        took.sort_by(f64::total_cmp);
        let pct = |p: f64| took[((took.len() as f64 * p).ceil() as usize).clamp(1, took.len()) - 1];
        ranges.push((range.clone(), pct(0.50), pct(0.95), pct(1.0), took.len()));
    }
    running.stop().await;
    Ok(Measured {
        backend: backend.to_owned(),
        events,
        load_rows_per_sec,
        ranges,
    })
}

async fn get(http: &reqwest::Client, url: &str) -> Result<(), BenchError> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| BenchError::Failed(format!("GET {url}: {e}")))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| BenchError::Failed(format!("GET {url}: {e}")))?;
    if !status.is_success() {
        return Err(BenchError::Failed(format!(
            "GET {url}: {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(())
}

/// Events in the whole store (through the same dashboard query, over all time).
async fn stored_events(store: &Store, cfg: &Config, now: DateTime<Utc>) -> Result<u64, BenchError> {
    let all = cdp_adapters::analytics::Window {
        start: now - Duration::days(3650),
        end: now + Duration::days(1),
    };
    store
        .metric_counts(
            cfg.brand_id(),
            all,
            all,
            cdp_adapters::analytics::Resolution::Day,
        )
        .await
        .map(|c| c.events.total())
        .map_err(|e| BenchError::Failed(format!("counting stored events: {e}")))
}

async fn vacuum(url: &str) -> Result<(), BenchError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| BenchError::Failed(format!("postgres: {e}")))?;
    tokio::spawn(conn);
    for table in ["cdp_events", "cdp_searches", "cdp_rollup_pending"]
        .into_iter()
        .chain(cdp_adapters::analytics::ROLLUP_TABLES)
    {
        client
            .batch_execute(&format!("vacuum analyze {POSTGRES_SCHEMA}.{table}"))
            .await
            .map_err(|e| BenchError::Failed(format!("vacuum {table}: {e}")))?;
    }
    Ok(())
}

/// Generates and writes `args.events` events; returns rows per second.
async fn load(
    backend: &str,
    store: &Store,
    cfg: &Config,
    args: &BenchMetricsArgs,
    now: DateTime<Utc>,
) -> Result<f64, BenchError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<EventRow>>(4);
    let (target, days, seed, gen_cfg) = (args.events, args.days, args.seed, cfg.clone());
    let generator =
        tokio::task::spawn_blocking(move || generate(&gen_cfg, target, days, seed, now, &tx));
    let started = Instant::now();
    let mut written = 0u64;
    let mut next_report = 0u64;
    while let Some(batch) = rx.recv().await {
        store
            .write_events(&batch)
            .await
            .map_err(|e| BenchError::Failed(format!("write_events: {e}")))?;
        // Fold the rollups as `cdp serve` would while traffic arrives (a no-op where the
        // store keeps them in the insert's transaction), so the timed reads fold nothing big.
        store
            .flush_rollups()
            .await
            .map_err(|e| BenchError::Failed(format!("flush_rollups: {e}")))?;
        written += batch.len() as u64;
        if written >= next_report {
            eprintln!(
                "{backend}: {written} rows written ({:.0} rows/s)",
                written as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
            next_report += (args.events / 10).max(1);
        }
    }
    generator
        .await
        .map_err(|e| BenchError::Failed(format!("generator: {e}")))?;
    Ok(written as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// Days one synthetic journey spans at most (the demo's sessions are hours to two days apart).
const JOURNEY_DAYS: i64 = 7;

/// An enriched row ordered by timestamp, then by generation order.
struct Pending(DateTime<Utc>, u64, EventRow);

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap and the oldest row must come out first.
        (other.0, other.1).cmp(&(self.0, self.1))
    }
}

/// One visitor's journey ending by `end`, validated and enriched in order as the collector
/// would (each event applied to the profile the previous ones built).
fn journey(cfg: &Config, rng: &mut Rng, visitor: usize, end: DateTime<Utc>) -> Vec<EventRow> {
    let mut profile = None;
    let mut rows = Vec::new();
    for raw in demo::visitor_events(rng, visitor, end, JOURNEY_DAYS as u32) {
        let Some(received) = raw
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc) + Duration::seconds(1))
        else {
            continue;
        };
        let Ok(event) = validate(cfg, &raw, received) else {
            continue;
        };
        let applied = apply(cfg, profile.take(), &event, received);
        if applied.outcome == Outcome::Applied {
            rows.push(applied.row);
        }
        profile = Some(applied.profile);
    }
    rows
}

/// Journeys generated through the core before loading; every visitor replays one of them.
const TEMPLATES: u64 = 4_000;

/// Visitor journeys until `target` events, sent in batches in timestamp order, as live traffic
/// arrives. [`TEMPLATES`] journeys are generated and enriched by the core once; each visitor
/// replays one under its own id, session ids and event ids, shifted so that visitors' journeys
/// end at evenly spaced instants over the `days` before `now`. A heap holds the last week of
/// rows until no later visitor can precede them.
fn generate(
    cfg: &Config,
    target: u64,
    days: u32,
    seed: u64,
    now: DateTime<Utc>,
    tx: &tokio::sync::mpsc::Sender<Vec<EventRow>>,
) {
    let mut rng = Rng::new(seed);
    let templates: Vec<(DateTime<Utc>, Vec<EventRow>)> = (0..TEMPLATES)
        .map(|k| journey(cfg, &mut rng, k as usize, now))
        .filter_map(|rows| Some((rows.iter().map(|r| r.timestamp).max()?, rows)))
        .collect();
    let events: usize = templates.iter().map(|(_, rows)| rows.len()).sum();
    let per_visitor = (events as f64 / templates.len().max(1) as f64).max(1.0);
    let visitors = ((target as f64 / per_visitor).ceil() as u64).max(1);
    let first_end = now - Duration::days(i64::from(days)) + Duration::days(JOURNEY_DAYS);
    let span = (now - first_end).num_seconds().max(1);

    let mut heap = std::collections::BinaryHeap::new();
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    let (mut made, mut order) = (0u64, 0u64);
    let send = |row: EventRow, batch: &mut Vec<EventRow>| -> bool {
        batch.push(row);
        if batch.len() >= LOAD_BATCH {
            let full = std::mem::replace(batch, Vec::with_capacity(LOAD_BATCH));
            return tx.blocking_send(full).is_ok();
        }
        true
    };
    let mut visitor = 0u64;
    while made < target && !templates.is_empty() {
        let offset = span * (visitor.min(visitors) as i64) / visitors as i64;
        let end = first_end + Duration::seconds(offset);
        let (template_end, rows) = &templates[(rng.next_u64() % templates.len() as u64) as usize];
        let shift = end - *template_end;
        let anon = AnonymousId::new(format!("bench-{visitor:09}"));
        for r in rows {
            if made >= target {
                break;
            }
            let mut row = r.clone();
            row.anonymous_id = anon.clone();
            row.session_id = SessionId::new(format!("{}-{}", anon.as_str(), r.session_id.as_str()));
            row.event_id = uuid::Builder::from_random_bytes(
                ((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())).to_be_bytes(),
            )
            .into_uuid();
            row.timestamp += shift;
            row.processed_at += shift;
            heap.push(Pending(row.timestamp, order, row));
            order += 1;
            made += 1;
        }
        visitor += 1;
        // Every later journey starts after this horizon, so older rows are final.
        let horizon = end - Duration::days(JOURNEY_DAYS);
        while heap.peek().is_some_and(|p| p.0 < horizon) {
            if let Some(Pending(_, _, row)) = heap.pop() {
                if !send(row, &mut batch) {
                    return;
                }
            }
        }
    }
    while let Some(Pending(_, _, row)) = heap.pop() {
        if !send(row, &mut batch) {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
}

fn serve_settings(data_dir: &str) -> Result<Settings, BenchError> {
    let mut serve = ServeArgs::defaults()?;
    serve.listen = "127.0.0.1:0".into();
    serve.store.data_dir = data_dir.into();
    Ok(serve.validate()?)
}
