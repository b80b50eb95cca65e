//! Scoring configuration as validated data: personas, signal weights, decay bands, the
//! event-to-signal mapping, persona hints, journey rules and contract limits.
//!
//! A TOML document is deserialised into raw structs that reject unknown fields, then checked
//! as a whole. Every problem is reported at once, and a [`Config`] can only be obtained through
//! that check, so holding one proves it is valid.

use crate::event_type::EventType;
use crate::ids::{BrandId, PersonaId, SignalKind};
use crate::journey::Stage;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The configuration the user's site runs on (`fixtures/config/southland.toml`).
pub const SOUTHLAND_TOML: &str = include_str!("../../fixtures/config/southland.toml");

/// Everything wrong with a configuration document, reported together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    /// One entry per problem, each naming the TOML path and the rule.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.problems.join("; "))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    brand_id: String,
    fallback_persona: String,
    fallback_weight_factor: f64,
    max_signals: usize,
    profile_ttl_days: u32,
    evidence_scale: f64,
    personas: Vec<RawPersona>,
    signal_weights: BTreeMap<String, f64>,
    decay: Vec<RawDecayBand>,
    events: BTreeMap<String, RawEventSignal>,
    hints: RawHints,
    limits: RawLimits,
    stages: Vec<RawStageRule>,
    /// The identity guards (`[identity]`); the defaults when absent.
    #[serde(default)]
    identity: crate::identity::IdentityRulesConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPersona {
    id: String,
    label: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecayBand {
    max_age_hours: Option<f64>,
    factor: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEventSignal {
    signal: Option<String>,
    explicit_persona: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHints {
    #[serde(default)]
    tunnels: BTreeMap<String, String>,
    #[serde(default)]
    products: BTreeMap<String, String>,
    #[serde(default)]
    collections: BTreeMap<String, String>,
    #[serde(default)]
    keywords: Vec<RawKeywords>,
    #[serde(default)]
    paths: Vec<RawPathHint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeywords {
    persona: String,
    words: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPathHint {
    prefix: String,
    persona: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_batch_events: usize,
    max_properties_bytes: usize,
    max_properties_depth: usize,
    max_future_skew_seconds: i64,
    max_event_age_hours: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStageRule {
    stage: String,
    why: String,
    #[serde(default)]
    any: Vec<RawClause>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClause {
    events: Option<Vec<String>>,
    min: Option<u32>,
    sessions: Option<u32>,
    explicit_persona: Option<bool>,
    nps_at_least: Option<u8>,
}

/// A persona: its id and the name the dashboard shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Persona {
    /// Stable id, such as `backyard`.
    pub id: PersonaId,
    /// Display name, such as `Backyard Betty`.
    pub label: String,
}

/// Signals younger than `max_age_hours` are multiplied by `factor`; the last band has no bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecayBand {
    /// Exclusive upper bound of the band in hours; `None` for the open last band.
    pub max_age_hours: Option<f64>,
    /// Multiplier applied to a signal's weight.
    pub factor: f64,
}

/// What an event type contributes to scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSignal {
    /// The signal kind it yields, if any.
    pub signal: Option<SignalKind>,
    /// The property that carries an explicit persona choice, if the event is one.
    pub explicit_persona: Option<&'static str>,
}

/// Where persona hints come from, each table mapping a value to a persona.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hints {
    /// `tunnel` property value to persona.
    pub tunnels: BTreeMap<String, PersonaId>,
    /// Product handle to persona.
    pub products: BTreeMap<String, PersonaId>,
    /// Collection handle to persona.
    pub collections: BTreeMap<String, PersonaId>,
    /// Lower-case search keywords per persona, in configuration order.
    pub keywords: Vec<(PersonaId, Vec<String>)>,
    /// URL path prefixes per persona, longest first.
    pub paths: Vec<(String, PersonaId)>,
}

/// Bounds the contract enforces on incoming events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Largest serialised `properties` object, in bytes.
    pub max_properties_bytes: usize,
    /// Deepest nesting of `properties` (the object itself is depth 1).
    pub max_properties_depth: usize,
    /// Timestamps up to this far ahead of the receive time are clock skew and are clamped.
    pub max_future_skew_seconds: i64,
    /// Events older than this, relative to the receive time, are rejected.
    pub max_event_age_hours: i64,
}

/// One clause of a stage rule: every condition present must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// Lifetime count of these event types must reach `min`.
    pub events: Option<(Vec<EventType>, u32)>,
    /// At least this many sessions.
    pub sessions: Option<u32>,
    /// The visitor made an explicit persona choice.
    pub explicit_persona: bool,
    /// The latest survey NPS score is at least this.
    pub nps_at_least: Option<u8>,
}

/// The rule for one journey stage: it matches when any clause holds.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRule {
    /// The stage this rule detects.
    pub stage: Stage,
    /// The rule in words, shown in explanations.
    pub why: String,
    /// Alternatives; empty only for the default first stage.
    pub any: Vec<Clause>,
}

