//! `cdp load`: the load benchmark. A command that prints figures, not a test with a time limit.
//!
//! It starts a collector in this process on a loopback port for each backend (SQLite in a temp
//! dir; Postgres in a scratch schema it creates and drops), drives `/collect` with many
//! concurrent connections for a fixed time per phase (single-event requests, then 50-event
//! batches), and prints events/s with p50/p99 request latency. On Postgres it then `COPY`s the
//! same kind of rows into the same table, with the same indexes, as the ceiling a batch
//! insert can hope for. Durability is never relaxed: Postgres keeps its `synchronous_commit`
//! (printed), SQLite keeps WAL with `synchronous = full`. All traffic stays on 127.0.0.1 and
//! every loop is bounded in time and count.

use crate::client::{ClientError, Collector};
use crate::demo::Rng;
use crate::server::{self, StartError};
use crate::settings::{Cli, Command, LoadArgs, Settings, SettingsError};
use cdp_adapters::{PostgresTarget, StoreTarget};
use cdp_core::{apply, validate, Config, EventRow};
use chrono::{SecondsFormat, Utc};
use clap::Parser;
use futures_util::SinkExt;
use serde_json::{json, Value};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests one phase may send at most, whatever its duration.
const MAX_REQUESTS_PER_PHASE: usize = 2_000_000;
/// Events per request in the batch phase.
pub const BATCH_EVENTS: usize = 50;

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Settings for the in-process server were invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The server did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Postgres setup or the COPY failed.
    #[error("postgres: {0}")]
    Postgres(String),
    /// A temp dir could not be made.
    #[error("temp dir: {0}")]
    Io(#[from] std::io::Error),
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Backend name.
    pub backend: String,
    /// What was sent.
    pub name: String,
    /// Events acknowledged per second.
    pub events_per_sec: f64,
    /// Median request latency.
    pub p50: Duration,
    /// 99th percentile request latency.
    pub p99: Duration,
    /// Requests sent.
    pub requests: usize,
    /// Requests not answered 200.
    pub errors: usize,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// `COPY` rows per second into the same Postgres table, when measured.
    pub copy_rows_per_sec: Option<f64>,
    /// Postgres `synchronous_commit` during the run.
    pub synchronous_commit: Option<String>,
    /// Connections used.
    pub connections: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<9} {:<22} {:>12} {:>9} {:>9} {:>9} {:>7}",
            "backend", "phase", "events/s", "p50 ms", "p99 ms", "requests", "errors"
        )?;
        for p in &self.phases {
            writeln!(
                f,
                "{:<9} {:<22} {:>12.0} {:>9.2} {:>9.2} {:>9} {:>7}",
                p.backend,
                p.name,
                p.events_per_sec,
                p.p50.as_secs_f64() * 1000.0,
                p.p99.as_secs_f64() * 1000.0,
                p.requests,
                p.errors
            )?;
        }
        if let Some(copy) = self.copy_rows_per_sec {
            writeln!(
                f,
                "{:<9} {:<22} {:>12.0} rows/s",
                "postgres", "COPY ceiling", copy
            )?;
            if let Some(batch) = self
                .phases
                .iter()
                .find(|p| p.backend == "postgres" && p.name.starts_with("batch"))
            {
                writeln!(
                    f,
                    "postgres batched /collect = {:.0}% of the COPY ceiling",
                    100.0 * batch.events_per_sec / copy
                )?;
            }
        }
        writeln!(
            f,
            "durability: sqlite WAL + synchronous=full; postgres synchronous_commit={}; {} connections over loopback",
            self.synchronous_commit.as_deref().unwrap_or("n/a"),
            self.connections
        )
    }
}

