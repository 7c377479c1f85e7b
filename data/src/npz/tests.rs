//! `.npz` files written with `npyz`'s own writer: every accepted layout, and every error with
//! its file, array, expected and found values.

use std::io::Cursor;
use std::path::PathBuf;

use npyz::npz::NpzWriter;
use npyz::{AutoSerialize, DType, Serialize, TypeStr, WriterBuilder};
use zip::write::FileOptions;

use super::*;

/// An array to write: name, dtype, shape, and a writer of its elements.
type Write = Box<dyn Fn(&mut NpzWriter<Cursor<Vec<u8>>>)>;

fn array<T: Serialize + AutoSerialize + Clone + 'static>(
    name: &'static str,
    shape: &[u64],
    data: Vec<T>,
) -> Write {
    let shape = shape.to_vec();
    Box::new(move |w| {
        let mut a = w
            .array::<T>(name, FileOptions::default())
            .expect("start")
            .default_dtype()
            .shape(&shape)
            .begin_nd()
            .expect("begin");
        a.extend(data.iter().cloned()).expect("write");
        a.finish().expect("finish");
    })
}

fn strings(name: &'static str, names: &[&str]) -> Write {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    Box::new(move |w| {
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(1);
        let t: TypeStr = format!("<U{width}").parse().expect("type");
        let mut a = w
            .array::<String>(name, FileOptions::default())
            .expect("start")
            .dtype(DType::new_scalar(t))
            .shape(&[names.len() as u64])
            .begin_nd()
            .expect("begin");
        a.extend(names.iter().cloned()).expect("write");
        a.finish().expect("finish");
    })
}

fn npz(arrays: &[Write]) -> Vec<u8> {
    let mut w = NpzWriter::new(Cursor::new(Vec::new()));
    for a in arrays {
        a(&mut w);
    }
    w.zip_writer().finish().expect("zip").into_inner()
}

fn write(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("own.npz");
    std::fs::write(&path, bytes).expect("write");
    (tmp, path)
}

fn load(arrays: &[Write]) -> Result<NpzData, DataError> {
    let (_tmp, path) = write(&npz(arrays));
    load_npz(&path)
}

fn err(arrays: &[Write], what: Corruption, needles: &[&str]) {
    let e = load(arrays).expect_err("must be refused");
    let msg = e.to_string();
    assert_eq!(e.corruption(), Some(what), "{msg}");
    assert!(msg.contains("own.npz"), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in {msg}");
    }
}

#[test]
fn hwc_uint8_is_made_channel_major_with_classes_from_labels() {
    // Two 1x2 RGB images: pixel values encode (image, row, col, channel).
    let x: Vec<u8> = (0..12).collect();
    let d = load(&[
        array("x_train", &[2, 1, 2, 3], x),
        array("y_train", &[2], vec![0i64, 2]),
    ])
    .expect("loads");
    assert_eq!(d.shape, [3, 1, 2]);
    assert_eq!(d.classes, 3);
    assert_eq!(d.class_names, ["0", "1", "2"]);
    assert_eq!(
        d.train.pixels,
        Pixels::U8(vec![0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11])
    );
    assert_eq!(d.train.labels, [0, 2]);
    assert_eq!(d.test, None);
}

#[test]
fn hw_float32_with_test_split_and_class_names() {
    let d = load(&[
        array("x_train", &[3, 2, 2], vec![0.5f32; 12]),
        array("y_train", &[3], vec![0u8, 1, 1]),
        array("x_test", &[1, 2, 2], vec![0.25f32; 4]),
        array("y_test", &[1], vec![3i32]),
        strings("class_names", &["cat", "dog", "emu", "yak"]),
    ])
    .expect("loads");
    assert_eq!(d.shape, [1, 2, 2]);
    assert_eq!(d.classes, 4);
    assert_eq!(d.class_names, ["cat", "dog", "emu", "yak"]);
    assert_eq!(d.train.pixels, Pixels::F32(vec![0.5; 12]));
    let test = d.test.expect("test split");
    assert_eq!(test.labels, [3]);
}

