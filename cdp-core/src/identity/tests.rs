use super::*;
use proptest::prelude::*;

fn rules() -> IdentityRules {
    IdentityRules::default()
}

fn id(kind: IdKind, v: &str) -> Identifier {
    match normalise(kind, v, &rules()) {
        Ok(i) => i,
        Err(j) => panic!("{v}: {j:?}"),
    }
}

fn anon(v: &str) -> Identifier {
    id(IdKind::AnonymousId, v)
}
fn email(v: &str) -> Identifier {
    id(IdKind::Email, v)
}
fn customer(v: &str) -> Identifier {
    id(IdKind::CustomerId, v)
}

fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + minute * 60, 0).unwrap_or_default()
}

fn link(minute: i64, event: u128, a: Identifier, b: Identifier) -> Edge {
    Edge {
        at: at(minute),
        event_id: Uuid::from_u128(event),
        kind: EdgeKind::Link,
        a,
        b,
        origin: Origin::Event,
    }
}

fn exclude(minute: i64, event: u128, a: Identifier, b: Identifier) -> Edge {
    Edge {
        kind: EdgeKind::Exclude,
        ..link(minute, event, a, b)
    }
}

#[test]
fn junk_values_are_never_identifiers() {
    let r = rules();
    for v in [
        "",
        " ",
        "null",
        "NULL",
        "undefined",
        "NaN",
        "0",
        "-1",
        "anonymous",
        "Guest",
        "[object Object]",
        "0000",
        "00000000-0000-0000-0000-000000000000",
    ] {
        for kind in [IdKind::AnonymousId, IdKind::Email, IdKind::CustomerId] {
            assert_eq!(
                normalise(kind, v, &r),
                Err(Junk::Blocklisted),
                "{v:?} as {kind:?}"
            );
        }
    }
    assert_eq!(
        normalise(IdKind::Email, " Test@Test.com ", &r),
        Err(Junk::TestEmail)
    );
    for bad in [
        "a@b",
        "@x.com",
        "a b@x.com",
        "a@-x.com",
        "a@x.c0m",
        "ab.com",
        "a@x..com",
    ] {
        assert_eq!(
            normalise(IdKind::Email, bad, &r),
            Err(Junk::MalformedEmail),
            "{bad}"
        );
    }
    assert_eq!(
        normalise(IdKind::AnonymousId, "a\u{0}b", &r),
        Err(Junk::Malformed)
    );
    assert_eq!(
        normalise(IdKind::CustomerId, &"9".repeat(255), &r),
        Err(Junk::Malformed)
    );
    assert_eq!(
        email("  Jo.Smith+lawn@Example.ORG ").value,
        "jo.smith+lawn@example.org"
    );
    assert_eq!(
        anon(" v-1 ").value,
        "v-1",
        "browsers are trimmed, not lower-cased"
    );
}

#[test]
fn the_blocklist_and_test_addresses_come_from_config_and_are_validated() {
    let r = IdentityRules::new(IdentityRulesConfig {
        blocklist: vec!["Placeholder".into()],
        test_emails: vec!["qa@southlandorganics.com".into()],
        ..IdentityRulesConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        normalise(IdKind::CustomerId, "placeholder", &r),
        Err(Junk::Blocklisted)
    );
    assert_eq!(
        normalise(IdKind::Email, "QA@southlandorganics.com", &r),
        Err(Junk::TestEmail)
    );
    assert!(
        normalise(IdKind::Email, "test@test.com", &r).is_ok(),
        "the list was replaced"
    );
    let bad = IdentityRules::new(IdentityRulesConfig {
        test_emails: vec!["not-an-email".into()],
        max_browsers_per_email: 0,
        ..IdentityRulesConfig::default()
    });
    let problems = bad.err().map(|e| e.problems).unwrap_or_default();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("identity.max_browsers_per_email"));
    assert!(problems[1].contains("`not-an-email`"));
    assert!(IdentityRules::new(IdentityRulesConfig::default()).is_ok());
}

