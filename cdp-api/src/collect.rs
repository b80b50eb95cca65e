//! `POST /collect`: the ingestion path as a list of named steps (check the origin, check the
//! content type, read the body under the cap, split it into events, sample, validate each,
//! persist the valid ones) that stops at the first step refusing the whole request.
//!
//! Every rule about an event's content lives in `cdp_core::validate`; this module only maps
//! the outcome to HTTP. An event is reported `accepted` only after the writer has committed it.

use crate::reply::{AppError, CollectReply, EventReply, Problem, Status};
use crate::sampling::{is_sampled, strip_pii};
use crate::server::AppState;
use crate::settings::Origins;
use crate::writer::{WriteError, WriteStatus};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use cdp_core::{parse_body, validate, BodyError, Config, Rejection, ValidEvent};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::Value;

/// Content types the collector reads: JSON, and the `text/plain` that `navigator.sendBeacon`
/// sends for a string body without a CORS preflight.
pub const ACCEPTED_CONTENT_TYPES: [&str; 2] = ["application/json", "text/plain"];

/// The handler.
pub async fn collect(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<CollectReply, AppError> {
    check_origin(&app.origins, &headers)?;
    check_content_type(&headers)?;
    let bytes = read_capped(body, &headers, app.max_body_bytes).await?;
    let raw = split_events(&app.cfg, &bytes)?;
    let received_at = Utc::now();
    sample_payloads(&raw);
    let checked = validate_each(&app.cfg, &raw, received_at);
    persist(&app, checked).await
}

/// A browser request from an origin outside the allowlist is refused, even the `text/plain`
/// kind that CORS alone would let through.
fn check_origin(origins: &Origins, headers: &HeaderMap) -> Result<(), AppError> {
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(o) if o.to_str().is_ok_and(|o| origins.allows(o)) => Ok(()),
        Some(_) => Err(AppError::OriginNotAllowed),
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), AppError> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if ACCEPTED_CONTENT_TYPES.contains(&essence.as_str()) {
        Ok(())
    } else {
        let shown: String = raw.chars().take(100).collect();
        Err(AppError::UnsupportedMediaType(if shown.is_empty() {
            "none".to_owned()
        } else {
            shown
        }))
    }
}

/// Reads the body, refusing it as soon as it passes the cap (by header or by counting).
async fn read_capped(body: Body, headers: &HeaderMap, cap: usize) -> Result<Vec<u8>, AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(AppError::TooLarge(cap));
    }
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            AppError::MalformedBody(vec![Problem::new(
                "body",
                format!("could not be read ({e})"),
            )])
        })?;
        if out.len() + chunk.len() > cap {
            return Err(AppError::TooLarge(cap));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn split_events(cfg: &Config, bytes: &[u8]) -> Result<Vec<Value>, AppError> {
    parse_body(cfg, bytes).map_err(|e| {
        let rule = match &e {
            BodyError::MalformedJson(why) => format!("malformed JSON ({why})"),
            other => other
                .to_string()
                .strip_prefix("body: ")
                .map(str::to_owned)
                .unwrap_or_else(|| other.to_string()),
        };
        AppError::MalformedBody(vec![Problem::new("body", rule)])
    })
}

/// Logs one payload in a hundred, with PII stripped, for schema-mismatch debugging.
fn sample_payloads(raw: &[Value]) {
    for v in raw.iter().filter(|v| is_sampled(v)) {
        tracing::info!(payload = %strip_pii(v), "sampled payload");
    }
}

fn validate_each(
    cfg: &Config,
    raw: &[Value],
    received_at: DateTime<Utc>,
) -> Vec<Result<ValidEvent, Rejection>> {
    raw.iter().map(|v| validate(cfg, v, received_at)).collect()
}

/// Sends the valid events to the writer and answers per event, in request order.
async fn persist(
    app: &AppState,
    checked: Vec<Result<ValidEvent, Rejection>>,
) -> Result<CollectReply, AppError> {
    let mut replies: Vec<EventReply> = Vec::with_capacity(checked.len());
    let mut valid = Vec::new();
    let mut slots = Vec::new();
    for (i, c) in checked.into_iter().enumerate() {
        match c {
            Ok(e) => {
                replies.push(EventReply {
                    event_id: Some(e.event_id.hyphenated().to_string()),
                    status: Status::Accepted,
                    problems: Vec::new(),
                });
                slots.push(i);
                valid.push(e);
            }
            Err(r) => replies.push(EventReply {
                event_id: r.event_id,
                status: Status::Rejected,
                problems: r.problems.into_iter().map(Problem::from).collect(),
            }),
        }
    }
    if !valid.is_empty() {
        let statuses = app.writers.write(valid).await.map_err(|e| match e {
            WriteError::Unavailable | WriteError::Stopped => AppError::StoreUnavailable,
            WriteError::Refused => AppError::Internal,
        })?;
        for (i, st) in slots.into_iter().zip(statuses) {
            match st {
                WriteStatus::Accepted => {}
                WriteStatus::Duplicate => replies[i].status = Status::Duplicate,
                WriteStatus::DeadLettered => {
                    replies[i].status = Status::Rejected;
                    replies[i].problems.push(Problem::new(
                        "event",
                        "refused by the store; kept in the dead-letter file for review",
                    ));
                }
            }
        }
    }
    Ok(CollectReply::new(replies))
}
