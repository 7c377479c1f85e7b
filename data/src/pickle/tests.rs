//! Tests of the pickle interpreter: real pickles written by Python 3 and numpy 2, hand-assembled
//! opcodes, hostile inputs.

use super::*;
use proptest::prelude::*;

const SMALL_P1: &[u8] = include_bytes!("../testdata/small_p1.pickle");
const SMALL_P5: &[u8] = include_bytes!("../testdata/small_p5.pickle");
const SMALL_FORTRAN_P4: &[u8] = include_bytes!("../testdata/small_fortran_p4.pickle");
const SMALL_BYTES_KEYS_P2: &[u8] = include_bytes!("../testdata/small_bytes_keys_p2.pickle");

fn parsed(bytes: &[u8]) -> Pickle<'_> {
    match parse(bytes) {
        Ok(p) => p,
        Err(e) => panic!("parse failed: {e:?}"),
    }
}

fn err(bytes: &[u8]) -> PickleError {
    match parse(bytes) {
        Ok(p) => panic!("expected an error, got {}", p.describe(p.root)),
        Err(e) => e,
    }
}

/// Checks a `{'data': array([[0, 40, 80], [120, 160, 200]], u1), 'labels': [1, 2]}` pickle.
fn check_small(bytes: &[u8]) {
    let p = parsed(bytes);
    let data = p.dict_get(p.root, "data").flatten().expect("data key");
    let array = p.ndarray(data).expect("an array");
    assert_eq!(array.shape, [2, 3]);
    assert_eq!(array.dtype, "u1");
    let labels = p.dict_get(p.root, "labels").flatten().expect("labels key");
    assert_eq!(p.int_list(labels), Ok(vec![1, 2]));
    let c_order: Vec<u8> = (0..6).map(|i| i * 40).collect();
    if array.fortran {
        assert_eq!(*array.data, [0, 120, 40, 160, 80, 200]);
    } else {
        assert_eq!(*array.data, c_order[..]);
    }
}

#[test]
fn real_python_pickles_of_every_protocol_parse() {
    for bytes in [SMALL_P1, SMALL_P5, SMALL_FORTRAN_P4, SMALL_BYTES_KEYS_P2] {
        check_small(bytes);
    }
    assert!(parse(SMALL_FORTRAN_P4).is_ok_and(|p| {
        let data = p.dict_get(p.root, "data").flatten();
        data.is_some_and(|d| p.ndarray(d).is_ok_and(|a| a.fortran))
    }));
}

#[test]
fn scalars_and_containers() {
    // PROTO 2, MARK, BININT1 5, BININT2 300, BININT -2, LONG1 (2**70 -> big), LONG1 -1,
    // NONE, NEWTRUE, BINFLOAT 1.5, INT "42", LONG "7L", TUPLE, STOP.
    let mut b = vec![0x80, 2, b'(', b'K', 5, b'M', 0x2c, 0x01, b'J'];
    b.extend_from_slice(&(-2i32).to_le_bytes());
    b.extend_from_slice(&[0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40]);
    b.extend_from_slice(&[0x8a, 1, 0xff, b'N', 0x88, b'G']);
    b.extend_from_slice(&1.5f64.to_be_bytes());
    b.extend_from_slice(b"I42\nL7L\nt.");
    let p = parsed(&b);
    let Some(Obj::Tuple(items)) = p.objs.first() else {
        panic!("expected a tuple");
    };
    assert_eq!(
        items[..],
        [
            Value::Int(5),
            Value::Int(300),
            Value::Int(-2),
            Value::BigInt,
            Value::Int(-1),
            Value::None,
            Value::Bool(true),
            Value::Float(1.5),
            Value::Int(42),
            Value::Int(7),
        ]
    );
}

#[test]
fn long_that_fits_in_nine_bytes() {
    // LONG1 of 9 bytes whose ninth is only sign extension: -1.
    let p = parsed(&[
        0x8a, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, b'.',
    ]);
    assert_eq!(p.root, Value::Int(-1));
    // 2**63 does not fit.
    let p = parsed(&[0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, b'.']);
    assert_eq!(p.root, Value::BigInt);
}