#[test]
fn wrong_dtypes_are_refused_naming_array_and_allowed_types() {
    err(
        &[
            array("x_train", &[1, 2, 2], vec![1.0f64; 4]),
            array("y_train", &[1], vec![0i64]),
        ],
        Corruption::Dtype,
        &["member x_train", "uint8 or float32", "<f8"],
    );
    err(
        &[
            array("x_train", &[1, 2, 2], vec![1u8; 4]),
            array("y_train", &[1], vec![0.0f32]),
        ],
        Corruption::Dtype,
        &["member y_train", "integer dtype", "<f4"],
    );
    err(
        &[
            array("x_train", &[1, 2, 2], vec![1u8; 4]),
            array("y_train", &[1], vec![0u8]),
            array("class_names", &[1], vec![1i64]),
        ],
        Corruption::Dtype,
        &["member class_names", "strings"],
    );
}

#[test]
fn bad_shapes_and_counts_are_refused() {
    err(
        &[
            array("x_train", &[4], vec![1u8; 4]),
            array("y_train", &[4], vec![0u8; 4]),
        ],
        Corruption::Shape,
        &["member x_train", "(n, h, w)", "shape (4)"],
    );
    err(
        &[
            array("x_train", &[1, 2, 2, 5], vec![1u8; 20]),
            array("y_train", &[1], vec![0u8]),
        ],
        Corruption::Shape,
        &["c from 1 to 4", "shape (1, 2, 2, 5)"],
    );
    err(
        &[
            array("x_train", &[2, 2, 2], vec![1u8; 8]),
            array("y_train", &[3], vec![0u8; 3]),
        ],
        Corruption::Count,
        &[
            "member y_train",
            "2 labels, one per image of x_train",
            "3 labels",
        ],
    );
    err(
        &[
            array("x_train", &[2, 2, 2], vec![1u8; 8]),
            array("y_train", &[2], vec![0u8; 2]),
            array("x_test", &[1, 3, 3], vec![1u8; 9]),
            array("y_test", &[1], vec![0u8]),
        ],
        Corruption::Shape,
        &["member x_test", "(1, 2, 2)", "(1, 3, 3)"],
    );
}

#[test]
fn labels_out_of_range_are_refused() {
    err(
        &[
            array("x_train", &[2, 1, 1], vec![1u8; 2]),
            array("y_train", &[2], vec![0i64, -1]),
        ],
        Corruption::Label,
        &["member y_train", "labels 0..256", "label -1 at index 1"],
    );
    err(
        &[
            array("x_train", &[2, 1, 1], vec![1u8; 2]),
            array("y_train", &[2], vec![0u8, 2]),
            strings("class_names", &["a", "b"]),
        ],
        Corruption::Label,
        &[
            "labels 0..2 (class_names has 2 names)",
            "label 2 at index 1",
        ],
    );
}

#[test]
fn missing_arrays_are_refused_with_what_the_file_holds() {
    err(
        &[array("images", &[1, 1, 1], vec![1u8])],
        Corruption::Content,
        &["an array named x_train", "arrays [images]"],
    );
    err(
        &[
            array("x_train", &[1, 1, 1], vec![1u8]),
            array("y_train", &[1], vec![0u8]),
            array("x_test", &[1, 1, 1], vec![1u8]),
        ],
        Corruption::Content,
        &["x_test without y_test"],
    );
}

#[test]
fn truncated_corrupt_and_missing_files_are_errors_not_panics() {
    let good = npz(&[
        array("x_train", &[4, 2, 2], vec![7u8; 16]),
        array("y_train", &[4], vec![1u8; 4]),
    ]);
    for cut in [0, 10, good.len() / 2, good.len() - 10] {
        let (_tmp, path) = write(&good[..cut]);
        let e = load_npz(&path).expect_err("truncated");
        assert!(e.to_string().contains("own.npz"), "{e}");
    }
    let (_tmp, path) = write(b"not a zip file at all");
    let e = load_npz(&path).expect_err("not a zip");
    assert_eq!(e.corruption(), Some(Corruption::Archive), "{e}");
    assert!(e.to_string().contains("np.savez"), "{e}");
    let e = load_npz(Path::new("/nonexistent/own.npz")).expect_err("missing");
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    // Every single-byte corruption of the file: an error or a load, never a panic.
    for i in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        let (_tmp, path) = write(&bad);
        let _ = load_npz(&path);
    }
}

