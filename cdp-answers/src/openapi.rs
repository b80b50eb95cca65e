//! The OpenAPI 3.1 document of the dashboard API, served at `/api/cdp/openapi.json` by
//! `cdp serve` and the Worker alike. Schemas
//! are JSON Schema 2020-12 (nullable fields are `["type", "null"]`), written next to the
//! figures' definitions so the descriptions say what each number counts. Tests validate real
//! answers against these schemas.

use crate::api::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::figures::Range;
use cdp_core::{EventType, Stage};
use serde_json::{json, Value};

/// Every path the document describes (the dashboard API's routes).
pub const PATHS: [&str; 8] = [
    "/api/cdp/metrics",
    "/api/cdp/events",
    "/api/cdp/searches",
    "/api/cdp/profiles/{anonymous_id}",
    "/api/cdp/people/{key}",
    "/api/cdp/people/{key}/export",
    "/api/cdp/identity",
    "/api/cdp/openapi.json",
];

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn int() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn nullable(kind: &str) -> Value {
    json!({ "type": [kind, "null"] })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn answer(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn errors() -> Value {
    json!({
        "401": answer("No admin token or session (only when the server has an admin token).", r("Unauthorized")),
        "403": answer("No admin token is configured and the client is not on the server's machine (cdp serve only: the Worker has no loopback, and refuses with 401 instead).", r("Error")),
        "503": answer("The store is unreachable: the dashboard shows \"offline\", not figures.", r("Offline")),
        "500": answer("The store answered the query with an error.", r("Status")),
        "501": answer("The store's backend cannot run dashboard queries (Supabase REST: use Postgres).", r("Status")),
    })
}

fn range_param() -> Value {
    json!({
        "name": "range", "in": "query", "required": false,
        "description": "The window: the last 24 hours (hourly chart buckets) or 7, 30 or 90 days (daily buckets), ending now. The previous window is the same length before it.",
        "schema": { "type": "string", "enum": Range::ALL.map(Range::as_str), "default": "7d" }
    })
}

fn with_errors(mut ok: Value, extra: &[(&str, Value)]) -> Value {
    if let (Some(map), Value::Object(errs)) = (ok.as_object_mut(), errors()) {
        map.extend(errs);
        for (code, v) in extra {
            map.insert((*code).to_owned(), v.clone());
        }
    }
    ok
}

/// The document.
fn base_document() -> Value {
    let bad = answer(
        "A query parameter is invalid; `problems[0].field` names it.",
        r("Error"),
    );
    let event_types: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    let stages: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "CDP dashboard API",
            "version": "1",
            "description": "Read-only figures for the CDP dashboard, computed from stored events. Times are RFC 3339 UTC. Ratios are in [0, 1] and percentages are percent (12.5 = +12.5 %), rounded to six decimals. Needs the admin token (Bearer, or the /admin/login session cookie) when the server has one; otherwise only clients on the server's machine may call it."
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "The server's admin token." },
                "session": { "type": "apiKey", "in": "cookie", "name": crate::access::COOKIE, "description": "Set by POST /admin/login." }
            },
            "schemas": {
                "Kpi": object(&["value", "previous", "delta_pct"], json!({
                    "value": int(), "previous": int(),
                    "delta_pct": { "type": ["number", "null"], "description": "Percent change against previous; null when previous is 0." }
                })),
                "Window": object(&["start", "end", "previous_start", "bucket"], json!({
                    "start": { "type": "string", "format": "date-time" },
                    "end": { "type": "string", "format": "date-time" },
                    "previous_start": { "type": "string", "format": "date-time" },
                    "bucket": { "type": "string", "enum": ["hour", "day"] }
                })),
                "Metrics": object(&["status", "range", "generated_at", "last_event_at", "window", "kpis", "personas", "funnel", "tunnels", "ab_tests", "top_events", "chartData", "revenue"], json!({
                    "status": { "type": "string", "enum": ["ok", "empty"], "description": "empty: no events in the window." },
                    "range": { "type": "string", "enum": Range::ALL.map(Range::as_str) },
                    "generated_at": { "type": "string", "format": "date-time" },
                    "last_event_at": { "type": ["string", "null"], "format": "date-time", "description": "The newest stored event, whatever the window; null when nothing was ever stored." },
                    "window": r("Window"),
                    "kpis": object(&["events", "unique_visitors", "sessions", "identified_profiles"], json!({
                        "events": { "$ref": "#/components/schemas/Kpi", "description": "Events in the window." },
                        "unique_visitors": { "$ref": "#/components/schemas/Kpi", "description": "Distinct visitors with an event in the window." },
                        "sessions": { "$ref": "#/components/schemas/Kpi", "description": "Sessions whose first event is in the window." },
                        "identified_profiles": { "$ref": "#/components/schemas/Kpi", "description": "Visitors first identified in the window (first event with a customer id, an email_signup or an identify)." }
                    })),
                    "personas": { "type": "array", "items": r("PersonaShare") },
                    "funnel": { "type": "array", "minItems": 10, "maxItems": 10, "items": r("FunnelStage") },
                    "tunnels": { "type": "array", "items": r("Tunnel") },
                    "ab_tests": { "type": "array", "items": r("AbTest") },
                    "top_events": { "type": "array", "items": object(&["event_type", "count"], json!({ "event_type": { "type": "string", "enum": event_types }, "count": int() })) },
                    "chartData": { "type": "array", "description": "Events per bucket (UTC hours for 24h, days otherwise) by predicted persona label; every bucket and every label present. Buckets only count events inside the window, so they add up to kpis.events.value.", "items": { "type": "object", "required": ["date"], "properties": { "date": { "type": "string", "description": "2026-03-01, or 2026-03-01T14:00 for hours." } }, "additionalProperties": int() } },
                    "revenue": object(&["status", "reason"], json!({ "status": { "const": "unavailable" }, "reason": { "type": "string" } }))
                })),
                "PersonaShare": object(&["persona", "label", "visitors", "share", "explicit"], json!({
                    "persona": { "type": "string" }, "label": { "type": "string" },
                    "visitors": { "type": "integer", "minimum": 0, "description": "Visitors whose latest event in the window predicted this persona." },
                    "share": { "type": "number", "minimum": 0, "maximum": 1 },
                    "explicit": { "type": "integer", "minimum": 0, "description": "Visitors whose explicit choice, as of their latest event in the window, is this persona." }
                })),
                "FunnelStage": object(&["stage", "visitors", "reached", "conversion_from_previous"], json!({
                    "stage": { "type": "string", "enum": stages },
                    "visitors": { "type": "integer", "minimum": 0, "description": "Visitors active in the window whose stage, as of their latest event in it, is this one (stages only rise while a profile lives)." },
                    "reached": { "type": "integer", "minimum": 0, "description": "Visitors at this stage or beyond." },
                    "conversion_from_previous": { "type": ["number", "null"], "minimum": 0, "maximum": 1, "description": "reached over the previous stage's reached; null for the first stage or after 0." }
                })),
                "Tunnel": object(&["tunnel", "views", "cta_clicks", "click_rate"], json!({
                    "tunnel": { "type": "string" }, "views": int(), "cta_clicks": int(),
                    "click_rate": { "type": ["number", "null"], "minimum": 0 }
                })),
                "AbTest": object(&["test_id", "variants", "significance"], json!({
                    "test_id": { "type": "string" },
                    "variants": { "type": "array", "items": object(&["variant", "exposures", "conversions", "rate"], json!({
                        "variant": { "type": "string" },
                        "exposures": { "type": "integer", "minimum": 0, "description": "Distinct visitors first exposed to this variant in the window." },
                        "conversions": { "type": "integer", "minimum": 0, "description": "Of those, visitors who converted in this variant before the window ended." },
                        "rate": { "type": ["number", "null"], "minimum": 0, "maximum": 1 }
                    })) },
                    "significance": object(&["method", "compared", "z", "p_value", "significant", "note"], json!({
                        "method": { "const": crate::figures::AB_METHOD },
                        "compared": { "type": "array", "items": { "type": "string" }, "maxItems": 2, "description": "The two variants tested, in name order (with more than two, the two best rates); z is the second's rate minus the first's over the pooled standard error." },
                        "z": nullable("number"), "p_value": { "type": ["number", "null"], "minimum": 0, "maximum": 1 },
                        "significant": { "type": "boolean", "description": "p_value < 0.05 (two-sided)." },
                        "note": nullable("string")
                    }))
                })),
                "StreamEvent": object(&["event_id", "event_type", "anonymous_id", "timestamp", "page_url", "page_title", "predicted_persona", "persona_label", "persona_confidence", "explicit_persona", "current_stage"], json!({
                    "event_id": { "type": "string", "format": "uuid" }, "event_type": { "type": "string", "enum": event_types },
                    "anonymous_id": { "type": "string" }, "timestamp": { "type": "string", "format": "date-time" },
                    "page_url": { "type": "string" }, "page_title": nullable("string"),
                    "predicted_persona": { "type": "string" }, "persona_label": { "type": "string" },
                    "persona_confidence": { "type": "number" }, "explicit_persona": nullable("string"),
                    "current_stage": { "type": "string", "enum": stages }
                })),
                "Events": object(&["status", "events"], json!({
                    "status": { "type": "string", "enum": ["ok", "empty"] },
                    "events": { "type": "array", "maxItems": MAX_LIMIT, "items": r("StreamEvent") }
                })),
                "Searches": object(&["status", "range", "total", "top", "zero_results"], json!({
                    "status": { "type": "string", "enum": ["ok", "empty"], "description": "empty: no searches in the window." },
                    "range": { "type": "string", "enum": Range::ALL.map(Range::as_str) },
                    "total": { "$ref": "#/components/schemas/Kpi", "description": "Searches in the window and the one before." },
                    "top": { "type": "array", "maxItems": crate::figures::SEARCH_LIST_LIMIT, "items": object(&["query", "count", "previous", "delta_pct", "zero_result_count"], json!({
                        "query": { "type": "string", "description": "Trimmed and lower-cased: queries are grouped that way." },
                        "count": int(), "previous": int(), "delta_pct": nullable("number"), "zero_result_count": int()
                    })) },
                    "zero_results": { "type": "array", "maxItems": crate::figures::SEARCH_LIST_LIMIT, "description": "Queries that found nothing: content gaps.", "items": object(&["query", "count"], json!({ "query": { "type": "string" }, "count": int() })) }
                })),
                "Profile": object(&["status", "profile", "persona_labels", "explanation", "stage"], json!({
                    "status": { "const": "ok" },
                    "profile": object(&["anonymous_id", "customer_id", "email", "predicted_persona", "persona_confidence", "explicit_persona", "persona_scores", "current_stage", "stage_confidence", "stage_history", "first_seen", "last_seen", "session_count", "total_signals"], json!({
                        "anonymous_id": { "type": "string" }, "customer_id": nullable("string"), "email": nullable("string"),
                        "predicted_persona": { "type": "string" }, "persona_confidence": { "type": "number" },
                        "explicit_persona": nullable("string"),
                        "persona_scores": { "type": "object", "additionalProperties": { "type": "number" } },
                        "current_stage": { "type": "string", "enum": stages }, "stage_confidence": { "type": "number" },
                        "stage_history": { "type": "array", "items": object(&["stage", "entered_at"], json!({ "stage": { "type": "string", "enum": stages }, "entered_at": { "type": "string", "format": "date-time" } })) },
                        "first_seen": { "type": "string", "format": "date-time" }, "last_seen": { "type": "string", "format": "date-time" },
                        "session_count": int(), "total_signals": int()
                    })),
                    "persona_labels": { "type": "object", "additionalProperties": { "type": "string" } },
                    "explanation": object(&["scores", "points", "contributions"], json!({
                        "scores": object(&["probabilities", "predicted", "confidence", "evidence"], json!({
                            "probabilities": { "type": "object", "additionalProperties": { "type": "number" } },
                            "predicted": { "type": "string" }, "confidence": { "type": "number" }, "evidence": { "type": "number" }
                        })),
                        "points": { "type": "object", "additionalProperties": { "type": "number" } },
                        "contributions": { "type": "array", "items": object(&["event_id", "event_type", "kind", "persona", "hint", "weight", "age_hours", "decay", "points"], json!({
                            "event_id": { "type": "string" }, "event_type": { "type": "string" }, "kind": { "type": "string" },
                            "persona": { "type": "string" }, "hint": { "type": "string" }, "weight": { "type": "number" },
                            "age_hours": { "type": "number" }, "decay": { "type": "number" }, "points": { "type": "number" }
                        })) }
                    })),
                    "stage": object(&["stage", "confidence", "rule", "clause"], json!({
                        "stage": { "type": "string", "enum": stages }, "confidence": { "type": "number" },
                        "rule": { "type": "string", "description": "The rule that set the stage, in words." },
                        "clause": { "type": ["integer", "null"], "minimum": 0 }
                    }))
                })),
                "Offline": object(&["status", "reason"], json!({ "status": { "const": "offline" }, "reason": { "type": "string" } })),
                "Status": object(&["status"], json!({ "status": { "type": "string" }, "reason": { "type": "string" } })),
                "Error": object(&["error", "problems"], json!({
                    "error": { "type": "string" }, "message": { "type": "string" },
                    "problems": { "type": "array", "items": object(&["field", "rule"], json!({ "field": { "type": "string" }, "rule": { "type": "string" } })) }
                })),
                "Unauthorized": object(&["error", "message"], json!({ "error": { "const": "unauthorized" }, "message": { "type": "string" } }))
            }
        },
        "security": [ { "bearer": [] }, { "session": [] } ],
        "paths": {
            "/api/cdp/metrics": { "get": {
                "summary": "KPIs with deltas, personas, funnel, tunnels, A/B tests, top events and the chart",
                "parameters": [range_param()],
                "responses": with_errors(json!({ "200": answer("The figures (status empty when the window holds no events).", r("Metrics")) }), &[("400", bad.clone())])
            } },
            "/api/cdp/events": { "get": {
                "summary": "The newest events, newest first",
                "parameters": [
                    { "name": "limit", "in": "query", "required": false, "description": format!("How many, from 1; more than {MAX_LIMIT} gives {MAX_LIMIT}."), "schema": { "type": "integer", "minimum": 1, "default": DEFAULT_LIMIT } },
                    { "name": "type", "in": "query", "required": false, "schema": { "type": "string", "enum": event_types } },
                    { "name": "persona", "in": "query", "required": false, "description": "A configured persona id (the prediction after the event).", "schema": { "type": "string" } }
                ],
                "responses": with_errors(json!({ "200": answer("The events (status empty when none match).", r("Events")) }), &[("400", bad.clone())])
            } },
            "/api/cdp/searches": { "get": {
                "summary": "Top queries with their change, and zero-result queries",
                "parameters": [range_param()],
                "responses": with_errors(json!({ "200": answer("The searches (status empty when the window holds none).", r("Searches")) }), &[("400", bad)])
            } },
            "/api/cdp/profiles/{anonymous_id}": { "get": {
                "summary": "One visitor's golden profile, why they are who we think, and which rule set their stage",
                "parameters": [ { "name": "anonymous_id", "in": "path", "required": true, "schema": { "type": "string" } } ],
                "responses": with_errors(json!({ "200": answer("The profile.", r("Profile")) }), &[("404", answer("No live profile for this visitor (never seen, or expired).", object(&["status"], json!({ "status": { "const": "not_found" } }))))])
            } },
            "/api/cdp/openapi.json": { "get": {
                "summary": "This document",
                "responses": { "200": { "description": "OpenAPI 3.1", "content": { "application/json": { "schema": { "type": "object" } } } } }
            } }
        }
    })
}

