//! Whether a Shopify webhook delivery is genuine and what it is, before anything reads its
//! body (issue 16). Shopify signs each delivery with the app's client secret:
//! `X-Shopify-Hmac-Sha256` is the base64 of HMAC-SHA256 over the raw body bytes
//! (shopify.dev, "Verify webhook deliveries"). The check runs on the bytes as received, in
//! constant time, against the current secret and, during a rotation, the previous one (Shopify
//! may sign with the old secret for up to an hour after a rotation). The delivery's headers
//! name its topic, its event (`X-Shopify-Event-Id`: the same id on every retry of one event,
//! the duplicate key) and when Shopify triggered it.

use super::Topic;
use crate::intake::Problem;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The app's signing secrets: the current one and, during a rotation, the previous one.
#[derive(Clone)]
pub struct WebhookSecrets {
    current: Hmac<Sha256>,
    previous: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookSecrets {
    /// The secrets, or why one cannot be used (empty).
    pub fn new(current: &str, previous: Option<&str>) -> Result<WebhookSecrets, String> {
        let mac = |s: &str, what: &str| {
            if s.trim().is_empty() {
                return Err(format!("the {what} secret is empty"));
            }
            <Hmac<Sha256> as KeyInit>::new_from_slice(s.as_bytes()).map_err(|e| e.to_string())
        };
        Ok(WebhookSecrets {
            current: mac(current, "current")?,
            previous: previous.map(|p| mac(p, "previous")).transpose()?,
        })
    }
}

/// Which secret signed a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedWith {
    /// The current secret.
    Current,
    /// The secret being rotated out.
    Previous,
}

/// Why a delivery is refused; nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No `X-Shopify-Hmac-Sha256` header.
    Unsigned,
    /// The header is not base64 of 32 bytes.
    MalformedSignature,
    /// No secret signed these bytes.
    BadSignature,
    /// A header the delivery needs is missing or empty.
    MissingHeader(&'static str),
    /// A topic this collector does not take.
    UnknownTopic(String),
}

impl Refused {
    /// The HTTP status: 401 when the signature does not hold, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Refused::Unsigned | Refused::MalformedSignature | Refused::BadSignature => 401,
            Refused::MissingHeader(_) | Refused::UnknownTopic(_) => 400,
        }
    }

    /// The field and the rule, as every refusal names them.
    pub fn problem(&self) -> Problem {
        let header = "X-Shopify-Hmac-Sha256";
        match self {
            Refused::Unsigned => Problem::new(header, "is required: every delivery is signed"),
            Refused::MalformedSignature => {
                Problem::new(header, "must be the base64 of an HMAC-SHA256 (32 bytes)")
            }
            Refused::BadSignature => Problem::new(
                header,
                "does not match the body under the app's secret (nor the previous one)",
            ),
            Refused::MissingHeader(name) => Problem::new(*name, "is required"),
            Refused::UnknownTopic(t) => Problem::new(
                "X-Shopify-Topic",
                format!(
                    "must be one of {} (got {t:?})",
                    Topic::ALL.map(|t| t.as_str()).join(", ")
                ),
            ),
        }
    }
}

/// Checks the signature of `body` (the raw bytes, before any parsing) against the secrets,
/// in constant time; says which one signed it.
pub fn verify(
    secrets: &WebhookSecrets,
    body: &[u8],
    signature: Option<&str>,
) -> Result<SignedWith, Refused> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(Refused::Unsigned)?;
    let tag = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .ok()
        .filter(|t| t.len() == 32)
        .ok_or(Refused::MalformedSignature)?;
    let holds = |mac: &Hmac<Sha256>| {
        let mut m = mac.clone();
        m.update(body);
        m.verify_slice(&tag).is_ok()
    };
    if holds(&secrets.current) {
        return Ok(SignedWith::Current);
    }
    match &secrets.previous {
        Some(previous) if holds(previous) => Ok(SignedWith::Previous),
        _ => Err(Refused::BadSignature),
    }
}

