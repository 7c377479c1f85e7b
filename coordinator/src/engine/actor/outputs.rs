//! The ways out that the state owner drives: the log lines of ended and requeued trials, the
//! progress line, `results.json` (rewritten in slices, rate-limited), and at the end of the sweep
//! the summary and the report.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use super::Ended;
use super::owner::Owner;
use crate::results;
use crate::state::{Effect, FailureKind, Storage, TrialState};
use crate::status;

/// `results.json` is rewritten at most this often while trials end (and when the sweep ends or
/// the coordinator stops).
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// ... a slice of this many trials at a time ...
const SAVE_SLICE: usize = 200;

/// ... spending at most 1/this of the state owner's time on it.
const SAVE_COST_FACTOR: u32 = 50;

/// A progress line is logged at most this often while trials end.
const PROGRESS_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// When the outputs that cost O(trials) to make were last made: `results.json` and the progress
/// line. Both are rate-limited so that a sweep of a million short trials does not spend its time
/// rewriting them after every trial (the database has every result the moment it is
/// acknowledged; `results.json` is its readable copy).
#[derive(Debug, Default)]
pub(super) struct Outputs {
    /// `results.json` is older than the state.
    pub(super) dirty: bool,
    /// When it was last written whole.
    pub(super) saved: Option<Instant>,
    /// The copy being written, and when to write its next slice.
    pub(super) rolling: Option<(results::RollingWrite, Instant)>,
    /// When the last progress line was logged.
    pub(super) progress_logged: Option<Instant>,
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
    /// Performs what a batch of transitions did: logs it, and brings the outputs up to date.
    pub(super) fn perform(
        &mut self,
        effects: Vec<Effect>,
        finished: &watch::Sender<Ended>,
        finished_at: &mut Option<Instant>,
        outputs: &mut Outputs,
    ) {
        if effects.is_empty() {
            return;
        }
        self.log_effects(&effects);
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
        self.finish_outputs(finished, outputs);
        *finished_at = Some(Instant::now());
    }

    /// Logs what the effects of a batch did to trials: ended, or queued again (and why).
    fn log_effects(&self, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::TrialEnded(id) => {
                    if let Some(t) = self.scheduler.trial(*id) {
                        match &t.state {
                            TrialState::Succeeded(s) => info!(
                                trial = %t.spec.name,
                                test_accuracy = format!("{:.2}", s.scores.test_accuracy),
                                train_accuracy = format!("{:.2}", s.scores.train_accuracy),
                                wall_seconds = format!("{:.1}", s.wall_seconds),
                                "trial succeeded"
                            ),
                            TrialState::Failed { reason, .. } => {
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
    }

    /// Writes the sweep's last outputs: `results.json`, `summary.md`, then the report off this
    /// task; `finished` is told what could not be written once all are done.
    fn finish_outputs(&mut self, finished: &watch::Sender<Ended>, outputs: &mut Outputs) {
        // The last results.json, summary.md and the report: what could not be written is said
        // at the end (and the coordinator exits non-zero); a rerun writes them.
        let mut errors = Vec::new();
        if let Err(e) = self.save_results(outputs) {
            errors.push(e);
        }
        // Written once: a later attempt would not be followed by the summary and the report.
        outputs.dirty = false;
        let summary = results::write_summary(
            &self.out_dir,
            &self.grid,
            &self.grid_file,
            &self.scheduler,
            self.reader.as_ref(),
        );
        if let Err(e) = summary {
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
        }
    }

    /// Goes on with `results.json` when it is out of date: starts a new copy when one is due,
    /// and writes the copy's next slice when its time has come (see [`Outputs`]). A copy that
    /// cannot be written is tried again [`SAVE_EVERY`] later.
    pub(super) fn save_results_if_due(&mut self, outputs: &mut Outputs, now: Instant) {
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
        match writer.step(&self.scheduler, self.reader.as_ref(), SAVE_SLICE) {
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
    pub(super) fn save_results(&mut self, outputs: &mut Outputs) -> Result<(), String> {
        // A copy in progress is dropped: this one is newer.
        outputs.rolling = None;
        let now = Instant::now();
        let written = results::write_results(
            &self.out_dir,
            &self.grid,
            &self.grid_file,
            &self.scheduler,
            self.reader.as_ref(),
        )
        .map_err(|e| e.to_string());
        outputs.dirty = written.is_err();
        outputs.saved = Some(now);
        self.note_storage(Storage::Results, written.as_ref().err().cloned(), now);
        written.map(drop)
    }

    /// Notes in the state (which the status shows) that storing `what` failed, or worked; logs
    /// the first failure and the recovery. Returns true when the status changed.
    pub(super) fn note_storage(
        &mut self,
        what: Storage,
        failure: Option<String>,
        now: Instant,
    ) -> bool {
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

    pub(super) fn log_progress(&self) {
        info!(
            "progress: {}",
            status::text::line(&self.snapshot(Instant::now()))
        );
    }
}
