//! Delivering a batch of enriched rows to Supabase REST without doing I/O: the queue consumer
//! asks for the next request, sends it with `fetch`, and reports the answer. The requests, the
//! retry/split verdicts and the per-row outcomes are `cdp_adapters::rest`, the same code the
//! Rust Supabase sink runs, so both shells write identical rows and refuse the same ones.
//!
//! A batch either ends delivered (every row inserted, already present, or dead-lettered on its
//! own after a 400/409) or asks to be retried as a whole (5xx, 429, network, or a status that
//! says the request itself is wrong, such as a bad key). Retrying a partly written batch is
//! harmless: rows are keyed by `(brand_id, event_id)` and duplicates are ignored.

use cdp_adapters::codec::EventColumns;
use cdp_adapters::rest::{self, Bisection, RetryPolicy, Verdict};
use cdp_adapters::WriteOutcome;
use cdp_core::EventRow;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// Queue retries back off from one second, doubling, to five minutes.
pub const QUEUE_RETRY: RetryPolicy = RetryPolicy {
    attempts: u32::MAX,
    base: Duration::from_secs(1),
    max_delay: Duration::from_secs(300),
};

/// One request for the shell to send to `{SUPABASE_URL}/rest/v1/{table}?{query}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestRequest {
    /// Table.
    pub table: &'static str,
    /// Always `POST`.
    pub method: &'static str,
    /// Encoded query string.
    pub query: String,
    /// `Prefer` header.
    pub prefer: &'static str,
    /// JSON body.
    pub body: String,
}

/// A row refused on its own, to be kept in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadRow {
    /// Table that refused it.
    pub table: &'static str,
    /// HTTP status.
    pub status: u16,
    /// PostgREST's error, one line.
    pub error: String,
    /// The row as sent.
    pub row: Value,
    /// Index of the event in the batch.
    pub index: Option<usize>,
}

/// How the batch ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Ended {
    /// Every row is settled; ack every message.
    Delivered {
        /// Per row: `inserted`, `duplicate` or `dead_lettered`.
        outcomes: Vec<&'static str>,
        /// Rows to keep in the dead-letter queue.
        dead: Vec<DeadRow>,
    },
    /// Retry every message later.
    Retry {
        /// HTTP status, or `network`.
        status: String,
        /// What went wrong.
        message: String,
        /// Event types in the batch, for the failure log.
        event_types: Vec<String>,
        /// A server's `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Events,
    Searches,
    Edges,
    Done,
}

/// The delivery of one batch.
#[derive(Debug)]
pub struct Delivery {
    rows: Vec<EventRow>,
    cols: Vec<EventColumns>,
    phase: Phase,
    plan: Bisection,
    current: &'static str,
    outcomes: Vec<WriteOutcome>,
    dead: Vec<DeadRow>,
    failed: Option<Ended>,
}

impl Delivery {
    /// A delivery of `rows`, starting with the `cdp_events` insert.
    pub fn new(rows: Vec<EventRow>) -> Delivery {
        let (cols, bodies) = rest::event_bodies(&rows);
        Delivery {
            rows,
            cols,
            phase: Phase::Events,
            plan: Bisection::new(bodies),
            current: "cdp_events",
            outcomes: Vec::new(),
            dead: Vec::new(),
            failed: None,
        }
    }

    /// The next request, or `None` when the batch has ended (see [`Delivery::end`]).
    pub fn next_request(&mut self) -> Option<RestRequest> {
        loop {
            if self.failed.is_some() || self.phase == Phase::Done {
                return None;
            }
            if let Some(body) = self.plan.next_part() {
                let (query, prefer) = match self.phase {
                    Phase::Events => (rest::events_query(), rest::EVENTS_PREFER),
                    Phase::Edges => (rest::edges_query(), rest::EDGES_PREFER),
                    _ => (rest::searches_query(), rest::SEARCHES_PREFER),
                };
                return Some(RestRequest {
                    table: self.current,
                    method: "POST",
                    query: encode_query(&query),
                    prefer,
                    body: body.to_string(),
                });
            }
            self.advance();
        }
    }

