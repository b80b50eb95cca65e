//! Properties that must hold for any input, checked with proptest: scores form a distribution,
//! decay never rises with age, replays are idempotent, the signal window is bounded, validation
//! never panics, stage history never goes back in time, and only relative time matters.

use cdp_core::decay::factor;
use cdp_core::{apply, parse_body, score, validate, Config, Profile, Signal, ValidEvent};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn cfg() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(Config::southland)
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

/// A valid raw event of one of several types, `minute` minutes after `t0`.
fn raw_event(kind: u8, n: u32, minute: i64, session: u8, base: DateTime<Utc>) -> Value {
    let (event, props) = match kind % 9 {
        0 => ("page_view", json!({})),
        1 => (
            "search_performed",
            json!({"query": "chicken coop", "results_count": 3}),
        ),
        2 => (
            "product_view",
            json!({"product_id": "1", "product_handle": "litter-life"}),
        ),
        3 => (
            "add_to_cart",
            json!({"product_id": "1", "product_handle": "jump-start"}),
        ),
        4 => (
            "purchase",
            json!({"products": ["hen-helper", "litter-life"]}),
        ),
        5 => ("persona_path_selected", json!({"persona": "backyard"})),
        6 => ("persona_changed", json!({"to_persona": "lawn"})),
        7 => (
            "outcome_survey_completed",
            json!({"survey_id": "s", "nps_score": 9}),
        ),
        _ => ("tunnel_viewed", json!({"tunnel": "commercial-poultry"})),
    };
    json!({
        "event": event,
        "event_id": format!("00000000-0000-4000-8000-{n:012}"),
        "anonymous_id": "visitor",
        "session_id": format!("s{session}"),
        "timestamp": (base + Duration::minutes(minute)).to_rfc3339(),
        "page_url": "https://southlandorganics.com/backyard",
        "properties": props,
    })
}

/// A journey: events with offsets, each received some minutes after it happened (late ones
/// arrive after later events), returned in arrival order with their receive times.
fn journey() -> impl Strategy<Value = Vec<(Value, DateTime<Utc>)>> {
    prop::collection::vec((any::<u8>(), 0i64..6000, 0i64..600, 0u8..4), 1..40).prop_map(|steps| {
        let mut out: Vec<(Value, DateTime<Utc>)> = steps
            .into_iter()
            .enumerate()
            .map(|(i, (kind, minute, delay, session))| {
                let raw = raw_event(kind, i as u32, minute, session, t0());
                (raw, t0() + Duration::minutes(minute + delay))
            })
            .collect();
        out.sort_by_key(|(_, at)| *at);
        out
    })
}

