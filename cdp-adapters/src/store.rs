//! Choosing a backend at run time: [`StoreTarget`] is parsed from a database URL (or the
//! absence of one, which means the embedded SQLite file under the data directory), and
//! [`Store`] is an enum over the backends that implements both roles by delegation. An enum
//! rather than a boxed trait object keeps the futures `Send` without any boxing.

use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::supabase::{RetryPolicy, SupabaseStore};
use crate::{
    EraseError, EraseStore, Erased, ErasureFigures, EventSink, IdentityStore, ProfileStore,
    StoreError, WriteOutcome,
};
use cdp_core::identity::{Edge, Erasure, IdentityRules, PersonId};
use cdp_core::{AnonymousId, BrandId, Config, EventRow, Profile};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The embedded database's file name inside the data directory.
pub const SQLITE_FILE: &str = "cdp.sqlite3";

/// The dead-letter directory's name inside the data directory.
pub const DEAD_LETTER_DIR: &str = "dead-letter";

/// Why a database URL could not be turned into a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("database url: {0}")]
pub struct TargetError(String);

/// A Supabase service-role key. It is never shown: `Debug` prints `[redacted]` and there is
/// no `Display`, so it cannot end up in a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceKey(String);

impl ServiceKey {
    /// Wraps the key.
    pub fn new(key: impl Into<String>) -> ServiceKey {
        ServiceKey(key.into())
    }

    /// The key, for the request headers only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceKey([redacted])")
    }
}

/// Where a Postgres store lives.
#[derive(Clone)]
pub struct PostgresTarget {
    url: String,
    /// The schema holding the CDP tables (`public` unless set; tests use one per test).
    pub schema: String,
    /// Connections in the pool.
    pub pool_size: usize,
}

impl PostgresTarget {
    /// A target for `postgres://` or `postgresql://` URL, in schema `public`.
    pub fn new(url: impl Into<String>) -> PostgresTarget {
        PostgresTarget {
            url: url.into(),
            schema: "public".into(),
            pool_size: 8,
        }
    }

    /// The same target in another schema.
    pub fn with_schema(mut self, schema: impl Into<String>) -> PostgresTarget {
        self.schema = schema.into();
        self
    }

    /// The connection URL (may hold a password: never log it, log [`StoreTarget::describe`]).
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTarget")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// Where a Supabase REST store lives.
#[derive(Debug, Clone)]
pub struct SupabaseTarget {
    /// Project URL, such as `https://abc.supabase.co` (no trailing slash).
    pub url: String,
    /// The service-role key.
    pub key: ServiceKey,
    /// Where rows the API refuses are appended, one NDJSON file per day.
    pub dead_letter_dir: PathBuf,
    /// The Postgres schema, sent as `Content-Profile`/`Accept-Profile` when not `public`.
    pub schema: String,
    /// Retries of 5xx, 429 and connection failures.
    pub retry: RetryPolicy,
}

/// Which store to open.
#[derive(Debug, Clone)]
pub enum StoreTarget {
    /// The embedded SQLite database file.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A Postgres server, directly or through a (transaction) pooler.
    Postgres(PostgresTarget),
    /// Supabase's REST API (PostgREST) with the service-role key.
    Supabase(SupabaseTarget),
}

impl StoreTarget {
    /// Parses the `--database-url` value. `None` or `""` is the embedded default
    /// (`<data_dir>/cdp.sqlite3`); `sqlite:PATH` is a SQLite file (a PATH that is an existing
    /// directory means `PATH/cdp.sqlite3`; the dashboard rollups go in a second file beside
    /// it, `cdp.rollups.sqlite3`); `postgres://` and `postgresql://` are Postgres;
    /// `https://...` is Supabase REST and needs the service key. Rows Supabase refuses go to
    /// `<data_dir>/dead-letter/`.
    pub fn parse(
        database_url: Option<&str>,
        data_dir: &Path,
        service_key: Option<ServiceKey>,
    ) -> Result<StoreTarget, TargetError> {
        let url = database_url.map(str::trim).unwrap_or("");
        if url.is_empty() {
            return Ok(StoreTarget::Sqlite {
                path: data_dir.join(SQLITE_FILE),
            });
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            if rest.is_empty() {
                return Err(TargetError(
                    "sqlite: needs a path, as in sqlite:./cdp-data/cdp.sqlite3".into(),
                ));
            }
            let path = PathBuf::from(rest);
            let path = if path.is_dir() {
                path.join(SQLITE_FILE)
            } else {
                path
            };
            return Ok(StoreTarget::Sqlite { path });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreTarget::Postgres(PostgresTarget::new(url)));
        }
        if url.starts_with("https://") || url.starts_with("http://") {
            let Some(key) = service_key.filter(|k| !k.0.trim().is_empty()) else {
                return Err(TargetError(format!(
                    "{} is a Supabase REST URL and needs the service key (SUPABASE_SERVICE_KEY)",
                    redact_url(url)
                )));
            };
            return Ok(StoreTarget::Supabase(SupabaseTarget {
                url: url.trim_end_matches('/').to_owned(),
                key,
                dead_letter_dir: data_dir.join(DEAD_LETTER_DIR),
                schema: "public".into(),
                retry: RetryPolicy::default(),
            }));
        }
        Err(TargetError(format!(
            "unsupported scheme in {}; use sqlite:PATH, postgres://..., postgresql://... or \
             https://<project>.supabase.co",
            redact_url(url)
        )))
    }

