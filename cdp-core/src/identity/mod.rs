//! Identity resolution as data (issue 15, maturity level 2): which identifiers (browsers,
//! emails, customer ids) belong to one person. Pure: the input is the append-only log of
//! [`Edge`]s, each from a stored event; [`resolve`] gives the partition into people and every
//! edge it refused with the reason. Nothing here rewrites stored data, so a split is one more
//! edge (an exclusion) and a recomputation.
//!
//! The rules that make the answer independent of arrival order:
//!
//! - identical edges count once (replaying an edge changes nothing);
//! - exclusions apply whenever they arrived: two identifiers an exclusion separates are never in
//!   one person;
//! - links are applied in the order of their time, then their event id, then their
//!   identifiers: a total order on what the edges say, not on when they were delivered. A link
//!   that would break a guard when its turn comes is rejected with its reason and kept (see
//!   [`Rejected`]); the earlier claim wins. So on a shared device, the customer who was linked
//!   to the browser first keeps it, and the browser's later events count towards that person;
//!   the second customer's login on it is rejected (`second_customer_id`), never merged; and
//!   the links of one event stand or fall together, so that login's email (and with it the
//!   second customer's other browsers) does not join the first customer's person either;
//! - a person's id is that of the earliest link that formed it ([`PersonId`], a UUID v5 of that
//!   link's event id, never of an identifier value); when two people merge, the one formed
//!   earlier keeps its id.

mod erase;
mod guards;
mod log;
mod profile;
mod view;

pub use erase::{tombstone, Erasure, Tombstone, TombstoneKey, Tombstones, MIN_KEY_BYTES};
pub use guards::{normalise, IdentityRules, IdentityRulesConfig, Junk};
pub use log::{batch_edges, earliest_per_pair, edges_of, IDENTITY_EVENTS};
pub use profile::{person_profile, stamp_identity};
pub use view::{attachments, browsers, find, person_of_browsers, summary, Found, Summary};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// What an identifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// A browser (the tracker's `anonymous_id`).
    AnonymousId,
    /// An email address (normalised: trimmed, lower-cased).
    Email,
    /// The shop's customer id (Shopify's).
    CustomerId,
}

impl IdKind {
    /// The kind's name in data and config.
    pub fn as_str(&self) -> &'static str {
        match self {
            IdKind::AnonymousId => "anonymous_id",
            IdKind::Email => "email",
            IdKind::CustomerId => "customer_id",
        }
    }

    /// The kind a name means, if any.
    pub fn parse(name: &str) -> Option<IdKind> {
        [IdKind::AnonymousId, IdKind::Email, IdKind::CustomerId]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A normalised identifier (see [`normalise`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// Its kind.
    pub kind: IdKind,
    /// Its normalised value.
    pub value: String,
}

/// What an edge says about its two identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// They are one person (from `identify`, `email_signup`, an order, an admin merge).
    Link,
    /// They are never one person (an admin split).
    Exclude,
}

impl EdgeKind {
    /// The kind's name in data.
    pub fn as_str(&self) -> &'static str {
        match self {
            EdgeKind::Link => "link",
            EdgeKind::Exclude => "exclude",
        }
    }

    /// The kind a name means, if any.
    pub fn parse(name: &str) -> Option<EdgeKind> {
        [EdgeKind::Link, EdgeKind::Exclude]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// Where an edge came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A stored event (its `event_id`).
    Event,
    /// An admin's merge or split (`event_id` is the action's id).
    Admin,
}

impl Origin {
    /// The origin's name in data.
    pub fn as_str(&self) -> &'static str {
        match self {
            Origin::Event => "event",
            Origin::Admin => "admin",
        }
    }

    /// The origin a name means, if any.
    pub fn parse(name: &str) -> Option<Origin> {
        [Origin::Event, Origin::Admin]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// One entry of the identity log: two identifiers, what it says about them, the event (or
/// admin action) it came from and when.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Edge {
    /// When it happened (the event's time): the order links are applied in.
    pub at: DateTime<Utc>,
    /// The event it came from.
    pub event_id: Uuid,
    /// Link or exclusion.
    pub kind: EdgeKind,
    /// One side.
    pub a: Identifier,
    /// The other side.
    pub b: Identifier,
    /// An event's or an admin's.
    pub origin: Origin,
}

impl Edge {
    /// An event's edge with its sides in canonical order (`a` <= `b`), so one pair of
    /// identifiers is one key however it was written.
    pub fn new(
        kind: EdgeKind,
        at: DateTime<Utc>,
        event_id: Uuid,
        x: Identifier,
        y: Identifier,
    ) -> Edge {
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        Edge {
            at,
            event_id,
            kind,
            a,
            b,
            origin: Origin::Event,
        }
    }

    /// The same edge with another origin.
    pub fn from_origin(self, origin: Origin) -> Edge {
        Edge { origin, ..self }
    }

    /// Whether `id` is one of its sides.
    pub fn touches(&self, id: &Identifier) -> bool {
        self.a == *id || self.b == *id
    }
}

/// Why a link was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// It would put two different customer ids in one person.
    SecondCustomerId,
    /// It would link more browsers to one email within the window than the rules allow.
    TooManyBrowsers,
    /// An exclusion separates the two sides.
    Excluded,
    /// One side is not an identifier (see [`normalise`]).
    Junk(Junk),
}

