//! The scheduling state machine: which trial is pending, leased to whom, or ended.
//!
//! Pure and synchronous: every transition takes `now` as an argument and does no I/O, so it is
//! unit- and property-tested without a network. The actor loop (`server`) owns the only
//! instance and performs the effects that transitions return.
//!
//! Trial states: `Pending -> Leased -> Succeeded | Failed`, and `Leased -> Pending` when a lease
//! expires or fails in a way that is not the trial's fault, as the failure kind's policy says
//! ([`sweep_common::failure`]); `Failed -> Pending` when an operator retries it. Invariant: a
//! trial has at most one live lease, and only that lease's (worker, attempt) can write to the
//! trial.
//!
//! Every transition also notes what it changed in a journal ([`Change`]) that the owner drains
//! with [`Scheduler::take_changes`] and commits to the database before it answers the callers,
//! so nothing is acknowledged that a crash could lose. [`Scheduler::restore`] rebuilds the state
//! from what was committed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

pub use sweep_common::FailureKind;
pub use sweep_common::failure::AttemptFailure;
use sweep_common::failure::{Policy, UNSTARTED_ATTEMPTS, Unfit};
use sweep_common::{DatasetKind, EpochMetrics, TrialId, TrialResult, TrialSpec, WorkerId};

mod queue;
mod retry;

pub use retry::RetrySelector;

/// Timing and retry settings of the state machine.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// A lease not renewed for this long expires.
    pub lease_ttl: Duration,
    /// Leases granted to one trial before a retryable failure fails it for good.
    pub max_attempts: u32,
    /// How long a worker waits before asking again when nothing can be leased.
    pub retry_after: Duration,
}

/// A live lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The worker holding it.
    pub worker: WorkerId,
    /// Its attempt number (1-based).
    pub attempt: u32,
    /// When it was granted.
    pub granted: Instant,
    /// When it expires unless renewed.
    pub expires: Instant,
}

/// Where a trial is.
#[derive(Debug, Clone, PartialEq)]
pub enum TrialState {
    /// Waiting for a worker.
    Pending,
    /// Being trained under a lease.
    Leased(Lease),
    /// Ended with a result.
    Succeeded {
        /// The attempt whose result was recorded.
        attempt: u32,
        /// The worker that produced it.
        worker: WorkerId,
        /// Seconds from that attempt's lease to its result.
        wall_seconds: f64,
    },
    /// Ended without a result, for good (until an operator retries it).
    Failed {
        /// Why.
        reason: String,
        /// Whether an operator cancelled it (`coordinator retry --failed` leaves those).
        cancelled: bool,
    },
}

/// A checkpoint stored for a trial: the next attempt resumes from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Epochs it holds (the next attempt starts at `epoch + 1`).
    pub epoch: u32,
    /// The attempt that made it.
    pub attempt: u32,
    /// File name in the state directory's `checkpoints/` folder.
    pub file: String,
    /// Bytes.
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// A checkpoint that could not be used, kept aside for inspection and never offered again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SetAside {
    /// The checkpoint (its file now in the checkpoints folder's `set-aside/`).
    pub checkpoint: Checkpoint,
    /// The attempt that was to resume from it.
    pub attempt: u32,
    /// Why it was unusable (the worker's or the coordinator's words).
    pub reason: String,
}

/// A trial and everything recorded about it.
#[derive(Debug, Clone)]
pub struct Trial {
    /// What to train.
    pub spec: TrialSpec,
    /// Where it is.
    pub state: TrialState,
    /// Leases granted so far (the attempt number of the latest lease).
    pub attempts: u32,
    /// Leases that counted against `max_attempts`.
    pub counted_attempts: u32,
    /// Leases that failed before their first epoch (counted against [`UNSTARTED_ATTEMPTS`]).
    pub unstarted_attempts: u32,
    /// Accepted epoch metrics of the current (or successful) attempt, one per epoch.
    pub epochs: Vec<EpochMetrics>,
    /// The result, once succeeded. Its `epochs` are empty: they are `epochs` above (boxed and
    /// deduplicated so that a million pending trials stay small).
    pub result: Option<Box<TrialResult>>,
    /// Every failed attempt.
    pub failures: Vec<AttemptFailure>,
    /// Path of the final weights, relative to the output folder, once uploaded.
    pub weights: Option<String>,
    /// The latest checkpoint, if any (dropped once the trial succeeds; kept when it fails, so
    /// that a retry resumes from it).
    pub checkpoint: Option<Box<Checkpoint>>,
    /// The one before it, kept in case the latest proves unusable.
    pub previous_checkpoint: Option<Box<Checkpoint>>,
    /// Checkpoints found unusable.
    pub set_aside: Vec<SetAside>,
    /// Epochs the current (or successful) attempt took over from a checkpoint.
    pub resumed_from: u32,
}

