//! `cdp load`: the load benchmark. A command that prints figures, not a test with a time limit.
//!
//! It starts a collector in this process on a loopback port for each backend (SQLite in a temp
//! dir; Postgres in a scratch schema it creates and drops), drives `/collect` with many
//! concurrent connections for a fixed time per phase (single-event requests, then 50-event
//! batches), and prints events/s with p50/p99 request latency. On Postgres it then `COPY`s the
//! same kind of rows into the same table, with the same indexes and triggers, as the ceiling a
//! batch insert can hope for. Postgres folds its dashboard rollups behind the event stream
//! (the server does it every 2 s, during the phase, on the same cores), so each Postgres
//! phase also reports what was left to fold when it ended and how long that took, and the
//! `COPY` is reported with and without folding its rows. Durability is never relaxed: Postgres keeps its
//! `synchronous_commit` (printed), SQLite keeps WAL with `synchronous = full`. All traffic
//! stays on 127.0.0.1 and every loop is bounded in time and count.
//!
//! The load generator shares the machine with the server, so it is kept cheap and its cost is
//! shown: one kept-alive HTTP/1.1 connection per client task (hyper, no pool), bodies written
//! straight into bytes from prepared fragments, and the clients on their own runtime whose
//! threads are named `cdp-load-client`, so each phase can report which share of the machine's
//! CPU went to the clients, to the server, to Postgres and to everything else (from `/proc`).

use crate::demo::Rng;
use bytes::Bytes;
use cdp_adapters::{PostgresTarget, StoreTarget};
use cdp_api::server::{self, StartError};
use cdp_api::settings::{EventIds, LoadArgs, LoadPhase, ServeArgs, Settings, SettingsError};
use cdp_core::{apply, validate, Config, EventRow};
use chrono::{SecondsFormat, Utc};
use futures_util::SinkExt;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests one phase may send at most, whatever its duration.
const MAX_REQUESTS_PER_PHASE: usize = 2_000_000;
/// Events per request in the batch phase.
pub const BATCH_EVENTS: usize = 50;
/// Worker threads of the clients' runtime.
const CLIENT_THREADS: usize = 2;
/// The name of the clients' threads, by which their CPU time is told apart.
const CLIENT_THREAD: &str = "cdp-load-client";
/// The `application_name` of the measured server's Postgres connections, by which their
/// backends' CPU time is told apart from other users of the same server.
const PG_APPLICATION: &str = "cdp-load";

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Settings for the in-process server were invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The server did not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Postgres setup or the COPY failed.
    #[error("postgres: {0}")]
    Postgres(String),
    /// A temp dir or the clients' runtime could not be made.
    #[error("load: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the machine's CPU went during a phase, as fractions of all cores over its duration.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuShare {
    /// The load generator's threads.
    pub client: f64,
    /// The rest of this process: the collector.
    pub server: f64,
    /// The measured server's Postgres backends and Postgres' own background processes.
    pub postgres: f64,
    /// Everything else on the machine.
    pub other: f64,
    /// Idle (including I/O wait).
    pub idle: f64,
}

/// One measured phase.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Backend name.
    pub backend: String,
    /// What was sent.
    pub name: String,
    /// Events accepted as new per second (duplicates and rejections are not counted).
    pub events_per_sec: f64,
    /// Median request latency.
    pub p50: Duration,
    /// 99th percentile request latency.
    pub p99: Duration,
    /// Requests sent.
    pub requests: usize,
    /// Requests not answered 200.
    pub errors: usize,
    /// Events in answered requests that were not accepted as new.
    pub not_accepted: usize,
    /// Where the CPU went, when `/proc` could be read.
    pub cpu: Option<CpuShare>,
    /// Postgres: the events still waiting to be folded into the rollups when the phase ended,
    /// and how long folding them took (the fold runs during the phase, in the server).
    pub rollup_backlog: Option<(u64, Duration)>,
    /// This process's memory and the server's profile cache when the phase ended.
    pub memory: Option<Memory>,
}

/// Memory when a phase ended: the whole process (server and load clients; the clients hold
/// little), and the profile cache as `/health` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    /// Resident set, MiB.
    pub rss_mib: f64,
    /// Highest resident set so far, MiB.
    pub peak_mib: f64,
    /// Profiles cached.
    pub cache_entries: u64,
    /// Their estimated size, MiB.
    pub cache_mib: f64,
    /// Cache hit rate since the server started.
    pub hit_rate: Option<f64>,
}

