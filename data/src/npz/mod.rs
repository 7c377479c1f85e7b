//! A user's own data: a NumPy `.npz` archive as `np.savez` or `np.savez_compressed` write it,
//! read with the `npyz` crate and checked in full before anything is used.
//!
//! Arrays: `x_train` (required) and `y_train` (required), `x_test` and `y_test` (optional, both
//! or neither), `class_names` (optional, strings). Images are `uint8` or `float32`, shaped
//! `(n, h, w)` (one channel) or `(n, h, w, c)` (channels last, `c` from 1 to 4), C order; they are
//! returned channel-major (C, H, W) like the built-in datasets. `x_test` has `x_train`'s dtype.
//! `uint8` pixels are scaled to [0, 1] by the trainer (as `ToTensor` does); `float32` pixels are
//! taken as they are (any finite value: a NaN or an infinity is refused, by its index). Labels are integers (any width)
//! from 0 to the class count: the length of `class_names` when given, else the largest label + 1.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use npyz::npz::NpzArchive;
use npyz::{DType, NpyFile, Order, TypeChar};

use super::{Corruption, DataError, FileLoc, MAX_FILE_BYTES};

mod own;
pub use own::{GridReader, candidates, facts, load_own, sha256};

/// Most classes a data set may have (labels are stored as bytes).
pub const MAX_CLASSES: usize = 256;

/// Pixels of one split, channel-major, in the element type of the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// `uint8` images (0..=255).
    U8(Vec<u8>),
    /// `float32` images, as given (no scaling), every value finite.
    F32(Vec<f32>),
}

impl Pixels {
    /// NumPy's name of the element type.
    pub fn dtype(&self) -> &'static str {
        match self {
            Pixels::U8(_) => "uint8",
            Pixels::F32(_) => "float32",
        }
    }
}

/// One split: `labels.len()` images of `NpzData::shape`.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// All images, one after the other, channel-major.
    pub pixels: Pixels,
    /// One label per image, each below the class count.
    pub labels: Vec<u8>,
}

/// A checked `.npz` data set.
#[derive(Debug, Clone, PartialEq)]
pub struct NpzData {
    /// Image shape (channels, height, width).
    pub shape: [usize; 3],
    /// Number of classes (the model's output width).
    pub classes: usize,
    /// Class names, indexed by label (`class_names`, else the labels as text).
    pub class_names: Vec<String>,
    /// `x_train`, `y_train`.
    pub train: Split,
    /// `x_test`, `y_test`, when the file has them.
    pub test: Option<Split>,
}

/// Reads and checks the `.npz` file at `path` (see the module doc).
pub fn load_npz(path: &Path) -> Result<NpzData, DataError> {
    read(path, true)
}

/// Checks the `.npz` file at `path` as [`load_npz`] does, but leaves the images' pixels unread
/// (their headers are checked; the labels and class names are read and checked): what the
/// coordinator reads when it loads a grid. The splits' pixels are empty vectors of the file's
/// element type.
pub fn check_npz(path: &Path) -> Result<NpzData, DataError> {
    read(path, false)
}

fn read(path: &Path, pixels: bool) -> Result<NpzData, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        file: FileLoc::file(path),
        source,
    })?;
    let mut archive = NpzArchive::new(file).map_err(|e| {
        DataError::corrupt(
            &FileLoc::file(path),
            Corruption::Archive,
            "a NumPy .npz archive (a zip file, as np.savez writes)",
            e.to_string(),
        )
    })?;
    let mut arrays = Arrays {
        path,
        archive: &mut archive,
        pixels,
    };
    let (x_train, shape) = arrays.images("x_train")?;
    let y_train = arrays.labels("y_train", x_train.len)?;
    let test = match (arrays.has("x_test"), arrays.has("y_test")) {
        (false, false) => None,
        (true, true) => {
            let (x, test_shape) = arrays.images("x_test")?;
            if std::mem::discriminant(&x.pixels) != std::mem::discriminant(&x_train.pixels) {
                return Err(arrays.corrupt(
                    "x_test",
                    Corruption::Dtype,
                    format!("images of x_train's dtype {}", x_train.pixels.dtype()),
                    format!("dtype {}", x.pixels.dtype()),
                ));
            }
            if test_shape != shape {
                return Err(arrays.corrupt(
                    "x_test",
                    Corruption::Shape,
                    format!("images of x_train's shape {}", show(&shape)),
                    format!("images of shape {}", show(&test_shape)),
                ));
            }
            let y = arrays.labels("y_test", x.len)?;
            Some((x, y))
        }
        (x, _) => {
            let (has, lacks) = if x {
                ("x_test", "y_test")
            } else {
                ("y_test", "x_test")
            };
            return Err(DataError::corrupt(
                &FileLoc::file(path),
                Corruption::Content,
                "x_test and y_test together, or neither",
                format!("{has} without {lacks}"),
            ));
        }
    };
    let names = arrays.class_names()?;
    let largest = y_train.iter().chain(test.iter().flat_map(|(_, y)| y)).max();
    let classes = match &names {
        Some(n) => n.len(),
        None => largest.map_or(1, |&l| l as usize + 1),
    };
    check_labels(path, "y_train", &y_train, classes, names.is_some())?;
    if let Some((_, y)) = &test {
        check_labels(path, "y_test", y, classes, names.is_some())?;
    }
    let split = |x: Images, y: Vec<i64>| Split {
        pixels: x.pixels,
        labels: y.into_iter().map(|l| l as u8).collect(),
    };
    Ok(NpzData {
        shape,
        classes,
        class_names: names.unwrap_or_else(|| (0..classes).map(|c| c.to_string()).collect()),
        train: split(x_train, y_train),
        test: test.map(|(x, y)| split(x, y)),
    })
}

