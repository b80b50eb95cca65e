//! `cdp replay FILE.ndjson`: posts recorded events through `/collect`, in file order, so a
//! recording goes through exactly the path live traffic takes (and is deduplicated by it).
//! Lines that are not JSON are reported by number and skipped; note that events older than the
//! contract's age window (168 hours) are rejected by the collector.

use crate::client::{ClientError, Collector};
use serde_json::Value;
use std::path::Path;

/// Why the replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A batch failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Counts of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Lines that were not JSON (1-based numbers, first 20).
    pub bad_lines: Vec<usize>,
    /// Events posted.
    pub events: usize,
    /// Accepted now.
    pub accepted: usize,
    /// Already stored.
    pub duplicate: usize,
    /// Rejected by the contract.
    pub rejected: usize,
}

/// Splits NDJSON text into events, remembering which lines were not JSON.
pub fn parse_ndjson(text: &str) -> (Vec<Value>, Vec<usize>) {
    let mut events = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => events.push(v),
            Err(_) => bad.push(i + 1),
        }
    }
    (events, bad)
}

/// Reads the file and posts its events in batches.
pub async fn run(
    collector: &Collector,
    file: &Path,
    batch: usize,
) -> Result<ReplaySummary, ReplayError> {
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|source| ReplayError::Read {
            path: file.display().to_string(),
            source,
        })?;
    let (events, mut bad_lines) = parse_ndjson(&text);
    bad_lines.truncate(20);
    let mut s = ReplaySummary {
        bad_lines,
        events: events.len(),
        ..ReplaySummary::default()
    };
    for chunk in events.chunks(batch.clamp(1, 100)) {
        let reply = collector.post(chunk).await?;
        s.accepted += reply.accepted;
        s.duplicate += reply.duplicate;
        s.rejected += reply.rejected;
        for e in reply
            .events
            .iter()
            .filter(|e| !e.problems.is_empty())
            .take(5)
        {
            tracing::warn!(event_id = ?e.event_id, problems = ?e.problems, "replayed event rejected");
        }
    }
    Ok(s)
}
