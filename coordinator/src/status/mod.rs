//! The sweep's status as people see it: trials by state, what each worker trains, throughput,
//! ETA and the best trial so far. One [`Snapshot`] feeds the terminal's status block, the
//! `Status` RPC (`coordinator status`) and the live web view.
//!
//! Pure: [`snapshot`] and [`detailed`] read the scheduler's state and a [`Clock`], do no I/O,
//! and are unit-tested. [`forecast`] estimates times, [`text`] renders for terminals, [`wire`]
//! converts to and from `sweep.v1`, [`tables`] lays out the live accuracy tables with the
//! report's code, [`client`] asks a running coordinator.

pub mod client;
pub mod forecast;
pub mod tables;
pub mod text;
pub mod wire;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use sweep_common::EpochMetrics;
use sweep_common::grid::Grid;

use crate::state::{FailureKind, Scheduler, Trial, TrialState};

/// When the coordinator started, and now.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// When the coordinator started serving.
    pub started: Instant,
    /// The moment the snapshot describes.
    pub now: Instant,
}

/// Where a trial is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for a worker.
    Pending,
    /// Being trained under a lease.
    Running,
    /// Ended with a result.
    Succeeded,
    /// Ended without one, for good.
    Failed,
}

impl Phase {
    /// Its name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
        }
    }
}

/// The sweep's status at one moment. Its JSON form (field names as here) is what
/// `coordinator status --json` prints and `GET /api/status` serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The sweep's name.
    pub sweep: String,
    /// True once every trial has ended.
    pub finished: bool,
    /// Seconds since the coordinator started.
    pub elapsed_seconds: f64,
    /// Trials by state.
    pub counts: TrialCounts,
    /// Epochs reported so far (ended trials and running attempts).
    pub epochs_done: u64,
    /// Epochs of the whole sweep.
    pub epochs_total: u64,
    /// Epochs per minute the running trials train at; `None` when unknown.
    pub throughput_epochs_per_minute: Option<f64>,
    /// Seconds until every trial has ended; `None` when unknown.
    pub eta_seconds: Option<f64>,
    /// The succeeded trial with the highest test accuracy.
    pub best: Option<Best>,
    /// Registered workers, by name.
    pub workers: Vec<WorkerRow>,
    /// Every trial, in grid order.
    pub trials: Vec<TrialRow>,
    /// Per experiment, its accuracy tables (only in a detailed snapshot).
    pub experiments: Vec<ExperimentRow>,
    /// Something the operator should act on (storage failing, no worker for a while).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Failed attempts so far by kind, retried ones included, in order of first failure (for
    /// `/metrics`). Not in the JSON nor in `sweep.v1` yet: empty when decoded from either.
    #[serde(skip)]
    pub attempt_failures: Vec<(FailureKind, u64)>,
}

/// Trials by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialCounts {
    /// Waiting for a worker.
    pub pending: u32,
    /// Being trained.
    pub running: u32,
    /// Ended with a result.
    pub succeeded: u32,
    /// Ended without one.
    pub failed: u32,
    /// All trials.
    pub total: u32,
}

impl TrialCounts {
    /// Trials that ended, either way.
    pub fn done(&self) -> u32 {
        self.succeeded + self.failed
    }
}

/// The best trial so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// Its name.
    pub trial: String,
    /// Its experiment.
    pub experiment: String,
    /// Its final test accuracy (%).
    pub test_accuracy: f64,
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRow {
    /// Its id.
    pub id: String,
    /// The name it gave.
    pub name: String,
    /// Its device, in words.
    pub device: String,
    /// Trials it trains at once.
    pub slots: u32,
    /// False once it has not called for longer than a lease TTL.
    pub alive: bool,
    /// Seconds since it last called.
    pub seen_seconds_ago: f64,
    /// The trials it trains now.
    pub running: Vec<RunningTrial>,
    /// Its device's memory in use and in all (bytes), from its last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<(u64, u64)>,
    /// Why it takes no more trials, or none of some dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A trial a worker trains now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningTrial {
    /// The trial's name.
    pub trial: String,
    /// Epochs reported by this attempt.
    pub epoch: u32,
    /// The trial's epochs.
    pub epochs: u32,
}

/// A trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRow {
    /// Its content id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its experiment.
    pub experiment: String,
    /// Where it is.
    pub state: Phase,
    /// The latest lease's attempt number (0 while never leased).
    pub attempt: u32,
    /// The worker training it (running) or that trained it (succeeded), by name.
    pub worker: Option<String>,
    /// Epochs reported by the current (or successful) attempt.
    pub epoch: u32,
    /// The trial's epochs.
    pub epochs: u32,
    /// Final test accuracy (%) once succeeded, else the last epoch's.
    pub test_accuracy: Option<f64>,
    /// Final training accuracy (%) once succeeded, else the last epoch's.
    pub train_accuracy: Option<f64>,
    /// Seconds until it ends; `None` when ended or unknown.
    pub eta_seconds: Option<f64>,
    /// Why it failed for good.
    pub failure: Option<String>,
    /// Every epoch of the current (or successful) attempt (only in a detailed snapshot).
    pub history: Vec<EpochPoint>,
}

