//! The dashboard API at the edge (`GET /api/cdp/metrics`, `/api/cdp/searches`,
//! `/api/cdp/events`, `/api/cdp/profiles/{anonymous_id}`, `/api/cdp/people/{key}`,
//! `/api/cdp/identity`, and the OpenAPI document): the same plans, statements and
//! answer bodies as `cdp serve` over Postgres. A request goes in two calls, because the read
//! itself is I/O the JavaScript does over Hyperdrive:
//!
//! 1. [`Engine::dashboard_request`] checks access and the parameters and answers at once
//!    (401, 400, 404), or returns the one read-only statement to run (`counting_sql::
//!    plan_as_json`: one JSON column per read) with a `state` to hand back;
//! 2. [`Engine::dashboard_answer`] turns that statement's row (or the failure to get it) into
//!    the answer, through the core's plan and `cdp-answers`' bodies.
//!
//! A person needs a second read: the first answers the identity log, which the core resolves
//! here; when the person's browsers are not those the statement read, step 2 answers
//! `{"next": {"sql", "params", "state"}}`, the read of their events, and the shell runs it and
//! calls step 2 again.
//!
//! `state` holds only what the request asked (which answer, the range, `now`): the plan is
//! rebuilt from it, deterministically, so nothing of the request lives in the isolate.

use crate::{at_ms, js_err, to_json, Engine};
use cdp_adapters::analytics::StreamQuery;
use cdp_adapters::codec::EdgeColumns;
use cdp_adapters::codec::EventColumns;
use cdp_adapters::counting_rows::answers_from_json;
use cdp_adapters::counting_sql::{
    identity_json, plan_as_json, recent_events_json, schema_prefix, visitor_profile_json, Dialect,
    JsonLayout, Param, Stmt,
};
use cdp_adapters::ErasureFigures;
use cdp_answers::access::AdminToken;
use cdp_answers::api::{range_param, stream_query, Failure, DEFAULT_RANGE};
use cdp_answers::bodies::{events_body, live_profile, metrics_body, profile_body, searches_body};
use cdp_answers::figures::{self, Bucket, Range};
use cdp_answers::people::{self, IdentityBody};
use cdp_core::counting::reads::{MetricsPlan, SearchPlan};
use cdp_core::counting::{ReadPlan, Resolution};
use cdp_core::identity::{self, Edge};
use cdp_core::intake::Problem;
use cdp_core::{EventRow, Profile};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

/// Which answer a request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Metrics,
    Searches,
    Events,
    Profile,
    /// `/api/cdp/people/{key}`.
    Person,
    /// `/api/cdp/identity`.
    Identity,
}

/// What [`Engine::dashboard_answer`] needs back.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    answer: Answer,
    range: Range,
    /// The stream's filters (events only).
    stream: Option<StreamQuery>,
    /// The visitor (profile only).
    anonymous_id: Option<String>,
    /// The person's key (person only).
    #[serde(default)]
    key: Option<String>,
    /// The browsers whose events the statement read (person only): when the log names
    /// others, the answer is another statement for those.
    #[serde(default)]
    browsers: Vec<String>,
    /// The schema, for that next statement.
    #[serde(default)]
    schema: String,
    now_ms: i64,
    /// Where the statement put each read's answer (metrics and searches), so the answer
    /// needs the plan only, not the statement again.
    layout: Option<JsonLayout>,
}

enum Planned {
    Metrics(MetricsPlan),
    Searches(SearchPlan),
}

impl Planned {
    /// The plan of a metrics or searches request (`None` for the stream).
    fn of(s: &State, now: DateTime<Utc>) -> Option<Planned> {
        let w = figures::windows(s.range, now);
        Some(match s.answer {
            Answer::Metrics => Planned::Metrics(MetricsPlan::new(
                w.current,
                w.previous,
                match s.range.bucket() {
                    Bucket::Hour => Resolution::Hour,
                    Bucket::Day => Resolution::Day,
                },
            )),
            Answer::Searches => Planned::Searches(SearchPlan::new(w.current, w.previous)),
            Answer::Events | Answer::Profile | Answer::Person | Answer::Identity => return None,
        })
    }

    fn plan(&self) -> &ReadPlan {
        match self {
            Planned::Metrics(p) => &p.plan,
            Planned::Searches(p) => &p.plan,
        }
    }
}

