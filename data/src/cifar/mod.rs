//! CIFAR-10: the binary and the python versions, extracted or as their original `.tar.gz`
//! archives; finding them and decoding the five training batches. CIFAR-100: its binary version,
//! extracted or as its archive (`train.bin`, records of a coarse and a fine label byte).

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;
use sweep_common::DatasetKind;

use super::pickle;
use super::{
    Corruption, DataError, FileLoc, GZIP_MAGIC, ImageSet, MAX_FILE_BYTES, hex_prefix,
    is_decode_error, read_bounded, read_file,
};

/// Folder of the extracted binary version.
pub(crate) const BIN_DIR: &str = "cifar-10-batches-bin";
/// Folder of the extracted python version.
pub(crate) const PY_DIR: &str = "cifar-10-batches-py";
/// The binary version's original archive.
pub(crate) const BIN_TAR: &str = "cifar-10-binary.tar.gz";
/// The python version's original archive.
pub(crate) const PY_TAR: &str = "cifar-10-python.tar.gz";
/// Number of training batches.
pub(crate) const BATCHES: usize = 5;
/// Bytes of one image.
pub(crate) const IMAGE: usize = 3072;
/// Bytes of one record of the binary version: the label, then the image.
pub(crate) const RECORD: usize = 1 + IMAGE;
/// Folder of CIFAR-100's extracted binary version.
pub(crate) const C100_DIR: &str = "cifar-100-binary";
/// CIFAR-100's binary archive.
pub(crate) const C100_TAR: &str = "cifar-100-binary.tar.gz";
/// CIFAR-100's training file in its folder.
pub(crate) const C100_TRAIN: &str = "train.bin";

/// The two distributions of the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Records of 1 label byte + 3072 pixel bytes.
    Bin,
    /// Pickled dicts with a numpy array.
    Py,
}

impl Flavor {
    /// The name of training batch `i` (1-based).
    pub(crate) fn batch_name(self, i: usize) -> String {
        match self {
            Flavor::Bin => format!("data_batch_{i}.bin"),
            Flavor::Py => format!("data_batch_{i}"),
        }
    }

    /// The folder the batches are in, in the archive and once extracted.
    pub(crate) fn dir(self) -> &'static str {
        match self {
            Flavor::Bin => BIN_DIR,
            Flavor::Py => PY_DIR,
        }
    }

    fn expected(self) -> String {
        format!("{} .. {}", self.batch_name(1), self.batch_name(BATCHES))
    }
}

/// Finds and decodes the CIFAR-10 training set (see the module doc of `data` for the order).
pub(crate) fn load_cifar10(data_dir: &Path) -> Result<ImageSet, DataError> {
    let mut tried = Vec::new();
    for base in [
        data_dir.to_path_buf(),
        data_dir.join("cifar10"),
        data_dir.join("cifar-10"),
    ] {
        for flavor in [Flavor::Bin, Flavor::Py] {
            let dir = base.join(flavor.dir());
            if dir.is_dir() {
                return load_dir(&dir, flavor);
            }
            tried.push(dir);
        }
        for (name, flavor) in [(BIN_TAR, Flavor::Bin), (PY_TAR, Flavor::Py)] {
            let archive = base.join(name);
            if archive.is_file() {
                return load_tar(&archive, flavor);
            }
            tried.push(archive);
        }
    }
    for flavor in [Flavor::Bin, Flavor::Py] {
        let first = data_dir.join(flavor.batch_name(1));
        if first.is_file() {
            return load_dir(data_dir, flavor);
        }
        tried.push(first);
    }
    Err(DataError::NotFound {
        dataset: DatasetKind::Cifar10,
        tried,
        expected: format!(
            "{BIN_DIR}/ with {}, {PY_DIR}/ with {}, {BIN_TAR} or {PY_TAR}",
            Flavor::Bin.expected(),
            Flavor::Py.expected()
        ),
    })
}

