//! The `cdp` command's tools besides the server: synthetic traffic (`demo`), replaying a
//! recording (`replay`), and the benchmarks (`load`, `bench-metrics`), with the HTTP client
//! they drive a collector with. They sit apart from the server library so that `cdp-api`
//! carries no client, progress-bar or scratch-directory dependency; each builds the server's
//! settings as data (`cdp_api::settings::ServeArgs`) and starts it in-process.

pub mod client;
pub mod demo;
pub mod load;
pub mod metrics_bench;
pub mod replay;
