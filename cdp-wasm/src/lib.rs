//! The CDP core compiled to wasm for the Cloudflare Worker: every decision the edge makes
//! (contract checks, scoring, stages, the profile reducer, the HTTP answers, sampling, and the
//! Supabase REST requests with their retry and split verdicts) is Rust from `cdp-core` and the
//! pure half of `cdp-adapters`. The JavaScript around it (`worker/src`) only moves bytes
//! between Cloudflare's bindings and these functions.
//!
//! Values cross the boundary as JSON text: one `JSON.parse` per call on the JS side is cheaper
//! to reason about than a generated object model, and the JSON is the same serde form the
//! server stores and tests snapshot.

pub mod admin;
pub mod dashboard;
pub mod delivery;
pub mod fold;
pub mod http;
pub mod visitor;

use cdp_core::identity::{TombstoneKey, Tombstones};
use cdp_core::intake::{Origins, Status};
use cdp_core::sampling;
use cdp_core::{Config, EventRow, Profile, ValidEvent};
use chrono::{DateTime, Utc};
use http::{refusal_named, Gate, Incoming, Reply};
use serde::Serialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

fn at_ms(now_ms: f64) -> Result<DateTime<Utc>, JsError> {
    DateTime::from_timestamp_millis(now_ms as i64).ok_or_else(|| js_err("now_ms out of range"))
}

/// The configured core and collector rules, built once per isolate.
#[wasm_bindgen]
pub struct Engine {
    cfg: Config,
    gate: Gate,
    /// The tombstones of erased people, once the shell has read them (see
    /// [`Engine::set_tombstones`]).
    tombstones: Option<Tombstones>,
}

#[wasm_bindgen]
impl Engine {
    /// Builds from the scoring TOML (empty for the bundled Southland configuration), the
    /// `CDP_ALLOWED_ORIGINS` text and the body cap (0 for `cdp serve`'s default). Every
    /// problem is reported at once.
    #[wasm_bindgen(constructor)]
    pub fn new(
        config_toml: &str,
        allowed_origins: &str,
        max_body_bytes: u32,
    ) -> Result<Engine, JsError> {
        let mut problems = Vec::new();
        let cfg = if config_toml.trim().is_empty() {
            Some(Config::southland())
        } else {
            Config::from_toml(config_toml)
                .map_err(|e| problems.push(format!("CDP_CONFIG_TOML: {e}")))
                .ok()
        };
        let origins = Origins::parse(allowed_origins)
            .map_err(|e| {
                problems.extend(e.into_iter().map(|p| format!("CDP_ALLOWED_ORIGINS: {p}")))
            })
            .ok();
        let max_body_bytes = match max_body_bytes as usize {
            0 => http::DEFAULT_MAX_BODY_BYTES,
            n if (1024..=16 * 1024 * 1024).contains(&n) => n,
            n => {
                problems.push(format!(
                    "CDP_MAX_BODY_BYTES: {n} is outside 1024..=16777216"
                ));
                0
            }
        };
        match (cfg, origins, problems.is_empty()) {
            (Some(cfg), Some(origins), true) => Ok(Engine {
                cfg,
                gate: Gate {
                    origins,
                    max_body_bytes,
                },
                tombstones: None,
            }),
            _ => Err(js_err(format!(
                "invalid Worker configuration: {}; see docs/deploy-cloudflare.md",
                problems.join("; ")
            ))),
        }
    }

    /// The body cap: the shell reads at most one byte more than this.
    pub fn max_body_bytes(&self) -> u32 {
        self.gate.max_body_bytes as u32
    }

    /// How many bytes of a refused body the shell reads and throws away before it answers
    /// (0: none, cancel the body), from the request's `Expect` and `Content-Length`
    /// (`cdp_core::intake::discards_refused_body`, the rule `cdp serve` follows).
    pub fn discard_bytes(&self, expect: Option<String>, content_length: Option<String>) -> f64 {
        if cdp_core::intake::discards_refused_body(expect.as_deref(), content_length.as_deref()) {
            cdp_core::intake::DISCARD_MAX_BYTES as f64
        } else {
            0.0
        }
    }

    /// Days a profile lives after its last update (KV `expirationTtl` and the Durable Object
    /// alarm use it).
    pub fn profile_ttl_days(&self) -> u32 {
        self.cfg.profile_ttl_days()
    }

