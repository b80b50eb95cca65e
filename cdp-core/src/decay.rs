//! Recency decay: how much a signal of a given age still counts. Bands come from configuration
//! and are validated to never rise with age.

use crate::config::Config;
use chrono::Duration;

/// Age of a signal in hours; a signal from the future (clock skew) counts as brand new.
pub fn age_hours(age: Duration) -> f64 {
    (age.num_milliseconds().max(0) as f64) / 3_600_000.0
}

/// The multiplier for a signal `age` old: the first band whose bound exceeds the age.
pub fn factor(cfg: &Config, age: Duration) -> f64 {
    let hours = age_hours(age);
    cfg.decay_bands()
        .iter()
        .find(|band| band.max_age_hours.is_none_or(|max| hours < max))
        .map_or(0.0, |band| band.factor)
}