/// Runs every phase and returns the figures.
pub async fn run(args: &LoadArgs) -> Result<Report, LoadError> {
    let mut report = Report {
        connections: args.connections,
        ..Report::default()
    };
    let cfg = Config::southland();

    let dir = tempfile::tempdir()?;
    let settings = serve_settings(&dir.path().display().to_string())?;
    report
        .phases
        .extend(measure_backend("sqlite", &settings, args).await?);

    if !args.sqlite_only {
        let schema = format!("cdp_load_{}", std::process::id());
        let admin = connect(&args.postgres_url).await?;
        admin
            .batch_execute(&format!(
                "drop schema if exists {schema} cascade; create schema {schema}"
            ))
            .await
            .map_err(pg)?;
        report.synchronous_commit = admin
            .query_one("show synchronous_commit", &[])
            .await
            .ok()
            .and_then(|r| r.try_get::<_, String>(0).ok());
        let mut settings = settings.clone();
        settings.store.target = StoreTarget::Postgres(
            PostgresTarget::new(args.postgres_url.clone()).with_schema(schema.clone()),
        );
        let result = measure_backend("postgres", &settings, args).await;
        let copy = match &result {
            Ok(phases) => {
                let rows = phases
                    .iter()
                    .find(|p| p.name.starts_with("batch"))
                    .map_or(20_000, |p| {
                        (p.events_per_sec * args.seconds as f64) as usize
                    })
                    .clamp(20_000, 300_000);
                copy_ceiling(&admin, &schema, &cfg, rows, args.visitors).await
            }
            Err(_) => Ok(0.0),
        };
        let _ = admin
            .batch_execute(&format!("drop schema if exists {schema} cascade"))
            .await;
        report.phases.extend(result?);
        report.copy_rows_per_sec = Some(copy?);
    }
    Ok(report)
}

fn serve_settings(data_dir: &str) -> Result<Settings, LoadError> {
    let argv = [
        "cdp",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data_dir,
    ];
    match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Serve(a)) => Ok(a.validate()?),
        _ => Err(LoadError::Settings(SettingsError {
            problems: vec!["internal: serve arguments did not parse".into()],
        })),
    }
}

async fn measure_backend(
    backend: &str,
    settings: &Settings,
    args: &LoadArgs,
) -> Result<Vec<Phase>, LoadError> {
    let running = server::start(settings).await?;
    let collector = Collector::new(&format!("http://{}", running.addr))?;
    let mut phases = Vec::new();
    for (name, per_request) in [("single-event", 1), ("batch of 50", BATCH_EVENTS)] {
        eprintln!(
            "{backend}: {name} for {}s with {} connections...",
            args.seconds, args.connections
        );
        phases.push(drive(backend, name, &collector, per_request, args).await);
    }
    running.stop().await;
    Ok(phases)
}

/// Drives the collector from `connections` tasks until the phase time is up.
async fn drive(
    backend: &str,
    name: &str,
    collector: &Collector,
    per_request: usize,
    args: &LoadArgs,
) -> Phase {
    let deadline = Instant::now() + Duration::from_secs(args.seconds.max(1));
    let budget = Arc::new(std::sync::atomic::AtomicUsize::new(MAX_REQUESTS_PER_PHASE));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.connections.max(1) {
        let collector = collector.clone();
        let budget = budget.clone();
        let visitors = args.visitors.max(1) as u64;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(0x10ad ^ (c as u64) << 20);
            let mut latencies = Vec::new();
            let (mut ok_events, mut errors) = (0usize, 0usize);
            while Instant::now() < deadline
                && budget
                    .fetch_update(
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                        |b| b.checked_sub(1),
                    )
                    .is_ok()
            {
                let events: Vec<Value> = (0..per_request)
                    .map(|_| load_event(&mut rng, visitors))
                    .collect();
                let body = if per_request == 1 {
                    serde_json::to_vec(&events[0])
                } else {
                    serde_json::to_vec(&events)
                }
                .unwrap_or_default();
                let t = Instant::now();
                let status = collector.post_raw(body).await;
                latencies.push(t.elapsed());
                match status {
                    Ok(s) if s.as_u16() == 200 => ok_events += per_request,
                    _ => errors += 1,
                }
            }
            (latencies, ok_events, errors)
        }));
    }
    let mut latencies = Vec::new();
    let (mut events, mut errors) = (0, 0);
    for t in tasks {
        if let Ok((l, e, err)) = t.await {
            latencies.extend(l);
            events += e;
            errors += err;
        }
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Phase {
        backend: backend.to_owned(),
        name: name.to_owned(),
        events_per_sec: events as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        requests: latencies.len(),
        errors,
    }
}