/// The whole document: the dashboard's reads plus the identity routes (issue 15).
pub fn document() -> Value {
    let mut doc = base_document();
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), identity_paths()) {
        paths.extend(more);
    }
    if let (Some(schemas), Value::Object(more)) = (
        doc["components"]["schemas"].as_object_mut(),
        identity_schemas(),
    ) {
        schemas.extend(more);
    }
    doc
}

/// The people and identity routes.
fn identity_paths() -> Value {
    json!({
            "/api/cdp/people/{key}": { "get": {
                "summary": "One person across browsers and identifiers: identifiers with the link that attached each, browsers, merge history, refused links and exclusions, and the golden profile of all its browsers' events (cdp serve and the Worker)",
                "parameters": [ { "name": "key", "in": "path", "required": true, "description": "A person id, an email, a customer id or an anonymous id.", "schema": { "type": "string" } } ],
                "responses": with_errors(json!({ "200": answer("The person.", r("Person")) }), &[
                    ("400", answer("The key is junk (null, undefined, a test address...): it names nobody.", r("Error"))),
                    ("404", answer("No stored events for this person.", object(&["status"], json!({ "status": { "const": "not_found" } }))))
                ])
            }, "delete": {
                "summary": "Erases the person (GDPR/CCPA): every stored event carrying one of its identifiers (a login on someone else's device too), their searches, its browsers' profiles, every identity edge naming an identifier, and their part of the rollups, in one transaction. Each identifier stays only as a tombstone (HMAC-SHA256 under --tombstone-key), so later events carrying one are suppressed and counted. Other people's browsers that lost events get their profiles rebuilt. Logged without identifiers (cdp serve on SQLite or Postgres)",
                "parameters": [ { "name": "key", "in": "path", "required": true, "description": "A person id, an email, a customer id or an anonymous id.", "schema": { "type": "string" } } ],
                "responses": with_errors(json!({ "200": answer("What the erasure removed.", r("Erasure")) }), &[
                    ("400", answer("The key is junk: it names nobody.", r("Error"))),
                    ("404", answer("No stored events for this person.", object(&["status"], json!({ "status": { "const": "not_found" } })))),
                    ("409", answer("No --tombstone-key is set; nothing was erased.", object(&["error", "problems"], json!({ "error": { "const": "erase_not_configured" }, "problems": { "type": "array" } })))),
                    ("501", answer("The store (Supabase REST) cannot erase in one transaction.", object(&["status", "reason"], json!({ "status": { "const": "unsupported" }, "reason": { "type": "string" } }))))
                ])
            } },
            "/api/cdp/people/{key}/export": { "get": {
                "summary": "Everything held about the person, as JSON (GDPR art. 15 and 20): the person with its profile and score inputs, every stored event carrying one of its identifiers (what an erasure deletes), the stage and prediction after each, and every identity edge naming one of its identifiers (cdp serve)",
                "parameters": [ { "name": "key", "in": "path", "required": true, "description": "A person id, an email, a customer id or an anonymous id.", "schema": { "type": "string" } } ],
                "responses": with_errors(json!({ "200": answer("The export.", r("PersonExport")) }), &[
                    ("400", answer("The key is junk: it names nobody.", r("Error"))),
                    ("404", answer("No stored events for this person.", object(&["status"], json!({ "status": { "const": "not_found" } }))))
                ])
            } },
            "/api/cdp/identity": { "get": {
                "summary": "Identity figures of the whole log: people linked across browsers and identifiers, refused links by reason, and the erasure audit (cdp serve and the Worker; the Worker always reports the audit tables, cdp serve only with --tombstone-key)",
                "responses": with_errors(json!({ "200": answer("The figures.", r("IdentityFigures")) }), &[])
            } },
            "/api/cdp/people/merge": { "post": {
                "summary": "Links two identifiers (an admin link, applied after every earlier link). Refused with 409 when a guard forbids it; the refused link is kept and counted",
                "requestBody": { "required": true, "content": { "application/json": { "schema": r("IdentityChange") } } },
                "responses": with_errors(json!({ "200": answer("The edge added and each side's person.", r("IdentityChanged")) }), &[
                    ("400", answer("The body names no two valid, different identifiers; the problem names the field.", r("Error"))),
                    ("409", answer("A guard refuses the merge (`second_customer_id`, `excluded`, `too_many_browsers`).", object(&["error", "reason", "problems"], json!({ "error": { "const": "merge_refused" }, "reason": { "type": "string" }, "problems": { "type": "array" } }))))
                ])
            } },
            "/api/cdp/people/split": { "post": {
                "summary": "Adds an exclusion between two identifiers: never one person again; each side is recomputed from its own events",
                "requestBody": { "required": true, "content": { "application/json": { "schema": r("IdentityChange") } } },
                "responses": with_errors(json!({ "200": answer("The edge added and each side's person.", r("IdentityChanged")) }), &[
                    ("400", answer("The body names no two valid, different identifiers; the problem names the field.", r("Error")))
                ])
            } }
    })
}

