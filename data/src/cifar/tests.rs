//! Tests of the CIFAR-10 readers: every writer round-trips, the search order holds, and every
//! kind of damage is reported with its file.

use std::fs;
use std::io::Write;

use super::*;
use crate::fixtures::{self, bin_batch, gzip, py_batch, synth};
use crate::load_train_set;
use proptest::prelude::*;

const BATCH_P2: &[u8] = include_bytes!("../testdata/cifar_batch_py3_p2.pickle");
const BATCH_P4: &[u8] = include_bytes!("../testdata/cifar_batch_py3_p4.pickle");

fn load(dir: &Path) -> Result<ImageSet, DataError> {
    load_train_set(DatasetKind::Cifar10, dir)
}

type Writer = fn(&Path, usize, u64) -> io::Result<ImageSet>;

const WRITERS: [(&str, Writer); 4] = [
    ("bin", fixtures::write_cifar10_bin),
    ("py", fixtures::write_cifar10_py),
    ("bin.tar.gz", fixtures::write_cifar10_bin_tar_gz),
    ("py.tar.gz", fixtures::write_cifar10_py_tar_gz),
];

#[test]
fn every_writer_round_trips_in_every_base() {
    let mut sets = Vec::new();
    for (name, write) in WRITERS {
        for sub in ["", "cifar10", "cifar-10"] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let written = write(&tmp.path().join(sub), 7, 3).expect("write");
            assert_eq!(written.len(), 35);
            assert_eq!(written.images.len(), 35 * IMAGE);
            let loaded = load(tmp.path()).unwrap_or_else(|e| panic!("{name} in {sub:?}: {e}"));
            assert_eq!(loaded, written, "{name} in {sub:?}");
            sets.push(written);
        }
    }
    assert!(
        sets.windows(2).all(|w| w[0] == w[1]),
        "all formats hold the same images"
    );
}

#[test]
fn a_batches_folder_itself_is_accepted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let written = fixtures::write_cifar10_py(tmp.path(), 2, 8).expect("write");
    assert_eq!(load(&tmp.path().join(PY_DIR)).expect("load"), written);
    let written = fixtures::write_cifar10_bin(tmp.path(), 2, 8).expect("write");
    assert_eq!(load(&tmp.path().join(BIN_DIR)).expect("load"), written);
}

#[test]
fn search_prefers_bin_dir_then_py_dir_then_bin_tar_then_py_tar_then_next_base() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let later_base = fixtures::write_cifar10_bin(&d.join("cifar10"), 1, 1).expect("write");
    assert_eq!(load(d).expect("load"), later_base);
    let py_tar = fixtures::write_cifar10_py_tar_gz(d, 1, 2).expect("write");
    assert_eq!(load(d).expect("load"), py_tar);
    let bin_tar = fixtures::write_cifar10_bin_tar_gz(d, 1, 3).expect("write");
    assert_eq!(load(d).expect("load"), bin_tar);
    let py_dir = fixtures::write_cifar10_py(d, 1, 4).expect("write");
    assert_eq!(load(d).expect("load"), py_dir);
    let bin_dir = fixtures::write_cifar10_bin(d, 1, 5).expect("write");
    assert_eq!(load(d).expect("load"), bin_dir);
}

#[test]
fn missing_batches_are_listed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fixtures::write_cifar10_bin(tmp.path(), 2, 1).expect("write");
    let dir = tmp.path().join(BIN_DIR);
    fs::remove_file(dir.join("data_batch_3.bin")).expect("rm");
    fs::remove_file(dir.join("data_batch_5.bin")).expect("rm");
    let err = load(tmp.path()).expect_err("incomplete");
    let DataError::Incomplete {
        location, missing, ..
    } = &err
    else {
        panic!("expected incomplete, got {err}");
    };
    assert_eq!(location, &dir);
    assert_eq!(missing, &["data_batch_3.bin", "data_batch_5.bin"]);
    assert!(
        err.to_string()
            .contains("data_batch_1.bin .. data_batch_5.bin"),
        "{err}"
    );
}

/// Builds a `.tar.gz` holding `members`, their names stored as given (`./` prefix included).
fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        tar.append(&header, *bytes).expect("append");
    }
    gzip(&tar.into_inner().expect("tar"))
}

