//! The one owner of the scheduling state: a task that takes commands from the gRPC handlers over
//! a channel, applies them to the state machine, and performs the effects (writing results,
//! logging progress or redrawing the terminal's status block, signalling the end of the sweep).
//! No lock is ever held across an `.await`.
//!
//! Group commit, pipelined: the task applies every command already queued (up to
//! [`MAX_BATCH`]) and hands the rows they changed, with the answers to those commands, to the
//! database's own thread ([`Writer`]). That thread commits them in one transaction (with any
//! batches that queued up meanwhile) and only then sends the answers, while this task goes on
//! with the next commands: it never waits for the disk. A write is never acknowledged before it
//! is durable; if the database fails, the coordinator stops (a restart resumes from what was
//! committed).
//!
//! Two answers do not wait for the disk: a lease granted and a heartbeat. Neither acknowledges
//! anything a worker produced. A lease lost in a crash is harmless: every later write of its
//! worker is fenced by (trial, attempt, worker) and is committed after the lease, so nothing is
//! recorded under a lease the database does not hold, and the worker learns at its next
//! heartbeat that the lease is gone.
//!
//! Every change people can see (a worker registered, a trial leased, an epoch reported, a trial
//! ended) bumps a generation counter that [`Handle::changes`] watches, so the live web view
//! knows when to make a new snapshot.
//!
//! The status summary reads running totals ([`status::Index`]) that the task refreshes for the
//! trials each batch changed, so that a status costs O(running trials + workers), not O(trials);
//! the accuracy tables of a detailed status are laid out off this task ([`Handle::status`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sweep_common::grid::Grid;
use sweep_common::results::Experiment;
use sweep_common::{EpochMetrics, TrialId, TrialSpec, WorkerId};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::Error;
use crate::console::Console;
use crate::results;
use crate::state::{
    CancelSelector, Checkpoint, Counts, Effect, FailureKind, LeaseOutcome, Outcome, RetrySelector,
    Scheduler, StateError, Storage, TrialState,
};
use crate::status::{self, Clock, Index, Snapshot, View, tables};
use crate::store::{Store, Writes};

/// Most commands applied before their batch goes to the database's thread.
pub const MAX_BATCH: usize = 512;
/// Batches that may wait for the database's thread before the state owner waits for it.
const WRITER_QUEUE: usize = 64;

/// `results.json` is rewritten at most this often while trials end (and when the sweep ends or
/// the coordinator stops).
const SAVE_EVERY: Duration = Duration::from_secs(2);
/// ... a slice of this many trials at a time ...
const SAVE_SLICE: usize = 200;
/// ... spending at most 1/this of the state owner's time on it.
const SAVE_COST_FACTOR: u32 = 50;
/// A progress line is logged at most this often while trials end.
const PROGRESS_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// How often the terminal's status block is redrawn at most.
const REDRAW_EVERY: Duration = Duration::from_millis(500);
/// How often it is redrawn when nothing changed (the elapsed time moves on).
const REFRESH_EVERY: Duration = Duration::from_secs(1);

type Reply<T> = oneshot::Sender<Result<T, StateError>>;

/// An answer held back until the changes it acknowledges are committed.
type Deferred = Box<dyn FnOnce() + Send>;

fn defer<T: Send + 'static>(reply: oneshot::Sender<T>, value: T) -> Deferred {
    Box::new(move || {
        let _ = reply.send(value);
    })
}

/// A request to the state owner.
enum Command {
    Register {
        name: String,
        device: String,
        slots: u32,
        reply: oneshot::Sender<WorkerId>,
    },
    Lease {
        worker: WorkerId,
        reply: Reply<LeaseOutcome>,
    },
    Heartbeat {
        worker: WorkerId,
        leases: Vec<(TrialId, u32)>,
        memory: Option<(u64, u64)>,
        reply: Reply<Vec<(TrialId, u32)>>,
    },
    ReportEpoch {
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        metrics: EpochMetrics,
        reply: Reply<()>,
    },
    Complete {
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        outcome: Outcome,
        reply: Reply<()>,
    },
    Progress {
        reply: oneshot::Sender<Progress>,
    },
    Status {
        view: View,
        reply: oneshot::Sender<(Snapshot, Option<tables::Tables>)>,
    },
    CheckLease {
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        reply: Reply<TrialSpec>,
    },
    RecordWeights {
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        path: String,
        reply: Reply<()>,
    },
    RecordCheckpoint {
        worker: WorkerId,
        trial: TrialId,
        checkpoint: Checkpoint,
        reply: Reply<()>,
    },
    ResumeCheckpoint {
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        reply: Reply<Checkpoint>,
    },
    Cancel {
        selector: CancelSelector,
        reply: oneshot::Sender<(usize, Vec<String>)>,
    },
    Retry {
        selector: RetrySelector,
        reply: Reply<(usize, Vec<String>)>,
    },
    /// Storing `what` failed (with this message) or, `None`, worked.
    Storage {
        what: Storage,
        failure: Option<String>,
    },
}

