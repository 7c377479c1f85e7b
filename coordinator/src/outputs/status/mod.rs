//! The sweep's status as people see it: trials by state, what each worker trains, throughput,
//! ETA and the best trials so far. One [`Snapshot`] feeds the terminal's status block, the
//! `Status` RPC (`coordinator status`) and the live web view.
//!
//! A snapshot is a summary whose size does not grow with the number of trials: the counts, the
//! workers, a few trials (every trial of a small sweep; else the running ones and the best,
//! [`ALL_TRIALS_UP_TO`] and the other bounds below), per experiment its counts and bounded
//! accuracy tables, and curves of at most [`HISTORY_POINTS`] points. Per-trial detail comes a
//! page at a time on request ([`Query`]).
//!
//! Pure: [`summary`], [`snapshot`] and [`detailed`] read the scheduler's state, the running
//! totals of [`index`] and a [`Clock`], do no I/O, and are unit-tested; they cost
//! O(rows listed + running trials + workers + experiments), not O(trials). [`forecast`]
//! estimates times, [`text`] renders for terminals, [`wire`] converts to and from `sweep.v1`,
//! [`tables`] lays out the live accuracy tables with the report's code, [`client`] asks a running
//! coordinator.

pub mod client;
pub mod forecast;
pub mod index;
pub mod tables;
pub mod text;
pub mod wire;

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sweep_common::grid::Grid;
use sweep_common::{EpochMetrics, TrialId};

use crate::report::compare;
use crate::report::importance::Importance;
use crate::state::{FailureKind, Scheduler, Trial, TrialState};

pub use index::Index;

/// A sweep of at most this many trials lists every one of them in its summary.
pub const ALL_TRIALS_UP_TO: usize = 100;
/// Otherwise the summary lists at most this many running trials (the first in grid order) ...
pub const RUNNING_SHOWN: usize = 20;
/// ... the best trials of the sweep (highest final test accuracy) ...
pub const BEST_SHOWN: usize = 10;
/// ... and the best of each experiment it shows.
pub const BEST_PER_EXPERIMENT: usize = 3;
/// Experiments a detailed snapshot describes at most (the first, in grid order).
pub const EXPERIMENTS_SHOWN: usize = 20;
/// Points of a trial's history at most: longer ones are thinned evenly (the last one kept).
pub const HISTORY_POINTS: usize = 200;
/// Trials a page lists when the query does not say.
pub const PAGE_DEFAULT: u32 = 50;
/// Trials a page lists at most.
pub const MAX_PAGE: u32 = 500;
/// Longest experiment or trial name a query may give.
pub const MAX_QUERY_NAME: usize = 1024;

/// When the coordinator started, and now.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// When the coordinator started serving.
    pub started: Instant,
    /// The moment the snapshot describes.
    pub now: Instant,
}

/// Where a trial is: the same states, by the same names, as `results.json` gives.
pub use sweep_common::results::Status as Phase;

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
    /// Trials, in grid order: with a [`Query`], its page (see `page`); else every trial of a sweep
    /// of at most [`ALL_TRIALS_UP_TO`], or the first [`RUNNING_SHOWN`] running ones, the
    /// [`BEST_SHOWN`] best, and the [`BEST_PER_EXPERIMENT`] best of each experiment shown.
    pub trials: Vec<TrialRow>,
    /// The page `trials` is, when a [`Query`] asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
    /// Per experiment (at most [`EXPERIMENTS_SHOWN`]), its counts and accuracy tables (only in a
    /// detailed snapshot).
    pub experiments: Vec<ExperimentRow>,
    /// Experiments in the sweep (`experiments` may show fewer).
    #[serde(default)]
    pub experiments_total: u32,
    /// Something the operator should act on (storage failing, no worker for a while).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Where the sweep stands against `[sweep] max_hours`; `None` without a budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetRow>,
    /// The importance a [`Query`] asked for (not in `sweep.v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<ImportanceRow>,
    /// Failed attempts so far by kind, retried ones included, in order of first failure (for
    /// `/metrics`). Not in the JSON nor in `sweep.v1` yet: empty when decoded from either.
    #[serde(skip)]
    pub attempt_failures: Vec<(FailureKind, u64)>,
    /// Leases granted so far (for `/metrics`). Not in the JSON nor in `sweep.v1` yet: 0 when
    /// decoded from either.
    #[serde(skip)]
    pub leases_granted: u64,
}