impl Memory {
    /// Reads `/proc/self/status` (Linux) and the server's `/health`.
    async fn take(addr: SocketAddr) -> Option<Memory> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib = |key: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        };
        let health: Value = reqwest::get(format!("http://{addr}/health"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let cache = &health["profile_cache"];
        Some(Memory {
            rss_mib: kib("VmRSS:")? / 1024.0,
            peak_mib: kib("VmHWM:")? / 1024.0,
            cache_entries: cache["entries"].as_u64()?,
            cache_mib: cache["bytes"].as_f64()? / (1024.0 * 1024.0),
            hit_rate: cache["hit_rate"].as_f64(),
        })
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// `COPY` rows per second into the same Postgres table, when measured.
    pub copy_rows_per_sec: Option<f64>,
    /// The same rows per second counting the fold of their rollups after the `COPY`.
    pub copy_and_fold_rows_per_sec: Option<f64>,
    /// Postgres `synchronous_commit` during the run.
    pub synchronous_commit: Option<String>,
    /// Connections used.
    pub connections: usize,
    /// Writer shards per backend.
    pub shards: Vec<(String, usize)>,
    /// The kind of event ids sent.
    pub event_ids: Option<EventIds>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        writeln!(
            f,
            "{:<9} {:<14} {:>9} {:>8} {:>8} {:>9} {:>6}   cpu: {:>6} {:>6} {:>6} {:>6} {:>6}   µs/event: {:>6} {:>6}",
            "backend",
            "phase",
            "events/s",
            "p50 ms",
            "p99 ms",
            "requests",
            "errors",
            "client",
            "server",
            "pg",
            "other",
            "idle",
            "server",
            "pg"
        )?;
        for p in &self.phases {
            write!(
                f,
                "{:<9} {:<14} {:>9.0} {:>8.2} {:>8.2} {:>9} {:>6}",
                p.backend,
                p.name,
                p.events_per_sec,
                p.p50.as_secs_f64() * 1000.0,
                p.p99.as_secs_f64() * 1000.0,
                p.requests,
                p.errors
            )?;
            // CPU time per acknowledged event: unlike events/s, it hardly moves when other
            // work on the machine takes cores away.
            let per_event = |share: f64| share * cores * 1e6 / p.events_per_sec.max(1e-9);
            match p.cpu {
                Some(c) => writeln!(
                    f,
                    "        {:>5.0}% {:>5.0}% {:>5.0}% {:>5.0}% {:>5.0}%             {:>6.0} {:>6.0}",
                    c.client * 100.0,
                    c.server * 100.0,
                    c.postgres * 100.0,
                    c.other * 100.0,
                    c.idle * 100.0,
                    per_event(c.server),
                    per_event(c.postgres)
                )?,
                None => writeln!(f)?,
            }
            if p.not_accepted > 0 {
                writeln!(
                    f,
                    "{:<9}   {} events were answered duplicate or rejected and are not counted",
                    "", p.not_accepted
                )?;
            }
            if let Some(m) = &p.memory {
                writeln!(
                    f,
                    "{:<9}   memory: rss {:.0} MiB (peak {:.0}); profile cache {} profiles, {:.1} MiB, hit rate {}",
                    "",
                    m.rss_mib,
                    m.peak_mib,
                    m.cache_entries,
                    m.cache_mib,
                    m.hit_rate.map_or("n/a".to_owned(), |r| format!("{:.1}%", r * 100.0))
                )?;
            }
            if let Some((pending, fold)) = p.rollup_backlog {
                writeln!(
                    f,
                    "{:<9}   rollups: {pending} events not yet folded when the phase ended, folded in {:.0} ms",
                    "",
                    fold.as_secs_f64() * 1000.0
                )?;
            }
        }
        if let Some(copy) = self.copy_rows_per_sec {
            writeln!(
                f,
                "{:<9} {:<26} {:>9.0} rows/s",
                "postgres", "COPY ceiling", copy
            )?;
            if let Some(folded) = self.copy_and_fold_rows_per_sec {
                writeln!(
                    f,
                    "{:<9} {:<14} {:>9.0} rows/s (the COPY, then folding its rollups)",
                    "postgres", "COPY + fold", folded
                )?;
            }
            if let Some(share) = self.batch_share_of_copy() {
                writeln!(
                    f,
                    "postgres batched /collect = {:.0}% of the COPY ceiling",
                    100.0 * share
                )?;
            }
        }
        let shards: Vec<String> = self
            .shards
            .iter()
            .map(|(b, n)| format!("{b} {n}"))
            .collect();
        writeln!(
            f,
            "durability: sqlite WAL + synchronous=full; postgres synchronous_commit={}; {} \
             connections over loopback; writer shards: {}; event ids: {}; cpu in % of all {} cores",
            self.synchronous_commit.as_deref().unwrap_or("n/a"),
            self.connections,
            shards.join(", "),
            self.event_ids.map_or("n/a".to_owned(), |k| k.to_string()),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )
    }
}

/// The medians of several runs: each phase's events/s and p99, the COPY ceiling, and the
/// ratios that compare two things, taken within each run before the median.
pub struct Summary<'a>(pub &'a [Report]);

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

impl Report {
    fn phase(&self, backend: &str, prefix: &str) -> Option<&Phase> {
        self.phases
            .iter()
            .find(|p| p.backend == backend && p.name.starts_with(prefix))
    }

    /// Batched events/s as a share of the COPY ceiling of the same run.
    fn batch_share_of_copy(&self) -> Option<f64> {
        let copy = self.copy_rows_per_sec.filter(|c| *c > 0.0)?;
        Some(self.phase("postgres", "batch")?.events_per_sec / copy)
    }

