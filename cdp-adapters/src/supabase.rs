//! The Supabase REST backend: the same tables through PostgREST (`/rest/v1`) with the
//! service-role key, for deployments that only have an HTTPS endpoint.
//!
//! Decisions, each for a reason:
//! - Events are posted with `on_conflict=brand_id,event_id` and
//!   `Prefer: resolution=ignore-duplicates,return=representation` selecting only the key: the
//!   answer lists exactly the rows this request inserted, so every row gets an exact
//!   Inserted/Duplicate outcome in the same round trip. `return=minimal` plus a prior
//!   `existing_event_ids` read would cost a second request and race with concurrent writers.
//! - 5xx, 429 and connection failures are retried with exponential backoff, honouring
//!   `Retry-After`; when retries run out the error is `Unavailable` (the server answers 503).
//! - A 401, 402 or 403 means the platform refuses us, not the request (a wrong or rotated key,
//!   a project restricted under the fair-use policy): the store is out of reach, so the error
//!   is `Unavailable` at once, without retries that could not help. A project whose services
//!   are down answers 5xx, retried like any other 5xx. Any other status is `Rejected` with
//!   PostgREST's error.
//! - A 400 or 409 means some row is unacceptable. The batch is split in halves until the bad
//!   rows are isolated; the good rows are written and each bad row is appended, with the HTTP
//!   status and PostgREST's error, to `<dead_letter_dir>/<table>-<UTC date>.ndjson` (fsynced),
//!   and reported as [`WriteOutcome::DeadLettered`].
//! - Search rows go in a second request after their events (PostgREST has no multi-table
//!   transaction); both requests are idempotent, so a retry after a failure between them
//!   completes the searches.
//! - The key is sent only in headers marked sensitive, is redacted in `Debug`, and never
//!   appears in an error message.

use crate::codec::{self, EventColumns, ProfileColumns, EVENT_COLUMNS, PROFILE_COLUMNS};
use crate::rest::{self, error_text, Bisection, Verdict};
use crate::store::{ServiceKey, SupabaseTarget};
use crate::{EventSink, IdentityStore, ProfileStore, StoreError, WriteOutcome};
use cdp_core::identity::{Edge, PersonId};
use cdp_core::{AnonymousId, BrandId, Config, EventRow, Profile};
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Rows per page when reading (Supabase caps responses at 1000 rows by default).
const PAGE_ROWS: usize = 1000;

/// Ids per `in.(...)` filter, to keep URLs short.
const IDS_PER_QUERY: usize = 100;

pub use crate::rest::RetryPolicy;

/// A Supabase REST store. Cloning shares the HTTP client.
#[derive(Debug, Clone)]
pub struct SupabaseStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    rest: String,
    key: ServiceKey,
    schema: String,
    dead_letter_dir: PathBuf,
    retry: RetryPolicy,
}

/// A request that failed without a retryable cause.
enum Failure {
    /// A non-retryable HTTP status, with PostgREST's error text.
    Status(StatusCode, String),
    /// Anything else, already mapped.
    Store(StoreError),
}

impl Failure {
    fn into_store(self, op: &'static str) -> StoreError {
        match self {
            Failure::Status(status, message) => StoreError::Rejected {
                op,
                status: format!("HTTP {}", status.as_u16()),
                message,
            },
            Failure::Store(e) => e,
        }
    }
}

/// One request to PostgREST.
struct Call<'a> {
    method: Method,
    table: &'a str,
    query: Vec<(&'a str, String)>,
    prefer: Option<&'a str>,
    body: Option<&'a Value>,
}

impl<'a> Call<'a> {
    fn get(table: &'a str, query: Vec<(&'a str, String)>) -> Call<'a> {
        Call {
            method: Method::GET,
            table,
            query,
            prefer: None,
            body: None,
        }
    }
}