/// `[sweep] max_hours` and the estimate the lease gate judges by (`engine::state::Budget`), in
/// device-hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetRow {
    /// The budget.
    pub max_hours: f64,
    /// Every epoch measured so far.
    pub spent_hours: f64,
    /// Spent, plus what the running trials still take.
    pub committed_hours: f64,
    /// Trials the budget stopped before they ran.
    pub stopped: u32,
}

impl From<crate::engine::state::Budget> for BudgetRow {
    fn from(b: crate::engine::state::Budget) -> Self {
        BudgetRow {
            max_hours: b.max_seconds / 3600.0,
            spent_hours: b.spent_seconds / 3600.0,
            committed_hours: b.committed_seconds / 3600.0,
            stopped: count(b.stopped),
        }
    }
}

/// How much of an experiment's final test accuracy's variance each hyperparameter it varies
/// explains ([`crate::report::importance`], as the report computes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportanceRow {
    /// The experiment.
    pub experiment: String,
    /// The hyperparameters its succeeded trials vary, in the grid's axis order.
    pub params: Vec<ParamLabel>,
    /// Their importance, in that order; `None` when it cannot be computed (see `note`).
    pub importance: Option<Importance>,
    /// Why there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A hyperparameter as the views name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamLabel {
    /// Its key (`learning_rate`).
    pub key: String,
    /// Its label (`Learning rate`).
    pub label: String,
    /// True when its values are numbers.
    pub numeric: bool,
}

/// Which page of trials a snapshot lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Matching trials skipped before it.
    pub offset: u32,
    /// Trials it lists at most.
    pub limit: u32,
    /// Trials that match the query, in all.
    pub matched: u32,
}

/// What a status request asks for besides the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// The histories of the trials listed and the experiments' counts and accuracy tables.
    pub detail: bool,
    /// A page of trials instead of the summary's own.
    pub trials: Option<Query>,
}

/// A page of trials: those in `state` of `experiment` (or the one named `trial`), in grid order,
/// `limit` of them after the first `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Matching trials to skip.
    pub offset: u32,
    /// Trials to list at most (1..=[`MAX_PAGE`]).
    pub limit: u32,
    /// Only trials in this state.
    pub state: Option<Phase>,
    /// Only trials of this experiment.
    pub experiment: Option<String>,
    /// Only the trial with this name or id.
    pub trial: Option<String>,
    /// With `experiment`: the importance of the hyperparameters it varies for the final test
    /// accuracy, over all its succeeded trials (a scan of them; see [`Snapshot::importance`]).
    pub importance: bool,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            offset: 0,
            limit: PAGE_DEFAULT,
            state: None,
            experiment: None,
            trial: None,
            importance: false,
        }
    }
}

impl Query {
    /// `limit` as a page size: [`PAGE_DEFAULT`] for 0, at most [`MAX_PAGE`].
    pub fn page_size(limit: u32) -> u32 {
        if limit == 0 {
            PAGE_DEFAULT
        } else {
            limit.min(MAX_PAGE)
        }
    }

