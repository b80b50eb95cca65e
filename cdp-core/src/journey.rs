//! The ten journey stages and the detector that picks one: rules are configuration, evaluated
//! in ladder order, and the highest stage whose rule matches wins.

use crate::config::{Clause, Config};
use crate::event_type::EventType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A journey stage. The order of the variants is the ladder order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Seen once, no sign of interest yet.
    Unaware,
    /// Came back for more than one page.
    Aware,
    /// Looked at topic content: tunnels, searches, products, podcasts.
    Interested,
    /// Gave something: a persona choice, an email, a finished episode, or a return visit.
    Engaged,
    /// Compared products or followed a call to action.
    Considering,
    /// Put something in the cart or called.
    Evaluating,
    /// Bought once.
    Customer,
    /// Bought twice.
    Repeat,
    /// Bought three times or more across sessions.
    Loyal,
    /// A customer who would recommend us (NPS promoter).
    Evangelist,
}

impl Stage {
    /// All stages in ladder order.
    pub const ALL: [Stage; 10] = [
        Stage::Unaware,
        Stage::Aware,
        Stage::Interested,
        Stage::Engaged,
        Stage::Considering,
        Stage::Evaluating,
        Stage::Customer,
        Stage::Repeat,
        Stage::Loyal,
        Stage::Evangelist,
    ];

    /// The wire name, such as `considering`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Unaware => "unaware",
            Stage::Aware => "aware",
            Stage::Interested => "interested",
            Stage::Engaged => "engaged",
            Stage::Considering => "considering",
            Stage::Evaluating => "evaluating",
            Stage::Customer => "customer",
            Stage::Repeat => "repeat",
            Stage::Loyal => "loyal",
            Stage::Evangelist => "evangelist",
        }
    }

    /// Looks a wire name up.
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Position on the ladder, 0 for `unaware`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Comma-separated names in ladder order, for messages.
    pub fn known_list() -> String {
        Stage::ALL
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the detector looks at: lifetime facts about a visitor, not the decaying signals, so a
/// stage reached stays reached when old signals roll out of the window.
#[derive(Debug, Clone, Copy)]
pub struct JourneyFacts<'a> {
    /// Lifetime count of each event type.
    pub event_counts: &'a BTreeMap<EventType, u32>,
    /// Distinct sessions seen.
    pub session_count: u32,
    /// Whether the visitor chose a persona explicitly.
    pub has_explicit_persona: bool,
    /// Latest survey NPS score.
    pub nps_score: Option<u8>,
}

/// The detected stage, how sure the detector is, and which rule decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    /// The stage.
    pub stage: Stage,
    /// In [0.5, 1]: 0.5 when the visitor only just meets the rule, 1 when every condition is
    /// met twice over. For the default stage, 1 minus half the progress towards the next one.
    pub confidence: f64,
    /// Which clause of the stage's rule matched (`None` for the default stage).
    pub clause: Option<usize>,
}

impl StageResult {
    /// The rule that set the stage, in words (from the configuration).
    pub fn why<'a>(&self, cfg: &'a Config) -> &'a str {
        cfg.stage_rules()
            .iter()
            .find(|r| r.stage == self.stage)
            .map_or("", |r| r.why.as_str())
    }
}

/// Picks the highest stage whose rule matches the facts.
pub fn detect_stage(cfg: &Config, facts: &JourneyFacts<'_>) -> StageResult {
    let rules = cfg.stage_rules();
    for rule in rules.iter().rev() {
        let best = rule
            .any
            .iter()
            .enumerate()
            .filter_map(|(i, c)| clause_margin(c, facts).map(|m| (i, m)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, margin)) = best {
            return StageResult {
                stage: rule.stage,
                confidence: 0.5 + 0.5 * margin,
                clause: Some(i),
            };
        }
    }
    // Configuration validation guarantees the first rule exists and is the clause-less default.
    let stage = rules.first().map_or(Stage::Unaware, |r| r.stage);
    let progress = rules
        .get(1)
        .map(|next| {
            next.any
                .iter()
                .map(|c| clause_progress(c, facts))
                .fold(0.0, f64::max)
        })
        .unwrap_or(0.0);
    StageResult {
        stage,
        confidence: 1.0 - 0.5 * progress,
        clause: None,
    }
}

/// Each condition as (observed, required); boolean conditions count as 0 or twice the need.
/// A fixed array rather than a Vec: this runs for every rule on every event.
fn conditions(c: &Clause, facts: &JourneyFacts<'_>) -> [Option<(f64, f64)>; 4] {
    let events = c.events.as_ref().map(|(types, min)| {
        let n: u32 = types
            .iter()
            .map(|t| facts.event_counts.get(t).copied().unwrap_or(0))
            .sum();
        (f64::from(n), f64::from(*min))
    });
    let sessions = c
        .sessions
        .map(|min| (f64::from(facts.session_count), f64::from(min)));
    let explicit = c
        .explicit_persona
        .then_some((if facts.has_explicit_persona { 2.0 } else { 0.0 }, 1.0));
    let nps = c.nps_at_least.map(|min| {
        let ok = facts.nps_score.is_some_and(|s| s >= min);
        (if ok { 2.0 } else { 0.0 }, 1.0)
    });
    [events, sessions, explicit, nps]
}

fn ratio(observed: f64, required: f64) -> f64 {
    if required <= 0.0 {
        2.0
    } else {
        observed / required
    }
}

/// `Some(margin in [0,1])` when every condition holds.
fn clause_margin(c: &Clause, facts: &JourneyFacts<'_>) -> Option<f64> {
    let conds = conditions(c, facts);
    let mut present = conds.iter().flatten();
    if present.any(|(o, r)| ratio(*o, *r) < 1.0) {
        return None;
    }
    Some(
        conds
            .iter()
            .flatten()
            .map(|(o, r)| (ratio(*o, *r) - 1.0).min(1.0))
            .fold(1.0, f64::min),
    )
}

/// How far along a clause is, in [0,1).
fn clause_progress(c: &Clause, facts: &JourneyFacts<'_>) -> f64 {
    conditions(c, facts)
        .iter()
        .flatten()
        .map(|(o, r)| ratio(*o, *r).min(1.0))
        .fold(1.0, f64::min)
        .min(0.99)
}