#[test]
fn two_browsers_sharing_an_email_are_one_person() {
    let edges = [
        link(1, 1, anon("laptop"), email("jo@example.org")),
        link(9, 2, anon("phone"), email("jo@example.org")),
        link(20, 3, anon("phone"), customer("1001")),
    ];
    let p = resolve(&edges, &rules());
    assert_eq!(p.people.len(), 1);
    let person = p
        .person_of(&anon("laptop"))
        .unwrap_or_else(|| panic!("a person"));
    assert_eq!(person.members.len(), 4);
    assert_eq!(
        person.id,
        PersonId::formed_by(Uuid::from_u128(1)),
        "named by its first link"
    );
    assert_eq!(person.links.len(), 3);
    assert!(p.rejected.is_empty());
}

#[test]
fn a_shared_device_stays_with_the_customer_who_claimed_it_first() {
    let edges = [
        link(1, 1, anon("family-pc"), customer("1001")),
        link(5, 2, anon("family-pc"), customer("2002")),
        link(6, 3, anon("other"), customer("2002")),
    ];
    let p = resolve(&edges, &rules());
    let first = p.person_of(&customer("1001")).map(|x| x.id);
    assert_eq!(p.person_of(&anon("family-pc")).map(|x| x.id), first);
    assert_ne!(p.person_of(&customer("2002")).map(|x| x.id), first);
    assert_eq!(
        p.rejections(),
        BTreeMap::from([(Reason::SecondCustomerId, 1)])
    );
    assert_eq!(p.rejected[0].edge.event_id, Uuid::from_u128(2));
}

#[test]
fn merging_keeps_the_older_person_id_and_an_exclusion_splits() {
    let older = [link(1, 10, anon("a"), email("a@x.org"))];
    let younger = [link(2, 20, anon("b"), email("b@x.org"))];
    let bridge = link(3, 30, email("a@x.org"), anon("b"));
    let before = resolve(&[older[0].clone(), younger[0].clone()], &rules());
    let old_id = before.person_of(&anon("a")).map(|p| p.id);
    let young_id = before.person_of(&anon("b")).map(|p| p.id);
    let merged = resolve(
        &[older[0].clone(), younger[0].clone(), bridge.clone()],
        &rules(),
    );
    assert_eq!(merged.people.len(), 1);
    assert_eq!(
        merged.person_of(&anon("b")).map(|p| p.id),
        old_id,
        "the older id survives"
    );
    // The split: one exclusion edge, and each side is again exactly what its own edges give.
    let split = exclude(4, 40, anon("a"), anon("b"));
    let after = resolve(
        &[older[0].clone(), younger[0].clone(), bridge, split],
        &rules(),
    );
    assert_eq!(after.people, before.people);
    assert_eq!(after.person_of(&anon("b")).map(|p| p.id), young_id);
    assert_eq!(after.rejections(), BTreeMap::from([(Reason::Excluded, 1)]));
}

