//! The pure codec shared by every backend: core rows and profiles to and from table columns.
//! It decides the stored form of each value, so all backends store the same thing:
//! timestamps are truncated to microseconds (Postgres' precision) and written as RFC 3339 UTC
//! text, ids as lowercase hyphenated text, confidences re-rounded to six decimals on the way
//! back (the spec's `real` columns hold about seven digits), JSON payloads as JSON.

use crate::{StoreError, WriteOutcome};
use cdp_core::identity::{Edge, EdgeKind, IdKind, Identifier, Origin};
use cdp_core::persona::round6;
use cdp_core::{
    AnonymousId, BrandId, Config, EventRow, EventType, PersonaId, Profile, SearchRow, SessionId,
    Stage,
};
use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// A timestamp as stored: UTC, microseconds, `Z`. Fixed width, so text order is time order.
pub fn ts_text(t: DateTime<Utc>) -> String {
    t.trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a stored timestamp (any RFC 3339 offset; PostgREST answers `+00:00`).
pub fn parse_ts(op: &'static str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(op, format!("timestamp {s:?}: {e}")))
}

/// When a profile saved now expires: `profile_ttl_days` after its last update.
pub fn expires_at(cfg: &Config, profile: &Profile) -> DateTime<Utc> {
    profile.last_updated + Duration::days(i64::from(cfg.profile_ttl_days()))
}

/// The `cdp_events` columns the adapters write and read (all but `id`, `seq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventColumns {
    /// Tenant.
    pub brand_id: String,
    /// Idempotency key, lowercase hyphenated UUID.
    pub event_id: String,
    /// Event type name.
    pub event_type: String,
    /// Visitor.
    pub anonymous_id: String,
    /// Customer id.
    pub customer_id: Option<String>,
    /// Session.
    pub session_id: String,
    /// Event time.
    #[serde(with = "ts_serde")]
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
    /// Event-specific payload (a JSON object).
    pub properties: Value,
    /// Prediction after the event.
    pub predicted_persona: String,
    /// Its confidence.
    pub persona_confidence: f64,
    /// Explicit persona.
    pub explicit_persona: Option<String>,
    /// Stage after the event.
    pub current_stage: String,
    /// Its confidence.
    pub stage_confidence: f64,
    /// Persona probabilities (a JSON object).
    pub persona_scores: Value,
    /// Processing time.
    #[serde(with = "ts_serde")]
    pub processed_at: DateTime<Utc>,
}

/// Column names of [`EventColumns`], in declaration order.
pub const EVENT_COLUMNS: [&str; 21] = [
    "brand_id",
    "event_id",
    "event_type",
    "anonymous_id",
    "customer_id",
    "session_id",
    "timestamp",
    "page_url",
    "page_title",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "properties",
    "predicted_persona",
    "persona_confidence",
    "explicit_persona",
    "current_stage",
    "stage_confidence",
    "persona_scores",
    "processed_at",
];

impl EventColumns {
    /// The stored form of a row.
    pub fn from_row(row: &EventRow) -> EventColumns {
        EventColumns {
            brand_id: row.brand_id.as_str().to_owned(),
            event_id: uuid_text(row.event_id),
            event_type: row.event_type.as_str().to_owned(),
            anonymous_id: row.anonymous_id.as_str().to_owned(),
            customer_id: row.customer_id.clone(),
            session_id: row.session_id.as_str().to_owned(),
            timestamp: row.timestamp.trunc_subsecs(6),
            page_url: row.page_url.clone(),
            page_title: row.page_title.clone(),
            referrer: row.referrer.clone(),
            utm_source: row.utm_source.clone(),
            utm_medium: row.utm_medium.clone(),
            utm_campaign: row.utm_campaign.clone(),
            properties: Value::Object(row.properties.clone()),
            predicted_persona: row.predicted_persona.as_str().to_owned(),
            persona_confidence: row.persona_confidence,
            explicit_persona: row.explicit_persona.as_ref().map(|p| p.as_str().to_owned()),
            current_stage: row.current_stage.as_str().to_owned(),
            stage_confidence: row.stage_confidence,
            persona_scores: scores_json(&row.persona_scores),
            processed_at: row.processed_at.trunc_subsecs(6),
        }
    }

