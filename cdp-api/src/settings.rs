//! Command-line flags and environment variables, read here and nowhere else, then checked as a
//! whole into [`Settings`] so that start-up reports every problem at once.
//!
//! Each `cdp serve` flag has an environment variable (clap reads both). Secrets (the admin
//! token, the Supabase service key, a password inside a database URL) are kept out of `Debug`
//! output and logs: [`Settings`] prints them as `***`.

use crate::access::ADMIN_TOKEN_MIN_CHARS;
use cdp_adapters::{ServiceKey, StoreTarget};
use cdp_core::identity::TombstoneKey;
use cdp_core::Config;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default address: loopback only, so a fresh machine does not expose the collector.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default body cap: a 100-event batch of typical events is about 60 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// Default memory for cached profiles: about 3,500 full profiles (a hundred signals) or
/// 50,000 of one or two events. Profiles waiting for their save take at most as much again.
pub const DEFAULT_PROFILE_CACHE_MB: usize = 64;
/// Default time a body may take to arrive: a 256 KiB body takes about 2 s at 1 Mbit/s.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 10;
/// Largest body cap accepted, so a typo cannot disable the limit.
const MAX_BODY_BYTES_CEILING: usize = 16 * 1024 * 1024;

/// `cdp`: the CDP collector and its tools.
#[derive(Debug, Parser)]
#[command(name = "cdp", version, about = "First-party CDP collector and tools")]
pub struct Cli {
    /// Log filter, in `tracing` env-filter syntax.
    #[arg(long, global = true, env = "CDP_LOG", default_value = "info")]
    pub log: String,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "CDP_LOG_JSON")]
    pub log_json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector: `POST /collect`, `GET /health`, `GET /cdp.js`.
    Serve(ServeArgs),
    /// Apply the database migrations (idempotent).
    Migrate(StoreArgs),
    /// Send realistic synthetic traffic through a running collector's `/collect`.
    Demo(DemoArgs),
    /// Post recorded events from an NDJSON file through a running collector's `/collect`.
    Replay(ReplayArgs),
    /// Recompute golden profiles from the stored events (events are the source of truth).
    RebuildProfiles(RebuildArgs),
    /// Load benchmark: drive `/collect` over loopback and print events/s and latencies.
    Load(LoadArgs),
    /// Dashboard benchmark: bulk-load synthetic events through the adapters and the rollup
    /// triggers, then time `/api/cdp/metrics` and print p50/p95.
    BenchMetrics(BenchMetricsArgs),
}

