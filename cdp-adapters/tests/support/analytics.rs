//! The analytics conformance check: events written out of order, in odd batches and twice,
//! must leave rollups that agree with the store's own SQL recount, and the dashboard counts
//! must equal an independent recount done here in Rust from the rows themselves.

use super::data;
use cdp_adapters::analytics::{
    AbCount, Analytics, AnalyticsError, HourCount, MetricCounts, Resolution, SearchCount, Split,
    StateCount, StreamQuery, TunnelCount, TypeCount, VisitorCounts, Window,
};
use cdp_adapters::{EventSink, Store};
use cdp_core::{BrandId, EventRow, EventType};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Synthetic traffic that exercises every rollup: 24 visitors over ten days, several days each,
/// with sessions, tunnels, A/B tests, identities and searches.
fn traffic() -> Vec<EventRow> {
    let start = data::at("2026-03-01T00:00:00Z");
    let mut events = Vec::new();
    let mut n = 0u32;
    const TUNNELS: [&str; 2] = ["backyard-chickens", "lawn-garden"];
    const VARIANTS: [&str; 2] = ["a", "b"];
    const QUERIES: [&str; 3] = ["Coop Smell", " coop smell", "lawn"];
    for v in 0..24u32 {
        for day in (0..10u32).filter(|d| (d * 7 + v) % 3 != 0) {
            for k in 0..(1 + (v + day) % 4) {
                n += 1;
                let t = start
                    + Duration::days(i64::from(day))
                    + Duration::minutes(i64::from((v * 37 + k * 11 + day * 53) % 1440));
                let (event, props) = match (v + day + k) % 7 {
                    0 => (
                        "tunnel_viewed",
                        json!({"tunnel": TUNNELS[(v % 2) as usize]}),
                    ),
                    1 => ("hero_cta_clicked", json!({"tunnel": "backyard-chickens"})),
                    2 => (
                        "ab_test_exposure",
                        json!({"test_id": "hero", "variant": VARIANTS[(v % 2) as usize]}),
                    ),
                    3 => (
                        "ab_test_conversion",
                        json!({"test_id": "hero", "variant": VARIANTS[(v % 2) as usize]}),
                    ),
                    4 => (
                        "search_performed",
                        json!({"query": QUERIES[(k % 3) as usize], "results_count": k % 2}),
                    ),
                    5 if v % 5 == 0 => (
                        "email_signup",
                        json!({"source": "footer", "email": format!("v{v}@example.com")}),
                    ),
                    _ => ("page_view", json!({})),
                };
                let mut e = json!({
                    "event": event,
                    "event_id": format!("00000000-0000-4000-a000-{n:012x}"),
                    "anonymous_id": format!("an-{v:02}"),
                    "session_id": format!("an-{v:02}-{}", day / 3),
                    "timestamp": t.to_rfc3339(),
                    "page_url": "https://southlandorganics.com/x",
                    "properties": props,
                });
                if v % 7 == 3 && day > 4 {
                    e["customer_id"] = Value::from(format!("cust-{v}"));
                }
                events.push((t + Duration::seconds(1), e));
            }
        }
    }
    events.sort_by_key(|(t, _)| *t);
    data::run(&events).rows
}

/// A fixed permutation that moves rows far from their time order.
fn shuffled(rows: &[EventRow]) -> Vec<EventRow> {
    let mut out = rows.to_vec();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.swap(i, (state % (i as u64 + 1)) as usize);
    }
    out
}

fn hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