#[test]
fn an_email_links_at_most_the_capped_number_of_browsers_in_its_window() {
    let r = IdentityRules::new(IdentityRulesConfig {
        max_browsers_per_email: 2,
        browser_window_hours: 1,
        ..IdentityRulesConfig::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let e = email("shared@x.org");
    let edges = [
        link(0, 1, anon("b1"), e.clone()),
        link(10, 2, anon("b2"), e.clone()),
        link(20, 3, anon("b3"), e.clone()),
        link(21, 4, anon("b1"), e.clone()),
        link(200, 5, anon("b4"), e.clone()),
    ];
    let p = resolve(&edges, &r);
    assert_eq!(
        p.rejections(),
        BTreeMap::from([(Reason::TooManyBrowsers, 1)])
    );
    assert_eq!(p.rejected[0].edge.event_id, Uuid::from_u128(3));
    assert_eq!(
        p.person_of(&anon("b4")).map(|x| x.id),
        p.person_of(&anon("b1")).map(|x| x.id)
    );
}

/// A deterministic shuffle (xorshift) from `seed`.
fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut s = seed | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
}

/// A small pool of identifiers, so random edges collide often.
fn identifier() -> impl Strategy<Value = Identifier> {
    prop_oneof![
        (0..6u8).prop_map(|i| anon(&format!("b{i}"))),
        (0..4u8).prop_map(|i| email(&format!("p{i}@example.org"))),
        (0..3u8).prop_map(|i| customer(&format!("{}", 1000 + u32::from(i)))),
    ]
}

fn edge() -> impl Strategy<Value = Edge> {
    (
        0..50i64,
        0..40u128,
        identifier(),
        identifier(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(m, e, a, b, ex)| {
            if ex {
                exclude(m, e, a, b)
            } else {
                link(m, e, a, b)
            }
        })
}

proptest! {
    #[test]
    fn any_order_and_any_replay_give_the_same_partition(
        edges in prop::collection::vec(edge(), 0..40),
        seed in any::<u64>(),
        replay in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let base = resolve(&edges, &rules());
        let mut shuffled = edges.clone();
        if !edges.is_empty() {
            shuffled.extend(replay.iter().map(|i| edges[i.index(edges.len())].clone()));
        }
        shuffle(&mut shuffled, seed);
        prop_assert_eq!(resolve(&shuffled, &rules()), base);
    }

    #[test]
    fn no_person_holds_two_customers_or_an_excluded_pair(edges in prop::collection::vec(edge(), 0..60)) {
        let p = resolve(&edges, &rules());
        for person in p.people.values() {
            let customers = person.members.iter().filter(|m| m.kind == IdKind::CustomerId).count();
            prop_assert!(customers <= 1, "{:?}", person.members);
            for e in edges.iter().filter(|e| e.kind == EdgeKind::Exclude && e.a != e.b) {
                prop_assert!(!(person.members.contains(&e.a) && person.members.contains(&e.b)));
            }
        }
        // Every identifier is in at most one person.
        let mut seen = BTreeSet::new();
        for person in p.people.values() {
            for m in &person.members {
                prop_assert!(seen.insert(m.clone()), "{:?} in two people", m);
            }
        }
    }

    #[test]
    fn junk_never_becomes_an_identifier(v in prop::sample::select(JUNK_SAMPLES.to_vec()), pad in "[ \t]{0,3}") {
        for kind in [IdKind::AnonymousId, IdKind::Email, IdKind::CustomerId] {
            let raw = format!("{pad}{v}{pad}");
            prop_assert!(normalise(kind, &raw, &rules()).is_err());
        }
    }
}

const JUNK_SAMPLES: [&str; 10] = [
    "null",
    "Null",
    "UNDEFINED",
    "nan",
    "0",
    "-1",
    "anonymous",
    "guest",
    "[object Object]",
    "000-000",
];

#[test]
fn the_guards_are_read_and_checked_with_the_rest_of_the_config() {
    let with = |section: &str| {
        crate::Config::from_toml(&format!("{}\n{section}\n", crate::config::SOUTHLAND_TOML))
    };
    let cfg = with("[identity]\nblocklist = [\"n/a\"]\nmax_browsers_per_email = 3")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.identity_rules().max_browsers_per_email(), 3);
    assert_eq!(
        normalise(IdKind::Email, "N/A", cfg.identity_rules()),
        Err(Junk::Blocklisted)
    );
    assert_eq!(
        crate::Config::southland().identity_rules(),
        &IdentityRules::default()
    );
    let bad = with("[identity]\nbrowser_window_hours = 0\nmax_browsers = 2")
        .err()
        .map(|e| e.to_string());
    assert!(
        bad.as_deref().is_some_and(|e| e.contains("max_browsers")),
        "{bad:?}"
    );
    let zero = with("[identity]\nbrowser_window_hours = 0")
        .err()
        .map(|e| e.problems)
        .unwrap_or_default();
    assert_eq!(
        zero,
        vec!["identity.browser_window_hours: must be at least 1".to_owned()]
    );
}

/// A browser's stored rows: `minutes` are the events' times, each kind picked by `kinds`.
fn browser_rows(cfg: &crate::Config, browser: &str, events: &[(i64, u8)]) -> Vec<crate::EventRow> {
    let mut profile = None;
    let mut rows = Vec::new();
    for (i, &(minute, kind)) in events.iter().enumerate() {
        let (event, props) = match kind % 4 {
            0 => ("page_view", serde_json::json!({})),
            1 => (
                "tunnel_viewed",
                serde_json::json!({"tunnel": "lawn-garden"}),
            ),
            2 => (
                "product_view",
                serde_json::json!({"product_id": "1", "product_handle": "litter-life"}),
            ),
            _ => (
                "search_performed",
                serde_json::json!({"query": "coop", "results_count": 2}),
            ),
        };
        let raw = serde_json::json!({
            "v": 1, "event": event, "anonymous_id": browser,
            "session_id": format!("{browser}-s{}", minute / 60),
            "event_id": Uuid::from_u128((u128::from(browser.len() as u32) << 64) | (i as u128 + 1)
                ^ u128::from(browser.bytes().map(u32::from).sum::<u32>()) << 80).to_string(),
            "timestamp": at(minute).to_rfc3339(),
            "page_url": "https://southlandorganics.com/", "properties": props,
        });
        let received = at(minute) + Duration::seconds(1);
        let e = crate::validate(cfg, &raw, received).unwrap_or_else(|r| panic!("{r:?}"));
        let applied = crate::apply(cfg, profile, &e, received);
        rows.push(applied.row);
        profile = Some(applied.profile);
    }
    rows
}

proptest! {
    #[test]
    fn a_person_is_the_replay_of_the_union_and_a_split_restores_each_side(
        a in prop::collection::vec((0..3000i64, any::<u8>()), 1..60),
        b in prop::collection::vec((0..3000i64, any::<u8>()), 1..60),
        seed in any::<u64>(),
    ) {
        let cfg = crate::Config::southland();
        let (mut a, mut b) = (a, b);
        a.sort();
        b.sort();
        let (ra, rb) = (browser_rows(&cfg, "laptop", &a), browser_rows(&cfg, "phone", &b));
        let mut union: Vec<&crate::EventRow> = ra.iter().chain(&rb).collect();
        // Any order in, one profile out.
        shuffle(&mut union, seed);
        let merged = person_profile(&cfg, &union);
        // Written out: the union replayed as one visitor, in processing order.
        let mut sorted: Vec<&crate::EventRow> = ra.iter().chain(&rb).collect();
        sorted.sort_by_key(|r| (r.processed_at, r.event_id));
        let mut replay = None;
        for r in &sorted {
            replay = Some(crate::apply(&cfg, replay, &r.to_valid_event(), r.processed_at).profile);
        }
        prop_assert_eq!(&merged, &replay);
        // Every signal of both sides, within the newest max_signals of the union.
        let merged = merged.unwrap_or_else(|| panic!("events give a profile"));
        let own = |rows: &[crate::EventRow]| person_profile(&cfg, &rows.iter().collect::<Vec<_>>());
        let (pa, pb) = (own(&ra), own(&rb));
        let sides = pa.iter().chain(pb.iter()).map(|p| p.signals.len()).sum::<usize>();
        prop_assert_eq!(merged.signals.len(), sides.min(cfg.max_signals()));
        // The split: each side's profile is exactly what its own events gave when stored.
        let stored = |rows: &[crate::EventRow]| {
            rows.iter().fold(None, |p, r| Some(crate::apply(&cfg, p, &r.to_valid_event(), r.processed_at).profile))
        };
        prop_assert_eq!(pa, stored(&ra));
        prop_assert_eq!(pb, stored(&rb));
    }
}

/// One validated and applied event's row.
fn row_of(raw: serde_json::Value) -> crate::EventRow {
    let cfg = crate::Config::southland();
    let received = at(10);
    let e = crate::validate(&cfg, &raw, received).unwrap_or_else(|r| panic!("{r:?}"));
    crate::apply(&cfg, None, &e, received).row
}

fn raw_event(event: &str, minute: i64, extra: serde_json::Value) -> serde_json::Value {
    let mut raw = serde_json::json!({
        "v": 1, "event": event, "anonymous_id": "laptop", "session_id": "s1",
        "event_id": Uuid::from_u128(0xE0 + minute as u128).to_string(),
        "timestamp": at(minute).to_rfc3339(),
        "page_url": "https://southlandorganics.com/",
    });
    if let (Some(o), serde_json::Value::Object(x)) = (raw.as_object_mut(), extra) {
        o.extend(x);
    }
    raw
}

#[test]
fn identity_events_link_their_email_and_any_event_its_customer_id() {
    let identify = row_of(raw_event(
        "identify",
        1,
        serde_json::json!({"customer_id": "c-9", "properties": {"email": "Bill@Example.org"}}),
    ));
    let edges = edges_of(&identify);
    let pairs: Vec<(IdKind, &str)> = edges
        .iter()
        .map(|e| {
            assert_eq!(e.kind, EdgeKind::Link);
            assert_eq!(e.event_id, identify.event_id);
            assert!(e.touches(&anon("laptop")));
            let other = if e.a.kind == IdKind::AnonymousId {
                &e.b
            } else {
                &e.a
            };
            (other.kind, other.value.as_str())
        })
        .collect();
    // Values as sent: resolve normalises them.
    assert_eq!(
        pairs,
        vec![
            (IdKind::CustomerId, "c-9"),
            (IdKind::Email, "Bill@Example.org")
        ]
    );
    // A page view's customer id links; an email in its properties does not.
    let page = row_of(raw_event(
        "page_view",
        2,
        serde_json::json!({"customer_id": "c-9", "properties": {"email": "bill@example.org"}}),
    ));
    assert_eq!(edges_of(&page).len(), 1);
    assert_eq!(edges_of(&page)[0].b, customer("c-9"));
    // The order-status event needs its customer id.
    let cfg = crate::Config::southland();
    let refused = crate::validate(
        &cfg,
        &raw_event("order_status_viewed", 3, serde_json::json!({})),
        at(10),
    );
    let problems = refused.err().map(|r| r.problems).unwrap_or_default();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].field, "customer_id");
    assert_eq!(problems[0].rule, "is required for order_status_viewed");
}