/// Where the data lives; shared by every subcommand that opens the store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite database (used when no database URL is given).
    #[arg(long, env = "CDP_DATA_DIR", default_value = "./cdp-data")]
    pub data_dir: PathBuf,
    /// `postgres://...` for Postgres, or `https://<project>.supabase.co` for Supabase REST.
    #[arg(long, env = "CDP_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Supabase service-role key, required with a Supabase URL.
    #[arg(long, env = "SUPABASE_SERVICE_KEY", hide_env_values = true)]
    pub supabase_service_key: Option<String>,
    /// The Postgres schema the CDP's tables live in (with a `postgres://` URL): for example the
    /// schema a Cloudflare Worker writes to through Supabase REST.
    #[arg(long, env = "CDP_DATABASE_SCHEMA", default_value = "public")]
    pub database_schema: String,
    /// Scoring configuration TOML; the bundled Southland configuration when absent.
    #[arg(long, env = "CDP_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Flags of `cdp serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CDP_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Store and configuration.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Token for admin routes; at least 16 characters when set.
    #[arg(long, env = "CDP_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Secret the tombstones of erased people are keyed with (at least 32 bytes): an erased
    /// identifier is kept only as its HMAC-SHA256 under this key, so the database alone
    /// cannot tell whether a guessed email was erased. Without it, erasing a person is
    /// refused. Keep it as long as the database: a new key forgets every tombstone.
    #[arg(long, env = "CDP_TOMBSTONE_KEY", hide_env_values = true)]
    pub tombstone_key: Option<String>,
    /// Comma-separated origins allowed to call the collector from a browser, such as
    /// `https://www.example.com`; `*` allows any. Default: none (only non-browser clients and
    /// same-origin pages).
    #[arg(long, env = "CDP_ALLOWED_ORIGINS", default_value = "")]
    pub allowed_origins: String,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "CDP_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Seconds a `/collect` body may take to arrive whole; a slower one gets 408 and its
    /// connection is closed. A refused body is read and discarded within the same time, so
    /// that its sender reads the refusal.
    #[arg(long, env = "CDP_BODY_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_TIMEOUT_SECS)]
    pub body_timeout_secs: u64,
    /// Writer tasks (events are sharded by visitor); 0 picks 4 for Supabase REST, whose round
    /// trips are long, 2 for Postgres, whose commits of different visitors share no rows (the
    /// rollups are folded apart from them) and so overlap, and 1 for SQLite, which has one
    /// write connection.
    #[arg(long, env = "CDP_WRITER_SHARDS", default_value_t = 0)]
    pub writer_shards: usize,
    /// Most events committed in one transaction.
    #[arg(long, env = "CDP_WRITER_BATCH_EVENTS", default_value_t = 4000)]
    pub writer_batch_events: usize,
    /// How long a writer waits for more events before committing a partial batch, in ms. The
    /// pipeline already batches whatever arrives during a commit, so waiting only adds latency.
    #[arg(long, env = "CDP_WRITER_LINGER_MS", default_value_t = 0)]
    pub writer_linger_ms: u64,
    /// Memory the cached profiles may hold, in MiB, shared by the writers. A visitor who is
    /// not cached is loaded from the store and caught up from their events, so a smaller cache
    /// costs speed, never correctness; `/health` shows its size and hit rate.
    #[arg(long, env = "CDP_PROFILE_CACHE_MB", default_value_t = DEFAULT_PROFILE_CACHE_MB)]
    pub profile_cache_mb: usize,
    /// Most profiles kept in memory per writer, whatever their size.
    #[arg(long, env = "CDP_PROFILE_CACHE", default_value_t = 100_000)]
    pub profile_cache: usize,
    /// How often changed profiles are saved behind the events, in seconds (also on eviction
    /// and at shutdown). Profiles are rebuilt from events after a crash, so this only bounds
    /// how much catching up a restart does.
    #[arg(long, env = "CDP_PROFILE_FLUSH_SECS", default_value_t = 30)]
    pub profile_flush_secs: u64,
}

/// Flags of the HTTP client commands.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Base URL of the collector.
    #[arg(long, env = "CDP_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Events per request.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
}

/// Flags of `cdp demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Visitors to simulate.
    #[arg(long, default_value_t = 200)]
    pub visitors: usize,
    /// Days of history, at most 7 (the contract rejects events older than 168 hours).
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Seed for the synthetic traffic, so a run can be repeated.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Collector.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Flags of `cdp replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// NDJSON file: one event object per line.
    pub file: PathBuf,
    /// Collector.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Flags of `cdp rebuild-profiles`.
#[derive(Debug, Clone, Args)]
pub struct RebuildArgs {
    /// Store and configuration.
    #[command(flatten)]
    pub store: StoreArgs,
    /// A visitor to rebuild (repeatable); every visitor with stored events when none is given.
    #[arg(long = "visitor")]
    pub visitors: Vec<String>,
}

/// Flags of `cdp load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Postgres server to measure on (a scratch database is created and dropped there).
    #[arg(
        long,
        env = "CDP_LOAD_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub postgres_url: String,
    /// Skip the Postgres runs (SQLite only).
    #[arg(long, conflicts_with = "postgres_only")]
    pub sqlite_only: bool,
    /// Skip the SQLite runs (Postgres only).
    #[arg(long)]
    pub postgres_only: bool,
    /// Concurrent connections driving the server.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Distinct visitors the generated events spread over.
    #[arg(long, default_value_t = 2000)]
    pub visitors: usize,
    /// Writer shards of the measured servers (default: what `cdp serve` picks per backend).
    #[arg(long)]
    pub writer_shards: Option<usize>,
    /// Writer linger of the measured servers, in ms (default: `cdp serve`'s).
    #[arg(long)]
    pub writer_linger_ms: Option<u64>,
    /// Most events per commit of the measured servers (default: `cdp serve`'s).
    #[arg(long)]
    pub writer_batch_events: Option<usize>,
    /// The kind of event ids the generated events carry: `v7` (time-ordered, what the tracker
    /// sends) or `v4` (random, what other producers may send).
    #[arg(long, value_enum, default_value_t = EventIds::V7)]
    pub event_ids: EventIds,
    /// Whole runs to make, one after another. With more than one, each run is printed, then
    /// the median of each figure and of each run's ratios: on a shared machine one run's
    /// figures can move by a tenth either way.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// The phases to run, in this order, on each backend: `single` (single events), `identity`
    /// (single events, 5% of them identity events), `batch` (batches of 50). Comparing with an
    /// older binary, run only the phases it has, so each phase meets a database of the same size.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [LoadPhase::Single, LoadPhase::Identity, LoadPhase::Batch])]
    pub phases: Vec<LoadPhase>,
}

