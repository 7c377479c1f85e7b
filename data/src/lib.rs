//! `sweep-data`: readers of the official dataset files, and writers of small fixtures in the same
//! formats. Used by the worker and the tests; no networking, no libtorch.
//!
//! [`load_train_set`] decodes the official TRAINING set of a dataset from a data folder into an
//! [`ImageSet`]: every image channel-major (C, H, W) `u8`, flattened, with its label. Nothing is
//! downloaded; nothing is extracted to disk.
//!
//! # Where the files are looked for
//!
//! Fashion-MNIST (official IDX files `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`,
//! each either as is or gzipped with a `.gz` suffix; the plain file wins when both are there),
//! in the first of these folders that holds either file:
//! 1. `data_dir` itself (so Debian's `/usr/share/datasets/fashion-mnist` works as it is),
//! 2. `data_dir/fashion-mnist`,
//! 3. `data_dir/FashionMNIST/raw` (torchvision's layout).
//!
//! CIFAR-10, in `data_dir`, then `data_dir/cifar10`, then `data_dir/cifar-10`; in each, the first
//! of these that exists:
//! 1. the extracted binary version, folder `cifar-10-batches-bin/` (`data_batch_1.bin` ..
//!    `data_batch_5.bin`, records of 1 label byte + 3072 pixel bytes),
//! 2. the extracted python version, folder `cifar-10-batches-py/` (`data_batch_1` ..
//!    `data_batch_5`, pickled dicts holding a numpy array; read by a small pickle interpreter that
//!    never runs code),
//! 3. the original archive `cifar-10-binary.tar.gz`,
//! 4. the original archive `cifar-10-python.tar.gz`.
//!
//! MNIST (same IDX files and names as Fashion-MNIST), in `data_dir/mnist`, then
//! `data_dir/MNIST/raw` (torchvision's layout); never in `data_dir` itself, where the same file
//! names mean Fashion-MNIST.
//!
//! CIFAR-100 (binary version, the fine labels), in `data_dir`, then `data_dir/cifar100`, then
//! `data_dir/cifar-100`: the extracted folder `cifar-100-binary/` (`train.bin`, records of a coarse
//! label byte, a fine label byte and 3072 pixel bytes), else the archive `cifar-100-binary.tar.gz`.
//!
//! Last, for CIFAR-10, `data_dir` may itself be an extracted batches folder (holding `data_batch_1.bin` or
//! `data_batch_1`). The first candidate found is the one loaded: a candidate that is incomplete
//! or corrupt is an error, never a silent fall-back to the next one. Archives are read straight
//! from the `.tar.gz`, batch by batch, in memory.
//!
//! Every file (and every archive member) is limited to [`MAX_FILE_BYTES`] once decompressed, and
//! no length read from a file is trusted for an allocation.

mod cifar;
pub mod fixtures;
mod idx;
pub mod npz;
mod pickle;
mod pickler;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use sweep_common::DatasetKind;

/// Largest size a dataset file (or archive member) may have once decompressed: 256 MiB, about five
/// times the largest official file (Fashion-MNIST's 47 MB of training images).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A decoded image set: `n` images, each channel-major (C, H, W) `u8` bytes, flattened, and their
/// labels (`0..kind.num_classes()`). `images.len() == labels.len() * kind.input_len()`.
#[derive(Clone, PartialEq)]
pub struct ImageSet {
    /// The dataset these images come from (it fixes the image shape).
    pub kind: DatasetKind,
    /// All images, one after the other, each `kind.input_len()` bytes.
    pub images: Vec<u8>,
    /// `float32` images (a user's own `.npz` only), in place of `images` (then empty), laid out
    /// the same, each value finite and taken as given (not scaled).
    pub float_images: Option<Vec<f32>>,
    /// One label per image, each below `kind.num_classes()`.
    pub labels: Vec<u8>,
}

impl ImageSet {
    /// An empty set of `kind`.
    pub fn new(kind: DatasetKind) -> Self {
        Self {
            kind,
            images: Vec::new(),
            float_images: None,
            labels: Vec::new(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `index` (channel-major), or `None` past the end (and for a set of
    /// `float_images`).
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let len = self.kind.input_len();
        let start = index.checked_mul(len)?;
        self.images.get(start..start.checked_add(len)?)
    }
}

// Images are megabytes: print a summary, never the bytes.
impl fmt::Debug for ImageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageSet")
            .field("kind", &self.kind)
            .field("len", &self.len())
            .field("image_bytes", &self.images.len())
            .finish()
    }
}

/// A file, or a member of a `.tar.gz` archive: where a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLoc {
    /// The file on disk (the archive, for a member).
    pub path: PathBuf,
    /// The member's path inside the archive, if the file is an archive.
    pub member: Option<String>,
}

