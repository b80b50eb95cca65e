//! Which person an order belongs to, strongest evidence first, and which evidence it was:
//!
//! 1. the browser the order names itself (the `cdp_aid` cart attribute, then `landing_site`);
//! 2. the browser that viewed the order's status page (the `order_status_viewed` event with
//!    the order's id, which the caller looks up);
//! 3. the order's customer id, through identity resolution;
//! 4. the order's email, through identity resolution.
//!
//! An order none of them links still counts in the totals, marked unlinked.

use super::order::{BrowserSource, Order};
use crate::identity::{normalise, IdKind, IdentityRules, Partition, PersonId};
use crate::AnonymousId;
use serde::{Deserialize, Serialize};

/// How an order was linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMethod {
    /// The order's `cdp_aid` note attribute.
    CartAttribute,
    /// A `cdp_aid` parameter of the order's `landing_site`.
    LandingSite,
    /// The order-status page's identity event.
    OrderStatus,
    /// The order's customer id, resolved to a person.
    CustomerId,
    /// The order's email, resolved to a person.
    Email,
    /// Nothing linked it.
    Unlinked,
}

impl LinkMethod {
    /// Its name, as stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkMethod::CartAttribute => "cart_attribute",
            LinkMethod::LandingSite => "landing_site",
            LinkMethod::OrderStatus => "order_status",
            LinkMethod::CustomerId => "customer_id",
            LinkMethod::Email => "email",
            LinkMethod::Unlinked => "unlinked",
        }
    }
}

/// Whom an order belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// How it was found.
    pub method: LinkMethod,
    /// The browser, when the evidence names one.
    pub browser: Option<AnonymousId>,
    /// The person, when that browser or identifier belongs to one.
    pub person: Option<PersonId>,
}

/// The link of `order` under the partition `p`; `status_browser` is the browser of an
/// `order_status_viewed` event for this order, if the store holds one.
pub fn link_order(
    order: &Order,
    status_browser: Option<&AnonymousId>,
    p: &Partition,
    rules: &IdentityRules,
) -> Link {
    let person_of = |kind: IdKind, value: &str| {
        normalise(kind, value, rules)
            .ok()
            .and_then(|id| p.person_of(&id))
            .map(|person| person.id)
    };
    let browser = |b: &AnonymousId, method: LinkMethod| Link {
        method,
        browser: Some(b.clone()),
        person: person_of(IdKind::AnonymousId, b.as_str()),
    };
    if let Some((b, source)) = &order.browser {
        let method = match source {
            BrowserSource::NoteAttribute => LinkMethod::CartAttribute,
            BrowserSource::LandingSite => LinkMethod::LandingSite,
        };
        return browser(b, method);
    }
    if let Some(b) = status_browser {
        return browser(b, LinkMethod::OrderStatus);
    }
    for (kind, value, method) in [
        (
            IdKind::CustomerId,
            order.customer_id.as_deref(),
            LinkMethod::CustomerId,
        ),
        (IdKind::Email, order.email.as_deref(), LinkMethod::Email),
    ] {
        if let Some(person) = value.and_then(|v| person_of(kind, v)) {
            return Link {
                method,
                browser: None,
                person: Some(person),
            };
        }
    }
    Link {
        method: LinkMethod::Unlinked,
        browser: None,
        person: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::order::order;
    use super::*;
    use crate::identity::{resolve, Edge, EdgeKind, Identifier};
    use serde_json::{json, Value};

    fn id(kind: IdKind, v: &str) -> Identifier {
        normalise(kind, v, &IdentityRules::default()).unwrap_or_else(|j| panic!("{j:?}"))
    }

    fn partition() -> Partition {
        let at = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        let link = |n: u128, a, b| Edge::new(EdgeKind::Link, at, uuid::Uuid::from_u128(n), a, b);
        resolve(
            &[
                link(
                    1,
                    id(IdKind::AnonymousId, "laptop"),
                    id(IdKind::Email, "rita@example.org"),
                ),
                link(
                    2,
                    id(IdKind::AnonymousId, "phone"),
                    id(IdKind::CustomerId, "207119551"),
                ),
            ],
            &IdentityRules::default(),
        )
    }

    fn an_order(extra: Value) -> Order {
        let mut b = json!({
            "id": 1, "created_at": "2026-03-04T10:00:00Z", "updated_at": "2026-03-04T10:00:00Z",
            "currency": "USD", "financial_status": "paid", "total_line_items_price": "10.00",
            "total_discounts": "0.00", "subtotal_price": "10.00", "total_price": "10.00",
        });
        if let (Some(o), Value::Object(x)) = (b.as_object_mut(), extra) {
            o.extend(x);
        }
        order("s", &b).unwrap_or_else(|p| panic!("{p:?}"))
    }

    #[test]
    fn each_path_on_its_own_links_the_order_and_says_which() {
        let p = partition();
        let rules = IdentityRules::default();
        let laptop_person = p
            .person_of(&id(IdKind::AnonymousId, "laptop"))
            .map(|x| x.id);
        let phone_person = p.person_of(&id(IdKind::AnonymousId, "phone")).map(|x| x.id);
        let cases = [
            (
                json!({"note_attributes": [{"name": "cdp_aid", "value": "laptop"}]}),
                None,
                LinkMethod::CartAttribute,
                laptop_person,
            ),
            (
                json!({"landing_site": "/?cdp_aid=laptop"}),
                None,
                LinkMethod::LandingSite,
                laptop_person,
            ),
            (
                json!({}),
                Some(AnonymousId::new("phone")),
                LinkMethod::OrderStatus,
                phone_person,
            ),
            (
                json!({"customer": {"id": 207119551}}),
                None,
                LinkMethod::CustomerId,
                phone_person,
            ),
            (
                json!({"email": " Rita@Example.org"}),
                None,
                LinkMethod::Email,
                laptop_person,
            ),
            (
                json!({"email": "stranger@example.org"}),
                None,
                LinkMethod::Unlinked,
                None,
            ),
        ];
        for (extra, status, method, person) in cases {
            let o = an_order(extra.clone());
            let l = link_order(&o, status.as_ref(), &p, &rules);
            assert_eq!((l.method, l.person), (method, person), "{extra}");
        }
        // The strongest evidence wins: the cart attribute over the customer id.
        let both = an_order(
            json!({"note_attributes": [{"name": "cdp_aid", "value": "laptop"}], "customer": {"id": 207119551}}),
        );
        assert_eq!(link_order(&both, None, &p, &rules).person, laptop_person);
        // A browser no link touched is linked as that browser alone.
        let lone = an_order(json!({"landing_site": "/?cdp_aid=kiosk"}));
        let l = link_order(&lone, None, &p, &rules);
        assert_eq!(
            (l.browser, l.person),
            (Some(AnonymousId::new("kiosk")), None)
        );
    }
}
