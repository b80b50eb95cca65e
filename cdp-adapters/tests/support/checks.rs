//! The conformance checks every backend must pass, written once against `Store` and the two
//! role traits. Each takes a freshly migrated, empty store and an `Inspect` handle that reads
//! the tables the traits do not expose (`cdp_searches`).

use super::data;
use cdp_adapters::{EventSink, ProfileStore, Store, WriteOutcome};
use cdp_core::{apply, AnonymousId, BrandId, Config, EventRow, Profile};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Reads what the role traits do not expose.
#[allow(async_fn_in_trait)]
pub trait Inspect {
    /// `(event_id, query, results_count)` of every `cdp_searches` row, sorted.
    async fn searches(&self) -> Vec<(String, String, i64)>;
}

fn expected_first_write(rows: &[EventRow]) -> Vec<WriteOutcome> {
    let mut seen = HashSet::new();
    rows.iter()
        .map(|r| {
            if seen.insert((r.brand_id.clone(), r.event_id)) {
                WriteOutcome::Inserted
            } else {
                WriteOutcome::Duplicate
            }
        })
        .collect()
}

/// Stored rows of every visitor in `rows`, keyed by visitor, in processing order.
async fn stored(store: &Store, rows: &[EventRow]) -> Vec<EventRow> {
    let visitors: BTreeSet<(BrandId, AnonymousId)> = rows
        .iter()
        .map(|r| (r.brand_id.clone(), r.anonymous_id.clone()))
        .collect();
    let mut out = Vec::new();
    for (brand, anon) in visitors {
        out.extend(
            store
                .visitor_events(&brand, &anon, None)
                .await
                .expect("visitor_events"),
        );
    }
    out
}

/// The first stored row for each key, in input order: what a store should hold.
fn unique(rows: &[EventRow]) -> Vec<EventRow> {
    let mut seen = HashSet::new();
    rows.iter()
        .filter(|r| seen.insert((r.brand_id.clone(), r.event_id)))
        .cloned()
        .collect()
}

fn sorted(mut rows: Vec<EventRow>) -> Vec<EventRow> {
    rows.sort_by(|a, b| {
        (a.anonymous_id.as_str(), a.event_id).cmp(&(b.anonymous_id.as_str(), b.event_id))
    });
    rows
}

