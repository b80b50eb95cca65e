//! Erasing one person (GDPR art. 17, CCPA deletion): which identifiers an erasure covers, which
//! stored events it removes, and the tombstones that keep the person erased.
//!
//! An erasure covers every identifier of the person (its browsers, emails and customer id; a
//! browser no link touched is a person of one browser). It removes every stored event of the
//! person's browsers and every other event that carries one of its identifiers (a login on
//! someone else's device leaves the person's customer id in that browser's events), their
//! searches, the browsers' profiles, every identity edge that touches one of the identifiers,
//! and their contribution to the rollups ([`crate::counting::fold::without`]).
//!
//! A tombstone is what stays: a keyed hash (HMAC-SHA256 under the operator's tombstone key)
//! of one identifier, never its value. An arriving event that carries an erased identifier is
//! suppressed (not stored, and counted), so the next event does not quietly re-create the
//! person. Without the key a tombstone cannot be tested against a guessed email, which a
//! plain hash of an email could.

use super::{normalise, Edge, Found, IdKind, Identifier, IdentityRules, PersonId};
use crate::{AnonymousId, EventRow, ValidEvent};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use std::collections::{BTreeSet, HashSet};

/// Fewest bytes of a tombstone key (the HMAC-SHA256 block is 64; 32 is its security level).
pub const MIN_KEY_BYTES: usize = 32;

/// The secret tombstones are keyed with (held as its initialised HMAC). Only built from a long
/// enough secret.
#[derive(Clone)]
pub struct TombstoneKey(Hmac<Sha256>);

impl std::fmt::Debug for TombstoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TombstoneKey(..)")
    }
}

impl TombstoneKey {
    /// The key `secret` gives, or why it cannot be one.
    pub fn new(secret: &str) -> Result<TombstoneKey, String> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!(
                "must be at least {MIN_KEY_BYTES} bytes (it was {})",
                secret.len()
            ));
        }
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
            .map(TombstoneKey)
            .map_err(|e| e.to_string())
    }
}

/// One erased identifier: its kind and the hex HMAC-SHA256 of `kind:value` under the key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Tombstone {
    /// The kind of identifier it stands for.
    pub kind: IdKind,
    /// 64 hex digits.
    pub hash: String,
}

/// The tombstone of `id` under `key`.
pub fn tombstone(key: &TombstoneKey, id: &Identifier) -> Tombstone {
    Tombstone {
        kind: id.kind,
        hash: keyed_hash(key, id),
    }
}

