//! `results.json` as the report reads it: owned, `Deserialize`-only mirrors of the structs in
//! [`crate::results`], lenient on purpose (unknown fields are ignored, most fields may be
//! missing), so that a report can be made from a partial sweep or an older file.

use std::collections::BTreeMap;

use serde::Deserialize;
use sweep_common::grid::Param;

/// The newest `results.json` format this module reads.
pub const FORMAT: u32 = 1;

/// `results.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Results {
    /// Format version.
    #[serde(default = "default_format")]
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
    /// The experiments.
    #[serde(default)]
    pub experiments: Vec<Experiment>,
    /// The trials, in grid order.
    #[serde(default)]
    pub trials: Vec<Trial>,
}

fn default_format() -> u32 {
    FORMAT
}

/// An experiment.
#[derive(Debug, Clone, Deserialize)]
pub struct Experiment {
    /// Name.
    pub name: String,
    /// Title, if any.
    #[serde(default)]
    pub title: Option<String>,
    /// Dataset name.
    #[serde(default)]
    pub dataset: String,
    /// Class names, by label.
    #[serde(default)]
    pub classes: Vec<String>,
    /// The accuracy tables' layout named in the grid file (`table = { rows, columns }`).
    #[serde(default)]
    pub table: Option<TableSpec>,
    /// Axes that vary, in the grid's axis order.
    #[serde(default)]
    pub axes: Vec<Axis>,
}

/// The layout of an experiment's accuracy tables, named in the grid file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TableSpec {
    /// The axis down the rows.
    pub rows: String,
    /// The axis across the columns.
    pub columns: String,
}

/// An axis of an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Axis {
    /// The parameter's key (`activation`, `hidden_layers`, ...).
    pub param: String,
    /// Its values, as display strings, in file order.
    #[serde(default)]
    pub values: Vec<String>,
}

impl Axis {
    /// The known parameter, if the key is one.
    pub fn known(&self) -> Option<Param> {
        Param::from_key(&self.param)
    }

    /// True for the `seed` axis (repeats of the same configuration).
    pub fn is_seed(&self) -> bool {
        self.param == Param::Seed.key()
    }
}

/// A trial.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Trial {
    /// Content id.
    #[serde(default)]
    pub id: String,
    /// Experiment name.
    #[serde(default)]
    pub experiment: String,
    /// Trial name.
    #[serde(default)]
    pub name: String,
    /// Dataset name.
    #[serde(default)]
    pub dataset: String,
    /// Hyperparameters by key, as typed JSON values.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// pending, running, succeeded or failed.
    #[serde(default)]
    pub status: String,
    /// Leases granted.
    #[serde(default)]
    pub attempts: u32,
    /// The worker that produced the result (or holds the lease).
    #[serde(default)]
    pub worker: Option<String>,
    /// Seconds from lease to result.
    #[serde(default)]
    pub wall_seconds: Option<f64>,
    /// Seconds of training on the worker.
    #[serde(default)]
    pub train_seconds: Option<f64>,
    /// Per-epoch metrics.
    #[serde(default)]
    pub epochs: Vec<Epoch>,
    /// Final accuracy (%) on the training subset.
    #[serde(default)]
    pub train_accuracy: Option<f64>,
    /// Final accuracy (%) on the test split.
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    /// Confusion matrix on the training subset.
    #[serde(default)]
    pub train_confusion: Option<Confusion>,
    /// Confusion matrix on the test split.
    #[serde(default)]
    pub test_confusion: Option<Confusion>,
    /// Why the trial failed for good.
    #[serde(default)]
    pub failure: Option<String>,
    /// Every failed attempt.
    #[serde(default)]
    pub failed_attempts: Vec<FailedAttempt>,
}

impl Trial {
    /// The value of parameter `key` formatted the way grid axes show it (`ReLU`, `0.2`, `1`).
    pub fn param_display(&self, key: &str) -> Option<String> {
        let v = self.params.get(key)?;
        Some(match v {
            // A choice's display name (`ReLU`), from the hyperparameter's row of the table.
            serde_json::Value::String(s) => Param::from_key(key)
                .and_then(|p| p.def().domain.choice(s))
                .map_or_else(|| s.clone(), |c| c.display.to_owned()),
            serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => u.to_string(),
                (None, Some(i), _) => i.to_string(),
                (None, None, Some(f)) => f.to_string(),
                _ => n.to_string(),
            },
            other => other.to_string(),
        })
    }

    /// The value of parameter `key` as it appears in `results.json` (for CSV), empty if absent.
    pub fn param_raw(&self, key: &str) -> String {
        match self.params.get(key) {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }

    /// True when the trial ended with a result.
    pub fn succeeded(&self) -> bool {
        self.status == "succeeded"
    }

    /// True when the trial failed for good.
    pub fn failed(&self) -> bool {
        self.status == "failed"
    }

    /// Final train minus test accuracy (percentage points), when both are known and finite.
    pub fn gap(&self) -> Option<f64> {
        match (self.train_accuracy, self.test_accuracy) {
            (Some(a), Some(b)) if a.is_finite() && b.is_finite() => Some(a - b),
            _ => None,
        }
    }
}

/// Metrics of one epoch.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Epoch {
    /// 1-based epoch number.
    #[serde(default)]
    pub epoch: u32,
    /// Mean training loss over the epoch.
    #[serde(default)]
    pub train_loss: Option<f64>,
    /// Running training accuracy (%).
    #[serde(default)]
    pub train_accuracy: Option<f64>,
    /// Test accuracy (%) after the epoch.
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    /// Seconds of the epoch.
    #[serde(default)]
    pub seconds: Option<f64>,
}

/// A confusion matrix: `counts[true * classes + predicted]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Confusion {
    /// Number of classes.
    pub classes: usize,
    /// Row-major counts, rows = true class, columns = predicted class.
    pub counts: Vec<u64>,
}

impl Confusion {
    /// True when `counts` holds `classes * classes` cells.
    pub fn is_valid(&self) -> bool {
        self.classes > 0 && self.classes.checked_mul(self.classes) == Some(self.counts.len())
    }

    /// The count of `truth` predicted as `predicted` (0 outside the matrix).
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        if truth >= self.classes || predicted >= self.classes {
            return 0;
        }
        self.counts
            .get(truth * self.classes + predicted)
            .copied()
            .unwrap_or(0)
    }
}

/// One failed attempt.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FailedAttempt {
    /// The attempt number.
    #[serde(default)]
    pub attempt: u32,
    /// What kind of failure (`out_of_memory`, ...).
    #[serde(default)]
    pub kind: Option<String>,
    /// The worker's or the coordinator's message.
    #[serde(default)]
    pub message: String,
}
