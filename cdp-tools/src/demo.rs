//! `cdp demo`: realistic synthetic traffic, sent through the real `/collect` endpoint.
//!
//! Each visitor gets a persona and one to four sessions spread over the last `days` days (at
//! most 7, because the contract rejects events older than 168 hours). Sessions follow a
//! plausible journey whose intent grows with each visit: a landing page with UTM tags, persona
//! pages, searches with persona keywords, product views of the persona's products (the hints in
//! the Southland configuration), and, later, carts, purchases, calls, sign-ups and surveys.
//! Everything is drawn from a seeded generator, so the same seed gives the same traffic.

use crate::client::{ClientError, Collector};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

/// The newest a demo can reach back, in days (the contract's `max_event_age_hours` is 168).
pub const MAX_DAYS: u32 = 7;
const SITE: &str = "https://www.southlandorganics.com";

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The arguments are out of range.
    #[error("{0}")]
    Invalid(String),
    /// The collector could not be reached or refused a batch.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// What the demo sent and how the collector answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    /// Visitors simulated.
    pub visitors: usize,
    /// Events sent.
    pub events: usize,
    /// Accepted by the collector.
    pub accepted: usize,
    /// Already stored.
    pub duplicate: usize,
    /// Rejected (should be zero; the first few problems are logged).
    pub rejected: usize,
}

/// A small, seeded generator (SplitMix64): deterministic and dependency-free.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One item of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A random UUID (version 4 layout) from this generator.
    pub fn uuid(&mut self) -> String {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let bytes = ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string()
    }
}

struct PersonaKit {
    id: &'static str,
    tunnel: &'static str,
    path: &'static str,
    collection: &'static str,
    products: &'static [&'static str],
    searches: &'static [&'static str],
    pages: &'static [&'static str],
}

const KITS: [PersonaKit; 4] = [
    PersonaKit {
        id: "backyard",
        tunnel: "backyard-chickens",
        path: "/backyard",
        collection: "backyard-poultry",
        products: &["hen-helper", "big-ole-bird", "poultry-shield-quart"],
        searches: &[
            "hens not laying eggs",
            "coop smell",
            "chick starter",
            "flock health",
        ],
        pages: &[
            "/backyard/egg-production",
            "/backyard/coop-care",
            "/blogs/raising-chicks",
        ],
    },
    PersonaKit {
        id: "commercial",
        tunnel: "commercial-poultry",
        path: "/commercial",
        collection: "commercial-poultry",
        products: &["poultryshield-gallon", "litter-life", "catalyst-broiler"],
        searches: &[
            "ammonia in broiler houses",
            "litter treatment",
            "grower results",
        ],
        pages: &[
            "/commercial/litter-management",
            "/commercial/broiler-performance",
            "/commercial/case-studies",
        ],
    },
    PersonaKit {
        id: "lawn",
        tunnel: "lawn-garden",
        path: "/lawn",
        collection: "lawn-and-garden",
        products: &["mother-load", "jump-start", "humate-soil-conditioner"],
        searches: &[
            "organic lawn fertilizer",
            "soil humate",
            "garden soil health",
            "turf greening",
        ],
        pages: &[
            "/lawn/soil-biology",
            "/lawn/spring-lawn-care",
            "/blogs/garden-tips",
        ],
    },
    PersonaKit {
        id: "general",
        tunnel: "backyard-chickens",
        path: "/pages",
        collection: "all",
        products: &["hen-helper", "mother-load", "litter-life"],
        searches: &["organic products", "shipping", "about southland"],
        pages: &["/pages/about", "/pages/contact", "/blogs/news"],
    },
];

const CAMPAIGNS: [(&str, &str, &str); 4] = [
    ("google", "cpc", "brand-search"),
    ("facebook", "paid_social", "spring-flock"),
    ("newsletter", "email", "weekly-tips"),
    ("youtube", "video", "podcast-promo"),
];

