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

use std::time::Instant;

use super::index::Index;
use crate::state::{Scheduler, Trial};

/// Seconds one epoch of experiment number `experiment` takes, if anything was measured: the mean
/// of its succeeded trials' epochs, else of any of its epochs, else of every epoch of the sweep.
fn experiment_seconds(index: &Index, experiment: usize) -> Option<f64> {
    let x = index.experiments().get(experiment).map(|e| &e.totals);
    x.and_then(|t| t.succeeded_time.mean_seconds())
        .or_else(|| x.and_then(|t| t.any_time.mean_seconds()))
        .or_else(|| index.totals().any_time.mean_seconds())
}

/// Seconds one epoch of the trial at `pos` takes, if anything was measured.
pub fn epoch_seconds(index: &Index, pos: usize) -> Option<f64> {
    index
        .own_timing(pos)
        .mean_seconds()
        .or_else(|| experiment_seconds(index, index.experiment_of(pos)))
}

/// Seconds until `t` (at `pos`) ends (0 once it ended), if anything was measured.
pub fn remaining_seconds(index: &Index, t: &Trial, pos: usize) -> Option<f64> {
    if t.is_terminal() {
        return Some(0.0);
    }
    let done = u32::try_from(t.epochs.len()).unwrap_or(u32::MAX);
    let left = t.spec.params.epochs.saturating_sub(done);
    if left == 0 {
        // Every epoch reported: only the final evaluation is left.
        return Some(0.0);
    }
    epoch_seconds(index, pos).map(|s| f64::from(left) * s)
}

/// The sweep's time estimates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Forecast {
    /// Epochs per minute the running trials train at.
    pub throughput_epochs_per_minute: Option<f64>,
    /// Seconds until every trial has ended.
    pub eta_seconds: Option<f64>,
}

/// Throughput and ETA of the sweep at `now` (see the module's documentation), from the running
/// trials, the workers and the index's totals: O(running trials + workers + experiments).
pub fn forecast(s: &Scheduler, index: &Index, now: Instant) -> Forecast {
    if s.is_finished() {
        return Forecast {
            throughput_epochs_per_minute: None,
            eta_seconds: Some(0.0),
        };
    }
    let running: Vec<usize> = index.running().collect();
    let rates: Vec<f64> = running
        .iter()
        .filter_map(|&pos| epoch_seconds(index, pos))
        .map(|secs| 60.0 / secs)
        .collect();
    let throughput = (!rates.is_empty()).then(|| rates.iter().sum());

    // The unfinished trials' remaining time: at their own pace when they measured an epoch, else
    // at their experiment's; unknown if some experiment has nothing to go by.
    let untimed: Option<f64> = index
        .experiments()
        .iter()
        .enumerate()
        .filter(|(_, e)| e.totals.untimed > 0)
        .map(|(x, e)| experiment_seconds(index, x).map(|s| e.totals.untimed_left as f64 * s))
        .sum();
    let remaining = untimed.map(|u| u + index.own_left_seconds());
    let c = &index.totals().counts;
    let unfinished = (c.pending + c.running) as usize;
    let live_slots: usize = s
        .workers()
        .values()
        .filter(|w| now.saturating_duration_since(w.last_seen) <= s.config().lease_ttl)
        .map(|w| w.slots as usize)
        .sum();
    let parallel = running.len().max(live_slots.min(unfinished));
    let eta = match remaining {
        Some(remaining) if parallel > 0 => {
            let longest_running = running
                .iter()
                .filter_map(|&pos| {
                    let t = s.trials().get(pos)?;
                    remaining_seconds(index, t, pos)
                })
                .fold(0.0, f64::max);
            Some((remaining / parallel as f64).max(longest_running))
        }
        _ => None,
    };
    Forecast {
        throughput_epochs_per_minute: throughput,
        eta_seconds: eta,
    }
}
