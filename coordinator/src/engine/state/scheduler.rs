//! The scheduler itself: the trials in grid order, the queue of pending ones, the workers and
//! their leases; granting and expiring leases, and the bookkeeping when a trial ends.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use sweep_common::failure::Policy;
use sweep_common::{DatasetKind, FailureKind, TrialId, TrialSpec, WorkerId};

use super::queue;
use super::{
    Change, Config, Counts, Effect, Lease, LeaseKey, LeaseOutcome, StateError, Storage,
    StorageFailure, Trial, TrialState, Worker,
};

/// The coordinator's scheduling state.
#[derive(Debug)]
pub struct Scheduler {
    pub(super) config: Config,
    pub(super) trials: Vec<Trial>,
    pub(super) index: HashMap<TrialId, usize>,
    pub(super) pending: queue::Pending,
    pub(super) leased: BTreeSet<usize>,
    pub(super) workers: HashMap<WorkerId, Worker>,
    pub(super) terminal: usize,
    /// Trials not ended, by dataset (what a worker that cannot load some dataset may still get).
    pub(super) unfinished: BTreeMap<DatasetKind, usize>,
    pub(super) changes: Vec<Change>,
    pub(super) storage: std::collections::BTreeMap<Storage, StorageFailure>,
    /// The experiments' stopping rules (issue 17).
    pub(super) stopping: super::stopping::Stopping,
    /// The `tpe` experiments' runtime proposals (issue 17).
    pub(super) search: Vec<super::search::Search>,
    /// `[sweep] max_hours` in seconds (`budget.rs`); `None`: no budget.
    pub(super) budget: Option<f64>,
    /// Operators' promotions to more epochs (`more_epochs.rs`): per lineage
    /// (`TrialSpec::lineage_id`), the epochs its trial trains to at least.
    pub(super) promotions: HashMap<TrialId, u32>,
}

/// The pending queue with the trials queued ahead of the grid's order (a failed attempt's, a
/// promoted one's), in their order then; the rest are queued by [`Scheduler::restore`].
fn queued_ahead(trials: &[Trial]) -> queue::Pending {
    let mut pending = queue::Pending::default();
    let mut ahead: Vec<(i64, usize)> = trials
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t.state {
            TrialState::Pending { ahead: Some(a), .. } => Some((a, i)),
            _ => None,
        })
        .collect();
    ahead.sort_unstable();
    for &(a, i) in &ahead {
        pending.restore_ahead(trials[i].spec.dataset, i, a);
    }
    pending
}

impl Scheduler {
    /// A scheduler with every trial pending, in the given order.
    pub fn new(specs: impl IntoIterator<Item = TrialSpec>, config: Config) -> Self {
        let trials = specs.into_iter().map(Trial::new).collect();
        Self::restore(trials, Vec::new(), config, config.lease_ttl, Instant::now())
    }

    /// A scheduler from recorded trials (in grid order) and workers, as of `now`: live leases
    /// run on for `grace` from `now` (their workers may still be training, and renew them if
    /// so), and the workers count as not seen since a TTL ago until they call.
    pub fn restore(
        trials: Vec<Trial>,
        workers: Vec<(WorkerId, String, String, u32)>,
        config: Config,
        grace: Duration,
        now: Instant,
    ) -> Self {
        let mut trials = trials;
        let long_ago = now.checked_sub(config.lease_ttl).unwrap_or(now);
        let mut workers: HashMap<WorkerId, Worker> = workers
            .into_iter()
            .map(|(id, name, device, slots)| (id, Worker::new(name, device, slots, long_ago)))
            .collect();
        let mut pending = queued_ahead(&trials);
        let mut leased = BTreeSet::new();
        let mut terminal = 0;
        let mut unfinished: BTreeMap<DatasetKind, usize> = BTreeMap::new();
        for (i, t) in trials.iter_mut().enumerate() {
            // What a worker's own failures said it cannot run still holds.
            for f in &t.failures {
                if let (Policy::Worker(scope), Some(w)) =
                    (f.kind.policy(), workers.get_mut(&f.worker))
                {
                    w.mark_unfit(scope, t.spec.dataset, &f.message);
                }
            }
            if !t.is_terminal() {
                *unfinished.entry(t.spec.dataset).or_default() += 1;
            }
            match &mut t.state {
                TrialState::Pending { ahead: None, .. } => pending.push_back(t.spec.dataset, i),
                TrialState::Pending { ahead: Some(_), .. } => {}
                TrialState::Leased { lease, .. } => {
                    // `granted` is kept: the attempt's wall time counts from its lease, not
                    // from the restart.
                    lease.granted = lease.granted.min(now);
                    lease.expires = now + grace.min(config.lease_ttl);
                    leased.insert(i);
                    if let Some(w) = workers.get_mut(&lease.worker) {
                        w.leases.insert(t.spec.id);
                    }
                }
                TrialState::Succeeded(_)
                | TrialState::Failed { .. }
                | TrialState::Stopped { .. } => terminal += 1,
            }
        }
        let index = trials
            .iter()
            .enumerate()
            .map(|(i, t)| (t.spec.id, i))
            .collect();
        Self {
            config,
            trials,
            index,
            pending,
            leased,
            workers,
            terminal,
            unfinished,
            changes: Vec::new(),
            storage: std::collections::BTreeMap::new(),
            stopping: super::stopping::Stopping::default(),
            search: Vec::new(),
            budget: None,
            promotions: HashMap::new(),
        }
    }