impl SupabaseStore {
    /// Builds the HTTP client; makes no request.
    pub fn open(target: &SupabaseTarget) -> Result<SupabaseStore, StoreError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| StoreError::Unavailable {
                op: "open",
                message: format!("HTTP client: {e}"),
            })?;
        Ok(SupabaseStore {
            inner: Arc::new(Inner {
                http,
                rest: format!("{}/rest/v1", target.url.trim_end_matches('/')),
                key: target.key.clone(),
                schema: target.schema.clone(),
                dead_letter_dir: target.dead_letter_dir.clone(),
                retry: target.retry,
            }),
        })
    }

    /// PostgREST cannot run DDL, so this only checks that the three tables answer; when one
    /// does not, the error says to run `docs/schemas/cdp-events.sql` (or `cdp migrate` with
    /// the database's `postgres://` URL). Applies nothing, so returns no versions.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        for table in ["cdp_events", "cdp_searches", "cdp_profiles"] {
            let call = Call::get(table, vec![("select", "*".into()), ("limit", "0".into())]);
            if let Err(f) = self.send("migrate", &call).await {
                let e = f.into_store("migrate");
                return Err(match e {
                    StoreError::Rejected {
                        op,
                        status,
                        message,
                    } => StoreError::Rejected {
                        op,
                        status,
                        message: format!(
                            "{table} is not reachable through the REST API ({message}); run \
                             docs/schemas/cdp-events.sql in the Supabase SQL editor or `cdp \
                             migrate` with the database's postgres:// URL"
                        ),
                    },
                    other => other,
                });
            }
        }
        Ok(Vec::new())
    }

    /// Whether the API answers and `cdp_events` is readable.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let call = Call::get(
            "cdp_events",
            vec![("select", "event_id".into()), ("limit", "1".into())],
        );
        self.send("ping", &call)
            .await
            .map(drop)
            .map_err(|f| f.into_store("ping"))
    }

    /// Sends a call, retrying 5xx, 429 and connection failures; returns the body.
    async fn send(&self, op: &'static str, call: &Call<'_>) -> Result<Value, Failure> {
        let inner = &self.inner;
        let url = format!("{}/{}", inner.rest, call.table);
        let mut last = String::new();
        for attempt in 0..inner.retry.attempts.max(1) {
            if attempt > 0 {
                tracing::warn!(op, table = call.table, attempt, error = %last, "retrying Supabase request");
            }
            let mut req = inner
                .http
                .request(call.method.clone(), &url)
                .headers(self.headers(call.method == Method::GET, call.prefer))
                .query(&call.query);
            if let Some(body) = call.body {
                req = req.json(body);
            }
            let retry_after = match req.send().await {
                Err(e) => {
                    // reqwest errors name the URL, never the headers, so the key stays out.
                    last = format!("request failed: {e}");
                    None
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        if text.trim().is_empty() {
                            return Ok(Value::Null);
                        }
                        return serde_json::from_str(&text).map_err(|e| {
                            Failure::Store(StoreError::Corrupt {
                                op,
                                message: format!("{} answer is not JSON: {e}", call.table),
                            })
                        });
                    }
                    let message = format!("{} {}: {}", call.method, call.table, error_text(&text));
                    match Verdict::of(status.as_u16()) {
                        Verdict::Retry => {
                            last = format!("HTTP {} {message}", status.as_u16());
                            retry_after
                        }
                        Verdict::Refused => {
                            return Err(Failure::Store(StoreError::Unavailable {
                                op,
                                message: format!(
                                    "Supabase REST refused the service key or the project (HTTP {}): {message}",
                                    status.as_u16()
                                ),
                            }))
                        }
                        Verdict::Split | Verdict::Fail => {
                            return Err(Failure::Status(status, message));
                        }
                    }
                }
            };
            if attempt + 1 < inner.retry.attempts {
                tokio::time::sleep(inner.retry.delay(attempt, retry_after)).await;
            }
        }
        Err(Failure::Store(StoreError::Unavailable {
            op,
            message: format!(
                "Supabase REST gave up after {} attempts; last: {last}",
                inner.retry.attempts
            ),
        }))
    }

    fn headers(&self, read: bool, prefer: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        let key = self.inner.key.expose();
        if let Ok(mut v) = HeaderValue::from_str(key) {
            v.set_sensitive(true);
            h.insert("apikey", v);
        }
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {key}")) {
            v.set_sensitive(true);
            h.insert(AUTHORIZATION, v);
        }
        if self.inner.schema != "public" {
            if let Ok(v) = HeaderValue::from_str(&self.inner.schema) {
                h.insert(
                    if read {
                        "accept-profile"
                    } else {
                        "content-profile"
                    },
                    v,
                );
            }
        }
        if let Some(p) = prefer.and_then(|p| HeaderValue::from_str(p).ok()) {
            h.insert("prefer", p);
        }
        h
    }

    /// Posts `rows` to `table`, splitting on 400/409 until the bad rows are alone. Returns the
    /// representation PostgREST answered for every accepted part, and the indices of the rows
    /// that were dead-lettered.
    async fn post_bisecting(
        &self,
        op: &'static str,
        table: &str,
        query: &[(&str, String)],
        prefer: &str,
        rows: &[Value],
    ) -> Result<(Vec<Value>, Vec<usize>), StoreError> {
        let mut plan = Bisection::new(rows.to_vec());
        while let Some(body) = plan.next_part() {
            let call = Call {
                method: Method::POST,
                table,
                query: query.to_vec(),
                prefer: Some(prefer),
                body: Some(&body),
            };
            match self.send(op, &call).await {
                Ok(answer) => plan.stored(answer),
                Err(Failure::Status(status, message))
                    if Verdict::of(status.as_u16()) == Verdict::Split =>
                {
                    if let Some((_, row)) = plan.refused() {
                        tracing::warn!(op, table, status = status.as_u16(), error = %message,
                            "Supabase refused a row; dead-lettered");
                        self.dead_letter(table, status, &message, row).await?;
                    }
                }
                Err(f) => return Err(f.into_store(op)),
            }
        }
        Ok(plan.finish())
    }

    /// Appends a refused row to today's dead-letter file for the table, durably.
    async fn dead_letter(
        &self,
        table: &str,
        status: StatusCode,
        error: &str,
        row: &Value,
    ) -> Result<(), StoreError> {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or_default();
        let path = self
            .inner
            .dead_letter_dir
            .join(format!("{table}-{}.ndjson", at.format("%Y-%m-%d")));
        let line = json!({
            "failed_at": codec::ts_text(at),
            "table": table,
            "status": status.as_u16(),
            "error": error,
            "row": row,
        })
        .to_string();
        let dir = self.inner.dead_letter_dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(line.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_data()
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|message| StoreError::Unavailable {
            op: "dead_letter",
            message: format!(
                "writing {}: {message}",
                self.inner.dead_letter_dir.display()
            ),
        })
    }

    /// Reads every page of a GET ordered by `seq`.
    async fn get_events(
        &self,
        op: &'static str,
        filters: Vec<(&'static str, String)>,
    ) -> Result<Vec<EventRow>, StoreError> {
        let select = format!("seq,{}", EVENT_COLUMNS.join(","));
        let mut out = Vec::new();
        let mut last_seq: Option<i64> = None;
        loop {
            let mut query = filters.clone();
            query.push(("select", select.clone()));
            query.push(("order", "seq.asc".into()));
            query.push(("limit", PAGE_ROWS.to_string()));
            if let Some(seq) = last_seq {
                query.push(("seq", format!("gt.{seq}")));
            }
            let body = self
                .send(op, &Call::get("cdp_events", query))
                .await
                .map_err(|f| f.into_store(op))?;
            let items = as_rows(op, body)?;
            let n = items.len();
            for item in items {
                last_seq = item.get("seq").and_then(Value::as_i64);
                let cols: EventColumns =
                    serde_json::from_value(item).map_err(|e| StoreError::Corrupt {
                        op,
                        message: format!("cdp_events row: {e}"),
                    })?;
                out.push(cols.into_row(op)?);
            }
            if n < PAGE_ROWS || last_seq.is_none() {
                return Ok(out);
            }
        }
    }
}