/// Every event-sink property: idempotent batches, mixed batches, searches, exact round trips.
pub async fn check_event_sink(store: &Store, inspect: &impl Inspect) {
    // Idempotent: the same batch twice stores each event once; the second time is all Duplicate.
    let fixtures = data::fixtures();
    let rows = &fixtures.rows;
    let brand = rows[0].brand_id.clone();
    assert_eq!(
        store
            .last_processed_at(&brand)
            .await
            .expect("last_processed_at"),
        None,
        "an empty store has no last event"
    );
    let first = store.write_events(rows).await.expect("first write");
    assert_eq!(first, expected_first_write(rows), "first write outcomes");
    assert!(rows.len() <= 100, "the newest 100 rows cover the fixtures");
    assert_eq!(
        store
            .last_processed_at(&brand)
            .await
            .expect("last_processed_at"),
        rows.iter().map(|r| r.processed_at.trunc_subsecs(6)).max(),
        "last_processed_at is the latest processing time stored"
    );
    assert_eq!(
        store
            .last_processed_at(&BrandId::new("other-brand"))
            .await
            .expect("last_processed_at, other brand"),
        None
    );
    let second = store.write_events(rows).await.expect("second write");
    assert!(
        second.iter().all(|o| *o == WriteOutcome::Duplicate),
        "second write must be all Duplicate: {second:?}"
    );
    assert_eq!(
        sorted(stored(store, rows).await),
        sorted(unique(rows)),
        "stored rows equal the written ones"
    );
    assert!(store
        .write_events(&[])
        .await
        .expect("empty batch")
        .is_empty());

    // existing_event_ids answers for this brand only.
    let mut ids: Vec<_> = rows.iter().map(|r| r.event_id).collect();
    let unknown = uuid::Uuid::from_u128(42);
    ids.push(unknown);
    let existing = store
        .existing_event_ids(&brand, &ids)
        .await
        .expect("existing ids");
    let want: HashSet<_> = rows.iter().map(|r| r.event_id).collect();
    assert_eq!(existing, want);
    let other = store
        .existing_event_ids(&BrandId::new("other-brand"), &ids)
        .await
        .expect("existing ids, other brand");
    assert!(other.is_empty());

    // Mixed: a batch of old and new rows reports each correctly.
    let more = data::page_views("v-mixed", 6, "2026-03-04T10:00:00Z").rows;
    let (old, new) = more.split_at(3);
    store.write_events(old).await.expect("write old half");
    let mixed: Vec<EventRow> = new.iter().chain(old.iter()).cloned().collect();
    let got = store.write_events(&mixed).await.expect("write mixed");
    let mut want = vec![WriteOutcome::Inserted; new.len()];
    want.extend(vec![WriteOutcome::Duplicate; old.len()]);
    assert_eq!(got, want, "mixed batch outcomes");

    // Large: more rows than one insert statement takes (SQLite splits a batch into several),
    // with an event repeated within a statement and across statements, and one event id
    // stored under a second brand as well.
    let large = data::page_views("v-large-batch", 600, "2026-03-05T10:00:00Z").rows;
    let mut batch = large.clone();
    batch.insert(3, large[1].clone());
    batch.push(large[10].clone());
    let mut elsewhere = large[21].clone();
    elsewhere.brand_id = BrandId::new("second-brand");
    batch.insert(30, elsewhere);
    let got = store.write_events(&batch).await.expect("write large");
    assert_eq!(got, expected_first_write(&batch), "large batch outcomes");
    assert_eq!(
        sorted(stored(store, &large).await),
        sorted(large.clone()),
        "the large batch is stored once"
    );

    // Searches: one row per search_performed event, none for anything else, none twice.
    let mut all = rows.clone();
    all.extend(more.iter().cloned());
    all.extend(batch.iter().cloned());
    let hostile = data::hostile().rows;
    let got = store.write_events(&hostile).await.expect("hostile write");
    assert_eq!(got, vec![WriteOutcome::Inserted; hostile.len()]);
    all.extend(hostile.iter().cloned());
    let mut expected: Vec<(String, String, i64)> = unique(&all)
        .iter()
        .filter_map(EventRow::search)
        .map(|s| (s.event_id.to_string(), s.query, s.results_count))
        .collect();
    expected.sort();
    assert!(!expected.is_empty(), "the data must contain searches");
    assert_eq!(inspect.searches().await, expected, "cdp_searches rows");

    // Hostile strings round-trip exactly, and a hostile visitor id works as a key.
    let back = store
        .visitor_events(&hostile[0].brand_id, &hostile[0].anonymous_id, None)
        .await
        .expect("hostile read");
    assert_eq!(back, hostile, "hostile rows round-trip exactly");

    check_visitor_batches(store, &brand, &all).await;
}

