//! The writers' profile cache: which golden profiles stay in memory, bounded by the memory
//! they hold rather than by their number, and how well it serves (for `/health`).
//!
//! A profile's size varies tenfold (a first page view against a hundred signals and sixty-four
//! sessions), so a count says little about memory: `--profile-cache-mb` is the bound, shared
//! evenly by the writer shards, and the least recently used profiles leave first. Leaving
//! costs speed, never correctness: a visitor who is not cached is loaded from the store and
//! caught up from their stored events. Sizes are [`Profile::memory_bytes`] plus what the cache
//! itself spends per entry.
//!
//! Changed profiles also wait for their save ([`crate::write_behind`]): the queue holds at most
//! as many bytes again, and profiles pushed out of the cache wait at most 1,024 per writer
//! before they are queued, or dropped unsaved when the queue stays full (rebuilt from events
//! on their next visit). So profiles take at most about twice the bound, whatever the traffic.

use cdp_core::{AnonymousId, Profile};
use lru::LruCache;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What an entry costs beyond its profile: the key, the stored size, the list links and the
/// hash table slot.
const ENTRY_OVERHEAD_BYTES: usize =
    std::mem::size_of::<AnonymousId>() + std::mem::size_of::<usize>() + 2 * 8 + 16;

/// Counters every shard adds to, read by `/health`.
#[derive(Debug, Default)]
pub struct CacheCounters {
    entries: AtomicU64,
    bytes: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    dropped_unsaved: AtomicU64,
}

/// The cache as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CacheReport {
    /// Profiles held.
    pub entries: u64,
    /// Estimated bytes they hold.
    pub bytes: u64,
    /// The bound on `bytes`.
    pub max_bytes: u64,
    /// Visitors found in the cache when their events arrived, since start.
    pub hits: u64,
    /// Visitors that had to be loaded from the store.
    pub misses: u64,
    /// `hits / (hits + misses)`, `null` before the first event.
    pub hit_rate: Option<f64>,
    /// Profiles pushed out to stay within the bound.
    pub evictions: u64,
    /// Estimated bytes of changed profiles queued for saving (bounded by `max_bytes` too).
    pub awaiting_save_bytes: u64,
    /// Changed profiles dropped before their save because saving fell behind; each is
    /// rebuilt from the stored events on its visitor's next event, so nothing is lost.
    pub dropped_unsaved: u64,
}

impl CacheCounters {
    /// Records lookups of a batch's visitors.
    pub fn looked_up(&self, hits: u64, misses: u64) {
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(misses, Ordering::Relaxed);
    }

    /// Records changed profiles dropped before their save.
    pub fn dropped_unsaved(&self, profiles: u64) {
        self.dropped_unsaved.fetch_add(profiles, Ordering::Relaxed);
    }

    /// What the counters say, with the configured bound and the bytes awaiting their save.
    pub fn report(&self, max_bytes: u64, awaiting_save_bytes: u64) -> CacheReport {
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let looked = hits + misses;
        CacheReport {
            entries: self.entries.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            max_bytes,
            hits,
            misses,
            hit_rate: (looked > 0).then(|| hits as f64 / looked as f64),
            evictions: self.evictions.load(Ordering::Relaxed),
            awaiting_save_bytes,
            dropped_unsaved: self.dropped_unsaved.load(Ordering::Relaxed),
        }
    }
}

/// One shard's cache.
pub struct ProfileCache {
    entries: LruCache<AnonymousId, (Profile, usize)>,
    bytes: usize,
    max_bytes: usize,
    max_entries: usize,
    counters: Arc<CacheCounters>,
}

impl ProfileCache {
    /// An empty cache holding at most `max_bytes` of profiles and `max_entries` of them.
    pub fn new(max_bytes: usize, max_entries: usize, counters: Arc<CacheCounters>) -> Self {
        ProfileCache {
            entries: LruCache::unbounded(),
            bytes: 0,
            max_bytes,
            max_entries: max_entries.max(1),
            counters,
        }
    }

    /// Whether the visitor is cached (does not count as a use).
    pub fn contains(&self, id: &AnonymousId) -> bool {
        self.entries.contains(id)
    }

    /// The visitor's profile, if cached (does not count as a use).
    pub fn peek(&self, id: &AnonymousId) -> Option<&Profile> {
        self.entries.peek(id).map(|(p, _)| p)
    }

    /// Takes the visitor's profile out.
    pub fn pop(&mut self, id: &AnonymousId) -> Option<Profile> {
        let (profile, size) = self.entries.pop(id)?;
        self.forget_size(size, 1);
        Some(profile)
    }

    /// Caches a profile as the most recently used, and returns the profiles pushed out to
    /// stay within the bounds, least recently used first. The newest profile always stays,
    /// however large.
    pub fn push(&mut self, id: AnonymousId, profile: Profile) -> Vec<(AnonymousId, Profile)> {
        let size = profile.memory_bytes() + ENTRY_OVERHEAD_BYTES;
        if let Some((_, old_size)) = self.entries.put(id, (profile, size)) {
            self.forget_size(old_size, 1);
        }
        self.bytes += size;
        self.counters.entries.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(size as u64, Ordering::Relaxed);
        let mut out = Vec::new();
        while (self.bytes > self.max_bytes || self.entries.len() > self.max_entries)
            && self.entries.len() > 1
        {
            let Some((id, (profile, size))) = self.entries.pop_lru() else {
                break;
            };
            self.forget_size(size, 1);
            out.push((id, profile));
        }
        if !out.is_empty() {
            self.counters
                .evictions
                .fetch_add(out.len() as u64, Ordering::Relaxed);
        }
        out
    }