#[test]
fn memo_shares_objects_and_dict_keys_can_be_str_or_bytes() {
    // {'a': [1, 2], b'b': <same list>} via MEMOIZE / BINGET; protocol 4 opcodes.
    let b = [
        0x80, 4, b'}', 0x94, b'(', 0x8c, 1, b'a', 0x94, b']', 0x94, b'K', 1, b'a', b'K', 2, b'a',
        b'C', 1, b'b', 0x94, b'h', 2, b'u', b'.',
    ];
    let p = parsed(&b);
    let a = p.dict_get(p.root, "a").flatten().expect("a");
    let bb = p.dict_get(p.root, "b").flatten().expect("b");
    assert_eq!(a, bb, "one shared list");
    assert_eq!(p.int_list(a), Ok(vec![1, 2]));
    assert_eq!(p.dict_get(p.root, "c"), Some(None));
    assert_eq!(p.dict_get(a, "a"), None, "a list is not a dict");
}

#[test]
fn pop_dup_pop_mark_and_dict_list_opcodes() {
    // MARK 1 2 DICT -> {1: 2}; DUP; POP; MARK 9 POP_MARK; MARK 3 LIST; SETITEM {1:2, ...}
    let b = [
        b'(', b'K', 1, b'K', 2, b'd', b'2', b'0', b'(', b'K', 9, b'1', b'K', 5, b'(', b'K', 3,
        b'l', b's', b'.',
    ];
    let p = parsed(&b);
    let Some(Obj::Dict(items)) = p.objs.get(p.root_id()) else {
        panic!("expected a dict");
    };
    assert_eq!(items.len(), 2);
    assert_eq!(items[0], (Value::Int(1), Value::Int(2)));
    assert_eq!(items[1].0, Value::Int(5));
    assert_eq!(p.int_list(items[1].1), Ok(vec![3]));
}

#[test]
fn globals_are_inert_and_calls_are_records() {
    // os.system('echo pwned') via GLOBAL + REDUCE: recorded, never run.
    let b = b"cos\nsystem\n(X\x0a\x00\x00\x00echo pwnedtR.";
    let p = parsed(b);
    assert_eq!(p.describe(p.root), "a call to os.system");
    assert!(p.ndarray(p.root).is_err());
    // STACK_GLOBAL + NEWOBJ + BUILD.
    let b = [
        0x80, 4, 0x8c, 1, b'm', 0x8c, 1, b'n', 0x93, b')', 0x81, b'}', b'b', b'.',
    ];
    assert_eq!(parsed(&b).describe(parsed(&b).root), "a call to m.n");
}

#[test]
fn unsupported_opcodes_are_named_with_their_offset() {
    let e = err(b"\x80\x02S'x'\n.");
    assert_eq!(e.offset, 2);
    assert!(e.found.contains("0x53 (STRING)"), "{e:?}");
    let e = err(&[0x80, 4, 0x8f, b'.']);
    assert!(e.found.contains("EMPTY_SET") && e.offset == 2, "{e:?}");
    let e = err(&[0xff]);
    assert!(e.found.contains("0xff (not an opcode)"), "{e:?}");
    assert!(err(&[0x80, 6, b'N', b'.']).found.contains("protocol 6"));
}