    /// What changed since the last call, for the owner to commit.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every trial, in grid order.
    pub fn trials(&self) -> &[Trial] {
        &self.trials
    }

    /// The trial with this id.
    pub fn trial(&self, id: TrialId) -> Option<&Trial> {
        self.index.get(&id).map(|&i| &self.trials[i])
    }

    /// Where the trial with this id is in [`Scheduler::trials`].
    pub fn position(&self, id: TrialId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// What changed since the last [`Scheduler::take_changes`], without taking it.
    pub fn pending_changes(&self) -> &[Change] {
        &self.changes
    }

    /// The registered workers.
    pub fn workers(&self) -> &HashMap<WorkerId, Worker> {
        &self.workers
    }

    /// The trials `worker` leases now, in grid order (O(its leases), whatever the grid's size).
    pub fn leased_by(&self, worker: WorkerId) -> Vec<&Trial> {
        let mut at: Vec<usize> = self
            .workers
            .get(&worker)
            .into_iter()
            .flat_map(|w| &w.leases)
            .filter_map(|id| self.index.get(id).copied())
            .collect();
        at.sort_unstable();
        at.into_iter().map(|i| &self.trials[i]).collect()
    }

    /// Pending trials by dataset (datasets with none left out).
    pub fn pending_by_dataset(&self) -> impl Iterator<Item = (DatasetKind, usize)> + '_ {
        self.pending.by_dataset()
    }

    /// True once every trial has ended and no `tpe` experiment has configurations left to
    /// propose.
    pub fn is_finished(&self) -> bool {
        self.terminal == self.trials.len() && !self.search_open()
    }

