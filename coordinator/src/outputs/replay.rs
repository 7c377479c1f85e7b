//! `coordinator replay`: a grid's stopping rule (`[experiment.stopping]`) run over the recorded
//! curves of a finished full sweep, in virtual time, to measure the rule without training.
//!
//! The grid's experiment gives the trials and the rule; the sweep's `results.json` gives each
//! trial's curve (the rule's metric after every epoch) and the seconds each epoch took. Trials
//! are matched by their content id, so results of another grid (another experiment, other
//! hyperparameters, another split) are refused, naming a trial they lack. Trials that differ
//! only in `seed` are one configuration, as the stopping rules judge them. The replay itself is
//! [`sweep_common::search::replay`]; this module turns the files into its input and its
//! outcome into what `coordinator replay` prints: the trials stopped (rung and reason), the
//! epochs trained against the full grid's, and the best configuration found against the full
//! sweep's best (both the mean over the configuration's seeds of the last epoch's value). Pure:
//! no I/O, unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use sweep_common::grid::{Experiment, Grid, Param};
use sweep_common::results::{Results, Status};
use sweep_common::search::replay::{Recorded, replay};
use sweep_common::search::stopping::Action;
use sweep_common::search::{Rule, StoppingSpec};

/// Why a replay cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// `--experiment NAME` names no experiment of the grid.
    #[error("{grid}: no experiment {name:?}; the grid has {known}")]
    UnknownExperiment {
        /// The grid file.
        grid: String,
        /// The name asked for.
        name: String,
        /// The grid's experiments, listed.
        known: String,
    },
    /// The experiment asked for has no stopping rule.
    #[error(
        "{grid}: experiment {experiment:?} has no [experiment.stopping] table: replay runs a \
         grid's stopping rule (README.md, \"Early stopping and sampled search\")"
    )]
    NoRule {
        /// The grid file.
        grid: String,
        /// The experiment.
        experiment: String,
    },
    /// No experiment of the grid has a stopping rule.
    #[error(
        "{grid}: no experiment has an [experiment.stopping] table: replay runs a grid's \
         stopping rule (README.md, \"Early stopping and sampled search\")"
    )]
    NoRules {
        /// The grid file.
        grid: String,
    },
    /// The results lack trials of the experiment.
    #[error(
        "{results} has no result for {missing} of the {of} trials of experiment {experiment:?} \
         of {grid} (the first: {first:?}): are they the results of another grid, or of an \
         earlier version of this one?"
    )]
    Missing {
        /// The results file.
        results: String,
        /// The grid file.
        grid: String,
        /// The experiment.
        experiment: String,
        /// Trials without a result.
        missing: usize,
        /// Trials of the experiment.
        of: usize,
        /// The first trial without one, by name.
        first: String,
    },
    /// A trial has not ended: the sweep is not finished.
    #[error(
        "{results}: trial {trial:?} is {status}: replay needs a finished sweep whose every trial \
         succeeded or failed (a stopped trial's curve ends early: replay the sweep run without \
         its stopping rule)"
    )]
    Unfinished {
        /// The results file.
        results: String,
        /// The trial.
        trial: String,
        /// Its state.
        status: Status,
    },
    /// No trial of the experiment recorded an epoch.
    #[error(
        "{results}: no trial of experiment {experiment:?} recorded an epoch: no curve to replay"
    )]
    NoCurves {
        /// The results file.
        results: String,
        /// The experiment.
        experiment: String,
    },
}

/// A configuration's final value: the mean over its seeds of the last epoch's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Best {
    /// The configuration: the values of the keys that vary in the experiment, seed aside.
    pub configuration: String,
    /// The mean over its seeds.
    pub value: f64,
    /// Its rank among the configurations of the full sweep, 1 for the best.
    pub rank: usize,
}

/// A trial the rule stopped for good.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stopped {
    /// The trial's name.
    pub trial: String,
    /// Its configuration.
    pub configuration: String,
    /// The epoch of the rung it stopped at.
    pub rung: u32,
    /// Why.
    pub reason: String,
}

