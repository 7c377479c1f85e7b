//! `results.json`, the sweep's readable copy of every trial: its one model, which the
//! coordinator writes and the report, the live view and the tests read.
//!
//! Written borrowed ([`Trial`]'s large fields are `Cow`s that point into the coordinator's
//! state, so a copy of 100 000 trials clones no epochs or matrices), read owned
//! (`Results<'static>`). Reading is lenient where files written by earlier versions need it:
//! unknown keys are ignored, a field an older version did not write (`table`, `weights`) reads
//! as absent, and a number JSON could not hold (a NaN loss, written as `null`) reads back as NaN.
//! The fields are in the file's order; serializing gives the file byte for byte.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::dataset::DatasetKind;
use crate::failure::AttemptFailure;
use crate::grid::{Axis, Domain, Param, TableLayout, Value};
use crate::ids::TrialId;
use crate::metrics::{ConfusionMatrix, EpochMetrics};
use crate::trial::{HyperParams, SplitSpec};

/// The newest format of `results.json`, the one written; a reader refuses a newer one.
pub const FORMAT: u32 = 1;

/// `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results<'a> {
    /// Format version of this file.
    #[serde(default = "current_format")]
    pub format: u32,
    /// The sweep's name.
    #[serde(default)]
    pub sweep: String,
    /// The grid file it came from.
    #[serde(default)]
    pub grid_file: String,
    /// True once every trial has ended.
    #[serde(default)]
    pub finished: bool,
    /// The experiments, with their axes and class names.
    #[serde(default)]
    pub experiments: Vec<Experiment>,
    /// One record per trial, in grid order.
    #[serde(default)]
    pub trials: Vec<Trial<'a>>,
}

fn current_format() -> u32 {
    FORMAT
}

/// An experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Name.
    pub name: String,
    /// Title, if any.
    #[serde(default)]
    pub title: Option<String>,
    /// Dataset.
    pub dataset: DatasetKind,
    /// Class names, by label.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Axes that vary, in the grid's axis order.
    #[serde(default)]
    pub axes: Vec<Axis>,
    /// The accuracy tables' layout the grid file names, if any (absent before it existed).
    #[serde(default)]
    pub table: Option<TableLayout>,
}

/// Where a trial is, as `results.json` and the status say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not leased yet (or back in the queue).
    #[default]
    Pending,
    /// Leased to a worker.
    Running,
    /// Ended with a result.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Stopped early by its experiment's stopping rule (its curve ends at the rung).
    Stopped,
}

impl Status {
    /// Every state, in order.
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::Stopped,
    ];

    /// Its name in `results.json` and the status's JSON (`succeeded`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Status::ALL.iter().map(|p| p.name()).collect();
                format!("unknown state {s:?}; expected one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial<'a> {
    /// Content id.
    pub id: TrialId,
    /// Experiment.
    pub experiment: Cow<'a, str>,
    /// Name.
    pub name: Cow<'a, str>,
    /// Dataset.
    pub dataset: DatasetKind,
    /// Hyperparameters.
    pub params: Cow<'a, HyperParams>,
    /// Split.
    pub split: SplitSpec,
    /// Where the trial is.
    pub status: Status,
    /// Leases granted.
    #[serde(default)]
    pub attempts: u32,
    /// Name and id of the worker that produced the result (or holds the lease).
    #[serde(default)]
    pub worker: Option<String>,
    /// Seconds from the successful attempt's lease to its result.
    #[serde(default)]
    pub wall_seconds: Option<f64>,
    /// Seconds of training on the worker (data loading excluded).
    #[serde(default)]
    pub train_seconds: Option<f64>,
    /// Per-epoch metrics.
    #[serde(default)]
    pub epochs: Cow<'a, [EpochMetrics]>,
    /// Final accuracy (%) on the training subset.
    #[serde(default)]
    pub train_accuracy: Option<f64>,
    /// Final accuracy (%) on the test split.
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    /// Confusion matrix on the training subset.
    #[serde(default)]
    pub train_confusion: Option<Cow<'a, ConfusionMatrix>>,
    /// Confusion matrix on the test split.
    #[serde(default)]
    pub test_confusion: Option<Cow<'a, ConfusionMatrix>>,
    /// Images in the dataset the worker trained from.
    #[serde(default)]
    pub dataset_images: Option<u64>,
    /// The final weights (safetensors), relative to the output folder (absent before they were
    /// uploaded).
    #[serde(default)]
    pub weights: Option<Cow<'a, str>>,
    /// A program trial's logs (stdout, then stderr: their tails), relative to the output folder,
    /// as its last attempt that uploaded them left them: only files that are there; none for a
    /// native trial (and not written then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    /// Why the trial failed for good.
    #[serde(default)]
    pub failure: Option<Cow<'a, str>>,
    /// Every failed attempt.
    #[serde(default)]
    pub failed_attempts: Cow<'a, [AttemptFailure]>,
    /// Where and why the stopping rule stopped it, when it is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped<'a>>,
    /// The epochs an operator promoted it to (`coordinator promote --epochs`), when one did:
    /// it trains at least these, whatever the grid file gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_epochs: Option<u32>,
}

/// How a stopped trial's reason starts when `[sweep] max_hours` stopped it before it ran (the
/// coordinator's budget gate), rather than a stopping rule.
pub const BUDGET_REASON_PREFIX: &str = "budget:";

/// Where and why a stopping rule stopped a trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stopped<'a> {
    /// The epoch (rung) of the decision.
    pub epoch: u32,
    /// The rule's words.
    pub reason: Cow<'a, str>,
}

impl Trial<'_> {
    /// True when the trial ended with a result.
    pub fn succeeded(&self) -> bool {
        self.status == Status::Succeeded
    }

    /// True when the trial failed for good.
    pub fn failed(&self) -> bool {
        self.status == Status::Failed
    }

    /// True when its stopping rule stopped it.
    pub fn stopped(&self) -> bool {
        self.status == Status::Stopped
    }

    /// True when the budget (`[sweep] max_hours`) stopped it before it ran.
    pub fn stopped_by_budget(&self) -> bool {
        self.stopped
            .as_ref()
            .is_some_and(|s| s.reason.starts_with(BUDGET_REASON_PREFIX))
    }

    /// Final train minus test accuracy (percentage points), when both are known and finite.
    pub fn gap(&self) -> Option<f64> {
        match (self.train_accuracy, self.test_accuracy) {
            (Some(a), Some(b)) if a.is_finite() && b.is_finite() => Some(a - b),
            _ => None,
        }
    }
}

impl Axis {
    /// The axis's values as typed values, in file order: `results.json` and reports show them
    /// as text (`ReLU`, `0.2`), which reads back to the value it was made from. `None` for a
    /// text that is no value of the hyperparameter (a file edited by hand).
    pub fn typed_values(&self) -> Vec<Option<Value>> {
        self.values
            .iter()
            .map(|shown| shown_value(self.param, shown))
            .collect()
    }
}

/// The value of `param` that shows as `shown` ([`Value::display`]).
pub fn shown_value(param: Param, shown: &str) -> Option<Value> {
    let value = match param.def().domain {
        Domain::Choice(choices) => choices
            .iter()
            .find(|c| c.display == shown)
            .map(Value::Choice),
        Domain::Int { .. } => shown.parse().ok().map(Value::Int),
        Domain::Float { .. } | Domain::Fraction => shown.parse().ok().map(Value::Float),
        Domain::Model => crate::model::Model::parse(shown)
            .ok()
            .map(|m| Value::Text(m.0)),
    }?;
    (value.display() == shown).then_some(value)
}

#[cfg(test)]
mod tests;