/// How the end of a sweep went: `None` until its outputs were written (or failed to be), then
/// what could not be written (empty: everything was).
pub type Ended = Option<Vec<String>>;

/// A snapshot of the sweep's progress.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Trials by state.
    pub counts: Counts,
    /// True once every trial has ended.
    pub finished: bool,
    /// True when every recently seen worker has been told that the sweep is finished.
    pub workers_told: bool,
    /// (name, reason) of every trial that failed for good.
    pub failed: Vec<(String, String)>,
}

/// A cheap, cloneable handle to the state owner.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
    changes: watch::Receiver<u64>,
    tables: Arc<tables::Shared>,
}

impl Handle {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| Error::ShuttingDown)?;
        rx.await.map_err(|_| Error::ShuttingDown)
    }

    /// Registers a worker; returns its new id.
    pub async fn register(
        &self,
        name: String,
        device: String,
        slots: u32,
    ) -> Result<WorkerId, Error> {
        self.call(|reply| Command::Register {
            name,
            device,
            slots,
            reply,
        })
        .await
    }

    /// Leases a trial to `worker`.
    pub async fn lease(&self, worker: WorkerId) -> Result<LeaseOutcome, Error> {
        Ok(self
            .call(|reply| Command::Lease { worker, reply })
            .await??)
    }

    /// Renews leases (and notes the worker's device memory: used, total bytes); returns the
    /// revoked ones.
    pub async fn heartbeat(
        &self,
        worker: WorkerId,
        leases: Vec<(TrialId, u32)>,
        memory: Option<(u64, u64)>,
    ) -> Result<Vec<(TrialId, u32)>, Error> {
        Ok(self
            .call(|reply| Command::Heartbeat {
                worker,
                leases,
                memory,
                reply,
            })
            .await??)
    }

    /// Records an epoch.
    pub async fn report_epoch(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        metrics: EpochMetrics,
    ) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::ReportEpoch {
                worker,
                trial,
                attempt,
                metrics,
                reply,
            })
            .await??)
    }

    /// Ends a lease.
    pub async fn complete(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        outcome: Outcome,
    ) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::Complete {
                worker,
                trial,
                attempt,
                outcome,
                reply,
            })
            .await??)
    }

    /// Checks that the lease is live (for an upload under it); returns the trial.
    pub async fn check_lease(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
    ) -> Result<TrialSpec, Error> {
        Ok(self
            .call(|reply| Command::CheckLease {
                worker,
                trial,
                attempt,
                reply,
            })
            .await??)
    }

    /// Records where the final weights of a live lease were stored.
    pub async fn record_weights(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        path: String,
    ) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::RecordWeights {
                worker,
                trial,
                attempt,
                path,
                reply,
            })
            .await??)
    }

    /// Records a checkpoint uploaded under a live lease.
    pub async fn record_checkpoint(
        &self,
        worker: WorkerId,
        trial: TrialId,
        checkpoint: Checkpoint,
    ) -> Result<(), Error> {
        Ok(self
            .call(|reply| Command::RecordCheckpoint {
                worker,
                trial,
                checkpoint,
                reply,
            })
            .await??)
    }

    /// The checkpoint a live lease resumes from.
    pub async fn resume_checkpoint(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
    ) -> Result<Checkpoint, Error> {
        Ok(self
            .call(|reply| Command::ResumeCheckpoint {
                worker,
                trial,
                attempt,
                reply,
            })
            .await??)
    }

    /// Cancels trials; returns how many were cancelled and the names that matched nothing.
    pub async fn cancel(&self, selector: CancelSelector) -> Result<(usize, Vec<String>), Error> {
        self.call(|reply| Command::Cancel { selector, reply }).await
    }

    /// Puts failed trials back in the queue; returns how many and the names that matched
    /// nothing. Refused once the sweep has finished.
    pub async fn retry(&self, selector: RetrySelector) -> Result<(usize, Vec<String>), Error> {
        Ok(self
            .call(|reply| Command::Retry { selector, reply })
            .await??)
    }

    /// Notes that storing `what` failed: the status says so until storing it works again.
    pub async fn storage_failed(&self, what: Storage, message: String) {
        let failure = Some(message);
        let _ = self.tx.send(Command::Storage { what, failure }).await;
    }

    /// Notes that storing `what` worked.
    pub async fn storage_worked(&self, what: Storage) {
        let failure = None;
        let _ = self.tx.send(Command::Storage { what, failure }).await;
    }

    /// The sweep's progress.
    pub async fn progress(&self) -> Result<Progress, Error> {
        self.call(|reply| Command::Progress { reply }).await
    }

    /// The sweep's status now, as `view` asks. The accuracy tables of a detailed one are laid
    /// out here, on a blocking thread, not on the state owner's task, once per change of the
    /// trials for every caller ([`tables::Shared`]).
    pub async fn status(&self, view: View) -> Result<Snapshot, Error> {
        let (mut snapshot, tables) = self.call(|reply| Command::Status { view, reply }).await?;
        if let Some(tables) = tables {
            let filled = self
                .tables
                .resolve(tables)
                .await
                .ok_or(Error::ShuttingDown)?;
            tables::fill(&mut snapshot, &filled);
        }
        Ok(snapshot)
    }

    /// A receiver whose value changes whenever the status visibly changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }
}