impl Trial {
    /// A trial that was never leased.
    pub fn new(spec: TrialSpec) -> Self {
        Trial {
            spec,
            state: TrialState::Pending,
            attempts: 0,
            counted_attempts: 0,
            unstarted_attempts: 0,
            epochs: Vec::new(),
            result: None,
            failures: Vec::new(),
            weights: None,
            checkpoint: None,
            previous_checkpoint: None,
            set_aside: Vec::new(),
            resumed_from: 0,
        }
    }

    /// Drops the epochs a new attempt will train again (those after the checkpoint).
    fn keep_checkpointed_epochs(&mut self) {
        let kept = self.checkpoint.as_ref().map_or(0, |c| c.epoch);
        self.epochs.retain(|m| m.epoch <= kept);
    }

    /// True when the current attempt reported an epoch of its own (beyond the checkpoint it
    /// resumed from).
    fn started(&self) -> bool {
        self.epochs
            .last()
            .is_some_and(|m| m.epoch > self.resumed_from)
    }

    /// True once the trial succeeded or failed for good.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.state,
            TrialState::Succeeded { .. } | TrialState::Failed { .. }
        )
    }
}

/// A registered worker.
#[derive(Debug, Clone)]
pub struct Worker {
    /// Free-form name it gave.
    pub name: String,
    /// Device description for logs and reports (`cuda:0 NVIDIA H100`, `cpu`).
    pub device: String,
    /// Trials it trains at once.
    pub slots: u32,
    /// Last time it called.
    pub last_seen: Instant,
    /// Trials it currently leases.
    pub leases: BTreeSet<TrialId>,
    /// Whether it has been told that the sweep is finished.
    pub told_finished: bool,
    /// Its device's memory (used, total bytes), from its last heartbeat that said.
    pub memory: Option<(u64, u64)>,
    /// Why it takes no more trials at all (its device failed).
    pub unfit: Option<String>,
    /// Datasets it cannot load, and why.
    pub cannot_run: BTreeMap<DatasetKind, String>,
}

impl Worker {
    fn new(name: String, device: String, slots: u32, last_seen: Instant) -> Worker {
        Worker {
            name,
            device,
            slots: slots.max(1),
            last_seen,
            leases: BTreeSet::new(),
            told_finished: false,
            memory: None,
            unfit: None,
            cannot_run: BTreeMap::new(),
        }
    }

    /// Whether it can train trials of `dataset`.
    pub fn can_run(&self, dataset: DatasetKind) -> bool {
        self.unfit.is_none() && !self.cannot_run.contains_key(&dataset)
    }

    /// Why it takes no more trials, or none of some datasets, in words.
    pub fn problem(&self) -> Option<String> {
        if let Some(m) = &self.unfit {
            return Some(format!("takes no more trials: {m}"));
        }
        let each: Vec<String> = self
            .cannot_run
            .iter()
            .map(|(d, m)| format!("cannot run {d} trials: {m}"))
            .collect();
        (!each.is_empty()).then(|| each.join("; "))
    }

    /// Marks it as unable to run what a failure of its own (`scope`) says.
    fn mark_unfit(&mut self, scope: Unfit, dataset: DatasetKind, message: &str) {
        match scope {
            Unfit::Dataset => {
                self.cannot_run
                    .entry(dataset)
                    .or_insert_with(|| message.to_owned());
            }
            Unfit::Everything => {
                self.unfit.get_or_insert_with(|| message.to_owned());
            }
        }
    }
}