    /// Back to a core row; fails on values no adapter writes.
    pub fn into_row(self, op: &'static str) -> Result<EventRow, StoreError> {
        let event_type = EventType::parse(&self.event_type)
            .ok_or_else(|| corrupt(op, format!("unknown event_type {:?}", self.event_type)))?;
        let properties = match self.properties {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => return Err(corrupt(op, format!("properties is not an object: {other}"))),
        };
        Ok(EventRow {
            brand_id: BrandId::new(self.brand_id),
            event_id: parse_uuid(op, &self.event_id)?,
            event_type,
            anonymous_id: AnonymousId::new(self.anonymous_id),
            customer_id: self.customer_id,
            session_id: SessionId::new(self.session_id),
            timestamp: self.timestamp,
            page_url: self.page_url,
            page_title: self.page_title,
            referrer: self.referrer,
            utm_source: self.utm_source,
            utm_medium: self.utm_medium,
            utm_campaign: self.utm_campaign,
            properties,
            predicted_persona: PersonaId::new(self.predicted_persona),
            persona_confidence: round6(self.persona_confidence),
            explicit_persona: self.explicit_persona.map(PersonaId::new),
            current_stage: parse_stage(op, &self.current_stage)?,
            stage_confidence: round6(self.stage_confidence),
            persona_scores: parse_scores(op, self.persona_scores)?,
            processed_at: self.processed_at,
        })
    }
}

/// The `cdp_searches` columns (all but `id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchColumns {
    /// Tenant.
    pub brand_id: String,
    /// The event it came from.
    pub event_id: String,
    /// The query.
    pub query: String,
    /// Visitor.
    pub anonymous_id: String,
    /// Results shown, clamped to the `integer` column.
    pub results_count: i32,
    /// Page.
    pub page_url: String,
    /// Event time.
    #[serde(with = "ts_serde")]
    pub searched_at: DateTime<Utc>,
}

impl SearchColumns {
    /// The stored form of a search row.
    pub fn from_row(row: &SearchRow) -> SearchColumns {
        SearchColumns {
            brand_id: row.brand_id.as_str().to_owned(),
            event_id: uuid_text(row.event_id),
            query: row.query.clone(),
            anonymous_id: row.anonymous_id.as_str().to_owned(),
            results_count: clamp_i32(row.results_count),
            page_url: row.page_url.clone(),
            searched_at: row.searched_at.trunc_subsecs(6),
        }
    }
}

/// The `cdp_profiles` columns: summary columns for SQL, the whole profile as JSON, and when
/// the row expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileColumns {
    /// Tenant.
    pub brand_id: String,
    /// Visitor.
    pub anonymous_id: String,
    /// Customer id.
    pub customer_id: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Prediction.
    pub predicted_persona: String,
    /// Its confidence.
    pub persona_confidence: f64,
    /// Explicit persona.
    pub explicit_persona: Option<String>,
    /// Probabilities (a JSON object).
    pub persona_scores: Value,
    /// Stage.
    pub current_stage: String,
    /// Its confidence.
    pub stage_confidence: f64,
    /// Earliest event time.
    #[serde(with = "ts_serde")]
    pub first_seen: DateTime<Utc>,
    /// Latest event time.
    #[serde(with = "ts_serde")]
    pub last_seen: DateTime<Utc>,
    /// Distinct sessions.
    pub session_count: i32,
    /// Signals ever extracted.
    pub total_signals: i32,
    /// Whether the visitor is tied to a customer id or an email.
    pub identity_stitched: bool,
    /// The full serialized [`Profile`], which is what loads read back.
    pub profile: Value,
    /// `last_updated` plus the TTL.
    #[serde(with = "ts_serde")]
    pub expires_at: DateTime<Utc>,
    /// When the profile last changed (its `last_updated`; the codec reads no clock).
    #[serde(with = "ts_serde")]
    pub updated_at: DateTime<Utc>,
}

/// Column names of [`ProfileColumns`], in declaration order.
pub const PROFILE_COLUMNS: [&str; 18] = [
    "brand_id",
    "anonymous_id",
    "customer_id",
    "email",
    "predicted_persona",
    "persona_confidence",
    "explicit_persona",
    "persona_scores",
    "current_stage",
    "stage_confidence",
    "first_seen",
    "last_seen",
    "session_count",
    "total_signals",
    "identity_stitched",
    "profile",
    "expires_at",
    "updated_at",
];

impl ProfileColumns {
    /// The stored form of a profile under the configuration's TTL.
    pub fn from_profile(cfg: &Config, p: &Profile) -> Result<ProfileColumns, StoreError> {
        let profile = serde_json::to_value(p)
            .map_err(|e| corrupt("save_profiles", format!("profile to JSON: {e}")))?;
        Ok(ProfileColumns {
            brand_id: p.brand_id.as_str().to_owned(),
            anonymous_id: p.anonymous_id.as_str().to_owned(),
            customer_id: p.customer_id.clone(),
            email: p.email.clone(),
            predicted_persona: p.predicted_persona.as_str().to_owned(),
            persona_confidence: p.persona_confidence,
            explicit_persona: p.explicit_persona.as_ref().map(|x| x.as_str().to_owned()),
            persona_scores: scores_json(&p.persona_scores),
            current_stage: p.current_stage.as_str().to_owned(),
            stage_confidence: p.stage_confidence,
            first_seen: p.first_seen.trunc_subsecs(6),
            last_seen: p.last_seen.trunc_subsecs(6),
            session_count: clamp_i32(i64::from(p.session_count)),
            total_signals: clamp_i32(i64::from(p.total_signals)),
            identity_stitched: p.customer_id.is_some() || p.email.is_some(),
            profile,
            expires_at: expires_at(cfg, p).trunc_subsecs(6),
            updated_at: p.last_updated.trunc_subsecs(6),
        })
    }
}