/// One visitor's whole journey as raw events (the JSON the tracker would send).
pub fn visitor_events(rng: &mut Rng, index: usize, now: DateTime<Utc>, days: u32) -> Vec<Value> {
    let kit = match rng.below(10) {
        0..=3 => &KITS[0],
        4..=5 => &KITS[1],
        6..=8 => &KITS[2],
        _ => &KITS[3],
    };
    let anon = rng.uuid();
    let window_secs = i64::from(days) * 86_400 - 15 * 60;
    let mut t = now - Duration::seconds(window_secs.max(3600))
        + Duration::seconds(rng.below(window_secs.max(3600) as u64 - 3000) as i64);
    let sessions = 1 + rng.below(4) as usize;
    let mut out = Vec::new();
    let mut bought = false;
    for s in 0..sessions {
        if t > now - Duration::minutes(5) {
            break;
        }
        let session = rng.uuid();
        let mut ev = Ev {
            anon: &anon,
            session: &session,
            at: t,
            utm: if rng.chance(0.6) {
                Some(*rng.pick(&CAMPAIGNS))
            } else {
                None
            },
            first: true,
            rng: Rng::new(rng.next_u64()),
            out: &mut out,
            now,
        };
        // Landing.
        match rng.below(3) {
            0 => ev.push("homepage_view", "/", json!({})),
            1 => ev.push(
                "tunnel_viewed",
                &format!("/tunnels/{}", kit.tunnel),
                json!({"tunnel": kit.tunnel}),
            ),
            _ => ev.push("page_view", rng_page(rng, kit), json!({})),
        }
        if s == 0 && kit.id != "general" && rng.chance(0.3) {
            ev.push(
                "persona_path_selected",
                "/",
                json!({"persona": kit.id, "source": "decision_engine"}),
            );
        }
        let exposed = rng.chance(0.3).then(|| *rng.pick(&["a", "b"]));
        if let Some(variant) = exposed {
            ev.push(
                "ab_test_exposure",
                "/",
                json!({"test_id": "hero-copy-2026", "variant": variant}),
            );
        }
        for _ in 0..1 + rng.below(3) {
            ev.push("page_view", rng_page(rng, kit), json!({}));
        }
        if rng.chance(0.5) {
            let q = *rng.pick(kit.searches);
            ev.push(
                "search_performed",
                "/search",
                json!({"query": q, "results_count": rng.below(40)}),
            );
        }
        for _ in 0..rng.below(2 + s as u64) {
            let product = *rng.pick(kit.products);
            let path = format!("/products/{product}");
            ev.push("product_view", &path, json!({"product_id": product, "product_handle": product, "collection": kit.collection}));
            if rng.chance(0.4) {
                ev.push(
                    "product_clicked",
                    &format!("/collections/{}", kit.collection),
                    json!({"product_id": product, "product_handle": product}),
                );
            }
        }
        if rng.chance(0.25) {
            ev.push("hero_cta_clicked", &format!("/tunnels/{}", kit.tunnel), json!({"tunnel": kit.tunnel, "cta_text": "Shop now", "destination": format!("{SITE}/collections/{}", kit.collection)}));
        }
        if rng.chance(0.15) {
            let episode = *rng.pick(&["ep-101-litter", "ep-102-soil", "ep-103-flock"]);
            ev.push(
                "podcast_play",
                "/podcast",
                json!({"episode_slug": episode, "duration": 1800 + rng.below(1200)}),
            );
            if rng.chance(0.5) {
                ev.push(
                    "podcast_complete",
                    "/podcast",
                    json!({"episode_slug": episode}),
                );
            }
        }
        if rng.chance(0.1) {
            ev.push(
                "email_signup",
                "/",
                json!({"source": "footer", "email": format!("visitor{index}@example.com")}),
            );
        }
        if kit.id == "commercial" && rng.chance(0.2) {
            ev.push(
                "phone_call",
                "/pages/contact",
                json!({"source": "click_to_call"}),
            );
        }
        if (s > 0 || rng.chance(0.15)) && rng.chance(0.35) {
            let product = *rng.pick(kit.products);
            ev.push("add_to_cart", &format!("/products/{product}"), json!({"product_id": product, "product_handle": product, "quantity": 1 + rng.below(3)}));
            if rng.chance(0.5) {
                bought = true;
                ev.push("purchase", "/checkout/thank-you", json!({"order_id": format!("demo-{}", rng.below(1_000_000)), "products": [product], "value": 20 + rng.below(180), "currency": "USD"}));
            }
        }
        // The hero copy under test converts (a click through to the shop) a little better in
        // variant b, so the dashboard's A/B table has a real difference to test.
        if let Some(variant) = exposed {
            if rng.chance(if variant == "b" { 0.16 } else { 0.10 }) {
                ev.push(
                    "ab_test_conversion",
                    "/",
                    json!({"test_id": "hero-copy-2026", "variant": variant}),
                );
            }
        }
        if bought && rng.chance(0.2) {
            ev.push("outcome_survey_completed", "/survey", json!({"survey_id": "post-purchase-v1", "persona": kit.id, "nps_score": 6 + rng.below(5)}));
        }
        if kit.id != "general" && rng.chance(0.03) {
            let other = rng.pick(&KITS[..3]).id;
            ev.push(
                "persona_changed",
                "/",
                json!({"from_persona": kit.id, "to_persona": other}),
            );
        }
        // Next visit two hours to two days later.
        t = ev.at + Duration::seconds(7200 + rng.below(46 * 3600) as i64);
    }
    out
}

