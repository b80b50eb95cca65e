//! Criterion benchmarks of identity (issue 15): `resolve` over 10,000 edges of a realistic
//! shape (browsers signing up with an email, some with a second browser, some customers, a few
//! guarded conflicts), and the merge of two people holding 100 signals each (the replay of
//! their stored events' union, `person_profile`), and the writer's test of one arriving event
//! against 10,000 tombstones of erased identifiers (`Tombstones::hits`: the keyed hashes of
//! its browser, customer id and email, each looked up).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use cdp_benches::{raw_event, t0};
use cdp_core::identity::{
    normalise, person_profile, resolve, tombstone, Edge, EdgeKind, IdKind, IdentityRules,
    TombstoneKey, Tombstones,
};
use cdp_core::{apply, validate, Config, EventRow};
use chrono::{DateTime, Duration};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

/// 10,000 links: per person a browser-email link, every third a second browser, every fifth a
/// customer id, and every fiftieth a second customer on the same browser (rejected).
fn edges(n: usize) -> Vec<Edge> {
    let rules = IdentityRules::default();
    let id = |k: IdKind, v: String| normalise(k, &v, &rules).expect("bench identifiers are valid");
    let t0 = DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
    let mut out = Vec::with_capacity(n);
    let mut person = 0u64;
    while out.len() < n {
        let browser = id(IdKind::AnonymousId, format!("b{person}"));
        let email = id(IdKind::Email, format!("p{person}@example.org"));
        let mut push = |a, b| {
            let k = out.len() as u64;
            out.push(Edge::new(
                EdgeKind::Link,
                t0 + Duration::seconds(k as i64 * 7),
                uuid_of(k),
                a,
                b,
            ));
        };
        push(browser.clone(), email.clone());
        if person % 3 == 0 {
            push(
                id(IdKind::AnonymousId, format!("b{person}-phone")),
                email.clone(),
            );
        }
        if person % 5 == 0 {
            push(
                browser.clone(),
                id(IdKind::CustomerId, format!("{}", 10_000 + person)),
            );
        }
        if person % 50 == 0 {
            push(
                browser,
                id(IdKind::CustomerId, format!("{}", 90_000 + person)),
            );
        }
        person += 1;
    }
    out.truncate(n);
    out
}

fn uuid_of(k: u64) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(k))
}

/// A browser's stored rows after `n` events (its signal window full from 100 on).
fn browser_rows(cfg: &Config, browser: &str, offset: u32, n: u32) -> Vec<EventRow> {
    let mut profile = None;
    let mut rows = Vec::new();
    for k in 0..n {
        let mut raw = raw_event(k + offset);
        raw["anonymous_id"] = browser.into();
        let e = validate(
            cfg,
            &raw,
            t0() + Duration::minutes(i64::from(k + offset)) + Duration::seconds(1),
        )
        .expect("bench events are valid");
        let applied = apply(cfg, profile, &e, e.received_at);
        profile = Some(applied.profile);
        rows.push(applied.row);
    }
    rows
}

fn bench(c: &mut Criterion) {
    let rules = IdentityRules::default();
    let all = edges(10_000);
    let mut g = c.benchmark_group("identity");
    g.throughput(Throughput::Elements(all.len() as u64));
    g.bench_function("resolve_10000_edges", |b| {
        b.iter(|| black_box(resolve(&all, &rules)))
    });
    g.finish();

    let cfg = Config::southland();
    let (a, b) = (
        browser_rows(&cfg, "laptop", 0, 150),
        browser_rows(&cfg, "phone", 1000, 150),
    );
    let full = |rows: &[EventRow]| person_profile(&cfg, &rows.iter().collect::<Vec<_>>());
    for side in [&a, &b] {
        assert_eq!(full(side).map(|p| p.signals.len()), Some(cfg.max_signals()));
    }
    let union: Vec<&EventRow> = a.iter().chain(&b).collect();
    let mut g = c.benchmark_group("identity");
    g.throughput(Throughput::Elements(1));
    g.bench_function("merge_two_people_with_100_signals_each", |bn| {
        bn.iter(|| black_box(person_profile(&cfg, &union)))
    });
    g.finish();

    let key = TombstoneKey::new("benchmark tombstone key, thirty-two bytes").expect("key");
    let held = Tombstones::new(
        key.clone(),
        all.iter()
            .map(|e| tombstone(&key, &e.b).hash)
            .collect::<Vec<_>>(),
    );
    let mut raw = raw_event(3);
    raw["customer_id"] = "4471".into();
    raw["event"] = "identify".into();
    raw["properties"] = serde_json::json!({"email": "someone.new@example.org"});
    let arriving = validate(&cfg, &raw, t0() + Duration::minutes(3)).expect("valid");
    assert!(held.hits(&arriving, &rules).is_empty());
    let mut g = c.benchmark_group("identity");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tombstone_check_of_an_event_with_three_identifiers", |bn| {
        bn.iter(|| black_box(held.hits(&arriving, &rules)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