#[test]
fn archive_missing_a_batch_is_incomplete() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let batch = bin_batch(&synth(DatasetKind::Cifar10, 2, 1, "t", 0));
    let names: Vec<String> = (1..=4)
        .map(|i| format!("./{BIN_DIR}/data_batch_{i}.bin"))
        .collect();
    let members: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &batch[..])).collect();
    fs::write(tmp.path().join(BIN_TAR), tar_gz(&members)).expect("write");
    let err = load(tmp.path()).expect_err("incomplete");
    assert!(matches!(err, DataError::Incomplete { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(BIN_TAR) && msg.contains("cifar-10-batches-bin/data_batch_5.bin"),
        "{msg}"
    );
}

/// Writes a valid binary set whose batch 2 is `bytes`, and checks the error.
fn bin_case(bytes: &[u8], what: Corruption, needle: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    fixtures::write_cifar10_bin(tmp.path(), 2, 1).expect("write");
    let path = tmp.path().join(BIN_DIR).join("data_batch_2.bin");
    fs::write(&path, bytes).expect("write");
    let err = load(tmp.path()).expect_err("corrupt");
    assert_eq!(err.corruption(), Some(what), "{err}");
    assert_eq!(err.file(), Some(&FileLoc::file(&path)), "{err}");
    assert!(err.to_string().contains(needle), "{needle:?} not in {err}");
}

/// The same with the python version's batch 2.
fn py_case(bytes: &[u8], what: Corruption, needle: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    fixtures::write_cifar10_py(tmp.path(), 2, 1).expect("write");
    let path = tmp.path().join(PY_DIR).join("data_batch_2");
    fs::write(&path, bytes).expect("write");
    let err = load(tmp.path()).expect_err("corrupt");
    assert_eq!(err.corruption(), Some(what), "{err}");
    assert_eq!(err.file(), Some(&FileLoc::file(&path)), "{err}");
    assert!(err.to_string().contains(needle), "{needle:?} not in {err}");
}

#[test]
fn binary_corruptions() {
    let good = bin_batch(&synth(DatasetKind::Cifar10, 3, 1, "t", 0));
    bin_case(
        &good[..good.len() - 5],
        Corruption::Length,
        "2 records and 3068 bytes",
    );
    let mut label = good.clone();
    label[RECORD] = 10;
    bin_case(&label, Corruption::Label, "label 10 at index 1");
    bin_case(&gzip(&good[..100]), Corruption::Length, "100 bytes");
}

/// A python batch of 3 images; `edit` may change the pickle before it is written.
fn py_bytes(n: usize) -> Vec<u8> {
    py_batch(
        &synth(DatasetKind::Cifar10, n, 1, "t", 0),
        "training batch 2 of 5",
        0,
    )
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut out = haystack[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&haystack[at + from.len()..]);
    out
}

#[test]
fn python_corruptions() {
    let good = py_bytes(3);
    py_case(&good[..good.len() - 1], Corruption::Pickle, "truncated");
    py_case(&good[..2000], Corruption::Pickle, "truncated");
    py_case(
        b"\x80\x02S'x'\n.",
        Corruption::Pickle,
        "0x53 (STRING) at offset 2",
    );
    py_case(
        &replace(&good, b"U\x02u1", b"U\x02i1"),
        Corruption::Dtype,
        "dtype i1",
    );
    // Shape (3, 3072) -> (3, 3071).
    py_case(
        &replace(&good, b"K\x03M\x00\x0c", b"K\x03M\xff\x0b"),
        Corruption::Shape,
        "[3, 3071]",
    );
    // Shape (3, 3072) -> (4, 3072): the data is too short.
    py_case(
        &replace(&good, b"K\x03M\x00\x0c", b"K\x04M\x00\x0c"),
        Corruption::Length,
        "4 x 3072",
    );
    // One label more than images: the list holds 4 ints.
    let labels = good
        .windows(4)
        .position(|w| w == b"]q\x05(")
        .expect("labels list");
    let mut more = good.clone();
    more.splice(labels + 4..labels + 4, [b'K', 1]);
    py_case(&more, Corruption::Count, "3 labels, one per row");
    let mut label = good.clone();
    label[labels + 5] = 12;
    py_case(&label, Corruption::Label, "label 12 at index 0");
    py_case(
        &replace(&good, b"U\x04data", b"U\x04date"),
        Corruption::Content,
        "without key data",
    );
    py_case(b"\x80\x02]q\x01.", Corruption::Content, "a list of 0 items");
}

#[test]
fn archive_corruptions_name_archive_and_member() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let archive = tmp.path().join(BIN_TAR);
    let check = |bytes: &[u8], what: Corruption, member: Option<&str>| {
        fs::write(&archive, bytes).expect("write");
        let err = load(tmp.path()).expect_err("corrupt");
        assert_eq!(err.corruption(), Some(what), "{err}");
        let file = err.file().expect("a file");
        assert_eq!(file.path, archive, "{err}");
        if let Some(member) = member {
            assert_eq!(file.member.as_deref(), Some(member), "{err}");
        }
        err
    };
    let err = check(b"not gzip", Corruption::Gzip, None);
    assert_eq!(err.file().and_then(|f| f.member.clone()), None);
    let err = check(&gzip(&[b'x'; 2048]), Corruption::Archive, None);
    assert_eq!(err.file().and_then(|f| f.member.clone()), None);
    let written = {
        let dir = tmp.path().join("w");
        fixtures::write_cifar10_bin_tar_gz(&dir, 4, 1).expect("write");
        fs::read(dir.join(BIN_TAR)).expect("read")
    };
    check(&written[..written.len() / 2], Corruption::Gzip, None);
    // Flipped bytes anywhere in the compressed stream: the compression is blamed.
    for at in [written.len() / 3, written.len() / 2, written.len() - 12] {
        let mut flipped = written.clone();
        flipped[at] ^= 0xff;
        flipped[at + 1] ^= 0xa5;
        check(&flipped, Corruption::Gzip, None);
    }
    // Damage inside batch 3: a partial record, and a label out of range.
    let batch = bin_batch(&synth(DatasetKind::Cifar10, 2, 1, "t", 0));
    let mut bad_label = batch.clone();
    bad_label[0] = 200;
    let names: Vec<String> = (1..=5)
        .map(|i| format!("{BIN_DIR}/data_batch_{i}.bin"))
        .collect();
    for (bytes, what) in [
        (&batch[..100], Corruption::Length),
        (&bad_label[..], Corruption::Label),
    ] {
        let members: Vec<(&str, &[u8])> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), if i == 2 { bytes } else { &batch[..] }))
            .collect();
        check(&tar_gz(&members), what, Some(&names[2]));
    }
    // A tar cut inside a member, then gzipped cleanly: the member is short.
    let members: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &batch[..])).collect();
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&tar_gz(&members)[..])
        .read_to_end(&mut tar_bytes)
        .expect("gunzip");
    let cut = 512 * 2 + batch.len() + 512 + 1000;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&tar_bytes[..cut]).expect("gzip");
    check(
        &enc.finish().expect("gzip"),
        Corruption::Archive,
        Some(&names[1]),
    );
}

