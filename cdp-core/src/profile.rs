//! The golden profile reducer: one pure function applies a valid event to a visitor's profile
//! at a given `now`, returning the new profile and the enriched `cdp_events` row.
//!
//! The profile remembers the ids of its recent events so a replay inside that window changes
//! nothing; the store's `(brand_id, event_id)` constraint is the guarantee beyond it.

use crate::config::Config;
use crate::contract::ValidEvent;
use crate::event_type::EventType;
use crate::ids::{AnonymousId, BrandId, PersonaId, SessionId};
use crate::journey::{detect_stage, JourneyFacts, Stage, StageResult};
use crate::persona::{explain, score_in_time_order, Explanation};
use crate::signal::{extract, HintSource, Signal};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Sessions remembered to count distinct sessions.
const RECENT_SESSIONS: usize = 64;

/// A stage the visitor entered, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageChange {
    /// The stage entered.
    pub stage: Stage,
    /// Timestamp of the event that moved the visitor there (never before the previous entry).
    pub entered_at: DateTime<Utc>,
}

/// A visitor's golden profile (`VisitorData` in the sprint spec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Tenant.
    pub brand_id: BrandId,
    /// Visitor id.
    pub anonymous_id: AnonymousId,
    /// Customer id, once known.
    pub customer_id: Option<String>,
    /// Email, once given.
    pub email: Option<String>,
    /// The most recent signals in time order, at most `max_signals`.
    pub signals: Vec<Signal>,
    /// Persona probabilities at `last_updated`.
    pub persona_scores: BTreeMap<PersonaId, f64>,
    /// Behavioural prediction.
    pub predicted_persona: PersonaId,
    /// See [`crate::persona`].
    pub persona_confidence: f64,
    /// Persona the visitor chose, kept apart from the prediction.
    pub explicit_persona: Option<PersonaId>,
    /// When that choice was made (a late, older choice does not override a newer one).
    pub explicit_persona_at: Option<DateTime<Utc>>,
    /// Journey stage.
    pub current_stage: Stage,
    /// Stage confidence.
    pub stage_confidence: f64,
    /// Stage changes, oldest first.
    pub stage_history: Vec<StageChange>,
    /// Earliest event timestamp.
    pub first_seen: DateTime<Utc>,
    /// Latest event timestamp.
    pub last_seen: DateTime<Utc>,
    /// When an event was last applied (processing time).
    pub last_updated: DateTime<Utc>,
    /// Distinct sessions.
    pub session_count: u32,
    /// Signals ever extracted, including those rolled out of `signals`.
    pub total_signals: u32,
    /// Lifetime events per type.
    pub event_counts: BTreeMap<EventType, u32>,
    /// Latest outcome-survey NPS score.
    pub nps_score: Option<u8>,
    /// Ids of recent events, oldest first, for replay protection.
    pub recent_event_ids: Vec<Uuid>,
    /// Recent session ids, oldest first, for counting sessions.
    pub recent_sessions: Vec<SessionId>,
}

impl Profile {
    /// Points every persona id, signal kind and the brand at the configuration's own
    /// allocation where the text matches, as profiles built by [`apply`] already are. A
    /// profile decoded from the store carries a fresh string for each signal's persona and
    /// kind; sharing them makes it several kilobytes smaller in a cache and lets comparisons
    /// stop at the pointer. Ids the configuration does not know are left as they are.
    pub fn share_ids(&mut self, cfg: &Config) {
        let persona = |id: &mut PersonaId| {
            if let Some(own) = cfg.persona_id(id.as_str()) {
                *id = own.clone();
            }
        };
        for signal in &mut self.signals {
            persona(&mut signal.persona);
            if let Some((own, _)) = cfg.signal_weights().get_key_value(&signal.kind) {
                signal.kind = own.clone();
            }
        }
        self.persona_scores = std::mem::take(&mut self.persona_scores)
            .into_iter()
            .map(|(mut id, p)| {
                persona(&mut id);
                (id, p)
            })
            .collect();
        persona(&mut self.predicted_persona);
        if let Some(id) = &mut self.explicit_persona {
            persona(id);
        }
        if self.brand_id == *cfg.brand_id() {
            self.brand_id = cfg.brand_id().clone();
        }
    }

