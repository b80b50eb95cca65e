//! The identity log's conformance check: every backend keeps exactly the core's edges of the
//! events it stored (one per pair, the earliest, whatever the order and repetition of the
//! writes), in the events' own write, and adds admin edges idempotently.

use super::data;
use cdp_adapters::{EventSink, IdentityStore, ProfileStore, Store};
use cdp_core::identity::{
    batch_edges, person_of_browsers, resolve, Edge, EdgeKind, IdKind, Identifier, IdentityRules,
    Origin,
};
use cdp_core::BrandId;
use serde_json::json;
use uuid::Uuid;

/// Two browsers of one person (an identify on the laptop, an email signup on the phone, the
/// customer id on the laptop's page views), a junk email, and a plain page view.
fn journeys() -> data::Journeys {
    let start = data::at("2026-03-02T10:00:00Z");
    let event = |i: u32, anon: &str, kind: &str, extra: serde_json::Value| {
        data::event_at(start, "00000000-0000-4000-9000", i, anon, kind, extra)
    };
    data::run(&[
        event(1, "laptop", "page_view", json!({})),
        event(
            2,
            "laptop",
            "identify",
            json!({"customer_id": "c-1", "properties": {"email": "Bill@Example.org"}}),
        ),
        event(3, "laptop", "page_view", json!({"customer_id": "c-1"})),
        event(4, "laptop", "page_view", json!({"customer_id": "c-1"})),
        event(
            5,
            "phone",
            "email_signup",
            json!({"properties": {"email": "Bill@Example.org", "source": "footer"}}),
        ),
        event(
            6,
            "tablet",
            "email_signup",
            json!({"properties": {"email": "test@test.com"}}),
        ),
        event(7, "desk", "page_view", json!({})),
    ])
}

fn key(e: &Edge) -> (EdgeKind, Identifier, Identifier) {
    (e.kind, e.a.clone(), e.b.clone())
}

fn sorted(mut edges: Vec<Edge>) -> Vec<Edge> {
    edges.sort_by_key(key);
    edges
}

/// `keeps_earliest`: whether the backend keeps the earliest edge of a pair whatever the order
/// edges arrive in (SQL backends), or the first stored (PostgREST, see `rest::EDGES_PREFER`).
pub async fn check_identity_store(store: &Store, keeps_earliest: bool) {
    let brand = BrandId::new("southland");
    let j = journeys();
    assert_eq!(j.rows.len(), 7, "every event passes the contract");
    let expected: Vec<Edge> = sorted(batch_edges(&j.rows).into_iter().map(|(_, e)| e).collect());
    assert_eq!(
        expected.len(),
        4,
        "customer and email of the laptop, two email signups"
    );

    // Newest first, in small batches, one batch twice: the log still holds each pair once.
    let mut batches: Vec<Vec<cdp_core::EventRow>> = j.rows.rchunks(2).map(<[_]>::to_vec).collect();
    batches.push(j.rows[2..4].to_vec());
    for b in &batches {
        store.write_events(b).await.expect("write");
    }
    let stored = sorted(store.identity_edges(&brand).await.expect("edges"));
    if keeps_earliest {
        assert_eq!(stored, expected, "the earliest edge of each pair");
    } else {
        assert_eq!(
            stored.iter().map(key).collect::<Vec<_>>(),
            expected.iter().map(key).collect::<Vec<_>>(),
            "each pair once"
        );
    }
    assert!(
        store
            .identity_edges(&BrandId::new("other"))
            .await
            .expect("edges")
            .is_empty(),
        "edges are per brand"
    );

    // The log gives one person of both browsers; the junk email links nobody.
    let p = resolve(&stored, &IdentityRules::default());
    assert_eq!(p.people.len(), 1);
    let anon = |v: &str| Identifier {
        kind: IdKind::AnonymousId,
        value: v.to_owned(),
    };
    let person = p
        .person_of(&anon("phone"))
        .expect("the phone is a person's");
    assert!(person.members.contains(&anon("laptop")));
    assert_eq!(p.rejections().len(), 1, "the test address, rejected");

    // The partition stamps the profiles' person_id: both browsers get the person, the others
    // none, and a profile saved afterwards keeps its stamp.
    let cfg = cdp_core::Config::southland();
    let profiles: Vec<_> = j.profiles.values().cloned().collect();
    store
        .save_profiles(&cfg, &profiles)
        .await
        .expect("profiles");
    let people = person_of_browsers(&p);
    assert_eq!(people.len(), 2);
    match store.stamp_people(&brand, &people).await.expect("stamp") {
        None => assert!(
            !keeps_earliest,
            "only Supabase REST leaves the stamps to cdp serve"
        ),
        Some(n) => {
            assert_eq!(n, 2, "two profiles stamped");
            let want: std::collections::BTreeMap<_, _> = people
                .iter()
                .map(|(b, id)| (b.clone(), id.0.hyphenated().to_string()))
                .collect();
            assert_eq!(
                store.stamped_people(&brand).await.expect("read"),
                Some(want.clone())
            );
            assert_eq!(
                store.stamp_people(&brand, &people).await.expect("again"),
                Some(0)
            );
            store
                .save_profiles(&cfg, &profiles)
                .await
                .expect("saved again");
            assert_eq!(
                store.stamped_people(&brand).await.expect("read"),
                Some(want)
            );
            assert_eq!(
                store.stamp_people(&brand, &[]).await.expect("none"),
                Some(2)
            );
            assert_eq!(
                store.stamped_people(&brand).await.expect("read"),
                Some(Default::default())
            );
        }
    }

    // Admin edges: an exclusion, added twice, is one edge; an admin link earlier than the
    // event's edge of the same pair replaces it, a later one does not.
    let t = data::at("2026-03-02T09:00:00Z");
    let split = Edge::new(
        EdgeKind::Exclude,
        t,
        Uuid::from_u128(7),
        anon("laptop"),
        anon("phone"),
    )
    .from_origin(Origin::Admin);
    store
        .add_edges(&brand, &[split.clone(), split.clone()])
        .await
        .expect("add");
    store
        .add_edges(&brand, std::slice::from_ref(&split))
        .await
        .expect("add again");
    let laptop_customer = expected
        .iter()
        .find(|e| {
            e.touches(&anon("laptop"))
                && (e.a.kind == IdKind::CustomerId || e.b.kind == IdKind::CustomerId)
        })
        .expect("the laptop's customer edge")
        .clone();
    let later = Edge {
        at: laptop_customer.at + chrono::Duration::hours(1),
        event_id: Uuid::from_u128(8),
        origin: Origin::Admin,
        ..laptop_customer.clone()
    };
    store.add_edges(&brand, &[later]).await.expect("add later");
    let stored = sorted(store.identity_edges(&brand).await.expect("edges"));
    assert_eq!(stored.len(), 5);
    assert!(stored.contains(&split));
    if keeps_earliest {
        assert!(
            stored.contains(&laptop_customer),
            "a later edge changes nothing"
        );
        let earlier = Edge {
            at: t,
            event_id: Uuid::from_u128(9),
            origin: Origin::Admin,
            ..laptop_customer.clone()
        };
        store
            .add_edges(&brand, std::slice::from_ref(&earlier))
            .await
            .expect("add earlier");
        let stored = store.identity_edges(&brand).await.expect("edges");
        assert!(stored.contains(&earlier), "an earlier edge replaces it");
        assert!(!stored.contains(&laptop_customer));
    }
}
