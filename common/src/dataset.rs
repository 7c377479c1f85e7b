//! The datasets a trial can train on: their names in grid files, class names and image shapes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A dataset known to sweep. Each trial trains on the dataset's official training set, split into
/// a train and a test part (see [`crate::trial::SplitSpec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Fashion-MNIST: 60 000 training images, 28x28 grey, 10 classes.
    FashionMnist,
    /// CIFAR-10: 50 000 training images, 32x32 RGB, 10 classes.
    Cifar10,
}

impl DatasetKind {
    /// Every dataset, in the order used by error messages.
    pub const ALL: [DatasetKind; 2] = [DatasetKind::FashionMnist, DatasetKind::Cifar10];

    /// The name used in grid files, on the wire and in reports.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }

    /// Class names, indexed by label.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            DatasetKind::FashionMnist => &[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            DatasetKind::Cifar10 => &[
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ],
        }
    }

    /// Number of classes (the model's output width).
    pub fn num_classes(self) -> usize {
        self.class_names().len()
    }

    /// Image shape as (channels, height, width), channel-major like `ToTensor()`.
    pub fn image_shape(self) -> [usize; 3] {
        match self {
            DatasetKind::FashionMnist => [1, 28, 28],
            DatasetKind::Cifar10 => [3, 32, 32],
        }
    }

    /// Length of a flattened image: the model's input width.
    pub fn input_len(self) -> usize {
        self.image_shape().iter().product()
    }

    /// Number of images in the official training set.
    pub fn official_train_len(self) -> usize {
        match self {
            DatasetKind::FashionMnist => 60_000,
            DatasetKind::Cifar10 => 50_000,
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a dataset name that sweep does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dataset {given:?}; allowed: fashion-mnist, cifar10")]
pub struct UnknownDataset {
    /// The name that was given.
    pub given: String,
}

impl FromStr for DatasetKind {
    type Err = UnknownDataset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetKind::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| UnknownDataset {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DatasetKind::ALL {
            assert_eq!(d.name().parse::<DatasetKind>(), Ok(d));
            assert_eq!(d.num_classes(), 10);
        }
        assert!("mnist".parse::<DatasetKind>().is_err());
        assert_eq!(DatasetKind::Cifar10.input_len(), 3072);
        assert_eq!(DatasetKind::FashionMnist.input_len(), 784);
    }
}