#[test]
fn a_batch_keeps_each_pair_once_at_its_earliest_event() {
    let late = row_of(raw_event(
        "page_view",
        5,
        serde_json::json!({"customer_id": "c-9"}),
    ));
    let early = row_of(raw_event(
        "page_view",
        3,
        serde_json::json!({"customer_id": "c-9"}),
    ));
    let edges = batch_edges(&[late, early.clone()]);
    assert_eq!(edges.len(), 1);
    assert_eq!(
        (&edges[0].0, edges[0].1.at, edges[0].1.event_id),
        (&early.brand_id, early.timestamp, early.event_id)
    );
}

#[test]
fn junk_on_either_side_is_rejected_with_its_reason_and_links_nobody() {
    let raw = |kind, v: &str| Identifier {
        kind,
        value: v.to_owned(),
    };
    let edges = vec![
        link(1, 1, anon("laptop"), raw(IdKind::Email, "test@test.com")),
        link(2, 2, anon("phone"), raw(IdKind::Email, "TEST@test.com ")),
        link(3, 3, raw(IdKind::AnonymousId, "undefined"), customer("c-1")),
        link(
            4,
            4,
            anon("tablet"),
            raw(IdKind::Email, " Bill@Example.org"),
        ),
        link(5, 5, anon("desk"), email("bill@example.org")),
    ];
    let p = resolve(&edges, &rules());
    let reasons: Vec<&str> = p.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, vec!["test_email", "test_email", "blocklisted"]);
    // The two browsers of the normalised email are one person; no junk value is a member.
    assert_eq!(p.people.len(), 1);
    let person = p.person_of(&anon("tablet")).map(|x| x.members.clone());
    assert_eq!(
        person,
        Some([anon("desk"), anon("tablet"), email("bill@example.org")].into())
    );
}

