//! Who may read the dashboard API: the admin token's rules, shared by `cdp serve` (cdp-api's
//! guard) and the Worker. A request needs `Authorization: Bearer <token>` or the session
//! cookie the login sets. Tokens are compared in constant time (as SHA-256 digests, so not
//! even the length leaks). The cookie holds no token: it is an expiry and an HMAC-SHA256 of it
//! keyed by the token (`v1.<unix expiry>.<hex mac>`), valid for [`SESSION_HOURS`]; changing
//! the token signs everyone out.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "cdp_admin_session";
/// How long a login lasts.
pub const SESSION_HOURS: i64 = 12;

/// The admin token, kept as its digest for comparisons and as the session-signing key.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
    key: Arc<[u8]>,
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

impl AdminToken {
    /// Wraps a configured token.
    pub fn new(token: &str) -> AdminToken {
        AdminToken {
            digest: Sha256::digest(token.as_bytes()).into(),
            key: Arc::from(token.as_bytes()),
        }
    }

    /// Whether `candidate` is the token, in time independent of both.
    pub fn matches(&self, candidate: &str) -> bool {
        let got: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        bool::from(got.ct_eq(&self.digest))
    }

    fn mac(&self, expires: i64) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).ok()?;
        mac.update(format!("cdp-admin-session v1 {expires}").as_bytes());
        Some(mac)
    }

    /// A session value valid until `expires`.
    pub fn session(&self, expires: DateTime<Utc>) -> String {
        let at = expires.timestamp();
        let tag = self
            .mac(at)
            .map(|m| hex(&m.finalize().into_bytes()))
            .unwrap_or_default();
        format!("v1.{at}.{tag}")
    }

    /// Whether a session value is ours and unexpired at `now`.
    pub fn session_valid(&self, value: &str, now: DateTime<Utc>) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some("v1"), Some(at), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let (Ok(at), Some(tag)) = (at.parse::<i64>(), unhex(tag)) else {
            return false;
        };
        at > now.timestamp() && self.mac(at).is_some_and(|m| m.verify_slice(&tag).is_ok())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The token of an `Authorization` header value, when its scheme is Bearer.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The value of cookie `name` in some `Cookie` header values.
pub fn cookie<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl AdminToken {
    /// Whether a request with these `Authorization` and `Cookie` header values may read the
    /// dashboard API at `now`.
    pub fn admits<'a>(
        &self,
        authorization: Option<&str>,
        cookies: impl IntoIterator<Item = &'a str>,
        now: DateTime<Utc>,
    ) -> bool {
        authorization
            .and_then(bearer)
            .is_some_and(|b| self.matches(b))
            || cookie(cookies, COOKIE).is_some_and(|c| self.session_valid(c, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sessions_expire_and_are_bound_to_the_token() {
        let token = AdminToken::new("correct-horse-battery-staple");
        let now = at("2026-03-08T12:00:00Z");
        let value = token.session(now + Duration::hours(1));
        assert!(!value.contains("correct-horse"), "{value}");
        assert!(token.session_valid(&value, now));
        assert!(
            !token.session_valid(&value, now + Duration::hours(2)),
            "expired"
        );
        assert!(!AdminToken::new("another-token-entirely").session_valid(&value, now));
        let forged = value.replacen("v1.", "v1.9", 1);
        assert!(!token.session_valid(&forged, now), "changed expiry");
        for junk in ["", "v1", "v1.x.y", "v2.1.00", "v1.99999999999.zz"] {
            assert!(!token.session_valid(junk, now), "{junk}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        let token = AdminToken::new("0123456789abcdef");
        assert!(token.matches("0123456789abcdef"));
        for wrong in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789ABCDEF",
        ] {
            assert!(!token.matches(wrong), "{wrong}");
        }
        assert_eq!(format!("{token:?}"), "AdminToken([redacted])");
    }
}