    /// The identity phase's events/s over the plain single-event phase's, same run.
    fn identity_over_plain(&self, backend: &str) -> Option<f64> {
        let plain = self.phase(backend, "single-event")?.events_per_sec;
        let identity = self.phase(backend, IDENTITY_PHASE)?.events_per_sec;
        (plain > 0.0).then_some(identity / plain)
    }

    /// SQLite's events/s over Postgres' for a phase of the same run.
    fn sqlite_over_postgres(&self, prefix: &str) -> Option<f64> {
        let pg = self.phase("postgres", prefix)?.events_per_sec;
        let sqlite = self.phase("sqlite", prefix)?.events_per_sec;
        (pg > 0.0).then_some(sqlite / pg)
    }
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs = self.0;
        let Some(first) = runs.first() else {
            return Ok(());
        };
        writeln!(f, "median of {} runs:", runs.len())?;
        writeln!(
            f,
            "{:<9} {:<26} {:>9} {:>8}   events/s of each run",
            "backend", "phase", "events/s", "p99 ms"
        )?;
        for p in &first.phases {
            let same: Vec<&Phase> = runs
                .iter()
                .filter_map(|r| r.phase(&p.backend, &p.name))
                .collect();
            let rates: Vec<f64> = same.iter().map(|q| q.events_per_sec).collect();
            let each: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
            writeln!(
                f,
                "{:<9} {:<26} {:>9.0} {:>8.2}   {}",
                p.backend,
                p.name,
                median(rates).unwrap_or(0.0),
                median(same.iter().map(|q| q.p99.as_secs_f64() * 1000.0).collect()).unwrap_or(0.0),
                each.join(" ")
            )?;
        }
        if let Some(copy) = median(runs.iter().filter_map(|r| r.copy_rows_per_sec).collect()) {
            writeln!(
                f,
                "{:<9} {:<26} {:>9.0} rows/s",
                "postgres", "COPY ceiling", copy
            )?;
        }
        write_ratio(
            f,
            "postgres batched /collect / COPY ceiling",
            runs.iter().map(Report::batch_share_of_copy).collect(),
        )?;
        write_ratio(
            f,
            "sqlite / postgres, single-event",
            runs.iter()
                .map(|r| r.sqlite_over_postgres("single"))
                .collect(),
        )?;
        write_ratio(
            f,
            "sqlite / postgres, batch of 50",
            runs.iter()
                .map(|r| r.sqlite_over_postgres("batch"))
                .collect(),
        )?;
        for backend in ["sqlite", "postgres"] {
            write_ratio(
                f,
                &format!("{backend}: 5% identity / plain, single-event"),
                runs.iter()
                    .map(|r| r.identity_over_plain(backend))
                    .collect(),
            )?;
        }
        Ok(())
    }
}

/// One ratio line of the summary: its median and each run's value (nothing when no run has it).
fn write_ratio(f: &mut fmt::Formatter<'_>, name: &str, each: Vec<Option<f64>>) -> fmt::Result {
    let each: Vec<f64> = each.into_iter().flatten().collect();
    let listed: Vec<String> = each.iter().map(|r| format!("{:.0}%", r * 100.0)).collect();
    match median(each) {
        Some(m) => writeln!(
            f,
            "{name}: median {:.0}% (each run: {})",
            m * 100.0,
            listed.join(" ")
        ),
        None => Ok(()),
    }
}

/// Makes `args.rounds` whole runs one after another, handing each report to `each` as soon as
/// it is measured; returns them all (for [`Summary`]).
pub async fn run_rounds(
    args: &LoadArgs,
    mut each: impl FnMut(&Report),
) -> Result<Vec<Report>, LoadError> {
    let mut reports = Vec::new();
    for round in 1..=args.rounds.max(1) {
        if args.rounds > 1 {
            eprintln!("round {round} of {}", args.rounds);
        }
        let report = run(args).await?;
        each(&report);
        reports.push(report);
    }
    Ok(reports)
}