/// The batched reads agree with the one-visitor ones: `visitor_events_many` with a bound per
/// visitor (none, or the middle of its events), and `visitor_ids` paged to the end.
async fn check_visitor_batches(store: &Store, brand: &BrandId, all: &[EventRow]) {
    let visitors: BTreeSet<AnonymousId> = all
        .iter()
        .filter(|r| &r.brand_id == brand)
        .map(|r| r.anonymous_id.clone())
        .collect();
    let mut since: Vec<(AnonymousId, Option<DateTime<Utc>>)> = Vec::new();
    for (i, id) in visitors.iter().enumerate() {
        let rows = store
            .visitor_events(brand, id, None)
            .await
            .expect("visitor_events");
        let bound = (i % 2 == 1).then(|| rows[rows.len() / 2].processed_at);
        since.push((id.clone(), bound));
    }
    since.push((AnonymousId::new("nobody"), None));
    let mut want = BTreeMap::new();
    for (id, after) in &since {
        let rows = store
            .visitor_events(brand, id, *after)
            .await
            .expect("visitor_events");
        if !rows.is_empty() {
            want.insert(id.clone(), rows);
        }
    }
    let got = store
        .visitor_events_many(brand, &since)
        .await
        .expect("visitor_events_many");
    assert_eq!(
        got, want,
        "visitor_events_many equals visitor_events per visitor"
    );
    assert!(store
        .visitor_events_many(brand, &[])
        .await
        .expect("visitor_events_many, none")
        .is_empty());

    let mut listed: Vec<AnonymousId> = Vec::new();
    let mut after: Option<AnonymousId> = None;
    for _ in 0..=visitors.len() {
        let page = store
            .visitor_ids(brand, after.as_ref(), 3)
            .await
            .expect("visitor_ids");
        assert!(page.len() <= 3, "a page holds at most `limit` ids");
        let Some(last) = page.last().cloned() else {
            break;
        };
        listed.extend(page);
        after = Some(last);
    }
    let distinct: BTreeSet<AnonymousId> = listed.iter().cloned().collect();
    assert_eq!(listed.len(), distinct.len(), "no visitor is listed twice");
    assert_eq!(distinct, visitors, "every visitor with events is listed");
    assert!(store
        .visitor_ids(&BrandId::new("other-brand"), None, 10)
        .await
        .expect("visitor_ids, other brand")
        .is_empty());
}