/// A phase of `cdp load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadPhase {
    /// One event per request.
    Single,
    /// One event per request, 5% of them identity events.
    Identity,
    /// 50 events per request.
    Batch,
}

impl fmt::Display for LoadPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoadPhase::Single => "single",
            LoadPhase::Identity => "identity",
            LoadPhase::Batch => "batch",
        })
    }
}

/// The UUID version of generated event ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventIds {
    /// Time-ordered (RFC 9562 version 7), as the tracker sends them.
    V7,
    /// Random (version 4).
    V4,
}

impl fmt::Display for EventIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventIds::V7 => "v7 (time-ordered)",
            EventIds::V4 => "v4 (random)",
        })
    }
}

/// Flags of `cdp bench-metrics`.
#[derive(Debug, Clone, Args)]
pub struct BenchMetricsArgs {
    /// Events to load.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Days of history the events spread over, ending now.
    #[arg(long, default_value_t = 100)]
    pub days: u32,
    /// Seed of the synthetic traffic.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Postgres server to measure on (schema `cdp_bench` is dropped, loaded and kept there).
    #[arg(
        long,
        env = "CDP_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub postgres_url: String,
    /// Directory for the SQLite store (a temp dir when absent; give one to `--reuse` it).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Only SQLite.
    #[arg(long, conflicts_with = "postgres_only")]
    pub sqlite_only: bool,
    /// Only Postgres.
    #[arg(long)]
    pub postgres_only: bool,
    /// Measure what a previous run loaded instead of loading again.
    #[arg(long)]
    pub reuse: bool,
    /// Timed requests for the first range (the others get at most 20).
    #[arg(long, default_value_t = 100)]
    pub requests: usize,
    /// Ranges to time, the first in earnest.
    #[arg(long, value_delimiter = ',', default_value = "30d,24h,7d,90d")]
    pub ranges: Vec<String>,
}

/// The store part of the settings, shared by `serve`, `migrate` and `rebuild-profiles`.
#[derive(Clone)]
pub struct StoreSettings {
    /// Backend and location.
    pub target: StoreTarget,
    /// Validated scoring configuration.
    pub config: Config,
}

/// Validated settings of `cdp serve`. Holding one proves every value was checked.
#[derive(Clone)]
pub struct Settings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Store and configuration.
    pub store: StoreSettings,
    /// Admin token, when set.
    pub admin_token: Option<String>,
    /// The key of erased people's tombstones, when set.
    pub tombstone_key: Option<TombstoneKey>,
    /// Allowed browser origins.
    pub allowed_origins: Origins,
    /// Body cap in bytes.
    pub max_body_bytes: usize,
    /// How long a body may take to arrive whole.
    pub body_timeout: Duration,
    /// Writer tuning.
    pub writer: WriterSettings,
}

