//! The collector's HTTP answers at the edge: origin, content type and size checks, the
//! per-event reply, error bodies and CORS headers, byte for byte what `cdp serve` answers
//! (its `collect`, `reply` and CORS layer), so a client cannot tell the two shells apart.
//!
//! `cdp serve` keeps these shapes in its binary crate, which nothing may depend on, so they are
//! restated here as data; the Worker test suite posts the same bad inputs to a real `cdp serve`
//! and to the Worker and compares status, body and CORS headers.

use cdp_core::{parse_body, validate, BodyError, Config, Rejection, ValidEvent, Violation};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Content types the collector reads: JSON, and the `text/plain` that `navigator.sendBeacon`
/// sends for a string body without a CORS preflight.
pub const ACCEPTED_CONTENT_TYPES: [&str; 2] = ["application/json", "text/plain"];

/// Seconds a client is asked to wait when the pipeline is down.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// `cdp serve`'s default body cap.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// The browser origins allowed to call the collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Any origin (`*`).
    Any,
    /// Exactly these `scheme://host[:port]` values.
    List(Vec<String>),
}

impl Origins {
    /// Parses `CDP_ALLOWED_ORIGINS` as `cdp serve` does: comma-separated, `*` alone for any.
    pub fn parse(text: &str) -> Result<Origins, String> {
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
                    "CDP_ALLOWED_ORIGINS: `{item}` must be scheme://host[:port] with no path, or \
                     `*` alone"
                )),
            }
        }
        if problems.is_empty() {
            Ok(Origins::List(list))
        } else {
            Err(problems.join("; "))
        }
    }

    /// Whether a request's `Origin` header value is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::List(list) => list.iter().any(|o| o == origin),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request, if any.
    fn allow_header(&self, origin: Option<&str>) -> Option<String> {
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
    /// Dotted path of the field, or `body`, `content-type`, `origin`, `store`.
    pub field: String,
    /// The rule it breaks.
    pub rule: String,
}

impl Problem {
    fn new(field: impl Into<String>, rule: impl Into<String>) -> Problem {
        Problem {
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
    /// Queued for the store and applied to the profile.
    Accepted,
    /// Seen before; nothing changed.
    Duplicate,
    /// Broke the contract; nothing stored.
    Rejected,
}

/// The answer for one event, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventReply {
    /// The event id, when known.
    pub event_id: Option<String>,
    /// Outcome.
    pub status: Status,
    /// Why it was rejected; empty otherwise.
    pub problems: Vec<Problem>,
}

/// The body of a `/collect` answer that looked at the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectReply {
    /// Events accepted now.
    pub accepted: usize,
    /// Events seen before.
    pub duplicate: usize,
    /// Events refused.
    pub rejected: usize,
    /// One entry per event, in request order.
    pub events: Vec<EventReply>,
}

/// Why a request failed as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// The body could not be split into events.
    MalformedBody(Vec<Problem>),
    /// The content type is not one the collector reads.
    UnsupportedMediaType(String),
    /// The body is larger than the cap.
    TooLarge(usize),
    /// The browser origin is not on the allowlist.
    OriginNotAllowed,
    /// The pipeline cannot take events now; the client should retry.
    StoreUnavailable,
    /// Something broke on our side.
    Internal,
    /// No such route.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
}

impl AppError {
    /// The machine name a shell uses to ask for this error (`not_found`, ...).
    pub fn from_name(name: &str) -> AppError {
        match name {
            "not_found" => AppError::NotFound,
            "method_not_allowed" => AppError::MethodNotAllowed,
            "store_unavailable" => AppError::StoreUnavailable,
            _ => AppError::Internal,
        }
    }