impl FileLoc {
    /// A plain file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            member: None,
        }
    }

    /// A member of an archive.
    pub fn member(archive: impl Into<PathBuf>, member: impl Into<String>) -> Self {
        Self {
            path: archive.into(),
            member: Some(member.into()),
        }
    }
}

impl fmt::Display for FileLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.member {
            None => write!(f, "{}", self.path.display()),
            Some(m) => write!(f, "{} (member {m})", self.path.display()),
        }
    }
}

/// What is wrong with a corrupt file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// Not gzip data, or a damaged or truncated gzip stream.
    Gzip,
    /// Not a tar (or, for `.npz`, zip) archive, or a damaged one.
    Archive,
    /// A wrong magic number (IDX files).
    Magic,
    /// A length that disagrees with the header or the record size (truncated, too long, too big).
    Length,
    /// Images of the wrong shape, or an array of the wrong shape.
    Shape,
    /// An array of the wrong element type.
    Dtype,
    /// A label outside `0..10`.
    Label,
    /// Counts that disagree (labels vs images), or no image at all.
    Count,
    /// A pickle the interpreter cannot read (bad or unsupported opcode, truncated).
    Pickle,
    /// A well-formed file holding something else than expected (e.g. a dict without `data`).
    Content,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Corruption::Gzip => "invalid gzip data",
            Corruption::Archive => "invalid archive",
            Corruption::Magic => "bad magic number",
            Corruption::Length => "wrong length",
            Corruption::Shape => "wrong shape",
            Corruption::Dtype => "wrong element type",
            Corruption::Label => "label out of range",
            Corruption::Count => "wrong count",
            Corruption::Pickle => "invalid pickle",
            Corruption::Content => "unexpected content",
        })
    }
}

/// Why a training set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No candidate location holds the dataset.
    #[error("{dataset} training set not found; looked for {}; expected {expected}", join_paths(.tried))]
    NotFound {
        /// The dataset looked for.
        dataset: DatasetKind,
        /// Every path looked at, in search order.
        tried: Vec<PathBuf>,
        /// The files that would have been accepted.
        expected: String,
    },
    /// A folder or archive holds part of the dataset only.
    #[error(
        "incomplete {dataset} training set in {}: expected {expected}, missing {}",
        .location.display(),
        .missing.join(", ")
    )]
    Incomplete {
        /// The dataset.
        dataset: DatasetKind,
        /// The folder or archive.
        location: PathBuf,
        /// The files it should hold.
        expected: String,
        /// The files it lacks.
        missing: Vec<String>,
    },
    /// The file exists but could not be read.
    #[error("cannot read {file}: {source}")]
    Io {
        /// The file.
        file: FileLoc,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file's content is not what the format requires.
    #[error("corrupt {file}: {what}: expected {expected}, found {found}")]
    Corrupt {
        /// The file (and archive member).
        file: FileLoc,
        /// The kind of corruption.
        what: Corruption,
        /// What the format requires.
        expected: String,
        /// What the file holds.
        found: String,
    },
}

impl DataError {
    /// The file the error is about, if it is about one file.
    pub fn file(&self) -> Option<&FileLoc> {
        match self {
            DataError::Io { file, .. } | DataError::Corrupt { file, .. } => Some(file),
            DataError::NotFound { .. } | DataError::Incomplete { .. } => None,
        }
    }

    /// The kind of corruption, for a corrupt file.
    pub fn corruption(&self) -> Option<Corruption> {
        match self {
            DataError::Corrupt { what, .. } => Some(*what),
            _ => None,
        }
    }

