//! PostgREST requests and answers as data, with no transport: what the Supabase REST sink
//! sends for a batch of rows, which HTTP statuses are retried, how a refused batch is split
//! until the bad rows are alone, and how the answer becomes per-row outcomes.
//!
//! It is separate from [`crate::supabase`] (which drives it over `reqwest`) so that a shell
//! without tokio, such as the Cloudflare Worker's queue consumer (wasm32, `fetch`), sends
//! exactly the same requests and makes exactly the same decisions.

use crate::codec::{self, EventColumns, SearchColumns, EVENT_COLUMNS};
use crate::WriteOutcome;
use cdp_core::{BrandId, EventRow};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// The `Prefer` header for event inserts: skip rows already stored, and answer with the keys
/// of the rows this request inserted, so each row gets an exact outcome in one round trip.
pub const EVENTS_PREFER: &str = "resolution=ignore-duplicates,return=representation";

/// The `Prefer` header for search inserts.
pub const SEARCHES_PREFER: &str = "resolution=ignore-duplicates,return=minimal";

/// Retries of 5xx, 429 and connection failures: exponential backoff from `base`, honouring
/// `Retry-After` up to `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first.
    pub attempts: u32,
    /// First backoff delay; doubled after each failure.
    pub base: Duration,
    /// Longest single wait, including a server's `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 0).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.base.saturating_mul(2u32.saturating_pow(attempt));
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
}

/// What a non-2xx status means for the request that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The server is down or busy (5xx, 429): send the same request again later.
    Retry,
    /// Some row is unacceptable (400, 409): split the batch until the bad rows are alone.
    Split,
    /// The API refuses us rather than the request: a wrong or rotated service key (401, 403),
    /// or a project the platform restricts (402, Supabase's fair-use restriction). The store is
    /// out of reach until someone fixes that, and the request itself was fine, so it is
    /// `Unavailable` (clients are told to retry later), but resending it now is pointless.
    Refused,
    /// Anything else (404, ...): the request itself is wrong; retrying will not help.
    Fail,
}

impl Verdict {
    /// The verdict for a non-success status.
    pub fn of(status: u16) -> Verdict {
        match status {
            500..=599 | 429 => Verdict::Retry,
            400 | 409 => Verdict::Split,
            401..=403 => Verdict::Refused,
            _ => Verdict::Fail,
        }
    }
}

/// The query of an event insert: upsert on the idempotency key, explicit columns, and only the
/// key selected back.
pub fn events_query() -> Vec<(&'static str, String)> {
    vec![
        ("on_conflict", "brand_id,event_id".to_owned()),
        ("columns", EVENT_COLUMNS.join(",")),
        ("select", "brand_id,event_id".to_owned()),
    ]
}

/// The query of a search insert.
pub fn searches_query() -> Vec<(&'static str, String)> {
    vec![("on_conflict", "brand_id,event_id".to_owned())]
}

/// The `Prefer` header for identity edge inserts: an edge already stored for its pair stays.
/// (PostgREST cannot keep the earlier of two rows as the SQL backends do, so over REST the
/// first edge stored for a pair is kept; the events and the partition are the same, and only
/// which event is named as attaching an identifier can differ when edges arrive out of order.)
pub const EDGES_PREFER: &str = "resolution=ignore-duplicates,return=minimal";

/// The query of edge inserts: the conflict target is the log's key.
pub fn edges_query() -> Vec<(&'static str, String)> {
    vec![(
        "on_conflict",
        "brand_id,edge_kind,a_kind,a_value,b_kind,b_value".to_owned(),
    )]
}

/// The query that reads a brand's tombstones (`cdp_tombstones`: the keyed hashes of erased
/// identifiers) and the rows it answers, `[{"hash": ...}]`, as hashes.
pub fn tombstones_query(brand: &BrandId) -> Vec<(&'static str, String)> {
    vec![
        ("select", "hash".to_owned()),
        ("brand_id", format!("eq.{}", brand.as_str())),
    ]
}

