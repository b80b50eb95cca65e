//! Storage adapters: the roles the collector needs from a store ([`EventSink`],
//! [`ProfileStore`]), and one implementation per backend: embedded SQLite (the default),
//! Postgres (direct or through Supabase's transaction pooler) and Supabase REST (PostgREST).
//!
//! Each backend is a pure codec ([`codec`]: core types to and from columns, snapshot-tested)
//! plus a thin transport. A caller that picks the backend at run time holds a [`Store`], an
//! enum that delegates to the backend, built from a [`StoreTarget`] parsed from a database URL.
//! Every backend passes the same conformance suite in `tests/`.
//!
//! Without the default `native` feature only the pure parts build ([`codec`], [`rest`],
//! [`counting_sql`] and [`counting_rows`], the roles and [`StoreError`]), for wasm32 shells
//! such as the Cloudflare Worker.
//!
//! Nothing here reads the environment or a clock: the caller passes `now`, the configuration
//! and the secrets in.

#![deny(missing_docs)]

pub mod analytics;
pub mod codec;
pub mod counting_rows;
pub mod counting_sql;
#[cfg(feature = "native")]
mod erasing;
pub mod fold_sql;
#[cfg(feature = "native")]
pub mod migrate;
#[cfg(feature = "native")]
pub mod postgres;
pub mod rest;
#[cfg(feature = "native")]
pub mod sqlite;
#[cfg(feature = "native")]
pub mod store;
#[cfg(feature = "native")]
pub mod supabase;

#[cfg(feature = "native")]
pub use store::{PostgresTarget, ServiceKey, Store, StoreTarget, SupabaseTarget, TargetError};

use cdp_core::identity::{Edge, Erasure, IdentityRules, PersonId};
use cdp_core::{AnonymousId, BrandId, Config, EventRow, Profile};

/// Whether a failed Postgres statement means the connection is gone (the store is offline)
/// rather than the server refusing the statement: no SQLSTATE (I/O, a closed socket), class
/// 08 (connection exception) or 57P0x (the server ended the session: an operator, a crash, a
/// shutdown). One rule for the native client and the Worker's.
pub fn postgres_gone(sqlstate: Option<&str>) -> bool {
    sqlstate.is_none_or(|code| code.starts_with("08") || code.starts_with("57P0"))
}

/// A failed Postgres call as a store error, from what the server said: its SQLSTATE (none:
/// the connection itself failed), whether the error ended the session (severity FATAL or
/// PANIC, as when the database refuses a new connection) and its message. Gone (see
/// [`postgres_gone`]) or ended is `Unavailable`, naming the SQLSTATE; any other SQLSTATE is
/// the server refusing this statement, `Rejected`. One rule for the native client and the
/// Worker's.
pub fn postgres_failure(
    op: &'static str,
    sqlstate: Option<&str>,
    session_ended: bool,
    message: String,
) -> StoreError {
    match sqlstate {
        None => StoreError::Unavailable { op, message },
        Some(code) if session_ended || postgres_gone(Some(code)) => StoreError::Unavailable {
            op,
            message: format!("SQLSTATE {code}: {message}"),
        },
        Some(code) => StoreError::Rejected {
            op,
            status: code.to_owned(),
            message,
        },
    }
}

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// How one row of a batch ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Newly stored.
    Inserted,
    /// A row with the same `(brand_id, event_id)` was already stored; nothing changed.
    Duplicate,
    /// The store refused this row on its own (a 400 or 409 from Supabase REST after the batch
    /// was split); the row and the error were appended to the dead-letter file, and the other
    /// rows of the batch were stored. Only the REST backend produces this.
    DeadLettered,
}

