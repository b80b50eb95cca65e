//! The group-commit writer: decides when an event is durable and in which order a visitor's
//! events reach the profile.
//!
//! Validated events travel over a channel to one writer task per shard (a visitor always maps
//! to the same shard), each with a oneshot for the answer. A writer takes every request queued
//! (up to `batch_events` events, waiting at most `linger` for more), applies them with
//! [`cdp_core::apply`] in arrival order, writes every row in ONE transaction, and only then
//! answers. Many concurrent requests therefore share one commit, and per-visitor updates are
//! serialised without locks. Commits are pipelined one deep: while batch N commits, batch N+1
//! is gathered and applied, and its commit starts when N's ends (commits of one writer never
//! overlap, so rows are stored in the order they were applied).
//!
//! Duplicates are decided by the store, in the same statement that inserts: a row the store
//! already holds (or that another collector stored first) comes back `Duplicate`. Replays
//! within a visitor's recent events are caught before that by the profile itself. When the
//! store reports a duplicate (or dead-letters a row) that the profile had applied, the visitor
//! is dropped from the cache, so its profile is rebuilt from what is stored rather than keep an
//! event twice.
//!
//! Profiles live in an LRU cache bounded by their memory ([`crate::profile_cache`]) and are
//! written behind by [`crate::write_behind`]:
//! snapshots of changed profiles every `profile_flush` (30 s by default), on eviction and at
//! shutdown, never on the commit path. Snapshots are taken between commits, so they hold only
//! committed events. On a cache miss the stored profiles of the whole batch's new visitors are
//! loaded in one request and caught up in one more with the events processed after each, so a
//! crash between an event commit and a profile save loses nothing: events are the source of
//! truth. When a commit fails, the visitors it touched are dropped from the cache, so their
//! next event reloads them from the store.

use crate::profile_cache::{CacheCounters, CacheReport, ProfileCache};
use crate::suppression::Suppression;
use crate::write_behind::{self, QueuedBytes, Snapshots};
use cdp_adapters::{EventSink, ProfileStore, Store, StoreError, WriteOutcome};
use cdp_core::sampling::fnv1a;
use cdp_core::{apply, AnonymousId, Config, EventType, Outcome, Profile, ValidEvent};
use chrono::{DateTime, SubsecRound, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use crate::settings::WriterSettings;

/// Requests queued per shard before senders wait (back-pressure instead of unbounded memory).
const QUEUE_REQUESTS: usize = 4096;
/// Dirty profiles pushed out of the cache that are kept before they are sent to be saved.
const EVICTED_DIRTY_MAX: usize = 1024;
/// Times a batch is retried when the store reports a transient conflict (a deadlock or a
/// serialisation failure: nothing was stored, and the same batch can succeed).
const CONFLICT_RETRIES: u32 = 3;
/// Most events gathered and staged in one step. Staging is CPU work on the writer's own task,
/// and a commit that lands during a step is answered (and the next commit started) only when
/// the step ends; small steps keep that wait short while requests keep arriving.
const STAGE_EVENTS: usize = 256;
/// Times the gatherer yields to the runtime to let requests in flight reach the queue.
const GATHER_YIELDS: usize = 4;
/// How often a writer logs what it did (at debug level) and starts counting afresh.
const STATS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// What became of one event handed to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    /// Newly stored and applied.
    Accepted,
    /// Stored before (or earlier in the same batch); nothing changed.
    Duplicate,
    /// The store refused this row alone and kept it in its dead-letter file (Supabase REST).
    DeadLettered,
    /// It carries an erased person's identifier: not stored, not applied, counted.
    Suppressed,
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

/// A pause request to one writer (see [`Writers::pause`]).
struct Pause {
    ready: oneshot::Sender<()>,
    resume: oneshot::Receiver<BTreeSet<AnonymousId>>,
}

/// Every writer paused. Dropping it resumes them too, forgetting nothing.
pub struct Paused {
    resumes: Vec<oneshot::Sender<BTreeSet<AnonymousId>>>,
}

impl Paused {
    /// Lets the writers go on, each first dropping `forget` from its cache (their profiles
    /// are loaded from the store again on their next event).
    pub fn resume(self, forget: &BTreeSet<AnonymousId>) {
        for r in self.resumes {
            let _ = r.send(forget.clone());
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
    pauses: Arc<Vec<mpsc::Sender<Pause>>>,
    last_event_at: Arc<AtomicI64>,
    cache: Arc<CacheCounters>,
    cache_max_bytes: u64,
    saving: QueuedBytes,
}

/// Stops the writers: they finish the queued requests, save dirty profiles and exit.
pub struct WritersShutdown {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    write_behind: JoinHandle<()>,
}

impl WritersShutdown {
    /// Signals the writers and waits until every one has drained and every profile is saved.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "writer task ended abnormally");
            }
        }
        // The writers held the last senders: the write-behind now drains and ends.
        if let Err(e) = self.write_behind.await {
            tracing::error!(error = %e, "profile write-behind ended abnormally");
        }
    }

    /// Stops everything at once, as a crash would: queued requests get no answer and no
    /// profile is saved. What was committed stays committed; the next writer catches the
    /// profiles up from the stored events.
    pub fn abort(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.write_behind.abort();
    }
}

