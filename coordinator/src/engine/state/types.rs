//! The scheduling state's data: trials and their states, workers, leases, checkpoints, and what
//! transitions return (outcomes, changes to commit, effects to perform, refusals).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use thin_vec::ThinVec;

use sweep_common::failure::{AttemptFailure, Unfit};
use sweep_common::{
    ConfusionMatrix, DatasetKind, EpochMetrics, FailureKind, FinalMetrics, TrialId, TrialSpec,
    WorkerId,
};

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

/// A lease as its holder names it: every write under a lease is fenced by all three (only the
/// trial's live lease, held by that worker under that attempt, writes to the trial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseKey {
    /// The worker holding it.
    pub worker: WorkerId,
    /// The trial leased.
    pub trial: TrialId,
    /// The attempt (1-based).
    pub attempt: u32,
}

impl LeaseKey {
    /// The lease of `trial` under `attempt`, held by `worker`.
    pub fn new(worker: WorkerId, trial: TrialId, attempt: u32) -> LeaseKey {
        LeaseKey {
            worker,
            trial,
            attempt,
        }
    }
}

/// Where a trial is, with what that state owns: the checkpoints a trial resumes from while it
/// may still train, the final weights and result once it succeeded. A combination the states
/// cannot express (a result beside a pending state, a checkpoint kept after success) cannot be
/// written.
#[derive(Debug, Clone, PartialEq)]
pub enum TrialState {
    /// Waiting for a worker.
    Pending {
        /// What its next attempt resumes from.
        checkpoints: Checkpoints,
        /// Its place when it was queued ahead of the others (a failed attempt's trial, a
        /// promoted one): the queue's sequence number, kept so that a restart queues it in the
        /// same place. `None`: in grid order.
        ahead: Option<i64>,
    },
    /// Being trained under a lease.
    Leased {
        /// The lease (boxed: only the trials being trained hold one, and a million ended
        /// trials should not each carry its 56 bytes; see `Trial`'s size below).
        lease: Box<Lease>,
        /// Checkpoints of this attempt and those before it.
        checkpoints: Checkpoints,
        /// Path of the final weights, relative to the output folder, once uploaded.
        weights: Option<String>,
    },
    /// Ended with a result.
    Succeeded(Box<Success>),
    /// Stopped early by the experiment's stopping rule (issue 17): it keeps its curve and
    /// checkpoints, and resumes from them when promoted (by the rule or an operator).
    Stopped {
        /// The epoch (rung) of the decision that stopped it.
        epoch: u32,
        /// Why, in the rule's words.
        reason: String,
        /// What a promotion resumes from.
        checkpoints: Checkpoints,
    },
    /// Ended without a result, for good (until an operator retries it).
    Failed {
        /// Why.
        reason: String,
        /// Whether an operator cancelled it (`coordinator retry --failed` leaves those).
        cancelled: bool,
        /// What a retry resumes from.
        checkpoints: Checkpoints,
    },
}

impl TrialState {
    /// A trial that was never leased.
    pub const NEW: TrialState = TrialState::Pending {
        checkpoints: Checkpoints::NONE,
        ahead: None,
    };

    /// The checkpoints it resumes from (none once it succeeded: see [`Success::checkpoint`]).
    pub fn checkpoints(&self) -> Option<&Checkpoints> {
        match self {
            TrialState::Pending { checkpoints, .. }
            | TrialState::Leased { checkpoints, .. }
            | TrialState::Stopped { checkpoints, .. }
            | TrialState::Failed { checkpoints, .. } => Some(checkpoints),
            TrialState::Succeeded(_) => None,
        }
    }

    pub(super) fn checkpoints_mut(&mut self) -> Option<&mut Checkpoints> {
        match self {
            TrialState::Pending { checkpoints, .. }
            | TrialState::Leased { checkpoints, .. }
            | TrialState::Stopped { checkpoints, .. }
            | TrialState::Failed { checkpoints, .. } => Some(checkpoints),
            TrialState::Succeeded(_) => None,
        }
    }

    /// Takes its checkpoints, to carry them into the next state.
    pub(super) fn take_checkpoints(&mut self) -> Checkpoints {
        self.checkpoints_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The live lease, if leased.
    pub fn lease(&self) -> Option<&Lease> {
        match self {
            TrialState::Leased { lease, .. } => Some(lease),
            _ => None,
        }
    }

    /// The success, if it succeeded.
    pub fn success(&self) -> Option<&Success> {
        match self {
            TrialState::Succeeded(s) => Some(s),
            _ => None,
        }
    }

    /// The final weights' path (relative to the output folder), once uploaded.
    pub fn weights(&self) -> Option<&str> {
        match self {
            TrialState::Leased { weights, .. } => weights.as_deref(),
            TrialState::Succeeded(s) => s.weights.as_deref(),
            _ => None,
        }
    }
}

/// What a trial that succeeded owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    /// The attempt whose result was recorded.
    pub attempt: u32,
    /// The worker that produced it.
    pub worker: WorkerId,
    /// Seconds from that attempt's lease to its result.
    pub wall_seconds: f64,
    /// What it measured at the end but its confusion matrices (its curve is the trial's
    /// `epochs`).
    pub scores: Scores,
    /// Its final confusion matrices, boxed because a million trials hold none: once archived
    /// they are dropped here (`None`) and the database has them.
    pub matrices: Option<Box<Matrices>>,
    /// Path of the final weights, relative to the output folder, once uploaded (a rerun trains
    /// a trial again whose weights are missing).
    pub weights: Option<String>,
    /// Set once its curve and confusion matrices live only in the state database (see
    /// `Scheduler::archive`): what the summary still needs of the curve.
    pub archived: Option<CurveTotals>,
    /// The latest checkpoint it made (with `checkpoint_every` > 0), kept so that an edited
    /// grid file asking for more epochs continues it from there (`lineage`); the one before
    /// it is dropped at success.
    pub checkpoint: Option<Box<Checkpoint>>,
}

