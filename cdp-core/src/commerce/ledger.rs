//! Revenue as a ledger: a paid order books its total once (+), each refund takes its amount
//! back (−), each entry keyed so a repeated delivery books nothing twice. The figures are
//! sums of the ledger per currency, never across currencies:
//!
//! - **LTV** of a person: what their paid orders brought in, net of refunds (the sum of their
//!   entries);
//! - **AOV**, as Shopify defines it: net sales (gross minus discounts, tax and shipping
//!   excluded) over the number of paid orders, ignoring later refunds and edits.

use super::money::{Money, MoneyError};
use super::order::{Order, Refund};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What booked an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A paid order's total.
    Paid,
    /// A refund.
    Refund,
}

/// One ledger entry, unique by `(shop, kind, key)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    /// The shop.
    pub shop: String,
    /// Paid or refund.
    pub kind: EntryKind,
    /// The order id (paid) or the refund id (refund).
    pub key: u64,
    /// The order it belongs to.
    pub order_id: u64,
    /// When it was booked (the order's creation, the refund's).
    pub at: DateTime<Utc>,
    /// Signed minor units: positive when paid, negative when refunded.
    pub amount: Money,
}

/// The entry a version of an order books: its total, once it is paid (and not cancelled).
pub fn paid_entry(order: &Order) -> Option<Entry> {
    order.is_paid().then(|| Entry {
        shop: order.shop.clone(),
        kind: EntryKind::Paid,
        key: order.id,
        order_id: order.id,
        at: order.created_at,
        amount: order.total.clone(),
    })
}

/// The entry a refund books: its amount, taken back.
pub fn refund_entry(refund: &Refund) -> Entry {
    Entry {
        shop: refund.shop.clone(),
        kind: EntryKind::Refund,
        key: refund.id,
        order_id: refund.order_id,
        at: refund.created_at,
        amount: Money {
            minor: -refund.amount.minor.abs(),
            currency: refund.amount.currency.clone(),
        },
    }
}

/// The ledger's sum per currency, each entry counted once however often it is given.
pub fn net(entries: &[Entry]) -> Result<BTreeMap<String, i64>, MoneyError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for e in entries {
        if !seen.insert((&e.shop, e.kind, e.key)) {
            continue;
        }
        let sum = out.entry(e.amount.currency.clone()).or_default();
        *sum = sum
            .checked_add(e.amount.minor)
            .ok_or_else(|| MoneyError::Range(format!("{sum} + {}", e.amount.minor)))?;
    }
    Ok(out)
}

/// Shopify's AOV per currency: net sales of the paid orders over their number, in minor
/// units (rounded half away from zero), each order once (its latest version).
pub fn aov(orders: &[Order]) -> BTreeMap<String, i64> {
    let mut latest: BTreeMap<(&str, u64), &Order> = BTreeMap::new();
    for o in orders {
        let slot = latest.entry((o.shop.as_str(), o.id)).or_insert(o);
        if o.replaces(slot) {
            *slot = o;
        }
    }
    let mut sums: BTreeMap<String, (i128, i128)> = BTreeMap::new();
    for o in latest.values().filter(|o| o.is_paid()) {
        let s = sums.entry(o.net_sales.currency.clone()).or_default();
        s.0 += i128::from(o.net_sales.minor);
        s.1 += 1;
    }
    sums.into_iter()
        .map(|(c, (total, n))| {
            let avg = (2 * total + n * total.signum()) / (2 * n);
            (c, i64::try_from(avg).unwrap_or(i64::MAX))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::order::{order, refund};
    use super::*;
    use serde_json::json;

    fn paid(id: u64, total: &str, status: &str, updated: &str) -> Order {
        order(
            "s",
            &json!({
                "id": id, "created_at": "2026-03-04T10:00:00Z", "updated_at": updated,
                "currency": "USD", "financial_status": status,
                "total_line_items_price": total, "total_discounts": "0.00",
                "subtotal_price": total, "total_price": total,
            }),
        )
        .unwrap_or_else(|p| panic!("{p:?}"))
    }

    #[test]
    fn one_hundred_paid_then_thirty_refunded_is_ltv_seventy_and_aov_one_hundred() {
        let o = paid(1, "100.00", "paid", "2026-03-04T10:01:00Z");
        let r = refund(
            "s",
            &json!({"id": 9, "order_id": 1, "created_at": "2026-03-05T10:00:00Z",
                "transactions": [{"kind": "refund", "status": "success", "amount": "30.00", "currency": "USD"}]}),
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        let later = paid(1, "100.00", "partially_refunded", "2026-03-05T10:00:01Z");
        // Three deliveries of the paid order, the refund twice, and the order's later version.
        let mut entries: Vec<Entry> = [&o, &o, &o, &later]
            .into_iter()
            .filter_map(paid_entry)
            .collect();
        entries.push(refund_entry(&r));
        entries.push(refund_entry(&r));
        assert_eq!(
            net(&entries).map(|m| m.get("USD").copied()),
            Ok(Some(7_000))
        );
        assert_eq!(aov(&[o.clone(), later, o]).get("USD"), Some(&10_000));
    }

    #[test]
    fn an_unpaid_or_cancelled_order_books_nothing_and_currencies_stay_apart() {
        assert_eq!(
            paid_entry(&paid(2, "50.00", "pending", "2026-03-04T10:01:00Z")),
            None
        );
        let mut cancelled = paid(3, "50.00", "paid", "2026-03-04T10:01:00Z");
        cancelled.cancelled_at = Some(cancelled.updated_at);
        assert_eq!(paid_entry(&cancelled), None);
        let usd = paid(4, "10.00", "paid", "2026-03-04T10:01:00Z");
        let mut cad = paid(5, "20.00", "paid", "2026-03-04T10:01:00Z");
        cad.total.currency = "CAD".into();
        cad.net_sales.currency = "CAD".into();
        let entries: Vec<Entry> = [&usd, &cad].into_iter().filter_map(paid_entry).collect();
        let sums = net(&entries).unwrap_or_default();
        assert_eq!(
            (sums.get("USD"), sums.get("CAD")),
            (Some(&1_000), Some(&2_000))
        );
        assert_eq!(aov(&[usd, cad]).len(), 2);
        // AOV rounds half away from zero: 1.00 and 2.00 average to 1.50 exactly; 1.00, 1.00
        // and 2.01 to 1.3366..., so 134 cents.
        let three = [
            paid(6, "1.00", "paid", "2026-03-04T10:01:00Z"),
            paid(7, "1.00", "paid", "2026-03-04T10:01:00Z"),
            paid(8, "2.01", "paid", "2026-03-04T10:01:00Z"),
        ];
        assert_eq!(aov(&three).get("USD"), Some(&134));
    }
}
