//! Writers of small datasets in the REAL official formats, for tests: the same files, names and
//! folder layouts as the official downloads, so the readers in [`crate`] are exercised as
//! on real data.
//!
//! The images are learnable: each class has its own fixed random prototype image (from the seed)
//! and each sample is its prototype plus bounded uniform noise (±64), clamped to `0..=255`, so a
//! small MLP gets well above chance. Labels are balanced (counts differ by at most one), in a
//! random order. Everything is a pure function of the arguments.
//!
//! The CIFAR-10 writers given the same `per_batch` and `seed` write the same images, whatever the
//! format; each returns the training set a reader must load: batches 1 to 5, in order.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use sweep_common::DatasetKind;
use sweep_common::rng::SplitMix64;

use super::ImageSet;

mod npz;
use super::cifar::{
    BATCHES, BIN_DIR, BIN_TAR, C100_DIR, C100_TAR, C100_TRAIN, Flavor, PY_DIR, PY_TAR,
};
use super::idx::{IMAGES, IMAGES_MAGIC, LABELS, LABELS_MAGIC};
use super::pickler::{Item, Py2Pickler};
pub use npz::{OwnNpz, write_own_npz, write_own_npz_f32};

/// Half-width of the noise added to a class prototype.
const NOISE: i32 = 64;
/// Modification time stamped in archives, so they are byte-for-byte reproducible.
const MTIME: u64 = 1_244_000_000;

/// Writes a small Fashion-MNIST training set (gzipped IDX, official names) into `dir`, plus a
/// test set of `max(n / 6, 1)` images under the official `t10k-*` names, and returns the
/// training set.
pub fn write_fashion_mnist(dir: &Path, n: usize, seed: u64) -> io::Result<ImageSet> {
    write_idx(DatasetKind::FashionMnist, dir, n, seed)
}

/// Writes a small MNIST training and test set into `dir`, exactly as [`write_fashion_mnist`]
/// does (same format and names; MNIST is looked for in `data_dir/mnist`, not `data_dir`).
pub fn write_mnist(dir: &Path, n: usize, seed: u64) -> io::Result<ImageSet> {
    write_idx(DatasetKind::Mnist, dir, n, seed)
}

fn write_idx(kind: DatasetKind, dir: &Path, n: usize, seed: u64) -> io::Result<ImageSet> {
    let train = synth(kind, n, seed, &format!("fixture-{kind}-train"), 0);
    let test = synth(
        kind,
        (n / 6).max(1),
        seed,
        &format!("fixture-{kind}-test"),
        0,
    );
    fs::create_dir_all(dir)?;
    fs::write(dir.join(format!("{IMAGES}.gz")), gzip(&idx_images(&train)))?;
    fs::write(dir.join(format!("{LABELS}.gz")), gzip(&idx_labels(&train)))?;
    fs::write(
        dir.join("t10k-images-idx3-ubyte.gz"),
        gzip(&idx_images(&test)),
    )?;
    fs::write(
        dir.join("t10k-labels-idx1-ubyte.gz"),
        gzip(&idx_labels(&test)),
    )?;
    Ok(train)
}

/// CIFAR-10 binary version: `dir/cifar-10-batches-bin/data_batch_{1..5}.bin` (+ `test_batch.bin`,
/// `batches.meta.txt`, `readme.html`), `per_batch` images each.
pub fn write_cifar10_bin(dir: &Path, per_batch: usize, seed: u64) -> io::Result<ImageSet> {
    let (train, files) = cifar_files(Flavor::Bin, per_batch, seed);
    write_tree(&dir.join(BIN_DIR), &files)?;
    Ok(train)
}

/// CIFAR-10 python version: `dir/cifar-10-batches-py/data_batch_{1..5}` (+ `test_batch`,
/// `batches.meta`, `readme.html`), pickled the way Python 2 cPickle protocol 2 laid out the real
/// files.
pub fn write_cifar10_py(dir: &Path, per_batch: usize, seed: u64) -> io::Result<ImageSet> {
    let (train, files) = cifar_files(Flavor::Py, per_batch, seed);
    write_tree(&dir.join(PY_DIR), &files)?;
    Ok(train)
}

/// The binary version as the original archive `dir/cifar-10-binary.tar.gz`.
pub fn write_cifar10_bin_tar_gz(dir: &Path, per_batch: usize, seed: u64) -> io::Result<ImageSet> {
    let (train, files) = cifar_files(Flavor::Bin, per_batch, seed);
    write_tar_gz(&dir.join(BIN_TAR), BIN_DIR, &files)?;
    Ok(train)
}