/// Runs every phase and returns the figures.
pub async fn run(args: &LoadArgs) -> Result<Report, LoadError> {
    let mut report = Report {
        connections: args.connections,
        event_ids: Some(args.event_ids),
        ..Report::default()
    };
    let cfg = Config::southland();

    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().display().to_string();
    if !args.postgres_only {
        let settings = serve_settings(&data_dir, None, args)?;
        report
            .shards
            .push(("sqlite".into(), settings.writer.shards));
        report
            .phases
            .extend(measure_backend("sqlite", &settings, args, None).await?);
    }

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
        let mut settings = serve_settings(&data_dir, Some(&args.postgres_url), args)?;
        let separator = if args.postgres_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!(
            "{}{separator}application_name={PG_APPLICATION}",
            args.postgres_url
        );
        settings.store.target =
            StoreTarget::Postgres(PostgresTarget::new(url).with_schema(schema.clone()));
        report
            .shards
            .push(("postgres".into(), settings.writer.shards));
        let result = measure_backend("postgres", &settings, args, Some((&admin, &schema))).await;
        let copy = match &result {
            Ok(phases) => {
                let rows = phases
                    .iter()
                    .find(|p| p.name.starts_with("batch"))
                    .map_or(20_000, |p| {
                        (p.events_per_sec * args.seconds as f64) as usize
                    })
                    .clamp(20_000, 300_000);
                copy_ceiling(&admin, &schema, &settings.store.target, &cfg, rows, args).await
            }
            Err(_) => Ok((0.0, 0.0)),
        };
        let _ = admin
            .batch_execute(&format!("drop schema if exists {schema} cascade"))
            .await;
        report.phases.extend(result?);
        let (copy, copy_and_fold) = copy?;
        report.copy_rows_per_sec = Some(copy);
        report.copy_and_fold_rows_per_sec = Some(copy_and_fold);
    }
    Ok(report)
}

/// `cdp serve` settings for the backend, parsed like the real command line so every default
/// (such as the writer shards per backend) is the one `cdp serve` would use.
fn serve_settings(
    data_dir: &str,
    database_url: Option<&str>,
    args: &LoadArgs,
) -> Result<Settings, LoadError> {
    let mut serve = ServeArgs::defaults()?;
    serve.listen = "127.0.0.1:0".into();
    serve.store.data_dir = data_dir.into();
    serve.store.database_url = database_url.map(str::to_owned);
    if let Some(n) = args.writer_shards {
        serve.writer_shards = n;
    }
    if let Some(ms) = args.writer_linger_ms {
        serve.writer_linger_ms = ms;
    }
    if let Some(n) = args.writer_batch_events {
        serve.writer_batch_events = n;
    }
    Ok(serve.validate()?)
}

async fn measure_backend(
    backend: &str,
    settings: &Settings,
    args: &LoadArgs,
    postgres: Option<(&tokio_postgres::Client, &str)>,
) -> Result<Vec<Phase>, LoadError> {
    let admin = postgres.map(|(admin, _)| admin);
    let running = server::start(settings).await?;
    let mut phases = Vec::new();
    for phase in &args.phases {
        let (name, per_request, identity) = match phase {
            LoadPhase::Single => ("single-event", 1, 0),
            LoadPhase::Identity => (IDENTITY_PHASE, 1, IDENTITY_PER_MILLE),
            LoadPhase::Batch => ("batch of 50", BATCH_EVENTS, 0),
        };
        eprintln!(
            "{backend}: {name} for {}s with {} connections...",
            args.seconds, args.connections
        );
        let mut phase = measure_phase(
            backend,
            name,
            running.addr,
            (per_request, identity),
            args,
            admin,
        )
        .await?;
        if let Some((admin, schema)) = postgres {
            phase.rollup_backlog = Some(fold_backlog(admin, schema, &settings.store.target).await?);
        }
        phase.memory = Memory::take(running.addr).await;
        phases.push(phase);
    }
    running.stop().await;
    Ok(phases)
}

/// The phase of single events of which 5% are identity events (an `identify` with the
/// visitor's email and customer id, so each makes two identity edges): issue 15 asks it to
/// hold at least 90% of the plain single-event figure.
pub const IDENTITY_PHASE: &str = "single-event, 5% identity";

/// Identity events per thousand in [`IDENTITY_PHASE`].
const IDENTITY_PER_MILLE: u64 = 50;

/// Runs one phase's clients on their own runtime and threads, and samples the CPU around it.
/// `shape` is the events per request and the identity events per thousand.
async fn measure_phase(
    backend: &str,
    name: &str,
    addr: SocketAddr,
    shape: (usize, u64),
    args: &LoadArgs,
    admin: Option<&tokio_postgres::Client>,
) -> Result<Phase, LoadError> {
    let (done, result) = tokio::sync::oneshot::channel();
    let args_owned = args.clone();
    let before = CpuSample::take();
    let started = Instant::now();
    std::thread::Builder::new()
        .name(CLIENT_THREAD.into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(CLIENT_THREADS)
                .thread_name(CLIENT_THREAD)
                .enable_all()
                .build();
            // The clients' CPU is read before their runtime (and its threads) goes away.
            let outcome = match runtime {
                Ok(rt) => Ok(rt.block_on(async {
                    let totals = drive(addr, shape, &args_owned).await;
                    (totals, client_ticks())
                })),
                Err(e) => Err(e),
            };
            let _ = done.send(outcome);
        })?;
    let (totals, client) = result
        .await
        .map_err(|_| std::io::Error::other("the load clients' thread panicked"))??;
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let ours = match admin {
        Some(admin) => our_postgres_pids(admin).await,
        None => HashSet::new(),
    };
    let cpu = match (before, CpuSample::take(), client) {
        (Some(a), Some(b), Some(client)) => b.share_since(&a, client, &ours),
        _ => None,
    };
    let mut latencies = totals.latencies;
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Phase {
        backend: backend.to_owned(),
        name: name.to_owned(),
        events_per_sec: totals.events as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        requests: latencies.len(),
        errors: totals.errors,
        not_accepted: totals.not_accepted,
        cpu,
        rollup_backlog: None,
        memory: None,
    })
}

