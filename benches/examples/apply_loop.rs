//! Applies one event to a full profile many times, for instruction counting under callgrind.
use cdp_benches::{profile_after, valid_event};
use cdp_core::{apply, Config};
fn main() {
    let cfg = Config::southland();
    let full = profile_after(&cfg, 150).expect("valid");
    let next = valid_event(&cfg, 150).expect("valid");
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let mut keep = 0usize;
    for _ in 0..n {
        let p = full.clone();
        let a = apply(&cfg, Some(p), &next, next.received_at);
        keep += a.profile.signals.len();
    }
    println!("{keep}");
}