/// The python version as the original archive `dir/cifar-10-python.tar.gz`.
pub fn write_cifar10_py_tar_gz(dir: &Path, per_batch: usize, seed: u64) -> io::Result<ImageSet> {
    let (train, files) = cifar_files(Flavor::Py, per_batch, seed);
    write_tar_gz(&dir.join(PY_TAR), PY_DIR, &files)?;
    Ok(train)
}

/// CIFAR-100 binary version: `dir/cifar-100-binary/train.bin` (`n` records of a coarse label
/// byte, a fine label byte and 3072 pixel bytes; + `test.bin` and `fine_label_names.txt`).
pub fn write_cifar100_bin(dir: &Path, n: usize, seed: u64) -> io::Result<ImageSet> {
    let (train, files) = cifar100_files(n, seed);
    write_tree(&dir.join(C100_DIR), &files)?;
    Ok(train)
}

/// The CIFAR-100 binary version as the original archive `dir/cifar-100-binary.tar.gz`.
pub fn write_cifar100_bin_tar_gz(dir: &Path, n: usize, seed: u64) -> io::Result<ImageSet> {
    let (train, files) = cifar100_files(n, seed);
    write_tar_gz(&dir.join(C100_TAR), C100_DIR, &files)?;
    Ok(train)
}

fn cifar100_files(n: usize, seed: u64) -> (ImageSet, Vec<(String, Vec<u8>)>) {
    let kind = DatasetKind::Cifar100;
    let train = synth(kind, n, seed, "fixture-cifar100-train", 0);
    let test = synth(kind, (n / 5).max(1), seed, "fixture-cifar100-test", 0);
    let names: String = kind
        .class_names()
        .iter()
        .map(|c| format!("{c}\n"))
        .collect();
    let files = vec![
        (C100_TRAIN.to_owned(), cifar100_records(&train)),
        ("test.bin".to_owned(), cifar100_records(&test)),
        ("fine_label_names.txt".to_owned(), names.into_bytes()),
    ];
    (train, files)
}

/// Records of CIFAR-100's binary version; the coarse label is made up (fine / 5).
pub(crate) fn cifar100_records(set: &ImageSet) -> Vec<u8> {
    let mut out = Vec::with_capacity(set.len() * (2 + set.kind.input_len()));
    for (i, &fine) in set.labels.iter().enumerate() {
        out.extend_from_slice(&[fine / 5, fine]);
        out.extend_from_slice(set.image(i).unwrap_or_default());
    }
    out
}

/// `n` learnable images of `kind`: prototypes from `seed`, samples from the stream `(stream,
/// index)` of `seed`.
pub(crate) fn synth(kind: DatasetKind, n: usize, seed: u64, stream: &str, index: u64) -> ImageSet {
    let (images, labels) = synth_raw(kind.input_len(), kind.num_classes(), n, seed, stream, index);
    ImageSet {
        kind,
        images,
        float_images: None,
        labels,
    }
}

/// [`synth`]'s images and labels: `n` images of `len` bytes in `classes` classes.
pub(crate) fn synth_raw(
    len: usize,
    classes: usize,
    n: usize,
    seed: u64,
    stream: &str,
    index: u64,
) -> (Vec<u8>, Vec<u8>) {
    let mut g = SplitMix64::for_stream(seed, "fixture-prototypes", 0);
    let prototypes: Vec<u8> = (0..classes * len).map(|_| g.next_u64() as u8).collect();
    let mut g = SplitMix64::for_stream(seed, stream, index);
    let mut labels: Vec<u8> = (0..n).map(|i| (i % classes) as u8).collect();
    g.shuffle(&mut labels);
    let mut images = Vec::with_capacity(n * len);
    for &label in &labels {
        let start = usize::from(label) * len;
        let proto = &prototypes[start..start + len];
        images.extend(proto.iter().map(|&p| {
            let noise = g.below(2 * NOISE as u64 + 1) as i32 - NOISE;
            (i32::from(p) + noise).clamp(0, 255) as u8
        }));
    }
    (images, labels)
}

/// An IDX images file (magic 0x803, n x 28 x 28) of `set`.
pub(crate) fn idx_images(set: &ImageSet) -> Vec<u8> {
    let mut out = IMAGES_MAGIC.to_be_bytes().to_vec();
    for v in [set.len() as u32, 28, 28] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&set.images);
    out
}

/// An IDX labels file (magic 0x801, n) of `set`.
pub(crate) fn idx_labels(set: &ImageSet) -> Vec<u8> {
    let mut out = LABELS_MAGIC.to_be_bytes().to_vec();
    out.extend_from_slice(&(set.len() as u32).to_be_bytes());
    out.extend_from_slice(&set.labels);
    out
}