/// A dashboard answer as the Worker's reply: JSON, and never cached once admitted (as
/// `cdp serve`'s guard marks every API answer it lets through; its 401 carries no mark).
/// `body` is serialised from the answer types themselves (not through `Value`, whose maps are
/// sorted), so the keys come in the order `cdp serve` writes them.
fn reply(status: u16, body: &impl Serialize, retry_after: Option<u64>) -> Value {
    reply_text(
        status,
        serde_json::to_string(body).unwrap_or_default(),
        retry_after,
    )
}

fn reply_text(status: u16, body: String, retry_after: Option<u64>) -> Value {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if status != 401 {
        headers.push(("cache-control", "no-store".to_owned()));
    }
    if let Some(s) = retry_after {
        headers.push(("retry-after", s.to_string()));
    }
    json!({
        "status": status,
        "headers": headers,
        "body": body,
    })
}

fn failed(f: &Failure) -> Value {
    reply(f.status(), &f.body(), f.retry_after())
}

impl Engine {
    /// The statement of a request, with its layout (none for the stream and the profile).
    fn statement(
        &self,
        state: &State,
        schema: &str,
        now: DateTime<Utc>,
    ) -> Result<(Stmt, Option<JsonLayout>), JsError> {
        let prefix = schema_prefix(schema);
        let brand = self.cfg.brand_id().as_str();
        if let Some(q) = &state.stream {
            return Ok((recent_events_json(&prefix, brand, q), None));
        }
        if let Some(id) = &state.anonymous_id {
            return Ok((visitor_profile_json(&prefix, brand, id, now), None));
        }
        if matches!(state.answer, Answer::Person | Answer::Identity) {
            return Ok((identity_json(&prefix, brand, &state.browsers), None));
        }
        let planned = Planned::of(state, now).ok_or_else(|| js_err("no plan for this answer"))?;
        let d = Dialect::Postgres { prefix };
        let (stmt, layout) = plan_as_json(&d, brand, planned.plan());
        Ok((stmt, Some(layout)))
    }
}

#[wasm_bindgen]
impl Engine {
    /// Step 1 of a dashboard API request: the URL's `path` and its query parameters as a JSON
    /// object (decoded by the URL API; a repeated name keeps its last value, as `cdp serve`'s
    /// query extractor does), the `Authorization` and `Cookie` headers, the admin token (the Worker secret; empty: every request is
    /// refused, there is no loopback at the edge), the Postgres schema and `now`. Returns
    /// JSON: `{"reply": Reply}`, or `{"sql", "params": [text...], "state"}` to run and hand
    /// to [`Engine::dashboard_answer`].
    #[allow(clippy::too_many_arguments)]
    pub fn dashboard_request(
        &self,
        path: &str,
        query_json: &str,
        authorization: Option<String>,
        cookie: Option<String>,
        admin_token: &str,
        schema: &str,
        now_ms: f64,
    ) -> Result<String, JsError> {
        let now = at_ms(now_ms)?;
        let admitted = !admin_token.is_empty()
            && AdminToken::new(admin_token).admits(
                authorization.as_deref(),
                cookie.as_deref(),
                now,
            );
        if !admitted {
            return Ok(json!({ "reply": failed(&Failure::Unauthorized) }).to_string());
        }
        let not_found = || Ok(json!({ "reply": failed(&Failure::NotFound) }).to_string());
        let mut anonymous_id = None;
        let mut key = None;
        let answer = match path.trim_end_matches('/') {
            "/api/cdp/metrics" => Answer::Metrics,
            "/api/cdp/identity" => Answer::Identity,
            "/api/cdp/searches" => Answer::Searches,
            "/api/cdp/events" => Answer::Events,
            "/api/cdp/openapi.json" => {
                let doc = cdp_answers::openapi::document();
                return Ok(json!({ "reply": reply(200, &doc, None) }).to_string());
            }
            p => match (
                segment(p, "/api/cdp/profiles/"),
                segment(p, "/api/cdp/people/"),
            ) {
                (Some(id), _) => {
                    anonymous_id = Some(id);
                    Answer::Profile
                }
                (_, Some(k)) => {
                    key = Some(k);
                    Answer::Person
                }
                _ => return not_found(),
            },
        };
        let query: HashMap<String, String> = serde_json::from_str(query_json).map_err(js_err)?;
        let get = |name: &str| query.get(name).map(String::as_str);
        let bad = |p| Ok(json!({ "reply": failed(&Failure::BadParameter(p)) }).to_string());
        let (range, stream) = if answer == Answer::Events {
            match stream_query(&self.cfg, get("limit"), get("type"), get("persona")) {
                Ok(q) => (DEFAULT_RANGE, Some(q)),
                Err(p) => return bad(p),
            }
        } else {
            match range_param(get("range")) {
                Ok(r) => (r, None),
                Err(p) => return bad(p),
            }
        };
        let mut state = State {
            answer,
            range,
            stream,
            anonymous_id,
            key,
            browsers: Vec::new(),
            schema: schema.to_owned(),
            now_ms: now.timestamp_millis(),
            layout: None,
        };
        let (stmt, layout) = self.statement(&state, schema, now)?;
        state.layout = layout;
        let params: Vec<String> = stmt.params.iter().map(Param::text).collect();
        Ok(json!({ "sql": stmt.sql, "params": params, "state": state }).to_string())
    }

