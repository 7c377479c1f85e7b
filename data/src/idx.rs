//! Fashion-MNIST and MNIST in their official IDX format (`train-images-idx3-ubyte[.gz]`,
//! `train-labels-idx1-ubyte[.gz]`): finding the files and decoding them with full validation.

use std::path::{Path, PathBuf};

use sweep_common::DatasetKind;

use super::{Corruption, DataError, FileLoc, ImageSet, read_file};

/// Base name of the training images file.
pub(crate) const IMAGES: &str = "train-images-idx3-ubyte";
/// Base name of the training labels file.
pub(crate) const LABELS: &str = "train-labels-idx1-ubyte";
/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub(crate) const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub(crate) const LABELS_MAGIC: u32 = 0x0000_0801;
const SIDE: u32 = 28;
const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;

/// The folders looked in, in order. MNIST's files have the same names as Fashion-MNIST's, so
/// only Fashion-MNIST (the first dataset sweep had) is also looked for in `data_dir` itself.
fn candidate_dirs(kind: DatasetKind, data_dir: &Path) -> Vec<PathBuf> {
    match kind {
        DatasetKind::Mnist => vec![data_dir.join("mnist"), data_dir.join("MNIST").join("raw")],
        _ => vec![
            data_dir.to_path_buf(),
            data_dir.join("fashion-mnist"),
            data_dir.join("FashionMNIST").join("raw"),
        ],
    }
}

