//! Event contract v1: turns untrusted JSON into a [`ValidEvent`] or a list of every problem,
//! each naming the field path and the rule it breaks. Nothing here panics on any input.
//!
//! Normalisation happens here too: the brand id is attached, the timestamp becomes UTC, clock
//! skew is clamped, and a missing `event_id` is derived from the event's content (UUID v5), so
//! a client that retries an event without an id is still deduplicated.

use crate::config::Config;
use crate::event_type::{EventType, PropKind};
use crate::ids::{AnonymousId, BrandId, SessionId};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use uuid::Uuid;

/// The only contract version this build accepts.
pub const CONTRACT_VERSION: u64 = 1;

/// Namespace for event ids derived from content when the client sent none.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a1c_2f4e_93d0_4b7a_8e55_0c1d_2b3a_4f60);

const ID_MAX_CHARS: usize = 128;
const URL_MAX_CHARS: usize = 2048;
const TITLE_MAX_CHARS: usize = 512;
const UTM_MAX_CHARS: usize = 256;
const PROPERTY_KEY_MAX_CHARS: usize = 64;

const TOP_LEVEL_FIELDS: [&str; 14] = [
    "v",
    "event",
    "event_id",
    "anonymous_id",
    "session_id",
    "timestamp",
    "page_url",
    "customer_id",
    "page_title",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "properties",
];

/// One broken rule: the field path and the rule, shown as `path: rule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Dotted path of the field, such as `properties.query`.
    pub field: String,
    /// The rule it breaks, such as `required for search_performed`.
    pub rule: String,
}

impl Violation {
    pub(crate) fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

/// Why a whole request body was refused before its events were looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is not JSON.
    #[error("body: malformed JSON ({0})")]
    MalformedJson(String),
    /// The body is JSON but neither an event object nor an array of them.
    #[error("body: must be an event object or an array of event objects")]
    NotEvents,
    /// The array is empty.
    #[error("body: the batch is empty")]
    EmptyBatch,
    /// The array holds more events than the limit.
    #[error("body: at most {max} events per batch, got {got}")]
    BatchTooLarge {
        /// The configured limit.
        max: usize,
        /// How many were sent.
        got: usize,
    },
}

/// An event that broke the contract, with every problem found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub struct Rejection {
    /// The client's `event_id`, when it sent a usable one.
    pub event_id: Option<String>,
    /// Every problem, in field order.
    pub problems: Vec<Violation>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

/// An event that passed the contract, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidEvent {
    /// Tenant from the configuration.
    pub brand_id: BrandId,
    /// Client id, or one derived from the content when the client sent none.
    pub event_id: Uuid,
    /// The event type.
    pub event_type: EventType,
    /// Visitor.
    pub anonymous_id: AnonymousId,
    /// Session.
    pub session_id: SessionId,
    /// When it happened, in UTC, clamped to the receive time when it was ahead of it.
    pub timestamp: DateTime<Utc>,
    /// When the collector received it.
    pub received_at: DateTime<Utc>,
    /// Seconds the client clock was ahead when the timestamp was clamped.
    pub clock_skew_seconds: Option<i64>,
    /// Page the event happened on.
    pub page_url: String,
    /// Known customer id.
    pub customer_id: Option<String>,
    /// Page title.
    pub page_title: Option<String>,
    /// Referrer.
    pub referrer: Option<String>,
    /// UTM source.
    pub utm_source: Option<String>,
    /// UTM medium.
    pub utm_medium: Option<String>,
    /// UTM campaign.
    pub utm_campaign: Option<String>,
    /// Event-specific payload.
    pub properties: Map<String, Value>,
}

impl ValidEvent {
    /// A property as text, when present and a string.
    pub fn prop_str(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Value::as_str)
    }

    /// The timestamp in the canonical wire form (RFC 3339, UTC, milliseconds).
    pub fn timestamp_iso(&self) -> String {
        self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// Splits a request body into raw events: one object, or an array of at most the batch limit.
pub fn parse_body(cfg: &Config, body: &[u8]) -> Result<Vec<Value>, BodyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BodyError::MalformedJson(e.to_string()))?;
    let events = match value {
        Value::Object(_) => vec![value],
        Value::Array(items) => items,
        _ => return Err(BodyError::NotEvents),
    };
    let max = cfg.limits().max_batch_events;
    if events.is_empty() {
        return Err(BodyError::EmptyBatch);
    }
    if events.len() > max {
        return Err(BodyError::BatchTooLarge {
            max,
            got: events.len(),
        });
    }
    Ok(events)
}