/// What a replay of one experiment found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    /// The experiment.
    pub experiment: String,
    /// The rule and its parameters, as the grid file writes them.
    pub rule: String,
    /// The metric it compares.
    pub metric: &'static str,
    /// Its better direction.
    pub mode: &'static str,
    /// Workers simulated.
    pub workers: usize,
    /// Trials of the experiment.
    pub trials: usize,
    /// Configurations (trials that differ only in `seed` are one).
    pub configurations: usize,
    /// The trials stopped for good, in the experiment's order.
    pub stopped: Vec<Stopped>,
    /// Promotions (a stopped configuration resumed) among the decisions.
    pub promotions: usize,
    /// Epochs trained under the rule.
    pub epochs_trained: u64,
    /// Epochs of the full grid.
    pub epochs_full: u64,
    /// Virtual seconds until the last worker is idle, under the rule.
    pub seconds: f64,
    /// The same for the full grid on the same workers.
    pub seconds_full: f64,
    /// The best configuration the rule trained to its end.
    pub best: Option<Best>,
    /// The best configuration of the full sweep.
    pub best_full: Option<Best>,
}

impl Replay {
    /// Epochs trained as a percentage of the full grid's.
    pub fn epochs_percent(&self) -> f64 {
        100.0 * self.epochs_trained as f64 / (self.epochs_full as f64).max(1.0)
    }
}

/// The experiments of `grid` to replay: `only`, or every one with a stopping rule.
pub fn experiments<'g>(
    grid: &'g Grid,
    grid_file: &str,
    only: Option<&str>,
) -> Result<Vec<&'g Experiment>, ReplayError> {
    match only {
        Some(name) => {
            let Some(e) = grid.experiments.iter().find(|e| e.name == name) else {
                let known: Vec<String> = grid
                    .experiments
                    .iter()
                    .map(|e| format!("{:?}", e.name))
                    .collect();
                return Err(ReplayError::UnknownExperiment {
                    grid: grid_file.to_owned(),
                    name: name.to_owned(),
                    known: known.join(", "),
                });
            };
            if e.stopping.is_none() {
                return Err(ReplayError::NoRule {
                    grid: grid_file.to_owned(),
                    experiment: e.name.clone(),
                });
            }
            Ok(vec![e])
        }
        None => {
            let with: Vec<&Experiment> = grid
                .experiments
                .iter()
                .filter(|e| e.stopping.is_some())
                .collect();
            if with.is_empty() {
                return Err(ReplayError::NoRules {
                    grid: grid_file.to_owned(),
                });
            }
            Ok(with)
        }
    }
}

/// The workers a sweep's results name (the distinct `worker` of its trials), at least one.
pub fn recorded_workers(results: &Results<'_>) -> usize {
    let names: BTreeSet<&str> = results
        .trials
        .iter()
        .filter_map(|t| t.worker.as_deref())
        .collect();
    names.len().max(1)
}

/// The configuration of each trial of `experiment`: the values of the keys that vary among its
/// trials, `seed` aside, as `key=value` words in the table's order.
fn configurations(experiment: &Experiment) -> Vec<String> {
    let first = experiment.trials.first();
    let varying: Vec<Param> = Param::ALL
        .into_iter()
        .filter(|&p| p != Param::Seed)
        .filter(|&p| {
            first.is_some_and(|f| {
                let v = f.params.get(p).identity();
                experiment
                    .trials
                    .iter()
                    .any(|t| t.params.get(p).identity() != v)
            })
        })
        .collect();
    experiment
        .trials
        .iter()
        .map(|t| {
            let words: Vec<String> = varying
                .iter()
                .map(|&p| format!("{}={}", p.key(), t.params.get(p).display()))
                .collect();
            if words.is_empty() {
                experiment.name.clone()
            } else {
                words.join(" ")
            }
        })
        .collect()
}