/// Their schemas.
fn identity_schemas() -> Value {
    json!({
                "Identifier": object(&["kind", "value"], json!({
                    "kind": { "type": "string", "enum": ["anonymous_id", "email", "customer_id"] },
                    "value": { "type": "string" }
                })),
                "Edge": object(&["kind", "a", "b", "origin", "event_id", "at"], json!({
                    "kind": { "type": "string", "enum": ["link", "exclude"] },
                    "a": r("Identifier"), "b": r("Identifier"),
                    "origin": { "type": "string", "enum": ["event", "admin"], "description": "A stored event's edge, or an admin's merge or split." },
                    "event_id": { "type": "string", "description": "The event (or admin action) it came from." },
                    "at": { "type": "string", "format": "date-time" }
                })),
                "Person": object(&["status", "person_id", "email", "customer_id", "browsers", "identifiers", "merges", "rejected", "exclusions", "profile"], json!({
                    "status": { "const": "ok" },
                    "person_id": { "type": "string", "description": "Opaque and stable: a UUID v5 of the event id of the link that formed the person (the person formed earlier keeps its id in a merge); for a browser no link touched, of its first event." },
                    "email": nullable("string"), "customer_id": nullable("string"),
                    "browsers": { "type": "array", "items": { "type": "string" } },
                    "identifiers": { "type": "array", "items": object(&["kind", "value", "attached_by"], json!({
                        "kind": { "type": "string" }, "value": { "type": "string" },
                        "attached_by": { "oneOf": [r("Edge"), { "type": "null" }], "description": "The applied link that attached it." }
                    })) },
                    "merges": { "type": "array", "items": r("Edge"), "description": "The links that joined the person, in the order applied." },
                    "rejected": { "type": "array", "items": object(&["reason", "edge"], json!({ "reason": { "type": "string" }, "edge": r("Edge") })) },
                    "exclusions": { "type": "array", "items": r("Edge") },
                    "profile": r("Profile")
                })),
                "IdentityFigures": object(&["linked_people", "linked_browsers", "cross_device_people", "rejections", "erasures"], json!({
                    "linked_people": int(), "linked_browsers": int(), "cross_device_people": int(),
                    "rejections": { "type": "object", "additionalProperties": int(), "description": "Refused links by reason, every reason named." },
                    "erasures": { "oneOf": [object(&["erasures", "tombstones", "suppressed"], json!({
                        "erasures": int(), "tombstones": { "type": "integer", "minimum": 0, "description": "One per erased identifier." },
                        "suppressed": { "type": "integer", "minimum": 0, "description": "Events not stored because they carried an erased identifier." }
                    })), { "type": "null" }], "description": "null when this collector cannot erase (no --tombstone-key, or a Supabase REST store)." }
                })),
                "Erasure": object(&["status", "erasure_id", "person_id", "identifiers", "events", "searches", "profiles", "edges", "rebuilt_profiles"], json!({
                    "status": { "const": "erased" }, "erasure_id": { "type": "string" }, "person_id": nullable("string"),
                    "identifiers": int(), "events": int(), "searches": int(), "profiles": int(), "edges": int(),
                    "rebuilt_profiles": { "type": "integer", "minimum": 0, "description": "Other people's browsers that lost events carrying the person's identifiers, rebuilt from what they keep." }
                })),
                "PersonExport": object(&["status", "exported_at", "person", "events", "stage_history", "audit"], json!({
                    "status": { "const": "ok" }, "exported_at": { "type": "string", "format": "date-time" },
                    "person": r("Person"),
                    "events": { "type": "array", "items": { "type": "object" }, "description": "Every stored event carrying one of the identifiers, as stored, in time order." },
                    "stage_history": { "type": "array", "items": object(&["event_id", "event_type", "at", "anonymous_id", "stage", "stage_confidence", "predicted_persona", "persona_confidence"], json!({
                        "event_id": { "type": "string" }, "event_type": { "type": "string" }, "at": { "type": "string", "format": "date-time" },
                        "anonymous_id": { "type": "string" }, "stage": { "type": "string" }, "stage_confidence": { "type": "number" },
                        "predicted_persona": { "type": "string" }, "persona_confidence": { "type": "number" }
                    })) },
                    "audit": { "type": "array", "items": r("Edge"), "description": "Every identity edge naming one of the identifiers: applied, refused, exclusions, admin merges and splits." }
                })),
                "IdentityChange": object(&["a", "b"], json!({ "a": r("Identifier"), "b": r("Identifier") })),
                "IdentityChanged": object(&["status", "edge", "a_person", "b_person"], json!({
                    "status": { "const": "ok" }, "edge": r("Edge"), "a_person": nullable("string"), "b_person": nullable("string")
                }))
    })
}