/// The events a phase left pending for the rollups, and how long folding them takes (with the
/// core's fold, as `cdp serve` does, on a store of the same schema).
async fn fold_backlog(
    admin: &tokio_postgres::Client,
    schema: &str,
    target: &StoreTarget,
) -> Result<(u64, Duration), LoadError> {
    let pending: i64 = admin
        .query_one(
            &format!("select count(*) from {schema}.cdp_rollup_pending"),
            &[],
        )
        .await
        .map_err(pg)?
        .get(0);
    let store = cdp_adapters::Store::open(target)
        .await
        .map_err(|e| LoadError::Postgres(format!("opening the store to fold: {e}")))?;
    let started = Instant::now();
    store
        .flush_rollups()
        .await
        .map_err(|e| LoadError::Postgres(format!("folding the rollups: {e}")))?;
    Ok((u64::try_from(pending).unwrap_or(0), started.elapsed()))
}

/// What the clients of a phase counted.
#[derive(Default)]
struct Totals {
    latencies: Vec<Duration>,
    /// Events the collector accepted as new.
    events: usize,
    /// Requests not answered 200.
    errors: usize,
    /// Events in 200 answers that were not accepted as new (duplicates or rejected).
    not_accepted: usize,
}

/// Drives the collector from `connections` tasks until the phase time is up.
async fn drive(addr: SocketAddr, shape: (usize, u64), args: &LoadArgs) -> Totals {
    let (per_request, identity) = shape;
    let deadline = Instant::now() + Duration::from_secs(args.seconds.max(1));
    let budget = Arc::new(AtomicUsize::new(MAX_REQUESTS_PER_PHASE));
    let mut tasks = Vec::new();
    for c in 0..args.connections.max(1) {
        let budget = budget.clone();
        let visitors = args.visitors.max(1) as u64;
        let ids = args.event_ids;
        tasks.push(tokio::spawn(async move {
            let mut bodies = Bodies::new(client_seed(c, per_request), visitors, ids);
            bodies.identity_per_mille = identity;
            let mut totals = Totals::default();
            let mut conn: Option<SendRequest<Full<Bytes>>> = None;
            while Instant::now() < deadline
                && budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
                    .is_ok()
            {
                let body = bodies.next(per_request);
                let t = Instant::now();
                let answer = post(&mut conn, addr, body).await;
                totals.latencies.push(t.elapsed());
                match answer {
                    Some(accepted) => {
                        totals.events += accepted;
                        totals.not_accepted += per_request.saturating_sub(accepted);
                    }
                    None => totals.errors += 1,
                }
            }
            totals
        }));
    }
    let mut all = Totals::default();
    for t in tasks {
        if let Ok(t) = t.await {
            all.latencies.extend(t.latencies);
            all.events += t.events;
            all.errors += t.errors;
            all.not_accepted += t.not_accepted;
        }
    }
    all
}

/// The seed of client `c`'s events in a phase of `per_request` events per request: every
/// client and every phase draws its own event ids, so no phase re-sends another's events
/// (duplicates cost the collector almost nothing and would flatter the figures).
fn client_seed(c: usize, per_request: usize) -> u64 {
    0x10ad ^ ((c as u64) << 20) ^ ((per_request as u64) << 40)
}

/// The `accepted` count at the start of a `/collect` answer (`{"accepted":N,...`).
fn accepted_in(body: &[u8]) -> Option<usize> {
    let rest = body.strip_prefix(b"{\"accepted\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Posts one body on the task's kept-alive connection (opening it when needed); the events
/// the collector accepted as new when it answered 200, `None` otherwise. A failed connection
/// is dropped and reopened by the next post.
async fn post(
    conn: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    body: Bytes,
) -> Option<usize> {
    let sender = match conn {
        Some(s) if !s.is_closed() => s,
        _ => conn.insert(open(addr).await?),
    };
    let request = hyper::Request::post("/collect")
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body));
    let request = request.ok()?;
    if sender.ready().await.is_err() {
        *conn = None;
        return None;
    }
    match sender.send_request(request).await {
        Ok(resp) => {
            let ok = resp.status() == hyper::StatusCode::OK;
            // Read the whole answer so the connection is ready for the next request.
            let body = resp.into_body().collect().await.ok()?.to_bytes();
            if ok {
                accepted_in(&body)
            } else {
                None
            }
        }
        Err(_) => {
            *conn = None;
            None
        }
    }
}

async fn open(addr: SocketAddr) -> Option<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Some(sender)
}

const PRODUCTS: [&str; 6] = [
    "hen-helper",
    "litter-life",
    "mother-load",
    "jump-start",
    "big-ole-bird",
    "catalyst-broiler",
];