/// Why a store operation failed. Messages name the operation and carry the backend status
/// (SQLSTATE, HTTP status or SQLite code) so logs can say what broke.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached (connection refused, pool timeout, file unavailable,
    /// retries exhausted). The server answers 503 with `Retry-After`.
    #[error("store unavailable during {op}: {message}")]
    Unavailable {
        /// The operation, such as `write_events`.
        op: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The store answered with an error for this request.
    #[error("store refused {op} (status {status}): {message}")]
    Rejected {
        /// The operation, such as `write_events`.
        op: &'static str,
        /// Database SQLSTATE, HTTP status or SQLite error code.
        status: String,
        /// What the store said.
        message: String,
    },
    /// Stored data could not be decoded.
    #[error("corrupt stored data in {op}: {message}")]
    Corrupt {
        /// The operation, such as `load_profile`.
        op: &'static str,
        /// What could not be decoded.
        message: String,
    },
}

impl StoreError {
    /// Whether the server should answer 503 (try again later) rather than 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Writes enriched events durably and idempotently on `(brand_id, event_id)`.
#[allow(async_fn_in_trait)]
pub trait EventSink {
    /// Writes the rows (search rows for `search_performed` events go to `cdp_searches` too,
    /// the identity edges they make to `cdp_identity_edges`, in the same transaction)
    /// and returns each row's outcome in input order. A row whose key appears earlier in the
    /// same batch is a [`WriteOutcome::Duplicate`]. Returns only once the data is durable;
    /// SQLite and Postgres use one transaction per call, so the caller's batch is the group
    /// commit.
    async fn write_events(&self, rows: &[EventRow]) -> Result<Vec<WriteOutcome>, StoreError>;

    /// Which of these event ids are already stored for the brand.
    async fn existing_event_ids(
        &self,
        brand: &BrandId,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, StoreError>;

    /// When the brand's latest stored event was processed, or `None` when it has none: what
    /// `/health` reports as `last_event_at` after a restart. It reads the newest rows by `seq`
    /// (one index probe, no scan); with concurrent writers it can trail the very latest commit
    /// by the moments between a row taking its `seq` and its transaction committing.
    async fn last_processed_at(&self, brand: &BrandId)
        -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// The identity log (`cdp_identity_edges`): the edges between identifiers that
/// [`cdp_core::identity::resolve`] turns into people. Edges of events are written by
/// [`EventSink::write_events`] in the events' own transaction (the core's
/// [`cdp_core::identity::batch_edges`] of the batch); this role reads the log and adds the
/// admin's merges and splits. Every write keeps one edge per pair of identifiers and kind, the
/// earliest by `(at, event_id)`, so repeating an edge changes nothing.
#[allow(async_fn_in_trait)]
pub trait IdentityStore {
    /// Every edge of the brand's log.
    async fn identity_edges(&self, brand: &BrandId) -> Result<Vec<Edge>, StoreError>;

    /// Adds edges (durable when it returns), each kept only if it is earlier than the one
    /// stored for its pair.
    async fn add_edges(&self, brand: &BrandId, edges: &[Edge]) -> Result<(), StoreError>;

    /// Stamps `cdp_profiles.person_id` with the core's partition
    /// ([`cdp_core::identity::person_of_browsers`]): each listed browser's profile gets its
    /// person, every other profile of the brand none. Returns how many rows changed, or `None`
    /// when the backend does not keep the column (Supabase REST: `cdp serve` on the same
    /// database over `postgres://` stamps it).
    async fn stamp_people(
        &self,
        brand: &BrandId,
        people: &[(AnonymousId, PersonId)],
    ) -> Result<Option<u64>, StoreError>;

    /// The person each stamped profile holds (`None`: not kept here). For tests and audits.
    async fn stamped_people(
        &self,
        brand: &BrandId,
    ) -> Result<Option<BTreeMap<AnonymousId, String>>, StoreError>;
}

/// What one erasure removed (counts only: the audit row holds these, never an identifier).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    /// Events deleted.
    pub events: u64,
    /// Search rows deleted.
    pub searches: u64,
    /// Profiles deleted.
    pub profiles: u64,
    /// Identity edges deleted.
    pub edges: u64,
    /// Browsers that are not erased but lost events that carried one of the identifiers (a
    /// login on their device): their profiles were deleted and must be rebuilt from the
    /// events they keep.
    #[serde(skip)]
    pub rebuild: Vec<AnonymousId>,
}

/// What the erasure audit shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErasureFigures {
    /// Erasures done.
    pub erasures: u64,
    /// Tombstones held (one per erased identifier).
    pub tombstones: u64,
    /// Events suppressed because they carried an erased identifier.
    pub suppressed: u64,
}

/// Why an erasure could not be done.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The store failed; nothing was erased (one transaction).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backend cannot erase in one transaction.
    #[error(
        "{backend} cannot erase a person in one transaction; point cdp serve at the same \
         database through a postgres:// URL"
    )]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
    },
}

