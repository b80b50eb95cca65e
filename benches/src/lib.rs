//! Inputs for the benchmarks: a visitor profile that already holds a full signal window, and
//! the fixture journeys, built with the same core functions the collector uses.

use cdp_core::{apply, parse_recording, validate, Config, Profile, ValidEvent};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// A fixed start time, so runs are comparable.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A valid raw event `n` minutes after `t0`, cycling through signal-bearing types.
pub fn raw_event(n: u32) -> Value {
    let (event, props) = match n % 5 {
        0 => ("page_view", json!({})),
        1 => (
            "search_performed",
            json!({"query": "chicken coop", "results_count": 3}),
        ),
        2 => (
            "product_view",
            json!({"product_id": "1", "product_handle": "litter-life"}),
        ),
        3 => ("tunnel_viewed", json!({"tunnel": "lawn-garden"})),
        _ => (
            "add_to_cart",
            json!({"product_id": "2", "product_handle": "hen-helper"}),
        ),
    };
    json!({
        "event": event,
        "event_id": format!("00000000-0000-4000-8000-{n:012}"),
        "anonymous_id": "bench-visitor",
        "session_id": format!("s{}", n / 30),
        "timestamp": (t0() + Duration::minutes(i64::from(n))).to_rfc3339(),
        "page_url": "https://southlandorganics.com/backyard/coops",
        "properties": props,
    })
}

/// Event `n` validated as received one second after it happened.
pub fn valid_event(cfg: &Config, n: u32) -> Option<ValidEvent> {
    let now = t0() + Duration::minutes(i64::from(n)) + Duration::seconds(1);
    validate(cfg, &raw_event(n), now).ok()
}

/// A profile after `events` events, with its signal window full once `events >= max_signals`.
pub fn profile_after(cfg: &Config, events: u32) -> Option<Profile> {
    let mut profile = None;
    for n in 0..events {
        let e = valid_event(cfg, n)?;
        profile = Some(apply(cfg, profile, &e, e.received_at).profile);
    }
    profile
}

/// The fixture journeys as (received_at, raw event) pairs, all files concatenated.
pub fn fixture_arrivals() -> Vec<(DateTime<Utc>, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/journeys");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "ndjson"));
    files.sort();
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| parse_recording(&text).ok())
        .flatten()
        .filter_map(|a| Some((a.received_at?, a.event)))
        .collect()
}