    /// Checks a name the query gives: not longer than [`MAX_QUERY_NAME`], no control character.
    pub fn check_name(field: &'static str, name: &str) -> Result<(), String> {
        if name.len() > MAX_QUERY_NAME {
            return Err(format!(
                "{field} is {} bytes long; at most {MAX_QUERY_NAME}",
                name.len()
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(format!("{field} holds a control character"));
        }
        Ok(())
    }
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
    /// Stopped early by a stopping rule.
    #[serde(default)]
    pub stopped: u32,
    /// All trials.
    pub total: u32,
}

impl TrialCounts {
    /// Trials that ended, any way.
    pub fn done(&self) -> u32 {
        self.succeeded + self.failed + self.stopped
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
    /// The epochs of the current (or successful) attempt, at most [`HISTORY_POINTS`] of them
    /// (only in a detailed snapshot).
    pub history: Vec<EpochPoint>,
    /// Its hyperparameters by key, numbers as numbers and choices as their text (only in a
    /// detailed snapshot; not in `sweep.v1`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
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

/// An experiment's counts and live tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentRow {
    /// Its name.
    pub name: String,
    /// Its title, if the grid gives one.
    pub title: Option<String>,
    /// Its trials by state.
    #[serde(default)]
    pub counts: TrialCounts,
    /// Its accuracy tables, laid out as in the report (bounded: see [`tables`]).
    pub tables: Vec<TableView>,
    /// Why its tables are missing or cut, if they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
        TrialState::Pending { .. } => Phase::Pending,
        TrialState::Leased { .. } => Phase::Running,
        TrialState::Succeeded(_) => Phase::Succeeded,
        TrialState::Failed { .. } => Phase::Failed,
        TrialState::Stopped { .. } => Phase::Stopped,
    }
}

/// The summary of the sweep `sweep` at `clock.now` without trial rows: what the progress line
/// and the terminal's status block show.
pub fn summary(sweep: &str, s: &Scheduler, index: &Index, clock: Clock) -> Snapshot {
    build(sweep, s, index, clock, Vec::new())
}

/// The status of the sweep `sweep` at `clock.now` as `view` asks: the summary's trials or a
/// page of them, with their histories and the experiments' counts when `view.detail` (the
/// accuracy tables are [`tables`]' to fill in, off the state owner's task).
pub fn snapshot(sweep: &str, s: &Scheduler, index: &Index, clock: Clock, view: &View) -> Snapshot {
    let (rows, page) = match &view.trials {
        Some(q) => {
            let (rows, page) = select(s, index, q);
            (rows, Some(page))
        }
        None => (featured(index), None),
    };
    let mut snap = build(sweep, s, index, clock, rows);
    snap.page = page;
    if let Some(q) = view.trials.as_ref().filter(|q| q.importance) {
        snap.importance = q.experiment.as_deref().map(|e| importance(s, index, e));
    }
    if view.detail {
        for row in &mut snap.trials {
            let trial = row.id.parse::<TrialId>().ok().and_then(|id| s.trial(id));
            if let Some(t) = trial {
                row.history = history(&t.epochs);
                row.params = t
                    .spec
                    .params
                    .values()
                    .map(|(p, v)| (p.key().to_owned(), compare::cell(v)))
                    .collect();
            }
        }
        let only = view.trials.as_ref().and_then(|q| q.experiment.as_deref());
        snap.experiments = experiments(index, only);
    }
    snap
}

/// The rows of detailed snapshot `snap` whose history is in the state database only (archived
/// trials: `state::archive`), as (row, trial); [`set_history`] fills them in, off the state
/// owner's task.
pub fn stored_histories(s: &Scheduler, snap: &Snapshot) -> Vec<(usize, TrialId)> {
    snap.trials
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let id = row.id.parse::<TrialId>().ok()?;
            s.trial(id)?.is_archived().then_some((i, id))
        })
        .collect()
}

/// Sets `row`'s history from its trial's whole curve (as a detailed snapshot shows it).
pub fn set_history(row: &mut TrialRow, curve: &[EpochMetrics]) {
    row.history = history(curve);
}

/// [`snapshot`] with the accuracy tables filled in: what the live web view shows.
pub fn detailed(grid: &Grid, s: &Scheduler, index: &Index, clock: Clock, view: &View) -> Snapshot {
    let view = View {
        detail: true,
        ..view.clone()
    };
    let mut snap = snapshot(&grid.name, s, index, clock, &view);
    let input = tables::input(&tables::experiments_of(grid), s, index, &snap);
    tables::fill(&mut snap, &tables::make(input));
    snap
}