impl Reason {
    /// Every reason, in the order they are shown.
    pub const ALL: [Reason; 7] = [
        Reason::SecondCustomerId,
        Reason::TooManyBrowsers,
        Reason::Excluded,
        Reason::Junk(Junk::Blocklisted),
        Reason::Junk(Junk::TestEmail),
        Reason::Junk(Junk::MalformedEmail),
        Reason::Junk(Junk::Malformed),
    ];

    /// The reason's name, as counted and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::SecondCustomerId => "second_customer_id",
            Reason::TooManyBrowsers => "too_many_browsers",
            Reason::Excluded => "excluded",
            Reason::Junk(j) => j.as_str(),
        }
    }
}

/// A link [`resolve`] refused, kept with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The edge.
    pub edge: Edge,
    /// Why.
    pub reason: Reason,
}

/// A person's opaque, stable id: a UUID v5 of the event id of the earliest link that formed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonId(pub Uuid);

const PERSON_NAMESPACE: Uuid = Uuid::from_u128(0x2f0b_6c1e_8d47_4a93_b5e2_71c0_9d3a_58e4);

impl PersonId {
    /// The id of a person formed by the link from `event_id`. For a browser that was never
    /// linked, the caller passes the browser's first event id.
    pub fn formed_by(event_id: Uuid) -> PersonId {
        PersonId(Uuid::new_v5(&PERSON_NAMESPACE, event_id.as_bytes()))
    }
}

/// One person: its id and identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Its id.
    pub id: PersonId,
    /// Its identifiers.
    pub members: BTreeSet<Identifier>,
    /// The links that joined them, in the order applied.
    pub links: Vec<Edge>,
}

/// The people the log gives, and what it refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Partition {
    /// Every person with at least one applied link, by id.
    pub people: BTreeMap<PersonId, Person>,
    /// Links refused, in the order they were considered.
    pub rejected: Vec<Rejected>,
}

impl Partition {
    /// The person an identifier belongs to, if any link applied to it.
    pub fn person_of(&self, id: &Identifier) -> Option<&Person> {
        self.people.values().find(|p| p.members.contains(id))
    }

    /// Rejections counted by reason.
    pub fn rejections(&self) -> BTreeMap<Reason, u64> {
        let mut out = BTreeMap::new();
        for r in &self.rejected {
            *out.entry(r.reason).or_insert(0) += 1;
        }
        out
    }
}

/// The component state while resolving, kept at its root.
struct Group {
    /// Member identifiers (indices into the interned list).
    members: Vec<usize>,
    /// The links applied to it, in the order applied.
    links: Vec<usize>,
    /// The customer id it holds, if any (interned).
    customer: Option<usize>,
}

