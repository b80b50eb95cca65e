//! A person's golden profile: the replay of the union of its members' stored events as one
//! visitor. A merge is therefore a recomputation from events (every signal of both sides is
//! there, within the newest `max_signals` of the union), and a split recomputes each side from
//! its own events, exactly as before the merge: nothing is rewritten, nothing is lost.

use super::{IdKind, Person};
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

/// Puts the person's identifiers on its profile: of each kind, the email and customer id the
/// earliest applied link attached, not whatever a browser's last event carried (on a shared
/// browser that can be a refused second customer's). A browser no link applied to (`None`)
/// has neither.
pub fn stamp_identity(profile: &mut Profile, person: Option<&Person>) {
    let first = |kind: IdKind| {
        let p = person?;
        p.links.iter().find_map(|l| {
            [&l.a, &l.b]
                .into_iter()
                .find(|i| i.kind == kind)
                .map(|i| i.value.clone())
        })
    };
    profile.email = first(IdKind::Email);
    profile.customer_id = first(IdKind::CustomerId);
}