/// The file `base` in `dir`: the plain file if present, else the gzipped one.
fn find(dir: &Path, base: &str) -> Option<PathBuf> {
    [dir.join(base), dir.join(format!("{base}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

fn expected_files() -> String {
    format!("{IMAGES}.gz and {LABELS}.gz (or the same without .gz)")
}

/// Finds and decodes the training set of `kind` (Fashion-MNIST or MNIST; see the module doc of
/// `data`).
pub(crate) fn load_idx_dataset(kind: DatasetKind, data_dir: &Path) -> Result<ImageSet, DataError> {
    let dirs = candidate_dirs(kind, data_dir);
    for dir in &dirs {
        let (images, labels) = match (find(dir, IMAGES), find(dir, LABELS)) {
            (None, None) => continue,
            (Some(i), Some(l)) => (i, l),
            (i, _) => {
                let missing = if i.is_none() { IMAGES } else { LABELS };
                return Err(DataError::Incomplete {
                    dataset: kind,
                    location: dir.clone(),
                    expected: expected_files(),
                    missing: vec![format!("{missing}.gz")],
                });
            }
        };
        return load_pair(kind, &images, &labels);
    }
    Err(DataError::NotFound {
        dataset: kind,
        tried: dirs,
        expected: expected_files(),
    })
}

/// Decodes an images file and a labels file that must describe the same images.
pub(crate) fn load_pair(
    kind: DatasetKind,
    images_path: &Path,
    labels_path: &Path,
) -> Result<ImageSet, DataError> {
    let images_loc = FileLoc::file(images_path);
    let labels_loc = FileLoc::file(labels_path);
    let images = decode_images(&images_loc, read_file(images_path)?)?;
    let labels = decode_labels(&labels_loc, read_file(labels_path)?, kind.num_classes())?;
    let n = images.len() / kind.input_len();
    if labels.len() != n {
        return Err(DataError::corrupt(
            &labels_loc,
            Corruption::Count,
            format!("{n} labels, one per image of {}", images_path.display()),
            format!("{} labels", labels.len()),
        ));
    }
    Ok(ImageSet {
        kind,
        images,
        float_images: None,
        labels,
    })
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        word.copy_from_slice(src);
    }
    u32::from_be_bytes(word)
}

/// Checks the header common to both IDX files; returns the item count.
fn check_header(
    loc: &FileLoc,
    bytes: &[u8],
    magic: u32,
    header: usize,
    what: &str,
) -> Result<u64, DataError> {
    if bytes.len() < header {
        return Err(DataError::corrupt(
            loc,
            Corruption::Length,
            format!("at least {header} bytes (the idx {what} header)"),
            format!("{} bytes", bytes.len()),
        ));
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::corrupt(
            loc,
            Corruption::Magic,
            format!("0x{magic:08x} (idx {what})"),
            format!("0x{found:08x}"),
        ));
    }
    let n = be_u32(bytes, 4);
    if n == 0 {
        return Err(DataError::corrupt(
            loc,
            Corruption::Count,
            "at least one item",
            "0",
        ));
    }
    Ok(u64::from(n))
}

/// Decodes an IDX images file (28x28 unsigned bytes) into the pixels, header removed.
pub(crate) fn decode_images(loc: &FileLoc, mut bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
    let n = check_header(loc, &bytes, IMAGES_MAGIC, IMAGES_HEADER, "images")?;
    let (rows, cols) = (be_u32(&bytes, 8), be_u32(&bytes, 12));
    if (rows, cols) != (SIDE, SIDE) {
        return Err(DataError::corrupt(
            loc,
            Corruption::Shape,
            format!("{SIDE}x{SIDE} images"),
            format!("{rows}x{cols}"),
        ));
    }
    let expected = IMAGES_HEADER as u64 + n * u64::from(SIDE * SIDE);
    check_len(loc, &bytes, expected, n, "images of 784 bytes")?;
    bytes.drain(..IMAGES_HEADER);
    Ok(bytes)
}

/// Decodes an IDX labels file into the labels, each checked to be below `classes`.
pub(crate) fn decode_labels(
    loc: &FileLoc,
    mut bytes: Vec<u8>,
    classes: usize,
) -> Result<Vec<u8>, DataError> {
    let n = check_header(loc, &bytes, LABELS_MAGIC, LABELS_HEADER, "labels")?;
    check_len(loc, &bytes, LABELS_HEADER as u64 + n, n, "labels of 1 byte")?;
    bytes.drain(..LABELS_HEADER);
    if let Some((i, l)) = bytes
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= classes)
    {
        return Err(DataError::corrupt(
            loc,
            Corruption::Label,
            format!("labels 0..{classes}"),
            format!("label {l} at index {i}"),
        ));
    }
    Ok(bytes)
}

fn check_len(
    loc: &FileLoc,
    bytes: &[u8],
    expected: u64,
    n: u64,
    items: &str,
) -> Result<(), DataError> {
    let found = bytes.len() as u64;
    if found == expected {
        return Ok(());
    }
    let how = if found < expected {
        "truncated"
    } else {
        "trailing bytes"
    };
    Err(DataError::corrupt(
        loc,
        Corruption::Length,
        format!("{expected} bytes (header + {n} {items})"),
        format!("{found} bytes ({how})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, gzip, idx_images, idx_labels};
    use crate::load_train_set;
    use proptest::prelude::*;
    use std::fs;

    fn load(dir: &Path) -> Result<ImageSet, DataError> {
        load_train_set(DatasetKind::FashionMnist, dir)
    }

    #[test]
    fn writer_round_trips_in_every_layout() {
        for sub in ["", "fashion-mnist", "FashionMNIST/raw"] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().join(sub);
            let written = fixtures::write_fashion_mnist(&dir, 37, 5).expect("write");
            assert_eq!(written.len(), 37);
            assert_eq!(load(tmp.path()).expect("load"), written, "layout {sub:?}");
        }
    }

    #[test]
    fn plain_files_are_accepted_and_preferred() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let set = fixtures::write_fashion_mnist(tmp.path(), 12, 1).expect("write");
        let other = fixtures::write_fashion_mnist(&tmp.path().join("x"), 12, 2).expect("write");
        fs::write(tmp.path().join(IMAGES), idx_images(&other)).expect("write");
        fs::write(tmp.path().join(LABELS), idx_labels(&other)).expect("write");
        assert_eq!(load(tmp.path()).expect("load"), other);
        fs::remove_file(tmp.path().join(IMAGES)).expect("rm");
        fs::remove_file(tmp.path().join(LABELS)).expect("rm");
        assert_eq!(load(tmp.path()).expect("load"), set);
    }

    #[test]
    fn missing_labels_is_incomplete() {
        let tmp = tempfile::tempdir().expect("tempdir");
        fixtures::write_fashion_mnist(tmp.path(), 3, 1).expect("write");
        fs::remove_file(tmp.path().join(format!("{LABELS}.gz"))).expect("rm");
        let err = load(tmp.path()).expect_err("incomplete");
        assert!(matches!(err, DataError::Incomplete { .. }), "{err}");
        assert!(err.to_string().contains(LABELS), "{err}");
    }

    /// Writes a valid set, then replaces one file with `bytes` and checks the error.
    fn corrupt_case(file: &str, bytes: &[u8], what: Corruption, needle: &str) {
        let tmp = tempfile::tempdir().expect("tempdir");
        fixtures::write_fashion_mnist(tmp.path(), 4, 9).expect("write");
        let path = tmp.path().join(file);
        fs::write(&path, bytes).expect("write");
        let err = load(tmp.path()).expect_err("corrupt");
        assert_eq!(err.corruption(), Some(what), "{err}");
        assert_eq!(err.file().map(|f| f.path.clone()), Some(path), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
        assert!(msg.starts_with("corrupt "), "{msg}");
    }

    #[test]
    fn every_corruption_is_reported_with_its_file() {
        let set = ImageSet {
            kind: DatasetKind::FashionMnist,
            images: vec![1; 784 * 4],
            float_images: None,
            labels: vec![0, 1, 2, 3],
        };
        let images = idx_images(&set);
        let labels = idx_labels(&set);
        let img_gz = format!("{IMAGES}.gz");
        let lbl_gz = format!("{LABELS}.gz");

        let mut bad_magic = images.clone();
        bad_magic[3] = 0x01;
        corrupt_case(&img_gz, &gzip(&bad_magic), Corruption::Magic, "0x00000803");
        corrupt_case(
            &lbl_gz,
            &gzip(&images),
            Corruption::Magic,
            "found 0x00000803",
        );
        let truncated = &images[..images.len() - 1];
        corrupt_case(&img_gz, &gzip(truncated), Corruption::Length, "truncated");
        corrupt_case(
            &img_gz,
            &gzip(&images[..10]),
            Corruption::Length,
            "10 bytes",
        );
        let mut long = labels.clone();
        long.push(0);
        corrupt_case(&lbl_gz, &gzip(&long), Corruption::Length, "trailing");
        let mut dims = images.clone();
        dims[11] = 27;
        corrupt_case(&img_gz, &gzip(&dims), Corruption::Shape, "found 27x28");
        let mut label = labels.clone();
        label[9] = 10;
        corrupt_case(
            &lbl_gz,
            &gzip(&label),
            Corruption::Label,
            "label 10 at index 1",
        );
        let mut fewer = set.clone();
        fewer.labels.pop();
        let three = idx_labels(&fewer);
        corrupt_case(&lbl_gz, &gzip(&three), Corruption::Count, "found 3 labels");
        let mut empty = labels[..8].to_vec();
        empty[4..8].copy_from_slice(&[0; 4]);
        corrupt_case(&lbl_gz, &gzip(&empty), Corruption::Count, "at least one");
        // Not gzip at all, under a .gz name; and a gzip stream cut short.
        corrupt_case(&img_gz, b"hello", Corruption::Gzip, "68 65 6c 6c");
        let gz = gzip(&images);
        corrupt_case(&img_gz, &gz[..gz.len() / 2], Corruption::Gzip, "gzip");
        let mut flipped = gz.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        flipped[mid + 1] ^= 0x55;
        corrupt_case(&img_gz, &flipped, Corruption::Gzip, "gzip");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let loc = FileLoc::file("x");
            let _ = decode_images(&loc, bytes.clone());
            let _ = decode_labels(&loc, bytes.clone(), 10);
            // Same bytes behind a valid header prefix, to get past the magic check.
            let mut img = vec![0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28];
            img.extend_from_slice(&bytes);
            let _ = decode_images(&loc, img);
            let mut lbl = vec![0, 0, 8, 1];
            lbl.extend_from_slice(&bytes);
            let _ = decode_labels(&loc, lbl, 10);
        }

        #[test]
        fn arbitrary_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let tmp = tempfile::tempdir().expect("tempdir");
            let mut gz = vec![0x1f, 0x8b, 8, 0];
            gz.extend_from_slice(&bytes);
            fs::write(tmp.path().join(format!("{IMAGES}.gz")), &gz).expect("write");
            fs::write(tmp.path().join(LABELS), &bytes).expect("write");
            prop_assert!(load(tmp.path()).is_err());
        }
    }
}