    pub(crate) fn corrupt(
        file: &FileLoc,
        what: Corruption,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        DataError::Corrupt {
            file: file.clone(),
            what,
            expected: expected.into(),
            found: found.into(),
        }
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    let parts: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    parts.join(", ")
}

/// Loads the OFFICIAL TRAINING SET of `kind` from `data_dir` (see the module doc for where the
/// files are looked for and in which formats).
pub fn load_train_set(kind: DatasetKind, data_dir: &Path) -> Result<ImageSet, DataError> {
    match kind {
        DatasetKind::FashionMnist | DatasetKind::Mnist => idx::load_idx_dataset(kind, data_dir),
        DatasetKind::Cifar10 => cifar::load_cifar10(data_dir),
        DatasetKind::Cifar100 => cifar::load_cifar100(data_dir),
        DatasetKind::Own(d) => npz::load_own(d, data_dir),
    }
}

/// The two magic bytes that open a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a whole file, gunzipping it if its name ends in `.gz` or its content starts like gzip.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let loc = FileLoc::file(path);
    let file = File::open(path).map_err(|source| DataError::Io {
        file: loc.clone(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(|source| DataError::Io {
        file: loc.clone(),
        source,
    })?;
    let named_gz = path.extension().is_some_and(|e| e == "gz");
    if head.starts_with(&GZIP_MAGIC) {
        read_bounded(&loc, GzDecoder::new(reader), true)
    } else if named_gz {
        Err(DataError::corrupt(
            &loc,
            Corruption::Gzip,
            "a gzip stream (starting 1f 8b)",
            format!("a file starting {}", hex_prefix(head)),
        ))
    } else {
        read_bounded(&loc, reader, false)
    }
}

/// Reads `reader` to its end, at most [`MAX_FILE_BYTES`]. Memory grows with the bytes actually
/// read, never with a length claimed by a header. A read error of a gzip stream is corruption.
pub(crate) fn read_bounded(
    loc: &FileLoc,
    reader: impl Read,
    gzip: bool,
) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    match reader.take(MAX_FILE_BYTES + 1).read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if gzip && is_decode_error(&e) => {
            return Err(DataError::corrupt(
                loc,
                Corruption::Gzip,
                "a complete, valid gzip stream",
                e.to_string(),
            ));
        }
        Err(source) => {
            return Err(DataError::Io {
                file: loc.clone(),
                source,
            });
        }
    }
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(DataError::corrupt(
            loc,
            Corruption::Length,
            format!("at most {MAX_FILE_BYTES} bytes"),
            "more",
        ));
    }
    Ok(out)
}

/// Whether an I/O error from a decoder means bad input (rather than a failing disk).
pub(crate) fn is_decode_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    )
}

/// The first bytes of `bytes` in hex, for error messages.
pub(crate) fn hex_prefix(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(empty)".to_owned();
    }
    let parts: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_debian_fashion_mnist_loads() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        if !dir.is_dir() {
            println!(
                "note: {} is absent; skipping the real-data test",
                dir.display()
            );
            return;
        }
        let set = load_train_set(DatasetKind::FashionMnist, dir).expect("real data loads");
        assert_eq!(set.len(), 60_000);
        assert_eq!(set.images.len(), 60_000 * 784);
        assert_eq!(set.labels[..10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
        // Balanced: 6000 of each class.
        let mut counts = [0usize; 10];
        for &l in &set.labels {
            counts[usize::from(l)] += 1;
        }
        assert_eq!(counts, [6000; 10]);
    }

    #[test]
    fn not_found_names_dataset_paths_and_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = load_train_set(DatasetKind::FashionMnist, tmp.path()).expect_err("empty dir");
        let msg = err.to_string();
        assert!(matches!(err, DataError::NotFound { .. }), "{msg}");
        assert!(
            msg.starts_with("fashion-mnist training set not found"),
            "{msg}"
        );
        assert!(msg.contains("FashionMNIST/raw"), "{msg}");
        assert!(msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
        assert!(msg.contains("train-labels-idx1-ubyte.gz"), "{msg}");

        let err = load_train_set(DatasetKind::Cifar10, tmp.path()).expect_err("empty dir");
        let msg = err.to_string();
        let DataError::NotFound { tried, .. } = &err else {
            panic!("expected not found, got {msg}");
        };
        // 3 bases x 4 candidates + the data dir itself as a batches folder (2).
        assert_eq!(tried.len(), 14, "{msg}");
        for part in [
            "cifar10 training set not found",
            "cifar-10/cifar-10-python.tar.gz",
            "cifar10/cifar-10-batches-bin",
            "data_batch_5.bin",
            "cifar-10-binary.tar.gz",
        ] {
            assert!(msg.contains(part), "{part:?} not in {msg}");
        }
    }

    #[test]
    fn image_accessor_and_debug() {
        let set = ImageSet {
            kind: DatasetKind::FashionMnist,
            images: vec![7; 784 * 2],
            float_images: None,
            labels: vec![1, 2],
        };
        assert_eq!(set.image(1).map(<[u8]>::len), Some(784));
        assert_eq!(set.image(2), None);
        assert_eq!(set.image(usize::MAX), None);
        assert!(format!("{set:?}").contains("len: 2"));
    }
}