fn prop(r: &EventRow, key: &str) -> Option<String> {
    r.properties
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The counts computed here from the stored rows (`rows` in storage order, first copies only).
fn recount(
    rows: &[EventRow],
    brand: &BrandId,
    cur: Window,
    prev: Window,
    resolution: Resolution,
) -> MetricCounts {
    // Whole days of the window may come as one bucket at their midnight.
    let days = Split::of(cur, resolution).days;
    let bucket = |t: DateTime<Utc>| {
        let h = hour(t);
        if h >= days.start && h < days.end {
            t.duration_trunc(Duration::days(1)).unwrap_or(t)
        } else {
            h
        }
    };
    let rows: Vec<(usize, &EventRow)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| &r.brand_id == brand)
        .collect();
    let inside = |w: Window, t: DateTime<Utc>| t >= w.start && t < w.end;
    let in_cur: Vec<&(usize, &EventRow)> = rows
        .iter()
        .filter(|(_, r)| inside(cur, r.timestamp))
        .collect();

    let mut by_hour: BTreeMap<(DateTime<Utc>, String), u64> = BTreeMap::new();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_tunnel: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (_, r) in &in_cur {
        *by_hour
            .entry((bucket(r.timestamp), r.predicted_persona.to_string()))
            .or_default() += 1;
        *by_type.entry(r.event_type.as_str().to_owned()).or_default() += 1;
        if matches!(
            r.event_type,
            EventType::TunnelViewed | EventType::HeroCtaClicked
        ) {
            let tunnel = prop(r, "tunnel").unwrap_or_default();
            *by_tunnel
                .entry((tunnel, r.event_type.as_str().to_owned()))
                .or_default() += 1;
        }
    }

    let visitors = |w: Window| -> VisitorCounts {
        let active: BTreeSet<&str> = rows
            .iter()
            .filter(|(_, r)| inside(w, r.timestamp))
            .map(|(_, r)| r.anonymous_id.as_str())
            .collect();
        let mut session_start: BTreeMap<(&str, &str), DateTime<Utc>> = BTreeMap::new();
        let mut identified: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
        for (_, r) in &rows {
            let s = session_start
                .entry((r.anonymous_id.as_str(), r.session_id.as_str()))
                .or_insert(r.timestamp);
            *s = (*s).min(r.timestamp);
            if r.customer_id.is_some()
                || matches!(r.event_type, EventType::EmailSignup | EventType::Identify)
            {
                let i = identified
                    .entry(r.anonymous_id.as_str())
                    .or_insert(r.timestamp);
                *i = (*i).min(r.timestamp);
            }
        }
        VisitorCounts {
            visitors: active.len() as u64,
            sessions: session_start.values().filter(|t| inside(w, **t)).count() as u64,
            identified: identified.values().filter(|t| inside(w, **t)).count() as u64,
        }
    };

    // Each visitor's latest event in the window, by timestamp and then storage order.
    let mut latest: BTreeMap<&str, (DateTime<Utc>, usize, &EventRow)> = BTreeMap::new();
    for (i, r) in &in_cur {
        let e = latest
            .entry(r.anonymous_id.as_str())
            .or_insert((r.timestamp, *i, r));
        if (r.timestamp, *i) > (e.0, e.1) {
            *e = (r.timestamp, *i, r);
        }
    }
    let mut states: BTreeMap<(String, Option<String>, String), u64> = BTreeMap::new();
    for (_, _, r) in latest.values() {
        *states
            .entry((
                r.predicted_persona.to_string(),
                r.explicit_persona.as_ref().map(ToString::to_string),
                r.current_stage.as_str().to_owned(),
            ))
            .or_default() += 1;
    }

    type Firsts = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let mut ab: BTreeMap<(String, String, &str), Firsts> = BTreeMap::new();
    for (_, r) in &rows {
        let (Some(test), Some(variant)) = (prop(r, "test_id"), prop(r, "variant")) else {
            continue;
        };
        let slot = ab
            .entry((test, variant, r.anonymous_id.as_str()))
            .or_default();
        let first = |x: &mut Option<DateTime<Utc>>| {
            *x = Some(x.map_or(r.timestamp, |t| t.min(r.timestamp)))
        };
        match r.event_type {
            EventType::AbTestExposure => first(&mut slot.0),
            EventType::AbTestConversion => first(&mut slot.1),
            _ => {}
        }
    }
    let mut ab_counts: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for ((test, variant, _), (exposed, converted)) in &ab {
        if exposed.is_some_and(|t| inside(cur, t)) {
            let c = ab_counts
                .entry((test.clone(), variant.clone()))
                .or_default();
            c.0 += 1;
            c.1 += u64::from(converted.is_some_and(|t| t < cur.end));
        }
    }

    MetricCounts {
        events: cdp_adapters::analytics::EventCounts {
            by_hour_persona: by_hour
                .into_iter()
                .map(|((hour, persona), events)| HourCount {
                    hour,
                    persona,
                    events,
                })
                .collect(),
            by_type: by_type
                .into_iter()
                .map(|(event_type, events)| TypeCount { event_type, events })
                .collect(),
            by_tunnel: by_tunnel
                .into_iter()
                .map(|((tunnel, event_type), events)| TunnelCount {
                    tunnel,
                    event_type,
                    events,
                })
                .collect(),
        },
        previous_events: rows
            .iter()
            .filter(|(_, r)| inside(prev, r.timestamp))
            .count() as u64,
        visitors: visitors(cur),
        previous_visitors: visitors(prev),
        states: states
            .into_iter()
            .map(
                |((persona, explicit_persona, stage), visitors)| StateCount {
                    persona,
                    explicit_persona,
                    stage,
                    visitors,
                },
            )
            .collect(),
        ab: ab_counts
            .into_iter()
            .map(|((test_id, variant), (exposures, conversions))| AbCount {
                test_id,
                variant,
                exposures,
                conversions,
            })
            .collect(),
        last_event_at: rows.iter().map(|(_, r)| r.timestamp).max(),
    }
}