/// What a delivery's headers say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `X-Shopify-Topic`.
    pub topic: Topic,
    /// `X-Shopify-Event-Id`: one per event, repeated on each retry of it.
    pub event_id: String,
    /// `X-Shopify-Shop-Domain`.
    pub shop: String,
    /// `X-Shopify-Triggered-At`, as sent, when present.
    pub triggered_at: Option<String>,
}

/// The delivery named by its headers (`header` looks one up by its lower-case name).
pub fn delivery<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Result<Delivery, Refused> {
    let need = |name: &'static str| {
        header(&name.to_ascii_lowercase())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or(Refused::MissingHeader(name))
    };
    let topic = need("X-Shopify-Topic")?;
    let topic = Topic::parse(&topic).ok_or(Refused::UnknownTopic(topic))?;
    Ok(Delivery {
        topic,
        event_id: need("X-Shopify-Event-Id")?,
        shop: need("X-Shopify-Shop-Domain")?,
        triggered_at: need("X-Shopify-Triggered-At").ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        mac.update(body);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    fn secrets() -> WebhookSecrets {
        WebhookSecrets::new("current-secret", Some("previous-secret"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_raw_bytes_are_signed_by_either_secret_during_a_rotation() {
        let body = br#"{"id":820982911946154508,"total_price":"199.00"}"#;
        let s = secrets();
        assert_eq!(
            verify(&s, body, Some(&sign("current-secret", body))),
            Ok(SignedWith::Current)
        );
        assert_eq!(
            verify(&s, body, Some(&sign("previous-secret", body))),
            Ok(SignedWith::Previous)
        );
        let only_current =
            WebhookSecrets::new("current-secret", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            verify(&only_current, body, Some(&sign("previous-secret", body))),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn one_changed_byte_or_a_bad_header_is_refused_with_401() {
        let body = br#"{"id":1,"total_price":"100.00"}"#.to_vec();
        let good = sign("current-secret", &body);
        let mut changed = body.clone();
        changed[20] ^= 1;
        let s = secrets();
        for (why, bytes, header, want) in [
            (
                "one byte",
                changed.as_slice(),
                Some(good.as_str()),
                Refused::BadSignature,
            ),
            ("no header", body.as_slice(), None, Refused::Unsigned),
            (
                "empty header",
                body.as_slice(),
                Some(" "),
                Refused::Unsigned,
            ),
            (
                "not base64",
                body.as_slice(),
                Some("!!!"),
                Refused::MalformedSignature,
            ),
            (
                "too short",
                body.as_slice(),
                Some("AAAA"),
                Refused::MalformedSignature,
            ),
        ] {
            let got = verify(&s, bytes, header);
            assert_eq!(got, Err(want.clone()), "{why}");
            assert_eq!(want.status(), 401, "{why}");
            assert!(!want.problem().rule.is_empty());
        }
        assert!(WebhookSecrets::new(" ", None).is_err());
    }

    #[test]
    fn the_headers_name_topic_event_and_shop() {
        let headers = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        };
        let d = delivery(headers(&[
            ("x-shopify-topic", "orders/paid"),
            ("x-shopify-event-id", "98880550-7158-44d4-b7cd-2c97c8a091b5"),
            ("x-shopify-shop-domain", "southland.myshopify.com"),
        ]))
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.topic, Topic::OrdersPaid);
        assert_eq!(d.triggered_at, None);
        let unknown = delivery(headers(&[
            ("x-shopify-topic", "products/create"),
            ("x-shopify-event-id", "e"),
            ("x-shopify-shop-domain", "s"),
        ]));
        assert_eq!(
            unknown,
            Err(Refused::UnknownTopic("products/create".into()))
        );
        assert_eq!(unknown.err().map(|r| r.status()), Some(400));
        let missing = delivery(headers(&[("x-shopify-topic", "orders/paid")]));
        assert_eq!(missing, Err(Refused::MissingHeader("X-Shopify-Event-Id")));
    }
}