impl Success {
    /// What a trial that succeeded with `result` (a worker's, or one read back) owns, but for
    /// who produced it and when.
    pub fn split(result: FinalMetrics) -> (Scores, Option<Box<Matrices>>) {
        let scores = Scores {
            train_accuracy: result.train_accuracy,
            test_accuracy: result.test_accuracy,
            train_seconds: result.train_seconds,
            dataset_images: result.dataset_images,
        };
        let matrices = Matrices {
            train: result.train_confusion,
            test: result.test_confusion,
        };
        (scores, Some(Box::new(matrices)))
    }

    /// The final metrics as the worker reported them; `None` once archived (the database has
    /// them).
    pub fn final_metrics(&self) -> Option<FinalMetrics> {
        let m = self.matrices.as_deref()?;
        Some(FinalMetrics {
            train_accuracy: self.scores.train_accuracy,
            test_accuracy: self.scores.test_accuracy,
            train_confusion: m.train.clone(),
            test_confusion: m.test.clone(),
            train_seconds: self.scores.train_seconds,
            dataset_images: self.scores.dataset_images,
        })
    }
}

/// A succeeded trial's final metrics but its confusion matrices (what [`FinalMetrics`] holds
/// inline, the matrices aside).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Final accuracy (%) on its training subset.
    pub train_accuracy: f64,
    /// Final accuracy (%) on the test split.
    pub test_accuracy: f64,
    /// Seconds the worker spent on the trial, data loading excluded.
    pub train_seconds: f64,
    /// Images in the dataset file it trained from.
    pub dataset_images: u64,
}

/// A succeeded trial's final confusion matrices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrices {
    /// On its training subset.
    pub train: ConfusionMatrix,
    /// On the test split.
    pub test: ConfusionMatrix,
}

/// What the status needs of a curve: its length and its measured epoch times. An archived
/// trial keeps only this of its curve (16 bytes instead of 40 per epoch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CurveTotals {
    /// Epochs in the curve.
    pub epochs: u32,
    /// Of them, those with a measured time (finite, >= 0).
    pub timed: u32,
    /// The sum of those times in whole nanoseconds (saturating).
    pub nanos: u64,
}

impl CurveTotals {
    /// The totals of `curve`.
    pub fn of(curve: &[EpochMetrics]) -> CurveTotals {
        let mut t = CurveTotals::default();
        curve.iter().for_each(|m| t.add(m));
        t
    }

    /// Counts epoch `m` in.
    pub fn add(&mut self, m: &EpochMetrics) {
        self.epochs = self.epochs.saturating_add(1);
        if let Some(n) = nanos(m.seconds) {
            self.nanos = self.nanos.saturating_add(n);
            self.timed += 1;
        }
    }
}

/// An epoch time in whole nanoseconds (saturating; `None` when it is not a finite time >= 0).
pub fn nanos(seconds: f64) -> Option<u64> {
    // A finite, non-negative f64 converts saturating at u64::MAX (584 years).
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1e9).round() as u64)
}

/// The latest checkpoint of a trial and the one before it (kept in case the latest proves
/// unusable).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoints {
    /// The latest, if any.
    pub latest: Option<Box<Checkpoint>>,
    /// The one before it.
    pub previous: Option<Box<Checkpoint>>,
}

impl Checkpoints {
    /// No checkpoint.
    pub const NONE: Checkpoints = Checkpoints {
        latest: None,
        previous: None,
    };

    /// Epochs the latest holds (0 without one).
    pub fn epoch(&self) -> u32 {
        self.latest.as_ref().map_or(0, |c| c.epoch)
    }
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
    pub epochs: ThinVec<EpochMetrics>,
    /// Every failed attempt.
    pub failures: ThinVec<AttemptFailure>,
    /// Checkpoints found unusable.
    pub set_aside: ThinVec<SetAside>,
    /// Epochs the current (or successful) attempt took over from a checkpoint.
    pub resumed_from: u32,
}

