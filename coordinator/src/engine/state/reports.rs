//! What the holder of a live lease reports: heartbeats, epochs, checkpoints, final weights and
//! the attempt's end. Every report is fenced by its (worker, trial, attempt): only the live
//! lease writes to its trial.

use std::time::Instant;

use sweep_common::{EpochMetrics, TrialId, TrialResult, TrialSpec, WorkerId};

use super::{
    Change, Checkpoint, Effect, LeaseKey, Outcome, Scheduler, StateError, Success, TrialState,
};

/// What an epoch report did.
#[derive(Debug, Default)]
pub struct Reported {
    /// What happened to trials (the stopping rule's decisions).
    pub effects: Vec<Effect>,
    /// The epoch whose report made the stopping rule stop the trial (its lease has ended; the
    /// epochs after it were not recorded).
    pub stopped_at: Option<u32>,
}

impl Scheduler {
    /// Renews the given leases of `worker`; returns those it must stop (not live any more).
    pub fn heartbeat(
        &mut self,
        worker: WorkerId,
        leases: &[(TrialId, u32)],
        now: Instant,
    ) -> Result<Vec<(TrialId, u32)>, StateError> {
        self.worker_mut(worker, now)?;
        let mut revoked = Vec::new();
        for &(trial, attempt) in leases {
            match self.current_lease(LeaseKey::new(worker, trial, attempt)) {
                Ok(i) => self.renew(i, now),
                Err(_) => revoked.push((trial, attempt)),
            }
        }
        Ok(revoked)
    }

    /// Records one epoch of a live lease (and renews it); see [`Scheduler::report_epochs`].
    pub fn report_epoch(
        &mut self,
        key: LeaseKey,
        metrics: EpochMetrics,
        now: Instant,
    ) -> Result<Vec<Effect>, StateError> {
        Ok(self.report_epochs(key, vec![metrics], now)?.effects)
    }

    /// Records consecutive epochs of a live lease (and renews it), judging each in order as if
    /// it came alone: an epoch that makes the stopping rule stop the trial ends the lease, and
    /// the epochs after it are not recorded. All or nothing is refused: a lease that is not
    /// live, or any epoch that is out of range, from the checkpoint resumed from, out of order,
    /// or an accepted one sent again with other values. Accepted epochs sent again unchanged
    /// (a worker whose answer was lost resends them) are skipped.
    pub fn report_epochs(
        &mut self,
        key: LeaseKey,
        epochs: Vec<EpochMetrics>,
        now: Instant,
    ) -> Result<Reported, StateError> {
        self.worker_mut(key.worker, now)?;
        let i = self.current_lease(key)?;
        self.check_epochs(i, &epochs)?;
        self.renew(i, now);
        let mut effects = Vec::new();
        for metrics in epochs {
            let epoch = metrics.epoch;
            let list = &mut self.trials[i].epochs;
            match list.binary_search_by_key(&epoch, |m| m.epoch) {
                Ok(_) => continue,
                Err(j) => list.insert(j, metrics),
            }
            self.changes.push(Change::Epoch {
                trial: key.trial,
                epoch,
                attempt: key.attempt,
            });
            // The stopping rule judges in the same batch, so its decision is committed with the
            // epoch that caused it.
            self.note_epoch(i, epoch);
            effects.extend(self.judge());
            if let TrialState::Stopped { .. } = self.trials[i].state {
                return Ok(Reported {
                    effects,
                    stopped_at: Some(epoch),
                });
            }
        }
        Ok(Reported {
            effects,
            stopped_at: None,
        })
    }

