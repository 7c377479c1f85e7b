//! `[sweep] max_hours` in the scheduler: the device-hours a sweep may spend, and the gate that
//! stops leasing new trials once the estimate says the next one would go past it.
//!
//! The estimate, from what the trials recorded (their epochs' seconds, persisted, so a restart
//! judges as the coordinator before it did): *spent* is every epoch measured so far, of
//! ended and running trials; *committed* adds what the running trials will still take (their
//! epochs left, at their shape's mean epoch seconds); a pending trial fits when committed plus
//! its own cost (its epochs left at its shape's mean) is within the budget. A shape is an
//! experiment's model (its hidden layers and width); a shape nothing measured yet takes its
//! experiment's mean over every shape measured, and a trial of an experiment nothing measured
//! yet fits (there is nothing to estimate from). A running trial always finishes; a pending trial
//! that does not fit is stopped, with a reason that starts with [`REASON_PREFIX`], and is
//! counted as not run because of the budget. Pure: no I/O, no clock.
//!
//! Epochs of attempts that failed and were trained again from a checkpoint are not counted
//! (only the current attempt's are kept): the estimate then errs low.

use std::collections::HashMap;

use super::{Effect, Scheduler, Trial, TrialState};

pub use sweep_common::results::BUDGET_REASON_PREFIX as REASON_PREFIX;

/// Where the sweep stands against its budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// `[sweep] max_hours`, in seconds.
    pub max_seconds: f64,
    /// Seconds of every epoch measured so far.
    pub spent_seconds: f64,
    /// `spent_seconds` plus the estimated seconds the running trials still take.
    pub committed_seconds: f64,
    /// Trials the budget stopped before they ran.
    pub stopped: usize,
}

/// An experiment's model, as far as its epoch time goes.
type Shape<'a> = (&'a str, u32, u32);

fn shape(t: &Trial) -> Shape<'_> {
    let p = &t.spec.params;
    (t.spec.experiment.as_str(), p.hidden_layers, p.hidden_width)
}

/// Mean measured epoch seconds per shape, and per experiment (`0` and `0` for its layers and
/// width: no model has them).
fn epoch_means(trials: &[Trial]) -> HashMap<Shape<'_>, f64> {
    let mut sums: HashMap<Shape<'_>, (f64, u32)> = HashMap::new();
    for t in trials {
        let s = shape(t);
        for m in t.epochs.iter().filter(|m| measured(m.seconds)) {
            for key in [s, (s.0, 0, 0)] {
                let e = sums.entry(key).or_default();
                e.0 += m.seconds;
                e.1 += 1;
            }
        }
    }
    sums.into_iter()
        .map(|(k, (sum, n))| (k, sum / f64::from(n)))
        .collect()
}

fn measured(seconds: f64) -> bool {
    seconds.is_finite() && seconds >= 0.0
}

/// Seconds of every epoch measured so far.
fn spent(trials: &[Trial]) -> f64 {
    trials
        .iter()
        .flat_map(|t| &t.epochs)
        .filter(|m| measured(m.seconds))
        .map(|m| m.seconds)
        .sum()
}

/// The estimated seconds trial `t` still takes; `None` when nothing measured its shape.
fn cost_left(t: &Trial, means: &HashMap<Shape<'_>, f64>) -> Option<f64> {
    let done = match &t.state {
        TrialState::Leased { .. } => t.epochs.last().map_or(0, |m| m.epoch),
        state => state.checkpoints().map_or(0, |c| c.epoch()),
    };
    let left = t.spec.params.epochs.saturating_sub(done);
    let s = shape(t);
    let mean = means.get(&s).or_else(|| means.get(&(s.0, 0, 0)))?;
    Some(mean * f64::from(left))
}

/// Seconds spent, and spent plus what the running trials still take.
fn committed(trials: &[Trial], means: &HashMap<Shape<'_>, f64>) -> (f64, f64) {
    let spent = spent(trials);
    let running: f64 = trials
        .iter()
        .filter(|t| matches!(t.state, TrialState::Leased { .. }))
        .filter_map(|t| cost_left(t, means))
        .sum();
    (spent, spent + running)
}

/// The estimate of `trials` against a budget of `max_seconds`, and the pending trials that do
/// not fit in it, in grid order.
fn judge(trials: &[Trial], max_seconds: f64) -> (Budget, Vec<usize>) {
    let means = epoch_means(trials);
    let (spent, committed) = committed(trials, &means);
    let over = trials
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t.state, TrialState::Pending { .. }))
        .filter(|(_, t)| cost_left(t, &means).is_some_and(|c| committed + c > max_seconds))
        .map(|(i, _)| i)
        .collect();
    let stopped = trials
        .iter()
        .filter(|t| stopped_by_budget(&t.state))
        .count();
    let budget = Budget {
        max_seconds,
        spent_seconds: spent,
        committed_seconds: committed,
        stopped,
    };
    (budget, over)
}

/// True when the budget stopped a trial in this state.
pub fn stopped_by_budget(state: &TrialState) -> bool {
    matches!(state, TrialState::Stopped { reason, .. } if reason.starts_with(REASON_PREFIX))
}

/// True when pending trial `i` would go past the budget (never without one).
pub(super) fn refuses(trials: &[Trial], max_seconds: Option<f64>, i: usize) -> bool {
    let Some(max) = max_seconds else { return false };
    let means = epoch_means(trials);
    let (_, committed) = committed(trials, &means);
    trials
        .get(i)
        .and_then(|t| cost_left(t, &means))
        .is_some_and(|c| committed + c > max)
}

impl Scheduler {
    /// Sets `[sweep] max_hours` (`None`: no budget).
    pub fn set_budget(&mut self, max_hours: Option<f64>) {
        self.budget = max_hours.map(|h| h * 3600.0);
    }

    /// Where the sweep stands against its budget; `None` without one.
    pub fn budget(&self) -> Option<Budget> {
        self.budget.map(|max| judge(&self.trials, max).0)
    }

    /// Stops every pending trial that the budget has no room for; returns what happened.
    pub(super) fn enforce_budget(&mut self) -> Vec<Effect> {
        let Some(max) = self.budget else {
            return Vec::new();
        };
        let (b, over) = judge(&self.trials, max);
        let reason = format!(
            "{REASON_PREFIX} not run: max_hours = {} would be exceeded ({:.3} device-hours spent \
             or committed)",
            max / 3600.0,
            b.committed_seconds / 3600.0
        );
        over.into_iter()
            .flat_map(|i| {
                let epoch = self.trials[i].state.checkpoints().map_or(0, |c| c.epoch());
                self.stop_trial(i, epoch, &reason)
            })
            .collect()
    }
}