#[test]
fn a_key_finds_the_person_and_each_identifier_names_the_link_that_attached_it() {
    let edges = vec![
        link(1, 1, anon("laptop"), email("bill@example.org")),
        link(2, 2, anon("phone"), email("bill@example.org")),
        link(3, 3, anon("laptop"), customer("c-1")),
        link(4, 4, anon("tablet"), customer("c-2")),
        link(5, 5, anon("phone"), customer("c-2")),
        link(6, 6, anon("kiosk"), raw_junk()),
    ];
    let p = resolve(&edges, &rules());
    let Some(Found::Person(bill)) = find(&p, " BILL@example.org", &rules()) else {
        panic!("the email names bill");
    };
    assert_eq!(find(&p, "phone", &rules()), Some(Found::Person(bill)));
    assert_eq!(find(&p, "c-1", &rules()), Some(Found::Person(bill)));
    assert_eq!(
        find(&p, &bill.id.0.to_string(), &rules()),
        Some(Found::Person(bill))
    );
    assert_eq!(
        find(&p, "desk", &rules()),
        Some(Found::Browser(crate::AnonymousId::new("desk")))
    );
    assert_eq!(find(&p, "null", &rules()), None);
    let attached: Vec<(String, u128)> = attachments(bill)
        .into_iter()
        .map(|(m, e)| (m.value.clone(), e.event_id.as_u128()))
        .collect();
    assert_eq!(
        attached,
        vec![
            ("laptop".to_owned(), 1),
            ("phone".to_owned(), 2),
            ("bill@example.org".to_owned(), 1),
            ("c-1".to_owned(), 3),
        ]
    );
    let s = summary(&p);
    // bill (laptop, phone) and the tablet's c-2; the phone's c-2 is a second customer.
    assert_eq!(
        (s.linked_people, s.linked_browsers, s.cross_device_people),
        (2, 3, 1)
    );
    assert_eq!(s.rejections["second_customer_id"], 1);
    assert_eq!(s.rejections["blocklisted"], 1);
    assert_eq!(s.rejections.len(), Reason::ALL.len());
}

