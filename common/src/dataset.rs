//! The datasets a trial can train on: their names in grid files, class names and image shapes.

mod own;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use own::{
    MAX_CLASS_NAME_CHARS, MAX_OWN_CHANNELS, MAX_OWN_CLASSES, MAX_OWN_DATASETS, MAX_OWN_PATH_CHARS,
    MAX_OWN_SIDE, NoOwnData, OwnData, OwnDataReader, OwnFacts,
};

/// A dataset a trial trains on: one known to sweep, or a user's own `.npz` file. Each trial
/// trains on the dataset's official training set (an own file's `x_train`), split into a train
/// and a test part (see [`crate::trial::SplitSpec`]); an own file with `x_test` tests on that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetKind {
    /// Fashion-MNIST: 60 000 training images, 28x28 grey, 10 classes.
    FashionMnist,
    /// CIFAR-10: 50 000 training images, 32x32 RGB, 10 classes.
    Cifar10,
    /// MNIST (handwritten digits): 60 000 training images, 28x28 grey, 10 classes.
    Mnist,
    /// CIFAR-100: 50 000 training images, 32x32 RGB, 100 fine classes.
    Cifar100,
    /// A user's own `.npz` file (named in grid files by its path, which ends in `.npz`).
    Own(OwnData),
}

/// One file of a dataset's official download: the name it is saved under (relative to the data
/// folder), its publisher's URL, and the MD5 the publisher gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfficialFile {
    /// Saved as `data_dir/{file}`; also fetched as `{mirror}/{file}` with a mirror.
    pub file: &'static str,
    /// The official URL.
    pub url: &'static str,
    /// Lowercase hex MD5.
    pub md5: &'static str,
}

impl DatasetKind {
    /// Every built-in dataset, in the order used by error messages.
    pub const ALL: [DatasetKind; 4] = [
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
        DatasetKind::Mnist,
        DatasetKind::Cifar100,
    ];

