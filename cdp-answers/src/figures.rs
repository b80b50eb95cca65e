//! The dashboard's arithmetic, as pure functions over the store's counts: time windows,
//! deltas against the previous window, shares, the journey funnel, the A/B significance test,
//! the chart's time buckets and search folding. The store only counts; every figure the
//! dashboard shows is decided here, and nothing here reads a clock or does I/O (`now` is an
//! argument), so it is tested as tables of cases.
//!
//! Ratios and percentages are rounded to six decimals so answers are stable across backends
//! and platforms.

use cdp_core::counting::{
    AbCount, HourCount, MetricCounts, SearchCount, StateCount, TunnelCount, Window,
};
use cdp_core::persona::round6;
use cdp_core::{Config, Stage};
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Conventional significance level of the A/B test.
pub const SIGNIFICANCE_LEVEL: f64 = 0.05;
/// The A/B test's name, as reported.
pub const AB_METHOD: &str = "two-proportion z-test";
/// Longest `top` and `zero_results` lists of the searches endpoint.
pub const SEARCH_LIST_LIMIT: usize = 20;

/// The ranges the dashboard offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Range {
    /// The last 24 hours, in hourly buckets.
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days, in daily buckets.
    #[serde(rename = "7d")]
    Week,
    /// The last 30 days, in daily buckets.
    #[serde(rename = "30d")]
    Month,
    /// The last 90 days, in daily buckets.
    #[serde(rename = "90d")]
    Quarter,
}

impl Range {
    /// Every range, in the order the dashboard lists them.
    pub const ALL: [Range; 4] = [Range::Day, Range::Week, Range::Month, Range::Quarter];

    /// The query-string name, such as `7d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
            Range::Quarter => "90d",
        }
    }

    /// Looks a name up.
    pub fn parse(name: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The names, comma-separated, for error messages.
    pub fn known_list() -> String {
        Range::ALL.map(Range::as_str).join(", ")
    }

    /// How long the window is.
    pub fn length(self) -> Duration {
        match self {
            Range::Day => Duration::hours(24),
            Range::Week => Duration::days(7),
            Range::Month => Duration::days(30),
            Range::Quarter => Duration::days(90),
        }
    }

    /// The chart's bucket size.
    pub fn bucket(self) -> Bucket {
        match self {
            Range::Day => Bucket::Hour,
            _ => Bucket::Day,
        }
    }
}

/// A chart bucket size; buckets are aligned to UTC hours or days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Bucket {
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
}

impl Bucket {
    fn length(self) -> Duration {
        match self {
            Bucket::Hour => Duration::hours(1),
            Bucket::Day => Duration::days(1),
        }
    }

    /// The start of the bucket holding `t`.
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.length()).unwrap_or(t)
    }

    /// The chart label: `2026-03-01` for days, `2026-03-01T14:00` for hours.
    pub fn label(self, start: DateTime<Utc>) -> String {
        match self {
            Bucket::Hour => start.format("%Y-%m-%dT%H:00").to_string(),
            Bucket::Day => start.format("%Y-%m-%d").to_string(),
        }
    }
}

/// The current window `[now - range, now)` and the previous one of the same length before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// The range asked for.
    pub range: Range,
    /// `[now - length, now)`.
    pub current: Window,
    /// `[now - 2 * length, now - length)`.
    pub previous: Window,
}

/// The windows of `range` ending at `now`.
pub fn windows(range: Range, now: DateTime<Utc>) -> Windows {
    let start = now - range.length();
    Windows {
        range,
        current: Window { start, end: now },
        previous: Window {
            start: start - range.length(),
            end: start,
        },
    }
}

/// RFC 3339 with milliseconds and `Z`, the form every timestamp in the API takes.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A figure for the current window with the previous window's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Kpi {
    /// This window.
    pub value: u64,
    /// The window before.
    pub previous: u64,
    /// Percent change (12.5 is +12.5 %), `None` when `previous` is 0.
    pub delta_pct: Option<f64>,
}