    /// Checks the epochs a live lease of trial `i` reports, before any is recorded.
    fn check_epochs(&self, i: usize, epochs: &[EpochMetrics]) -> Result<(), StateError> {
        let trial = &self.trials[i];
        let (total, resumed_from) = (trial.spec.params.epochs, trial.resumed_from);
        let mut previous = None;
        for metrics in epochs {
            let epoch = metrics.epoch;
            let refuse = |field, message| Err(StateError::InvalidReport { field, message });
            if epoch == 0 || epoch > total {
                return refuse(
                    "metrics.epoch",
                    format!("epoch {epoch} is outside 1..={total}"),
                );
            }
            if epoch <= resumed_from {
                return refuse(
                    "metrics.epoch",
                    format!(
                        "epoch {epoch} comes from the checkpoint this attempt resumed from (epochs 1..={resumed_from})"
                    ),
                );
            }
            if let Some(p) = previous
                && p >= epoch
            {
                return refuse(
                    "batch",
                    format!("epoch {epoch} comes after epoch {p}: a batch's epochs go up"),
                );
            }
            previous = Some(epoch);
            // An accepted epoch is never replaced: sent again, it must be the same (a worker
            // whose answer was lost resends it).
            let list = &trial.epochs;
            if let Ok(j) = list.binary_search_by_key(&epoch, |m| m.epoch)
                && !same_epoch(&list[j], metrics)
            {
                return refuse("metrics", changed_epoch(&list[j], metrics));
            }
        }
        Ok(())
    }

    /// Checks that (`trial`, `attempt`) is `worker`'s live lease, for an upload under it;
    /// returns the trial's spec.
    pub fn check_lease(&mut self, key: LeaseKey, now: Instant) -> Result<&TrialSpec, StateError> {
        self.worker_mut(key.worker, now)?;
        let i = self.current_lease(key)?;
        self.renew(i, now);
        Ok(&self.trials[i].spec)
    }

    /// Records that the final weights of a live lease were stored at `path`.
    pub fn record_weights(
        &mut self,
        key: LeaseKey,
        path: String,
        now: Instant,
    ) -> Result<(), StateError> {
        self.worker_mut(key.worker, now)?;
        let i = self.current_lease(key)?;
        if let TrialState::Leased { weights, .. } = &mut self.trials[i].state {
            *weights = Some(path);
        }
        self.changes.push(Change::Trial(key.trial));
        Ok(())
    }

    /// The checkpoint the live lease (`trial`, `attempt`) of `worker` resumes from.
    pub fn resume_checkpoint(
        &mut self,
        key: LeaseKey,
        now: Instant,
    ) -> Result<Checkpoint, StateError> {
        let LeaseKey {
            worker,
            trial,
            attempt,
        } = key;
        self.worker_mut(worker, now)?;
        let i = self.current_lease(key)?;
        self.trials[i]
            .state
            .checkpoints()
            .and_then(|c| c.latest.as_deref())
            .cloned()
            .ok_or(StateError::NoCheckpoint { trial, attempt })
    }

    /// Records a checkpoint uploaded under a live lease. It must come after the epochs it holds
    /// were accepted. Returns the effect of dropping the checkpoint it replaces.
    pub fn record_checkpoint(
        &mut self,
        worker: WorkerId,
        trial: TrialId,
        checkpoint: Checkpoint,
        now: Instant,
    ) -> Result<Vec<Effect>, StateError> {
        self.worker_mut(worker, now)?;
        let i = self.current_lease(LeaseKey::new(worker, trial, checkpoint.attempt))?;
        let t = &mut self.trials[i];
        let epochs = t.spec.params.epochs;
        // Epochs are kept sorted and unique from 1, so 1..=e are there iff entry e-1 is epoch e.
        let complete = (checkpoint.epoch as usize)
            .checked_sub(1)
            .and_then(|j| t.epochs.get(j))
            .is_some_and(|m| m.epoch == checkpoint.epoch);
        if checkpoint.epoch == 0 || checkpoint.epoch > epochs || !complete {
            return Err(StateError::InvalidReport {
                field: "header.epoch",
                message: format!(
                    "a checkpoint after epoch {} needs epochs 1..={} reported first ({} are)",
                    checkpoint.epoch,
                    checkpoint.epoch,
                    t.epochs.len()
                ),
            });
        }
        self.renew(i, now);
        let TrialState::Leased { checkpoints, .. } = &mut self.trials[i].state else {
            return Err(StateError::UnknownTrial(trial));
        };
        self.changes.push(Change::Trial(trial));
        // The same file again (a resent upload) replaces itself; a new one pushes the latest
        // back to `previous` and drops the one before.
        if checkpoints
            .latest
            .as_ref()
            .is_some_and(|c| c.file == checkpoint.file)
        {
            checkpoints.latest = Some(Box::new(checkpoint));
            return Ok(Vec::new());
        }
        let latest = checkpoints.latest.replace(Box::new(checkpoint));
        let oldest = match latest {
            Some(latest) => checkpoints.previous.replace(latest),
            None => None,
        };
        Ok(oldest
            .map(|o| Effect::DropCheckpoint(o.file))
            .into_iter()
            .collect())
    }