    /// A description safe for logs: backend and location, without passwords or keys.
    pub fn describe(&self) -> String {
        match self {
            StoreTarget::Sqlite { path } => format!("sqlite {}", path.display()),
            StoreTarget::Postgres(t) => {
                format!("postgres {} schema {}", redact_url(&t.url), t.schema)
            }
            StoreTarget::Supabase(t) => format!("supabase rest {}", redact_url(&t.url)),
        }
    }
}

/// The URL with any `user:password@` reduced to `user:***@` and the value of any `password=`
/// query parameter (libpq accepts one there too) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = redact_userinfo(base);
    if let Some(query) = query {
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let params: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
    }
    out
}

fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// An open store of whichever backend the target named. Cloning shares the connection(s).
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite.
    Sqlite(SqliteStore),
    /// Postgres.
    Postgres(PostgresStore),
    /// Supabase REST.
    Supabase(SupabaseStore),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
            Store::Supabase($s) => $call,
        }
    };
}

impl Store {
    /// Opens the store. SQLite is migrated on open (it has a single owner); Postgres and
    /// Supabase are not: run [`Store::migrate`] (`cdp migrate`) first.
    pub async fn open(target: &StoreTarget) -> Result<Store, StoreError> {
        Ok(match target {
            StoreTarget::Sqlite { path } => Store::Sqlite(SqliteStore::open(path).await?),
            StoreTarget::Postgres(t) => Store::Postgres(PostgresStore::open(t).await?),
            StoreTarget::Supabase(t) => Store::Supabase(SupabaseStore::open(t)?),
        })
    }

    /// Applies pending migrations and returns the versions applied (empty when up to date).
    /// Supabase REST cannot run DDL: it checks the tables exist and says how to create them.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        delegate!(self, s => s.migrate().await)
    }

    /// Whether the store answers, for `/health`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        delegate!(self, s => s.ping().await)
    }

    /// Folds the events stored since the last fold into the dashboard rollups and returns how
    /// many it folded, with the core's fold (`cdp_core::counting::fold`). SQLite and Postgres
    /// keep their rollups behind the event stream: `cdp serve` calls this periodically and
    /// the dashboard reads call it before reading. The Supabase REST sink only queues (the
    /// database's trigger); a `cdp serve` whose dashboard reads the same database over
    /// `postgres://` folds the queue, so here it folds nothing.
    pub async fn flush_rollups(&self) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.flush_rollups().await,
            Store::Postgres(s) => s.flush_rollups().await,
            Store::Supabase(_) => Ok(0),
        }
    }

    /// The backend's name: `sqlite`, `postgres` or `supabase`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
            Store::Supabase(_) => "supabase",
        }
    }
}

impl IdentityStore for Store {
    async fn identity_edges(&self, brand: &BrandId) -> Result<Vec<Edge>, StoreError> {
        delegate!(self, s => s.identity_edges(brand).await)
    }

    async fn add_edges(&self, brand: &BrandId, edges: &[Edge]) -> Result<(), StoreError> {
        delegate!(self, s => s.add_edges(brand, edges).await)
    }

    async fn stamp_people(
        &self,
        brand: &BrandId,
        people: &[(AnonymousId, PersonId)],
    ) -> Result<Option<u64>, StoreError> {
        delegate!(self, s => s.stamp_people(brand, people).await)
    }

    async fn stamped_people(
        &self,
        brand: &BrandId,
    ) -> Result<Option<BTreeMap<AnonymousId, String>>, StoreError> {
        delegate!(self, s => s.stamped_people(brand).await)
    }
}

/// What Supabase REST answers for an erasure: PostgREST cannot delete across tables in one
/// transaction nor correct the rollups.
fn rest_cannot_erase() -> EraseError {
    EraseError::Unsupported {
        backend: "Supabase REST",
    }
}

