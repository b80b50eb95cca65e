//! The person answer of `/api/cdp/people/{key}` and the identity figures, from the resolved
//! partition and the person's stored events. Pure, like the other bodies.

use crate::bodies::{profile_body, ProfileBody};
use cdp_core::identity::{self, Edge, EdgeKind, Found, IdKind, Partition, PersonId};
use cdp_core::{AnonymousId, Config, EventRow};
use serde::Serialize;

/// An edge as shown: its sides, kind, origin, event and time.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeBody {
    /// `link` or `exclude`.
    pub kind: &'static str,
    /// One side, as `kind:value`.
    pub a: IdentifierBody,
    /// The other side.
    pub b: IdentifierBody,
    /// `event` or `admin`.
    pub origin: &'static str,
    /// The event (or admin action) it came from.
    pub event_id: String,
    /// When.
    pub at: String,
}

/// An identifier as shown.
#[derive(Debug, Clone, Serialize)]
pub struct IdentifierBody {
    /// `anonymous_id`, `email` or `customer_id`.
    pub kind: &'static str,
    /// Its normalised value.
    pub value: String,
}

/// One identifier of the person and the link that attached it (`null` for a lone browser).
#[derive(Debug, Clone, Serialize)]
pub struct MemberBody {
    /// The identifier.
    #[serde(flatten)]
    pub id: IdentifierBody,
    /// The applied link that attached it.
    pub attached_by: Option<EdgeBody>,
}

/// A refused link touching the person, with its reason.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedBody {
    /// Why (`second_customer_id`, `excluded`, `test_email`, ...).
    pub reason: &'static str,
    /// The edge.
    pub edge: EdgeBody,
}

/// `GET /api/cdp/people/{key}`.
#[derive(Debug, Clone, Serialize)]
pub struct PersonBody {
    /// `ok`.
    pub status: &'static str,
    /// The person's opaque id.
    pub person_id: String,
    /// The person's email, if one is linked.
    pub email: Option<String>,
    /// The person's customer id, if one is linked.
    pub customer_id: Option<String>,
    /// The person's browsers (anonymous ids).
    pub browsers: Vec<String>,
    /// Every identifier with the link that attached it.
    pub identifiers: Vec<MemberBody>,
    /// The links that joined them, in the order applied: the merge history.
    pub merges: Vec<EdgeBody>,
    /// Links and exclusions touching the person that keep others apart from it.
    pub rejected: Vec<RejectedBody>,
    /// Exclusions (admin splits) touching the person.
    pub exclusions: Vec<EdgeBody>,
    /// The person's golden profile: the replay of all its browsers' events as one visitor.
    pub profile: ProfileBody,
}

fn id_body(i: &identity::Identifier) -> IdentifierBody {
    IdentifierBody {
        kind: i.kind.as_str(),
        value: i.value.clone(),
    }
}

/// An edge as shown.
pub fn edge_body(e: &Edge) -> EdgeBody {
    EdgeBody {
        kind: e.kind.as_str(),
        a: id_body(&e.a),
        b: id_body(&e.b),
        origin: e.origin.as_str(),
        event_id: e.event_id.hyphenated().to_string(),
        at: crate::figures::iso(e.at),
    }
}

/// The browsers whose events make the person `found` names.
pub fn browsers_of(found: &Found<'_>) -> Vec<AnonymousId> {
    match found {
        Found::Person(p) => identity::browsers(p),
        Found::Browser(b) => vec![b.clone()],
    }
}

/// The person answer: `None` when the person has no stored events (a lone browser never
/// seen, or a person of only an email and a customer id).
pub fn person_body(
    cfg: &Config,
    partition: &Partition,
    edges: &[Edge],
    found: &Found<'_>,
    rows: &[&EventRow],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<PersonBody>, serde_json::Error> {
    let Some(mut profile) = identity::person_profile(cfg, rows) else {
        return Ok(None);
    };
    identity::stamp_identity(
        &mut profile,
        match found {
            Found::Person(p) => Some(p),
            Found::Browser(_) => None,
        },
    );
    let (person_id, identifiers, merges, members) = match found {
        Found::Person(p) => (
            p.id,
            identity::attachments(p)
                .into_iter()
                .map(|(m, e)| MemberBody {
                    id: id_body(m),
                    attached_by: Some(edge_body(e)),
                })
                .collect(),
            p.links.iter().map(edge_body).collect(),
            p.members.iter().cloned().collect::<Vec<_>>(),
        ),
        Found::Browser(b) => {
            // A person of one browser: named by the browser's first event.
            let first = rows
                .iter()
                .min_by_key(|r| (r.processed_at, r.event_id))
                .map(|r| r.event_id)
                .unwrap_or_default();
            let id = identity::Identifier {
                kind: IdKind::AnonymousId,
                value: b.as_str().to_owned(),
            };
            (
                PersonId::formed_by(first),
                vec![MemberBody {
                    id: id_body(&id),
                    attached_by: None,
                }],
                Vec::new(),
                vec![id],
            )
        }
    };
    let value = |kind: IdKind| {
        members
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| m.value.clone())
    };
    let touches = |e: &Edge| members.iter().any(|m| e.touches(m));
    Ok(Some(PersonBody {
        status: "ok",
        person_id: person_id.0.hyphenated().to_string(),
        email: value(IdKind::Email),
        customer_id: value(IdKind::CustomerId),
        browsers: browsers_of(found)
            .iter()
            .map(|b| b.as_str().to_owned())
            .collect(),
        identifiers,
        merges,
        rejected: partition
            .rejected
            .iter()
            .filter(|r| touches(&r.edge))
            .map(|r| RejectedBody {
                reason: r.reason.as_str(),
                edge: edge_body(&r.edge),
            })
            .collect(),
        exclusions: edges
            .iter()
            .filter(|e| e.kind == EdgeKind::Exclude && touches(e))
            .map(edge_body)
            .collect(),
        profile: profile_body(cfg, &profile, now)?,
    }))
}