/// Sorts every list so backends' row orders do not matter.
fn normalised(mut m: MetricCounts) -> MetricCounts {
    m.events
        .by_hour_persona
        .sort_by(|a, b| (a.hour, &a.persona).cmp(&(b.hour, &b.persona)));
    m.events
        .by_type
        .sort_by(|a, b| a.event_type.cmp(&b.event_type));
    m.events
        .by_tunnel
        .sort_by(|a, b| (&a.tunnel, &a.event_type).cmp(&(&b.tunnel, &b.event_type)));
    m.states.sort_by(|a, b| {
        (&a.persona, &a.explicit_persona, &a.stage).cmp(&(
            &b.persona,
            &b.explicit_persona,
            &b.stage,
        ))
    });
    m.ab.sort_by(|a, b| (&a.test_id, &a.variant).cmp(&(&b.test_id, &b.variant)));
    m
}

/// Every analytics property, on a freshly migrated, empty store.
pub async fn check_analytics(store: &Store) {
    let brand = BrandId::new("southland");
    let all = data::at("2026-01-01T00:00:00Z");
    let whole = Window {
        start: all,
        end: all + Duration::days(365),
    };
    // An empty store counts nothing.
    let empty = store
        .metric_counts(&brand, whole, whole, Resolution::Day)
        .await
        .expect("empty counts");
    assert_eq!(
        empty,
        MetricCounts::default(),
        "an empty store counts nothing"
    );

    // Fixture journeys and synthetic traffic, written out of time order in odd-sized batches,
    // then everything again (all duplicates).
    let mut rows = data::fixtures().rows;
    rows.extend(traffic());
    let order = shuffled(&rows);
    for (i, batch) in order.chunks(37).enumerate() {
        store.write_events(batch).await.expect("write");
        // Where rollups are folded behind the writes (Postgres), fold after most batches and
        // let some folds take several batches at once, so folds meet the rows earlier folds
        // made, out of time order.
        if i % 3 != 2 {
            store.flush_rollups().await.expect("flush rollups");
        }
    }
    for batch in order.chunks(101) {
        store.write_events(batch).await.expect("write again");
    }
    let diffs = store.rollup_differences().await.expect("recount");
    assert!(
        diffs.is_empty(),
        "rollups disagree with the recount: {diffs:?}"
    );

    // What the store holds: the first copy of each event, in the order it was written.
    let mut seen = HashSet::new();
    let stored: Vec<EventRow> = order
        .iter()
        .filter(|r| seen.insert((r.brand_id.clone(), r.event_id)))
        .cloned()
        .collect();
    let latest = stored.iter().map(|r| r.timestamp).max().expect("rows");
    for (start, end) in [
        // Unaligned edges on both sides, ending after every event.
        ("2026-03-04T10:17:23Z", "2026-03-08T16:17:23Z"),
        // A day that ends mid-traffic (counts and visitors only depend on the window).
        ("2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z"),
        // Whole history.
        ("2026-02-20T00:00:00Z", "2026-03-09T00:00:00Z"),
    ] {
        let cur = Window {
            start: data::at(start),
            end: data::at(end),
        };
        let prev = Window {
            start: cur.start - (cur.end - cur.start),
            end: cur.start,
        };
        for resolution in [Resolution::Hour, Resolution::Day] {
            let got = normalised(
                store
                    .metric_counts(&brand, cur, prev, resolution)
                    .await
                    .expect("counts"),
            );
            let want = normalised(recount(&stored, &brand, cur, prev, resolution));
            if cur.end > latest {
                assert_eq!(got, want, "window {start} .. {end} by {resolution:?}");
            } else {
                // Personas and stages describe each visitor's latest event, so they are only
                // asked for windows that end now; everything else must still match.
                assert_eq!(got.events, want.events, "events {start} .. {end}");
                assert_eq!(got.visitors, want.visitors, "visitors {start} .. {end}");
                assert_eq!(
                    got.previous_visitors, want.previous_visitors,
                    "previous {start} .. {end}"
                );
                assert_eq!(
                    got.previous_events, want.previous_events,
                    "previous {start} .. {end}"
                );
                assert_eq!(got.ab, want.ab, "ab {start} .. {end}");
            }
            assert!(
                got.events.total() > 0 && got.visitors.visitors > 0,
                "{start}: {got:?}"
            );
        }
    }

    // Searches: per stored query text, in the two windows, which start a second before one
    // search and end a second after another, so the partial hours at the edges (read from
    // events) hold searches.
    let mut searched: Vec<_> = stored
        .iter()
        .filter_map(EventRow::search)
        .map(|r| r.searched_at)
        .collect();
    searched.sort();
    let cur = Window {
        start: searched[searched.len() / 4] - Duration::seconds(1),
        end: searched[searched.len() * 3 / 4] + Duration::seconds(1),
    };
    let prev = Window {
        start: cur.start - Duration::days(6),
        end: cur.start,
    };
    let mut got = store
        .search_counts(&brand, cur, prev)
        .await
        .expect("searches");
    got.sort_by(|a, b| a.query.cmp(&b.query));
    let mut want: BTreeMap<String, SearchCount> = BTreeMap::new();
    for r in stored.iter().filter_map(EventRow::search) {
        let (c, p) = (
            r.searched_at >= cur.start && r.searched_at < cur.end,
            r.searched_at >= prev.start && r.searched_at < prev.end,
        );
        if !(c || p) {
            continue;
        }
        let s = want.entry(r.query.clone()).or_insert(SearchCount {
            query: r.query.clone(),
            current: 0,
            previous: 0,
            zero_results: 0,
        });
        s.current += u64::from(c);
        s.previous += u64::from(p);
        s.zero_results += u64::from(c && r.results_count == 0);
    }
    assert_eq!(got, want.into_values().collect::<Vec<_>>(), "search counts");

    // The stream: newest first, filtered, capped.
    let query = StreamQuery {
        event_type: Some("page_view".into()),
        persona: None,
        limit: 5,
    };
    let got: Vec<_> = store
        .recent_events(&brand, &query)
        .await
        .expect("stream")
        .iter()
        .map(|r| r.event_id)
        .collect();
    let mut want: Vec<(DateTime<Utc>, usize, &EventRow)> = stored
        .iter()
        .enumerate()
        .filter(|(_, r)| r.event_type == EventType::PageView)
        .map(|(i, r)| (r.timestamp, i, r))
        .collect();
    want.sort_by_key(|w| std::cmp::Reverse((w.0, w.1)));
    let want: Vec<_> = want.iter().take(5).map(|(_, _, r)| r.event_id).collect();
    assert_eq!(got, want, "newest page views first");
    let none = StreamQuery {
        event_type: None,
        persona: Some("nobody".into()),
        limit: 5,
    };
    assert!(store
        .recent_events(&brand, &none)
        .await
        .expect("stream")
        .is_empty());
}

/// What a backend without dashboard queries must answer.
pub async fn check_analytics_unsupported(store: &Store) {
    let brand = BrandId::new("southland");
    let w = Window {
        start: data::at("2026-03-01T00:00:00Z"),
        end: data::at("2026-03-02T00:00:00Z"),
    };
    match store.metric_counts(&brand, w, w, Resolution::Hour).await {
        Err(e @ AnalyticsError::Unsupported { .. }) => {
            assert!(e.to_string().contains("use Postgres"), "{e}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