/// `bytes`, gzipped.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// A CIFAR-10 batch in the binary version: records of label byte + 3072 pixels.
pub(crate) fn bin_batch(set: &ImageSet) -> Vec<u8> {
    let len = set.kind.input_len();
    let mut out = Vec::with_capacity(set.len() * (len + 1));
    for (label, image) in set.labels.iter().zip(set.images.chunks_exact(len)) {
        out.push(*label);
        out.extend_from_slice(image);
    }
    out
}

/// A CIFAR-10 batch in the python version, as cPickle wrote it.
pub(crate) fn py_batch(set: &ImageSet, batch_label: &str, first_name: usize) -> Vec<u8> {
    let names: Vec<String> = (0..set.len())
        .map(|i| format!("fixture_s_{:06}.png", first_name + i))
        .collect();
    Py2Pickler::dict(&[
        ("batch_label", Item::Str(batch_label.as_bytes())),
        ("labels", Item::Ints(&set.labels)),
        (
            "data",
            Item::U8Array(set.len(), set.kind.input_len(), &set.images),
        ),
        ("filenames", Item::Strs(&names)),
    ])
}

/// The training set and the files (name in the batches folder, content) of a CIFAR-10 version.
fn cifar_files(flavor: Flavor, per_batch: usize, seed: u64) -> (ImageSet, Vec<(String, Vec<u8>)>) {
    let kind = DatasetKind::Cifar10;
    let mut train = ImageSet::new(kind);
    let mut files = Vec::new();
    for b in 1..=BATCHES {
        let batch = synth(kind, per_batch, seed, "fixture-cifar10-train", b as u64);
        let bytes = match flavor {
            Flavor::Bin => bin_batch(&batch),
            Flavor::Py => py_batch(
                &batch,
                &format!("training batch {b} of 5"),
                (b - 1) * per_batch,
            ),
        };
        files.push((flavor.batch_name(b), bytes));
        train.images.extend_from_slice(&batch.images);
        train.labels.extend_from_slice(&batch.labels);
    }
    let test = synth(kind, per_batch, seed, "fixture-cifar10-test", 0);
    let names = kind.class_names();
    match flavor {
        Flavor::Bin => {
            files.push(("test_batch.bin".to_owned(), bin_batch(&test)));
            let mut meta: String = names.iter().map(|n| format!("{n}\n")).collect();
            meta.push('\n');
            files.push(("batches.meta.txt".to_owned(), meta.into_bytes()));
        }
        Flavor::Py => {
            files.push((
                "test_batch".to_owned(),
                py_batch(&test, "testing batch 1 of 1", 0),
            ));
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let meta = Py2Pickler::dict(&[
                ("num_cases_per_batch", Item::Int(per_batch as i64)),
                ("label_names", Item::Strs(&names)),
                ("num_vis", Item::Int(kind.input_len() as i64)),
            ]);
            files.push(("batches.meta".to_owned(), meta));
        }
    }
    let readme = b"<html><body>cifar-10 fixture written by sweep tests</body></html>\n";
    files.push(("readme.html".to_owned(), readme.to_vec()));
    (train, files)
}