/// The two identifiers of an admin merge or split body, `{"a": {"kind", "value"}, "b": ...}`,
/// each normalised under the identity rules, or the first problem (naming the field).
pub fn identity_change(
    body: &serde_json::Value,
    rules: &identity::IdentityRules,
) -> Result<(identity::Identifier, identity::Identifier), cdp_core::intake::Problem> {
    use cdp_core::intake::Problem;
    let side = |name: &str| -> Result<identity::Identifier, Problem> {
        let Some(obj) = body.get(name).and_then(|v| v.as_object()) else {
            return Err(Problem::new(
                name,
                "must be an identifier object {\"kind\": ..., \"value\": ...}",
            ));
        };
        let kinds = "anonymous_id, email or customer_id";
        let kind = obj
            .get("kind")
            .and_then(|k| k.as_str())
            .and_then(IdKind::parse)
            .ok_or_else(|| Problem::new(format!("{name}.kind"), format!("must be {kinds}")))?;
        let value = obj
            .get("value")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Problem::new(format!("{name}.value"), "must be a string"))?;
        identity::normalise(kind, value, rules).map_err(|j| {
            Problem::new(
                format!("{name}.value"),
                format!("is not an identifier ({})", j.as_str()),
            )
        })
    };
    let (a, b) = (side("a")?, side("b")?);
    if a == b {
        return Err(Problem::new("b", "must be another identifier than a"));
    }
    Ok((a, b))
}

/// The answer of `/api/cdp/identity` (both shells).
#[derive(Debug, Clone, Serialize)]
pub struct IdentityBody {
    /// People, browsers and refused links.
    #[serde(flatten)]
    pub summary: identity::Summary,
    /// Erasures done, tombstones held and events suppressed (`null` when this collector
    /// cannot erase: no `--tombstone-key`, or a Supabase REST store).
    pub erasures: Option<cdp_adapters::ErasureFigures>,
}

/// The answer to `DELETE /api/cdp/people/{key}`: what the erasure removed (counts only).
#[derive(Debug, Clone, Serialize)]
pub struct ErasureBody {
    /// `erased`.
    pub status: &'static str,
    /// The erasure's id (its audit row, `cdp_erasures`).
    pub erasure_id: String,
    /// The person erased (`null`: a browser no link touched).
    pub person_id: Option<String>,
    /// Identifiers covered, each now a tombstone.
    pub identifiers: usize,
    /// Events deleted.
    pub events: u64,
    /// Search rows deleted.
    pub searches: u64,
    /// Profiles deleted.
    pub profiles: u64,
    /// Identity edges deleted.
    pub edges: u64,
    /// Browsers of other people that lost events carrying the person's identifiers (a login
    /// on their device), whose profiles were rebuilt from what they keep.
    pub rebuilt_profiles: usize,
}

/// One step of the person's journey: the stage and prediction after one stored event.
#[derive(Debug, Clone, Serialize)]
pub struct StageStep {
    /// The event.
    pub event_id: String,
    /// Its type.
    pub event_type: &'static str,
    /// When it happened.
    pub at: String,
    /// The browser it came from.
    pub anonymous_id: String,
    /// The stage after it, and its confidence.
    pub stage: String,
    /// That stage's confidence.
    pub stage_confidence: f64,
    /// The predicted persona after it.
    pub predicted_persona: String,
    /// Its confidence.
    pub persona_confidence: f64,
}

/// The answer to `GET /api/cdp/people/{key}/export`: everything held about the person.
#[derive(Debug, Clone, Serialize)]
pub struct ExportBody {
    /// `ok`.
    pub status: &'static str,
    /// When the export was made.
    pub exported_at: String,
    /// The person: identifiers and the links that attached them, merges, refused links,
    /// exclusions, and the golden profile with the signals (score inputs), their weights and
    /// decay, and the stage rule.
    pub person: PersonBody,
    /// Every stored event that carries one of the person's identifiers, as stored (what an
    /// erasure would delete), in time order.
    pub events: Vec<EventRow>,
    /// The stage and prediction after each of those events.
    pub stage_history: Vec<StageStep>,
    /// Every edge of the identity log that names one of the identifiers (applied, refused or
    /// an exclusion; an event's or an admin's): the merge audit.
    pub audit: Vec<EdgeBody>,
}

/// The export of the person in `person`, from the events `rows` (those an erasure of the
/// person removes) and the erasure's edges.
pub fn export_body(
    person: PersonBody,
    mut rows: Vec<EventRow>,
    edges: &[Edge],
    now: chrono::DateTime<chrono::Utc>,
) -> ExportBody {
    rows.sort_by_key(|r| (r.timestamp, r.processed_at, r.event_id));
    let stage_history = rows
        .iter()
        .map(|r| StageStep {
            event_id: r.event_id.hyphenated().to_string(),
            event_type: r.event_type.as_str(),
            at: r
                .timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            anonymous_id: r.anonymous_id.as_str().to_owned(),
            stage: r.current_stage.as_str().to_owned(),
            stage_confidence: r.stage_confidence,
            predicted_persona: r.predicted_persona.as_str().to_owned(),
            persona_confidence: r.persona_confidence,
        })
        .collect();
    let mut audit: Vec<&Edge> = edges.iter().collect();
    audit.sort();
    ExportBody {
        status: "ok",
        exported_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        person,
        events: rows,
        stage_history,
        audit: audit.into_iter().map(edge_body).collect(),
    }
}