/// Checks one raw event against contract v1 and normalises it.
pub fn validate(
    cfg: &Config,
    raw: &Value,
    received_at: DateTime<Utc>,
) -> Result<ValidEvent, Rejection> {
    let mut v = Checker::default();
    let Some(obj) = raw.as_object() else {
        return Err(Rejection {
            event_id: None,
            problems: vec![Violation::new("event", "must be a JSON object")],
        });
    };

    for key in obj.keys() {
        if !TOP_LEVEL_FIELDS.contains(&key.as_str()) {
            v.fail(
                clip(key),
                format!("unknown field; allowed: {}", TOP_LEVEL_FIELDS.join(", ")),
            );
        }
    }

    match obj.get("v") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64() == Some(CONTRACT_VERSION) => {}
        Some(_) => v.fail(
            "v",
            format!("unsupported contract version; expected {CONTRACT_VERSION}"),
        ),
    }

    let event_type = match obj.get("event") {
        None | Some(Value::Null) => {
            v.fail("event", "required");
            None
        }
        Some(Value::String(name)) => match EventType::parse(name) {
            Some(t) => Some(t),
            None => {
                v.fail(
                    "event",
                    format!("unknown event type; known: {}", EventType::known_list()),
                );
                None
            }
        },
        Some(_) => {
            v.fail("event", "must be a string");
            None
        }
    };

    let client_event_id = match obj.get("event_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match Uuid::try_parse(s) {
            Ok(id) => Some(id),
            Err(_) => {
                v.fail("event_id", "must be a UUID");
                None
            }
        },
        Some(_) => {
            v.fail("event_id", "must be a UUID string");
            None
        }
    };

    let anonymous_id = v.token(obj, "anonymous_id", true);
    let session_id = v.token(obj, "session_id", true);
    let timestamp = v.timestamp(obj, cfg, received_at);
    let page_url = v.url(obj, "page_url", true);
    let customer_id = v.token(obj, "customer_id", false);
    let page_title = v.text(obj, "page_title", TITLE_MAX_CHARS);
    let referrer = v.text(obj, "referrer", URL_MAX_CHARS);
    let utm_source = v.text(obj, "utm_source", UTM_MAX_CHARS);
    let utm_medium = v.text(obj, "utm_medium", UTM_MAX_CHARS);
    let utm_campaign = v.text(obj, "utm_campaign", UTM_MAX_CHARS);

    let properties = match obj.get("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => {
            v.properties_shape(cfg, map);
            map.clone()
        }
        Some(_) => {
            v.fail("properties", "must be a JSON object");
            Map::new()
        }
    };
    if let Some(t) = event_type {
        v.key_properties(cfg, t, &properties);
    }
    if let Some(t) = event_type.filter(|t| t.requires_customer_id() && customer_id.is_none()) {
        v.fail("customer_id", format!("is required for {t}"));
    }

    let echo_id = client_event_id.map(|id| id.hyphenated().to_string());
    match (
        v.problems.is_empty(),
        event_type,
        anonymous_id,
        session_id,
        timestamp,
        page_url,
    ) {
        (
            true,
            Some(event_type),
            Some(anon),
            Some(session),
            Some((ts, skew, ts_text)),
            Some(url),
        ) => {
            let event_id = client_event_id.unwrap_or_else(|| {
                derive_event_id(event_type, &anon, &session, &ts_text, &url, &properties)
            });
            Ok(ValidEvent {
                brand_id: cfg.brand_id().clone(),
                event_id,
                event_type,
                anonymous_id: AnonymousId::new(anon),
                session_id: SessionId::new(session),
                timestamp: ts,
                received_at,
                clock_skew_seconds: skew,
                page_url: url,
                customer_id,
                page_title,
                referrer,
                utm_source,
                utm_medium,
                utm_campaign,
                properties,
            })
        }
        _ => Err(Rejection {
            event_id: echo_id,
            problems: v.problems,
        }),
    }
}

/// A stable id for an event that arrived without one: the same content always gives the same id.
fn derive_event_id(
    t: EventType,
    anon: &str,
    session: &str,
    ts: &str,
    url: &str,
    props: &Map<String, Value>,
) -> Uuid {
    // serde_json keeps object keys sorted (no `preserve_order`), so this text is canonical.
    let props = Value::Object(props.clone()).to_string();
    let name = [t.as_str(), anon, session, ts, url, &props].join("\u{1f}");
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes())
}

