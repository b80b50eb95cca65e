//! The CDP collector server: `/collect`, the dashboard API and dashboard, profiles and the
//! rollup folds, and the settings of every `cdp` subcommand.
//!
//! The `cdp` binary (`cdp-cli`) is glue: it parses [`settings::Cli`] and calls into these
//! modules and the tools (`cdp-tools`).
//! The collector validates with `cdp_core` (this crate re-implements no contract rule), commits
//! through the group-commit [`writer`], and stores through `cdp_adapters::Store`. Environment
//! variables are read in [`settings`] and nowhere else.

pub mod access;
pub mod api;
pub mod body;
pub mod clock;
pub mod collect;
pub mod dashboard;
#[cfg(test)]
mod dashboard_types;
pub mod erasure;
pub use cdp_answers::{figures, openapi};
pub mod health;
pub mod logging;
pub mod people;
pub mod profile_cache;
pub mod rebuild;
pub mod reply;
pub mod rollups;
pub mod server;
pub mod settings;
pub mod suppression;
pub mod tracker;
pub mod write_behind;
pub mod writer;
