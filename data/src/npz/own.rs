//! A user's own `.npz` file as a dataset: its facts for the grid loader ([`GridReader`], so the
//! coordinator refuses a bad file at load), and the file found, checked against the SHA-256 the
//! trial names, and decoded on a worker ([`load_own`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sweep_common::DatasetKind;
use sweep_common::dataset::{OwnData, OwnDataReader, OwnFacts};

use super::{NpzData, Pixels, check_npz, load_npz};
use crate::{Corruption, DataError, FileLoc, ImageSet, MAX_FILE_BYTES};

/// What the grid loader needs of a user's `.npz`: its facts, from [`check_npz`] (pixels
/// unread) and the SHA-256 of its bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct GridReader;

impl OwnDataReader for GridReader {
    fn read(&self, path: &Path, file: &str) -> Result<OwnFacts, String> {
        // Named as the grid names it: the message is shown at the grid's `dataset` entry.
        facts(path, file).map_err(|e| e.to_string().replace(&path.display().to_string(), file))
    }
}

/// The facts of the `.npz` at `path`, which the grid names `file`.
pub fn facts(path: &Path, file: &str) -> Result<OwnFacts, DataError> {
    let data = check_npz(path)?;
    let absolute = std::fs::canonicalize(path).map_err(|source| DataError::Io {
        file: FileLoc::file(path),
        source,
    })?;
    Ok(OwnFacts {
        file: file.to_owned(),
        path: absolute.display().to_string(),
        sha256: sha256(path)?,
        shape: data.shape,
        train_len: data.train.labels.len(),
        test_len: data.test.as_ref().map_or(0, |t| t.labels.len()),
        class_names: data.class_names,
    })
}