/// Erasing one person ([`cdp_core::identity::Erasure`]) and the tombstones that keep them
/// erased (`cdp_tombstones`, `cdp_erasures`).
#[allow(async_fn_in_trait)]
pub trait EraseStore {
    /// In one transaction: keeps the erasure's tombstones and its audit row; deletes the
    /// events [`cdp_core::identity::Erasure::removes`] (read from the candidates the erasure
    /// names), their searches, the profiles of every browser that lost events, the erasure's
    /// edges; and takes the deleted events out of the rollups with
    /// [`cdp_core::counting::fold::without`] (only events already folded count there; the
    /// deleted ones still queued for the fold are taken off the queue).
    async fn erase(
        &self,
        brand: &BrandId,
        erasure: &Erasure,
        rules: &IdentityRules,
        erasure_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Erased, EraseError>;

    /// The brand's tombstone hashes.
    async fn tombstones(&self, brand: &BrandId) -> Result<Vec<String>, EraseError>;

    /// Adds suppressed events to their tombstones' counts (`hits`: hash and events).
    async fn count_suppressed(
        &self,
        brand: &BrandId,
        hits: &[(String, u64)],
        at: DateTime<Utc>,
    ) -> Result<(), EraseError>;

    /// The erasure audit's figures.
    async fn erasure_figures(&self, brand: &BrandId) -> Result<ErasureFigures, EraseError>;
}

/// Loads and saves golden profiles, which expire `profile_ttl_days` after their last update.
#[allow(async_fn_in_trait)]
pub trait ProfileStore {
    /// The stored profile, or `None` when there is none or its `expires_at` is before `now`.
    async fn load_profile(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, StoreError>;

    /// Upserts profiles in one transaction, each expiring `cfg.profile_ttl_days()` after its
    /// `last_updated`. When the slice holds the same visitor twice, the later one wins.
    async fn save_profiles(&self, cfg: &Config, profiles: &[Profile]) -> Result<(), StoreError>;

    /// Deletes profiles whose `expires_at` is before `now`; returns how many.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// A visitor's stored events in processing order (`seq`), only those processed at or after
    /// `after` when given: the source of truth a profile is rebuilt or caught up from. The
    /// bound is inclusive so events that share the profile's `last_updated` are never missed;
    /// [`cdp_core::apply`] skips the ones the profile has already seen.
    async fn visitor_events(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<EventRow>, StoreError>;

    /// [`ProfileStore::load_profile`] for many visitors in one request: the live stored
    /// profile of each id that has one (expired and missing ids are absent from the map).
    async fn load_profiles(
        &self,
        brand: &BrandId,
        ids: &[AnonymousId],
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<AnonymousId, Profile>, StoreError>;

    /// [`ProfileStore::visitor_events`] for many visitors in one request, each with its own
    /// inclusive `after` bound: each visitor's events in processing order. Visitors without
    /// events are absent from the map. This is what a cache miss catches a profile up from.
    async fn visitor_events_many(
        &self,
        brand: &BrandId,
        since: &[(AnonymousId, Option<DateTime<Utc>>)],
    ) -> Result<BTreeMap<AnonymousId, Vec<EventRow>>, StoreError>;

    /// A page of the visitors that have stored events, in ascending id order, all after
    /// `after` when given; at most `limit` and at least one until every visitor has been
    /// listed, so `rebuild-profiles` can walk everyone by passing the last id back.
    async fn visitor_ids(
        &self,
        brand: &BrandId,
        after: Option<&AnonymousId>,
        limit: usize,
    ) -> Result<Vec<AnonymousId>, StoreError>;
}