const PRODUCTS: [&str; 6] = [
    "hen-helper",
    "litter-life",
    "mother-load",
    "jump-start",
    "big-ole-bird",
    "catalyst-broiler",
];

/// A typical tracker event for one of `visitors` visitors, timestamped now.
fn load_event(rng: &mut Rng, visitors: u64) -> Value {
    let visitor = rng.below(visitors);
    let (event, path, props) = match rng.below(4) {
        0 => ("page_view", "/backyard/coop-care".to_owned(), json!({})),
        1 => {
            let p = *rng.pick(&PRODUCTS);
            (
                "product_view",
                format!("/products/{p}"),
                json!({"product_id": p, "product_handle": p}),
            )
        }
        2 => (
            "search_performed",
            "/search".to_owned(),
            json!({"query": "litter ammonia", "results_count": 12}),
        ),
        _ => (
            "tunnel_viewed",
            "/tunnels/lawn-garden".to_owned(),
            json!({"tunnel": "lawn-garden"}),
        ),
    };
    json!({
        "v": 1,
        "event": event,
        "event_id": rng.uuid(),
        "anonymous_id": format!("load-{visitor:08}"),
        "session_id": format!("s-{visitor:08}"),
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "page_url": format!("https://www.southlandorganics.com{path}"),
        "page_title": "Southland Organics",
        "utm_source": "google",
        "properties": props,
    })
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, LoadError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(pg)?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "load: postgres connection ended");
        }
    });
    Ok(client)
}

fn pg(e: tokio_postgres::Error) -> LoadError {
    LoadError::Postgres(e.to_string())
}

const COPY_COLUMNS: &str =
    "brand_id, event_id, event_type, anonymous_id, session_id, \"timestamp\", \
     page_url, page_title, utm_source, properties, predicted_persona, persona_confidence, \
     explicit_persona, current_stage, stage_confidence, persona_scores, processed_at";

/// Rows per second of one plain `COPY` of `rows` enriched rows into the schema's `cdp_events`.
async fn copy_ceiling(
    client: &tokio_postgres::Client,
    schema: &str,
    cfg: &Config,
    rows: usize,
    visitors: usize,
) -> Result<f64, LoadError> {
    eprintln!("postgres: COPY of {rows} rows...");
    let now = Utc::now();
    let mut rng = Rng::new(0xc0b1);
    let enriched: Vec<EventRow> = (0..rows)
        .filter_map(|_| validate(cfg, &load_event(&mut rng, visitors.max(1) as u64), now).ok())
        .map(|e| apply(cfg, None, &e, now).row)
        .collect();
    let mut csv = String::with_capacity(enriched.len() * 400);
    for r in &enriched {
        let fields: [Option<String>; 17] = [
            Some(r.brand_id.to_string()),
            Some(r.event_id.hyphenated().to_string()),
            Some(r.event_type.as_str().to_owned()),
            Some(r.anonymous_id.to_string()),
            Some(r.session_id.to_string()),
            Some(r.timestamp.to_rfc3339()),
            Some(r.page_url.clone()),
            r.page_title.clone(),
            r.utm_source.clone(),
            Some(Value::Object(r.properties.clone()).to_string()),
            Some(r.predicted_persona.to_string()),
            Some(r.persona_confidence.to_string()),
            r.explicit_persona.as_ref().map(ToString::to_string),
            serde_json::to_value(r.current_stage)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned)),
            Some(r.stage_confidence.to_string()),
            serde_json::to_string(&r.persona_scores).ok(),
            Some(r.processed_at.to_rfc3339()),
        ];
        let line: Vec<String> = fields
            .iter()
            .map(|f| match f {
                Some(s) => format!("\"{}\"", s.replace('"', "\"\"")),
                None => String::new(),
            })
            .collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    let started = Instant::now();
    let sink = client
        .copy_in(&format!(
            "copy {schema}.cdp_events ({COPY_COLUMNS}) from stdin (format csv)"
        ))
        .await
        .map_err(pg)?;
    let mut sink = Box::pin(sink);
    sink.send(std::io::Cursor::new(csv.into_bytes()))
        .await
        .map_err(pg)?;
    let copied = sink.as_mut().finish().await.map_err(pg)?;
    Ok(copied as f64 / started.elapsed().as_secs_f64().max(1e-9))
}