#[test]
fn malformed_streams_are_errors() {
    let cases: &[&[u8]] = &[
        b"",                                      // no STOP
        b"N",                                     // no STOP
        b".",                                     // STOP on an empty stack
        b"a.",                                    // APPEND on an empty stack
        b"KKa.",                                  // APPEND to an int
        b"N(a.",                                  // APPEND below a MARK
        b"}K\x01s.",                              // SETITEM with one item
        b"}(K\x01u.",                             // SETITEMS with an odd count
        b"e.",                                    // APPENDS without MARK
        b"h\x05.",                                // BINGET of a missing memo entry
        b"q\x01.",                                // BINPUT on an empty stack
        b"Nb.",                                   // BUILD on none
        b"X\xff\xff\xff\xff.",                    // BINUNICODE longer than the input
        b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff.", // BINUNICODE8 of 2**64 - 1 bytes
        b"\x8e\x00\x00\x00\x00\x00\x00\x00\x80.", // BINBYTES8 of 2**63 bytes
        b"\x95\x00\x00\x00\x00\x00\x00\x01\x00.", // FRAME longer than the input
        b"X\x02\x00\x00\x00\xc3\x28.",            // invalid utf-8
        b"Iabc\n.",                               // INT that is not a number
        b"cos\nsystem",                           // GLOBAL without newline
        b"Np-1\n.",                               // negative PUT
        b"K\x01K\x02\x93.",                       // STACK_GLOBAL of ints
        b"\x86.",                                 // TUPLE2 on an empty stack
    ];
    for case in cases {
        assert!(parse(case).is_err(), "{case:?} parsed");
    }
}

#[test]
fn deep_nesting_and_many_memo_refs_stay_cheap() {
    // 200 000 nested lists: EMPTY_LIST x n, then APPEND x (n - 1). No recursion anywhere.
    let n = 200_000;
    let mut b = vec![b']'; n];
    b.extend(std::iter::repeat_n(b'a', n - 1));
    b.push(b'.');
    let p = parsed(&b);
    assert_eq!(p.describe(p.root), "a list of 1 items");
    // A 1000-byte string referenced 100 000 times costs no copy of it.
    let mut b = vec![b'B'];
    b.extend_from_slice(&1000u32.to_le_bytes());
    b.extend(std::iter::repeat_n(b'x', 1000));
    b.extend_from_slice(b"q\x00(");
    for _ in 0..100_000 {
        b.extend_from_slice(b"h\x00");
    }
    b.extend_from_slice(b"l.");
    assert!(parse(&b).is_ok());
    // A memo index of 2**32 - 1 does not size anything.
    assert!(parse(b"Nr\xff\xff\xff\xffj\xff\xff\xff\xff.").is_ok());
}

#[test]
fn array_errors_are_described() {
    // An array whose state says version 2.
    let mut b = SMALL_P1.to_vec();
    // In protocol 1 the state tuple starts with `(K\x01(`: find it and bump the version.
    let at = b
        .windows(4)
        .position(|w| w == b"(K\x01(")
        .expect("state tuple");
    b[at + 2] = 2;
    let p = parsed(&b);
    let data = p.dict_get(p.root, "data").flatten().expect("data");
    let e = p.ndarray(data).expect_err("bad version");
    assert!(e.contains("version int 2"), "{e}");
    // A call record that is not an array.
    let p = parsed(b"c__builtin__\nset\n)R.");
    assert_eq!(
        p.ndarray(p.root).expect_err("not an array"),
        "a call to __builtin__.set"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(p) = parse(&bytes) {
            let _ = p.describe(p.root);
            let _ = p.ndarray(p.root);
            let _ = p.int_list(p.root);
            let _ = p.dict_get(p.root, "data");
        }
    }

    #[test]
    fn mutated_real_pickles_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        for base in [SMALL_P1, SMALL_P5, SMALL_FORTRAN_P4, SMALL_BYTES_KEYS_P2] {
            let mut bytes = base.to_vec();
            for (at, v) in &edits {
                let i = at.index(bytes.len());
                bytes[i] = *v;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            if let Ok(p) = parse(&bytes) {
                if let Some(Some(d)) = p.dict_get(p.root, "data") {
                    let _ = p.ndarray(d);
                }
                if let Some(Some(l)) = p.dict_get(p.root, "labels") {
                    let _ = p.int_list(l);
                }
            }
        }
    }
}

impl Pickle<'_> {
    fn root_id(&self) -> ObjId {
        obj_id(self.root).unwrap_or(usize::MAX)
    }
}
