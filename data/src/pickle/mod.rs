//! A small, safe interpreter for Python pickles (protocols 0-4, and in-band protocol 5), enough
//! for CIFAR-10's python batches: dicts, lists, tuples, strings, ints and numpy arrays.
//!
//! Nothing is ever executed: `GLOBAL`/`STACK_GLOBAL` only name a callable, and `REDUCE`/`NEWOBJ`
//! record an inert call (callable, arguments, and the state a later `BUILD` gives it). The few
//! calls that matter (numpy's `_reconstruct` and `_frombuffer`, `numpy.dtype`, `_codecs.encode`,
//! `bytes()`) are interpreted afterwards, by the accessors, from those records.
//!
//! Memory is bounded by the input: strings and byte strings borrow from it, every length is
//! checked against the bytes that remain before use, memo indices go in a map (never sizing a
//! vector), and every container lives in one flat arena, so neither memo references nor deep
//! nesting can blow up memory or the stack.

use std::collections::HashMap;

use opcodes::*;

/// Index of an object in [`Pickle`]'s arena.
pub(crate) type ObjId = usize;

/// A value on the unpickler's stack: a scalar, or a reference to an object in the arena.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for `i64` (its digits are not kept).
    BigInt,
    Float(f64),
    Obj(ObjId),
}

/// An object in the arena. Strings and bytes borrow from the input.
#[derive(Debug)]
pub(crate) enum Obj<'a> {
    Str(&'a str),
    Bytes(&'a [u8]),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A named callable or class (never imported).
    Global {
        module: &'a str,
        name: &'a str,
    },
    /// An inert record of `func(*args)` (REDUCE) or `cls.__new__(cls, *args)` (NEWOBJ), and the
    /// state a BUILD gave it.
    Call {
        func: Value,
        args: Value,
        state: Option<Value>,
    },
}

/// A parsed pickle: the arena and the value STOP returned.
#[derive(Debug)]
pub(crate) struct Pickle<'a> {
    objs: Vec<Obj<'a>>,
    pub(crate) root: Value,
}

/// Why a pickle could not be read: what the interpreter expected at `offset`, and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PickleError {
    pub(crate) offset: usize,
    pub(crate) expected: String,
    pub(crate) found: String,
}

/// Parses `data` as one pickle and returns the value its STOP returns. Bytes after STOP are
/// ignored, as Python's `pickle.load` does.
pub(crate) fn parse(data: &[u8]) -> Result<Pickle<'_>, PickleError> {
    let mut m = Machine {
        data,
        pos: 0,
        op_at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objs: Vec::new(),
    };
    let root = m.run()?;
    Ok(Pickle { objs: m.objs, root })
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being run, for errors.
    op_at: usize,
    stack: Vec<Value>,
    /// Stack lengths at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    objs: Vec<Obj<'a>>,
}