fn as_rows(op: &'static str, body: Value) -> Result<Vec<Value>, StoreError> {
    match body {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Err(StoreError::Corrupt {
            op,
            message: format!("expected a JSON array, got {other}"),
        }),
    }
}

fn to_json<T: serde::Serialize>(op: &'static str, v: &T) -> Result<Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt {
        op,
        message: format!("row to JSON: {e}"),
    })
}

impl EventSink for SupabaseStore {
    async fn write_events(&self, rows: &[EventRow]) -> Result<Vec<WriteOutcome>, StoreError> {
        let op = "write_events";
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let (cols, bodies) = rest::event_bodies(rows);
        let (returned, dead) = self
            .post_bisecting(
                op,
                "cdp_events",
                &rest::events_query(),
                rest::EVENTS_PREFER,
                &bodies,
            )
            .await?;
        let outcomes = rest::event_outcomes(&cols, &returned, &dead);

        let searches = rest::search_bodies(rows, &dead);
        if !searches.is_empty() {
            self.post_bisecting(
                op,
                "cdp_searches",
                &rest::searches_query(),
                rest::SEARCHES_PREFER,
                &searches,
            )
            .await?;
        }
        let edges = rest::edge_bodies(rows, &dead);
        if !edges.is_empty() {
            self.post_bisecting(
                op,
                "cdp_identity_edges",
                &rest::edges_query(),
                rest::EDGES_PREFER,
                &edges,
            )
            .await?;
        }
        Ok(outcomes)
    }

