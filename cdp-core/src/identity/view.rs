//! Reading the partition: which person a key names, which edge attached each of a person's
//! identifiers, and the figures the dashboard shows (people, browsers, rejections by reason).

use super::{
    normalise, Edge, IdKind, Identifier, IdentityRules, Partition, Person, PersonId, Reason,
};
use crate::AnonymousId;
use serde::Serialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What a lookup key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<'p> {
    /// A person with at least one applied link.
    Person(&'p Person),
    /// A browser no link has touched: a person of one browser (if it has events).
    Browser(AnonymousId),
}

/// The person `key` names: a person id, or any identifier of a person (an email, normalised;
/// a customer id; a browser's anonymous id), tried in that order. A key that names no linked
/// person and is a usable anonymous id is that browser alone ([`Found::Browser`]; whether it
/// has events is the caller's to check). `None` when the key is junk.
pub fn find<'p>(p: &'p Partition, key: &str, rules: &IdentityRules) -> Option<Found<'p>> {
    if let Ok(uuid) = Uuid::try_parse(key.trim()) {
        if let Some(person) = p.people.get(&PersonId(uuid)) {
            return Some(Found::Person(person));
        }
    }
    for kind in [IdKind::Email, IdKind::CustomerId, IdKind::AnonymousId] {
        if let Ok(id) = normalise(kind, key, rules) {
            if let Some(person) = p.person_of(&id) {
                return Some(Found::Person(person));
            }
        }
    }
    normalise(IdKind::AnonymousId, key, rules)
        .ok()
        .map(|id| Found::Browser(AnonymousId::new(id.value)))
}

/// Each identifier of the person with the applied link that attached it: the first link, in
/// the order applied, that touches it (the person's founding link attaches both its sides).
pub fn attachments(person: &Person) -> Vec<(&Identifier, &Edge)> {
    person
        .members
        .iter()
        .filter_map(|m| person.links.iter().find(|l| l.touches(m)).map(|l| (m, l)))
        .collect()
}

/// The person's browsers, in order.
pub fn browsers(person: &Person) -> Vec<AnonymousId> {
    person
        .members
        .iter()
        .filter(|m| m.kind == IdKind::AnonymousId)
        .map(|m| AnonymousId::new(m.value.as_str()))
        .collect()
}

/// The identity figures of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// People with at least one browser that some link joined to another identifier.
    pub linked_people: u64,
    /// Browsers that belong to those people.
    pub linked_browsers: u64,
    /// People holding two or more browsers (recognised across devices).
    pub cross_device_people: u64,
    /// Links refused, by reason (every reason named, zero included).
    pub rejections: BTreeMap<&'static str, u64>,
}

/// The figures of `p`.
pub fn summary(p: &Partition) -> Summary {
    let mut s = Summary {
        linked_people: 0,
        linked_browsers: 0,
        cross_device_people: 0,
        rejections: Reason::ALL.iter().map(|r| (r.as_str(), 0)).collect(),
    };
    for person in p.people.values() {
        let n = browsers(person).len() as u64;
        if n > 0 {
            s.linked_people += 1;
            s.linked_browsers += n;
        }
        if n > 1 {
            s.cross_device_people += 1;
        }
    }
    for r in &p.rejected {
        *s.rejections.entry(r.reason.as_str()).or_insert(0) += 1;
    }
    s
}

/// Every browser of a linked person with that person's id, in browser order: what
/// `cdp_profiles.person_id` is stamped with (a browser no applied link touched has none).
pub fn person_of_browsers(p: &Partition) -> Vec<(AnonymousId, PersonId)> {
    let mut out: Vec<(AnonymousId, PersonId)> = p
        .people
        .values()
        .flat_map(|person| browsers(person).into_iter().map(|b| (b, person.id)))
        .collect();
    out.sort();
    out
}
