//! Finished trials in bounded memory (issue 20): once a succeeded trial's result is committed,
//! its curve and confusion matrices (about 3 KB of a 30-epoch, 10-class trial) leave memory and
//! are read from the state database when `results.json`, the summary or a detail view asks
//! (`store::Reader`). What stays is what scheduling and the status need: its state, final
//! accuracies and times, and its curve's [`CurveTotals`].
//!
//! Some of the scheduler's rules read the curves of ended trials: early stopping (a rung's
//! values of every trial of the experiment), TPE (a configuration's last epoch) and the
//! `max_hours` budget (every epoch's seconds). Their trials keep their curves ([`KeepCurves`]).

use std::collections::HashSet;

use sweep_common::TrialId;
use sweep_common::grid::Grid;

use super::{CurveTotals, Scheduler};

/// Which experiments' succeeded trials keep their curves in memory: those whose rules read
/// them (early stopping, TPE), or every one when the sweep has a `max_hours` budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepCurves {
    all: bool,
    experiments: HashSet<String>,
}

impl KeepCurves {
    /// What `grid`'s rules need.
    pub fn of(grid: &Grid) -> KeepCurves {
        KeepCurves {
            all: grid.max_hours.is_some(),
            experiments: grid
                .experiments
                .iter()
                .filter(|e| e.stopping.is_some() || e.sample.is_some())
                .map(|e| e.name.clone())
                .collect(),
        }
    }

    /// Every experiment keeps its curves (nothing is archived).
    pub fn all() -> KeepCurves {
        KeepCurves {
            all: true,
            experiments: HashSet::new(),
        }
    }

    /// Whether the succeeded trials of `experiment` keep their curves in memory.
    pub fn keeps(&self, experiment: &str) -> bool {
        self.all || self.experiments.contains(experiment)
    }
}

impl Scheduler {
    /// Drops the curve and confusion matrices of `trial`, a succeeded trial whose result is
    /// committed, from memory (see the module's documentation). Returns false when it is not a
    /// succeeded trial or was archived already.
    pub fn archive(&mut self, trial: TrialId) -> bool {
        let Some(&i) = self.index.get(&trial) else {
            return false;
        };
        let t = &mut self.trials[i];
        let totals = CurveTotals::of(&t.epochs);
        t.archive_as(totals)
    }
}
