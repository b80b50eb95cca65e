//! The collector's gate and answers, shared by every shell (`cdp serve` and the Worker): which
//! origins and content types are let in, how a body becomes events, and the exact JSON a
//! client gets back, per event or for a refused request. Transport-free: statuses are numbers
//! and bodies are serialisable values, so each shell only copies them onto its own response.

use crate::config::Config;
use crate::contract::{parse_body, validate, BodyError, Rejection, ValidEvent, Violation};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Content types the collector reads: JSON, and the `text/plain` that `navigator.sendBeacon`
/// sends for a string body without a CORS preflight.
pub const ACCEPTED_CONTENT_TYPES: [&str; 2] = ["application/json", "text/plain"];

/// Seconds a client is asked to wait when the store is down.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// The browser origins allowed to call the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Any origin (`*`).
    Any,
    /// Exactly these, as `scheme://host[:port]`.
    List(Vec<String>),
}

impl Origins {
    /// Parses a comma-separated list; `*` alone allows any origin, an empty list none. Each
    /// problem names the offending item.
    pub fn parse(text: &str) -> Result<Origins, Vec<String>> {
        let items: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items == ["*"] {
            return Ok(Origins::Any);
        }
        let mut list = Vec::new();
        let mut problems = Vec::new();
        for item in items {
            let rest = item
                .strip_prefix("https://")
                .or_else(|| item.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains('/') && !host.contains('*') => {
                    list.push(item.to_owned());
                }
                _ => problems.push(format!(
                    "`{item}` must be scheme://host[:port] with no path, or `*` alone"
                )),
            }
        }
        if problems.is_empty() {
            Ok(Origins::List(list))
        } else {
            Err(problems)
        }
    }

    /// Whether a request's `Origin` header value is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::List(list) => list.iter().any(|o| o == origin),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request, if it gets one.
    pub fn allow_header(&self, origin: Option<&str>) -> Option<String> {
        match (self, origin) {
            (Origins::Any, _) => Some("*".to_owned()),
            (Origins::List(_), Some(o)) if self.allows(o) => Some(o.to_owned()),
            _ => None,
        }
    }
}

/// One problem, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Dotted path of the field, or `body`, `content-type`, `origin`, `store`, a parameter.
    pub field: String,
    /// The rule it breaks.
    pub rule: String,
}

impl Problem {
    /// A problem from its parts.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl From<Violation> for Problem {
    fn from(v: Violation) -> Self {
        Problem::new(v.field, v.rule)
    }
}

/// What happened to one event of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored durably (or queued durably at the edge) and applied to the profile.
    Accepted,
    /// Already stored earlier; nothing changed.
    Duplicate,
    /// Broke the contract, or the store refused it alone; not stored.
    Rejected,
    /// Carries an identifier of an erased person (`identity::Tombstones`): not stored, and
    /// counted. The client must not send it again.
    Suppressed,
}

/// The answer for one event, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventReply {
    /// The event id (the client's, or the one derived from content), when known.
    pub event_id: Option<String>,
    /// Outcome.
    pub status: Status,
    /// Why it was rejected; empty otherwise.
    pub problems: Vec<Problem>,
}

/// The problem an event suppressed by a tombstone is answered with (both shells).
pub fn suppressed_problem() -> Problem {
    Problem::new(
        "event",
        "carries an identifier of an erased person; not stored (counted)",
    )
}

/// The body of a `/collect` answer that looked at the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectReply {
    /// Events stored now.
    pub accepted: usize,
    /// Events stored before.
    pub duplicate: usize,
    /// Events refused.
    pub rejected: usize,
    /// Events of erased people, not stored (counted on their tombstones).
    pub suppressed: usize,
    /// One entry per event, in request order.
    pub events: Vec<EventReply>,
}

impl CollectReply {
    /// Counts the statuses.
    pub fn new(events: Vec<EventReply>) -> Self {
        let count = |s: Status| events.iter().filter(|e| e.status == s).count();
        Self {
            accepted: count(Status::Accepted),
            duplicate: count(Status::Duplicate),
            rejected: count(Status::Rejected),
            suppressed: count(Status::Suppressed),
            events,
        }
    }

    /// 200 as soon as one event is durable (or suppressed, which is final too), so the
    /// client does not resend the good ones; 400 when every event was refused.
    pub fn http_status(&self) -> u16 {
        if self.accepted + self.duplicate + self.suppressed > 0 {
            200
        } else {
            400
        }
    }
}