    async fn existing_event_ids(
        &self,
        brand: &BrandId,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, StoreError> {
        let op = "existing_event_ids";
        let mut out = HashSet::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let list: Vec<String> = chunk.iter().map(|i| codec::uuid_text(*i)).collect();
            let query = vec![
                ("select", "event_id".to_owned()),
                ("brand_id", format!("eq.{brand}")),
                ("event_id", format!("in.({})", list.join(","))),
            ];
            let body = self
                .send(op, &Call::get("cdp_events", query))
                .await
                .map_err(|f| f.into_store(op))?;
            for item in as_rows(op, body)? {
                if let Some(id) = item.get("event_id").and_then(Value::as_str) {
                    out.insert(codec::parse_uuid(op, id)?);
                }
            }
        }
        Ok(out)
    }
    async fn last_processed_at(
        &self,
        brand: &BrandId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let op = "last_processed_at";
        let query = vec![
            ("select", "processed_at".to_owned()),
            ("brand_id", format!("eq.{brand}")),
            ("order", "seq.desc".to_owned()),
            ("limit", "100".to_owned()),
        ];
        let body = self
            .send(op, &Call::get("cdp_events", query))
            .await
            .map_err(|f| f.into_store(op))?;
        let mut latest = None;
        for item in as_rows(op, body)? {
            if let Some(t) = item.get("processed_at").and_then(Value::as_str) {
                latest = latest.max(Some(codec::parse_ts(op, t)?));
            }
        }
        Ok(latest)
    }
}

/// Edges read per request (PostgREST's `max-rows` on Supabase is 1,000 by default).
const EDGES_PER_PAGE: usize = 1000;