/// Group-commit tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterSettings {
    /// Writer tasks; events are sharded by visitor so each visitor has one writer.
    pub shards: usize,
    /// Most events per transaction.
    pub batch_events: usize,
    /// Wait for more events before committing a partial batch.
    pub linger: Duration,
    /// Profiles cached per writer, at most.
    pub profile_cache: usize,
    /// Bytes the cached profiles of all writers may hold together.
    pub profile_cache_bytes: usize,
    /// How often changed profiles are written behind.
    pub profile_flush: Duration,
}

pub use cdp_core::intake::Origins;

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("store", &self.store.target.describe())
            .field("brand_id", &self.store.config.brand_id())
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("tombstone_key", &self.tombstone_key.as_ref().map(|_| "***"))
            .field("allowed_origins", &self.allowed_origins)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_timeout", &self.body_timeout)
            .field("writer", &self.writer)
            .finish()
    }
}

/// Every problem found in the flags and environment, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SettingsError {
    /// One line per problem, naming the flag and its environment variable.
    pub problems: Vec<String>,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid settings ({} problems):", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        write!(
            f,
            "see `cdp serve --help` for every flag and its environment variable"
        )
    }
}

impl ServeArgs {
    /// `cdp serve`'s flags at their defaults, as data: no command line and no environment
    /// variable is read. Tools and tests set the fields they need, then [`Self::validate`].
    pub fn defaults() -> Result<ServeArgs, SettingsError> {
        use clap::FromArgMatches;
        let internal = |e: clap::Error| SettingsError {
            problems: vec![format!("internal: the serve defaults did not parse: {e}")],
        };
        let cmd = ServeArgs::augment_args(clap::Command::new("serve")).mut_args(|a| a.env(None));
        let matches = cmd.try_get_matches_from(["serve"]).map_err(internal)?;
        ServeArgs::from_arg_matches(&matches).map_err(internal)
    }

    /// Checks every flag and returns the settings, or every problem at once.
    pub fn validate(&self) -> Result<Settings, SettingsError> {
        let mut problems = Vec::new();
        let listen = match self.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(format!(
                    "--listen / CDP_LISTEN: `{}` is not an address such as {DEFAULT_LISTEN}",
                    self.listen
                ));
                None
            }
        };
        let store = self.store.check(&mut problems);
        if let Some(token) = &self.admin_token {
            if token.chars().count() < ADMIN_TOKEN_MIN_CHARS {
                problems.push(format!(
                    "--admin-token / CDP_ADMIN_TOKEN: at least {ADMIN_TOKEN_MIN_CHARS} characters"
                ));
            }
        }
        let tombstone_key =
            self.tombstone_key
                .as_deref()
                .and_then(|k| match TombstoneKey::new(k) {
                    Ok(key) => Some(key),
                    Err(why) => {
                        problems.push(format!("--tombstone-key / CDP_TOMBSTONE_KEY: {why}"));
                        None
                    }
                });
        let allowed_origins = parse_origins(&self.allowed_origins, &mut problems);
        if self.max_body_bytes < 1024 || self.max_body_bytes > MAX_BODY_BYTES_CEILING {
            problems.push(format!(
                "--max-body-bytes / CDP_MAX_BODY_BYTES: from 1024 to {MAX_BODY_BYTES_CEILING}, got {}",
                self.max_body_bytes
            ));
        }
        if self.body_timeout_secs == 0 || self.body_timeout_secs > 300 {
            problems.push(format!(
                "--body-timeout-secs / CDP_BODY_TIMEOUT_SECS: from 1 to 300, got {}",
                self.body_timeout_secs
            ));
        }
        if self.writer_batch_events == 0 || self.writer_batch_events > 10_000 {
            problems.push("--writer-batch-events: from 1 to 10000".to_owned());
        }
        if self.writer_shards > 64 {
            problems.push("--writer-shards: at most 64".to_owned());
        }
        if self.writer_linger_ms > 1000 {
            problems.push("--writer-linger-ms: at most 1000".to_owned());
        }
        if self.profile_cache == 0 {
            problems.push("--profile-cache: at least 1".to_owned());
        }
        if self.profile_cache_mb == 0 || self.profile_cache_mb > 1024 * 1024 {
            problems.push(format!(
                "--profile-cache-mb / CDP_PROFILE_CACHE_MB: from 1 to 1048576, got {}",
                self.profile_cache_mb
            ));
        }
        if self.profile_flush_secs == 0 || self.profile_flush_secs > 3600 {
            problems.push("--profile-flush-secs: from 1 to 3600".to_owned());
        }
        match (listen, store) {
            (Some(listen), Some(store)) if problems.is_empty() => {
                let shards = match (self.writer_shards, &store.target) {
                    (0, StoreTarget::Supabase(_)) => 4,
                    (0, StoreTarget::Postgres(_)) => 2,
                    (0, StoreTarget::Sqlite { .. }) => 1,
                    (n, _) => n,
                };
                Ok(Settings {
                    listen,
                    store,
                    admin_token: self.admin_token.clone(),
                    tombstone_key,
                    allowed_origins,
                    max_body_bytes: self.max_body_bytes,
                    body_timeout: Duration::from_secs(self.body_timeout_secs),
                    writer: WriterSettings {
                        shards,
                        batch_events: self.writer_batch_events,
                        linger: Duration::from_millis(self.writer_linger_ms),
                        profile_cache: self.profile_cache,
                        profile_cache_bytes: self.profile_cache_mb * 1024 * 1024,
                        profile_flush: Duration::from_secs(self.profile_flush_secs),
                    },
                })
            }
            _ => Err(SettingsError { problems }),
        }
    }
}