    /// The name used in grid files, on the wire and in reports.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Own(d) => d.file(),
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
            DatasetKind::Mnist => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::Cifar100 => &CIFAR100_FINE,
            DatasetKind::Own(d) => d.class_names(),
        }
    }

    /// Number of classes (the model's output width).
    pub fn num_classes(self) -> usize {
        self.class_names().len()
    }

    /// Image shape as (channels, height, width), channel-major like `ToTensor()`.
    pub fn image_shape(self) -> [usize; 3] {
        match self {
            DatasetKind::FashionMnist | DatasetKind::Mnist => [1, 28, 28],
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => [3, 32, 32],
            DatasetKind::Own(d) => d.facts().shape,
        }
    }

    /// Length of a flattened image: the model's input width.
    pub fn input_len(self) -> usize {
        self.image_shape().iter().product()
    }

    /// Number of images a worker loads: the official training set, from which trials take
    /// their train and test parts; for an own file, `x_train` and `x_test` together (see
    /// [`crate::trial::TrialSpec::parts`]).
    pub fn official_train_len(self) -> usize {
        match self {
            DatasetKind::FashionMnist | DatasetKind::Mnist => 60_000,
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 50_000,
            DatasetKind::Own(d) => d.facts().train_len + d.facts().test_len,
        }
    }

    /// Images at the end of the loaded set that are the test part whatever the split (an own
    /// file's `x_test`); 0 when trials split the whole set.
    pub fn held_out_len(self) -> usize {
        match self {
            DatasetKind::Own(d) => d.facts().test_len,
            _ => 0,
        }
    }

    /// The user's own file, for [`DatasetKind::Own`].
    pub fn own(self) -> Option<OwnData> {
        match self {
            DatasetKind::Own(d) => Some(d),
            _ => None,
        }
    }

    /// What trial ids name: the name, and for an own file also its content's SHA-256 (so a
    /// changed file makes new trials).
    pub fn canonical(self) -> String {
        match self {
            DatasetKind::Own(d) => d.canonical(),
            kind => kind.name().to_owned(),
        }
    }

    /// The files a worker downloads when the dataset is missing (the training set only), with
    /// their publishers' URLs and MD5s. No publisher gives a SHA-256, so MD5 is what is checked.
    ///
    /// - Fashion-MNIST, from its publisher's repository (github.com/zalandoresearch/fashion-mnist,
    ///   folder `data/fashion`); the MD5s are those of the "Get the Data" table of its README.md
    ///   (torchvision's `FashionMNIST.resources` lists the same).
    /// - CIFAR-10 and CIFAR-100, binary versions, from the authors' page
    ///   <https://www.cs.toronto.edu/~kriz/cifar.html>, whose download table gives the MD5s.
    /// - MNIST: yann.lecun.com no longer serves the files reliably; the copy torchvision
    ///   downloads from (`ossci-datasets.s3.amazonaws.com/mnist`) is used, with torchvision's
    ///   MD5s of the original files (`MNIST.resources`). Saved under `mnist/`, because its file
    ///   names are those of Fashion-MNIST.
    pub fn official_files(self) -> &'static [OfficialFile] {
        match self {
            DatasetKind::FashionMnist => &[
                OfficialFile {
                    file: "train-images-idx3-ubyte.gz",
                    url: "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-images-idx3-ubyte.gz",
                    md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                },
                OfficialFile {
                    file: "train-labels-idx1-ubyte.gz",
                    url: "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/train-labels-idx1-ubyte.gz",
                    md5: "25c81989df183df01b3e8a0aad5dffbe",
                },
            ],
            DatasetKind::Cifar10 => &[OfficialFile {
                file: "cifar-10-binary.tar.gz",
                url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                md5: "c32a1d4ab5d03f1284b67883e8d87530",
            }],
            DatasetKind::Mnist => &[
                OfficialFile {
                    file: "mnist/train-images-idx3-ubyte.gz",
                    url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                    md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                },
                OfficialFile {
                    file: "mnist/train-labels-idx1-ubyte.gz",
                    url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
                    md5: "d53e105ee54ea40749a09fcbcd1e9432",
                },
            ],
            DatasetKind::Cifar100 => &[OfficialFile {
                file: "cifar-100-binary.tar.gz",
                url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                md5: "03b5dce01913d631647c71ecec9e9cb8",
            }],
            DatasetKind::Own(_) => &[],
        }
    }
}

/// CIFAR-100's fine class names, indexed by fine label (the order of `fine_label_names.txt`).
const CIFAR100_FINE: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// Built-in datasets as their names; an own file as its facts.
impl Serialize for DatasetKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DatasetKind::Own(d) => d.facts().serialize(serializer),
            kind => serializer.serialize_str(kind.name()),
        }
    }
}

impl<'de> Deserialize<'de> for DatasetKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Name(String),
            Own(OwnFacts),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Name(name) => name.parse().map_err(serde::de::Error::custom),
            Repr::Own(facts) => OwnData::new(facts)
                .map(DatasetKind::Own)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Error for a dataset name that sweep does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown dataset {given:?}; allowed: fashion-mnist, cifar10, mnist, cifar100, or a .npz file's path"
)]
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
            let classes = if d == DatasetKind::Cifar100 { 100 } else { 10 };
            assert_eq!(d.num_classes(), classes);
            assert!(!d.official_files().is_empty());
            // The error's list of allowed names is this list.
            assert!(
                UnknownDataset { given: "x".into() }
                    .to_string()
                    .contains(d.name())
            );
        }
        assert!("mnist-fashion".parse::<DatasetKind>().is_err());
        assert_eq!(DatasetKind::Cifar100.input_len(), 3072);
        assert_eq!(DatasetKind::Mnist.input_len(), 784);
        assert_eq!(DatasetKind::Cifar10.input_len(), 3072);
        assert_eq!(DatasetKind::FashionMnist.input_len(), 784);
    }
}