/// Finds and decodes the CIFAR-100 training set (binary version; fine labels): in `data_dir`,
/// then `data_dir/cifar100`, then `data_dir/cifar-100`, the folder `cifar-100-binary/` or the
/// archive `cifar-100-binary.tar.gz`.
pub(crate) fn load_cifar100(data_dir: &Path) -> Result<ImageSet, DataError> {
    let mut tried = Vec::new();
    let member = format!("{C100_DIR}/{C100_TRAIN}");
    for base in [
        data_dir.to_path_buf(),
        data_dir.join("cifar100"),
        data_dir.join("cifar-100"),
    ] {
        let dir = base.join(C100_DIR);
        if dir.is_dir() {
            let path = dir.join(C100_TRAIN);
            if !path.is_file() {
                return Err(incomplete100(&dir, C100_TRAIN));
            }
            let mut set = ImageSet::new(DatasetKind::Cifar100);
            decode_records(&FileLoc::file(&path), &read_file(&path)?, 2, &mut set)?;
            return non_empty(set, &FileLoc::file(&path));
        }
        tried.push(dir);
        let archive = base.join(C100_TAR);
        if archive.is_file() {
            let mut members = read_tar_members(&archive, std::slice::from_ref(&member))?;
            let Some(bytes) = members.pop().flatten() else {
                return Err(incomplete100(&archive, &member));
            };
            let mut set = ImageSet::new(DatasetKind::Cifar100);
            decode_records(&FileLoc::member(&archive, &member), &bytes, 2, &mut set)?;
            return non_empty(set, &FileLoc::file(&archive));
        }
        tried.push(archive);
    }
    Err(DataError::NotFound {
        dataset: DatasetKind::Cifar100,
        tried,
        expected: format!("{C100_DIR}/ with {C100_TRAIN}, or {C100_TAR}"),
    })
}

fn incomplete100(location: &Path, missing: &str) -> DataError {
    DataError::Incomplete {
        dataset: DatasetKind::Cifar100,
        location: location.to_path_buf(),
        expected: format!("{C100_DIR}/{C100_TRAIN}"),
        missing: vec![missing.to_owned()],
    }
}

/// Decodes the five batches of an extracted folder.
fn load_dir(dir: &Path, flavor: Flavor) -> Result<ImageSet, DataError> {
    let paths: Vec<PathBuf> = (1..=BATCHES)
        .map(|i| dir.join(flavor.batch_name(i)))
        .collect();
    let missing: Vec<String> = (1..=BATCHES)
        .zip(&paths)
        .filter(|(_, p)| !p.is_file())
        .map(|(i, _)| flavor.batch_name(i))
        .collect();
    if !missing.is_empty() {
        return Err(DataError::Incomplete {
            dataset: DatasetKind::Cifar10,
            location: dir.to_path_buf(),
            expected: flavor.expected(),
            missing,
        });
    }
    let mut set = ImageSet::new(DatasetKind::Cifar10);
    for path in &paths {
        let bytes = read_file(path)?;
        decode_batch(&FileLoc::file(path), flavor, &bytes, &mut set)?;
    }
    non_empty(set, &FileLoc::file(dir))
}

/// Decodes the five batches of an original archive, in memory.
fn load_tar(archive: &Path, flavor: Flavor) -> Result<ImageSet, DataError> {
    let names: Vec<String> = (1..=BATCHES)
        .map(|i| format!("{}/{}", flavor.dir(), flavor.batch_name(i)))
        .collect();
    let members = read_tar_members(archive, &names)?;
    let missing: Vec<String> = names
        .iter()
        .zip(&members)
        .filter(|(_, m)| m.is_none())
        .map(|(n, _)| n.clone())
        .collect();
    if !missing.is_empty() {
        return Err(DataError::Incomplete {
            dataset: DatasetKind::Cifar10,
            location: archive.to_path_buf(),
            expected: format!("{}/{}", flavor.dir(), flavor.expected()),
            missing,
        });
    }
    let mut set = ImageSet::new(DatasetKind::Cifar10);
    for (name, bytes) in names.iter().zip(members) {
        let bytes = bytes.unwrap_or_default();
        decode_batch(&FileLoc::member(archive, name), flavor, &bytes, &mut set)?;
    }
    non_empty(set, &FileLoc::file(archive))
}

fn non_empty(set: ImageSet, loc: &FileLoc) -> Result<ImageSet, DataError> {
    if set.is_empty() {
        return Err(DataError::corrupt(
            loc,
            Corruption::Count,
            "at least one image",
            "0",
        ));
    }
    Ok(set)
}

