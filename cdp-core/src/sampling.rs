//! Which payloads are sampled to the log for schema-mismatch debugging (1 in 100, chosen by a
//! stable FNV-1a hash of the event id so the same event is in or out in every shell and run),
//! and how PII (email, customer id) is stripped before anything is logged.

use serde_json::Value;

/// One payload in this many is logged.
pub const SAMPLE_ONE_IN: u64 = 100;

const PII_TOP_LEVEL: [&str; 2] = ["email", "customer_id"];
const PII_PROPERTIES: [&str; 1] = ["email"];
const REDACTED: &str = "[redacted]";

/// FNV-1a, 64-bit: stable across runs, builds and platforms, unlike std's keyed hasher.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Whether a raw payload is in the sample: keyed by its `event_id` when it has one, by its
/// whole text otherwise.
pub fn is_sampled(raw: &Value) -> bool {
    let key = match raw.get("event_id").and_then(Value::as_str) {
        Some(id) => fnv1a(id.as_bytes()),
        None => fnv1a(raw.to_string().as_bytes()),
    };
    key % SAMPLE_ONE_IN == 0
}

/// The payload with its PII fields replaced by `[redacted]`.
pub fn strip_pii(raw: &Value) -> Value {
    let mut v = raw.clone();
    if let Some(obj) = v.as_object_mut() {
        for key in PII_TOP_LEVEL {
            if let Some(field) = obj.get_mut(key) {
                *field = Value::String(REDACTED.to_owned());
            }
        }
        if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
            for key in PII_PROPERTIES {
                if let Some(field) = props.get_mut(key) {
                    *field = Value::String(REDACTED.to_owned());
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pii_is_stripped_and_the_rest_kept() {
        let raw = json!({
            "event": "email_signup",
            "customer_id": "c-42",
            "email": "a@b.example",
            "properties": {"email": "a@b.example", "source": "footer"}
        });
        let out = strip_pii(&raw).to_string();
        assert!(
            !out.contains("a@b.example") && !out.contains("c-42"),
            "{out}"
        );
        assert!(out.contains("footer"), "{out}");
    }

    #[test]
    fn about_one_in_a_hundred_is_sampled_and_the_choice_is_stable() {
        let ids: Vec<Value> = (0..20_000)
            .map(|i| json!({"event_id": format!("00000000-0000-4000-8000-{i:012}")}))
            .collect();
        let n = ids.iter().filter(|v| is_sampled(v)).count();
        assert!((120..=280).contains(&n), "sampled {n} of 20000");
        assert_eq!(fnv1a(b"cdp"), fnv1a(b"cdp"));
    }
}
