//! Newtypes for the identifiers that flow through the core, so a visitor id can never be passed
//! where a session id or a persona id is expected. They are shared strings (`Arc<str>`):
//! every signal and row carries them, and cloning one must not allocate.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                // Ids interned from the configuration share one allocation: compare the
                // pointer first, the text only when they differ.
                Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
            }
        }

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state);
            }
        }

        impl $name {
            /// Wraps a string that the caller has already validated.
            pub fn new(value: impl AsRef<str>) -> Self {
                Self(Arc::from(value.as_ref()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// This holder's share of the id's heap allocation, in bytes: the text plus the
            /// reference counts, divided among everything that holds the same allocation
            /// (an id interned from the configuration costs each signal almost nothing).
            pub fn heap_share(&self) -> usize {
                let allocation = 2 * std::mem::size_of::<usize>() + self.0.len();
                allocation.div_ceil(Arc::strong_count(&self.0))
            }

            /// Whether both ids are the same interned allocation (a cheap, partial equality:
            /// `false` says nothing about the text).
            pub fn shares_allocation(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.0, &other.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(Arc::from(value))
            }
        }
    };
}

string_id!(
    /// The first-party visitor id (`pd_anonymous_id` cookie), the key of a golden profile.
    AnonymousId
);
string_id!(
    /// A browser session id; a new one starts after 30 minutes of inactivity.
    SessionId
);
string_id!(
    /// A persona declared in the configuration, such as `backyard`.
    PersonaId
);
string_id!(
    /// A signal kind declared in the configuration, such as `decision_engine`.
    SignalKind
);
string_id!(
    /// The tenant a row belongs to (`brand_id` column), such as `southland`.
    BrandId
);