/// The hashes of a `cdp_tombstones` answer (see [`tombstones_query`]).
pub fn tombstone_hashes(body: &str) -> Result<Vec<String>, String> {
    let rows: Vec<Value> = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    rows.iter()
        .map(|r| {
            r.get("hash")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("a row without a hash: {r}"))
        })
        .collect()
}

/// The `cdp_identity_edges` body rows of the edges `rows` make, skipping the indices in
/// `skip` (dead-lettered rows): [`cdp_core::identity::batch_edges`] of the rest.
pub fn edge_bodies(rows: &[EventRow], skip: &[usize]) -> Vec<Value> {
    let kept = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| !skip.contains(i))
        .map(|(_, r)| r);
    cdp_core::identity::batch_edges(kept)
        .iter()
        .map(|(b, e)| {
            serde_json::to_value(codec::EdgeColumns::from_edge(b, e)).unwrap_or(Value::Null)
        })
        .collect()
}

/// A PostgREST `in.(...)` filter for arbitrary strings: every item double-quoted, with `"` and
/// `\` escaped by a backslash, so commas, dots and parentheses inside a visitor id stay data.
pub fn in_filter<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = values
        .into_iter()
        .map(|v| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("in.({})", items.join(","))
}

/// The `cdp_events` body rows for `rows`, in order.
pub fn event_bodies(rows: &[EventRow]) -> (Vec<EventColumns>, Vec<Value>) {
    let cols: Vec<EventColumns> = rows.iter().map(EventColumns::from_row).collect();
    // Serialising plain strings, numbers and JSON values cannot fail.
    let bodies = cols
        .iter()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect();
    (cols, bodies)
}

/// The `cdp_searches` body rows for the search events among `rows`, skipping the indices in
/// `skip` (rows that were dead-lettered).
pub fn search_bodies(rows: &[EventRow], skip: &[usize]) -> Vec<Value> {
    rows.iter()
        .enumerate()
        .filter(|(i, _)| !skip.contains(i))
        .filter_map(|(_, r)| r.search())
        .map(|s| serde_json::to_value(SearchColumns::from_row(&s)).unwrap_or(Value::Null))
        .collect()
}

