//! The counting rules as data: each fixture journey's rollups (what the fold of its stored
//! events leaves in the counters and facts) are reviewed as snapshots, like its profile, and
//! the fold gives the same rollups whatever the order and batching of the events.

mod support;

use cdp_core::counting::fold::{apply, fold, recount};
use cdp_core::counting::{CountedEvent, CounterKey, Fact};
use cdp_core::{apply as apply_event, parse_recording, validate, Config, EventRow, Outcome};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use support::journeys;

/// The rows a store keeps for a journey: each applied event once, in arrival order (a
/// duplicate event id is not stored again).
fn stored(cfg: &Config, text: &str) -> Vec<CountedEvent> {
    let mut profile = None;
    let mut seen = BTreeSet::new();
    let mut rows: Vec<EventRow> = Vec::new();
    for arrival in parse_recording(text).expect("valid recording") {
        let now = arrival.received_at.expect("fixtures record receive times");
        let event = validate(cfg, &arrival.event, now)
            .unwrap_or_else(|r| panic!("fixture event rejected: {r}"));
        let applied = apply_event(cfg, profile.take(), &event, now);
        if applied.outcome == Outcome::Applied && seen.insert(applied.row.event_id) {
            rows.push(applied.row.clone());
        }
        profile = Some(applied.profile);
    }
    rows.iter()
        .enumerate()
        .map(|(i, r)| CountedEvent::of_row(i as i64 + 1, r))
        .collect()
}

#[derive(Serialize)]
struct Rollups {
    /// `counter bucket [dims]: value`, one line each.
    counters: Vec<String>,
    facts: Vec<Fact>,
}

fn rollups(events: &[CountedEvent]) -> Rollups {
    let (counters, facts) = recount(events);
    Rollups {
        counters: counters
            .iter()
            .map(|c| {
                format!(
                    "{} {} {:?}: {}",
                    c.key.counter.name(),
                    c.key.bucket.format("%Y-%m-%dT%H:%MZ"),
                    c.key.dims,
                    c.delta
                )
            })
            .collect(),
        facts,
    }
}

#[test]
fn journeys_rollups_match_their_reviewed_snapshots() {
    let cfg = Config::southland();
    for (name, text) in journeys() {
        let events = stored(&cfg, &text);
        assert!(!events.is_empty(), "{name}");
        insta::assert_yaml_snapshot!(format!("{name}_rollups"), rollups(&events));
    }
}

/// Every journey's stored events, one store's `seq`s.
fn every_journey() -> Vec<CountedEvent> {
    let cfg = Config::southland();
    let mut all = Vec::new();
    for (_, text) in journeys() {
        let offset = all.len() as i64;
        all.extend(stored(&cfg, &text).into_iter().map(|mut e| {
            e.seq += offset;
            e
        }));
    }
    all
}

/// What a store holds after folding `batches` one after another.
fn folded(batches: &[Vec<CountedEvent>]) -> (BTreeMap<CounterKey, i64>, Vec<Fact>) {
    let (mut counters, mut facts) = (BTreeMap::new(), Vec::new());
    for batch in batches {
        let changes = fold(batch, &facts);
        apply(&mut counters, &mut facts, changes);
    }
    (counters, facts)
}

#[test]
fn any_order_and_any_batching_give_the_same_rollups() {
    let all = every_journey();
    let (want_counters, want_facts) = recount(&all);
    let want: BTreeMap<CounterKey, i64> = want_counters
        .into_iter()
        .map(|c| (c.key, c.delta))
        .collect();
    let one_by_one: Vec<Vec<CountedEvent>> = all.iter().map(|e| vec![e.clone()]).collect();
    let reversed: Vec<Vec<CountedEvent>> = all.iter().rev().map(|e| vec![e.clone()]).collect();
    let mut shuffled = all.clone();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..shuffled.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        shuffled.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let chunks: Vec<Vec<CountedEvent>> = shuffled.chunks(7).map(<[_]>::to_vec).collect();
    // (A repeated event would be counted again: stores deduplicate on the event id before
    // anything is queued for the fold, which the conformance suite checks.)
    for (how, batches) in [
        ("one by one", one_by_one),
        ("reversed", reversed),
        ("shuffled in sevens", chunks),
    ] {
        let (counters, facts) = folded(&batches);
        assert_eq!(counters, want, "counters, {how}");
        assert_eq!(facts, want_facts, "facts, {how}");
    }
}

#[test]
fn taking_events_out_leaves_the_rollups_of_the_rest() {
    let all = every_journey();
    let visitors: Vec<String> = all
        .iter()
        .map(|e| e.anonymous_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Each rule picks the events an erasure removes: a whole visitor; every other event of
    // three visitors (a login on someone else's device takes some of a browser's events);
    // nothing.
    type Removes<'a> = Box<dyn Fn(&CountedEvent) -> bool + 'a>;
    let rules: Vec<(&str, Removes)> = vec![
        (
            "one visitor whole",
            Box::new(|e| e.anonymous_id == visitors[0]),
        ),
        (
            "every other event of three visitors",
            Box::new(|e| visitors[1..4].contains(&e.anonymous_id) && e.seq % 2 == 0),
        ),
        ("nothing", Box::new(|_| false)),
    ];
    for (how, removes) in rules {
        let (mut counters, mut facts) = folded(std::slice::from_ref(&all));
        let touched: BTreeSet<&str> = all
            .iter()
            .filter(|e| removes(e))
            .map(|e| e.anonymous_id.as_str())
            .collect();
        let before: Vec<CountedEvent> = all
            .iter()
            .filter(|e| touched.contains(e.anonymous_id.as_str()))
            .cloned()
            .collect();
        let kept: Vec<CountedEvent> = before.iter().filter(|e| !removes(e)).cloned().collect();
        cdp_core::counting::fold::apply_removal(
            &mut counters,
            &mut facts,
            cdp_core::counting::fold::without(&before, &kept),
        );
        let rest: Vec<CountedEvent> = all.iter().filter(|e| !removes(e)).cloned().collect();
        assert!(
            how == "nothing" || rest.len() < all.len(),
            "{how} removes events"
        );
        let (want_counters, want_facts) = recount(&rest);
        let want: BTreeMap<CounterKey, i64> = want_counters
            .into_iter()
            .map(|c| (c.key, c.delta))
            .collect();
        assert_eq!(counters, want, "counters, {how}");
        assert_eq!(facts, want_facts, "facts, {how}");
    }
}
