//! The erasure's conformance check: after a person is erased, no text or JSON cell of any
//! table (enumerated from the schema, so a table added later is covered without editing this
//! check) holds one of their identifiers; the rollups equal a fold of what is left from
//! nothing, whether the erased events had been folded or were still queued; the tombstones
//! are keyed hashes; erasing again removes nothing more.

use super::data;
use cdp_adapters::analytics::Analytics;
use cdp_adapters::{EraseError, EraseStore, EventSink, IdentityStore, ProfileStore, Store};
use cdp_core::identity::{find, resolve, Erasure, IdentityRules, TombstoneKey};
use cdp_core::{BrandId, Config};
use serde_json::json;
use uuid::Uuid;

/// Betty browses on her phone and laptop (an identify with her email and customer id, a
/// search, an email signup), logs in once on Bill's family computer (refused: it already
/// holds Bill's customer id), and Carol browses alone.
fn journeys() -> data::Journeys {
    let start = data::at("2026-03-02T10:00:00Z");
    let event = |i: u32, anon: &str, kind: &str, extra: serde_json::Value| {
        data::event_at(start, "00000000-0000-4000-a000", i, anon, kind, extra)
    };
    data::run(&[
        event(
            1,
            "family-pc-7",
            "page_view",
            json!({"customer_id": "cust-bill-1"}),
        ),
        event(2, "phone-betty-2", "page_view", json!({})),
        event(
            3,
            "phone-betty-2",
            "identify",
            json!({"customer_id": "cust-betty-9", "properties": {"email": "Betty.Q@Example.com"}}),
        ),
        event(
            4,
            "phone-betty-2",
            "search_performed",
            json!({"properties": {"query": "fly spray", "results_count": 3}}),
        ),
        event(
            5,
            "laptop-betty-3",
            "email_signup",
            json!({"properties": {"email": "betty.q@example.com", "source": "footer"}}),
        ),
        event(6, "carol-tab-4", "page_view", json!({})),
        event(
            7,
            "family-pc-7",
            "page_view",
            json!({"customer_id": "cust-bill-1"}),
        ),
        event(
            8,
            "family-pc-7",
            "identify",
            json!({"customer_id": "cust-betty-9", "properties": {"email": "betty.q@example.com"}}),
        ),
        event(
            9,
            "family-pc-7",
            "page_view",
            json!({"customer_id": "cust-bill-1"}),
        ),
        event(10, "laptop-betty-3", "page_view", json!({})),
    ])
}

/// Betty's identifiers as they may appear in any cell (compared lower-cased).
const BETTY: [&str; 4] = [
    "phone-betty-2",
    "laptop-betty-3",
    "cust-betty-9",
    "betty.q@example.com",
];

fn key() -> TombstoneKey {
    TombstoneKey::new("conformance tombstone key, thirty-two bytes or more").expect("key")
}

async fn betty(store: &Store, brand: &BrandId, rules: &IdentityRules) -> Erasure {
    let log = store.identity_edges(brand).await.expect("log");
    let p = resolve(&log, rules);
    let found = find(&p, "Betty.Q@example.com", rules).expect("Betty is a person");
    Erasure::of(&found, &log, rules).keyed(&key())
}

/// The cells of every text or JSON column of every table (read from the schema's own
/// catalogue, so a table added later is covered) that name Betty.
async fn holding_betty(store: &Store) -> Vec<String> {
    store
        .text_cells()
        .await
        .expect("cells")
        .iter()
        .filter(|c| {
            let v = c.value.to_lowercase();
            BETTY.iter().any(|b| v.contains(b))
        })
        .map(|c| format!("{}.{} = {:.80}", c.table, c.column, c.value))
        .collect()
}