/// The body of every refused request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code.
    pub error: String,
    /// Every problem.
    pub problems: Vec<Problem>,
}

/// Why the collector refused a request as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The body could not be split into events.
    #[error("malformed body")]
    MalformedBody(Vec<Problem>),
    /// The content type is not one the collector reads (the value received, clipped).
    #[error("unsupported content type")]
    UnsupportedMediaType(String),
    /// The body is larger than the cap (in bytes).
    #[error("body too large")]
    TooLarge(usize),
    /// The body did not arrive whole within this many seconds of the request.
    #[error("body too slow")]
    BodyTimeout(u64),
    /// The browser origin is not on the allowlist.
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// The store cannot take writes now; the client should retry.
    #[error("store unavailable")]
    StoreUnavailable,
    /// Something broke on our side.
    #[error("internal error")]
    Internal,
    /// No such route or resource (what was looked for).
    #[error("not found")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl Refusal {
    /// The HTTP status.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::MalformedBody(_) => 400,
            Refusal::UnsupportedMediaType(_) => 415,
            Refusal::TooLarge(_) => 413,
            Refusal::BodyTimeout(_) => 408,
            Refusal::OriginNotAllowed => 403,
            Refusal::StoreUnavailable => 503,
            Refusal::Internal => 500,
            Refusal::NotFound(_) => 404,
            Refusal::MethodNotAllowed => 405,
        }
    }

    /// Seconds the client should wait before retrying, for answers that carry `Retry-After`.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        (self.http_status() == 503).then_some(RETRY_AFTER_SECONDS)
    }

    /// The JSON body naming every problem.
    pub fn body(&self) -> ErrorBody {
        let (error, problems) = match self {
            Refusal::MalformedBody(problems) => ("malformed_body", problems.clone()),
            Refusal::UnsupportedMediaType(got) => (
                "unsupported_media_type",
                vec![Problem::new(
                    "content-type",
                    format!("must be application/json or text/plain, got `{got}`"),
                )],
            ),
            Refusal::TooLarge(max) => (
                "payload_too_large",
                vec![Problem::new("body", format!("at most {max} bytes"))],
            ),
            Refusal::BodyTimeout(seconds) => (
                "request_timeout",
                vec![Problem::new(
                    "body",
                    format!("must arrive whole within {seconds} seconds of the request"),
                )],
            ),
            Refusal::OriginNotAllowed => (
                "origin_not_allowed",
                vec![Problem::new("origin", "not in the allowed origins")],
            ),
            Refusal::StoreUnavailable => (
                "store_unavailable",
                vec![Problem::new(
                    "store",
                    format!(
                        "unavailable, nothing was stored; retry after {RETRY_AFTER_SECONDS} seconds"
                    ),
                )],
            ),
            Refusal::Internal => (
                "internal",
                vec![Problem::new(
                    "server",
                    "internal error, nothing was stored; retry later",
                )],
            ),
            Refusal::NotFound(what) => (
                "not_found",
                vec![Problem::new("path", format!("{what} not found"))],
            ),
            Refusal::MethodNotAllowed => (
                "method_not_allowed",
                vec![Problem::new("method", "not allowed on this route")],
            ),
        };
        ErrorBody {
            error: error.to_owned(),
            problems,
        }
    }
}

/// A browser request from an origin outside the allowlist is refused, even the `text/plain`
/// kind that CORS alone would let through. Requests without an `Origin` (servers, curl) pass.
pub fn check_origin(origins: &Origins, origin: Option<&str>) -> Result<(), Refusal> {
    match origin {
        Some(o) if !origins.allows(o) => Err(Refusal::OriginNotAllowed),
        _ => Ok(()),
    }
}

/// Accepts the content types in [`ACCEPTED_CONTENT_TYPES`], parameters (`charset`) ignored.
pub fn check_content_type(raw: Option<&str>) -> Result<(), Refusal> {
    let raw = raw.unwrap_or("");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ACCEPTED_CONTENT_TYPES.contains(&essence.as_str()) {
        return Ok(());
    }
    let shown: String = raw.chars().take(100).collect();
    Err(Refusal::UnsupportedMediaType(if shown.is_empty() {
        "none".to_owned()
    } else {
        shown
    }))
}