fn raw_junk() -> Identifier {
    Identifier {
        kind: IdKind::Email,
        value: "undefined".to_owned(),
    }
}

#[test]
fn a_second_customers_login_on_a_shared_browser_brings_none_of_their_identifiers() {
    // Betty signs in on Bill's family computer (email and customer id in one event), then on
    // her phone: the family login is refused as a whole, so her email and phone stay hers.
    let edges = vec![
        link(1, 1, anon("family"), email("bill@example.org")),
        link(1, 1, anon("family"), customer("cust-bill")),
        link(5, 2, anon("family"), email("betty@example.org")),
        link(5, 2, anon("family"), customer("cust-betty")),
        link(9, 3, anon("phone"), email("betty@example.org")),
        link(9, 3, anon("phone"), customer("cust-betty")),
    ];
    let p = resolve(&edges, &rules());
    let bill = p.person_of(&anon("family")).map(|x| x.members.clone());
    let betty = p.person_of(&anon("phone")).map(|x| x.members.clone());
    assert_eq!(
        bill,
        Some(
            [
                anon("family"),
                email("bill@example.org"),
                customer("cust-bill")
            ]
            .into()
        )
    );
    assert_eq!(
        betty,
        Some(
            [
                anon("phone"),
                email("betty@example.org"),
                customer("cust-betty")
            ]
            .into()
        )
    );
    let refused: Vec<u128> = p
        .rejected
        .iter()
        .map(|r| r.edge.event_id.as_u128())
        .collect();
    assert_eq!(refused, vec![2, 2]);
    assert!(p
        .rejected
        .iter()
        .all(|r| r.reason == Reason::SecondCustomerId));
}

