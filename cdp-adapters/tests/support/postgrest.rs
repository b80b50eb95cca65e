//! A stand-in for PostgREST, the API behind Supabase's `/rest/v1`. PostgREST itself cannot run
//! here (no binary or container can be fetched), so this serves just the subset the Supabase
//! adapter uses and executes it as SQL on the real test Postgres:
//! - `POST /rest/v1/{table}` with `on_conflict`, `columns`, `select` and
//!   `Prefer: resolution=ignore-duplicates|merge-duplicates, return=representation|minimal`;
//! - `GET` with `select`, `order`, `limit` and `eq.`/`gt.`/`gte.`/`lt.`/`lte.`/`in.(...)` filters;
//! - `DELETE` with the same filters and `Prefer: return=representation`;
//! - the `apikey` and `Authorization: Bearer` headers (401 when wrong) and
//!   `Content-Profile`/`Accept-Profile` for the schema;
//! - errors shaped like PostgREST's (`{"code": SQLSTATE, "message", "details"}`; 23505 is 409).
//!
//! Tests can queue failures (503, 429 with `Retry-After`) and poison event ids (a 400 for any
//! batch that contains one) to exercise retries and batch splitting, rotate the key (the old
//! one then gets PostgREST's 401) and take the whole API down with one status.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Client;

/// A failure to answer instead of handling the next request.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer this status with a PostgREST-style error body.
    Status(u16),
    /// Answer 429 with `Retry-After: secs`.
    TooMany { retry_after_secs: u64 },
}

/// The running stand-in.
pub struct PostgRest {
    pub url: String,
    state: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    db: Client,
    key: Mutex<String>,
    down: Mutex<Option<u16>>,
    faults: Mutex<VecDeque<Fault>>,
    poison: Mutex<HashSet<String>>,
    requests: AtomicUsize,
}

impl PostgRest {
    /// Serves on a free loopback port, executing on the database at `url`.
    pub async fn start(database_url: &str, key: &str) -> PostgRest {
        let db = super::pg::connect(database_url).await;
        db.batch_execute("set timezone = 'UTC'")
            .await
            .expect("set timezone");
        let state = Arc::new(Shared {
            db,
            key: Mutex::new(key.to_owned()),
            down: Mutex::new(None),
            faults: Mutex::new(VecDeque::new()),
            poison: Mutex::new(HashSet::new()),
            requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/rest/v1/{table}", get(handle).post(handle).delete(handle))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stand-in");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PostgRest {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// Queues failures, answered in order before normal handling resumes.
    pub fn fail_next(&self, faults: &[Fault]) {
        self.state
            .faults
            .lock()
            .expect("faults")
            .extend(faults.iter().copied());
    }

    /// Makes any POST containing this event id answer 400, like a violated check constraint.
    pub fn poison(&self, event_id: &str) {
        self.state
            .poison
            .lock()
            .expect("poison")
            .insert(event_id.to_owned());
    }

    /// Accepts only `key` from now on, as after a key rotation: the old key gets 401.
    pub fn rotate_key(&self, key: &str) {
        *self.state.key.lock().expect("key") = key.to_owned();
    }

    /// Answers every request with `status` (a project whose services are down) until called
    /// again with `None`.
    pub fn set_down(&self, status: Option<u16>) {
        *self.state.down.lock().expect("down") = status;
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::Relaxed)
    }
}

impl Drop for PostgRest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "code": code, "message": message, "details": null, "hint": null });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The column's type for casting filter values (everything else is text).
fn col_type(col: &str) -> &'static str {
    match col {
        "seq" => "bigint",
        "timestamp" | "processed_at" | "searched_at" | "first_seen" | "last_seen"
        | "expires_at" | "updated_at" => "timestamptz",
        _ => "text",
    }
}

/// Splits an `in.(...)` list, honouring double quotes and, inside them, backslash escapes.
fn in_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => cur.extend(chars.next()),
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

enum Param {
    One(String),
    Many(Vec<String>),
}

