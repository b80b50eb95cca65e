//! Criterion benchmarks of the core's hot path: applying one event to a profile whose signal
//! window is full (the target: under 2 µs per event), validation, and whole journeys.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use cdp_benches::{fixture_arrivals, profile_after, raw_event, valid_event};
use cdp_core::{apply, validate, Config};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let cfg = Config::southland();
    let full = profile_after(&cfg, 150).expect("bench events are valid");
    assert_eq!(full.signals.len(), cfg.max_signals());
    let next = valid_event(&cfg, 150).expect("valid");

    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("apply_to_profile_with_100_signals", |b| {
        b.iter_batched(
            || full.clone(),
            |p| black_box(apply(&cfg, Some(p), &next, next.received_at)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("validate_one_event", |b| {
        let raw = raw_event(150);
        b.iter(|| black_box(validate(&cfg, &raw, next.received_at)))
    });
    g.bench_function("validate_and_apply_to_profile_with_100_signals", |b| {
        let raw = raw_event(150);
        b.iter_batched(
            || full.clone(),
            |p| {
                let e = validate(&cfg, &raw, next.received_at).expect("valid");
                black_box(apply(&cfg, Some(p), &e, e.received_at))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let arrivals = fixture_arrivals();
    let mut g = c.benchmark_group("journeys");
    g.throughput(Throughput::Elements(arrivals.len() as u64));
    g.bench_function("all_fixture_journeys", |b| {
        b.iter(|| {
            let mut profiles = std::collections::HashMap::new();
            for (at, raw) in &arrivals {
                let e = validate(&cfg, raw, *at).expect("fixtures are valid");
                let prev = profiles.remove(&e.anonymous_id);
                let applied = apply(&cfg, prev, &e, *at);
                profiles.insert(e.anonymous_id.clone(), applied.profile);
            }
            black_box(profiles)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