/// What the state owner needs besides the state.
pub struct Actor {
    /// The state machine.
    pub scheduler: Scheduler,
    /// The grid's experiments (for the results' experiment records); their trials have moved
    /// into the scheduler.
    pub grid: Grid,
    /// The grid file's path as given.
    pub grid_file: String,
    /// Where results go.
    pub out_dir: PathBuf,
    /// The state directory (database, checkpoints).
    pub state_dir: PathBuf,
    /// The database.
    pub store: Store,
    /// How often leases are checked for expiry.
    pub tick: Duration,
    /// How often a progress line is logged while nothing ends (when not live).
    pub progress_every: Duration,
    /// The terminal: when live, the status block is drawn there instead of progress lines.
    pub console: Console,
    /// When the coordinator started.
    pub started: Instant,
}

/// Starts the state owner; returns its handle, a receiver that turns `Some` when the sweep is
/// finished and its outputs written (see [`Ended`]), and the task, which ends with an error if
/// the database fails (or the outputs cannot be written when it stops).
pub fn spawn(
    actor: Actor,
) -> (
    Handle,
    watch::Receiver<Ended>,
    tokio::task::JoinHandle<Result<(), Error>>,
) {
    let (tx, rx) = mpsc::channel(1024);
    let (finished_tx, finished_rx) = watch::channel(None);
    let (changes_tx, changes_rx) = watch::channel(0u64);
    let Actor {
        scheduler,
        grid,
        grid_file,
        out_dir,
        state_dir,
        store,
        tick,
        progress_every,
        console,
        started,
    } = actor;
    let database = store.path().display().to_string();
    let shared_tables = Arc::new(tables::Shared::default());
    let writer = Writer::spawn(store, crate::artifacts::checkpoints_dir(&state_dir));
    let owner = Owner {
        database,
        index: Index::new(&scheduler),
        table_experiments: tables::experiments_of(&grid),
        tables: Arc::clone(&shared_tables),
        scheduler,
        grid,
        grid_file,
        out_dir,
        tick,
        progress_every,
        console,
        started,
        silent: HashSet::new(),
    };
    let task = tokio::spawn(owner.run(rx, writer, finished_tx, changes_tx));
    (
        Handle {
            tx,
            changes: changes_rx,
            tables: shared_tables,
        },
        finished_rx,
        task,
    )
}

/// The state owner's task, once its database went to the [`Writer`].
struct Owner {
    /// The database's path, for messages.
    database: String,
    scheduler: Scheduler,
    /// The status summary's running totals, refreshed with every batch of changes.
    index: Index,
    /// The grid's experiments as `results.json` records them, for the live accuracy tables.
    table_experiments: Arc<[Experiment]>,
    /// The live accuracy tables made so far, shared with the handle.
    tables: Arc<tables::Shared>,
    grid: Grid,
    grid_file: String,
    out_dir: PathBuf,
    tick: Duration,
    progress_every: Duration,
    console: Console,
    started: Instant,
    /// Workers logged as lost (silent for longer than a lease TTL), until they call again.
    silent: HashSet<WorkerId>,
}

/// Rows to commit, and what to do once they are durable.
#[derive(Default)]
struct Batch {
    writes: Writes,
    /// Answers to the commands whose changes these are.
    replies: Vec<Deferred>,
    /// Checkpoint files the committed state no longer names.
    drop: Vec<String>,
    /// Checkpoint files found unusable: moved aside before the state that says so is committed
    /// (a crash in between leaves a state naming a file that is gone, which is found unusable
    /// again; the other order would leave it among the live checkpoints, named by nothing).
    set_aside: Vec<String>,
    /// Told once this batch (and every one before it) is durable.
    flushed: Option<oneshot::Sender<()>>,
}

/// The database's own thread: commits batches in order, coalescing those that queued up while it
/// was syncing into one transaction, then answers their commands and removes the checkpoint
/// files they no longer need. Checkpoints found unusable are moved into `set-aside/` first.
struct Writer {
    tx: mpsc::Sender<Batch>,
    task: tokio::task::JoinHandle<Result<(), Error>>,
}