    fn advance(&mut self) {
        let plan = std::mem::replace(&mut self.plan, Bisection::new(Vec::new()));
        let (returned, dead) = plan.finish();
        match self.phase {
            Phase::Events => {
                self.outcomes = rest::event_outcomes(&self.cols, &returned, &dead);
                self.plan = Bisection::new(rest::search_bodies(&self.rows, &dead));
                self.current = "cdp_searches";
                self.phase = Phase::Searches;
            }
            Phase::Searches => {
                // The edges of the rows that were stored (not the dead-lettered ones).
                let dead_rows: Vec<usize> = self.dead.iter().filter_map(|d| d.index).collect();
                self.plan = Bisection::new(rest::edge_bodies(&self.rows, &dead_rows));
                self.current = "cdp_identity_edges";
                self.phase = Phase::Edges;
            }
            Phase::Edges | Phase::Done => self.phase = Phase::Done,
        }
    }

    /// Reports the HTTP answer to the last request.
    pub fn answer(&mut self, status: u16, body: &str, retry_after: Option<u64>) {
        if (200..300).contains(&status) {
            self.plan
                .stored(serde_json::from_str(body).unwrap_or(Value::Null));
            return;
        }
        let message = rest::error_text(body);
        match Verdict::of(status) {
            Verdict::Split => {
                let events = self.phase == Phase::Events;
                if let Some((i, row)) = self.plan.refused() {
                    self.dead.push(DeadRow {
                        table: self.current,
                        status,
                        error: message,
                        row: row.clone(),
                        index: events.then_some(i),
                    });
                }
            }
            Verdict::Retry | Verdict::Refused | Verdict::Fail => {
                self.fail(status.to_string(), message, retry_after);
            }
        }
    }

    /// Reports that the last request got no HTTP answer.
    pub fn network_error(&mut self, message: &str) {
        self.fail("network".to_owned(), message.to_owned(), None);
    }

    fn fail(&mut self, status: String, message: String, retry_after: Option<u64>) {
        let event_types: BTreeSet<String> = self
            .rows
            .iter()
            .map(|r| r.event_type.as_str().to_owned())
            .collect();
        self.failed = Some(Ended::Retry {
            status,
            message,
            event_types: event_types.into_iter().collect(),
            retry_after,
        });
    }

    /// How the batch ended; call once [`Delivery::next_request`] returned `None`.
    pub fn end(self) -> Ended {
        if let Some(failed) = self.failed {
            return failed;
        }
        let outcomes = self
            .outcomes
            .iter()
            .map(|o| match o {
                WriteOutcome::Inserted => "inserted",
                WriteOutcome::Duplicate => "duplicate",
                WriteOutcome::DeadLettered => "dead_lettered",
            })
            .collect();
        Ended::Delivered {
            outcomes,
            dead: self.dead,
        }
    }
}

/// Seconds before the next try of a message that has been tried `attempts` times.
pub fn retry_delay_seconds(attempts: u32, retry_after: Option<u64>) -> u64 {
    QUEUE_RETRY
        .delay(
            attempts.saturating_sub(1),
            retry_after.map(Duration::from_secs),
        )
        .as_secs()
}

/// `k=v&k=v` with everything but unreserved characters percent-encoded.
pub(crate) fn encode_query(pairs: &[(&str, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_backoff_doubles_to_five_minutes_and_honours_retry_after() {
        let got: Vec<u64> = (1..=11).map(|a| retry_delay_seconds(a, None)).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(retry_delay_seconds(1, Some(7)), 7);
    }

    #[test]
    fn an_empty_batch_ends_delivered_without_a_request() {
        let mut d = Delivery::new(Vec::new());
        assert_eq!(d.next_request(), None);
        assert_eq!(
            d.end(),
            Ended::Delivered {
                outcomes: Vec::new(),
                dead: Vec::new()
            }
        );
    }

    #[test]
    fn queries_are_encoded_like_a_form() {
        assert_eq!(
            encode_query(&[("on_conflict", "brand_id,event_id".into())]),
            "on_conflict=brand_id%2Cevent_id"
        );
    }
}