pub async fn check_erase_store(store: &Store) {
    let cfg = Config::southland();
    let brand = BrandId::new("southland");
    let rules = cfg.identity_rules();
    let j = journeys();
    assert_eq!(j.rows.len(), 10, "every event passes the contract");
    // The first half is folded into the rollups before the erasure, the rest is still
    // queued for the fold when it runs.
    store.write_events(&j.rows[..5]).await.expect("write");
    store.flush_rollups().await.expect("fold");
    store.write_events(&j.rows[5..]).await.expect("write");
    let profiles: Vec<_> = j.profiles.values().cloned().collect();
    store
        .save_profiles(&cfg, &profiles)
        .await
        .expect("profiles");
    let before = holding_betty(store).await;
    assert!(before.len() > 5, "the check sees Betty before: {before:?}");

    let erasure = betty(store, &brand, rules).await;
    assert_eq!(erasure.identifiers.len(), 4, "{erasure:?}");
    let at = data::at("2026-03-03T00:00:00Z");
    let erased = store
        .erase(&brand, &erasure, rules, Uuid::from_u128(1), at)
        .await
        .expect("erase");
    // Her five events on her own browsers and her login on the family computer.
    assert_eq!(erased.events, 6, "{erased:?}");
    assert_eq!(erased.searches, 1, "{erased:?}");
    assert_eq!(
        erased.profiles, 3,
        "her two browsers and the family computer: {erased:?}"
    );
    assert_eq!(erased.edges, 5, "{erased:?}");
    assert_eq!(
        erased
            .rebuild
            .iter()
            .map(|b| b.as_str())
            .collect::<Vec<_>>(),
        ["family-pc-7"],
        "the family computer keeps Bill's events and is rebuilt from them"
    );

    let left = holding_betty(store).await;
    assert!(left.is_empty(), "cells still naming Betty: {left:#?}");
    let stored = store.counted_events().await.expect("events");
    assert_eq!(stored.len(), 4, "Bill's three events and Carol's one stay");
    store.flush_rollups().await.expect("fold");
    assert_eq!(
        store.rollup_differences().await.expect("audit"),
        [],
        "the rollups equal a fresh count of what is left"
    );
    let log = store.identity_edges(&brand).await.expect("log");
    assert_eq!(log.len(), 1, "Bill's own link stays: {log:?}");

    let mut hashes = store.tombstones(&brand).await.expect("tombstones");
    hashes.sort();
    let mut want: Vec<String> = erasure.tombstones.iter().map(|t| t.hash.clone()).collect();
    want.sort();
    assert_eq!(hashes, want);
    let figures = store.erasure_figures(&brand).await.expect("figures");
    assert_eq!(
        (figures.erasures, figures.tombstones, figures.suppressed),
        (1, 4, 0)
    );
    store
        .count_suppressed(&brand, &[(want[0].clone(), 2), ("f".repeat(64), 5)], at)
        .await
        .expect("count");
    let figures = store.erasure_figures(&brand).await.expect("figures");
    assert_eq!(figures.suppressed, 2, "only held tombstones count");

    // Erasing what is already erased (Betty is now only her tombstones) removes nothing.
    let again = store
        .erase(&brand, &erasure, rules, Uuid::from_u128(2), at)
        .await
        .expect("erase again");
    assert_eq!((again.events, again.searches, again.edges), (0, 0, 0));
    assert_eq!(store.counted_events().await.expect("events").len(), 4);
    assert_eq!(store.tombstones(&brand).await.expect("tombstones").len(), 4);
}

pub async fn check_erase_unsupported(store: &Store) {
    let cfg = Config::southland();
    let brand = BrandId::new("southland");
    let rules = cfg.identity_rules();
    store.write_events(&journeys().rows).await.expect("write");
    let erasure = betty(store, &brand, rules).await;
    let at = data::at("2026-03-03T00:00:00Z");
    assert!(matches!(
        store
            .erase(&brand, &erasure, rules, Uuid::from_u128(1), at)
            .await,
        Err(EraseError::Unsupported { .. })
    ));
}
