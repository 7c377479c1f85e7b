//! `results.json` as the tests read it: the file's documented shape, written out here on its own
//! (not borrowed from the product's types) so that a change of the format breaks these tests.

use std::path::Path;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
pub struct Results {
    /// Format version.
    pub format: u32,
    /// The sweep's name.
    pub sweep: String,
    /// True once every trial has ended.
    pub finished: bool,
    /// The experiments of the grid.
    pub experiments: Vec<Experiment>,
    /// Every trial, in grid order.
    pub trials: Vec<Trial>,
}

/// An experiment.
#[derive(Debug, Clone, Deserialize)]
pub struct Experiment {
    /// Name.
    pub name: String,
    /// Title, if the grid gives one.
    pub title: Option<String>,
    /// Dataset name (`cifar10`, `fashion-mnist`).
    pub dataset: String,
    /// Class names, by label.
    pub classes: Vec<String>,
    /// The axes that vary.
    pub axes: serde_json::Value,
}

/// A trial.
#[derive(Debug, Clone, Deserialize)]
pub struct Trial {
    /// Content id.
    pub id: String,
    /// Experiment name.
    pub experiment: String,
    /// Trial name.
    pub name: String,
    /// Dataset name.
    pub dataset: String,
    /// Hyperparameters.
    pub params: Params,
    /// Train/test split.
    pub split: Split,
    /// `pending`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// Leases granted.
    pub attempts: u32,
    /// `NAME (uuid)` of the worker that produced the result.
    pub worker: Option<String>,
    /// Seconds from lease to result.
    pub wall_seconds: Option<f64>,
    /// Seconds of training.
    pub train_seconds: Option<f64>,
    /// Per-epoch metrics.
    pub epochs: Vec<Epoch>,
    /// Final accuracy (%) on the training subset.
    pub train_accuracy: Option<f64>,
    /// Final accuracy (%) on the test split.
    pub test_accuracy: Option<f64>,
    /// Confusion matrix on the training subset.
    pub train_confusion: Option<Confusion>,
    /// Confusion matrix on the test split.
    pub test_confusion: Option<Confusion>,
    /// Images in the dataset the worker loaded.
    pub dataset_images: Option<u64>,
    /// The final weights (safetensors), relative to the output folder.
    #[serde(default)]
    pub weights: Option<String>,
    /// Why the trial failed for good.
    pub failure: Option<String>,
    /// Every failed attempt.
    pub failed_attempts: Vec<FailedAttempt>,
}

/// Hyperparameters of a trial.
#[derive(Debug, Clone, Deserialize)]
pub struct Params {
    /// `relu`, `tanh` or `sigmoid`.
    pub activation: String,
    /// Hidden layers.
    pub hidden_layers: u32,
    /// Width of each hidden layer.
    pub hidden_width: u32,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Mini-batch size.
    pub batch_size: u32,
    /// Epochs.
    pub epochs: u32,
    /// Fraction of the train split trained on.
    pub train_fraction: f64,
    /// Seed.
    pub seed: u64,
    /// The model (`mlp` or layers); absent in files written before models existed.
    #[serde(default)]
    pub model: Option<String>,
}

/// How the official training set is split.
#[derive(Debug, Clone, Deserialize)]
pub struct Split {
    /// Fraction in the train part.
    pub train_ratio: f64,
    /// Seed of the split.
    pub seed: u64,
}

/// Metrics of one epoch.
#[derive(Debug, Clone, Deserialize)]
pub struct Epoch {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean training loss.
    pub train_loss: f64,
    /// Running training accuracy (%).
    pub train_accuracy: f64,
    /// Test accuracy (%) after the epoch.
    pub test_accuracy: f64,
    /// Seconds the epoch took.
    pub seconds: f64,
}

/// A confusion matrix, `counts[truth * classes + predicted]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Confusion {
    /// Number of classes.
    pub classes: usize,
    /// Row-major counts.
    pub counts: Vec<u64>,
}

impl Confusion {
    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the diagonal.
    pub fn correct(&self) -> u64 {
        (0..self.classes)
            .filter_map(|i| self.counts.get(i * self.classes + i))
            .sum()
    }

    /// Accuracy (%) the matrix implies.
    pub fn accuracy(&self) -> f64 {
        100.0 * self.correct() as f64 / self.total() as f64
    }
}