/// What a lease request gets.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseOutcome {
    /// Train this trial under this attempt.
    Assigned {
        /// The trial.
        spec: TrialSpec,
        /// The attempt number of the new lease.
        attempt: u32,
        /// The checkpoint to resume from, if an earlier attempt left one.
        resume: Option<Checkpoint>,
    },
    /// Nothing to lease now; ask again after this long.
    Wait(Duration),
    /// Every trial has ended.
    Finished,
    /// Trials are left, but none this worker can run (see [`Worker::problem`]): it should stop.
    CannotRun(String),
}

/// How a worker ends a lease.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The trial trained to the end.
    Succeeded(TrialResult),
    /// The attempt failed.
    Failed {
        /// What kind of failure.
        kind: FailureKind,
        /// The worker's message.
        message: String,
    },
}

/// What a transition changed, for the owner to commit to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The trial's row (state, attempts, result, failures, checkpoint...) changed.
    Trial(TrialId),
    /// An epoch of the trial was accepted from this attempt.
    Epoch {
        /// The trial.
        trial: TrialId,
        /// The epoch.
        epoch: u32,
        /// The attempt that reported it.
        attempt: u32,
    },
    /// The trial's epochs after `after` were superseded (a new attempt trains them again).
    Supersede {
        /// The trial.
        trial: TrialId,
        /// The last epoch kept.
        after: u32,
    },
    /// The trial succeeded and its result holds `epoch`, which was never accepted (its report
    /// was lost): the result's is recorded, as the attempt's.
    ResultEpoch {
        /// The trial.
        trial: TrialId,
        /// The epoch.
        epoch: u32,
        /// The attempt whose result it is.
        attempt: u32,
    },
    /// A worker registered.
    Worker(WorkerId),
}

/// What a transition did that the owner of the state must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A trial ended (succeeded or failed for good): persist it.
    TrialEnded(TrialId),
    /// A trial went back to pending.
    Requeued(TrialId),
    /// The last trial ended.
    SweepFinished,
    /// A checkpoint file is no longer needed (newer ones replaced it, or the trial succeeded).
    DropCheckpoint(String),
    /// A checkpoint file proved unusable: it moves to the checkpoints folder's `set-aside/`.
    SetAsideCheckpoint(String),
}

/// A request the state machine refuses. The service maps each to a gRPC status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// The worker id is not registered (the coordinator restarted, or the id is made up).
    #[error("unknown worker {0}; register again")]
    UnknownWorker(WorkerId),
    /// No trial has this id.
    #[error("unknown trial {0}")]
    UnknownTrial(TrialId),
    /// The lease named is not the trial's current one.
    #[error("stale lease: trial {trial} attempt {attempt} is not the current lease ({current})")]
    StaleLease {
        /// The trial.
        trial: TrialId,
        /// The attempt named.
        attempt: u32,
        /// What the trial's state is now, in words.
        current: String,
    },
    /// The lease belongs to another worker.
    #[error("trial {trial} attempt {attempt} is leased to another worker")]
    NotLeaseHolder {
        /// The trial.
        trial: TrialId,
        /// The attempt named.
        attempt: u32,
    },
    /// A checkpoint that is not the lease's to give.
    #[error("no checkpoint to resume for trial {trial} attempt {attempt}")]
    NoCheckpoint {
        /// The trial.
        trial: TrialId,
        /// The attempt named.
        attempt: u32,
    },
    /// A report that does not fit the trial.
    #[error("invalid {field}: {message}")]
    InvalidReport {
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Trials cannot be retried once the sweep has finished (the coordinator is exiting).
    #[error(
        "the sweep has finished: rerun the coordinator with --retry-failed to retry its failed trials"
    )]
    SweepFinished,
}

/// What the coordinator stores on disk, as storage failures are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Storage {
    /// Final weights uploaded into `OUT/models`.
    Weights,
    /// Checkpoints uploaded into `STATE/checkpoints`.
    Checkpoints,
    /// `results.json`, `summary.md` and the report in `OUT`.
    Results,
}

impl Storage {
    /// What is stored, in words.
    pub fn what(self) -> &'static str {
        match self {
            Storage::Weights => "final weights",
            Storage::Checkpoints => "checkpoints",
            Storage::Results => "results",
        }
    }
}

