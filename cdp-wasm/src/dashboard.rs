//! The dashboard API at the edge (`GET /api/cdp/metrics`, `/api/cdp/searches`,
//! `/api/cdp/events`): the same plans, statements and answer bodies as `cdp serve` over
//! Postgres. A request goes in two
//! calls, because the read itself is I/O the JavaScript does over Hyperdrive:
//!
//! 1. [`Engine::dashboard_request`] checks access and the parameters and answers at once
//!    (401, 400, 404), or returns the one read-only statement to run (`counting_sql::
//!    plan_as_json`: one JSON column per read) with a `state` to hand back;
//! 2. [`Engine::dashboard_answer`] turns that statement's row (or the failure to get it) into
//!    the answer, through the core's plan and `cdp-answers`' bodies.
//!
//! `state` holds only what the request asked (which answer, the range, `now`): the plan is
//! rebuilt from it, deterministically, so nothing of the request lives in the isolate.

use crate::{at_ms, js_err, to_json, Engine};
use cdp_adapters::analytics::StreamQuery;
use cdp_adapters::codec::EventColumns;
use cdp_adapters::counting_rows::answers_from_json;
use cdp_adapters::counting_sql::{
    plan_as_json, recent_events_json, Dialect, JsonLayout, Param, Stmt,
};
use cdp_answers::access::AdminToken;
use cdp_answers::api::{range_param, stream_query, Failure, DEFAULT_RANGE};
use cdp_answers::bodies::{events_body, metrics_body, searches_body};
use cdp_answers::figures::{self, Bucket, Range};
use cdp_core::counting::reads::{MetricsPlan, SearchPlan};
use cdp_core::counting::{ReadPlan, Resolution};
use cdp_core::EventRow;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

/// Which answer a request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Metrics,
    Searches,
    Events,
}

/// What [`Engine::dashboard_answer`] needs back.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    answer: Answer,
    range: Range,
    /// The stream's filters (events only).
    stream: Option<StreamQuery>,
    now_ms: i64,
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
            Answer::Events => return None,
        })
    }

    fn plan(&self) -> &ReadPlan {
        match self {
            Planned::Metrics(p) => &p.plan,
            Planned::Searches(p) => &p.plan,
        }
    }
}

/// The pairs of a query string (`a=1&b=2`), decoded.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
                (b'%', Some(h), Some(l)) if hex(*h).is_some() && hex(*l).is_some() => {
                    out.push((hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0)) as u8);
                    i += 3;
                }
                (b, _, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// A dashboard answer as the Worker's reply: JSON, and never cached once admitted (as
/// `cdp serve`'s guard marks every API answer it lets through; its 401 carries no mark).
fn reply(status: u16, body: &Value, retry_after: Option<u64>) -> Value {
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
        "body": body.to_string(),
    })
}

fn failed(f: &Failure) -> Value {
    reply(f.status(), &f.body(), f.retry_after())
}

fn quoted_schema(schema: &str) -> String {
    format!("\"{}\".", schema.replace('"', "\"\""))
}

impl Engine {
    /// The statement of a request, with its plan and layout (none for the stream).
    fn statement(
        &self,
        state: &State,
        schema: &str,
        now: DateTime<Utc>,
    ) -> Result<(Stmt, Option<Planned>, Option<JsonLayout>), JsError> {
        let prefix = quoted_schema(schema);
        let brand = self.cfg.brand_id().as_str();
        if let Some(q) = &state.stream {
            return Ok((recent_events_json(&prefix, brand, q), None, None));
        }
        let planned = Planned::of(state, now).ok_or_else(|| js_err("no plan for this answer"))?;
        let d = Dialect::Postgres { prefix };
        let (stmt, layout) = plan_as_json(&d, brand, planned.plan());
        Ok((stmt, Some(planned), Some(layout)))
    }
}

