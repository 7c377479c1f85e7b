//! What the state owner does with each command: the transition, its log line, and the answer
//! (held back until committed when it acknowledges a write).

use std::collections::HashMap;
use std::time::Instant;

use sweep_common::{EpochMetrics, TrialId, WorkerId};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::Command;
use super::handle::{Progress, Reply, StatusReply, Stop};
use super::owner::Owner;
use super::writer::{Deferred, defer};
use crate::state::{
    CancelSelector, Checkpoint, Effect, FailureKind, LeaseKey, LeaseOutcome, MoreEpochs, Outcome,
    Promoted, Reported, RetrySelector, Scheduler, StateError, TrialState,
};
use crate::status::{self, Clock, View};

impl Owner {
    /// Applies `cmd`; sets `changed` when what the status shows changed. Answers to writes go
    /// to `replies`, to be sent once committed; reads are answered at once.
    pub(super) fn handle(
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
            } => register(s, (name, device, slots), reply, now, changed, replies),
            Command::Lease { worker, reply } => self.lease(worker, reply, now, changed, replies),
            Command::Heartbeat {
                worker,
                leases,
                memory,
                reply,
            } => {
                let _ = reply.send(heartbeat(s, worker, &leases, memory, now));
            }
            Command::ReportEpoch { key, epochs, reply } => {
                return report_epochs(s, key, epochs, reply, now, changed, replies);
            }
            Command::Complete {
                key,
                outcome,
                reply,
            } => return complete(s, key, outcome, reply, now, changed, replies),
            Command::CheckLease { key, reply } => {
                let _ = reply.send(s.check_lease(key, now).cloned());
            }
            Command::RecordWeights { key, path, reply } => {
                replies.push(defer(reply, s.record_weights(key, path, now)));
            }
            Command::RecordCheckpoint {
                worker,
                trial,
                checkpoint,
                reply,
            } => return record_checkpoint(s, worker, trial, checkpoint, reply, now, replies),
            Command::ResumeCheckpoint { key, reply } => {
                let _ = reply.send(s.resume_checkpoint(key, now));
            }
            Command::Storage { what, failure } => {
                *changed |= self.note_storage(what, failure, now);
            }
            Command::Cancel { selector, reply } => return cancel(s, &selector, reply, replies),
            Command::Retry { selector, reply } => {
                return retry(s, &selector, reply, changed, replies);
            }
            Command::Promote {
                trials,
                epochs: Some(epochs),
                reply,
                ..
            } => return self.promote_epochs(&trials, epochs, reply, changed, replies),
            Command::Promote {
                trials,
                experiments,
                epochs: None,
                reply,
            } => return promote(s, &trials, &experiments, reply, changed, replies),
            Command::Status { view, reply } => {
                let _ = reply.send(self.status(view, now));
            }
            Command::Progress { reply } => {
                let _ = reply.send(progress(s, now));
            }
        }
        Vec::new()
    }

    /// Leases a trial to `worker`. A grant is answered at once (see the module's
    /// documentation); "finished" only once every result is durable.
    fn lease(
        &mut self,
        worker: WorkerId,
        reply: Reply<LeaseOutcome>,
        now: Instant,
        changed: &mut bool,
        replies: &mut Vec<Deferred>,
    ) {
        let s = &mut self.scheduler;
        let told = s.workers().get(&worker).is_some_and(|w| w.told_finished);
        let outcome = s.lease(worker, now);
        let name = s.workers().get(&worker).map_or("?", |w| w.name.as_str());
        match &outcome {
            Ok(LeaseOutcome::Finished) if !told => {
                info!(worker = %name, "worker leaving: told that the sweep is finished");
            }
            Ok(LeaseOutcome::Assigned {
                spec,
                attempt,
                resume,
            }) => {
                *changed = true;
                let from = resume.as_ref().map_or(0, |c| c.epoch);
                info!(trial = %spec.name, id = %spec.id.short(), attempt, worker = %name, resume_after_epoch = from, "trial leased");
            }
            Ok(LeaseOutcome::CannotRun(reason)) => {
                warn!(worker = %name, %reason, "worker cannot run any trial left: told to stop");
            }
            _ => {}
        }
        if matches!(outcome, Ok(LeaseOutcome::Finished)) {
            // A worker told so exits: only once every result is durable.
            replies.push(defer(reply, outcome));
        } else {
            let _ = reply.send(outcome);
        }
    }

    /// Promotes the trials named to `epochs` epochs (`coordinator promote --epochs`), all or
    /// none: checked by the state machine, the archived ones' curves read back from the
    /// database and the succeeded ones' final weights moved aside (the longer runs write those
    /// files) before anything changes; the status totals are made again (trials' epochs
    /// changed).
    fn promote_epochs(
        &mut self,
        trials: &[String],
        epochs: u32,
        reply: Reply<Promoted>,
        changed: &mut bool,
        replies: &mut Vec<Deferred>,
    ) -> Vec<Effect> {
        let plan = self.scheduler.check_more_epochs(trials, epochs);
        let ready = plan.and_then(|plan| {
            let curves = self.archived_curves(&plan)?;
            self.move_weights_aside(&plan)?;
            Ok((plan, curves))
        });
        let (plan, curves) = match ready {
            Ok(ready) => ready,
            Err(e) => {
                warn!(error = %e, "promotion to more epochs refused");
                let _ = reply.send(Err(e));
                return Vec::new();
            }
        };
        let (effects, ids) = self.scheduler.more_epochs(plan, curves);
        self.index.rebuild(&self.scheduler);
        let names: Vec<&str> = ids
            .iter()
            .filter_map(|&id| self.scheduler.trial(id))
            .map(|t| t.spec.name.as_str())
            .collect();
        info!(
            trials = %names.join(", "),
            epochs,
            "trials promoted to more epochs by an operator: they continue from their checkpoints"
        );
        *changed = true;
        let promoted = Promoted {
            trials: ids,
            unknown: Vec::new(),
            not_stopped: Vec::new(),
        };
        replies.push(defer(reply, Ok(promoted)));
        effects
    }

    /// The curves of `plan`'s archived trials, read back from the database.
    fn archived_curves(
        &self,
        plan: &MoreEpochs,
    ) -> Result<HashMap<TrialId, Vec<EpochMetrics>>, StateError> {
        let mut curves = HashMap::new();
        for id in plan.archived(&self.scheduler) {
            let name = self
                .scheduler
                .trial(id)
                .map_or_else(String::new, |t| t.spec.name.clone());
            let refuse = |reason: String| StateError::CannotPromote {
                trial: name.clone(),
                epochs: plan.epochs,
                reason,
            };
            let reader = self.reader.as_ref().ok_or_else(|| {
                refuse("its curve is in the state database, which cannot be read".to_owned())
            })?;
            let curve = reader.curve(id).map_err(|e| {
                refuse(format!(
                    "its curve cannot be read from the state database: {e}"
                ))
            })?;
            curves.insert(id, curve);
        }
        Ok(curves)
    }

    /// Moves the final weights of `plan`'s succeeded trials aside, to
    /// `models/NAME.SHORTID.safetensors`, as an edited grid's longer trial does.
    fn move_weights_aside(&self, plan: &MoreEpochs) -> Result<(), StateError> {
        let out = self.out_dir.as_path();
        for (spec, file) in plan.weights(&self.scheduler) {
            if !out.join(file).is_file() {
                continue;
            }
            let aside = crate::startup::move_weights_aside(out, file, &spec.id).map_err(|e| {
                StateError::CannotPromote {
                    trial: spec.name.clone(),
                    epochs: plan.epochs,
                    reason: format!("its final weights cannot be moved aside: {e}"),
                }
            })?;
            info!(
                trial = %spec.name,
                from = %file,
                to = %aside,
                "a trial promoted to more epochs continues: its shorter run's final weights moved aside"
            );
        }
        Ok(())
    }

    /// The status `view` asks for, as of `now`, and what its accuracy tables are laid out from
    /// (off this task).
    fn status(&mut self, view: View, now: Instant) -> StatusReply {
        let s = &self.scheduler;
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
        let stored = if view.detail {
            status::stored_histories(s, &snapshot)
        } else {
            Vec::new()
        };
        (snapshot, tables, stored)
    }
}

