//! Which edges a stored event adds to the identity log. An event links its browser
//! (`anonymous_id`) to the customer id it carries, and, when it is one of the
//! [`IDENTITY_EVENTS`], to the email in its properties. Values are kept as sent (the contract
//! has trimmed them); [`super::resolve`] normalises them and refuses junk under the rules in
//! force when it runs, so a change of the blocklist applies to the whole log.
//!
//! The log keeps one edge per pair of identifiers and kind, the earliest (by time, then event
//! id): a browser that carries its customer id on every page view adds one edge, not one per
//! event, and a repeated or late event never changes which event attached an identifier
//! unless it is earlier. [`batch_edges`] applies that rule within a batch; the stores apply it
//! against what they hold with a keyed upsert that keeps the smaller `(at, event_id)`.

use super::{Edge, EdgeKind, IdKind, Identifier};
use crate::{BrandId, EventRow, EventType};
use std::collections::HashMap;

/// The event types whose `email` property links the browser to that email: the tracker's
/// `cdp.identify`, an email signup, and the Shopify order-status page's identity event.
pub const IDENTITY_EVENTS: [EventType; 3] = [
    EventType::Identify,
    EventType::EmailSignup,
    EventType::OrderStatusViewed,
];

/// The links one stored event makes, sides in canonical order.
pub fn edges_of(row: &EventRow) -> Vec<Edge> {
    let browser = || Identifier {
        kind: IdKind::AnonymousId,
        value: row.anonymous_id.as_str().to_owned(),
    };
    let mut out = Vec::new();
    let mut link = |kind: IdKind, value: &str| {
        out.push(Edge::new(
            EdgeKind::Link,
            row.timestamp,
            row.event_id,
            browser(),
            Identifier {
                kind,
                value: value.to_owned(),
            },
        ));
    };
    if let Some(customer) = &row.customer_id {
        link(IdKind::CustomerId, customer);
    }
    if IDENTITY_EVENTS.contains(&row.event_type) {
        if let Some(email) = row.properties.get("email").and_then(|v| v.as_str()) {
            link(IdKind::Email, email);
        }
    }
    out
}

/// The edges a batch of rows makes, each with its brand: [`earliest_per_pair`] of every row's
/// [`edges_of`].
pub fn batch_edges<'r>(rows: impl IntoIterator<Item = &'r EventRow>) -> Vec<(BrandId, Edge)> {
    earliest_per_pair(
        rows.into_iter()
            .flat_map(|row| edges_of(row).into_iter().map(|e| (row.brand_id.clone(), e))),
    )
}

/// The log's rule within one write: each pair of identifiers and kind once per brand, at its
/// earliest edge (time, then event id), in the order first met. The stores keep the same rule
/// against what they hold, and an upsert may touch a row only once per statement.
pub fn earliest_per_pair(edges: impl IntoIterator<Item = (BrandId, Edge)>) -> Vec<(BrandId, Edge)> {
    let mut out: Vec<(BrandId, Edge)> = Vec::new();
    let mut at: HashMap<(BrandId, EdgeKind, Identifier, Identifier), usize> = HashMap::new();
    for (brand, e) in edges {
        let key = (brand, e.kind, e.a.clone(), e.b.clone());
        match at.get(&key) {
            Some(&i) => {
                if (e.at, e.event_id) < (out[i].1.at, out[i].1.event_id) {
                    out[i].1 = e;
                }
            }
            None => {
                out.push((key.0.clone(), e));
                at.insert(key, out.len() - 1);
            }
        }
    }
    out
}
