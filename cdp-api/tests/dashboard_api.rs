//! The dashboard API over real HTTP on SQLite and on Postgres (a schema of its own in the
//! database at `CDP_TEST_DATABASE_URL`, which must be set: the Postgres half fails loudly
//! otherwise). The server runs on a fixed clock, `NOW`, and reads a fixture of hand-written
//! rows whose every expected figure is worked out by hand in the comments below. Also: the
//! empty store, the store going offline, access control, bad parameters, the profile view and
//! the OpenAPI document (every answer is validated against its schema).

mod support;

use cdp_adapters::{EventSink, PostgresTarget, ProfileStore, Store, StoreTarget};
use cdp_api::clock::Clock;
use cdp_api::server::{self, Running};
use cdp_api::settings::Settings;
use cdp_core::{
    apply, validate, AnonymousId, BrandId, Config, EventRow, EventType, PersonaId, SessionId, Stage,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{on_every_backend, pg_url, Backend, Proxy};
use uuid::Uuid;

const NOW: &str = "2026-03-08T12:00:00Z";
const TOKEN: &str = "dashboard-test-admin-token-0123";

on_every_backend!(
    metrics_match_the_hand_worked_fixture,
    hourly_metrics_for_24h,
    searches_fold_case_and_list_content_gaps,
    event_stream_is_newest_first_filtered_and_capped,
    profile_explains_persona_and_stage,
    empty_store_is_status_empty_not_zeros_invented,
    bad_parameters_name_the_field,
    admin_token_guards_the_api_and_the_dashboard,
    without_a_token_only_this_machine_gets_in,
    answers_match_the_openapi_document,
);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

static SCHEMAS: AtomicUsize = AtomicUsize::new(0);

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach CDP_TEST_DATABASE_URL: {e}"));
    tokio::spawn(conn);
    client
}

struct Server {
    base: String,
    http: reqwest::Client,
    /// A second handle on the store, to write the fixture.
    store: Store,
    running: Option<Running>,
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

fn settings(dir: &std::path::Path, extra: &[&str]) -> Settings {
    support::serve_settings(dir, extra)
}

/// A server on the fixed clock; `via` replaces the Postgres URL the server uses (a proxy).
async fn start(backend: Backend, extra: &[&str], via: Option<String>) -> Server {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut s = settings(dir.path(), extra);
    let mut pg = None;
    if let Backend::Postgres = backend {
        let url = pg_url();
        let schema = format!(
            "cdp_dash_test_{}_{}_{}",
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed),
            Utc::now().timestamp_subsec_nanos()
        );
        pg_client(&url)
            .await
            .batch_execute(&format!("create schema {schema}"))
            .await
            .unwrap_or_else(|e| panic!("create schema: {e}"));
        s.store.target = StoreTarget::Postgres(
            PostgresTarget::new(via.unwrap_or_else(|| url.clone())).with_schema(schema.clone()),
        );
        pg = Some((url, schema));
    }
    let running = server::start_with_clock(&s, Clock::Fixed(at(NOW)))
        .await
        .unwrap_or_else(|e| panic!("server start: {e}"));
    let direct = match &pg {
        Some((url, schema)) => {
            StoreTarget::Postgres(PostgresTarget::new(url.clone()).with_schema(schema.clone()))
        }
        None => s.store.target.clone(),
    };
    let store = Store::open(&direct)
        .await
        .unwrap_or_else(|e| panic!("store: {e}"));
    Server {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("{e}")),
        store,
        running: Some(running),
        pg,
        _dir: dir,
    }
}

impl Server {
    async fn get(&self, path: &str) -> (u16, Value) {
        self.get_with(path, &[]).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("GET {path}: {status}: not JSON: {text:?}"));
        (status, body)
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn finish(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        if let Some((url, schema)) = &self.pg {
            let _ = pg_client(url)
                .await
                .batch_execute(&format!("drop schema if exists {schema} cascade"))
                .await;
        }
    }
}

/// A stored row as the collector would write it, with the persona and stage given outright so
/// every figure below can be worked out by hand.
struct Ev {
    anon: &'static str,
    session: &'static str,
    at: &'static str,
    event_type: EventType,
    persona: &'static str,
    explicit: Option<&'static str>,
    stage: Stage,
    props: Value,
    customer: Option<&'static str>,
}

fn ev(
    anon: &'static str,
    session: &'static str,
    at: &'static str,
    event_type: EventType,
    persona: &'static str,
    stage: Stage,
    props: Value,
) -> Ev {
    Ev {
        anon,
        session,
        at,
        event_type,
        persona,
        explicit: None,
        stage,
        props,
        customer: None,
    }
}

fn row(e: &Ev) -> EventRow {
    let t = at(e.at);
    EventRow {
        brand_id: BrandId::new("southland"),
        event_id: Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("{}|{}|{}", e.anon, e.at, e.event_type.as_str()).as_bytes(),
        ),
        event_type: e.event_type,
        anonymous_id: AnonymousId::new(e.anon),
        customer_id: e.customer.map(str::to_owned),
        session_id: SessionId::new(e.session),
        timestamp: t,
        page_url: format!("https://southlandorganics.com/{}", e.anon),
        page_title: Some("Southland Organics".into()),
        referrer: None,
        utm_source: None,
        utm_medium: None,
        utm_campaign: None,
        properties: e.props.as_object().cloned().unwrap_or_default(),
        predicted_persona: PersonaId::new(e.persona),
        persona_confidence: 0.5,
        explicit_persona: e.explicit.map(PersonaId::new),
        current_stage: e.stage,
        stage_confidence: 0.75,
        persona_scores: BTreeMap::new(),
        processed_at: t + Duration::seconds(1),
    }
}