impl<'a> Machine<'a> {
    fn err<T>(
        &self,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Result<T, PickleError> {
        Err(PickleError {
            offset: self.op_at,
            expected: expected.into(),
            found: found.into(),
        })
    }

    /// The next `n` bytes, checked against what remains (never allocates).
    fn take(&mut self, n: u64) -> Result<&'a [u8], PickleError> {
        let left = self.data.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= left => {
                let s = &self.data[self.pos..self.pos + n];
                self.pos += n;
                Ok(s)
            }
            _ => self.err(
                format!("{n} bytes of argument"),
                format!("{left} bytes left (truncated)"),
            ),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A text argument ended by a newline (protocol 0), without the newline.
    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("a newline-terminated argument", "end of data (truncated)");
        };
        self.pos += len + 1;
        self.utf8(&rest[..len])
    }

    fn utf8(&self, bytes: &'a [u8]) -> Result<&'a str, PickleError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s),
            Err(e) => self.err("utf-8 text", format!("invalid utf-8 ({e})")),
        }
    }

    fn push_obj(&mut self, obj: Obj<'a>) {
        self.objs.push(obj);
        self.stack.push(Value::Obj(self.objs.len() - 1));
    }

    /// Lowest stack index usable by ops that do not pop a mark.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        if self.stack.len() > self.floor() {
            if let Some(v) = self.stack.pop() {
                return Ok(v);
            }
        }
        self.err("a value on the stack", "an empty stack (stack underflow)")
    }

    fn top(&self) -> Result<Value, PickleError> {
        match self.stack.last() {
            Some(v) if self.stack.len() > self.floor() => Ok(*v),
            _ => self.err("a value on the stack", "an empty stack (stack underflow)"),
        }
    }

    /// Pops everything above the last MARK, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        match self.marks.pop() {
            Some(at) => Ok(self.stack.split_off(at)),
            None => self.err("a MARK before this opcode", "no mark"),
        }
    }

    fn obj_mut(&mut self, v: Value) -> Option<&mut Obj<'a>> {
        match v {
            Value::Obj(id) => self.objs.get_mut(id),
            _ => None,
        }
    }

    fn kind_of(&self, v: Value) -> String {
        describe(&self.objs, v)
    }

    fn list_extend(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        let target = self.top()?;
        match self.obj_mut(target) {
            Some(Obj::List(list)) => {
                list.extend(items);
                Ok(())
            }
            _ => {
                let found = self.kind_of(target);
                self.err("a list to append to", found)
            }
        }
    }

    fn dict_extend(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if items.len() % 2 != 0 {
            return self.err("key-value pairs", format!("{} items", items.len()));
        }
        let target = self.top()?;
        match self.obj_mut(target) {
            Some(Obj::Dict(dict)) => {
                dict.extend(items.chunks_exact(2).map(|kv| (kv[0], kv[1])));
                Ok(())
            }
            _ => {
                let found = self.kind_of(target);
                self.err("a dict to set items in", found)
            }
        }
    }

    fn memo_put(&mut self, index: u64) -> Result<(), PickleError> {
        let v = self.top()?;
        self.memo.insert(index, v);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<(), PickleError> {
        match self.memo.get(&index) {
            Some(v) => {
                self.stack.push(*v);
                Ok(())
            }
            None => self.err(format!("memo entry {index}"), "no such entry"),
        }
    }

    fn text_int(&self, text: &str) -> Result<i64, PickleError> {
        match text.trim().parse::<i64>() {
            Ok(v) => Ok(v),
            Err(_) => self.err("a decimal integer", format!("{text:?}")),
        }
    }

    /// A decimal integer (INT, LONG): an `Int`, or a `BigInt` if it has too many digits.
    fn int_value(&self, text: &str) -> Result<Value, PickleError> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        match self.text_int(text) {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Value::BigInt)
            }
            Err(e) => Err(e),
        }
    }

    /// A little-endian two's complement integer of any length (LONG1, LONG4).
    fn long(bytes: &[u8]) -> Value {
        if bytes.len() > 8 {
            let sign = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            if bytes[8..].iter().all(|&b| b == sign) && (bytes[7] & 0x80) == (sign & 0x80) {
                return Self::long(&bytes[..8]);
            }
            return Value::BigInt;
        }
        let fill = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
            0xff
        } else {
            0
        };
        let mut word = [fill; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        Value::Int(i64::from_le_bytes(word))
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            self.op_at = self.pos;
            let Some(&op) = self.data.get(self.pos) else {
                return self.err("a STOP opcode", "end of data (truncated)");
            };
            self.pos += 1;
            match op {
                STOP => return self.pop(),
                PROTO | FRAME | MARK | POP | POP_MARK | DUP => self.control_op(op)?,
                NONE | NEWTRUE | NEWFALSE | INT | LONG | BININT | BININT1 | BININT2 | LONG1
                | LONG4 | BINFLOAT => self.number_op(op)?,
                BINSTRING | SHORT_BINSTRING | SHORT_BINBYTES | BINBYTES | BINBYTES8
                | BYTEARRAY8 | READONLY_BUFFER | BINUNICODE | SHORT_BINUNICODE | BINUNICODE8 => {
                    self.text_op(op)?
                }
                EMPTY_DICT
                | DICT
                | SETITEM
                | SETITEMS
                | EMPTY_LIST
                | LIST
                | APPEND
                | APPENDS
                | EMPTY_TUPLE
                | TUPLE
                | TUPLE1..=TUPLE3 => self.container_op(op)?,
                GLOBAL | STACK_GLOBAL | REDUCE | NEWOBJ | BUILD => self.object_op(op)?,
                PUT | BINPUT | LONG_BINPUT | MEMOIZE | GET | BINGET | LONG_BINGET => {
                    self.memo_op(op)?
                }
                other => return self.unsupported(other),
            }
        }
    }

    /// The error of an opcode this reader does not support.
    fn unsupported<T>(&self, op: u8) -> Result<T, PickleError> {
        self.err(
            "a supported opcode",
            format!("opcode 0x{op:02x} ({})", opcodes::name(op)),
        )
    }

    /// Protocol, framing and stack opcodes (STOP aside: `run` ends there).
    fn control_op(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            PROTO => {
                let [proto] = self.array()?;
                if proto > 5 {
                    return self.err("pickle protocol 0 to 5", format!("protocol {proto}"));
                }
            }
            FRAME => {
                let len = self.u64()?;
                let left = (self.data.len() - self.pos) as u64;
                if len > left {
                    return self.err(
                        format!("a frame of {len} bytes"),
                        format!("{left} bytes left (truncated)"),
                    );
                }
            }
            MARK => self.marks.push(self.stack.len()),
            POP => {
                if self.stack.len() > self.floor() {
                    self.pop()?;
                } else {
                    self.pop_mark()?;
                }
            }
            POP_MARK => {
                self.pop_mark()?;
            }
            DUP => {
                let v = self.top()?;
                self.stack.push(v);
            }
            other => return self.unsupported(other),
        }
        Ok(())
    }

    /// Opcodes that push a number, a boolean or None.
    fn number_op(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            NONE => self.stack.push(Value::None),
            NEWTRUE => self.stack.push(Value::Bool(true)),
            NEWFALSE => self.stack.push(Value::Bool(false)),
            INT => {
                let text = self.line()?;
                let v = match text {
                    "01" => Value::Bool(true),
                    "00" => Value::Bool(false),
                    _ => self.int_value(text)?,
                };
                self.stack.push(v);
            }
            LONG => {
                let text = self.line()?;
                let digits = text.strip_suffix('L').unwrap_or(text);
                let v = self.int_value(digits)?;
                self.stack.push(v);
            }
            BININT => {
                let v = i32::from_le_bytes(self.array()?);
                self.stack.push(Value::Int(i64::from(v)));
            }
            BININT1 => {
                let [v] = self.array()?;
                self.stack.push(Value::Int(i64::from(v)));
            }
            BININT2 => {
                let v = u16::from_le_bytes(self.array()?);
                self.stack.push(Value::Int(i64::from(v)));
            }
            LONG1 => {
                let [n] = self.array()?;
                let bytes = self.take(u64::from(n))?;
                self.stack.push(Self::long(bytes));
            }
            LONG4 => {
                let n = self.u32()?;
                let bytes = self.take(u64::from(n))?;
                self.stack.push(Self::long(bytes));
            }
            BINFLOAT => {
                let v = f64::from_be_bytes(self.array()?);
                self.stack.push(Value::Float(v));
            }
            other => return self.unsupported(other),
        }
        Ok(())
    }

    /// Opcodes that push bytes or a string.
    fn text_op(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            // Python 2 str: bytes.
            BINSTRING => {
                let n = self.u32()?;
                let s = self.take(u64::from(n))?;
                self.push_obj(Obj::Bytes(s));
            }
            SHORT_BINSTRING | SHORT_BINBYTES => {
                let [n] = self.array()?;
                let s = self.take(u64::from(n))?;
                self.push_obj(Obj::Bytes(s));
            }
            BINBYTES => {
                let n = self.u32()?;
                let s = self.take(u64::from(n))?;
                self.push_obj(Obj::Bytes(s));
            }
            BINBYTES8 | BYTEARRAY8 => {
                let n = self.u64()?;
                let s = self.take(n)?;
                self.push_obj(Obj::Bytes(s));
            }
            READONLY_BUFFER => {
                self.top()?;
            }
            BINUNICODE => {
                let n = self.u32()?;
                let s = self.take(u64::from(n))?;
                let s = self.utf8(s)?;
                self.push_obj(Obj::Str(s));
            }
            SHORT_BINUNICODE => {
                let [n] = self.array()?;
                let s = self.take(u64::from(n))?;
                let s = self.utf8(s)?;
                self.push_obj(Obj::Str(s));
            }
            BINUNICODE8 => {
                let n = self.u64()?;
                let s = self.take(n)?;
                let s = self.utf8(s)?;
                self.push_obj(Obj::Str(s));
            }
            other => return self.unsupported(other),
        }
        Ok(())
    }

    /// Opcodes that build dicts, lists and tuples.
    fn container_op(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            EMPTY_DICT => self.push_obj(Obj::Dict(Vec::new())),
            DICT => {
                let items = self.pop_mark()?;
                self.push_obj(Obj::Dict(Vec::new()));
                self.dict_extend(items)?;
            }
            SETITEM => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.dict_extend(vec![key, value])?;
            }
            SETITEMS => {
                let items = self.pop_mark()?;
                self.dict_extend(items)?;
            }
            EMPTY_LIST => self.push_obj(Obj::List(Vec::new())),
            LIST => {
                let items = self.pop_mark()?;
                self.push_obj(Obj::List(items));
            }
            APPEND => {
                let v = self.pop()?;
                self.list_extend(vec![v])?;
            }
            APPENDS => {
                let items = self.pop_mark()?;
                self.list_extend(items)?;
            }
            EMPTY_TUPLE => self.push_obj(Obj::Tuple(Vec::new())),
            TUPLE => {
                let items = self.pop_mark()?;
                self.push_obj(Obj::Tuple(items));
            }
            TUPLE1..=TUPLE3 => {
                let n = usize::from(op - TUPLE1 + 1);
                if self.stack.len() < self.floor() + n {
                    return self.err(
                        format!("{n} values on the stack"),
                        "fewer (stack underflow)",
                    );
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.push_obj(Obj::Tuple(items));
            }
            other => return self.unsupported(other),
        }
        Ok(())
    }

    /// Opcodes that name a global or build an object from one.
    fn object_op(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            GLOBAL => {
                let module = self.line()?;
                let name = self.line()?;
                self.push_obj(Obj::Global { module, name });
            }
            STACK_GLOBAL => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (self.obj_ref(module), self.obj_ref(name)) {
                    (Some(Obj::Str(module)), Some(Obj::Str(name))) => {
                        let (module, name) = (*module, *name);
                        self.push_obj(Obj::Global { module, name });
                    }
                    _ => return self.err("two strings (module, name)", "something else"),
                }
            }
            REDUCE | NEWOBJ => {
                let args = self.pop()?;
                let func = self.pop()?;
                self.push_obj(Obj::Call {
                    func,
                    args,
                    state: None,
                });
            }
            BUILD => {
                let state = self.pop()?;
                let target = self.top()?;
                match self.obj_mut(target) {
                    Some(Obj::Call { state: s, .. }) => *s = Some(state),
                    _ => {
                        let found = self.kind_of(target);
                        return self.err("an object made by REDUCE or NEWOBJ to BUILD", found);
                    }
                }
            }
            other => return self.unsupported(other),
        }
        Ok(())
    }

    /// The memo: PUT and GET in their text, binary and automatic forms.
    fn memo_op(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            PUT => {
                let text = self.line()?;
                let i = self.text_int(text)?;
                match u64::try_from(i) {
                    Ok(i) => self.memo_put(i)?,
                    Err(_) => return self.err("a memo index of 0 or more", text.to_owned()),
                }
            }
            BINPUT => {
                let [i] = self.array()?;
                self.memo_put(u64::from(i))?;
            }
            LONG_BINPUT => {
                let i = self.u32()?;
                self.memo_put(u64::from(i))?;
            }
            MEMOIZE => {
                let i = self.memo.len() as u64;
                self.memo_put(i)?;
            }
            GET => {
                let text = self.line()?;
                let i = self.text_int(text)?;
                self.memo_get(u64::try_from(i).unwrap_or(u64::MAX))?;
            }
            BINGET => {
                let [i] = self.array()?;
                self.memo_get(u64::from(i))?;
            }
            LONG_BINGET => {
                let i = self.u32()?;
                self.memo_get(u64::from(i))?;
            }
            other => return self.unsupported(other),
        }
        Ok(())
    }

    fn obj_ref(&self, v: Value) -> Option<&Obj<'a>> {
        match v {
            Value::Obj(id) => self.objs.get(id),
            _ => None,
        }
    }
}