    /// The counters this cache adds to.
    pub fn counters(&self) -> &CacheCounters {
        &self.counters
    }

    /// Profiles held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Estimated bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn forget_size(&mut self, size: usize, entries: u64) {
        self.bytes -= size;
        self.counters.entries.fetch_sub(entries, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_sub(size as u64, Ordering::Relaxed);
    }
}

impl Drop for ProfileCache {
    fn drop(&mut self) {
        // A stopped shard's profiles are gone: the shared counters stop counting them.
        self.forget_size(self.bytes, self.entries.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdp_core::{apply, validate, Config};
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn profile(cfg: &Config, anon: &str, events: usize) -> Profile {
        let now: DateTime<Utc> = "2026-03-04T10:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut p = None;
        for i in 0..events {
            let raw = json!({
                "event": "product_clicked", "anonymous_id": anon,
                "session_id": format!("s-{}", i / 3), "timestamp": "2026-03-04T09:00:00Z",
                "page_url": "https://example.com/p", "event_id": uuid::Uuid::from_u128(i as u128 + 1).to_string(),
                "properties": {"product_id": "1", "product_handle": "turf-booster"}
            });
            let event = validate(cfg, &raw, now).unwrap_or_else(|e| panic!("{e:?}"));
            p = Some(apply(cfg, p, &event, now).profile);
        }
        p.unwrap_or_else(|| panic!("no events"))
    }

    #[test]
    fn the_bound_is_bytes_and_the_least_recent_leave_first() {
        let cfg = Config::southland();
        let counters = Arc::new(CacheCounters::default());
        let small = profile(&cfg, "a", 1);
        let big = profile(&cfg, "b", 120);
        assert!(
            big.memory_bytes() > 4 * small.memory_bytes(),
            "{} against {}",
            big.memory_bytes(),
            small.memory_bytes()
        );
        let budget = 3 * (big.memory_bytes() + ENTRY_OVERHEAD_BYTES);
        let mut cache = ProfileCache::new(budget, 1_000_000, counters.clone());
        let mut out = Vec::new();
        for i in 0..10 {
            out.extend(cache.push(AnonymousId::new(format!("small-{i}")), small.clone()));
        }
        assert!(
            out.is_empty(),
            "ten small profiles fit where three big ones do"
        );
        for i in 0..5 {
            out.extend(cache.push(AnonymousId::new(format!("big-{i}")), big.clone()));
        }
        assert!(cache.bytes() <= budget, "{} > {budget}", cache.bytes());
        let left: Vec<String> = out.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(
            left.first().map(String::as_str),
            Some("small-0"),
            "oldest first"
        );
        assert!(!cache.contains(&AnonymousId::new("small-0")));
        assert!(cache.contains(&AnonymousId::new("big-4")));
        let report = counters.report(budget as u64, 0);
        assert_eq!(report.entries, cache.len() as u64);
        assert_eq!(report.bytes, cache.bytes() as u64);
        assert_eq!(report.evictions, out.len() as u64);
        assert_eq!(report.hit_rate, None);
        // Replacing and taking out keep the sums exact (a replacement's own size differs a
        // little: it shares its ids with one more holder while it is measured).
        let before = cache.bytes();
        let again = cache.push(AnonymousId::new("big-4"), big.clone());
        assert!(again.is_empty());
        assert!(
            cache.bytes().abs_diff(before) < before / 50,
            "{} against {before}",
            cache.bytes()
        );
        assert_eq!(counters.report(0, 0).bytes, cache.bytes() as u64);
        let _ = cache.pop(&AnonymousId::new("big-4"));
        assert_eq!(counters.report(0, 0).bytes, cache.bytes() as u64);
        drop(cache);
        assert_eq!(counters.report(0, 0).entries, 0);
        assert_eq!(counters.report(0, 0).bytes, 0);
        counters.looked_up(3, 1);
        assert_eq!(counters.report(0, 0).hit_rate, Some(0.75));
    }

    #[test]
    fn one_profile_larger_than_the_bound_still_stays() {
        let cfg = Config::southland();
        let mut cache = ProfileCache::new(10, 1_000, Arc::default());
        assert!(cache
            .push(AnonymousId::new("a"), profile(&cfg, "a", 3))
            .is_empty());
        let out = cache.push(AnonymousId::new("b"), profile(&cfg, "b", 3));
        assert_eq!(out.len(), 1);
        assert_eq!(cache.len(), 1);
        assert!(cache.contains(&AnonymousId::new("b")));
    }

    #[test]
    fn the_count_still_bounds_too() {
        let cfg = Config::southland();
        let mut cache = ProfileCache::new(usize::MAX, 2, Arc::default());
        let p = profile(&cfg, "a", 1);
        let mut out = Vec::new();
        for id in ["a", "b", "c"] {
            out.extend(cache.push(AnonymousId::new(id), p.clone()));
        }
        assert_eq!(out.len(), 1);
        assert_eq!(cache.len(), 2);
    }
}