    /// Checks a `POST /collect` request. Returns JSON: `{"reply": Reply}` when the request is
    /// refused as a whole, otherwise `{"checked": [...], "visitors": {anonymous_id: [index,
    /// ...]}, "events": [ValidEvent, ...], "sampled": [payload, ...]}` where `events[i]` are
    /// the valid events and `visitors` groups their indices per visitor, in request order.
    pub fn check_collect(
        &self,
        origin: Option<String>,
        content_type: Option<String>,
        content_length: Option<String>,
        body: &[u8],
        now_ms: f64,
    ) -> Result<String, JsError> {
        let req = Incoming {
            origin: origin.as_deref(),
            content_type: content_type.as_deref(),
            content_length: content_length.as_deref(),
            body,
        };
        let (raw, checked) = match self.gate.check(&self.cfg, &req, at_ms(now_ms)?) {
            Ok(ok) => ok,
            Err(e) => {
                return Ok(json!({ "reply": self.gate.error(&e, origin.as_deref()) }).to_string())
            }
        };
        let sampled: Vec<Value> = raw
            .iter()
            .filter(|v| sampling::is_sampled(v))
            .map(sampling::strip_pii)
            .collect();
        let events: Vec<&ValidEvent> = checked.iter().filter_map(|c| c.as_ref().ok()).collect();
        let mut visitors: serde_json::Map<String, Value> = serde_json::Map::new();
        for (i, e) in events.iter().enumerate() {
            if let Value::Array(list) = visitors
                .entry(e.anonymous_id.as_str().to_owned())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(json!(i));
            }
        }
        Ok(json!({
            "checked": checked,
            "events": events,
            "visitors": visitors,
            "sampled": sampled,
        })
        .to_string())
    }

    /// The encoded query string of the read of the brand's tombstones, to send as
    /// `GET {SUPABASE_URL}/rest/v1/cdp_tombstones?{query}`.
    pub fn tombstones_query(&self) -> String {
        delivery::encode_query(&cdp_adapters::rest::tombstones_query(self.cfg.brand_id()))
    }

    /// Holds the tombstones of that read's answer (`body`), keyed with the Worker secret
    /// `CDP_TOMBSTONE_KEY`; returns how many. From then on [`Engine::suppressed`] tests events
    /// against them, as `cdp serve`'s writer does.
    pub fn set_tombstones(&mut self, key: &str, body: &str) -> Result<u32, JsError> {
        let key = TombstoneKey::new(key).map_err(|e| js_err(format!("CDP_TOMBSTONE_KEY: {e}")))?;
        let hashes = cdp_adapters::rest::tombstone_hashes(body).map_err(js_err)?;
        let t = Tombstones::new(key, hashes);
        let n = t.len() as u32;
        self.tombstones = Some(t);
        Ok(n)
    }

    /// Which of the valid events (`events` of [`Engine::check_collect`]) carry an erased
    /// person's identifier: a JSON array of booleans, in order (all false before any
    /// tombstones are held).
    pub fn suppressed(&self, events_json: &str) -> Result<String, JsError> {
        let events: Vec<ValidEvent> = serde_json::from_str(events_json).map_err(js_err)?;
        let hit: Vec<bool> = events
            .iter()
            .map(|e| {
                self.tombstones
                    .as_ref()
                    .is_some_and(|t| !t.hits(e, self.cfg.identity_rules()).is_empty())
            })
            .collect();
        Ok(to_json(&hit))
    }

    /// The answer to a checked request once the visitors' objects answered: `checked_json` is
    /// the `checked` array from [`Engine::check_collect`], `outcomes_json` the outcome
    /// (`"applied"`, `"duplicate"` or `"suppressed"`) of each valid event in order.
    pub fn collect_reply(
        &self,
        checked_json: &str,
        outcomes_json: &str,
        origin: Option<String>,
    ) -> Result<String, JsError> {
        let checked: Vec<http::Checked> = serde_json::from_str(checked_json).map_err(js_err)?;
        let outcomes: Vec<String> = serde_json::from_str(outcomes_json).map_err(js_err)?;
        let statuses: Vec<Status> = outcomes
            .iter()
            .map(|o| match o.as_str() {
                "duplicate" => Status::Duplicate,
                "suppressed" => Status::Suppressed,
                _ => Status::Accepted,
            })
            .collect();
        Ok(to_json(&self.gate.collect_reply(
            checked,
            &statuses,
            origin.as_deref(),
        )))
    }

    /// An error answer by name: `not_found`, `method_not_allowed`, `store_unavailable`,
    /// `internal`.
    pub fn error_reply(&self, name: &str, origin: Option<String>) -> String {
        to_json(&self.gate.error(&refusal_named(name), origin.as_deref()))
    }

    /// The answer to an `OPTIONS` request.
    pub fn preflight(&self, origin: Option<String>) -> String {
        to_json(&self.gate.preflight(origin.as_deref()))
    }

    /// `GET /health`: `{"status", "backend": "cloudflare-queue", "last_event_at"}`, and,
    /// when the Worker reads a store (the HYPERDRIVE binding), `"store"`: `ok`, or
    /// `unreachable` (then `status` is `degraded` and the answer 503, as `cdp serve` says
    /// it). `last_event_at` is the later of the Worker's own record (KV) and the store's
    /// newest row (`stored_last`, from [`Engine::health_read`]), both RFC 3339.
    pub fn health(
        &self,
        last_event_at: Option<String>,
        origin: Option<String>,
        store: Option<String>,
        stored_last: Option<String>,
    ) -> String {
        let parse = |t: Option<String>| {
            t.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let last = parse(last_event_at)
            .max(parse(stored_last))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let reachable = store.as_deref() != Some("unreachable");
        let mut body = json!({
            "status": if reachable { "ok" } else { "degraded" },
            "backend": "cloudflare-queue",
            "last_event_at": last,
        });
        if let (Some(_), Value::Object(map)) = (store, &mut body) {
            let store = if reachable { "ok" } else { "unreachable" };
            map.insert("store".to_owned(), store.into());
        }
        let status = if reachable { 200 } else { 503 };
        to_json::<Reply>(&self.gate.json(status, &body, origin.as_deref()))
    }

    /// The statement `/health` runs against the store: when an event was last stored (one
    /// column). JSON `{"sql", "params"}`.
    pub fn health_read(&self, schema: &str) -> String {
        let prefix = cdp_adapters::counting_sql::schema_prefix(schema);
        let stmt =
            cdp_adapters::counting_sql::last_processed_at(&prefix, self.cfg.brand_id().as_str());
        let params: Vec<String> = stmt
            .params
            .iter()
            .map(cdp_adapters::counting_sql::Param::text)
            .collect();
        to_json(&json!({ "sql": stmt.sql, "params": params }))
    }

    /// Applies one visitor's events (`events_json`, a JSON array of valid events in arrival
    /// order) to the stored profile (JSON, or nothing) at `now_ms`. Returns
    /// `{"profile", "steps": [{"outcome", "row"}], "expires_at"}`.
    pub fn apply(
        &self,
        profile_json: Option<String>,
        events_json: &str,
        now_ms: f64,
    ) -> Result<String, JsError> {
        let profile: Option<Profile> = match profile_json.as_deref() {
            None | Some("") | Some("null") => None,
            Some(text) => Some(serde_json::from_str(text).map_err(js_err)?),
        };
        let events: Vec<ValidEvent> = serde_json::from_str(events_json).map_err(js_err)?;
        let visit = visitor::visit(&self.cfg, profile, &events, at_ms(now_ms)?);
        Ok(to_json(&visit))
    }
}

