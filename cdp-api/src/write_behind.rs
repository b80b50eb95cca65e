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

/// The sending side, one clone per writer.
#[derive(Clone)]
pub struct Snapshots {
    tx: mpsc::Sender<Vec<Profile>>,
}

impl Snapshots {
    /// Queues profiles to be saved without waiting. Gives them back when the queue is full,
    /// so the caller keeps them dirty and offers them again later.
    pub fn offer(&self, profiles: Vec<Profile>) -> Result<(), Vec<Profile>> {
        if profiles.is_empty() {
            return Ok(());
        }
        self.tx.try_send(profiles).map_err(|e| match e {
            mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => p,
        })
    }

    /// Queues profiles, waiting for room: for the final snapshot at shutdown, which must not
    /// be dropped.
    pub async fn send(&self, profiles: Vec<Profile>) {
        if !profiles.is_empty() && self.tx.send(profiles).await.is_err() {
            tracing::warn!("profile write-behind already stopped; profiles left to catch up");
        }
    }
}

/// Starts the saving task. It ends once every [`Snapshots`] clone is dropped and the queue is
/// empty.
pub fn spawn(store: Arc<Store>, cfg: Arc<Config>) -> (Snapshots, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Vec<Profile>>(QUEUED_SNAPSHOTS);
    let task = tokio::spawn(async move {
        while let Some(profiles) = rx.recv().await {
            for chunk in profiles.chunks(SAVE_CHUNK) {
                save(&store, &cfg, chunk).await;
            }
        }
        tracing::debug!("profile write-behind stopped");
    });
    (Snapshots { tx }, task)
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
