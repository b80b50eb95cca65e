//! A person's golden profile: the replay of the union of its members' stored events as one
//! visitor. A merge is therefore a recomputation from events (every signal of both sides is
//! there, within the newest `max_signals` of the union), and a split recomputes each side from
//! its own events, exactly as before the merge: nothing is rewritten, nothing is lost.

use crate::{replay, Config, EventRow, Profile};

/// The profile of a person whose browsers stored `rows`: each event once (by event id), in
/// processing order (then event id, so the order the rows are given does not matter), each
/// applied at the time it was processed, as a rebuild of one visitor would. `None` without
/// events. The profile's `anonymous_id` is that of the person's earliest event's browser.
pub fn person_profile(cfg: &Config, rows: &[&EventRow]) -> Option<Profile> {
    let mut order: Vec<&EventRow> = rows.to_vec();
    order.sort_by_key(|r| (r.processed_at, r.event_id));
    order.dedup_by_key(|r| r.event_id);
    replay(cfg, None, order)
}