    /// Step 2: the answer from the statement's one row (`columns_json`, a JSON array of its
    /// column values), or, with `columns_json` absent, from the failure to run it: the
    /// server's SQLSTATE and severity if it sent them, and the error's text. A connection
    /// that is gone or was refused is offline (503, as `cdp serve` says:
    /// `cdp_adapters::postgres_failure`), any other failure a query failure (500).
    pub fn dashboard_answer(
        &self,
        state_json: &str,
        columns_json: Option<String>,
        sqlstate: Option<String>,
        error: Option<String>,
        severity: Option<String>,
    ) -> Result<String, JsError> {
        let state: State = serde_json::from_str(state_json).map_err(js_err)?;
        let Some(columns) = columns_json else {
            let reason = error.unwrap_or_else(|| "the database did not answer".to_owned());
            let ended = matches!(severity.as_deref(), Some("FATAL" | "PANIC"));
            let e = cdp_adapters::postgres_failure(
                "dashboard_read",
                sqlstate.as_deref(),
                ended,
                reason,
            );
            let f = if e.is_unavailable() {
                Failure::Offline(e.to_string())
            } else {
                Failure::QueryFailed(e.to_string())
            };
            return Ok(to_json(&failed(&f)));
        };
        let now = at_ms(state.now_ms as f64)?;
        let cols: Vec<Value> = serde_json::from_str(&columns).map_err(js_err)?;
        let planned = Planned::of(&state, now);
        let failed_read = |e: String| Ok(to_json(&failed(&Failure::QueryFailed(e))));
        let body = match (planned, &state.layout) {
            (Some(planned), Some(layout)) => {
                let answers =
                    match answers_from_json("dashboard_read", planned.plan(), layout, &cols) {
                        Ok(a) => a,
                        Err(e) => return failed_read(e.to_string()),
                    };
                let w = figures::windows(state.range, now);
                match &planned {
                    Planned::Metrics(p) => serde_json::to_string(&metrics_body(
                        &self.cfg,
                        &w,
                        now,
                        &p.assemble(&answers),
                    )),
                    Planned::Searches(p) => {
                        serde_json::to_string(&searches_body(state.range, &p.assemble(&answers)))
                    }
                }
            }
            _ if state.answer == Answer::Identity => match identity_columns(&cols) {
                Ok((edges, _, figures)) => serde_json::to_string(&IdentityBody {
                    summary: identity::summary(&identity::resolve(
                        &edges,
                        self.cfg.identity_rules(),
                    )),
                    erasures: Some(figures),
                }),
                Err(e) => return failed_read(e),
            },
            _ if state.answer == Answer::Person => {
                let (edges, rows, _) = match identity_columns(&cols) {
                    Ok(read) => read,
                    Err(e) => return failed_read(e),
                };
                let rules = self.cfg.identity_rules();
                let p = identity::resolve(&edges, rules);
                let key = state.key.clone().unwrap_or_default();
                let Some(found) = identity::find(&p, &key, rules) else {
                    let problem = Problem::new(
                        "key",
                        "must be a person id, an email, a customer id or an anonymous id",
                    );
                    return Ok(to_json(&failed(&Failure::BadParameter(problem))));
                };
                let browsers: Vec<String> = people::browsers_of(&found)
                    .iter()
                    .map(|b| b.as_str().to_owned())
                    .collect();
                if browsers != state.browsers {
                    // The statement read other browsers' events: read the person's now.
                    let next = identity_json(
                        &schema_prefix(&state.schema),
                        self.cfg.brand_id().as_str(),
                        &browsers,
                    );
                    let params: Vec<String> = next.params.iter().map(Param::text).collect();
                    let state = State { browsers, ..state };
                    return Ok(
                        json!({ "next": { "sql": next.sql, "params": params, "state": state } })
                            .to_string(),
                    );
                }
                let rows: Vec<&EventRow> = rows.iter().collect();
                match people::person_body(&self.cfg, &p, &edges, &found, &rows, now) {
                    Ok(Some(body)) => serde_json::to_string(&body),
                    Ok(None) => return Ok(to_json(&failed(&Failure::NotFound))),
                    Err(e) => return failed_read(e.to_string()),
                }
            }
            _ if state.answer == Answer::Profile => {
                let read = profile_columns(&cols).map(|(stored, rows)| {
                    live_profile(&self.cfg, stored, &rows).map(|p| profile_body(&self.cfg, &p, now))
                });
                match read {
                    Ok(Some(body)) => serde_json::to_string(&body.map_err(js_err)?),
                    Ok(None) => return Ok(to_json(&failed(&Failure::NotFound))),
                    Err(e) => return failed_read(e),
                }
            }
            _ => match event_rows("recent_events", cols.first()) {
                Ok(rows) => serde_json::to_string(&events_body(&self.cfg, &rows)),
                Err(e) => return failed_read(e),
            },
        }
        .map_err(js_err)?;
        Ok(to_json(&reply_text(200, body, None)))
    }
}