// Every trial of a sweep stays in memory (a million of them in the 1 GiB of issue 20): what each
// costs inline is checked at compile time, so that a new field is a decision. The lease is boxed
// and the lists are thin (one pointer each) because only a few trials use them at a time.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<Trial>() <= 336);
    assert!(std::mem::size_of::<TrialState>() <= 56);
    // 128 bytes is an allocator size class (184, before the matrices were boxed, took 192).
    assert!(std::mem::size_of::<Success>() <= 128);
};

impl Trial {
    /// A trial that was never leased.
    pub fn new(spec: TrialSpec) -> Self {
        Trial {
            spec,
            state: TrialState::NEW,
            attempts: 0,
            counted_attempts: 0,
            unstarted_attempts: 0,
            epochs: ThinVec::new(),
            failures: ThinVec::new(),
            set_aside: ThinVec::new(),
            resumed_from: 0,
        }
    }

    /// Drops the epochs a new attempt will train again (those after the checkpoint).
    pub(super) fn keep_checkpointed_epochs(&mut self) {
        let kept = self.state.checkpoints().map_or(0, Checkpoints::epoch);
        self.epochs.retain(|m| m.epoch <= kept);
    }

    /// True when the current attempt reported an epoch of its own (beyond the checkpoint it
    /// resumed from).
    pub(super) fn started(&self) -> bool {
        self.epochs
            .last()
            .is_some_and(|m| m.epoch > self.resumed_from)
    }

    /// The latest checkpoint it holds.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.state.checkpoints()?.latest.as_deref()
    }

    /// The checkpoint before the latest.
    pub fn previous_checkpoint(&self) -> Option<&Checkpoint> {
        self.state.checkpoints()?.previous.as_deref()
    }

    /// Its curve's length and measured times (an archived trial's from what it kept).
    pub fn curve_totals(&self) -> CurveTotals {
        match self.state.success().and_then(|s| s.archived) {
            Some(t) => t,
            None => CurveTotals::of(&self.epochs),
        }
    }

    /// Epochs in its curve (an archived trial's curve is in the database only).
    pub fn epoch_count(&self) -> usize {
        match self.state.success().and_then(|s| s.archived) {
            Some(t) => t.epochs as usize,
            None => self.epochs.len(),
        }
    }

    /// True when its curve and confusion matrices live only in the state database.
    pub fn is_archived(&self) -> bool {
        self.state.success().is_some_and(|s| s.archived.is_some())
    }

    /// Drops its curve and confusion matrices from memory, keeping what the status needs
    /// (`totals`, its curve's); only a succeeded trial's. Returns false when it was not archived.
    pub(crate) fn archive_as(&mut self, totals: CurveTotals) -> bool {
        let TrialState::Succeeded(s) = &mut self.state else {
            return false;
        };
        if s.archived.is_some() {
            return false;
        }
        s.archived = Some(totals);
        s.matrices = None;
        self.epochs = ThinVec::new();
        true
    }

    /// What it measured at the end but its confusion matrices, once it succeeded.
    pub fn scores(&self) -> Option<&Scores> {
        self.state.success().map(|s| &s.scores)
    }

    /// True once the trial succeeded, failed for good or was stopped (a stopped trial may be
    /// promoted later, as a failed one may be retried).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.state,
            TrialState::Succeeded(_) | TrialState::Failed { .. } | TrialState::Stopped { .. }
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
    pub(super) fn new(name: String, device: String, slots: u32, last_seen: Instant) -> Worker {
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
    pub(super) fn mark_unfit(&mut self, scope: Unfit, dataset: DatasetKind, message: &str) {
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
// Made once per lease and moved straight into the reply: the trial's size (its hyperparameters
// grew with the model and optimiser keys) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
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
    Succeeded(sweep_common::TrialResult),
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
    /// A trial was added while the sweep runs (a configuration TPE proposed): its row is
    /// inserted, before any other change to it.
    NewTrial(TrialId),
    /// An operator promoted the trial to more epochs (`coordinator promote --epochs`): its
    /// content id changed from `from` to `to` (its row is renamed before any other change of
    /// the batch is written, and every change naming `from` names `to`), and its lineage's
    /// promotion is recorded.
    Renamed {
        /// Its id before.
        from: TrialId,
        /// Its id now.
        to: TrialId,
    },
    /// The stopping rule of experiment `experiment` (its index among the experiments that
    /// have one) took its decision number `seq`.
    Decision {
        /// The experiment's index in the scheduler's stopping state.
        experiment: usize,
        /// The decision's place in that experiment's journal (0-based).
        seq: usize,
    },
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
    /// An operator's promotion to more epochs that cannot be done (`coordinator promote
    /// --epochs`): nothing was changed.
    #[error("cannot promote trial {trial:?} to {epochs} epochs: {reason}")]
    CannotPromote {
        /// The trial named (or a seed of its configuration), by name.
        trial: String,
        /// The epochs asked for.
        epochs: u32,
        /// Why, in words.
        reason: String,
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
    /// Stopped early by the stopping rule.
    pub stopped: usize,
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
