//! Attempts that fail and trials that end without a result: the failure kind's policy decides
//! between another attempt and failing the trial for good; operators cancel trials; a trial
//! whose final weights went missing is trained again.

use std::collections::{BTreeSet, HashMap, HashSet};

use sweep_common::failure::{Policy, UNSTARTED_ATTEMPTS};
use sweep_common::{FailureKind, TrialId};

use super::{
    AttemptFailure, CancelSelector, Change, Effect, Lease, Scheduler, SetAside, Success, Trial,
    TrialState,
};

impl Scheduler {
    /// Records the failure of attempt `lease` of trial `i`; the failure kind's policy decides
    /// whether the trial goes back to the queue or fails for good.
    pub(super) fn fail_attempt(
        &mut self,
        i: usize,
        lease: Lease,
        kind: FailureKind,
        message: String,
    ) -> Vec<Effect> {
        let dataset = self.trials[i].spec.dataset;
        self.trials[i].failures.push(AttemptFailure {
            attempt: lease.attempt,
            worker: lease.worker,
            kind,
            message: message.clone(),
        });
        if let Some(w) = self.workers.get_mut(&lease.worker) {
            match kind.policy() {
                // The worker is leaving: nobody needs to tell it that the sweep ended.
                Policy::Free if kind == FailureKind::WorkerShutdown => w.told_finished = true,
                Policy::Worker(scope) => w.mark_unfit(scope, dataset, &message),
                _ => {}
            }
        }
        let t = &mut self.trials[i];
        let started = t.started();
        let mut policy = kind.policy();
        if policy == Policy::SetAside && started {
            // It trained from that checkpoint: whatever went wrong, it is not the checkpoint.
            policy = Policy::Counted;
        }
        let mut effects = Vec::new();
        if policy == Policy::SetAside {
            effects.extend(t.set_aside_resumed(lease.attempt, &message));
        }
        let checkpoints = t.state.take_checkpoints();
        if t.attempt_left(policy, started, self.config.max_attempts) {
            let after = checkpoints.epoch();
            t.state = TrialState::Pending {
                checkpoints,
                ahead: None,
            };
            t.keep_checkpointed_epochs();
            let id = t.spec.id;
            self.note_curve(i);
            self.changes.push(Change::Supersede { trial: id, after });
            effects.extend(self.end_lease(i, lease.worker, false));
            self.queue_ahead(dataset, i);
            effects.push(Effect::Requeued(id));
        } else {
            t.state = TrialState::Failed {
                reason: match policy {
                    Policy::Final => message,
                    Policy::Counted if started => {
                        format!("failed {} times; last: {message}", t.counted_attempts)
                    }
                    _ => format!(
                        "{} attempts ended before their first epoch; last: {message}",
                        t.unstarted_attempts
                    ),
                },
                cancelled: false,
                checkpoints,
            };
            effects.extend(self.end_lease(i, lease.worker, true));
        }
        effects
    }