/// Decodes the `profile` column.
pub fn profile_from_json(op: &'static str, v: Value) -> Result<Profile, StoreError> {
    serde_json::from_value(v).map_err(|e| corrupt(op, format!("profile JSON: {e}")))
}

/// Keeps the last profile per `(brand_id, anonymous_id)`, in first-seen order, so one upsert
/// statement never touches a row twice.
pub fn latest_per_visitor(profiles: &[Profile]) -> Vec<&Profile> {
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut out: Vec<&Profile> = Vec::new();
    for p in profiles {
        let key = (p.brand_id.as_str(), p.anonymous_id.as_str());
        match index.get(&key) {
            Some(&i) => out[i] = p,
            None => {
                index.insert(key, out.len());
                out.push(p);
            }
        }
    }
    out
}

/// The `(brand_id, event_id)` key of each row, which [`outcomes`] reads.
pub fn keys(rows: &[EventColumns]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| (r.brand_id.clone(), r.event_id.clone()))
        .collect()
}

/// Each row's outcome, given its `(brand_id, event_id)` key ([`keys`]) and the keys the store
/// reports as newly inserted: the first occurrence of an inserted key is `Inserted`,
/// everything else `Duplicate`.
pub fn outcomes(
    keys: &[(String, String)],
    inserted: &HashSet<(String, String)>,
) -> Vec<WriteOutcome> {
    let mut seen: HashSet<&(String, String)> = HashSet::new();
    keys.iter()
        .map(|k| {
            if seen.insert(k) && inserted.contains(k) {
                WriteOutcome::Inserted
            } else {
                WriteOutcome::Duplicate
            }
        })
        .collect()
}

/// A `cdp_identity_edges` row, as every backend stores it ([`EDGE_COLUMNS`] order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeColumns {
    /// Tenant.
    pub brand_id: String,
    /// `link` or `exclude`.
    pub edge_kind: String,
    /// One side's kind.
    pub a_kind: String,
    /// Its value.
    pub a_value: String,
    /// The other side's kind.
    pub b_kind: String,
    /// Its value.
    pub b_value: String,
    /// When (stored form, see [`ts_text`]).
    pub at: String,
    /// The event or admin action it came from.
    pub event_id: String,
    /// `event` or `admin`.
    pub origin: String,
}

/// The `cdp_identity_edges` columns, in the order the adapters write and read them. The first
/// six are the key.
pub const EDGE_COLUMNS: [&str; 9] = [
    "brand_id",
    "edge_kind",
    "a_kind",
    "a_value",
    "b_kind",
    "b_value",
    "at",
    "event_id",
    "origin",
];

impl EdgeColumns {
    /// An edge's columns.
    pub fn from_edge(brand: &BrandId, e: &Edge) -> EdgeColumns {
        EdgeColumns {
            brand_id: brand.as_str().to_owned(),
            edge_kind: e.kind.as_str().to_owned(),
            a_kind: e.a.kind.as_str().to_owned(),
            a_value: e.a.value.clone(),
            b_kind: e.b.kind.as_str().to_owned(),
            b_value: e.b.value.clone(),
            at: ts_text(e.at),
            event_id: uuid_text(e.event_id),
            origin: e.origin.as_str().to_owned(),
        }
    }

    /// The edge stored in these columns.
    pub fn into_edge(self, op: &'static str) -> Result<Edge, StoreError> {
        let kind = |k: &str| {
            IdKind::parse(k).ok_or_else(|| corrupt(op, format!("unknown identifier kind {k:?}")))
        };
        Ok(Edge {
            at: parse_ts(op, &self.at)?,
            event_id: parse_uuid(op, &self.event_id)?,
            kind: EdgeKind::parse(&self.edge_kind)
                .ok_or_else(|| corrupt(op, format!("unknown edge kind {:?}", self.edge_kind)))?,
            a: Identifier {
                kind: kind(&self.a_kind)?,
                value: self.a_value,
            },
            b: Identifier {
                kind: kind(&self.b_kind)?,
                value: self.b_value,
            },
            origin: Origin::parse(&self.origin)
                .ok_or_else(|| corrupt(op, format!("unknown edge origin {:?}", self.origin)))?,
        })
    }