fn write_tree(dir: &Path, files: &[(String, Vec<u8>)]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

/// A `.tar.gz` holding the folder `folder/` and `files` in it, as the original archives do.
fn write_tar_gz(path: &Path, folder: &str, files: &[(String, Vec<u8>)]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let gz = GzEncoder::new(fs::File::create(path)?, Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_mtime(MTIME);
    header.set_size(0);
    tar.append_data(&mut header, format!("{folder}/"), io::empty())?;
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(MTIME);
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, format!("{folder}/{name}"), bytes.as_slice())?;
    }
    tar.into_inner()?.finish()?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synth_is_deterministic_balanced_and_bounded() {
        let a = synth(DatasetKind::Cifar10, 23, 4, "s", 1);
        assert_eq!(a, synth(DatasetKind::Cifar10, 23, 4, "s", 1));
        assert_ne!(a, synth(DatasetKind::Cifar10, 23, 4, "s", 2));
        assert_eq!(a.images.len(), 23 * 3072);
        let mut counts = [0usize; 10];
        for &l in &a.labels {
            counts[usize::from(l)] += 1;
        }
        assert!(counts.iter().all(|&c| c == 2 || c == 3), "{counts:?}");
    }

    /// Nearest class mean, learned on one stream and tested on another: far above chance (10 %).
    #[test]
    fn images_are_learnable() {
        for kind in DatasetKind::ALL {
            let train = synth(kind, 200, 11, "train", 0);
            let test = synth(kind, 100, 11, "test", 0);
            let train = if kind.num_classes() > 10 {
                synth(kind, 1000, 11, "train", 0)
            } else {
                train
            };
            let len = kind.input_len();
            let classes = kind.num_classes();
            let mut sums = vec![0f64; classes * len];
            let mut counts = vec![0f64; classes];
            for (l, img) in train.labels.iter().zip(train.images.chunks_exact(len)) {
                let l = usize::from(*l);
                counts[l] += 1.0;
                for (s, &p) in sums[l * len..(l + 1) * len].iter_mut().zip(img) {
                    *s += f64::from(p);
                }
            }
            let mut correct = 0;
            for (l, img) in test.labels.iter().zip(test.images.chunks_exact(len)) {
                let dist = |c: usize| -> f64 {
                    img.iter()
                        .zip(&sums[c * len..(c + 1) * len])
                        .map(|(&p, s)| (f64::from(p) - s / counts[c]).powi(2))
                        .sum()
                };
                let best = (0..classes).min_by(|&a, &b| dist(a).total_cmp(&dist(b)));
                correct += usize::from(best == Some(usize::from(*l)));
            }
            assert!(correct >= 90, "{kind}: {correct}/100");
        }
    }

    #[test]
    fn archives_are_reproducible() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        write_cifar10_bin_tar_gz(&a, 3, 1).expect("write");
        write_cifar10_bin_tar_gz(&b, 3, 1).expect("write");
        let read = |d: &Path| fs::read(d.join(BIN_TAR)).expect("read");
        assert_eq!(read(&a), read(&b));
    }

    #[test]
    fn cifar100_and_mnist_round_trip_in_every_layout() {
        use crate::load_train_set;
        for sub in ["", "cifar100", "cifar-100"] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().join(sub);
            let written = write_cifar100_bin(&dir, 230, 3).expect("write");
            assert!(
                written.labels.iter().any(|&l| l >= 99),
                "fine labels reach 99"
            );
            let loaded = load_train_set(DatasetKind::Cifar100, tmp.path()).expect("folder");
            assert_eq!(loaded, written, "{sub:?}");
            let tmp = tempfile::tempdir().expect("tempdir");
            let written = write_cifar100_bin_tar_gz(&tmp.path().join(sub), 7, 4).expect("write");
            let loaded = load_train_set(DatasetKind::Cifar100, tmp.path()).expect("archive");
            assert_eq!(loaded, written, "{sub:?}");
        }
        for sub in ["mnist", "MNIST/raw"] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let written = write_mnist(&tmp.path().join(sub), 21, 5).expect("write");
            assert_eq!(written.kind, DatasetKind::Mnist);
            let loaded = load_train_set(DatasetKind::Mnist, tmp.path()).expect("mnist");
            assert_eq!(loaded, written, "{sub:?}");
        }
    }

    /// MNIST's files in the data folder itself are Fashion-MNIST's: never taken for MNIST.
    #[test]
    fn mnist_is_not_read_from_fashion_mnist_files() {
        use crate::{DataError, load_train_set};
        let tmp = tempfile::tempdir().expect("tempdir");
        write_fashion_mnist(tmp.path(), 5, 1).expect("write");
        let err = load_train_set(DatasetKind::Mnist, tmp.path()).expect_err("not found");
        assert!(matches!(err, DataError::NotFound { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("mnist training set not found"), "{msg}");
        assert!(msg.contains("MNIST/raw"), "{msg}");
    }

    #[test]
    fn cifar100_errors_name_the_file_and_the_range() {
        use crate::{Corruption, load_train_set};
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut set = synth(DatasetKind::Cifar100, 3, 1, "s", 0);
        set.labels[2] = 100;
        let dir = tmp.path().join(C100_DIR);
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join(C100_TRAIN);
        fs::write(&path, cifar100_records(&set)).expect("write");
        let err = load_train_set(DatasetKind::Cifar100, tmp.path()).expect_err("label");
        assert_eq!(err.corruption(), Some(Corruption::Label), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("labels 0..100") && msg.contains("label 100 at index 2"),
            "{msg}"
        );
        assert!(msg.contains("train.bin"), "{msg}");

        let records = cifar100_records(&synth(DatasetKind::Cifar100, 2, 1, "s", 0));
        fs::write(&path, &records[..records.len() - 1]).expect("write");
        let err = load_train_set(DatasetKind::Cifar100, tmp.path()).expect_err("length");
        assert_eq!(err.corruption(), Some(Corruption::Length), "{err}");
        assert!(err.to_string().contains("3074-byte records"), "{err}");

        fs::remove_file(&path).expect("rm");
        let err = load_train_set(DatasetKind::Cifar100, tmp.path()).expect_err("incomplete");
        assert!(err.to_string().contains("missing train.bin"), "{err}");
    }
}
