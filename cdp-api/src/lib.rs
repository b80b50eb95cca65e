//! The CDP collector server and the `cdp` command's subcommands.
//!
//! The binary (`main.rs`) is glue: it parses [`settings::Cli`] and calls into these modules.
//! The collector validates with `cdp_core` (this crate re-implements no contract rule), commits
//! through the group-commit [`writer`], and stores through `cdp_adapters::Store`. Environment
//! variables are read in [`settings`] and nowhere else.

pub mod access;
pub mod api;
pub mod body;
pub mod client;
pub mod clock;
pub mod collect;
pub mod dashboard;
pub mod demo;
pub mod figures;
pub mod health;
pub mod load;
pub mod logging;
pub mod metrics_bench;
pub mod openapi;
pub mod profile_cache;
pub mod rebuild;
pub mod replay;
pub mod reply;
pub mod rollups;
pub mod server;
pub mod settings;
pub mod tracker;
pub mod write_behind;
pub mod writer;