/// Most bytes of a refused body read and thrown away so that the client reads the answer.
/// Most clients (Python's `http.client`, most SDKs, anything without `Expect: 100-continue`)
/// write the whole body before they read; a server that answers and closes while the body is
/// still arriving makes the kernel reset the connection over the unread bytes, and the client
/// sees a network error instead of the refusal and sends the same body again. The largest
/// body cap is 16 MiB, so any body a client could plausibly mean to send fits.
pub const DISCARD_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Whether the rest of a refused body is read and thrown away before the answer goes out
/// (both shells): not when the client waits for `100 Continue` (the body is not on its way),
/// nor when it declares more than [`DISCARD_MAX_BYTES`] (cheaper to cut off than to read).
pub fn discards_refused_body(expect: Option<&str>, content_length: Option<&str>) -> bool {
    let expects_continue = expect.is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    let declared_huge = content_length
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > DISCARD_MAX_BYTES);
    !expects_continue && !declared_huge
}

/// Refuses a body whose declared length (`Content-Length`) or actual length passes the cap.
pub fn check_size(
    declared: Option<&str>,
    actual: Option<usize>,
    cap: usize,
) -> Result<(), Refusal> {
    let declared = declared.and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) || actual.is_some_and(|n| n > cap) {
        return Err(Refusal::TooLarge(cap));
    }
    Ok(())
}

/// Splits a body into raw events, refusing it whole when it is not a batch of events.
pub fn split_events(cfg: &Config, body: &[u8]) -> Result<Vec<Value>, Refusal> {
    parse_body(cfg, body).map_err(|e| {
        let rule = match &e {
            BodyError::MalformedJson(why) => format!("malformed JSON ({why})"),
            other => other
                .to_string()
                .strip_prefix("body: ")
                .map(str::to_owned)
                .unwrap_or_else(|| other.to_string()),
        };
        Refusal::MalformedBody(vec![Problem::new("body", rule)])
    })
}

/// Validates each raw event at the receive time.
pub fn validate_each(
    cfg: &Config,
    raw: &[Value],
    received_at: DateTime<Utc>,
) -> Vec<Result<ValidEvent, Rejection>> {
    raw.iter().map(|v| validate(cfg, v, received_at)).collect()
}

/// What the answer needs of one checked event: its id when it is valid, its rejection when
/// it is not.
pub type Slot = Result<Uuid, Rejection>;

/// Takes the valid events out of `checked`, in order, to be stored, and leaves what the answer
/// needs of every event ([`Slot`]s, in request order): the events move, nothing is copied.
pub fn take_valid(checked: Vec<Result<ValidEvent, Rejection>>) -> (Vec<ValidEvent>, Vec<Slot>) {
    let mut valid = Vec::with_capacity(checked.len());
    let slots = checked
        .into_iter()
        .map(|c| {
            c.map(|e| {
                let id = e.event_id;
                valid.push(e);
                id
            })
        })
        .collect();
    (valid, slots)
}

