//! A Shopify order and refund as the core keeps them, read from the REST shape the webhooks
//! carry (`id`, `updated_at`, `currency`, `total_line_items_price`, `total_discounts`,
//! `subtotal_price`, `total_price`, `financial_status`, `cancelled_at`, `customer.id`,
//! `email`, `note_attributes[]`, `landing_site`, `line_items[]`; a refund's `transactions[]`).
//! Every problem names its field path, as the event contract's do.
//!
//! Which of two versions of one order is kept: the one with the later `updated_at`; on a tie
//! the one already held ([`Order::replaces`]), so repeated and out-of-order deliveries leave
//! one order, the newest.

use super::money::{minor_units, Money};
use crate::contract::Violation;
use crate::AnonymousId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The cart attribute and `landing_site` parameter that carry the browser's anonymous id
/// into an order (the tracker writes it through `/cart/update.js`).
pub const BROWSER_ATTRIBUTE: &str = "cdp_aid";

/// How an order names the browser it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrowserSource {
    /// The cart attribute, now one of the order's `note_attributes`.
    NoteAttribute,
    /// A `cdp_aid` parameter of the order's `landing_site`.
    LandingSite,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The product, when the line names one.
    pub product_id: Option<u64>,
    /// The variant.
    pub variant_id: Option<u64>,
    /// The SKU.
    pub sku: Option<String>,
    /// How many.
    pub quantity: i64,
    /// The unit price.
    pub price: Money,
}

/// An order, money in minor units of its one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The shop (`X-Shopify-Shop-Domain`).
    pub shop: String,
    /// Shopify's order id.
    pub id: u64,
    /// When Shopify last changed it: the newer version wins.
    pub updated_at: DateTime<Utc>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// `paid`, `pending`, `refunded`, ... as Shopify says.
    pub financial_status: Option<String>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Line items before discounts (`total_line_items_price`): gross sales.
    pub gross: Money,
    /// Discounts (`total_discounts`).
    pub discounts: Money,
    /// Gross minus discounts, tax and shipping excluded (`subtotal_price`): what AOV averages.
    pub net_sales: Money,
    /// What the customer paid, tax and shipping included (`total_price`).
    pub total: Money,
    /// The shop's customer id.
    pub customer_id: Option<String>,
    /// The email on the order.
    pub email: Option<String>,
    /// The browser the order names, and how.
    pub browser: Option<(AnonymousId, BrowserSource)>,
    /// The lines.
    pub lines: Vec<Line>,
}

impl Order {
    /// Whether `self` (arriving) replaces `held`: it is the same order and strictly newer.
    pub fn replaces(&self, held: &Order) -> bool {
        self.shop == held.shop && self.id == held.id && self.updated_at > held.updated_at
    }

    /// Whether it counts as paid (revenue is booked for it).
    pub fn is_paid(&self) -> bool {
        self.cancelled_at.is_none()
            && matches!(
                self.financial_status.as_deref(),
                Some("paid" | "partially_refunded" | "refunded")
            )
    }
}

/// A refund of an order: the sum of its successful refund transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The shop.
    pub shop: String,
    /// Shopify's refund id.
    pub id: u64,
    /// The order refunded.
    pub order_id: u64,
    /// When.
    pub created_at: DateTime<Utc>,
    /// How much went back (positive).
    pub amount: Money,
}

struct Reader<'a> {
    body: &'a Value,
    problems: Vec<Violation>,
}

impl<'a> Reader<'a> {
    fn new(body: &'a Value) -> Reader<'a> {
        let mut problems = Vec::new();
        if !body.is_object() {
            problems.push(Violation::new("body", "must be a JSON object"));
        }
        Reader { body, problems }
    }

    fn fail(&mut self, field: &str, rule: impl Into<String>) {
        self.problems.push(Violation::new(field, rule));
    }

    fn id(&mut self, v: &Value, field: &str) -> Option<u64> {
        match v {
            Value::Number(n) => n.as_u64().or_else(|| {
                self.fail(field, "must be a positive integer");
                None
            }),
            Value::String(s) => s.parse().ok().or_else(|| {
                self.fail(field, "must be a positive integer");
                None
            }),
            Value::Null => None,
            _ => {
                self.fail(field, "must be a positive integer");
                None
            }
        }
    }

    fn need_id(&mut self, field: &str) -> u64 {
        let v = &self.body[field];
        if v.is_null() {
            self.fail(field, "is required");
            return 0;
        }
        self.id(v, field).unwrap_or(0)
    }

    fn time(&mut self, field: &str, required: bool) -> Option<DateTime<Utc>> {
        match self.body[field].as_str() {
            Some(s) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    self.fail(field, "must be an RFC 3339 time");
                    None
                }
            },
            None if required => {
                self.fail(field, "is required");
                None
            }
            None => None,
        }
    }

    fn text(&self, v: &Value) -> Option<String> {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    fn money(&mut self, v: &Value, field: &str, currency: &str) -> Money {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                self.fail(field, "is required: a decimal amount such as \"199.00\"");
                String::new()
            }
        };
        if text.is_empty() {
            return Money {
                minor: 0,
                currency: currency.to_owned(),
            };
        }
        minor_units(&text, currency).unwrap_or_else(|e| {
            self.fail(field, e.to_string());
            Money {
                minor: 0,
                currency: currency.to_owned(),
            }
        })
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<Violation>> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(self.problems)
        }
    }
}

