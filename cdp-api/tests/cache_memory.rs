//! The profile cache is bounded by [`Profile::memory_bytes`], an estimate. Here a counting
//! allocator (stats_alloc, wrapping the system allocator) measures what profiles really hold,
//! from the smallest (one page view) to the largest (a hundred signals, sixty-four sessions),
//! both as the writer builds them and as they come back from the store, and the estimate must
//! stay within a quarter of it. A bound that undercounts by half would let a "64 MiB" cache
//! hold 128.

use cdp_core::{apply, validate, Config, Profile};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn now() -> DateTime<Utc> {
    "2026-03-04T10:00:00Z"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A visitor with `events` events of mixed types over `sessions` sessions.
fn events(cfg: &Config, events: usize, sessions: usize) -> Vec<cdp_core::ValidEvent> {
    let kinds = [
        ("page_view", json!({})),
        (
            "product_clicked",
            json!({"product_id": "1", "product_handle": "turf-booster"}),
        ),
        (
            "search_performed",
            json!({"query": "chicken feed", "results_count": 3}),
        ),
        ("tunnel_viewed", json!({"tunnel": "backyard"})),
    ];
    (0..events)
        .map(|i| {
            let (kind, props) = &kinds[i % kinds.len()];
            let at = now() - Duration::minutes((events - i) as i64);
            let raw = json!({
                "event": kind,
                "event_id": uuid::Uuid::from_u128(i as u128 + 1).to_string(),
                "anonymous_id": "visitor-with-a-realistic-uuid-length-0001",
                "session_id": format!("session-{:032}", i % sessions.max(1)),
                "timestamp": at.to_rfc3339(),
                "page_url": "https://www.example.com/products/turf-booster",
                "properties": props,
            });
            validate(cfg, &raw, now()).unwrap_or_else(|e| panic!("{e:?}"))
        })
        .collect()
}

/// Heap bytes still held once `make` returns, with the value kept alive.
fn live_heap<T>(make: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let value = make();
    let change = region.change();
    // A reallocation's growth is already in `bytes_allocated` (and shrinking in
    // `bytes_deallocated`); `bytes_reallocated` repeats it.
    let live = change
        .bytes_allocated
        .saturating_sub(change.bytes_deallocated);
    (value, live)
}

fn check(what: &str, profile: &Profile, heap: usize) {
    let real = heap + std::mem::size_of::<Profile>();
    let estimate = profile.memory_bytes();
    let ratio = estimate as f64 / real as f64;
    println!("{what}: estimate {estimate} B, measured {real} B ({ratio:.2})");
    assert!(
        (0.8..=1.25).contains(&ratio),
        "{what}: estimate {estimate} B against {real} B measured ({ratio:.2})"
    );
}

#[test]
fn memory_estimates_stay_within_a_quarter_of_the_heap() {
    let cfg = Config::southland();
    for (n, sessions) in [(1, 1), (12, 3), (60, 20), (400, 200)] {
        let mut profile = None;
        for e in &events(&cfg, n, sessions) {
            profile = Some(apply(&cfg, profile, e, now()).profile);
        }
        let profile = profile.unwrap_or_else(|| panic!("no profile"));
        let text = serde_json::to_string(&profile).unwrap_or_else(|e| panic!("{e}"));
        // As the store gives it back: every id a fresh string of its own.
        let (loaded, heap) =
            live_heap(|| serde_json::from_str::<Profile>(&text).unwrap_or_else(|e| panic!("{e}")));
        check(&format!("{n} events, decoded"), &loaded, heap);
        // As the writer caches it: persona ids and signal kinds shared with the configuration,
        // as `apply` makes them, and as a loaded profile is made before it is cached.
        let (shared, heap) = live_heap(|| {
            let mut p: Profile = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            p.share_ids(&cfg);
            p
        });
        check(&format!("{n} events, ids shared"), &shared, heap);
        assert_eq!(shared, profile, "sharing ids changes no value");
        assert!(shared.memory_bytes() <= loaded.memory_bytes());
    }
}
