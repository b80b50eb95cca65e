//! Where the server's idea of "now" comes from: the system clock in production, a fixed
//! instant in tests, so dashboard answers (windows, deltas, profile expiry) are deterministic.

use chrono::{DateTime, Utc};

/// The clock handed to the router state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    System,
    /// Always this instant.
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => *t,
        }
    }
}