/// Per-row outcomes from the representations PostgREST returned for the accepted parts of an
/// event insert, with the dead-lettered indices marked.
pub fn event_outcomes(
    cols: &[EventColumns],
    returned: &[Value],
    dead: &[usize],
) -> Vec<WriteOutcome> {
    let inserted: HashSet<(String, String)> = returned
        .iter()
        .filter_map(|r| {
            Some((
                r.get("brand_id")?.as_str()?.to_owned(),
                r.get("event_id")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut outcomes = codec::outcomes(&codec::keys(cols), &inserted);
    for i in dead {
        if let Some(o) = outcomes.get_mut(*i) {
            *o = WriteOutcome::DeadLettered;
        }
    }
    outcomes
}

/// PostgREST's error body as one line: `SQLSTATE message (details)`, or the raw text.
pub fn error_text(body: &str) -> String {
    let clipped: String = body.chars().take(500).collect();
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return clipped;
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let mut s = format!("{} {}", field("code"), field("message"))
        .trim()
        .to_owned();
    if !field("details").is_empty() {
        s.push_str(&format!(" ({})", field("details")));
    }
    if s.is_empty() {
        clipped
    } else {
        s
    }
}

/// Splitting a refused batch in halves until each bad row is alone. The caller sends
/// [`Bisection::next_part`] and reports the answer; the first half is always tried first, so
/// good rows are written in their original order.
#[derive(Debug, Clone)]
pub struct Bisection {
    rows: Vec<Value>,
    pending: Vec<(usize, usize)>,
    current: Option<(usize, usize)>,
    returned: Vec<Value>,
    dead: Vec<usize>,
}

impl Bisection {
    /// A plan that starts by sending every row at once.
    pub fn new(rows: Vec<Value>) -> Bisection {
        let pending = if rows.is_empty() {
            Vec::new()
        } else {
            vec![(0, rows.len())]
        };
        Bisection {
            rows,
            pending,
            current: None,
            returned: Vec::new(),
            dead: Vec::new(),
        }
    }

    /// The body to send next (a JSON array), or `None` when every row is settled.
    pub fn next_part(&mut self) -> Option<Value> {
        let (start, end) = self.pending.pop()?;
        self.current = Some((start, end));
        Some(Value::Array(self.rows[start..end].to_vec()))
    }

    /// The part just sent was stored; `answer` is PostgREST's body (an array or nothing).
    pub fn stored(&mut self, answer: Value) {
        self.current = None;
        if let Value::Array(items) = answer {
            self.returned.extend(items);
        }
    }

    /// The part just sent was refused with a [`Verdict::Split`] status. Returns the index and
    /// the row when it was alone, so the caller dead-letters it; otherwise the halves are
    /// queued.
    pub fn refused(&mut self) -> Option<(usize, &Value)> {
        let (start, end) = self.current.take()?;
        if end - start <= 1 {
            self.dead.push(start);
            return self.rows.get(start).map(|r| (start, r));
        }
        let mid = start + (end - start) / 2;
        // Pushed in reverse so the first half is tried first.
        self.pending.push((mid, end));
        self.pending.push((start, mid));
        None
    }

    /// What was returned for the stored parts, and the indices of the rows dead-lettered.
    pub fn finish(self) -> (Vec<Value>, Vec<usize>) {
        (self.returned, self.dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backoff_doubles_and_honours_retry_after_within_the_cap() {
        let p = RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        let got: Vec<u128> = (0..6).map(|a| p.delay(a, None).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1600, 2000]);
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(60))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn statuses_map_to_verdicts() {
        let got: Vec<(u16, Verdict)> = [400, 401, 402, 403, 404, 409, 429, 500, 502, 503, 540]
            .into_iter()
            .map(|s| (s, Verdict::of(s)))
            .collect();
        assert_eq!(
            got,
            [
                (400, Verdict::Split),
                (401, Verdict::Refused),
                (402, Verdict::Refused),
                (403, Verdict::Refused),
                (404, Verdict::Fail),
                (409, Verdict::Split),
                (429, Verdict::Retry),
                (500, Verdict::Retry),
                (502, Verdict::Retry),
                (503, Verdict::Retry),
                (540, Verdict::Retry),
            ]
        );
    }

    #[test]
    fn in_filter_quotes_every_item() {
        assert_eq!(
            in_filter(["a", r#"v-'q"uo,te(s).eq"#, r"back\slash"]),
            r#"in.("a","v-'q\"uo,te(s).eq","back\\slash")"#
        );
    }

    #[test]
    fn bisection_isolates_bad_rows_and_keeps_order() {
        let rows: Vec<Value> = (0..5).map(|i| json!({ "i": i })).collect();
        let bad = [1usize, 4];
        let mut plan = Bisection::new(rows);
        let mut sent = Vec::new();
        while let Some(part) = plan.next_part() {
            let ids: Vec<i64> = part
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["i"].as_i64())
                .collect();
            sent.push(ids.clone());
            if ids.iter().any(|i| bad.contains(&(*i as usize))) {
                plan.refused();
            } else {
                plan.stored(Value::Array(part.as_array().cloned().unwrap_or_default()));
            }
        }
        let (returned, dead) = plan.finish();
        let stored: Vec<i64> = returned.iter().filter_map(|r| r["i"].as_i64()).collect();
        assert_eq!(stored, [0, 2, 3]);
        assert_eq!(dead, [1, 4]);
        assert_eq!(sent[0], [0, 1, 2, 3, 4]);
    }
}
