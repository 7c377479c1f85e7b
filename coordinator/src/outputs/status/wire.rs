//! Conversions between the [`Snapshot`] and its `sweep.v1` form (`StatusResponse`), both ways:
//! the service encodes, `coordinator status` decodes; and between a [`View`] and the
//! `StatusRequest` that asks for it. Decoding never panics: a missing message, an unknown state
//! or a name that is too long is a [`DecodeError`] naming the field.

use sweep_common::EpochMetrics;
use sweep_proto::DecodeError;
use sweep_proto::v1;

use super::{
    Best, BudgetRow, EpochPoint, ExperimentRow, Page, Phase, Query, RunningTrial, Snapshot,
    TableView, TrialCounts, TrialRow, View, WorkerRow,
};

/// A state on the wire.
fn phase_to_wire(p: Phase) -> v1::TrialState {
    match p {
        Phase::Pending => v1::TrialState::Pending,
        Phase::Running => v1::TrialState::Running,
        Phase::Succeeded => v1::TrialState::Succeeded,
        Phase::Failed => v1::TrialState::Failed,
        Phase::Stopped => v1::TrialState::Stopped,
    }
}

/// A state field: `None` when unspecified.
fn optional_phase(field: &'static str, state: i32) -> Result<Option<Phase>, DecodeError> {
    match v1::TrialState::try_from(state) {
        Ok(v1::TrialState::Pending) => Ok(Some(Phase::Pending)),
        Ok(v1::TrialState::Running) => Ok(Some(Phase::Running)),
        Ok(v1::TrialState::Succeeded) => Ok(Some(Phase::Succeeded)),
        Ok(v1::TrialState::Failed) => Ok(Some(Phase::Failed)),
        Ok(v1::TrialState::Stopped) => Ok(Some(Phase::Stopped)),
        Ok(v1::TrialState::Unspecified) => Ok(None),
        Err(_) => Err(DecodeError::Invalid {
            field,
            message: format!("unknown value {state}"),
        }),
    }
}

fn phase(state: i32) -> Result<Phase, DecodeError> {
    optional_phase("trials.state", state)?.ok_or(DecodeError::Missing("trials.state"))
}

fn counts_to_wire(c: &TrialCounts) -> v1::TrialCounts {
    v1::TrialCounts {
        pending: c.pending,
        running: c.running,
        succeeded: c.succeeded,
        failed: c.failed,
        stopped: c.stopped,
        total: c.total,
    }
}

fn counts_from_wire(c: &v1::TrialCounts) -> TrialCounts {
    TrialCounts {
        pending: c.pending,
        running: c.running,
        succeeded: c.succeeded,
        failed: c.failed,
        stopped: c.stopped,
        total: c.total,
    }
}

impl From<&View> for v1::StatusRequest {
    fn from(v: &View) -> Self {
        v1::StatusRequest {
            detail: v.detail,
            trials: v.trials.as_ref().map(|q| v1::TrialQuery {
                offset: q.offset,
                limit: q.limit,
                state: q
                    .state
                    .map_or(v1::TrialState::Unspecified, phase_to_wire)
                    .into(),
                experiment: q.experiment.clone(),
                trial: q.trial.clone(),
            }),
        }
    }
}

/// A name a query gives, checked.
fn query_name(field: &'static str, name: Option<&String>) -> Result<Option<String>, DecodeError> {
    match name {
        Some(n) => match Query::check_name(field, n) {
            Ok(()) => Ok(Some(n.clone())),
            Err(message) => Err(DecodeError::Invalid { field, message }),
        },
        None => Ok(None),
    }
}

impl TryFrom<&v1::StatusRequest> for View {
    type Error = DecodeError;

    fn try_from(r: &v1::StatusRequest) -> Result<Self, Self::Error> {
        let trials = match &r.trials {
            Some(q) => Some(Query {
                offset: q.offset,
                limit: Query::page_size(q.limit),
                state: optional_phase("trials.state", q.state)?,
                experiment: query_name("trials.experiment", q.experiment.as_ref())?,
                trial: query_name("trials.trial", q.trial.as_ref())?,
                importance: false,
            }),
            None => None,
        };
        Ok(View {
            detail: r.detail,
            trials,
        })
    }
}

