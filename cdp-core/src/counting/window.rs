//! Time windows and how they split into what the stores keep: whole UTC days (day counters),
//! whole hours (hour counters) and the partial hours at the edges (read as events).

use chrono::{DateTime, Duration, DurationRound, Utc};

/// A half-open time range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant inside.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
}

impl Window {
    /// Whether nothing is inside.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// How a window is read from the hourly rollup: whole hours from the rollup, the partial hours
/// at the edges from `cdp_events`. Each edge lies inside one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourSplit {
    /// Whole hours `[start, end)` read from the rollup (empty when `start == end`).
    pub rollup: Window,
    /// The partial hour before them, read from events (may be empty).
    pub head: Window,
    /// The partial hour after them, read from events (may be empty).
    pub tail: Window,
}

/// The start of the hour holding `t`.
pub fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

/// The start of the UTC day holding `t`.
pub fn floor_day(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::days(1)).unwrap_or(t)
}

impl HourSplit {
    /// Splits `w` at whole hours.
    pub fn of(w: Window) -> HourSplit {
        let first = floor_hour(w.start);
        let first = if first < w.start {
            first + Duration::hours(1)
        } else {
            first
        };
        let last = floor_hour(w.end);
        if first > last {
            // Inside one hour: read it all from events.
            return HourSplit {
                rollup: Window {
                    start: w.end,
                    end: w.end,
                },
                head: w,
                tail: Window {
                    start: w.end,
                    end: w.end,
                },
            };
        }
        HourSplit {
            rollup: Window {
                start: first,
                end: last,
            },
            head: Window {
                start: w.start,
                end: first,
            },
            tail: Window {
                start: last,
                end: w.end,
            },
        }
    }
}

/// The finest time bucket a metrics answer needs (see [`super::reads::MetricsPlan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Hours (a chart of the last 24 hours).
    Hour,
    /// Days: whole days inside the window may come as one count each, read from the daily
    /// rollup.
    Day,
}

/// How a window is read: whole days from the daily rollup (at [`Resolution::Day`]), whole
/// hours from the hourly rollup, partial hours from `cdp_events`. The parts are disjoint and
/// cover the window exactly; empty ones have `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Whole days.
    pub days: Window,
    /// Whole hours before and after the days.
    pub hours: [Window; 2],
    /// Partial hours at the window's edges.
    pub raw: [Window; 2],
}

impl Split {
    /// Splits `w` for `resolution`.
    pub fn of(w: Window, resolution: Resolution) -> Split {
        let h = HourSplit::of(w);
        let none = Window {
            start: h.rollup.end,
            end: h.rollup.end,
        };
        let mut first_day = floor_day(h.rollup.start);
        if first_day < h.rollup.start {
            first_day += Duration::days(1);
        }
        let last_day = floor_day(h.rollup.end);
        if resolution == Resolution::Hour || first_day >= last_day {
            return Split {
                days: none,
                hours: [h.rollup, none],
                raw: [h.head, h.tail],
            };
        }
        Split {
            days: Window {
                start: first_day,
                end: last_day,
            },
            hours: [
                Window {
                    start: h.rollup.start,
                    end: first_day,
                },
                Window {
                    start: last_day,
                    end: h.rollup.end,
                },
            ],
            raw: [h.head, h.tail],
        }
    }
}

/// A window as whole UTC days plus the partial days before and after them (when no whole day
/// fits, all of it is the head).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySplit {
    /// Whole days (empty when `start == end`).
    pub days: Window,
    /// The partial day before them.
    pub head: Window,
    /// The partial day after them.
    pub tail: Window,
}

impl DaySplit {
    /// Splits `w` at UTC midnights.
    pub fn of(w: Window) -> DaySplit {
        let mut first = floor_day(w.start);
        if first < w.start {
            first += Duration::days(1);
        }
        let last = floor_day(w.end);
        let none = Window {
            start: w.end,
            end: w.end,
        };
        if first >= last {
            return DaySplit {
                days: none,
                head: w,
                tail: none,
            };
        }
        DaySplit {
            days: Window {
                start: first,
                end: last,
            },
            head: Window {
                start: w.start,
                end: first,
            },
            tail: Window {
                start: last,
                end: w.end,
            },
        }
    }
}