fn rng_page<'a>(rng: &mut Rng, kit: &'a PersonaKit) -> &'a str {
    if rng.chance(0.3) {
        kit.path
    } else {
        kit.pages[rng.below(kit.pages.len() as u64) as usize]
    }
}

struct Ev<'a> {
    anon: &'a str,
    session: &'a str,
    at: DateTime<Utc>,
    utm: Option<(&'static str, &'static str, &'static str)>,
    first: bool,
    rng: Rng,
    out: &'a mut Vec<Value>,
    now: DateTime<Utc>,
}

impl Ev<'_> {
    fn push(&mut self, event: &str, path: &str, properties: Value) {
        self.at = (self.at + Duration::seconds(5 + self.rng.below(120) as i64)).min(self.now);
        let mut e = Map::new();
        e.insert("v".into(), json!(1));
        e.insert("event".into(), json!(event));
        e.insert("event_id".into(), json!(self.rng.uuid()));
        e.insert("anonymous_id".into(), json!(self.anon));
        e.insert("session_id".into(), json!(self.session));
        e.insert(
            "timestamp".into(),
            json!(self.at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        e.insert("page_url".into(), json!(format!("{SITE}{path}")));
        e.insert("page_title".into(), json!(title(path)));
        if self.first {
            if let Some((source, medium, campaign)) = self.utm {
                e.insert("utm_source".into(), json!(source));
                e.insert("utm_medium".into(), json!(medium));
                e.insert("utm_campaign".into(), json!(campaign));
                e.insert("referrer".into(), json!(format!("https://{source}.com/")));
            }
            self.first = false;
        }
        e.insert("properties".into(), properties);
        self.out.push(Value::Object(e));
    }
}

fn title(path: &str) -> String {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if last.is_empty() {
        "Southland Organics".to_owned()
    } else {
        format!("{} | Southland Organics", last.replace('-', " "))
    }
}

/// Every event of `visitors` synthetic visitors, visitor by visitor, as of `now`.
pub fn generate(visitors: usize, days: u32, seed: u64, now: DateTime<Utc>) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    (0..visitors)
        .flat_map(|i| visitor_events(&mut rng, i, now, days))
        .collect()
}

/// Generates the traffic and posts it in batches with a progress bar.
pub async fn run(
    collector: &Collector,
    visitors: usize,
    days: u32,
    seed: u64,
    batch: usize,
) -> Result<DemoSummary, DemoError> {
    if days == 0 || days > MAX_DAYS {
        return Err(DemoError::Invalid(format!(
            "--days must be from 1 to {MAX_DAYS}: the contract rejects events older than 168 hours"
        )));
    }
    if batch == 0 || batch > 100 {
        return Err(DemoError::Invalid("--batch must be from 1 to 100".into()));
    }
    let events = generate(visitors, days, seed, Utc::now());
    let bar = ProgressBar::new(events.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} events ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = DemoSummary {
        visitors,
        events: events.len(),
        ..DemoSummary::default()
    };
    for chunk in events.chunks(batch) {
        let reply = collector.post(chunk).await?;
        summary.accepted += reply.accepted;
        summary.duplicate += reply.duplicate;
        summary.rejected += reply.rejected;
        for e in reply
            .events
            .iter()
            .filter(|e| !e.problems.is_empty())
            .take(3)
        {
            tracing::warn!(event_id = ?e.event_id, problems = ?e.problems, "demo event rejected");
        }
        bar.inc(chunk.len() as u64);
        bar.set_message(format!("{} accepted", summary.accepted));
    }
    bar.finish();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdp_core::{validate, Config};

    #[test]
    fn generated_traffic_passes_the_contract_and_is_repeatable() {
        let cfg = Config::southland();
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let events = generate(300, 7, 7, now);
        assert!(events.len() > 1500, "{} events", events.len());
        for e in &events {
            if let Err(r) = validate(&cfg, e, now) {
                panic!("{r}: {e}");
            }
        }
        assert_eq!(events, generate(300, 7, 7, now));
        let types: std::collections::BTreeSet<&str> =
            events.iter().filter_map(|e| e["event"].as_str()).collect();
        assert!(types.len() >= 17, "{types:?}");
    }
}