/// Keeps error messages bounded when a hostile client sends huge keys.
fn clip(s: &str) -> String {
    if s.chars().count() > 64 {
        let head: String = s.chars().take(64).collect();
        format!("{head}…")
    } else {
        s.to_owned()
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Violation>,
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, rule: impl Into<String>) {
        self.problems.push(Violation::new(field, rule));
    }

    /// A string with no control characters (NUL cannot be stored in Postgres text at all).
    fn string_rules(&mut self, field: &str, s: &str, max_chars: usize) -> bool {
        let mut ok = true;
        if s.chars().count() > max_chars {
            self.fail(field, format!("at most {max_chars} characters"));
            ok = false;
        }
        if s.chars().any(|c| c.is_control()) {
            self.fail(field, "must not contain control characters");
            ok = false;
        }
        ok
    }

    fn opt_string<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        field: &str,
        required: bool,
    ) -> Option<&'a str> {
        match obj.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(field, "required");
                }
                None
            }
            Some(Value::String(s)) if s.is_empty() => {
                if required {
                    self.fail(field, "must not be empty");
                }
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.fail(field, "must be a string");
                None
            }
        }
    }

    /// An identifier: printable ASCII without spaces, at most 128 characters.
    fn token(&mut self, obj: &Map<String, Value>, field: &str, required: bool) -> Option<String> {
        let s = self.opt_string(obj, field, required)?;
        if s.chars().count() > ID_MAX_CHARS {
            self.fail(field, format!("at most {ID_MAX_CHARS} characters"));
            return None;
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            self.fail(field, "must be printable ASCII without spaces");
            return None;
        }
        Some(s.to_owned())
    }

    fn text(&mut self, obj: &Map<String, Value>, field: &str, max_chars: usize) -> Option<String> {
        let s = self.opt_string(obj, field, false)?;
        self.string_rules(field, s, max_chars).then(|| s.to_owned())
    }

    fn url(&mut self, obj: &Map<String, Value>, field: &str, required: bool) -> Option<String> {
        let s = self.opt_string(obj, field, required)?;
        if !self.string_rules(field, s, URL_MAX_CHARS) {
            return None;
        }
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || s.contains(' ') {
            self.fail(field, "must be an absolute http(s) URL");
            return None;
        }
        Some(s.to_owned())
    }

    /// Returns the normalised timestamp, the clamped skew, and the unclamped canonical text.
    fn timestamp(
        &mut self,
        obj: &Map<String, Value>,
        cfg: &Config,
        received_at: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, Option<i64>, String)> {
        let s = self.opt_string(obj, "timestamp", true)?;
        let Ok(parsed) = DateTime::parse_from_rfc3339(s) else {
            self.fail("timestamp", "must be an RFC 3339 date-time with offset");
            return None;
        };
        let ts = parsed.with_timezone(&Utc);
        let text = ts.to_rfc3339_opts(SecondsFormat::Micros, true);
        let limits = cfg.limits();
        let max_age = Duration::hours(limits.max_event_age_hours);
        if ts < received_at - max_age {
            self.fail(
                "timestamp",
                format!(
                    "older than {} hours before receipt",
                    limits.max_event_age_hours
                ),
            );
            return None;
        }
        if ts > received_at {
            let ahead = (ts - received_at).num_seconds();
            if ahead > limits.max_future_skew_seconds {
                self.fail(
                    "timestamp",
                    format!(
                        "more than {} seconds in the future",
                        limits.max_future_skew_seconds
                    ),
                );
                return None;
            }
            return Some((received_at, Some(ahead), text));
        }
        Some((ts, None, text))
    }

    fn properties_shape(&mut self, cfg: &Config, map: &Map<String, Value>) {
        let limits = cfg.limits();
        let depth = depth_of(map, limits.max_properties_depth + 1);
        if depth > limits.max_properties_depth {
            self.fail(
                "properties",
                format!("nested deeper than {} levels", limits.max_properties_depth),
            );
        }
        let bytes = Value::Object(map.clone()).to_string().len();
        if bytes > limits.max_properties_bytes {
            self.fail(
                "properties",
                format!(
                    "at most {} bytes as JSON, got {bytes}",
                    limits.max_properties_bytes
                ),
            );
        }
        let mut bad_keys = Vec::new();
        let mut control = false;
        walk_strings(map, &mut |key, s| {
            if let Some(k) = key {
                if k.chars().count() > PROPERTY_KEY_MAX_CHARS || k.is_empty() {
                    bad_keys.push(clip(k));
                }
            }
            if s.contains('\0') {
                control = true;
            }
        });
        for k in bad_keys.into_iter().take(5) {
            self.fail(
                format!("properties.{k}"),
                format!("keys must be 1 to {PROPERTY_KEY_MAX_CHARS} characters"),
            );
        }
        if control {
            self.fail("properties", "must not contain NUL characters");
        }
    }

    fn key_properties(&mut self, cfg: &Config, t: EventType, props: &Map<String, Value>) {
        for spec in t.properties() {
            let path = format!("properties.{}", spec.name);
            let value = match props.get(spec.name) {
                None | Some(Value::Null) => {
                    if spec.required {
                        self.fail(path, format!("required for {t}"));
                    }
                    continue;
                }
                Some(v) => v,
            };
            match (spec.kind, value) {
                (PropKind::Text { max_chars }, Value::String(s)) => {
                    if s.is_empty() && spec.required {
                        self.fail(path, format!("must not be empty for {t}"));
                    } else {
                        self.string_rules(&path, s, max_chars);
                    }
                }
                (PropKind::Integer { min, max }, Value::Number(n)) => match n.as_i64() {
                    Some(i) if (min..=max).contains(&i) => {}
                    _ => self.fail(path, format!("must be a whole number from {min} to {max}")),
                },
                (PropKind::NonNegativeNumber, Value::Number(n)) => {
                    if !n.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0) {
                        self.fail(path, "must be a non-negative number");
                    }
                }
                (PropKind::TextList, Value::Array(items)) => {
                    if !items.iter().all(Value::is_string) {
                        self.fail(path, "must be a list of strings");
                    }
                }
                (PropKind::Email, Value::String(s)) => {
                    if !looks_like_email(s) {
                        self.fail(path, "must be an email address");
                    }
                }
                (PropKind::Persona, Value::String(s)) => {
                    if !cfg.has_persona(s) {
                        let known: Vec<&str> =
                            cfg.personas().iter().map(|p| p.id.as_str()).collect();
                        self.fail(
                            path,
                            format!("unknown persona; known: {}", known.join(", ")),
                        );
                    }
                }
                (kind, _) => self.fail(path, format!("must be {}", kind_name(kind))),
            }
        }
    }
}

