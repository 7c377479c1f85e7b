//! The state owner's task: its loop over commands, ticks and redraws, and the hand-over of each
//! batch of changes to the database's thread.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sweep_common::WorkerId;
use sweep_common::grid::Grid;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::archive::Archiving;
use super::outputs::Outputs;
use super::writer::{Batch, Deferred, Writer};
use super::{Command, Ended, MAX_BATCH};
use crate::Error;
use crate::console::Console;
use crate::state::{Effect, KeepCurves, Scheduler};
use crate::status::{self, Clock, Index, Snapshot};
use crate::store::{Reader, Writes};
use sweep_common::results::Experiment;

/// How often the terminal's status block is redrawn at most.
const REDRAW_EVERY: Duration = Duration::from_millis(500);

/// How often it is redrawn when nothing changed (the elapsed time moves on).
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The state owner's task, once its database went to the [`Writer`].
pub(super) struct Owner {
    /// The database's path, for messages.
    pub(super) database: String,
    pub(super) scheduler: Scheduler,
    /// The status summary's running totals, refreshed with every batch of changes.
    pub(super) index: Index,
    /// The grid's experiments as `results.json` records them, for the live accuracy tables.
    pub(super) table_experiments: Arc<[Experiment]>,
    /// The live accuracy tables made so far, shared with the handle.
    pub(super) tables: Arc<crate::status::tables::Shared>,
    pub(super) grid: Grid,
    pub(super) grid_file: String,
    pub(super) out_dir: PathBuf,
    pub(super) tick: Duration,
    pub(super) progress_every: Duration,
    pub(super) console: Console,
    pub(super) started: Instant,
    /// Workers logged as lost (silent for longer than a lease TTL), until they call again.
    pub(super) silent: HashSet<WorkerId>,
    /// Which experiments' succeeded trials keep their curves in memory.
    pub(super) keep: KeepCurves,
    /// A read-only connection to the database: archived trials' curves and matrices for
    /// `results.json` and the summary (`None`: it could not be opened, and nothing is archived).
    pub(super) reader: Option<Reader>,
    /// Succeeded trials waiting for their commit to be archived.
    pub(super) archiving: Archiving,
}

/// What the state owner's loop keeps between its turns.
struct Running {
    /// When a trial last ended (or progress was last logged).
    last_progress: Instant,
    /// When the status block was last drawn.
    last_draw: Option<Instant>,
    /// The status block is out of date.
    dirty: bool,
    /// When the sweep's last outputs were started.
    finished_at: Option<Instant>,
    outputs: Outputs,
}

impl Owner {
    /// Applies commands in batches, expires leases every tick and redraws the status block,
    /// until every handle is dropped (or the database fails); then commits what is left and
    /// writes `results.json` a last time.
    pub(super) async fn run(
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
        let mut run = Running {
            last_progress: Instant::now(),
            last_draw: None,
            dirty: true,
            finished_at: None,
            outputs: Outputs::default(),
        };
        if self.scheduler.is_finished() {
            let effects = vec![Effect::SweepFinished];
            self.perform(effects, &finished, &mut run.finished_at, &mut run.outputs);
        }
        loop {
            let changed = tokio::select! {
                cmd = rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.apply_batch(cmd, &mut rx, &mut writer, &finished, &mut run).await?
                }
                _ = ticker.tick() => self.tick(&mut writer, &finished, &mut run, live).await?,
                e = &mut writer.task => {
                    // The database's thread only stops on its own when a commit failed.
                    return match e {
                        Ok(Err(e)) => Err(e),
                        _ => Err(Error::ShuttingDown),
                    };
                }
                _ = redraw.tick(), if live => {
                    let now = Instant::now();
                    if run.dirty || run.last_draw.is_none_or(|t| now.duration_since(t) >= REFRESH_EVERY) {
                        self.draw(now);
                        run.last_draw = Some(now);
                        run.dirty = false;
                    }
                    false
                }
            };
            if changed {
                run.dirty = true;
                changes.send_modify(|g| *g = g.wrapping_add(1));
            }
        }
        self.stop(writer, run.outputs, live).await
    }

    /// Applies `first` and the commands queued behind it (up to [`MAX_BATCH`]), hands their
    /// changes to the database's thread and performs their effects; returns true when what the
    /// status shows changed.
    async fn apply_batch(
        &mut self,
        first: Command,
        rx: &mut mpsc::Receiver<Command>,
        writer: &mut Writer,
        finished: &watch::Sender<Ended>,
        run: &mut Running,
    ) -> Result<bool, Error> {
        let mut changed = false;
        let mut replies: Vec<Deferred> = Vec::new();
        let mut effects = self.handle(first, Instant::now(), &mut changed, &mut replies);
        for _ in 1..MAX_BATCH {
            let Ok(cmd) = rx.try_recv() else { break };
            effects.extend(self.handle(cmd, Instant::now(), &mut changed, &mut replies));
        }
        // Answered once durable, by the database's thread; on failure the callers see the
        // coordinator shutting down.
        self.commit(writer, replies, &mut effects).await?;
        if effects.iter().any(|e| matches!(e, Effect::TrialEnded(_))) {
            run.last_progress = Instant::now();
        }
        changed |= !effects.is_empty();
        if effects.contains(&Effect::SweepFinished) {
            // The report and "finished" describe what is on disk.
            writer.flush().await?;
        }
        self.perform(effects, finished, &mut run.finished_at, &mut run.outputs);
        if run.finished_at.is_none() {
            self.save_results_if_due(&mut run.outputs, Instant::now());
        }
        Ok(changed)
    }

    /// Expires leases not renewed, logs workers gone silent, goes on with `results.json` and
    /// logs progress when due; returns true when what the status shows changed.
    async fn tick(
        &mut self,
        writer: &mut Writer,
        finished: &watch::Sender<Ended>,
        run: &mut Running,
        live: bool,
    ) -> Result<bool, Error> {
        let now = Instant::now();
        self.log_silent_workers(now);
        let mut effects = self.scheduler.expire_leases(now);
        self.commit(writer, Vec::new(), &mut effects).await?;
        let changed = !effects.is_empty();
        if effects.contains(&Effect::SweepFinished) {
            writer.flush().await?;
        }
        self.perform(effects, finished, &mut run.finished_at, &mut run.outputs);
        self.save_results_if_due(&mut run.outputs, now);
        if !live
            && run.finished_at.is_none()
            && now.duration_since(run.last_progress) >= self.progress_every
        {
            self.log_progress();
            run.last_progress = now;
        }
        Ok(changed)
    }

    /// Commits everything queued, writes `results.json` if it is out of date and closes the
    /// status block.
    async fn stop(mut self, writer: Writer, mut outputs: Outputs, live: bool) -> Result<(), Error> {
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
        self.archive_committed(writer.committed());
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
        self.archiving.sent += 1;
        let seq = self.archiving.sent;
        self.note_succeeded(seq, effects);
        let batch = Batch {
            writes: Writes::new(&self.scheduler, &changes),
            replies,
            drop,
            set_aside,
            flushed: None,
            seq,
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

    pub(super) fn snapshot(&self, now: Instant) -> Snapshot {
        let clock = Clock {
            started: self.started,
            now,
        };
        status::summary(&self.grid.name, &self.scheduler, &self.index, clock)
    }

    fn draw(&self, now: Instant) {
        self.console.draw(&status::text::block(&self.snapshot(now)));
    }
}