/// A storage failure that has not been followed by a success yet.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageFailure {
    /// The latest error.
    pub message: String,
    /// When the first of them happened.
    pub since: Instant,
    /// How many happened since.
    pub count: u64,
}

/// Counts of trials by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting for a worker.
    pub pending: usize,
    /// Being trained.
    pub leased: usize,
    /// Ended with a result.
    pub succeeded: usize,
    /// Ended without one.
    pub failed: usize,
}

/// The coordinator's scheduling state.
#[derive(Debug)]
pub struct Scheduler {
    config: Config,
    trials: Vec<Trial>,
    index: HashMap<TrialId, usize>,
    pending: queue::Pending,
    leased: BTreeSet<usize>,
    workers: HashMap<WorkerId, Worker>,
    terminal: usize,
    /// Trials not ended, by dataset (what a worker that cannot load some dataset may still get).
    unfinished: BTreeMap<DatasetKind, usize>,
    changes: Vec<Change>,
    storage: std::collections::BTreeMap<Storage, StorageFailure>,
}

/// Which trials a cancel names.
#[derive(Debug, Clone, Default)]
pub struct CancelSelector {
    /// Trials by id or name.
    pub trials: Vec<String>,
    /// Whole experiments.
    pub experiments: Vec<String>,
    /// Every trial.
    pub all: bool,
    /// The reason recorded.
    pub reason: String,
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
        let mut pending = queue::Pending::default();
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
                TrialState::Pending => pending.push_back(t.spec.dataset, i),
                TrialState::Leased(lease) => {
                    // `granted` is kept: the attempt's wall time counts from its lease, not
                    // from the restart.
                    lease.granted = lease.granted.min(now);
                    lease.expires = now + grace.min(config.lease_ttl);
                    leased.insert(i);
                    if let Some(w) = workers.get_mut(&lease.worker) {
                        w.leases.insert(t.spec.id);
                    }
                }
                TrialState::Succeeded { .. } | TrialState::Failed { .. } => terminal += 1,
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

