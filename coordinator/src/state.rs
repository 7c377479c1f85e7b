//! The scheduling state machine: which trial is pending, leased to whom, or ended.
//!
//! Pure and synchronous: every transition takes `now` as an argument and does no I/O, so it is
//! unit- and property-tested without a network. The actor loop (`server`) owns the only
//! instance and performs the effects that transitions return.
//!
//! Trial states: `Pending -> Leased -> Succeeded | Failed`, and `Leased -> Pending` when a lease
//! expires or fails in a way that is not the trial's fault, until `max_attempts` leases were
//! granted. Invariant: a trial has at most one live lease, and only that lease's
//! (worker, attempt) can write to the trial.
//!
//! Every transition also notes what it changed in a journal ([`Change`]) that the owner drains
//! with [`Scheduler::take_changes`] and commits to the database before it answers the callers,
//! so nothing is acknowledged that a crash could lose. [`Scheduler::restore`] rebuilds the state
//! from what was committed.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use sweep_common::{EpochMetrics, TrialId, TrialResult, TrialSpec, WorkerId};

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

/// Why an attempt ended without a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A dataset file is missing or corrupt.
    Data,
    /// The loss became NaN or infinite.
    NonFiniteLoss,
    /// The device ran out of memory.
    OutOfMemory,
    /// Any other error on the worker.
    Internal,
    /// The worker shut down and gave the lease back.
    WorkerShutdown,
    /// The worker could not accept the trial spec.
    InvalidSpec,
    /// The worker stopped heartbeating.
    LeaseExpired,
    /// The trainer panicked (a bug in the worker, or in libtorch).
    Panic,
    /// Someone cancelled the trial.
    Cancelled,
}

impl FailureKind {
    /// Whether a failure of this kind may be retried, and whether the retry costs an attempt.
    fn policy(self) -> Retry {
        match self {
            FailureKind::Data
            | FailureKind::NonFiniteLoss
            | FailureKind::InvalidSpec
            | FailureKind::Panic
            | FailureKind::Cancelled => Retry::Never,
            FailureKind::OutOfMemory | FailureKind::Internal | FailureKind::LeaseExpired => {
                Retry::Counted
            }
            FailureKind::WorkerShutdown => Retry::Free,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Never,
    Counted,
    Free,
}

/// One failed attempt, kept for the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttemptFailure {
    /// The attempt that failed.
    pub attempt: u32,
    /// The worker that held it.
    pub worker: WorkerId,
    /// What kind of failure.
    pub kind: FailureKind,
    /// The worker's (or the coordinator's) message.
    pub message: String,
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
    /// Ended without a result, for good.
    Failed {
        /// Why.
        reason: String,
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
    /// Accepted epoch metrics of the current (or successful) attempt, one per epoch.
    pub epochs: Vec<EpochMetrics>,
    /// The result, once succeeded. Its `epochs` are empty: they are `epochs` above (boxed and
    /// deduplicated so that a million pending trials stay small).
    pub result: Option<Box<TrialResult>>,
    /// Every failed attempt.
    pub failures: Vec<AttemptFailure>,
    /// Path of the final weights, relative to the output folder, once uploaded.
    pub weights: Option<String>,
    /// The latest checkpoint, if any (dropped once the trial ends).
    pub checkpoint: Option<Box<Checkpoint>>,
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
            epochs: Vec::new(),
            result: None,
            failures: Vec::new(),
            weights: None,
            checkpoint: None,
            resumed_from: 0,
        }
    }