/// The fixture. NOW is 2026-03-08T12:00Z; for 7d the current window is [03-01T12:00,
/// 03-08T12:00) and the previous one [02-22T12:00, 03-01T12:00).
fn fixture() -> Vec<EventRow> {
    use EventType as T;
    use Stage as S;
    let none = || json!({});
    let mut evs = vec![
        // v1, backyard: two sessions, a tunnel, its CTA, an A/B win and an explicit choice.
        ev(
            "v1",
            "s1",
            "2026-03-02T10:00:00Z",
            T::PageView,
            "backyard",
            S::Aware,
            none(),
        ),
        ev(
            "v1",
            "s1",
            "2026-03-02T10:05:00Z",
            T::TunnelViewed,
            "backyard",
            S::Interested,
            json!({"tunnel": "backyard-chickens"}),
        ),
        ev(
            "v1",
            "s1",
            "2026-03-02T10:06:00Z",
            T::HeroCtaClicked,
            "backyard",
            S::Considering,
            json!({"tunnel": "backyard-chickens"}),
        ),
        ev(
            "v1",
            "s2",
            "2026-03-05T09:00:00Z",
            T::AbTestExposure,
            "backyard",
            S::Considering,
            json!({"test_id": "hero", "variant": "a"}),
        ),
        ev(
            "v1",
            "s2",
            "2026-03-05T09:10:00Z",
            T::AbTestConversion,
            "backyard",
            S::Evaluating,
            json!({"test_id": "hero", "variant": "a"}),
        ),
        Ev {
            explicit: Some("backyard"),
            ..ev(
                "v1",
                "s2",
                "2026-03-05T09:20:00Z",
                T::PersonaPathSelected,
                "backyard",
                S::Evaluating,
                json!({"persona": "backyard"}),
            )
        },
        // v2, commercial: converts in hero/b, searches, signs up (first identified now).
        ev(
            "v2",
            "s3",
            "2026-03-03T14:00:00Z",
            T::TunnelViewed,
            "commercial",
            S::Interested,
            json!({"tunnel": "commercial-poultry"}),
        ),
        ev(
            "v2",
            "s3",
            "2026-03-03T14:02:00Z",
            T::AbTestExposure,
            "commercial",
            S::Interested,
            json!({"test_id": "hero", "variant": "b"}),
        ),
        ev(
            "v2",
            "s3",
            "2026-03-03T14:03:00Z",
            T::AbTestConversion,
            "commercial",
            S::Engaged,
            json!({"test_id": "hero", "variant": "b"}),
        ),
        ev(
            "v2",
            "s4",
            "2026-03-07T08:00:00Z",
            T::SearchPerformed,
            "commercial",
            S::Engaged,
            json!({"query": "Litter Treatment", "results_count": 5}),
        ),
        ev(
            "v2",
            "s4",
            "2026-03-07T08:01:00Z",
            T::EmailSignup,
            "commercial",
            S::Engaged,
            json!({"source": "footer"}),
        ),
        // v3, lawn: this morning, a search that found nothing, exposed to hero/b.
        ev(
            "v3",
            "s5",
            "2026-03-08T11:30:00Z",
            T::SearchPerformed,
            "lawn",
            S::Aware,
            json!({"query": "  lawn food ", "results_count": 0}),
        ),
        ev(
            "v3",
            "s5",
            "2026-03-08T11:31:00Z",
            T::TunnelViewed,
            "lawn",
            S::Interested,
            json!({"tunnel": "lawn-garden"}),
        ),
        ev(
            "v3",
            "s5",
            "2026-03-08T11:40:00Z",
            T::AbTestExposure,
            "lawn",
            S::Interested,
            json!({"test_id": "hero", "variant": "b"}),
        ),
        // v4, a known customer: its session starts one minute before the window.
        Ev {
            customer: Some("c-4"),
            ..ev(
                "v4",
                "s6",
                "2026-03-01T11:59:00Z",
                T::PageView,
                "general",
                S::Unaware,
                none(),
            )
        },
        Ev {
            customer: Some("c-4"),
            ..ev(
                "v4",
                "s6",
                "2026-03-01T12:30:00Z",
                T::PageView,
                "general",
                S::Unaware,
                none(),
            )
        },
        // v5: exposed to hero/a last week, converts this week (not in this week's cohort).
        ev(
            "v5",
            "s7",
            "2026-02-27T10:00:00Z",
            T::AbTestExposure,
            "backyard",
            S::Aware,
            json!({"test_id": "hero", "variant": "a"}),
        ),
        ev(
            "v5",
            "s8",
            "2026-03-02T09:00:00Z",
            T::AbTestConversion,
            "backyard",
            S::Engaged,
            json!({"test_id": "hero", "variant": "a"}),
        ),
        // v6 and v7: the previous window only.
        ev(
            "v6",
            "s9",
            "2026-02-25T10:00:00Z",
            T::PageView,
            "lawn",
            S::Unaware,
            none(),
        ),
        ev(
            "v6",
            "s9",
            "2026-02-25T10:05:00Z",
            T::SearchPerformed,
            "lawn",
            S::Aware,
            json!({"query": "Lawn Food", "results_count": 0}),
        ),
        ev(
            "v7",
            "s10",
            "2026-02-28T20:00:00Z",
            T::EmailSignup,
            "general",
            S::Engaged,
            json!({"source": "footer"}),
        ),
        // v8: before both windows.
        ev(
            "v8",
            "s11",
            "2026-02-20T10:00:00Z",
            T::PageView,
            "general",
            S::Unaware,
            none(),
        ),
    ];
    // The layout test on 03-06: a0..a9 see variant a (a0 converts), b0..b9 see b (b0..b5
    // convert). Each visitor is general, unaware when exposed and aware after converting.
    const A: [&str; 10] = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"];
    const B: [&str; 10] = ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"];
    const EXPOSED: [&str; 20] = [
        "2026-03-06T10:00:00Z",
        "2026-03-06T10:01:00Z",
        "2026-03-06T10:02:00Z",
        "2026-03-06T10:03:00Z",
        "2026-03-06T10:04:00Z",
        "2026-03-06T10:05:00Z",
        "2026-03-06T10:06:00Z",
        "2026-03-06T10:07:00Z",
        "2026-03-06T10:08:00Z",
        "2026-03-06T10:09:00Z",
        "2026-03-06T10:10:00Z",
        "2026-03-06T10:11:00Z",
        "2026-03-06T10:12:00Z",
        "2026-03-06T10:13:00Z",
        "2026-03-06T10:14:00Z",
        "2026-03-06T10:15:00Z",
        "2026-03-06T10:16:00Z",
        "2026-03-06T10:17:00Z",
        "2026-03-06T10:18:00Z",
        "2026-03-06T10:19:00Z",
    ];
    const CONVERTED: [&str; 7] = [
        "2026-03-06T10:30:00Z",
        "2026-03-06T10:40:00Z",
        "2026-03-06T10:41:00Z",
        "2026-03-06T10:42:00Z",
        "2026-03-06T10:43:00Z",
        "2026-03-06T10:44:00Z",
        "2026-03-06T10:45:00Z",
    ];
    for (i, v) in A.iter().chain(B.iter()).enumerate() {
        let variant = if i < 10 { "a" } else { "b" };
        let props = json!({"test_id": "layout", "variant": variant});
        evs.push(ev(
            v,
            v,
            EXPOSED[i],
            T::AbTestExposure,
            "general",
            S::Unaware,
            props.clone(),
        ));
        let converts = i == 0 || (10..16).contains(&i);
        if converts {
            let k = if i == 0 { 0 } else { i - 9 };
            evs.push(ev(
                v,
                v,
                CONVERTED[k],
                T::AbTestConversion,
                "general",
                S::Aware,
                props,
            ));
        }
    }
    evs.iter().map(row).collect()
}