/// One failed attempt.
#[derive(Debug, Clone, Deserialize)]
pub struct FailedAttempt {
    /// Attempt number (1-based).
    pub attempt: u32,
    /// Id (uuid) of the worker that held the lease.
    pub worker: String,
    /// `lease_expired`, `worker_shutdown`, `data`, ...
    pub kind: String,
    /// What happened.
    pub message: String,
}

impl Results {
    /// Reads and parses `path`, panicking with the reason if it cannot.
    pub fn read(path: &Path) -> Results {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{} is not a valid results file: {e}\n{text}",
                path.display()
            )
        })
    }

    /// The trial named `name`.
    pub fn trial(&self, name: &str) -> &Trial {
        self.trials
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| {
                let names: Vec<&str> = self.trials.iter().map(|t| t.name.as_str()).collect();
                panic!("no trial named {name:?} in results.json; trials: {names:?}")
            })
    }
}

/// Sizes of the (train, test) parts of `n` images split with `ratio`, as lab 1's `random_split`
/// computes them: `int(n * ratio)` and the rest.
pub fn split_sizes(n: u64, ratio: f64) -> (u64, u64) {
    let train = (n as f64 * ratio).floor() as u64;
    (train, n - train)
}

impl Trial {
    /// The worker's name in [`Trial::worker`] (`NAME (uuid)`), if any.
    pub fn worker_name(&self) -> Option<&str> {
        self.worker
            .as_deref()
            .map(|w| w.split_once(" (").map_or(w, |(name, _)| name))
    }

    /// Checks what every succeeded trial must satisfy, panicking with the trial's name and the
    /// reason otherwise: one epoch record per epoch numbered 1..=E, finite losses, 10x10
    /// confusion matrices whose totals are the sizes of the test split and of the training
    /// subset, and accuracies equal to what the matrices imply.
    pub fn assert_consistent_result(&self) {
        let name = &self.name;
        assert_eq!(self.status, "succeeded", "{name}: status");
        let numbers: Vec<u32> = self.epochs.iter().map(|e| e.epoch).collect();
        let expected: Vec<u32> = (1..=self.params.epochs).collect();
        assert_eq!(numbers, expected, "{name}: epoch numbers");
        for e in &self.epochs {
            assert!(
                e.train_loss.is_finite() && e.train_loss >= 0.0,
                "{name}: epoch {}: train loss {}",
                e.epoch,
                e.train_loss
            );
            for acc in [e.train_accuracy, e.test_accuracy] {
                assert!(
                    (0.0..=100.0).contains(&acc),
                    "{name}: epoch {}: accuracy {acc}",
                    e.epoch
                );
            }
        }
        let n = self
            .dataset_images
            .unwrap_or_else(|| panic!("{name}: no dataset_images"));
        let (train_part, test_len) = split_sizes(n, self.split.train_ratio);
        let train_len = (train_part as f64 * self.params.train_fraction).floor() as u64;
        let test = self
            .test_confusion
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no test_confusion"));
        let train = self
            .train_confusion
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no train_confusion"));
        for (which, m, total, accuracy) in [
            ("test", test, test_len, self.test_accuracy),
            ("train", train, train_len, self.train_accuracy),
        ] {
            assert_eq!(m.classes, 10, "{name}: {which} matrix classes");
            assert_eq!(m.counts.len(), 100, "{name}: {which} matrix counts");
            assert_eq!(
                m.total(),
                total,
                "{name}: {which} matrix total (dataset of {n} images, split {}, fraction {})",
                self.split.train_ratio,
                self.params.train_fraction
            );
            let accuracy = accuracy.unwrap_or_else(|| panic!("{name}: no {which}_accuracy"));
            assert!(
                (accuracy - m.accuracy()).abs() < 1e-9,
                "{name}: {which} accuracy {accuracy} but the matrix says {}",
                m.accuracy()
            );
        }
        let last = self.epochs.last().map(|e| e.test_accuracy);
        assert_eq!(
            last, self.test_accuracy,
            "{name}: the last epoch's test accuracy is the final one"
        );
        assert!(
            self.train_seconds.is_some_and(|s| s > 0.0),
            "{name}: train_seconds {:?}",
            self.train_seconds
        );
        assert!(
            self.wall_seconds.is_some_and(|s| s > 0.0),
            "{name}: wall_seconds {:?}",
            self.wall_seconds
        );
        assert!(self.failure.is_none(), "{name}: failure {:?}", self.failure);
    }
}
