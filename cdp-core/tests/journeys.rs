//! Fixture journeys replayed through the reducer: per-event stages and final profiles are
//! insta snapshots, reviewed by hand (`cargo insta review`).

mod support;

use cdp_core::{apply, parse_recording, validate, Config, Outcome, Profile, Stage};
use serde::Serialize;
use std::collections::BTreeSet;
use support::journeys;

#[derive(Serialize)]
struct Step {
    event: String,
    outcome: Outcome,
    stage: Stage,
    stage_confidence: f64,
    predicted_persona: String,
    persona_confidence: f64,
    explicit_persona: Option<String>,
}

#[derive(Serialize)]
struct Replayed {
    steps: Vec<Step>,
    profile: Profile,
}

fn replay(cfg: &Config, text: &str) -> Replayed {
    let mut profile: Option<Profile> = None;
    let mut steps = Vec::new();
    for arrival in parse_recording(text).expect("valid recording") {
        let now = arrival.received_at.expect("fixtures record receive times");
        let event = validate(cfg, &arrival.event, now)
            .unwrap_or_else(|r| panic!("fixture event rejected: {r}"));
        let applied = apply(cfg, profile.take(), &event, now);
        steps.push(Step {
            event: event.event_type.to_string(),
            outcome: applied.outcome,
            stage: applied.row.current_stage,
            stage_confidence: applied.row.stage_confidence,
            predicted_persona: applied.row.predicted_persona.to_string(),
            persona_confidence: applied.row.persona_confidence,
            explicit_persona: applied
                .row
                .explicit_persona
                .as_ref()
                .map(ToString::to_string),
        });
        profile = Some(applied.profile);
    }
    Replayed {
        steps,
        profile: profile.expect("a journey has at least one event"),
    }
}

#[test]
fn journeys_match_their_reviewed_snapshots() {
    let cfg = Config::southland();
    let all = journeys();
    assert!(all.len() >= 12, "at least 12 journeys, found {}", all.len());
    for (name, text) in all {
        let replayed = replay(&cfg, &text);
        insta::assert_yaml_snapshot!(name, replayed);
    }
}

#[test]
fn the_journeys_reach_every_stage_and_every_persona() {
    let cfg = Config::southland();
    let mut stages = BTreeSet::new();
    let mut personas = BTreeSet::new();
    for (_, text) in journeys() {
        let r = replay(&cfg, &text);
        stages.extend(r.steps.iter().map(|s| s.stage));
        personas.insert(r.profile.predicted_persona.to_string());
    }
    assert_eq!(stages.into_iter().collect::<Vec<_>>(), Stage::ALL.to_vec());
    assert_eq!(
        personas.into_iter().collect::<Vec<_>>(),
        ["backyard", "commercial", "general", "lawn"]
    );
}

#[test]
fn a_duplicate_and_a_late_event_are_handled_as_documented() {
    let cfg = Config::southland();
    let (_, text) = journeys()
        .into_iter()
        .find(|(n, _)| n.contains("late_and_duplicate"))
        .expect("fixture present");
    let r = replay(&cfg, &text);
    let outcomes: Vec<_> = r.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Duplicate,
            Outcome::Applied,
            Outcome::Applied
        ]
    );
    // The late search (minute 5) sits between the page view (minute 0) and the product view.
    let kinds: Vec<_> = r
        .profile
        .signals
        .iter()
        .map(|s| s.kind.to_string())
        .collect();
    assert_eq!(
        kinds,
        ["page_view", "search", "product_view", "add_to_cart"]
    );
    assert_eq!(r.profile.total_signals, 4);
}