/// The recorded trials of `experiment` in `results`, in the experiment's order, as the replay
/// takes them (trial and configuration keyed by name).
pub fn recorded(
    experiment: &Experiment,
    spec: &StoppingSpec,
    results: &Results<'_>,
    results_file: &str,
    grid_file: &str,
) -> Result<Vec<Recorded<String>>, ReplayError> {
    let by_id: BTreeMap<_, _> = results.trials.iter().map(|t| (t.id, t)).collect();
    let missing: Vec<&str> = experiment
        .trials
        .iter()
        .filter(|t| !by_id.contains_key(&t.id))
        .map(|t| t.name.as_str())
        .collect();
    if let Some(first) = missing.first() {
        return Err(ReplayError::Missing {
            results: results_file.to_owned(),
            grid: grid_file.to_owned(),
            experiment: experiment.name.clone(),
            missing: missing.len(),
            of: experiment.trials.len(),
            first: (*first).to_owned(),
        });
    }
    let configs = configurations(experiment);
    let mut order: BTreeMap<&str, u64> = BTreeMap::new();
    let mut out = Vec::with_capacity(experiment.trials.len());
    for (spec_trial, config) in experiment.trials.iter().zip(&configs) {
        let next = order.len() as u64;
        let position = *order.entry(config.as_str()).or_insert(next);
        // Present: checked above.
        let Some(t) = by_id.get(&spec_trial.id) else {
            continue;
        };
        if !matches!(t.status, Status::Succeeded | Status::Failed) {
            return Err(ReplayError::Unfinished {
                results: results_file.to_owned(),
                trial: spec_trial.name.clone(),
                status: t.status,
            });
        }
        out.push(Recorded {
            trial: spec_trial.name.clone(),
            config: config.clone(),
            order: position,
            values: t
                .epochs
                .iter()
                .map(|e| spec.objective.metric.of(e))
                .collect(),
            seconds: t.epochs.iter().map(|e| e.seconds).collect(),
        });
    }
    if out.iter().all(|r| r.values.is_empty()) {
        return Err(ReplayError::NoCurves {
            results: results_file.to_owned(),
            experiment: experiment.name.clone(),
        });
    }
    Ok(out)
}

/// The rule as the grid file writes it.
fn rule_text(rule: Rule) -> String {
    match rule {
        Rule::Asha {
            min_epochs,
            reduction,
        } => format!("asha (min_epochs = {min_epochs}, reduction = {reduction})"),
        Rule::Hyperband {
            min_epochs,
            reduction,
            brackets,
        } => format!(
            "hyperband (min_epochs = {min_epochs}, reduction = {reduction}, brackets = {brackets})"
        ),
        Rule::Median {
            min_epochs,
            min_trials,
        } => format!("median (min_epochs = {min_epochs}, min_trials = {min_trials})"),
    }
}

/// Seconds of epoch `epoch` of `trial`, as the replay counts them (a missing or unusable
/// entry is one second).
fn epoch_seconds(trial: &Recorded<String>, epoch: usize) -> f64 {
    trial
        .seconds
        .get(epoch)
        .copied()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0)
}

/// Virtual seconds of the full grid on `workers` workers: every trial to its last epoch, leased
/// in the experiment's order to the first free worker (the lower one on a tie), as the replay
/// does when nothing stops.
fn full_seconds(trials: &[Recorded<String>], workers: usize) -> f64 {
    let mut order: Vec<usize> = (0..trials.len()).collect();
    order.sort_by(|&a, &b| trials[a].order.cmp(&trials[b].order).then(a.cmp(&b)));
    let mut free = vec![0.0f64; workers.max(1)];
    for i in order {
        let t = &trials[i];
        if t.values.is_empty() {
            continue;
        }
        let seconds: f64 = (0..t.values.len()).map(|e| epoch_seconds(t, e)).sum();
        // The first free worker; `free` is never empty.
        if let Some(slot) = free.iter_mut().min_by(|a, b| a.total_cmp(b)) {
            *slot += seconds;
        }
    }
    free.into_iter().fold(0.0, f64::max)
}

