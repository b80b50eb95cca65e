//! Identity fixture journeys (`fixtures/identity/*.ndjson`, several browsers each, with admin
//! merges and splits): the people the log resolves to, what was refused and why, and each
//! person's golden profile, as insta snapshots reviewed by hand (`cargo insta review`). The
//! state is snapshotted after the events and again after each admin action.

use cdp_core::identity::{
    self, batch_edges, person_profile, resolve, Edge, EdgeKind, IdKind, Identifier, Origin,
};
use cdp_core::{apply, parse_recording, validate, AnonymousId, Config, EventRow, Profile};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Serialize)]
struct PersonView {
    person_id: String,
    members: Vec<String>,
    links: Vec<String>,
    profile: ProfileView,
}

#[derive(Serialize)]
struct ProfileView {
    anonymous_id: String,
    email: Option<String>,
    customer_id: Option<String>,
    predicted_persona: String,
    persona_confidence: f64,
    current_stage: String,
    events: u32,
    signals: usize,
    sessions: u32,
}

#[derive(Serialize)]
struct State {
    after: String,
    people: Vec<PersonView>,
    lone_browsers: Vec<ProfileView>,
    rejected: Vec<String>,
}

fn profile_view(p: &Profile) -> ProfileView {
    ProfileView {
        anonymous_id: p.anonymous_id.to_string(),
        email: p.email.clone(),
        customer_id: p.customer_id.clone(),
        predicted_persona: p.predicted_persona.to_string(),
        persona_confidence: p.persona_confidence,
        current_stage: p.current_stage.as_str().to_owned(),
        events: p.event_counts.values().sum(),
        signals: p.signals.len(),
        sessions: p.session_count,
    }
}

fn show(i: &Identifier) -> String {
    format!("{}:{}", i.kind.as_str(), i.value)
}

fn show_edge(e: &Edge) -> String {
    format!(
        "{} {} {} ({} {})",
        e.kind.as_str(),
        show(&e.a),
        show(&e.b),
        e.origin.as_str(),
        e.at.to_rfc3339()
    )
}

fn state(cfg: &Config, after: &str, rows: &[EventRow], edges: &[Edge]) -> State {
    let p = resolve(edges, cfg.identity_rules());
    let of = |browsers: &[AnonymousId]| -> Vec<&EventRow> {
        rows.iter()
            .filter(|r| browsers.contains(&r.anonymous_id))
            .collect()
    };
    let people: Vec<PersonView> = p
        .people
        .values()
        .map(|person| {
            let mut profile = person_profile(cfg, &of(&identity::browsers(person)))
                .expect("a fixture person has events");
            identity::stamp_identity(&mut profile, Some(person));
            PersonView {
                person_id: person.id.0.to_string(),
                members: person.members.iter().map(show).collect(),
                links: person.links.iter().map(show_edge).collect(),
                profile: profile_view(&profile),
            }
        })
        .collect();
    let mut lone: Vec<AnonymousId> = rows
        .iter()
        .map(|r| r.anonymous_id.clone())
        .filter(|a| {
            p.person_of(&Identifier {
                kind: IdKind::AnonymousId,
                value: a.as_str().to_owned(),
            })
            .is_none()
        })
        .collect();
    lone.sort();
    lone.dedup();
    State {
        after: after.to_owned(),
        people,
        lone_browsers: lone
            .iter()
            .filter_map(|b| person_profile(cfg, &of(std::slice::from_ref(b))))
            .map(|mut p| {
                identity::stamp_identity(&mut p, None);
                profile_view(&p)
            })
            .collect(),
        rejected: p
            .rejected
            .iter()
            .map(|r| format!("{}: {}", r.reason.as_str(), show_edge(&r.edge)))
            .collect(),
    }
}

/// Each browser's stored rows, applied as the collector would, and the admin actions in order.
fn replay(cfg: &Config, text: &str) -> (Vec<EventRow>, Vec<(String, Edge)>) {
    let mut profiles: BTreeMap<AnonymousId, Profile> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut admin = Vec::new();
    for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let v: Value = serde_json::from_str(line).expect("fixture line is JSON");
        if let Some(action) = v["admin"].as_str() {
            let side = |k: &str| Identifier {
                kind: IdKind::parse(v[k]["kind"].as_str().unwrap_or("")).expect("kind"),
                value: v[k]["value"].as_str().unwrap_or("").to_owned(),
            };
            let at: DateTime<Utc> = v["at"].as_str().and_then(|t| t.parse().ok()).expect("at");
            let kind = if action == "merge" {
                EdgeKind::Link
            } else {
                EdgeKind::Exclude
            };
            let id = uuid::Uuid::from_u128(n as u128 + 1);
            admin.push((
                format!("admin {action}"),
                Edge::new(kind, at, id, side("a"), side("b")).from_origin(Origin::Admin),
            ));
            continue;
        }
        for arrival in parse_recording(line).expect("valid recording") {
            let now = arrival.received_at.expect("fixtures record receive times");
            let event = validate(cfg, &arrival.event, now)
                .unwrap_or_else(|r| panic!("fixture event rejected: {r}"));
            let applied = apply(cfg, profiles.remove(&event.anonymous_id), &event, now);
            profiles.insert(event.anonymous_id.clone(), applied.profile);
            rows.push(applied.row);
        }
    }
    (rows, admin)
}

#[test]
fn identity_journeys_match_their_reviewed_snapshots() {
    let cfg = Config::southland();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/identity");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/identity exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "every identity fixture is here");
    for f in files {
        let name = f.file_stem().expect("name").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&f).expect("fixture");
        let (rows, admin) = replay(&cfg, &text);
        let mut edges: Vec<Edge> = batch_edges(&rows).into_iter().map(|(_, e)| e).collect();
        let mut states = vec![state(&cfg, "events", &rows, &edges)];
        for (what, edge) in admin {
            edges.push(edge);
            states.push(state(&cfg, &what, &rows, &edges));
        }
        insta::assert_yaml_snapshot!(format!("identity_{name}"), states);
    }
}

/// The merge-then-split journey: after the split, each browser's profile is exactly its own
/// events' replay, as before the merge.
#[test]
fn a_split_restores_each_side_exactly() {
    let cfg = Config::southland();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/identity/05_merge_then_split.ndjson");
    let (rows, admin) = replay(&cfg, &std::fs::read_to_string(path).expect("fixture"));
    let own = |b: &str| {
        let mine: Vec<&EventRow> = rows
            .iter()
            .filter(|r| r.anonymous_id.as_str() == b)
            .collect();
        person_profile(&cfg, &mine)
    };
    let mut edges: Vec<Edge> = batch_edges(&rows).into_iter().map(|(_, e)| e).collect();
    edges.extend(admin.into_iter().map(|(_, e)| e));
    let p = resolve(&edges, cfg.identity_rules());
    assert!(p.people.is_empty(), "the split leaves each browser alone");
    assert_eq!(p.rejected.len(), 1, "the admin merge, refused as excluded");
    let laptop = own("laptop-05").expect("events");
    let replayed = rows
        .iter()
        .filter(|r| r.anonymous_id.as_str() == "laptop-05")
        .fold(None, |p, r| {
            Some(apply(&cfg, p, &r.to_valid_event(), r.processed_at).profile)
        });
    assert_eq!(Some(laptop), replayed);
    assert!(own("work-05").is_some());
}