    /// True once every trial has ended.
    pub fn is_finished(&self) -> bool {
        self.terminal == self.trials.len()
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
                TrialState::Succeeded { .. } => c.succeeded += 1,
                TrialState::Failed { .. } => c.failed += 1,
                TrialState::Pending | TrialState::Leased(_) => {}
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

    fn worker_mut(&mut self, id: WorkerId, now: Instant) -> Result<&mut Worker, StateError> {
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
        let Some(i) = self.pending.pop(|d| w.can_run(d)) else {
            return Ok(LeaseOutcome::Wait(retry_after));
        };
        let trial = &mut self.trials[i];
        trial.attempts += 1;
        trial.keep_checkpointed_epochs();
        let resume = trial.checkpoint.as_deref().cloned();
        trial.resumed_from = resume.as_ref().map_or(0, |c| c.epoch);
        let attempt = trial.attempts;
        trial.state = TrialState::Leased(Lease {
            worker,
            attempt,
            granted: now,
            expires: now + self.config.lease_ttl,
        });
        let spec = trial.spec.clone();
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

    /// The checkpoint the live lease (`trial`, `attempt`) of `worker` resumes from.
    pub fn resume_checkpoint(
        &mut self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        now: Instant,
    ) -> Result<Checkpoint, StateError> {
        self.worker_mut(worker, now)?;
        let i = self.current_lease(worker, trial, attempt)?;
        self.trials[i]
            .checkpoint
            .as_deref()
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
        let i = self.current_lease(worker, trial, checkpoint.attempt)?;
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
        let t = &mut self.trials[i];
        self.changes.push(Change::Trial(trial));
        // The same file again (a resent upload) replaces itself; a new one pushes the latest
        // back to `previous` and drops the one before.
        if t.checkpoint
            .as_ref()
            .is_some_and(|c| c.file == checkpoint.file)
        {
            t.checkpoint = Some(Box::new(checkpoint));
            return Ok(Vec::new());
        }
        let latest = t.checkpoint.replace(Box::new(checkpoint));
        let oldest = match latest {
            Some(latest) => t.previous_checkpoint.replace(latest),
            None => None,
        };
        Ok(oldest
            .map(|o| Effect::DropCheckpoint(o.file))
            .into_iter()
            .collect())
    }

    /// Checks that (`trial`, `attempt`) is the live lease of `worker`; returns the trial's index.
    fn current_lease(
        &self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
    ) -> Result<usize, StateError> {
        let &i = self
            .index
            .get(&trial)
            .ok_or(StateError::UnknownTrial(trial))?;
        let t = &self.trials[i];
        match &t.state {
            TrialState::Leased(lease) if lease.attempt == attempt => {
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
            match self.current_lease(worker, trial, attempt) {
                Ok(i) => self.renew(i, now),
                Err(_) => revoked.push((trial, attempt)),
            }
        }
        Ok(revoked)
    }

    /// Records what a worker says about its device's memory (used, total bytes).
    pub fn record_memory(&mut self, worker: WorkerId, used: u64, total: u64) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.memory = Some((used, total));
        }
    }

    fn renew(&mut self, i: usize, now: Instant) {
        if let TrialState::Leased(lease) = &mut self.trials[i].state {
            lease.expires = now + self.config.lease_ttl;
        }
    }

    /// Records one epoch of a live lease (and renews it).
    pub fn report_epoch(
        &mut self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        metrics: EpochMetrics,
        now: Instant,
    ) -> Result<(), StateError> {
        self.worker_mut(worker, now)?;
        let i = self.current_lease(worker, trial, attempt)?;
        let epochs = self.trials[i].spec.params.epochs;
        if metrics.epoch == 0 || metrics.epoch > epochs {
            return Err(StateError::InvalidReport {
                field: "metrics.epoch",
                message: format!("epoch {} is outside 1..={epochs}", metrics.epoch),
            });
        }
        let resumed_from = self.trials[i].resumed_from;
        if metrics.epoch <= resumed_from {
            return Err(StateError::InvalidReport {
                field: "metrics.epoch",
                message: format!(
                    "epoch {} comes from the checkpoint this attempt resumed from (epochs 1..={resumed_from})",
                    metrics.epoch
                ),
            });
        }
        let epoch = metrics.epoch;
        let list = &mut self.trials[i].epochs;
        // An accepted epoch is never replaced: sent again, it must be the same (a worker whose
        // answer was lost resends it).
        let at = list.binary_search_by_key(&epoch, |m| m.epoch);
        if let Ok(j) = at
            && !same_epoch(&list[j], &metrics)
        {
            return Err(StateError::InvalidReport {
                field: "metrics",
                message: changed_epoch(&list[j], &metrics),
            });
        }
        self.renew(i, now);
        let list = &mut self.trials[i].epochs;
        match at {
            Ok(_) => return Ok(()),
            Err(j) => list.insert(j, metrics),
        }
        self.changes.push(Change::Epoch {
            trial,
            epoch,
            attempt,
        });
        Ok(())
    }

    /// Checks that (`trial`, `attempt`) is `worker`'s live lease, for an upload under it;
    /// returns the trial's spec.
    pub fn check_lease(
        &mut self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        now: Instant,
    ) -> Result<&TrialSpec, StateError> {
        self.worker_mut(worker, now)?;
        let i = self.current_lease(worker, trial, attempt)?;
        self.renew(i, now);
        Ok(&self.trials[i].spec)
    }

    /// Records that the final weights of a live lease were stored at `path`.
    pub fn record_weights(
        &mut self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        path: String,
        now: Instant,
    ) -> Result<(), StateError> {
        self.worker_mut(worker, now)?;
        let i = self.current_lease(worker, trial, attempt)?;
        self.trials[i].weights = Some(path);
        self.changes.push(Change::Trial(trial));
        Ok(())
    }

    /// Ends a live lease with a result or a failure.
    ///
    /// Completing an already recorded success again with the same lease is accepted and changes
    /// nothing (a worker may resend when the first answer was lost).
    pub fn complete(
        &mut self,
        worker: WorkerId,
        trial: TrialId,
        attempt: u32,
        outcome: Outcome,
        now: Instant,
    ) -> Result<Vec<Effect>, StateError> {
        self.worker_mut(worker, now)?;
        if let Some(&i) = self.index.get(&trial) {
            if let TrialState::Succeeded {
                attempt: a,
                worker: w,
                ..
            } = self.trials[i].state
            {
                if a == attempt && w == worker && matches!(outcome, Outcome::Succeeded(_)) {
                    return Ok(Vec::new());
                }
            }
        }
        let i = self.current_lease(worker, trial, attempt)?;
        let TrialState::Leased(lease) = self.trials[i].state else {
            return Err(StateError::UnknownTrial(trial));
        };
        match outcome {
            Outcome::Succeeded(result) => {
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
                t.epochs = std::mem::take(&mut result.epochs);
                t.result = Some(Box::new(result));
                t.state = TrialState::Succeeded {
                    attempt,
                    worker,
                    wall_seconds: now.saturating_duration_since(lease.granted).as_secs_f64(),
                };
                self.changes.push(Change::Trial(trial));
                Ok(self.end_lease(i, worker, true))
            }
            Outcome::Failed { kind, message } => Ok(self.fail_attempt(i, lease, kind, message)),
        }
    }

    /// Expires every lease not renewed by `now`; returns what happened.
    pub fn expire_leases(&mut self, now: Instant) -> Vec<Effect> {
        let expired: Vec<(usize, Lease)> = self
            .leased
            .iter()
            .filter_map(|&i| match self.trials[i].state {
                TrialState::Leased(lease) if lease.expires <= now => Some((i, lease)),
                _ => None,
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
        effects
    }

    fn fail_attempt(
        &mut self,
        i: usize,
        lease: Lease,
        kind: FailureKind,
        message: String,
    ) -> Vec<Effect> {
        let max_attempts = self.config.max_attempts;
        let dataset = self.trials[i].spec.dataset;
        self.trials[i].failures.push(AttemptFailure {
            attempt: lease.attempt,
            worker: lease.worker,
            kind,
            message: message.clone(),
        });
        let mut effects = Vec::new();
        let w = self.workers.get_mut(&lease.worker);
        match (kind.policy(), w) {
            // The worker is leaving: nobody needs to tell it that the sweep ended.
            (Policy::Free, Some(w)) if kind == FailureKind::WorkerShutdown => {
                w.told_finished = true;
            }
            (Policy::Worker(scope), Some(w)) => w.mark_unfit(scope, dataset, &message),
            _ => {}
        }
        let t = &mut self.trials[i];
        let started = t.started();
        let mut policy = kind.policy();
        if policy == Policy::SetAside && started {
            // It trained from that checkpoint: whatever went wrong, it is not the checkpoint.
            policy = Policy::Counted;
        }
        if policy == Policy::SetAside {
            // Until the attempt reports an epoch it cannot record a checkpoint, so the latest is
            // still the one it was given.
            let from = t.resumed_from;
            if let Some(c) = t.checkpoint.take_if(|c| c.epoch == from) {
                effects.push(Effect::SetAsideCheckpoint(c.file.clone()));
                t.set_aside.push(SetAside {
                    checkpoint: *c,
                    attempt: lease.attempt,
                    reason: message.clone(),
                });
                t.checkpoint = t.previous_checkpoint.take();
            }
        }
        let retry = match policy {
            Policy::Final => false,
            Policy::Free | Policy::Worker(_) => true,
            Policy::Counted if started => {
                t.counted_attempts += 1;
                t.counted_attempts < max_attempts
            }
            Policy::Counted | Policy::SetAside => {
                t.unstarted_attempts += 1;
                t.unstarted_attempts < UNSTARTED_ATTEMPTS
            }
        };
        if retry {
            t.state = TrialState::Pending;
            t.keep_checkpointed_epochs();
            let id = t.spec.id;
            let after = t.checkpoint.as_ref().map_or(0, |c| c.epoch);
            self.changes.push(Change::Supersede { trial: id, after });
            effects.extend(self.end_lease(i, lease.worker, false));
            self.pending.push_front(dataset, i);
            effects.push(Effect::Requeued(id));
            effects
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
            };
            effects.extend(self.end_lease(i, lease.worker, true));
            effects
        }
    }

    fn end_lease(&mut self, i: usize, worker: WorkerId, terminal: bool) -> Vec<Effect> {
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

    /// Accounts for trial `i` having ended (succeeded, or failed for good): a succeeded trial's
    /// checkpoints are no longer needed; a failed one keeps them for a retry.
    fn trial_ended(&mut self, i: usize) -> Vec<Effect> {
        let t = &mut self.trials[i];
        let mut effects = Vec::new();
        if matches!(t.state, TrialState::Succeeded { .. }) {
            for c in [t.checkpoint.take(), t.previous_checkpoint.take()]
                .into_iter()
                .flatten()
            {
                effects.push(Effect::DropCheckpoint(c.file));
            }
        }
        let (id, dataset) = (t.spec.id, t.spec.dataset);
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
            let worker = match self.trials[i].state {
                TrialState::Leased(lease) => {
                    self.trials[i].failures.push(AttemptFailure {
                        attempt: lease.attempt,
                        worker: lease.worker,
                        kind: FailureKind::Cancelled,
                        message: reason.clone(),
                    });
                    Some(lease.worker)
                }
                _ => None,
            };
            self.trials[i].state = TrialState::Failed {
                reason: reason.clone(),
                cancelled: true,
            };
            match worker {
                Some(w) => effects.extend(self.end_lease(i, w, true)),
                None => {
                    self.changes.push(Change::Trial(self.trials[i].spec.id));
                    effects.extend(self.trial_ended(i));
                }
            }
        }
        (effects, unknown)
    }

    /// The trials `trials` (by id or name) and `experiments` name, in two sets (named, and of
    /// the experiments), and the names that match nothing.
    fn select(
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

    /// Trains a succeeded trial again because its final weights are missing (`why` says where
    /// they should be): it goes back to the queue, free, its result dropped and its epochs
    /// superseded (kept in the database), the reason recorded as a failure of the attempt that
    /// succeeded. Returns false (and changes nothing) when the trial has not succeeded.
    pub fn retrain_missing_weights(&mut self, trial: TrialId, why: String) -> bool {
        let Some(&i) = self.index.get(&trial) else {
            return false;
        };
        let t = &mut self.trials[i];
        let TrialState::Succeeded {
            attempt, worker, ..
        } = t.state
        else {
            return false;
        };
        t.failures.push(AttemptFailure {
            attempt,
            worker,
            kind: FailureKind::WeightsMissing,
            message: why,
        });
        t.state = TrialState::Pending;
        t.result = None;
        t.weights = None;
        t.epochs.clear();
        t.resumed_from = 0;
        self.terminal -= 1;
        let dataset = self.trials[i].spec.dataset;
        self.pending.push_back(dataset, i);
        self.changes.push(Change::Supersede { trial, after: 0 });
        self.changes.push(Change::Trial(trial));
        true
    }

    /// True when every worker seen since `since` has been told the sweep is finished.
    pub fn all_workers_told(&self, since: Instant) -> bool {
        self.workers
            .values()
            .filter(|w| w.last_seen >= since)
            .all(|w| w.told_finished)
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

fn describe(state: &TrialState) -> String {
    match state {
        TrialState::Pending => "the trial is pending".to_owned(),
        TrialState::Leased(l) => format!("attempt {} is leased", l.attempt),
        TrialState::Succeeded { attempt, .. } => {
            format!("the trial succeeded on attempt {attempt}")
        }
        TrialState::Failed { .. } => "the trial failed".to_owned(),
    }
}

/// Checks a result against its trial: one metric per epoch, matrices of the dataset's classes
/// whose totals match the split sizes, accuracies that agree with the matrices.
fn validate_result(spec: &TrialSpec, r: &TrialResult) -> Result<(), StateError> {
    let invalid =
        |field: &'static str, message: String| StateError::InvalidReport { field, message };
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
    let n = usize::try_from(r.dataset_images).unwrap_or(usize::MAX);
    let (_, test_len) = spec.split.sizes(n);
    let train_len = spec.train_subset_len(n);
    let classes = spec.dataset.num_classes();
    for (field, m, total, accuracy) in [
        (
            "result.train_confusion",
            &r.train_confusion,
            train_len,
            r.train_accuracy,
        ),
        (
            "result.test_confusion",
            &r.test_confusion,
            test_len,
            r.test_accuracy,
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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_failures;
