//! The identity guards as validated config: how identifier values are normalised, which values
//! are junk that must never link anyone (the `null`s, `undefined`s and `test@test.com`s that
//! fuse thousands of people into one in other CDPs), and the caps [`super::resolve`] applies.

use super::{IdKind, Identifier};
use crate::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Values that are never an identifier, whatever the kind, compared after trimming and
/// lower-casing.
const JUNK: [&str; 14] = [
    "",
    "null",
    "nil",
    "none",
    "undefined",
    "nan",
    "0",
    "-1",
    "anonymous",
    "guest",
    "unknown",
    "[object object]",
    "true",
    "false",
];

/// Test addresses refused unless the config says otherwise.
const DEFAULT_TEST_EMAILS: [&str; 4] = [
    "test@test.com",
    "test@example.com",
    "example@example.com",
    "noreply@example.com",
];

/// The longest identifier kept (an email's limit by RFC 5321 is 254).
const MAX_CHARS: usize = 254;

/// The `[identity]` section of the config as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityRulesConfig {
    /// More junk values (any kind), compared trimmed and lower-cased.
    pub blocklist: Vec<String>,
    /// Email addresses used for testing, refused as junk (replaces the defaults when given).
    pub test_emails: Vec<String>,
    /// At most this many browsers are linked to one email within `browser_window_hours`.
    pub max_browsers_per_email: u32,
    /// The window of that cap.
    pub browser_window_hours: u32,
}

impl Default for IdentityRulesConfig {
    fn default() -> Self {
        IdentityRulesConfig {
            blocklist: Vec::new(),
            test_emails: DEFAULT_TEST_EMAILS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            max_browsers_per_email: 10,
            browser_window_hours: 24 * 30,
        }
    }
}

/// The guards, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRules {
    junk: BTreeSet<String>,
    test_emails: BTreeSet<String>,
    max_browsers_per_email: u32,
    browser_window_hours: u32,
}

impl Default for IdentityRules {
    fn default() -> Self {
        match IdentityRules::new(IdentityRulesConfig::default()) {
            Ok(r) => r,
            // The defaults are valid (a test checks); this arm is never taken.
            Err(_) => IdentityRules {
                junk: BTreeSet::new(),
                test_emails: BTreeSet::new(),
                max_browsers_per_email: 10,
                browser_window_hours: 720,
            },
        }
    }
}

impl IdentityRules {
    /// Validates the config: the cap and window at least 1, test addresses well-formed.
    pub fn new(c: IdentityRulesConfig) -> Result<IdentityRules, ConfigError> {
        let mut problems = Vec::new();
        if c.max_browsers_per_email == 0 {
            problems.push("identity.max_browsers_per_email: must be at least 1".to_owned());
        }
        if c.browser_window_hours == 0 {
            problems.push("identity.browser_window_hours: must be at least 1".to_owned());
        }
        let mut test_emails = BTreeSet::new();
        for e in &c.test_emails {
            let n = e.trim().to_lowercase();
            if well_formed_email(&n) {
                test_emails.insert(n);
            } else {
                problems.push(format!(
                    "identity.test_emails: `{e}` is not an email address"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let mut junk: BTreeSet<String> = JUNK.iter().map(|s| (*s).to_owned()).collect();
        junk.extend(c.blocklist.iter().map(|v| v.trim().to_lowercase()));
        Ok(IdentityRules {
            junk,
            test_emails,
            max_browsers_per_email: c.max_browsers_per_email,
            browser_window_hours: c.browser_window_hours,
        })
    }

    /// The browsers cap.
    pub fn max_browsers_per_email(&self) -> u32 {
        self.max_browsers_per_email
    }

    /// The browsers cap's window.
    pub fn browser_window_hours(&self) -> u32 {
        self.browser_window_hours
    }
}

/// Why a value is not an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Junk {
    /// On the blocklist (`null`, `undefined`, `0`, ...), or all zeros.
    Blocklisted,
    /// A test address.
    TestEmail,
    /// Not an email address.
    MalformedEmail,
    /// Longer than 254 characters, or holding control characters.
    Malformed,
}

impl Junk {
    /// The reason's name, as counted and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Junk::Blocklisted => "blocklisted",
            Junk::TestEmail => "test_email",
            Junk::MalformedEmail => "malformed_email",
            Junk::Malformed => "malformed",
        }
    }
}

/// The identifier a raw value gives, or why it is junk: trimmed; emails lower-cased and
/// checked for shape; blocklisted values, all-zero values (`0000`, the nil UUID) and test
/// addresses refused.
pub fn normalise(kind: IdKind, raw: &str, rules: &IdentityRules) -> Result<Identifier, Junk> {
    let trimmed = raw.trim();
    if trimmed.chars().count() > MAX_CHARS || trimmed.chars().any(char::is_control) {
        return Err(Junk::Malformed);
    }
    let lower = trimmed.to_lowercase();
    let zeros = !lower.is_empty() && lower.chars().all(|c| matches!(c, '0' | '-' | '.' | ' '));
    if rules.junk.contains(&lower) || zeros {
        return Err(Junk::Blocklisted);
    }
    let value = match kind {
        IdKind::Email => {
            if !well_formed_email(&lower) {
                return Err(Junk::MalformedEmail);
            }
            if rules.test_emails.contains(&lower) {
                return Err(Junk::TestEmail);
            }
            lower
        }
        IdKind::AnonymousId | IdKind::CustomerId => trimmed.to_owned(),
    };
    Ok(Identifier { kind, value })
}

/// One `@` with a non-empty local part, a domain of dot-separated labels (letters, digits,
/// hyphens) ending in one of at least two letters, no spaces.
fn well_formed_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    let tld_ok = labels
        .last()
        .is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()));
    !local.is_empty()
        && !local.contains(char::is_whitespace)
        && labels.len() >= 2
        && tld_ok
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}