/// A KPI with its delta.
pub fn kpi(value: u64, previous: u64) -> Kpi {
    Kpi {
        value,
        previous,
        delta_pct: delta_pct(value, previous),
    }
}

/// `(value - previous) / previous` in percent, `None` when `previous` is 0.
pub fn delta_pct(value: u64, previous: u64) -> Option<f64> {
    (previous > 0).then(|| round6((value as f64 - previous as f64) / previous as f64 * 100.0))
}

/// `n / d` rounded, `None` when `d` is 0.
pub fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| round6(n as f64 / d as f64))
}

/// The four headline figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Kpis {
    /// Events in the window.
    pub events: Kpi,
    /// Distinct visitors with an event in the window.
    pub unique_visitors: Kpi,
    /// Sessions that started in the window.
    pub sessions: Kpi,
    /// Visitors first identified in the window.
    pub identified_profiles: Kpi,
}

/// One persona's slice of the window's visitors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PersonaShare {
    /// Persona id.
    pub persona: String,
    /// Its label.
    pub label: String,
    /// Visitors whose latest event in the window predicted this persona.
    pub visitors: u64,
    /// `visitors` over all visitors in the window (0 when there are none).
    pub share: f64,
    /// Visitors whose explicit choice (as of their latest event) is this persona.
    pub explicit: u64,
}

/// Persona shares in configuration order, then any persona the data holds that the
/// configuration does not (labelled with its id).
pub fn personas(cfg: &Config, states: &[StateCount]) -> Vec<PersonaShare> {
    let total: u64 = states.iter().map(|s| s.visitors).sum();
    let mut ids: Vec<String> = cfg
        .personas()
        .iter()
        .map(|p| p.id.as_str().to_owned())
        .collect();
    for s in states {
        for id in std::iter::once(&s.persona).chain(s.explicit_persona.as_ref()) {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
    }
    ids.into_iter()
        .map(|id| {
            let visitors = states
                .iter()
                .filter(|s| s.persona == id)
                .map(|s| s.visitors)
                .sum();
            let explicit = states
                .iter()
                .filter(|s| s.explicit_persona.as_deref() == Some(id.as_str()))
                .map(|s| s.visitors)
                .sum();
            PersonaShare {
                label: label(cfg, &id),
                persona: id,
                visitors,
                share: ratio(visitors, total).unwrap_or(0.0),
                explicit,
            }
        })
        .collect()
}

fn label(cfg: &Config, id: &str) -> String {
    cfg.personas()
        .iter()
        .find(|p| p.id.as_str() == id)
        .map_or_else(|| id.to_owned(), |p| p.label.clone())
}

/// One rung of the journey funnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FunnelStage {
    /// Stage name.
    pub stage: String,
    /// Visitors at this stage as of their latest event in the window.
    pub visitors: u64,
    /// Visitors at this stage or beyond.
    pub reached: u64,
    /// `reached` over the previous stage's `reached`; `None` for the first stage or after 0.
    pub conversion_from_previous: Option<f64>,
}

/// The funnel from visitors per stage, all ten stages in ladder order. Stages the core does not
/// know are ignored.
pub fn funnel(states: &[StateCount]) -> Vec<FunnelStage> {
    let mut at = [0u64; Stage::ALL.len()];
    for s in states {
        if let Some(stage) = Stage::parse(&s.stage) {
            at[stage.index()] += s.visitors;
        }
    }
    let mut reached = at;
    for i in (0..reached.len().saturating_sub(1)).rev() {
        reached[i] += reached[i + 1];
    }
    Stage::ALL
        .iter()
        .enumerate()
        .map(|(i, stage)| FunnelStage {
            stage: stage.as_str().to_owned(),
            visitors: at[i],
            reached: reached[i],
            conversion_from_previous: i.checked_sub(1).and_then(|p| ratio(reached[i], reached[p])),
        })
        .collect()
}

