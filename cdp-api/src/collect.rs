//! `POST /collect`: the ingestion path as a list of named steps (check the origin, check the
//! content type, read the body under the cap and the deadline, split it into events, sample,
//! validate each, persist the valid ones) that stops at the first step refusing the whole
//! request.
//!
//! Every rule about an event's content lives in `cdp_core::validate`; this module only maps
//! the outcome to HTTP. An event is reported `accepted` only after the writer has committed it.

use crate::body::RequestBody;
use crate::reply::{AppError, Collected, Problem, Refusal, Status};
use crate::server::AppState;
use crate::writer::{WriteError, WriteStatus};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use cdp_core::intake;
use cdp_core::sampling::{is_sampled, strip_pii};
use cdp_core::{Rejection, ValidEvent};
use chrono::Utc;
use serde_json::Value;

/// The handler. A refused request's answer waits until the rest of its body is discarded
/// ([`crate::body`]), so a client that writes its whole body first still reads it.
pub async fn collect(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let mut body = RequestBody::new(body, &headers, app.body_timeout);
    match steps(&app, &headers, &mut body).await {
        Ok(collected) => collected.into_response(),
        Err(refusal) => body.refuse(refusal).await,
    }
}

async fn steps(
    app: &AppState,
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> Result<Collected, AppError> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    intake::check_origin(&app.origins, text(header::ORIGIN))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    intake::check_content_type(content_type.as_deref())?;
    intake::check_size(text(header::CONTENT_LENGTH), None, app.max_body_bytes)?;
    let bytes = body.read_capped(app.max_body_bytes).await?;
    let raw = intake::split_events(&app.cfg, &bytes)?;
    let received_at = Utc::now();
    sample_payloads(&raw);
    let checked = intake::validate_each(&app.cfg, &raw, received_at);
    persist(app, checked).await
}

/// Logs one payload in a hundred, with PII stripped, for schema-mismatch debugging.
fn sample_payloads(raw: &[Value]) {
    for v in raw.iter().filter(|v| is_sampled(v)) {
        tracing::info!(payload = %strip_pii(v), "sampled payload");
    }
}

/// Sends the valid events to the writer and answers per event, in request order.
async fn persist(
    app: &AppState,
    checked: Vec<Result<ValidEvent, Rejection>>,
) -> Result<Collected, AppError> {
    let (valid, slots) = intake::take_valid(checked);
    let mut stored = Vec::with_capacity(valid.len());
    if !valid.is_empty() {
        let statuses = app.writers.write(valid).await.map_err(|e| match e {
            WriteError::Unavailable | WriteError::Stopped => Refusal::StoreUnavailable,
            WriteError::Refused => Refusal::Internal,
        })?;
        stored.extend(statuses.into_iter().map(|st| match st {
            WriteStatus::Accepted => (Status::Accepted, None),
            WriteStatus::Duplicate => (Status::Duplicate, None),
            WriteStatus::Suppressed => (Status::Suppressed, Some(intake::suppressed_problem())),
            WriteStatus::DeadLettered => (
                Status::Rejected,
                Some(Problem::new(
                    "event",
                    "refused by the store; kept in the dead-letter file for review",
                )),
            ),
        }));
    }
    Ok(intake::collect_reply(slots, stored).into())
}