/// Lowercase hex SHA-256 of the file at `path` (at most [`MAX_FILE_BYTES`] read).
pub fn sha256(path: &Path) -> Result<String, DataError> {
    let io_err = |source: io::Error| DataError::Io {
        file: FileLoc::file(path),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?.take(MAX_FILE_BYTES + 1);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    if total > MAX_FILE_BYTES {
        return Err(DataError::corrupt(
            &FileLoc::file(path),
            Corruption::Length,
            format!("at most {MAX_FILE_BYTES} bytes"),
            "a larger file",
        ));
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Where a worker looks for an own file: where the coordinator read it (same machine), then
/// its file name in `data_dir`.
pub fn candidates(d: OwnData, data_dir: &Path) -> Vec<PathBuf> {
    vec![
        PathBuf::from(&d.facts().path),
        data_dir.join(d.facts().file_name()),
    ]
}

/// Finds the file of `d` (see [`candidates`]), checks that its SHA-256 is the one the trial
/// names, and decodes it: `x_train` then `x_test` (when the file has one), as one set.
pub fn load_own(d: OwnData, data_dir: &Path) -> Result<ImageSet, DataError> {
    let tried = candidates(d, data_dir);
    let Some(path) = tried.iter().find(|p| p.is_file()) else {
        return Err(DataError::NotFound {
            dataset: DatasetKind::Own(d),
            tried,
            expected: format!(
                "the grid's file {} (SHA-256 {}), on this machine where the coordinator read \
                 it or as {} in the worker's --data-dir",
                d.file(),
                d.facts().sha256,
                d.facts().file_name()
            ),
        });
    };
    let found = sha256(path)?;
    if found != d.facts().sha256 {
        return Err(DataError::corrupt(
            &FileLoc::file(path),
            Corruption::Content,
            format!("the file the grid named (SHA-256 {})", d.facts().sha256),
            format!("another file (SHA-256 {found}): copy the grid's file here"),
        ));
    }
    let data = load_npz(path)?;
    to_image_set(d, path, data)
}

fn to_image_set(d: OwnData, path: &Path, data: NpzData) -> Result<ImageSet, DataError> {
    let f = d.facts();
    let test_len = data.test.as_ref().map_or(0, |t| t.labels.len());
    if data.shape != f.shape
        || data.train.labels.len() != f.train_len
        || test_len != f.test_len
        || data.class_names != f.class_names
    {
        return Err(DataError::corrupt(
            &FileLoc::file(path),
            Corruption::Content,
            "the facts the coordinator read (same SHA-256)",
            "other shapes, counts or class names",
        ));
    }
    let mut set = ImageSet::new(DatasetKind::Own(d));
    // The loader checked that x_test has x_train's dtype.
    for split in std::iter::once(data.train).chain(data.test) {
        match split.pixels {
            Pixels::U8(p) => set.images.extend_from_slice(&p),
            Pixels::F32(p) => set
                .float_images
                .get_or_insert_default()
                .extend_from_slice(&p),
        }
        set.labels.extend_from_slice(&split.labels);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{OwnNpz, write_own_npz, write_own_npz_f32};

    fn spec(test: usize, names: bool) -> OwnNpz {
        OwnNpz {
            hwc: [6, 5, 3],
            classes: 4,
            train: 30,
            test,
            class_names: names.then(|| ["a", "b", "c", "d"].map(String::from).to_vec()),
            seed: 9,
        }
    }

    fn own(dir: &Path, s: &OwnNpz) -> (PathBuf, OwnData) {
        let path = dir.join("own.npz");
        write_own_npz(&path, s).unwrap();
        let facts = facts(&path, "data/own.npz").unwrap();
        (path, OwnData::new(facts).unwrap())
    }

    #[test]
    fn the_grid_reads_facts_and_a_worker_the_same_images() {
        let dir = tempfile::tempdir().unwrap();
        let (path, d) = own(dir.path(), &spec(10, true));
        let f = d.facts();
        assert_eq!(f.shape, [3, 6, 5]);
        assert_eq!((f.train_len, f.test_len), (30, 10));
        assert_eq!(f.class_names, ["a", "b", "c", "d"]);
        assert_eq!(f.sha256, sha256(&path).unwrap());
        assert_eq!(f.sha256.len(), 64);
        let full = load_npz(&path).unwrap();
        let set = load_own(d, Path::new("/nonexistent")).unwrap();
        assert_eq!(set.kind, DatasetKind::Own(d));
        assert_eq!(set.len(), 40);
        let Pixels::U8(train) = &full.train.pixels else {
            panic!("u8")
        };
        assert_eq!(&set.images[..train.len()], train.as_slice());
        assert_eq!(&set.labels[30..], full.test.unwrap().labels.as_slice());
    }

    #[test]
    fn without_class_names_the_labels_name_the_classes() {
        let dir = tempfile::tempdir().unwrap();
        let (_, d) = own(dir.path(), &spec(0, false));
        assert_eq!(d.class_names(), &["0", "1", "2", "3"]);
        assert_eq!(d.facts().test_len, 0);
    }

    #[test]
    fn a_worker_elsewhere_finds_the_file_in_its_data_dir_and_checks_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, d) = own(dir.path(), &spec(0, true));
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::rename(&path, elsewhere.path().join("own.npz")).unwrap();
        // Not where the coordinator read it, nor in this data folder: both places named.
        let e = load_own(d, dir.path()).unwrap_err().to_string();
        assert!(e.contains("not found"), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("--data-dir"), "{e}");
        assert_eq!(load_own(d, elsewhere.path()).unwrap().len(), 30);
        // Another file under the same name is refused by its hash.
        write_own_npz(&elsewhere.path().join("own.npz"), &spec(0, false)).unwrap();
        let e = load_own(d, elsewhere.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("SHA-256 {}", d.facts().sha256)), "{e}");
    }

    #[test]
    fn float_images_reach_the_worker_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npz");
        let s = spec(10, true);
        write_own_npz_f32(&path, &s).unwrap();
        let d = OwnData::new(facts(&path, "f.npz").unwrap()).unwrap();
        let set = load_own(d, Path::new("/nonexistent")).unwrap();
        assert!(set.images.is_empty());
        let floats = set.float_images.as_deref().expect("float images");
        assert_eq!(floats.len(), 40 * 6 * 5 * 3);
        // The same images as the uint8 file of the same spec, divided by 255.
        let bytes = dir.path().join("u.npz");
        write_own_npz(&bytes, &s).unwrap();
        let u = OwnData::new(facts(&bytes, "u.npz").unwrap()).unwrap();
        let u8s = load_own(u, Path::new("/nonexistent")).unwrap();
        assert!(u8s.float_images.is_none());
        let scaled: Vec<f32> = u8s.images.iter().map(|&b| f32::from(b) / 255.0).collect();
        assert_eq!(floats, scaled.as_slice());
        assert_eq!(set.labels, u8s.labels);
    }
}