/// Views and CTA clicks of one tunnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TunnelRow {
    /// The `tunnel` property.
    pub tunnel: String,
    /// `tunnel_viewed` events.
    pub views: u64,
    /// `hero_cta_clicked` events.
    pub cta_clicks: u64,
    /// `cta_clicks / views`, `None` without views.
    pub click_rate: Option<f64>,
}

/// Tunnels by views (most first), then name.
pub fn tunnels(counts: &[TunnelCount]) -> Vec<TunnelRow> {
    let mut by: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for c in counts {
        let slot = by.entry(c.tunnel.as_str()).or_default();
        match c.event_type.as_str() {
            "tunnel_viewed" => slot.0 += c.events,
            "hero_cta_clicked" => slot.1 += c.events,
            _ => {}
        }
    }
    let mut rows: Vec<TunnelRow> = by
        .into_iter()
        .map(|(tunnel, (views, cta_clicks))| TunnelRow {
            tunnel: tunnel.to_owned(),
            views,
            cta_clicks,
            click_rate: ratio(cta_clicks, views),
        })
        .collect();
    rows.sort_by(|a, b| b.views.cmp(&a.views).then_with(|| a.tunnel.cmp(&b.tunnel)));
    rows
}

/// One variant's cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AbVariant {
    /// Variant name.
    pub variant: String,
    /// Visitors first exposed in the window.
    pub exposures: u64,
    /// Of those, visitors who converted.
    pub conversions: u64,
    /// `conversions / exposures`.
    pub rate: Option<f64>,
}

/// Whether the difference between two variants is more than chance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "ts", ts(rename = "AbSignificance"))]
pub struct Significance {
    /// Always [`AB_METHOD`].
    pub method: String,
    /// The two variants compared, in name order; `z` is the second's rate minus the first's
    /// over the pooled standard error.
    pub compared: Vec<String>,
    /// The z statistic; `None` when either variant has no exposures or the pooled rate is 0 or 1.
    pub z: Option<f64>,
    /// Two-sided p-value.
    pub p_value: Option<f64>,
    /// `p_value < 0.05`.
    pub significant: bool,
    /// Said when there are more than two variants (the two with the best rates are compared)
    /// or fewer than two.
    pub note: Option<String>,
}

/// One A/B test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AbTest {
    /// Test id.
    pub test_id: String,
    /// Variants in name order.
    pub variants: Vec<AbVariant>,
    /// The test between the two variants compared.
    pub significance: Significance,
}

/// The A/B tests, each with its significance.
pub fn ab_tests(counts: &[AbCount]) -> Vec<AbTest> {
    let mut by: BTreeMap<&str, Vec<AbVariant>> = BTreeMap::new();
    for c in counts {
        by.entry(c.test_id.as_str()).or_default().push(AbVariant {
            variant: c.variant.clone(),
            exposures: c.exposures,
            conversions: c.conversions,
            rate: ratio(c.conversions, c.exposures),
        });
    }
    by.into_iter()
        .map(|(test_id, mut variants)| {
            variants.sort_by(|a, b| a.variant.cmp(&b.variant));
            let significance = significance(&variants);
            AbTest {
                test_id: test_id.to_owned(),
                variants,
                significance,
            }
        })
        .collect()
}

