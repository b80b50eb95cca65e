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
}

/// Scores plus every signal's contribution: why a visitor is who we think they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The scores.
    pub scores: Scores,
    /// Decayed points per persona before normalisation.
    pub points: BTreeMap<PersonaId, f64>,
    /// Every signal's contribution, newest first.
    pub contributions: Vec<Contribution>,
}

/// Rounds to six decimals so stored figures are tidy and stable across platforms.
pub fn round6(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

/// Scores signals as of `now` and lists what each contributed.
pub fn explain(cfg: &Config, signals: &[Signal], now: DateTime<Utc>) -> Explanation {
    let contributions: Vec<Contribution> = signals
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
    let mut points: BTreeMap<PersonaId, f64> =
        cfg.personas().iter().map(|p| (p.id.clone(), 0.0)).collect();
    for c in &contributions {
        if let Some(total) = points.get_mut(&c.persona) {
            *total = round6(*total + c.points);
        }
    }
    Explanation {
        scores: score(cfg, signals, now),
        points,
        contributions,
    }
}

/// Scores signals as of `now`. This is the hot path of every event, so it builds no
/// explanation; [`explain`] does.
pub fn score(cfg: &Config, signals: &[Signal], now: DateTime<Utc>) -> Scores {
    let sorted = signals.windows(2).all(|w| w[0].at <= w[1].at);
    score_with(cfg, signals, sorted, now)
}

/// [`score`] for signals the caller keeps in time order (a profile's window), skipping the
/// order check.
pub(crate) fn score_in_time_order(cfg: &Config, signals: &[Signal], now: DateTime<Utc>) -> Scores {
    debug_assert!(signals.windows(2).all(|w| w[0].at <= w[1].at));
    score_with(cfg, signals, true, now)
}

fn score_with(cfg: &Config, signals: &[Signal], sorted: bool, now: DateTime<Utc>) -> Scores {
    // Indexed by declaration order: this runs over every signal on every event, so it avoids
    // map lookups and allocation. Persona ids handed out by the configuration share one
    // allocation, so a pointer comparison finds them; text is the fallback for ids that were
    // deserialised from storage.
    let personas = cfg.personas();
    let mut points = vec![0.0_f64; personas.len()];
    let mut latest: Vec<Option<DateTime<Utc>>> = vec![None; personas.len()];
    let clock = decay::DecayClock::new(cfg, now);
    let mut add = |s: &Signal, factor: f64| {
        let found = personas
            .iter()
            .position(|p| p.id.shares_allocation(&s.persona))
            .or_else(|| personas.iter().position(|p| p.id == s.persona));
        if let Some(i) = found {
            points[i] += s.weight * factor;
            if latest[i].is_none_or(|t| s.at > t) {
                latest[i] = Some(s.at);
            }
        }
    };
    if sorted {
        // Each decay band is one contiguous run found by binary search, and no signal needs
        // its own date arithmetic. Newest first, so `latest` is set by a persona's first hit.
        let mut end = signals.len();
        for (cutoff, factor) in clock.bands() {
            let start = cutoff.map_or(0, |c| signals[..end].partition_point(|s| s.at <= c));
            for s in signals[start..end].iter().rev() {
                add(s, *factor);
            }
            end = start;
        }
    } else {
        for s in signals {
            add(s, clock.factor(s.at));
        }
    }
    let evidence: f64 = points.iter().sum();
    let n = personas.len() as f64;
    let prob = |i: usize| {
        if evidence > 0.0 {
            points[i] / evidence
        } else {
            1.0 / n
        }
    };

    // Ties go to the persona with the most recent signal, then to declaration order, so the
    // outcome never depends on map ordering.
    let mut ranked: Vec<usize> = (0..personas.len()).collect();
    ranked.sort_by(|&a, &b| {
        prob(b)
            .total_cmp(&prob(a))
            .then_with(|| latest[b].cmp(&latest[a]))
    });
    let (predicted, confidence) = match ranked.first() {
        Some(&top) if evidence > 0.0 => {
            let p2 = ranked.get(1).map_or(0.0, |&i| prob(i));
            let strength = evidence / (evidence + cfg.evidence_scale());
            (personas[top].id.clone(), (prob(top) - p2) * strength)
        }
        _ => (cfg.fallback_persona().clone(), 0.0),
    };

    let mut probabilities = BTreeMap::new();
    for (i, p) in personas.iter().enumerate() {
        probabilities.insert(p.id.clone(), round6(prob(i)));
    }
    Scores {
        probabilities,
        predicted,
        confidence: round6(confidence),
        evidence: round6(evidence),
    }
}
