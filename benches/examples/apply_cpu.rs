//! Applies one event to a profile holding 100 signals many times and prints the CPU time per
//! event, read from `/proc/thread-self/schedstat` (time this thread actually ran, in ns).
//! Criterion's wall-clock figure includes time the thread waited for a core, which on a shared
//! two-core machine can be most of it; this figure does not. Each round touches 64 different
//! profiles in turn, like a collector with many active visitors, so its figures include the
//! cache misses that criterion's benchmark (one profile, warm) leaves out; criterion's figure is
//! the reference for the core's speed. Also the harness for instruction counts:
//! `valgrind --tool=callgrind --toggle-collect='cdp_core::profile::apply*'`. Linux only.
//!
//! `cargo run --release -p cdp-benches --example apply_cpu`

use cdp_benches::{profile_after, valid_event};
use cdp_core::{apply, Config};
use std::hint::black_box;
use std::time::Instant;

fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let cfg = Config::southland();
    let full = profile_after(&cfg, 150).expect("bench events are valid");
    let next = valid_event(&cfg, 150).expect("valid");
    let (rounds, per_round) = (
        std::env::args()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(2_000),
        64,
    );
    let (mut cpu_total, mut wall_total) = (0u64, 0u128);
    for _ in 0..rounds {
        // Clones are made before timing, in small batches that stay in cache, as criterion's
        // iter_batched does.
        let inputs: Vec<_> = (0..per_round).map(|_| full.clone()).collect();
        let mut outputs = Vec::with_capacity(per_round);
        let (c0, w0) = (cpu_ns(), Instant::now());
        for p in inputs {
            outputs.push(black_box(apply(&cfg, Some(p), &next, next.received_at)));
        }
        let (cpu, wall) = (cpu_ns() - c0, w0.elapsed().as_nanos());
        drop(outputs);
        cpu_total += cpu;
        wall_total += wall;
    }
    let n = (rounds * per_round) as f64;
    println!(
        "apply to a profile with 100 signals: {:.0} ns CPU per event, {:.0} ns wall per event, over {} events",
        cpu_total as f64 / n,
        wall_total as f64 / n,
        rounds * per_round
    );
}
