//! The controlled vocabulary of event types (contract v1) and the key properties each one
//! declares. Adding a type means adding it here and to `docs/cdp-event-contract.md` first.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every event type the collector accepts. The set is closed: unknown types are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// The visitor picked a path in the Decision Engine (explicit persona).
    PersonaPathSelected,
    /// The visitor switched persona in the persona banner (explicit persona).
    PersonaChanged,
    /// A Reality Tunnel page was viewed.
    TunnelViewed,
    /// The visitor was shown an A/B test variant.
    AbTestExposure,
    /// The visitor converted in an A/B test.
    AbTestConversion,
    /// A site or podcast search ran.
    SearchPerformed,
    /// A product card was clicked.
    ProductClicked,
    /// A tunnel hero call to action was clicked.
    HeroCtaClicked,
    /// The visitor signed up for email.
    EmailSignup,
    /// A podcast episode started playing.
    PodcastPlay,
    /// A podcast episode played to the end.
    PodcastComplete,
    /// The home page was viewed.
    HomepageView,
    /// A sales outcome was logged for the visitor.
    SalesOutcomeLogged,
    /// The visitor completed an outcome survey.
    OutcomeSurveyCompleted,
    /// Any page was viewed.
    PageView,
    /// A product detail page was viewed.
    ProductView,
    /// A product was added to the cart.
    AddToCart,
    /// An order was placed.
    Purchase,
    /// The visitor called (click-to-call or a tracked number).
    PhoneCall,
    /// The visitor identified themselves (email or customer id).
    Identify,
    /// Shopify's order-status page was viewed by a customer: the identity event that joins
    /// the browser (its `pd_anonymous_id` cookie) to the shop's customer id after checkout.
    OrderStatusViewed,
}

/// The JSON type a key property must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropKind {
    /// A string of at most `max_chars` characters.
    Text {
        /// Longest accepted value, in characters.
        max_chars: usize,
    },
    /// A whole number within the bounds.
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// Any finite non-negative number.
    NonNegativeNumber,
    /// A list of strings.
    TextList,
    /// An email address.
    Email,
    /// One of the personas declared in the configuration.
    Persona,
}

/// A key property of an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropSpec {
    /// Property name inside `properties`.
    pub name: &'static str,
    /// Its type.
    pub kind: PropKind,
    /// Whether an event of this type is rejected without it.
    pub required: bool,
}