/// The importance of the hyperparameters experiment `name` varies for the final test accuracy of
/// its succeeded trials: O(its succeeded trials).
fn importance(s: &Scheduler, index: &Index, name: &str) -> ImportanceRow {
    let trials: Vec<&Trial> = match index.experiment(name) {
        Some((x, _)) => index
            .matching(Some(Phase::Succeeded), Some(x))
            .filter_map(|pos| s.trials().get(pos))
            .collect(),
        None => Vec::new(),
    };
    let params = compare::varied_among(trials.iter().map(|t| &t.spec.params));
    let accuracy = |t: &Trial| t.scores().map_or(f64::NAN, |r| r.test_accuracy);
    let result = compare::importance_over(
        &params,
        trials.iter().map(|t| (&t.spec.params, accuracy(t))),
    );
    let (importance, note) = match result {
        Ok(i) => (Some(i), None),
        Err(e) => (None, Some(e.to_string())),
    };
    ImportanceRow {
        experiment: name.to_owned(),
        params: params
            .into_iter()
            .map(|p| ParamLabel {
                key: p.key().to_owned(),
                label: p.def().label.to_owned(),
                numeric: compare::numeric(p),
            })
            .collect(),
        importance,
        note,
    }
}

/// The summary's trials: every trial of a small sweep; else the first running ones, the best of
/// the sweep and the best of each experiment shown. Positions in grid order.
fn featured(index: &Index) -> Vec<usize> {
    let total = index.totals().counts.total as usize;
    if total <= ALL_TRIALS_UP_TO {
        return (0..total).collect();
    }
    let mut rows: Vec<usize> = index.running().take(RUNNING_SHOWN).collect();
    rows.extend(index.best(None));
    for x in 0..index.experiments().len().min(EXPERIMENTS_SHOWN) {
        rows.extend(index.best(Some(x)));
    }
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The page `q` asks for: positions in grid order, and where it is.
fn select(s: &Scheduler, index: &Index, q: &Query) -> (Vec<usize>, Page) {
    let limit = Query::page_size(q.limit);
    let page = |rows: Vec<usize>, matched: u32| {
        let rows = rows
            .into_iter()
            .skip(q.offset as usize)
            .take(limit as usize)
            .collect();
        (
            rows,
            Page {
                offset: q.offset,
                limit,
                matched,
            },
        )
    };
    let experiment = match q.experiment.as_deref() {
        Some(name) => match index.experiment(name) {
            Some((x, _)) => Some(x),
            None => return page(Vec::new(), 0),
        },
        None => None,
    };
    if let Some(name) = q.trial.as_deref() {
        // By id, else by name (a scan: names are not indexed, and asking for one trial is rare).
        let by_id = name.parse::<TrialId>().ok().and_then(|id| s.position(id));
        let found: Vec<usize> = match by_id {
            Some(pos) => vec![pos],
            None => s
                .trials()
                .iter()
                .enumerate()
                .filter(|(_, t)| t.spec.name == name)
                .map(|(pos, _)| pos)
                .collect(),
        };
        let found: Vec<usize> = found
            .into_iter()
            .filter(|&pos| {
                q.state.is_none_or(|st| index.phase(pos) == Some(st))
                    && experiment.is_none_or(|x| index.experiment_of(pos) == x)
            })
            .collect();
        let matched = u32::try_from(found.len()).unwrap_or(u32::MAX);
        return page(found, matched);
    }
    let matched = index.matched(q.state, experiment);
    let rows = if q.state == Some(Phase::Running) && experiment.is_none() {
        index
            .running()
            .skip(q.offset as usize)
            .take(limit as usize)
            .collect()
    } else {
        index
            .matching(q.state, experiment)
            .skip(q.offset as usize)
            .take(limit as usize)
            .collect()
    };
    (
        rows,
        Page {
            offset: q.offset,
            limit,
            matched,
        },
    )
}

/// `epochs` as points, at most [`HISTORY_POINTS`]: evenly thinned, the last one kept.
fn history(epochs: &[EpochMetrics]) -> Vec<EpochPoint> {
    let n = epochs.len();
    if n <= HISTORY_POINTS {
        return epochs.iter().map(EpochPoint::from).collect();
    }
    (0..HISTORY_POINTS)
        .map(|i| &epochs[(i * (n - 1)) / (HISTORY_POINTS - 1)])
        .map(EpochPoint::from)
        .collect()
}

/// The experiments a detailed snapshot describes: the one named `only`, else the first
/// [`EXPERIMENTS_SHOWN`]; their counts, titles, and no tables yet.
fn experiments(index: &Index, only: Option<&str>) -> Vec<ExperimentRow> {
    let row = |e: &index::Experiment| ExperimentRow {
        name: e.name.clone(),
        title: None,
        counts: e.totals.counts,
        tables: Vec::new(),
        note: None,
    };
    match only {
        Some(name) => index
            .experiment(name)
            .map(|(_, e)| row(e))
            .into_iter()
            .collect(),
        None => index
            .experiments()
            .iter()
            .take(EXPERIMENTS_SHOWN)
            .map(row)
            .collect(),
    }
}

/// One trial's row.
fn trial_row(s: &Scheduler, index: &Index, pos: usize) -> Option<TrialRow> {
    let t = s.trials().get(pos)?;
    let worker_name = |id| s.workers().get(&id).map(|w| w.name.clone());
    let (worker, failure) = match &t.state {
        TrialState::Pending { .. } => (None, None),
        TrialState::Leased { lease, .. } => (worker_name(lease.worker), None),
        TrialState::Succeeded(s) => (worker_name(s.worker), None),
        TrialState::Failed { reason, .. } => (None, Some(reason.clone())),
        TrialState::Stopped { epoch, reason, .. } => {
            (None, Some(format!("stopped at epoch {epoch}: {reason}")))
        }
    };
    let last = t.epochs.last();
    let (test, train) = match t.state.success() {
        Some(s) => (
            finite(s.scores.test_accuracy),
            finite(s.scores.train_accuracy),
        ),
        None => (
            last.and_then(|m| finite(m.test_accuracy)),
            last.and_then(|m| finite(m.train_accuracy)),
        ),
    };
    Some(TrialRow {
        id: t.spec.id.to_string(),
        name: t.spec.name.clone(),
        experiment: t.spec.experiment.clone(),
        state: phase(t),
        attempt: t.attempts,
        worker,
        epoch: count(t.epoch_count()),
        epochs: t.spec.params.epochs,
        test_accuracy: test,
        train_accuracy: train,
        eta_seconds: forecast::remaining_seconds(index, t, pos).filter(|_| !t.is_terminal()),
        failure,
        history: Vec::new(),
        params: BTreeMap::new(),
    })
}

fn build(sweep: &str, s: &Scheduler, index: &Index, clock: Clock, rows: Vec<usize>) -> Snapshot {
    let now = clock.now;
    let trials: Vec<TrialRow> = rows
        .into_iter()
        .filter_map(|pos| trial_row(s, index, pos))
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

    let totals = index.totals();
    let best = index.best(None).next().and_then(|pos| {
        let t = s.trials().get(pos)?;
        Some(Best {
            trial: t.spec.name.clone(),
            experiment: t.spec.experiment.clone(),
            test_accuracy: finite(t.state.success()?.scores.test_accuracy)?,
        })
    });
    let f = forecast::forecast(s, index, now);
    let warnings: Vec<String> = storage_warnings(s, clock)
        .into_iter()
        .chain(idle_warning(s, &totals.counts, clock))
        .chain(unrunnable_warning(s, clock))
        .collect();
    let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
    Snapshot {
        sweep: sweep.to_owned(),
        finished: s.is_finished(),
        elapsed_seconds: now.saturating_duration_since(clock.started).as_secs_f64(),
        counts: totals.counts,
        epochs_done: totals.epochs_done,
        epochs_total: totals.epochs_total,
        throughput_epochs_per_minute: f.throughput_epochs_per_minute,
        eta_seconds: f.eta_seconds,
        best,
        workers,
        trials,
        page: None,
        experiments: Vec::new(),
        experiments_total: count(index.experiments().len()),
        warning,
        budget: s.budget().map(BudgetRow::from),
        importance: None,
        attempt_failures: index.attempt_failures().to_vec(),
        leases_granted: index.leases_granted(),
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
fn idle_warning(s: &Scheduler, counts: &TrialCounts, clock: Clock) -> Option<String> {
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
    Some(format!(
        "no worker has called for {}; {} trials are waiting: start workers (worker --coordinator URL) and the sweep goes on",
        humantime::format_duration(std::time::Duration::from_secs(idle.as_secs())),
        counts.pending + counts.running
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

#[cfg(test)]
mod scale_tests;
#[cfg(test)]
mod tests;