/// The delivery of one queue batch to Supabase REST (see [`delivery`]).
#[wasm_bindgen]
pub struct Delivery {
    inner: delivery::Delivery,
}

#[wasm_bindgen]
impl Delivery {
    /// From a JSON array of enriched rows (the queue messages' bodies, in order).
    #[wasm_bindgen(constructor)]
    pub fn new(rows_json: &str) -> Result<Delivery, JsError> {
        let rows: Vec<EventRow> = serde_json::from_str(rows_json).map_err(js_err)?;
        Ok(Delivery {
            inner: delivery::Delivery::new(rows),
        })
    }

    /// The next request as JSON (`{table, method, query, prefer, body}`), or nothing.
    pub fn next_request(&mut self) -> Option<String> {
        self.inner.next_request().map(|r| to_json(&r))
    }

    /// Reports the answer to the last request.
    pub fn answer(&mut self, status: u16, body: &str, retry_after: Option<u32>) {
        self.inner.answer(status, body, retry_after.map(u64::from));
    }

    /// Reports that the last request got no answer.
    pub fn network_error(&mut self, message: &str) {
        self.inner.network_error(message);
    }

    /// How the batch ended, as JSON (see [`delivery::Ended`]).
    pub fn end(self) -> String {
        to_json(&self.inner.end())
    }
}

/// Whether a message body is a row the consumer can deliver; a message that is not is kept in
/// the dead-letter queue rather than retried for ever.
#[wasm_bindgen]
pub fn is_event_row(body_json: &str) -> bool {
    serde_json::from_str::<EventRow>(body_json).is_ok()
}

/// Seconds before the next try of a message tried `attempts` times.
#[wasm_bindgen]
pub fn retry_delay_seconds(attempts: u32, retry_after: Option<u32>) -> u32 {
    delivery::retry_delay_seconds(attempts, retry_after.map(u64::from)) as u32
}