#[test]
fn hwc_float32_is_made_channel_major_and_kept_as_given() {
    // Values outside [0, 1] are the user's choice (already normalised data): kept as they are.
    let x: Vec<f32> = (0..12).map(|v| v as f32 - 5.5).collect();
    let d = load(&[
        array("x_train", &[2, 1, 2, 3], x),
        array("y_train", &[2], vec![1u8, 0]),
    ])
    .expect("loads");
    assert_eq!(d.shape, [3, 1, 2]);
    let want: Vec<f32> = [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]
        .iter()
        .map(|&v| v as f32 - 5.5)
        .collect();
    assert_eq!(d.train.pixels, Pixels::F32(want));
}

#[test]
fn non_finite_floats_are_refused_with_their_index_also_by_the_grid_check() {
    // 2 images of 2x3 pixels, 2 channels: element 17 is image 1, row 0, column 2, channel 1.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = vec![0.5f32; 24];
        x[17] = bad;
        let arrays = [
            array("x_train", &[2, 2, 3, 2], x),
            array("y_train", &[2], vec![0u8, 1]),
        ];
        let (_tmp, path) = write(&npz(&arrays));
        for e in [
            load_npz(&path).expect_err("load"),
            check_npz(&path).expect_err("check"),
        ] {
            let msg = e.to_string();
            assert_eq!(e.corruption(), Some(Corruption::Content), "{msg}");
            for n in [
                "own.npz",
                "member x_train",
                "finite float32",
                "at index 17 (image 1, row 0, column 2, channel 1)",
            ] {
                assert!(msg.contains(n), "{n:?} not in {msg}");
            }
        }
    }
    // In x_test too, named as such.
    let mut xt = vec![0.0f32; 4];
    xt[3] = f32::NAN;
    err(
        &[
            array("x_train", &[1, 2, 2], vec![0.0f32; 4]),
            array("y_train", &[1], vec![0u8]),
            array("x_test", &[1, 2, 2], xt),
            array("y_test", &[1], vec![0u8]),
        ],
        Corruption::Content,
        &[
            "member x_test",
            "NaN at index 3 (image 0, row 1, column 1, channel 0)",
        ],
    );
}

#[test]
fn float32_of_a_wrong_shape_is_refused() {
    err(
        &[
            array("x_train", &[6], vec![0.5f32; 6]),
            array("y_train", &[6], vec![0u8; 6]),
        ],
        Corruption::Shape,
        &["member x_train", "(n, h, w)", "shape (6)"],
    );
    err(
        &[
            array("x_train", &[1, 1, 1, 6], vec![0.5f32; 6]),
            array("y_train", &[1], vec![0u8]),
        ],
        Corruption::Shape,
        &["c from 1 to 4", "shape (1, 1, 1, 6)"],
    );
}

#[test]
fn train_and_test_images_of_different_dtypes_are_refused() {
    err(
        &[
            array("x_train", &[1, 2, 2], vec![0.5f32; 4]),
            array("y_train", &[1], vec![0u8]),
            array("x_test", &[1, 2, 2], vec![1u8; 4]),
            array("y_test", &[1], vec![0u8]),
        ],
        Corruption::Dtype,
        &["member x_test", "x_train's dtype float32", "dtype uint8"],
    );
    err(
        &[
            array("x_train", &[1, 2, 2], vec![1u8; 4]),
            array("y_train", &[1], vec![0u8]),
            array("x_test", &[1, 2, 2], vec![0.5f32; 4]),
            array("y_test", &[1], vec![0u8]),
        ],
        Corruption::Dtype,
        &["member x_test", "x_train's dtype uint8", "dtype float32"],
    );
}
