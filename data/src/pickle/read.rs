//! Reading a parsed pickle: dict lookups, ints, byte strings, and numpy arrays and dtypes, by
//! interpreting the inert call records the machine left (never by running anything).

use std::borrow::Cow;

use super::{Obj, Pickle, Value, describe};

/// Modules numpy has used for `_reconstruct` (numpy 1.x wrote `numpy.core.multiarray`, 2.x
/// writes `numpy._core.multiarray`).
const RECONSTRUCT_MODULES: [&str; 4] = [
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core._multiarray_umath",
    "numpy._core._multiarray_umath",
];
/// Modules numpy has used for `_frombuffer` (protocol 5 pickles).
const FROMBUFFER_MODULES: [&str; 2] = ["numpy.core.numeric", "numpy._core.numeric"];

/// A numpy array read from a pickle.
#[derive(Debug)]
pub(crate) struct NdArray<'a> {
    /// Dimensions, outermost first.
    pub(crate) shape: Vec<usize>,
    /// The dtype's type string, as numpy pickles it (`u1` for uint8).
    pub(crate) dtype: String,
    /// Whether the data is column-major.
    pub(crate) fortran: bool,
    /// The raw element bytes (borrowed from the input where possible).
    pub(crate) data: Cow<'a, [u8]>,
}

