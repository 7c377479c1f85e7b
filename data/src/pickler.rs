//! A writer of pickles laid out the way Python 2's `cPickle` (protocol 2) wrote CIFAR-10's python
//! batches: memo ids from 1; globals, dict keys and values, list items and the array memoized;
//! temporaries (argument tuples, the array's state, its raw data) not, as cPickle skipped objects
//! referenced only once; lists and dicts filled in batches of 1000.

/// cPickle's batch size for APPENDS and SETITEMS.
const BATCH: usize = 1000;

/// A pickle being written.
pub(crate) struct Py2Pickler {
    out: Vec<u8>,
    memo: u32,
}

/// One value to write in a dict or list.
pub(crate) enum Item<'a> {
    /// A Python 2 str (bytes).
    Str(&'a [u8]),
    Int(i64),
    /// A list of ints.
    Ints(&'a [u8]),
    /// A list of strs.
    Strs(&'a [String]),
    /// A 2-D uint8 numpy array, C order: rows, columns, data.
    U8Array(usize, usize, &'a [u8]),
}

impl Py2Pickler {
    fn new() -> Self {
        Self {
            out: vec![0x80, 2],
            memo: 0,
        }
    }

    /// BINPUT / LONG_BINPUT of the next memo id.
    fn put(&mut self) {
        self.memo += 1;
        match u8::try_from(self.memo) {
            Ok(id) => self.out.extend_from_slice(&[b'q', id]),
            Err(_) => {
                self.out.push(b'r');
                self.out.extend_from_slice(&self.memo.to_le_bytes());
            }
        }
    }

    fn int(&mut self, v: i64) {
        if let Ok(b) = u8::try_from(v) {
            self.out.extend_from_slice(&[b'K', b]);
        } else if let Ok(w) = u16::try_from(v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&w.to_le_bytes());
        } else if let Ok(d) = i32::try_from(v) {
            self.out.push(b'J');
            self.out.extend_from_slice(&d.to_le_bytes());
        } else {
            // LONG1 with 8 bytes: cPickle's encoding of a Python 2 long.
            self.out.extend_from_slice(&[0x8a, 8]);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// SHORT_BINSTRING or BINSTRING (a Python 2 str); memoized if `memo`.
    fn string(&mut self, s: &[u8], memo: bool) {
        match u8::try_from(s.len()) {
            Ok(n) => self.out.extend_from_slice(&[b'U', n]),
            Err(_) => {
                self.out.push(b'T');
                // Batches are far below 4 GiB; saturate rather than wrap if ever misused.
                let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
                self.out.extend_from_slice(&n.to_le_bytes());
            }
        }
        self.out.extend_from_slice(s);
        if memo {
            self.put();
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self.put();
    }

    /// A list: EMPTY_LIST, then its items in batches (APPEND for a batch of one).
    fn list<T>(&mut self, items: &[T], mut write: impl FnMut(&mut Self, &T)) {
        self.out.push(b']');
        self.put();
        for batch in items.chunks(BATCH) {
            if let [one] = batch {
                write(self, one);
                self.out.push(b'a');
            } else {
                self.out.push(b'(');
                for item in batch {
                    write(self, item);
                }
                self.out.push(b'e');
            }
        }
    }

    /// `numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), 'b')` + BUILD with the state
    /// `(1, (rows, cols), dtype('u1'), False, data)`, as numpy 1.x under Python 2 reduced it.
    fn u8_array(&mut self, rows: usize, cols: usize, data: &[u8]) {
        self.global("numpy.core.multiarray", "_reconstruct");
        self.global("numpy", "ndarray");
        self.out.extend_from_slice(&[b'K', 0, 0x85]);
        self.string(b"b", false);
        self.out.extend_from_slice(&[0x87, b'R']);
        self.put();
        self.out.extend_from_slice(&[b'(', b'K', 1]);
        self.int(i64::try_from(rows).unwrap_or(i64::MAX));
        self.int(i64::try_from(cols).unwrap_or(i64::MAX));
        self.out.push(0x86);
        self.global("numpy", "dtype");
        self.string(b"u1", false);
        self.out.extend_from_slice(&[b'K', 0, b'K', 1, 0x87, b'R']);
        self.put();
        self.out.extend_from_slice(&[b'(', b'K', 3]);
        self.string(b"|", false);
        self.out.extend_from_slice(b"NNN");
        self.int(-1);
        self.int(-1);
        self.int(0);
        self.out.extend_from_slice(b"tb");
        self.out.push(0x89);
        self.string(data, false);
        self.out.extend_from_slice(b"tb");
    }

    fn item(&mut self, item: &Item<'_>) {
        match item {
            Item::Str(s) => self.string(s, true),
            Item::Int(i) => self.int(*i),
            Item::Ints(v) => self.list(v, |p, &l| p.int(i64::from(l))),
            Item::Strs(v) => self.list(v, |p, s| p.string(s.as_bytes(), true)),
            Item::U8Array(rows, cols, data) => self.u8_array(*rows, *cols, data),
        }
    }

    /// A whole pickle of one dict with the given (key, value) pairs, in order.
    pub(crate) fn dict(items: &[(&str, Item<'_>)]) -> Vec<u8> {
        let mut p = Self::new();
        p.out.push(b'}');
        p.put();
        for batch in items.chunks(BATCH) {
            let many = batch.len() > 1;
            if many {
                p.out.push(b'(');
            }
            for (key, value) in batch {
                p.string(key.as_bytes(), true);
                p.item(value);
            }
            p.out.push(if many { b'u' } else { b's' });
        }
        p.out.push(b'.');
        p.out
    }
}
