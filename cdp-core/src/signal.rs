//! Signal extraction: what an event says about a visitor's persona. Each event yields zero or
//! more signals, each with a kind, a weight, the persona it hints at and where the hint came from.

use crate::config::Config;
use crate::contract::ValidEvent;
use crate::event_type::EventType;
use crate::ids::{PersonaId, SignalKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Where a signal's persona came from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintSource {
    /// The visitor chose it (Decision Engine, persona banner).
    Explicit,
    /// The visitor stated it elsewhere (an outcome survey).
    Declared,
    /// The Reality Tunnel the event happened in.
    Tunnel,
    /// The product handle.
    Product,
    /// The product collection.
    Collection,
    /// A keyword in the search query.
    Keyword,
    /// A prefix of the page URL path.
    Path,
    /// Nothing pointed anywhere; the fallback persona.
    Fallback,
}

/// One piece of evidence kept on the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The event it came from.
    pub event_id: Uuid,
    /// That event's type.
    pub event_type: EventType,
    /// The signal kind, which sets the weight.
    pub kind: SignalKind,
    /// The persona it counts towards.
    pub persona: PersonaId,
    /// Why that persona.
    pub hint: HintSource,
    /// Base weight before decay.
    pub weight: f64,
    /// When the event happened.
    pub at: DateTime<Utc>,
}

/// The signals an event yields under the configuration.
pub fn extract(cfg: &Config, event: &ValidEvent) -> Vec<Signal> {
    let Some(kind) = cfg
        .event_signal(event.event_type)
        .and_then(|m| m.signal.clone())
    else {
        return Vec::new();
    };
    let weight = cfg.weight(&kind);
    let make = |persona: PersonaId, hint: HintSource, weight: f64| Signal {
        event_id: event.event_id,
        event_type: event.event_type,
        kind: kind.clone(),
        persona,
        hint,
        weight,
        at: event.timestamp,
    };

    // An order or sales outcome listing products of several personas splits its weight evenly.
    let product_personas = product_list_personas(cfg, event);
    if !product_personas.is_empty() {
        let share = weight / product_personas.len() as f64;
        return product_personas
            .into_iter()
            .map(|p| make(p, HintSource::Product, share))
            .collect();
    }
    let (persona, hint) = resolve_hint(cfg, event);
    let weight = if hint == HintSource::Fallback {
        weight * cfg.fallback_weight_factor()
    } else {
        weight
    };
    vec![make(persona, hint, weight)]
}

/// The strongest persona hint an event carries, or the fallback persona.
pub fn resolve_hint(cfg: &Config, event: &ValidEvent) -> (PersonaId, HintSource) {
    let hints = cfg.hints();
    let lookup = |table: &std::collections::BTreeMap<String, PersonaId>, prop: &str| {
        event
            .prop_str(prop)
            .and_then(|v| table.get(&v.to_lowercase()).cloned())
    };
    let explicit_prop = cfg
        .event_signal(event.event_type)
        .and_then(|m| m.explicit_persona);
    let candidates = [
        (
            explicit_prop
                .and_then(|p| event.prop_str(p))
                .map(PersonaId::from),
            HintSource::Explicit,
        ),
        (
            (event.event_type == EventType::OutcomeSurveyCompleted)
                .then(|| event.prop_str("persona").map(PersonaId::from))
                .flatten(),
            HintSource::Declared,
        ),
        (lookup(&hints.tunnels, "tunnel"), HintSource::Tunnel),
        (
            lookup(&hints.products, "product_handle"),
            HintSource::Product,
        ),
        (
            lookup(&hints.collections, "collection"),
            HintSource::Collection,
        ),
        (
            keyword_persona(cfg, event.prop_str("query")),
            HintSource::Keyword,
        ),
        (path_persona(cfg, &event.page_url), HintSource::Path),
    ];
    candidates
        .into_iter()
        .find_map(|(p, src)| {
            p.and_then(|p| cfg.persona_id(p.as_str()).cloned())
                .map(|p| (p, src))
        })
        .unwrap_or_else(|| (cfg.fallback_persona().clone(), HintSource::Fallback))
}

/// Distinct personas of the product handles in a `products` list, in list order.
fn product_list_personas(cfg: &Config, event: &ValidEvent) -> Vec<PersonaId> {
    let Some(Value::Array(items)) = event.properties.get("products") else {
        return Vec::new();
    };
    let mut out: Vec<PersonaId> = Vec::new();
    for handle in items.iter().filter_map(Value::as_str) {
        if let Some(p) = cfg.hints().products.get(&handle.to_lowercase()) {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    }
    out
}

/// The first persona (in configuration order) with a keyword among the query's words.
fn keyword_persona(cfg: &Config, query: Option<&str>) -> Option<PersonaId> {
    let query = query?.to_lowercase();
    let words: Vec<&str> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    cfg.hints()
        .keywords
        .iter()
        .find(|(_, kws)| kws.iter().any(|k| words.contains(&k.as_str())))
        .map(|(p, _)| p.clone())
}

/// The persona of the longest configured prefix of the URL's path.
fn path_persona(cfg: &Config, url: &str) -> Option<PersonaId> {
    let path = url_path(url).to_lowercase();
    cfg.hints()
        .paths
        .iter()
        .find(|(prefix, _)| {
            path.starts_with(prefix.as_str())
                && (path.len() == prefix.len()
                    || prefix.ends_with('/')
                    || path[prefix.len()..].starts_with('/'))
        })
        .map(|(_, p)| p.clone())
}

/// The path part of an absolute URL, without query or fragment; `/` when there is none.
pub fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = after_scheme.find('/').unwrap_or(after_scheme.len());
    let rest = &after_scheme[path_start..];
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    if end == 0 {
        "/"
    } else {
        &rest[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::url_path;

    #[test]
    fn url_path_strips_host_query_and_fragment() {
        let cases = [
            (
                "https://example.com/backyard/coops?x=1#top",
                "/backyard/coops",
            ),
            ("https://example.com", "/"),
            ("https://example.com?q=1", "/"),
            ("http://example.com/", "/"),
        ];
        for (url, path) in cases {
            assert_eq!(url_path(url), path, "{url}");
        }
    }
}