/// Union-find over interned identifiers, with per-root facts for the guards.
struct Groups {
    parent: Vec<usize>,
    groups: Vec<Option<Group>>,
}

impl Groups {
    fn root(&mut self, mut at: usize) -> usize {
        while self.parent[at] != at {
            // Path halving.
            self.parent[at] = self.parent[self.parent[at]];
            at = self.parent[at];
        }
        at
    }
}

/// The partition of identifiers into people that the edges give under `rules` (see the module
/// documentation for the order rules). Each side is normalised first ([`normalise`]): an edge
/// with a side that is junk is rejected with that reason (these rejections come first, in the
/// canonical order). Edges whose identifiers are the same one are ignored.
pub fn resolve(edges: &[Edge], rules: &IdentityRules) -> Partition {
    let mut rejected = Vec::new();
    let mut clean: Vec<Edge> = Vec::with_capacity(edges.len());
    for e in edges {
        match (
            normalise(e.a.kind, &e.a.value, rules),
            normalise(e.b.kind, &e.b.value, rules),
        ) {
            (Ok(a), Ok(b)) => {
                clean.push(Edge::new(e.kind, e.at, e.event_id, a, b).from_origin(e.origin))
            }
            (Err(j), _) | (_, Err(j)) => rejected.push(Rejected {
                edge: e.clone(),
                reason: Reason::Junk(j),
            }),
        }
    }
    rejected.sort_by(|x, y| x.edge.cmp(&y.edge));
    rejected.dedup();
    // The canonical order, duplicates once.
    let mut unique: Vec<&Edge> = clean.iter().filter(|e| e.a != e.b).collect();
    unique.sort_unstable();
    unique.dedup();
    // Interned identifiers: every comparison below is on indices.
    let mut index: HashMap<&Identifier, usize> = HashMap::with_capacity(unique.len());
    let mut ids: Vec<&Identifier> = Vec::with_capacity(unique.len());
    let mut ends = Vec::with_capacity(unique.len());
    for e in unique.iter().copied() {
        let mut pair = [0; 2];
        for (slot, i) in pair.iter_mut().zip([&e.a, &e.b]) {
            *slot = *index.entry(i).or_insert_with(|| {
                ids.push(i);
                ids.len() - 1
            });
        }
        ends.push((pair[0], pair[1]));
    }
    let mut excluded: HashMap<usize, Vec<usize>> = HashMap::new();
    for (e, &(a, b)) in unique.iter().zip(&ends) {
        if e.kind == EdgeKind::Exclude {
            excluded.entry(a).or_default().push(b);
            excluded.entry(b).or_default().push(a);
        }
    }
    let mut g = Groups {
        parent: (0..ids.len()).collect(),
        groups: (0..ids.len())
            .map(|i| {
                Some(Group {
                    members: vec![i],
                    links: Vec::new(),
                    customer: (ids[i].kind == IdKind::CustomerId).then_some(i),
                })
            })
            .collect(),
    };
    // Browsers linked to each email, with the time of the link, for the browsers cap.
    let mut browsers: HashMap<usize, Vec<(DateTime<Utc>, usize)>> = HashMap::new();
    let window = Duration::hours(i64::from(rules.browser_window_hours()));
    let cap = rules.max_browsers_per_email() as usize;
    // The links of one event stand or fall together: when, before the event's first link is
    // applied, its links would bring two customer ids into one person, every link of the
    // event is refused (`second_customer_id`), so a second customer's login on a shared
    // browser cannot carry their email (and with it their other browsers) into the first
    // customer's person.
    let mut refused_event: Option<(DateTime<Utc>, Uuid)> = None;
    for (n, (edge, &(a, b))) in unique.iter().zip(&ends).enumerate() {
        if edge.kind != EdgeKind::Link {
            continue;
        }
        let event = (edge.at, edge.event_id);
        let starts_event = n == 0 || (unique[n - 1].at, unique[n - 1].event_id) != event;
        if starts_event {
            let mut customers: Vec<usize> = Vec::new();
            for (e, &(x, y)) in unique[n..].iter().zip(&ends[n..]) {
                if (e.at, e.event_id) != event {
                    break;
                }
                if e.kind != EdgeKind::Link {
                    continue;
                }
                for end in [x, y] {
                    let r = g.root(end);
                    if let Some(c) = g.groups[r].as_ref().and_then(|grp| grp.customer) {
                        customers.push(c);
                    }
                }
            }
            customers.sort_unstable();
            customers.dedup();
            refused_event = (customers.len() > 1).then_some(event);
        }
        if refused_event == Some(event) {
            rejected.push(Rejected {
                edge: (*edge).clone(),
                reason: Reason::SecondCustomerId,
            });
            continue;
        }
        let (ra, rb) = (g.root(a), g.root(b));
        if ra == rb {
            continue;
        }
        let email_browser = match (&ids[a].kind, &ids[b].kind) {
            (IdKind::Email, IdKind::AnonymousId) => Some((a, b)),
            (IdKind::AnonymousId, IdKind::Email) => Some((b, a)),
            _ => None,
        };
        let reason = {
            let (Some(ga), Some(gb)) = (&g.groups[ra], &g.groups[rb]) else {
                continue;
            };
            let (small, other) = if ga.members.len() <= gb.members.len() {
                (ga, rb)
            } else {
                (gb, ra)
            };
            let separated = !excluded.is_empty()
                && small.members.iter().any(|m| {
                    excluded
                        .get(m)
                        .is_some_and(|xs| xs.iter().any(|&x| root_of(&g.parent, x) == other))
                });
            if matches!((ga.customer, gb.customer), (Some(x), Some(y)) if x != y) {
                Some(Reason::SecondCustomerId)
            } else if separated {
                Some(Reason::Excluded)
            } else if email_browser.is_some_and(|(email, browser)| {
                let since = edge.at - window;
                let mut recent: Vec<usize> = browsers
                    .get(&email)
                    .into_iter()
                    .flatten()
                    .filter(|(at, x)| *at > since && *x != browser)
                    .map(|(_, x)| *x)
                    .collect();
                recent.sort_unstable();
                recent.dedup();
                recent.len() >= cap
            }) {
                Some(Reason::TooManyBrowsers)
            } else {
                None
            }
        };
        if let Some(reason) = reason {
            rejected.push(Rejected {
                edge: (*edge).clone(),
                reason,
            });
            continue;
        }
        if let Some((email, browser)) = email_browser {
            browsers.entry(email).or_default().push((edge.at, browser));
        }
        // The group formed earlier (by an earlier link in the canonical order) keeps its
        // name; the other joins it. A group without links yet is the younger.
        let first = |r: usize| g.groups[r].as_ref().and_then(|x| x.links.first().copied());
        let (keep, join) = match (first(ra), first(rb)) {
            (Some(x), Some(y)) if y < x => (rb, ra),
            (None, Some(_)) => (rb, ra),
            _ => (ra, rb),
        };
        let Some(joined) = g.groups[join].take() else {
            continue;
        };
        g.parent[join] = keep;
        if let Some(k) = g.groups[keep].as_mut() {
            k.members.extend(joined.members);
            k.links.extend(joined.links);
            k.links.push(n);
            k.links.sort_unstable();
            k.customer = k.customer.or(joined.customer);
        }
    }
    let people = g
        .groups
        .into_iter()
        .flatten()
        .filter(|grp| !grp.links.is_empty())
        .map(|grp| {
            let id = PersonId::formed_by(unique[grp.links[0]].event_id);
            let person = Person {
                id,
                members: grp.members.iter().map(|&m| ids[m].clone()).collect(),
                links: grp.links.iter().map(|&l| unique[l].clone()).collect(),
            };
            (id, person)
        })
        .collect();
    Partition { people, rejected }
}

/// The root of `at` without compressing (for reads while a group is borrowed).
fn root_of(parent: &[usize], mut at: usize) -> usize {
    while parent[at] != at {
        at = parent[at];
    }
    at
}

#[cfg(test)]
mod tests;