    /// About how many bytes this profile holds in memory, itself included: what a cache of
    /// profiles is bounded by. Counts each vector's capacity, each map entry with its share of
    /// a tree node, and each id's share of its allocation ([`PersonaId::heap_share`]). An
    /// estimate, checked against a counting allocator in `cdp-api`'s tests.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        fn vec_bytes<T>(v: &Vec<T>) -> usize {
            v.capacity() * size_of::<T>()
        }
        // A B-tree map allocates nodes of eleven slots (keys and values) plus a parent
        // pointer and lengths, about two thirds full once it grows; even one entry pays a node.
        fn map_bytes<K, V>(m: &BTreeMap<K, V>) -> usize {
            let node = 11 * (size_of::<K>() + size_of::<V>()) + 16;
            m.len().div_ceil(8) * node
        }
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        size_of::<Profile>()
            + self.brand_id.heap_share()
            + self.anonymous_id.heap_share()
            + text(&self.customer_id)
            + text(&self.email)
            + vec_bytes(&self.signals)
            + self
                .signals
                .iter()
                .map(|s| s.kind.heap_share() + s.persona.heap_share())
                .sum::<usize>()
            + map_bytes(&self.persona_scores)
            + self
                .persona_scores
                .keys()
                .map(PersonaId::heap_share)
                .sum::<usize>()
            + self.predicted_persona.heap_share()
            + self
                .explicit_persona
                .as_ref()
                .map_or(0, PersonaId::heap_share)
            + vec_bytes(&self.stage_history)
            + map_bytes(&self.event_counts)
            + vec_bytes(&self.recent_event_ids)
            + vec_bytes(&self.recent_sessions)
            + self
                .recent_sessions
                .iter()
                .map(SessionId::heap_share)
                .sum::<usize>()
    }
}

/// A `cdp_events` row: the event as received plus its enrichment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    /// Tenant.
    pub brand_id: BrandId,
    /// Idempotency key.
    pub event_id: Uuid,
    /// Event type.
    pub event_type: EventType,
    /// Visitor.
    pub anonymous_id: AnonymousId,
    /// Customer id.
    pub customer_id: Option<String>,
    /// Session.
    pub session_id: SessionId,
    /// When it happened (UTC).
    pub timestamp: DateTime<Utc>,
    /// Page URL.
    pub page_url: String,
    /// Page title.
    pub page_title: Option<String>,
    /// Referrer.
    pub referrer: Option<String>,
    /// UTM source.
    pub utm_source: Option<String>,
    /// UTM medium.
    pub utm_medium: Option<String>,
    /// UTM campaign.
    pub utm_campaign: Option<String>,
    /// Event-specific payload.
    pub properties: Map<String, Value>,
    /// Prediction after this event.
    pub predicted_persona: PersonaId,
    /// Its confidence.
    pub persona_confidence: f64,
    /// Explicit choice, if any.
    pub explicit_persona: Option<PersonaId>,
    /// Stage after this event.
    pub current_stage: Stage,
    /// Its confidence.
    pub stage_confidence: f64,
    /// Probabilities after this event.
    pub persona_scores: BTreeMap<PersonaId, f64>,
    /// Processing time.
    pub processed_at: DateTime<Utc>,
}

/// A `cdp_searches` row, for `search_performed` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRow {
    /// Tenant.
    pub brand_id: BrandId,
    /// Event it came from (idempotency key with the brand).
    pub event_id: Uuid,
    /// The query as typed, trimmed.
    pub query: String,
    /// Visitor.
    pub anonymous_id: AnonymousId,
    /// Results shown (0 when the client did not say).
    pub results_count: i64,
    /// Page.
    pub page_url: String,
    /// Event time.
    pub searched_at: DateTime<Utc>,
}

impl EventRow {
    /// The event as it was accepted, so a stored row can be applied again to rebuild a profile.
    pub fn to_valid_event(&self) -> ValidEvent {
        ValidEvent {
            brand_id: self.brand_id.clone(),
            event_id: self.event_id,
            event_type: self.event_type,
            anonymous_id: self.anonymous_id.clone(),
            session_id: self.session_id.clone(),
            timestamp: self.timestamp,
            received_at: self.processed_at,
            clock_skew_seconds: None,
            page_url: self.page_url.clone(),
            customer_id: self.customer_id.clone(),
            page_title: self.page_title.clone(),
            referrer: self.referrer.clone(),
            utm_source: self.utm_source.clone(),
            utm_medium: self.utm_medium.clone(),
            utm_campaign: self.utm_campaign.clone(),
            properties: self.properties.clone(),
        }
    }

    /// The search row this event also writes, if it is a search.
    pub fn search(&self) -> Option<SearchRow> {
        if self.event_type != EventType::SearchPerformed {
            return None;
        }
        let query = self.properties.get("query")?.as_str()?.trim().to_owned();
        Some(SearchRow {
            brand_id: self.brand_id.clone(),
            event_id: self.event_id,
            query,
            anonymous_id: self.anonymous_id.clone(),
            results_count: self
                .properties
                .get("results_count")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            page_url: self.page_url.clone(),
            searched_at: self.timestamp,
        })
    }
}