/// One epoch of a trial.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    /// 1-based.
    pub epoch: u32,
    /// Mean training loss; `None` when it was not finite.
    pub train_loss: Option<f64>,
    /// Percent.
    pub train_accuracy: f64,
    /// Percent.
    pub test_accuracy: f64,
    /// Seconds the epoch took on the worker.
    pub seconds: f64,
}

impl From<&EpochMetrics> for EpochPoint {
    fn from(m: &EpochMetrics) -> Self {
        EpochPoint {
            epoch: m.epoch,
            train_loss: finite(m.train_loss),
            train_accuracy: m.train_accuracy,
            test_accuracy: m.test_accuracy,
            seconds: m.seconds,
        }
    }
}

/// An experiment's live tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentRow {
    /// Its name.
    pub name: String,
    /// Its title, if the grid gives one.
    pub title: Option<String>,
    /// Its accuracy tables, laid out as in the report.
    pub tables: Vec<TableView>,
}

/// A table of text cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableView {
    /// Caption above it.
    pub caption: String,
    /// Column headers.
    pub header: Vec<String>,
    /// Body rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
    /// Per column: true when it holds numbers.
    pub numeric: Vec<bool>,
}

/// `Some(x)` when `x` is finite.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn phase(t: &Trial) -> Phase {
    match t.state {
        TrialState::Pending => Phase::Pending,
        TrialState::Leased(_) => Phase::Running,
        TrialState::Succeeded { .. } => Phase::Succeeded,
        TrialState::Failed { .. } => Phase::Failed,
    }
}

/// The status of the sweep `sweep` at `clock.now`: no per-epoch history, no tables.
pub fn snapshot(sweep: &str, s: &Scheduler, clock: Clock) -> Snapshot {
    build(sweep, s, clock, true)
}

/// [`snapshot`] without the per-trial rows: what the progress line and the terminal's status
/// block show, made once a second without copying every trial's name.
pub fn summary(sweep: &str, s: &Scheduler, clock: Clock) -> Snapshot {
    build(sweep, s, clock, false)
}

fn build(sweep: &str, s: &Scheduler, clock: Clock, rows: bool) -> Snapshot {
    let now = clock.now;
    let estimates = forecast::Estimates::new(s.trials());
    let worker_name = |id| s.workers().get(&id).map(|w| w.name.clone());
    let trials: Vec<TrialRow> = s
        .trials()
        .iter()
        .take(if rows { usize::MAX } else { 0 })
        .map(|t| {
            let (worker, failure) = match &t.state {
                TrialState::Pending => (None, None),
                TrialState::Leased(l) => (worker_name(l.worker), None),
                TrialState::Succeeded { worker, .. } => (worker_name(*worker), None),
                TrialState::Failed { reason, .. } => (None, Some(reason.clone())),
            };
            let last = t.epochs.last();
            let (test, train) = match &t.result {
                Some(r) => (finite(r.test_accuracy), finite(r.train_accuracy)),
                None => (
                    last.and_then(|m| finite(m.test_accuracy)),
                    last.and_then(|m| finite(m.train_accuracy)),
                ),
            };
            TrialRow {
                id: t.spec.id.to_string(),
                name: t.spec.name.clone(),
                experiment: t.spec.experiment.clone(),
                state: phase(t),
                attempt: t.attempts,
                worker,
                epoch: count(t.epochs.len()),
                epochs: t.spec.params.epochs,
                test_accuracy: test,
                train_accuracy: train,
                eta_seconds: estimates.remaining_seconds(t).filter(|_| !t.is_terminal()),
                failure,
                history: Vec::new(),
            }
        })
        .collect();

    let mut workers: Vec<WorkerRow> = s
        .workers()
        .iter()
        .map(|(id, w)| WorkerRow {
            id: id.to_string(),
            name: w.name.clone(),
            device: w.device.clone(),
            slots: w.slots,
            alive: now.saturating_duration_since(w.last_seen) <= s.config().lease_ttl,
            seen_seconds_ago: now.saturating_duration_since(w.last_seen).as_secs_f64(),
            memory: w.memory,
            problem: w.problem(),
            running: s
                .leased_by(*id)
                .into_iter()
                .map(|t| RunningTrial {
                    trial: t.spec.name.clone(),
                    epoch: count(t.epochs.len()),
                    epochs: t.spec.params.epochs,
                })
                .collect(),
        })
        .collect();
    workers.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));

    let c = s.counts();
    let best = s
        .trials()
        .iter()
        .filter(|t| matches!(t.state, TrialState::Succeeded { .. }))
        .filter_map(|t| {
            let a = t.result.as_ref().and_then(|r| finite(r.test_accuracy))?;
            Some((t, a))
        })
        .fold(None::<(&Trial, f64)>, |best, (t, a)| match best {
            Some((_, b)) if b >= a => best,
            _ => Some((t, a)),
        })
        .map(|(t, a)| Best {
            trial: t.spec.name.clone(),
            experiment: t.spec.experiment.clone(),
            test_accuracy: a,
        });
    let mut attempt_failures: Vec<(FailureKind, u64)> = Vec::new();
    for kind in s.trials().iter().flat_map(|t| &t.failures).map(|f| f.kind) {
        match attempt_failures.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => attempt_failures.push((kind, 1)),
        }
    }
    let f = forecast::forecast(s, &estimates, now);
    let warnings: Vec<String> = storage_warnings(s, clock)
        .into_iter()
        .chain(idle_warning(s, clock))
        .chain(unrunnable_warning(s, clock))
        .collect();
    let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
    Snapshot {
        sweep: sweep.to_owned(),
        finished: s.is_finished(),
        elapsed_seconds: now.saturating_duration_since(clock.started).as_secs_f64(),
        counts: TrialCounts {
            pending: count(c.pending),
            running: count(c.leased),
            succeeded: count(c.succeeded),
            failed: count(c.failed),
            total: count(s.trials().len()),
        },
        epochs_done: s.trials().iter().map(|t| t.epochs.len() as u64).sum(),
        epochs_total: s
            .trials()
            .iter()
            .map(|t| u64::from(t.spec.params.epochs))
            .sum(),
        throughput_epochs_per_minute: f.throughput_epochs_per_minute,
        eta_seconds: f.eta_seconds,
        best,
        workers,
        trials,
        experiments: Vec::new(),
        warning,
        attempt_failures,
    }
}

