//! The dashboard API's requests and failures as data, shared by `cdp serve` and the Worker:
//! the `range` parameter, and the bodies of the answers that are not figures (a bad
//! parameter, the store offline or failing, no access, nothing found), so both shells refuse
//! alike.

use crate::figures::Range;
use cdp_adapters::analytics::StreamQuery;
use cdp_core::intake::{ErrorBody, Problem, RETRY_AFTER_SECONDS};
use cdp_core::{Config, EventType};
use serde_json::{json, Map, Value};

/// The default range of metrics and searches.
pub const DEFAULT_RANGE: Range = Range::Week;
/// Events the stream returns when no limit is given.
pub const DEFAULT_LIMIT: usize = 50;
/// The most events the stream returns.
pub const MAX_LIMIT: usize = 100;

/// What the 401 says.
pub const UNAUTHORIZED_MESSAGE: &str =
    "sign in at /admin/login or send Authorization: Bearer <admin token>";

/// A caller's value, shortened for an error message.
pub fn shown(value: &str) -> String {
    value.chars().take(60).collect()
}

/// The `range` parameter (absent: [`DEFAULT_RANGE`]), or the problem with it.
pub fn range_param(value: Option<&str>) -> Result<Range, Problem> {
    match value {
        None => Ok(DEFAULT_RANGE),
        Some(r) => Range::parse(r.trim()).ok_or_else(|| {
            Problem::new(
                "range",
                format!("must be one of {}, got `{}`", Range::known_list(), shown(r)),
            )
        }),
    }
}

/// Why a dashboard API request failed as a whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// A query parameter breaks its rule: 400.
    BadParameter(Problem),
    /// The store cannot be reached: 503 `offline`, with `Retry-After`; the dashboard shows
    /// "offline", never stale figures.
    Offline(String),
    /// The store answered with an error: 500 `error`.
    QueryFailed(String),
    /// The backend does not run dashboard queries: 501 `unsupported`.
    Unsupported(String),
    /// No such profile: 404 `not_found`.
    NotFound,
    /// No or a wrong admin token or session: 401.
    Unauthorized,
}

fn status_body(state: &str, reason: Option<&str>) -> Value {
    let mut body = Map::new();
    body.insert("status".into(), state.into());
    if let Some(reason) = reason {
        body.insert("reason".into(), reason.into());
    }
    Value::Object(body)
}

impl Failure {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Failure::BadParameter(_) => 400,
            Failure::Offline(_) => 503,
            Failure::QueryFailed(_) => 500,
            Failure::Unsupported(_) => 501,
            Failure::NotFound => 404,
            Failure::Unauthorized => 401,
        }
    }

    /// The `Retry-After` seconds, when the client should retry.
    pub fn retry_after(&self) -> Option<u64> {
        matches!(self, Failure::Offline(_)).then_some(RETRY_AFTER_SECONDS)
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        match self {
            Failure::BadParameter(problem) => serde_json::to_value(ErrorBody {
                error: "bad_request".to_owned(),
                problems: vec![problem.clone()],
            })
            .unwrap_or(Value::Null),
            Failure::Offline(reason) => status_body("offline", Some(reason)),
            Failure::QueryFailed(reason) => status_body("error", Some(reason)),
            Failure::Unsupported(reason) => status_body("unsupported", Some(reason)),
            Failure::NotFound => status_body("not_found", None),
            Failure::Unauthorized => json!({
                "error": "unauthorized",
                "message": UNAUTHORIZED_MESSAGE,
                "problems": [Problem::new("authorization", UNAUTHORIZED_MESSAGE)],
            }),
        }
    }
}

/// The stream's filters (`limit`, `type`, `persona` of the query string), or the first bad
/// one.
pub fn stream_query(
    cfg: &Config,
    limit: Option<&str>,
    event_type: Option<&str>,
    persona: Option<&str>,
) -> Result<StreamQuery, Problem> {
    let bad = |field: &str, rule: String| Problem::new(field, rule);
    let limit = match limit.map(|l| l.trim()) {
        None | Some("") => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u64>() {
            Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
            _ => {
                return Err(bad(
                    "limit",
                    format!(
                    "must be a whole number from 1 (at most {MAX_LIMIT} are returned), got `{}`",
                    shown(l)
                ),
                ))
            }
        },
    };
    let event_type = match event_type.map(|t| t.trim()).filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => match EventType::parse(t) {
            Some(t) => Some(t.as_str().to_owned()),
            None => {
                return Err(bad(
                    "type",
                    format!(
                        "must be an event type of the contract ({}), got `{}`",
                        EventType::known_list(),
                        shown(t)
                    ),
                ))
            }
        },
    };
    let persona = match persona.map(|p| p.trim()).filter(|p| !p.is_empty()) {
        None => None,
        Some(p) if cfg.has_persona(p) => Some(p.to_owned()),
        Some(p) => {
            let known: Vec<&str> = cfg.personas().iter().map(|x| x.id.as_str()).collect();
            return Err(bad(
                "persona",
                format!(
                    "must be a persona id ({}), got `{}`",
                    known.join(", "),
                    shown(p)
                ),
            ));
        }
    };
    Ok(StreamQuery {
        event_type,
        persona,
        limit,
    })
}