    /// The trials `trials` (by id or name) and `experiments` name, in two sets (named, and of
    /// the experiments), and the names that match nothing.
    pub(super) fn select(
        &self,
        trials: &[String],
        experiments: &[String],
    ) -> (BTreeSet<usize>, BTreeSet<usize>, Vec<String>) {
        let mut unknown = Vec::new();
        let mut named: BTreeSet<usize> = BTreeSet::new();
        let mut of_experiments: BTreeSet<usize> = BTreeSet::new();
        let mut names: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_experiment: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, t) in self.trials.iter().enumerate() {
            names.entry(t.spec.name.as_str()).or_default().push(i);
            by_experiment
                .entry(t.spec.experiment.as_str())
                .or_default()
                .push(i);
        }
        for name in trials {
            let by_id = name
                .parse::<TrialId>()
                .ok()
                .and_then(|id| self.index.get(&id).copied());
            match (by_id, names.get(name.as_str())) {
                (Some(i), _) => {
                    named.insert(i);
                }
                (None, Some(list)) => named.extend(list.iter().copied()),
                (None, None) => unknown.push(name.clone()),
            }
        }
        for name in experiments {
            match by_experiment.get(name.as_str()) {
                Some(list) => of_experiments.extend(list.iter().copied()),
                None => unknown.push(name.clone()),
            }
        }
        (named, of_experiments, unknown)
    }

    /// Cancels the trials `selector` names that have not ended: pending ones fail at once, leased
    /// ones too (their workers learn it at their next heartbeat, whose answer revokes the
    /// lease). Returns the effects and the names that matched nothing.
    pub fn cancel(&mut self, selector: &CancelSelector) -> (Vec<Effect>, Vec<String>) {
        let (mut chosen, by_experiment, unknown) =
            self.select(&selector.trials, &selector.experiments);
        chosen.extend(by_experiment);
        if selector.all {
            chosen.extend(0..self.trials.len());
        }
        let reason = if selector.reason.trim().is_empty() {
            "cancelled".to_owned()
        } else {
            format!("cancelled: {}", selector.reason.trim())
        };
        let cancelled: HashSet<usize> = chosen
            .into_iter()
            .filter(|&i| !self.trials[i].is_terminal())
            .collect();
        let mut effects = Vec::new();
        self.pending.retain(|i| !cancelled.contains(&i));
        let mut ordered: Vec<usize> = cancelled.into_iter().collect();
        ordered.sort_unstable();
        for i in ordered {
            let worker = match self.trials[i].state.lease().copied() {
                Some(lease) => {
                    self.trials[i].failures.push(AttemptFailure {
                        attempt: lease.attempt,
                        worker: lease.worker,
                        kind: FailureKind::Cancelled,
                        message: reason.clone(),
                    });
                    Some(lease.worker)
                }
                None => None,
            };
            let checkpoints = self.trials[i].state.take_checkpoints();
            self.trials[i].state = TrialState::Failed {
                reason: reason.clone(),
                cancelled: true,
                checkpoints,
            };
            match worker {
                Some(w) => effects.extend(self.end_lease(i, w, true)),
                None => {
                    self.changes.push(Change::Trial(self.trials[i].spec.id));
                    effects.extend(self.trial_ended(i));
                }
            }
        }
        effects.extend(self.judge());
        (effects, unknown)
    }

    /// Trains a succeeded trial again because its final weights are missing (`why` says where
    /// they should be): it goes back to the queue, free, its result dropped and its epochs
    /// superseded (kept in the database), the reason recorded as a failure of the attempt that
    /// succeeded. Returns false (and changes nothing) when the trial has not succeeded.
    pub fn retrain_missing_weights(&mut self, trial: TrialId, why: String) -> bool {
        let Some(&i) = self.index.get(&trial) else {
            return false;
        };
        let t = &mut self.trials[i];
        let Some(&Success {
            attempt, worker, ..
        }) = t.state.success()
        else {
            return false;
        };
        t.failures.push(AttemptFailure {
            attempt,
            worker,
            kind: FailureKind::WeightsMissing,
            message: why,
        });
        t.state = TrialState::NEW;
        t.epochs.clear();
        t.resumed_from = 0;
        self.terminal -= 1;
        self.note_curve(i);
        let dataset = self.trials[i].spec.dataset;
        self.pending.push_back(dataset, i);
        self.changes.push(Change::Supersede { trial, after: 0 });
        self.changes.push(Change::Trial(trial));
        true
    }
}

impl Trial {
    /// Sets aside the checkpoint attempt `attempt` resumed from, found unusable (`reason`); the
    /// one before it becomes the latest. Until the attempt reports an epoch it cannot record a
    /// checkpoint, so the latest is still the one it was given.
    fn set_aside_resumed(&mut self, attempt: u32, reason: &str) -> Option<Effect> {
        let from = self.resumed_from;
        let checkpoints = self.state.checkpoints_mut()?;
        let c = checkpoints.latest.take_if(|c| c.epoch == from)?;
        let effect = Effect::SetAsideCheckpoint(c.file.clone());
        checkpoints.latest = checkpoints.previous.take();
        self.set_aside.push(SetAside {
            checkpoint: *c,
            attempt,
            reason: reason.to_owned(),
        });
        Some(effect)
    }

    /// Counts a failed attempt against the budget `policy` names; true when the trial may be
    /// tried again.
    fn attempt_left(&mut self, policy: Policy, started: bool, max_attempts: u32) -> bool {
        match policy {
            Policy::Final => false,
            Policy::Free | Policy::Worker(_) => true,
            Policy::Counted if started => {
                self.counted_attempts += 1;
                self.counted_attempts < max_attempts
            }
            Policy::Counted | Policy::SetAside => {
                self.unstarted_attempts += 1;
                self.unstarted_attempts < UNSTARTED_ATTEMPTS
            }
        }
    }
}
