//! A trial: one fully resolved grid cell, everything a worker needs to train one model.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::dataset::DatasetKind;
use crate::ids::TrialId;

/// The activation after each hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(0, x)
    Relu,
    /// tanh(x)
    Tanh,
    /// 1 / (1 + e^-x)
    Sigmoid,
}

impl Activation {
    /// Every activation, in the order error messages list them.
    pub const ALL: [Activation; 3] = [Activation::Relu, Activation::Tanh, Activation::Sigmoid];

    /// The name used in grid files and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }

    /// The name PyTorch gives the module (`nn.ReLU`), used in trial names and reports.
    pub fn display_name(self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::Tanh => "Tanh",
            Activation::Sigmoid => "Sigmoid",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// Error for an activation name that sweep does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown activation {given:?}; allowed: relu, tanh, sigmoid")]
pub struct UnknownActivation {
    /// The name that was given.
    pub given: String,
}

impl FromStr for Activation {
    type Err = UnknownActivation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownActivation {
                given: s.to_owned(),
            })
    }
}

/// The hyperparameters of one trial: the values every grid axis resolves to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HyperParams {
    /// Activation after each hidden layer.
    pub activation: Activation,
    /// Number of hidden `Linear + activation` blocks (0 gives a linear classifier).
    pub hidden_layers: u32,
    /// Width of every hidden layer.
    pub hidden_width: u32,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Mini-batch size; the last batch of an epoch may be shorter.
    pub batch_size: u32,
    /// Number of passes over the training subset.
    pub epochs: u32,
    /// Fraction of the train split used for training, in (0, 1].
    pub train_fraction: f64,
    /// Seed of the weight initialisation, the training subset and the per-epoch shuffles.
    pub seed: u64,
}

/// How the official training set is split into the train and test parts (lab 1's 70:30).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    /// Fraction of the official training set in the train part, in (0, 1).
    pub train_ratio: f64,
    /// Seed of the split; the sweep's seed, so every trial of a sweep sees the same split.
    pub seed: u64,
}

impl SplitSpec {
    /// Sizes of the (train, test) parts of a set of `n` images, as `random_split` computes them
    /// in the lab: `int(n * ratio)` and the rest.
    pub fn sizes(&self, n: usize) -> (usize, usize) {
        // Truncation is the lab's `int(...)`; the product is < n, so it fits.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let train = ((n as f64) * self.train_ratio) as usize;
        let train = train.min(n);
        (train, n - train)
    }
}

/// One trial, fully resolved: what a worker trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSpec {
    /// Content-derived id (see [`TrialSpec::canonical`]).
    pub id: TrialId,
    /// Name of the experiment (grid file section) the trial belongs to.
    pub experiment: String,
    /// Human-readable name from the experiment's `trial_name` template.
    pub name: String,
    /// Dataset to train on.
    pub dataset: DatasetKind,
    /// Hyperparameters.
    pub params: HyperParams,
    /// Train/test split of the official training set.
    pub split: SplitSpec,
    /// Save a checkpoint every this many epochs (0: never). Not part of the trial's content:
    /// changing it does not change the trial's id or its results.
    pub checkpoint_every: u32,
}

impl TrialSpec {
    /// The canonical text of everything that determines the trial's outcome; its id is the
    /// UUID v5 of this text. The display name is not part of it (renaming retrains nothing).
    pub fn canonical(
        experiment: &str,
        dataset: DatasetKind,
        p: &HyperParams,
        split: &SplitSpec,
    ) -> String {
        format!(
            "sweep-trial-v1|experiment={experiment:?}|dataset={dataset}|activation={}|hidden_layers={}|hidden_width={}|learning_rate={:?}|batch_size={}|epochs={}|train_fraction={:?}|seed={}|split_ratio={:?}|split_seed={}",
            p.activation.name(),
            p.hidden_layers,
            p.hidden_width,
            p.learning_rate,
            p.batch_size,
            p.epochs,
            p.train_fraction,
            p.seed,
            split.train_ratio,
            split.seed,
        )
    }

    /// Recomputes the id from the content; a spec whose id does not match was tampered with.
    pub fn content_id(&self) -> TrialId {
        TrialId::from_content(&Self::canonical(
            &self.experiment,
            self.dataset,
            &self.params,
            &self.split,
        ))
    }

    /// Number of training images this trial trains on, given the official training set size.
    pub fn train_subset_len(&self, official_len: usize) -> usize {
        let (train, _) = self.split.sizes(official_len);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = ((train as f64) * self.params.train_fraction) as usize;
        n.clamp(1, train.max(1))
    }
}

/// Whether `c` stays as it is in a file name made from a trial name.
fn file_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The file-name form of a trial name, the one rule for every file named after a trial (its
/// final weights `models/<stem>.safetensors`): ASCII letters, digits, `_`, `-` and `.` kept,
/// every other character replaced by `_`.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| if file_safe(c) { c } else { '_' })
        .collect()
}

/// The characters of the file name a trial name gives, as a file system that ignores case
/// (macOS's, Windows') compares them: two trial names with equal keys would share their files.
pub fn file_key_chars(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars().map(|c| {
        if file_safe(c) {
            c.to_ascii_lowercase()
        } else {
            '_'
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_safe_characters_and_replace_the_rest() {
        assert_eq!(file_stem("Lab1_P2_0.2-x"), "Lab1_P2_0.2-x");
        assert_eq!(file_stem("a/b c\\é"), "a_b_c__");
        let key = |s: &str| file_key_chars(s).collect::<String>();
        assert_eq!(key("A/b"), key("a_B"));
        assert_ne!(key("a-b"), key("a_b"));
    }

    #[test]
    fn split_sizes_match_random_split() {
        let s = SplitSpec {
            train_ratio: 0.7,
            seed: 0,
        };
        assert_eq!(s.sizes(60_000), (42_000, 18_000));
        assert_eq!(s.sizes(50_000), (35_000, 15_000));
    }

    #[test]
    fn activation_names() {
        for a in Activation::ALL {
            assert_eq!(a.name().parse::<Activation>(), Ok(a));
        }
        assert_eq!(Activation::Relu.to_string(), "ReLU");
        assert!("gelu".parse::<Activation>().is_err());
    }
}
