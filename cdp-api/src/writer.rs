//! The group-commit writer: decides when an event is durable and in which order a visitor's
//! events reach the profile.
//!
//! Validated events travel over a channel to one writer task per shard (a visitor always maps
//! to the same shard), each with a oneshot for the answer. A writer gathers requests until it
//! holds `batch_events` events or `linger` has passed, then for the whole batch: asks the store
//! which event ids already exist (those are duplicates), applies the rest with
//! [`cdp_core::apply`] in arrival order, writes every row in ONE transaction, and only then
//! answers. Many concurrent requests therefore share one commit, and per-visitor updates are
//! serialised without locks.
//!
//! Profiles live in a bounded LRU cache and are written behind (every second and at shutdown).
//! On a cache miss the stored profile is loaded and caught up with the visitor's events
//! processed after it, so a crash between an event commit and a profile save loses nothing:
//! events are the source of truth. When a commit fails, the visitors it touched are dropped
//! from the cache, so the next event reloads them from the store.

use crate::sampling::fnv1a;
use cdp_adapters::{EventSink, ProfileStore, Store, StoreError, WriteOutcome};
use cdp_core::{apply, AnonymousId, Config, EventType, Outcome, Profile, ValidEvent};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use lru::LruCache;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

pub use crate::settings::WriterSettings;

/// Requests queued per shard before senders wait (back-pressure instead of unbounded memory).
const QUEUE_REQUESTS: usize = 4096;
/// How often dirty profiles are written behind.
const PROFILE_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Most profiles per `save_profiles` call.
const PROFILE_SAVE_CHUNK: usize = 500;
/// Profile loads in flight at once for one batch.
const PROFILE_LOADS_IN_FLIGHT: usize = 16;

/// What became of one event handed to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    /// Newly stored and applied.
    Accepted,
    /// Stored before (or earlier in the same batch); nothing changed.
    Duplicate,
    /// The store refused this row alone and kept it in its dead-letter file (Supabase REST).
    DeadLettered,
}

/// Why a write did not happen. Nothing of the request was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The store cannot be reached; the client should retry.
    #[error("store unavailable")]
    Unavailable,
    /// The store refused the write.
    #[error("store refused the write")]
    Refused,
    /// The writer has stopped (the server is shutting down).
    #[error("writer stopped")]
    Stopped,
}

impl From<&StoreError> for WriteError {
    fn from(e: &StoreError) -> Self {
        if e.is_unavailable() {
            WriteError::Unavailable
        } else {
            WriteError::Refused
        }
    }
}

struct WriteRequest {
    events: Vec<ValidEvent>,
    reply: oneshot::Sender<Result<Vec<WriteStatus>, WriteError>>,
}

/// Handle to the writer tasks: cheap to clone, shared by the HTTP handlers.
#[derive(Clone)]
pub struct Writers {
    shards: Arc<Vec<mpsc::Sender<WriteRequest>>>,
    last_event_at: Arc<AtomicI64>,
}

/// Stops the writers: they finish the queued requests, save dirty profiles and exit.
pub struct WritersShutdown {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl WritersShutdown {
    /// Signals the writers and waits until every one has flushed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "writer task ended abnormally");
            }
        }
    }
}

impl Writers {
    /// Starts `settings.shards` writer tasks on the current runtime.
    pub fn spawn(
        store: Arc<Store>,
        cfg: Arc<Config>,
        settings: WriterSettings,
    ) -> (Writers, WritersShutdown) {
        let (stop, stop_rx) = watch::channel(false);
        let last_event_at = Arc::new(AtomicI64::new(i64::MIN));
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        let cache = NonZeroUsize::new(settings.profile_cache).unwrap_or(NonZeroUsize::MIN);
        for shard in 0..settings.shards.max(1) {
            let (tx, rx) = mpsc::channel(QUEUE_REQUESTS);
            senders.push(tx);
            let writer = ShardWriter {
                shard,
                store: store.clone(),
                cfg: cfg.clone(),
                settings,
                profiles: LruCache::new(cache),
                dirty: HashSet::new(),
                evicted_dirty: HashMap::new(),
                last_now: DateTime::<Utc>::MIN_UTC,
                last_event_at: last_event_at.clone(),
            };
            tasks.push(tokio::spawn(writer.run(rx, stop_rx.clone())));
        }
        (
            Writers {
                shards: Arc::new(senders),
                last_event_at,
            },
            WritersShutdown { stop, tasks },
        )
    }