/// A reader that remembers whether the gzip decoder under it failed, so a tar error caused by
/// bad compression is reported as such.
struct Watched<R> {
    inner: R,
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf);
        if r.as_ref().is_err_and(is_decode_error) {
            self.failed.set(true);
        }
        r
    }
}

/// Reads the members named `names` (other members are skipped) of a `.tar.gz`.
pub(crate) fn read_tar_members(
    archive: &Path,
    names: &[String],
) -> Result<Vec<Option<Vec<u8>>>, DataError> {
    let loc = FileLoc::file(archive);
    let io_err = |source| DataError::Io {
        file: loc.clone(),
        source,
    };
    let mut reader = BufReader::new(File::open(archive).map_err(io_err)?);
    let head = reader.fill_buf().map_err(io_err)?;
    if !head.starts_with(&GZIP_MAGIC) {
        return Err(DataError::corrupt(
            &loc,
            Corruption::Gzip,
            "a gzip stream (starting 1f 8b)",
            format!("a file starting {}", hex_prefix(head)),
        ));
    }
    let failed = Rc::new(Cell::new(false));
    let watched = Watched {
        inner: GzDecoder::new(reader),
        failed: Rc::clone(&failed),
    };
    let mut tar = tar::Archive::new(watched);
    let result = scan_members(&mut tar, archive, names, &failed);
    if matches!(
        &result,
        Ok(_)
            | Err(DataError::Corrupt {
                what: Corruption::Archive,
                ..
            })
    ) {
        // Read the stream to its end, so its checksum is verified: a damaged deflate stream can
        // decode into garbage (in a member, or in what looks like a bad tar header) long before.
        let mut rest = tar.into_inner().take(MAX_FILE_BYTES * 8);
        if io::copy(&mut rest, &mut io::sink()).is_err() && failed.get() {
            return Err(DataError::corrupt(
                &loc,
                Corruption::Gzip,
                "a valid gzip stream",
                "a damaged stream (checksum or deflate data)",
            ));
        }
    }
    result
}