/// `where` clause and parameters from the filter query pairs.
fn filters(pairs: &[(String, String)], params: &mut Vec<Param>) -> Result<String, &'static str> {
    let mut clauses = Vec::new();
    for (k, v) in pairs {
        if matches!(
            k.as_str(),
            "select" | "order" | "limit" | "offset" | "on_conflict" | "columns"
        ) {
            continue;
        }
        if !is_ident(k) {
            return Err("bad filter column");
        }
        let Some((op, val)) = v.split_once('.') else {
            return Err("bad filter");
        };
        let t = col_type(k);
        let n = params.len() + 1;
        let clause = match op {
            "eq" | "gt" | "gte" | "lt" | "lte" => {
                let sym = match op {
                    "eq" => "=",
                    "gt" => ">",
                    "gte" => ">=",
                    "lt" => "<",
                    _ => "<=",
                };
                params.push(Param::One(val.to_owned()));
                format!("{} {sym} (${n}::text)::{t}", q(k))
            }
            "in" => {
                let inner = val.strip_prefix('(').and_then(|v| v.strip_suffix(')'));
                let Some(inner) = inner else {
                    return Err("bad in list");
                };
                params.push(Param::Many(in_list(inner)));
                format!("{} = any((${n}::text[])::{t}[])", q(k))
            }
            _ => return Err("unsupported operator"),
        };
        clauses.push(clause);
    }
    Ok(if clauses.is_empty() {
        "true".into()
    } else {
        clauses.join(" and ")
    })
}

fn select_list(pairs: &[(String, String)]) -> Result<String, &'static str> {
    let sel = pairs
        .iter()
        .find(|(k, _)| k == "select")
        .map(|(_, v)| v.as_str())
        .unwrap_or("*");
    if sel == "*" {
        return Ok("*".into());
    }
    let cols: Vec<&str> = sel.split(',').collect();
    if !cols.iter().all(|c| is_ident(c)) {
        return Err("bad select");
    }
    Ok(cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", "))
}

fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