    /// Ends a live lease with a result or a failure.
    ///
    /// Completing an already recorded success again with the same lease is accepted and changes
    /// nothing (a worker may resend when the first answer was lost).
    pub fn complete(
        &mut self,
        key: LeaseKey,
        outcome: Outcome,
        now: Instant,
    ) -> Result<Vec<Effect>, StateError> {
        let LeaseKey {
            worker,
            trial,
            attempt,
        } = key;
        self.worker_mut(worker, now)?;
        if let Some(&i) = self.index.get(&trial)
            && let Some(s) = self.trials[i].state.success()
            && s.attempt == attempt
            && s.worker == worker
            && matches!(outcome, Outcome::Succeeded(_))
        {
            return Ok(Vec::new());
        }
        let i = self.current_lease(key)?;
        let Some(&lease) = self.trials[i].state.lease() else {
            return Err(StateError::UnknownTrial(trial));
        };
        match outcome {
            Outcome::Succeeded(result) => self.succeed(i, key, lease.granted, result, now),
            Outcome::Failed { kind, message } => {
                let mut effects = self.fail_attempt(i, lease, kind, message);
                effects.extend(self.judge());
                Ok(effects)
            }
        }
    }

    /// Ends lease `key` of trial `i` (granted at `granted`) with its holder's `result`: the
    /// epochs whose report was lost added (an accepted epoch is never replaced), the trial
    /// succeeded, its checkpoints dropped.
    fn succeed(
        &mut self,
        i: usize,
        key: LeaseKey,
        granted: Instant,
        result: TrialResult,
        now: Instant,
    ) -> Result<Vec<Effect>, StateError> {
        let LeaseKey {
            worker,
            trial,
            attempt,
        } = key;
        validate_result(&self.trials[i].spec, &result)?;
        let t = &mut self.trials[i];
        // The result's learning curve is the one reported epoch by epoch: an accepted
        // epoch is never replaced, and only epochs whose report was lost are added.
        for m in &result.epochs {
            let accepted = t.epochs.binary_search_by_key(&m.epoch, |e| e.epoch);
            if let Ok(j) = accepted
                && !same_epoch(&t.epochs[j], m)
            {
                return Err(StateError::InvalidReport {
                    field: "result.epochs",
                    message: changed_epoch(&t.epochs[j], m),
                });
            }
        }
        let mut result = result;
        for m in &result.epochs {
            if t.epochs
                .binary_search_by_key(&m.epoch, |e| e.epoch)
                .is_err()
            {
                self.changes.push(Change::ResultEpoch {
                    trial,
                    epoch: m.epoch,
                    attempt,
                });
            }
        }
        t.epochs = std::mem::take(&mut result.epochs).into();
        let TrialState::Leased {
            checkpoints,
            weights,
            ..
        } = &mut t.state
        else {
            return Err(StateError::UnknownTrial(trial));
        };
        let checkpoints = std::mem::take(checkpoints);
        let (scores, matrices) = Success::split(result.last);
        t.state = TrialState::Succeeded(Box::new(Success {
            attempt,
            worker,
            wall_seconds: now.saturating_duration_since(granted).as_secs_f64(),
            scores,
            matrices,
            weights: weights.take(),
            archived: None,
            // Kept for a grid that asks for more epochs later (`lineage`).
            checkpoint: checkpoints.latest,
        }));
        self.changes.push(Change::Trial(trial));
        // The one before it is no longer needed.
        let dropped = checkpoints
            .previous
            .into_iter()
            .map(|c| Effect::DropCheckpoint(c.file));
        let mut effects: Vec<Effect> = dropped.collect();
        effects.extend(self.end_lease(i, worker, true));
        effects.extend(self.judge());
        Ok(effects)
    }
}

