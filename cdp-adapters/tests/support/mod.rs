//! Shared support for the conformance binary: test data, the checks, the per-test Postgres
//! schema, and the PostgREST stand-in.

pub mod analytics;
pub mod checks;
pub mod data;
pub mod erasure;
pub mod identity;
pub mod pg;
pub mod postgrest;