fn significance(variants: &[AbVariant]) -> Significance {
    let mut ranked: Vec<&AbVariant> = variants.iter().filter(|v| v.exposures > 0).collect();
    let note = match (variants.len(), ranked.len()) {
        (n, _) if n > 2 => Some(format!(
            "{n} variants: the two with the highest conversion rates are compared"
        )),
        (_, r) if r < 2 => Some("needs two variants with exposures".to_owned()),
        _ => None,
    };
    ranked.sort_by(|a, b| {
        b.rate
            .unwrap_or(0.0)
            .total_cmp(&a.rate.unwrap_or(0.0))
            .then_with(|| a.variant.cmp(&b.variant))
    });
    let mut pair: Vec<&AbVariant> = ranked.into_iter().take(2).collect();
    pair.sort_by(|a, b| a.variant.cmp(&b.variant));
    let (z, p_value) = match pair.as_slice() {
        [a, b] => two_proportion_z(a.conversions, a.exposures, b.conversions, b.exposures),
        _ => (None, None),
    };
    Significance {
        method: AB_METHOD.to_owned(),
        compared: pair.iter().map(|v| v.variant.clone()).collect(),
        z: z.map(round6),
        p_value: p_value.map(round6),
        significant: p_value.is_some_and(|p| p < SIGNIFICANCE_LEVEL),
        note,
    }
}

/// The pooled two-proportion z-test of `x2/n2` against `x1/n1`: the z statistic and the
/// two-sided p-value, unrounded. `None` when a sample is empty or the pooled rate is 0 or 1
/// (no variance to test against).
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64) -> (Option<f64>, Option<f64>) {
    if n1 == 0 || n2 == 0 {
        return (None, None);
    }
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return (None, None);
    }
    let z = (x2 / n2 - x1 / n1) / se;
    (Some(z), Some(erfc(z.abs() / std::f64::consts::SQRT_2)))
}

/// The complementary error function to about 1e-14: the power series of erf below 2, a
/// continued fraction (modified Lentz) from 2, where the series starts losing digits.
/// `P(|Z| > z) = erfc(z / sqrt 2)`.
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        // erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            let n = f64::from(n);
            term *= -x * x / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        return 1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum;
    }
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
    let tiny = 1e-300;
    let mut f = x;
    let (mut c, mut d) = (x, 0.0);
    for n in 1..500 {
        let a = f64::from(n) / 2.0;
        d = x + a * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = x + a / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / f
}

/// Events of one type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EventTypeCount {
    /// Event type name.
    pub event_type: String,
    /// How many in the window.
    pub count: u64,
}

/// Event types by count (most first), then name.
pub fn top_events(counts: &MetricCounts) -> Vec<EventTypeCount> {
    let mut out: Vec<EventTypeCount> = counts
        .events
        .by_type
        .iter()
        .filter(|t| t.events > 0)
        .map(|t| EventTypeCount {
            event_type: t.event_type.clone(),
            count: t.events,
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.event_type.cmp(&b.event_type))
    });
    out
}

/// The chart: one row per bucket from the bucket holding the window's start to the one holding
/// its end (every bucket present), each with `date` and one count per persona label (every
/// label present, zeros included). A bucket only counts events inside the window, so the rows
/// add up to the events KPI.
pub fn chart(cfg: &Config, w: &Windows, hours: &[HourCount]) -> Vec<Map<String, Value>> {
    let bucket = w.range.bucket();
    let mut labels: Vec<String> = cfg.personas().iter().map(|p| p.label.clone()).collect();
    for h in hours {
        let l = label(cfg, &h.persona);
        if !labels.contains(&l) {
            labels.push(l);
        }
    }
    let mut counts: BTreeMap<(DateTime<Utc>, String), u64> = BTreeMap::new();
    for h in hours {
        *counts
            .entry((bucket.floor(h.hour), label(cfg, &h.persona)))
            .or_default() += h.events;
    }
    let mut rows = Vec::new();
    let mut at = bucket.floor(w.current.start);
    while at < w.current.end {
        let mut row = Map::new();
        row.insert("date".into(), Value::from(bucket.label(at)));
        for l in &labels {
            let n = counts.get(&(at, l.clone())).copied().unwrap_or(0);
            row.insert(l.clone(), Value::from(n));
        }
        rows.push(row);
        at += bucket.length();
    }
    rows
}