fn kind_name(kind: PropKind) -> &'static str {
    match kind {
        PropKind::Text { .. } => "a string",
        PropKind::Integer { .. } => "a whole number",
        PropKind::NonNegativeNumber => "a non-negative number",
        PropKind::TextList => "a list of strings",
        PropKind::Email => "an email address string",
        PropKind::Persona => "a persona id string",
    }
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Nesting depth of an object, counting the object itself as 1; stops counting at `cap`.
fn depth_of(map: &Map<String, Value>, cap: usize) -> usize {
    fn value_depth(v: &Value, cap: usize) -> usize {
        if cap == 0 {
            return 0;
        }
        match v {
            Value::Object(m) => {
                1 + m
                    .values()
                    .map(|c| value_depth(c, cap - 1))
                    .max()
                    .unwrap_or(0)
            }
            Value::Array(a) => 1 + a.iter().map(|c| value_depth(c, cap - 1)).max().unwrap_or(0),
            _ => 0,
        }
    }
    1 + map
        .values()
        .map(|c| value_depth(c, cap.saturating_sub(1)))
        .max()
        .unwrap_or(0)
}

/// Visits every object key and string value below `map`.
fn walk_strings(map: &Map<String, Value>, f: &mut dyn FnMut(Option<&str>, &str)) {
    fn walk(v: &Value, f: &mut dyn FnMut(Option<&str>, &str)) {
        match v {
            Value::String(s) => f(None, s),
            Value::Array(a) => a.iter().for_each(|c| walk(c, f)),
            Value::Object(m) => {
                for (k, c) in m {
                    f(Some(k), k);
                    walk(c, f);
                }
            }
            _ => {}
        }
    }
    for (k, c) in map {
        f(Some(k), k);
        walk(c, f);
    }
}
