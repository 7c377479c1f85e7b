//! `results.json` as the tests read it: through its one model, [`sweep_common::results`] (the
//! typed reader the report and the live view use too), with what the tests check of it.

use std::path::Path;

use sweep_common::EpochMetrics;
use sweep_common::results::Status;

/// The whole file, read (owned).
pub type Results = sweep_common::results::Results<'static>;

/// A trial's record, read (owned).
pub type Trial = sweep_common::results::Trial<'static>;

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

/// What the tests look up in a whole file.
pub trait ResultsExt {
    /// The trial named `name`, panicking with the names there are if none is.
    fn trial(&self, name: &str) -> &Trial;

    /// The names of the succeeded trials whose result the worker named `worker` trained (its
    /// last attempt's worker), in grid order.
    fn trained_by(&self, worker: &str) -> Vec<String>;
}

impl ResultsExt for Results {
    fn trial(&self, name: &str) -> &Trial {
        self.trials
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| {
                let names: Vec<&str> = self.trials.iter().map(|t| t.name.as_ref()).collect();
                panic!("no trial named {name:?} in results.json; trials: {names:?}")
            })
    }

    fn trained_by(&self, worker: &str) -> Vec<String> {
        self.trials
            .iter()
            .filter(|t| t.status == Status::Succeeded && t.worker_name() == Some(worker))
            .map(|t| t.name.to_string())
            .collect()
    }
}

/// Sizes of the (train, test) parts of `n` images split with `ratio`, as lab 1's `random_split`
/// computes them: `int(n * ratio)` and the rest.
pub fn split_sizes(n: u64, ratio: f64) -> (u64, u64) {
    let train = (n as f64 * ratio).floor() as u64;
    (train, n - train)
}

/// An epoch's numbers, bit for bit, without its wall time ([`EpochMetrics::bits`]).
pub type Point = sweep_common::metrics::EpochBits;

/// What the tests check of one trial's record.
pub trait TrialExt {
    /// Its curve, bit for bit ([`Point`]): what "ends where an uninterrupted run ends" compares.
    fn curve_bits(&self) -> Vec<Point>;

    /// The worker's name in [`Trial::worker`] (`NAME (uuid)`), if any.
    fn worker_name(&self) -> Option<&str>;

    /// Checks what every succeeded trial must satisfy, panicking with the trial's name and the
    /// reason otherwise: one epoch record per epoch numbered 1..=E, finite losses, 10x10
    /// confusion matrices whose totals are the sizes of the test split and of the training
    /// subset, and accuracies equal to what the matrices imply.
    fn assert_consistent_result(&self);
}

impl TrialExt for sweep_common::results::Trial<'_> {
    fn curve_bits(&self) -> Vec<Point> {
        self.epochs.iter().map(EpochMetrics::bits).collect()
    }

    fn worker_name(&self) -> Option<&str> {
        self.worker
            .as_deref()
            .map(|w| w.split_once(" (").map_or(w, |(name, _)| name))
    }

    fn assert_consistent_result(&self) {
        let name = &self.name;
        assert_eq!(self.status, Status::Succeeded, "{name}: status");
        let numbers: Vec<u32> = self.epochs.iter().map(|e| e.epoch).collect();
        let expected: Vec<u32> = (1..=self.params.epochs).collect();
        assert_eq!(numbers, expected, "{name}: epoch numbers");
        for e in self.epochs.iter() {
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