/// A query's searches in the two windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchQuery {
    /// The query, trimmed and lower-cased (queries are grouped that way).
    pub query: String,
    /// Searches in the window.
    pub count: u64,
    /// Searches in the window before.
    pub previous: u64,
    /// Percent change, `None` when `previous` is 0.
    pub delta_pct: Option<f64>,
    /// Searches in the window that showed no results.
    pub zero_result_count: u64,
}

/// A query that found nothing: a content gap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ZeroResultQuery {
    /// The query, trimmed and lower-cased.
    pub query: String,
    /// Searches in the window that showed no results.
    pub count: u64,
}

/// The searches figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchFigures {
    /// Every search in the two windows.
    pub total: Kpi,
    /// Most searched queries in the window (at most [`SEARCH_LIST_LIMIT`]).
    pub top: Vec<SearchQuery>,
    /// Queries with the most zero-result searches in the window.
    pub zero_results: Vec<ZeroResultQuery>,
}

/// Folds stored query texts case-insensitively (Unicode lower case, trimmed) and ranks them.
pub fn searches(counts: &[SearchCount]) -> SearchFigures {
    let mut by: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for c in counts {
        let slot = by.entry(c.query.trim().to_lowercase()).or_default();
        slot.0 += c.current;
        slot.1 += c.previous;
        slot.2 += c.zero_results;
    }
    let total = kpi(
        by.values().map(|s| s.0).sum(),
        by.values().map(|s| s.1).sum(),
    );
    let mut top: Vec<SearchQuery> = by
        .iter()
        .filter(|(_, s)| s.0 > 0)
        .map(|(q, s)| SearchQuery {
            query: q.clone(),
            count: s.0,
            previous: s.1,
            delta_pct: delta_pct(s.0, s.1),
            zero_result_count: s.2,
        })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.query.cmp(&b.query)));
    top.truncate(SEARCH_LIST_LIMIT);
    let mut zero_results: Vec<ZeroResultQuery> = by
        .iter()
        .filter(|(_, s)| s.2 > 0)
        .map(|(q, s)| ZeroResultQuery {
            query: q.clone(),
            count: s.2,
        })
        .collect();
    zero_results.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.query.cmp(&b.query)));
    zero_results.truncate(SEARCH_LIST_LIMIT);
    SearchFigures {
        total,
        top,
        zero_results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn windows_end_now_and_previous_is_the_same_length_before() {
        let now = at("2026-03-08T12:34:56Z");
        let cases = [
            (Range::Day, "2026-03-07T12:34:56Z", "2026-03-06T12:34:56Z"),
            (Range::Week, "2026-03-01T12:34:56Z", "2026-02-22T12:34:56Z"),
            (Range::Month, "2026-02-06T12:34:56Z", "2026-01-07T12:34:56Z"),
            (
                Range::Quarter,
                "2025-12-08T12:34:56Z",
                "2025-09-09T12:34:56Z",
            ),
        ];
        for (range, start, previous_start) in cases {
            let w = windows(range, now);
            assert_eq!(
                w.current,
                Window {
                    start: at(start),
                    end: now
                },
                "{range:?}"
            );
            assert_eq!(
                w.previous,
                Window {
                    start: at(previous_start),
                    end: at(start)
                },
                "{range:?}"
            );
        }
    }

    #[test]
    fn ranges_parse_by_name_only() {
        for (name, want) in [
            ("24h", Some(Range::Day)),
            ("7d", Some(Range::Week)),
            ("30d", Some(Range::Month)),
            ("90d", Some(Range::Quarter)),
            ("1d", None),
            ("30D", None),
            ("", None),
        ] {
            assert_eq!(Range::parse(name), want, "{name}");
        }
        assert_eq!(Range::known_list(), "24h, 7d, 30d, 90d");
    }

    #[test]
    fn deltas() {
        for (value, previous, want) in [
            (120, 100, Some(20.0)),
            (80, 100, Some(-20.0)),
            (100, 100, Some(0.0)),
            (5, 0, None),
            (0, 0, None),
            (0, 3, Some(-100.0)),
            (1, 3, Some(-66.666667)),
            (16240, 13600, Some(19.411765)),
        ] {
            assert_eq!(delta_pct(value, previous), want, "{value} vs {previous}");
        }
    }

    #[test]
    fn funnel_from_stage_counts() {
        let state = |stage: &str, visitors| StateCount {
            persona: "general".into(),
            explicit_persona: None,
            stage: stage.into(),
            visitors,
        };
        let f = funnel(&[
            state("unaware", 5),
            state("aware", 3),
            state("engaged", 2),
            state("customer", 2),
            state("engaged", 1),
        ]);
        let got: Vec<(&str, u64, u64, Option<f64>)> = f
            .iter()
            .map(|s| {
                (
                    s.stage.as_str(),
                    s.visitors,
                    s.reached,
                    s.conversion_from_previous,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("unaware", 5, 13, None),
                ("aware", 3, 8, Some(0.615385)),
                ("interested", 0, 5, Some(0.625)),
                ("engaged", 3, 5, Some(1.0)),
                ("considering", 0, 2, Some(0.4)),
                ("evaluating", 0, 2, Some(1.0)),
                ("customer", 2, 2, Some(1.0)),
                ("repeat", 0, 0, Some(0.0)),
                ("loyal", 0, 0, None),
                ("evangelist", 0, 0, None),
            ]
        );
    }

    #[test]
    fn z_tests_match_hand_computed_values() {
        // (x1, n1, x2, n2, z, p), z and p computed independently (pooled standard error,
        // p = erfc(|z| / sqrt 2)) and rounded to six decimals.
        let cases = [
            (82, 1020, 117, 1004, Some(2.730379), Some(0.006326)),
            (39, 410, 44, 398, Some(0.722304), Some(0.470108)),
            (10, 100, 10, 100, Some(0.0), Some(1.0)),
            (0, 10, 0, 10, None, None),
            (10, 10, 10, 10, None, None),
            (1, 0, 1, 10, None, None),
            (20, 100, 40, 100, Some(3.086067), Some(0.002028)),
        ];
        for (x1, n1, x2, n2, z, p) in cases {
            let (gz, gp) = two_proportion_z(x1, n1, x2, n2);
            assert_eq!(
                (gz.map(round6), gp.map(round6)),
                (z, p),
                "{x1}/{n1} vs {x2}/{n2}"
            );
        }
    }

    #[test]
    fn erfc_agrees_with_reference_values() {
        // Reference values of erfc to 15 significant digits.
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479500122186953),
            (1.0, 0.157299207050285),
            (2.0, 0.00467773498104727),
            (2.9, 4.10978780994589e-5),
            (3.5, 7.43098372341412e-7),
            (5.0, 1.53745979442803e-12),
            (-1.0, 1.84270079294971),
        ] {
            let got = erfc(x);
            assert!(
                ((got - want) / want).abs() < 1e-10,
                "erfc({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn more_than_two_variants_compare_the_best_two() {
        let ab = |variant: &str, exposures, conversions| AbCount {
            test_id: "t".into(),
            variant: variant.into(),
            exposures,
            conversions,
        };
        let tests = ab_tests(&[ab("c", 100, 30), ab("a", 100, 10), ab("b", 100, 20)]);
        let s = &tests[0].significance;
        assert_eq!(s.compared, vec!["b".to_owned(), "c".to_owned()]);
        assert!(s.note.as_deref().unwrap_or("").contains("3 variants"));
        assert_eq!(
            tests[0]
                .variants
                .iter()
                .map(|v| v.variant.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let one = ab_tests(&[ab("a", 5, 1)]);
        assert_eq!(one[0].significance.z, None);
        assert!(!one[0].significance.significant);
    }

    #[test]
    fn chart_has_every_bucket_and_every_persona() {
        let cfg = Config::southland();
        let now = at("2026-03-08T12:30:00Z");
        let h = |t: &str, persona: &str, events| HourCount {
            hour: at(t),
            persona: persona.into(),
            events,
        };
        let hours = [
            h("2026-03-07T12:00:00Z", "backyard", 2),
            h("2026-03-08T12:00:00Z", "lawn", 1),
            h("2026-03-08T03:00:00Z", "backyard", 4),
        ];
        let day = chart(&cfg, &windows(Range::Day, now), &hours);
        assert_eq!(
            day.len(),
            25,
            "12:00 yesterday to 12:00 today, both partial"
        );
        assert_eq!(day[0]["date"], "2026-03-07T12:00");
        assert_eq!(day[0]["Backyard Betty"], 2);
        assert_eq!(day[24]["Lawn & Garden"], 1);
        assert_eq!(day[15]["Backyard Betty"], 4);
        for row in &day {
            for label in ["Backyard Betty", "Broiler Bill", "Lawn & Garden", "General"] {
                assert!(row.contains_key(label), "{row:?}");
            }
        }
        let week = chart(&cfg, &windows(Range::Week, now), &hours);
        let dates: Vec<&str> = week.iter().filter_map(|r| r["date"].as_str()).collect();
        assert_eq!(
            dates,
            [
                "2026-03-01",
                "2026-03-02",
                "2026-03-03",
                "2026-03-04",
                "2026-03-05",
                "2026-03-06",
                "2026-03-07",
                "2026-03-08"
            ]
        );
        assert_eq!(week[7]["Backyard Betty"], 4);
        assert_eq!(week[6]["Backyard Betty"], 2);
    }

    #[test]
    fn searches_fold_case_and_rank() {
        let s = |q: &str, current, previous, zero_results| SearchCount {
            query: q.into(),
            current,
            previous,
            zero_results,
        };
        let f = searches(&[
            s("Coop Smell", 3, 1, 0),
            s("coop smell", 1, 1, 1),
            s("Ünïcode", 1, 0, 1),
            s("old", 0, 4, 0),
        ]);
        assert_eq!(
            f.total,
            Kpi {
                value: 5,
                previous: 6,
                delta_pct: Some(-16.666667)
            }
        );
        let top: Vec<(&str, u64, u64, Option<f64>, u64)> = f
            .top
            .iter()
            .map(|q| {
                (
                    q.query.as_str(),
                    q.count,
                    q.previous,
                    q.delta_pct,
                    q.zero_result_count,
                )
            })
            .collect();
        assert_eq!(
            top,
            vec![
                ("coop smell", 4, 2, Some(100.0), 1),
                ("ünïcode", 1, 0, None, 1)
            ]
        );
        let zero: Vec<(&str, u64)> = f
            .zero_results
            .iter()
            .map(|q| (q.query.as_str(), q.count))
            .collect();
        assert_eq!(zero, vec![("coop smell", 1), ("ünïcode", 1)]);
    }

    #[test]
    fn persona_shares_and_unknown_personas() {
        let cfg = Config::southland();
        let st = |persona: &str, explicit: Option<&str>, visitors| StateCount {
            persona: persona.into(),
            explicit_persona: explicit.map(Into::into),
            stage: "aware".into(),
            visitors,
        };
        let p = personas(
            &cfg,
            &[
                st("backyard", Some("backyard"), 2),
                st("backyard", None, 1),
                st("lawn", Some("backyard"), 1),
                st("retired", None, 1),
            ],
        );
        let got: Vec<(&str, &str, u64, f64, u64)> = p
            .iter()
            .map(|s| {
                (
                    s.persona.as_str(),
                    s.label.as_str(),
                    s.visitors,
                    s.share,
                    s.explicit,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("backyard", "Backyard Betty", 3, 0.6, 3),
                ("commercial", "Broiler Bill", 0, 0.0, 0),
                ("lawn", "Lawn & Garden", 1, 0.2, 0),
                ("general", "General", 0, 0.0, 0),
                ("retired", "retired", 1, 0.2, 0),
            ]
        );
    }
}
