//! Commerce (issue 16, maturity level 3): Shopify's order webhooks and money, as data. Pure:
//! [`webhook`] decides whether a delivery is genuine and what it is, [`money`] reads Shopify's
//! decimal amounts into integer minor units of their currency, never mixing currencies,
//! [`mod@order`] reads orders and refunds (and which version of an order wins), [`ledger`] books
//! revenue (+paid, −refunded, each entry once) and gives LTV and AOV, [`link`] says whose an
//! order is and by which evidence.

pub mod ledger;
pub mod link;
pub mod money;
pub mod order;
pub mod webhook;

pub use ledger::{aov, net, paid_entry, refund_entry, Entry, EntryKind};
pub use link::{link_order, Link, LinkMethod};
pub use money::{minor_units, Money, MoneyError};
pub use order::{order, refund, BrowserSource, Line, Order, Refund, BROWSER_ATTRIBUTE};
pub use webhook::{delivery, verify, Delivery, Refused, SignedWith, WebhookSecrets};

/// The webhook topics the collector takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    /// An order was placed (not necessarily paid).
    OrdersCreate,
    /// An order was paid: revenue is booked here.
    OrdersPaid,
    /// An order changed.
    OrdersUpdated,
    /// An order was cancelled.
    OrdersCancelled,
    /// A refund was made: revenue is taken back here.
    RefundsCreate,
}

impl Topic {
    /// Every topic, in the order they are documented.
    pub const ALL: [Topic; 5] = [
        Topic::OrdersCreate,
        Topic::OrdersPaid,
        Topic::OrdersUpdated,
        Topic::OrdersCancelled,
        Topic::RefundsCreate,
    ];

    /// Shopify's name (`X-Shopify-Topic`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Topic::OrdersCreate => "orders/create",
            Topic::OrdersPaid => "orders/paid",
            Topic::OrdersUpdated => "orders/updated",
            Topic::OrdersCancelled => "orders/cancelled",
            Topic::RefundsCreate => "refunds/create",
        }
    }

    /// The topic a name means, if any.
    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == name.trim())
    }
}