impl StoreArgs {
    /// Checks the store flags and the configuration file.
    pub fn validate(&self) -> Result<StoreSettings, SettingsError> {
        let mut problems = Vec::new();
        match self.check(&mut problems) {
            Some(s) if problems.is_empty() => Ok(s),
            _ => Err(SettingsError { problems }),
        }
    }

    fn check(&self, problems: &mut Vec<String>) -> Option<StoreSettings> {
        let key = self.supabase_service_key.as_deref().map(ServiceKey::new);
        let target = match StoreTarget::parse(self.database_url.as_deref(), &self.data_dir, key) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(format!("--database-url / CDP_DATABASE_URL: {e}"));
                None
            }
        };
        let schema = self.database_schema.trim();
        let plain = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !schema.starts_with(|c: char| c.is_ascii_digit());
        let target = match target {
            Some(StoreTarget::Postgres(pg)) if plain => {
                Some(StoreTarget::Postgres(pg.with_schema(schema)))
            }
            Some(_) if !plain => {
                problems.push(format!(
                    "--database-schema / CDP_DATABASE_SCHEMA: `{schema}` must be 1 to 63 lower-case \
                     letters, digits and underscores, not starting with a digit"
                ));
                None
            }
            Some(other) if schema != "public" => {
                problems.push(
                    "--database-schema / CDP_DATABASE_SCHEMA: only with a postgres:// database URL"
                        .to_owned(),
                );
                Some(other)
            }
            other => other,
        };
        let config = match &self.config {
            None => Some(Config::southland()),
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => match Config::from_toml(&text) {
                    Ok(cfg) => Some(cfg),
                    Err(e) => {
                        for p in e.problems {
                            problems
                                .push(format!("--config / CDP_CONFIG ({}): {p}", path.display()));
                        }
                        None
                    }
                },
                Err(e) => {
                    problems.push(format!(
                        "--config / CDP_CONFIG: cannot read {}: {e}",
                        path.display()
                    ));
                    None
                }
            },
        };
        Some(StoreSettings {
            target: target?,
            config: config?,
        })
    }
}