/// A number that must be finite and not negative (times, percentages).
/// A budget as the service sent it; every number checked.
fn budget_from_wire(b: v1::SweepBudget) -> Result<BudgetRow, DecodeError> {
    Ok(BudgetRow {
        max_hours: number("budget.max_hours", b.max_hours)?,
        spent_hours: number("budget.spent_hours", b.spent_hours)?,
        committed_hours: number("budget.committed_hours", b.committed_hours)?,
        stopped: b.stopped,
    })
}

fn number(field: &'static str, x: f64) -> Result<f64, DecodeError> {
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(DecodeError::Invalid {
            field,
            message: format!("{x} is not a finite number >= 0"),
        })
    }
}

fn optional(field: &'static str, x: Option<f64>) -> Result<Option<f64>, DecodeError> {
    x.map(|x| number(field, x)).transpose()
}

impl From<&Snapshot> for v1::StatusResponse {
    fn from(s: &Snapshot) -> Self {
        let c = &s.counts;
        v1::StatusResponse {
            sweep: s.sweep.clone(),
            finished: s.finished,
            elapsed_seconds: s.elapsed_seconds,
            counts: Some(counts_to_wire(c)),
            epochs_done: s.epochs_done,
            epochs_total: s.epochs_total,
            throughput_epochs_per_minute: s.throughput_epochs_per_minute,
            eta_seconds: s.eta_seconds,
            best: s.best.as_ref().map(|b| v1::BestTrial {
                trial: b.trial.clone(),
                experiment: b.experiment.clone(),
                test_accuracy: b.test_accuracy,
            }),
            workers: s.workers.iter().map(worker_to_wire).collect(),
            trials: s.trials.iter().map(trial_to_wire).collect(),
            warning: s.warning.clone(),
            page: s.page.map(|p| v1::TrialPage {
                offset: p.offset,
                limit: p.limit,
                matched: p.matched,
            }),
            experiments_total: s.experiments_total,
            budget: s.budget.map(|b| v1::SweepBudget {
                max_hours: b.max_hours,
                spent_hours: b.spent_hours,
                committed_hours: b.committed_hours,
                stopped: b.stopped,
            }),
            experiments: s
                .experiments
                .iter()
                .map(|e| v1::ExperimentStatus {
                    name: e.name.clone(),
                    title: e.title.clone(),
                    counts: Some(counts_to_wire(&e.counts)),
                    note: e.note.clone(),
                    tables: e
                        .tables
                        .iter()
                        .map(|t| v1::StatusTable {
                            caption: t.caption.clone(),
                            header: t.header.clone(),
                            rows: t
                                .rows
                                .iter()
                                .map(|r| v1::TableRow { cells: r.clone() })
                                .collect(),
                            numeric: t.numeric.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn worker_to_wire(w: &WorkerRow) -> v1::WorkerStatus {
    v1::WorkerStatus {
        worker_id: w.id.clone(),
        name: w.name.clone(),
        device: w.device.clone(),
        slots: w.slots,
        alive: w.alive,
        seen_seconds_ago: w.seen_seconds_ago,
        running: w
            .running
            .iter()
            .map(|r| v1::RunningTrial {
                trial: r.trial.clone(),
                epoch: r.epoch,
                epochs: r.epochs,
            })
            .collect(),
        memory_used_bytes: w.memory.map(|m| m.0),
        memory_total_bytes: w.memory.map(|m| m.1),
        problem: w.problem.clone(),
    }
}

fn trial_to_wire(t: &TrialRow) -> v1::TrialStatus {
    v1::TrialStatus {
        trial_id: t.id.clone(),
        name: t.name.clone(),
        experiment: t.experiment.clone(),
        state: phase_to_wire(t.state).into(),
        attempt: t.attempt,
        worker: t.worker.clone(),
        epoch: t.epoch,
        epochs: t.epochs,
        test_accuracy: t.test_accuracy,
        train_accuracy: t.train_accuracy,
        eta_seconds: t.eta_seconds,
        failure: t.failure.clone(),
        history: t
            .history
            .iter()
            .map(|p| {
                v1::EpochMetrics::from(&EpochMetrics {
                    epoch: p.epoch,
                    train_loss: p.train_loss.unwrap_or(f64::NAN),
                    train_accuracy: p.train_accuracy,
                    test_accuracy: p.test_accuracy,
                    seconds: p.seconds,
                    scalars: Default::default(),
                })
            })
            .collect(),
    }
}

impl TryFrom<&v1::StatusResponse> for Snapshot {
    type Error = DecodeError;

    fn try_from(r: &v1::StatusResponse) -> Result<Self, Self::Error> {
        let c = r.counts.as_ref().ok_or(DecodeError::Missing("counts"))?;
        let best = match &r.best {
            Some(b) => Some(Best {
                trial: b.trial.clone(),
                experiment: b.experiment.clone(),
                test_accuracy: number("best.test_accuracy", b.test_accuracy)?,
            }),
            None => None,
        };
        Ok(Snapshot {
            sweep: r.sweep.clone(),
            finished: r.finished,
            elapsed_seconds: number("elapsed_seconds", r.elapsed_seconds)?,
            counts: counts_from_wire(c),
            epochs_done: r.epochs_done,
            epochs_total: r.epochs_total,
            throughput_epochs_per_minute: optional(
                "throughput_epochs_per_minute",
                r.throughput_epochs_per_minute,
            )?,
            eta_seconds: optional("eta_seconds", r.eta_seconds)?,
            best,
            workers: r
                .workers
                .iter()
                .map(worker_from_wire)
                .collect::<Result<_, _>>()?,
            trials: r
                .trials
                .iter()
                .map(trial_from_wire)
                .collect::<Result<_, _>>()?,
            page: r.page.map(|p| Page {
                offset: p.offset,
                limit: p.limit,
                matched: p.matched,
            }),
            experiments_total: r.experiments_total,
            warning: r.warning.clone(),
            budget: r.budget.map(budget_from_wire).transpose()?,
            importance: None,
            experiments: r
                .experiments
                .iter()
                .map(|e| ExperimentRow {
                    name: e.name.clone(),
                    title: e.title.clone(),
                    counts: e.counts.as_ref().map(counts_from_wire).unwrap_or_default(),
                    note: e.note.clone(),
                    tables: e
                        .tables
                        .iter()
                        .map(|t| TableView {
                            caption: t.caption.clone(),
                            header: t.header.clone(),
                            rows: t.rows.iter().map(|r| r.cells.clone()).collect(),
                            numeric: t.numeric.clone(),
                        })
                        .collect(),
                })
                .collect(),
            // Not in `sweep.v1` yet.
            attempt_failures: Vec::new(),
            leases_granted: 0,
        })
    }
}

fn worker_from_wire(w: &v1::WorkerStatus) -> Result<WorkerRow, DecodeError> {
    Ok(WorkerRow {
        id: w.worker_id.clone(),
        name: w.name.clone(),
        device: w.device.clone(),
        slots: w.slots,
        alive: w.alive,
        seen_seconds_ago: number("workers.seen_seconds_ago", w.seen_seconds_ago)?,
        running: w
            .running
            .iter()
            .map(|r| RunningTrial {
                trial: r.trial.clone(),
                epoch: r.epoch,
                epochs: r.epochs,
            })
            .collect(),
        memory: w.memory_used_bytes.zip(w.memory_total_bytes),
        problem: w.problem.clone(),
    })
}

fn trial_from_wire(t: &v1::TrialStatus) -> Result<TrialRow, DecodeError> {
    Ok(TrialRow {
        id: t.trial_id.clone(),
        name: t.name.clone(),
        experiment: t.experiment.clone(),
        state: phase(t.state)?,
        attempt: t.attempt,
        worker: t.worker.clone(),
        epoch: t.epoch,
        epochs: t.epochs,
        test_accuracy: optional("trials.test_accuracy", t.test_accuracy)?,
        train_accuracy: optional("trials.train_accuracy", t.train_accuracy)?,
        eta_seconds: optional("trials.eta_seconds", t.eta_seconds)?,
        failure: t.failure.clone(),
        history: t
            .history
            .iter()
            .map(history_point)
            .collect::<Result<_, _>>()?,
        params: std::collections::BTreeMap::new(),
    })
}

/// A point of a trial's history. Its loss may be missing (a non-finite loss an older version
/// recorded), which a worker's report may not: the rest is checked as a report is.
fn history_point(m: &v1::EpochMetrics) -> Result<EpochPoint, DecodeError> {
    let known = v1::EpochMetrics {
        train_loss: if m.train_loss.is_nan() {
            0.0
        } else {
            m.train_loss
        },
        ..m.clone()
    };
    let mut point = EpochPoint::from(&EpochMetrics::try_from(&known)?);
    if m.train_loss.is_nan() {
        point.train_loss = None;
    }
    Ok(point)
}