    /// Trials by state.
    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            pending: self.pending.len(),
            leased: self.leased.len(),
            ..Counts::default()
        };
        for t in &self.trials {
            match t.state {
                TrialState::Succeeded(_) => c.succeeded += 1,
                TrialState::Failed { .. } => c.failed += 1,
                TrialState::Stopped { .. } => c.stopped += 1,
                TrialState::Pending { .. } | TrialState::Leased { .. } => {}
            }
        }
        c
    }

    /// Registers a worker under `id` (chosen by the caller, so this stays deterministic).
    pub fn register(
        &mut self,
        id: WorkerId,
        name: String,
        device: String,
        slots: u32,
        now: Instant,
    ) {
        self.changes.push(Change::Worker(id));
        self.workers
            .insert(id, Worker::new(name, device, slots, now));
    }

    pub(super) fn worker_mut(
        &mut self,
        id: WorkerId,
        now: Instant,
    ) -> Result<&mut Worker, StateError> {
        let w = self
            .workers
            .get_mut(&id)
            .ok_or(StateError::UnknownWorker(id))?;
        w.last_seen = now;
        Ok(w)
    }

    /// Leases the next pending trial `worker` can run to it, if it has a free slot.
    pub fn lease(&mut self, worker: WorkerId, now: Instant) -> Result<LeaseOutcome, StateError> {
        let finished = self.is_finished();
        let retry_after = self.config.retry_after;
        let unfinished = &self.unfinished;
        let w = self
            .workers
            .get_mut(&worker)
            .ok_or(StateError::UnknownWorker(worker))?;
        w.last_seen = now;
        if finished {
            w.told_finished = true;
            return Ok(LeaseOutcome::Finished);
        }
        // Only trials of datasets it said it cannot run are left: nothing will ever be its.
        if let Some(reason) = w.problem() {
            if !unfinished.iter().any(|(&d, &n)| n > 0 && w.can_run(d)) {
                w.told_finished = true;
                return Ok(LeaseOutcome::CannotRun(reason));
            }
        }
        if w.leases.len() >= w.slots as usize {
            return Ok(LeaseOutcome::Wait(retry_after));
        }
        let w = &*w;
        // The budget has no room for the next trial: the next tick stops it (`budget.rs`).
        let next = self.pending.peek(|d| w.can_run(d));
        if next.is_some_and(|i| super::budget::refuses(&self.trials, self.budget, i)) {
            return Ok(LeaseOutcome::Wait(retry_after));
        }
        let i = match self.pending.pop(|d| w.can_run(d)) {
            Some(i) => i,
            None => match self.propose_for(worker) {
                Some(i) => i,
                None => return Ok(LeaseOutcome::Wait(retry_after)),
            },
        };
        let trial = &mut self.trials[i];
        trial.attempts += 1;
        let reported = trial.epochs.len();
        trial.keep_checkpointed_epochs();
        let cut = trial.epochs.len() != reported;
        let checkpoints = trial.state.take_checkpoints();
        let resume = checkpoints.latest.as_deref().cloned();
        trial.resumed_from = checkpoints.epoch();
        let attempt = trial.attempts;
        trial.state = TrialState::Leased {
            lease: Box::new(Lease {
                worker,
                attempt,
                granted: now,
                expires: now + self.config.lease_ttl,
            }),
            checkpoints,
            weights: None,
        };
        let spec = trial.spec.clone();
        if cut {
            self.note_curve(i);
        }
        self.leased.insert(i);
        if let Some(w) = self.workers.get_mut(&worker) {
            w.leases.insert(spec.id);
        }
        self.changes.push(Change::Trial(spec.id));
        Ok(LeaseOutcome::Assigned {
            spec,
            attempt,
            resume,
        })
    }

    /// With nothing pending that `worker` can run: a configuration a `tpe` experiment proposes
    /// now (`search.rs`), its first trial taken from the queue.
    fn propose_for(&mut self, worker: WorkerId) -> Option<usize> {
        let w = self.workers.get(&worker)?.clone();
        if !self.propose(|d| w.can_run(d)) {
            return None;
        }
        // A proposal the budget has no room for stays pending: the next tick stops it.
        let next = self.pending.peek(|d| w.can_run(d));
        if next.is_some_and(|i| super::budget::refuses(&self.trials, self.budget, i)) {
            return None;
        }
        self.pending.pop(|d| w.can_run(d))
    }

    /// Queues pending trial `i` ahead of every other, noting its place in its state.
    pub(super) fn queue_ahead(&mut self, dataset: DatasetKind, i: usize) {
        let at = self.pending.push_front(dataset, i);
        if let TrialState::Pending { ahead, .. } = &mut self.trials[i].state {
            *ahead = Some(at);
        }
    }

    /// Checks that (`trial`, `attempt`) is the live lease of `worker`; returns the trial's index.
    pub(super) fn current_lease(&self, key: LeaseKey) -> Result<usize, StateError> {
        let LeaseKey {
            worker,
            trial,
            attempt,
        } = key;
        let &i = self
            .index
            .get(&trial)
            .ok_or(StateError::UnknownTrial(trial))?;
        let t = &self.trials[i];
        match &t.state {
            TrialState::Leased { lease, .. } if lease.attempt == attempt => {
                if lease.worker == worker {
                    Ok(i)
                } else {
                    Err(StateError::NotLeaseHolder { trial, attempt })
                }
            }
            state => Err(StateError::StaleLease {
                trial,
                attempt,
                current: describe(state),
            }),
        }
    }

    pub(super) fn renew(&mut self, i: usize, now: Instant) {
        if let TrialState::Leased { lease, .. } = &mut self.trials[i].state {
            lease.expires = now + self.config.lease_ttl;
        }
    }

    /// Records what a worker says about its device's memory (used, total bytes).
    pub fn record_memory(&mut self, worker: WorkerId, used: u64, total: u64) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.memory = Some((used, total));
        }
    }

    /// Expires every lease not renewed by `now`, runs the stopping rules that are due and stops
    /// the pending trials the budget has no room for; returns what happened.
    pub fn expire_leases(&mut self, now: Instant) -> Vec<Effect> {
        let expired: Vec<(usize, Lease)> = self
            .leased
            .iter()
            .filter_map(|&i| {
                let lease = *self.trials[i].state.lease()?;
                (lease.expires <= now).then_some((i, lease))
            })
            .collect();
        let mut effects = Vec::new();
        for (i, lease) in expired {
            let message = format!(
                "lease expired: no heartbeat from worker {} for {:.1} s",
                lease.worker.short(),
                self.config.lease_ttl.as_secs_f64()
            );
            effects.extend(self.fail_attempt(i, lease, FailureKind::LeaseExpired, message));
        }
        effects.extend(self.judge());
        effects.extend(self.enforce_budget());
        effects
    }

    pub(super) fn end_lease(&mut self, i: usize, worker: WorkerId, terminal: bool) -> Vec<Effect> {
        self.leased.remove(&i);
        let id = self.trials[i].spec.id;
        if let Some(w) = self.workers.get_mut(&worker) {
            w.leases.remove(&id);
        }
        self.changes.push(Change::Trial(id));
        if terminal {
            self.trial_ended(i)
        } else {
            Vec::new()
        }
    }

    /// Accounts for trial `i` having ended (succeeded, or failed for good; a failed one keeps
    /// its checkpoints for a retry).
    pub(super) fn trial_ended(&mut self, i: usize) -> Vec<Effect> {
        let t = &self.trials[i];
        let mut effects = Vec::new();
        let (id, dataset) = (t.spec.id, t.spec.dataset);
        if !matches!(t.state, TrialState::Stopped { .. }) {
            self.note_ended(i);
        }
        self.terminal += 1;
        if let Some(n) = self.unfinished.get_mut(&dataset) {
            *n = n.saturating_sub(1);
        }
        effects.push(Effect::TrialEnded(id));
        if self.is_finished() {
            effects.push(Effect::SweepFinished);
        }
        effects
    }

    /// Notes that storing `what` failed with `message`; returns true when it was working until
    /// now (the failure is new, and worth telling).
    pub fn storage_failed(&mut self, what: Storage, message: String, now: Instant) -> bool {
        match self.storage.get_mut(&what) {
            Some(f) => {
                f.message = message;
                f.count += 1;
                false
            }
            None => {
                self.storage.insert(
                    what,
                    StorageFailure {
                        message,
                        since: now,
                        count: 1,
                    },
                );
                true
            }
        }
    }

    /// Notes that storing `what` worked; returns the failure this ends, if it was failing.
    pub fn storage_worked(&mut self, what: Storage) -> Option<StorageFailure> {
        self.storage.remove(&what)
    }

    /// What the coordinator cannot store now.
    pub fn storage_failures(&self) -> impl Iterator<Item = (Storage, &StorageFailure)> {
        self.storage.iter().map(|(k, v)| (*k, v))
    }

    /// True when every worker seen since `since` has been told the sweep is finished.
    pub fn all_workers_told(&self, since: Instant) -> bool {
        self.workers
            .values()
            .filter(|w| w.last_seen >= since)
            .all(|w| w.told_finished)
    }
}

/// Trial state `state`, in words.
pub(super) fn describe(state: &TrialState) -> String {
    match state {
        TrialState::Pending { .. } => "the trial is pending".to_owned(),
        TrialState::Leased { lease, .. } => format!("attempt {} is leased", lease.attempt),
        TrialState::Succeeded(s) => format!("the trial succeeded on attempt {}", s.attempt),
        TrialState::Failed { .. } => "the trial failed".to_owned(),
        TrialState::Stopped { epoch, reason, .. } => {
            format!("the trial was stopped at epoch {epoch} ({reason})")
        }
    }
}