async fn handle(
    State(s): State<Arc<Shared>>,
    Path(table): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.requests.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if let Some(code) = *s.down.lock().expect("down") {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return error(status, "", "the project's services are down");
    }
    let key = s.key.lock().expect("key").clone();
    if header("apikey") != key || header("authorization") != format!("Bearer {key}") {
        return error(
            StatusCode::UNAUTHORIZED,
            "PGRST301",
            "invalid or missing API key",
        );
    }
    let fault = s.faults.lock().expect("faults").pop_front();
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return error(status, "", "injected failure");
        }
        Some(Fault::TooMany { retry_after_secs }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                "slow down",
            )
                .into_response();
        }
        None => {}
    }
    if ![
        "cdp_events",
        "cdp_searches",
        "cdp_profiles",
        "cdp_identity_edges",
        "cdp_tombstones",
    ]
    .contains(&table.as_str())
    {
        return error(
            StatusCode::NOT_FOUND,
            "PGRST205",
            "table not found in the schema cache",
        );
    }
    let profile_header = if method == Method::GET {
        "accept-profile"
    } else {
        "content-profile"
    };
    let schema = match header(profile_header) {
        "" => "public".to_owned(),
        s if is_ident(s) => s.to_owned(),
        _ => return error(StatusCode::NOT_ACCEPTABLE, "PGRST106", "bad schema"),
    };
    let target = format!("{}.{}", q(&schema), q(&table));
    let prefer = header("prefer").to_owned();
    let representation = prefer.contains("return=representation");
    let select = match select_list(&pairs) {
        Ok(s) => s,
        Err(m) => return error(StatusCode::BAD_REQUEST, "PGRST100", m),
    };

    let mut params: Vec<Param> = Vec::new();
    let sql = if method == Method::POST {
        let rows: Value = match serde_json::from_slice(&body) {
            Ok(Value::Array(a)) => Value::Array(a),
            Ok(o @ Value::Object(_)) => Value::Array(vec![o]),
            _ => return error(StatusCode::BAD_REQUEST, "PGRST102", "body must be JSON"),
        };
        let poisoned = {
            let poison = s.poison.lock().expect("poison");
            rows.as_array().into_iter().flatten().any(|r| {
                r.get("event_id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| poison.contains(id))
            })
        };
        if poisoned && table == "cdp_events" {
            return error(
                StatusCode::BAD_REQUEST,
                "23514",
                "new row for relation \"cdp_events\" violates check constraint \"poison\"",
            );
        }
        let cols: Vec<String> = match param(&pairs, "columns") {
            Some(c) => c.split(',').map(str::to_owned).collect(),
            None => rows[0]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
        };
        if !cols.iter().all(|c| is_ident(c)) {
            return error(StatusCode::BAD_REQUEST, "PGRST100", "bad columns");
        }
        let col_sql = cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
        let conflict = match param(&pairs, "on_conflict") {
            None => String::new(),
            Some(oc) => {
                let oc: Vec<&str> = oc.split(',').collect();
                if !oc.iter().all(|c| is_ident(c)) {
                    return error(StatusCode::BAD_REQUEST, "PGRST100", "bad on_conflict");
                }
                let target_cols = oc.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
                if prefer.contains("resolution=merge-duplicates") {
                    let sets: Vec<String> = cols
                        .iter()
                        .filter(|c| !oc.contains(&c.as_str()))
                        .map(|c| format!("{0} = excluded.{0}", q(c)))
                        .collect();
                    format!(
                        "on conflict ({target_cols}) do update set {}",
                        sets.join(", ")
                    )
                } else if prefer.contains("resolution=ignore-duplicates") {
                    format!("on conflict ({target_cols}) do nothing")
                } else {
                    String::new()
                }
            }
        };
        params.push(Param::One(rows.to_string()));
        format!(
            "with w as (insert into {target} ({col_sql}) select {col_sql} from \
             json_populate_recordset(null::{target}, $1::text::json) {conflict} returning {select}) \
             select coalesce(json_agg(w), '[]'::json)::text from w"
        )
    } else {
        let clause = match filters(&pairs, &mut params) {
            Ok(c) => c,
            Err(m) => return error(StatusCode::BAD_REQUEST, "PGRST100", m),
        };
        if method == Method::DELETE {
            format!(
                "with w as (delete from {target} where {clause} returning {select}) \
                 select coalesce(json_agg(w), '[]'::json)::text from w"
            )
        } else {
            // PostgREST's `order=col[.asc|.desc],...`.
            let order = match param(&pairs, "order") {
                None => String::new(),
                Some(o) => {
                    let mut terms = Vec::new();
                    for term in o.split(',') {
                        let (col, dir) = term.split_once('.').unwrap_or((term, "asc"));
                        if !is_ident(col) || !["asc", "desc"].contains(&dir) {
                            return error(StatusCode::BAD_REQUEST, "PGRST100", "bad order");
                        }
                        terms.push(format!("{} {dir}", q(col)));
                    }
                    format!("order by {}", terms.join(", "))
                }
            };
            let mut paging = String::new();
            for name in ["limit", "offset"] {
                match param(&pairs, name).map(|l| l.parse::<u64>()) {
                    None => {}
                    Some(Ok(n)) => paging.push_str(&format!(" {name} {n}")),
                    Some(Err(_)) => {
                        return error(StatusCode::BAD_REQUEST, "PGRST100", "bad limit or offset")
                    }
                }
            }
            format!(
                "select coalesce(json_agg(w), '[]'::json)::text from \
                 (select {select} from {target} where {clause} {order}{paging}) w"
            )
        }
    };

    let typed: Vec<(&(dyn ToSql + Sync), Type)> = params
        .iter()
        .map(|p| match p {
            Param::One(v) => (v as &(dyn ToSql + Sync), Type::TEXT),
            Param::Many(v) => (v as &(dyn ToSql + Sync), Type::TEXT_ARRAY),
        })
        .collect();
    match s.db.query_typed(&sql, &typed).await {
        Ok(rows) => {
            let text: String = rows
                .first()
                .and_then(|r| r.try_get(0).ok())
                .unwrap_or_default();
            let status = if method == Method::POST {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            if method != Method::GET && !representation {
                return StatusCode::NO_CONTENT.into_response();
            }
            (status, [("content-type", "application/json")], text).into_response()
        }
        Err(e) => {
            let code = e.code().map(|c| c.code().to_owned()).unwrap_or_default();
            let message = e
                .as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| e.to_string());
            let status = match code.as_str() {
                "23505" => StatusCode::CONFLICT,
                "42P01" => StatusCode::NOT_FOUND,
                "" => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            error(status, &code, &message)
        }
    }
}