/// The per-event answer. `stored` holds the store's verdict for each valid event, in order
/// (`Status::Rejected` with a problem for a row the store refused on its own); a valid event
/// without a verdict counts as accepted.
pub fn collect_reply(slots: Vec<Slot>, stored: Vec<(Status, Option<Problem>)>) -> CollectReply {
    let mut stored = stored.into_iter();
    let events = slots
        .into_iter()
        .map(|c| match c {
            Ok(event_id) => {
                let (status, problem) = stored.next().unwrap_or((Status::Accepted, None));
                EventReply {
                    event_id: Some(event_id.hyphenated().to_string()),
                    status,
                    problems: problem.into_iter().collect(),
                }
            }
            Err(r) => EventReply {
                event_id: r.event_id,
                status: Status::Rejected,
                problems: r.problems.into_iter().map(Problem::from).collect(),
            },
        })
        .collect();
    CollectReply::new(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_body_is_discarded_unless_the_client_waits_or_declares_a_huge_one() {
        let huge = (DISCARD_MAX_BYTES + 1).to_string();
        let cases = [
            (None, None, true),
            (None, Some("300000"), true),
            (None, Some(huge.as_str()), false),
            (Some("100-continue"), Some("300000"), false),
            (Some(" 100-Continue "), None, false),
            (Some("something-else"), None, true),
            (None, Some("not a number"), true),
        ];
        for (expect, length, want) in cases {
            assert_eq!(
                discards_refused_body(expect, length),
                want,
                "{expect:?} {length:?}"
            );
        }
    }

    #[test]
    fn origins_parse_into_an_allowlist_and_name_bad_items() {
        assert_eq!(Origins::parse("*"), Ok(Origins::Any));
        assert_eq!(Origins::parse(""), Ok(Origins::List(Vec::new())));
        assert_eq!(
            Origins::parse("https://a.example, http://b.example:8080"),
            Ok(Origins::List(vec![
                "https://a.example".into(),
                "http://b.example:8080".into()
            ]))
        );
        assert_eq!(
            Origins::parse("https://a.example/path"),
            Err(vec![
                "`https://a.example/path` must be scheme://host[:port] with no path, or `*` alone"
                    .into()
            ])
        );
    }

    #[test]
    fn request_checks_refuse_with_the_documented_status_and_body() {
        let cfg = Config::southland();
        let list = Origins::parse("https://site.example").expect("valid");
        let cases: Vec<(Result<(), Refusal>, u16, &str)> = vec![
            (
                check_origin(&list, Some("https://evil.example")),
                403,
                "origin_not_allowed",
            ),
            (check_origin(&list, None), 0, ""),
            (
                check_content_type(Some("text/html")),
                415,
                "got `text/html`",
            ),
            (check_content_type(None), 415, "got `none`"),
            (check_content_type(Some("text/plain;charset=UTF-8")), 0, ""),
            (
                check_size(Some("2000"), None, 1024),
                413,
                "at most 1024 bytes",
            ),
            (
                check_size(None, Some(1025), 1024),
                413,
                "at most 1024 bytes",
            ),
            (
                Err(Refusal::BodyTimeout(10)),
                408,
                "must arrive whole within 10 seconds",
            ),
            (split_events(&cfg, b"{").map(|_| ()), 400, "malformed JSON"),
            (
                split_events(&cfg, b"[]").map(|_| ()),
                400,
                "the batch is empty",
            ),
            (
                split_events(&cfg, b"3").map(|_| ()),
                400,
                "must be an event object",
            ),
        ];
        for (got, status, text) in cases {
            match got {
                Ok(()) => assert_eq!(status, 0, "expected a refusal containing {text}"),
                Err(r) => {
                    let body = serde_json::to_string(&r.body()).expect("serialises");
                    assert_eq!(r.http_status(), status, "{body}");
                    assert!(body.contains(text), "{body} lacks {text}");
                }
            }
        }
        assert_eq!(Refusal::StoreUnavailable.retry_after_seconds(), Some(5));
        assert_eq!(Refusal::TooLarge(1).retry_after_seconds(), None);
    }

    #[test]
    fn valid_events_are_taken_out_and_the_answer_keeps_request_order() {
        let cfg = Config::southland();
        let at: DateTime<Utc> = "2026-03-04T10:00:00Z".parse().expect("time");
        let event = |id: &str| {
            serde_json::json!({
                "v": 1, "event": "page_view", "event_id": id, "anonymous_id": "v-1",
                "session_id": "s-1",
                "timestamp": "2026-03-04T09:59:00Z", "page_url": "https://example.com/"
            })
        };
        let ids = [
            "00000000-0000-4000-8000-000000000001",
            "00000000-0000-4000-8000-000000000003",
        ];
        let raw = vec![
            event(ids[0]),
            serde_json::json!({"event": "nope"}),
            event(ids[1]),
        ];
        let (valid, slots) = take_valid(validate_each(&cfg, &raw, at));
        let valid_ids: Vec<String> = valid.iter().map(|e| e.event_id.to_string()).collect();
        assert_eq!(valid_ids, ids);
        assert_eq!(slots.len(), 3);
        assert!(slots[1].is_err(), "{slots:?}");

        let stored = vec![(Status::Accepted, None), (Status::Duplicate, None)];
        let reply = collect_reply(slots, stored);
        let statuses: Vec<(Option<String>, Status)> = reply
            .events
            .iter()
            .map(|e| (e.event_id.clone(), e.status))
            .collect();
        assert_eq!(
            statuses,
            vec![
                (Some(ids[0].to_owned()), Status::Accepted),
                (None, Status::Rejected),
                (Some(ids[1].to_owned()), Status::Duplicate),
            ]
        );
    }
}