/// The UTC days `[first, end)` whose rows can hold events of `w`: from the day of its start to
/// the day after its end.
pub fn day_span(w: Window) -> (DateTime<Utc>, DateTime<Utc>) {
    (floor_day(w.start), floor_day(w.end) + Duration::days(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn w(a: &str, b: &str) -> Window {
        Window {
            start: at(a),
            end: at(b),
        }
    }

    #[test]
    fn hour_splits() {
        let cases = [
            // Unaligned: a partial hour at each end.
            (
                w("2026-03-01T12:30:00Z", "2026-03-08T12:30:00Z"),
                w("2026-03-01T13:00:00Z", "2026-03-08T12:00:00Z"),
                w("2026-03-01T12:30:00Z", "2026-03-01T13:00:00Z"),
                w("2026-03-08T12:00:00Z", "2026-03-08T12:30:00Z"),
            ),
            // Aligned: empty edges.
            (
                w("2026-03-01T12:00:00Z", "2026-03-02T12:00:00Z"),
                w("2026-03-01T12:00:00Z", "2026-03-02T12:00:00Z"),
                w("2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z"),
                w("2026-03-02T12:00:00Z", "2026-03-02T12:00:00Z"),
            ),
            // Inside one hour: all from events.
            (
                w("2026-03-01T12:10:00Z", "2026-03-01T12:50:00Z"),
                w("2026-03-01T12:50:00Z", "2026-03-01T12:50:00Z"),
                w("2026-03-01T12:10:00Z", "2026-03-01T12:50:00Z"),
                w("2026-03-01T12:50:00Z", "2026-03-01T12:50:00Z"),
            ),
            // Across one hour boundary without a whole hour: an edge on each side of it.
            (
                w("2026-03-01T12:10:00Z", "2026-03-01T13:50:00Z"),
                w("2026-03-01T13:00:00Z", "2026-03-01T13:00:00Z"),
                w("2026-03-01T12:10:00Z", "2026-03-01T13:00:00Z"),
                w("2026-03-01T13:00:00Z", "2026-03-01T13:50:00Z"),
            ),
        ];
        for (window, rollup, head, tail) in cases {
            assert_eq!(
                HourSplit::of(window),
                HourSplit { rollup, head, tail },
                "{window:?}"
            );
            // Each edge lies inside one hour: stores count an edge's events under its hour.
            for edge in [head, tail].iter().filter(|e| !e.is_empty()) {
                assert_eq!(
                    floor_hour(edge.start),
                    floor_hour(edge.end - Duration::nanoseconds(1)),
                    "{edge:?}"
                );
            }
        }
    }

    #[test]
    fn splits_by_resolution() {
        let window = w("2026-03-01T12:30:00Z", "2026-03-08T12:30:00Z");
        let by_day = Split::of(window, Resolution::Day);
        assert_eq!(
            by_day.days,
            w("2026-03-02T00:00:00Z", "2026-03-08T00:00:00Z")
        );
        assert_eq!(
            by_day.hours,
            [
                w("2026-03-01T13:00:00Z", "2026-03-02T00:00:00Z"),
                w("2026-03-08T00:00:00Z", "2026-03-08T12:00:00Z")
            ]
        );
        assert_eq!(
            by_day.raw,
            [
                w("2026-03-01T12:30:00Z", "2026-03-01T13:00:00Z"),
                w("2026-03-08T12:00:00Z", "2026-03-08T12:30:00Z")
            ]
        );
        let by_hour = Split::of(window, Resolution::Hour);
        assert_eq!(by_hour.days.start, by_hour.days.end);
        assert_eq!(
            by_hour.hours[0],
            w("2026-03-01T13:00:00Z", "2026-03-08T12:00:00Z")
        );
        // Less than a whole day inside: hours only.
        let short = Split::of(
            w("2026-03-01T12:30:00Z", "2026-03-02T12:30:00Z"),
            Resolution::Day,
        );
        assert_eq!(short.days.start, short.days.end);
        assert_eq!(
            short.hours[0],
            w("2026-03-01T13:00:00Z", "2026-03-02T12:00:00Z")
        );
        // Aligned to midnight: days only.
        let aligned = Split::of(
            w("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z"),
            Resolution::Day,
        );
        assert_eq!(
            aligned.days,
            w("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z")
        );
        assert!(aligned
            .hours
            .iter()
            .chain(&aligned.raw)
            .all(|p| p.start == p.end));
    }

    #[test]
    fn day_splits() {
        let s = DaySplit::of(w("2026-03-01T12:30:00Z", "2026-03-08T12:30:00Z"));
        assert_eq!(s.days, w("2026-03-02T00:00:00Z", "2026-03-08T00:00:00Z"));
        assert_eq!(s.head, w("2026-03-01T12:30:00Z", "2026-03-02T00:00:00Z"));
        assert_eq!(s.tail, w("2026-03-08T00:00:00Z", "2026-03-08T12:30:00Z"));
        let short = DaySplit::of(w("2026-03-01T12:30:00Z", "2026-03-02T12:30:00Z"));
        assert_eq!(
            short.head,
            w("2026-03-01T12:30:00Z", "2026-03-02T12:30:00Z")
        );
        assert_eq!(
            (
                short.days.start == short.days.end,
                short.tail.start == short.tail.end
            ),
            (true, true)
        );
    }

    #[test]
    fn day_spans_cover_both_edges() {
        let (a, b) = day_span(w("2026-03-01T12:30:00Z", "2026-03-08T12:30:00Z"));
        assert_eq!(
            (a, b),
            (at("2026-03-01T00:00:00Z"), at("2026-03-09T00:00:00Z"))
        );
    }
}