impl Writer {
    fn spawn(mut store: Store, checkpoints: PathBuf) -> Writer {
        let (tx, mut rx) = mpsc::channel::<Batch>(WRITER_QUEUE);
        let task = tokio::task::spawn_blocking(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batches = vec![first];
                while let Ok(b) = rx.try_recv() {
                    batches.push(b);
                }
                for file in batches.iter().flat_map(|b| &b.set_aside) {
                    crate::artifacts::set_aside(&checkpoints, file);
                }
                let writes: Vec<&Writes> = batches.iter().map(|b| &b.writes).collect();
                if let Err(e) = store.write(&writes) {
                    tracing::error!(error = %e, "cannot commit to the state database; stopping");
                    return Err(Error::Store(e));
                }
                for b in batches {
                    b.replies.into_iter().for_each(|reply| reply());
                    for file in b.drop {
                        let path = checkpoints.join(file);
                        if let Err(e) = std::fs::remove_file(&path) {
                            if e.kind() != std::io::ErrorKind::NotFound {
                                warn!(path = %path.display(), error = %e, "cannot remove an old checkpoint");
                            }
                        }
                    }
                    if let Some(flushed) = b.flushed {
                        let _ = flushed.send(());
                    }
                }
            }
            Ok(())
        });
        Writer { tx, task }
    }

    /// Queues `batch` (waiting while the queue is full).
    async fn send(&mut self, batch: Batch) -> Result<(), Error> {
        if self.tx.send(batch).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Waits until everything queued so far is durable.
    async fn flush(&mut self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Batch {
            flushed: Some(tx),
            ..Batch::default()
        })
        .await?;
        if rx.await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Why the thread stopped.
    async fn failure(&mut self) -> Error {
        match (&mut self.task).await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => Error::ShuttingDown,
            Err(e) => Error::Io {
                action: "the state database's thread failed",
                path: String::new(),
                source: std::io::Error::other(e.to_string()),
            },
        }
    }

    /// Commits everything queued, then ends the thread.
    async fn close(self) -> Result<(), Error> {
        let Writer { tx, mut task } = self;
        drop(tx);
        match (&mut task).await {
            Ok(r) => r,
            Err(e) => Err(Error::Io {
                action: "the state database's thread failed",
                path: String::new(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

/// When the outputs that cost O(trials) to make were last made: `results.json` and the progress
/// line. Both are rate-limited so that a sweep of a million short trials does not spend its time
/// rewriting them after every trial (the database has every result the moment it is
/// acknowledged; `results.json` is its readable copy).
#[derive(Debug, Default)]
struct Outputs {
    /// `results.json` is older than the state.
    dirty: bool,
    /// When it was last written whole.
    saved: Option<Instant>,
    /// The copy being written, and when to write its next slice.
    rolling: Option<(results::RollingWrite, Instant)>,
    /// When the last progress line was logged.
    progress_logged: Option<Instant>,
}

impl Outputs {
    /// A new copy of `results.json` is started at most every [`SAVE_EVERY`].
    fn results_due(&self, now: Instant) -> bool {
        self.dirty
            && self.rolling.is_none()
            && self
                .saved
                .is_none_or(|at| now.saturating_duration_since(at) >= SAVE_EVERY)
    }

    /// At most one progress line per [`PROGRESS_AT_MOST_EVERY`] while trials end.
    fn progress_due(&self, now: Instant) -> bool {
        self.progress_logged
            .is_none_or(|at| now.saturating_duration_since(at) >= PROGRESS_AT_MOST_EVERY)
    }
}

impl Owner {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Command>,
        mut writer: Writer,
        finished: watch::Sender<Ended>,
        changes: watch::Sender<u64>,
    ) -> Result<(), Error> {
        let mut ticker = tokio::time::interval(self.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut redraw = tokio::time::interval(REDRAW_EVERY);
        redraw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let live = self.console.is_live();
        let mut last_progress = Instant::now();
        let mut last_draw: Option<Instant> = None;
        let mut dirty = true;
        let mut finished_at: Option<Instant> = None;
        let mut outputs = Outputs::default();
        if self.scheduler.is_finished() {
            self.perform(
                vec![Effect::SweepFinished],
                &finished,
                &mut finished_at,
                &mut outputs,
            );
        }
        loop {
            let mut changed = false;
            tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    let mut replies: Vec<Deferred> = Vec::new();
                    let mut effects = self.handle(cmd, Instant::now(), &mut changed, &mut replies);
                    for _ in 1..MAX_BATCH {
                        let Ok(cmd) = rx.try_recv() else { break };
                        effects.extend(self.handle(cmd, Instant::now(), &mut changed, &mut replies));
                    }
                    // Answered once durable, by the database's thread; on failure the callers
                    // see the coordinator shutting down.
                    self.commit(&mut writer, replies, &mut effects).await?;
                    if effects.iter().any(|e| matches!(e, Effect::TrialEnded(_))) {
                        last_progress = Instant::now();
                    }
                    changed |= !effects.is_empty();
                    if effects.contains(&Effect::SweepFinished) {
                        // The report and "finished" describe what is on disk.
                        writer.flush().await?;
                    }
                    self.perform(effects, &finished, &mut finished_at, &mut outputs);
                    if finished_at.is_none() {
                        self.save_results_if_due(&mut outputs, Instant::now());
                    }
                }
                _ = ticker.tick() => {
                    let now = Instant::now();
                    self.log_silent_workers(now);
                    let mut effects = self.scheduler.expire_leases(now);
                    self.commit(&mut writer, Vec::new(), &mut effects).await?;
                    changed = !effects.is_empty();
                    if effects.contains(&Effect::SweepFinished) {
                        writer.flush().await?;
                    }
                    self.perform(effects, &finished, &mut finished_at, &mut outputs);
                    self.save_results_if_due(&mut outputs, now);
                    if !live && finished_at.is_none() && now.duration_since(last_progress) >= self.progress_every {
                        self.log_progress();
                        last_progress = now;
                    }
                }
                e = &mut writer.task => {
                    // The database's thread only stops on its own when a commit failed.
                    return match e {
                        Ok(Err(e)) => Err(e),
                        _ => Err(Error::ShuttingDown),
                    };
                }
                _ = redraw.tick(), if live => {
                    let now = Instant::now();
                    if dirty || last_draw.is_none_or(|t| now.duration_since(t) >= REFRESH_EVERY) {
                        self.draw(now);
                        last_draw = Some(now);
                        dirty = false;
                    }
                }
            }
            if changed {
                dirty = true;
                changes.send_modify(|g| *g = g.wrapping_add(1));
            }
        }
        let closed = writer.close().await;
        let saved = if outputs.dirty || outputs.rolling.is_some() {
            self.save_results(&mut outputs)
        } else {
            Ok(())
        };
        if live {
            self.draw(Instant::now());
            self.console.finish();
        }
        closed?;
        saved.map_err(|errors| Error::Outputs {
            database: self.database.clone(),
            errors,
        })
    }

    /// Hands what the state machine changed since the last batch to the database's thread, with
    /// the answers that wait for it and the checkpoint files (taken from `effects`) that the new
    /// state no longer names.
    async fn commit(
        &mut self,
        writer: &mut Writer,
        replies: Vec<Deferred>,
        effects: &mut Vec<Effect>,
    ) -> Result<(), Error> {
        let changes = self.scheduler.take_changes();
        self.index.update(&self.scheduler, &changes);
        let mut drop = Vec::new();
        let mut set_aside = Vec::new();
        effects.retain(|e| match e {
            Effect::DropCheckpoint(file) => {
                drop.push(file.clone());
                false
            }
            Effect::SetAsideCheckpoint(file) => {
                set_aside.push(file.clone());
                false
            }
            _ => true,
        });
        if changes.is_empty() && replies.is_empty() && drop.is_empty() && set_aside.is_empty() {
            return Ok(());
        }
        let batch = Batch {
            writes: Writes::new(&self.scheduler, &changes),
            replies,
            drop,
            set_aside,
            flushed: None,
        };
        writer.send(batch).await
    }

    /// Logs a worker that has not called for longer than a lease TTL (once: it left without a
    /// word, or cannot reach the coordinator), and such a worker when it calls again.
    fn log_silent_workers(&mut self, now: Instant) {
        let ttl = self.scheduler.config().lease_ttl;
        for (id, w) in self.scheduler.workers() {
            // Told the sweep is finished, it left as asked; not seen since a restart, it is a
            // worker of the earlier run, not news.
            if w.told_finished || w.last_seen < self.started {
                continue;
            }
            let quiet = now.saturating_duration_since(w.last_seen);
            if quiet > ttl {
                if self.silent.insert(*id) {
                    warn!(worker = %w.name, id = %id.short(), silent_seconds = quiet.as_secs(), "worker lost: no call for longer than the lease TTL");
                }
            } else if self.silent.remove(id) {
                info!(worker = %w.name, id = %id.short(), "worker back: it calls again");
            }
        }
    }

    fn snapshot(&self, now: Instant) -> Snapshot {
        let clock = Clock {
            started: self.started,
            now,
        };
        status::summary(&self.grid.name, &self.scheduler, &self.index, clock)
    }

    fn draw(&self, now: Instant) {
        self.console.draw(&status::text::block(&self.snapshot(now)));
    }

    /// Applies `cmd`; sets `changed` when what the status shows changed. Answers to writes go
    /// to `replies`, to be sent once committed; reads are answered at once.
    fn handle(
        &mut self,
        cmd: Command,
        now: Instant,
        changed: &mut bool,
        replies: &mut Vec<Deferred>,
    ) -> Vec<Effect> {
        let s = &mut self.scheduler;
        match cmd {
            Command::Register {
                name,
                device,
                slots,
                reply,
            } => {
                let id = WorkerId::random();
                info!(worker = %id, name = %name, device = %device, slots, "worker registered");
                s.register(id, name, device, slots, now);
                *changed = true;
                replies.push(defer(reply, id));
                Vec::new()
            }
            Command::Lease { worker, reply } => {
                let told = s.workers().get(&worker).is_some_and(|w| w.told_finished);
                let outcome = s.lease(worker, now);
                if !told && matches!(outcome, Ok(LeaseOutcome::Finished)) {
                    let name = s.workers().get(&worker).map_or("?", |w| w.name.as_str());
                    info!(worker = %name, "worker leaving: told that the sweep is finished");
                }
                if let Ok(LeaseOutcome::Assigned {
                    spec,
                    attempt,
                    resume,
                }) = &outcome
                {
                    *changed = true;
                    let name = s.workers().get(&worker).map_or("?", |w| w.name.as_str());
                    let from = resume.as_ref().map_or(0, |c| c.epoch);
                    info!(trial = %spec.name, id = %spec.id.short(), attempt, worker = %name, resume_after_epoch = from, "trial leased");
                }
                if let Ok(LeaseOutcome::CannotRun(reason)) = &outcome {
                    let name = s.workers().get(&worker).map_or("?", |w| w.name.as_str());
                    warn!(worker = %name, %reason, "worker cannot run any trial left: told to stop");
                }
                if matches!(outcome, Ok(LeaseOutcome::Finished)) {
                    // A worker told so exits: only once every result is durable.
                    replies.push(defer(reply, outcome));
                } else {
                    // See the module's documentation.
                    let _ = reply.send(outcome);
                }
                Vec::new()
            }
            Command::Heartbeat {
                worker,
                leases,
                memory,
                reply,
            } => {
                let r = s.heartbeat(worker, &leases, now);
                if let (Ok(_), Some((used, total))) = (&r, memory) {
                    s.record_memory(worker, used, total);
                }
                if let Ok(revoked) = &r {
                    for (trial, attempt) in revoked {
                        warn!(worker = %worker.short(), trial = %trial.short(), attempt, "heartbeat for a lease that is not live: revoked");
                    }
                }
                let _ = reply.send(r);
                Vec::new()
            }
            Command::ReportEpoch {
                worker,
                trial,
                attempt,
                metrics,
                reply,
            } => {
                let r = s.report_epoch(worker, trial, attempt, metrics, now);
                match &r {
                    Ok(()) => *changed = true,
                    Err(e) => warn!(worker = %worker.short(), error = %e, "epoch report refused"),
                }
                replies.push(defer(reply, r));
                Vec::new()
            }
            Command::Complete {
                worker,
                trial,
                attempt,
                outcome,
                reply,
            } => {
                // Logged once: as what it did if accepted, as refused if not.
                let failure = match &outcome {
                    Outcome::Failed { kind, message } => Some((*kind, message.clone())),
                    Outcome::Succeeded(_) => None,
                };
                match s.complete(worker, trial, attempt, outcome, now) {
                    Ok(effects) => {
                        match failure {
                            Some((FailureKind::WorkerShutdown, _)) => {
                                let name =
                                    s.workers().get(&worker).map_or("?", |w| w.name.as_str());
                                info!(worker = %name, trial = %trial.short(), attempt, "worker leaving: it shut down and gave its lease back");
                            }
                            Some((kind, message)) => {
                                warn!(trial = %trial.short(), attempt, %kind, %message, "attempt failed");
                                log_failure_consequences(s, worker, trial, kind, &effects);
                            }
                            None => {}
                        }
                        *changed = true;
                        replies.push(defer(reply, Ok(())));
                        effects
                    }
                    Err(e) => {
                        warn!(worker = %worker.short(), trial = %trial.short(), attempt, error = %e, "completion refused");
                        replies.push(defer(reply, Err(e)));
                        Vec::new()
                    }
                }
            }
            Command::CheckLease {
                worker,
                trial,
                attempt,
                reply,
            } => {
                let _ = reply.send(s.check_lease(worker, trial, attempt, now).cloned());
                Vec::new()
            }
            Command::RecordWeights {
                worker,
                trial,
                attempt,
                path,
                reply,
            } => {
                replies.push(defer(
                    reply,
                    s.record_weights(worker, trial, attempt, path, now),
                ));
                Vec::new()
            }
            Command::RecordCheckpoint {
                worker,
                trial,
                checkpoint,
                reply,
            } => {
                let epoch = checkpoint.epoch;
                match s.record_checkpoint(worker, trial, checkpoint, now) {
                    Ok(effects) => {
                        tracing::debug!(trial = %trial.short(), epoch, "checkpoint recorded");
                        replies.push(defer(reply, Ok(())));
                        effects
                    }
                    Err(e) => {
                        warn!(worker = %worker.short(), error = %e, "checkpoint refused");
                        replies.push(defer(reply, Err(e)));
                        Vec::new()
                    }
                }
            }
            Command::ResumeCheckpoint {
                worker,
                trial,
                attempt,
                reply,
            } => {
                let _ = reply.send(s.resume_checkpoint(worker, trial, attempt, now));
                Vec::new()
            }
            Command::Storage { what, failure } => {
                *changed |= self.note_storage(what, failure, now);
                Vec::new()
            }
            Command::Cancel { selector, reply } => {
                let (effects, unknown) = s.cancel(&selector);
                let cancelled = effects
                    .iter()
                    .filter(|e| matches!(e, Effect::TrialEnded(_)))
                    .count();
                info!(cancelled, reason = %selector.reason, "trials cancelled");
                replies.push(defer(reply, (cancelled, unknown)));
                effects
            }
            Command::Retry { selector, reply } => {
                if s.is_finished() {
                    let _ = reply.send(Err(StateError::SweepFinished));
                    return Vec::new();
                }
                let (effects, unknown) = s.retry(&selector);
                info!(retried = effects.len(), "failed trials queued again");
                *changed = true;
                replies.push(defer(reply, Ok((effects.len(), unknown))));
                effects
            }
            Command::Status { view, reply } => {
                let clock = Clock {
                    started: self.started,
                    now,
                };
                // Commands earlier in this batch changed trials that are not committed yet.
                self.index.update(s, s.pending_changes());
                let snapshot = status::snapshot(&self.grid.name, s, &self.index, clock, &view);
                let tables = view.detail.then(|| {
                    let only = view.trials.as_ref().and_then(|q| q.experiment.as_deref());
                    self.tables
                        .tables(&self.table_experiments, s, &self.index, &snapshot, only)
                });
                let _ = reply.send((snapshot, tables));
                Vec::new()
            }
            Command::Progress { reply } => {
                // Once every trial has ended no worker holds a lease, so a live worker asks for
                // work every `retry_after`: one not seen for three of those is gone.
                let since = now.checked_sub(s.config().retry_after * 3).unwrap_or(now);
                let failed = s
                    .trials()
                    .iter()
                    .filter_map(|t| match &t.state {
                        TrialState::Failed { reason, .. } => {
                            Some((t.spec.name.clone(), reason.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                let _ = reply.send(Progress {
                    counts: s.counts(),
                    finished: s.is_finished(),
                    workers_told: s.all_workers_told(since),
                    failed,
                });
                Vec::new()
            }
        }
    }

    fn perform(
        &mut self,
        effects: Vec<Effect>,
        finished: &watch::Sender<Ended>,
        finished_at: &mut Option<Instant>,
        outputs: &mut Outputs,
    ) {
        if effects.is_empty() {
            return;
        }
        for e in &effects {
            match e {
                Effect::TrialEnded(id) => {
                    if let Some(t) = self.scheduler.trial(*id) {
                        match (&t.state, &t.result) {
                            (TrialState::Succeeded { wall_seconds, .. }, Some(r)) => info!(
                                trial = %t.spec.name,
                                test_accuracy = format!("{:.2}", r.test_accuracy),
                                train_accuracy = format!("{:.2}", r.train_accuracy),
                                wall_seconds = format!("{wall_seconds:.1}"),
                                "trial succeeded"
                            ),
                            (TrialState::Failed { reason, .. }, _) => {
                                warn!(trial = %t.spec.name, %reason, "trial failed for good");
                            }
                            _ => {}
                        }
                    }
                }
                Effect::Requeued(id) => {
                    let Some(t) = self.scheduler.trial(*id) else {
                        continue;
                    };
                    // Why: the attempt's failure, just recorded (a lease expiry has no other
                    // log line; a worker's failure was logged when it came in).
                    let Some(f) = t.failures.last() else {
                        info!(trial = %t.spec.name, attempts = t.attempts, "trial queued again");
                        continue;
                    };
                    let worker = self
                        .scheduler
                        .workers()
                        .get(&f.worker)
                        .map_or("?", |w| w.name.as_str());
                    if f.kind == FailureKind::LeaseExpired {
                        warn!(trial = %t.spec.name, attempt = f.attempt, worker = %worker, worker_id = %f.worker.short(), reason = %f.message, "lease expired: trial queued again");
                    } else {
                        info!(trial = %t.spec.name, attempt = f.attempt, worker = %worker, kind = ?f.kind, reason = %f.message, "trial queued again");
                    }
                }
                // Done by the caller (and by the database's thread).
                Effect::SweepFinished
                | Effect::DropCheckpoint(_)
                | Effect::SetAsideCheckpoint(_) => {}
            }
        }
        let now = Instant::now();
        let sweep_finished = effects.contains(&Effect::SweepFinished);
        if !self.console.is_live() && (sweep_finished || outputs.progress_due(now)) {
            self.log_progress();
            outputs.progress_logged = Some(now);
        }
        outputs.dirty = true;
        if !sweep_finished {
            self.save_results_if_due(outputs, now);
            return;
        }
        // The last results.json, summary.md and the report: what could not be written is said
        // at the end (and the coordinator exits non-zero); a rerun writes them.
        let mut errors = Vec::new();
        if let Err(e) = self.save_results(outputs) {
            errors.push(e);
        }
        // Written once: a later attempt would not be followed by the summary and the report.
        outputs.dirty = false;
        let doc = results::collect(&self.grid, &self.grid_file, &self.scheduler);
        if let Err(e) = results::write_summary(&self.out_dir, &doc) {
            tracing::error!(error = %e, "cannot write the summary");
            errors.push(e.to_string());
        }
        {
            // The report takes seconds (figures): off the state owner's task, which keeps
            // answering workers (and telling them the sweep is finished) meanwhile. It is made
            // from results.json: not from an older one.
            let report = errors.is_empty();
            let out_dir = self.out_dir.clone();
            let finished = finished.clone();
            tokio::task::spawn_blocking(move || {
                if report {
                    match crate::report::write(&out_dir) {
                        Ok(paths) => info!(report = %paths.html.display(), "report written"),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot write the report");
                            errors.push(format!("cannot write the report: {e}"));
                        }
                    }
                } else {
                    errors.push("so the report was not written either".to_owned());
                }
                let _ = finished.send(Some(errors));
            });
            *finished_at = Some(Instant::now());
        }
    }

    /// Goes on with `results.json` when it is out of date: starts a new copy when one is due,
    /// and writes the copy's next slice when its time has come (see [`Outputs`]). A copy that
    /// cannot be written is tried again [`SAVE_EVERY`] later.
    fn save_results_if_due(&mut self, outputs: &mut Outputs, now: Instant) {
        if outputs.results_due(now) {
            match results::RollingWrite::start(
                &self.out_dir,
                &self.grid,
                &self.grid_file,
                &self.scheduler,
            ) {
                Ok(w) => {
                    outputs.rolling = Some((w, now));
                    outputs.dirty = false;
                }
                Err(e) => {
                    self.note_storage(Storage::Results, Some(e.to_string()), now);
                    outputs.saved = Some(now);
                }
            }
        }
        let Some((writer, next)) = &mut outputs.rolling else {
            return;
        };
        if now < *next {
            return;
        }
        let started = Instant::now();
        match writer.step(&self.scheduler, SAVE_SLICE) {
            Ok(false) => *next = started + started.elapsed() * SAVE_COST_FACTOR,
            Ok(true) => {
                outputs.rolling = None;
                outputs.saved = Some(started);
                self.note_storage(Storage::Results, None, now);
            }
            Err(e) => {
                outputs.rolling = None;
                outputs.saved = Some(started);
                outputs.dirty = true;
                self.note_storage(Storage::Results, Some(e.to_string()), now);
            }
        }
    }

    /// Writes `results.json` whole, now; returns why it could not.
    fn save_results(&mut self, outputs: &mut Outputs) -> Result<(), String> {
        // A copy in progress is dropped: this one is newer.
        outputs.rolling = None;
        let now = Instant::now();
        let doc = results::collect(&self.grid, &self.grid_file, &self.scheduler);
        let written = results::write_results(&self.out_dir, &doc).map_err(|e| e.to_string());
        drop(doc);
        outputs.dirty = written.is_err();
        outputs.saved = Some(now);
        self.note_storage(Storage::Results, written.as_ref().err().cloned(), now);
        written.map(drop)
    }

    /// Notes in the state (which the status shows) that storing `what` failed, or worked; logs
    /// the first failure and the recovery. Returns true when the status changed.
    fn note_storage(&mut self, what: Storage, failure: Option<String>, now: Instant) -> bool {
        match failure {
            Some(message) => {
                if self.scheduler.storage_failed(what, message.clone(), now) {
                    tracing::error!(what = what.what(), error = %message, "storage failure: trying again (the status shows it until it works)");
                } else {
                    tracing::debug!(what = what.what(), error = %message, "storage failure");
                }
                true
            }
            None => match self.scheduler.storage_worked(what) {
                Some(f) => {
                    info!(
                        what = what.what(),
                        failures = f.count,
                        "storage works again"
                    );
                    true
                }
                None => false,
            },
        }
    }

    fn log_progress(&self) {
        info!(
            "progress: {}",
            status::text::line(&self.snapshot(Instant::now()))
        );
    }
}

/// Says what an accepted failure changed beyond its trial: a worker that stops taking some
/// trials, a checkpoint set aside.
fn log_failure_consequences(
    s: &Scheduler,
    worker: WorkerId,
    trial: TrialId,
    kind: sweep_common::FailureKind,
    effects: &[Effect],
) {
    use sweep_common::failure::Policy;
    if let (Policy::Worker(_), Some(w)) = (kind.policy(), s.workers().get(&worker)) {
        if let Some(problem) = w.problem() {
            warn!(worker = %w.name, %problem, "worker takes no more trials it cannot run; its trial goes to others");
        }
    }
    for e in effects {
        if let Effect::SetAsideCheckpoint(file) = e {
            let resume = s
                .trial(trial)
                .and_then(|t| t.checkpoint.as_ref())
                .map_or(0, |c| c.epoch);
            warn!(trial = %trial.short(), %file, resume_after_epoch = resume, "checkpoint unusable: set aside; the trial resumes from the previous one");
        }
    }
}