/// Renews `worker`'s leases and notes its device's memory; answers the leases revoked.
fn heartbeat(
    s: &mut Scheduler,
    worker: WorkerId,
    leases: &[(TrialId, u32)],
    memory: Option<(u64, u64)>,
    now: Instant,
) -> Result<Vec<(TrialId, u32)>, StateError> {
    let r = s.heartbeat(worker, leases, now);
    if let (Ok(_), Some((used, total))) = (&r, memory) {
        s.record_memory(worker, used, total);
    }
    for (trial, attempt) in r.iter().flatten() {
        warn!(worker = %worker.short(), trial = %trial.short(), attempt, "heartbeat for a lease that is not live: revoked");
    }
    r
}

/// Records a checkpoint uploaded under a live lease; the answer waits for the commit.
fn record_checkpoint(
    s: &mut Scheduler,
    worker: WorkerId,
    trial: TrialId,
    checkpoint: Checkpoint,
    reply: Reply<()>,
    now: Instant,
    replies: &mut Vec<Deferred>,
) -> Vec<Effect> {
    let epoch = checkpoint.epoch;
    let r = s.record_checkpoint(worker, trial, checkpoint, now);
    match &r {
        Ok(_) => tracing::debug!(trial = %trial.short(), epoch, "checkpoint recorded"),
        Err(e) => warn!(worker = %worker.short(), error = %e, "checkpoint refused"),
    }
    let (answer, effects) = match r {
        Ok(effects) => (Ok(()), effects),
        Err(e) => (Err(e), Vec::new()),
    };
    replies.push(defer(reply, answer));
    effects
}
/// Registers a worker; answered once committed.
fn register(
    s: &mut Scheduler,
    (name, device, slots): (String, String, u32),
    reply: oneshot::Sender<WorkerId>,
    now: Instant,
    changed: &mut bool,
    replies: &mut Vec<Deferred>,
) {
    let id = WorkerId::random();
    info!(worker = %id, name = %name, device = %device, slots, "worker registered");
    s.register(id, name, device, slots, now);
    *changed = true;
    replies.push(defer(reply, id));
}

