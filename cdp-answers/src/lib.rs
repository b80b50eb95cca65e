//! What the dashboard API answers, as pure functions of the store's counts and rows and of
//! `now`: the [`figures`] (windows, deltas, shares, funnel, A/B significance, chart buckets,
//! search folding) and the answer [`bodies`]. No I/O and no clock, so `cdp serve` (cdp-api)
//! and the Cloudflare Worker (cdp-wasm) answer the same JSON for the same counts.

pub mod access;
pub mod admin;
pub mod api;
pub mod bodies;
pub mod figures;
pub mod openapi;
pub mod people;