impl EraseStore for Store {
    async fn erase(
        &self,
        brand: &BrandId,
        erasure: &Erasure,
        rules: &IdentityRules,
        erasure_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Erased, EraseError> {
        match self {
            Store::Sqlite(s) => s.erase(brand, erasure, rules, erasure_id, at).await,
            Store::Postgres(s) => s.erase(brand, erasure, rules, erasure_id, at).await,
            Store::Supabase(_) => Err(rest_cannot_erase()),
        }
    }

    async fn tombstones(&self, brand: &BrandId) -> Result<Vec<String>, EraseError> {
        match self {
            Store::Sqlite(s) => s.tombstones(brand).await,
            Store::Postgres(s) => s.tombstones(brand).await,
            Store::Supabase(_) => Err(rest_cannot_erase()),
        }
    }

    async fn count_suppressed(
        &self,
        brand: &BrandId,
        hits: &[(String, u64)],
        at: DateTime<Utc>,
    ) -> Result<(), EraseError> {
        match self {
            Store::Sqlite(s) => s.count_suppressed(brand, hits, at).await,
            Store::Postgres(s) => s.count_suppressed(brand, hits, at).await,
            Store::Supabase(_) => Err(rest_cannot_erase()),
        }
    }

    async fn erasure_figures(&self, brand: &BrandId) -> Result<ErasureFigures, EraseError> {
        match self {
            Store::Sqlite(s) => s.erasure_figures(brand).await,
            Store::Postgres(s) => s.erasure_figures(brand).await,
            Store::Supabase(_) => Err(rest_cannot_erase()),
        }
    }
}

impl EventSink for Store {
    async fn write_events(&self, rows: &[EventRow]) -> Result<Vec<WriteOutcome>, StoreError> {
        delegate!(self, s => s.write_events(rows).await)
    }

    async fn existing_event_ids(
        &self,
        brand: &BrandId,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, StoreError> {
        delegate!(self, s => s.existing_event_ids(brand, ids).await)
    }

    async fn last_processed_at(
        &self,
        brand: &BrandId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        delegate!(self, s => s.last_processed_at(brand).await)
    }
}

impl ProfileStore for Store {
    async fn load_profile(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, StoreError> {
        delegate!(self, s => s.load_profile(brand, id, now).await)
    }

    async fn save_profiles(&self, cfg: &Config, profiles: &[Profile]) -> Result<(), StoreError> {
        delegate!(self, s => s.save_profiles(cfg, profiles).await)
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        delegate!(self, s => s.purge_expired(now).await)
    }

    async fn visitor_events(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<EventRow>, StoreError> {
        delegate!(self, s => s.visitor_events(brand, id, after).await)
    }

    async fn load_profiles(
        &self,
        brand: &BrandId,
        ids: &[AnonymousId],
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<AnonymousId, Profile>, StoreError> {
        delegate!(self, s => s.load_profiles(brand, ids, now).await)
    }

    async fn visitor_events_many(
        &self,
        brand: &BrandId,
        since: &[(AnonymousId, Option<DateTime<Utc>>)],
    ) -> Result<BTreeMap<AnonymousId, Vec<EventRow>>, StoreError> {
        delegate!(self, s => s.visitor_events_many(brand, since).await)
    }

    async fn visitor_ids(
        &self,
        brand: &BrandId,
        after: Option<&AnonymousId>,
        limit: usize,
    ) -> Result<Vec<AnonymousId>, StoreError> {
        delegate!(self, s => s.visitor_ids(brand, after, limit).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: Option<&str>, key: Option<&str>) -> String {
        match StoreTarget::parse(url, Path::new("/data"), key.map(ServiceKey::new)) {
            Ok(t) => format!("{t:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn targets_from_urls() {
        let cases = [
            (None, None),
            (Some(""), None),
            (Some("sqlite:/tmp/x.db"), None),
            (Some("sqlite:"), None),
            (Some("postgres://u:hunter2@db:5432/cdp"), None),
            (Some("postgresql://db/cdp"), None),
            (Some("https://abc.supabase.co/"), Some("sekrit-service-key")),
            (Some("https://abc.supabase.co"), None),
            (Some("mysql://u:pw@h/db"), None),
        ];
        let got: Vec<String> = cases
            .iter()
            .map(|(u, k)| format!("{:?} => {}", u.map(redact_url), parse(*u, *k)))
            .collect();
        insta::assert_snapshot!(got.join("\n"));
        assert!(!got.join("").contains("hunter2"));
        assert!(!got.join("").contains("sekrit"));
        assert!(!got.join("").contains("\"pw"));
    }

    #[test]
    fn redact_masks_a_password_in_the_query_string() {
        let cases = [
            (
                "postgres://db/cdp?sslmode=require&password=hunter2",
                "postgres://db/cdp?sslmode=require&password=***",
            ),
            (
                "postgresql://u@db/cdp?PassWord=hunter2&application_name=cdp#x",
                "postgresql://u@db/cdp?PassWord=***&application_name=cdp#x",
            ),
            (
                "postgres://u:hunter2@db:5432/cdp?password=hunter2",
                "postgres://u:***@db:5432/cdp?password=***",
            ),
            (
                "postgres://db/cdp?passwords=x",
                "postgres://db/cdp?passwords=x",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
