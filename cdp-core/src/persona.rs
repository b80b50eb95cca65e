//! Persona scoring: weight times recency decay, summed per persona and normalised to a
//! probability distribution, with every contributing signal listed as the explanation.
//!
//! Confidence is `(p1 - p2) * E / (E + k)`: the margin between the top two personas, scaled
//! by how much evidence there is (`E`, the total decayed weight; `k`, the configured
//! `evidence_scale`). A margin alone would call one page view 100% certain; evidence alone
//! would call a visitor split evenly between two personas certain. The rational form avoids
//! transcendental functions so native and wasm builds agree to the bit.

use crate::config::Config;
use crate::decay;
use crate::event_type::EventType;
use crate::ids::{PersonaId, SignalKind};
use crate::signal::{HintSource, Signal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// How one signal moved the scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// Source event.
    pub event_id: Uuid,
    /// Its type.
    pub event_type: EventType,
    /// Signal kind.
    pub kind: SignalKind,
    /// Persona credited.
    pub persona: PersonaId,
    /// Why that persona.
    pub hint: HintSource,
    /// Base weight.
    pub weight: f64,
    /// Age at scoring time, in hours.
    pub age_hours: f64,
    /// Decay multiplier for that age.
    pub decay: f64,
    /// `weight * decay`.
    pub points: f64,
}

/// A probability distribution over personas, the prediction, and its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Every configured persona's probability; they sum to 1.
    pub probabilities: BTreeMap<PersonaId, f64>,
    /// Most probable persona (ties go to the one declared first).
    pub predicted: PersonaId,
    /// See the module documentation.
    pub confidence: f64,
    /// Total decayed weight behind the distribution.
    pub evidence: f64,
    /// Points per persona before normalisation.
    pub points: BTreeMap<PersonaId, f64>,
}

/// Scores plus every signal's contribution: why a visitor is who we think they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The scores.
    pub scores: Scores,
    /// Every signal's contribution, newest first.
    pub contributions: Vec<Contribution>,
}

/// Rounds to six decimals so stored figures are tidy and stable across platforms.
pub fn round6(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

/// Scores signals as of `now` and lists what each contributed.
pub fn explain(cfg: &Config, signals: &[Signal], now: DateTime<Utc>) -> Explanation {
    let contributions = signals
        .iter()
        .rev()
        .map(|s| {
            let age = now - s.at;
            let d = decay::factor(cfg, age);
            Contribution {
                event_id: s.event_id,
                event_type: s.event_type,
                kind: s.kind.clone(),
                persona: s.persona.clone(),
                hint: s.hint,
                weight: s.weight,
                age_hours: round6(decay::age_hours(age)),
                decay: d,
                points: round6(s.weight * d),
            }
        })
        .collect();
    Explanation {
        scores: score(cfg, signals, now),
        contributions,
    }
}

/// Scores signals as of `now`. This is the hot path of every event, so it builds no
/// explanation; [`explain`] does.
pub fn score(cfg: &Config, signals: &[Signal], now: DateTime<Utc>) -> Scores {
    let mut points: BTreeMap<PersonaId, f64> =
        cfg.personas().iter().map(|p| (p.id.clone(), 0.0)).collect();
    let mut latest: BTreeMap<&PersonaId, DateTime<Utc>> = BTreeMap::new();
    for s in signals {
        let pts = s.weight * decay::factor(cfg, now - s.at);
        if let Some(total) = points.get_mut(&s.persona) {
            *total += pts;
        }
        let seen = latest.entry(&s.persona).or_insert(s.at);
        *seen = (*seen).max(s.at);
    }
    let evidence: f64 = points.values().sum();
    let n = cfg.personas().len() as f64;
    let probabilities: BTreeMap<PersonaId, f64> = points
        .iter()
        .map(|(p, v)| {
            let prob = if evidence > 0.0 {
                v / evidence
            } else {
                1.0 / n
            };
            (p.clone(), prob)
        })
        .collect();

    // Ties go to the persona with the most recent signal, then to declaration order, so the
    // outcome never depends on map ordering.
    let mut ranked: Vec<(&PersonaId, f64)> = cfg
        .personas()
        .iter()
        .map(|p| (&p.id, probabilities.get(&p.id).copied().unwrap_or(0.0)))
        .collect();
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| latest.get(b.0).cmp(&latest.get(a.0)))
    });
    let (predicted, confidence) = if evidence > 0.0 {
        let p1 = ranked.first().map_or(0.0, |r| r.1);
        let p2 = ranked.get(1).map_or(0.0, |r| r.1);
        let strength = evidence / (evidence + cfg.evidence_scale());
        (
            ranked
                .first()
                .map_or_else(|| cfg.fallback_persona().clone(), |r| r.0.clone()),
            (p1 - p2) * strength,
        )
    } else {
        (cfg.fallback_persona().clone(), 0.0)
    };

    Scores {
        probabilities: probabilities
            .into_iter()
            .map(|(p, v)| (p, round6(v)))
            .collect(),
        predicted,
        confidence: round6(confidence),
        evidence: round6(evidence),
        points: points.into_iter().map(|(p, v)| (p, round6(v))).collect(),
    }
}
