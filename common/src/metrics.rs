//! What a trial produces: per-epoch metrics, confusion matrices and the final result.

use serde::{Deserialize, Serialize};

mod scalars;
pub use scalars::{MAX_SCALAR_NAME, MAX_SCALARS, RESERVED_NAMES, Scalars, check as check_scalar};

/// Metrics of one epoch, as the worker reports them after the epoch ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean of the per-batch mean cross-entropy losses over the epoch (the lab's printed loss).
    #[serde(deserialize_with = "number_or_nan")]
    pub train_loss: f64,
    /// Accuracy (%) on the training batches as they were trained (running, no extra pass).
    #[serde(deserialize_with = "number_or_nan")]
    pub train_accuracy: f64,
    /// Accuracy (%) on the test split after the epoch.
    #[serde(deserialize_with = "number_or_nan")]
    pub test_accuracy: f64,
    /// Wall-clock seconds of the epoch (training and evaluation).
    #[serde(deserialize_with = "number_or_nan")]
    pub seconds: f64,
    /// More scalars by name: a program trial's own metrics (none for native trials, and then
    /// not written).
    #[serde(default, skip_serializing_if = "Scalars::is_empty")]
    pub scalars: Scalars,
}

/// An epoch's numbers, bit for bit, without its wall time: (epoch, train loss, train accuracy,
/// test accuracy), the floats as their bits. Two runs that end alike have equal curves of these
/// (NaN included, which `==` on the floats would not call equal).
pub type EpochBits = (u32, u64, u64, u64);

impl EpochMetrics {
    /// Its numbers bit for bit ([`EpochBits`]): what "ends where an uninterrupted run ends"
    /// compares.
    pub fn bits(&self) -> EpochBits {
        (
            self.epoch,
            self.train_loss.to_bits(),
            self.train_accuracy.to_bits(),
            self.test_accuracy.to_bits(),
        )
    }
}

/// A number, or NaN for `null`: JSON has no NaN or infinity, and serde_json writes them as
/// `null` (a diverged epoch's loss in `results.json`), so that they read back.
fn number_or_nan<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// A confusion matrix: `counts[true * classes + predicted]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Number of classes (rows and columns).
    pub classes: usize,
    /// Row-major counts, rows = true class, columns = predicted class.
    pub counts: Vec<u64>,
}

/// Why a confusion matrix is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    /// Wrong number of classes.
    #[error("confusion matrix has {got} classes, expected {expected}")]
    Classes {
        /// Classes in the matrix.
        got: usize,
        /// Classes of the dataset.
        expected: usize,
    },
    /// `counts` is not classes x classes.
    #[error("confusion matrix has {got} counts, expected {expected} ({classes} x {classes})")]
    Len {
        /// Counts given.
        got: usize,
        /// classes squared.
        expected: usize,
        /// Number of classes.
        classes: usize,
    },
    /// The counts do not add up to the split's size.
    #[error("confusion matrix counts sum to {got}, expected the split size {expected}")]
    Total {
        /// Sum of counts.
        got: u64,
        /// Size of the split.
        expected: u64,
    },
}

impl ConfusionMatrix {
    /// An all-zero matrix.
    pub fn zeros(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// A made-up matrix of `total` samples spread evenly over the classes, about `accuracy`
    /// (0..=1) of each class right and the rest predicted as the next class: for stand-in
    /// trainers (the worker's test trainer, the load generator), never for real results.
    pub fn stand_in(classes: usize, total: u64, accuracy: f64) -> Self {
        let mut m = Self::zeros(classes);
        let c = classes as u64;
        for truth in 0..classes {
            let row = total / c + u64::from((truth as u64) < total % c);
            // Truncation is intended: whole samples.
            let right = ((row as f64) * accuracy) as u64;
            m.counts[truth * classes + truth] += right;
            m.counts[truth * classes + (truth + 1) % classes] += row - right;
        }
        m
    }

    /// The count of images of class `truth` predicted as `predicted` (0 outside the matrix).
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        if truth >= self.classes || predicted >= self.classes {
            return 0;
        }
        truth
            .checked_mul(self.classes)
            .and_then(|row| self.counts.get(row + predicted))
            .copied()
            .unwrap_or(0)
    }

    /// True when the matrix has classes and `counts` holds `classes * classes` cells (a matrix
    /// read from a file may not).
    pub fn is_square(&self) -> bool {
        self.classes > 0 && self.classes.checked_mul(self.classes) == Some(self.counts.len())
    }

    /// Total number of images counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Number of correct predictions (the diagonal).
    pub fn correct(&self) -> u64 {
        (0..self.classes).map(|i| self.get(i, i)).sum()
    }

    /// Accuracy in percent (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            0.0
        } else {
            100.0 * self.correct() as f64 / total as f64
        }
    }

    /// Checks the shape against the dataset and, when known, the total against the split size.
    pub fn validate(&self, classes: usize, total: Option<u64>) -> Result<(), MatrixError> {
        if self.classes != classes {
            return Err(MatrixError::Classes {
                got: self.classes,
                expected: classes,
            });
        }
        if self.counts.len() != classes * classes {
            return Err(MatrixError::Len {
                got: self.counts.len(),
                expected: classes * classes,
                classes,
            });
        }
        if let Some(expected) = total {
            let got = self.total();
            if got != expected {
                return Err(MatrixError::Total { got, expected });
            }
        }
        Ok(())
    }
}

/// The result of a successful trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    /// One entry per epoch, in order.
    pub epochs: Vec<EpochMetrics>,
    /// Everything measured once the training ended.
    #[serde(flatten)]
    pub last: FinalMetrics,
}

/// What a successful trial measured once its training ended (its learning curve aside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalMetrics {
    /// Final accuracy (%) of the trained model on its training subset (a separate pass).
    pub train_accuracy: f64,
    /// Final accuracy (%) on the test split.
    pub test_accuracy: f64,
    /// Confusion matrix on the training subset.
    pub train_confusion: ConfusionMatrix,
    /// Confusion matrix on the test split.
    pub test_confusion: ConfusionMatrix,
    /// Seconds the worker spent on the trial, data loading excluded.
    pub train_seconds: f64,
    /// Number of images in the dataset file the worker trained from (the official training set
    /// has 60 000 or 50 000; test fixtures have fewer). The split sizes follow from it.
    pub dataset_images: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_accuracy_and_validation() {
        let mut m = ConfusionMatrix::zeros(3);
        m.counts = vec![5, 1, 0, 0, 3, 1, 0, 0, 0];
        assert_eq!(m.total(), 10);
        assert_eq!(m.correct(), 8);
        assert!((m.accuracy() - 80.0).abs() < 1e-12);
        assert!(m.validate(3, Some(10)).is_ok());
        assert!(matches!(
            m.validate(10, None),
            Err(MatrixError::Classes { .. })
        ));
        assert!(matches!(
            m.validate(3, Some(11)),
            Err(MatrixError::Total { .. })
        ));
        m.counts.pop();
        assert!(matches!(m.validate(3, None), Err(MatrixError::Len { .. })));
    }
}