fn show(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("({})", parts.join(", "))
}

/// Checks labels against the class count (labels were checked to be 0..MAX_CLASSES already).
fn check_labels(
    path: &Path,
    name: &str,
    labels: &[i64],
    classes: usize,
    named: bool,
) -> Result<(), DataError> {
    if let Some((i, l)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| **l >= classes as i64)
    {
        let whence = if named {
            format!("labels 0..{classes} (class_names has {classes} names)")
        } else {
            format!("labels 0..{classes}")
        };
        return Err(DataError::corrupt(
            &FileLoc::member(path, name),
            Corruption::Label,
            whence,
            format!("label {l} at index {i}"),
        ));
    }
    Ok(())
}

/// Images read from one array, channel-major.
struct Images {
    pixels: Pixels,
    len: usize,
}

/// The archive being read, its path for messages, and whether images' pixels are read.
struct Arrays<'a, R: Read + Seek> {
    path: &'a Path,
    archive: &'a mut NpzArchive<R>,
    pixels: bool,
}

impl<R: Read + Seek> Arrays<'_, R> {
    fn corrupt(
        &self,
        name: &str,
        what: Corruption,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> DataError {
        DataError::corrupt(&FileLoc::member(self.path, name), what, expected, found)
    }

    fn has(&self, name: &str) -> bool {
        self.archive.array_names().any(|n| n == name)
    }

    /// The array `name`, its dtype (`<u1`, `<f4`, ...) and shape, checked for size and order.
    fn open(&mut self, name: &str) -> Result<(NpyFile<impl Read + '_>, String), DataError> {
        let path = self.path;
        let loc = FileLoc::member(path, name);
        let names: Vec<String> = self.archive.array_names().map(str::to_owned).collect();
        let npy = match self.archive.by_name(name) {
            Ok(Some(npy)) => npy,
            Ok(None) => {
                return Err(DataError::corrupt(
                    &FileLoc::file(path),
                    Corruption::Content,
                    format!("an array named {name} (np.savez(file, x_train=..., y_train=...))"),
                    format!("arrays [{}]", names.join(", ")),
                ));
            }
            Err(e) => {
                return Err(DataError::corrupt(
                    &loc,
                    Corruption::Archive,
                    "a valid .npy member",
                    e.to_string(),
                ));
            }
        };
        let dtype = npy.dtype().descr();
        if npy.order() == Order::Fortran && npy.shape().len() > 1 {
            return Err(DataError::corrupt(
                &loc,
                Corruption::Content,
                "an array in C order (save np.ascontiguousarray(a))",
                "a Fortran-order array",
            ));
        }
        let bytes = npy.shape().iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let item = match npy.dtype() {
            DType::Plain(t) => t.size_field(),
            _ => 1,
        };
        if bytes
            .and_then(|b| b.checked_mul(item))
            .is_none_or(|b| b > MAX_FILE_BYTES)
        {
            return Err(DataError::corrupt(
                &loc,
                Corruption::Length,
                format!("at most {MAX_FILE_BYTES} bytes of array data"),
                format!("shape {:?} of {dtype}", npy.shape()),
            ));
        }
        Ok((npy, dtype))
    }

    fn images(&mut self, name: &str) -> Result<(Images, [usize; 3]), DataError> {
        let (path, read_pixels) = (self.path, self.pixels);
        let (npy, dtype) = self.open(name)?;
        let dims: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let shape_err = |found: String| {
            DataError::corrupt(
                &FileLoc::member(path, name),
                Corruption::Shape,
                "images of shape (n, h, w) or (n, h, w, c) with c from 1 to 4, n, h and w at least 1",
                found,
            )
        };
        let (n, h, w, c) = match dims.as_slice() {
            [n, h, w] => (*n, *h, *w, 1),
            [n, h, w, c] if (1..=4).contains(c) => (*n, *h, *w, *c),
            _ => return Err(shape_err(format!("shape {}", show(&dims)))),
        };
        if n == 0 || h == 0 || w == 0 {
            return Err(shape_err(format!("shape {}", show(&dims))));
        }
        let read_err = |e: io::Error| {
            DataError::corrupt(
                &FileLoc::member(path, name),
                Corruption::Length,
                format!("{} elements of {dtype}", n * h * w * c),
                format!("a damaged or truncated array: {e}"),
            )
        };
        let pixels = match kind(&npy.dtype()) {
            Some((TypeChar::Uint, 1)) if !read_pixels => Pixels::U8(Vec::new()),
            Some((TypeChar::Uint, 1)) => {
                Pixels::U8(to_chw(&npy.into_vec::<u8>().map_err(read_err)?, h, w, c))
            }
            // Every value is checked, also when the pixels are not kept (the grid loader's
            // check), so a NaN is refused when the grid is loaded, not in a trial.
            Some((TypeChar::Float, 4)) => {
                let at = |i: usize| FloatAt::new(i, [h, w, c]);
                let values = finite_floats(npy, read_pixels, at, read_err)
                    .map_err(|e| e.into_error(path, name))?;
                Pixels::F32(if read_pixels {
                    to_chw(&values, h, w, c)
                } else {
                    values
                })
            }
            _ => {
                return Err(DataError::corrupt(
                    &FileLoc::member(path, name),
                    Corruption::Dtype,
                    "images of dtype uint8 or float32",
                    format!("dtype {dtype}"),
                ));
            }
        };
        Ok((Images { pixels, len: n }, [c, h, w]))
    }

    fn labels(&mut self, name: &str, images: usize) -> Result<Vec<i64>, DataError> {
        let path = self.path;
        let (npy, dtype) = self.open(name)?;
        let loc = FileLoc::member(path, name);
        let dims: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let image_name = name.replace('y', "x");
        match dims.as_slice() {
            [n] if *n == images => {}
            [n] => {
                return Err(DataError::corrupt(
                    &loc,
                    Corruption::Count,
                    format!("{images} labels, one per image of {image_name}"),
                    format!("{n} labels"),
                ));
            }
            _ => {
                return Err(DataError::corrupt(
                    &loc,
                    Corruption::Shape,
                    format!("a 1-d array of {images} labels"),
                    format!("shape {}", show(&dims)),
                ));
            }
        }
        let read_err = |e: io::Error| {
            DataError::corrupt(
                &loc,
                Corruption::Length,
                format!("{images} labels of {dtype}"),
                format!("a damaged or truncated array: {e}"),
            )
        };
        let labels: Vec<i64> = match kind(&npy.dtype()) {
            Some((TypeChar::Uint, 1)) => widen(npy.into_vec::<u8>(), read_err)?,
            Some((TypeChar::Uint, 2)) => widen(npy.into_vec::<u16>(), read_err)?,
            Some((TypeChar::Uint, 4)) => widen(npy.into_vec::<u32>(), read_err)?,
            Some((TypeChar::Uint, 8)) => npy
                .into_vec::<u64>()
                .map_err(read_err)?
                .into_iter()
                .map(|l| i64::try_from(l).unwrap_or(i64::MAX))
                .collect(),
            Some((TypeChar::Int, 1)) => widen(npy.into_vec::<i8>(), read_err)?,
            Some((TypeChar::Int, 2)) => widen(npy.into_vec::<i16>(), read_err)?,
            Some((TypeChar::Int, 4)) => widen(npy.into_vec::<i32>(), read_err)?,
            Some((TypeChar::Int, 8)) => npy.into_vec::<i64>().map_err(read_err)?,
            _ => {
                return Err(DataError::corrupt(
                    &loc,
                    Corruption::Dtype,
                    "labels of an integer dtype (int8 .. int64, uint8 .. uint64)",
                    format!("dtype {dtype}"),
                ));
            }
        };
        let max = MAX_CLASSES as i64;
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| !(0..max).contains(*l))
        {
            return Err(DataError::corrupt(
                &loc,
                Corruption::Label,
                format!("labels 0..{MAX_CLASSES}"),
                format!("label {l} at index {i}"),
            ));
        }
        Ok(labels)
    }

    fn class_names(&mut self) -> Result<Option<Vec<String>>, DataError> {
        const NAME: &str = "class_names";
        if !self.has(NAME) {
            return Ok(None);
        }
        let path = self.path;
        let (npy, dtype) = self.open(NAME)?;
        let loc = FileLoc::member(path, NAME);
        let n = match npy.shape() {
            &[n] if (1..=MAX_CLASSES as u64).contains(&n) => n,
            other => {
                return Err(DataError::corrupt(
                    &loc,
                    Corruption::Shape,
                    format!("a 1-d array of 1 to {MAX_CLASSES} names"),
                    format!("shape {other:?}"),
                ));
            }
        };
        if !matches!(kind(&npy.dtype()), Some((TypeChar::UnicodeStr, _))) {
            return Err(DataError::corrupt(
                &loc,
                Corruption::Dtype,
                "strings (numpy dtype <U, e.g. np.array([\"cat\", \"dog\"]))",
                format!("dtype {dtype}"),
            ));
        }
        let names = npy.into_vec::<String>().map_err(|e| {
            DataError::corrupt(
                &loc,
                Corruption::Length,
                format!("{n} names of {dtype}"),
                e.to_string(),
            )
        })?;
        Ok(Some(names))
    }
}

