//! The pure scoring core of the CDP: the event contract, persona scores with recency decay,
//! the ten-stage journey detector and the golden-profile reducer.
//!
//! This crate performs no I/O. It never reads a clock, the environment, the network or the
//! disk, and it generates no randomness: the current time and any ids are arguments. That is
//! what lets the same code run in `cdp serve`, in a Cloudflare Worker as wasm, in benchmarks
//! and in snapshot tests, with identical results.

pub mod commerce;
pub mod config;
pub mod contract;
pub mod counting;
pub mod decay;
pub mod event_type;
pub mod identity;
pub mod ids;
pub mod intake;
pub mod journey;
pub mod persona;
pub mod profile;
pub mod recording;
pub mod sampling;
pub mod signal;

pub use config::{Config, ConfigError};
pub use contract::{parse_body, validate, BodyError, Rejection, ValidEvent, Violation};
pub use event_type::EventType;
pub use ids::{AnonymousId, BrandId, PersonaId, SessionId, SignalKind};
pub use journey::{detect_stage, Stage, StageResult};
pub use persona::{explain, score, Explanation, Scores};
pub use profile::{apply, replay, Applied, EventRow, Outcome, Profile, SearchRow};
pub use recording::{parse_recording, Arrival};
pub use signal::{HintSource, Signal};