fn key() -> TombstoneKey {
    match TombstoneKey::new("a tombstone key of at least thirty-two bytes") {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_tombstone_key_must_be_long_enough() {
    assert!(TombstoneKey::new("short").is_err());
    assert!(TombstoneKey::new(&"k".repeat(MIN_KEY_BYTES)).is_ok());
}

#[test]
fn a_tombstone_is_a_keyed_hash_never_the_value() {
    let t = tombstone(&key(), &email("betty@example.com"));
    assert_eq!(t.hash.len(), 64);
    assert!(!t.hash.contains("betty"));
    assert_eq!(t, tombstone(&key(), &email("betty@example.com")));
    let other = TombstoneKey::new("another key, also at least thirty-two bytes long")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(t.hash, tombstone(&other, &email("betty@example.com")).hash);
    // The kind is part of what is hashed: a customer id that happens to equal an anonymous id
    // is another identifier.
    assert_ne!(
        tombstone(&key(), &customer("4471")).hash,
        tombstone(&key(), &anon("4471")).hash
    );
}

#[test]
fn an_erasure_covers_the_person_its_edges_and_the_browsers_they_name() {
    let log = vec![
        link(1, 1, anon("phone"), email("betty@example.com")),
        link(2, 2, anon("laptop"), email("Betty@Example.com ")),
        // Betty logs in on Bill's computer: refused (second customer), but it names her.
        link(3, 3, anon("family-pc"), customer("bill-1")),
        link(4, 4, anon("family-pc"), customer("betty-2")),
        link(5, 5, anon("phone"), customer("betty-2")),
        link(6, 6, anon("elsewhere"), email("carol@example.com")),
    ];
    let p = resolve(&log, &rules());
    let found = find(&p, "betty@example.com", &rules()).unwrap_or_else(|| panic!("found"));
    let e = Erasure::of(&found, &log, &rules()).keyed(&key());
    let values = |ids: &[crate::AnonymousId]| {
        ids.iter()
            .map(|a| a.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&e.browsers), ["laptop", "phone"]);
    assert_eq!(
        values(&e.candidate_browsers),
        ["family-pc", "laptop", "phone"]
    );
    assert_eq!(e.identifiers.len(), 4);
    assert_eq!(e.tombstones.len(), 4);
    let events: BTreeSet<u128> = e.edges.iter().map(|x| x.event_id.as_u128()).collect();
    assert_eq!(events, BTreeSet::from([1, 2, 4, 5]));
}

#[test]
fn an_arriving_event_with_an_erased_identifier_is_suppressed() {
    let cfg = crate::Config::southland();
    let erased = Tombstones::new(key(), [tombstone(&key(), &email("betty@example.com")).hash]);
    let raw = |extra: serde_json::Value| {
        let mut v = serde_json::json!({
            "v": 1, "event": "identify", "anonymous_id": "new-phone", "session_id": "s1",
            "timestamp": "2026-03-04T10:00:00Z", "page_url": "https://southlandorganics.com/",
        });
        if let (Some(o), Some(x)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(x.clone());
        }
        let now: DateTime<Utc> = "2026-03-04T10:00:05Z".parse().unwrap_or_default();
        crate::validate(&cfg, &v, now).unwrap_or_else(|r| panic!("{r}"))
    };
    let came_back = raw(serde_json::json!({"properties": {"email": "BETTY@Example.com"}}));
    assert_eq!(erased.hits(&came_back, &rules()).len(), 1);
    let stranger = raw(serde_json::json!({"properties": {"email": "carol@example.com"}}));
    assert!(erased.hits(&stranger, &rules()).is_empty());
    assert!(Tombstones::new(key(), [])
        .hits(&came_back, &rules())
        .is_empty());
}