    /// Drops the epochs a new attempt will train again (those after the checkpoint).
    fn keep_checkpointed_epochs(&mut self) {
        let kept = self.checkpoint.as_ref().map_or(0, |c| c.epoch);
        self.epochs.retain(|m| m.epoch <= kept);
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
    /// The trial succeeded and its result's value of `epoch` differs from the one accepted
    /// (or none was): the result's replaces it, as the attempt's.
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
    /// A checkpoint file is no longer needed (a newer one replaced it, or the trial ended).
    DropCheckpoint(String),
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
    pending: VecDeque<usize>,
    leased: BTreeSet<usize>,
    workers: HashMap<WorkerId, Worker>,
    terminal: usize,
    changes: Vec<Change>,
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
            .map(|(id, name, device, slots)| {
                let w = Worker {
                    name,
                    device,
                    slots: slots.max(1),
                    last_seen: long_ago,
                    leases: BTreeSet::new(),
                    told_finished: false,
                    memory: None,
                };
                (id, w)
            })
            .collect();
        let mut pending = VecDeque::new();
        let mut leased = BTreeSet::new();
        let mut terminal = 0;
        for (i, t) in trials.iter_mut().enumerate() {
            match &mut t.state {
                TrialState::Pending => pending.push_back(i),
                TrialState::Leased(lease) => {
                    lease.granted = now;
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
            changes: Vec::new(),
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
        self.workers.insert(
            id,
            Worker {
                name,
                device,
                slots: slots.max(1),
                last_seen: now,
                leases: BTreeSet::new(),
                told_finished: false,
                memory: None,
            },
        );
    }

    fn worker_mut(&mut self, id: WorkerId, now: Instant) -> Result<&mut Worker, StateError> {
        let w = self
            .workers
            .get_mut(&id)
            .ok_or(StateError::UnknownWorker(id))?;
        w.last_seen = now;
        Ok(w)
    }

    /// Leases the next pending trial to `worker`, if it has a free slot.
    pub fn lease(&mut self, worker: WorkerId, now: Instant) -> Result<LeaseOutcome, StateError> {
        let finished = self.is_finished();
        let retry_after = self.config.retry_after;
        let w = self.worker_mut(worker, now)?;
        if finished {
            w.told_finished = true;
            return Ok(LeaseOutcome::Finished);
        }
        if w.leases.len() >= w.slots as usize {
            return Ok(LeaseOutcome::Wait(retry_after));
        }
        let Some(i) = self.pending.pop_front() else {
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
        let old = t.checkpoint.replace(Box::new(checkpoint));
        self.changes.push(Change::Trial(trial));
        Ok(old
            .filter(|o| Some(&o.file) != t.checkpoint.as_ref().map(|c| &c.file))
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
        self.renew(i, now);
        let epoch = metrics.epoch;
        let list = &mut self.trials[i].epochs;
        match list.binary_search_by_key(&epoch, |m| m.epoch) {
            Ok(j) if list[j] == metrics => return Ok(()),
            Ok(j) => list[j] = metrics,
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
                let mut result = result;
                // Usually the result's learning curve is the one reported epoch by epoch; only
                // epochs that differ are rewritten.
                for m in &result.epochs {
                    let accepted = t.epochs.binary_search_by_key(&m.epoch, |e| e.epoch);
                    if accepted.map_or(true, |j| t.epochs[j] != *m) {
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
        self.trials[i].failures.push(AttemptFailure {
            attempt: lease.attempt,
            worker: lease.worker,
            kind,
            message: message.clone(),
        });
        if kind == FailureKind::WorkerShutdown {
            // The worker is leaving: nobody needs to tell it that the sweep ended.
            if let Some(w) = self.workers.get_mut(&lease.worker) {
                w.told_finished = true;
            }
        }
        let t = &mut self.trials[i];
        let policy = kind.policy();
        if policy == Retry::Counted {
            t.counted_attempts += 1;
        }
        let retry = match policy {
            Retry::Never => false,
            Retry::Counted => t.counted_attempts < max_attempts,
            Retry::Free => true,
        };
        if retry {
            t.state = TrialState::Pending;
            t.keep_checkpointed_epochs();
            let id = t.spec.id;
            let after = t.checkpoint.as_ref().map_or(0, |c| c.epoch);
            self.changes.push(Change::Supersede { trial: id, after });
            let mut effects = self.end_lease(i, lease.worker, false);
            self.pending.push_front(i);
            effects.push(Effect::Requeued(id));
            effects
        } else {
            t.state = TrialState::Failed {
                reason: if policy == Retry::Never {
                    message
                } else {
                    format!("failed {} times; last: {message}", t.counted_attempts)
                },
            };
            self.end_lease(i, lease.worker, true)
        }
    }

    fn end_lease(&mut self, i: usize, worker: WorkerId, terminal: bool) -> Vec<Effect> {
        self.leased.remove(&i);
        let id = self.trials[i].spec.id;
        if let Some(w) = self.workers.get_mut(&worker) {
            w.leases.remove(&id);
        }
        self.changes.push(Change::Trial(id));
        let mut effects = Vec::new();
        if terminal {
            self.terminal += 1;
            if let Some(c) = self.trials[i].checkpoint.take() {
                effects.push(Effect::DropCheckpoint(c.file));
            }
            effects.push(Effect::TrialEnded(id));
            if self.is_finished() {
                effects.push(Effect::SweepFinished);
            }
        }
        effects
    }

    /// Cancels the trials `selector` names that have not ended: pending ones fail at once, leased
    /// ones too (their workers learn it at their next heartbeat, whose answer revokes the
    /// lease). Returns the effects and the names that matched nothing.
    pub fn cancel(&mut self, selector: &CancelSelector) -> (Vec<Effect>, Vec<String>) {
        let mut unknown = Vec::new();
        let mut chosen: BTreeSet<usize> = BTreeSet::new();
        let mut names: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut experiments: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, t) in self.trials.iter().enumerate() {
            names.entry(t.spec.name.as_str()).or_default().push(i);
            experiments
                .entry(t.spec.experiment.as_str())
                .or_default()
                .push(i);
        }
        for name in &selector.trials {
            let by_id = name
                .parse::<TrialId>()
                .ok()
                .and_then(|id| self.index.get(&id).copied());
            match (by_id, names.get(name.as_str())) {
                (Some(i), _) => {
                    chosen.insert(i);
                }
                (None, Some(list)) => chosen.extend(list.iter().copied()),
                (None, None) => unknown.push(name.clone()),
            }
        }
        for name in &selector.experiments {
            match experiments.get(name.as_str()) {
                Some(list) => chosen.extend(list.iter().copied()),
                None => unknown.push(name.clone()),
            }
        }
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
        self.pending.retain(|i| !cancelled.contains(i));
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
            };
            match worker {
                Some(w) => effects.extend(self.end_lease(i, w, true)),
                None => {
                    let id = self.trials[i].spec.id;
                    self.changes.push(Change::Trial(id));
                    self.terminal += 1;
                    if let Some(c) = self.trials[i].checkpoint.take() {
                        effects.push(Effect::DropCheckpoint(c.file));
                    }
                    effects.push(Effect::TrialEnded(id));
                    if self.is_finished() {
                        effects.push(Effect::SweepFinished);
                    }
                }
            }
        }
        (effects, unknown)
    }

    /// True when every worker seen since `since` has been told the sweep is finished.
    pub fn all_workers_told(&self, since: Instant) -> bool {
        self.workers
            .values()
            .filter(|w| w.last_seen >= since)
            .all(|w| w.told_finished)
    }
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
