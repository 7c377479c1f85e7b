//! What `coordinator plan --calibrate` and `worker --calibrate` say to each other: the
//! coordinator writes one [`TrialSpec`](crate::TrialSpec) per line (JSON) to the worker's
//! standard input, and the worker answers each with one [`Calibration`] line on its standard
//! output, after timing a few training steps and an evaluation of that trial's model on random
//! images of its dataset's shape. The coordinator links no libtorch: the worker, which does,
//! measures.

use serde::{Deserialize, Serialize};

use crate::TrialId;

/// One trial's measured cost on the worker's device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The trial measured (the request's id).
    pub id: TrialId,
    /// What measuring it gave, or why it could not be measured.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A measurement, or the reason there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Outcome {
    /// Seconds per image, as timed after a warm-up.
    Measured(Cost),
    /// The trial cannot be measured (a model that does not build, a program trial).
    Failed {
        /// The reason, for the plan's output.
        error: String,
    },
}

/// The time and memory one trial's model takes on one device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Seconds of one training image (forward, backward and the optimiser's step, amortised
    /// over full batches).
    pub train_seconds_per_image: f64,
    /// Seconds of one evaluated image (forward only, in the trainer's evaluation chunks).
    pub eval_seconds_per_image: f64,
    /// The device memory the trial took above the worker's before it (on a GPU, the device's
    /// as `nvidia-smi` reports it; on the CPU, the process's resident memory), when known.
    pub memory_bytes: Option<u64>,
}

impl Cost {
    /// Seconds of one epoch of `train` training images and `test` evaluated images.
    pub fn epoch_seconds(&self, train: usize, test: usize) -> f64 {
        self.train_seconds_per_image * train as f64 + self.eval_seconds_per_image * test as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_each_way() {
        let id = TrialId::from_content("x");
        let measured = Calibration {
            id,
            outcome: Outcome::Measured(Cost {
                train_seconds_per_image: 1e-5,
                eval_seconds_per_image: 2e-6,
                memory_bytes: Some(1 << 20),
            }),
        };
        let failed = Calibration {
            id,
            outcome: Outcome::Failed { error: "no".into() },
        };
        for c in [measured, failed] {
            let line = serde_json::to_string(&c).expect("json");
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Calibration>(&line).expect("back"), c);
        }
        let cost = Cost {
            train_seconds_per_image: 1e-5,
            eval_seconds_per_image: 2e-6,
            memory_bytes: None,
        };
        assert!((cost.epoch_seconds(1000, 500) - 0.011).abs() < 1e-12);
    }
}