impl IdentityStore for SupabaseStore {
    async fn identity_edges(&self, brand: &BrandId) -> Result<Vec<Edge>, StoreError> {
        let op = "identity_edges";
        let mut out = Vec::new();
        loop {
            let query = vec![
                ("select", codec::EDGE_COLUMNS.join(",")),
                ("brand_id", format!("eq.{brand}")),
                (
                    "order",
                    "edge_kind,a_kind,a_value,b_kind,b_value".to_owned(),
                ),
                ("limit", EDGES_PER_PAGE.to_string()),
                ("offset", out.len().to_string()),
            ];
            let body = self
                .send(op, &Call::get("cdp_identity_edges", query))
                .await
                .map_err(|f| f.into_store(op))?;
            let page = as_rows(op, body)?;
            let full = page.len() == EDGES_PER_PAGE;
            for item in page {
                let cols: codec::EdgeColumns =
                    serde_json::from_value(item).map_err(|e| StoreError::Corrupt {
                        op,
                        message: format!("identity edge: {e}"),
                    })?;
                out.push(cols.into_edge(op)?);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    async fn add_edges(&self, brand: &BrandId, edges: &[Edge]) -> Result<(), StoreError> {
        let op = "add_edges";
        let bodies: Vec<Value> = edges
            .iter()
            .map(|e| {
                serde_json::to_value(codec::EdgeColumns::from_edge(brand, e)).unwrap_or(Value::Null)
            })
            .collect();
        if bodies.is_empty() {
            return Ok(());
        }
        let (_, dead) = self
            .post_bisecting(
                op,
                "cdp_identity_edges",
                &rest::edges_query(),
                rest::EDGES_PREFER,
                &bodies,
            )
            .await?;
        if dead.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Rejected {
                op,
                status: "400".to_owned(),
                message: format!("{} of {} edges refused", dead.len(), bodies.len()),
            })
        }
    }

    async fn stamp_people(
        &self,
        _brand: &BrandId,
        _people: &[(AnonymousId, PersonId)],
    ) -> Result<Option<u64>, StoreError> {
        // One PATCH per browser would be needed: PostgREST updates no rows from a list.
        Ok(None)
    }

    async fn stamped_people(
        &self,
        _brand: &BrandId,
    ) -> Result<Option<BTreeMap<AnonymousId, String>>, StoreError> {
        Ok(None)
    }
}

impl ProfileStore for SupabaseStore {
    async fn load_profile(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        now: DateTime<Utc>,
    ) -> Result<Option<Profile>, StoreError> {
        let op = "load_profile";
        let query = vec![
            ("select", "profile".to_owned()),
            ("brand_id", format!("eq.{brand}")),
            ("anonymous_id", format!("eq.{id}")),
            ("expires_at", format!("gte.{}", codec::ts_text(now))),
        ];
        let body = self
            .send(op, &Call::get("cdp_profiles", query))
            .await
            .map_err(|f| f.into_store(op))?;
        match as_rows(op, body)?.into_iter().next() {
            None => Ok(None),
            Some(mut row) => {
                let v = row
                    .get_mut("profile")
                    .map(Value::take)
                    .unwrap_or(Value::Null);
                codec::profile_from_json(op, v).map(Some)
            }
        }
    }

    async fn save_profiles(&self, cfg: &Config, profiles: &[Profile]) -> Result<(), StoreError> {
        let op = "save_profiles";
        let bodies = codec::latest_per_visitor(profiles)
            .into_iter()
            .map(|p| to_json(op, &ProfileColumns::from_profile(cfg, p)?))
            .collect::<Result<Vec<_>, _>>()?;
        if bodies.is_empty() {
            return Ok(());
        }
        let body = Value::Array(bodies);
        let call = Call {
            method: Method::POST,
            table: "cdp_profiles",
            query: vec![
                ("on_conflict", "brand_id,anonymous_id".to_owned()),
                ("columns", PROFILE_COLUMNS.join(",")),
            ],
            prefer: Some("resolution=merge-duplicates,return=minimal"),
            body: Some(&body),
        };
        self.send(op, &call)
            .await
            .map(drop)
            .map_err(|f| f.into_store(op))
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let op = "purge_expired";
        let call = Call {
            method: Method::DELETE,
            table: "cdp_profiles",
            query: vec![
                ("expires_at", format!("lt.{}", codec::ts_text(now))),
                ("select", "anonymous_id".to_owned()),
            ],
            prefer: Some("return=representation"),
            body: None,
        };
        let body = self.send(op, &call).await.map_err(|f| f.into_store(op))?;
        Ok(as_rows(op, body)?.len() as u64)
    }

    async fn visitor_events(
        &self,
        brand: &BrandId,
        id: &AnonymousId,
        after: Option<DateTime<Utc>>,
    ) -> Result<Vec<EventRow>, StoreError> {
        let mut filters = vec![
            ("brand_id", format!("eq.{brand}")),
            ("anonymous_id", format!("eq.{id}")),
        ];
        if let Some(after) = after {
            filters.push(("processed_at", format!("gte.{}", codec::ts_text(after))));
        }
        self.get_events("visitor_events", filters).await
    }
    async fn load_profiles(
        &self,
        brand: &BrandId,
        ids: &[AnonymousId],
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<AnonymousId, Profile>, StoreError> {
        let op = "load_profiles";
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let query = vec![
                ("select", "anonymous_id,profile".to_owned()),
                ("brand_id", format!("eq.{brand}")),
                (
                    "anonymous_id",
                    rest::in_filter(chunk.iter().map(AnonymousId::as_str)),
                ),
                ("expires_at", format!("gte.{}", codec::ts_text(now))),
            ];
            let body = self
                .send(op, &Call::get("cdp_profiles", query))
                .await
                .map_err(|f| f.into_store(op))?;
            for mut row in as_rows(op, body)? {
                let v = row
                    .get_mut("profile")
                    .map(Value::take)
                    .unwrap_or(Value::Null);
                let p = codec::profile_from_json(op, v)?;
                out.insert(p.anonymous_id.clone(), p);
            }
        }
        Ok(out)
    }

