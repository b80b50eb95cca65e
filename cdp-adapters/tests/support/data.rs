//! Test data for the conformance suite: real rows and profiles made by `cdp_core::apply` on
//! events validated by `cdp_core::validate` under `Config::southland()`, from the fixture
//! journeys plus a journey of hostile strings.

use cdp_core::{apply, validate, AnonymousId, Config, EventRow, Outcome, Profile};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// What applying a list of events produced.
pub struct Journeys {
    /// Every accepted event's row, in processing order (duplicates included, as a collector
    /// that writes every accepted row would send them).
    pub rows: Vec<EventRow>,
    /// The last profile of each visitor.
    pub profiles: BTreeMap<AnonymousId, Profile>,
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

/// A raw event `i` minutes after `start` for browser `anon`, with `extra` fields merged in and
/// the event id `{id_prefix}-{i:012x}`, received a second later.
pub fn event_at(
    start: DateTime<Utc>,
    id_prefix: &str,
    i: u32,
    anon: &str,
    kind: &str,
    extra: Value,
) -> (DateTime<Utc>, Value) {
    let t = start + chrono::Duration::minutes(i64::from(i));
    let mut v = json!({
        "event": kind,
        "event_id": format!("{id_prefix}-{i:012x}"),
        "anonymous_id": anon,
        "session_id": format!("{anon}-s1"),
        "timestamp": t.to_rfc3339(),
        "page_url": "https://southlandorganics.com/account",
    });
    if let (Some(o), Value::Object(x)) = (v.as_object_mut(), extra) {
        o.extend(x);
    }
    (t + chrono::Duration::seconds(1), v)
}

/// Validates and applies `(received_at, raw event)` pairs in order.
pub fn run(events: &[(DateTime<Utc>, Value)]) -> Journeys {
    let cfg = Config::southland();
    let mut rows = Vec::new();
    let mut profiles: BTreeMap<AnonymousId, Profile> = BTreeMap::new();
    for (received_at, raw) in events {
        let Ok(event) = validate(&cfg, raw, *received_at) else {
            continue;
        };
        let prior = profiles.get(&event.anonymous_id).cloned();
        let applied = apply(&cfg, prior, &event, *received_at);
        if applied.outcome == Outcome::Applied {
            profiles.insert(event.anonymous_id.clone(), applied.profile);
        }
        rows.push(applied.row);
    }
    Journeys { rows, profiles }
}

/// The fixture journeys (`fixtures/journeys/*.ndjson`), in file then line order.
pub fn fixtures() -> Journeys {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/journeys");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("fixture");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("fixture line is JSON");
            let received = at(v["received_at"].as_str().expect("received_at"));
            events.push((received, v["event"].clone()));
        }
    }
    let j = run(&events);
    assert!(
        j.rows.len() >= 20,
        "expected the fixture journeys, got {} rows",
        j.rows.len()
    );
    j
}

/// Strings that break naive quoting, encoding or URL building, at the contract's limits.
pub fn hostile() -> Journeys {
    let anon = r#"v-'q"uo,te(s).eq&x=1%20+#?;--"#;
    let title: String = "Ünïcødé 🐔🌱 \"quoted\" 'single' \\back\\ "
        .repeat(12)
        .chars()
        .take(512)
        .collect();
    let long_url = format!(
        "https://southlandorganics.com/search?q={}",
        "x%27".repeat(495)
    );
    let long_url: String = long_url.chars().take(2048).collect();
    let received = at("2026-03-03T09:00:05Z");
    let events = vec![
        (
            received,
            json!({
                "event": "search_performed",
                "event_id": "7d1c4f7e-0d6b-4c0e-9a51-2f1f7c1e0a01",
                "anonymous_id": anon,
                "session_id": "s'1\"",
                "timestamp": "2026-03-03T09:00:00.000Z",
                "page_url": long_url,
                "page_title": title,
                "referrer": "https://example.com/?a='; drop table cdp_events; --",
                "utm_source": "ñews\"letter",
                "utm_campaign": "مرحبا שלום 你好 🎉",
                "properties": {
                    "query": "  O'Brien's \"best\" 🐔 chicken\\grit; drop table cdp_searches; -- ",
                    "results_count": 7,
                    "nested": { "k'ey": ["a\"b", "é", 1.5, null, true], "𝄞": "\u{202e}rtl" }
                }
            }),
        ),
        (
            at("2026-03-03T09:01:05Z"),
            json!({
                "event": "page_view",
                "event_id": "7d1c4f7e-0d6b-4c0e-9a51-2f1f7c1e0a02",
                "anonymous_id": anon,
                "session_id": "s'1\"",
                "timestamp": "2026-03-03T09:01:00.000Z",
                "page_url": "https://southlandorganics.com/pages/%F0%9F%90%94?x=\"y\"",
                "page_title": "Tab\u{a0}nbsp and zero\u{200b}width",
                "properties": { "emoji": "🐓".repeat(100), "quote": "'\"`" }
            }),
        ),
    ];
    let j = run(&events);
    assert_eq!(
        j.rows.len(),
        2,
        "both hostile events must pass the contract"
    );
    j
}

/// A small journey for one visitor: `n` page views a minute apart, received at `start`.
pub fn page_views(anon: &str, n: usize, start: &str) -> Journeys {
    let start = at(start);
    let events: Vec<_> = (0..n)
        .map(|i| {
            let t = start + chrono::Duration::minutes(i as i64);
            (
                t + chrono::Duration::seconds(1),
                json!({
                    "event": if i % 3 == 2 { "search_performed" } else { "page_view" },
                    "event_id": format!("00000000-0000-4000-8000-{:012x}", i + anon.len() * 1000),
                    "anonymous_id": anon,
                    "session_id": format!("{anon}-s{}", i / 4),
                    "timestamp": t.to_rfc3339(),
                    "page_url": format!("https://southlandorganics.com/p/{i}"),
                    "properties": if i % 3 == 2 { json!({"query": format!("q{i}")}) } else { json!({}) }
                }),
            )
        })
        .collect();
    run(&events)
}
