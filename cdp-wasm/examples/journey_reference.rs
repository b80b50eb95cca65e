//! The fixture journeys through the native Rust shell, for the Worker parity test: each
//! arrival is validated and applied with `now` = its recorded receive time (what the Worker
//! does when its test clock is on), and the rows are written through the Rust Supabase REST
//! adapter, the sink `cdp serve` uses with a Supabase target. Prints `{journey: profile}` as
//! JSON; the test compares those with the Worker's profiles, and the rows of the two schemas.
//!
//! ```text
//! cargo run -p cdp-wasm --example journey_reference -- REST_URL KEY SCHEMA fixtures/journeys
//! ```

use cdp_adapters::supabase::RetryPolicy;
use cdp_adapters::{EventSink, ServiceKey, Store, StoreTarget, SupabaseTarget};
use cdp_core::{apply, parse_recording, validate, Config, Outcome, Profile};
use serde_json::{Map, Value};
use std::path::PathBuf;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, key, schema, dir] = args.as_slice() else {
        eprintln!("usage: journey_reference REST_URL KEY SCHEMA FIXTURE_DIR");
        std::process::exit(2);
    };
    let dead_letter = std::env::temp_dir().join(format!("cdp-reference-{}", std::process::id()));
    let target = SupabaseTarget {
        url: url.clone(),
        key: ServiceKey::new(key.as_str()),
        dead_letter_dir: dead_letter,
        schema: schema.clone(),
        retry: RetryPolicy::default(),
    };
    let store = Store::open(&StoreTarget::Supabase(target))
        .await
        .expect("open the Supabase REST store");
    let cfg = Config::southland();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    let mut out = Map::new();
    for path in files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path).expect("readable fixture");
        let mut profile: Option<Profile> = None;
        let mut rows = Vec::new();
        for arrival in parse_recording(&text).expect("valid recording") {
            let now = arrival.received_at.expect("fixtures record receive times");
            let event = validate(&cfg, &arrival.event, now).expect("fixture events are valid");
            let applied = apply(&cfg, profile.take(), &event, now);
            if applied.outcome == Outcome::Applied {
                rows.push(applied.row);
            }
            profile = Some(applied.profile);
        }
        store.write_events(&rows).await.expect("rows written");
        let profile = serde_json::to_value(profile).expect("profile as JSON");
        out.insert(name, profile);
    }
    println!("{}", Value::Object(out));
}