/// A validated configuration. Fields are private: the only way to get one is [`Config::from_toml`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    brand_id: BrandId,
    fallback_persona: PersonaId,
    fallback_weight_factor: f64,
    max_signals: usize,
    profile_ttl_days: u32,
    evidence_scale: f64,
    personas: Vec<Persona>,
    signal_weights: BTreeMap<SignalKind, f64>,
    decay: Vec<DecayBand>,
    events: BTreeMap<EventType, EventSignal>,
    hints: Hints,
    limits: Limits,
    stages: Vec<StageRule>,
    identity: crate::identity::IdentityRules,
}

impl Config {
    /// The identity guards (`[identity]`: blocklist, test addresses, the browsers cap).
    pub fn identity_rules(&self) -> &crate::identity::IdentityRules {
        &self.identity
    }

    /// The user's configuration, shipped as the default.
    pub fn southland() -> Config {
        match Config::from_toml(SOUTHLAND_TOML) {
            Ok(cfg) => cfg,
            // The shipped file is checked by a unit test; failing here is a build defect.
            Err(e) => panic!("the bundled southland.toml is invalid: {e}"),
        }
    }

    /// Parses and validates a TOML document, reporting every problem at once.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or_else(String::new, |span| {
                let before = text.get(..span.start).unwrap_or(text);
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" (line {line}, column {column})")
            });
            ConfigError {
                problems: vec![format!("{}{at}", e.message())],
            }
        })?;
        validate(raw)
    }

    /// Tenant written to every row.
    pub fn brand_id(&self) -> &BrandId {
        &self.brand_id
    }
    /// Persona a signal without any hint counts towards.
    pub fn fallback_persona(&self) -> &PersonaId {
        &self.fallback_persona
    }
    /// Multiplier for signals that hint at no persona (they count towards the fallback).
    pub fn fallback_weight_factor(&self) -> f64 {
        self.fallback_weight_factor
    }
    /// How many signals a profile keeps.
    pub fn max_signals(&self) -> usize {
        self.max_signals
    }
    /// Days a profile lives after its last update.
    pub fn profile_ttl_days(&self) -> u32 {
        self.profile_ttl_days
    }
    /// Decayed weight at which evidence counts as about two-thirds convincing.
    pub fn evidence_scale(&self) -> f64 {
        self.evidence_scale
    }
    /// Personas in configuration order (the order ties are broken in).
    pub fn personas(&self) -> &[Persona] {
        &self.personas
    }
    /// Display label of a persona, or its id when unknown.
    pub fn persona_label<'a>(&'a self, id: &'a PersonaId) -> &'a str {
        self.personas
            .iter()
            .find(|p| &p.id == id)
            .map_or(id.as_str(), |p| p.label.as_str())
    }
    /// Whether a persona id is declared.
    pub fn has_persona(&self, id: &str) -> bool {
        self.persona_id(id).is_some()
    }
    /// The declared persona id with this text (sharing the configuration's allocation).
    pub fn persona_id(&self, id: &str) -> Option<&PersonaId> {
        self.personas
            .iter()
            .find(|p| p.id.as_str() == id)
            .map(|p| &p.id)
    }
    /// Weight of a signal kind (0 when the kind is unknown).
    pub fn weight(&self, kind: &SignalKind) -> f64 {
        self.signal_weights.get(kind).copied().unwrap_or(0.0)
    }
    /// All signal weights.
    pub fn signal_weights(&self) -> &BTreeMap<SignalKind, f64> {
        &self.signal_weights
    }
    /// Decay bands, youngest first.
    pub fn decay_bands(&self) -> &[DecayBand] {
        &self.decay
    }
    /// What an event type contributes to scoring.
    pub fn event_signal(&self, t: EventType) -> Option<&EventSignal> {
        self.events.get(&t)
    }
    /// Persona hint tables.
    pub fn hints(&self) -> &Hints {
        &self.hints
    }
    /// Contract limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// Stage rules in ladder order.
    pub fn stage_rules(&self) -> &[StageRule] {
        &self.stages
    }
}

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut p = |msg: String| problems.push(msg);

    if raw.brand_id.trim().is_empty() || raw.brand_id.len() > 64 {
        p("brand_id: must be 1 to 64 characters".into());
    }
    if !(0.0..=1.0).contains(&raw.fallback_weight_factor) {
        p("fallback_weight_factor: must be between 0 and 1".into());
    }
    if raw.max_signals == 0 || raw.max_signals > 10_000 {
        p("max_signals: must be between 1 and 10000".into());
    }
    if raw.profile_ttl_days == 0 {
        p("profile_ttl_days: must be at least 1".into());
    }
    if !(raw.evidence_scale.is_finite() && raw.evidence_scale > 0.0) {
        p("evidence_scale: must be a positive number".into());
    }

    let mut seen = BTreeSet::new();
    for (i, persona) in raw.personas.iter().enumerate() {
        if persona.id.is_empty()
            || !persona
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
        {
            p(format!(
                "personas[{i}].id: must be lower-case letters and underscores"
            ));
        }
        if !seen.insert(persona.id.as_str()) {
            p(format!(
                "personas[{i}].id: duplicate persona `{}`",
                persona.id
            ));
        }
        if persona.label.trim().is_empty() {
            p(format!("personas[{i}].label: must not be empty"));
        }
    }
    if raw.personas.is_empty() {
        p("personas: at least one persona is required".into());
    }
    let known_persona = |id: &str| raw.personas.iter().any(|q| q.id == id);
    let check_persona = |path: String, id: &str, p: &mut dyn FnMut(String)| {
        if !known_persona(id) {
            p(format!("{path}: unknown persona `{id}`"));
        }
    };
    check_persona("fallback_persona".into(), &raw.fallback_persona, &mut p);

    for (kind, w) in &raw.signal_weights {
        if !w.is_finite() || *w < 0.0 {
            p(format!(
                "signal_weights.{kind}: must be a non-negative number"
            ));
        }
    }

    if raw.decay.is_empty() {
        p("decay: at least one band is required".into());
    }
    let mut prev_age = 0.0_f64;
    let mut prev_factor = f64::INFINITY;
    for (i, band) in raw.decay.iter().enumerate() {
        let last = i + 1 == raw.decay.len();
        match (band.max_age_hours, last) {
            (None, false) => p(format!(
                "decay[{i}].max_age_hours: only the last band may be open-ended"
            )),
            (Some(_), true) => p(format!(
                "decay[{i}].max_age_hours: the last band must be open-ended (omit max_age_hours)"
            )),
            (Some(age), false) => {
                if !age.is_finite() || age <= prev_age {
                    p(format!(
                        "decay[{i}].max_age_hours: bands overlap; must be greater than {prev_age}"
                    ));
                }
                prev_age = age;
            }
            (None, true) => {}
        }
        if !band.factor.is_finite() || band.factor < 0.0 {
            p(format!("decay[{i}].factor: must be a non-negative number"));
        } else if band.factor > prev_factor {
            p(format!(
                "decay[{i}].factor: must not exceed the previous band's {prev_factor} (decay never rises with age)"
            ));
        }
        prev_factor = band.factor;
    }

    let mut events = BTreeMap::new();
    for (name, mapping) in &raw.events {
        let Some(t) = EventType::parse(name) else {
            p(format!(
                "events.{name}: unknown event type; known: {}",
                EventType::known_list()
            ));
            continue;
        };
        let signal = mapping.signal.as_ref().map(|s| SignalKind::new(s.as_str()));
        if let Some(s) = &mapping.signal {
            if !raw.signal_weights.contains_key(s) {
                p(format!(
                    "events.{name}.signal: unknown signal kind `{s}` (not in signal_weights)"
                ));
            }
        }
        let explicit = match &mapping.explicit_persona {
            None => None,
            Some(prop) => {
                match t.properties().iter().find(|spec| {
                    spec.name == prop && spec.kind == crate::event_type::PropKind::Persona
                }) {
                    Some(spec) => Some(spec.name),
                    None => {
                        p(format!(
                        "events.{name}.explicit_persona: `{prop}` is not a persona property of {name}"
                    ));
                        None
                    }
                }
            }
        };
        events.insert(
            t,
            EventSignal {
                signal,
                explicit_persona: explicit,
            },
        );
    }

    let mut hints = Hints::default();
    for (table, src, dst) in [
        ("tunnels", &raw.hints.tunnels, &mut hints.tunnels),
        ("products", &raw.hints.products, &mut hints.products),
        (
            "collections",
            &raw.hints.collections,
            &mut hints.collections,
        ),
    ] {
        for (key, persona) in src {
            check_persona(format!("hints.{table}.{key}"), persona, &mut p);
            dst.insert(key.to_lowercase(), PersonaId::new(persona.as_str()));
        }
    }
    for (i, kw) in raw.hints.keywords.iter().enumerate() {
        check_persona(format!("hints.keywords[{i}].persona"), &kw.persona, &mut p);
        if kw.words.iter().any(|w| w.trim().is_empty()) {
            p(format!(
                "hints.keywords[{i}].words: must not contain empty words"
            ));
        }
        hints.keywords.push((
            PersonaId::new(kw.persona.as_str()),
            kw.words.iter().map(|w| w.to_lowercase()).collect(),
        ));
    }
    for (i, path) in raw.hints.paths.iter().enumerate() {
        check_persona(format!("hints.paths[{i}].persona"), &path.persona, &mut p);
        if !path.prefix.starts_with('/') {
            p(format!("hints.paths[{i}].prefix: must start with `/`"));
        }
        hints.paths.push((
            path.prefix.to_lowercase(),
            PersonaId::new(path.persona.as_str()),
        ));
    }
    // Longest prefix first, so `/backyard/coops` beats `/backyard`.
    hints
        .paths
        .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));

    let l = &raw.limits;
    if l.max_batch_events == 0 || l.max_batch_events > 1000 {
        p("limits.max_batch_events: must be between 1 and 1000".into());
    }
    if l.max_properties_bytes < 64 || l.max_properties_bytes > 1 << 20 {
        p("limits.max_properties_bytes: must be between 64 and 1048576".into());
    }
    if l.max_properties_depth == 0 || l.max_properties_depth > 32 {
        p("limits.max_properties_depth: must be between 1 and 32".into());
    }
    if l.max_future_skew_seconds < 0 {
        p("limits.max_future_skew_seconds: must not be negative".into());
    }
    if l.max_event_age_hours <= 0 {
        p("limits.max_event_age_hours: must be positive".into());
    }

    let mut stages = Vec::new();
    let mut last_index: Option<usize> = None;
    for (i, rule) in raw.stages.iter().enumerate() {
        let Some(stage) = Stage::parse(&rule.stage) else {
            p(format!(
                "stages[{i}].stage: unknown stage `{}`; known: {}",
                rule.stage,
                Stage::known_list()
            ));
            continue;
        };
        let index = stage.index();
        if let Some(prev) = last_index {
            if index <= prev {
                p(format!(
                    "stages[{i}].stage: `{}` is out of ladder order or repeated",
                    rule.stage
                ));
            }
        }
        last_index = Some(index);
        if i == 0 && !rule.any.is_empty() {
            p(format!(
                "stages[{i}].any: the first stage is the default and takes no clauses"
            ));
        }
        if i > 0 && rule.any.is_empty() {
            p(format!("stages[{i}].any: needs at least one clause"));
        }
        let mut clauses = Vec::new();
        for (j, c) in rule.any.iter().enumerate() {
            let path = format!("stages[{i}].any[{j}]");
            let events = match (&c.events, c.min) {
                (Some(names), Some(min)) => {
                    let mut types = Vec::new();
                    for name in names {
                        match EventType::parse(name) {
                            Some(t) => types.push(t),
                            None => p(format!("{path}.events: unknown event type `{name}`")),
                        }
                    }
                    if min == 0 {
                        p(format!("{path}.min: must be at least 1"));
                    }
                    if names.is_empty() {
                        p(format!("{path}.events: must not be empty"));
                    }
                    Some((types, min))
                }
                (Some(_), None) => {
                    p(format!("{path}.min: required with events"));
                    None
                }
                (None, Some(_)) => {
                    p(format!("{path}.events: required with min"));
                    None
                }
                (None, None) => None,
            };
            let clause = Clause {
                events,
                sessions: c.sessions,
                explicit_persona: c.explicit_persona.unwrap_or(false),
                nps_at_least: c.nps_at_least,
            };
            if clause.events.is_none()
                && clause.sessions.is_none()
                && !clause.explicit_persona
                && clause.nps_at_least.is_none()
            {
                p(format!("{path}: a clause needs at least one condition"));
            }
            if matches!(clause.nps_at_least, Some(n) if n > 10) {
                p(format!("{path}.nps_at_least: must be between 0 and 10"));
            }
            clauses.push(clause);
        }
        stages.push(StageRule {
            stage,
            why: rule.why.clone(),
            any: clauses,
        });
    }
    if stages.len() != Stage::ALL.len() {
        p(format!(
            "stages: all {} stages must be listed once, in ladder order ({})",
            Stage::ALL.len(),
            Stage::known_list()
        ));
    }

    let identity = match crate::identity::IdentityRules::new(raw.identity.clone()) {
        Ok(rules) => Some(rules),
        Err(e) => {
            problems.extend(e.problems);
            None
        }
    };
    let Some(identity) = identity.filter(|_| problems.is_empty()) else {
        return Err(ConfigError { problems });
    };
    let personas: Vec<Persona> = raw
        .personas
        .into_iter()
        .map(|q| Persona {
            id: PersonaId::new(q.id),
            label: q.label,
        })
        .collect();
    // Every persona id the configuration hands out shares the allocation of its declaration,
    // so scoring compares pointers rather than text.
    let intern = |id: &mut PersonaId| {
        if let Some(p) = personas.iter().find(|p| p.id.as_str() == id.as_str()) {
            *id = p.id.clone();
        }
    };
    for table in [
        &mut hints.tunnels,
        &mut hints.products,
        &mut hints.collections,
    ] {
        table.values_mut().for_each(intern);
    }
    hints.keywords.iter_mut().for_each(|(id, _)| intern(id));
    hints.paths.iter_mut().for_each(|(_, id)| intern(id));
    let mut fallback_persona = PersonaId::new(raw.fallback_persona);
    intern(&mut fallback_persona);

    Ok(Config {
        identity,
        brand_id: BrandId::new(raw.brand_id),
        fallback_persona,
        fallback_weight_factor: raw.fallback_weight_factor,
        max_signals: raw.max_signals,
        profile_ttl_days: raw.profile_ttl_days,
        evidence_scale: raw.evidence_scale,
        personas,
        signal_weights: raw
            .signal_weights
            .into_iter()
            .map(|(k, v)| (SignalKind::new(k), v))
            .collect(),
        decay: raw
            .decay
            .into_iter()
            .map(|b| DecayBand {
                max_age_hours: b.max_age_hours,
                factor: b.factor,
            })
            .collect(),
        events,
        hints,
        limits: Limits {
            max_batch_events: l.max_batch_events,
            max_properties_bytes: l.max_properties_bytes,
            max_properties_depth: l.max_properties_depth,
            max_future_skew_seconds: l.max_future_skew_seconds,
            max_event_age_hours: l.max_event_age_hours,
        },
        stages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configuration_is_valid_and_carries_the_specified_figures() {
        let cfg = Config::from_toml(SOUTHLAND_TOML).expect("southland.toml is valid");
        let w = |k: &str| cfg.weight(&SignalKind::new(k));
        assert_eq!(
            [
                w("decision_engine"),
                w("purchase"),
                w("phone_call"),
                w("add_to_cart"),
                w("search"),
                w("product_view"),
                w("page_view")
            ],
            [10.0, 8.0, 7.0, 6.0, 5.0, 4.0, 1.0]
        );
        let bands: Vec<_> = cfg
            .decay_bands()
            .iter()
            .map(|b| (b.max_age_hours, b.factor))
            .collect();
        assert_eq!(
            bands,
            vec![
                (Some(1.0), 1.5),
                (Some(24.0), 1.0),
                (Some(72.0), 0.7),
                (None, 0.3)
            ]
        );
        assert_eq!(cfg.max_signals(), 100);
        assert_eq!(cfg.profile_ttl_days(), 30);
        let ids: Vec<_> = cfg.personas().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["backyard", "commercial", "lawn", "general"]);
        assert_eq!(
            cfg.persona_label(&PersonaId::new("backyard")),
            "Backyard Betty"
        );
        assert_eq!(
            cfg.persona_label(&PersonaId::new("commercial")),
            "Broiler Bill"
        );
    }

    fn problems_after(edit: impl Fn(&str) -> String) -> Vec<String> {
        match Config::from_toml(&edit(SOUTHLAND_TOML)) {
            Ok(_) => vec![],
            Err(e) => e.problems,
        }
    }

    #[test]
    fn invalid_documents_report_every_problem_with_its_path() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "page_view = 1\n",
                "page_view = -1\n",
                &["signal_weights.page_view: must be a non-negative number"],
            ),
            (
                "max_age_hours = 24\n",
                "max_age_hours = 0.5\n",
                &["decay[1].max_age_hours: bands overlap; must be greater than 1"],
            ),
            (
                "fallback_persona = \"general\"",
                "fallback_persona = \"hobbyist\"",
                &["fallback_persona: unknown persona `hobbyist`"],
            ),
            (
                "\"backyard-chickens\" = \"backyard\"",
                "\"backyard-chickens\" = \"chickens\"",
                &["hints.tunnels.backyard-chickens: unknown persona `chickens`"],
            ),
            (
                "stage = \"aware\"",
                "stage = \"awake\"",
                &[
                    "stages[1].stage: unknown stage `awake`; known: unaware, aware, interested, engaged, considering, evaluating, customer, repeat, loyal, evangelist",
                    "stages: all 10 stages must be listed once, in ladder order (unaware, aware, interested, engaged, considering, evaluating, customer, repeat, loyal, evangelist)",
                ],
            ),
            (
                "brand_id = \"southland\"",
                "brand_id = \"southland\"\ncolour = \"red\"",
                &["unknown field `colour`, expected one of `brand_id`, `fallback_persona`, `fallback_weight_factor`, `max_signals`, `profile_ttl_days`, `evidence_scale`, `personas`, `signal_weights`, `decay`, `events`, `hints`, `limits`, `stages`, `identity` (line 6, column 1)"],
            ),
        ];
        for (from, to, expected) in cases {
            assert!(SOUTHLAND_TOML.contains(from), "fixture lacks {from:?}");
            let got = problems_after(|s| s.replacen(from, to, 1));
            assert_eq!(&got, expected, "editing {from:?} -> {to:?}");
        }
    }

    #[test]
    fn several_problems_are_reported_together() {
        let got = problems_after(|s| {
            s.replacen("page_view = 1\n", "page_view = -1\n", 1)
                .replacen(
                    "fallback_persona = \"general\"",
                    "fallback_persona = \"x\"",
                    1,
                )
        });
        assert_eq!(got.len(), 2, "{got:?}");
    }
}