/// Every configuration's final value (the mean over its seeds of their last epoch's value),
/// best first, for the configurations whose every trial has a curve.
fn ranking(spec: &StoppingSpec, trials: &[Recorded<String>]) -> Vec<(String, f64)> {
    let mut sums: BTreeMap<&str, (f64, u32, bool)> = BTreeMap::new();
    for t in trials {
        let e = sums.entry(t.config.as_str()).or_insert((0.0, 0, true));
        match t.values.last() {
            Some(v) => {
                e.0 += v;
                e.1 += 1;
            }
            None => e.2 = false,
        }
    }
    let mut ranked: Vec<(String, f64)> = sums
        .into_iter()
        .filter(|(_, (_, n, complete))| *complete && *n > 0)
        .map(|(k, (sum, n, _))| (k.to_owned(), sum / f64::from(n)))
        .collect();
    ranked.sort_by(|a, b| {
        spec.objective
            .score(b.1)
            .total_cmp(&spec.objective.score(a.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    ranked
}

/// Replays `spec` over `trials` (one experiment's, from [`recorded`]) on `workers` workers.
pub fn run(
    experiment: &str,
    spec: &StoppingSpec,
    trials: &[Recorded<String>],
    workers: usize,
) -> Replay {
    let workers = workers.max(1);
    let outcome = replay(spec, trials, workers);
    let ranked = ranking(spec, trials);
    let rank_of = |config: &str| ranked.iter().position(|(k, _)| k == config).map(|r| r + 1);
    let best = outcome.best.as_ref().map(|(config, value)| Best {
        configuration: config.clone(),
        value: *value,
        rank: rank_of(config).unwrap_or(0),
    });
    let best_full = ranked.first().map(|(config, value)| Best {
        configuration: config.clone(),
        value: *value,
        rank: 1,
    });
    // The latest stop of each configuration stopped for good.
    let mut last_stop: BTreeMap<&str, (u32, &str)> = BTreeMap::new();
    for (_, d) in &outcome.decisions {
        if let Action::Stop { reason } = &d.action {
            last_stop.insert(d.config.as_str(), (d.epoch, reason.as_str()));
        }
    }
    let stopped: Vec<Stopped> = trials
        .iter()
        .filter(|t| outcome.stopped.contains(&t.config))
        .filter_map(|t| {
            let (rung, reason) = last_stop.get(t.config.as_str())?;
            Some(Stopped {
                trial: t.trial.clone(),
                configuration: t.config.clone(),
                rung: *rung,
                reason: (*reason).to_owned(),
            })
        })
        .collect();
    let configurations = trials.iter().map(|t| &t.config).collect::<BTreeSet<_>>();
    Replay {
        experiment: experiment.to_owned(),
        rule: rule_text(spec.rule),
        metric: spec.objective.metric.name(),
        mode: spec.objective.mode.name(),
        workers,
        trials: trials.len(),
        configurations: configurations.len(),
        stopped,
        promotions: outcome
            .decisions
            .iter()
            .filter(|(_, d)| d.action == Action::Promote)
            .count(),
        epochs_trained: outcome.epochs_trained,
        epochs_full: outcome.epochs_full,
        seconds: outcome.makespan,
        seconds_full: full_seconds(trials, workers),
        best,
        best_full,
    }
}

/// What `coordinator replay` prints for `r`.
pub fn text(r: &Replay) -> String {
    let mut s = String::new();
    let configs: BTreeSet<&str> = r.stopped.iter().map(|t| t.configuration.as_str()).collect();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        "experiment {}: {} on {} ({}), {} workers, {} trials ({} configurations)",
        r.experiment, r.rule, r.metric, r.mode, r.workers, r.trials, r.configurations
    );
    let _ = writeln!(
        s,
        "stopped {} of {} trials ({} of {} configurations; {} promotions)",
        r.stopped.len(),
        r.trials,
        configs.len(),
        r.configurations,
        r.promotions
    );
    if !r.stopped.is_empty() {
        let width = r
            .stopped
            .iter()
            .map(|t| t.trial.chars().count())
            .max()
            .unwrap_or(0)
            .max("trial".len());
        let _ = writeln!(s, "  {:width$}  {:>4}  reason", "trial", "rung");
        for t in &r.stopped {
            let _ = writeln!(s, "  {:width$}  {:>4}  {}", t.trial, t.rung, t.reason);
        }
    }
    let _ = writeln!(
        s,
        "epochs trained: {} of {} ({:.1} %)",
        r.epochs_trained,
        r.epochs_full,
        r.epochs_percent()
    );
    let _ = writeln!(
        s,
        "virtual wall time: {:.1} s, against {:.1} s for the full grid on {} workers",
        r.seconds, r.seconds_full, r.workers
    );
    let line = |b: &Best| format!("{} = {:.4} ({})", b.configuration, b.value, r.metric);
    match (&r.best, &r.best_full) {
        (Some(b), Some(full)) => {
            let _ = writeln!(
                s,
                "best found: {}, rank {} of the full sweep",
                line(b),
                b.rank
            );
            let _ = writeln!(
                s,
                "best of the full sweep: {}; found is {:.4} from it",
                line(full),
                (full.value - b.value).abs()
            );
        }
        (None, Some(full)) => {
            let _ = writeln!(s, "best found: none trained to its end");
            let _ = writeln!(s, "best of the full sweep: {}", line(full));
        }
        (_, None) => {
            let _ = writeln!(s, "best: no configuration has a complete curve");
        }
    }
    s
}

#[cfg(test)]
mod tests;