/// A call record: `(module, name)` of the callable, its arguments, the state BUILD gave it.
type CallRef<'p, 'a> = ((&'a str, &'a str), &'p [Value], Option<Value>);

impl<'a> Pickle<'a> {
    fn obj(&self, v: Value) -> Option<&Obj<'a>> {
        match v {
            Value::Obj(id) => self.objs.get(id),
            _ => None,
        }
    }

    /// A short description of `v`, for error messages.
    pub(crate) fn describe(&self, v: Value) -> String {
        describe(&self.objs, v)
    }

    /// `None` if `dict` is not a dict; else the value of `key` (a str or bytes key, however
    /// pickled), if any. A key set twice keeps its last value, as in Python.
    pub(crate) fn dict_get(&self, dict: Value, key: &str) -> Option<Option<Value>> {
        let matches = |k: Value| match self.text(k) {
            Some(t) => t == key.as_bytes(),
            None => self.bytes_like(k, 0).is_some_and(|b| *b == *key.as_bytes()),
        };
        match self.obj(dict)? {
            Obj::Dict(items) => Some(
                items
                    .iter()
                    .rev()
                    .find(|(k, _)| matches(*k))
                    .map(|(_, v)| *v),
            ),
            _ => None,
        }
    }

    /// The bytes of a str (utf-8) or of a bytes / Python 2 str.
    fn text(&self, v: Value) -> Option<&'a [u8]> {
        match self.obj(v)? {
            Obj::Str(s) => Some(s.as_bytes()),
            Obj::Bytes(b) => Some(b),
            _ => None,
        }
    }

    fn int(&self, v: Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(i),
            Value::Bool(b) => Some(i64::from(b)),
            _ => None,
        }
    }

    fn tuple(&self, v: Value) -> Option<&[Value]> {
        match self.obj(v)? {
            Obj::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The items of a list or tuple of ints.
    pub(crate) fn int_list(&self, v: Value) -> Result<Vec<i64>, String> {
        let items = match self.obj(v) {
            Some(Obj::List(items) | Obj::Tuple(items)) => items,
            _ => return Err(self.describe(v)),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, &item)| {
                self.int(item)
                    .ok_or_else(|| format!("{} at index {i}", self.describe(item)))
            })
            .collect()
    }

    /// `(module, name)` of a global, with Python 2 module names mapped to Python 3's.
    fn global(&self, v: Value) -> Option<(&'a str, &'a str)> {
        match self.obj(v)? {
            Obj::Global { module, name } => Some(match *module {
                "__builtin__" => ("builtins", *name),
                _ => (*module, *name),
            }),
            _ => None,
        }
    }

    /// The callable's `(module, name)`, the argument tuple and the state of a call record.
    fn call(&self, v: Value) -> Option<CallRef<'_, 'a>> {
        match self.obj(v)? {
            Obj::Call { func, args, state } => {
                Some((self.global(*func)?, self.tuple(*args)?, *state))
            }
            _ => None,
        }
    }

    /// A byte string: bytes, a Python 2 str, or what Python 3 writes for bytes under protocol 2
    /// (`_codecs.encode(text, 'latin1')`, `bytes()`, `bytearray(..)`).
    fn bytes_like(&self, v: Value, depth: u8) -> Option<Cow<'a, [u8]>> {
        if let Some(Obj::Bytes(b)) = self.obj(v) {
            return Some(Cow::Borrowed(*b));
        }
        let (func, args, _) = self.call(v)?;
        match (func, args) {
            (("_codecs", "encode"), [text, encoding]) => {
                let encoding = self.text(*encoding)?;
                if !matches!(encoding, b"latin1" | b"latin-1" | b"iso-8859-1") {
                    return None;
                }
                let Some(Obj::Str(s)) = self.obj(*text) else {
                    return None;
                };
                s.chars()
                    .map(|c| u8::try_from(u32::from(c)).ok())
                    .collect::<Option<Vec<u8>>>()
                    .map(Cow::Owned)
            }
            (("builtins", "bytes" | "bytearray"), []) => Some(Cow::Owned(Vec::new())),
            (("builtins", "bytes" | "bytearray"), [inner]) if depth > 0 => {
                self.bytes_like(*inner, depth - 1)
            }
            _ => None,
        }
    }

    /// The type string of a `numpy.dtype(..)` call record (`u1` for uint8).
    fn dtype(&self, v: Value) -> Result<String, String> {
        match self.call(v) {
            Some((("numpy", "dtype"), [descr, ..], _)) => match self.text(*descr) {
                Some(t) => Ok(String::from_utf8_lossy(t).into_owned()),
                None => Err(format!("a dtype of {}", self.describe(*descr))),
            },
            _ => Err(self.describe(v)),
        }
    }

    fn shape(&self, v: Value) -> Result<Vec<usize>, String> {
        let dims = self
            .tuple(v)
            .ok_or_else(|| format!("a shape of {}", self.describe(v)))?;
        dims.iter()
            .map(|&d| {
                self.int(d)
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| format!("a shape dimension of {}", self.describe(d)))
            })
            .collect()
    }

    /// A numpy array: `_reconstruct(ndarray, (0,), b'b')` + BUILD with the state tuple
    /// `([version,] shape, dtype, is_fortran, data)`, or `_frombuffer(buf, dtype, shape, order)`.
    pub(crate) fn ndarray(&self, v: Value) -> Result<NdArray<'a>, String> {
        let Some(((module, name), args, state)) = self.call(v) else {
            return Err(self.describe(v));
        };
        if name == "_reconstruct" && RECONSTRUCT_MODULES.contains(&module) {
            let state = state.ok_or("an array without state (no BUILD)")?;
            let fields = self
                .tuple(state)
                .ok_or_else(|| format!("an array state of {}", self.describe(state)))?;
            let (shape, dtype, fortran, data) = match fields {
                [version, shape, dtype, fortran, data] => {
                    if self.int(*version) != Some(1) {
                        return Err(format!("array state version {}", self.describe(*version)));
                    }
                    (shape, dtype, fortran, data)
                }
                [shape, dtype, fortran, data] => (shape, dtype, fortran, data),
                other => return Err(format!("an array state tuple of {} items", other.len())),
            };
            let fortran = match self.int(*fortran) {
                Some(0) => false,
                Some(1) => true,
                _ => return Err(format!("an is_fortran flag of {}", self.describe(*fortran))),
            };
            Ok(NdArray {
                shape: self.shape(*shape)?,
                dtype: self.dtype(*dtype)?,
                fortran,
                data: self
                    .bytes_like(*data, 1)
                    .ok_or_else(|| format!("array data of {}", self.describe(*data)))?,
            })
        } else if name == "_frombuffer" && FROMBUFFER_MODULES.contains(&module) {
            let [buf, dtype, shape, order] = args else {
                return Err(format!("_frombuffer with {} arguments", args.len()));
            };
            let fortran = match self.text(*order) {
                Some(b"C") => false,
                Some(b"F") => true,
                _ => return Err(format!("an array order of {}", self.describe(*order))),
            };
            Ok(NdArray {
                shape: self.shape(*shape)?,
                dtype: self.dtype(*dtype)?,
                fortran,
                data: self
                    .bytes_like(*buf, 1)
                    .ok_or_else(|| format!("array data of {}", self.describe(*buf)))?,
            })
        } else {
            Err(self.describe(v))
        }
    }
}
