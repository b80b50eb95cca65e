//! Contract v1 as a table: each row is an input and every problem it must report (or none),
//! checked by one helper so the cases read as data.

use cdp_core::{parse_body, validate, BodyError, Config};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T15:00:00Z")
        .expect("valid time")
        .with_timezone(&Utc)
}

fn base() -> Value {
    json!({
        "v": 1,
        "event": "page_view",
        "event_id": "6f1c2a4e-0000-4000-8000-000000000001",
        "anonymous_id": "anon-1",
        "session_id": "sess-1",
        "timestamp": "2026-03-02T14:59:00Z",
        "page_url": "https://southlandorganics.com/backyard"
    })
}

/// Applies `edits` (a JSON object; `null` removes a field) to the base event and returns the
/// problems as `field: rule` strings.
fn check(edits: Value) -> Vec<String> {
    let mut event = base();
    if let (Some(obj), Some(edits)) = (event.as_object_mut(), edits.as_object()) {
        for (k, v) in edits {
            if v.is_null() {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    match validate(&Config::southland(), &event, now()) {
        Ok(_) => vec![],
        Err(r) => r.problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn contract_rules_table() {
    let known = cdp_core::EventType::known_list();
    let long = "x".repeat(2049);
    let cases: Vec<(Value, Vec<String>)> = vec![
        (json!({}), vec![]),
        (json!({"v": 2}), vec!["v: unsupported contract version; expected 1".into()]),
        (json!({"event": "pageview"}), vec![format!("event: unknown event type; known: {known}")]),
        (json!({"event": 7}), vec!["event: must be a string".into()]),
        (
            json!({"event": null, "anonymous_id": null, "session_id": null, "timestamp": null, "page_url": null}),
            vec![
                "event: required".into(),
                "anonymous_id: required".into(),
                "session_id: required".into(),
                "timestamp: required".into(),
                "page_url: required".into(),
            ],
        ),
        (json!({"event_id": "not-a-uuid"}), vec!["event_id: must be a UUID".into()]),
        (json!({"anonymous_id": "has space"}), vec!["anonymous_id: must be printable ASCII without spaces".into()]),
        (json!({"anonymous_id": "a".repeat(129)}), vec!["anonymous_id: at most 128 characters".into()]),
        (json!({"timestamp": "yesterday"}), vec!["timestamp: must be an RFC 3339 date-time with offset".into()]),
        (json!({"timestamp": "2026-03-02T15:04:00Z"}), vec![]),
        (json!({"timestamp": "2026-03-02T15:06:00Z"}), vec!["timestamp: more than 300 seconds in the future".into()]),
        (json!({"timestamp": "2026-02-22T14:59:00Z"}), vec!["timestamp: older than 168 hours before receipt".into()]),
        (json!({"page_url": "/relative"}), vec!["page_url: must be an absolute http(s) URL".into()]),
        (json!({"page_url": format!("https://a.b/{long}")}), vec!["page_url: at most 2048 characters".into()]),
        (json!({"page_title": "tab\u{0007}bell"}), vec!["page_title: must not contain control characters".into()]),
        (json!({"colour": "red"}), vec!["colour: unknown field; allowed: v, event, event_id, anonymous_id, session_id, timestamp, page_url, customer_id, page_title, referrer, utm_source, utm_medium, utm_campaign, properties".into()]),
        (json!({"properties": [1]}), vec!["properties: must be a JSON object".into()]),
        (json!({"properties": {"a": {"b": {"c": {"d": 1}}}}}), vec![]),
        (json!({"properties": {"a": {"b": {"c": {"d": {"e": 1}}}}}}), vec!["properties: nested deeper than 4 levels".into()]),
        (json!({"properties": {"blob": "y".repeat(9000)}}), vec!["properties: at most 8192 bytes as JSON, got 9011".into()]),
        (json!({"properties": {"note": "nul\u{0000}byte"}}), vec!["properties: must not contain NUL characters".into()]),
        (json!({"event": "search_performed"}), vec!["properties.query: required for search_performed".into()]),
        (json!({"event": "search_performed", "properties": {"query": "coop", "results_count": -1}}), vec!["properties.results_count: must be a whole number from 0 to 1000000000".into()]),
        (json!({"event": "persona_path_selected", "properties": {"persona": "hobbyist"}}), vec!["properties.persona: unknown persona; known: backyard, commercial, lawn, general".into()]),
        (json!({"event": "persona_path_selected", "properties": {"persona": "backyard"}}), vec![]),
        (json!({"event": "ab_test_exposure", "properties": {"test_id": "t"}}), vec!["properties.variant: required for ab_test_exposure".into()]),
        (json!({"event": "email_signup", "properties": {"email": "not an email"}}), vec!["properties.email: must be an email address".into()]),
        (json!({"event": "outcome_survey_completed", "properties": {"survey_id": "s", "nps_score": 11}}), vec!["properties.nps_score: must be a whole number from 0 to 10".into()]),
        (json!({"event": "purchase", "properties": {"products": ["a", 2]}}), vec!["properties.products: must be a list of strings".into()]),
        (json!({"event": "product_view", "properties": {"product_id": 42}}), vec!["properties.product_id: must be a string".into()]),
        (json!({"anonymous_id": "\u{1F414}", "referrer": "https://x.y/\u{1F414}\"'<script>"}), vec!["anonymous_id: must be printable ASCII without spaces".into()]),
    ];
    for (edits, expected) in cases {
        assert_eq!(check(edits.clone()), expected, "edits: {edits}");
    }
}

#[test]
fn normalisation_sets_brand_utc_time_and_a_stable_event_id() {
    let cfg = Config::southland();
    let mut raw = base();
    raw["timestamp"] = json!("2026-03-02T09:59:00-05:00");
    raw.as_object_mut().map(|o| o.remove("event_id"));
    let a = validate(&cfg, &raw, now()).expect("valid");
    let b = validate(&cfg, &raw, now()).expect("valid");
    assert_eq!(a.brand_id.as_str(), "southland");
    assert_eq!(a.timestamp_iso(), "2026-03-02T14:59:00.000Z");
    assert_eq!(
        a.event_id, b.event_id,
        "a retried event without an id keeps its id"
    );
    raw["page_url"] = json!("https://southlandorganics.com/lawn");
    let c = validate(&cfg, &raw, now()).expect("valid");
    assert_ne!(a.event_id, c.event_id);
}

#[test]
fn clock_skew_within_tolerance_is_clamped_to_the_receive_time() {
    let mut raw = base();
    raw["timestamp"] = json!("2026-03-02T15:02:00Z");
    let e = validate(&Config::southland(), &raw, now()).expect("valid");
    assert_eq!(e.timestamp, now());
    assert_eq!(e.clock_skew_seconds, Some(120));
}

#[test]
fn bodies_are_split_into_events_or_refused_whole() {
    let cfg = Config::southland();
    let one = base().to_string();
    assert_eq!(parse_body(&cfg, one.as_bytes()).map(|v| v.len()), Ok(1));
    let many = Value::Array(vec![base(); 100]).to_string();
    assert_eq!(parse_body(&cfg, many.as_bytes()).map(|v| v.len()), Ok(100));
    let too_many = Value::Array(vec![base(); 101]).to_string();
    assert_eq!(
        parse_body(&cfg, too_many.as_bytes()),
        Err(BodyError::BatchTooLarge { max: 100, got: 101 })
    );
    assert_eq!(parse_body(&cfg, b"[]"), Err(BodyError::EmptyBatch));
    assert_eq!(parse_body(&cfg, b"\"hi\""), Err(BodyError::NotEvents));
    assert!(matches!(
        parse_body(&cfg, b"{\"a\":"),
        Err(BodyError::MalformedJson(_))
    ));
    assert!(matches!(
        parse_body(&cfg, &[0xff, 0xfe, 0x00]),
        Err(BodyError::MalformedJson(_))
    ));
    let deep = "[".repeat(10_000);
    assert!(matches!(
        parse_body(&cfg, deep.as_bytes()),
        Err(BodyError::MalformedJson(_))
    ));
}

#[test]
fn every_example_in_the_contract_document_is_valid_and_every_type_has_one() {
    let doc = include_str!("../../docs/cdp-event-contract.md");
    let cfg = Config::southland();
    let received = DateTime::parse_from_rfc3339("2026-03-02T14:05:01Z")
        .expect("valid")
        .with_timezone(&Utc);
    let mut seen = Vec::new();
    for block in doc.split("```json").skip(1) {
        let json_text = block.split("```").next().expect("closed block");
        let raw: Value = serde_json::from_str(json_text).expect("example is JSON");
        let event = validate(&cfg, &raw, received)
            .unwrap_or_else(|r| panic!("example rejected: {r}\n{json_text}"));
        seen.push(event.event_type);
    }
    let mut expected = cdp_core::EventType::ALL.to_vec();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected, "one example per event type");
}