/// The loop of [`read_tar_members`] over the archive's entries.
fn scan_members<R: Read>(
    tar: &mut tar::Archive<R>,
    archive: &Path,
    names: &[String],
    failed: &Cell<bool>,
) -> Result<Vec<Option<Vec<u8>>>, DataError> {
    let loc = FileLoc::file(archive);
    let archive_err = |e: io::Error| {
        if failed.get() {
            DataError::corrupt(&loc, Corruption::Gzip, "a valid gzip stream", e.to_string())
        } else if is_decode_error(&e) || e.kind() == io::ErrorKind::Other {
            DataError::corrupt(
                &loc,
                Corruption::Archive,
                "a valid tar archive",
                e.to_string(),
            )
        } else {
            DataError::Io {
                file: loc.clone(),
                source: e,
            }
        }
    };
    let mut found: Vec<Option<Vec<u8>>> = vec![None; names.len()];
    for entry in tar.entries().map_err(archive_err)? {
        let entry = entry.map_err(archive_err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(archive_err)?
            .to_string_lossy()
            .into_owned();
        let path = path.strip_prefix("./").unwrap_or(&path);
        let Some(slot) = names.iter().position(|n| n == path) else {
            continue;
        };
        let member = FileLoc::member(archive, path);
        let size = entry.header().size().map_err(archive_err)?;
        let bytes = read_bounded(&member, entry, false).map_err(|e| {
            if failed.get() {
                DataError::corrupt(
                    &member,
                    Corruption::Gzip,
                    "a valid gzip stream",
                    e.to_string(),
                )
            } else {
                e
            }
        })?;
        if bytes.len() as u64 != size {
            return Err(DataError::corrupt(
                &member,
                Corruption::Archive,
                format!("{size} bytes, as its tar header says"),
                format!("{} bytes (the archive is truncated)", bytes.len()),
            ));
        }
        found[slot] = Some(bytes);
    }
    Ok(found)
}

/// Decodes one training batch of either flavor, appending its images and labels to `set`.
pub(crate) fn decode_batch(
    loc: &FileLoc,
    flavor: Flavor,
    bytes: &[u8],
    set: &mut ImageSet,
) -> Result<(), DataError> {
    match flavor {
        Flavor::Bin => decode_records(loc, bytes, RECORD - IMAGE, set),
        Flavor::Py => decode_py(loc, bytes, set),
    }
}

fn check_label(loc: &FileLoc, classes: usize, label: i64, index: usize) -> Result<u8, DataError> {
    match u8::try_from(label) {
        Ok(l) if usize::from(l) < classes => Ok(l),
        _ => Err(DataError::corrupt(
            loc,
            Corruption::Label,
            format!("labels 0..{classes}"),
            format!("label {label} at index {index}"),
        )),
    }
}

/// Binary versions: whole records of `label_bytes` label bytes + 3072 pixel bytes (already
/// channel-major); the last label byte is the label (CIFAR-100's records hold the coarse label,
/// then the fine one).
fn decode_records(
    loc: &FileLoc,
    bytes: &[u8],
    label_bytes: usize,
    set: &mut ImageSet,
) -> Result<(), DataError> {
    let record = label_bytes + IMAGE;
    let extra = bytes.len() % record;
    if extra != 0 {
        return Err(DataError::corrupt(
            loc,
            Corruption::Length,
            format!("a whole number of {record}-byte records"),
            format!(
                "{} bytes: {} records and {extra} bytes of a partial one",
                bytes.len(),
                bytes.len() / record
            ),
        ));
    }
    let classes = set.kind.num_classes();
    set.images.reserve(bytes.len() / record * IMAGE);
    for (i, record) in bytes.chunks_exact(record).enumerate() {
        let (label, image) = record.split_at(label_bytes);
        let label = label.last().copied().unwrap_or_default();
        set.labels
            .push(check_label(loc, classes, i64::from(label), i)?);
        set.images.extend_from_slice(image);
    }
    Ok(())
}

/// Python version: a pickled dict with `data`, a uint8 array (N, 3072), and `labels`, N ints.
fn decode_py(loc: &FileLoc, bytes: &[u8], set: &mut ImageSet) -> Result<(), DataError> {
    let p = pickle::parse(bytes).map_err(|e| {
        DataError::corrupt(
            loc,
            Corruption::Pickle,
            e.expected,
            format!("{} at offset {}", e.found, e.offset),
        )
    })?;
    let content = |expected: &str, found: String| {
        DataError::corrupt(loc, Corruption::Content, expected, found)
    };
    let want = "a dict with keys data and labels";
    let key = |name: &str| -> Result<pickle::Value, DataError> {
        match p.dict_get(p.root, name) {
            Some(Some(v)) => Ok(v),
            Some(None) => Err(content(want, format!("a dict without key {name}"))),
            None => Err(content(want, p.describe(p.root))),
        }
    };
    let data = key("data")?;
    let labels = key("labels")?;
    let array = p
        .ndarray(data)
        .map_err(|found| content("data as a numpy array", found))?;
    if !matches!(array.dtype.as_str(), "u1" | "|u1" | "uint8") {
        return Err(DataError::corrupt(
            loc,
            Corruption::Dtype,
            "data of dtype uint8 (u1)",
            format!("dtype {}", array.dtype),
        ));
    }
    let n = match array.shape.as_slice() {
        [n, IMAGE] | [n, 3, 32, 32] => *n,
        other => {
            return Err(DataError::corrupt(
                loc,
                Corruption::Shape,
                format!("data of shape (n, {IMAGE})"),
                format!("shape {other:?}"),
            ));
        }
    };
    let expected = n.checked_mul(IMAGE);
    if expected != Some(array.data.len()) {
        return Err(DataError::corrupt(
            loc,
            Corruption::Length,
            format!("{n} x {IMAGE} bytes of array data"),
            format!("{} bytes", array.data.len()),
        ));
    }
    let labels = p
        .int_list(labels)
        .map_err(|found| content("labels as a list of ints", found))?;
    if labels.len() != n {
        return Err(DataError::corrupt(
            loc,
            Corruption::Count,
            format!("{n} labels, one per row of data"),
            format!("{} labels", labels.len()),
        ));
    }
    for (i, &l) in labels.iter().enumerate() {
        set.labels
            .push(check_label(loc, set.kind.num_classes(), l, i)?);
    }
    if array.fortran && n > 1 {
        // Column-major: element (row, col) is at col * n + row.
        set.images.reserve(array.data.len());
        for row in 0..n {
            set.images
                .extend((0..IMAGE).map(|col| array.data[col * n + row]));
        }
    } else {
        set.images.extend_from_slice(&array.data);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