const fn req(name: &'static str, kind: PropKind) -> PropSpec {
    PropSpec {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: PropKind) -> PropSpec {
    PropSpec {
        name,
        kind,
        required: false,
    }
}

/// A `'static` slice of property specs built in a constant context.
macro_rules! props {
    ($($spec:expr),* $(,)?) => {{
        const SPECS: &[PropSpec] = &[$($spec),*];
        SPECS
    }};
}

const SHORT: PropKind = PropKind::Text { max_chars: 256 };
const LONG: PropKind = PropKind::Text { max_chars: 2048 };

impl EventType {
    /// All event types, in the order the contract document lists them.
    pub const ALL: [EventType; 21] = [
        EventType::PersonaPathSelected,
        EventType::PersonaChanged,
        EventType::TunnelViewed,
        EventType::AbTestExposure,
        EventType::AbTestConversion,
        EventType::SearchPerformed,
        EventType::ProductClicked,
        EventType::HeroCtaClicked,
        EventType::EmailSignup,
        EventType::PodcastPlay,
        EventType::PodcastComplete,
        EventType::HomepageView,
        EventType::SalesOutcomeLogged,
        EventType::OutcomeSurveyCompleted,
        EventType::PageView,
        EventType::ProductView,
        EventType::AddToCart,
        EventType::Purchase,
        EventType::PhoneCall,
        EventType::Identify,
        EventType::OrderStatusViewed,
    ];

    /// The wire name, such as `search_performed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PersonaPathSelected => "persona_path_selected",
            EventType::PersonaChanged => "persona_changed",
            EventType::TunnelViewed => "tunnel_viewed",
            EventType::AbTestExposure => "ab_test_exposure",
            EventType::AbTestConversion => "ab_test_conversion",
            EventType::SearchPerformed => "search_performed",
            EventType::ProductClicked => "product_clicked",
            EventType::HeroCtaClicked => "hero_cta_clicked",
            EventType::EmailSignup => "email_signup",
            EventType::PodcastPlay => "podcast_play",
            EventType::PodcastComplete => "podcast_complete",
            EventType::HomepageView => "homepage_view",
            EventType::SalesOutcomeLogged => "sales_outcome_logged",
            EventType::OutcomeSurveyCompleted => "outcome_survey_completed",
            EventType::PageView => "page_view",
            EventType::ProductView => "product_view",
            EventType::AddToCart => "add_to_cart",
            EventType::Purchase => "purchase",
            EventType::PhoneCall => "phone_call",
            EventType::Identify => "identify",
            EventType::OrderStatusViewed => "order_status_viewed",
        }
    }

    /// Looks a wire name up; `None` for anything outside the vocabulary.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The comma-separated list of known names, for error messages.
    pub fn known_list() -> String {
        EventType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key properties this type declares.
    pub fn properties(self) -> &'static [PropSpec] {
        use PropKind::*;
        match self {
            EventType::PersonaPathSelected => props![req("persona", Persona), opt("source", SHORT)],
            EventType::PersonaChanged => {
                props![opt("from_persona", Persona), req("to_persona", Persona)]
            }
            EventType::TunnelViewed => props![req("tunnel", SHORT), opt("page_url", LONG)],
            EventType::AbTestExposure | EventType::AbTestConversion => {
                props![req("test_id", SHORT), req("variant", SHORT)]
            }
            EventType::SearchPerformed => props![
                req("query", Text { max_chars: 512 }),
                opt(
                    "results_count",
                    Integer {
                        min: 0,
                        max: 1_000_000_000,
                    },
                ),
            ],
            EventType::ProductClicked => props![
                req("product_id", SHORT),
                opt("product_handle", SHORT),
                opt("collection", SHORT),
            ],
            EventType::HeroCtaClicked => props![
                req("tunnel", SHORT),
                opt("cta_text", SHORT),
                opt("destination", LONG),
            ],
            EventType::EmailSignup => props![opt("source", SHORT), opt("email", Email)],
            EventType::PodcastPlay => props![
                req("episode_slug", SHORT),
                opt("duration", NonNegativeNumber)
            ],
            EventType::PodcastComplete => props![req("episode_slug", SHORT)],
            EventType::HomepageView => props![opt("persona_detected", Persona)],
            EventType::SalesOutcomeLogged => {
                props![req("outcome_type", SHORT), opt("products", TextList)]
            }
            EventType::OutcomeSurveyCompleted => props![
                req("survey_id", SHORT),
                opt("persona", Persona),
                opt("nps_score", Integer { min: 0, max: 10 }),
            ],
            EventType::PageView => props![],
            EventType::ProductView => props![
                req("product_id", SHORT),
                opt("product_handle", SHORT),
                opt("collection", SHORT),
            ],
            EventType::AddToCart => props![
                req("product_id", SHORT),
                opt("product_handle", SHORT),
                opt("collection", SHORT),
                opt(
                    "quantity",
                    Integer {
                        min: 1,
                        max: 10_000
                    }
                ),
            ],
            EventType::Purchase => props![
                opt("order_id", SHORT),
                opt("products", TextList),
                opt("value", NonNegativeNumber),
                opt("currency", Text { max_chars: 3 }),
            ],
            EventType::PhoneCall => props![opt("source", SHORT)],
            EventType::Identify => props![opt("email", Email)],
            EventType::OrderStatusViewed => props![opt("order_id", SHORT), opt("email", Email)],
        }
    }
}

impl EventType {
    /// Whether an event of this type is refused without a top-level `customer_id`: the
    /// order-status event exists to join the browser to the customer, and says nothing
    /// without one.
    pub fn requires_customer_id(self) -> bool {
        self == EventType::OrderStatusViewed
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_parse_and_serde() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).expect("serialise");
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert_eq!(EventType::parse("pageview"), None);
    }
}