#[wasm_bindgen]
impl Engine {
    /// Step 1 of a dashboard API request: `path` and `query` of the URL, the `Authorization`
    /// and `Cookie` headers, the admin token (the Worker secret; empty: every request is
    /// refused, there is no loopback at the edge), the Postgres schema and `now`. Returns
    /// JSON: `{"reply": Reply}`, or `{"sql", "params": [text...], "state"}` to run and hand
    /// to [`Engine::dashboard_answer`].
    #[allow(clippy::too_many_arguments)]
    pub fn dashboard_request(
        &self,
        path: &str,
        query: &str,
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
        let answer = match path.trim_end_matches('/') {
            "/api/cdp/metrics" => Answer::Metrics,
            "/api/cdp/searches" => Answer::Searches,
            "/api/cdp/events" => Answer::Events,
            _ => return Ok(json!({ "reply": failed(&Failure::NotFound) }).to_string()),
        };
        let pairs = query_pairs(query);
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
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
        let state = State {
            answer,
            range,
            stream,
            now_ms: now.timestamp_millis(),
        };
        let stmt = self.statement(&state, schema, now)?.0;
        let params: Vec<String> = stmt.params.iter().map(Param::text).collect();
        Ok(json!({ "sql": stmt.sql, "params": params, "state": state }).to_string())
    }

    /// Step 2: the answer from the statement's one row (`columns_json`, a JSON array of its
    /// column values), or, with `columns_json` absent, from the failure to run it: the
    /// server's SQLSTATE if it sent one, and the error's text. A connection that is gone is
    /// offline (503, as `cdp serve` says), any other failure a query failure (500).
    pub fn dashboard_answer(
        &self,
        state_json: &str,
        schema: &str,
        columns_json: Option<String>,
        sqlstate: Option<String>,
        error: Option<String>,
    ) -> Result<String, JsError> {
        let state: State = serde_json::from_str(state_json).map_err(js_err)?;
        let Some(columns) = columns_json else {
            let reason = error.unwrap_or_else(|| "the database did not answer".to_owned());
            let f = if cdp_adapters::postgres_gone(sqlstate.as_deref()) {
                Failure::Offline(reason)
            } else {
                Failure::QueryFailed(reason)
            };
            return Ok(to_json(&failed(&f)));
        };
        let now = at_ms(state.now_ms as f64)?;
        let cols: Vec<Value> = serde_json::from_str(&columns).map_err(js_err)?;
        let (_, planned, layout) = self.statement(&state, schema, now)?;
        let failed_read = |e: String| Ok(to_json(&failed(&Failure::QueryFailed(e))));
        let body = match (planned, layout) {
            (Some(planned), Some(layout)) => {
                let answers =
                    match answers_from_json("dashboard_read", planned.plan(), &layout, &cols) {
                        Ok(a) => a,
                        Err(e) => return failed_read(e.to_string()),
                    };
                let w = figures::windows(state.range, now);
                match &planned {
                    Planned::Metrics(p) => serde_json::to_value(metrics_body(
                        &self.cfg,
                        &w,
                        now,
                        &p.assemble(&answers),
                    )),
                    Planned::Searches(p) => {
                        serde_json::to_value(searches_body(state.range, &p.assemble(&answers)))
                    }
                }
            }
            _ => {
                let rows: Result<Vec<EventRow>, String> = cols
                    .first()
                    .cloned()
                    .ok_or_else(|| "the stream read answered no column".to_owned())
                    .and_then(|v| {
                        serde_json::from_value::<Vec<EventColumns>>(v).map_err(|e| e.to_string())
                    })
                    .and_then(|list| {
                        list.into_iter()
                            .map(|c| c.into_row("recent_events").map_err(|e| e.to_string()))
                            .collect()
                    });
                match rows {
                    Ok(rows) => serde_json::to_value(events_body(&self.cfg, &rows)),
                    Err(e) => return failed_read(e),
                }
            }
        }
        .map_err(js_err)?;
        Ok(to_json(&reply(200, &body, None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded() {
        assert_eq!(
            query_pairs("?range=30d&x=a%20b+c&flag"),
            vec![
                ("range".to_owned(), "30d".to_owned()),
                ("x".to_owned(), "a b c".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
    }
}