/// The one path segment after `prefix`, percent-decoded, as `cdp serve`'s router takes it
/// (`None`: another path, an empty or nested segment, or one that is not UTF-8).
fn segment(path: &str, prefix: &str) -> Option<String> {
    let segment = path.strip_prefix(prefix)?;
    if segment.is_empty() || segment.contains('/') {
        return None;
    }
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Event rows from a JSON column holding an array of objects keyed by column.
fn event_rows(op: &'static str, column: Option<&Value>) -> Result<Vec<EventRow>, String> {
    let list: Vec<EventColumns> = column
        .cloned()
        .ok_or_else(|| format!("the {op} read answered no column"))
        .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))?;
    list.into_iter()
        .map(|c| c.into_row(op).map_err(|e| e.to_string()))
        .collect()
}

/// The stored profile (if any) and the visitor's later events, from the two columns of
/// [`visitor_profile_json`].
/// The identity read's row ([`identity_json`]): the log, the browsers' events, the erasure audit.
fn identity_columns(cols: &[Value]) -> Result<(Vec<Edge>, Vec<EventRow>, ErasureFigures), String> {
    let edges: Vec<EdgeColumns> = match cols.first() {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("identity edges: {e}"))?,
        None => Vec::new(),
    };
    let edges = edges
        .into_iter()
        .map(|c| c.into_edge("identity_edges").map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let count = |i: usize| -> u64 {
        cols.get(i)
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0)
    };
    let figures = ErasureFigures {
        erasures: count(2),
        tombstones: count(3),
        suppressed: count(4),
    };
    Ok((edges, event_rows("visitor_events", cols.get(1))?, figures))
}

fn profile_columns(cols: &[Value]) -> Result<(Option<Profile>, Vec<EventRow>), String> {
    let stored = match cols.first() {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            cdp_adapters::codec::profile_from_json("load_profile", v.clone())
                .map_err(|e| e.to_string())?,
        ),
    };
    Ok((stored, event_rows("visitor_events", cols.get(1))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        match Engine::new("", "", 0) {
            Ok(e) => e,
            Err(_) => panic!("the bundled configuration builds"),
        }
    }

    fn request(e: &Engine, path: &str, query: &str) -> Value {
        match e.dashboard_request(
            path,
            query,
            Some("Bearer a-dashboard-admin-token".into()),
            None,
            "a-dashboard-admin-token",
            "s",
            1_780_000_000_000.0,
        ) {
            Ok(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
            Err(_) => panic!("{path} {query}: not planned"),
        }
    }

    #[test]
    fn query_parameters_are_read_from_the_object_the_url_api_decoded() {
        let e = engine();
        let bad = request(&e, "/api/cdp/metrics", r#"{"range":"12y"}"#);
        assert_eq!(bad["reply"]["status"], 400);
        assert!(bad["reply"]["body"]
            .as_str()
            .unwrap_or("")
            .contains("\"field\":\"range\""));
        let ok = request(&e, "/api/cdp/events", r#"{"limit":"5","persona":"lawn"}"#);
        assert_eq!(ok["state"]["stream"]["limit"], 5);
        assert_eq!(ok["state"]["stream"]["persona"], "lawn");
        assert_eq!(ok["params"].as_array().map(Vec::len), Some(3));
    }
}