impl Writers {
    /// Starts `settings.shards` writer tasks and the profile write-behind on the current
    /// runtime, suppressing nothing.
    pub fn spawn(
        store: Arc<Store>,
        cfg: Arc<Config>,
        settings: WriterSettings,
    ) -> (Writers, WritersShutdown) {
        Writers::spawn_with(store, cfg, settings, None)
    }

    /// [`Writers::spawn`], suppressing the events that hit a tombstone of `suppression`.
    pub fn spawn_with(
        store: Arc<Store>,
        cfg: Arc<Config>,
        settings: WriterSettings,
        suppression: Option<Arc<Suppression>>,
    ) -> (Writers, WritersShutdown) {
        let (stop, stop_rx) = watch::channel(false);
        let last_event_at = Arc::new(AtomicI64::new(i64::MIN));
        let (snapshots, write_behind) = write_behind::spawn(
            store.clone(),
            cfg.clone(),
            settings.profile_cache_bytes as u64,
        );
        let mut senders = Vec::new();
        let mut pauses = Vec::new();
        let mut tasks = Vec::new();
        let cache = Arc::new(CacheCounters::default());
        let shard_bytes = settings.profile_cache_bytes / settings.shards.max(1);
        for shard in 0..settings.shards.max(1) {
            let (tx, rx) = mpsc::channel(QUEUE_REQUESTS);
            senders.push(tx);
            let (pause_tx, pause_rx) = mpsc::channel(1);
            pauses.push(pause_tx);
            let writer = ShardWriter {
                shard,
                store: store.clone(),
                cfg: cfg.clone(),
                settings,
                profiles: ProfileCache::new(shard_bytes, settings.profile_cache, cache.clone()),
                dirty: HashSet::new(),
                evicted_dirty: HashMap::new(),
                snapshots: snapshots.clone(),
                last_snapshot: Instant::now(),
                last_now: DateTime::<Utc>::MIN_UTC,
                last_event_at: last_event_at.clone(),
                stats: Stats::default(),
                suppression: suppression.clone(),
            };
            tasks.push(tokio::spawn(writer.run(rx, pause_rx, stop_rx.clone())));
        }
        (
            Writers {
                shards: Arc::new(senders),
                pauses: Arc::new(pauses),
                last_event_at,
                cache,
                cache_max_bytes: settings.profile_cache_bytes as u64,
                saving: snapshots.gauge(),
            },
            WritersShutdown {
                stop,
                tasks,
                write_behind,
            },
        )
    }

