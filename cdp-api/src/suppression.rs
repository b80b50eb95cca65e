//! Which arriving events are dropped because they carry an erased person's identifier, and
//! how many were. The tombstones (keyed hashes, `cdp_core::identity::Tombstones`) are loaded
//! from the store at start-up and grow with each erasure; the writer tests every event
//! against them before it applies it, so a suppressed event is never stored or applied, and
//! each one is counted: in `/health` since start-up, and on its tombstone in the store
//! (`EraseStore::count_suppressed`), which `/api/cdp/identity` sums.
//!
//! One collector per database: a tombstone written by another `cdp serve` on the same
//! Postgres takes effect here at this one's next start.

use cdp_adapters::{EraseStore, Store};
use cdp_core::identity::{TombstoneKey, Tombstones};
use cdp_core::{BrandId, Config, ValidEvent};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The collector's tombstones and its count of suppressed events.
#[derive(Debug)]
pub struct Suppression {
    key: TombstoneKey,
    tombstones: RwLock<Tombstones>,
    suppressed: AtomicU64,
}

impl Suppression {
    /// The tombstones `hashes` under `key`.
    pub fn new(key: TombstoneKey, hashes: Vec<String>) -> Suppression {
        Suppression {
            key: key.clone(),
            tombstones: RwLock::new(Tombstones::new(key, hashes)),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Loads the brand's tombstones from the store.
    pub async fn load(
        store: &Store,
        brand: &BrandId,
        key: TombstoneKey,
    ) -> Result<Suppression, cdp_adapters::EraseError> {
        Ok(Suppression::new(key, store.tombstones(brand).await?))
    }

    /// The key tombstones are made with.
    pub fn key(&self) -> &TombstoneKey {
        &self.key
    }

    /// The tombstones an event hits (empty: store it).
    pub fn hits(&self, cfg: &Config, event: &ValidEvent) -> Vec<String> {
        match self.tombstones.read() {
            Ok(t) => t.hits(event, cfg.identity_rules()),
            // A writer panicked while adding tombstones: refuse nothing rather than all.
            Err(_) => Vec::new(),
        }
    }

    /// Adds an erasure's tombstones: from now on their identifiers' events are suppressed.
    /// Returns the ones not held before.
    pub fn add(&self, hashes: impl IntoIterator<Item = String>) -> Vec<String> {
        match self.tombstones.write() {
            Ok(mut t) => t.extend(hashes),
            Err(_) => Vec::new(),
        }
    }

    /// Gives back tombstones an erasure added and then could not keep (its transaction
    /// failed, so nothing was erased and nothing is kept).
    pub fn remove(&self, hashes: &[String]) {
        if let Ok(mut t) = self.tombstones.write() {
            t.remove(hashes);
        }
    }

    /// How many tombstones are held.
    pub fn tombstones(&self) -> usize {
        self.tombstones.read().map_or(0, |t| t.len())
    }

    /// Events suppressed since start-up.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// Counts suppressed events (one entry per event, the tombstones it hit): here at once,
    /// and in the store in the background, each event on the first tombstone it hit, so the
    /// store's sum counts events (a failure there is logged; the count here stays).
    pub fn count(&self, store: &Arc<Store>, brand: &BrandId, hits: Vec<Vec<String>>) {
        if hits.is_empty() {
            return;
        }
        self.suppressed
            .fetch_add(hits.len() as u64, Ordering::Relaxed);
        let mut per: BTreeMap<String, u64> = BTreeMap::new();
        for hash in hits.into_iter().filter_map(|h| h.into_iter().next()) {
            *per.entry(hash).or_default() += 1;
        }
        let per: Vec<(String, u64)> = per.into_iter().collect();
        let (store, brand) = (store.clone(), brand.clone());
        tokio::spawn(async move {
            let events: u64 = per.iter().map(|(_, n)| *n).sum();
            if let Err(e) = store
                .count_suppressed(&brand, &per, chrono::Utc::now())
                .await
            {
                tracing::warn!(error = %e, tombstone_hits = events,
                    "could not count suppressed events on their tombstones");
            }
        });
    }
}
