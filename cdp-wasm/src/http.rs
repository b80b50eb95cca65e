//! The collector's HTTP framing at the edge. What the collector decides (origins, content
//! types, size, splitting, validation, error bodies, per-event replies) is
//! `cdp_core::intake`, shared with `cdp serve`; this module only turns those decisions into a
//! status, headers and body for the Worker to send, with the CORS headers `cdp serve` gets
//! from tower-http's `CorsLayer`. The Worker test suite posts the same bad inputs to a real
//! `cdp serve` and to the Worker and compares status, body and CORS headers.

use cdp_core::intake::{
    check_content_type, check_origin, check_size, collect_reply, split_events, take_valid,
    validate_each, Origins, Problem, Refusal, Status,
};
use cdp_core::{Config, Rejection, ValidEvent};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// `cdp serve`'s default body cap.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// A refusal by the name a shell uses to ask for it (`not_found`, ...).
pub fn refusal_named(name: &str) -> Refusal {
    match name {
        "not_found" => Refusal::NotFound("route".to_owned()),
        "method_not_allowed" => Refusal::MethodNotAllowed,
        "store_unavailable" => Refusal::StoreUnavailable,
        _ => Refusal::Internal,
    }
}

/// An HTTP answer for the shell to send as is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body text (JSON or empty).
    pub body: String,
}

/// What the collector is configured to accept.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Browser origins allowed.
    pub origins: Origins,
    /// Body cap in bytes.
    pub max_body_bytes: usize,
}

/// The request as the shell saw it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// `Origin` header.
    pub origin: Option<&'a str>,
    /// `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// `Content-Length` header.
    pub content_length: Option<&'a str>,
    /// The body, read up to one byte past the cap.
    pub body: &'a [u8],
}

/// One event of an accepted request: valid (to be applied) or already refused.
pub type Checked = Result<ValidEvent, Rejection>;

impl Gate {
    /// The steps of `POST /collect` up to persisting, in `cdp serve`'s order: origin, content
    /// type, size, split, validate. Returns the events, or the answer refusing the request.
    pub fn check(
        &self,
        cfg: &Config,
        req: &Incoming<'_>,
        received_at: DateTime<Utc>,
    ) -> Result<(Vec<Value>, Vec<Checked>), Refusal> {
        check_origin(&self.origins, req.origin)?;
        check_content_type(req.content_type)?;
        check_size(
            req.content_length,
            Some(req.body.len()),
            self.max_body_bytes,
        )?;
        let raw = split_events(cfg, req.body)?;
        let checked = validate_each(cfg, &raw, received_at);
        Ok((raw, checked))
    }

    /// The answer for a refused request, with CORS headers.
    pub fn error(&self, e: &Refusal, origin: Option<&str>) -> Reply {
        let body = serde_json::to_string(&e.body()).unwrap_or_default();
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(seconds) = e.retry_after_seconds() {
            headers.push(("retry-after".to_owned(), seconds.to_string()));
        }
        self.cors(origin, &mut headers);
        Reply {
            status: e.http_status(),
            headers,
            body,
        }
    }

    /// The per-event answer: `statuses` holds the store's answer for each valid event, in
    /// order. 200 as soon as one event is durable, so the client does not resend good ones.
    pub fn collect_reply(
        &self,
        checked: Vec<Checked>,
        statuses: &[Status],
        origin: Option<&str>,
    ) -> Reply {
        let stored = statuses
            .iter()
            .map(|s| match s {
                Status::Suppressed => (*s, Some(cdp_core::intake::suppressed_problem())),
                _ => (*s, None::<Problem>),
            })
            .collect();
        let (_, slots) = take_valid(checked);
        let reply = collect_reply(slots, stored);
        self.json(reply.http_status(), &reply, origin)
    }

    /// A JSON answer with CORS headers.
    pub fn json<T: Serialize>(&self, status: u16, body: &T, origin: Option<&str>) -> Reply {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        self.cors(origin, &mut headers);
        Reply {
            status,
            headers,
            body: serde_json::to_string(body).unwrap_or_default(),
        }
    }

    /// The answer to any `OPTIONS` request (tower-http's `CorsLayer` treats every one as a
    /// preflight): 200, empty, with the allowed methods, headers and max age.
    pub fn preflight(&self, origin: Option<&str>) -> Reply {
        let mut headers = Vec::new();
        self.cors(origin, &mut headers);
        headers.push((
            "access-control-allow-methods".to_owned(),
            "GET,POST".to_owned(),
        ));
        headers.push((
            "access-control-allow-headers".to_owned(),
            "content-type".to_owned(),
        ));
        headers.push(("access-control-max-age".to_owned(), "86400".to_owned()));
        Reply {
            status: 200,
            headers,
            body: String::new(),
        }
    }

    fn cors(&self, origin: Option<&str>, headers: &mut Vec<(String, String)>) {
        headers.push((
            "vary".to_owned(),
            "origin, access-control-request-method, access-control-request-headers".to_owned(),
        ));
        if let Some(allow) = self.origins.allow_header(origin) {
            headers.push(("access-control-allow-origin".to_owned(), allow));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_cors_and_retry_after_headers() {
        let gate = Gate {
            origins: Origins::parse("https://southlandorganics.com").expect("origins"),
            max_body_bytes: 1024,
        };
        let origin = Some("https://southlandorganics.com");
        let r = gate.error(&Refusal::StoreUnavailable, origin);
        assert_eq!(r.status, 503);
        assert!(r.headers.contains(&("retry-after".into(), "5".into())));
        assert!(r.headers.contains(&(
            "access-control-allow-origin".into(),
            "https://southlandorganics.com".into()
        )));
        let req = Incoming {
            origin: Some("https://evil.example"),
            content_type: Some("application/json"),
            content_length: None,
            body: b"{}",
        };
        let refused = gate.check(&Config::southland(), &req, DateTime::<Utc>::UNIX_EPOCH);
        assert_eq!(refused.map(|_| ()), Err(Refusal::OriginNotAllowed));
    }
}
