//! Recency decay: how much a signal of a given age still counts. Bands come from configuration
//! and are validated to never rise with age. Ages are compared in whole milliseconds, so the
//! per-age form and the per-timestamp form used on the hot path agree exactly.

use crate::config::Config;
use chrono::{DateTime, Duration, Utc};

/// Age of a signal in hours; a signal from the future (clock skew) counts as brand new.
pub fn age_hours(age: Duration) -> f64 {
    (age.num_milliseconds().max(0) as f64) / 3_600_000.0
}

fn bound_ms(hours: f64) -> i64 {
    (hours * 3_600_000.0).round() as i64
}

/// The multiplier for a signal `age` old: the first band whose bound exceeds the age.
pub fn factor(cfg: &Config, age: Duration) -> f64 {
    let age_ms = age.num_milliseconds();
    cfg.decay_bands()
        .iter()
        .find(|band| band.max_age_hours.is_none_or(|h| age_ms < bound_ms(h)))
        .map_or(0.0, |band| band.factor)
}

/// The decay bands turned into absolute cut-off times for one `now`, so scoring a hundred
/// signals compares timestamps instead of doing date arithmetic per signal.
#[derive(Debug, Clone)]
pub struct DecayClock {
    bands: Vec<(Option<DateTime<Utc>>, f64)>,
}

impl DecayClock {
    /// Cut-offs for scoring at `now`.
    pub fn new(cfg: &Config, now: DateTime<Utc>) -> DecayClock {
        DecayClock {
            bands: cfg
                .decay_bands()
                .iter()
                .map(|b| {
                    let cutoff = b
                        .max_age_hours
                        .map(|h| now - Duration::milliseconds(bound_ms(h)));
                    (cutoff, b.factor)
                })
                .collect(),
        }
    }

    /// The multiplier for a signal that happened at `at`; equal to `factor(cfg, now - at)`.
    pub fn factor(&self, at: DateTime<Utc>) -> f64 {
        self.bands
            .iter()
            .find(|(cutoff, _)| cutoff.is_none_or(|c| at > c))
            .map_or(0.0, |(_, f)| *f)
    }

    /// The bands youngest first: a signal belongs to the first band whose cut-off it is
    /// after (`None`: no cut-off).
    pub fn bands(&self) -> &[(Option<DateTime<Utc>>, f64)] {
        &self.bands
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_agree_at_and_around_every_band_edge() {
        let cfg = Config::southland();
        let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
        let clock = DecayClock::new(&cfg, now);
        for hours in [0i64, 1, 24, 72, 1000] {
            for delta_ms in [-1i64, 0, 1] {
                let age = Duration::hours(hours) + Duration::milliseconds(delta_ms);
                assert_eq!(factor(&cfg, age), clock.factor(now - age), "age {age}");
            }
        }
        assert_eq!(factor(&cfg, Duration::minutes(59)), 1.5);
        assert_eq!(factor(&cfg, Duration::hours(1)), 1.0);
        assert_eq!(factor(&cfg, Duration::hours(71)), 0.7);
        assert_eq!(factor(&cfg, Duration::hours(72)), 0.3);
        assert_eq!(factor(&cfg, Duration::hours(-2)), 1.5);
    }
}