/// Whether the event changed the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied.
    Applied,
    /// The profile had already seen this event id; nothing changed.
    Duplicate,
}

/// What applying an event produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The new profile (unchanged for a duplicate).
    pub profile: Profile,
    /// The enriched row.
    pub row: EventRow,
    /// Applied or duplicate.
    pub outcome: Outcome,
    /// The stage and the rule that set it.
    pub stage: StageResult,
}

/// Whether a profile has outlived its TTL at `now`.
pub fn is_expired(cfg: &Config, profile: &Profile, now: DateTime<Utc>) -> bool {
    profile.last_updated + Duration::days(i64::from(cfg.profile_ttl_days())) < now
}

impl Profile {
    /// An empty profile for a visitor about to be seen for the first time.
    pub fn new(cfg: &Config, event: &ValidEvent) -> Profile {
        Profile {
            brand_id: event.brand_id.clone(),
            anonymous_id: event.anonymous_id.clone(),
            customer_id: None,
            email: None,
            signals: Vec::new(),
            persona_scores: BTreeMap::new(),
            predicted_persona: cfg.fallback_persona().clone(),
            persona_confidence: 0.0,
            explicit_persona: None,
            explicit_persona_at: None,
            current_stage: Stage::Unaware,
            stage_confidence: 1.0,
            stage_history: Vec::new(),
            first_seen: event.timestamp,
            last_seen: event.timestamp,
            last_updated: event.received_at,
            session_count: 0,
            total_signals: 0,
            event_counts: BTreeMap::new(),
            nps_score: None,
            recent_event_ids: Vec::new(),
            recent_sessions: Vec::new(),
        }
    }

    /// The facts the stage detector reads.
    pub fn journey_facts(&self) -> JourneyFacts<'_> {
        JourneyFacts {
            event_counts: &self.event_counts,
            session_count: self.session_count,
            has_explicit_persona: self.explicit_persona.is_some(),
            nps_score: self.nps_score,
        }
    }

    /// Scores this profile's signals as of `now`, with the explanation and the stage rule.
    pub fn explain(&self, cfg: &Config, now: DateTime<Utc>) -> (Explanation, StageResult) {
        (
            explain(cfg, &self.signals, now),
            detect_stage(cfg, &self.journey_facts()),
        )
    }
}

/// Replays stored rows onto a profile (or none): each applied at the time it was processed,
/// in the order given, as a rebuild does. One the profile already holds is a duplicate and
/// changes nothing. The one fold of stored events into a profile: cache misses, rebuilds,
/// the dashboard's live view and a person's profile all use it.
pub fn replay<'a>(
    cfg: &Config,
    profile: Option<Profile>,
    rows: impl IntoIterator<Item = &'a EventRow>,
) -> Option<Profile> {
    rows.into_iter().fold(profile, |p, row| {
        Some(apply(cfg, p, &row.to_valid_event(), row.processed_at).profile)
    })
}