/// Typical tracker events, written straight into a request body: the fields after the
/// timestamp are prepared once per kind of event, so a body costs little more than its
/// random ids.
struct Bodies {
    rng: Rng,
    visitors: u64,
    ids: EventIds,
    buf: Vec<u8>,
    /// `(event type, the fields after the timestamp)` for each kind.
    kinds: Vec<(&'static str, String)>,
    /// Identity events per thousand (see [`IDENTITY_PHASE`]).
    identity_per_mille: u64,
}

impl Bodies {
    fn new(seed: u64, visitors: u64, ids: EventIds) -> Bodies {
        let site = "https://www.southlandorganics.com";
        let tail = |path: &str, props: &str| {
            format!(
                r#""page_url":"{site}{path}","page_title":"Southland Organics","utm_source":"google","properties":{props}"#
            )
        };
        let mut kinds = vec![
            ("page_view", tail("/backyard/coop-care", "{}")),
            (
                "search_performed",
                tail(
                    "/search",
                    r#"{"query":"litter ammonia","results_count":12}"#,
                ),
            ),
            (
                "tunnel_viewed",
                tail("/tunnels/lawn-garden", r#"{"tunnel":"lawn-garden"}"#),
            ),
        ];
        for p in PRODUCTS {
            kinds.push((
                "product_view",
                tail(
                    &format!("/products/{p}"),
                    &format!(r#"{{"product_id":"{p}","product_handle":"{p}"}}"#),
                ),
            ));
        }
        Bodies {
            rng: Rng::new(seed),
            visitors,
            ids,
            buf: Vec::with_capacity(64 * 1024),
            kinds,
            identity_per_mille: 0,
        }
    }

    /// A body of `events` events (a bare object for one), timestamped now.
    fn next(&mut self, events: usize) -> Bytes {
        let now = Utc::now();
        let timestamp = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let millis = now.timestamp_millis() as u64;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if events != 1 {
            buf.push(b'[');
        }
        for i in 0..events {
            if i > 0 {
                buf.push(b',');
            }
            self.write_event(&mut buf, &timestamp, millis);
        }
        if events != 1 {
            buf.push(b']');
        }
        let body = Bytes::copy_from_slice(&buf);
        self.buf = buf;
        body
    }

    /// One event: a page view, a product view, a search or a tunnel view, a quarter each.
    fn write_event(&mut self, buf: &mut Vec<u8>, timestamp: &str, millis: u64) {
        let visitor = self.rng.below(self.visitors);
        let kind = match self.rng.below(4) {
            0 => 0,
            1 => 3 + self.rng.below(PRODUCTS.len() as u64) as usize,
            2 => 1,
            _ => 2,
        };
        let (event, tail) = &self.kinds[kind];
        let bytes = ((u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64()))
            .to_be_bytes();
        let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let builder = match self.ids {
            EventIds::V7 => {
                let random: [u8; 10] = bytes[..10].try_into().unwrap_or_default();
                uuid::Builder::from_unix_timestamp_millis(millis, &random)
            }
            EventIds::V4 => uuid::Builder::from_random_bytes(bytes),
        };
        let id = builder.into_uuid().hyphenated().encode_lower(&mut id);
        if self.identity_per_mille > 0 && self.rng.below(1000) < self.identity_per_mille {
            // Writing into a Vec cannot fail.
            let _ = write!(
                buf,
                r#"{{"v":1,"event":"identify","event_id":"{id}","anonymous_id":"load-{visitor:08}","session_id":"s-{visitor:08}","timestamp":"{timestamp}","page_url":"https://www.southlandorganics.com/account","customer_id":"c-{visitor:08}","properties":{{"email":"load-{visitor:08}@example.org"}}}}"#
            );
            return;
        }
        // Writing into a Vec cannot fail.
        let _ = write!(
            buf,
            r#"{{"v":1,"event":"{event}","event_id":"{id}","anonymous_id":"load-{visitor:08}","session_id":"s-{visitor:08}","timestamp":"{timestamp}",{tail}}}"#
        );
    }
}

/// CPU ticks of the live threads named [`CLIENT_THREAD`]: the clients' runtime is made for
/// one phase, so this is that phase's client time.
fn client_ticks() -> Option<u64> {
    let mut client = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        if let Some((comm, ticks)) = proc_stat_ticks(&stat) {
            // The kernel keeps 15 bytes of a thread's name; this one is exactly that long.
            if comm == CLIENT_THREAD {
                client += ticks;
            }
        }
    }
    Some(client)
}

/// The measured server's Postgres backends (by `application_name`) and Postgres' background
/// processes (WAL writer, checkpointer, autovacuum...), which work for whoever writes.
async fn our_postgres_pids(admin: &tokio_postgres::Client) -> HashSet<u32> {
    let rows = admin
        .query(
            "select pid from pg_stat_activity \
             where application_name = $1 or backend_type <> 'client backend'",
            &[&PG_APPLICATION],
        )
        .await
        .unwrap_or_default();
    rows.iter()
        .filter_map(|r| r.try_get::<_, i32>(0).ok())
        .filter_map(|pid| u32::try_from(pid).ok())
        .collect()
}

/// Cumulative CPU counters read from `/proc`, in clock ticks.
#[derive(Debug, Clone)]
struct CpuSample {
    process: u64,
    /// Ticks of every `postgres` process by pid; which of them were ours is known only after
    /// the phase (the pool may open connections during it).
    postgres: HashMap<u32, u64>,
    machine_busy: u64,
    machine_total: u64,
}

impl CpuSample {
    /// Reads the counters; `None` where `/proc` is not there (not Linux).
    fn take() -> Option<CpuSample> {
        let process = proc_stat_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?.1;
        let mut postgres = HashMap::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if let Some((comm, ticks)) = proc_stat_ticks(&stat) {
                if comm == "postgres" {
                    postgres.insert(pid, ticks);
                }
            }
        }
        let (machine_busy, machine_total) =
            machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?;
        Some(CpuSample {
            process,
            postgres,
            machine_busy,
            machine_total,
        })
    }