/// Every profile-store property: round trip, upsert, TTL, purge, processing order, rebuild.
pub async fn check_profile_store(store: &Store) {
    let cfg = Config::southland();
    let fixtures = data::fixtures();
    let hostile = data::hostile();
    let profiles: Vec<Profile> = fixtures
        .profiles
        .values()
        .chain(hostile.profiles.values())
        .cloned()
        .collect();
    let latest = profiles
        .iter()
        .map(|p| p.last_updated)
        .max()
        .expect("profiles");
    store.save_profiles(&cfg, &profiles).await.expect("save");
    for p in &profiles {
        let got = store
            .load_profile(&p.brand_id, &p.anonymous_id, latest)
            .await
            .expect("load");
        assert_eq!(
            got.as_ref(),
            Some(p),
            "profile {} round-trips",
            p.anonymous_id
        );
    }
    let none = store
        .load_profile(&profiles[0].brand_id, &AnonymousId::new("nobody"), latest)
        .await
        .expect("load missing");
    assert!(none.is_none());

    // Many at once (more than one request's worth of ids): the same profiles, unknown ids
    // absent, nothing past the TTL or for another brand.
    let brand = profiles[0].brand_id.clone();
    let mut ids: Vec<AnonymousId> = profiles.iter().map(|p| p.anonymous_id.clone()).collect();
    ids.extend((0..150).map(|i| AnonymousId::new(format!("nobody-{i}"))));
    let want: BTreeMap<AnonymousId, Profile> = profiles
        .iter()
        .map(|p| (p.anonymous_id.clone(), p.clone()))
        .collect();
    let got = store
        .load_profiles(&brand, &ids, latest)
        .await
        .expect("load_profiles");
    assert_eq!(got, want, "load_profiles equals load_profile per visitor");
    let past_ttl =
        latest + Duration::days(i64::from(cfg.profile_ttl_days())) + Duration::seconds(1);
    assert!(store
        .load_profiles(&brand, &ids, past_ttl)
        .await
        .expect("load_profiles past the TTL")
        .is_empty());
    assert!(store
        .load_profiles(&BrandId::new("other-brand"), &ids, latest)
        .await
        .expect("load_profiles, other brand")
        .is_empty());

    // Upsert: a later save replaces; the same visitor twice in one call keeps the later one.
    let mut older = profiles[0].clone();
    older.session_count = 1000;
    let mut newer = profiles[0].clone();
    newer.session_count = 2000;
    newer.email = Some("o'brien+\"x\"@example.com".into());
    store
        .save_profiles(&cfg, &[older, newer.clone()])
        .await
        .expect("save twice in one call");
    let got = store
        .load_profile(&newer.brand_id, &newer.anonymous_id, latest)
        .await
        .expect("load after upsert");
    assert_eq!(got, Some(newer.clone()));

    // TTL: alive up to last_updated + ttl, gone after; purge removes exactly the expired.
    let ttl = Duration::days(i64::from(cfg.profile_ttl_days()));
    let edge = newer.last_updated + ttl;
    let alive = store
        .load_profile(&newer.brand_id, &newer.anonymous_id, edge)
        .await
        .expect("load at edge");
    assert!(
        alive.is_some(),
        "a profile is alive at exactly last_updated + ttl"
    );
    let dead = store
        .load_profile(
            &newer.brand_id,
            &newer.anonymous_id,
            edge + Duration::seconds(1),
        )
        .await
        .expect("load after ttl");
    assert!(dead.is_none(), "a profile is gone after last_updated + ttl");
    let earliest = profiles
        .iter()
        .map(|p| p.last_updated)
        .min()
        .expect("profiles");
    let purged_none = store
        .purge_expired(earliest + ttl)
        .await
        .expect("purge none");
    assert_eq!(purged_none, 0, "nothing expired yet");
    let expired_count = profiles
        .iter()
        .filter(|p| p.last_updated + ttl < newer.last_updated + ttl + Duration::seconds(1))
        .map(|p| p.anonymous_id.clone())
        .collect::<BTreeSet<_>>()
        .len() as u64;
    let purged = store
        .purge_expired(newer.last_updated + ttl + Duration::seconds(1))
        .await
        .expect("purge");
    assert_eq!(
        purged, expired_count,
        "purge deletes exactly the expired profiles"
    );
    let after_purge = store
        .load_profile(&newer.brand_id, &newer.anonymous_id, latest)
        .await
        .expect("load purged");
    assert!(after_purge.is_none(), "purged profile is gone");

    // Processing order: visitor_events follows write order (seq), not event time.
    let j = data::page_views("v-order", 8, "2026-03-05T08:00:00Z");
    let mut written: Vec<EventRow> = j.rows.iter().rev().cloned().collect();
    let (a, b) = written.split_at(4);
    store.write_events(a).await.expect("write a");
    store.write_events(b).await.expect("write b");
    let brand = &written[0].brand_id;
    let anon = &written[0].anonymous_id;
    let got = store
        .visitor_events(brand, anon, None)
        .await
        .expect("events");
    assert_eq!(got, written, "rows come back in processing order");
    let cut = written[5].processed_at;
    let tail = store
        .visitor_events(brand, anon, Some(cut))
        .await
        .expect("events after");
    written.retain(|r| r.processed_at >= cut);
    assert_eq!(tail, written, "`after` is an inclusive processed_at bound");

    // Rebuild: replaying a visitor's stored events reproduces the profile.
    let j = data::page_views("v-rebuild", 7, "2026-03-06T08:00:00Z");
    store.write_events(&j.rows).await.expect("write rebuild");
    let stored = store
        .visitor_events(&j.rows[0].brand_id, &j.rows[0].anonymous_id, None)
        .await
        .expect("rebuild read");
    let mut p: Option<Profile> = None;
    for row in &stored {
        p = Some(apply(&cfg, p, &row.to_valid_event(), row.processed_at).profile);
    }
    assert_eq!(
        p.as_ref(),
        j.profiles.values().next(),
        "rebuilt profile equals the live one"
    );
}
