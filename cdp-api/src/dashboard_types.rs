//! The dashboard's TypeScript types for the answers it reads, derived from the answer types
//! with ts-rs (`dashboard/src/api.gen.ts`). The test fails when the committed file differs
//! from what the Rust types say, so the front end cannot drift from the server; run it with
//! `CDP_UPDATE_TS=1` to rewrite the file after changing an answer type.

use crate::api::{EventsBody, MetricsBody, SearchesBody};
use crate::health::Health;
use std::path::PathBuf;
use ts_rs::{Config, TS};

/// The generated file, from this crate's directory.
fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboard/src/api.gen.ts")
}

/// Every declaration an answer needs, dependencies first, each once.
fn declarations(cfg: &Config) -> Vec<String> {
    use crate::api::{StreamEvent, WindowBody};
    use crate::figures::*;
    use crate::profile_cache::CacheReport;
    vec![
        Range::decl(cfg),
        Bucket::decl(cfg),
        Kpi::decl(cfg),
        Kpis::decl(cfg),
        WindowBody::decl(cfg),
        PersonaShare::decl(cfg),
        FunnelStage::decl(cfg),
        TunnelRow::decl(cfg),
        AbVariant::decl(cfg),
        Significance::decl(cfg),
        AbTest::decl(cfg),
        EventTypeCount::decl(cfg),
        MetricsBody::decl(cfg),
        StreamEvent::decl(cfg),
        EventsBody::decl(cfg),
        SearchQuery::decl(cfg),
        ZeroResultQuery::decl(cfg),
        SearchFigures::decl(cfg),
        SearchesBody::decl(cfg),
        CacheReport::decl(cfg),
        Health::decl(cfg),
    ]
}

fn generated() -> String {
    // Counts are `u64` in Rust and plain numbers in JSON and in the dashboard.
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "//! The answer types of the dashboard API, generated from the Rust answer types by \
         `cargo test -p cdp-api dashboard_types`\n//! (cdp-api/src/dashboard_types.rs). Do not \
         edit: change the Rust type, then run that with CDP_UPDATE_TS=1.\n",
    );
    for d in declarations(&cfg) {
        out.push('\n');
        out.push_str("export ");
        out.push_str(&d);
        out.push('\n');
    }
    out
}

#[test]
fn dashboard_types_match_the_answer_types() {
    let want = generated();
    let path = path();
    if std::env::var_os("CDP_UPDATE_TS").is_some() {
        std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what the answer types say; run `CDP_UPDATE_TS=1 cargo test -p cdp-api \
         dashboard_types` and review the diff",
        path.display()
    );
}