    /// The shares between `earlier` and this sample, `client` ticks of which were the
    /// clients' and the Postgres processes `ours` the measured server's.
    fn share_since(
        &self,
        earlier: &CpuSample,
        client: u64,
        ours: &HashSet<u32>,
    ) -> Option<CpuShare> {
        let total = self.machine_total.checked_sub(earlier.machine_total)? as f64;
        if total <= 0.0 {
            return None;
        }
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
        let process = d(self.process, earlier.process);
        let client = (client as f64).min(process);
        let postgres: f64 = ours
            .iter()
            .filter_map(|pid| {
                let now = self.postgres.get(pid)?;
                Some(d(*now, earlier.postgres.get(pid).copied().unwrap_or(0)))
            })
            .fold(0.0, |sum, ticks| sum + ticks);
        let busy = d(self.machine_busy, earlier.machine_busy);
        Some(CpuShare {
            client: client / total,
            server: (process - client) / total,
            postgres: postgres / total,
            other: (busy - process - postgres).max(0.0) / total,
            idle: (total - busy).max(0.0) / total,
        })
    }
}

/// The command name and user + system ticks from a `/proc/<pid>/stat` line. The name is in
/// parentheses and may hold spaces, so the fields are counted from the last `)`.
fn proc_stat_ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state is field 3 of the line, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// Busy and total ticks of all CPUs from `/proc/stat` (idle and I/O wait are not busy).
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy = v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7)?;
    let total = busy + v.get(3)? + v.get(4)?;
    Some((busy, total))
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
     explicit_persona, current_stage, stage_confidence, persona_scores, processed_at, id";

