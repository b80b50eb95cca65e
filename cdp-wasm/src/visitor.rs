//! One visitor's events applied in order to their golden profile: what the Durable Object
//! runs, serialised per visitor, between loading and saving the profile. It is `cdp serve`'s
//! writer step (`cdp_core::apply` in arrival order) without the store.

use cdp_core::{apply, Config, EventRow, Outcome, Profile, ValidEvent};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// What one event did.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Applied or duplicate.
    pub outcome: Outcome,
    /// The enriched row to deliver; only for applied events (a duplicate writes nothing).
    pub row: Option<EventRow>,
}

/// The profile after a visitor's events, and what each did.
#[derive(Debug, Clone, Serialize)]
pub struct Visit {
    /// The new profile.
    pub profile: Profile,
    /// One step per event, in order.
    pub steps: Vec<Step>,
    /// When the profile expires if nothing else happens (RFC 3339).
    pub expires_at: DateTime<Utc>,
}

/// Applies `events` (one visitor's, in arrival order) to `profile` at `now`. An expired profile
/// is dropped by `apply` itself, so the 30-day expiry holds even before storage is cleaned up.
pub fn visit(
    cfg: &Config,
    mut profile: Option<Profile>,
    events: &[ValidEvent],
    now: DateTime<Utc>,
) -> Option<Visit> {
    let mut steps = Vec::with_capacity(events.len());
    for e in events {
        let applied = apply(cfg, profile.take(), e, now);
        steps.push(Step {
            outcome: applied.outcome,
            row: (applied.outcome == Outcome::Applied).then_some(applied.row),
        });
        profile = Some(applied.profile);
    }
    let profile = profile?;
    let expires_at = profile.last_updated + Duration::days(i64::from(cfg.profile_ttl_days()));
    Some(Visit {
        profile,
        steps,
        expires_at,
    })
}