/// Writes the fixture in two batches, out of time order, then the first batch again.
async fn seed(s: &Server) {
    let mut rows = fixture();
    rows.reverse();
    let (a, b) = rows.split_at(rows.len() / 2);
    for batch in [b, a, b] {
        s.store
            .write_events(batch)
            .await
            .unwrap_or_else(|e| panic!("seed: {e}"));
    }
}

fn kpi(v: &Value) -> (u64, u64, Option<f64>) {
    (
        v["value"].as_u64().unwrap_or(u64::MAX),
        v["previous"].as_u64().unwrap_or(u64::MAX),
        v["delta_pct"].as_f64(),
    )
}

async fn metrics_match_the_hand_worked_fixture(b: Backend) {
    let s = start(b, &[], None).await;
    seed(&s).await;
    let m = s.ok("/api/cdp/metrics?range=7d").await;
    assert_eq!(m["status"], "ok");
    assert_eq!(m["range"], "7d");
    assert_eq!(m["generated_at"], "2026-03-08T12:00:00.000Z");
    assert_eq!(m["last_event_at"], "2026-03-08T11:40:00.000Z");
    assert_eq!(
        m["window"],
        json!({"start": "2026-03-01T12:00:00.000Z", "end": "2026-03-08T12:00:00.000Z",
               "previous_start": "2026-02-22T12:00:00.000Z", "bucket": "day"})
    );

    // Events: v1 6 + v2 5 + v3 3 + v4 1 (12:30) + v5 1 + layout 20 exposures and 7
    // conversions = 43. Previous: v4 11:59, v5's exposure, v6 2, v7 1 = 5 (v8 is older).
    // Delta (43 - 5) / 5 = +760 %.
    assert_eq!(kpi(&m["kpis"]["events"]), (43, 5, Some(760.0)));
    // Visitors: v1..v5 and the 20 layout visitors = 25; previous v4, v5, v6, v7 = 4: +525 %.
    assert_eq!(kpi(&m["kpis"]["unique_visitors"]), (25, 4, Some(525.0)));
    // Sessions started in the window: s1, s2, s3, s4, s5, s8 and 20 layout sessions = 26 (s6
    // started at 11:59, in the previous window); previous s6, s7, s9, s10 = 4: +550 %.
    assert_eq!(kpi(&m["kpis"]["sessions"]), (26, 4, Some(550.0)));
    // First identified: v2 (sign-up 03-07) now; v4 (customer id from 03-01T11:59) and
    // v7 (sign-up 02-28) before: 1 against 2, -50 %.
    assert_eq!(kpi(&m["kpis"]["identified_profiles"]), (1, 2, Some(-50.0)));

    // Personas by each visitor's latest event: backyard v1, v5; commercial v2; lawn v3;
    // general v4 and the 20 layout visitors. Of 25: 0.08, 0.04, 0.04, 0.84. Only v1 chose.
    let personas: Vec<(String, String, u64, f64, u64)> = m["personas"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|p| {
            (
                p["persona"].as_str().unwrap_or("").to_owned(),
                p["label"].as_str().unwrap_or("").to_owned(),
                p["visitors"].as_u64().unwrap_or(0),
                p["share"].as_f64().unwrap_or(-1.0),
                p["explicit"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let p = |id: &str, label: &str, n, share, explicit| {
        (id.to_owned(), label.to_owned(), n, share, explicit)
    };
    assert_eq!(
        personas,
        vec![
            p("backyard", "Backyard Betty", 2, 0.08, 1),
            p("commercial", "Broiler Bill", 1, 0.04, 0),
            p("lawn", "Lawn & Garden", 1, 0.04, 0),
            p("general", "General", 21, 0.84, 0),
        ]
    );

    // Funnel by the stage of each visitor's latest event: unaware v4 + 13 layout
    // non-converters = 14; aware the 7 converters; interested v3; engaged v2, v5;
    // evaluating v1. Reached: 25, 11, 4, 3, 1, 1, 0, 0, 0, 0. Conversions: 11/25 = 0.44,
    // 4/11 = 0.363636, 3/4 = 0.75, 1/3 = 0.333333, 1/1, 0/1, then none after a zero.
    let funnel: Vec<(String, u64, u64, Option<f64>)> = m["funnel"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|f| {
            (
                f["stage"].as_str().unwrap_or("").to_owned(),
                f["visitors"].as_u64().unwrap_or(0),
                f["reached"].as_u64().unwrap_or(0),
                f["conversion_from_previous"].as_f64(),
            )
        })
        .collect();
    let f = |stage: &str, n, reached, conv| (stage.to_owned(), n, reached, conv);
    assert_eq!(
        funnel,
        vec![
            f("unaware", 14, 25, None),
            f("aware", 7, 11, Some(0.44)),
            f("interested", 1, 4, Some(0.363636)),
            f("engaged", 2, 3, Some(0.75)),
            f("considering", 0, 1, Some(0.333333)),
            f("evaluating", 1, 1, Some(1.0)),
            f("customer", 0, 0, Some(0.0)),
            f("repeat", 0, 0, None),
            f("loyal", 0, 0, None),
            f("evangelist", 0, 0, None),
        ]
    );

    // Tunnels: one view each; backyard-chickens also has v1's CTA click (rate 1).
    assert_eq!(
        m["tunnels"],
        json!([
            {"tunnel": "backyard-chickens", "views": 1, "cta_clicks": 1, "click_rate": 1.0},
            {"tunnel": "commercial-poultry", "views": 1, "cta_clicks": 0, "click_rate": 0.0},
            {"tunnel": "lawn-garden", "views": 1, "cta_clicks": 0, "click_rate": 0.0},
        ])
    );

    // A/B, cohorts first exposed in the window. hero: a = v1 (converted), b = v2 (converted)
    // and v3; v5 was exposed last week. Pooled p = 2/3, se = sqrt(2/3 * 1/3 * (1/1 + 1/2))
    // = 0.577350, z = (1/2 - 1/1) / se = -0.866025, p = erfc(0.866025 / sqrt 2) = 0.386476.
    // layout: a 1/10, b 6/10. Pooled 0.35, se = sqrt(0.35 * 0.65 * (1/10 + 1/10)) =
    // 0.213307, z = (0.6 - 0.1) / se = 2.344036, p = 0.019076 < 0.05.
    assert_eq!(
        m["ab_tests"],
        json!([
            {"test_id": "hero", "variants": [
                {"variant": "a", "exposures": 1, "conversions": 1, "rate": 1.0},
                {"variant": "b", "exposures": 2, "conversions": 1, "rate": 0.5}],
             "significance": {"method": "two-proportion z-test", "compared": ["a", "b"],
                              "z": -0.866025, "p_value": 0.386476, "significant": false, "note": null}},
            {"test_id": "layout", "variants": [
                {"variant": "a", "exposures": 10, "conversions": 1, "rate": 0.1},
                {"variant": "b", "exposures": 10, "conversions": 6, "rate": 0.6}],
             "significance": {"method": "two-proportion z-test", "compared": ["a", "b"],
                              "z": 2.344036, "p_value": 0.019076, "significant": true, "note": null}},
        ])
    );

    // Types: 20 + 3 exposures, 7 + 3 conversions, 3 tunnel views, 2 page views (v1, v4),
    // 2 searches, and one each of the rest; ties by name.
    assert_eq!(
        m["top_events"],
        json!([
            {"event_type": "ab_test_exposure", "count": 23},
            {"event_type": "ab_test_conversion", "count": 10},
            {"event_type": "tunnel_viewed", "count": 3},
            {"event_type": "page_view", "count": 2},
            {"event_type": "search_performed", "count": 2},
            {"event_type": "email_signup", "count": 1},
            {"event_type": "hero_cta_clicked", "count": 1},
            {"event_type": "persona_path_selected", "count": 1},
        ])
    );

    // The chart: 03-01 (from 12:00) to 03-08, every bucket and label. 03-01: v4 at 12:30 (not
    // 11:59). 03-02: v1 3 + v5 1. 03-03: v2 3. 03-05: v1 3. 03-06: layout 27. 03-07: v2 2.
    // 03-08: v3 3. They add up to 43.
    let day = |date: &str, betty: u64, bill: u64, lawn: u64, general: u64| json!({"date": date, "Backyard Betty": betty, "Broiler Bill": bill, "Lawn & Garden": lawn, "General": general});
    assert_eq!(
        m["chartData"],
        json!([
            day("2026-03-01", 0, 0, 0, 1),
            day("2026-03-02", 4, 0, 0, 0),
            day("2026-03-03", 0, 3, 0, 0),
            day("2026-03-04", 0, 0, 0, 0),
            day("2026-03-05", 3, 0, 0, 0),
            day("2026-03-06", 0, 0, 0, 27),
            day("2026-03-07", 0, 2, 0, 0),
            day("2026-03-08", 0, 0, 3, 0),
        ])
    );
    assert_eq!(
        m["revenue"],
        json!({"status": "unavailable", "reason": "no order data connected"})
    );
    s.finish().await;
}

async fn hourly_metrics_for_24h(b: Backend) {
    let s = start(b, &[], None).await;
    seed(&s).await;
    let m = s.ok("/api/cdp/metrics?range=24h").await;
    // [03-07T12:00, 03-08T12:00): v3's three events at 11:xx; the day before holds v2's two
    // events at 03-07T08:00-08:01 (the layout test was on 03-06 at 10:xx, before it).
    assert_eq!(m["window"]["bucket"], "hour");
    assert_eq!(kpi(&m["kpis"]["events"]), (3, 2, Some(50.0)));
    assert_eq!(kpi(&m["kpis"]["unique_visitors"]), (1, 1, Some(0.0)));
    assert_eq!(kpi(&m["kpis"]["sessions"]), (1, 1, Some(0.0)));
    let chart = m["chartData"].as_array().cloned().unwrap_or_default();
    assert_eq!(chart.len(), 24, "03-07T12:00 to 03-08T11:00");
    assert_eq!(chart[0]["date"], "2026-03-07T12:00");
    assert_eq!(chart[23]["date"], "2026-03-08T11:00");
    assert_eq!(chart[23]["Lawn & Garden"], 3);
    let total: u64 = chart
        .iter()
        .flat_map(|r| {
            ["Backyard Betty", "Broiler Bill", "Lawn & Garden", "General"]
                .map(|k| r[k].as_u64().unwrap_or(0))
        })
        .sum();
    assert_eq!(total, 3);
    s.finish().await;
}

async fn searches_fold_case_and_list_content_gaps(b: Backend) {
    let s = start(b, &[], None).await;
    seed(&s).await;
    // Stored queries (trimmed): "Litter Treatment" (5 results, now), "lawn food" (0, now),
    // "Lawn Food" (0, last week). Folded: "lawn food" 1 now, 1 before (+0 %), one zero-result;
    // "litter treatment" 1 now, none before. Total 2 against 1: +100 %.
    let body = s.ok("/api/cdp/searches?range=7d").await;
    assert_eq!(
        body,
        json!({
            "status": "ok",
            "range": "7d",
            "total": {"value": 2, "previous": 1, "delta_pct": 100.0},
            "top": [
                {"query": "lawn food", "count": 1, "previous": 1, "delta_pct": 0.0, "zero_result_count": 1},
                {"query": "litter treatment", "count": 1, "previous": 0, "delta_pct": null, "zero_result_count": 0},
            ],
            "zero_results": [{"query": "lawn food", "count": 1}],
        })
    );
    s.finish().await;
}

async fn event_stream_is_newest_first_filtered_and_capped(b: Backend) {
    let s = start(b, &[], None).await;
    seed(&s).await;
    let ids = |body: &Value| -> Vec<(String, String)> {
        body["events"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|e| {
                (
                    e["anonymous_id"].as_str().unwrap_or("").to_owned(),
                    e["timestamp"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let v = |a: &str, t: &str| (a.to_owned(), t.to_owned());
    let body = s.ok("/api/cdp/events?limit=3").await;
    assert_eq!(body["status"], "ok");
    assert_eq!(
        ids(&body),
        vec![
            v("v3", "2026-03-08T11:40:00.000Z"),
            v("v3", "2026-03-08T11:31:00.000Z"),
            v("v3", "2026-03-08T11:30:00.000Z"),
        ]
    );
    let first = &body["events"][0];
    assert_eq!(first["event_type"], "ab_test_exposure");
    assert_eq!(first["persona_label"], "Lawn & Garden");
    assert_eq!(first["current_stage"], "interested");
    assert_eq!(first["page_title"], "Southland Organics");
    assert_eq!(first["explicit_persona"], Value::Null);
    let tunnels = s.ok("/api/cdp/events?type=tunnel_viewed").await;
    assert_eq!(
        ids(&tunnels),
        vec![
            v("v3", "2026-03-08T11:31:00.000Z"),
            v("v2", "2026-03-03T14:00:00.000Z"),
            v("v1", "2026-03-02T10:05:00.000Z"),
        ]
    );
    let commercial = s.ok("/api/cdp/events?persona=commercial&type=").await;
    assert_eq!(ids(&commercial).len(), 5, "v2's five events");
    assert!(ids(&commercial).iter().all(|(a, _)| a == "v2"));
    // 49 stored (43 + 5 + v8's 1); the cap is 100 and the default 50.
    assert_eq!(ids(&s.ok("/api/cdp/events?limit=500").await).len(), 49);
    assert_eq!(ids(&s.ok("/api/cdp/events").await).len(), 49);
    let none = s.ok("/api/cdp/events?type=purchase").await;
    assert_eq!(none, json!({"status": "empty", "events": []}));
    s.finish().await;
}

async fn profile_explains_persona_and_stage(b: Backend) {
    let s = start(b, &[], None).await;
    let cfg = Config::southland();
    // A visitor who picks backyard in the Decision Engine, then views a backyard product.
    let raw = [
        (
            "2026-03-07T09:00:00Z",
            json!({"event": "page_view", "event_id": "11111111-1111-4111-8111-111111111111", "anonymous_id": "p-1", "session_id": "ps-1", "timestamp": "2026-03-07T09:00:00Z", "page_url": "https://southlandorganics.com/"}),
        ),
        (
            "2026-03-07T09:01:00Z",
            json!({"event": "persona_path_selected", "event_id": "11111111-1111-4111-8111-111111111112", "anonymous_id": "p-1", "session_id": "ps-1", "timestamp": "2026-03-07T09:01:00Z", "page_url": "https://southlandorganics.com/", "properties": {"persona": "backyard"}}),
        ),
        (
            "2026-03-08T10:00:00Z",
            json!({"event": "product_view", "event_id": "11111111-1111-4111-8111-111111111113", "anonymous_id": "p-1", "session_id": "ps-2", "timestamp": "2026-03-08T10:00:00Z", "page_url": "https://southlandorganics.com/products/hen-helper", "properties": {"product_id": "hen-helper", "product_handle": "hen-helper"}}),
        ),
    ];
    // The collector stores every row but, saving profiles behind the events, has saved the
    // profile only as of the second event: the view must catch up from the stored events.
    let mut profile = None;
    let mut rows = Vec::new();
    let mut saved = None;
    for (i, (received, e)) in raw.iter().enumerate() {
        let event = validate(&cfg, e, at(received)).unwrap_or_else(|r| panic!("{r}"));
        let applied = apply(&cfg, profile, &event, at(received));
        rows.push(applied.row);
        profile = Some(applied.profile);
        if i == 1 {
            saved = profile.clone();
        }
    }
    let profile = profile.unwrap_or_else(|| panic!("no profile"));
    let saved = saved.unwrap_or_else(|| panic!("no saved profile"));
    assert_ne!(saved, profile);
    s.store
        .write_events(&rows)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.store
        .save_profiles(&cfg, std::slice::from_ref(&saved))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let body = s.ok("/api/cdp/profiles/p-1").await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["profile"]["anonymous_id"], "p-1");
    assert_eq!(body["profile"]["explicit_persona"], "backyard");
    assert_eq!(body["profile"]["session_count"], 2);
    assert_eq!(body["profile"]["last_seen"], json!(profile.last_seen));
    assert_eq!(
        body["profile"]["event_counts"]["product_view"], 1,
        "caught up with the third event"
    );
    assert!(
        body["profile"].get("recent_event_ids").is_none(),
        "bookkeeping stays out"
    );
    assert_eq!(body["persona_labels"]["backyard"], "Backyard Betty");
    assert_eq!(body["persona_labels"]["commercial"], "Broiler Bill");
    // The explanation is the core's, as of NOW.
    let (explanation, stage) = profile.explain(&cfg, at(NOW));
    assert_eq!(
        body["explanation"],
        serde_json::to_value(&explanation).unwrap_or_default()
    );
    assert_eq!(body["explanation"]["scores"]["predicted"], "backyard");
    let contributions = body["explanation"]["contributions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        contributions
            .iter()
            .any(|c| c["hint"] == "explicit" && c["persona"] == "backyard"),
        "the Decision Engine choice is listed: {contributions:?}"
    );
    assert_eq!(body["stage"]["stage"], stage.stage.as_str());
    assert_eq!(body["stage"]["rule"], stage.why(&cfg));
    assert!(!body["stage"]["rule"].as_str().unwrap_or("").is_empty());
    assert_eq!(body["stage"]["clause"], json!(stage.clause));

    let (status, missing) = s.get("/api/cdp/profiles/nobody-here").await;
    assert_eq!((status, missing), (404, json!({"status": "not_found"})));
    s.finish().await;
}

async fn empty_store_is_status_empty_not_zeros_invented(b: Backend) {
    let s = start(b, &[], None).await;
    let m = s.ok("/api/cdp/metrics?range=7d").await;
    assert_eq!(m["status"], "empty");
    assert_eq!(m["last_event_at"], Value::Null);
    for k in [
        "events",
        "unique_visitors",
        "sessions",
        "identified_profiles",
    ] {
        assert_eq!(kpi(&m["kpis"][k]), (0, 0, None), "{k}");
    }
    assert_eq!(m["funnel"].as_array().map(Vec::len), Some(10));
    assert_eq!(m["chartData"].as_array().map(Vec::len), Some(8));
    assert_eq!(m["ab_tests"], json!([]));
    assert_eq!(m["revenue"]["status"], "unavailable");
    assert_eq!(
        s.ok("/api/cdp/events").await,
        json!({"status": "empty", "events": []})
    );
    let searches = s.ok("/api/cdp/searches").await;
    assert_eq!(searches["status"], "empty");
    assert_eq!(searches["top"], json!([]));
    s.finish().await;
}

async fn bad_parameters_name_the_field(b: Backend) {
    let s = start(b, &[], None).await;
    for (path, field, says) in [
        ("/api/cdp/metrics?range=1y", "range", "24h, 7d, 30d, 90d"),
        ("/api/cdp/searches?range=", "range", "24h, 7d, 30d, 90d"),
        ("/api/cdp/events?limit=0", "limit", "from 1"),
        ("/api/cdp/events?limit=ten", "limit", "whole number"),
        ("/api/cdp/events?type=pageview", "type", "page_view"),
        ("/api/cdp/events?persona=nobody", "persona", "backyard"),
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "bad_request", "{path}");
        assert_eq!(body["problems"][0]["field"], field, "{path}: {body}");
        let rule = body["problems"][0]["rule"].as_str().unwrap_or("");
        assert!(rule.contains(says), "{path}: {rule}");
    }
    s.finish().await;
}

async fn admin_token_guards_the_api_and_the_dashboard(b: Backend) {
    let s = start(b, &["--admin-token", TOKEN], None).await;
    let (status, body) = s.get("/api/cdp/metrics").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "unauthorized");
    // A token in the URL is not a token.
    let (status, _) = s.get(&format!("/api/cdp/metrics?token={TOKEN}")).await;
    assert_eq!(status, 401);
    let (status, _) = s
        .get_with(
            "/api/cdp/metrics",
            &[("authorization", "Bearer wrong-token-wrong-token")],
        )
        .await;
    assert_eq!(status, 401);
    let bearer = format!("Bearer {TOKEN}");
    let (status, body) = s
        .get_with("/api/cdp/metrics", &[("authorization", &bearer)])
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("empty")));

    // The dashboard sends a browser without a session to the login page.
    let r = s
        .http
        .get(format!("{}/admin/cdp/", s.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/admin/login")
    );
    let page = s
        .http
        .get(format!("{}/admin/login", s.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap_or_default();
    assert!(
        html.contains("method=\"post\"") && html.contains("type=\"password\""),
        "{html}"
    );

    // A wrong token: 401 and no cookie.
    let login = |token: &str, https: bool| {
        let mut req = s
            .http
            .post(format!("{}/admin/login", s.base))
            .form(&[("token", token)]);
        if https {
            req = req.header("x-forwarded-proto", "https");
        }
        req.send()
    };
    let wrong = login("not-the-token-at-all", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    // The right one: a redirect to the dashboard with an HttpOnly, SameSite=Strict session
    // that is not the token.
    let ok = login(TOKEN, false).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.status().as_u16(), 303);
    assert_eq!(
        ok.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/admin/cdp/")
    );
    let cookie = ok
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(cookie.starts_with("cdp_admin_session=v1."), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(!cookie.contains(TOKEN), "{cookie}");
    let secure = login(TOKEN, true).await.unwrap_or_else(|e| panic!("{e}"));
    let secure_cookie = secure
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        secure_cookie.contains("; Secure"),
        "behind https: {secure_cookie}"
    );

    let session = cookie.split(';').next().unwrap_or("").to_owned();
    let (status, _) = s
        .get_with("/api/cdp/metrics", &[("cookie", &session)])
        .await;
    assert_eq!(status, 200);
    let r = s
        .http
        .get(format!("{}/admin/cdp/", s.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // 200 with the page when the dashboard was built into the binary, 404 saying how otherwise.
    let status = r.status().as_u16();
    let page = r.text().await.unwrap_or_default();
    if cdp_api::dashboard::is_built() {
        assert_eq!(status, 200);
        assert!(page.contains("<div id=\"root\">"), "{page}");
        assert!(page.contains("<base href=\"/admin/cdp/\""));
    } else {
        assert_eq!(status, 404);
        assert!(page.contains("npm run build"), "{page}");
    }
    let (status, _) = s
        .get_with(
            "/api/cdp/metrics",
            &[("cookie", "cdp_admin_session=v1.99999999999.00ff")],
        )
        .await;
    assert_eq!(status, 401, "a forged session");
    // The collector stays open.
    let health = s
        .http
        .get(format!("{}/health", s.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(health.status().as_u16(), 200);
    s.finish().await;
}

async fn without_a_token_only_this_machine_gets_in(b: Backend) {
    let s = start(b, &[], None).await;
    let (status, _) = s.get("/api/cdp/metrics").await;
    assert_eq!(status, 200, "loopback client, no token configured");
    // What proxies, tunnels and CDNs add; a tunnel such as `cloudflared` sets only
    // CF-Connecting-IP, and the dashboard must not open to the internet behind it.
    for header in [
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "cf-connecting-ip",
        "true-client-ip",
        "x-client-ip",
        "fly-client-ip",
        "x-cluster-client-ip",
        "fastly-client-ip",
        "via",
    ] {
        let (status, body) = s
            .get_with("/api/cdp/metrics", &[(header, "198.51.100.7")])
            .await;
        assert_eq!(status, 403, "{header}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .contains("--admin-token"),
            "{body}"
        );
    }
    // Redirects into the dashboard.
    for path in ["/admin", "/admin/", "/admin/cdp"] {
        let r = s
            .http
            .get(format!("{}{path}", s.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.headers().get("location").and_then(|v| v.to_str().ok()),
            Some("/admin/cdp/"),
            "{path}"
        );
    }
    s.finish().await;
}

/// Validates `body` against the schema the document gives for `route`'s `status` answer,
/// with a real JSON Schema 2020-12 validator (formats such as `date-time` checked too). The
/// schema's `$ref`s point into the document's components, so the components go along with it.
fn problems(doc: &Value, route: &str, status: u16, body: &Value) -> Vec<String> {
    problems_of_method(doc, "get", route, status, body)
}

/// [`problems`] for a route's other method.
fn problems_of_method(
    doc: &Value,
    method: &str,
    route: &str,
    status: u16,
    body: &Value,
) -> Vec<String> {
    let schema = &doc["paths"][route][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(!schema.is_null(), "{route} documents no {status} answer");
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{route} {status}: the document's schema is invalid: {e}"));
    validator
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn conforms(doc: &Value, route: &str, status: u16, body: &Value) {
    let problems = problems(doc, route, status, body);
    assert!(
        problems.is_empty(),
        "{route} {status} does not match the document: {problems:#?}"
    );
}

async fn answers_match_the_openapi_document(b: Backend) {
    let s = start(
        b,
        &[
            "--tombstone-key",
            "dashboard-api test tombstone key, 32 bytes+",
        ],
        None,
    )
    .await;
    let doc = s.ok("/api/cdp/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    // Every route is documented, and every required field of every schema is defined.
    for route in cdp_api::openapi::PATHS {
        assert!(
            doc["paths"][route]["get"]["responses"]["200"].is_object(),
            "{route}"
        );
    }
    let schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    fn required_are_defined(name: &str, schema: &Value) {
        if let (Some(req), Some(props)) = (
            schema.get("required").and_then(Value::as_array),
            schema.get("properties").and_then(Value::as_object),
        ) {
            for r in req {
                assert!(
                    props.contains_key(r.as_str().unwrap_or("")),
                    "{name}: required {r} is not a property"
                );
            }
        }
        for child in schema.as_object().into_iter().flat_map(|o| o.values()) {
            if child.is_object() {
                required_are_defined(name, child);
            }
            for item in child.as_array().into_iter().flatten() {
                required_are_defined(name, item);
            }
        }
    }
    for (name, schema) in &schemas {
        required_are_defined(name, schema);
    }
    for name in [
        "Metrics", "Events", "Searches", "Profile", "Offline", "Error",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }

    // Real answers, empty then seeded, validate; a broken one does not.
    let empty = s.ok("/api/cdp/metrics").await;
    conforms(&doc, "/api/cdp/metrics", 200, &empty);
    let mut broken = empty.clone();
    if let Some(o) = broken.as_object_mut() {
        o.remove("kpis");
        o.insert("last_event_at".into(), Value::from("yesterday"));
    }
    assert_eq!(
        problems(&doc, "/api/cdp/metrics", 200, &broken).len(),
        2,
        "a missing field and a malformed date-time are both caught"
    );
    seed(&s).await;
    for range in ["24h", "7d", "30d", "90d"] {
        conforms(
            &doc,
            "/api/cdp/metrics",
            200,
            &s.ok(&format!("/api/cdp/metrics?range={range}")).await,
        );
        conforms(
            &doc,
            "/api/cdp/searches",
            200,
            &s.ok(&format!("/api/cdp/searches?range={range}")).await,
        );
    }
    conforms(
        &doc,
        "/api/cdp/events",
        200,
        &s.ok("/api/cdp/events?limit=100").await,
    );
    let (status, bad) = s.get("/api/cdp/metrics?range=2w").await;
    conforms(&doc, "/api/cdp/metrics", status, &bad);
    let (status, missing) = s.get("/api/cdp/profiles/nobody").await;
    conforms(&doc, "/api/cdp/profiles/{anonymous_id}", status, &missing);
    let (status, forbidden) = s
        .get_with("/api/cdp/events", &[("x-forwarded-for", "192.0.2.1")])
        .await;
    conforms(&doc, "/api/cdp/events", status, &forbidden);

    let cfg = Config::southland();
    let e = json!({"event": "page_view", "event_id": "22222222-2222-4222-8222-222222222222", "anonymous_id": "p-2", "session_id": "ps", "timestamp": "2026-03-08T09:00:00Z", "page_url": "https://southlandorganics.com/"});
    let event = validate(&cfg, &e, at("2026-03-08T09:00:01Z")).unwrap_or_else(|r| panic!("{r}"));
    let p = apply(&cfg, None, &event, at("2026-03-08T09:00:01Z")).profile;
    s.store
        .save_profiles(&cfg, &[p])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conforms(
        &doc,
        "/api/cdp/profiles/{anonymous_id}",
        200,
        &s.ok("/api/cdp/profiles/p-2").await,
    );

    // The people routes: a person, its export, the identity figures, and its erasure.
    let mut identify = e.clone();
    identify["event"] = json!("identify");
    identify["event_id"] = json!("33333333-3333-4333-8333-333333333333");
    identify["properties"] = json!({"email": "p-2@example.org"});
    let identify =
        validate(&cfg, &identify, at("2026-03-08T09:00:02Z")).unwrap_or_else(|r| panic!("{r}"));
    let rows = [
        apply(&cfg, None, &event, at("2026-03-08T09:00:01Z")).row,
        apply(&cfg, None, &identify, at("2026-03-08T09:00:02Z")).row,
    ];
    s.store
        .write_events(&rows)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let route = "/api/cdp/people/{key}";
    conforms(
        &doc,
        route,
        200,
        &s.ok("/api/cdp/people/p-2@example.org").await,
    );
    let export = s.ok("/api/cdp/people/p-2/export").await;
    assert_eq!(
        export["events"].as_array().map(Vec::len),
        Some(2),
        "{export}"
    );
    conforms(&doc, "/api/cdp/people/{key}/export", 200, &export);
    let (status, junk) = s.get("/api/cdp/people/undefined/export").await;
    conforms(&doc, "/api/cdp/people/{key}/export", status, &junk);
    conforms(
        &doc,
        "/api/cdp/identity",
        200,
        &s.ok("/api/cdp/identity").await,
    );
    let erased = s
        .http
        .delete(format!("{}/api/cdp/people/p-2", s.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(erased.status().as_u16(), 200);
    let erased: Value = erased.json().await.unwrap_or_else(|e| panic!("{e}"));
    let problems = problems_of_method(&doc, "delete", route, 200, &erased);
    assert!(problems.is_empty(), "{erased}: {problems:#?}");
    let figures = s.ok("/api/cdp/identity").await;
    assert_eq!(figures["erasures"]["erasures"], 1, "{figures}");
    conforms(&doc, "/api/cdp/identity", 200, &figures);
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_offline_is_503_offline_not_empty() {
    let (proxy, via) = Proxy::before_test_postgres().await;
    let s = start(Backend::Postgres, &[], Some(via)).await;
    seed(&s).await;
    assert_eq!(s.ok("/api/cdp/metrics").await["status"], "ok");

    proxy.cut().await;
    let doc = cdp_api::openapi::document();
    for path in [
        "/api/cdp/metrics?range=30d",
        "/api/cdp/events",
        "/api/cdp/searches",
        "/api/cdp/profiles/v1",
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["status"], "offline", "{path}: {body}");
        let reason = body["reason"].as_str().unwrap_or("");
        assert!(!reason.is_empty(), "{path}: {body}");
        assert!(
            !reason.contains("postgres://"),
            "no URL in the reason: {reason}"
        );
        let route = path
            .split('?')
            .next()
            .unwrap_or(path)
            .replace("/v1", "/{anonymous_id}");
        conforms(&doc, &route, status, &body);
    }
    s.finish().await;
}
