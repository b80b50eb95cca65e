//! Recorded traffic: NDJSON where each line is an event as it arrived, optionally wrapped with
//! the time it was received (`{"received_at": ..., "event": {...}}`). Fixture journeys, `cdp
//! replay` and parity tests between deploy targets all read this one format.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// One recorded arrival.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    /// When the collector received it, when the recording says.
    pub received_at: Option<DateTime<Utc>>,
    /// The raw event, still to be validated.
    pub event: Value,
}

/// A line that is not a recorded arrival.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RecordingError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses NDJSON; blank lines are skipped.
pub fn parse_recording(text: &str) -> Result<Vec<Arrival>, RecordingError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: String| RecordingError {
            line: i + 1,
            reason,
        };
        let value: Value = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        let wrapped = value.get("event").is_some_and(Value::is_object);
        if !wrapped {
            out.push(Arrival {
                received_at: None,
                event: value,
            });
            continue;
        }
        let received_at = match value.get("received_at") {
            None => None,
            Some(Value::String(s)) => Some(
                DateTime::parse_from_rfc3339(s)
                    .map_err(|e| err(format!("received_at: {e}")))?
                    .with_timezone(&Utc),
            ),
            Some(_) => return Err(err("received_at: must be an RFC 3339 string".into())),
        };
        out.push(Arrival {
            received_at,
            event: value.get("event").cloned().unwrap_or(Value::Null),
        });
    }
    Ok(out)
}