#[test]
fn real_python3_pickles_decode() {
    for (bytes, name) in [(BATCH_P2, "p2"), (BATCH_P4, "p4")] {
        let mut set = ImageSet::new(DatasetKind::Cifar10);
        decode_batch(&FileLoc::file(name), Flavor::Py, bytes, &mut set).expect(name);
        assert_eq!(set.labels, [3, 7], "{name}");
        let expected: Vec<u8> = (0..2 * IMAGE).map(|i| (i * 7 % 128) as u8).collect();
        assert_eq!(set.images, expected, "{name}");
    }
    // As a whole folder, five copies of the same batch.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(PY_DIR);
    fs::create_dir_all(&dir).expect("mkdir");
    for i in 1..=BATCHES {
        fs::write(dir.join(format!("data_batch_{i}")), BATCH_P4).expect("write");
    }
    let set = load(tmp.path()).expect("load");
    assert_eq!(set.len(), 10);
    assert_eq!(set.labels, [3, 7, 3, 7, 3, 7, 3, 7, 3, 7]);
}

#[test]
fn writer_lays_out_the_pickle_like_cpickle() {
    let bytes = py_bytes(2);
    let head: &[u8] = b"\x80\x02}q\x01(U\x0bbatch_labelq\x02U\x15training batch 2 of 5q\x03\
        U\x06labelsq\x04]q\x05(K";
    assert!(
        bytes.starts_with(head),
        "{:?}",
        &bytes[..head.len().min(bytes.len())]
    );
    let array: &[u8] = b"U\x04dataq\x06cnumpy.core.multiarray\n_reconstruct\nq\x07\
        cnumpy\nndarray\nq\x08K\x00\x85U\x01b\x87Rq\t(K\x01K\x02M\x00\x0c\x86\
        cnumpy\ndtype\nq\nU\x02u1K\x00K\x01\x87Rq\x0b(K\x03U\x01|NNN\
        J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T\x00\x18\x00\x00";
    assert!(bytes.windows(array.len()).any(|w| w == array));
    assert!(bytes.ends_with(b"eu."));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_batches_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..8000)) {
        let mut set = ImageSet::new(DatasetKind::Cifar10);
        let _ = decode_batch(&FileLoc::file("x"), Flavor::Bin, &bytes, &mut set);
        let _ = decode_batch(&FileLoc::file("x"), Flavor::Py, &bytes, &mut set);
    }
}