/// The browser an order names: a `cdp_aid` note attribute first, then a `cdp_aid` parameter
/// of `landing_site`.
fn browser_of(body: &Value) -> Option<(AnonymousId, BrowserSource)> {
    let attribute = body["note_attributes"].as_array().and_then(|all| {
        all.iter().find_map(|a| {
            (a["name"].as_str() == Some(BROWSER_ATTRIBUTE))
                .then(|| a["value"].as_str())
                .flatten()
        })
    });
    let landing = body["landing_site"].as_str().and_then(|site| {
        let query = site.split_once('?')?.1;
        let query = query.split('#').next().unwrap_or(query);
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == BROWSER_ATTRIBUTE).then_some(v)
        })
    });
    let usable = |v: &str| {
        let v = v.trim();
        (!v.is_empty() && v.len() <= 200 && !v.chars().any(char::is_control)).then(|| v.to_owned())
    };
    attribute
        .and_then(usable)
        .map(|v| (AnonymousId::new(v), BrowserSource::NoteAttribute))
        .or_else(|| {
            landing
                .and_then(usable)
                .map(|v| (AnonymousId::new(v), BrowserSource::LandingSite))
        })
}

/// The order in an `orders/*` webhook body from `shop`, or every problem with its field.
pub fn order(shop: &str, body: &Value) -> Result<Order, Vec<Violation>> {
    let mut r = Reader::new(body);
    let id = r.need_id("id");
    let updated_at = r.time("updated_at", true);
    let created_at = r.time("created_at", true);
    let cancelled_at = r.time("cancelled_at", false);
    let currency = match r.text(&body["currency"]) {
        Some(c) => c.to_ascii_uppercase(),
        None => {
            r.fail("currency", "is required: an ISO 4217 code");
            "XXX".to_owned()
        }
    };
    let gross = r.money(
        &body["total_line_items_price"],
        "total_line_items_price",
        &currency,
    );
    let discounts = r.money(&body["total_discounts"], "total_discounts", &currency);
    let net_sales = r.money(&body["subtotal_price"], "subtotal_price", &currency);
    let total = r.money(&body["total_price"], "total_price", &currency);
    let mut lines = Vec::new();
    for (i, l) in body["line_items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let f = |name: &str| format!("line_items[{i}].{name}");
        let quantity = l["quantity"].as_i64().unwrap_or_else(|| {
            r.fail(&f("quantity"), "must be an integer");
            0
        });
        lines.push(Line {
            product_id: r.id(&l["product_id"], &f("product_id")),
            variant_id: r.id(&l["variant_id"], &f("variant_id")),
            sku: r.text(&l["sku"]),
            quantity,
            price: r.money(&l["price"], &f("price"), &currency),
        });
    }
    let customer_id = match &body["customer"]["id"] {
        Value::Null => None,
        v => r.id(v, "customer.id").map(|n| n.to_string()),
    };
    let email = r.text(&body["email"]);
    let order = Order {
        shop: shop.to_owned(),
        id,
        updated_at: updated_at.unwrap_or_default(),
        created_at: created_at.unwrap_or_default(),
        financial_status: r.text(&body["financial_status"]),
        cancelled_at,
        gross,
        discounts,
        net_sales,
        total,
        customer_id,
        email,
        browser: browser_of(body),
        lines,
    };
    r.finish(order)
}