fn keyed_hash(key: &TombstoneKey, id: &Identifier) -> String {
    let mut mac = key.0.clone();
    mac.update(id.kind.as_str().as_bytes());
    mac.update(b":");
    mac.update(id.value.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tombstones a collector holds, with the key to test identifiers against them.
#[derive(Debug, Clone)]
pub struct Tombstones {
    key: TombstoneKey,
    hashes: HashSet<String>,
}

impl Tombstones {
    /// The set of `hashes` under `key`.
    pub fn new(key: TombstoneKey, hashes: impl IntoIterator<Item = String>) -> Tombstones {
        Tombstones {
            key,
            hashes: hashes.into_iter().collect(),
        }
    }

    /// The key.
    pub fn key(&self) -> &TombstoneKey {
        &self.key
    }

    /// Adds tombstones; returns those it did not hold yet.
    pub fn extend(&mut self, more: impl IntoIterator<Item = String>) -> Vec<String> {
        more.into_iter()
            .filter(|h| self.hashes.insert(h.clone()))
            .collect()
    }

    /// Drops tombstones (an erasure that failed gives back the ones it added).
    pub fn remove(&mut self, hashes: &[String]) {
        for h in hashes {
            self.hashes.remove(h);
        }
    }

    /// How many it holds.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The tombstones an arriving event hits (none: it is stored as usual). Its identifiers
    /// are normalised first, as the identity log's are, so `Betty@X.com ` hits the tombstone
    /// of `betty@x.com`.
    pub fn hits(&self, event: &ValidEvent, rules: &IdentityRules) -> Vec<String> {
        if self.hashes.is_empty() {
            return Vec::new();
        }
        carried(
            event.anonymous_id.as_str(),
            event.customer_id.as_deref(),
            &event.properties,
            rules,
        )
        .iter()
        .map(|id| keyed_hash(&self.key, id))
        .filter(|h| self.hashes.contains(h))
        .collect()
    }
}

/// What one erasure covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    /// The person erased (`None`: a browser no link touched).
    pub person_id: Option<PersonId>,
    /// Every identifier it covers.
    pub identifiers: BTreeSet<Identifier>,
    /// Its browsers, whose events and profiles all go.
    pub browsers: Vec<AnonymousId>,
    /// The tombstone of each identifier (see [`Erasure::keyed`]).
    pub tombstones: Vec<Tombstone>,
    /// Every stored edge with a side that is one of the identifiers (applied, refused or an
    /// exclusion), as stored: all are deleted.
    pub edges: Vec<Edge>,
    /// Browsers whose events may carry one of the identifiers: the erased browsers and every
    /// browser on one of `edges` (a login on someone else's device). The store reads their
    /// events, and those with a customer id or email among the identifiers, as candidates for
    /// [`Erasure::removes`].
    pub candidate_browsers: Vec<AnonymousId>,
}

impl Erasure {
    /// The erasure of what `found` names, in the identity log `log`, without its tombstones
    /// yet (an export reads the same events without any key).
    pub fn of(found: &Found<'_>, log: &[Edge], rules: &IdentityRules) -> Erasure {
        let (person_id, identifiers) = match found {
            Found::Person(p) => (Some(p.id), p.members.clone()),
            Found::Browser(b) => (
                None,
                BTreeSet::from([Identifier {
                    kind: IdKind::AnonymousId,
                    value: b.as_str().to_owned(),
                }]),
            ),
        };
        let browser_of = |i: &Identifier| (i.kind == IdKind::AnonymousId).then(|| i.value.clone());
        let browsers: BTreeSet<String> = identifiers.iter().filter_map(browser_of).collect();
        // Each edge's sides normalised once: an edge naming one of the identifiers goes, and
        // the browsers it names are candidates.
        let mut candidates = browsers.clone();
        let mut edges = Vec::new();
        for e in log {
            let sides: Vec<Identifier> = [&e.a, &e.b]
                .into_iter()
                .filter_map(|x| normalise(x.kind, &x.value, rules).ok())
                .collect();
            if sides.iter().any(|n| identifiers.contains(n)) {
                candidates.extend(sides.iter().filter_map(browser_of));
                edges.push(e.clone());
            }
        }
        Erasure {
            person_id,
            identifiers,
            browsers: browsers.into_iter().map(AnonymousId::new).collect(),
            tombstones: Vec::new(),
            edges,
            candidate_browsers: candidates.into_iter().map(AnonymousId::new).collect(),
        }
    }

    /// The same erasure with the tombstone of each identifier under `key`.
    pub fn keyed(self, key: &TombstoneKey) -> Erasure {
        let tombstones = self.identifiers.iter().map(|i| tombstone(key, i)).collect();
        Erasure { tombstones, ..self }
    }

    /// Adds another erasure's identifiers, edges and browsers (the same person read again:
    /// links made in between widen it); tombstones are made again with [`Erasure::keyed`].
    pub fn widen(mut self, other: Erasure) -> Erasure {
        self.identifiers.extend(other.identifiers);
        for b in other.browsers {
            if !self.browsers.contains(&b) {
                self.browsers.push(b);
            }
        }
        for b in other.candidate_browsers {
            if !self.candidate_browsers.contains(&b) {
                self.candidate_browsers.push(b);
            }
        }
        for e in other.edges {
            if !self.edges.contains(&e) {
                self.edges.push(e);
            }
        }
        self.person_id = self.person_id.or(other.person_id);
        self.tombstones.clear();
        self
    }

    /// The identifiers of one kind, as stored values (for the store's candidate query).
    pub fn values(&self, kind: IdKind) -> Vec<String> {
        self.identifiers
            .iter()
            .filter(|i| i.kind == kind)
            .map(|i| i.value.clone())
            .collect()
    }

    /// Whether the erasure removes a stored event: it carries one of the identifiers.
    pub fn removes(&self, row: &EventRow, rules: &IdentityRules) -> bool {
        carried(
            row.anonymous_id.as_str(),
            row.customer_id.as_deref(),
            &row.properties,
            rules,
        )
        .iter()
        .any(|id| self.identifiers.contains(id))
    }
}

/// The identifiers an event carries, normalised (junk left out): its browser, its customer id
/// and any `email` property, whatever the event type.
fn carried(
    anonymous_id: &str,
    customer_id: Option<&str>,
    properties: &Map<String, Value>,
    rules: &IdentityRules,
) -> Vec<Identifier> {
    let email = properties.get("email").and_then(Value::as_str);
    [
        (IdKind::AnonymousId, Some(anonymous_id)),
        (IdKind::CustomerId, customer_id),
        (IdKind::Email, email),
    ]
    .into_iter()
    .filter_map(|(kind, v)| normalise(kind, v?, rules).ok())
    .collect()
}