    /// When an event was last committed, if any since start.
    pub fn last_event_at(&self) -> Option<DateTime<Utc>> {
        match self.last_event_at.load(Ordering::Relaxed) {
            i64::MIN => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }

    /// Hands events to their shards and waits until they are durable. Statuses come back in
    /// the order of `events`.
    pub async fn write(&self, events: Vec<ValidEvent>) -> Result<Vec<WriteStatus>, WriteError> {
        let n = self.shards.len();
        let mut per_shard: Vec<(Vec<usize>, Vec<ValidEvent>)> = vec![(Vec::new(), Vec::new()); n];
        for (i, e) in events.into_iter().enumerate() {
            let s = shard_of(&e.anonymous_id, n);
            per_shard[s].0.push(i);
            per_shard[s].1.push(e);
        }
        let total: usize = per_shard.iter().map(|(idx, _)| idx.len()).sum();
        let mut waits = Vec::new();
        for (s, (idx, evs)) in per_shard.into_iter().enumerate() {
            if evs.is_empty() {
                continue;
            }
            let (reply, rx) = oneshot::channel();
            self.shards[s]
                .send(WriteRequest { events: evs, reply })
                .await
                .map_err(|_| WriteError::Stopped)?;
            waits.push((idx, rx));
        }
        let mut out = vec![WriteStatus::Duplicate; total];
        let mut first_error = None;
        for (idx, rx) in waits {
            match rx.await {
                Ok(Ok(statuses)) => {
                    for (i, st) in idx.into_iter().zip(statuses) {
                        out[i] = st;
                    }
                }
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => first_error = first_error.or(Some(WriteError::Stopped)),
            }
        }
        match first_error {
            None => Ok(out),
            Some(e) => Err(e),
        }
    }
}

/// The shard of a visitor: a stable hash, so one visitor is always serialised by one writer.
fn shard_of(id: &AnonymousId, shards: usize) -> usize {
    (fnv1a(id.as_str().as_bytes()) % shards as u64) as usize
}

struct ShardWriter {
    shard: usize,
    store: Arc<Store>,
    cfg: Arc<Config>,
    settings: WriterSettings,
    profiles: LruCache<AnonymousId, Profile>,
    dirty: HashSet<AnonymousId>,
    /// Dirty profiles pushed out of the cache before they were saved.
    evicted_dirty: HashMap<AnonymousId, Profile>,
    last_now: DateTime<Utc>,
    last_event_at: Arc<AtomicI64>,
}

impl ShardWriter {
    async fn run(mut self, mut rx: mpsc::Receiver<WriteRequest>, mut stop: watch::Receiver<bool>) {
        let mut flush = tokio::time::interval(PROFILE_FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                msg = rx.recv() => match msg {
                    Some(first) => {
                        let batch = self.gather(first, &mut rx).await;
                        self.commit(batch).await;
                    }
                    None => break,
                },
                _ = flush.tick() => self.flush_profiles().await,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        // Take what is queued, refuse new requests, then drain.
                        rx.close();
                        while let Some(first) = rx.recv().await {
                            let batch = self.gather(first, &mut rx).await;
                            self.commit(batch).await;
                        }
                        break;
                    }
                }
            }
        }
        self.flush_profiles().await;
        tracing::debug!(shard = self.shard, "writer stopped");
    }

    /// Collects requests until the batch is full or the linger time has passed.
    async fn gather(
        &self,
        first: WriteRequest,
        rx: &mut mpsc::Receiver<WriteRequest>,
    ) -> Vec<WriteRequest> {
        let mut events = first.events.len();
        let mut batch = vec![first];
        let deadline = Instant::now() + self.settings.linger;
        while events < self.settings.batch_events {
            let next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
            };
            let Some(m) = next else { break };
            events += m.events.len();
            batch.push(m);
        }
        batch
    }

    /// Processing time for a batch; never goes backwards, so catching up by
    /// `processed_at > profile.last_updated` cannot skip an event.
    fn now(&mut self) -> DateTime<Utc> {
        self.last_now = Utc::now().max(self.last_now);
        self.last_now
    }

    async fn commit(&mut self, batch: Vec<WriteRequest>) {
        let groups: Vec<&[ValidEvent]> = batch.iter().map(|r| r.events.as_slice()).collect();
        match self.try_commit(&groups).await {
            Ok(results) => {
                for (req, statuses) in batch.into_iter().zip(results) {
                    let _ = req.reply.send(Ok(statuses));
                }
            }
            // One refused row must not fail the strangers it shared a transaction with:
            // retry each request on its own.
            Err(StoreError::Rejected { .. }) if batch.len() > 1 => {
                for req in batch {
                    let result = self
                        .try_commit(&[req.events.as_slice()])
                        .await
                        .map(|mut r| r.pop().unwrap_or_default())
                        .map_err(|e| WriteError::from(&e));
                    let _ = req.reply.send(result);
                }
            }
            Err(e) => {
                let err = WriteError::from(&e);
                for req in batch {
                    let _ = req.reply.send(Err(err.clone()));
                }
            }
        }
    }

    /// Applies and writes a batch; on failure nothing is stored and the touched visitors are
    /// evicted from the cache so they are reloaded from the store.
    async fn try_commit(
        &mut self,
        groups: &[&[ValidEvent]],
    ) -> Result<Vec<Vec<WriteStatus>>, StoreError> {
        let now = self.now();
        let touched: BTreeSet<AnonymousId> = groups
            .iter()
            .flat_map(|g| g.iter().map(|e| e.anonymous_id.clone()))
            .collect();
        let result = self.apply_and_write(groups, now).await;
        if let Err(e) = &result {
            let types: BTreeSet<EventType> = groups
                .iter()
                .flat_map(|g| g.iter().map(|e| e.event_type))
                .collect();
            let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            let (status, kind) = match e {
                StoreError::Rejected { status, .. } => (status.as_str(), "rejected"),
                StoreError::Unavailable { .. } => ("unavailable", "unavailable"),
                StoreError::Corrupt { .. } => ("corrupt", "corrupt"),
            };
            tracing::error!(
                shard = self.shard,
                event_types = %types.join(","),
                events = groups.iter().map(|g| g.len()).sum::<usize>(),
                status,
                kind,
                error = %e,
                "sink write failed"
            );
            for id in &touched {
                self.profiles.pop(id);
                self.dirty.remove(id);
                self.evicted_dirty.remove(id);
            }
        }
        result
    }

    async fn apply_and_write(
        &mut self,
        groups: &[&[ValidEvent]],
        now: DateTime<Utc>,
    ) -> Result<Vec<Vec<WriteStatus>>, StoreError> {
        let brand = self.cfg.brand_id().clone();
        let ids: Vec<Uuid> = groups
            .iter()
            .flat_map(|g| g.iter().map(|e| e.event_id))
            .collect();
        let existing = self.store.existing_event_ids(&brand, &ids).await?;

        let needed: BTreeSet<AnonymousId> = groups
            .iter()
            .flat_map(|g| g.iter())
            .filter(|e| !existing.contains(&e.event_id))
            .map(|e| e.anonymous_id.clone())
            .filter(|id| !self.profiles.contains(id) && !self.evicted_dirty.contains_key(id))
            .collect();
        let loaded = self.load_profiles(needed, now).await?;
        for (id, profile) in loaded.into_iter() {
            if let Some(p) = profile {
                self.put_profile(id, p);
            }
        }

        // Apply in arrival order; remember which row answers which event.
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut statuses: Vec<Vec<WriteStatus>> = Vec::with_capacity(groups.len());
        let mut rows = Vec::new();
        let mut row_of: Vec<(usize, usize)> = Vec::new();
        for (g, events) in groups.iter().enumerate() {
            let mut st = Vec::with_capacity(events.len());
            for (i, event) in events.iter().enumerate() {
                if existing.contains(&event.event_id) || !seen.insert(event.event_id) {
                    st.push(WriteStatus::Duplicate);
                    continue;
                }
                let before = self.take_profile(&event.anonymous_id);
                let applied = apply(&self.cfg, before, event, now);
                self.put_profile(event.anonymous_id.clone(), applied.profile);
                if applied.outcome == Outcome::Duplicate {
                    st.push(WriteStatus::Duplicate);
                    continue;
                }
                self.dirty.insert(event.anonymous_id.clone());
                rows.push(applied.row);
                row_of.push((g, i));
                st.push(WriteStatus::Accepted);
            }
            statuses.push(st);
        }

        if !rows.is_empty() {
            let outcomes = self.store.write_events(&rows).await?;
            // A row another writer stored first (a race on the same event id) is a duplicate.
            for ((g, i), outcome) in row_of.into_iter().zip(outcomes) {
                statuses[g][i] = match outcome {
                    WriteOutcome::Inserted => WriteStatus::Accepted,
                    WriteOutcome::Duplicate => WriteStatus::Duplicate,
                    WriteOutcome::DeadLettered => WriteStatus::DeadLettered,
                };
            }
            self.last_event_at
                .fetch_max(now.timestamp_millis(), Ordering::Relaxed);
        }
        Ok(statuses)
    }

    /// Loads missing profiles and catches each up with the events processed after it.
    async fn load_profiles(
        &self,
        ids: BTreeSet<AnonymousId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<(AnonymousId, Option<Profile>)>, StoreError> {
        let store = &self.store;
        let cfg = &self.cfg;
        let results: Vec<Result<(AnonymousId, Option<Profile>), StoreError>> = stream::iter(ids)
            .map(|id| async move {
                let brand = cfg.brand_id();
                let mut profile = store.load_profile(brand, &id, now).await?;
                let after = profile.as_ref().map(|p| p.last_updated);
                let missed = store.visitor_events(brand, &id, after).await?;
                for row in missed {
                    let event = row.to_valid_event();
                    profile = Some(apply(cfg, profile, &event, row.processed_at).profile);
                }
                Ok((id, profile))
            })
            .buffer_unordered(PROFILE_LOADS_IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect()
    }

    fn take_profile(&mut self, id: &AnonymousId) -> Option<Profile> {
        self.profiles
            .pop(id)
            .or_else(|| self.evicted_dirty.remove(id))
    }

    fn put_profile(&mut self, id: AnonymousId, profile: Profile) {
        if let Some((old_id, old)) = self.profiles.push(id, profile) {
            if self.dirty.remove(&old_id) {
                self.evicted_dirty.insert(old_id, old);
            }
        }
    }

    /// Writes dirty profiles behind the events; on failure they stay dirty for the next tick.
    async fn flush_profiles(&mut self) {
        if self.dirty.is_empty() && self.evicted_dirty.is_empty() {
            return;
        }
        let mut batch: Vec<Profile> = self.evicted_dirty.values().cloned().collect();
        batch.extend(
            self.dirty
                .iter()
                .filter_map(|id| self.profiles.peek(id).cloned()),
        );
        for chunk in batch.chunks(PROFILE_SAVE_CHUNK) {
            if let Err(e) = self.store.save_profiles(&self.cfg, chunk).await {
                tracing::warn!(
                    shard = self.shard,
                    profiles = batch.len(),
                    error = %e,
                    "profile write-behind failed; will retry (events are stored, nothing is lost)"
                );
                return;
            }
        }
        self.dirty.clear();
        self.evicted_dirty.clear();
    }
}
