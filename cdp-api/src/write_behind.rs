//! The profile write-behind: saves snapshots of golden profiles off the commit path, so a
//! commit never waits for profile writes.
//!
//! Profiles are a cache that can always be rebuilt: events are the source of truth, and a
//! writer that misses a visitor in memory loads the stored profile and catches it up from the
//! events processed after it. So a snapshot only has to be *safe* (it holds nothing that is not
//! committed, which the writers guarantee by taking snapshots between their commits), not
//! prompt. One task per collector receives snapshots from every writer over a bounded channel
//! and saves them in chunks, in arrival order, through the store's own connection pool (a
//! separate pool slot on Postgres; on SQLite, short transactions between the writer's).
//! A visitor always belongs to one writer, so its snapshots arrive in the order they were
//! taken and an older one never overwrites a newer one.

use cdp_adapters::{ProfileStore, Store};
use cdp_core::{Config, Profile};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Snapshots queued before writers keep their profiles dirty for the next round instead.
const QUEUED_SNAPSHOTS: usize = 64;
/// Most profiles per `save_profiles` call (one transaction each).
const SAVE_CHUNK: usize = 200;
/// Save attempts per chunk before it is dropped (its visitors are caught up from events on
/// their next cache miss, so dropping loses nothing but time).
const SAVE_ATTEMPTS: u32 = 5;
/// First wait after a failed save; doubled after each failure.
const RETRY_BASE: Duration = Duration::from_millis(500);

/// Profiles on their way to the store, with the bytes they hold; or a barrier, answered once
/// everything queued before it is saved.
enum Queued {
    Save(Vec<Profile>, u64),
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// The sending side, one clone per writer.
#[derive(Clone)]
pub struct Snapshots {
    tx: mpsc::Sender<Queued>,
    queued_bytes: Arc<AtomicU64>,
    max_bytes: u64,
}

impl Snapshots {
    /// Queues profiles to be saved without waiting. Gives them back when the queue is full
    /// (in snapshots, or in the bytes its profiles hold, once something is queued), so the
    /// caller keeps them dirty and offers them again later: a store that saves slowly holds
    /// back the snapshots, never the memory.
    pub fn offer(&self, profiles: Vec<Profile>) -> Result<(), Vec<Profile>> {
        if profiles.is_empty() {
            return Ok(());
        }
        let bytes: u64 = profiles.iter().map(|p| p.memory_bytes() as u64).sum();
        let queued = self.queued_bytes.load(Ordering::Relaxed);
        if queued > 0 && queued + bytes > self.max_bytes {
            return Err(profiles);
        }
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.tx
            .try_send(Queued::Save(profiles, bytes))
            .map_err(|e| {
                self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
                match e {
                    mpsc::error::TrySendError::Full(Queued::Save(p, _))
                    | mpsc::error::TrySendError::Closed(Queued::Save(p, _)) => p,
                    _ => Vec::new(),
                }
            })
    }

    /// Queues profiles, waiting for room: for the final snapshot at shutdown, which must not
    /// be dropped.
    pub async fn send(&self, profiles: Vec<Profile>) {
        if profiles.is_empty() {
            return;
        }
        let bytes: u64 = profiles.iter().map(|p| p.memory_bytes() as u64).sum();
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if self.tx.send(Queued::Save(profiles, bytes)).await.is_err() {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            tracing::warn!("profile write-behind already stopped; profiles left to catch up");
        }
    }

    /// Waits until every snapshot queued before the call is saved (or given up): an erasure
    /// deletes profiles only after this, so no older snapshot can write one back.
    pub async fn barrier(&self) {
        let (done, saved) = tokio::sync::oneshot::channel();
        if self.tx.send(Queued::Barrier(done)).await.is_ok() {
            let _ = saved.await;
        }
    }

    /// A reading of the bytes queued and not yet saved that does not keep the saving task
    /// alive (the task ends when the last [`Snapshots`] is dropped).
    pub fn gauge(&self) -> QueuedBytes {
        QueuedBytes(self.queued_bytes.clone())
    }
}

/// Bytes of the profiles queued and not yet saved.
#[derive(Clone, Debug, Default)]
pub struct QueuedBytes(Arc<AtomicU64>);

impl QueuedBytes {
    /// The bytes now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Starts the saving task, which queues at most `max_bytes` of profiles (estimated, see
/// [`Profile::memory_bytes`]). It ends once every [`Snapshots`] clone is dropped and the queue
/// is empty.
pub fn spawn(store: Arc<Store>, cfg: Arc<Config>, max_bytes: u64) -> (Snapshots, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Queued>(QUEUED_SNAPSHOTS);
    let queued_bytes = Arc::new(AtomicU64::new(0));
    let done = queued_bytes.clone();
    let task = tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            match job {
                Queued::Save(profiles, bytes) => {
                    for chunk in profiles.chunks(SAVE_CHUNK) {
                        save(&store, &cfg, chunk).await;
                    }
                    drop(profiles);
                    done.fetch_sub(bytes, Ordering::Relaxed);
                }
                Queued::Barrier(saved) => {
                    let _ = saved.send(());
                }
            }
        }
        tracing::debug!("profile write-behind stopped");
    });
    (
        Snapshots {
            tx,
            queued_bytes,
            max_bytes,
        },
        task,
    )
}

async fn save(store: &Store, cfg: &Config, chunk: &[Profile]) {
    let mut wait = RETRY_BASE;
    for attempt in 1..=SAVE_ATTEMPTS {
        match store.save_profiles(cfg, chunk).await {
            Ok(()) => return,
            Err(e) if attempt < SAVE_ATTEMPTS => {
                tracing::warn!(profiles = chunk.len(), attempt, error = %e,
                    "profile write-behind failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => tracing::error!(profiles = chunk.len(), error = %e,
                "profile write-behind gave up; these visitors will be caught up from their \
                 stored events on their next cache miss (nothing is lost)"),
        }
    }
}