fn parse_origins(text: &str, problems: &mut Vec<String>) -> Origins {
    Origins::parse(text).unwrap_or_else(|bad| {
        problems.extend(
            bad.into_iter()
                .map(|p| format!("--allowed-origins / CDP_ALLOWED_ORIGINS: {p}")),
        );
        Origins::List(Vec::new())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_defaults_are_data_and_match_the_flags_defaults() {
        let data = ServeArgs::defaults().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(data.listen, DEFAULT_LISTEN);
        assert_eq!(data.store.data_dir, PathBuf::from("./cdp-data"));
        assert_eq!(data.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(data.profile_cache_mb, DEFAULT_PROFILE_CACHE_MB);
        let mut changed = data.clone();
        changed.listen = "127.0.0.1:0".into();
        changed.writer_shards = 3;
        let settings = changed.validate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.writer.shards, 3);
        let bad = ServeArgs {
            max_body_bytes: 0,
            ..data
        };
        assert!(bad.validate().is_err(), "built as data, still validated");
    }

    fn serve(args: &[&str]) -> ServeArgs {
        let mut argv = vec!["cdp", "serve"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Command::Serve(a)) => a,
            other => panic!("not a serve command: {other:?}"),
        }
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = serve(&[
            "--listen",
            "nowhere",
            "--database-url",
            "mysql://root:hunter2@db/x",
            "--admin-token",
            "short",
            "--tombstone-key",
            "hunter2 is too short",
            "--allowed-origins",
            "https://ok.example,ftp://bad,https://x.example/path",
            "--max-body-bytes",
            "5",
            "--config",
            "/nonexistent/cdp.toml",
        ])
        .validate()
        .err()
        .map(|e| e.problems)
        .unwrap_or_default();
        let text = err.join("\n");
        assert_eq!(err.len(), 8, "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("--tombstone-key / CDP_TOMBSTONE_KEY: must be at least 32 bytes"),
            "{text}"
        );
    }

    #[test]
    fn defaults_are_valid_and_use_sqlite() {
        let s = serve(&[]).validate().expect("defaults are valid");
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert!(matches!(s.store.target, StoreTarget::Sqlite { .. }));
        assert_eq!(s.writer.shards, 1);
        assert_eq!(s.allowed_origins, Origins::List(Vec::new()));
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let s = serve(&[
            "--database-url",
            "postgres://app:s3cret@db.example:5432/cdp",
            "--admin-token",
            "0123456789abcdef-secret",
            "--tombstone-key",
            "a tombstone key that is long enough: 0xfeedface",
        ])
        .validate()
        .expect("valid");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret")
                && !shown.contains("abcdef-secret")
                && !shown.contains("feedface"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://app:***@db.example:5432/cdp"),
            "{shown}"
        );
    }

    #[test]
    fn a_postgres_schema_is_checked_and_only_taken_with_postgres() {
        let pg = |extra: &[&str]| {
            let mut args = vec!["--database-url", "postgres://cdp@db.example/cdp"];
            args.extend_from_slice(extra);
            serve(&args).validate()
        };
        match pg(&["--database-schema", "worker_rows"]).map(|s| s.store.target) {
            Ok(StoreTarget::Postgres(t)) => assert_eq!(t.schema, "worker_rows"),
            other => panic!("{other:?}"),
        }
        let problems =
            |r: Result<Settings, SettingsError>| r.err().map(|e| e.problems).unwrap_or_default();
        for bad in ["Worker", "1st", "a;drop table x", ""] {
            let p = problems(pg(&["--database-schema", bad]));
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(
                p[0].starts_with("--database-schema / CDP_DATABASE_SCHEMA"),
                "{p:?}"
            );
        }
        let p = problems(serve(&["--database-schema", "elsewhere"]).validate());
        assert_eq!(
            p,
            ["--database-schema / CDP_DATABASE_SCHEMA: only with a postgres:// database URL"]
        );
    }

    #[test]
    fn supabase_needs_its_key() {
        let err = serve(&["--database-url", "https://abc.supabase.co"]).validate();
        assert!(err.is_err());
    }
}
