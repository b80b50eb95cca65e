//! Keeps the dashboard rollups caught up: SQLite and Postgres fold them behind the event
//! stream (Postgres' migration 0003, SQLite's 0004 and 0005), so a task folds the events stored
//! since the last fold every [`fold_every`] of the backend; a fold takes thousands of events at
//! once instead of a few dozen per commit, and the collector's commits do not touch the
//! rollups. Dashboard reads fold before they read, so the figures never miss a stored event;
//! this task keeps that read-time fold small.

use cdp_adapters::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often stored events are folded into the rollups of this store.
///
/// A SQLite fold runs on the rollup file's own connection, beside the writer (the event
/// file's migration 0005), but on the same two cores: as on Postgres, part of its work is per
/// visitor, so every 500 ms instead of every 100 ms leaves more CPU to the writer (measured
/// together with the checkpoint interval, see `CHECKPOINT_EVERY` in
/// cdp-adapters/src/sqlite.rs), and the fold a dashboard read makes first still stays short.
///
/// A Postgres fold runs beside the commits on its own connection. Much of its work is per
/// visitor, not per event (each visitor-day row it touches is re-read, re-linked and
/// rewritten), so folding less often folds more events per visitor: with 2,000 visitors,
/// every 2 s instead of every 500 ms took Postgres from 109–113 to 94–99 µs of CPU per
/// single-event request (`cdp load --postgres-only`, interleaved runs), about a tenth more
/// events/s on a 2-core machine. The cost is on the read side: a dashboard read first folds
/// what is pending, at most 2 s of traffic (20,000 events at 10,000 events/s fold in about
/// 150 ms there).
pub fn fold_every(store: &Store) -> Duration {
    match store {
        Store::Sqlite(_) => Duration::from_millis(500),
        Store::Postgres(_) | Store::Supabase(_) => Duration::from_millis(2000),
    }
}

/// The running fold task; [`Folder::shutdown`] folds once more and stops it.
pub struct Folder {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Folder {
    /// Starts folding; `None` for Supabase REST, which leaves folding to the database.
    pub fn spawn(store: Arc<Store>) -> Option<Folder> {
        if matches!(*store, Store::Supabase(_)) {
            return None;
        }
        let (stop, stop_rx) = watch::channel(false);
        let every = fold_every(&store);
        let task = tokio::spawn(run(store, every, stop_rx));
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

/// Folded events after which the Postgres queue is vacuumed (its dead rows slow every fold).
const VACUUM_AFTER: u64 = 100_000;

async fn run(store: Arc<Store>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut failing = false;
    let mut since_vacuum = 0u64;
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(every) => false,
            changed = stop.changed() => changed.is_err() || *stop.borrow(),
        };
        let started = Instant::now();
        match store.flush_rollups().await {
            Ok(folded) => {
                if failing {
                    tracing::info!("rollup folding works again");
                    failing = false;
                }
                since_vacuum += folded;
                if let (Store::Postgres(pg), true) = (&*store, since_vacuum >= VACUUM_AFTER) {
                    since_vacuum = 0;
                    if let Err(e) = pg.vacuum_rollup_queue().await {
                        tracing::warn!(error = %e, "vacuuming the rollup queue failed");
                    }
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
