//! Identity fixture journeys (`fixtures/identity/*.ndjson`, several browsers each, with admin
//! merges and splits): the people the log resolves to, what was refused and why, and each
//! person's golden profile, as insta snapshots reviewed by hand (`cargo insta review`). The
//! state is snapshotted after the events and again after each admin action.

use cdp_core::identity::{
    self, batch_edges, person_profile, resolve, Edge, EdgeKind, Erasure, IdKind, Identifier,
    Origin, TombstoneKey, Tombstones,
};
use cdp_core::{
    apply, parse_recording, validate, AnonymousId, Config, EventRow, Profile, ValidEvent,
};
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
    /// Events dropped so far because they carried an erased identifier.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suppressed: Vec<String>,
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
        suppressed: Vec::new(),
    }
}

/// One line of an identity fixture.
enum Step {
    /// An arriving event, validated, with its receive time.
    Event(ValidEvent, DateTime<Utc>),
    /// An admin merge or split.
    Admin(String, Edge),
    /// An admin erasure of the person the key names.
    Erase(String),
}

fn steps(cfg: &Config, text: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let v: Value = serde_json::from_str(line).expect("fixture line is JSON");
        if let Some(action) = v["admin"].as_str() {
            if action == "erase" {
                out.push(Step::Erase(v["key"].as_str().expect("key").to_owned()));
                continue;
            }
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
            out.push(Step::Admin(
                format!("admin {action}"),
                Edge::new(kind, at, id, side("a"), side("b")).from_origin(Origin::Admin),
            ));
            continue;
        }
        for arrival in parse_recording(line).expect("valid recording") {
            let now = arrival.received_at.expect("fixtures record receive times");
            let event = validate(cfg, &arrival.event, now)
                .unwrap_or_else(|r| panic!("fixture event rejected: {r}"));
            out.push(Step::Event(event, now));
        }
    }
    out
}

/// What a collector holds while it replays a fixture.
struct Held {
    rows: Vec<EventRow>,
    profiles: BTreeMap<AnonymousId, Profile>,
    /// Edges of admin actions (the events' edges are the core's `batch_edges` of `rows`).
    admin: Vec<Edge>,
    /// Admin edges an erasure deleted never come back.
    tombstones: Tombstones,
    suppressed: Vec<String>,
}

impl Held {
    fn new() -> Held {
        let key = TombstoneKey::new("identity fixtures' tombstone key, 32 bytes+").expect("key");
        Held {
            rows: Vec::new(),
            profiles: BTreeMap::new(),
            admin: Vec::new(),
            tombstones: Tombstones::new(key, []),
            suppressed: Vec::new(),
        }
    }

    fn edges(&self) -> Vec<Edge> {
        let mut edges: Vec<Edge> = batch_edges(&self.rows)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        edges.extend(self.admin.iter().cloned());
        edges
    }

    /// The collector's writer: an event that carries an erased identifier is suppressed.
    fn arrive(&mut self, cfg: &Config, event: &ValidEvent, now: DateTime<Utc>) {
        if !self.tombstones.hits(event, cfg.identity_rules()).is_empty() {
            self.suppressed.push(format!(
                "{} {} {}",
                event.anonymous_id,
                event.event_type.as_str(),
                event.event_id
            ));
            return;
        }
        let applied = apply(cfg, self.profiles.remove(&event.anonymous_id), event, now);
        self.profiles
            .insert(event.anonymous_id.clone(), applied.profile);
        self.rows.push(applied.row);
    }

    /// The store's erasure and the collector's rebuild of the browsers that lost events.
    fn erase(&mut self, cfg: &Config, key: &str) -> String {
        let rules = cfg.identity_rules();
        let edges = self.edges();
        let p = resolve(&edges, rules);
        let found = identity::find(&p, key, rules).expect("the key names someone");
        let erasure = Erasure::of(&found, &edges, rules).keyed(self.tombstones.key());
        let (gone, kept): (Vec<EventRow>, Vec<EventRow>) = std::mem::take(&mut self.rows)
            .into_iter()
            .partition(|r| erasure.removes(r, rules));
        self.rows = kept;
        self.admin.retain(|e| !erasure.edges.contains(e));
        self.tombstones
            .extend(erasure.tombstones.iter().map(|t| t.hash.clone()));
        let mut touched: Vec<AnonymousId> = gone.iter().map(|r| r.anonymous_id.clone()).collect();
        touched.sort();
        touched.dedup();
        for b in &touched {
            self.profiles.remove(b);
            let mine: Vec<EventRow> = self
                .rows
                .iter()
                .filter(|r| r.anonymous_id == *b)
                .cloned()
                .collect();
            if let Some(p) = cdp_core::replay(cfg, None, &mine) {
                self.profiles.insert(b.clone(), p);
            }
        }
        format!(
            "admin erase: {} identifiers, {} events, {} edges; browsers rebuilt: {:?}",
            erasure.identifiers.len(),
            gone.len(),
            erasure.edges.len(),
            touched
                .iter()
                .filter(|b| !erasure.browsers.contains(b))
                .map(|b| b.as_str())
                .collect::<Vec<_>>()
        )
    }