fn run(events: &[(Value, DateTime<Utc>)]) -> (Option<Profile>, Vec<ValidEvent>) {
    let mut profile = None;
    let mut valid = Vec::new();
    for (raw, now) in events {
        let e = validate(cfg(), raw, *now).expect("generated events are valid");
        profile = Some(apply(cfg(), profile, &e, *now).profile);
        valid.push(e);
    }
    (profile, valid)
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("page_view"),
            Just("search_performed"),
            Just("2026-03-02T12:00:00Z"),
            Just("https://x.y/")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("event".to_string()),
                    Just("anonymous_id".to_string()),
                    Just("properties".to_string()),
                    Just("timestamp".to_string()),
                    ".{0,12}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn scores_are_a_probability_distribution(
        raw in prop::collection::vec((0usize..4, 0.0f64..20.0, 0i64..60 * 24 * 40), 0..120)
    ) {
        let personas = cfg().personas();
        let signals: Vec<Signal> = raw.iter().enumerate().map(|(i, (p, w, age))| Signal {
            event_id: uuid::Uuid::from_u128(i as u128),
            event_type: cdp_core::EventType::PageView,
            kind: "page_view".into(),
            persona: personas[*p].id.clone(),
            hint: cdp_core::HintSource::Path,
            weight: *w,
            at: t0() - Duration::minutes(*age),
        }).collect();
        let s = score(cfg(), &signals, t0());
        let sum: f64 = s.probabilities.values().sum();
        prop_assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
        prop_assert!(s.probabilities.values().all(|p| (0.0..=1.0).contains(p)));
        prop_assert!((0.0..=1.0).contains(&s.confidence));
        prop_assert_eq!(s.probabilities.len(), personas.len());
    }

    #[test]
    fn decay_never_increases_with_age(a in -100_000i64..10_000_000, b in -100_000i64..10_000_000) {
        let (young, old) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(factor(cfg(), Duration::seconds(young)) >= factor(cfg(), Duration::seconds(old)));
    }

    #[test]
    fn applying_an_event_again_changes_nothing(events in journey(), pick in any::<prop::sample::Index>()) {
        let (profile, valid) = run(&events);
        let profile = profile.expect("non-empty journey");
        let again = &valid[pick.index(valid.len())];
        let now = events.last().expect("non-empty").1;
        let replayed = apply(cfg(), Some(profile.clone()), again, now);
        prop_assert_eq!(replayed.outcome, cdp_core::Outcome::Duplicate);
        prop_assert_eq!(replayed.profile, profile);
    }

    #[test]
    fn stage_history_never_goes_back_in_time(events in journey()) {
        let (profile, _) = run(&events);
        let history = profile.expect("non-empty journey").stage_history;
        prop_assert!(history.windows(2).all(|w| w[0].entered_at <= w[1].entered_at));
        prop_assert!(history.windows(2).all(|w| w[0].stage != w[1].stage));
    }

    #[test]
    fn shifting_all_times_together_changes_nothing(events in journey(), shift_days in -3000i64..3000) {
        let shift = Duration::days(shift_days);
        let shifted: Vec<(Value, DateTime<Utc>)> = events.iter().map(|(raw, at)| {
            let mut raw = raw.clone();
            let ts = DateTime::parse_from_rfc3339(raw["timestamp"].as_str().expect("string"))
                .expect("valid").with_timezone(&Utc) + shift;
            raw["timestamp"] = Value::from(ts.to_rfc3339());
            (raw, *at + shift)
        }).collect();
        let a = run(&events).0.expect("non-empty");
        let b = run(&shifted).0.expect("non-empty");
        prop_assert_eq!(a.persona_scores, b.persona_scores);
        prop_assert_eq!(a.current_stage, b.current_stage);
        prop_assert_eq!(a.stage_confidence, b.stage_confidence);
        prop_assert_eq!(a.persona_confidence, b.persona_confidence);
        prop_assert_eq!(a.session_count, b.session_count);
        prop_assert_eq!(a.last_seen + shift, b.last_seen);
    }

    #[test]
    fn validation_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(events) = parse_body(cfg(), &bytes) {
            for e in events {
                let _ = validate(cfg(), &e, t0());
            }
        }
    }

    #[test]
    fn validation_never_panics_on_arbitrary_json(value in arb_json()) {
        let _ = validate(cfg(), &value, t0());
        let mut event = raw_event(1, 1, 0, 0, t0());
        event["properties"] = value.clone();
        let _ = validate(cfg(), &event, t0());
        if let Some(obj) = value.as_object() {
            let mut merged = raw_event(0, 2, 0, 0, t0());
            for (k, v) in obj {
                merged[k] = v.clone();
            }
            let _ = validate(cfg(), &merged, t0());
        }
    }
}

#[test]
fn a_profile_keeps_at_most_max_signals() {
    let mut profile = None;
    for i in 0..250u32 {
        let at = t0() + Duration::minutes(i64::from(i));
        let e = validate(
            cfg(),
            &raw_event((i % 5) as u8, i, i64::from(i), 0, t0()),
            at,
        )
        .expect("valid");
        profile = Some(apply(cfg(), profile, &e, at).profile);
        let p = profile.as_ref().expect("set");
        assert!(
            p.signals.len() <= cfg().max_signals(),
            "{} signals",
            p.signals.len()
        );
    }
    let p = profile.expect("set");
    assert_eq!(p.signals.len(), 100);
    assert_eq!(
        p.total_signals,
        250 + 50,
        "purchases of two personas yield two signals each"
    );
}