/// A short description of a value, for error messages ("a list of 3 items", "int 7").
fn describe(objs: &[Obj<'_>], v: Value) -> String {
    match v {
        Value::None => "none".to_owned(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Int(i) => format!("int {i}"),
        Value::BigInt => "a big int".to_owned(),
        Value::Float(f) => format!("float {f}"),
        Value::Obj(id) => match objs.get(id) {
            Some(Obj::Str(s)) => format!("a str of {} chars", s.chars().count()),
            Some(Obj::Bytes(b)) => format!("bytes of length {}", b.len()),
            Some(Obj::List(l)) => format!("a list of {} items", l.len()),
            Some(Obj::Tuple(t)) => format!("a tuple of {} items", t.len()),
            Some(Obj::Dict(d)) => format!("a dict of {} items", d.len()),
            Some(Obj::Global { module, name }) => format!("the global {module}.{name}"),
            Some(Obj::Call { func, .. }) => match objs.get(obj_id(*func).unwrap_or(usize::MAX)) {
                Some(Obj::Global { module, name }) => format!("a call to {module}.{name}"),
                _ => "a call".to_owned(),
            },
            None => "a dangling reference".to_owned(),
        },
    }
}

fn obj_id(v: Value) -> Option<ObjId> {
    match v {
        Value::Obj(id) => Some(id),
        _ => None,
    }
}

mod opcodes;
mod read;

#[cfg(test)]
mod tests;