/// One warning per kind of file the coordinator cannot store now (its disk is full, a folder
/// is not writable): what, since when, the latest error, and what to do.
fn storage_warnings(s: &Scheduler, clock: Clock) -> Vec<String> {
    s.storage_failures()
        .map(|(what, f)| {
            let since = clock.now.saturating_duration_since(f.since);
            format!(
                "the coordinator cannot store {} ({} failures over {}); last: {}; workers keep \
                 what they trained and try again: free space or make the folder writable",
                what.what(),
                f.count,
                humantime::format_duration(std::time::Duration::from_secs(since.as_secs())),
                f.message
            )
        })
        .collect()
}

/// Says so when trials wait and no worker has called for longer than a lease TTL (since the
/// coordinator started, or since the last worker was heard from): the sweep is stalled, not
/// slow.
fn idle_warning(s: &Scheduler, clock: Clock) -> Option<String> {
    if s.is_finished()
        || s.workers().values().any(|w| {
            !w.leases.is_empty()
                && clock.now.saturating_duration_since(w.last_seen) <= s.config().lease_ttl
        })
    {
        return None;
    }
    let last = s
        .workers()
        .values()
        .map(|w| w.last_seen)
        .chain(std::iter::once(clock.started))
        .max()
        .unwrap_or(clock.started);
    let idle = clock.now.saturating_duration_since(last);
    if idle <= s.config().lease_ttl {
        return None;
    }
    let c = s.counts();
    Some(format!(
        "no worker has called for {}; {} trials are waiting: start workers (worker --coordinator URL) and the sweep goes on",
        humantime::format_duration(std::time::Duration::from_secs(idle.as_secs())),
        c.pending + c.leased
    ))
}

/// Says so when trials of some dataset wait and no live worker can run them (each said it
/// cannot load that dataset, or takes no trials at all): they wait for a worker that can.
fn unrunnable_warning(s: &Scheduler, clock: Clock) -> Option<String> {
    let live: Vec<_> = s
        .workers()
        .values()
        .filter(|w| clock.now.saturating_duration_since(w.last_seen) <= s.config().lease_ttl)
        .collect();
    if live.is_empty() {
        return None;
    }
    let stuck: Vec<String> = s
        .pending_by_dataset()
        .filter(|&(d, _)| !live.iter().any(|w| w.can_run(d)))
        .map(|(d, n)| format!("{n} {d}"))
        .collect();
    (!stuck.is_empty()).then(|| {
        format!(
            "no live worker can run the pending trials ({}): see the workers' problems; start a worker that can, or cancel them",
            stuck.join(", ")
        )
    })
}

/// The status with every trial's per-epoch history and the experiments' accuracy tables: what
/// the live web view shows.
pub fn detailed(grid: &Grid, s: &Scheduler, clock: Clock) -> Snapshot {
    let mut snap = snapshot(&grid.name, s, clock);
    for (row, t) in snap.trials.iter_mut().zip(s.trials()) {
        row.history = t.epochs.iter().map(EpochPoint::from).collect();
    }
    snap.experiments = tables::experiments(grid, s);
    snap
}

#[cfg(test)]
mod tests;