    /// The values in [`EDGE_COLUMNS`] order.
    pub fn values(&self) -> [&str; 9] {
        [
            &self.brand_id,
            &self.edge_kind,
            &self.a_kind,
            &self.a_value,
            &self.b_kind,
            &self.b_value,
            &self.at,
            &self.event_id,
            &self.origin,
        ]
    }
}

/// Lowercase hyphenated UUID text, the stored form of an id.
pub fn uuid_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// Parses a stored UUID.
pub fn parse_uuid(op: &'static str, s: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(s).map_err(|e| corrupt(op, format!("event_id {s:?}: {e}")))
}

fn parse_stage(op: &'static str, s: &str) -> Result<Stage, StoreError> {
    Stage::parse(s).ok_or_else(|| corrupt(op, format!("unknown stage {s:?}")))
}

fn scores_json(scores: &BTreeMap<PersonaId, f64>) -> Value {
    Value::Object(
        scores
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), Value::from(*v)))
            .collect(),
    )
}

fn parse_scores(op: &'static str, v: Value) -> Result<BTreeMap<PersonaId, f64>, StoreError> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v.as_f64() {
                Some(f) => Ok((PersonaId::new(k), f)),
                None => Err(corrupt(op, format!("persona_scores.{k} is not a number"))),
            })
            .collect(),
        other => Err(corrupt(
            op,
            format!("persona_scores is not an object: {other}"),
        )),
    }
}

fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(if v < 0 { i32::MIN } else { i32::MAX })
}

fn corrupt(op: &'static str, message: String) -> StoreError {
    StoreError::Corrupt { op, message }
}

/// Serde for stored timestamps: written as [`ts_text`], read from any RFC 3339 offset.
mod ts_serde {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::ts_text(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdp_core::{apply, validate};
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn search_applied() -> cdp_core::Applied {
        let cfg = Config::southland();
        let now = at("2026-03-02T14:00:01.5Z");
        let raw = json!({
            "event": "search_performed",
            "event_id": "0b0e8f9e-3c1a-4d5e-9f00-1a2b3c4d5e6f",
            "anonymous_id": "v-codec",
            "session_id": "s-1",
            "timestamp": "2026-03-02T14:00:00.123456789Z",
            "page_url": "https://southlandorganics.com/search?q=chicken",
            "utm_source": "news\"letter",
            "properties": { "query": "  chicken \u{1f414} grit ", "results_count": 12 }
        });
        let event = validate(&cfg, &raw, now).expect("valid event");
        apply(&cfg, None, &event, now)
    }

    #[test]
    fn event_columns_snapshot_and_round_trip() {
        let row = search_applied().row;
        let cols = EventColumns::from_row(&row);
        insta::assert_json_snapshot!("event_columns", cols);
        let back = cols.into_row("test").expect("codec");
        // Nanoseconds are the one thing the stored form drops.
        let mut expected = row;
        expected.timestamp = expected.timestamp.trunc_subsecs(6);
        assert_eq!(back, expected);
    }

    #[test]
    fn search_and_profile_columns_snapshot() {
        let applied = search_applied();
        let search = applied.row.search().map(|s| SearchColumns::from_row(&s));
        insta::assert_json_snapshot!("search_columns", search);
        let cols =
            ProfileColumns::from_profile(&Config::southland(), &applied.profile).expect("codec");
        let summary = json!({
            "columns": PROFILE_COLUMNS,
            "anonymous_id": cols.anonymous_id,
            "current_stage": cols.current_stage,
            "expires_at": ts_text(cols.expires_at),
            "updated_at": ts_text(cols.updated_at),
            "identity_stitched": cols.identity_stitched,
        });
        insta::assert_json_snapshot!("profile_columns", summary);
        let back = profile_from_json("test", cols.profile).expect("codec");
        assert_eq!(back, applied.profile);
    }

    #[test]
    fn outcomes_mark_in_batch_repeats_as_duplicates() {
        let row = EventColumns::from_row(&search_applied().row);
        let inserted: HashSet<_> = [(row.brand_id.clone(), row.event_id.clone())].into();
        let got = outcomes(&keys(&[row.clone(), row]), &inserted);
        assert_eq!(got, vec![WriteOutcome::Inserted, WriteOutcome::Duplicate]);
    }

    #[test]
    fn real_columns_round_back_to_six_decimals() {
        for x in [0.123456_f64, 0.999999, 0.5, 0.000001, 1.0] {
            assert_eq!(round6(f64::from(x as f32)), x);
        }
    }
}