    fn parts(&self) -> (u16, &'static str, Vec<Problem>) {
        match self {
            AppError::MalformedBody(problems) => (400, "malformed_body", problems.clone()),
            AppError::UnsupportedMediaType(got) => (
                415,
                "unsupported_media_type",
                vec![Problem::new(
                    "content-type",
                    format!("must be application/json or text/plain, got `{got}`"),
                )],
            ),
            AppError::TooLarge(max) => (
                413,
                "payload_too_large",
                vec![Problem::new("body", format!("at most {max} bytes"))],
            ),
            AppError::OriginNotAllowed => (
                403,
                "origin_not_allowed",
                vec![Problem::new("origin", "not in the allowed origins")],
            ),
            AppError::StoreUnavailable => (
                503,
                "store_unavailable",
                vec![Problem::new(
                    "store",
                    format!(
                        "unavailable, nothing was stored; retry after {RETRY_AFTER_SECONDS} seconds"
                    ),
                )],
            ),
            AppError::Internal => (
                500,
                "internal",
                vec![Problem::new(
                    "server",
                    "internal error, nothing was stored; retry later",
                )],
            ),
            AppError::MethodNotAllowed => (
                405,
                "method_not_allowed",
                vec![Problem::new("method", "not allowed on this route")],
            ),
            AppError::NotFound => (
                404,
                "not_found",
                vec![Problem::new("path", "route not found")],
            ),
        }
    }
}

/// An HTTP answer for the shell to send as is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body text (JSON or empty).
    pub body: String,
}

/// What the collector is configured to accept.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Browser origins allowed.
    pub origins: Origins,
    /// Body cap in bytes.
    pub max_body_bytes: usize,
}

/// The request as the shell saw it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// `Origin` header.
    pub origin: Option<&'a str>,
    /// `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// `Content-Length` header.
    pub content_length: Option<&'a str>,
    /// The body, read up to one byte past the cap.
    pub body: &'a [u8],
}

/// One event of an accepted request: valid (to be applied) or already refused.
pub type Checked = Result<ValidEvent, Rejection>;

impl Gate {
    /// The steps of `POST /collect` up to persisting, in `cdp serve`'s order: origin, content
    /// type, size, split, validate. Returns the events, or the answer refusing the request.
    pub fn check(
        &self,
        cfg: &Config,
        req: &Incoming<'_>,
        received_at: DateTime<Utc>,
    ) -> Result<(Vec<Value>, Vec<Checked>), AppError> {
        if let Some(o) = req.origin {
            if !self.origins.allows(o) {
                return Err(AppError::OriginNotAllowed);
            }
        }
        check_content_type(req.content_type)?;
        let declared = req
            .content_length
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes as u64)
            || req.body.len() > self.max_body_bytes
        {
            return Err(AppError::TooLarge(self.max_body_bytes));
        }
        let raw = parse_body(cfg, req.body).map_err(|e| {
            let rule = match &e {
                BodyError::MalformedJson(why) => format!("malformed JSON ({why})"),
                other => other
                    .to_string()
                    .strip_prefix("body: ")
                    .map(str::to_owned)
                    .unwrap_or_else(|| other.to_string()),
            };
            AppError::MalformedBody(vec![Problem::new("body", rule)])
        })?;
        let checked = raw.iter().map(|v| validate(cfg, v, received_at)).collect();
        Ok((raw, checked))
    }

    /// The answer for a refused request, with CORS headers.
    pub fn error(&self, e: &AppError, origin: Option<&str>) -> Reply {
        let (status, error, problems) = e.parts();
        let body = json!({ "error": error, "problems": problems }).to_string();
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if status == 503 {
            headers.push(("retry-after".to_owned(), RETRY_AFTER_SECONDS.to_string()));
        }
        self.cors(origin, &mut headers);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The per-event answer: `statuses` holds the store's answer for each valid event, in
    /// order. 200 as soon as one event is durable, so the client does not resend good ones.
    pub fn collect_reply(
        &self,
        checked: Vec<Checked>,
        statuses: &[Status],
        origin: Option<&str>,
    ) -> Reply {
        let mut stored = statuses.iter();
        let events: Vec<EventReply> = checked
            .into_iter()
            .map(|c| match c {
                Ok(e) => EventReply {
                    event_id: Some(e.event_id.hyphenated().to_string()),
                    status: stored.next().copied().unwrap_or(Status::Accepted),
                    problems: Vec::new(),
                },
                Err(r) => EventReply {
                    event_id: r.event_id,
                    status: Status::Rejected,
                    problems: r.problems.into_iter().map(Problem::from).collect(),
                },
            })
            .collect();
        let count = |s: Status| events.iter().filter(|e| e.status == s).count();
        let reply = CollectReply {
            accepted: count(Status::Accepted),
            duplicate: count(Status::Duplicate),
            rejected: count(Status::Rejected),
            events,
        };
        let status = if reply.accepted + reply.duplicate > 0 {
            200
        } else {
            400
        };
        self.json(status, &reply, origin)
    }

    /// A JSON answer with CORS headers.
    pub fn json<T: Serialize>(&self, status: u16, body: &T, origin: Option<&str>) -> Reply {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        self.cors(origin, &mut headers);
        Reply {
            status,
            headers,
            body: serde_json::to_string(body).unwrap_or_default(),
        }
    }

    /// The answer to any `OPTIONS` request (tower-http's `CorsLayer` treats every one as a
    /// preflight): 200, empty, with the allowed methods, headers and max age.
    pub fn preflight(&self, origin: Option<&str>) -> Reply {
        let mut headers = Vec::new();
        self.cors(origin, &mut headers);
        headers.push((
            "access-control-allow-methods".to_owned(),
            "GET,POST".to_owned(),
        ));
        headers.push((
            "access-control-allow-headers".to_owned(),
            "content-type".to_owned(),
        ));
        headers.push(("access-control-max-age".to_owned(), "86400".to_owned()));
        Reply {
            status: 200,
            headers,
            body: String::new(),
        }
    }

    fn cors(&self, origin: Option<&str>, headers: &mut Vec<(String, String)>) {
        headers.push((
            "vary".to_owned(),
            "origin, access-control-request-method, access-control-request-headers".to_owned(),
        ));
        if let Some(allow) = self.origins.allow_header(origin) {
            headers.push(("access-control-allow-origin".to_owned(), allow));
        }
    }
}