    /// When this process last committed an event, if it has since it started.
    pub fn last_event_at(&self) -> Option<DateTime<Utc>> {
        match self.last_event_at.load(Ordering::Relaxed) {
            i64::MIN => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }

    /// Stops every writer between two commits: each lands what it has applied (so every
    /// event accepted before the call is durable), takes no snapshot, and waits, its queue
    /// filling, until [`Paused::resume`]. Then the profiles queued for saving are saved. An
    /// erasure runs in between, so no writer or snapshot touches what it deletes.
    pub async fn pause(&self) -> Result<Paused, WriteError> {
        let mut resumes = Vec::new();
        for shard in self.pauses.iter() {
            let (ready, landed) = oneshot::channel();
            let (resume, resumed) = oneshot::channel();
            shard
                .send(Pause {
                    ready,
                    resume: resumed,
                })
                .await
                .map_err(|_| WriteError::Stopped)?;
            landed.await.map_err(|_| WriteError::Stopped)?;
            resumes.push(resume);
        }
        Ok(Paused { resumes })
    }

    /// The profile cache of every shard together, for `/health`.
    pub fn cache_report(&self) -> CacheReport {
        self.cache.report(self.cache_max_bytes, self.saving.get())
    }

    /// Hands events to their shards and waits until they are durable. Statuses come back in
    /// the order of `events`.
    pub async fn write(&self, events: Vec<ValidEvent>) -> Result<Vec<WriteStatus>, WriteError> {
        let n = self.shards.len();
        let total = events.len();
        // The common cases (one event, or a batch from one visitor) need no splitting.
        let first_shard = events.first().map(|e| shard_of(&e.anonymous_id, n));
        if let Some(s) = first_shard.filter(|s| {
            events
                .iter()
                .all(|e| n == 1 || shard_of(&e.anonymous_id, n) == *s)
        }) {
            let (reply, rx) = oneshot::channel();
            self.shards[s]
                .send(WriteRequest { events, reply })
                .await
                .map_err(|_| WriteError::Stopped)?;
            return rx.await.map_err(|_| WriteError::Stopped)?;
        }
        let mut per_shard: Vec<(Vec<usize>, Vec<ValidEvent>)> = vec![(Vec::new(), Vec::new()); n];
        for (i, e) in events.into_iter().enumerate() {
            let s = shard_of(&e.anonymous_id, n);
            per_shard[s].0.push(i);
            per_shard[s].1.push(e);
        }
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

/// What a writer did, logged at debug level every [`STATS_EVERY`] and when it stops, to tune
/// batch sizes.
#[derive(Debug)]
struct Stats {
    since: Instant,
    commits: u64,
    events: u64,
    misses: u64,
    commit_time: std::time::Duration,
    prepare_time: std::time::Duration,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            since: Instant::now(),
            commits: 0,
            events: 0,
            misses: 0,
            commit_time: std::time::Duration::ZERO,
            prepare_time: std::time::Duration::ZERO,
        }
    }
}

impl Stats {
    fn log(&self, shard: usize, what: &str) {
        let commits = self.commits.max(1);
        tracing::debug!(
            shard,
            seconds = self.since.elapsed().as_secs_f64(),
            commits = self.commits,
            events = self.events,
            events_per_commit = self.events / commits,
            cache_misses = self.misses,
            mean_prepare_us = self.prepare_time.as_micros() as u64 / commits,
            mean_commit_us = self.commit_time.as_micros() as u64 / commits,
            "{what}"
        );
    }
}

/// What a commit task gives back: the rows it wrote and the store's answer.
type Committed = (
    Vec<cdp_core::EventRow>,
    Result<Vec<WriteOutcome>, StoreError>,
);

/// A commit task's end: what it gave back, or how the task itself failed.
type CommitResult = Result<Committed, tokio::task::JoinError>;

/// A gathered batch, applied to the cache, waiting for the commit in flight to land.
struct Staged {
    batch: Vec<WriteRequest>,
    prepared: Prepared,
}

impl Staged {
    /// Appends a batch applied after this one (its requests and rows come after ours).
    fn absorb(&mut self, later: Staged) {
        let offset = self.batch.len();
        let p = later.prepared;
        self.batch.extend(later.batch);
        self.prepared.rows.extend(p.rows);
        self.prepared
            .row_of
            .extend(p.row_of.into_iter().map(|(g, i)| (g + offset, i)));
        self.prepared.statuses.extend(p.statuses);
        self.prepared.touched.extend(p.touched);
        self.prepared.now = self.prepared.now.max(p.now);
        self.prepared.suppressed.extend(p.suppressed);
    }
}

/// A batch whose commit is running.
struct InFlight {
    batch: Vec<WriteRequest>,
    /// Everything but the rows, which the commit task holds.
    prepared: Prepared,
    task: JoinHandle<Committed>,
    started: Instant,
}

/// Waits for the commit in flight (forever when there is none; the caller guards on that).
async fn landing(inflight: &mut Option<InFlight>) -> (InFlight, CommitResult) {
    match inflight {
        Some(f) => {
            let result = (&mut f.task).await;
            match inflight.take() {
                Some(f) => (f, result),
                None => std::future::pending().await,
            }
        }
        None => std::future::pending().await,
    }
}

/// A batch applied to the cache and waiting to be written.
struct Prepared {
    rows: Vec<cdp_core::EventRow>,
    /// `(request, event)` of each row.
    row_of: Vec<(usize, usize)>,
    statuses: Vec<Vec<WriteStatus>>,
    touched: BTreeSet<AnonymousId>,
    now: DateTime<Utc>,
    /// The tombstones each suppressed event hit, counted once the batch is answered.
    suppressed: Vec<Vec<String>>,
}

struct ShardWriter {
    shard: usize,
    store: Arc<Store>,
    cfg: Arc<Config>,
    settings: WriterSettings,
    profiles: ProfileCache,
    /// Visitors whose cached profile changed since its last snapshot.
    dirty: HashSet<AnonymousId>,
    /// Dirty profiles pushed out of the cache before their snapshot was taken.
    evicted_dirty: HashMap<AnonymousId, Profile>,
    snapshots: Snapshots,
    last_snapshot: Instant,
    last_now: DateTime<Utc>,
    last_event_at: Arc<AtomicI64>,
    stats: Stats,
    suppression: Option<Arc<Suppression>>,
}

impl ShardWriter {
    /// The commit pipeline: while batch N commits (a task of its own), the next requests are
    /// gathered and applied to the cache as batch N+1, whose commit starts the moment N's
    /// ends. Commits never overlap, so a visitor's rows are stored in the order they were
    /// applied, and N+1 is answered only after its own commit. When N fails, N+1 was applied
    /// on top of events that are not stored: both batches' visitors are dropped from the cache
    /// and both go through [`ShardWriter::commit`] again, one after the other.
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<WriteRequest>,
        mut pauses: mpsc::Receiver<Pause>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut inflight: Option<InFlight> = None;
        let mut staged: Option<Staged> = None;
        loop {
            let until_snapshot = self
                .settings
                .profile_flush
                .saturating_sub(self.last_snapshot.elapsed());
            tokio::select! {
                biased;
                (flight, result) = landing(&mut inflight), if inflight.is_some() => {
                    match self.land(flight, result) {
                        Ok(stale) => inflight = self.next_flight(staged.take(), &stale).await,
                        Err(failed) => self.retry_apart(failed, staged.take()).await,
                    }
                }
                Some(p) = pauses.recv() => {
                    self.drain(inflight.take(), staged.take()).await;
                    // Every snapshot this writer queued is saved before the pause is granted.
                    self.snapshots.barrier().await;
                    let _ = p.ready.send(());
                    if let Ok(forget) = p.resume.await {
                        self.forget(&forget);
                    }
                }
                msg = rx.recv(), if self.room(&staged) > 0 => match msg {
                    Some(first) => {
                        let limit = self.room(&staged).min(STAGE_EVENTS);
                        let batch = self.gather(first, &mut rx, limit).await;
                        match (self.stage(batch).await, staged.take()) {
                            // The staged batch grows until the commit in flight lands, so
                            // batches stay as large as without the pipeline.
                            (Ok(s), Some(mut waiting)) => {
                                waiting.absorb(s);
                                staged = Some(waiting);
                            }
                            (Ok(s), None) if inflight.is_none() => {
                                inflight = Some(self.launch(s));
                            }
                            (Ok(s), None) => staged = Some(s),
                            (Err(batch), waiting) => {
                                // Let what is applied land first, so the retry reads its rows.
                                self.drain(inflight.take(), waiting).await;
                                self.commit(batch).await;
                            }
                        }
                    }
                    None => break,
                },
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        // Take what is queued, refuse new requests, then drain.
                        rx.close();
                        self.drain(inflight.take(), staged.take()).await;
                        while let Some(first) = rx.recv().await {
                            let batch = self.gather(first, &mut rx, self.settings.batch_events).await;
                            self.commit(batch).await;
                        }
                        break;
                    }
                }
                () = tokio::time::sleep(until_snapshot) => {}
            }
            if self.stats.since.elapsed() >= STATS_EVERY {
                std::mem::take(&mut self.stats).log(self.shard, "writer stats");
            }
            let due = self.last_snapshot.elapsed() >= self.settings.profile_flush;
            if due || self.evicted_dirty.len() >= EVICTED_DIRTY_MAX {
                // Visitors with events not yet committed stay dirty for the next round.
                let mut uncommitted = BTreeSet::new();
                for p in [
                    inflight.as_ref().map(|f| &f.prepared),
                    staged.as_ref().map(|s| &s.prepared),
                ]
                .into_iter()
                .flatten()
                {
                    uncommitted.extend(p.touched.iter().cloned());
                }
                // Between periodic snapshots only the profiles pushed out of the cache go:
                // they are moved, not copied, so saving them costs no memory.
                self.offer_snapshot(&uncommitted, due);
            }
        }
        self.drain(inflight.take(), staged.take()).await;
        let last = self.take_snapshot(&BTreeSet::new(), true);
        self.snapshots.send(last).await;
        self.stats.log(self.shard, "writer stopped");
    }

    /// Applies a gathered batch to the cache, ready to be committed. On failure (a cache
    /// miss could not be loaded) the batch comes back untouched for [`ShardWriter::commit`].
    async fn stage(&mut self, batch: Vec<WriteRequest>) -> Result<Staged, Vec<WriteRequest>> {
        let started = Instant::now();
        let groups: Vec<&[ValidEvent]> = batch.iter().map(|r| r.events.as_slice()).collect();
        let result = self.prepare(&groups).await;
        drop(groups);
        self.stats.prepare_time += started.elapsed();
        match result {
            Ok(prepared) => Ok(Staged { batch, prepared }),
            Err((e, touched)) => {
                tracing::warn!(shard = self.shard, error = %e, "loading profiles failed");
                self.forget(&touched);
                Err(batch)
            }
        }
    }

    /// Events the staged batch may still take.
    fn room(&self, staged: &Option<Staged>) -> usize {
        let held = staged.as_ref().map_or(0, |s| s.prepared.rows.len());
        self.settings.batch_events.saturating_sub(held)
    }

    /// Starts a staged batch's commit as a task of its own.
    fn launch(&mut self, staged: Staged) -> InFlight {
        let Staged {
            batch,
            mut prepared,
        } = staged;
        let rows = std::mem::take(&mut prepared.rows);
        let store = self.store.clone();
        let task = tokio::spawn(async move {
            let result = if rows.is_empty() {
                Ok(Vec::new())
            } else {
                store.write_events(&rows).await
            };
            (rows, result)
        });
        InFlight {
            batch,
            prepared,
            task,
            started: Instant::now(),
        }
    }

    /// Launches the staged batch after a landing, unless the landing dropped from the cache a
    /// visitor the staged batch was applied on: then the staged batch is applied again from
    /// the store (which now holds the landed rows) and committed on its own.
    async fn next_flight(
        &mut self,
        staged: Option<Staged>,
        dropped: &BTreeSet<AnonymousId>,
    ) -> Option<InFlight> {
        let s = staged?;
        if s.prepared.touched.iter().any(|id| dropped.contains(id)) {
            self.forget(&s.prepared.touched);
            self.commit(s.batch).await;
            None
        } else {
            Some(self.launch(s))
        }
    }

    /// Answers a landed commit and returns the visitors it dropped from the cache. On failure
    /// its visitors are dropped from the cache and its requests come back, to be committed
    /// again on their own.
    fn land(
        &mut self,
        flight: InFlight,
        result: CommitResult,
    ) -> Result<BTreeSet<AnonymousId>, Vec<WriteRequest>> {
        let InFlight {
            batch,
            prepared,
            started,
            ..
        } = flight;
        match result {
            Ok((rows, Ok(outcomes))) => {
                if !rows.is_empty() {
                    self.stats.commit_time += started.elapsed();
                    self.stats.commits += 1;
                    self.stats.events += rows.len() as u64;
                }
                let (statuses, dropped) = self.settle(prepared, &rows, outcomes);
                for (req, st) in batch.into_iter().zip(statuses) {
                    let _ = req.reply.send(Ok(st));
                }
                Ok(dropped)
            }
            Ok((_, Err(e))) => {
                tracing::warn!(shard = self.shard, error = %e,
                    "commit failed; trying its requests again");
                self.forget(&prepared.touched);
                Err(batch)
            }
            Err(e) => {
                tracing::error!(shard = self.shard, error = %e, "commit task ended abnormally");
                self.forget(&prepared.touched);
                Err(batch)
            }
        }
    }

    /// After a failed landing: commits its requests again on their own, then the staged batch
    /// (applied on top of the failed one, so its visitors are dropped and it is applied afresh).
    async fn retry_apart(&mut self, failed: Vec<WriteRequest>, staged: Option<Staged>) {
        if let Some(s) = &staged {
            self.forget(&s.prepared.touched);
        }
        self.commit(failed).await;
        if let Some(s) = staged {
            self.commit(s.batch).await;
        }
    }

    /// Lands the commit in flight and then the staged batch, each retried on its own when it
    /// fails: nothing is left half done.
    async fn drain(&mut self, inflight: Option<InFlight>, staged: Option<Staged>) {
        let mut staged = staged;
        if let Some(mut f) = inflight {
            let result = (&mut f.task).await;
            match self.land(f, result) {
                Ok(dropped) => {
                    if let Some(mut f) = self.next_flight(staged.take(), &dropped).await {
                        let result = (&mut f.task).await;
                        if let Err(batch) = self.land(f, result) {
                            self.commit(batch).await;
                        }
                    }
                }
                Err(failed) => self.retry_apart(failed, staged.take()).await,
            }
        }
        if let Some(s) = staged {
            let mut f = self.launch(s);
            let result = (&mut f.task).await;
            if let Err(batch) = self.land(f, result) {
                self.commit(batch).await;
            }
        }
    }

    /// Takes every queued request, up to `batch_events` events. When the queue runs dry it
    /// first yields to the runtime a few times, which lets handlers that are about to send
    /// (typically the clients just answered by the previous commit) join this batch instead of
    /// waiting a whole commit for the next one, then waits up to `linger` if that is set.
    async fn gather(
        &self,
        first: WriteRequest,
        rx: &mut mpsc::Receiver<WriteRequest>,
        limit: usize,
    ) -> Vec<WriteRequest> {
        let mut events = first.events.len();
        let mut batch = vec![first];
        let deadline = Instant::now() + self.settings.linger;
        let mut yields = 0;
        while events < limit {
            let next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) if yields < GATHER_YIELDS => {
                    yields += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(mpsc::error::TryRecvError::Empty) if !self.settings.linger.is_zero() => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
                Err(mpsc::error::TryRecvError::Empty) => None,
            };
            let Some(m) = next else { break };
            events += m.events.len();
            batch.push(m);
        }
        batch
    }

    /// Processing time for a batch; never goes backwards, so catching up by
    /// `processed_at >= profile.last_updated` cannot skip an event. It is in whole
    /// microseconds, the stored precision, so a profile's `last_updated` equals the stored
    /// `processed_at` of its latest event rather than sorting after it.
    fn now(&mut self) -> DateTime<Utc> {
        self.last_now = Utc::now().trunc_subsecs(6).max(self.last_now);
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

    /// Applies and writes a batch, retrying it when the store reports a transient conflict.
    /// On failure nothing is stored and the touched visitors are dropped from the cache so
    /// they are reloaded from the store.
    async fn try_commit(
        &mut self,
        groups: &[&[ValidEvent]],
    ) -> Result<Vec<Vec<WriteStatus>>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.apply_and_write(groups).await;
            match result {
                Err(e) if is_transient_conflict(&e) && attempt <= CONFLICT_RETRIES => {
                    tracing::warn!(shard = self.shard, attempt, error = %e,
                        "transient conflict; retrying the batch");
                }
                Err(e) => {
                    self.log_failure(groups, &e);
                    return Err(e);
                }
                Ok(statuses) => return Ok(statuses),
            }
        }
    }

    fn log_failure(&self, groups: &[&[ValidEvent]], e: &StoreError) {
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
    }

    async fn apply_and_write(
        &mut self,
        groups: &[&[ValidEvent]],
    ) -> Result<Vec<Vec<WriteStatus>>, StoreError> {
        let started = Instant::now();
        let prepared = match self.prepare(groups).await {
            Ok(p) => p,
            Err((e, touched)) => {
                self.forget(&touched);
                return Err(e);
            }
        };
        let written = Instant::now();
        self.stats.prepare_time += written - started;
        let mut prepared = prepared;
        let rows = std::mem::take(&mut prepared.rows);
        if rows.is_empty() {
            self.count_suppressed(std::mem::take(&mut prepared.suppressed));
            return Ok(prepared.statuses);
        }
        let outcomes = match self.store.write_events(&rows).await {
            Ok(o) => o,
            Err(e) => {
                self.forget(&prepared.touched);
                return Err(e);
            }
        };
        self.stats.commit_time += written.elapsed();
        self.stats.commits += 1;
        self.stats.events += rows.len() as u64;
        Ok(self.settle(prepared, &rows, outcomes).0)
    }

    /// Each event's status once its rows are committed, and the visitors dropped from the
    /// cache: those whose row the store did not take from us (a duplicate stored by someone
    /// else, a dead-lettered row), as their profiles applied an event that is not ours to
    /// count.
    fn settle(
        &mut self,
        prepared: Prepared,
        rows: &[cdp_core::EventRow],
        outcomes: Vec<WriteOutcome>,
    ) -> (Vec<Vec<WriteStatus>>, BTreeSet<AnonymousId>) {
        let Prepared {
            row_of,
            mut statuses,
            now,
            suppressed,
            ..
        } = prepared;
        self.count_suppressed(suppressed);
        let mut stale: BTreeSet<AnonymousId> = BTreeSet::new();
        for (((g, i), outcome), row) in row_of.into_iter().zip(outcomes).zip(rows) {
            statuses[g][i] = match outcome {
                WriteOutcome::Inserted => WriteStatus::Accepted,
                WriteOutcome::Duplicate => WriteStatus::Duplicate,
                WriteOutcome::DeadLettered => WriteStatus::DeadLettered,
            };
            if outcome != WriteOutcome::Inserted {
                stale.insert(row.anonymous_id.clone());
            }
        }
        self.forget(&stale);
        if !rows.is_empty() {
            self.last_event_at
                .fetch_max(now.timestamp_millis(), Ordering::Relaxed);
        }
        (statuses, stale)
    }

    /// Loads the batch's new visitors and applies every event in arrival order. On failure,
    /// returns the visitors whose cached profiles may already hold some of the batch.
    async fn prepare(
        &mut self,
        groups: &[&[ValidEvent]],
    ) -> Result<Prepared, (StoreError, BTreeSet<AnonymousId>)> {
        let now = self.now();
        let touched: BTreeSet<AnonymousId> = groups
            .iter()
            .flat_map(|g| g.iter().map(|e| e.anonymous_id.clone()))
            .collect();
        let missing: Vec<AnonymousId> = touched
            .iter()
            .filter(|id| !self.profiles.contains(id) && !self.evicted_dirty.contains_key(id))
            .cloned()
            .collect();
        self.profiles
            .counters()
            .looked_up((touched.len() - missing.len()) as u64, missing.len() as u64);
        // The batch's profiles are held apart from the cache while its events are applied: a
        // batch can bring more visitors than the cache holds, and a saved profile pushed out
        // by another visitor's event before its own was applied would be started afresh.
        let mut working: HashMap<AnonymousId, Profile> = HashMap::new();
        if !missing.is_empty() {
            self.stats.misses += missing.len() as u64;
            working = self
                .load_profiles(&missing, now)
                .await
                .map_err(|e| (e, BTreeSet::new()))?
                .into_iter()
                .collect();
        }
        for id in &touched {
            if let Some(p) = self.take_profile(id) {
                working.insert(id.clone(), p);
            }
        }

        let mut statuses: Vec<Vec<WriteStatus>> = Vec::with_capacity(groups.len());
        let mut rows = Vec::new();
        let mut row_of: Vec<(usize, usize)> = Vec::new();
        let mut seen: HashSet<uuid::Uuid> = HashSet::new();
        let mut suppressed = Vec::new();
        for (g, events) in groups.iter().enumerate() {
            let mut st = Vec::with_capacity(events.len());
            for (i, event) in events.iter().enumerate() {
                if let Some(s) = &self.suppression {
                    let hits = s.hits(&self.cfg, event);
                    if !hits.is_empty() {
                        suppressed.push(hits);
                        st.push(WriteStatus::Suppressed);
                        continue;
                    }
                }
                if !seen.insert(event.event_id) {
                    st.push(WriteStatus::Duplicate);
                    continue;
                }
                let before = working.remove(&event.anonymous_id);
                let applied = apply(&self.cfg, before, event, now);
                working.insert(event.anonymous_id.clone(), applied.profile);
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
        // Back in the cache in the order the batch first touched them; a profile pushed out
        // now is dirty and waits for its save.
        for event in groups.iter().flat_map(|g| g.iter()) {
            if let Some(p) = working.remove(&event.anonymous_id) {
                self.put_profile(event.anonymous_id.clone(), p);
            }
        }
        Ok(Prepared {
            rows,
            row_of,
            statuses,
            touched,
            now,
            suppressed,
        })
    }

    /// The stored profiles of `ids`, each caught up with the events processed at or after its
    /// `last_updated` (all of a visitor's events when nothing is stored): two requests for the
    /// whole batch, however many visitors it brings.
    async fn load_profiles(
        &self,
        ids: &[AnonymousId],
        now: DateTime<Utc>,
    ) -> Result<Vec<(AnonymousId, Profile)>, StoreError> {
        let brand = self.cfg.brand_id();
        let mut stored = self.store.load_profiles(brand, ids, now).await?;
        let since: Vec<(AnonymousId, Option<DateTime<Utc>>)> = ids
            .iter()
            .map(|id| (id.clone(), stored.get(id).map(|p| p.last_updated)))
            .collect();
        let mut missed = self.store.visitor_events_many(brand, &since).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // A decoded profile holds its own copy of every persona id and signal kind; the
            // cache keeps the configuration's instead.
            let profile = stored.remove(id).map(|mut p| {
                p.share_ids(&self.cfg);
                p
            });
            let rows = missed.remove(id).unwrap_or_default();
            if let Some(p) = cdp_core::replay(&self.cfg, profile, &rows) {
                out.push((id.clone(), p));
            }
        }
        Ok(out)
    }

    /// Counts the suppressed events of a batch that is being answered (once: a batch that is
    /// tried again is counted when it is answered).
    fn count_suppressed(&self, hits: Vec<Vec<String>>) {
        if let Some(s) = &self.suppression {
            s.count(&self.store, self.cfg.brand_id(), hits);
        }
    }

    /// Drops visitors from the cache, unsaved changes included: their profiles are rebuilt
    /// from the store on their next event.
    fn forget(&mut self, ids: &BTreeSet<AnonymousId>) {
        for id in ids {
            self.profiles.pop(id);
            self.dirty.remove(id);
            self.evicted_dirty.remove(id);
        }
    }

    /// Takes a visitor's profile out of the cache, or out of the evicted profiles awaiting
    /// their save, which stay dirty: their changes are still not saved.
    fn take_profile(&mut self, id: &AnonymousId) -> Option<Profile> {
        self.profiles.pop(id).or_else(|| {
            let p = self.evicted_dirty.remove(id)?;
            self.dirty.insert(id.clone());
            Some(p)
        })
    }

    fn put_profile(&mut self, id: AnonymousId, profile: Profile) {
        for (old_id, old) in self.profiles.push(id, profile) {
            if self.dirty.remove(&old_id) {
                self.evicted_dirty.insert(old_id, old);
            }
        }
    }

    /// The changed profiles pushed out of the cache and, with `cached`, copies of the changed
    /// ones still in it, but none of `uncommitted` visitors (whose profiles hold events not yet
    /// durable, which a snapshot must never contain); those taken are then clean.
    fn take_snapshot(&mut self, uncommitted: &BTreeSet<AnonymousId>, cached: bool) -> Vec<Profile> {
        let mut out = Vec::new();
        for (id, p) in std::mem::take(&mut self.evicted_dirty) {
            if uncommitted.contains(&id) {
                self.evicted_dirty.insert(id, p);
            } else {
                out.push(p);
            }
        }
        if !cached {
            return out;
        }
        for id in std::mem::take(&mut self.dirty) {
            if uncommitted.contains(&id) {
                self.dirty.insert(id);
            } else if let Some(p) = self.profiles.peek(&id) {
                out.push(p.clone());
            }
        }
        out
    }

    /// Hands changed profiles to the write-behind without waiting; when its queue is full they
    /// stay dirty for the next round. When it stays full and more than [`EVICTED_DIRTY_MAX`]
    /// pushed-out profiles wait, those with nothing in flight are dropped unsaved, which costs
    /// their visitors a catch-up from the stored events on their next visit and keeps memory
    /// bounded however slowly the store saves.
    fn offer_snapshot(&mut self, uncommitted: &BTreeSet<AnonymousId>, cached: bool) {
        if cached {
            self.last_snapshot = Instant::now();
        }
        let snapshot = self.take_snapshot(uncommitted, cached);
        if let Err(back) = self.snapshots.offer(snapshot) {
            tracing::debug!(
                shard = self.shard,
                profiles = back.len(),
                "write-behind queue full; keeping profiles dirty"
            );
            for p in back {
                let id = p.anonymous_id.clone();
                if self.profiles.contains(&id) {
                    self.dirty.insert(id);
                } else {
                    self.evicted_dirty.insert(id, p);
                }
            }
            if self.evicted_dirty.len() > EVICTED_DIRTY_MAX {
                let before = self.evicted_dirty.len();
                self.evicted_dirty.retain(|id, _| uncommitted.contains(id));
                let dropped = before - self.evicted_dirty.len();
                self.profiles.counters().dropped_unsaved(dropped as u64);
                tracing::debug!(
                    shard = self.shard,
                    profiles = dropped,
                    "profile saves are behind; dropped pushed-out profiles, to be caught up \
                     from their events"
                );
            }
        }
    }
}

/// A deadlock or serialisation failure: the transaction was rolled back as a whole, and the
/// same batch can succeed when tried again.
fn is_transient_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Rejected { status, .. } if status == "40P01" || status == "40001")
}