/// Records the epochs a lease holder reports; answered once committed, with the stopping
/// rule's word when one of them stopped its trial.
fn report_epochs(
    s: &mut Scheduler,
    key: LeaseKey,
    epochs: Vec<EpochMetrics>,
    reply: Reply<Option<Stop>>,
    now: Instant,
    changed: &mut bool,
    replies: &mut Vec<Deferred>,
) -> Vec<Effect> {
    let (answer, effects) = match s.report_epochs(key, epochs, now) {
        Ok(Reported {
            effects,
            stopped_at,
        }) => {
            *changed = true;
            // The reason names the rung of the decision, as it did before batches.
            let stop = stopped_at.map(|at| Stop {
                epoch: at,
                reason: match s.trial(key.trial).map(|t| &t.state) {
                    Some(TrialState::Stopped { epoch, reason, .. }) => {
                        format!("stopped at epoch {epoch}: {reason}")
                    }
                    _ => format!("stopped at epoch {at}"),
                },
            });
            (Ok(stop), effects)
        }
        Err(e) => {
            warn!(worker = %key.worker.short(), error = %e, "epoch report refused");
            (Err(e), Vec::new())
        }
    };
    replies.push(defer(reply, answer));
    effects
}

/// Ends lease `key` with `outcome`. Logged once: as what it did if accepted, as refused if not.
fn complete(
    s: &mut Scheduler,
    key: LeaseKey,
    outcome: Outcome,
    reply: Reply<()>,
    now: Instant,
    changed: &mut bool,
    replies: &mut Vec<Deferred>,
) -> Vec<Effect> {
    let LeaseKey {
        worker,
        trial,
        attempt,
    } = key;
    let failure = match &outcome {
        Outcome::Failed { kind, message } => Some((*kind, message.clone())),
        Outcome::Succeeded(_) => None,
    };
    match s.complete(key, outcome, now) {
        Ok(effects) => {
            match failure {
                Some((FailureKind::WorkerShutdown, _)) => {
                    let name = s.workers().get(&worker).map_or("?", |w| w.name.as_str());
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

/// Cancels the trials `selector` names; answers how many and the names that matched nothing.
fn cancel(
    s: &mut Scheduler,
    selector: &CancelSelector,
    reply: oneshot::Sender<(usize, Vec<String>)>,
    replies: &mut Vec<Deferred>,
) -> Vec<Effect> {
    let (effects, unknown) = s.cancel(selector);
    let cancelled = effects
        .iter()
        .filter(|e| matches!(e, Effect::TrialEnded(_)))
        .count();
    info!(cancelled, reason = %selector.reason, "trials cancelled");
    replies.push(defer(reply, (cancelled, unknown)));
    effects
}

/// Queues the failed trials `selector` names again, unless the sweep has finished.
fn retry(
    s: &mut Scheduler,
    selector: &RetrySelector,
    reply: Reply<(usize, Vec<String>)>,
    changed: &mut bool,
    replies: &mut Vec<Deferred>,
) -> Vec<Effect> {
    if s.is_finished() {
        let _ = reply.send(Err(StateError::SweepFinished));
        return Vec::new();
    }
    let (effects, unknown) = s.retry(selector);
    info!(retried = effects.len(), "failed trials queued again");
    *changed = true;
    replies.push(defer(reply, Ok((effects.len(), unknown))));
    effects
}

/// Resumes the stopped trials named, unless the sweep has finished.
fn promote(
    s: &mut Scheduler,
    trials: &[String],
    experiments: &[String],
    reply: Reply<Promoted>,
    changed: &mut bool,
    replies: &mut Vec<Deferred>,
) -> Vec<Effect> {
    match s.promote(trials, experiments) {
        Ok((effects, promoted)) => {
            info!(
                promoted = promoted.trials.len(),
                "stopped trials promoted by an operator"
            );
            *changed = true;
            replies.push(defer(reply, Ok(promoted)));
            effects
        }
        Err(e) => {
            let _ = reply.send(Err(e));
            Vec::new()
        }
    }
}

/// The sweep's progress as of `now`.
fn progress(s: &Scheduler, now: Instant) -> Progress {
    // Once every trial has ended no worker holds a lease, so a live worker asks for work every
    // `retry_after`: one not seen for three of those is gone.
    let since = now.checked_sub(s.config().retry_after * 3).unwrap_or(now);
    let failed = s
        .trials()
        .iter()
        .filter_map(|t| match &t.state {
            TrialState::Failed { reason, .. } => Some((t.spec.name.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    Progress {
        counts: s.counts(),
        finished: s.is_finished(),
        workers_told: s.all_workers_told(since),
        failed,
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
                .and_then(|t| t.state.checkpoints())
                .map_or(0, |c| c.epoch());
            warn!(trial = %trial.short(), %file, resume_after_epoch = resume, "checkpoint unusable: set aside; the trial resumes from the previous one");
        }
    }
}