/// Where a float32 value sits in an `(n, h, w, c)` array, for messages.
struct FloatAt {
    index: usize,
    image: usize,
    row: usize,
    column: usize,
    channel: usize,
}

impl FloatAt {
    fn new(index: usize, [h, w, c]: [usize; 3]) -> Self {
        let per_image = (h * w * c).max(1);
        let within = index % per_image;
        Self {
            index,
            image: index / per_image,
            row: within / (w * c).max(1),
            column: within / c.max(1) % w.max(1),
            channel: within % c.max(1),
        }
    }
}

/// Why a float32 image array was refused.
enum FloatError {
    /// A NaN or an infinity, and where.
    NotFinite(f32, FloatAt),
    /// The array could not be read.
    Read(DataError),
}

impl FloatError {
    fn into_error(self, path: &Path, name: &str) -> DataError {
        match self {
            FloatError::Read(e) => e,
            FloatError::NotFinite(v, at) => DataError::corrupt(
                &FileLoc::member(path, name),
                Corruption::Content,
                "finite float32 pixels (no NaN or infinity)",
                format!(
                    "{v} at index {} (image {}, row {}, column {}, channel {})",
                    at.index, at.image, at.row, at.column, at.channel
                ),
            ),
        }
    }
}

/// The values of a float32 array, in file order, checked to be finite; kept only when `keep`
/// (else read one at a time and dropped: the grid loader's check holds no pixels).
fn finite_floats<R: Read>(
    npy: NpyFile<R>,
    keep: bool,
    at: impl Fn(usize) -> FloatAt,
    read_err: impl Fn(io::Error) -> DataError,
) -> Result<Vec<f32>, FloatError> {
    let mut values = Vec::new();
    if keep {
        values = npy
            .into_vec::<f32>()
            .map_err(|e| FloatError::Read(read_err(e)))?;
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(FloatError::NotFinite(*v, at(i)));
        }
        return Ok(values);
    }
    let data = npy
        .data::<f32>()
        .map_err(|e| FloatError::Read(read_err(io::Error::other(e))))?;
    for (i, v) in data.enumerate() {
        let v = v.map_err(|e| FloatError::Read(read_err(e)))?;
        if !v.is_finite() {
            return Err(FloatError::NotFinite(v, at(i)));
        }
    }
    Ok(values)
}

fn kind(dtype: &DType) -> Option<(TypeChar, u64)> {
    match dtype {
        DType::Plain(t) => Some((t.type_char(), t.size_field())),
        _ => None,
    }
}

fn widen<T: Into<i64>>(
    read: io::Result<Vec<T>>,
    err: impl FnOnce(io::Error) -> DataError,
) -> Result<Vec<i64>, DataError> {
    Ok(read.map_err(err)?.into_iter().map(Into::into).collect())
}

/// `(n, h, w, c)` in C order to `(n, c, h, w)`.
fn to_chw<T: Copy>(hwc: &[T], h: usize, w: usize, c: usize) -> Vec<T> {
    if c == 1 {
        return hwc.to_vec();
    }
    let image = h * w * c;
    let mut out = Vec::with_capacity(hwc.len());
    for img in hwc.chunks_exact(image) {
        for ch in 0..c {
            out.extend(img.iter().skip(ch).step_by(c).copied());
        }
    }
    out
}

#[cfg(test)]
mod tests;