/// Whether two values of an epoch are the same, bit for bit (a NaN loss from an older
/// database equals itself).
fn same_epoch(a: &EpochMetrics, b: &EpochMetrics) -> bool {
    let bits = |m: &EpochMetrics| {
        [m.train_loss, m.train_accuracy, m.test_accuracy, m.seconds].map(f64::to_bits)
    };
    a.epoch == b.epoch && bits(a) == bits(b)
}

/// Why an epoch sent again with other values is refused, and the two values.
fn changed_epoch(accepted: &EpochMetrics, sent: &EpochMetrics) -> String {
    let show = |m: &EpochMetrics| {
        format!(
            "loss {}, train {} %, test {} %, {} s",
            m.train_loss, m.train_accuracy, m.test_accuracy, m.seconds
        )
    };
    format!(
        "epoch {} was accepted as ({}) and is sent again as ({}); an accepted epoch may only \
         be sent again unchanged",
        accepted.epoch,
        show(accepted),
        show(sent)
    )
}

/// Checks a result against its trial: one metric per epoch, matrices of the dataset's classes
/// whose totals match the split sizes, accuracies that agree with the matrices.
fn validate_result(spec: &TrialSpec, r: &TrialResult) -> Result<(), StateError> {
    let invalid =
        |field: &'static str, message: String| StateError::InvalidReport { field, message };
    if spec.program.is_some() {
        return validate_program_result(spec, r);
    }
    let epochs = spec.params.epochs as usize;
    let numbered = r
        .epochs
        .iter()
        .enumerate()
        .all(|(i, m)| m.epoch as usize == i + 1);
    if r.epochs.len() != epochs || !numbered {
        return Err(invalid(
            "result.epochs",
            format!(
                "expected epochs 1..={epochs} in order, got {} entries",
                r.epochs.len()
            ),
        ));
    }
    let n = usize::try_from(r.last.dataset_images).unwrap_or(usize::MAX);
    let (_, test_len) = spec.parts(n);
    let train_len = spec.train_subset_len(n);
    let classes = spec.dataset.num_classes();
    for (field, m, total, accuracy) in [
        (
            "result.train_confusion",
            &r.last.train_confusion,
            train_len,
            r.last.train_accuracy,
        ),
        (
            "result.test_confusion",
            &r.last.test_confusion,
            test_len,
            r.last.test_accuracy,
        ),
    ] {
        m.validate(classes, Some(total as u64))
            .map_err(|e| invalid(field, e.to_string()))?;
        if (m.accuracy() - accuracy).abs() > 1e-6 {
            return Err(invalid(
                field,
                format!(
                    "accuracy {accuracy} does not match the matrix ({})",
                    m.accuracy()
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a program trial's result (issue 19): at most `epochs` epochs, numbered in order, and
/// matrices of the dataset's classes (empty when the program gave none); the program's own
/// split is not the sweep's, so totals are not checked against it.
fn validate_program_result(spec: &TrialSpec, r: &TrialResult) -> Result<(), StateError> {
    let invalid =
        |field: &'static str, message: String| StateError::InvalidReport { field, message };
    let epochs = spec.params.epochs as usize;
    let numbered = r
        .epochs
        .iter()
        .enumerate()
        .all(|(i, m)| m.epoch as usize == i + 1);
    if r.epochs.len() > epochs || !numbered {
        return Err(invalid(
            "result.epochs",
            format!(
                "expected at most epochs 1..={epochs} in order, got {} entries",
                r.epochs.len()
            ),
        ));
    }
    let classes = spec.dataset.num_classes();
    for (field, m) in [
        ("result.train_confusion", &r.last.train_confusion),
        ("result.test_confusion", &r.last.test_confusion),
    ] {
        m.validate(classes, None)
            .map_err(|e| invalid(field, e.to_string()))?;
    }
    Ok(())
}