    fn state(&self, cfg: &Config, after: &str) -> State {
        let mut s = state(cfg, after, &self.rows, &self.edges());
        s.suppressed = self.suppressed.clone();
        s
    }
}

/// The states a fixture goes through: after its first events, after each admin action, and
/// after the events that follow the last one.
fn states(cfg: &Config, text: &str) -> Vec<State> {
    let mut held = Held::new();
    let mut out = Vec::new();
    let mut fresh = false;
    for step in steps(cfg, text) {
        match step {
            Step::Event(e, now) => {
                held.arrive(cfg, &e, now);
                fresh = true;
            }
            Step::Admin(what, edge) => {
                if fresh {
                    out.push(held.state(cfg, "events"));
                    fresh = false;
                }
                held.admin.push(edge);
                out.push(held.state(cfg, &what));
            }
            Step::Erase(key) => {
                if fresh {
                    out.push(held.state(cfg, "events"));
                    fresh = false;
                }
                let what = held.erase(cfg, &key);
                out.push(held.state(cfg, &what));
            }
        }
    }
    if fresh {
        out.push(held.state(cfg, "events"));
    }
    out
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
    assert_eq!(files.len(), 6, "every identity fixture is here");
    for f in files {
        let name = f.file_stem().expect("name").to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&f).expect("fixture");
        insta::assert_yaml_snapshot!(format!("identity_{name}"), states(&cfg, &text));
    }
}

/// The erased person who comes back: nothing of hers is left after the erasure, and what she
/// sends afterwards is suppressed, while a stranger and the other person on the shared
/// computer are stored.
#[test]
fn an_erased_person_leaves_nothing_and_comes_back_suppressed() {
    let cfg = Config::southland();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/identity/06_erased_comes_back.ndjson");
    let mut held = Held::new();
    for step in steps(&cfg, &std::fs::read_to_string(path).expect("fixture")) {
        match step {
            Step::Event(e, now) => held.arrive(&cfg, &e, now),
            Step::Erase(key) => {
                held.erase(&cfg, &key);
            }
            Step::Admin(..) => {}
        }
    }
    let names_betty = |s: &str| {
        s.to_lowercase().contains("betty") || s.contains("phone-06") || s.contains("laptop-06")
    };
    for r in &held.rows {
        let text = serde_json::to_string(r).expect("row");
        assert!(!names_betty(&text), "a stored row names Betty: {text}");
    }
    for e in held.edges() {
        assert!(!names_betty(&format!("{e:?}")), "{e:?}");
    }
    for p in held.profiles.values() {
        let text = serde_json::to_string(p).expect("profile");
        assert!(!names_betty(&text), "a profile names Betty: {text}");
    }
    assert_eq!(held.suppressed.len(), 2, "{:?}", held.suppressed);
    let browsers: Vec<&str> = held.rows.iter().map(|r| r.anonymous_id.as_str()).collect();
    assert!(browsers.contains(&"stranger-06"));
    assert_eq!(
        browsers.iter().filter(|b| **b == "family-06").count(),
        3,
        "Bill keeps his own"
    );
}

/// The merge-then-split journey: after the split, each browser's profile is exactly its own
/// events' replay, as before the merge.
#[test]
fn a_split_restores_each_side_exactly() {
    let cfg = Config::southland();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/identity/05_merge_then_split.ndjson");
    let mut rows = Vec::new();
    let mut admin = Vec::new();
    let mut profiles: BTreeMap<AnonymousId, Profile> = BTreeMap::new();
    for step in steps(&cfg, &std::fs::read_to_string(path).expect("fixture")) {
        match step {
            Step::Event(e, now) => {
                let applied = apply(&cfg, profiles.remove(&e.anonymous_id), &e, now);
                profiles.insert(e.anonymous_id.clone(), applied.profile);
                rows.push(applied.row);
            }
            Step::Admin(what, edge) => admin.push((what, edge)),
            Step::Erase(_) => unreachable!("no erasure in this journey"),
        }
    }
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