/// The refund in a `refunds/create` webhook body from `shop`: its successful `refund`
/// transactions summed (one currency), or every problem with its field.
pub fn refund(shop: &str, body: &Value) -> Result<Refund, Vec<Violation>> {
    let mut r = Reader::new(body);
    let id = r.need_id("id");
    let order_id = r.need_id("order_id");
    let created_at = r.time("created_at", true);
    let mut amount: Option<Money> = None;
    for (i, t) in body["transactions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if t["kind"].as_str() != Some("refund") || t["status"].as_str() != Some("success") {
            continue;
        }
        let field = format!("transactions[{i}].amount");
        let currency = t["currency"].as_str().unwrap_or("").to_ascii_uppercase();
        let m = r.money(&t["amount"], &field, &currency);
        amount = match amount.take() {
            None => Some(m),
            Some(sum) => match sum.plus(&m) {
                Ok(s) => Some(s),
                Err(e) => {
                    r.fail(&field, e.to_string());
                    Some(sum)
                }
            },
        };
    }
    let amount = amount.unwrap_or_else(|| {
        r.fail("transactions", "must hold a successful refund transaction");
        Money {
            minor: 0,
            currency: "XXX".into(),
        }
    });
    let refund = Refund {
        shop: shop.to_owned(),
        id,
        order_id,
        created_at: created_at.unwrap_or_default(),
        amount,
    };
    r.finish(refund)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({
            "id": 820982911946154508u64,
            "name": "#1001",
            "created_at": "2026-03-04T10:00:00-05:00",
            "updated_at": "2026-03-04T10:05:00-05:00",
            "currency": "USD",
            "financial_status": "paid",
            "cancelled_at": null,
            "total_line_items_price": "110.00",
            "total_discounts": "10.00",
            "subtotal_price": "100.00",
            "total_price": "113.50",
            "email": "rita@example.org",
            "customer": {"id": 207119551},
            "note_attributes": [{"name": "gift", "value": "no"}, {"name": "cdp_aid", "value": "v-laptop-1"}],
            "landing_site": "/products/hen-helper?cdp_aid=v-other&utm_source=email",
            "line_items": [{"product_id": 632910392, "variant_id": 808950810, "sku": "HH-1", "quantity": 2, "price": "55.00"}]
        })
    }

    #[test]
    fn an_order_reads_into_minor_units_with_its_browser() {
        let o = order("southland.myshopify.com", &body()).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(o.id, 820_982_911_946_154_508);
        assert_eq!(
            (
                o.gross.minor,
                o.discounts.minor,
                o.net_sales.minor,
                o.total.minor
            ),
            (11_000, 1_000, 10_000, 11_350)
        );
        assert_eq!(o.updated_at.to_rfc3339(), "2026-03-04T15:05:00+00:00");
        assert_eq!(o.customer_id.as_deref(), Some("207119551"));
        assert_eq!(
            o.browser,
            Some((AnonymousId::new("v-laptop-1"), BrowserSource::NoteAttribute))
        );
        assert_eq!(o.lines[0].price.minor, 5_500);
        assert!(o.is_paid());
        let mut b = body();
        b["note_attributes"] = json!([]);
        let o = order("s", &b).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(
            o.browser,
            Some((AnonymousId::new("v-other"), BrowserSource::LandingSite))
        );
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut b = body();
        b["id"] = json!("not a number");
        b["updated_at"] = json!("yesterday");
        b["total_price"] = json!("1.005");
        b["line_items"][0]["quantity"] = json!("two");
        let problems = order("s", &b).err().unwrap_or_default();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["id", "updated_at", "total_price", "line_items[0].quantity"]
        );
        assert_eq!(
            order("s", &json!([])).err().map(|p| p[0].field.clone()),
            Some("body".to_owned())
        );
    }

    #[test]
    fn the_newer_version_of_an_order_wins_and_a_tie_keeps_the_held_one() {
        let held = order("s", &body()).unwrap_or_else(|p| panic!("{p:?}"));
        let mut later = body();
        later["updated_at"] = json!("2026-03-04T10:06:00-05:00");
        let later = order("s", &later).unwrap_or_else(|p| panic!("{p:?}"));
        assert!(later.replaces(&held));
        assert!(!held.replaces(&later));
        assert!(!held.clone().replaces(&held));
    }

    #[test]
    fn a_refund_sums_its_successful_refund_transactions() {
        let r = refund(
            "s",
            &json!({
                "id": 929361462, "order_id": 820982911946154508u64, "created_at": "2026-03-05T09:00:00Z",
                "transactions": [
                    {"kind": "refund", "status": "success", "amount": "20.00", "currency": "USD"},
                    {"kind": "refund", "status": "failure", "amount": "99.00", "currency": "USD"},
                    {"kind": "refund", "status": "success", "amount": "10.00", "currency": "USD"}
                ]
            }),
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(r.amount.minor, 3_000);
        let none = refund(
            "s",
            &json!({"id": 1, "order_id": 2, "created_at": "2026-03-05T09:00:00Z", "transactions": []}),
        );
        assert_eq!(
            none.err().map(|p| p[0].field.clone()),
            Some("transactions".to_owned())
        );
    }
}
