//! Time estimates from measured epoch times (the `seconds` workers report with every epoch).
//!
//! - A trial's epoch time: the mean of its own epochs when it has reported some, else the mean
//!   epoch time of its experiment's succeeded trials, else of any of its experiment's epochs,
//!   else of every epoch of the sweep; unknown before the first epoch is reported.
//! - A trial's remaining time: its remaining epochs times its epoch time.
//! - The sweep's ETA: the remaining time of every unfinished trial, divided by the slots that
//!   will work on them (the busy slots, or the live workers' slots when pending trials can fill
//!   more), and never less than the longest remaining running trial.
//! - Throughput: the epochs per minute the running trials train at, summed.

use std::collections::HashMap;
use std::time::Instant;

use sweep_common::EpochMetrics;

use crate::state::{Scheduler, Trial, TrialState};

/// Epoch times under this are taken as this (fixture-sized trials), so rates stay finite.
const MIN_EPOCH_SECONDS: f64 = 1e-3;

/// Sum of seconds and number of epochs.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    seconds: f64,
    epochs: u64,
}

impl Sum {
    fn add(&mut self, epochs: &[EpochMetrics]) {
        for m in epochs {
            if m.seconds.is_finite() && m.seconds >= 0.0 {
                self.seconds += m.seconds;
                self.epochs += 1;
            }
        }
    }

    fn mean(self) -> Option<f64> {
        (self.epochs > 0).then(|| (self.seconds / self.epochs as f64).max(MIN_EPOCH_SECONDS))
    }
}

/// Mean epoch times per experiment and over the sweep.
#[derive(Debug, Clone, Default)]
pub struct Estimates {
    succeeded: HashMap<String, Sum>,
    any: HashMap<String, Sum>,
    global: Sum,
}

impl Estimates {
    /// The mean epoch times of `trials`' recorded epochs.
    pub fn new(trials: &[Trial]) -> Self {
        // Keyed by borrowed names while summing: one allocation per experiment, not per trial.
        let mut succeeded: HashMap<&str, Sum> = HashMap::new();
        let mut any: HashMap<&str, Sum> = HashMap::new();
        let mut global = Sum::default();
        for t in trials.iter().filter(|t| !t.epochs.is_empty()) {
            let experiment = t.spec.experiment.as_str();
            if matches!(t.state, TrialState::Succeeded { .. }) {
                succeeded.entry(experiment).or_default().add(&t.epochs);
            }
            any.entry(experiment).or_default().add(&t.epochs);
            global.add(&t.epochs);
        }
        let owned = |m: HashMap<&str, Sum>| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Estimates {
            succeeded: owned(succeeded),
            any: owned(any),
            global,
        }
    }

    /// Seconds one epoch of `t` takes, if anything was measured.
    pub fn epoch_seconds(&self, t: &Trial) -> Option<f64> {
        let mut own = Sum::default();
        own.add(&t.epochs);
        let experiment = t.spec.experiment.as_str();
        own.mean()
            .or_else(|| self.succeeded.get(experiment).and_then(|s| s.mean()))
            .or_else(|| self.any.get(experiment).and_then(|s| s.mean()))
            .or_else(|| self.global.mean())
    }

    /// Seconds until `t` ends (0 once it ended), if anything was measured.
    pub fn remaining_seconds(&self, t: &Trial) -> Option<f64> {
        if t.is_terminal() {
            return Some(0.0);
        }
        let done = u32::try_from(t.epochs.len()).unwrap_or(u32::MAX);
        let left = t.spec.params.epochs.saturating_sub(done);
        if left == 0 {
            // Every epoch reported: only the final evaluation is left.
            return Some(0.0);
        }
        self.epoch_seconds(t).map(|s| f64::from(left) * s)
    }
}

/// The sweep's time estimates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Forecast {
    /// Epochs per minute the running trials train at.
    pub throughput_epochs_per_minute: Option<f64>,
    /// Seconds until every trial has ended.
    pub eta_seconds: Option<f64>,
}

/// Throughput and ETA of the sweep at `now` (see the module's documentation).
pub fn forecast(s: &Scheduler, estimates: &Estimates, now: Instant) -> Forecast {
    if s.is_finished() {
        return Forecast {
            throughput_epochs_per_minute: None,
            eta_seconds: Some(0.0),
        };
    }
    let running: Vec<&Trial> = s
        .trials()
        .iter()
        .filter(|t| matches!(t.state, TrialState::Leased(_)))
        .collect();
    let rates: Vec<f64> = running
        .iter()
        .filter_map(|t| estimates.epoch_seconds(t))
        .map(|secs| 60.0 / secs)
        .collect();
    let throughput = (!rates.is_empty()).then(|| rates.iter().sum());

    let unfinished: Vec<&Trial> = s.trials().iter().filter(|t| !t.is_terminal()).collect();
    let remaining: Option<Vec<f64>> = unfinished
        .iter()
        .map(|t| estimates.remaining_seconds(t))
        .collect();
    let live_slots: usize = s
        .workers()
        .values()
        .filter(|w| now.saturating_duration_since(w.last_seen) <= s.config().lease_ttl)
        .map(|w| w.slots as usize)
        .sum();
    let parallel = running.len().max(live_slots.min(unfinished.len()));
    let eta = match remaining {
        Some(remaining) if parallel > 0 => {
            let longest_running = running
                .iter()
                .filter_map(|t| estimates.remaining_seconds(t))
                .fold(0.0, f64::max);
            Some((remaining.iter().sum::<f64>() / parallel as f64).max(longest_running))
        }
        _ => None,
    };
    Forecast {
        throughput_epochs_per_minute: throughput,
        eta_seconds: eta,
    }
}
