//! Keeps the dashboard rollups caught up where the store folds them behind the event stream
//! (Postgres, migration 0003): a task folds the pending events every [`FOLD_EVERY`], so a
//! fold takes thousands of events at once instead of a few dozen per commit, and the
//! collector's commits only queue their events. Dashboard reads fold before they read, so the
//! figures never miss a stored event; this task keeps that read-time fold small.

use cdp_adapters::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often pending events are folded into the rollups.
pub const FOLD_EVERY: Duration = Duration::from_millis(500);

/// The running fold task; [`Folder::shutdown`] folds once more and stops it.
pub struct Folder {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Folder {
    /// Starts folding when the store defers its rollups; `None` when it keeps them current
    /// itself (SQLite) or leaves folding to the database (Supabase REST).
    pub fn spawn(store: Arc<Store>) -> Option<Folder> {
        if !matches!(*store, Store::Postgres(_)) {
            return None;
        }
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(store, stop_rx));
        Some(Folder { stop, task })
    }

    /// Folds what is still pending (the writers have drained by now) and stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "rollup fold task ended abnormally");
        }
    }
}

async fn run(store: Arc<Store>, mut stop: watch::Receiver<bool>) {
    let mut failing = false;
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(FOLD_EVERY) => false,
            changed = stop.changed() => changed.is_err() || *stop.borrow(),
        };
        let started = Instant::now();
        match store.flush_rollups().await {
            Ok(folded) => {
                if failing {
                    tracing::info!("rollup folding works again");
                    failing = false;
                }
                if folded > 0 {
                    tracing::debug!(
                        folded,
                        ms = started.elapsed().as_secs_f64() * 1000.0,
                        "rollups folded"
                    );
                }
            }
            // Nothing is lost: the events stay pending until a fold succeeds.
            Err(e) if !failing => {
                tracing::warn!(error = %e, "folding the rollups failed; events stay pending");
                failing = true;
            }
            Err(_) => {}
        }
        if stopping {
            break;
        }
    }
}