    /// Per chunk of visitors, one paged read from the earliest bound among them; rows before a
    /// visitor's own bound are dropped here, as PostgREST has no per-row bound to join on.
    async fn visitor_events_many(
        &self,
        brand: &BrandId,
        since: &[(AnonymousId, Option<DateTime<Utc>>)],
    ) -> Result<BTreeMap<AnonymousId, Vec<EventRow>>, StoreError> {
        let op = "visitor_events_many";
        let mut out: BTreeMap<AnonymousId, Vec<EventRow>> = BTreeMap::new();
        for chunk in since.chunks(IDS_PER_QUERY) {
            let bounds: BTreeMap<&AnonymousId, Option<DateTime<Utc>>> =
                chunk.iter().map(|(id, after)| (id, *after)).collect();
            let mut filters = vec![
                ("brand_id", format!("eq.{brand}")),
                (
                    "anonymous_id",
                    rest::in_filter(chunk.iter().map(|(id, _)| id.as_str())),
                ),
            ];
            let earliest = chunk.iter().map(|(_, after)| *after).min().flatten();
            if let Some(after) = earliest {
                filters.push(("processed_at", format!("gte.{}", codec::ts_text(after))));
            }
            for row in self.get_events(op, filters).await? {
                let keep = match bounds.get(&row.anonymous_id) {
                    Some(Some(after)) => row.processed_at >= *after,
                    Some(None) => true,
                    None => false,
                };
                if keep {
                    out.entry(row.anonymous_id.clone()).or_default().push(row);
                }
            }
        }
        Ok(out)
    }

    /// PostgREST has no `distinct`: pages of `anonymous_id` in order, repeats dropped. A page
    /// always holds at least one id after `after`, so the caller always makes progress.
    async fn visitor_ids(
        &self,
        brand: &BrandId,
        after: Option<&AnonymousId>,
        limit: usize,
    ) -> Result<Vec<AnonymousId>, StoreError> {
        let op = "visitor_ids";
        let mut query = vec![
            ("select", "anonymous_id".to_owned()),
            ("brand_id", format!("eq.{brand}")),
            ("order", "anonymous_id.asc".to_owned()),
            ("limit", PAGE_ROWS.to_string()),
        ];
        if let Some(after) = after {
            query.push(("anonymous_id", format!("gt.{after}")));
        }
        let body = self
            .send(op, &Call::get("cdp_events", query))
            .await
            .map_err(|f| f.into_store(op))?;
        let mut out: Vec<AnonymousId> = Vec::new();
        for item in as_rows(op, body)? {
            let Some(id) = item.get("anonymous_id").and_then(Value::as_str) else {
                continue;
            };
            if out.last().is_none_or(|last| last.as_str() != id) {
                if out.len() == limit.max(1) {
                    break;
                }
                out.push(AnonymousId::new(id));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_reads_postgrest_errors() {
        let body = r#"{"code":"23514","message":"new row violates check constraint","details":"Failing row contains (x)","hint":null}"#;
        assert_eq!(
            error_text(body),
            "23514 new row violates check constraint (Failing row contains (x))"
        );
        assert_eq!(error_text("plain"), "plain");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let target = SupabaseTarget {
            url: "https://abc.supabase.co".into(),
            key: ServiceKey::new("super-secret-service-key"),
            dead_letter_dir: PathBuf::from("/tmp/dl"),
            schema: "public".into(),
            retry: RetryPolicy::default(),
        };
        let store = SupabaseStore::open(&target).expect("client");
        let shown = format!("{target:?} {store:?} {:?}", store.headers(false, None));
        assert!(!shown.contains("super-secret"), "{shown}");
    }
}