fn check_content_type(raw: Option<&str>) -> Result<(), AppError> {
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
    Err(AppError::UnsupportedMediaType(if shown.is_empty() {
        "none".to_owned()
    } else {
        shown
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        Gate {
            origins: Origins::parse("https://southlandorganics.com").expect("origins"),
            max_body_bytes: 1024,
        }
    }

    fn check(origin: Option<&str>, ct: Option<&str>, body: &str) -> (u16, String) {
        let cfg = Config::southland();
        let req = Incoming {
            origin,
            content_type: ct,
            content_length: None,
            body: body.as_bytes(),
        };
        match gate().check(&cfg, &req, DateTime::<Utc>::UNIX_EPOCH) {
            Ok(_) => (200, String::new()),
            Err(e) => {
                let r = gate().error(&e, origin);
                (r.status, r.body)
            }
        }
    }

    #[test]
    fn whole_request_refusals_match_the_server_table() {
        let json = Some("application/json");
        let cases = [
            (
                check(Some("https://evil.example"), json, "{}"),
                403,
                "origin_not_allowed",
            ),
            (
                check(None, Some("text/html"), "{}"),
                415,
                "unsupported_media_type",
            ),
            (check(None, None, "{}"), 415, "`none`"),
            (
                check(None, json, &"x".repeat(2000)),
                413,
                "at most 1024 bytes",
            ),
            (check(None, json, "{"), 400, "malformed JSON"),
            (check(None, json, "[]"), 400, "the batch is empty"),
            (check(None, json, "3"), 400, "must be an event object"),
        ];
        for ((status, body), want_status, want_text) in cases {
            assert_eq!(status, want_status, "{body}");
            assert!(body.contains(want_text), "{body} lacks {want_text}");
        }
        assert_eq!(check(None, Some("text/plain;charset=UTF-8"), "{}").0, 200);
    }

    #[test]
    fn origins_parse_like_the_server() {
        assert_eq!(Origins::parse("*"), Ok(Origins::Any));
        assert_eq!(Origins::parse(""), Ok(Origins::List(Vec::new())));
        assert!(Origins::parse("https://a.example/path").is_err());
    }
}