/// Rows per second of one plain `COPY` of `rows` enriched rows into the schema's `cdp_events`,
/// with time-ordered ids as the collector writes them.
async fn copy_ceiling(
    client: &tokio_postgres::Client,
    schema: &str,
    target: &StoreTarget,
    cfg: &Config,
    rows: usize,
    args: &LoadArgs,
) -> Result<(f64, f64), LoadError> {
    eprintln!("postgres: COPY of {rows} rows...");
    let now = Utc::now();
    let mut bodies = Bodies::new(0xc0b1, args.visitors.max(1) as u64, args.event_ids);
    let enriched: Vec<EventRow> = (0..rows)
        .filter_map(|_| serde_json::from_slice::<Value>(&bodies.next(1)).ok())
        .filter_map(|raw| validate(cfg, &raw, now).ok())
        .map(|e| apply(cfg, None, &e, now).row)
        .collect();
    let mut csv = String::with_capacity(enriched.len() * 400);
    for r in &enriched {
        let fields: [Option<String>; 18] = [
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
            Some(uuid::Uuid::now_v7().hyphenated().to_string()),
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
    let copied = sink.as_mut().finish().await.map_err(pg)? as f64;
    let copy = started.elapsed().as_secs_f64().max(1e-9);
    let (_, fold) = fold_backlog(client, schema, target).await?;
    Ok((copied / copy, copied / (copy + fold.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_events_with_fresh_ids() {
        let cfg = Config::southland();
        let mut bodies = Bodies::new(7, 20, EventIds::V7);
        let one: Value = serde_json::from_slice(&bodies.next(1)).expect("one event is JSON");
        assert!(validate(&cfg, &one, Utc::now()).is_ok(), "{one}");
        let many: Value = serde_json::from_slice(&bodies.next(50)).expect("a batch is JSON");
        let many = many.as_array().cloned().unwrap_or_default();
        assert_eq!(many.len(), 50);
        let ids: std::collections::HashSet<&str> =
            many.iter().filter_map(|e| e["event_id"].as_str()).collect();
        assert_eq!(ids.len(), 50, "every event has its own id");
        for e in &many {
            assert!(validate(&cfg, e, Utc::now()).is_ok(), "{e}");
        }
    }

    #[test]
    fn phases_and_clients_draw_their_own_event_ids() {
        for kind in [EventIds::V7, EventIds::V4] {
            let ids = |seed: u64| -> std::collections::HashSet<String> {
                let mut bodies = Bodies::new(seed, 20, kind);
                let batch: Value = serde_json::from_slice(&bodies.next(50)).expect("JSON");
                batch
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
                    .collect()
            };
            let single = ids(client_seed(3, 1));
            assert!(single.is_disjoint(&ids(client_seed(3, BATCH_EVENTS))));
            assert!(single.is_disjoint(&ids(client_seed(4, 1))));
        }
    }

    #[test]
    fn event_ids_are_of_the_kind_asked_for() {
        for (kind, version) in [(EventIds::V7, 7), (EventIds::V4, 4)] {
            let mut bodies = Bodies::new(5, 20, kind);
            let batch: Value = serde_json::from_slice(&bodies.next(10)).expect("JSON");
            for e in batch.as_array().into_iter().flatten() {
                let id = uuid::Uuid::parse_str(e["event_id"].as_str().unwrap_or_default())
                    .expect("a UUID");
                assert_eq!(id.get_version_num(), version, "{e}");
                if kind == EventIds::V7 {
                    // The id starts with the event's time, as the tracker's do.
                    let at = chrono::DateTime::parse_from_rfc3339(
                        e["timestamp"].as_str().unwrap_or_default(),
                    )
                    .expect("a timestamp");
                    let (secs, nanos) = id.get_timestamp().expect("v7 has a time").to_unix();
                    assert_eq!(
                        secs as i64 * 1000 + i64::from(nanos / 1_000_000),
                        at.timestamp_millis()
                    );
                }
            }
        }
    }

    fn run_of(sqlite: [f64; 2], postgres: [f64; 2], copy: f64) -> Report {
        let phase = |backend: &str, name: &str, rate: f64| Phase {
            backend: backend.into(),
            name: name.into(),
            events_per_sec: rate,
            p50: Duration::from_millis(4),
            p99: Duration::from_millis(rate as u64 / 1000),
            requests: 1,
            errors: 0,
            not_accepted: 0,
            cpu: None,
            rollup_backlog: None,
            memory: None,
        };
        Report {
            phases: vec![
                phase("sqlite", "single-event", sqlite[0]),
                phase("sqlite", "batch of 50", sqlite[1]),
                phase("postgres", "single-event", postgres[0]),
                phase("postgres", IDENTITY_PHASE, postgres[0] * 0.9),
                phase("postgres", "batch of 50", postgres[1]),
            ],
            copy_rows_per_sec: Some(copy),
            ..Report::default()
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn the_summary_takes_ratios_within_each_run_then_the_median() {
        let identity_line = "postgres: 5% identity / plain, single-event: median 90%";
        let runs = [
            run_of([15_000.0, 30_000.0], [12_000.0, 25_000.0], 50_000.0),
            run_of([10_000.0, 20_000.0], [10_000.0, 30_000.0], 40_000.0),
            run_of([14_000.0, 33_000.0], [14_000.0, 30_000.0], 45_000.0),
        ];
        let text = Summary(&runs).to_string();
        assert!(text.starts_with("median of 3 runs:"), "{text}");
        assert!(
            text.contains(
                "sqlite    batch of 50                    30000    30.00   30000 20000 33000"
            ),
            "{text}"
        );
        assert!(
            text.contains("postgres  COPY ceiling                   45000 rows/s"),
            "{text}"
        );
        // 50%, 75%, 67%: the median of the ratios, not the ratio of the medians (30,000 / 45,000).
        assert!(
            text.contains(
                "postgres batched /collect / COPY ceiling: median 67% (each run: 50% 75% 67%)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "sqlite / postgres, single-event: median 100% (each run: 125% 100% 100%)"
            ),
            "{text}"
        );
        assert!(
            text.contains("sqlite / postgres, batch of 50: median 110% (each run: 120% 67% 110%)"),
            "{text}"
        );
        // The identity phase against the plain one of the same run; only where both ran.
        assert!(text.contains(identity_line), "{text}");
        assert!(!text.contains("sqlite: 5% identity"), "{text}");
    }

    #[test]
    fn the_accepted_count_is_read_from_the_answer() {
        assert_eq!(
            accepted_in(br#"{"accepted":48,"duplicate":2,"rejected":0,"events":[]}"#),
            Some(48)
        );
        assert_eq!(accepted_in(br#"{"accepted":0,"duplicate":1}"#), Some(0));
        assert_eq!(accepted_in(br#"{"error":"store_unavailable"}"#), None);
    }

    #[test]
    fn proc_stat_lines_are_read_from_the_last_parenthesis() {
        let line = "4242 (cdp-load (c)lient) S 1 2 3 4 5 6 7 8 9 10 120 30 0 0 20 0";
        assert_eq!(
            proc_stat_ticks(line),
            Some(("cdp-load (c)lient".to_owned(), 150))
        );
        let stat = "cpu  100 5 50 800 20 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(machine_ticks(stat), Some((161, 981)));
    }
}