/// Applies `event` to the visitor's profile (or a fresh one) as of `now`.
pub fn apply(
    cfg: &Config,
    profile: Option<Profile>,
    event: &ValidEvent,
    now: DateTime<Utc>,
) -> Applied {
    let profile = profile.filter(|p| !is_expired(cfg, p, now));
    if let Some(existing) = &profile {
        if existing.recent_event_ids.contains(&event.event_id) {
            let stage = detect_stage(cfg, &existing.journey_facts());
            return Applied {
                row: enrich(event, existing, now),
                profile: existing.clone(),
                outcome: Outcome::Duplicate,
                stage,
            };
        }
    }
    let mut p = profile.unwrap_or_else(|| Profile::new(cfg, event));

    remember(
        &mut p.recent_event_ids,
        event.event_id,
        2 * cfg.max_signals(),
    );
    if !p.recent_sessions.contains(&event.session_id) {
        p.session_count = p.session_count.saturating_add(1);
        remember(
            &mut p.recent_sessions,
            event.session_id.clone(),
            RECENT_SESSIONS,
        );
    }
    *p.event_counts.entry(event.event_type).or_insert(0) += 1;
    p.first_seen = p.first_seen.min(event.timestamp);
    p.last_seen = p.last_seen.max(event.timestamp);
    p.last_updated = now;

    // The browser's identifiers, under the identity guards: a junk value (`null`, a test
    // address) is never written on the profile.
    let rules = cfg.identity_rules();
    let usable = |kind, raw: &str| crate::identity::normalise(kind, raw, rules).ok();
    if let Some(id) = event
        .customer_id
        .as_deref()
        .and_then(|c| usable(crate::identity::IdKind::CustomerId, c))
    {
        p.customer_id = Some(id.value);
    }
    if crate::identity::IDENTITY_EVENTS.contains(&event.event_type) {
        if let Some(email) = event
            .prop_str("email")
            .and_then(|e| usable(crate::identity::IdKind::Email, e))
        {
            p.email = Some(email.value);
        }
    }
    let explicit_prop = cfg
        .event_signal(event.event_type)
        .and_then(|m| m.explicit_persona);
    if let Some(prop) = explicit_prop {
        let newer = p.explicit_persona_at.is_none_or(|at| event.timestamp >= at);
        if let (Some(persona), true) = (event.prop_str(prop), newer) {
            p.explicit_persona = Some(PersonaId::new(persona));
            p.explicit_persona_at = Some(event.timestamp);
        }
    }
    if event.event_type == EventType::OutcomeSurveyCompleted {
        if let Some(nps) = event
            .properties
            .get("nps_score")
            .and_then(Value::as_u64)
            .and_then(|n| u8::try_from(n).ok())
        {
            p.nps_score = Some(nps);
        }
    }

    let new_signals = extract(cfg, event);
    p.total_signals = p.total_signals.saturating_add(new_signals.len() as u32);
    for s in new_signals {
        if p.signals.len() >= cfg.max_signals() {
            // The window is full: the oldest signal goes, and a late signal older than all of
            // them is the oldest itself. Removing before inserting avoids growing the buffer.
            if p.signals.first().is_some_and(|oldest| s.at < oldest.at) {
                continue;
            }
            p.signals.remove(0);
        }
        // Insert in time order so a late event lands where it belongs.
        let at = p.signals.partition_point(|x| x.at <= s.at);
        p.signals.insert(at, s);
    }
    // Only the standing explicit choice counts: a persona the visitor switched away from is
    // no longer evidence for it. Only an explicit event can change that.
    if let (Some(at), Some(_)) = (p.explicit_persona_at, explicit_prop) {
        p.signals
            .retain(|s| s.hint != HintSource::Explicit || s.at == at);
    }
    // Signals are in time order, so the expired ones are a prefix.
    let horizon = now - Duration::days(i64::from(cfg.profile_ttl_days()));
    let expired = p.signals.partition_point(|s| s.at < horizon);
    p.signals.drain(..expired);
    let excess = p.signals.len().saturating_sub(cfg.max_signals());
    p.signals.drain(..excess);

    let scores = score_in_time_order(cfg, &p.signals, now);
    p.persona_scores = scores.probabilities;
    p.predicted_persona = scores.predicted;
    p.persona_confidence = scores.confidence;

    let stage = detect_stage(cfg, &p.journey_facts());
    p.stage_confidence = crate::persona::round6(stage.confidence);
    if p.stage_history.last().map(|h| h.stage) != Some(stage.stage) {
        let entered_at = p
            .stage_history
            .last()
            .map_or(event.timestamp, |h| h.entered_at.max(event.timestamp));
        p.stage_history.push(StageChange {
            stage: stage.stage,
            entered_at,
        });
    }
    p.current_stage = stage.stage;

    Applied {
        row: enrich(event, &p, now),
        profile: p,
        outcome: Outcome::Applied,
        stage,
    }
}

/// Appends to a bounded list, dropping the oldest entries first so the buffer never grows.
fn remember<T: PartialEq>(list: &mut Vec<T>, item: T, cap: usize) {
    let excess = (list.len() + 1).saturating_sub(cap);
    list.drain(..excess.min(list.len()));
    list.push(item);
}

fn enrich(event: &ValidEvent, p: &Profile, now: DateTime<Utc>) -> EventRow {
    EventRow {
        brand_id: event.brand_id.clone(),
        event_id: event.event_id,
        event_type: event.event_type,
        anonymous_id: event.anonymous_id.clone(),
        customer_id: event.customer_id.clone(),
        session_id: event.session_id.clone(),
        timestamp: event.timestamp,
        page_url: event.page_url.clone(),
        page_title: event.page_title.clone(),
        referrer: event.referrer.clone(),
        utm_source: event.utm_source.clone(),
        utm_medium: event.utm_medium.clone(),
        utm_campaign: event.utm_campaign.clone(),
        properties: event.properties.clone(),
        predicted_persona: p.predicted_persona.clone(),
        persona_confidence: p.persona_confidence,
        explicit_persona: p.explicit_persona.clone(),
        current_stage: p.current_stage,
        stage_confidence: p.stage_confidence,
        persona_scores: p.persona_scores.clone(),
        processed_at: now,
    }
}
